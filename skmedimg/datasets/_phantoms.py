"""Synthetic MRI-like phantoms with class-dependent lesions."""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
from sklearn.utils import check_random_state

__all__ = ["PHANTOM_CLASSES", "make_phantoms"]

#: What each class of :func:`make_phantoms` shows, by label.
PHANTOM_CLASSES = (
    "no lesion",
    "bright round lesion",
    "ring-enhancing lesion",
    "dark region near the centre",
    "elongated bright lesion",
    "multiple small bright spots",
)

_MAX_CLASSES = len(PHANTOM_CLASSES)
# Pixels rendered at once; bounds the memory of the float32 work arrays.
_CHUNK_PIXELS = 1 << 22


def _ramp(x):
    """Anti-aliased step: 0 below -0.5, 1 above 0.5, linear in between."""
    return np.clip(x + 0.5, 0.0, 1.0)


def _interp_matrix(n_out, n_in):
    """Matrix of shape (n_out, n_in) that linearly upsamples a 1-D signal."""
    grid = np.linspace(-1.0, 1.0, n_out)
    nodes = np.linspace(-1.0, 1.0, n_in)
    return np.stack(
        [np.interp(grid, nodes, np.eye(n_in)[j]) for j in range(n_in)], axis=1
    ).astype(np.float32)


def _smooth_field(coarse, size):
    """Upsample (n, k, k) coarse random values to smooth (n, size, size) fields."""
    up = _interp_matrix(size, coarse.shape[-1])
    return np.einsum("ij,njk,lk->nil", up, coarse, up, optimize=True)


def _check_weights(weights, n_classes):
    if weights is None:
        return np.full(n_classes, 1.0 / n_classes)
    weights = np.asarray(weights, dtype=float).ravel()
    if len(weights) == n_classes - 1:
        weights = np.append(weights, 1.0 - weights.sum())
    if len(weights) != n_classes:
        raise ValueError(
            f"weights must have n_classes={n_classes} or n_classes - 1 entries, "
            f"got {len(weights)}"
        )
    if not np.all(np.isfinite(weights)) or np.any(weights < 0) or weights.sum() <= 0:
        raise ValueError(
            f"weights must be non-negative and sum to a positive value, got "
            f"{weights.tolist()}"
        )
    return weights / weights.sum()


def _class_counts(n_samples, proportions):
    """Largest-remainder split of n_samples by proportions (deterministic)."""
    exact = proportions * n_samples
    counts = np.floor(exact).astype(int)
    remainder = n_samples - counts.sum()
    order = np.argsort(-(exact - counts), kind="stable")
    counts[order[:remainder]] += 1
    return counts


def _check_params(n_samples, n_classes, image_size, n_channels, class_sep, noise):
    def is_int(value):
        return isinstance(value, Integral) and not isinstance(value, bool)

    if not is_int(n_samples) or n_samples < 1:
        raise ValueError(f"n_samples must be an int >= 1, got {n_samples!r}")
    if not is_int(n_classes) or not 2 <= n_classes <= _MAX_CLASSES:
        raise ValueError(
            f"n_classes must be an int between 2 and {_MAX_CLASSES}, got {n_classes!r}"
        )
    if not is_int(image_size) or image_size < 16:
        raise ValueError(f"image_size must be an int >= 16, got {image_size!r}")
    if n_channels not in (1, 3) or isinstance(n_channels, bool):
        raise ValueError(f"n_channels must be 1 or 3, got {n_channels!r}")
    # Beyond these, lesions or noise saturate every pixel (and very large
    # values overflow the float32 images).
    if not isinstance(class_sep, Real) or not 0 <= class_sep <= 100:
        raise ValueError(f"class_sep must be a number in [0, 100], got {class_sep!r}")
    if not isinstance(noise, Real) or not 0 <= noise <= 10:
        raise ValueError(f"noise must be a number in [0, 10], got {noise!r}")


def _draw_parameters(rng, y, class_sep):
    """Per-sample anatomy, lesion and acquisition parameters."""
    n = len(y)
    u = rng.uniform
    params = {
        # head pose and shape
        "cy": u(-0.07, 0.07, n),
        "cx": u(-0.07, 0.07, n),
        "a": u(0.74, 0.88, n),
        "ratio": u(0.76, 0.90, n),
        "theta": u(-0.35, 0.35, n),
        "ventricle": u(0.7, 1.3, n),
        "wm": u(0.08, 0.16, n),
        # lesion: centre in head coordinates, size, shape, contrast
        "rho": np.sqrt(u(0.0, 1.0, n)),
        "phi": u(0.0, 2 * np.pi, n),
        "size": u(0.0, 1.0, n),
        "angle": u(0.0, np.pi, n),
        "amp": class_sep * u(0.7, 1.3, n),
        "spots": u(-0.55, 0.55, (n, 3, 2)),
        # acquisition: gain, gamma (contrast), bias field strength
        "gain": u(0.75, 1.2, n),
        "gamma": u(0.8, 1.25, n),
        "bias": u(0.08, 0.22, n),
        # coarse random values of the brain texture and of the bias field
        "texture": rng.standard_normal((n, 9, 9)),
        "bias_field": rng.standard_normal((n, 3, 3)),
    }
    return {k: v.astype(np.float32) for k, v in params.items()}


