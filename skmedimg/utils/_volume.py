"""The volume reader: NIfTI images and integer label masks for segmentation.

Two-dimensional photographs (JPEG, PNG, TIFF, DICOM) are read by
:func:`skmedimg.utils.read_images`; this module reads what segmentation adds:
NIfTI volumes (``.nii``, ``.nii.gz``, through nibabel) and label masks, whose
values are class labels and must never be rescaled, colour-converted or
interpolated. :func:`read_masks` is the one mask reader: files and in-memory
masks alike, for the command line and for
:class:`skmedimg.segmentation.CNNSegmenter`.
"""

import os

import numpy as np
from PIL import Image, UnidentifiedImageError

from ._io import ImageReadError, _item_name

__all__ = ["NIFTI_EXTENSIONS", "read_masks", "read_volume"]

NIFTI_EXTENSIONS = (".nii", ".nii.gz")
_MASK_IMAGE_EXTENSIONS = (".png", ".gif", ".tif", ".tiff", ".bmp")


def _nibabel():
    try:
        import nibabel
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "reading NIfTI files (.nii, .nii.gz) needs nibabel; install it with "
            "pip install 'skmedimg[seg]' (or pip install nibabel)"
        ) from exc
    return nibabel


def _is_path_like(item):
    return isinstance(item, str | bytes | os.PathLike)


def _is_nifti(path):
    return str(path).lower().endswith(NIFTI_EXTENSIONS)


def _fail(path, reason, index=0, n_items=1):
    return ImageReadError([(index, str(path), reason)], n_items=n_items)


def _load_nifti_array(path):
    """Return the stored array of a NIfTI file (scaled as nibabel scales it)."""
    nib = _nibabel()
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no such file: {path}")
    try:
        img = nib.load(str(path))
        # asanyarray keeps the on-disk dtype when there is no scaling (int16
        # stays int16); get_fdata would always make float64 copies.
        return np.asanyarray(img.dataobj)
    except Exception as exc:  # nibabel raises many types for damaged files
        raise _fail(path, f"not a readable NIfTI file ({exc})") from exc


def read_volume(path, *, dtype=np.float32):
    """Read one NIfTI image as a channels-last array.

    The spatial axes keep nibabel's array order, that is the voxel axes
    ``(i, j, k)`` of the file (commonly called x, y, z), with no transposing,
    reorientation or resampling: the array is what ``nibabel.load(path).dataobj``
    holds. One channel axis is always appended last: a 3-D file of shape
    ``(X, Y, Z)`` gives ``(X, Y, Z, 1)``, and a 4-D multi-modal file of shape
    ``(X, Y, Z, C)`` (the Medical Segmentation Decathlon stores the MRI
    modalities on the 4th axis) gives ``(X, Y, Z, C)``. A 2-D file ``(X, Y)``
    gives ``(X, Y, 1)``.

    Parameters
    ----------
    path : str or path-like
        A ``.nii`` or ``.nii.gz`` file.
    dtype : data-type, default=np.float32
        Data type of the returned array. The file's scaling (``scl_slope``,
        ``scl_inter``) is applied before the conversion.

    Returns
    -------
    volume : ndarray of shape (x, y[, z], n_channels)
        The image, channels last.

    Raises
    ------
    ImageReadError
        If the file is not a NIfTI file, cannot be decoded, has more than four
        axes (other than trailing axes of size one) or holds NaN or infinite
        values. The message names the file.
    FileNotFoundError
        If ``path`` does not exist.
    ImportError
        If nibabel is not installed (install the ``seg`` extra).

    See Also
    --------
    read_masks : Read integer label masks (NIfTI, PNG, GIF, TIFF).
    read_images : Read 2-D photographs (JPEG, PNG, TIFF, DICOM).

    Notes
    -----
    The affine (voxel-to-world orientation and spacing) is not returned; read
    it with ``nibabel.load(path).affine`` (spacing from
    ``header.get_zooms()``) when distances in millimetres matter, for example
    for the Hausdorff distance of :func:`skmedimg.segmentation.segmentation_report`.

    Examples
    --------
    >>> import numpy as np, nibabel as nib, tempfile, os
    >>> from skmedimg.utils import read_volume
    >>> path = os.path.join(tempfile.mkdtemp(), "t1.nii.gz")
    >>> nib.save(nib.Nifti1Image(np.zeros((8, 6, 4), np.int16), np.eye(4)), path)
    >>> read_volume(path).shape
    (8, 6, 4, 1)
    """
    path = os.fspath(path)
    if not _is_nifti(path):
        raise _fail(
            path,
            "read_volume reads NIfTI files (.nii, .nii.gz); read 2-D images "
            "with skmedimg.utils.read_images",
        )
    data = _load_nifti_array(path)
    # drop trailing singleton axes beyond the fourth (a 5-D (X, Y, Z, 1, C)
    # layout is written by some tools with an empty time axis)
    if data.ndim == 5 and data.shape[3] == 1:
        data = data[:, :, :, 0, :]
    while data.ndim > 4 and data.shape[-1] == 1:
        data = data[..., 0]
    if data.ndim < 2 or data.ndim > 4:
        raise _fail(
            path,
            f"expected a 2-D, 3-D or 4-D (channels last) volume, got shape "
            f"{data.shape}",
        )
    if data.ndim in (2, 3):
        data = data[..., np.newaxis]
    if data.dtype.kind == "f" and not np.isfinite(data).all():
        n_bad = int(np.size(data) - np.count_nonzero(np.isfinite(data)))
        raise _fail(path, f"{n_bad} voxel(s) are NaN or infinite")
    return np.asarray(data, dtype=dtype)


