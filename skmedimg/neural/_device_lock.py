"""One GPU, many processes: device work takes turns, decoding does not.

``GridSearchCV(CNNClassifier(...), grid, n_jobs=-1)`` starts one process per
CPU core. On a machine with one GPU, letting every process train on the GPU at
once multiplies the memory (each process holds its model, optimizer state,
activations and its cached data set on the device) and makes the processes
fight for the same streaming multiprocessors: out-of-memory errors, or a search
slower than ``n_jobs=1``. So the CNN estimators hold an exclusive lock on the
device while they use it: an advisory file lock (``fcntl.flock``) per physical
GPU in the temporary directory, shared by every process of the machine (loky
and multiprocessing workers, threads, other Python sessions of the same user).
Image decoding, the CPU part, happens before the lock is taken, so the workers
decode in parallel and take turns on the GPU.

The lock is keyed by the GPU's UUID where torch reports one (so that processes
with different ``CUDA_VISIBLE_DEVICES``, such as dask workers with one GPU
each, do not block each other), else by the device index. CPU and other
devices are never locked: on a CPU the processes share the cores, and joblib's
loky backend already gives each worker ``cpu_count // n_jobs`` threads.

Where ``fcntl`` does not exist (Windows), the lock is taken within the process
only (threads take turns; processes do not).

Why not the ``filelock`` package (which torch installs): measured in
``benchmarks/bench_lock.py`` (``results/lock.json``), an uncontended acquire and
release costs about 10 us here against about 100 us with ``filelock.FileLock``,
and a waiting process takes the lock as soon as it is released (a blocking
``flock``) where ``filelock`` polls every 50 ms by default, which made two
processes taking turns with 5 ms holds lose about 3 times as much time to
hand-overs. The lock file is also opened read-only, so a file left by another
user (mode 0644 after their umask) can still be locked, where a lock that
opens it for writing fails with ``PermissionError``.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
import time
import traceback

import torch

try:  # POSIX
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

__all__ = ["device_lock", "device_lock_key", "file_lock"]

#: Environment variable naming the directory of the lock files (default: the
#: temporary directory). Processes share a lock only if they agree on it.
LOCK_DIR_ENV = "SKMEDIMG_LOCK_DIR"

_REGISTRY_LOCK = threading.Lock()
_LOCKS = {}


class _FileLock:
    """A re-entrant lock held across threads (RLock) and processes (flock)."""

    def __init__(self, path):
        self.path = path
        self._thread_lock = threading.RLock()
        self._depth = 0
        self._fd = None

    def acquire(self):
        self._thread_lock.acquire()
        try:
            if self._depth == 0 and fcntl is not None:
                # O_RDONLY: a lock file created by another user (mode 0644
                # after the umask) can still be opened and locked.
                fd = os.open(self.path, os.O_RDONLY | os.O_CREAT, 0o666)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX)
                except BaseException:
                    os.close(fd)
                    raise
                self._fd = fd
        except BaseException:
            self._thread_lock.release()
            raise
        self._depth += 1

    def release(self):
        self._depth -= 1
        if self._depth == 0 and self._fd is not None:
            fd, self._fd = self._fd, None
            try:
                fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)
        self._thread_lock.release()


def _lock_for(path):
    # Keyed by the process id too: a lock inherited through fork() is not
    # held by the child.
    key = (os.getpid(), path)
    with _REGISTRY_LOCK:
        lock = _LOCKS.get(key)
        if lock is None:
            lock = _LOCKS[key] = _FileLock(path)
        return lock


def _lock_dir():
    return os.environ.get(LOCK_DIR_ENV) or tempfile.gettempdir()


@contextlib.contextmanager
def file_lock(name, *, directory=None):
    """Hold the exclusive lock ``name`` across threads and processes.

    Parameters
    ----------
    name : str
        Lock name; the file is ``<directory>/skmedimg-<name>.lock``.
    directory : str or path-like, default=None
        Where the lock file lives; ``None`` means ``$SKMEDIMG_LOCK_DIR``, else
        the temporary directory.

    Yields
    ------
    waited : float
        Seconds spent waiting for the lock.

    Notes
    -----
    The lock is re-entrant within a thread, so nested estimators (a
    ``CNNClassifier`` inside something else that locks the same GPU) do not
    deadlock. It is advisory: code that does not take it is not stopped.
    """
    directory = os.fspath(directory) if directory is not None else _lock_dir()
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in str(name))
    lock = _lock_for(os.path.join(directory, f"skmedimg-{safe}.lock"))
    start = time.perf_counter()
    lock.acquire()
    waited = time.perf_counter() - start
    try:
        yield waited
    finally:
        lock.release()


def device_lock_key(device):
    """Name of the lock of a device, or ``None`` when it is not locked.

    Parameters
    ----------
    device : torch.device
        A resolved device.

    Returns
    -------
    key : str or None
        ``"cuda-<uuid>"`` (``"cuda-<index>"`` when torch gives no UUID) for a
        CUDA device, ``None`` for every other device.
    """
    device = torch.device(device)
    if device.type != "cuda":
        return None
    index = device.index if device.index is not None else torch.cuda.current_device()
    uuid = getattr(torch.cuda.get_device_properties(index), "uuid", None)
    return f"cuda-{uuid}" if uuid else f"cuda-{index}"


def device_lock(device, enabled=True):
    """Context manager: exclusive use of ``device`` by this process.

    Parameters
    ----------
    device : torch.device
        The device the enclosed code computes on.
    enabled : bool, default=True
        ``False`` gives a no-op context.

    Returns
    -------
    context : context manager
        A :func:`file_lock` on the GPU for CUDA devices, a no-op context for
        CPUs and other devices or when ``enabled`` is False.

    Examples
    --------
    >>> from skmedimg.neural._device_lock import device_lock
    >>> with device_lock("cpu"):  # never locked
    ...     pass
    """
    key = device_lock_key(device) if enabled else None
    if key is None:
        return contextlib.nullcontext(0.0)
    return _held(key, torch.device(device))


@contextlib.contextmanager
def _held(key, device):
    with file_lock(key) as waited:
        failed = False
        try:
            yield waited
        except BaseException as exc:
            # The traceback's finished frames hold the failed work's tensors
            # (a batch's activations, its gradients): freed now, so that
            # empty_cache below returns their memory before the next process
            # takes the device, instead of an out-of-memory error in one
            # worker making the next one fail too.
            failed = True
            traceback.clear_frames(exc.__traceback__)
            raise
        finally:
            if device.type == "cuda":
                # Finish the queued kernels and hand the allocator's cached
                # blocks back to the driver, so that the next process finds
                # the memory this one no longer uses. After a CUDA error these
                # calls fail too: the original error is the one to see.
                try:
                    torch.cuda.synchronize(device)
                    torch.cuda.empty_cache()
                except RuntimeError:
                    if not failed:
                        raise


def release_cached_memory(device):
    """Return the CUDA allocator's cached blocks to the driver (CUDA only).

    At the start of a fit: a fit that failed in this process left its tensors
    to the allocator's cache once its exception was handled (a grid search's
    ``error_score``), where other processes cannot use them.
    """
    if torch.device(device).type == "cuda":
        torch.cuda.empty_cache()
