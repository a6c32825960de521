"""The one image reader of skmedimg.

Every part of the library that needs pixels calls :func:`read_images` (or
:func:`read_image_sizes` when only the size is needed), and every part that
accepts images validates them with :func:`check_images`. This module is the
only place that decodes files.

Conversion rule
---------------
Every image becomes ``uint8`` with a channel axis, ``(height, width, 1)`` for
gray and ``(height, width, 3)`` for colour, as follows.

* Bit depth. 8-bit data is kept as is. Integer data deeper than 8 bits (16-bit
  PNG/TIFF, Pillow modes ``I;16`` and ``I``, ``uint16`` arrays) and floating
  point data (mode ``F``, float arrays) are rescaled linearly per image from
  their ``[min, max]`` to ``[0, 255]``, except float arrays whose values all lie
  in ``[0, 1]``, which are multiplied by 255. A constant image becomes 0.
  Boolean data maps to 0 and 255. Float data holding NaN or infinite values
  (a float TIFF file, a PIL image or an array) is refused, naming the item.
* Channels. ``1``, ``L``, ``LA`` and ``I``/``F`` modes, 2-D arrays and arrays
  with one or two channels are gray; ``RGB``, ``RGBA``, ``RGBX``, ``P``,
  ``CMYK``, ``YCbCr`` and the like, and arrays with three or four channels are
  colour. Alpha is dropped (not composited); palette images are expanded.
* Colour rule (the ``color`` argument). ``"keep"`` keeps gray as gray and colour
  as colour, but when images are stacked into one array and any of them is
  colour, the gray ones are repeated to three channels. ``"rgb"`` repeats gray
  to three channels. ``"gray"`` converts colour with the ITU-R 601-2 luma
  transform ``L = 0.299 R + 0.587 G + 0.114 B`` (Pillow's rule).
* DICOM (with the ``dicom`` extra, ``pydicom``): the rescale slope and intercept
  are applied, then the first window centre/width when present (otherwise the
  per-image ``[min, max]``) maps to ``[0, 255]``; ``MONOCHROME1`` is inverted so
  that higher values are brighter.

Multi-frame files (multi-frame DICOM, multi-page TIFF, animated GIF, PNG and
WebP, and PIL images opened from them) are refused by :func:`read_images`
with an error naming the file and its number of frames, rather than read as
their first frame: skmedimg reads one 2-D image per file.

EXIF orientation (set by cameras and phones, in JPEG, TIFF, PNG and WebP files)
is applied, so that an image comes out the way a viewer shows it; its size, in
:func:`read_image_sizes` too, is that of the upright image.

Large JPEGs are decoded at a reduced scale (Pillow's ``draft``) when a smaller
target ``size`` is given; images with more than ``max_pixels`` pixels are
rejected before their pixel data is decoded (decompression bomb guard).
"""

from __future__ import annotations

import os
import threading
import warnings
from numbers import Integral

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ._deprecation import DEPRECATED, renamed_argument

__all__ = [
    "IMAGE_EXTENSIONS",
    "ImageReadError",
    "check_images",
    "read_image_sizes",
    "read_images",
]

#: File extensions recognised as images (lower case, with the dot).
IMAGE_EXTENSIONS = (
    ".jpg",
    ".jpeg",
    ".png",
    ".bmp",
    ".tif",
    ".tiff",
    ".gif",
    ".webp",
    ".dcm",
    ".dicom",
)

#: Default decompression bomb guard, in pixels (Pillow's own error threshold).
DEFAULT_MAX_PIXELS = 2 * 89_478_485

_RESAMPLE = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
    "box": Image.Resampling.BOX,
}
_RESIZE_MODES = ("stretch", "pad", "crop")
_COLORS = ("keep", "rgb", "gray")
_GRAY_MODES = {"1", "L", "LA", "La", "I", "F", "I;16", "I;16L", "I;16B", "I;16N"}
_DICOM_EXTENSIONS = (".dcm", ".dicom")


class ImageReadError(ValueError):
    """Some images could not be read or failed validation.

    The message names every bad item (its path, or its index for in-memory
    images) and the reason.

    Attributes
    ----------
    failures : list of tuple (int, str, str)
        ``(index, item, reason)`` for each bad item, in input order.
    images : list or None
        The partial result of the call that failed: one entry per input item,
        the decoded image (or size) for good items and ``None`` for bad ones.
        ``None`` when the error came from validation alone.
    n_items : int
        Number of items in the call.
    """

    def __init__(self, failures, *, images=None, n_items=None):
        self.failures = list(failures)
        self.images = images
        self.n_items = len(images) if n_items is None and images else n_items
        super().__init__(self._message())

    def _message(self):
        if self.failures and all(index < 0 for index, _, _ in self.failures):
            # a problem with the input as a whole, not with some of its items
            return "image input could not be used: " + "; ".join(
                reason for _, _, reason in self.failures
            )
        total = f" of {self.n_items}" if self.n_items else ""
        lines = [f"{len(self.failures)}{total} image(s) could not be used:"]
        lines += [f"  {item}: {reason}" for _, item, reason in self.failures]
        return "\n".join(lines)

    def __reduce__(self):
        return (_rebuild_error, (self.failures, self.images, self.n_items))


