"""Host memory of CPU compute: large buffers reused, not mapped afresh per batch.

A network running on the CPU allocates its activations anew on every batch:
tens to hundreds of megabytes per tensor at 224 px and a batch of 64 (the
depthwise stages of ``tf_efficientnet_lite0`` hold 300 MB tensors). glibc's
``malloc`` gives every block above its mmap threshold (128 KiB, raised by
itself up to 32 MiB) a fresh ``mmap`` and unmaps it on ``free``, and it gives
back the free top of its heap above the trim threshold. So each batch maps,
zero-fills page by page and unmaps most of its activations: the kernel time
of the page faults. How much a fit paid depended on what the process had
freed before; an in-memory fit, which frees its decoded images into the heap,
often paid nothing, and a streamed fit of the same images paid in full, so
the two paths differed for a reason that had nothing to do with reading.

Measured on this project's 2-core test machine (glibc 2.36, torch 2.14, two
torch threads), ``features`` of ``tf_efficientnet_lite0`` on three batches of
64 images: 2.46 million minor page faults, 4.1 s of kernel time and 4.1 s
wall with glibc's defaults; 43,000 faults, 0.06 s and 2.6 s with the
thresholds below. A streamed frozen fit of 3,000 images with ``test_resnet``:
7.9 million faults and 15 s of kernel time in 22 s, against 0.2 million, 1.4
s and 14 s.

PyTorch's own advice for CPU work is to start the process with jemalloc or
tcmalloc preloaded; that is a change to how the process is launched, which a
library cannot make. What it can do: while a CPU fit or a CPU inference pass
runs, :func:`reused_host_memory` raises glibc's thresholds with ``mallopt``
(blocks up to 1 GiB come from the heap, and up to 2 GiB of free heap is
kept), so that each batch reuses the previous batch's pages; when the
outermost such block ends it calls ``malloc_trim(0)``, which gives the free
pages back to the system, and sets the thresholds to 32 MiB (mmap) and 64 MiB
(trim), the largest values glibc's own adjustment reaches (``mallopt`` cannot
turn that adjustment back on). The price is resident memory: freed
activations stay in the heap between batches, and blocks of one size do not
always fit requests of another, so the peak grows by a constant (per model
and batch size, not per image): 1.13-1.52 times the peak with glibc's
defaults in ``benchmarks/bench_host_memory.py``, where the calls ran 1.5-2.3
times as fast.

Elsewhere (macOS, Windows, musl, a GPU device) nothing changes. Setting the
environment variable ``SKMEDIMG_REUSE_HOST_MEMORY=0`` turns it off.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import platform
import sys
import threading

__all__ = ["reused_host_memory"]

#: Environment variable; "0" (or "false", "no", "off") turns the tuning off.
ENV = "SKMEDIMG_REUSE_HOST_MEMORY"

# mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3

#: While CPU compute runs: blocks up to this size come from the heap.
MMAP_THRESHOLD = 2**30
#: While CPU compute runs: free heap kept before trimming (mallopt takes an int).
TRIM_THRESHOLD = 2**31 - 1
#: Afterwards: the ceilings of glibc's own dynamic thresholds.
RESTORED_MMAP_THRESHOLD = 32 * 2**20
RESTORED_TRIM_THRESHOLD = 64 * 2**20

_LOCK = threading.Lock()
_state = {"depth": 0, "libc": None}


def _glibc():
    """The C library's ``mallopt`` / ``malloc_trim``, or None where not glibc."""
    if _state["libc"] is None:
        libc = False
        if sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc":
            try:
                handle = ctypes.CDLL(None)
                mallopt, trim = handle.mallopt, handle.malloc_trim
            except (OSError, AttributeError):
                pass
            else:
                mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
                mallopt.restype = ctypes.c_int
                trim.argtypes = [ctypes.c_size_t]
                trim.restype = ctypes.c_int
                libc = (mallopt, trim)
        _state["libc"] = libc
    return _state["libc"] or None


def enabled():
    """Whether the tuning applies in this process (glibc, and not turned off)."""
    off = os.environ.get(ENV, "1").strip().lower() in ("0", "false", "no", "off")
    return not off and _glibc() is not None


def _device_type(device):
    if device is None:
        return "cpu"
    return getattr(device, "type", str(device).split(":")[0])


@contextlib.contextmanager
def reused_host_memory(device="cpu"):
    """Keep freed host memory for reuse while CPU compute runs in this block.

    A no-op unless ``device`` is the CPU and the C library is glibc (see the
    module docstring). Blocks nest and may be entered from several threads:
    the thresholds are raised by the first and restored, with the free memory
    given back, by the last to leave.
    """
    if _device_type(device) != "cpu" or not enabled():
        yield
        return
    mallopt, trim = _glibc()
    with _LOCK:
        if _state["depth"] == 0:
            mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)
            mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
        _state["depth"] += 1
    try:
        yield
    finally:
        with _LOCK:
            _state["depth"] -= 1
            if _state["depth"] == 0:
                mallopt(_M_MMAP_THRESHOLD, RESTORED_MMAP_THRESHOLD)
                mallopt(_M_TRIM_THRESHOLD, RESTORED_TRIM_THRESHOLD)
                trim(0)


def depth():
    """How many :func:`reused_host_memory` blocks are open (for tests)."""
    return _state["depth"]
