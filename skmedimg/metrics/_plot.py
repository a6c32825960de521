"""Figures of the report: confusion matrix and training curves."""

from __future__ import annotations

from numbers import Real

import numpy as np
from sklearn.metrics import confusion_matrix

from ._report import _check_targets, _labels

__all__ = ["plot_confusion_matrix", "plot_training_curves"]

_NORMALIZE = {"true": 1, "pred": 0, "all": None}


def plot_confusion_matrix(
    y_true, y_pred, *, labels=None, normalize="true", ax=None, title=None, cmap="Blues"
):
    """Plot a confusion matrix with counts and percentages in every cell.

    Rows are the true labels and columns the predicted labels. Each cell shows
    its count and, unless ``normalize=None``, its percentage of the row
    (``"true"``: the per-class recall on the diagonal), of the column
    (``"pred"``: the precision on the diagonal) or of all samples (``"all"``);
    the colours follow the percentages (the counts when ``normalize=None``),
    so that rare classes are as readable as common ones.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels.
    y_pred : array-like of shape (n_samples,)
        Predicted labels.
    labels : array-like of shape (n_classes,), default=None
        The classes, in the order of the rows and columns. By default the
        sorted union of the labels in ``y_true`` and ``y_pred``.
    normalize : {"true", "pred", "all"} or None, default="true"
        What the percentages (and colours) are relative to.
    ax : matplotlib Axes, default=None
        Where to draw. By default a new figure is created (with
        :mod:`matplotlib.pyplot`, so close it with ``plt.close(fig)``).
    title : str, default=None
        Axes title; by default "Confusion matrix" (with what the percentages
        are relative to).
    cmap : str or matplotlib Colormap, default="Blues"
        Colour map.

    Returns
    -------
    fig : matplotlib Figure
        The figure that holds the plot (``fig.savefig("confusion.png")``).

    See Also
    --------
    classification_summary : The confusion matrix and every metric as numbers.
    sklearn.metrics.ConfusionMatrixDisplay : scikit-learn's plot.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import matplotlib.pyplot as plt
    >>> from skmedimg.metrics import plot_confusion_matrix
    >>> y_true = ["glioma", "glioma", "meningioma", "pituitary", "pituitary"]
    >>> y_pred = ["glioma", "meningioma", "meningioma", "pituitary", "glioma"]
    >>> fig = plot_confusion_matrix(y_true, y_pred)
    >>> [t.get_text() for t in fig.axes[0].get_xticklabels()]
    ['glioma', 'meningioma', 'pituitary']
    >>> fig.axes[0].texts[0].get_text().split()
    ['1', '50.0%']
    >>> plt.close(fig)
    """
    if normalize is not None and (
        not isinstance(normalize, str) or normalize not in _NORMALIZE
    ):
        raise ValueError(
            f"normalize must be 'true', 'pred', 'all' or None; got {normalize!r}."
        )
    y_true, y_pred = _check_targets(y_true, y_pred)
    labels = _labels(y_true, y_pred, labels)
    counts = confusion_matrix(y_true, y_pred, labels=labels)
    if normalize is None:
        values = counts.astype(float)
    else:
        axis = _NORMALIZE[normalize]
        totals = counts.sum() if axis is None else counts.sum(axis=axis, keepdims=True)
        values = np.zeros(counts.shape)
        np.divide(counts, totals, out=values, where=np.asarray(totals) > 0)

    import matplotlib.pyplot as plt

    if ax is None:
        size = max(4.0, 0.9 * len(labels) + 2.5)
        fig, ax = plt.subplots(figsize=(size + 1.0, size), layout="constrained")
    else:
        fig = ax.figure
    vmax = 1.0 if normalize is not None else max(values.max(), 1.0)
    image = ax.imshow(values, cmap=cmap, vmin=0.0, vmax=vmax)
    colorbar = fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    colorbar.set_label("count" if normalize is None else "fraction")

    threshold = vmax / 2.0
    for i in range(counts.shape[0]):
        for j in range(counts.shape[1]):
            text = f"{counts[i, j]:d}"
            if normalize is not None:
                text += f"\n{100.0 * values[i, j]:.1f}%"
            ax.text(
                j,
                i,
                text,
                ha="center",
                va="center",
                color="white" if values[i, j] > threshold else "black",
                fontsize=9,
            )

    names = [str(label) for label in labels]
    ax.set_xticks(range(len(names)), names, rotation=45 if len(names) > 3 else 0)
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("Predicted label")
    ax.set_ylabel("True label")
    if title is None:
        title = "Confusion matrix"
        if normalize is not None:
            title += {
                "true": " (% of true label)",
                "pred": " (% of predicted label)",
                "all": " (% of all)",
            }[normalize]
    ax.set_title(title)
    return fig


def _history_columns(history):
    """Turn a history into {key: list of values}, one value per epoch."""
    if isinstance(history, dict):  # Keras-style: {"loss": [...], ...}
        columns = {key: list(np.ravel(values)) for key, values in history.items()}
        lengths = {len(values) for values in columns.values()}
        if len(lengths) > 1:
            raise ValueError(
                "A history given as a dict must hold one list per key, all of "
                f"the same length; got lengths {sorted(lengths)}."
            )
        n_epochs = lengths.pop() if lengths else 0
    else:
        epochs = list(history)
        if not all(isinstance(epoch, dict) for epoch in epochs):
            raise TypeError(
                "history must be a list of per-epoch dicts (skorch's "
                "net.history) or a dict of lists (Keras' history.history)."
            )
        n_epochs = len(epochs)
        keys = dict.fromkeys(key for epoch in epochs for key in epoch)
        columns = {key: [epoch.get(key) for epoch in epochs] for key in keys}
    if n_epochs == 0:
        raise ValueError("history is empty: there is no epoch to plot.")
    return n_epochs, columns