def _rebuild_error(failures, images, n_items):
    return ImageReadError(failures, images=images, n_items=n_items)


class _ItemError(Exception):
    """Internal: the reason one item failed."""


# --------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------


def _is_path(item):
    return isinstance(item, str | os.PathLike)


def _item_name(item, index):
    if _is_path(item):
        return os.fspath(item)
    kind = "PIL image" if isinstance(item, Image.Image) else type(item).__name__
    return f"item {index} ({kind})"


def _check_path(path):
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return "file not found"
    except OSError as exc:
        return f"cannot access file ({exc.strerror or exc})"
    if os.path.isdir(path):
        return "is a directory, not an image file"
    if st.st_size == 0:
        return "empty file (0 bytes)"
    return None


def _check_array_image(arr):
    """Return a reason if a single in-memory image is unusable, else None."""
    if arr.dtype.kind not in "biuf":
        return f"unsupported dtype {arr.dtype}"
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[-1] not in (1, 2, 3, 4)):
        return (
            "expected an image of shape (height, width) or (height, width, "
            f"n_channels) with 1-4 channels, got shape {arr.shape}"
        )
    if arr.size == 0:
        return f"empty image (shape {arr.shape})"
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        return "contains NaN or infinite values"
    return None


def _validate(X, *, check_files=True):
    """Normalise ``X`` and list item-level problems without raising for them.

    Returns ``(X, failures)`` where ``X`` is either a numeric ndarray of shape
    ``(n, H, W)`` or ``(n, H, W, C)`` or a 1-D object array of items, and
    ``failures`` a list of ``(index, name, reason)``. Problems with ``X`` as a
    whole (wrong type, wrong ndim, empty) raise at once.
    """
    if _is_path(X) or isinstance(X, Image.Image):
        raise ImageReadError(
            [
                (
                    -1,
                    _item_name(X, 0),
                    "a single image was given where a sequence of "
                    "images (sample axis first) was expected; wrap it in a list",
                )
            ],
            n_items=1,
        )
    if hasattr(X, "to_numpy") and not isinstance(X, np.ndarray):
        # A pandas Series, or a one-column DataFrame (ColumnTransformer gives
        # one for a list of one column): its column.
        if getattr(X, "ndim", 1) == 2 and X.shape[1] == 1:
            X = X.iloc[:, 0] if hasattr(X, "iloc") else X[X.columns[0]]
        elif getattr(X, "ndim", 1) == 2 and hasattr(X, "columns"):
            names = ", ".join(repr(c) for c in list(X.columns)[:5])
            raise ImageReadError(
                [
                    (
                        -1,
                        "X",
                        f"a table with {X.shape[1]} columns ({names}) was given; "
                        "pass the one column that holds the images",
                    )
                ],
            )
        X = X.to_numpy()
    elif hasattr(X, "tocsr") or hasattr(X, "toarray"):
        raise ImageReadError(
            [
                (
                    -1,
                    "X",
                    "a sparse matrix is not image input; pass a dense array "
                    "of shape (n_samples, height, width[, n_channels])",
                )
            ],
        )
    elif hasattr(X, "__array__") and not isinstance(X, list | tuple | np.ndarray):
        X = np.asarray(X)
    if isinstance(X, np.ndarray) and X.dtype.kind in "biuf":
        if X.ndim not in (3, 4) or (X.ndim == 4 and X.shape[-1] not in (1, 2, 3, 4)):
            raise ImageReadError(
                [
                    (
                        -1,
                        "X",
                        "expected an image array of shape (n_samples, height, "
                        "width) or (n_samples, height, width, n_channels) with 1-4 "
                        f"channels, got shape {X.shape}",
                    )
                ],
                n_items=X.shape[0] if X.ndim else 0,
            )
        if X.ndim == 3 and X.shape[-1] in (3, 4) and X.shape[1] >= 8:
            # n gray images 3 or 4 pixels wide, or one colour image: the latter.
            raise ImageReadError(
                [
                    (
                        -1,
                        "X",
                        f"an array of shape {X.shape} looks like a single colour "
                        "image (height, width, channels), not a stack of images "
                        f"{X.shape[-1]} pixels wide; pass a batch with the "
                        "sample axis first (X[None]) or a list of images",
                    )
                ],
                n_items=1,
            )
        if X.shape[0] == 0 or X.size == 0:
            raise ImageReadError(
                [(-1, "X", f"empty input (shape {X.shape})")], n_items=0
            )
        failures = []
        if X.dtype.kind == "f":
            bad = ~np.isfinite(X.reshape(X.shape[0], -1)).all(axis=1)
            failures = [
                (int(i), _item_name(X[i], int(i)), "contains NaN or infinite values")
                for i in np.flatnonzero(bad)
            ]
        return X, failures

    if isinstance(X, np.ndarray):
        if X.ndim != 1:
            raise ImageReadError(
                [
                    (
                        -1,
                        "X",
                        f"expected a 1-D sequence of images, got an array of "
                        f"dtype {X.dtype} and shape {X.shape}",
                    )
                ],
                n_items=len(X) if X.ndim else 0,
            )
        items = list(X)
    else:
        try:
            items = list(X)
        except TypeError:
            raise ImageReadError(
                [(-1, "X", f"expected a sequence of images, got {type(X).__name__}")]
            ) from None
    if not items:
        raise ImageReadError([(-1, "X", "empty input (no images)")], n_items=0)

    out = np.empty(len(items), dtype=object)
    failures = []
    for i, item in enumerate(items):
        reason = None
        if isinstance(item, bytes):  # np.bytes_ too
            item = os.fsdecode(item)
        elif isinstance(item, np.str_):
            item = str(item)
        if _is_path(item):
            item = os.fspath(item)
            reason = _check_path(item) if check_files else None
        elif isinstance(item, Image.Image):
            if item.width == 0 or item.height == 0:
                reason = f"empty image (size {item.size})"
        elif isinstance(item, np.ndarray):
            reason = _check_array_image(item)
        else:
            reason = (
                f"unsupported item type {type(item).__name__}; expected a file "
                "path, a PIL image or a numpy array"
            )
        out[i] = item
        if reason is not None:
            failures.append((i, _item_name(item, i), reason))
    return out, failures


