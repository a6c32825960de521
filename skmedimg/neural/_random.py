"""Seeded torch work that threads can share.

Dropout, timm's drop path, the random augmentations and random weight
initialisation all draw from torch's global generators (one for the CPU,
one per CUDA device), and these are shared by every thread of a process.
Two fits running at once in threads (joblib's threading backend, a Dask
worker with several threads) would draw from each other's streams, so that
the same ``random_state`` no longer gives the same model. Every piece of
work that seeds torch or draws random weights runs inside :func:`torch_random`,
which holds one process-wide lock while it runs and leaves the caller's
generators as they were. Image decoding is kept outside, so it still runs
in parallel.
"""

from __future__ import annotations

import contextlib
import threading

import torch

__all__ = ["torch_random"]

# Re-entrant: a fit may build a backbone inside a seeded block.
_LOCK = threading.RLock()


@contextlib.contextmanager
def torch_random(seed=None, device=None, *, cpu_state=None):
    """Run a block with torch's generators to itself.

    Parameters
    ----------
    seed : int, default=None
        Seed of the CPU generator and of every CUDA generator; ``None``
        leaves them as they are (for blocks that draw numbers nobody keeps,
        such as the random weights of a model about to load its own).
    device : torch.device, default=None
        The device of the block; the generator of a CUDA device is restored
        at the end, as is the CPU one.
    cpu_state : torch.ByteTensor, default=None
        A CPU generator state to continue from (one saved by
        ``torch.get_rng_state()`` in an earlier block of the same work),
        set after seeding.

    Notes
    -----
    Threads wait for each other here: while one fits, a second fit's device
    work waits. On one GPU they already take turns (see
    :func:`~skmedimg.neural._device_lock.device_lock`); on a CPU the fits
    share the cores anyway. Processes have generators of their own and are
    not affected.
    """
    cuda = []
    if device is not None and torch.device(device).type == "cuda":
        index = torch.device(device).index
        # "cuda" is the current device, which torch.cuda.set_device may have
        # made another than the first
        cuda = [torch.cuda.current_device() if index is None else index]
    with _LOCK, torch.random.fork_rng(devices=cuda):
        if seed is not None:
            torch.manual_seed(seed)
        if cpu_state is not None:
            torch.set_rng_state(cpu_state)
        yield
