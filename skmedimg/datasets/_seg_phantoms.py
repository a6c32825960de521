"""Synthetic images with lesion masks, 2-D or 3-D, for segmentation."""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
from sklearn.utils import check_random_state

__all__ = ["make_segmentation_phantoms"]

# Intensity of brain, then of labels 1, 2, 3 (by the 4-class meaning: edema,
# tumour core, enhancing rim), in each of four MRI-like contrasts: FLAIR, T1w,
# T1gd, T2w. A one-channel phantom uses the first row; more channels cycle
# through the rows.
_CONTRASTS = np.array(
    [
        [0.40, 0.70, 0.20, 0.95],  # FLAIR-like, every label told apart
        [0.45, 0.35, 0.25, 0.40],  # T1w
        [0.45, 0.40, 0.30, 0.95],  # T1gd: the enhancing rim lights up
        [0.35, 0.85, 0.90, 0.60],  # T2w: edema and core bright
    ],
    dtype=np.float32,
)


def _check(name, value, low, high=None):
    if not isinstance(value, Integral) or isinstance(value, bool) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    if high is not None and value > high:
        raise ValueError(f"{name} must be at most {high}, got {value!r}")


def make_segmentation_phantoms(
    n_samples=20,
    *,
    image_size=64,
    ndim=2,
    n_channels=1,
    n_lesions=(1, 3),
    n_classes=2,
    noise=0.1,
    random_state=None,
):
    """Generate synthetic brain-like images with lesions and their label masks.

    Each sample shows an ellipse (a disk in 2-D, an ellipsoid in 3-D) of
    "brain" on a dark background holding a random number of lesions of random
    place, size and shape. The mask labels them by nested classes, from the
    outside in:

    ===========  ================================================
    n_classes    labels (0 is always the background and brain)
    ===========  ================================================
    2            1 lesion
    3            1 edema ring around 2 core
    4            1 edema ring around 2 core with 3 enhancing rim
    ===========  ================================================

    With ``n_classes=4`` the labels follow the Medical Segmentation Decathlon's
    BraTS task (1 edema, 2 non-enhancing core, 3 enhancing tumour), so
    :data:`skmedimg.segmentation.BRATS_REGIONS` applies. Each channel is a
    different MRI-like contrast of the same anatomy (FLAIR, T1w, T1gd, T2w,
    then again), followed by Gaussian noise.

    Parameters
    ----------
    n_samples : int, default=20
        Number of images.
    image_size : int, default=64
        Side of the square (cubic in 3-D) images.
    ndim : {2, 3}, default=2
        Spatial dimensions.
    n_channels : int, default=1
        Channels (contrasts) per image.
    n_lesions : int or tuple (low, high), default=(1, 3)
        Lesions per image, drawn uniformly from ``low`` to ``high`` inclusive.
    n_classes : {2, 3, 4}, default=2
        Classes of the mask, background included.
    noise : float, default=0.1
        Standard deviation of the Gaussian noise, in units of the [0, 1]
        intensity range.
    random_state : int, RandomState or None, default=None
        Seed; the same int gives the same data.

    Returns
    -------
    X : ndarray
        ``uint8`` of shape ``(n_samples, *spatial)`` with one channel, else
        ``float32`` of shape ``(n_samples, *spatial, n_channels)`` in [0, 1].
    y : ndarray of int64 of shape (n_samples, \\*spatial)
        The label masks.

    Examples
    --------
    >>> from skmedimg.datasets import make_segmentation_phantoms
    >>> X, y = make_segmentation_phantoms(4, image_size=32, n_classes=4,
    ...                                   random_state=0)
    >>> X.shape, X.dtype, y.shape, sorted(set(y.ravel().tolist()))
    ((4, 32, 32), dtype('uint8'), (4, 32, 32), [0, 1, 2, 3])
    """
    _check("n_samples", n_samples, 1)
    _check("image_size", image_size, 8)
    _check("n_channels", n_channels, 1)
    _check("n_classes", n_classes, 2, 4)
    if ndim not in (2, 3):
        raise ValueError(f"ndim must be 2 or 3, got {ndim!r}")
    lesions = (n_lesions, n_lesions) if isinstance(n_lesions, Integral) else n_lesions
    lesions = tuple(lesions)
    if (
        len(lesions) != 2
        or not all(isinstance(v, Integral) for v in lesions)
        or not (0 <= lesions[0] <= lesions[1])
    ):
        raise ValueError(
            "n_lesions must be an integer or a (low, high) pair with "
            f"0 <= low <= high, got {n_lesions!r}"
        )
    if not isinstance(noise, Real) or noise < 0:
        raise ValueError(f"noise must be a non-negative number, got {noise!r}")

    rng = check_random_state(random_state)
    shape = (image_size,) * ndim
    grid = np.stack(
        np.meshgrid(*[np.arange(image_size, dtype=np.float32)] * ndim, indexing="ij")
    )
    contrasts = np.stack(
        [_CONTRASTS[c % len(_CONTRASTS)] for c in range(n_channels)]
    )  # (C, 4)
    X = np.empty((n_samples, *shape, n_channels), dtype=np.float32)
    y = np.zeros((n_samples, *shape), dtype=np.int64)
    centre = (image_size - 1) / 2
    for i in range(n_samples):
        radii = rng.uniform(0.38, 0.47, ndim) * image_size
        offset = rng.uniform(-0.04, 0.04, ndim) * image_size
        d = np.sqrt(
            sum(((grid[a] - centre - offset[a]) / radii[a]) ** 2 for a in range(ndim))
        )
        brain = d <= 1.0
        mask = np.zeros(shape, dtype=np.int64)
        for _ in range(rng.randint(lesions[0], lesions[1] + 1)):
            r = rng.uniform(0.09, 0.17) * image_size
            stretch = rng.uniform(0.8, 1.25, ndim)
            pos = centre + offset + rng.uniform(-0.45, 0.45, ndim) * (radii - r)
            dl = np.sqrt(
                sum(
                    ((grid[a] - pos[a]) / (max(r, 1.5) * stretch[a])) ** 2
                    for a in range(ndim)
                )
            )
            lesion = np.zeros(shape, dtype=np.int64)
            lesion[dl <= 1.0] = 1
            if n_classes >= 3:
                lesion[dl <= 0.65] = 2
            if n_classes == 4:
                lesion[(dl <= 0.65) & (dl > 0.4)] = 3
            inside = (lesion > 0) & brain
            mask[inside] = lesion[inside]
        y[i] = mask
        for c in range(n_channels):
            image = np.where(brain, contrasts[c, 0], 0.0).astype(np.float32)
            for label in range(1, n_classes):
                # a two-class lesion looks like the 4-class enhancing rim
                value = contrasts[c, 3] if n_classes == 2 else contrasts[c, label]
                image[mask == label] = value
            X[i, ..., c] = image
    X += rng.normal(0.0, noise, X.shape).astype(np.float32)
    np.clip(X, 0.0, 1.0, out=X)
    if n_channels == 1:
        return np.round(X[..., 0] * 255).astype(np.uint8), y
    return X, y