def _integer_labels(arr, path):
    """Return ``arr`` as an integer array, refusing non-integral values."""
    if arr.dtype == bool:
        return arr.astype(np.uint8)
    if arr.dtype.kind in "iu":
        return arr
    if arr.dtype.kind != "f":
        raise _fail(path, f"mask data type {arr.dtype} is not numeric")
    if not np.isfinite(arr).all():
        raise _fail(path, "mask holds NaN or infinite values")
    if not np.array_equal(arr, np.round(arr)):
        raise _fail(path, "mask holds non-integer values; a label mask is expected")
    if arr.size == 0:
        return arr.astype(np.uint8)
    lo, hi = int(arr.min()), int(arr.max())
    dtype = np.result_type(np.min_scalar_type(lo), np.min_scalar_type(hi))
    return arr.astype(dtype)


def _palette_labels(img, path):
    """Labels of a palette image: gray values for a gray palette, else indices.

    A gray image saved as GIF (or an optimised PNG) is a palette image whose
    indices are arbitrary and whose palette holds the gray values: the values
    are what the file shows. A colour palette (the PASCAL VOC convention)
    stores the label as the index, the colours being for display only.
    """
    indices = np.array(img)
    palette = img.getpalette() or []
    if "transparency" in img.info or len(palette) % 3:
        return indices
    table = np.asarray(palette, dtype=np.uint8).reshape(-1, 3)
    used = np.unique(indices)
    if used.max(initial=0) >= len(table):
        return indices
    colours = table[used]
    if np.all(colours == colours[:, :1]):
        lut = np.zeros(256, np.uint8)
        lut[: len(table)] = table[:, 0]
        return lut[indices]
    return indices


def _read_mask_image(path):
    try:
        with Image.open(path) as img:
            img.load()
            mode = img.mode
            if mode == "P":
                arr = _palette_labels(img, path)
            elif mode in ("RGB", "RGBA", "LA"):
                arr = np.array(img)
                colour = arr[..., :3] if mode != "LA" else arr[..., :1]
                if mode != "LA" and not (
                    np.array_equal(colour[..., 0], colour[..., 1])
                    and np.array_equal(colour[..., 0], colour[..., 2])
                ):
                    raise _fail(
                        path,
                        f"colour ({mode}) mask; label masks are single-channel "
                        "(gray or palette) images of integer labels",
                    )
                arr = colour[..., 0]
            elif mode == "CMYK":
                raise _fail(path, "CMYK image is not a label mask")
            else:  # 1, L, I, I;16, F
                arr = np.array(img)
    except ImageReadError:
        raise
    except FileNotFoundError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise _fail(path, f"not a readable image ({exc})") from exc
    return arr


