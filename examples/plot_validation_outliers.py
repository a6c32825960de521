"""
=====================================================
Dropping unreadable images and size outliers
=====================================================

Real image folders hold surprises: empty files, truncated downloads, files that
are not images at all, and a few scans of a very different size. The source
reports opened every file in a ``try`` block and dropped images whose height or
width lay more than three standard deviations from the mean. Here you learn how
:func:`~skmedimg.preprocessing.validate_images` reports what is wrong with which
file, how the samplers :class:`~skmedimg.preprocessing.ImageValidator` and
:class:`~skmedimg.preprocessing.SizeOutlierRejector` drop those images inside a
pipeline while it is fitted, and why nothing is dropped at predict time.

It runs offline on a small folder of synthetic phantoms written to a temporary
folder, with a few broken files and two images of unusual size. To use a real
``<class>/<image>`` folder, give it as the first argument or set the environment
variable ``SKMEDIMG_DATA`` (the project's shared data folder uses its brain MRI
test set at original resolution, which holds 194 different sizes). The plot is
saved as ``validation_size_outliers.png`` in the folder named by
``SKMEDIMG_EXAMPLES_OUT`` (default: the current directory).
"""

# %%
# A folder with problems
# ----------------------
# The synthetic folder has one sub-folder per class, the Kaggle layout that
# :func:`~skmedimg.datasets.load_image_folder` lists. Most images are between
# 180 and 260 pixels high and wide; one is a very wide strip, one a tiny
# thumbnail, and three files are broken: an empty file, a truncated JPEG and a
# text file named ``.png``.
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from skmedimg.datasets import PHANTOM_CLASSES, load_image_folder, make_phantoms

# (Hidden here: FAST, a quicker run when SKMEDIMG_EXAMPLES_FAST=1, and
# out_dir, the folder of the saved figures, SKMEDIMG_EXAMPLES_OUT.)
# sphinx_gallery_start_ignore
FAST = os.environ.get("SKMEDIMG_EXAMPLES_FAST", "0") not in ("", "0")
out_dir = Path(os.environ.get("SKMEDIMG_EXAMPLES_OUT", "."))
out_dir.mkdir(parents=True, exist_ok=True)
# sphinx_gallery_end_ignore
n_images = 40 if FAST else 200

# (Hidden here: folder, a data folder given on the command line or in
# SKMEDIMG_DATA, else None.)
# sphinx_gallery_start_ignore
folder = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("SKMEDIMG_DATA")
shared = Path(folder or "") / "brain_tumor_mri_testing_original" / "Testing"
if folder and shared.is_dir():
    folder = shared
# sphinx_gallery_end_ignore

