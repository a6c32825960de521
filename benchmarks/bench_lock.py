"""Benchmark: the per-GPU lock of the CNN estimators against the ``filelock`` package.

The CNN estimators take an exclusive file lock per GPU while they use it, so
that the processes of a ``GridSearchCV(n_jobs=-1)`` take turns on the device
(``skmedimg/neural/_device_lock.py``). Two ways in the same run, on the same
lock file folder:

* **ours**: ``skmedimg.neural._device_lock.file_lock`` (a blocking
  ``fcntl.flock`` on a file opened read-only, plus a re-entrant thread lock);
* **filelock**: ``filelock.FileLock`` (the package torch already installs),
  with its defaults.

Measured: microseconds per uncontended acquire + release (median of
``--cycles``), and the hand-over between ``--procs`` processes that each take
the lock ``--turns`` times and hold it ``--hold-ms`` milliseconds (as the
chunks of a prediction do): the wall time over the time the lock was held in
all (1.0 would be a hand-over that costs nothing). Prints a table and writes
``benchmarks/results/lock.json``.

Usage::

    python benchmarks/bench_lock.py [--procs 2] [--turns 40] [--hold-ms 5]
"""

import multiprocessing as mp
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import base_parser, report, resolve  # noqa: E402


def _ours(folder):
    from skmedimg.neural._device_lock import file_lock

    return lambda: file_lock("bench", directory=folder)


def _filelock(folder):
    from filelock import FileLock

    lock = FileLock(str(Path(folder) / "filelock-bench.lock"))
    return lambda: lock


MAKERS = {"ours": _ours, "filelock": _filelock}


def _uncontended(name, folder, cycles):
    lock = MAKERS[name](folder)
    times = []
    for _ in range(cycles):
        start = time.perf_counter()
        with lock():
            pass
        times.append(time.perf_counter() - start)
    return 1e6 * statistics.median(times)


def _worker(name, folder, turns, hold, barrier, out):
    lock = MAKERS[name](folder)
    barrier.wait()
    start = time.time()
    for _ in range(turns):
        with lock():
            time.sleep(hold)
    out.put((start, time.time()))


def _contended(name, folder, procs, turns, hold):
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(procs)
    out = ctx.Queue()
    workers = [
        ctx.Process(target=_worker, args=(name, folder, turns, hold, barrier, out))
        for _ in range(procs)
    ]
    for w in workers:
        w.start()
    spans = [out.get() for _ in workers]
    for w in workers:
        w.join()
    # from the first loop's start to the last one's end: imports, start-up
    # and exit of the processes are not counted
    return max(end for _, end in spans) - min(start for start, _ in spans)


def main():
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--procs", type=int, default=2)
    parser.add_argument("--turns", type=int, default=40)
    parser.add_argument("--hold-ms", type=float, default=5.0)
    parser.add_argument("--cycles", type=int, default=2000)
    args = parser.parse_args()
    device = resolve("cpu")
    hold = args.hold_ms / 1000
    held = args.procs * args.turns * hold
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        base = None
        for name in MAKERS:
            us = _uncontended(name, folder, args.cycles)
            wall = _contended(name, folder, args.procs, args.turns, hold)
            row = {
                "lock": name,
                "us_per_uncontended_cycle": round(us, 1),
                "contended_wall_s": round(wall, 3),
                "wall_over_held": round(wall / held, 2),
            }
            base = base or row
            row["handover_vs_ours"] = round(
                (wall - held) / max(base["contended_wall_s"] - held, 1e-9), 1
            )
            rows.append(row)
            print(row, flush=True)
    report(
        "lock",
        args,
        device,
        {"procs": args.procs, "turns": args.turns, "hold_ms": args.hold_ms,
         "cycles": args.cycles},
        rows,
        ["lock", "us_per_uncontended_cycle", "contended_wall_s", "wall_over_held",
         "handover_vs_ours"],
        notes=[
            f"contended: {args.procs} processes x {args.turns} turns x "
            f"{args.hold_ms} ms held = {held:.2f} s of holding",
            "wall_over_held: contended wall time (first loop start to last loop "
            "end) / time held (1.0 = free hand-over)",
            "handover_vs_ours: time lost to hand-overs, as a multiple of ours",
        ],
    )


if __name__ == "__main__":
    main()
