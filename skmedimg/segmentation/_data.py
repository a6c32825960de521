"""Reading and checking images and masks for segmentation.

Images become float32 arrays ``(*spatial, n_channels)`` and masks int64 arrays
``(*spatial)``, one per sample; every problem is a ``ValueError`` naming the
item (its index) and what is wrong.
"""

from __future__ import annotations

import os

import numpy as np

__all__ = ["NIFTI_SUFFIXES", "read_masks", "read_segmentation_images"]

NIFTI_SUFFIXES = (".nii", ".nii.gz")


def _is_path(item):
    return isinstance(item, str | os.PathLike)


def _read_path(path, index, what):
    path = os.fspath(path)
    if path.lower().endswith(NIFTI_SUFFIXES):
        from ..utils import read_volume

        return np.asarray(read_volume(path))
    from ..utils import read_images

    return np.asarray(read_images([path], color="keep")[0])


def _items(X, what):
    if isinstance(X, str | os.PathLike):
        raise ValueError(
            f"{what} must be a sequence of samples (an array with the sample "
            f"axis first, a list of arrays or of paths), got one path {X!r}"
        )
    if isinstance(X, np.ndarray) and X.dtype != object:
        if X.ndim < 3:
            raise ValueError(
                f"{what} must have the sample axis first and 2 or 3 spatial axes, "
                f"got an array of shape {X.shape}"
            )
        return list(X)
    return list(X)


def read_masks(y):
    """Return the label masks of ``y`` as a list of int64 arrays.

    Parameters
    ----------
    y : array-like of shape (n_samples, *spatial), list of arrays or paths
        Integer label masks (or files holding them; a 2-D mask image read in
        colour must have equal channels).

    Returns
    -------
    masks : list of ndarray of int64
    """
    masks = []
    for i, item in enumerate(_items(y, "y")):
        if _is_path(item):
            arr = _read_path(item, i, "y")
            if arr.ndim == 3 and not str(item).lower().endswith(NIFTI_SUFFIXES):
                if not (arr == arr[..., :1]).all():
                    raise ValueError(
                        f"mask {i} ({item}): a mask image must have one channel "
                        f"(or equal channels), got {arr.shape[-1]} different ones"
                    )
                arr = arr[..., 0]
            elif arr.ndim == 4 and arr.shape[-1] == 1:
                arr = arr[..., 0]
        else:
            arr = np.asarray(item)
        if arr.dtype == bool:
            arr = arr.astype(np.int64)
        if not np.issubdtype(arr.dtype, np.number):
            raise ValueError(
                f"mask {i}: labels must be integers, got dtype {arr.dtype}"
            )
        if arr.ndim not in (2, 3):
            raise ValueError(
                f"mask {i}: a mask must have 2 or 3 spatial axes, got shape {arr.shape}"
            )
        if np.issubdtype(arr.dtype, np.floating):
            if not np.isfinite(arr).all() or (arr != np.round(arr)).any():
                raise ValueError(
                    f"mask {i}: labels must be non-negative integers, got "
                    "non-integer (fractional or NaN) values; masks hold class "
                    "labels, not probabilities"
                )
        if arr.size and arr.min() < 0:
            raise ValueError(
                f"mask {i}: labels must be non-negative integers, got {arr.min()}"
            )
        masks.append(arr.astype(np.int64))
    if not masks:
        raise ValueError("y holds no masks")
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
    """
    images = []
    for i, item in enumerate(_items(X, "X")):
        name = f"image {i}" + (f" ({item})" if _is_path(item) else "")
        arr = _read_path(item, i, "X") if _is_path(item) else np.asarray(item)
        if arr.ndim == spatial_dims:
            arr = arr[..., None]
        if arr.ndim != spatial_dims + 1:
            raise ValueError(
                f"{name}: expected {spatial_dims} spatial axes (channels last, "
                f"optional), got shape {arr.shape}"
            )
        if not np.issubdtype(arr.dtype, np.number) and arr.dtype != bool:
            raise ValueError(f"{name}: pixel values must be numbers, got {arr.dtype}")
        arr = arr.astype(np.float32)
        if not np.isfinite(arr).all():
            raise ValueError(f"{name}: contains NaN or infinite values")
        if n_channels is not None and arr.shape[-1] != n_channels:
            raise ValueError(
                f"{name}: has {arr.shape[-1]} channel(s), but the model was fitted "
                f"on {n_channels}"
            )
        images.append(arr)
    if not images:
        raise ValueError("X holds no images")
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