def check_images(X, *, check_files=True):
    """Validate image input and return it in a normalised form.

    This is the one input-validation helper of skmedimg, the image analogue of
    scikit-learn's ``check_array``: it does not decode files.

    Parameters
    ----------
    X : array-like
        One of

        * an array of shape ``(n_samples, height, width)`` or
          ``(n_samples, height, width, n_channels)`` (uint8, uint16, int,
          float or bool; 1 to 4 channels);
        * a sequence (list, tuple, 1-D array, pandas Series) of file paths
          (``str`` or ``os.PathLike``), PIL images and/or 2-D or 3-D arrays,
          which may differ in size.
    check_files : bool, default=True
        Whether to check that each path exists, is a file and is not empty.

    Returns
    -------
    X_checked : ndarray
        The numeric image array unchanged (no copy), or a 1-D object array of
        items with paths converted to ``str``.

    Raises
    ------
    ImageReadError
        If ``X`` as a whole is unusable (wrong type, wrong ``ndim``, empty), or
        if any item is (missing path, directory, empty file, NaN or infinite
        values, wrong shape, unsupported type). The message names every bad
        item and why.

    Examples
    --------
    >>> import numpy as np
    >>> from skmedimg.utils import check_images
    >>> check_images(np.zeros((2, 8, 8), dtype=np.uint8)).shape
    (2, 8, 8)
    >>> check_images([np.zeros((8, 8)), np.ones((4, 6, 3))]).shape
    (2,)
    """
    X, failures = _validate(X, check_files=check_files)
    if failures:
        raise ImageReadError(failures, n_items=len(X))
    return X


# --------------------------------------------------------------------------
# Pixel conversion
# --------------------------------------------------------------------------


def _to_uint8(arr):
    """Apply the bit-depth rule to one image array (any shape)."""
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == bool:
        return arr.astype(np.uint8) * 255
    if arr.dtype.kind == "f":
        lo, hi = float(arr.min()), float(arr.max())
        if lo >= 0.0 and hi <= 1.0:
            return np.rint(arr * 255.0).astype(np.uint8)
    else:
        lo, hi = float(arr.min()), float(arr.max())
    if hi <= lo:
        return np.zeros(arr.shape, dtype=np.uint8)
    arr = arr.astype(np.float64)
    if not np.isfinite(hi - lo):  # a range wider than float64 holds: halve
        arr, lo, hi = arr / 2.0, lo / 2.0, hi / 2.0
    scaled = (arr - lo) * (255.0 / (hi - lo))
    return np.rint(scaled).astype(np.uint8)


