"""
=====================================================
CNN features, feature selection and an SVM
=====================================================

One source report used ResNet-50 as a feature extractor: pooled features of
pre-processed images went through a feature selection step into an SVM. Here
you learn that method as an ordinary scikit-learn pipeline:
:class:`~skmedimg.neural.CNNFeatureExtractor` (a transformer from images to
``(n_samples, n_features)``), :class:`~sklearn.feature_selection.VarianceThreshold`,
:class:`~sklearn.preprocessing.StandardScaler`,
:class:`~sklearn.feature_selection.SelectKBest` or
:class:`~sklearn.decomposition.PCA`, and :class:`~sklearn.svm.SVC`, tuned with
``GridSearchCV`` by the steps' usual parameter names, with a feature cache
(``memory=``) that runs the backbone over each image once for the whole
search.

It runs offline on synthetic phantoms with the real ImageNet weights of
EfficientNet-Lite0 when the ``weights`` extra is installed (a tiny random
network otherwise). To use a real ``<class>/<image>`` folder, give it as the
first argument or set the environment variable ``SKMEDIMG_DATA``. The scores
are plotted in ``features_svm_scores.png`` in the folder named by
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
from skmedimg.neural import CNNFeatureExtractor, shipped_weights_path

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
# The pipeline
# ------------
# The extractor's ``fit`` only builds the backbone; ``transform`` runs it. With
# ``memory`` each image's feature row is stored on disk, keyed by the image's
# content and the backbone, so every candidate and fold of the search below
# reuses it. Some pooled features are zero for every image (units that never
# fire on these images): :class:`~sklearn.feature_selection.VarianceThreshold`
# drops them. ``SelectKBest(f_classif)`` then keeps the ``k`` features whose
# class means differ most (an ANOVA F-test).
from sklearn.feature_selection import SelectKBest, VarianceThreshold, f_classif
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

# A temporary cache, deleted when Python exits; a fixed folder such as
# "~/.cache/skmedimg" would keep the features between runs.
cache_dir = tempfile.TemporaryDirectory(prefix="skmedimg_features_")
extractor = CNNFeatureExtractor(
    **backbone,
    image_size=image_size,
    memory=cache_dir.name,
    random_state=0,
)
model = make_pipeline(
    extractor,
    VarianceThreshold(),
    StandardScaler(),
    SelectKBest(f_classif),
    SVC(kernel="linear"),
)
print(f"{extractor.fit(X_train[:2]).n_features_out_} features per image")

# %%
# Tune the selection and the SVM
# -------------------------------
# The steps' parameters are reached by their usual names: ``selectkbest__k``
# and ``svc__C``. The first candidate fills the cache; the others read it.
import time

from sklearn.model_selection import GridSearchCV, StratifiedKFold

ks = [8, 32, 128] if FAST else [8, 32, 128, 512]
Cs = [0.01, 1.0] if FAST else [0.001, 0.01, 0.1, 1.0]
search = GridSearchCV(
    model,
    {"selectkbest__k": ks, "svc__C": Cs},
    cv=StratifiedKFold(3, shuffle=True, random_state=0),
)
start = time.perf_counter()
search.fit(X_train, y_train)
print(f"{3 * len(ks) * len(Cs)} fits in {time.perf_counter() - start:.1f} s")
print("best:", search.best_params_, f"CV accuracy {search.best_score_:.3f}")
print(f"test accuracy {search.score(X_test, y_test):.3f}")

# %%
# PCA instead of selection
# ------------------------
# ``PCA(n_components=0.95)`` keeps the components that explain 95% of the
# variance: a different way to shrink the features, same pipeline.
from sklearn.decomposition import PCA

pca_model = make_pipeline(
    extractor,
    VarianceThreshold(),
    StandardScaler(),
    PCA(n_components=0.95),
    SVC(kernel="rbf"),
).fit(X_train, y_train)
n_components = pca_model.named_steps["pca"].n_components_
print(
    f"PCA keeps {n_components} components; test accuracy "
    f"{pca_model.score(X_test, y_test):.3f}"
)

# %%
# The cross-validated accuracy of each ``k`` and ``C``:
import matplotlib.pyplot as plt

results = search.cv_results_
fig, ax = plt.subplots(figsize=(6, 3.5), layout="constrained")
for C in Cs:
    mask = np.array([p["svc__C"] == C for p in results["params"]])
    ax.plot(ks, results["mean_test_score"][mask], "o-", label=f"C={C:g}")
ax.set(xscale="log", xlabel="k (features kept)", ylabel="mean CV accuracy")
ax.set_xticks(ks, [str(k) for k in ks])
ax.set_title("SelectKBest + linear SVM on CNN features")
ax.legend()
png = out_dir / "features_svm_scores.png"
fig.savefig(png, dpi=100)
plt.close(fig)
print(f"saved {png}")
