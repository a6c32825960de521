"""Overlay plots of class activation maps."""

from __future__ import annotations

import os
from numbers import Integral, Real

import numpy as np

from ..utils import read_images

__all__ = ["plot_gradcam"]


def _label_name(label, class_names):
    if class_names is None:
        return str(label)
    if isinstance(class_names, dict):
        return str(class_names.get(label, label))
    # A list is indexed by integer labels in its range only: a label of -1
    # would otherwise name the last class, one of 0.7 the first.
    value = label.item() if isinstance(label, np.generic) else label
    if isinstance(value, Integral) and 0 <= value < len(class_names):
        return str(class_names[value])
    return str(label)


def plot_gradcam(
    images,
    heatmaps,
    *,
    y_true=None,
    y_pred=None,
    y_proba=None,
    class_names=None,
    ncols=4,
    alpha=0.4,
    cmap="jet",
    path=None,
    dpi=100,
    axes=None,
):
    """Plot heat maps over their images in a grid, with true and predicted labels.

    A colour bar gives the scale of the maps (each scaled to ``[0, 1]`` by its
    own minimum and maximum, so colours compare places within an image, not
    across images).

    Parameters
    ----------
    images : array-like
        The images the maps belong to: anything
        :func:`skmedimg.utils.read_images` accepts (paths, arrays, PIL
        images). They are resized to the maps' size for the overlay.
    heatmaps : ndarray of shape (n_samples, height, width)
        Maps in ``[0, 1]``, as returned by :func:`gradcam`.
    y_true, y_pred : array-like of shape (n_samples,), default=None
        Labels written above each image; a wrong prediction is written in
        red.
    y_proba : array-like of shape (n_samples,) or (n_samples, n_classes), \
default=None
        Predicted probabilities, written in the titles: one per image (that of
        the predicted class), or ``predict_proba``'s rows, of which the
        largest (the predicted class's, for a prediction by argmax) is shown.
    class_names : dict or sequence of str, default=None
        Display names: a dict from label to name, or a sequence indexed by
        integer labels. ``None`` writes the labels as they are.
    ncols : int, default=4
        Images per row.
    alpha : float, default=0.4
        Opacity of the heat map over the image.
    cmap : str, default="jet"
        Matplotlib colour map of the heat map.
    path : str or path-like, default=None
        Where to write the figure (the format follows the extension, PNG for
        ``.png``). ``None`` writes nothing.
    dpi : int, default=100
        Resolution of the written file.
    axes : sequence of matplotlib Axes, default=None
        One Axes per image (an array from ``subplots`` is flattened), for
        drawing into a figure of your own; the colour bar is added to their
        figure and ``ncols`` is ignored. By default a new figure with
        ``ncols`` images per row is made.

    Returns
    -------
    figure : matplotlib.figure.Figure
        The figure (made without pyplot, so no window opens and no global
        state changes; a notebook shows it when it is the cell's value).

    Raises
    ------
    ValueError
        If the numbers of images, maps, labels and probabilities differ, the
        maps are not ``(n_samples, height, width)``, or ``axes`` does not hold
        one Axes per image.

    Examples
    --------
    >>> import numpy as np
    >>> from skmedimg.inspection import plot_gradcam
    >>> images = np.zeros((2, 32, 32), dtype=np.uint8)
    >>> maps = np.random.default_rng(0).random((2, 32, 32))
    >>> fig = plot_gradcam(images, maps, y_true=["a", "b"], y_pred=["a", "a"])
    >>> len(fig.axes)  # two panels and the colour bar
    3
    """
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from matplotlib.figure import Figure

    heatmaps = np.asarray(heatmaps, dtype=np.float32)
    if heatmaps.ndim != 3:
        raise ValueError(
            f"heatmaps must have shape (n_samples, height, width), got {heatmaps.shape}"
        )
    n_samples, height, width = heatmaps.shape
    if n_samples == 0:
        raise ValueError("no heat maps to plot (an empty batch)")
    rgb = read_images(images, image_size=(height, width), color="rgb")
    if len(rgb) != n_samples:
        raise ValueError(f"{len(rgb)} images but {n_samples} heat maps")
    labels = {}
    for name, values in (("y_true", y_true), ("y_pred", y_pred)):
        if values is not None:
            values = np.asarray(values)
            if values.shape != (n_samples,):
                raise ValueError(
                    f"{name} must have one label per image ({n_samples}), got "
                    f"shape {values.shape}"
                )
            labels[name] = values
    proba = None
    if y_proba is not None:
        proba = np.asarray(y_proba, dtype=float)
        if proba.ndim == 2 and proba.shape[0] == n_samples:
            proba = proba.max(axis=1)
        if proba.shape != (n_samples,):
            raise ValueError(
                f"y_proba must have shape ({n_samples},) or ({n_samples}, "
                f"n_classes), got {np.shape(y_proba)}"
            )
    if not isinstance(ncols, Integral) or ncols < 1:
        raise ValueError(f"ncols must be a positive int, got {ncols!r}")
    if not isinstance(alpha, Real) or not 0 <= alpha <= 1:
        raise ValueError(f"alpha must be a number in [0, 1], got {alpha!r}")

    if axes is None:
        ncols = min(int(ncols), n_samples)
        nrows = -(-n_samples // ncols)
        fig = Figure(figsize=(2.6 * ncols, 2.9 * nrows), layout="constrained")
        axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    else:
        axes = np.asarray(axes, dtype=object).ravel()
        if axes.size != n_samples:
            raise ValueError(
                f"axes must hold one matplotlib Axes per image ({n_samples}), "
                f"got {axes.size}"
            )
        fig = axes[0].figure
    panels = []
    for i, ax in enumerate(axes):
        ax.set_axis_off()
        if i >= n_samples:
            fig.delaxes(ax)
            continue
        panels.append(ax)
        ax.imshow(rgb[i])
        ax.imshow(heatmaps[i], cmap=cmap, alpha=float(alpha), vmin=0.0, vmax=1.0)
        lines = []
        if "y_true" in labels:
            lines.append(f"true: {_label_name(labels['y_true'][i], class_names)}")
        if "y_pred" in labels:
            lines.append(f"pred: {_label_name(labels['y_pred'][i], class_names)}")
        if proba is not None:
            if "y_pred" in labels:
                lines[-1] += f" ({proba[i]:.2f})"
            else:
                lines.append(f"p = {proba[i]:.2f}")
        wrong = (
            "y_true" in labels
            and "y_pred" in labels
            and labels["y_true"][i] != labels["y_pred"][i]
        )
        if lines:
            ax.set_title("\n".join(lines), fontsize=9, color="red" if wrong else "k")
    mappable = ScalarMappable(norm=Normalize(0.0, 1.0), cmap=cmap)
    colorbar = fig.colorbar(mappable, ax=panels, shrink=0.8, pad=0.02)
    colorbar.set_label("Grad-CAM (0 = min, 1 = max of each map)", fontsize=8)
    if path is not None:
        fig.savefig(os.fspath(path), dpi=dpi)
    return fig
