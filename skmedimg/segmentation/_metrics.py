"""Dice, the Dice scorer and the segmentation report.

The metrics take integer label masks (or boolean region masks, one channel
per region on the last axis) as NumPy arrays, so that they work on any
estimator's output and inside scikit-learn's scorers.
"""

from __future__ import annotations

import warnings

import numpy as np

__all__ = ["BRATS_REGIONS", "dice_score", "dice_scorer", "segmentation_report"]

#: The BraTS evaluation regions over the labels of the Medical Segmentation
#: Decathlon's Task01_BrainTumour (``dataset.json``: 0 background, 1 edema,
#: 2 non-enhancing tumour, 3 enhancing tumour): whole tumour (WT) is every
#: tumour label, tumour core (TC) drops the edema, enhancing tumour (ET) is
#: label 3. A widely copied MONAI tutorial takes label 2 as the enhancing
#: tumour (the convention of the original BraTS files, which used 4); with
#: the Decathlon labels that is wrong.
BRATS_REGIONS = {"WT": [1, 2, 3], "TC": [2, 3], "ET": [3]}


def _as_list(y):
    """Return the masks of ``y``, sample axis first, as a list of arrays."""
    if isinstance(y, np.ndarray):
        return list(y)
    return [np.asarray(item) for item in y]


def _region_masks(y, regions, what):
    """Boolean masks ``(..., n_regions)`` of label masks, or check given ones."""
    y = np.asarray(y)
    names = list(regions)
    if y.dtype == bool:
        if y.shape[-1] != len(names):
            raise ValueError(
                f"{what} holds boolean region masks with {y.shape[-1]} regions on "
                f"the last axis, but regions names {len(names)}: {names}"
            )
        return y
    return np.stack([np.isin(y, regions[name]) for name in names], axis=-1)


def _pairwise_dice(true, pred):
    """Dice of two boolean arrays; 1.0 when both are empty."""
    t = int(np.count_nonzero(true))
    p = int(np.count_nonzero(pred))
    if t + p == 0:
        return 1.0
    return 2.0 * int(np.count_nonzero(true & pred)) / (t + p)


def _check_shapes(true, pred):
    for i, (t, p) in enumerate(zip(true, pred, strict=True)):
        if t.shape != p.shape:
            raise ValueError(
                f"mask {i}: y_true has shape {t.shape} but y_pred has shape "
                f"{p.shape}; they must be equal"
            )
    return true, pred


def _per_sample(y_true, y_pred):
    true = _as_list(y_true)
    pred = _as_list(y_pred)
    if len(true) != len(pred):
        raise ValueError(
            f"y_true has {len(true)} masks but y_pred has {len(pred)}; they must "
            "pair up"
        )
    return true, pred


def _channels(y_true, y_pred, labels, regions, include_background):
    """Names and per-sample boolean masks ``(true, pred)`` of each channel."""
    true, pred = _per_sample(y_true, y_pred)
    if regions is not None:
        names = list(regions)
        pairs = list(
            zip(
                *_check_shapes(
                    [_region_masks(t, regions, "y_true") for t in true],
                    [_region_masks(p, regions, "y_pred") for p in pred],
                ),
                strict=True,
            )
        )
        return names, [
            [(t[..., k], p[..., k]) for t, p in pairs] for k in range(len(names))
        ]
    _check_shapes(true, pred)
    if labels is None:
        labels = np.unique(np.concatenate([np.unique(t) for t in true + pred]))
    labels = [lab for lab in np.asarray(labels).tolist()]
    if not include_background:
        labels = [lab for lab in labels if lab != 0]
    return labels, [
        [(t == lab, p == lab) for t, p in zip(true, pred, strict=True)]
        for lab in labels
    ]


def dice_score(
    y_true,
    y_pred,
    *,
    labels=None,
    regions=None,
    include_background=False,
    average="macro",
):
    """Dice similarity coefficient of label masks.

    For each class (or region), the Dice ``2 |T ∩ P| / (|T| + |P|)`` is
    computed per mask and averaged over the masks; ``average="macro"`` then
    averages over the classes.

    Parameters
    ----------
    y_true : array-like of shape (n_samples, \\*spatial) or list of arrays
        True integer label masks; with ``regions``, label masks or boolean
        region masks of shape ``(n_samples, *spatial, n_regions)``.
    y_pred : array-like
        Predicted masks, shaped as ``y_true``.
    labels : array-like of int, default=None
        The classes to score; ``None`` means every label present in either
        ``y_true`` or ``y_pred``.
    regions : dict of str to list of int, default=None
        Overlapping regions, each the union of some labels (for example
        :data:`BRATS_REGIONS`); scored instead of the classes.
    include_background : bool, default=False
        Whether label 0 is scored (ignored with ``regions``).
    average : {"macro", None}, default="macro"
        ``"macro"``: the mean over classes (a float); ``None``: one value per
        class, in ``labels`` (or ``regions``) order.

    Returns
    -------
    dice : float or ndarray of shape (n_classes,)
        The Dice. An empty prediction of an empty class scores 1.0 (nothing
        to find, nothing found); an empty prediction of a non-empty class,
        or a non-empty prediction of an empty one, scores 0.0. With no class
        to score, the macro average is NaN.

    Examples
    --------
    >>> import numpy as np
    >>> from skmedimg.segmentation import dice_score
    >>> y_true = np.array([[0, 1, 1, 0]])
    >>> y_pred = np.array([[0, 1, 0, 0]])
    >>> round(dice_score(y_true, y_pred), 3)
    0.667
    """
    if average not in ("macro", None):
        raise ValueError(f"average must be 'macro' or None, got {average!r}")
    _, channels = _channels(y_true, y_pred, labels, regions, include_background)
    values = np.array(
        [np.mean([_pairwise_dice(t, p) for t, p in pairs]) for pairs in channels],
        dtype=float,
    )
    if average is None:
        return values
    return float(values.mean()) if len(values) else float("nan")


