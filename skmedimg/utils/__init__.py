"""Input validation, the image reader and shared helpers."""

from ._io import (
    IMAGE_EXTENSIONS,
    ImageReadError,
    check_images,
    read_image_sizes,
    read_images,
)
from ._labels import check_labels

__all__ = [
    "IMAGE_EXTENSIONS",
    "ImageReadError",
    "check_images",
    "check_labels",
    "read_image_sizes",
    "read_images",
]
