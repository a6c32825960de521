"""Class label validation shared by the classifiers, the ensembles and metrics."""

from __future__ import annotations

import numpy as np

__all__ = ["check_labels"]

#: How many indices of missing labels a message lists before counting the rest.
_MAX_LISTED = 10


def _is_missing(value):
    """Whether one label is missing: None, a float NaN, pandas' NA or NaT."""
    if value is None:
        return True
    if isinstance(value, float | np.floating):
        return bool(np.isnan(value))
    if isinstance(value, np.datetime64 | np.timedelta64):
        return bool(np.isnat(value))
    return type(value).__name__ in ("NAType", "NaTType")


def check_labels(y, *, name="y"):
    """Check that no class label is missing, and name the missing ones.

    scikit-learn sorts labels to find the classes, so a ``None`` among
    strings raises ``TypeError: '<' not supported between instances of
    'NoneType' and 'str'`` and a NaN becomes a class of its own or a cast
    warning. This helper says instead which samples have no label.

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        Class labels (any type: strings, ints, floats, objects).
    name : str, default="y"
        Name of the argument in the message.

    Returns
    -------
    y : ndarray of shape (n_samples,)
        ``y`` as an array (not copied when it already is one).

    Raises
    ------
    ValueError
        If any label is ``None``, NaN, ``pandas.NA`` or ``NaT``; the message
        lists their indices (the first 10, then how many in all).

    See Also
    --------
    sklearn.utils.multiclass.check_classification_targets : Checks the kind of
        target, after this check.

    Examples
    --------
    >>> from skmedimg.utils import check_labels
    >>> check_labels(["tumour", "healthy"]).tolist()
    ['tumour', 'healthy']
    >>> check_labels(["tumour", None, "healthy", float("nan")])
    Traceback (most recent call last):
    ...
    ValueError: y: labels at index 1, 3 are missing (None/NaN); give every sample a class or drop the unlabelled ones
    """  # noqa: E501
    if hasattr(y, "to_numpy") and not isinstance(y, np.ndarray):
        y = y.to_numpy()
    y = np.asarray(y) if not isinstance(y, np.ndarray) else y
    flat = y.reshape(-1) if y.ndim > 1 else y
    if flat.ndim == 0:
        return y
    if flat.dtype.kind == "f":
        missing = np.flatnonzero(np.isnan(flat))
    elif flat.dtype.kind in "mM":
        missing = np.flatnonzero(np.isnat(flat))
    elif flat.dtype.kind == "O":
        missing = np.flatnonzero([_is_missing(v) for v in flat])
    else:
        return y
    if missing.size:
        listed = ", ".join(str(int(i)) for i in missing[:_MAX_LISTED])
        if missing.size > _MAX_LISTED:
            listed += f", ... ({missing.size} in all)"
        word = "label at index" if missing.size == 1 else "labels at index"
        verb = "is" if missing.size == 1 else "are"
        raise ValueError(
            f"{name}: {word} {listed} {verb} missing (None/NaN); give every "
            "sample a class or drop the unlabelled ones"
        )
    return y
