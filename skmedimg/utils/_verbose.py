"""``verbose="auto"``: show progress when a person is watching, else be quiet."""

from __future__ import annotations

import multiprocessing
import sys
import threading

__all__ = ["is_interactive", "resolve_verbose"]


def _in_notebook():
    """Whether this process is an IPython kernel (Jupyter, VS Code notebooks)."""
    ipython = sys.modules.get("IPython")  # never imported here, only looked up
    if ipython is None:
        return False
    try:
        shell = ipython.get_ipython()
    except Exception:  # a broken or partial IPython install
        return False
    return shell is not None and getattr(shell, "kernel", None) is not None


def is_interactive():
    """Whether a person is likely watching this process's progress output.

    True in the main thread of the main process when standard error is a
    terminal or the code runs in a Jupyter / IPython kernel. False in worker
    processes (joblib's loky workers, multiprocessing), in threads other than
    the main one (joblib's threading backend, Dask workers), and when
    standard error is a pipe or a file (CI logs, ``nohup``, pytest's capture).

    Returns
    -------
    interactive : bool
    """
    if multiprocessing.parent_process() is not None:
        return False
    if threading.current_thread() is not threading.main_thread():
        return False
    if _in_notebook():
        return True
    stream = sys.stderr
    try:
        return stream is not None and bool(stream.isatty())
    except (AttributeError, ValueError, OSError):  # closed or odd streams
        return False


def resolve_verbose(verbose):
    """Return the verbosity a run uses: ``"auto"`` decided by :func:`is_interactive`.

    Parameters
    ----------
    verbose : int, bool or "auto"
        An estimator's ``verbose`` parameter.

    Returns
    -------
    verbose : int
        ``1`` for ``"auto"`` when :func:`is_interactive`, else ``0``; other
        values as ints.

    Examples
    --------
    >>> from skmedimg.utils import resolve_verbose
    >>> resolve_verbose(2)
    2
    """
    if isinstance(verbose, str) and verbose == "auto":
        return 1 if is_interactive() else 0
    return int(verbose)
