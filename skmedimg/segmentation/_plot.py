"""Overlay plots of label masks (ground truth and prediction) on their images."""

from __future__ import annotations

import os
from numbers import Integral, Real

import numpy as np

from ..utils import DEPRECATED, renamed_argument

__all__ = ["plot_segmentation"]

_OVERLAYS = ("contour", "fill")
_MAX_AUTO_SLICES = 4


def _split_image(image, mask_shape):
    """Return ``(spatial image (gray or RGB), spatial shape)`` of ``image``.

    The spatial shape comes from the image; the mask then has that shape
    (a label map) or that shape plus one axis (boolean region masks).
    """
    image = np.asarray(image)
    if image.ndim == 2:
        return image, image.shape
    if image.ndim == 3:
        # (H, W, C) 2-D image, or (X, Y, Z) volume: the mask decides
        if tuple(mask_shape[:3]) == image.shape:
            return image, image.shape
        if tuple(mask_shape[:2]) == image.shape[:2]:
            return image, image.shape[:2]
        raise ValueError(
            f"mask of shape {tuple(mask_shape)} does not fit an image of shape "
            f"{image.shape}"
        )
    if image.ndim == 4:
        return image, image.shape[:3]
    raise ValueError(
        "image must be 2-D (height, width[, n_channels]) or 3-D "
        f"(x, y, z[, n_channels]); got shape {image.shape}"
    )


def _display_image(image, spatial, channel):
    """Return the gray (or, for 2-D images, RGB) array to show."""
    if image.ndim == len(spatial):
        return image.astype(np.float32)
    n_channels = image.shape[-1]
    if len(spatial) == 2 and n_channels in (3, 4) and channel is None:
        rgb = image[..., :3].astype(np.float32)
        lo, hi = float(rgb.min()), float(rgb.max())
        return (rgb - lo) / (hi - lo) if hi > lo else np.zeros_like(rgb)
    channel = 0 if channel is None else channel
    if not isinstance(channel, Integral) or not 0 <= channel < n_channels:
        raise ValueError(
            f"channel must be an int in [0, {n_channels}), got {channel!r}"
        )
    return image[..., int(channel)].astype(np.float32)


def _as_layers(mask, spatial, what, labels):
    """Turn a label map or boolean region stack into ``{label: bool array}``."""
    mask = np.asarray(mask)
    if mask.shape == tuple(spatial):
        if mask.dtype.kind not in "biu":
            raise ValueError(f"{what} must hold integer labels, got {mask.dtype}")
        present = [v for v in np.unique(mask).tolist() if v != 0]
        chosen = present if labels is None else list(labels)
        return {label: mask == label for label in chosen}, "labels"
    if mask.shape[:-1] == tuple(spatial) and mask.ndim == len(spatial) + 1:
        # boolean region masks (CNNSegmenter.predict with regions)
        n = mask.shape[-1]
        chosen = range(n) if labels is None else list(labels)
        return {k: mask[..., k].astype(bool) for k in chosen}, "regions"
    raise ValueError(
        f"{what} of shape {mask.shape} does not fit the image's spatial shape "
        f"{tuple(spatial)} (expected {tuple(spatial)} labels or "
        f"{tuple(spatial)} + (n_regions,) region masks)"
    )


def _name(label, names):
    if names is None:
        return str(label)
    if isinstance(names, dict):
        return str(names.get(label, label))
    names = list(names)
    if isinstance(label, Integral) and 0 <= label < len(names):
        return str(names[label])
    return str(label)


def _choose_slices(layers, n_depth, slices):
    if slices is not None:
        if isinstance(slices, Integral) and not isinstance(slices, bool):
            if slices < 1:
                raise ValueError(f"slices must be at least 1, got {slices}")
            count, chosen = int(slices), None
        else:
            chosen = [int(s) for s in np.ravel(slices)]
            bad = [s for s in chosen if not -n_depth <= s < n_depth]
            if bad or not chosen:
                raise ValueError(
                    f"slices must be indices in [0, {n_depth}) of the last spatial "
                    f"axis, got {list(np.ravel(slices))}"
                )
            return [s % n_depth for s in chosen]
    else:
        count = _MAX_AUTO_SLICES
    foreground = np.zeros(n_depth, bool)
    for layer in layers:
        foreground |= layer.reshape(-1, n_depth).any(axis=0)
    candidates = np.flatnonzero(foreground)
    if candidates.size == 0:
        candidates = np.arange(n_depth)
    count = min(count, candidates.size)
    picks = np.linspace(0, candidates.size - 1, count).round().astype(int)
    return sorted(set(candidates[picks].tolist()))


