"""Data-parallel training of one model over processes, with torch.distributed.

One large fit trains on the GPUs (or CPU processes) of one or more machines:
``torchrun`` (or ``accelerate launch``, or ``srun`` with ``torchrun``'s
rendezvous) starts one process per device and sets ``WORLD_SIZE``, ``RANK``,
``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``; every process runs the
same script. This module is what the estimators share to do so, on top of
torch's own engine (it never schedules processes itself):

* :func:`resolve_distributed` reads a ``distributed`` parameter
  (``"auto"``, ``True``, ``False``) against the environment, and
  :func:`start_data_parallel` joins (or creates) the process group: NCCL on
  CUDA, gloo on CPUs, with a timeout.
* :class:`DataParallelGroup` holds the rank and the world size and gives the
  sharding (each rank a disjoint shard of one global permutation), the
  decoding of a shard with one error for every bad image of every shard,
  the collectives (sums, row gathers, broadcasts), the
  :class:`~torch.nn.parallel.DistributedDataParallel` wrapping and
  unwrapping of a skorch net's module, and the synchronised epoch losses.
* :class:`DistributedError` is raised, naming the rank, when a collective
  times out or a peer process failed, instead of hanging.
* :func:`is_main_process` is the one rule of who prints and writes: rank 0.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime
import multiprocessing
import os
import threading

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from ..utils import ImageReadError
from ..utils import item_name as _item_name

__all__ = [
    "ENV_VARS",
    "DataParallelGroup",
    "Shards",
    "DistributedError",
    "is_main_process",
    "launched_world_size",
    "resolve_distributed",
    "start_data_parallel",
]

#: The environment variables torchrun (and ``accelerate launch``) set for
#: every process.
ENV_VARS = ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")

#: Seconds a collective waits for the other processes before failing
#: (``$SKMEDIMG_DISTRIBUTED_TIMEOUT`` overrides it).
DEFAULT_TIMEOUT = 1800.0

#: The default process group when skmedimg created it (by its ``id``): a
#: failing process may then destroy it, so that the others stop at once. A
#: group the user created is left alone.
_OWNED = set()

#: Fragments of the messages torch's backends raise when a peer is gone or a
#: collective timed out (plain RuntimeErrors for gloo, DistError subclasses
#: for NCCL and the store).
_COLLECTIVE_FAILURES = (
    "connection closed",
    "connection reset",
    "timed out",
    "timeout",
    "gloo",
    "nccl",
    "processgroup",
    "broken pipe",
    "socket",
)


class DistributedError(RuntimeError):
    """A data-parallel fit could not go on: a peer failed or did not answer.

    Raised on the processes that were waiting for another one, which either
    failed (it raises its own error) or did not reach the same collective
    within the timeout; also raised when ``distributed=True`` finds no
    process group to join.

    Attributes
    ----------
    rank : int or None
        The rank of the process that raised it (None before joining).
    """

    def __init__(self, message, *, rank=None):
        super().__init__(message)
        self.rank = rank

    def __reduce__(self):
        return (_rebuild_distributed_error, (str(self), self.rank))


def _rebuild_distributed_error(message, rank):
    return DistributedError(message, rank=rank)


def launched_world_size(environ=None):
    """Number of processes the launcher started (``$WORLD_SIZE``, else 1)."""
    environ = os.environ if environ is None else environ
    try:
        return int(environ.get("WORLD_SIZE", "1"))
    except ValueError:
        return 1


def is_main_process():
    """Whether this process is the one that prints and writes files (rank 0).

    The rank of the initialised default process group when there is one,
    else the ``RANK`` environment variable that torchrun sets; a process
    started without a launcher is the main process.

    Returns
    -------
    bool
        True on rank 0 and outside data-parallel runs.

    Examples
    --------
    >>> from skmedimg.neural import is_main_process
    >>> is_main_process()
    True
    """
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank() == 0
    try:
        return int(os.environ.get("RANK", "0")) == 0
    except ValueError:
        return True


def resolve_distributed(value, *, what="CNNClassifier"):
    """Whether a fit with ``distributed=value`` trains data-parallel.

    ``"auto"``: when started by a launcher with more than one process
    (``WORLD_SIZE`` > 1) or inside an initialised process group of more than
    one; never in a thread other than the main one, nor in a pool worker
    (joblib, multiprocessing) without a process group of its own, where the
    fit is one of a parallel search that inherited the launcher's
    environment. ``True``: always; a clear :class:`DistributedError` when there is
    neither a process group nor torchrun's environment. ``False``: never.
    """
    if isinstance(value, str) and value == "auto":
        if threading.current_thread() is not threading.main_thread():
            return False  # a fit among others (joblib's threading backend)
        if dist.is_available() and dist.is_initialized():
            return dist.get_world_size() > 1
        if multiprocessing.parent_process() is not None:
            # a worker of a pool (joblib's loky, multiprocessing) that
            # inherited the launcher's environment: one fit of a search
            return False
        return launched_world_size() > 1
    if not value:
        return False
    if dist.is_available() and dist.is_initialized():
        return True
    missing = [name for name in ENV_VARS if name not in os.environ]
    missing = [name for name in missing if name != "LOCAL_RANK"]
    if missing:
        raise DistributedError(
            f"{what}(distributed=True) trains data-parallel over the processes "
            "of a launcher, but this process was not started by one: "
            f"{', '.join(missing)} not set in the environment. Start the script "
            "with `torchrun --nproc-per-node N script.py` (or `skmedimg train "
            "--nproc N ...`), or use distributed='auto' to train in one process "
            "when not launched."
        )
    return True


def _timeout_seconds():
    text = os.environ.get("SKMEDIMG_DISTRIBUTED_TIMEOUT")
    if not text:
        return DEFAULT_TIMEOUT
    try:
        seconds = float(text)
    except ValueError:
        raise ValueError(
            f"SKMEDIMG_DISTRIBUTED_TIMEOUT={text!r}: a number of seconds"
        ) from None
    if not seconds > 0:
        raise ValueError(f"SKMEDIMG_DISTRIBUTED_TIMEOUT={text!r}: must be positive")
    return seconds


def start_data_parallel(device, *, what="CNNClassifier"):
    """Join the default process group, creating it from torchrun's environment.

    Parameters
    ----------
    device : torch.device
        The device ``fit`` resolved. On CUDA without an index, each process
        takes the GPU ``LOCAL_RANK`` and the backend is NCCL; elsewhere gloo.
    what : str
        The estimator, for messages.

    Returns
    -------
    DataParallelGroup
    """
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        count = torch.cuda.device_count()
        if local_rank >= count:
            raise DistributedError(
                f"{what}: LOCAL_RANK={local_rank} but this machine has {count} "
                "CUDA device(s); start at most one process per GPU "
                "(torchrun --nproc-per-node <= the number of GPUs)"
            )
        device = torch.device("cuda", local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    timeout = _timeout_seconds()
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        try:
            _init_process_group(backend, datetime.timedelta(seconds=timeout))
        except Exception as exc:
            raise DistributedError(
                f"{what}: could not join the process group of "
                f"{os.environ.get('WORLD_SIZE', '?')} processes at "
                f"{os.environ.get('MASTER_ADDR', '?')}:"
                f"{os.environ.get('MASTER_PORT', '?')} as rank "
                f"{os.environ.get('RANK', '?')} within {timeout:g} s: {exc}",
                rank=_env_rank(),
            ) from exc
        _OWNED.add(id(dist.group.WORLD))
        atexit.register(_destroy_at_exit)
    return DataParallelGroup(device, timeout=timeout, what=what)


#: The store of torchrun's rendezvous (``env://``), made once per process, and
#: how many process groups this process has created on it.
_STORE = {"store": None, "rank": None, "world_size": None, "generation": 0}


def _init_process_group(backend, timeout):
    """Create the default process group from torchrun's environment.

    torch's own ``env://`` rendezvous gives the key-value store (rank 0
    serves it on ``MASTER_PORT``, or torchrun's agent does). It is made once
    and kept: a fit that failed destroys its process group, and the next fit
    creates a new one under a new key prefix of the same store, where
    creating the store again would race with the other processes still
    connected to the old one on the same port.
    """
    if _STORE["store"] is None:
        store, rank, world_size = next(dist.rendezvous("env://", timeout=timeout))
        _STORE.update(store=store, rank=rank, world_size=world_size)
    _STORE["generation"] += 1
    store = dist.PrefixStore(f"skmedimg/{_STORE['generation']}", _STORE["store"])
    dist.init_process_group(
        backend,
        store=store,
        rank=_STORE["rank"],
        world_size=_STORE["world_size"],
        timeout=timeout,
    )


def _destroy_at_exit():
    """Close the process group a fit created (NCCL warns when it is left open)."""
    if dist.is_initialized():
        try:
            dist.destroy_process_group()
        except Exception:  # pragma: no cover - exiting anyway
            pass


def _env_rank():
    try:
        return int(os.environ["RANK"])
    except (KeyError, ValueError):
        return None


def is_collective_failure(exc):
    """Whether ``exc`` says a peer is gone or a collective timed out."""
    dist_error = getattr(dist, "DistError", None)
    if dist_error is not None and isinstance(exc, dist_error):
        return True
    if not isinstance(exc, RuntimeError):
        return False
    text = str(exc).lower()
    return any(fragment in text for fragment in _COLLECTIVE_FAILURES)


class _DataParallel(nn.parallel.DistributedDataParallel):
    """DistributedDataParallel that runs the plain module without gradients.

    Validation and prediction batches (under ``no_grad`` or
    ``inference_mode``) need no gradient synchronisation, and the ranks may
    hold different numbers of them: they skip DDP's forward, whose buffer
    broadcast is a collective every rank would have to join.
    """

    def forward(self, *args, **kwargs):
        if not torch.is_grad_enabled():
            return self.module(*args, **kwargs)
        return super().forward(*args, **kwargs)


class DataParallelGroup:
    """A process's place in a data-parallel fit, and its collectives.

    Parameters
    ----------
    device : torch.device
        This process's device.
    timeout : float
        Seconds a collective waits (for messages).
    what : str
        The estimator, for messages.
    """

    def __init__(self, device, *, timeout, what="CNNClassifier"):
        self.device = torch.device(device)
        self.timeout = float(timeout)
        self.what = what
        self.rank = dist.get_rank()
        self.world_size = dist.get_world_size()
        self.backend = dist.get_backend()

    @property
    def is_main(self):
        return self.rank == 0

    def __repr__(self):
        return (
            f"DataParallelGroup(rank={self.rank}, world_size={self.world_size}, "
            f"backend={self.backend!r}, device={str(self.device)!r})"
        )

    def __reduce__(self):
        raise TypeError(
            "a DataParallelGroup holds a live process group and does not pickle"
        )

    # ----------------------------------------------------------- failures

    def _error(self, stage, exc=None):
        detail = f": {str(exc).splitlines()[0]}" if exc is not None else ""
        return DistributedError(
            f"{self.what}: rank {self.rank} of {self.world_size} stopped during "
            f"{stage}: another process failed or did not answer within "
            f"{self.timeout:g} s (see that process's own error){detail}",
            rank=self.rank,
        )

    @contextlib.contextmanager
    def guard(self, stage="the data-parallel fit"):
        """Turn a failed collective into :class:`DistributedError`.

        When the block fails on this process for a reason of its own, the
        process group is destroyed (if skmedimg created it), so that the
        other processes, waiting in a collective, stop at once with a
        :class:`DistributedError` instead of waiting for the timeout.
        """
        try:
            yield self
        except DistributedError:
            self.abort()
            raise
        except BaseException as exc:
            if isinstance(exc, Exception) and is_collective_failure(exc):
                self.abort()
                raise self._error(stage, exc) from exc
            self.abort()
            raise

    def abort(self):
        """Destroy the process group skmedimg created (no-op otherwise)."""
        if dist.is_initialized() and id(dist.group.WORLD) in _OWNED:
            _OWNED.discard(id(dist.group.WORLD))
            try:
                dist.destroy_process_group()
            except Exception:  # pragma: no cover - already broken
                pass

    def _collective_device(self):
        return self.device if self.backend == "nccl" else torch.device("cpu")

    # -------------------------------------------------------- collectives

    def broadcast_object(self, obj, src=0):
        """``obj`` of rank ``src`` on every rank."""
        box = [obj if self.rank == src else None]
        dist.broadcast_object_list(box, src=src, device=self._collective_device())
        return box[0]

    def all_gather_object(self, obj):
        """The ``obj`` of every rank, in rank order."""
        out = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def sum(self, values):
        """Element-wise sum over the ranks of a sequence of numbers (float64)."""
        tensor = torch.as_tensor(
            np.asarray(values, dtype=np.float64), device=self._collective_device()
        )
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor.cpu().numpy()

    def same_random_state(self, rng):
        """Give ``rng`` (a RandomState) rank 0's state, on every rank; return it."""
        rng.set_state(self.broadcast_object(rng.get_state()))
        return rng

    def broadcast_module(self, module):
        """Copy rank 0's parameters and buffers into ``module`` on every rank."""
        with torch.no_grad():
            for tensor in module.state_dict().values():
                if self.backend == "nccl" or tensor.device.type == "cpu":
                    dist.broadcast(tensor, src=0)
                else:  # gloo: through the host
                    host = tensor.cpu()
                    dist.broadcast(host, src=0)
                    tensor.copy_(host)
        return module

    # ------------------------------------------------------------ sharding

    def plan_shards(self, n_samples, seed, *, gathered, split=None):
        """Which images this rank decodes: a :class:`Shards`.

        ``gathered=True`` (a frozen backbone's features, put together on
        every rank afterwards): a shard of all ``n_samples`` images.
        Otherwise (the network trains data-parallel): a shard of equal size
        of the training positions and a shard of the validation positions
        (``split``, a ``(train, valid)`` pair of index arrays, or None for
        no validation set).
        """
        if n_samples < self.world_size:
            raise ValueError(
                f"{n_samples} images cannot be shared by {self.world_size} "
                "processes; use more images or fewer processes"
            )
        if gathered:
            mine = self.shard(np.arange(n_samples), seed, equal=False)
            return Shards(mine, None, None)
        train, valid = (np.arange(n_samples), None) if split is None else split
        if len(train) < self.world_size:
            raise ValueError(
                f"{len(train)} training images cannot be shared by "
                f"{self.world_size} processes; use more images or fewer processes"
            )
        train_mine = self.shard(train, seed, equal=True)
        valid_mine = None
        if valid is not None:
            if len(valid) < self.world_size:
                raise ValueError(
                    f"early stopping's validation split holds {len(valid)} images, "
                    f"fewer than the {self.world_size} processes that share it; "
                    "use a larger validation_fraction, more images or "
                    "early_stopping=None"
                )
            valid_mine = self.shard(valid, seed + 1, equal=False)
        mine = (
            train_mine
            if valid_mine is None
            else np.concatenate([train_mine, valid_mine])
        )
        return Shards(mine, train_mine, valid_mine)

    def shard(self, indices, seed, *, equal=True):
        """Return this rank's part of ``indices``: a block of one permutation.

        Every rank draws the same permutation of ``indices`` from ``seed``
        and takes its own contiguous block of it, so the shards are disjoint
        and, with ``equal=False``, cover ``indices``. With ``equal=True``
        every shard has ``len(indices) // world_size`` items (every rank then
        runs the same number of steps) and the last ``len(indices) %
        world_size`` items of the permutation are left out. The shard is
        returned sorted (files are read in their order).
        """
        return shard_indices(indices, self.rank, self.world_size, seed, equal=equal)

    def read_shard(self, read, X, indices, *, name=None):
        """Decode ``X[indices]`` (this rank's shard) with ``read``.

        An :class:`~skmedimg.utils.ImageReadError` on any rank is raised on
        every rank, naming every bad image of every shard with its index in
        ``X``, as a one-process fit names them; any other failure is raised
        on its rank and as :class:`DistributedError` on the others.
        ``name(index)`` names an in-memory item at its index in ``X``
        (files keep their path); by default as the image reader does.
        """
        if name is None:

            def name(index):
                return _item_name(X[index], index)

        indices = np.asarray(indices, dtype=np.int64)
        images = None
        failures = None
        own = None
        try:
            images = read(X[indices])
        except ImageReadError as exc:
            if exc.failures and all(i < 0 for i, _, _ in exc.failures):
                own = exc  # the input as a whole
            else:
                failures = [
                    (
                        int(indices[i]),
                        item if _is_path_name(item) else name(int(indices[i])),
                        reason,
                    )
                    for i, item, reason in exc.failures
                ]
        except Exception as exc:  # noqa: BLE001 - handed to every rank
            own = exc
        everyone = self.all_gather_object(
            (None if own is None else f"{type(own).__name__}: {own}", failures)
        )
        if own is not None:
            raise own
        crashed = [rank for rank, (s, _) in enumerate(everyone) if s is not None]
        if crashed:
            first = everyone[crashed[0]][0].splitlines()[0]
            raise DistributedError(
                f"{self.what}: rank {self.rank} of {self.world_size} stopped: "
                f"rank(s) {', '.join(map(str, crashed))} failed to read their "
                f"images ({first})",
                rank=self.rank,
            )
        bad = sorted(f for _, fs in everyone if fs for f in fs)
        if bad:
            raise ImageReadError(bad, n_items=len(X))
        return images

    def gather_rows(self, local, indices, n):
        """Rows computed on every rank, put together in one ``(n, ...)`` tensor.

        ``local`` holds the rows of the positions ``indices`` (this rank's
        shard); the result, on every rank, holds row ``indices[k]`` of every
        rank at that position. Rows no rank computed are zero.
        """
        indices = torch.as_tensor(np.asarray(indices, dtype=np.int64))
        counts = self.all_gather_object(len(indices))
        width = max(counts)
        device = self._collective_device()
        shape = tuple(local.shape[1:])
        padded = torch.zeros((width, *shape), dtype=local.dtype, device=device)
        padded[: len(local)] = local.to(device)
        slots = torch.full((width,), -1, dtype=torch.int64, device=device)
        slots[: len(indices)] = indices.to(device)
        rows = [torch.empty_like(padded) for _ in range(self.world_size)]
        where = [torch.empty_like(slots) for _ in range(self.world_size)]
        dist.all_gather(rows, padded)
        dist.all_gather(where, slots)
        out = torch.zeros((n, *shape), dtype=local.dtype)
        for part, pos, count in zip(rows, where, counts, strict=True):
            out[pos[:count].cpu()] = part[:count].cpu()
        return out

    # ------------------------------------------------------------ batches

    def local_batch_size(self, batch_size):
        """The per-process batch of a global ``batch_size``."""
        if batch_size % self.world_size:
            raise ValueError(
                f"batch_size={batch_size} is the global batch of a data-parallel "
                f"fit over {self.world_size} processes and must be divisible by "
                f"it; use a multiple of {self.world_size} (such as "
                f"{max(1, batch_size // self.world_size) * self.world_size})"
            )
        return batch_size // self.world_size

    # ------------------------------------------------------------ modules

    def check_sync_batchnorm(self):
        """SyncBatchNorm runs on GPUs only: a clear error elsewhere."""
        if self.device.type != "cuda":
            raise ValueError(
                "sync_batchnorm=True needs CUDA devices (torch's SyncBatchNorm "
                f"runs on GPUs only); this data-parallel fit runs on "
                f"{self.device.type} with {self.backend}. Use "
                "sync_batchnorm=False (each process normalises with its own "
                "batch statistics)"
            )

    def convert_sync_batchnorm(self, module):
        """Replace BatchNorm layers by synchronised ones, in place.

        Returns what :meth:`revert_sync_batchnorm` needs to put the original
        layers back (they share their parameters and statistics with the
        synchronised ones, so they hold the trained values).
        """
        self.check_sync_batchnorm()
        from timm.layers import convert_sync_batchnorm

        originals = {
            name: child
            for name, child in module.named_modules()
            if isinstance(child, nn.modules.batchnorm._BatchNorm)
            and not isinstance(child, nn.SyncBatchNorm)
        }
        for name in originals:
            parent, _, leaf = name.rpartition(".")
            owner = module.get_submodule(parent) if parent else module
            setattr(owner, leaf, convert_sync_batchnorm(getattr(owner, leaf)))
        return originals

    @staticmethod
    def revert_sync_batchnorm(module, originals):
        """Put back the layers :meth:`convert_sync_batchnorm` replaced."""
        for name, original in originals.items():
            parent, _, leaf = name.rpartition(".")
            owner = module.get_submodule(parent) if parent else module
            synced = getattr(owner, leaf)
            original.training = synced.training
            setattr(owner, leaf, original)

    def wrap(self, module):
        """``module`` in DistributedDataParallel (rank 0's weights broadcast)."""
        device_ids = [self.device.index] if self.device.type == "cuda" else None
        trainable = [p for p in module.parameters() if p.requires_grad]
        if not trainable:
            return module
        # Buffers (BatchNorm statistics) are rank 0's, sent at every training
        # forward: DDP's default.
        return _DataParallel(module, device_ids=device_ids)

    @staticmethod
    def unwrap(module):
        """The plain module inside a DistributedDataParallel (or ``module``)."""
        while isinstance(module, nn.parallel.DistributedDataParallel):
            module = module.module
        return module

    def fit_net(self, net, train, *, sync_batchnorm=False):
        """Run skorch's ``net.fit(train)`` with the module data-parallel.

        The net is initialised as usual (optimizer over the plain module's
        parameters), its module wrapped in DistributedDataParallel for the
        training loop and unwrapped after it (early stopping's best weights,
        saved and loaded through the wrapper, are loaded before), so that
        the fitted net holds, pickles and saves a plain module.
        """
        net.initialize()
        originals = {}
        if sync_batchnorm:
            originals = self.convert_sync_batchnorm(net.module_)
        net._data_parallel = self
        net.module_ = self.wrap(net.module_)
        try:
            net.partial_fit(train, y=None)
        finally:
            net.module_ = self.unwrap(net.module_)
            self.revert_sync_batchnorm(net.module_, originals)
            del net._data_parallel
        return net

    # -------------------------------------------------------- epoch scores

    def sync_epoch_losses(self, rows, values, prefix, training):
        """Make an epoch's batch losses those of the global batches.

        ``rows`` are the epoch's batch rows of skorch's history and
        ``values`` their losses on this rank. Training batches are matched
        across ranks (same count, same local size): each row gets the mean
        loss over the ranks (the loss of the global batch) and the global
        batch size. Validation shards may differ in size: every row gets the
        loss of the whole validation set, so skorch's batch-size-weighted
        mean (``valid_loss``) is that value on every rank.
        """
        key = prefix + "_batch_size"
        sizes = [row.get(key, 0) for row in rows]
        if training:
            summed = self.sum(values) if values else np.zeros(0)
            for row, value, size in zip(rows, summed, sizes, strict=True):
                row[prefix + "_loss"] = float(value) / self.world_size
                row[key] = int(size) * self.world_size
            return
        local = sum(v * s for v, s in zip(values, sizes, strict=True))
        total, count = self.sum([local, sum(sizes)])
        mean = float(total / count) if count else float("nan")
        for row in rows:
            row[prefix + "_loss"] = mean

    def sum_counts(self, counts):
        """Sum integer counts (correct predictions, samples) over the ranks."""
        return [int(round(v)) for v in self.sum(counts)]


def _is_path_name(item):
    """Whether a failure's item name is a file (not ``item <k> (...)``)."""
    return isinstance(item, str) and not item.startswith("item ")


class Shards:
    """The images one rank decodes and what they are for.

    Attributes
    ----------
    indices : ndarray of int
        Positions in ``X`` decoded by this rank, in the order of its images.
    train, valid : ndarray of int or None
        For a data-parallel network: the training positions (first in
        ``indices``) and the validation positions (after them) of this rank.
        None when the images are gathered (frozen features).
    """

    def __init__(self, indices, train, valid):
        self.indices = np.asarray(indices, dtype=np.int64)
        self.train = train
        self.valid = valid


def shard_indices(indices, rank, world_size, seed, *, equal=True):
    """Rank ``rank``'s block of a seeded permutation of ``indices`` (sorted).

    See :meth:`DataParallelGroup.shard`.
    """
    indices = np.asarray(indices, dtype=np.int64)
    order = np.random.RandomState(int(seed) % 2**32).permutation(len(indices))
    if equal:
        per_rank = len(indices) // world_size
        block = order[rank * per_rank : (rank + 1) * per_rank]
    else:
        block = np.array_split(order, world_size)[rank]
    return np.sort(indices[block])