def _numeric(values):
    out = []
    for value in values:
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, Real):
            if value is not None:
                return None  # not a per-epoch number (e.g. skorch's "batches")
            out.append(np.nan)
        else:
            out.append(float(value))
    return np.asarray(out)


def _panel_of(key):
    name = key.lower()
    if "loss" in name:
        return "loss"
    if name.endswith("acc") or "accuracy" in name:
        return "accuracy"
    if name in {"lr", "learning_rate"} or name.endswith("_lr"):
        return "learning rate"
    return None


def plot_training_curves(history, *, axes=None, title=None):
    """Plot loss, accuracy and learning rate per epoch.

    One panel for every kind of curve present: losses (keys containing
    ``"loss"``, such as ``"train_loss"``, ``"valid_loss"``, Keras' ``"loss"``
    and ``"val_loss"``), accuracies (keys ending in ``"acc"`` or containing
    ``"accuracy"``) and the learning rate (``"lr"``, ``"learning_rate"``, on a
    log scale). Other keys are ignored; an epoch without a value leaves a gap.
    A panel whose curves all keep one value over two epochs or more (a
    constant learning rate) is left out and its values are written under
    the figure, unless every panel is constant.

    Parameters
    ----------
    history : list of dict or dict of lists
        One dict per epoch (skorch's ``net.history``, or the ``history_`` of a
        skmedimg CNN estimator), or one list per key (Keras'
        ``history.history``). An ``"epoch"`` key, if present, gives the x axis;
        otherwise epochs are numbered from 1.
    axes : sequence of matplotlib Axes, default=None
        One Axes per panel, in the order loss, accuracy, learning rate (only
        those present and not constant). By default a new figure is created (with
        :mod:`matplotlib.pyplot`, so close it with ``plt.close(fig)``).
    title : str, default=None
        Figure title.

    Returns
    -------
    fig : matplotlib Figure
        The figure that holds the panels (``fig.savefig("curves.png")``).

    See Also
    --------
    plot_confusion_matrix : The other figure of the report.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import matplotlib.pyplot as plt
    >>> from skmedimg.metrics import plot_training_curves
    >>> history = [
    ...     {"epoch": 1, "train_loss": 0.9, "valid_loss": 0.8, "valid_acc": 0.6},
    ...     {"epoch": 2, "train_loss": 0.6, "valid_loss": 0.7, "valid_acc": 0.7},
    ...     {"epoch": 3, "train_loss": 0.4, "valid_loss": 0.6, "valid_acc": 0.8},
    ... ]
    >>> fig = plot_training_curves(history)
    >>> [ax.get_title() for ax in fig.axes]
    ['Loss', 'Accuracy']
    >>> plt.close(fig)
    """
    n_epochs, columns = _history_columns(history)
    x = np.arange(1, n_epochs + 1)
    if "epoch" in columns:
        epochs = _numeric(columns["epoch"])
        if epochs is not None and np.all(np.isfinite(epochs)):
            x = epochs

    panels = {"loss": {}, "accuracy": {}, "learning rate": {}}
    for key, values in columns.items():
        panel = _panel_of(key)
        if panel is None:
            continue
        numbers = _numeric(values)
        if numbers is not None and np.any(np.isfinite(numbers)):
            panels[panel][key] = numbers
    panels = {name: curves for name, curves in panels.items() if curves}
    if not panels:
        raise ValueError(
            "history has no loss, accuracy or learning rate to plot; its keys "
            f"are {sorted(map(str, columns))}."
        )
    # A panel of flat lines (a constant learning rate, say) shows one number:
    # it is written under the figure instead, unless every panel is flat.
    constant = {
        name: curves
        for name, curves in panels.items()
        if all(_is_constant(values) for values in curves.values())
    }
    if len(constant) < len(panels):
        panels = {name: c for name, c in panels.items() if name not in constant}
    else:
        constant = {}

    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    if axes is None:
        fig, axes = plt.subplots(
            1,
            len(panels),
            figsize=(4.5 * len(panels), 3.8),
            layout="constrained",
            squeeze=False,
        )
        axes = axes.ravel()
    else:
        axes = list(np.ravel(axes))
        if len(axes) != len(panels):
            raise ValueError(
                f"axes must hold {len(panels)} Axes (for {list(panels)}); got "
                f"{len(axes)}."
            )
        fig = axes[0].figure
    marker = "o" if n_epochs <= 30 else None
    for ax, (name, curves) in zip(axes, panels.items(), strict=True):
        for key, values in curves.items():
            ax.plot(x, values, marker=marker, markersize=3, label=key)
        ax.set_title(name.capitalize())
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(name)
        if name == "learning rate" and all(np.nanmin(v) > 0 for v in curves.values()):
            ax.set_yscale("log")
        ax.grid(True, alpha=0.3)
        ax.legend()
    if constant:
        note = ", ".join(
            f"{key} = {values[np.isfinite(values)][0]:.3g}"
            for curves in constant.values()
            for key, values in curves.items()
        )
        fig.supxlabel(f"constant over the epochs: {note}", fontsize=9)
    if title is not None:
        fig.suptitle(title)
    return fig


def _is_constant(values):
    """Whether a curve has two epochs or more and one value at every epoch."""
    finite = values[np.isfinite(values)]
    return len(values) > 1 and finite.size > 0 and np.ptp(finite) == 0
