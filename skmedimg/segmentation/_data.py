"""Reading and checking images and masks for segmentation.

Images become float32 arrays ``(*spatial, n_channels)`` and masks int64 arrays
``(*spatial)``, one per sample. Files are decoded by the readers of
:mod:`skmedimg.utils` (:func:`~skmedimg.utils.read_images`,
:func:`~skmedimg.utils.read_volume`, :func:`~skmedimg.utils.read_masks`);
every problem is one :class:`~skmedimg.utils.ImageReadError` (a
``ValueError``) naming each bad item (its path, or its index) and what is
wrong, with the good items kept in its ``images``.
"""

from __future__ import annotations

import os

import numpy as np

from ..utils import (
    NIFTI_EXTENSIONS,
    ImageReadError,
    read_images,
    read_masks,
    read_volume,
)

__all__ = ["check_masks", "read_segmentation_images"]


def _is_path(item):
    return isinstance(item, str | os.PathLike)


def _name(item, index):
    if _is_path(item):
        return os.fspath(item)
    return f"item {index} ({type(item).__name__})"


def _read_path(path):
    path = os.fspath(path)
    if path.lower().endswith(NIFTI_EXTENSIONS):
        return np.asarray(read_volume(path))
    return np.asarray(read_images([path], color="keep")[0])


def _items(X, what):
    if isinstance(X, str | os.PathLike):
        raise ValueError(
            f"{what} must be a sequence of samples (an array with the sample "
            f"axis first, a list of arrays or of paths), got one path {X!r}"
        )
    if isinstance(X, np.ndarray) and X.dtype != object and X.ndim < 3:
        raise ValueError(
            f"{what} must have the sample axis first and 2 or 3 spatial axes, "
            f"got an array of shape {X.shape}"
        )
    items = list(X)
    if not items:
        raise ValueError(f"{what} holds no samples")
    return items


def _raise(failures, results):
    if failures:
        failures.sort(key=lambda failure: failure[0])
        raise ImageReadError(failures, images=results, n_items=len(results))


def check_masks(y):
    """Return the label masks of ``y`` as a list of int64 arrays.

    The masks are read by :func:`skmedimg.utils.read_masks`, files and
    arrays alike (integer, boolean or integral float labels; a mask image
    must have one channel or equal ones, a palette image gives its
    indices). A training mask must also have 2 or 3 spatial axes and
    non-negative labels, and all masks the same number of axes.

    Parameters
    ----------
    y : array-like of shape (n_samples, \\*spatial), list of arrays or paths
        Integer label masks, or files holding them.

    Returns
    -------
    masks : list of ndarray of int64

    Raises
    ------
    ImageReadError
        Naming every bad mask and the reason.
    """
    items = _items(y, "y")
    try:
        masks, failures = list(read_masks(items)), []
    except ImageReadError as exc:
        masks, failures = list(exc.images), list(exc.failures)
    for i, (item, mask) in enumerate(zip(items, masks, strict=True)):
        if mask is None:
            continue
        reason = None
        if mask.ndim not in (2, 3):
            reason = f"a mask must have 2 or 3 spatial axes, got shape {mask.shape}"
        elif mask.size and mask.min() < 0:
            reason = f"labels must be non-negative integers, got {mask.min()}"
        if reason is not None:
            failures.append((i, _name(item, i), reason))
            masks[i] = None
        else:
            masks[i] = mask.astype(np.int64)
    _raise(failures, masks)
    dims = {m.ndim for m in masks}
    if len(dims) > 1:
        raise ValueError(
            f"all masks must have the same number of spatial axes, got {sorted(dims)}"
        )
    return masks


def read_segmentation_images(X, spatial_dims, *, n_channels=None):
    """Return the images of ``X`` as float32 arrays ``(*spatial, n_channels)``.

    Parameters
    ----------
    X : array-like or list
        Images with the sample axis first and channels last, a list of such
        per-sample arrays, or paths (2-D image files, NIfTI volumes).
    spatial_dims : {2, 3}
        Number of spatial axes (learned from the masks).
    n_channels : int, default=None
        Expected channel count (at predict time).

    Returns
    -------
    images : list of ndarray of float32

    Raises
    ------
    ImageReadError
        Naming every image that cannot be read, has the wrong number of axes
        or channels, or holds NaN or infinite values.
    """
    items = _items(X, "X")
    images, failures = [], []
    for i, item in enumerate(items):
        name = _name(item, i)
        try:
            arr = _read_path(item) if _is_path(item) else np.asarray(item)
        except ImageReadError as exc:
            failures += [(i, name, reason) for _, _, reason in exc.failures]
            images.append(None)
            continue
        if arr.ndim == spatial_dims:
            arr = arr[..., None]
        reason = None
        if arr.ndim != spatial_dims + 1:
            reason = (
                f"expected {spatial_dims} spatial axes (channels last, "
                f"optional), got shape {arr.shape}"
            )
        elif not np.issubdtype(arr.dtype, np.number) and arr.dtype != bool:
            reason = f"pixel values must be numbers, got {arr.dtype}"
        elif n_channels is not None and arr.shape[-1] != n_channels:
            reason = (
                f"has {arr.shape[-1]} channel(s), but the model was fitted "
                f"on {n_channels}"
            )
        else:
            arr = arr.astype(np.float32)
            if not np.isfinite(arr).all():
                reason = "contains NaN or infinite values"
        if reason is not None:
            failures.append((i, name, reason))
            arr = None
        images.append(arr)
    _raise(failures, images)
    return images


def normalize_image(image, mode):
    """Normalise one ``(*spatial, C)`` float32 image (``"channel"``, ``"minmax"``)."""
    if mode is None:
        return image
    out = np.empty_like(image)
    for c in range(image.shape[-1]):
        ch = image[..., c]
        if mode == "channel":
            nonzero = ch != 0
            values = ch[nonzero]
            res = ch.copy()
            if values.size:
                mean, std = values.mean(), values.std()
                res[nonzero] = (values - mean) / (std if std > 0 else 1.0)
            out[..., c] = res
        else:
            lo, hi = ch.min(), ch.max()
            out[..., c] = (ch - lo) / (hi - lo) if hi > lo else 0.0
    return out
