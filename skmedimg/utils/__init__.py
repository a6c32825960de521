"""Input validation, the image and volume readers and shared helpers."""

from ._io import (
    IMAGE_EXTENSIONS,
    ImageReadError,
    check_images,
    read_image_sizes,
    read_images,
)
from ._labels import check_labels
from ._verbose import is_interactive, resolve_verbose
from ._volume import NIFTI_EXTENSIONS, read_masks, read_volume

__all__ = [
    "IMAGE_EXTENSIONS",
    "ImageReadError",
    "NIFTI_EXTENSIONS",
    "check_images",
    "check_labels",
    "is_interactive",
    "read_image_sizes",
    "read_images",
    "read_masks",
    "read_volume",
    "resolve_verbose",
]
