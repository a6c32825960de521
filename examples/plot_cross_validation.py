"""
=====================================================
Five-fold stratified cross-validation
=====================================================

One source report added what its original notebook lacked: 5-fold
cross-validation of the EfficientNet-B0 transfer learning model, and a
comparison of the Adam and SGD optimizers. A single train/test split can be
lucky or unlucky; cross-validation shows the spread. Here you learn how
scikit-learn's :func:`~sklearn.model_selection.cross_validate` runs a
:class:`~skmedimg.neural.CNNClassifier` on
:class:`~sklearn.model_selection.StratifiedKFold` folds of images, with several
scores at once, and how to compare two optimizers on the same folds.

It runs offline on synthetic phantoms with the real ImageNet weights of
EfficientNet-Lite0 when the ``weights`` extra is installed (a tiny random
network otherwise). To use a real ``<class>/<image>`` folder, give it as the
first argument or set the environment variable ``SKMEDIMG_DATA``. The per-fold
scores are plotted in ``cross_validation_folds.png`` in the folder named by
``SKMEDIMG_EXAMPLES_OUT`` (default: the current directory).
"""

# %%
# Data and backbone
# -----------------
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
n_images, image_size = (100, 64) if FAST else (400, 96)

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

if shipped_weights_path("tf_efficientnet_lite0") is not None:
    backbone = {"model_name": "tf_efficientnet_lite0", "pretrained": True}
else:
    print("EfficientNet-Lite0 weights not installed: using a tiny random network")
    backbone = {"model_name": "test_efficientnet", "pretrained": False}

# %%
# Cross-validate two optimizers
# -----------------------------
# The same splitter object with a fixed ``random_state`` gives both models the
# same five folds, each with the class proportions of the whole set. With a
# frozen backbone and ``memory``, the second model reuses the backbone features
# the first computed for each fold.
from sklearn.model_selection import StratifiedKFold, cross_validate

cv = StratifiedKFold(n_splits=5, shuffle=True, random_state=0)
scoring = ["accuracy", "balanced_accuracy", "f1_macro"]
# A temporary cache, deleted when Python exits; a fixed folder such as
# "~/.cache/skmedimg" would keep the features between runs.
cache_dir = tempfile.TemporaryDirectory(prefix="skmedimg_features_")
cache = cache_dir.name
models = {
    "adam": CNNClassifier(
        **backbone,
        freeze="backbone",
        optimizer="adam",
        lr=1e-2,
        image_size=image_size,
        max_epochs=30,
        memory=cache,
        random_state=0,
    ),
    "sgd": CNNClassifier(
        **backbone,
        freeze="backbone",
        optimizer="sgd",
        lr=1e-2,
        momentum=0.9,
        image_size=image_size,
        max_epochs=30,
        memory=cache,
        random_state=0,
    ),
}
results = {
    name: cross_validate(model, X, y, cv=cv, scoring=scoring, return_train_score=True)
    for name, model in models.items()
}

# %%
# ``cross_validate`` returns one array per score, one value per fold
# (``pandas.DataFrame(result)`` makes it a table).
for name, result in results.items():
    print(f"{name}:")
    for metric in scoring:
        test = result[f"test_{metric}"]
        print(
            f"  {metric:>17}: {test.mean():.3f} +/- {test.std():.3f}  "
            f"(folds: {', '.join(f'{s:.2f}' for s in test)})"
        )
    print(
        f"  train accuracy {result['train_accuracy'].mean():.3f}, "
        f"fit time {result['fit_time'].mean():.1f} s per fold"
    )

# %%
# The folds side by side: the spread between folds is often as large as the
# difference between the optimizers.
import matplotlib.pyplot as plt

fig, ax = plt.subplots(figsize=(6, 3.5), layout="constrained")
folds = np.arange(1, cv.get_n_splits() + 1)
for offset, (name, result) in zip((-0.2, 0.2), results.items(), strict=True):
    scores = result["test_accuracy"]
    ax.bar(folds + offset, scores, width=0.4, label=f"{name} ({scores.mean():.2f})")
ax.set(xlabel="fold", ylabel="test accuracy", ylim=(0, 1), xticks=folds)
ax.set_title("5-fold stratified cross-validation")
ax.legend(loc="lower right")
png = out_dir / "cross_validation_folds.png"
fig.savefig(png, dpi=100)
plt.close(fig)
print(f"saved {png}")

# %%
# When several images come from one patient, keep them in one fold with
# :class:`~sklearn.model_selection.StratifiedGroupKFold` and
# ``cross_validate(..., groups=patient_ids)``; otherwise near-duplicate slices
# leak between training and test folds.