def _render(rng, y, prm, size, noise):
    """Render one chunk of phantoms as float32 images in [0, 1]."""
    n = len(y)
    grid = ((np.arange(size, dtype=np.float32) + 0.5) / size) * 2.0 - 1.0

    def col(name):
        return prm[name][:, None, None]

    b = col("a") * col("ratio")
    dy = grid[None, :, None] - col("cy")
    dx = grid[None, None, :] - col("cx")
    cos, sin = np.cos(col("theta")), np.sin(col("theta"))
    # Normalised head coordinates: the head outline is the unit circle.
    p = (dx * cos + dy * sin) / b
    q = (dy * cos - dx * sin) / col("a")
    r = np.hypot(p, q)
    px = (size / 2.0) * b  # pixels per unit of head coordinates

    head = _ramp((1.0 - r) * px)
    brain = _ramp((0.87 - r) * px)
    white = _ramp((0.62 - r) * px * 0.3)
    texture = _smooth_field(prm["texture"], size)
    img = 0.8 * (head - brain)  # scalp and skull
    img += brain * (0.40 + col("wm") * white + 0.035 * texture)

    # Two ventricles near the centre, present in every class.
    vs = col("ventricle")
    for side in (-1.0, 1.0):
        vp = (p - side * 0.11 * vs) / (0.055 * vs)
        vq = (q + 0.03) / (0.2 * vs)
        tilt = side * 0.25
        vd = np.hypot(vp + tilt * vq, vq)
        img *= 1.0 - 0.7 * _ramp((1.0 - vd) * px * 0.055 * vs)

    lesion = np.zeros_like(img)
    rho, phi, s = prm["rho"], prm["phi"], prm["size"]
    for label in range(1, int(y.max(initial=0)) + 1):
        idx = np.flatnonzero(y == label)
        if len(idx) == 0:
            continue
        lp, lq, scale = p[idx], q[idx], px[idx]
        amp = prm["amp"][idx][:, None, None]
        radius = 0.2 if label == 3 else 0.5
        cp = (radius * rho[idx] * np.cos(phi[idx]))[:, None, None]
        cq = (radius * rho[idx] * np.sin(phi[idx]))[:, None, None]
        d = np.hypot(lp - cp, lq - cq)
        sz = s[idx][:, None, None]
        if label == 1:  # bright round lesion with a soft rim
            rad = 0.09 + 0.09 * sz
            sig = 0.26 * amp * _ramp((rad - d) * scale * 0.5)
        elif label == 2:  # ring enhancement around a dark necrotic core
            rad = 0.1 + 0.08 * sz
            ring = _ramp((0.03 - np.abs(d - rad)) * scale)
            core = _ramp((rad - 0.03 - d) * scale)
            sig = amp * (0.3 * ring - 0.14 * core)
        elif label == 3:  # dark (hypointense) region near the centre
            rad = 0.12 + 0.1 * sz
            sig = -0.22 * amp * _ramp((rad - d) * scale * 0.4)
        elif label == 4:  # elongated bright lesion of random orientation
            ang = prm["angle"][idx][:, None, None]
            ca, sa = np.cos(ang), np.sin(ang)
            u = ((lp - cp) * ca + (lq - cq) * sa) / (0.14 + 0.1 * sz)
            v = ((lq - cq) * ca - (lp - cp) * sa) / (0.045 + 0.015 * sz)
            e = np.hypot(u, v)
            sig = 0.22 * amp * _ramp((1.0 - e) * scale * 0.035)
        else:  # several small bright spots
            sig = np.zeros_like(lp)
            for k in range(3):
                sp = prm["spots"][idx, k, 0][:, None, None]
                sq = prm["spots"][idx, k, 1][:, None, None]
                rad = 0.045 + 0.02 * sz
                sig += _ramp((rad - np.hypot(lp - sp, lq - sq)) * scale)
            sig *= 0.26 * amp
        lesion[idx] = sig
    img += brain * lesion

    # Acquisition: smooth bias field, gain and gamma, then Rician noise.
    bias = 1.0 + col("bias") * _smooth_field(prm["bias_field"], size)
    img = np.clip(img * bias * col("gain"), 0.0, None) ** col("gamma")
    if noise > 0:
        # (n, 2, size, size): drawn sample by sample, so chunking cannot
        # change which noise an image gets
        z = rng.standard_normal((n, 2, size, size), dtype=np.float32)
        img = np.hypot(img + noise * z[:, 0], noise * z[:, 1])
    return img