def plot_segmentation(
    image,
    mask,
    *,
    pred=None,
    overlay="contour",
    labels=None,
    names=None,
    slices=None,
    channel=None,
    ax=None,
    alpha=0.4,
    path=None,
    dpi=100,
    mode=DEPRECATED,
):
    """Plot label masks over their image: ground truth and, optionally, prediction.

    Each label (or region) gets one colour. The ground truth is drawn as solid
    contours (``overlay="contour"``) or as a translucent fill
    (``overlay="fill"``); the prediction, when given, is always drawn as dashed
    contours of the same colours, so that the two can be told apart where they
    overlap. A legend names the labels and the two styles.

    For a 3-D volume the figure is a montage of axial-style slices along the
    **last spatial axis** (``k``, the third voxel axis of a NIfTI file as
    :func:`skmedimg.utils.read_volume` returns it): by default up to four
    evenly spaced slices among those holding foreground in ``mask`` or
    ``pred``. Slices are shown as stored (rows are the first spatial axis),
    without reorientation.

    Parameters
    ----------
    image : array-like
        A 2-D image ``(height, width)`` or ``(height, width, n_channels)``, or
        a 3-D volume ``(x, y, z)`` or ``(x, y, z, n_channels)``, channels
        last. Which one is meant follows from ``mask``'s shape.
    mask : array-like
        Ground truth: an integer label map of the image's spatial shape, or
        boolean region masks of shape ``(*spatial, n_regions)`` (as
        :meth:`CNNSegmenter.predict` returns with ``regions``).
    pred : array-like, default=None
        Prediction, in the same form as ``mask``.
    overlay : {"contour", "fill"}, default="contour"
        How the ground truth is drawn.
    labels : sequence, default=None
        The labels (or region indices) to draw. By default every nonzero label
        present in ``mask`` or ``pred`` (every region for region masks).
    names : dict or sequence of str, default=None
        Display names for the legend: a dict from label to name, or a
        sequence indexed by label (or region index), for example
        ``list(BRATS_REGIONS)``.
    slices : int or sequence of int, default=None
        3-D only: how many slices to show (an int) or which indices of the
        last spatial axis. By default up to 4 slices with foreground.
    channel : int, default=None
        The channel shown in gray for multi-channel images (the first by
        default; a 2-D image with 3 or 4 channels is shown in colour unless a
        channel is named).
    ax : matplotlib Axes, default=None
        Where to draw a 2-D image or a single slice. By default a new figure
        is made.
    alpha : float, default=0.4
        Opacity of the fill in ``overlay="fill"``.
    path : str or path-like, default=None
        Where to write the figure (the format follows the extension).
    dpi : int, default=100
        Resolution of the written file.
    mode : {"contour", "fill"}
        Deprecated spelling of ``overlay``.

        .. deprecated:: 0.1
           ``mode`` was renamed ``overlay`` and will be removed in 0.3.

    Returns
    -------
    figure : matplotlib.figure.Figure
        The figure (made without pyplot when ``ax`` is None, so no window
        opens and no global state changes).

    Raises
    ------
    ValueError
        If the shapes of image, mask and prediction do not fit, ``overlay``
        is unknown, ``mode`` and ``overlay`` are both given, ``alpha`` is
        outside ``[0, 1]``, or ``slices`` are out of range, or several slices
        are asked for with one ``ax``.

    See Also
    --------
    skmedimg.inspection.plot_gradcam : Heat maps over images.

    Examples
    --------
    >>> import numpy as np
    >>> from skmedimg.segmentation import plot_segmentation
    >>> image = np.random.default_rng(0).random((32, 32))
    >>> mask = np.zeros((32, 32), dtype=int)
    >>> mask[8:20, 8:20] = 1
    >>> pred = np.roll(mask, 2, axis=1)
    >>> fig = plot_segmentation(image, mask, pred=pred, names={1: "tumour"})
    >>> [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    ['tumour', 'ground truth', 'prediction']
    """
    overlay = renamed_argument(
        "plot_segmentation", "mode", mode, "overlay", overlay, default="contour"
    )
    if overlay not in _OVERLAYS:
        raise ValueError(f"overlay must be one of {_OVERLAYS}, got {overlay!r}")
    if not isinstance(alpha, Real) or not 0 <= alpha <= 1:
        raise ValueError(f"alpha must be a number in [0, 1], got {alpha!r}")
    mask = np.asarray(mask)
    image, spatial = _split_image(image, mask.shape)
    display = _display_image(image, spatial, channel)
    truth, kind = _as_layers(mask, spatial, "mask", labels)
    predicted = None
    if pred is not None:
        pred = np.asarray(pred)
        predicted, pred_kind = _as_layers(pred, spatial, "pred", labels)
        if pred_kind != kind:
            raise ValueError(
                f"mask and pred must both be label maps or both region masks; "
                f"got {mask.shape} and {pred.shape}"
            )
        if labels is None and kind == "labels":
            # show every label that either of them holds, in sorted order
            keys = sorted(set(truth) | set(predicted))
            truth = {k: mask == k for k in keys}
            predicted = {k: pred == k for k in keys}
    keys = sorted(set(truth) | set(predicted or {}), key=lambda k: (str(type(k)), k))

    from matplotlib.colors import to_rgba
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    colours = {key: f"C{i % 10}" if i % 10 != 7 else "C9" for i, key in enumerate(keys)}

    if len(spatial) == 3:
        layers = list(truth.values()) + list((predicted or {}).values())
        chosen = _choose_slices(layers, spatial[2], slices)
    else:
        if slices is not None:
            raise ValueError("slices applies to 3-D volumes only")
        chosen = [None]
    if ax is not None and len(chosen) > 1:
        raise ValueError(
            f"ax can hold one image; {len(chosen)} slices were chosen "
            "(pass slices=[index] or no ax)"
        )

    if ax is None:
        n = len(chosen)
        fig = Figure(figsize=(3.2 * n + 1.6, 3.6), layout="constrained")
        axes = np.atleast_1d(fig.subplots(1, n, squeeze=False)).ravel()
    else:
        fig = ax.figure
        axes = [ax]

    def take(arr, index):
        return arr if index is None else arr[:, :, index]

    for axis, index in zip(axes, chosen, strict=True):
        picture = take(display, index)
        if picture.ndim == 3:
            axis.imshow(picture)
        else:
            axis.imshow(picture, cmap="gray")
        for key in keys:
            colour = colours[key]
            layer = truth.get(key)
            if layer is not None:
                layer = take(layer, index)
                if overlay == "fill":
                    fill = np.zeros((*layer.shape, 4), np.float32)
                    fill[layer] = to_rgba(colour, alpha)
                    axis.imshow(fill, interpolation="nearest")
                elif layer.any():
                    axis.contour(
                        layer.astype(np.float32),
                        levels=[0.5],
                        colors=[colour],
                        linewidths=1.2,
                        linestyles="solid",
                    )
            if predicted is not None and key in predicted:
                layer = take(predicted[key], index)
                if layer.any():
                    axis.contour(
                        layer.astype(np.float32),
                        levels=[0.5],
                        colors=[colour],
                        linewidths=1.2,
                        linestyles="dashed",
                    )
        axis.set_axis_off()
        if index is not None:
            axis.set_title(f"slice {index}", fontsize=9)

    handles = [
        Patch(
            facecolor=to_rgba(colours[k], 0.6),
            edgecolor=colours[k],
            label=_name(k, names),
        )
        for k in keys
    ]
    truth_style = "solid" if overlay == "contour" else None
    if predicted is not None:
        if truth_style is None:
            handles.append(
                Patch(facecolor=to_rgba("gray", alpha), label="ground truth")
            )
        else:
            handles.append(Line2D([], [], color="k", ls="solid", label="ground truth"))
        handles.append(Line2D([], [], color="k", ls="dashed", label="prediction"))
    if handles:
        axes[-1].legend(
            handles=handles,
            loc="upper left",
            bbox_to_anchor=(1.02, 1.0),
            fontsize=8,
            frameon=False,
        )
    if path is not None:
        fig.savefig(os.fspath(path), dpi=dpi)
    return fig
