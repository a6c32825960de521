"""
===================================================================
Grid search over dropout, weight decay, momentum and learning rate
===================================================================

One source report tuned its EfficientNet with scikit-learn's ``GridSearchCV``
over ``dropout``, ``weight_decay``, ``momentum`` and ``lr``, and found
``dropout=0.0, weight_decay=0.0, momentum=0.95, lr=1e-2``. Those names are the
constructor parameters of :class:`~skmedimg.neural.CNNClassifier`, so the
report's grid works as written. Here you learn how to run it, why a frozen
backbone with ``memory=`` makes the 54 candidates cheap (the backbone's
features of each fold are computed once and shared by every candidate), and
how to read ``cv_results_``.

It runs offline on synthetic phantoms with the real ImageNet weights of
EfficientNet-Lite0 when the ``weights`` extra is installed (a tiny random
network otherwise); the fast mode used by the test suite searches a 2 x 2 grid.
To use a real ``<class>/<image>`` folder, give it as the first argument or set
the environment variable ``SKMEDIMG_DATA``. The scores are plotted in
``grid_search_scores.png`` in the folder named by ``SKMEDIMG_EXAMPLES_OUT``
(default: the current directory).
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
n_images, image_size = (100, 64) if FAST else (240, 64)

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
# The report's grid
# -----------------
# ``momentum`` is SGD's momentum, so the optimizer is ``"sgd"`` (for Adam it
# would be the first-moment decay ``beta1``). With ``dropout > 0`` a dropout
# layer sits before the head's linear layer.
param_grid = {
    "dropout": [0.0, 0.1, 0.2],
    "weight_decay": [0.0, 0.001, 0.01],
    "momentum": [0.9, 0.95],
    "lr": [1e-4, 1e-3, 1e-2],
}
if FAST:
    param_grid = {"momentum": [0.9, 0.95], "lr": [1e-3, 1e-2]}
n_candidates = int(np.prod([len(v) for v in param_grid.values()]))
print(f"{n_candidates} candidates")

# %%
# Search
# ------
# ``freeze="backbone"`` with no augmentation trains only the head on the
# backbone's features, and ``memory`` (a folder, or a ``joblib.Memory``) keeps
# those features on disk, keyed by the images and the backbone: each training
# fold is run through the backbone once for the whole search. The search itself
# is plain scikit-learn.
import time

from sklearn.model_selection import GridSearchCV, StratifiedKFold

# A temporary cache, deleted when Python exits; a fixed folder such as
# "~/.cache/skmedimg" would keep the features between runs.
cache_dir = tempfile.TemporaryDirectory(prefix="skmedimg_features_")
cache = cache_dir.name
clf = CNNClassifier(
    **backbone,
    freeze="backbone",
    optimizer="sgd",
    image_size=image_size,
    max_epochs=15,
    memory=cache,
    random_state=0,
)
search = GridSearchCV(
    clf, param_grid, cv=StratifiedKFold(3, shuffle=True, random_state=0)
)
start = time.perf_counter()
search.fit(X_train, y_train)
print(f"{3 * n_candidates} fits in {time.perf_counter() - start:.1f} s")
print("best parameters:", search.best_params_)
print(f"best cross-validated accuracy {search.best_score_:.3f}")
print(f"test accuracy of the refitted best model {search.score(X_test, y_test):.3f}")

# %%
# ``cv_results_`` holds one row per candidate, as a dict of arrays
# (``pandas.DataFrame(search.cv_results_)`` makes it a table).
results = search.cv_results_
print("rank  mean   std   parameters")
for i in np.argsort(results["rank_test_score"])[:5]:
    print(
        f"{results['rank_test_score'][i]:4d}  {results['mean_test_score'][i]:.3f}"
        f"  {results['std_test_score'][i]:.3f}  {results['params'][i]}"
    )

# %%
# The learning rate and the momentum matter most for SGD on a linear head: the
# plot shows the best mean score of each pair over the other parameters.
import matplotlib.pyplot as plt

lrs, momenta = param_grid["lr"], param_grid["momentum"]
scores = np.full((len(momenta), len(lrs)), np.nan)
for params, score in zip(results["params"], results["mean_test_score"], strict=True):
    i, j = momenta.index(params["momentum"]), lrs.index(params["lr"])
    scores[i, j] = np.fmax(scores[i, j], score)
fig, ax = plt.subplots(figsize=(5, 3.5), layout="constrained")
image = ax.imshow(scores, cmap="viridis", vmin=0, vmax=1)
ax.set_xticks(range(len(lrs)), [f"{lr:g}" for lr in lrs])
ax.set_yticks(range(len(momenta)), [f"{m:g}" for m in momenta])
ax.set(xlabel="lr", ylabel="momentum", title="Best mean CV accuracy")
for (i, j), score in np.ndenumerate(scores):
    ax.text(j, i, f"{score:.2f}", ha="center", va="center", color="w")
fig.colorbar(image, ax=ax)
png = out_dir / "grid_search_scores.png"
fig.savefig(png, dpi=100)
plt.close(fig)
print(f"saved {png}")

# %%
# To search the fine-tuned network instead (``freeze="none"``) the same code
# works, but every candidate then trains the whole backbone: use a GPU, a
# smaller grid, or :class:`~sklearn.model_selection.HalvingGridSearchCV`.
