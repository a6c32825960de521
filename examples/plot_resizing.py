"""
=====================================================
Resizing scans: stretch, pad or crop
=====================================================

A CNN takes images of one size, but scans come in many. The source reports
resized every image to 224 x 224, which stretches scans that are not square.
Here you learn the three ``resize_mode`` values of
:class:`~skmedimg.preprocessing.ImageResizer`: ``"stretch"`` (ignore the aspect
ratio), ``"pad"`` (keep it and fill with black) and ``"crop"`` (keep it and cut
the centre), see them side by side, and learn its colour rule (gray scans are
repeated to three channels for RGB backbones) and where normalisation happens.

It runs offline on synthetic phantoms cut to non-square shapes. To use real
images, give a folder of images (searched recursively) as the first argument or
set the environment variable ``SKMEDIMG_DATA`` (the project's shared data folder
uses its brain MRI test set at original resolution). The figure is saved as
``resizing_modes.png`` in the folder named by ``SKMEDIMG_EXAMPLES_OUT`` (default:
the current directory).
"""

# %%
# Images of different shapes
# --------------------------
# A list of arrays of different sizes (or of file paths, or of PIL images) is
# valid input for every image step of skmedimg.
import os
import sys
from pathlib import Path

import numpy as np

from skmedimg.datasets import make_phantoms
from skmedimg.utils import IMAGE_EXTENSIONS, read_image_sizes

# (Hidden here: FAST, a quicker run when SKMEDIMG_EXAMPLES_FAST=1, and
# out_dir, the folder of the saved figures, SKMEDIMG_EXAMPLES_OUT.)
# sphinx_gallery_start_ignore
FAST = os.environ.get("SKMEDIMG_EXAMPLES_FAST", "0") not in ("", "0")
out_dir = Path(os.environ.get("SKMEDIMG_EXAMPLES_OUT", "."))
out_dir.mkdir(parents=True, exist_ok=True)
# sphinx_gallery_end_ignore
size = 96 if FAST else 160

# (Hidden here: folder, a data folder given on the command line or in
# SKMEDIMG_DATA, else None.)
# sphinx_gallery_start_ignore
folder = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("SKMEDIMG_DATA")
shared = Path(folder or "") / "brain_tumor_mri_testing_original" / "Testing"
if folder and shared.is_dir():
    folder = shared
# sphinx_gallery_end_ignore

if folder:
    paths = sorted(
        str(p) for p in Path(folder).rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS
    )
    # Three images of the most different aspect ratios.
    sizes = read_image_sizes(paths[:300])
    ratio = sizes[:, 1] / sizes[:, 0]
    order = np.argsort(ratio)
    images = [paths[i] for i in (order[0], order[len(order) // 2], order[-1])]
else:
    X, _ = make_phantoms(3, n_classes=3, image_size=256, random_state=1)
    images = [X[0][:, 48:208], X[1], X[2][64:192, :]]  # tall, square, wide
for (height, width), image in zip(read_image_sizes(images), images, strict=True):
    name = Path(image).name if isinstance(image, str) else "array"
    print(f"{name}: height {height}, width {width}")

# %%
# Three modes side by side
# ------------------------
# Each ``resize_mode`` returns one ``uint8`` array of shape ``(n_samples,
# height, width, n_channels)`` of ``image_size``. ``"stretch"`` distorts the
# anatomy of non-square scans; ``"pad"`` keeps all of it at the cost of black
# borders; ``"crop"`` keeps the centre at full resolution and loses the edges.
import matplotlib.pyplot as plt

from skmedimg.preprocessing import ImageResizer
from skmedimg.utils import read_images

modes = ("stretch", "pad", "crop")
resizers = {
    mode: ImageResizer(image_size=size, resize_mode=mode, color="gray")
    for mode in modes
}
resized = {mode: resizer.fit_transform(images) for mode, resizer in resizers.items()}
print({mode: array.shape for mode, array in resized.items()})

fig, axes = plt.subplots(
    len(images), 1 + len(modes), figsize=(9, 2.4 * len(images)), layout="constrained"
)
for row, image in enumerate(images):
    original = read_images([image], color="gray")[0]
    axes[row, 0].imshow(original[..., 0], cmap="gray")
    axes[row, 0].set_title(f"original {original.shape[0]}x{original.shape[1]}")
    for col, mode in enumerate(modes, start=1):
        axes[row, col].imshow(resized[mode][row, ..., 0], cmap="gray")
        axes[row, col].set_title(f"{mode} {size}x{size}")
for ax in axes.ravel():
    ax.set_axis_off()
png = out_dir / "resizing_modes.png"
fig.savefig(png, dpi=80)
plt.close(fig)
print(f"saved {png}")

# %%
# Colour and intensity
# --------------------
# ``color="rgb"`` (the default) repeats gray scans to three channels, so that
# every ImageNet-pretrained backbone can read them; ``color="gray"`` converts
# colour to luma; ``color="keep"`` keeps what the images are. Every bit depth
# (16-bit PNG, float arrays) ends as ``uint8`` by the rule documented in
# :mod:`skmedimg.utils`.
rgb = ImageResizer(image_size=size).fit_transform(images)
print("rgb:", rgb.shape, rgb.dtype)
sixteen_bit = [(img.astype(np.uint16) * 257) for img in resized["pad"][..., 0]]
print(
    "16-bit input:",
    ImageResizer(image_size=32, color="keep").fit_transform(sixteen_bit).dtype,
)

# %%
# Normalisation is not a preprocessing step: the CNN estimators take these
# ``uint8`` arrays, move them to the device and normalise them there with the
# mean and standard deviation of the backbone (from timm's data config), so a
# pipeline never hard-codes ImageNet numbers. ``ImageResizer`` is the step to
# use in front of non-CNN models, and to decode a folder once: the CNN
# estimators resize by themselves (their ``image_size`` parameter, the same
# name), stretching.
