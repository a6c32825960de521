"""
===============================================
Clustering scans by intensity with k-means
===============================================

Before training a classifier, the source reports looked at the intensity
statistics of their scans and grouped them with k-means, choosing the number of
clusters from the elbow of the inertia curve and from the silhouette score. Here
the same study is a few scikit-learn-style calls: you learn how to compute
intensity features with :class:`~skmedimg.preprocessing.IntensityFeatures`, score
a range of ``k`` with :func:`~skmedimg.preprocessing.score_n_clusters`, plot the
elbow and silhouette curves, and read the per-cluster intensity table of
:class:`~skmedimg.preprocessing.IntensityKMeans` fitted in a pipeline after
:class:`~skmedimg.preprocessing.ImageValidator`.

It runs offline on synthetic phantoms by default. To use real images, give a
folder of images (searched recursively, e.g. a Kaggle ``Training/`` folder) as
the first argument, or set the environment variable ``SKMEDIMG_DATA``. The plot
is saved as ``intensity_kmeans_elbow_silhouette.png`` in the folder named by
``SKMEDIMG_EXAMPLES_OUT`` (default: the current directory).
"""

# %%
# Load the images
# ---------------
# A real folder, when given, is searched recursively for image files and a
# random subset of at most ``n_images`` is used. ``SKMEDIMG_DATA`` may also name
# the project's shared data folder, whose brain tumour MRI training set is then
# used. Without either, :func:`~skmedimg.datasets.make_phantoms` generates
# MRI-like phantoms whose random gain and gamma give a spread of intensities.
import os
import sys
from pathlib import Path

import numpy as np

from skmedimg.datasets import make_phantoms
from skmedimg.utils import IMAGE_EXTENSIONS

# SKMEDIMG_EXAMPLES_FAST=1 (the test suite's fast mode) uses fewer images.
# (Hidden here: FAST, a quicker run when SKMEDIMG_EXAMPLES_FAST=1.)
# sphinx_gallery_start_ignore
FAST = os.environ.get("SKMEDIMG_EXAMPLES_FAST", "0") not in ("", "0")
# sphinx_gallery_end_ignore
n_images = 120 if FAST else 300
# (Hidden here: folder, a data folder given on the command line or in
# SKMEDIMG_DATA, else None.)
# sphinx_gallery_start_ignore
folder = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("SKMEDIMG_DATA")
if folder and (Path(folder) / "brain_tumor_mri" / "Training").is_dir():
    folder = Path(folder) / "brain_tumor_mri" / "Training"
# sphinx_gallery_end_ignore

if folder:
    paths = sorted(
        str(p) for p in Path(folder).rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS
    )
    rng = np.random.default_rng(0)
    X = list(rng.choice(paths, size=min(n_images, len(paths)), replace=False))
    print(f"{len(X)} images from {folder}")
else:
    X, _ = make_phantoms(n_images, image_size=64, random_state=0)
    print(f"{len(X)} synthetic phantoms of shape {X.shape[1:]}")

# %%
# Intensity features
# ------------------
# Each image is summarised by its mean and standard deviation of grey levels and
# a few percentiles (colour images are converted to gray first). ``size``
# downsamples large scans before the statistics, which is much faster and
# changes them little.
from skmedimg.preprocessing import IntensityFeatures

features = IntensityFeatures(image_size=128)
F = features.fit_transform(X)
print(" ".join(f"{name:>6}" for name in features.get_feature_names_out()))
for row in F[:3]:
    print(" ".join(f"{value:6.1f}" for value in row))

# %%
# Elbow and silhouette
# --------------------
# :func:`~skmedimg.preprocessing.score_n_clusters` computes the features once and
# fits one k-means per ``k``. The inertia always falls as ``k`` grows: look for
# the elbow where it stops falling fast. The silhouette score (between -1 and 1)
# is highest for well separated clusters.
from skmedimg.preprocessing import (
    IntensityKMeans,
    plot_elbow_silhouette,
    score_n_clusters,
)

template = IntensityKMeans(image_size=128, random_state=0)
scores = score_n_clusters(X, range(2, 9), estimator=template)
print("  k    inertia  silhouette")
for k, inertia, silhouette in zip(
    scores.k, scores.inertia, scores.silhouette, strict=True
):
    print(f"{k:3d} {inertia:10.1f} {silhouette:11.3f}")
print(f"highest silhouette at k = {scores.best_k}")

fig = plot_elbow_silhouette(scores)
# (Hidden here: out_dir, the folder of the saved figures, SKMEDIMG_EXAMPLES_OUT.)
# sphinx_gallery_start_ignore
out_dir = Path(os.environ.get("SKMEDIMG_EXAMPLES_OUT", "."))
out_dir.mkdir(parents=True, exist_ok=True)
# sphinx_gallery_end_ignore
png = out_dir / "intensity_kmeans_elbow_silhouette.png"
fig.savefig(png, dpi=100)
print(f"saved {png}")

# %%
# The clusters, in a pipeline
# ---------------------------
# In practice the clustering comes after a validation step that drops unreadable
# files. Samplers such as :class:`~skmedimg.preprocessing.ImageValidator` need
# imbalanced-learn's pipeline, re-exported by :mod:`skmedimg.pipeline`. The
# fitted clusterer reports, per cluster, the number of images and the mean and
# standard deviation of their mean intensities, in ``cluster_summary_``: a dict
# of arrays that prints as a table (``.to_frame()`` gives a pandas DataFrame).
from skmedimg.pipeline import make_pipeline
from skmedimg.preprocessing import ImageValidator

pipe = make_pipeline(
    ImageValidator(), template.set_params(n_clusters=scores.best_k)
).fit(X)
print(pipe[-1].cluster_summary_)

# %%
# New images get the cluster of the nearest centre; at predict time the
# validator is skipped, and an unreadable image would raise an error naming it.
print("clusters of the first five images:", pipe.predict(X[:5]))