def mean_dice(masks, pred, estimator):
    """The ``score`` of a fitted segmenter: its mean Dice on true ``masks``.

    Over ``estimator.regions_`` when it has regions; otherwise over the
    labels of ``estimator.classes_`` and of ``masks`` except 0, so that a
    label the model never saw counts (as 0 where it is present) instead of
    being left out.
    """
    regions = getattr(estimator, "_regions", None)
    if regions is not None:
        return dice_score(masks, pred, regions=regions)
    seen = np.unique(np.concatenate([np.unique(m) for m in masks]))
    labels = [c for c in np.union1d(estimator.classes_, seen).tolist() if c != 0]
    return dice_score(masks, pred, labels=labels)


class _DiceScorer:
    """Scorer calling ``estimator.score(X, y)``, the mean Dice.

    It is picklable and accepted wherever scikit-learn takes a callable
    ``scoring`` (``cross_val_score``, ``GridSearchCV``).
    """

    def __call__(self, estimator, X, y_true, sample_weight=None):
        """Mean Dice of ``estimator`` on ``(X, y_true)``."""
        if sample_weight is not None:
            raise ValueError("dice_scorer does not take sample_weight")
        return float(estimator.score(X, y_true))

    def __repr__(self):
        return "dice_scorer"


#: A scikit-learn scorer: the segmenter's mean Dice (over classes except the
#: background, or over its regions), greater is better. Use it as
#: ``cross_val_score(seg, X, y, scoring=dice_scorer)``.
dice_scorer = _DiceScorer()


def _hd95(true, pred, spacing):
    """95 % Hausdorff distance of two boolean masks; None if either is empty."""
    if not true.any() or not pred.any():
        return None
    import torch
    from monai.metrics import compute_hausdorff_distance

    t = torch.as_tensor(true[None, None].astype(np.float32))
    p = torch.as_tensor(pred[None, None].astype(np.float32))
    with warnings.catch_warnings():
        # MONAI 1.5+ warns about an argument it passes to itself
        warnings.simplefilter("ignore", FutureWarning)
        value = compute_hausdorff_distance(
            p, t, include_background=True, percentile=95, spacing=spacing
        )
    return float(value.reshape(-1)[0])


def segmentation_report(y_true, y_pred, *, labels=None, regions=None, spacing=None):
    """Per-class Dice, 95 % Hausdorff distance and volumes, ready for JSON.

    Parameters
    ----------
    y_true : array-like of shape (n_samples, \\*spatial) or list of arrays
        True label masks (or region masks with ``regions``, see
        :func:`dice_score`).
    y_pred : array-like
        Predicted masks, shaped as ``y_true``.
    labels : array-like of int, default=None
        Classes to report; ``None`` means every non-background label present.
    regions : dict of str to list of int, default=None
        Report these overlapping regions (e.g. :data:`BRATS_REGIONS`) instead.
    spacing : float or sequence of float, default=None
        Voxel spacing for the distances and volumes (``None``: 1 per axis,
        distances in voxels and volumes in voxel counts).

    Returns
    -------
    report : dict
        ``{"classes": {name: {"dice", "hd95", "volume_true", "volume_pred"}},
        "mean": {"dice", "hd95"}, "n_samples"}`` with plain Python floats.
        ``dice`` and the volumes are means over the samples; ``hd95`` is the
        mean over the samples where both masks are non-empty, and ``None``
        when there is none (the distance to an empty mask is undefined).
        Class keys are strings (``"1"`` or the region names).

    Examples
    --------
    >>> import numpy as np
    >>> from skmedimg.segmentation import segmentation_report
    >>> y = np.zeros((1, 8, 8), dtype=int); y[0, 2:5, 2:5] = 1
    >>> report = segmentation_report(y, y)
    >>> report["classes"]["1"]["dice"], report["classes"]["1"]["hd95"]
    (1.0, 0.0)
    """
    names, channels = _channels(y_true, y_pred, labels, regions, False)
    true_masks = channels[0] if channels else []
    ndim = true_masks[0][0].ndim if true_masks else 0
    if spacing is None:
        voxel = 1.0
    else:
        spacing_t = (float(spacing),) * ndim if np.ndim(spacing) == 0 else spacing
        voxel = float(np.prod(spacing_t))
    classes = {}
    for name, pairs in zip(names, channels, strict=True):
        dice = [_pairwise_dice(t, p) for t, p in pairs]
        hd = [_hd95(t, p, spacing) for t, p in pairs]
        hd = [h for h in hd if h is not None]
        classes[str(name)] = {
            "dice": float(np.mean(dice)),
            "hd95": float(np.mean(hd)) if hd else None,
            "volume_true": float(np.mean([t.sum() for t, _ in pairs]) * voxel),
            "volume_pred": float(np.mean([p.sum() for _, p in pairs]) * voxel),
        }
    dices = [c["dice"] for c in classes.values()]
    hds = [c["hd95"] for c in classes.values() if c["hd95"] is not None]
    return {
        "classes": classes,
        "mean": {
            "dice": float(np.mean(dices)) if dices else None,
            "hd95": float(np.mean(hds)) if hds else None,
        },
        "n_samples": len(true_masks),
    }
