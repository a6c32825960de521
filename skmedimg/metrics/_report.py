"""The classification report users expect, as plain numbers.

Sensitivity and specificity come from imbalanced-learn's
:func:`~imblearn.metrics.sensitivity_specificity_support` (a dependency
already); what is ours is the input checking (labels named when missing,
``pos_label`` checked against the labels) and the summary around it.
"""

from __future__ import annotations

import numpy as np
from imblearn.metrics import sensitivity_specificity_support
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    precision_recall_fscore_support,
    roc_auc_score,
)
from sklearn.utils.multiclass import unique_labels
from sklearn.utils.validation import check_consistent_length, column_or_1d

from ..utils import check_labels

__all__ = ["classification_summary", "sensitivity_specificity"]


def _labels(y_true, y_pred, labels):
    if labels is None:
        return unique_labels(y_true, y_pred)
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.size == 0:
        raise ValueError(f"labels must be a non-empty 1-D list; got {labels!r}.")
    if len(np.unique(labels)) != len(labels):
        raise ValueError(f"labels must be unique; got {labels.tolist()!r}.")
    return labels


def sensitivity_specificity(y_true, y_pred, *, labels=None, pos_label=None):
    """Sensitivity (recall) and specificity of each class, one-vs-rest.

    For class ``c``, sensitivity is ``TP / (TP + FN)`` (the fraction of the
    samples of ``c`` predicted as ``c``) and specificity is ``TN / (TN + FP)``
    (the fraction of the samples of the other classes not predicted as
    ``c``). A ratio whose denominator is zero is reported as 0.0.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels.
    y_pred : array-like of shape (n_samples,)
        Predicted labels.
    labels : array-like of shape (n_classes,), default=None
        The classes to report, in this order. By default the sorted union of
        the labels in ``y_true`` and ``y_pred``.
    pos_label : str or int, default=None
        If given, return two floats for this class only (the usual binary
        screening numbers: sensitivity of the disease class and specificity
        against the healthy class).

    Returns
    -------
    sensitivity : ndarray of shape (n_classes,) or float
        Sensitivity of each class of ``labels`` (or of ``pos_label``).
    specificity : ndarray of shape (n_classes,) or float
        Specificity of each class of ``labels`` (or of ``pos_label``).

    See Also
    --------
    classification_summary : Every metric of the report in one dict.
    sklearn.metrics.recall_score : Sensitivity is the recall.

    Examples
    --------
    >>> from skmedimg.metrics import sensitivity_specificity
    >>> y_true = ["tumour", "tumour", "tumour", "healthy", "healthy"]
    >>> y_pred = ["tumour", "tumour", "healthy", "healthy", "tumour"]
    >>> sensitivity_specificity(y_true, y_pred, pos_label="tumour")
    (0.6666666666666666, 0.5)
    >>> sensitivity, specificity = sensitivity_specificity(y_true, y_pred)
    >>> sensitivity  # classes in sorted order: healthy, tumour
    array([0.5       , 0.66666667])
    """
    y_true, y_pred = _check_targets(y_true, y_pred)
    labels = _labels(y_true, y_pred, labels)
    if pos_label is not None and pos_label not in labels.tolist():
        raise ValueError(
            f"pos_label={pos_label!r} is not one of the labels {labels.tolist()!r}."
        )
    # 0.0 where a class has no sample of the kind (as sklearn's
    # zero_division=0), without a warning.
    sensitivity, specificity, _ = sensitivity_specificity_support(
        y_true, y_pred, labels=labels, average=None, warn_for=()
    )
    if pos_label is None:
        return sensitivity, specificity
    index = labels.tolist().index(pos_label)
    return float(sensitivity[index]), float(specificity[index])


def _check_targets(y_true, y_pred):
    y_true = check_labels(column_or_1d(y_true), name="y_true")
    y_pred = check_labels(column_or_1d(y_pred), name="y_pred")
    check_consistent_length(y_true, y_pred)
    if len(y_true) == 0:
        raise ValueError("y_true and y_pred are empty.")
    return y_true, y_pred


def _python(value):
    # numpy scalars -> python scalars, so that the summary is JSON-serialisable.
    return value.item() if isinstance(value, np.generic) else value


