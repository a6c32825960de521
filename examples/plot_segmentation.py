"""
=====================================================
Segmenting lesions with a U-Net, scored by Dice
=====================================================

The brain tumour report trained MONAI networks to outline tumours voxel by
voxel and scored them with the Dice coefficient. Here you learn how
:class:`~skmedimg.segmentation.CNNSegmenter` does that as a scikit-learn
estimator: ``fit`` on images and integer label masks, ``predict`` masks of the
input's size (sliding-window inference past the training patch), ``score``
the mean Dice, :func:`~skmedimg.segmentation.segmentation_report` the Dice and
Hausdorff distance per class, and
:func:`~skmedimg.segmentation.plot_segmentation` the ground truth and the
prediction over the image.

It runs offline on synthetic phantoms from
:func:`~skmedimg.datasets.make_segmentation_phantoms`. To use the DRIVE retinal
vessel images instead, give the folder holding ``images/``, ``1st_manual/``
and ``mask/`` as the first argument, or set ``SKMEDIMG_DATA`` to a folder with
``drive_training/``. The figure is saved as ``segmentation_overlay.png`` in
the folder named by ``SKMEDIMG_EXAMPLES_OUT`` (default: the current
directory).
"""

# %%
# Images and label masks
# ----------------------
# Images are channels last, ``(n_samples, height, width, n_channels)``; masks
# hold one integer label per pixel, ``(n_samples, height, width)``. DRIVE's
# vessel masks are stored as 0/255: ``read_masks(..., binarize=True)`` maps
# them to 0/1. We keep the green channel, where the vessels stand out.
import os
import sys
from pathlib import Path

import numpy as np

from skmedimg.datasets import load_drive, make_segmentation_phantoms
from skmedimg.utils import read_images, read_masks

# (Hidden here: FAST, a quicker run when SKMEDIMG_EXAMPLES_FAST=1, and
# out_dir, the folder of the saved figures, SKMEDIMG_EXAMPLES_OUT.)
# sphinx_gallery_start_ignore
FAST = os.environ.get("SKMEDIMG_EXAMPLES_FAST", "0") not in ("", "0")
out_dir = Path(os.environ.get("SKMEDIMG_EXAMPLES_OUT", "."))
out_dir.mkdir(parents=True, exist_ok=True)
# sphinx_gallery_end_ignore

# (Hidden here: folder, a data folder given on the command line or in
# SKMEDIMG_DATA, else None.)
# sphinx_gallery_start_ignore
folder = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("SKMEDIMG_DATA")
if folder and (Path(folder) / "drive_training").is_dir():
    folder = Path(folder) / "drive_training"
if folder and (Path(folder) / "1st_manual").is_dir():
    drive = load_drive(folder)
    X = read_images(list(drive.images), color="rgb")[..., 1:2]  # green channel
    y = read_masks(list(drive.masks), binarize=True)
    fov = read_masks(list(drive.fov_masks), binarize=True)
    names = {1: "vessel"}
    roi_size, max_epochs = (96, 96), (20 if FAST else 150)
    print(f"DRIVE: {len(X)} images of {X.shape[1]} x {X.shape[2]} pixels")
# sphinx_gallery_end_ignore
else:
    X, y = make_segmentation_phantoms(
        24 if FAST else 60, image_size=64, n_classes=3, random_state=0
    )
    fov = None
    names = {1: "edema", 2: "core"}
    roi_size, max_epochs = None, (5 if FAST else 40)
    print(f"synthetic phantoms: images {X.shape}, labels {np.unique(y).tolist()}")
n_train = len(X) * 3 // 4
X_train, X_test, y_train, y_test = X[:n_train], X[n_train:], y[:n_train], y[n_train:]

# %%
# A small U-Net
# -------------
# ``network="unet"`` is MONAI's U-Net; its constructor arguments are routed
# with ``network__``. The loss is Dice + cross-entropy, the learning rate
# follows the report's polynomial schedule, and the training patches are
# flipped and intensity-jittered as in the report (``augment="report"``).
from skmedimg.segmentation import CNNSegmenter, segmentation_report

seg = CNNSegmenter(
    "unet",
    roi_size=roi_size,
    network__channels=(8, 16, 32, 64),
    network__strides=(2, 2, 2),
    network__num_res_units=1,
    loss="dice_ce",
    max_epochs=max_epochs,
    batch_size=4,
    augment="report",
    random_state=0,
)
seg.fit(X_train, y_train)
print(f"mean Dice on the test images: {seg.score(X_test, y_test):.3f}")

# %%
# The report: Dice and Hausdorff distance per class
# -------------------------------------------------
# DRIVE's published figures count only the pixels inside the field of view,
# so the pixels outside it are set to background in both masks first.
y_pred = seg.predict(X_test)
if fov is not None:
    inside = fov[n_train:].astype(bool)
    y_pred = np.where(inside, y_pred, 0)
    y_test = np.where(inside, y_test, 0)
report = segmentation_report(y_test, y_pred)
for name, value in report.items():
    print(name, value)

# %%
# Ground truth and prediction over the image
# ------------------------------------------
# Solid contours are the ground truth, dashed ones the prediction.
import matplotlib.pyplot as plt  # noqa: E402

from skmedimg.segmentation import plot_segmentation  # noqa: E402

fig, axes = plt.subplots(1, 2, figsize=(10, 5), layout="constrained")
for ax, i in zip(axes, range(2), strict=False):
    plot_segmentation(X_test[i], y_test[i], pred=y_pred[i], names=names, ax=ax)
    ax.set_title(f"test image {i}")
fig.savefig(out_dir / "segmentation_overlay.png", dpi=100)
plt.close(fig)