def _array_to_pil(arr):
    """One (H, W) or (H, W, C) array to a PIL image in mode L or RGB."""
    arr = _to_uint8(np.asarray(arr))
    if arr.ndim == 3:
        n_channels = arr.shape[-1]
        if n_channels in (1, 2):
            arr = arr[..., 0]
        else:
            arr = arr[..., :3]
    return Image.fromarray(np.ascontiguousarray(arr), mode=None)


def _pil_to_l_or_rgb(img):
    """Apply the bit-depth and channel rules to a decoded PIL image."""
    mode = img.mode
    if mode in ("L", "RGB"):
        return img
    if mode in ("1", "LA", "La"):
        return img.convert("L")
    if mode in _GRAY_MODES or mode.startswith("I;"):
        arr = np.asarray(img)
        if arr.dtype.kind == "f" and not np.isfinite(arr).all():
            # as for in-memory arrays: NaN would make the min-max rule black
            n_bad = int(np.count_nonzero(~np.isfinite(arr)))
            raise _ItemError(f"contains NaN or infinite values ({n_bad} pixels)")
        return Image.fromarray(_to_uint8(arr))
    if mode == "P":
        return img.convert("RGBA").convert("RGB")
    return img.convert("RGB")


def _apply_color(img, color):
    if color == "rgb" and img.mode == "L":
        return img.convert("RGB")
    if color == "gray" and img.mode == "RGB":
        return img.convert("L")
    return img


def _resize(img, size, resize_mode, resample):
    height, width = size
    if img.size == (width, height):
        return img
    if resize_mode == "stretch":
        return img.resize((width, height), resample)
    if resize_mode == "crop":
        return ImageOps.fit(img, (width, height), method=resample)
    return ImageOps.pad(img, (width, height), method=resample, color=0)


def _pydicom():
    try:
        import pydicom
    except ImportError:
        raise _ItemError(
            "reading DICOM needs pydicom: pip install 'skmedimg[dicom]'"
        ) from None
    return pydicom


def _read_dicom(path, max_pixels=None):
    pydicom = _pydicom()
    try:
        # Reading keeps the pixel data as stored (compressed, at most the
        # file's size); it is decoded by ``pixel_array``, after frames and
        # size are checked (a small RLE file can claim gigapixels).
        ds = pydicom.dcmread(path)
        n_frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
        rows, columns = int(ds.Rows), int(ds.Columns)
    except Exception as exc:  # pydicom raises many types for bad files
        raise _ItemError(f"unreadable DICOM file ({exc})") from None
    if n_frames > 1:
        raise _ItemError(_multi_frame_reason(n_frames))
    _check_pixels(columns, rows, max_pixels)
    try:
        arr = ds.pixel_array
    except Exception as exc:
        raise _ItemError(f"unreadable DICOM file ({exc})") from None
    photometric = str(getattr(ds, "PhotometricInterpretation", "MONOCHROME2"))
    if arr.ndim == 3 and photometric not in ("MONOCHROME1", "MONOCHROME2"):
        return Image.fromarray(_to_uint8(arr[..., :3]))
    arr = arr.astype(np.float64)
    arr = arr * float(getattr(ds, "RescaleSlope", 1.0) or 1.0)
    arr = arr + float(getattr(ds, "RescaleIntercept", 0.0) or 0.0)
    center, width = getattr(ds, "WindowCenter", None), getattr(ds, "WindowWidth", None)
    if center is not None and width is not None:
        center = float(center[0] if _is_multi(center) else center)
        width = max(float(width[0] if _is_multi(width) else width), 1.0)
        lo, hi = center - width / 2.0, center + width / 2.0
        out = np.rint(np.clip((arr - lo) / (hi - lo), 0.0, 1.0) * 255.0)
        out = out.astype(np.uint8)
    else:
        out = _to_uint8(arr)
    if photometric == "MONOCHROME1":
        out = 255 - out
    return Image.fromarray(out)


def _multi_frame_reason(n_frames):
    return (
        f"multi-frame image ({n_frames} frames) is not supported: skmedimg reads "
        "one 2-D image per file; save the frame to use as a file of its own"
    )


def _check_frames(img):
    """Refuse a multi-page TIFF, an animated GIF/PNG/WebP (the rule of DICOM)."""
    n_frames = getattr(img, "n_frames", 1)
    if n_frames > 1:
        raise _ItemError(_multi_frame_reason(n_frames))


