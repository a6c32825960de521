"""Parameter checks shared by the subpackages."""

from numbers import Integral

__all__ = ["check_size"]


def check_size(size, name):
    """Return ``size`` as a ``(height, width)`` tuple of positive ints.

    ``None`` stays ``None``. Raises ``ValueError`` naming the parameter.
    """
    if size is None:
        return None
    if isinstance(size, Integral) and not isinstance(size, bool):
        size = (size, size)
    if (
        not isinstance(size, tuple)
        or len(size) != 2
        or not all(isinstance(s, Integral) and not isinstance(s, bool) for s in size)
        or min(size) < 1
    ):
        raise ValueError(
            f"{name} must be a positive int or a (height, width) tuple of positive "
            f"ints, got {size!r}"
        )
    return int(size[0]), int(size[1])