def make_phantoms(
    n_samples=200,
    *,
    n_classes=4,
    image_size=64,
    n_channels=1,
    weights=None,
    class_sep=1.0,
    noise=0.04,
    random_state=None,
):
    """Generate synthetic MRI-like head images with class-dependent lesions.

    Each image shows an axial "head": an ellipse of random position, size and
    rotation with a bright skull ring, a brain with a white-matter core, random
    texture and two dark ventricles near the centre. The class decides the
    lesion inside the brain, at a random place, size and contrast:

    ====  ==========================================================
    0     no lesion
    1     bright round lesion
    2     ring-enhancing lesion (bright rim around a dark core)
    3     dark (hypointense) region near the centre
    4     elongated bright lesion of random orientation
    5     several small bright spots
    ====  ==========================================================

    ``n_classes=k`` uses the first ``k`` rows. Every image then goes through a
    simulated acquisition: a smooth intensity inhomogeneity (bias field), a
    random gain and gamma (contrast variation) and Rician noise. This is the
    embedded dataset of skmedimg, in the spirit of
    :func:`sklearn.datasets.make_classification`: it lets examples, doctests
    and tests run offline. A linear model on raw pixels learns the classes
    only in part, because lesions move; a small CNN does much better.

    Parameters
    ----------
    n_samples : int, default=200
        Number of images.
    n_classes : int, default=4
        Number of classes, between 2 and 6.
    image_size : int, default=64
        Height and width of the square images, at least 16.
    n_channels : {1, 3}, default=1
        ``1`` returns gray images of shape ``(n_samples, image_size,
        image_size)``; ``3`` returns ``(n_samples, image_size, image_size, 3)``
        with the gray image repeated in the three channels (as a gray scan
        saved as an RGB JPEG).
    weights : array-like of shape (n_classes,) or (n_classes - 1,), default=None
        Proportion of samples in each class, as in
        :func:`~sklearn.datasets.make_classification`; with ``n_classes - 1``
        entries the last class gets the rest. ``None`` means balanced classes.
        Counts are rounded so that they sum to ``n_samples``.
    class_sep : float, default=1.0
        Multiplies the lesion contrast: larger is easier, ``0`` makes every
        class look like class 0. At most 100.
    noise : float, default=0.04
        Standard deviation of the Rician noise, relative to the intensity range
        ``[0, 1]``. At most 10.
    random_state : int, RandomState instance or None, default=None
        Seed of the generator; an int gives the same images on every call.

    Returns
    -------
    X : ndarray of shape (n_samples, image_size, image_size) or \
(n_samples, image_size, image_size, 3)
        The images, ``uint8``.
    y : ndarray of shape (n_samples,)
        Integer class labels in ``0 .. n_classes - 1``, in shuffled order.

    See Also
    --------
    load_image_folder : Real images stored as ``<root>/<class>/<image>``.
    load_medmnist : The MedMNIST benchmark datasets.

    Notes
    -----
    Images are rendered in float32 chunks of about four million pixels, so the
    memory use stays bounded; 1000 images of 64x64 take well under a second.

    Examples
    --------
    >>> import numpy as np
    >>> from skmedimg.datasets import make_phantoms
    >>> X, y = make_phantoms(8, n_classes=4, image_size=32, random_state=0)
    >>> X.shape, X.dtype
    ((8, 32, 32), dtype('uint8'))
    >>> np.bincount(y)
    array([2, 2, 2, 2])
    >>> make_phantoms(4, image_size=32, n_channels=3, random_state=0)[0].shape
    (4, 32, 32, 3)
    """
    _check_params(n_samples, n_classes, image_size, n_channels, class_sep, noise)
    proportions = _check_weights(weights, n_classes)
    rng = check_random_state(random_state)
    # NumPy Generators seeded from ``rng``: one for the labels and per-image
    # parameters, one for the noise, drawn chunk after chunk.
    seeds = rng.randint(np.iinfo(np.int32).max, size=2)
    gen = np.random.default_rng(seeds[0])
    noise_gen = np.random.default_rng(seeds[1])

    counts = _class_counts(n_samples, proportions)
    y = np.repeat(np.arange(n_classes), counts)
    gen.shuffle(y)
    prm = _draw_parameters(gen, y, float(class_sep))

    X = np.empty((n_samples, image_size, image_size), dtype=np.uint8)
    chunk = max(1, _CHUNK_PIXELS // (image_size * image_size))
    for start in range(0, n_samples, chunk):
        sl = slice(start, start + chunk)
        part = {k: v[sl] for k, v in prm.items()}
        img = _render(noise_gen, y[sl], part, image_size, float(noise))
        X[sl] = np.rint(np.clip(img, 0.0, 1.0) * 255.0)
    if n_channels == 3:
        X = np.repeat(X[..., None], 3, axis=-1)
    return X, y
