"""
=====================================================
An accuracy-weighted ensemble
=====================================================

One source report combined DenseNet-201, MobileNetV3, VGG-19 and ResNet-50 by
soft voting, each model's vote weighted by its accuracy. Here you learn how
:class:`~skmedimg.ensemble.ScoreWeightedVotingClassifier` does that with the
accuracy measured by cross-validation on the training data (never on the test
set), how its weights compare with scikit-learn's plain
:class:`~sklearn.ensemble.VotingClassifier`, and that its members can be any
classifiers with ``predict_proba``, including pipelines that start from images.

It runs offline on synthetic phantoms with the real ImageNet weights of
EfficientNet-Lite0 when the ``weights`` extra is installed (a tiny random
network otherwise): the members are two heads on the same frozen backbone, an
SVM on its features and a deliberately weak model on intensity statistics. To
use a real ``<class>/<image>`` folder, give it as the first argument or set the
environment variable ``SKMEDIMG_DATA``. The scores are plotted in
``weighted_ensemble_scores.png`` in the folder named by
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
from skmedimg.neural import CNNClassifier, CNNFeatureExtractor, shipped_weights_path

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

if shipped_weights_path("tf_efficientnet_lite0") is not None:
    backbone = {"model_name": "tf_efficientnet_lite0", "pretrained": True}
else:
    print("EfficientNet-Lite0 weights not installed: using a tiny random network")
    backbone = {"model_name": "test_efficientnet", "pretrained": False}

# %%
# The members
# -----------
# Every member takes the images themselves. The two CNN heads share one feature
# cache, the SVM has its own (``CNNFeatureExtractor`` caches per image), so the
# cross-validation of the ensemble runs the backbone little more than once per
# image. An SVM has no ``predict_proba``: calibrating it gives probabilities.
from sklearn.calibration import CalibratedClassifierCV
from sklearn.feature_selection import VarianceThreshold
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from skmedimg.preprocessing import IntensityFeatures

# A temporary cache, deleted when Python exits; a fixed folder such as
# "~/.cache/skmedimg" would keep the features between runs.
cache_dir = tempfile.TemporaryDirectory(prefix="skmedimg_features_")
cache = cache_dir.name
members = [
    (
        "linear_head",
        CNNClassifier(
            **backbone,
            freeze="backbone",
            image_size=image_size,
            lr=1e-2,
            max_epochs=20,
            memory=cache,
            random_state=0,
        ),
    ),
    (
        "hidden_head",
        CNNClassifier(
            **backbone,
            freeze="backbone",
            image_size=image_size,
            head=(128,),
            dropout=0.2,
            lr=1e-3,
            max_epochs=20,
            memory=cache,
            random_state=0,
        ),
    ),
    (
        "cnn_svm",
        make_pipeline(
            CNNFeatureExtractor(
                **backbone, image_size=image_size, memory=cache, random_state=0
            ),
            VarianceThreshold(),
            StandardScaler(),
            CalibratedClassifierCV(SVC(kernel="linear", C=0.1), ensemble=False),
        ),
    ),
    (
        "intensity",
        make_pipeline(
            IntensityFeatures(), StandardScaler(), LogisticRegression(max_iter=1000)
        ),
    ),
]

# %%
# Weighted and plain soft voting
# ------------------------------
# ``ScoreWeightedVotingClassifier`` cross-validates each member (``cv=3``
# stratified folds, the same for all), sets its weight to its mean accuracy
# divided by the sum, refits it on all the training data and averages the
# members' probabilities with those weights. ``VotingClassifier`` averages
# them with equal weights.
from sklearn.ensemble import VotingClassifier

from skmedimg.ensemble import ScoreWeightedVotingClassifier

weighted = ScoreWeightedVotingClassifier(members, cv=3).fit(X_train, y_train)
plain = VotingClassifier(members, voting="soft").fit(X_train, y_train)

print("member          CV accuracy  weight  test accuracy")
test_scores = {}
for (name, _), member, cv_score, weight in zip(
    members, weighted.estimators_, weighted.cv_scores_, weighted.weights_, strict=True
):
    test_scores[name] = member.score(X_test, y_test)
    print(f"{name:<14} {cv_score:12.3f} {weight:7.3f} {test_scores[name]:14.3f}")
test_scores["soft voting"] = plain.score(X_test, y_test)
test_scores["weighted voting"] = weighted.score(X_test, y_test)
print(f"plain soft voting:    test accuracy {test_scores['soft voting']:.3f}")
print(f"accuracy-weighted:    test accuracy {test_scores['weighted voting']:.3f}")

# %%
# With accuracies as weights the votes stay close to uniform (0.9 and 0.6 give
# 0.6 and 0.4), so a weak member still pulls the ensemble down; drop it with
# ``set_params(intensity="drop")``, or learn the combination with
# :class:`~sklearn.ensemble.StackingClassifier`. The weights, per-fold scores
# and fit times are in ``cv_results_``.
import matplotlib.pyplot as plt

fig, ax = plt.subplots(figsize=(7, 3.5), layout="constrained")
names = list(test_scores)
colors = ["tab:blue"] * len(members) + ["tab:orange", "tab:red"]
bars = ax.bar(names, [test_scores[n] for n in names], color=colors)
for bar, weight in zip(bars, weighted.weights_, strict=False):
    ax.annotate(
        f"w={weight:.2f}",
        (bar.get_x() + bar.get_width() / 2, 0.03),
        ha="center",
        color="w",
    )
ax.set(ylabel="test accuracy", ylim=(0, 1))
ax.set_title("Members and ensembles (w: weight in the weighted vote)")
ax.tick_params(axis="x", labelsize=8)
png = out_dir / "weighted_ensemble_scores.png"
fig.savefig(png, dpi=100)
plt.close(fig)
print(f"saved {png}")
