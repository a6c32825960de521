"""
=====================================================
Tumour versus no tumour: sensitivity first
=====================================================

One source report simplified the four-class brain MRI task to tumour versus no
tumour; another wished for "a loss function that more heavily penalises false
negatives, since missing a condition is much worse than a false positive".
Here you learn how to relabel a multi-class set into a binary screening task,
how to read it with :func:`~skmedimg.metrics.sensitivity_specificity`, and how
``loss="false_negative"`` of :class:`~skmedimg.neural.CNNClassifier` trades
specificity for sensitivity, compared with the plain cross-entropy and with
moving the decision threshold of ``predict_proba``.

It runs offline on synthetic phantoms (class "no lesion" against the lesion
classes) with the real ImageNet weights of EfficientNet-Lite0 when the
``weights`` extra is installed (a tiny random network otherwise). To use a real
``<class>/<image>`` folder with a ``notumor`` (or ``no_tumor``) class, give it
as the first argument or set the environment variable ``SKMEDIMG_DATA``. The
confusion matrices are saved as ``tumour_vs_no_tumour.png`` in the folder named
by ``SKMEDIMG_EXAMPLES_OUT`` (default: the current directory).
"""

# %%
# Relabel four classes to two
# ---------------------------
# Labels are plain strings, so relabelling is one ``np.where``; the
# classifier then learns two classes.
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
    X, y4 = data.filenames, data.labels
    if len(X) > n_images:
        X, _, y4, _ = train_test_split(
            X, y4, train_size=n_images, stratify=y4, random_state=0
        )
    negative = np.isin(y4, ["notumor", "no_tumor", "no tumor", "normal"])
else:
    X, y4 = make_phantoms(n_images, image_size=image_size, random_state=0)
    negative = y4 == 0
    y4 = np.asarray(PHANTOM_CLASSES)[y4]
y = np.where(negative, "no tumour", "tumour")
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.3, stratify=y, random_state=0
)
print(f"{np.mean(y == 'tumour'):.0%} of the images show a tumour")

if shipped_weights_path("tf_efficientnet_lite0") is not None:
    backbone = {"model_name": "tf_efficientnet_lite0", "pretrained": True}
else:
    print("EfficientNet-Lite0 weights not installed: using a tiny random network")
    backbone = {"model_name": "test_efficientnet", "pretrained": False}

# %%
# Cross-entropy and the false-negative loss
# -----------------------------------------
# ``loss="false_negative"`` adds to the cross-entropy, for every tumour image,
# ``fn_weight * -log(1 - p(no tumour))``: probability given to "no tumour" for
# a diseased case costs extra. The routed parameters name the negative class
# and the weight of the penalty. The weight has to be large enough to show
# against the noise of a small test set: with 3 instead of 10, the two models
# here differed by a tumour or two, either way.
# A temporary cache, deleted when Python exits; a fixed folder such as
# "~/.cache/skmedimg" would keep the features between runs.
cache_dir = tempfile.TemporaryDirectory(prefix="skmedimg_features_")
cache = cache_dir.name
common = dict(
    **backbone,
    freeze="backbone",
    image_size=image_size,
    lr=1e-2,
    max_epochs=20,
    memory=cache,
    random_state=0,
)
plain = CNNClassifier(**common).fit(X_train, y_train)
screening = CNNClassifier(
    **common,
    loss="false_negative",
    criterion__negative_class="no tumour",
    criterion__fn_weight=10.0,
).fit(X_train, y_train)

# %%
# Sensitivity and specificity
# ---------------------------
# Sensitivity is the fraction of tumours found (the recall of "tumour"),
# specificity the fraction of healthy scans called healthy.
from skmedimg.metrics import sensitivity_specificity

predictions = {
    "cross-entropy": plain.predict(X_test),
    "false-negative loss": screening.predict(X_test),
}

# %%
# Moving the threshold is the other lever: call "tumour" whenever its
# probability exceeds 0.2 instead of 0.5. It needs no retraining, and is best
# chosen on validation data (here, for brevity, it is fixed).
proba = plain.predict_proba(X_test)[:, list(plain.classes_).index("tumour")]
predictions["cross-entropy, threshold 0.2"] = np.where(
    proba > 0.2, "tumour", "no tumour"
)

for name, y_pred in predictions.items():
    sensitivity, specificity = sensitivity_specificity(
        y_test, y_pred, pos_label="tumour"
    )
    missed = np.sum((y_test == "tumour") & (y_pred == "no tumour"))
    print(
        f"{name:>28}: sensitivity {sensitivity:.3f}, specificity "
        f"{specificity:.3f}, {missed} tumour(s) missed"
    )

# %%
# The confusion matrices side by side; the bottom-left cell counts the missed
# tumours.
import matplotlib.pyplot as plt

from skmedimg.metrics import plot_confusion_matrix

fig, axes = plt.subplots(1, len(predictions), figsize=(15, 4.2), layout="constrained")
for ax, (name, y_pred) in zip(axes, predictions.items(), strict=True):
    plot_confusion_matrix(
        y_test, y_pred, labels=["no tumour", "tumour"], ax=ax, title=name
    )
png = out_dir / "tumour_vs_no_tumour.png"
fig.savefig(png, dpi=90)
plt.close(fig)
print(f"saved {png}")