def _is_multi(value):
    return not isinstance(value, str) and hasattr(value, "__len__")


def _has_dicom_extension(path):
    return path.lower().endswith(_DICOM_EXTENSIONS)


def _has_dicom_magic(path):
    """DICOM files without the extension carry b"DICM" after a 128-byte preamble.

    Only asked when Pillow cannot identify a file, so ordinary images are
    opened once.
    """
    try:
        with open(path, "rb") as fh:
            fh.seek(128)
            return fh.read(4) == b"DICM"
    except OSError:
        return False


#: EXIF tag of the orientation, and the orientations that swap width and height.
_ORIENTATION = 0x0112
_TRANSPOSED = (5, 6, 7, 8)


def _png_exif(img):
    """Return the eXIf chunk of a PNG, found by walking its chunk headers, or None.

    Pillow's ``getexif`` on a PNG whose eXIf chunk follows the pixel data
    decodes the whole image to reach it; here the chunks are skipped with
    ``seek``, so nothing is decompressed.
    """
    fp = getattr(img, "fp", None)
    if fp is None:
        return None
    position = fp.tell()
    try:
        fp.seek(8)  # the PNG signature
        while True:
            head = fp.read(8)
            if len(head) < 8:
                return None
            length = int.from_bytes(head[:4], "big")
            kind = head[4:]
            if kind == b"eXIf":
                return fp.read(length)
            if kind == b"IEND":
                return None
            fp.seek(length + 4, os.SEEK_CUR)  # the data and its CRC
    except (OSError, ValueError):
        return None
    finally:
        fp.seek(position)


def _orientation(img):
    """EXIF orientation of an image (1, upright, when it has none).

    Never decodes pixels: for a PNG not yet loaded, the eXIf chunk is looked
    up in the file (see :func:`_png_exif`).
    """
    try:
        if img.format == "PNG" and "exif" not in img.info and _not_loaded(img):
            data = _png_exif(img)
            if data is None:
                return 1
            exif = Image.Exif()
            exif.load(data)
        else:
            exif = img.getexif()
        value = exif.get(_ORIENTATION, 1)
    except Exception:  # a corrupt EXIF block: the pixels are still readable
        return 1
    return value if value in range(1, 9) else 1


def _not_loaded(img):
    """Whether a file-backed image has not decoded its pixels yet."""
    return getattr(img, "fp", None) is not None and getattr(img, "tile", None)


def _upright(img):
    """Apply the EXIF orientation of a loaded image (a no-op for most images)."""
    if _orientation(img) == 1:
        return img
    return ImageOps.exif_transpose(img)


_PILLOW_LIMIT_LOCK = threading.Lock()


def _open_image(path, *, allow_huge):
    """``Image.open``; with ``allow_huge``, past Pillow's own pixel limit too.

    Pillow refuses images of more than ``2 * Image.MAX_IMAGE_PIXELS`` pixels
    when it parses their header. Its limit is a global setting, so it is
    lifted under a lock, for that parsing only, and only when an image hits it
    and the caller allows more (``max_pixels=None`` or above Pillow's limit;
    the caller applies its own limit). Decoding happens later, in ``load``.
    """
    try:
        return Image.open(path)
    except Image.DecompressionBombError:
        if not allow_huge:
            raise
    with _PILLOW_LIMIT_LOCK:
        saved = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None
        try:
            return Image.open(path)
        finally:
            Image.MAX_IMAGE_PIXELS = saved


def _open_file(path, *, size, color, max_pixels):
    """Open one image file and return a loaded PIL image in mode L or RGB."""
    reason = _check_path(path)
    if reason is not None:
        raise _ItemError(reason)
    if _has_dicom_extension(path):
        return _read_dicom(path, max_pixels)
    try:
        img = _open_image(
            path, allow_huge=max_pixels is None or max_pixels > DEFAULT_MAX_PIXELS
        )
    except UnidentifiedImageError:
        if _has_dicom_magic(path):
            return _read_dicom(path, max_pixels)
        raise _ItemError("not a recognised image format") from None
    except Image.DecompressionBombError as exc:
        raise _ItemError(f"decompression bomb guard: {exc}") from None
    except OSError as exc:
        raise _ItemError(f"cannot open image ({exc})") from None
    with img:
        _check_pixels(img.width, img.height, max_pixels)
        try:
            _check_frames(img)
        except (OSError, EOFError, SyntaxError) as exc:
            raise _ItemError(f"truncated or corrupt image data ({exc})") from None
        if size is not None and img.format == "JPEG":
            draft_mode = "L" if color == "gray" else None
            target = (size[1], size[0])  # (width, height) after orientation
            if _orientation(img) in _TRANSPOSED:
                target = target[::-1]
            img.draft(draft_mode, target)
        try:
            img.load()
        except Exception as exc:
            raise _ItemError(f"truncated or corrupt image data ({exc})") from None
        return _pil_to_l_or_rgb(_upright(img))


