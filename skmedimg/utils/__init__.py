"""Input validation, the image and volume readers and shared helpers."""

from ._image_cache import ImageCache
from ._io import (
    IMAGE_EXTENSIONS,
    ImageReadError,
    check_images,
    read_image_sizes,
    read_images,
)
from ._labels import check_labels
from ._stream import ImageChunk, iter_image_chunks
from ._verbose import is_interactive, resolve_verbose
from ._volume import NIFTI_EXTENSIONS, read_masks, read_volume

__all__ = [
    "IMAGE_EXTENSIONS",
    "ImageCache",
    "ImageChunk",
    "ImageReadError",
    "NIFTI_EXTENSIONS",
    "check_images",
    "check_labels",
    "is_interactive",
    "iter_image_chunks",
    "read_image_sizes",
    "read_images",
    "read_masks",
    "read_volume",
    "resolve_verbose",
]