def classification_summary(
    y_true, y_pred, *, y_proba=None, labels=None, pos_label=None
):
    """Every metric of a classification report, as a JSON-ready dict.

    Accuracy, balanced accuracy, per-class precision, recall (sensitivity),
    specificity, F1 and support, their macro and support-weighted averages,
    the confusion matrix and, when class probabilities are given, ROC-AUC. All
    values are plain Python numbers, strings and lists, so the result can be
    written with :func:`json.dump` as is.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels.
    y_pred : array-like of shape (n_samples,)
        Predicted labels.
    y_proba : array-like of shape (n_samples, n_classes) or (n_samples,), \
            default=None
        Class probabilities (or any scores), columns in the order of
        ``labels``, as returned by ``predict_proba`` of a classifier whose
        ``classes_`` are ``labels``. For binary problems a 1-D array is the
        score of ``pos_label``. When given, ROC-AUC is reported.
    labels : array-like of shape (n_classes,), default=None
        The classes, in the order of the columns of ``y_proba``. By default the
        sorted union of the labels in ``y_true`` and ``y_pred``; pass the
        classifier's ``classes_`` when a class may be absent from the test
        set.
    pos_label : str or int, default=None
        The positive class of a binary problem, used for the top-level
        ``"sensitivity"``, ``"specificity"`` and a 1-D ``y_proba``. By default
        the second of the two labels (``1`` for 0/1 labels), as
        :func:`sklearn.metrics.roc_auc_score` does. Ignored (must be None) for
        more than two classes.

    Returns
    -------
    summary : dict
        With keys:

        * ``"n_samples"``: int.
        * ``"labels"``: list of the classes (in ``labels`` order).
        * ``"accuracy"``, ``"balanced_accuracy"``: float.
        * ``"per_class"``: dict mapping ``str(label)`` to a dict with
          ``"precision"``, ``"recall"``, ``"sensitivity"`` (same as recall),
          ``"specificity"``, ``"f1"``, ``"support"`` and, with ``y_proba``,
          ``"roc_auc"`` (one-vs-rest; None when the class is absent or is the
          only class of ``y_true``).
        * ``"macro_avg"``, ``"weighted_avg"``: the averages of ``"precision"``,
          ``"recall"``, ``"sensitivity"``, ``"specificity"`` and ``"f1"``
          (unweighted, and weighted by support), with ``"support"`` the total.
        * ``"confusion_matrix"``: list of lists of int, rows are true labels and
          columns predicted labels, both in ``labels`` order.
        * binary only: ``"pos_label"``, ``"sensitivity"`` and ``"specificity"``
          of ``pos_label``.
        * with ``y_proba``: ``"roc_auc"``, float: for two classes the ROC-AUC of
          ``pos_label``; for more, the macro average of the one-vs-rest
          ROC-AUCs (as ``roc_auc_score(multi_class="ovr", average="macro")``),
          over the classes where it is defined.

        A ratio whose denominator is zero (for example the precision of a class
        that is never predicted) is reported as 0.0.

    See Also
    --------
    sensitivity_specificity : Sensitivity and specificity alone.
    sklearn.metrics.classification_report : The same numbers as text.
    plot_confusion_matrix : The confusion matrix as a figure.

    Examples
    --------
    >>> from skmedimg.metrics import classification_summary
    >>> y_true = ["benign", "benign", "malignant", "malignant", "malignant"]
    >>> y_pred = ["benign", "malignant", "malignant", "malignant", "benign"]
    >>> proba = [[0.9, 0.1], [0.4, 0.6], [0.2, 0.8], [0.3, 0.7], [0.6, 0.4]]
    >>> summary = classification_summary(y_true, y_pred, y_proba=proba)
    >>> summary["accuracy"], summary["pos_label"], round(summary["roc_auc"], 3)
    (0.6, 'malignant', 0.833)
    >>> summary["per_class"]["malignant"]["specificity"]
    0.5
    >>> summary["confusion_matrix"]
    [[1, 1], [1, 2]]
    """
    y_true, y_pred = _check_targets(y_true, y_pred)
    labels = _labels(y_true, y_pred, labels)
    label_list = [_python(label) for label in labels]
    missing = sorted(set(unique_labels(y_true, y_pred).tolist()) - set(label_list))
    if missing:
        raise ValueError(
            f"y_true or y_pred contain labels {missing!r} that are not in "
            f"labels={label_list!r}."
        )
    n_classes = len(label_list)
    binary = n_classes == 2
    if pos_label is not None:
        if not binary:
            raise ValueError(
                f"pos_label={pos_label!r} is only meaningful for two classes; "
                f"got {n_classes} labels {label_list!r}."
            )
        if pos_label not in label_list:
            raise ValueError(
                f"pos_label={pos_label!r} is not one of the labels {label_list!r}."
            )
    elif binary:
        pos_label = label_list[1]

    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0.0
    )
    sensitivity, specificity = sensitivity_specificity(y_true, y_pred, labels=labels)
    confusion = confusion_matrix(y_true, y_pred, labels=labels)

    per_class_auc = None
    if y_proba is not None:
        per_class_auc = _per_class_roc_auc(y_true, y_proba, label_list, pos_label)

    metrics = {
        "precision": precision,
        "recall": recall,
        "sensitivity": sensitivity,
        "specificity": specificity,
        "f1": f1,
    }
    per_class = {}
    for i, label in enumerate(label_list):
        row = {name: float(values[i]) for name, values in metrics.items()}
        row["support"] = int(support[i])
        if per_class_auc is not None:
            row["roc_auc"] = per_class_auc[i]
        per_class[str(label)] = row
    if len(per_class) != n_classes:
        raise ValueError(f"labels {label_list!r} are not distinct as strings.")

    total = int(support.sum())
    macro = {name: float(np.mean(values)) for name, values in metrics.items()}
    macro["support"] = total
    weighted = {
        name: float(np.average(values, weights=support)) if total else 0.0
        for name, values in metrics.items()
    }
    weighted["support"] = total

    summary = {
        "n_samples": len(y_true),
        "labels": label_list,
        "accuracy": float(accuracy_score(y_true, y_pred)),
        # As balanced_accuracy_score: the mean recall over the classes of y_true.
        "balanced_accuracy": float(np.mean(recall[support > 0])),
        "per_class": per_class,
        "macro_avg": macro,
        "weighted_avg": weighted,
        "confusion_matrix": confusion.tolist(),
    }
    if binary:
        k = label_list.index(pos_label)
        summary["pos_label"] = label_list[k]  # a Python value, JSON-ready
        summary["sensitivity"] = float(sensitivity[k])
        summary["specificity"] = float(specificity[k])
    if per_class_auc is not None:
        summary["roc_auc"] = _overall_roc_auc(per_class_auc, label_list, pos_label)
    return summary