def _read_one(item, *, size, resize_mode, color, resample, max_pixels):
    if isinstance(item, str):
        img = _open_file(item, size=size, color=color, max_pixels=max_pixels)
    elif isinstance(item, Image.Image):
        _check_frames(item)
        try:
            item.load()
        except Exception as exc:
            raise _ItemError(f"truncated or corrupt image data ({exc})") from None
        img = _pil_to_l_or_rgb(_upright(item))
    else:
        img = _array_to_pil(item)
    img = _apply_color(img, color)
    decoded = (img.height, img.width)
    if size is not None:
        img = _resize(img, size, resize_mode, resample)
    arr = np.asarray(img)
    return (arr[..., None] if arr.ndim == 2 else arr), decoded


def _safe_read_one(i, item, kwargs):
    """``((image, decoded (height, width)), None)``, or ``(None, failure)``."""
    try:
        return _read_one(item, **kwargs), None
    except _ItemError as exc:
        return None, (i, _item_name(item, i), str(exc))
    except Exception as exc:  # unexpected decoder failure: report, do not lose
        return None, (i, _item_name(item, i), f"{type(exc).__name__}: {exc}")


def _normalise_size(size):
    if size is None:
        return None
    message = f"size must be an int or (height, width) of ints, got {size!r}"
    if isinstance(size, Integral):
        size = (size, size)
    if isinstance(size, str | bytes) or not hasattr(size, "__len__"):
        raise ValueError(message)
    if len(size) != 2 or not all(isinstance(s, Integral) for s in size):
        raise ValueError(message)
    if min(size) < 1:
        raise ValueError(message)
    return (int(size[0]), int(size[1]))


def _check_options(color, resize_mode, resample):
    if color not in _COLORS:
        raise ValueError(f"color must be one of {_COLORS}, got {color!r}")
    if resize_mode not in _RESIZE_MODES:
        raise ValueError(
            f"resize_mode must be one of {_RESIZE_MODES}, got {resize_mode!r}"
        )
    if resample not in _RESAMPLE:
        raise ValueError(
            f"resample must be one of {tuple(_RESAMPLE)}, got {resample!r}"
        )


def _parallel_map(func, items, n_jobs, verbose, desc):
    """Map ``func(i, item)`` over items, in threads when ``n_jobs`` allows."""
    from joblib import Parallel, delayed, effective_n_jobs

    iterator = enumerate(items)
    if verbose:
        from tqdm.auto import tqdm

        iterator = tqdm(iterator, total=len(items), desc=desc, unit="img")
    if n_jobs is None or effective_n_jobs(n_jobs) == 1 or len(items) < 2:
        return [func(i, item) for i, item in iterator]
    # Pillow releases the GIL while decoding and resizing, so threads scale.
    return Parallel(n_jobs=n_jobs, prefer="threads", return_as="list")(
        delayed(func)(i, item) for i, item in iterator
    )


def _stack(images, color):
    if color == "keep" and any(img.shape[-1] == 3 for img in images):
        images = [
            np.repeat(img, 3, axis=-1) if img.shape[-1] == 1 else img for img in images
        ]
    return np.stack(images)


def _fast_array_path(X, size, color):
    """Convert a numeric image array without going through PIL when possible."""
    if X.ndim == 3:
        X = X[..., None]
    if X.shape[-1] == 2:
        X = X[..., :1]
    elif X.shape[-1] == 4:
        X = X[..., :3]
    if X.dtype != np.uint8:
        X = np.stack([_to_uint8(img) for img in X])
    if size is not None and X.shape[1:3] != size:
        return None
    if color == "rgb" and X.shape[-1] == 1:
        X = np.repeat(X, 3, axis=-1)
    elif color == "gray" and X.shape[-1] == 3:
        return None
    return X


