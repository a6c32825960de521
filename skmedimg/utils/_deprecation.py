"""Renamed parameters: one rule for estimators and functions.

A renamed parameter keeps its old name for two releases. The old name stays
in the signature with the default :data:`DEPRECATED` (the string
``"deprecated"``, so that ``get_params``, ``clone`` and ``set_params`` keep
working, as in scikit-learn); when it is given, a ``FutureWarning`` names the
new spelling and its value is used; giving both names is a ``ValueError``.

Estimators resolve their renamed parameters where they use them (in ``fit``,
and in ``transform`` for stateless transformers), never in ``__init__``::

    image_size = renamed_attribute(self, "size", "image_size")

Functions do the same with the values they received::

    image_size = renamed_argument(
        "load_medmnist", "size", size, "image_size", image_size, default=28
    )
"""

from __future__ import annotations

import inspect
import warnings

__all__ = ["DEPRECATED", "renamed_argument", "renamed_attribute"]

#: Default of a parameter kept under its old name.
DEPRECATED = "deprecated"

#: The release that renamed the parameters, and the one that removes the old
#: names (two releases later).
RENAMED_IN = "0.1"
REMOVED_IN = "0.3"


def _is_sentinel(value):
    return isinstance(value, str) and value == DEPRECATED


def renamed_argument(
    owner,
    old,
    old_value,
    new,
    new_value,
    *,
    default,
    renamed_in=RENAMED_IN,
    removed_in=REMOVED_IN,
    stacklevel=3,
):
    """Return the value of a renamed parameter, warning when the old name is used.

    Parameters
    ----------
    owner : str
        The function or class the parameter belongs to, for the messages.
    old, new : str
        The old and the new name.
    old_value, new_value : object
        What was passed under each name; ``old_value`` is :data:`DEPRECATED`
        when the old name was not used.
    default : object
        The default of ``new``: a ``new_value`` equal to it counts as not
        given.
    renamed_in, removed_in : str
        The releases named in the warning.
    stacklevel : int, default=3
        Passed to :func:`warnings.warn`.

    Returns
    -------
    value : object
        ``new_value``, or ``old_value`` when only the old name was given.

    Raises
    ------
    ValueError
        If both names were given.
    """
    if _is_sentinel(old_value):
        return new_value
    if not _same(new_value, default):
        raise ValueError(
            f"{owner}: `{old}` and `{new}` were both given; `{old}` was renamed "
            f"`{new}` in {renamed_in}: pass `{new}` only"
        )
    warnings.warn(
        f"{owner}: `{old}` was renamed `{new}` in {renamed_in} and will be "
        f"removed in {removed_in}; pass `{new}={old_value!r}` instead",
        FutureWarning,
        stacklevel=stacklevel,
    )
    return old_value


def renamed_attribute(estimator, old, new, *, stacklevel=4):
    """Resolve a renamed constructor parameter of ``estimator``.

    The default of the new name is read from the class's ``__init__``
    signature, so the rule cannot drift from the constructor.

    Parameters
    ----------
    estimator : object
        The estimator, holding both parameters as attributes.
    old, new : str
        The old and the new name.
    stacklevel : int, default=4
        Passed to :func:`warnings.warn`.

    Returns
    -------
    value : object
        The value to use; see :func:`renamed_argument`.
    """
    cls = type(estimator)
    default = inspect.signature(cls.__init__).parameters[new].default
    return renamed_argument(
        cls.__name__,
        old,
        getattr(estimator, old),
        new,
        getattr(estimator, new),
        default=default,
        stacklevel=stacklevel,
    )


def _same(value, default):
    """Whether ``value`` is the default (by identity or plain equality)."""
    if value is default:
        return True
    try:
        return bool(value == default)
    except Exception:  # arrays and other objects without a plain ==
        return False
