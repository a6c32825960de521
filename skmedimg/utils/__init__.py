"""Input validation, the image and volume readers and shared helpers.

Besides the public names of ``__all__``, this module is where the other
subpackages find what they share (package-internal, not part of the public
API, may change without deprecation): ``check_size``, ``item_name``,
``overlapped``, ``read_chunked``, ``as_image_cache``, ``resolve_verbose``
(the rule of ``verbose="auto"``), ``warn_upscale``, the cache entry helpers
``HEADER_SIZE``, ``entry_crc_ok`` and ``read_entry``, the renamed-parameter rule
``DEPRECATED``, ``renamed_argument`` and ``renamed_attribute``, the
printable tables ``ColumnTable`` and ``format_table``, and
``reused_host_memory`` (CPU compute reuses freed host memory). No
subpackage imports another's private modules (``tests/test_layering.py``).
"""

from ._checks import check_size
from ._deprecation import DEPRECATED, renamed_argument, renamed_attribute
from ._host_memory import reused_host_memory
from ._image_cache import HEADER_SIZE, ImageCache, entry_crc_ok, read_entry
from ._io import (
    IMAGE_EXTENSIONS,
    ImageReadError,
    check_images,
    read_image_sizes,
    read_images,
)
from ._labels import check_labels
from ._io import _item_name as item_name
from ._io import _warn_upscale as warn_upscale
from ._stream import ImageChunk, iter_image_chunks, overlapped, read_chunked
from ._stream import _as_cache as as_image_cache
from ._tables import ColumnTable, format_table
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
]