def read_images(
    X,
    *,
    image_size=None,
    color="keep",
    resize_mode="stretch",
    resample="bilinear",
    n_jobs=None,
    max_pixels=DEFAULT_MAX_PIXELS,
    warn_upscale=None,
    verbose=False,
    size=DEPRECATED,
):
    """Read images from paths, PIL images or arrays into uint8 arrays.

    Parameters
    ----------
    X : array-like
        Any input accepted by :func:`check_images`.
    image_size : int or tuple (height, width), default=None
        Target size. When given, every image is resized and the result is one
        stacked array; large JPEGs are decoded at a reduced scale first.
    color : {"keep", "rgb", "gray"}, default="keep"
        Colour rule, see the module documentation.
    resize_mode : {"stretch", "pad", "crop"}, default="stretch"
        ``"stretch"`` resizes to ``size`` ignoring the aspect ratio; ``"pad"``
        keeps the aspect ratio and pads with black; ``"crop"`` keeps the aspect
        ratio and crops the centre.
    resample : {"bilinear", "bicubic", "lanczos", "nearest", "box"}, \
default="bilinear"
        Pillow resampling filter (antialiased when downscaling).
    n_jobs : int, default=None
        Number of threads decoding in parallel; ``None`` means 1 and ``-1``
        all processors.
    max_pixels : int or None, default=178956970
        Images with more pixels are rejected before decoding (decompression
        bomb guard). ``None`` disables the guard, and a larger value raises
        it: Pillow's own limit (the default here) is then lifted for these
        images.
    warn_upscale : float or None, default=None
        With ``size``, issue one ``UserWarning`` for the call when images are
        enlarged by this factor or more (on their less enlarged side): a 28
        pixel MedMNIST image read at 224 is upscaled 8 times, which adds no
        detail and costs time. ``None`` never warns.
    verbose : bool, default=False
        Show a progress bar.
    size : int or tuple (height, width)
        Deprecated spelling of ``image_size``.

        .. deprecated:: 0.1
           ``size`` was renamed ``image_size`` and will be removed in 0.3.

    Returns
    -------
    images : ndarray of shape (n_samples, height, width, n_channels) or list
        A stacked uint8 array when ``image_size`` is given or all images share one
        shape (and channel count after the colour rule), else a list of
        ``(height, width, n_channels)`` uint8 arrays.

    Raises
    ------
    ImageReadError
        If any item cannot be read. Its ``failures`` name every bad item and
        its ``images`` hold the images that were read (``None`` for bad ones),
        so good items are not lost.

    Notes
    -----
    One file is one 2-D image. A file holding several frames (multi-frame
    DICOM, multi-page TIFF, animated GIF, PNG or WebP) is refused with its
    number of frames, whatever its format, instead of being read as its first
    frame; save the frame to use as a file of its own.

    Examples
    --------
    >>> import numpy as np
    >>> from skmedimg.utils import read_images
    >>> X = np.random.default_rng(0).integers(0, 256, (2, 30, 40), dtype=np.uint8)
    >>> read_images(X, image_size=16, color="rgb").shape
    (2, 16, 16, 3)
    """
    size = renamed_argument(
        "read_images", "size", size, "image_size", image_size, default=None
    )
    _check_options(color, resize_mode, resample)
    size = _normalise_size(size)
    X, failures = _validate(X, check_files=False)
    if isinstance(X, np.ndarray) and X.dtype != object:
        if failures:
            images = [
                None if i in {f[0] for f in failures} else X[i] for i in range(len(X))
            ]
            raise ImageReadError(failures, images=images)
        fast = _fast_array_path(X, size, color)
        if fast is not None:
            return fast
        if warn_upscale is not None and size is not None:
            _warn_upscale([X.shape[1:3]], size, warn_upscale, n_images=len(X))
            warn_upscale = None  # said once, for the whole array
        items = list(X)
    else:
        items = list(X)
    failed = {f[0]: f for f in failures}
    kwargs = {
        "size": size,
        "resize_mode": resize_mode,
        "color": color,
        "resample": _RESAMPLE[resample],
        "max_pixels": max_pixels,
    }

    def work(i, item):
        if i in failed:
            return None, failed[i]
        return _safe_read_one(i, item, kwargs)

    results = _parallel_map(work, items, n_jobs, verbose, "Reading images")
    images = [None if read is None else read[0] for read, _ in results]
    failures = [err for _, err in results if err is not None]
    if failures:
        raise ImageReadError(failures, images=images)
    if warn_upscale is not None and size is not None:
        _warn_upscale([read[1] for read, _ in results], size, warn_upscale)
    shapes = {img.shape for img in images}
    if size is not None or len({s[:2] for s in shapes}) == 1:
        return _stack(images, color)
    return images


def _check_pixels(width, height, max_pixels):
    """Apply the decompression bomb guard (the pixel and the size readers share it)."""
    n_pixels = width * height
    if max_pixels is not None and n_pixels > max_pixels:
        raise _ItemError(
            f"image of {width}x{height} = {n_pixels} pixels exceeds "
            f"max_pixels={max_pixels} (decompression bomb guard)"
        )