synthetic = not folder
if synthetic:
    tmp = tempfile.TemporaryDirectory(prefix="skmedimg_example_")  # deleted at exit
    folder = Path(tmp.name)
    X, y = make_phantoms(n_images, n_classes=2, image_size=128, random_state=0)
    rng = np.random.default_rng(0)
    for i, (image, label) in enumerate(zip(X, y, strict=True)):
        height, width = rng.integers(180, 261, size=2)
        if i == 0:
            height, width = 200, 900  # a wide strip
        elif i == 1:
            height, width = 40, 40  # a thumbnail
        class_dir = folder / PHANTOM_CLASSES[label].replace(" ", "_")
        class_dir.mkdir(exist_ok=True)
        Image.fromarray(image).resize((int(width), int(height))).save(
            class_dir / f"scan_{i:03d}.jpg"
        )
    class_dir = folder / PHANTOM_CLASSES[0].replace(" ", "_")
    (class_dir / "empty.png").write_bytes(b"")
    (class_dir / "notes.png").write_text("not an image")
    jpeg = next(folder.rglob("scan_002.jpg")).read_bytes()
    (class_dir / "truncated.jpg").write_bytes(jpeg[: len(jpeg) // 3])

data = load_image_folder(folder)
files = data.filenames
labels = data.labels
if not synthetic and len(files) > n_images:  # a stratified random subset
    from sklearn.model_selection import train_test_split

    files, _, labels, _ = train_test_split(
        files, labels, train_size=n_images, stratify=labels, random_state=0
    )
print(f"{len(files)} files in {len(set(labels))} classes from {folder}")

# %%
# What is wrong, and where
# ------------------------
# :func:`~skmedimg.preprocessing.validate_images` reads every header and
# decodes every image (JPEGs at reduced scale), so truncated files are found
# too. It raises nothing for bad items: it returns a report.
from skmedimg.preprocessing import validate_images

report = validate_images(files)
print(f"{report.n_valid} usable, {report.n_invalid} not:")
for item, reason in report.invalid.items():
    print(f"  {Path(item).name}: {reason}")

# %%
# Size outliers, the three-sigma rule
# -----------------------------------
# :class:`~skmedimg.preprocessing.SizeOutlierRejector` reads only the headers
# of the images and drops those whose height or width is more than
# ``threshold`` standard deviations from the mean, the rule of the reports.
# ``method="mad"`` and ``method="iqr"`` are robust alternatives: a few huge
# outliers inflate the standard deviation and hide themselves.
from skmedimg.preprocessing import SizeOutlierRejector

valid_files = files[report.valid_indices]
for method in ("std", "mad", "iqr"):
    rejector = SizeOutlierRejector(threshold=3.0, method=method)
    kept, _ = rejector.fit_resample(valid_files)
    low, high = rejector.lower_bound_, rejector.upper_bound_
    print(
        f"{method}: keeps heights {low[0]:.0f}-{high[0]:.0f} and widths "
        f"{low[1]:.0f}-{high[1]:.0f}; drops {len(rejector.dropped_)} image(s)"
    )

rejector = SizeOutlierRejector(threshold=3.0)
rejector.fit_resample(valid_files)
for dropped in rejector.dropped_:
    print(f"  {Path(dropped['item']).name}: {dropped['reason']}")

# %%
# The sizes are plotted with the kept box: every point outside it is dropped.
import matplotlib.pyplot as plt
from matplotlib.patches import Rectangle

sizes = report.sizes[report.valid_indices]
outlier = np.zeros(len(sizes), dtype=bool)
outlier[[d["index"] for d in rejector.dropped_]] = True
fig, ax = plt.subplots(figsize=(6, 4.5), layout="constrained")
ax.scatter(sizes[~outlier, 1], sizes[~outlier, 0], s=12, label="kept")
ax.scatter(sizes[outlier, 1], sizes[outlier, 0], s=30, c="red", label="dropped")
(low_h, low_w), (high_h, high_w) = rejector.lower_bound_, rejector.upper_bound_
ax.add_patch(
    Rectangle((low_w, low_h), high_w - low_w, high_h - low_h, fill=False, ls="--", lw=1)
)
ax.set(xlabel="width (pixels)", ylabel="height (pixels)")
ax.set_title("Image sizes and the mean +/- 3 sd box")
ax.legend()
png = out_dir / "validation_size_outliers.png"
fig.savefig(png, dpi=100)
plt.close(fig)
print(f"saved {png}")

# %%
# The same steps in a pipeline
# ----------------------------
# Steps that drop images are *samplers* (``fit_resample``), which need
# imbalanced-learn's pipeline, re-exported by :mod:`skmedimg.pipeline`. Here a
# cheap classifier on intensity statistics ends the pipeline; a
# :class:`~skmedimg.neural.CNNClassifier` goes in the same place. Each sampler
# records what it dropped while fitting.
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from skmedimg.pipeline import make_pipeline
from skmedimg.preprocessing import ImageValidator, IntensityFeatures

pipe = make_pipeline(
    ImageValidator(),
    SizeOutlierRejector(threshold=3.0),
    IntensityFeatures(image_size=64),
    StandardScaler(),
    LogisticRegression(max_iter=1000),
)
pipe.fit(files, labels)
print("dropped while fitting:")
for step in ("imagevalidator", "sizeoutlierrejector"):
    print(f"  {step}: {[Path(d['item']).name for d in pipe[step].dropped_]}")

# %%
# At predict time the samplers are skipped: every image given to ``predict``
# gets a prediction, whatever its size, and an unreadable one is an error that
# names the file instead of a silent drop. Check new images first with
# :func:`~skmedimg.preprocessing.validate_images`.
from skmedimg.utils import ImageReadError

good = valid_files[:3]
print("predictions:", pipe.predict(good))
bad = [*good, *(report.invalid or ["missing.jpg"])]
try:
    pipe.predict(bad)
except ImageReadError as exc:
    print(f"predict refused: {exc}")