def _per_class_roc_auc(y_true, y_proba, label_list, pos_label):
    y_proba = np.asarray(y_proba, dtype=float)
    n_classes = len(label_list)
    if y_proba.ndim == 1 or (y_proba.ndim == 2 and y_proba.shape[1] == 1):
        if n_classes != 2:
            raise ValueError(
                "A 1-D y_proba (the score of the positive class) needs two "
                f"classes; got {n_classes} labels {label_list!r}."
            )
        positive = y_proba.ravel()
        negative_index = 1 - label_list.index(pos_label)
        scores = np.empty((len(positive), 2))
        scores[:, label_list.index(pos_label)] = positive
        scores[:, negative_index] = -positive
        y_proba = scores
    if y_proba.ndim != 2 or y_proba.shape[1] != n_classes:
        raise ValueError(
            f"y_proba has shape {y_proba.shape}, but there are {n_classes} labels "
            f"{label_list!r}; its columns must match labels (pass the "
            "classifier's classes_ as labels)."
        )
    if y_proba.shape[0] != len(y_true):
        raise ValueError(
            f"y_proba has {y_proba.shape[0]} rows, but y_true has {len(y_true)} "
            "samples."
        )
    if not np.all(np.isfinite(y_proba)):
        raise ValueError("y_proba contains NaN or infinity.")
    aucs = []
    for i, label in enumerate(label_list):
        is_label = y_true == label
        if is_label.all() or not is_label.any():
            aucs.append(None)  # undefined: only one class in y_true
        else:
            aucs.append(float(roc_auc_score(is_label, y_proba[:, i])))
    return aucs


def _overall_roc_auc(per_class_auc, label_list, pos_label):
    if len(label_list) == 2:
        return per_class_auc[label_list.index(pos_label)]
    defined = [auc for auc in per_class_auc if auc is not None]
    return float(np.mean(defined)) if defined else None