def _warn_upscale(decoded_sizes, size, factor, *, n_images=None):
    """One UserWarning when images are upscaled ``factor`` times or more."""
    sizes = np.asarray(decoded_sizes, dtype=float).reshape(-1, 2)
    scales = np.min(np.asarray(size, dtype=float) / np.maximum(sizes, 1), axis=1)
    upscaled = scales >= factor
    if not upscaled.any():
        return
    n_total = len(sizes) if n_images is None else n_images
    n_upscaled = int(upscaled.sum()) if n_images is None else n_images
    example = sizes[np.argmax(scales)].astype(int)
    warnings.warn(
        f"{n_upscaled} of {n_total} image(s) are upscaled {factor:g} times or "
        f"more to {size[0]}x{size[1]} (the smallest, {example[0]}x{example[1]}, "
        f"{float(scales.max()):.1f} times): upscaling adds no detail and costs "
        "time and memory; a smaller target size (CNNClassifier's image_size) "
        "may do as well.",
        UserWarning,
        stacklevel=3,
    )


def _size_one(item, max_pixels=DEFAULT_MAX_PIXELS):
    """(height, width) of one item, from the file header when it is a path."""
    if not isinstance(item, str):
        if isinstance(item, Image.Image):
            if _orientation(item) in _TRANSPOSED:
                return item.width, item.height
            return item.height, item.width
        return item.shape[0], item.shape[1]
    reason = _check_path(item)
    if reason is not None:
        raise _ItemError(reason)
    if _has_dicom_extension(item):
        return _dicom_size(item, max_pixels)
    try:
        allow_huge = max_pixels is None or max_pixels > DEFAULT_MAX_PIXELS
        with _open_image(item, allow_huge=allow_huge) as img:  # the header only
            _check_pixels(img.width, img.height, max_pixels)
            if _orientation(img) in _TRANSPOSED:
                return img.width, img.height
            return img.height, img.width
    except UnidentifiedImageError:
        if _has_dicom_magic(item):
            return _dicom_size(item, max_pixels)
        raise _ItemError("not a recognised image format") from None
    except Image.DecompressionBombError as exc:
        raise _ItemError(f"decompression bomb guard: {exc}") from None
    except OSError as exc:
        raise _ItemError(f"cannot open image ({exc})") from None


def _dicom_size(path, max_pixels=None):
    pydicom = _pydicom()
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        rows, columns = int(ds.Rows), int(ds.Columns)
    except Exception as exc:
        raise _ItemError(f"unreadable DICOM header ({exc})") from None
    _check_pixels(columns, rows, max_pixels)
    return rows, columns


def read_image_sizes(X, *, n_jobs=None, max_pixels=DEFAULT_MAX_PIXELS, verbose=False):
    """Read image sizes without decoding pixel data.

    For files only the header is parsed (the EXIF orientation included), so
    this is fast even for large images, and a file whose header declares a
    huge image is never decompressed. It does not prove that the pixel data
    is intact: use :func:`read_images` for that.

    Parameters
    ----------
    X : array-like
        Any input accepted by :func:`check_images`.
    n_jobs : int, default=None
        Number of threads.
    max_pixels : int or None, default=178956970
        Files whose header declares more pixels are reported as failures
        (decompression bomb guard), as :func:`read_images` rejects them.
        ``None`` disables the guard.
    verbose : bool, default=False
        Show a progress bar.

    Returns
    -------
    sizes : ndarray of shape (n_samples, 2)
        ``(height, width)`` of each image, as int.

    Raises
    ------
    ImageReadError
        If any header cannot be read or declares more than ``max_pixels``
        pixels; ``images`` holds the sizes that were read (``None`` for bad
        items).

    Examples
    --------
    >>> import numpy as np
    >>> from skmedimg.utils import read_image_sizes
    >>> read_image_sizes([np.zeros((5, 7)), np.zeros((3, 2, 3))]).tolist()
    [[5, 7], [3, 2]]
    """
    X, failures = _validate(X, check_files=False)
    if isinstance(X, np.ndarray) and X.dtype != object and not failures:
        return np.tile(np.array(X.shape[1:3], dtype=int), (len(X), 1))
    failed = {f[0]: f for f in failures}

    def work(i, item):
        if i in failed:
            return None, failed[i]
        try:
            return _size_one(item, max_pixels), None
        except _ItemError as exc:
            return None, (i, _item_name(item, i), str(exc))

    results = _parallel_map(work, list(X), n_jobs, verbose, "Reading sizes")
    sizes = [s for s, _ in results]
    failures = [err for _, err in results if err is not None]
    if failures:
        raise ImageReadError(failures, images=sizes)
    return np.asarray(sizes, dtype=int).reshape(-1, 2)
