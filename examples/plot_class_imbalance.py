"""
=================================================================
Class imbalance: class weights, over-sampling and focal loss
=================================================================

The source reports met imbalanced classes everywhere: fewer "no tumour" scans
than tumour scans, 42 malignant against 114 benign breast ultrasounds. A
classifier trained on them favours the large classes, and the recall of the
small one suffers. Here you learn three remedies of skmedimg and compare the
recall of every class: ``class_weight="balanced"`` (the loss weighs each class
by its rarity), :class:`~skmedimg.preprocessing.ImageRandomOverSampler` in a
pipeline (the small classes' images are repeated while fitting), and
``loss="focal"`` (easy, well-classified images count less).

It runs offline on synthetic phantoms whose classes are made imbalanced, with
the real ImageNet weights of EfficientNet-Lite0 when the ``weights`` extra is
installed (a tiny random network otherwise). To use a real ``<class>/<image>``
folder, give it as the first argument or set the environment variable
``SKMEDIMG_DATA``; its first class is then made rare. The recalls are plotted
in ``class_imbalance_recall.png`` in the folder named by
``SKMEDIMG_EXAMPLES_OUT`` (default: the current directory).
"""

# %%
# Imbalanced data
# ---------------
# :func:`~skmedimg.datasets.make_phantoms` takes class proportions, as
# :func:`sklearn.datasets.make_classification` does. The test set is split
# with the same proportions (``stratify``), so it is imbalanced too, and the
# recall of each class is the number to watch.
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
from sklearn.model_selection import train_test_split

from skmedimg.datasets import PHANTOM_CLASSES, load_image_folder, make_phantoms
from skmedimg.neural import CNNClassifier, shipped_weights_path

# (Hidden here: FAST, a quicker run when SKMEDIMG_EXAMPLES_FAST=1, and
# out_dir, the folder of the saved figures, SKMEDIMG_EXAMPLES_OUT.)
# sphinx_gallery_start_ignore
FAST = os.environ.get("SKMEDIMG_EXAMPLES_FAST", "0") not in ("", "0")
out_dir = Path(os.environ.get("SKMEDIMG_EXAMPLES_OUT", "."))
out_dir.mkdir(parents=True, exist_ok=True)
# sphinx_gallery_end_ignore
n_images, image_size = (160, 64) if FAST else (600, 64)
weights = [0.32, 0.06, 0.31, 0.31]  # "bright round lesion" is rare

# (Hidden here: folder, a data folder given on the command line or in
# SKMEDIMG_DATA, else None.)
# sphinx_gallery_start_ignore
folder = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("SKMEDIMG_DATA")
if folder and (Path(folder) / "brain_tumor_mri" / "Training").is_dir():
    folder = Path(folder) / "brain_tumor_mri" / "Training"
# sphinx_gallery_end_ignore
if folder:
    data = load_image_folder(folder)
    files, target = data.filenames, data.target
    # Keep about a tenth of the first class and all of the others.
    rng = np.random.default_rng(0)
    keep = (target != 0) | (rng.random(len(target)) < 0.1)
    X, y = files[keep], data.labels[keep]
    if len(X) > n_images:
        X, _, y, _ = train_test_split(
            X, y, train_size=n_images, stratify=y, random_state=0
        )
else:
    X, y = make_phantoms(
        n_images, image_size=image_size, weights=weights, random_state=0
    )
    y = np.asarray(PHANTOM_CLASSES)[y]
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.3, stratify=y, random_state=0
)
classes, counts = np.unique(y_train, return_counts=True)
classes, counts = classes[np.argsort(counts)], np.sort(counts)  # rarest first
for label, count in zip(classes, counts, strict=True):
    print(f"{count:4d} training images of {label}")

if shipped_weights_path("tf_efficientnet_lite0") is not None:
    backbone = {"model_name": "tf_efficientnet_lite0", "pretrained": True}
else:
    print("EfficientNet-Lite0 weights not installed: using a tiny random network")
    backbone = {"model_name": "test_efficientnet", "pretrained": False}

# %%
# Four models
# -----------
# All four train a head on a frozen backbone (whose features are cached in
# ``memory`` and shared), so only the remedy differs. The over-sampler is a
# sampler: it needs imbalanced-learn's pipeline, re-exported by
# :mod:`skmedimg.pipeline`, and it resamples only the training data of each
# fit, never the images predicted. :func:`~sklearn.base.clone` makes
# independent copies (``set_params`` changes an estimator in place).
from sklearn.base import clone

from skmedimg.pipeline import make_pipeline
from skmedimg.preprocessing import ImageRandomOverSampler

# A temporary cache, deleted when Python exits; a fixed folder such as
# "~/.cache/skmedimg" would keep the features between runs.
cache_dir = tempfile.TemporaryDirectory(prefix="skmedimg_features_")
cache = cache_dir.name
base = CNNClassifier(
    **backbone,
    freeze="backbone",
    image_size=image_size,
    lr=1e-2,
    max_epochs=20,
    memory=cache,
    random_state=0,
)
models = {
    "plain": base,
    "class_weight": clone(base).set_params(class_weight="balanced"),
    "over-sampling": make_pipeline(ImageRandomOverSampler(random_state=0), clone(base)),
    "focal loss": clone(base).set_params(loss="focal"),
}

# %%
# Recall per class
# ----------------
# :func:`sklearn.metrics.recall_score` with ``average=None`` gives the recall
# (sensitivity) of every class; the balanced accuracy is their mean.
from sklearn.metrics import balanced_accuracy_score, recall_score

recalls = {}
print(f"{'':>14} " + " ".join(f"{c[:12]:>12}" for c in classes) + "  balanced")
for name, model in models.items():
    y_pred = model.fit(X_train, y_train).predict(X_test)
    recalls[name] = recall_score(y_test, y_pred, labels=classes, average=None)
    balanced = balanced_accuracy_score(y_test, y_pred)
    print(
        f"{name:>14} "
        + " ".join(f"{r:12.2f}" for r in recalls[name])
        + f"  {balanced:8.3f}"
    )

# %%
# The rare class is on the left. Which remedy helps most depends on the data:
# class weights change the loss of every batch; over-sampling a frozen
# backbone without augmentation repeats identical features, which is close to
# class weights with more noise; the focal loss targets hard images rather
# than rare ones. Judge them by the recall of the class that matters and by
# the balanced accuracy, never by the accuracy alone. With real scans, combine
# over-sampling with ``augment`` so that repeated images are not identical.
import textwrap

import matplotlib.pyplot as plt

fig, ax = plt.subplots(figsize=(8, 4.2), layout="constrained")
width = 0.8 / len(recalls)
for k, (name, values) in enumerate(recalls.items()):
    ax.bar(np.arange(len(classes)) + (k - 1.5) * width, values, width, label=name)
ax.set_xticks(
    range(len(classes)),
    [
        f"{textwrap.fill(str(c), 16)}\n(n={n})"
        for c, n in zip(classes, counts, strict=True)
    ],
)
ax.set(ylabel="recall on the test set", ylim=(0, 1.05))
fig.suptitle("Recall per class (training counts below the names)")
ax.legend(ncols=4, loc="lower center", bbox_to_anchor=(0.5, 1.0), fontsize=8)
png = out_dir / "class_imbalance_recall.png"
fig.savefig(png, dpi=100)
plt.close(fig)
print(f"saved {png}")