def _read_one_mask(path):
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no such file: {path}")
    if _is_nifti(path):
        arr = _load_nifti_array(path)
        while arr.ndim > 2 and arr.shape[-1] == 1:
            arr = arr[..., 0]
    elif path.lower().endswith(_MASK_IMAGE_EXTENSIONS):
        arr = _read_mask_image(path)
    else:
        raise _fail(
            path,
            "unsupported mask format; expected one of "
            + ", ".join(NIFTI_EXTENSIONS + _MASK_IMAGE_EXTENSIONS),
        )
    return _integer_labels(np.asarray(arr), path)


def read_masks(paths, *, binarize=False):
    """Read integer label masks from NIfTI, PNG, GIF, TIFF or BMP files.

    In-memory masks (arrays, one per item, or one array with the sample axis
    first) are checked by the same rules, so that files and arrays give the
    same masks. Values are kept as stored: nothing is rescaled,
    colour-converted or interpolated. A DRIVE vessel mask saved as 0/255 is
    returned as 0/255; map it to labels yourself (``mask // 255``) or pass
    ``binarize=True``.
    Palette (``P`` mode) images with a colour palette give the palette index of
    each pixel, the usual way label PNGs are stored (PASCAL VOC); with a gray
    palette (a gray image saved as GIF) they give the gray value shown. NIfTI
    masks keep nibabel's axis order, the same spatial order as
    :func:`read_volume` (trailing axes of size one are dropped).

    Parameters
    ----------
    paths : str, path-like, sequence of paths or arrays, or ndarray
        Mask files, in-memory masks (array-likes of integer, boolean or
        integral float values), or an array of masks with the sample axis
        first. A single path reads one mask.
    binarize : bool, default=False
        If True, return ``(mask > 0)`` as ``uint8`` 0/1 masks (foreground
        versus background), whatever the stored values.

    Returns
    -------
    masks : ndarray of shape (n_samples, x, y[, z]) or list of ndarray
        Integer masks. A stacked array when all masks share one shape,
        otherwise a list of arrays in input order. For a single path, the
        one mask of shape ``spatial``.

    Raises
    ------
    ImageReadError
        If some files cannot be decoded, some masks hold non-integer, NaN or
        infinite values, or are colour images. The message names every bad
        file (and every bad in-memory mask by its index); the ``images``
        attribute keeps the good masks.
    FileNotFoundError
        If a path does not exist.

    See Also
    --------
    read_volume : Read NIfTI images, channels last.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from PIL import Image
    >>> from skmedimg.utils import read_masks
    >>> path = os.path.join(tempfile.mkdtemp(), "vessels.png")
    >>> Image.fromarray(np.array([[0, 255], [255, 0]], np.uint8)).save(path)
    >>> read_masks([path])
    array([[[  0, 255],
            [255,   0]]], dtype=uint8)
    >>> read_masks(path, binarize=True)
    array([[0, 1],
           [1, 0]], dtype=uint8)
    """
    single = _is_path_like(paths)
    items = [paths] if single else list(paths)
    masks, failures = [], []
    for i, item in enumerate(items):
        try:
            if _is_path_like(item):
                mask = _read_one_mask(item)
            else:
                mask = _integer_labels(np.asarray(item), _item_name(item, i))
        except ImageReadError as exc:
            failures += [(i, name, reason) for _, name, reason in exc.failures]
            masks.append(None)
            continue
        if binarize:
            mask = (mask > 0).astype(np.uint8)
        masks.append(mask)
    if failures:
        raise ImageReadError(failures, images=masks)
    if single:
        return masks[0]
    if masks and len({m.shape for m in masks}) == 1:
        return np.stack(masks)
    return masks
