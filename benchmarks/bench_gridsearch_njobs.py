"""Benchmark: GridSearchCV over CNNClassifier with n_jobs=1 against n_jobs>1.

The search starts from JPEG paths, so every fit decodes its images (CPU work)
before training (device work). With ``n_jobs>1`` joblib's loky backend runs
the fits in worker processes. On a GPU the estimators take turns on the device
(``lock_gpu=True``, a file lock per GPU) while the workers decode in parallel;
on a CPU nothing is locked and loky gives each worker ``cpu_count // n_jobs``
torch threads.

In the same run, for each ``n_jobs``: wall time of ``search.fit``, its ratio to
``n_jobs=1``, the largest number of fits that were training at the same
moment (from a callback that logs each fit's training interval to a file),
the torch threads of a worker, peak GPU memory of the parent (workers are
other processes: see the notes) and whether the best parameters and scores are
the same as with ``n_jobs=1``.

CPU defaults: ``mobilenetv3_small_100``, 96 JPEGs at 64 px, 2 epochs, a 2 x 2
grid, 2 folds (8 fits and the refit), ``n_jobs`` 1 and 2. ``--full`` (GPU):
``resnet50``, 2048 JPEGs at 224 px, 3 epochs, a 2 x 2 grid, 3 folds (12 fits
and the refit), ``n_jobs`` 1, 2 and -1, and for each ``n_jobs > 1`` a second
search with ``lock_gpu=False``, to show what the lock prevents. The JSON is
written after each search (``<result>.partial.json``, until the run
completes).

Usage::

    python benchmarks/bench_gridsearch_njobs.py [--full] [--n-jobs 1 2 -1]
"""

import os
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import (
    PeakMemory,
    Timer,
    amp_dtype,
    base_parser,
    default_data_dir,
    report,
    resolve,
    sample_folder,
    setup_threads,
    write_partial,
)
from joblib import Parallel, delayed
from sklearn.model_selection import GridSearchCV, ParameterGrid, StratifiedKFold
from skorch.callbacks import Callback

from skmedimg.neural import CNNClassifier


class TrainingIntervals(Callback):
    """Append ``pid begin end`` of each fit's training to a file."""

    def __init__(self, path):
        self.path = path

    def on_train_begin(self, net, **kwargs):
        self.begin_ = time.time()

    def on_train_end(self, net, **kwargs):
        with open(self.path, "a") as f:
            f.write(f"{os.getpid()} {self.begin_} {time.time()}\n")


class LockedOnCPU(CNNClassifier):
    """CNNClassifier that takes the device lock on a CPU too (benchmark only).

    Shows on a machine without a GPU what ``lock_gpu=True`` does on one: the
    fits decode in parallel and train one at a time. The patch is applied in
    whichever process fits (loky workers unpickle this class by value).
    """

    def fit(self, X, y):
        import skmedimg.neural._device_lock as lock_module

        real = lock_module.device_lock_key
        if not getattr(real, "patched", False):

            def key(device, real=real):
                return "bench-cpu" if str(device) == "cpu" else real(device)

            key.patched = True
            lock_module.device_lock_key = key
        return super().fit(X, y)


def max_overlap(path):
    events = []
    for line in Path(path).read_text().splitlines():
        _, begin, end = line.split()
        events += [(float(begin), 1), (float(end), -1)]
    running = peak = 0
    for _, step in sorted(events, key=lambda e: (e[0], e[1])):
        running += step
        peak = max(peak, running)
    return peak


def _torch_threads():
    # Also imports what a fit imports, so that the timed search does not pay
    # for the workers' first imports (seconds on a loaded machine).
    import torch

    import skmedimg.neural  # noqa: F401

    return torch.get_num_threads()


def main():
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--n-images", type=int, default=None)
    parser.add_argument("--image-size", type=int, default=None)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--n-jobs", type=int, nargs="+", default=None)
    args = parser.parse_args()
    if args.threads is None:
        args.threads = 0  # loky's per-worker threads are the point here
    device = resolve(args.device)
    threads = setup_threads(args, device)
    full = args.full
    model = args.model or ("resnet50" if full else "mobilenetv3_small_100")
    n = args.n_images or (2048 if full else 96)
    size = args.image_size or (224 if full else 64)
    epochs = args.epochs or (3 if full else 2)
    # --full: 5 searches, 85 ResNet-50 fits with the warm-ups, about 4-6 min
    # on one H100 (estimate); n_jobs=4 too (7 searches) could pass 10 min.
    n_jobs_list = args.n_jobs or ([1, 2, -1] if full else [1, 2])
    # (n_jobs, lock): "default" is lock_gpu=True (a no-op on a CPU); on a CPU
    # "forced" shows what the GPU lock does, on a GPU "off" shows what
    # parallel fits do without it.
    runs = [(n_jobs, "default") for n_jobs in n_jobs_list]
    extra = "forced" if device.type == "cpu" else "off"
    runs += [(n_jobs, extra) for n_jobs in n_jobs_list if n_jobs != 1]
    folds = 3 if full else 2
    grid = {"lr": [1e-3, 3e-3], "dropout": [0.0, 0.2]}
    n_fits = len(ParameterGrid(grid)) * folds
    folder = (args.data or default_data_dir()) / "brain_tumor_mri" / "Training"
    paths, y = sample_folder(folder, n)
    settings = dict(
        model=model,
        n_images=len(paths),
        image_size=size,
        epochs=epochs,
        grid=grid,
        folds=folds,
        n_jobs=n_jobs_list,
        precision=str(amp_dtype(device)),
        backend="loky",
        parent_torch_threads=threads,
    )
    print(f"device={device} settings={settings}")
    rows = []
    reference = None
    tmp = tempfile.mkdtemp(prefix="skmedimg-bench-")
    for n_jobs, lock in runs:
        log = os.path.join(tmp, f"intervals-{n_jobs}-{lock}.txt")
        estimator = (LockedOnCPU if lock == "forced" else CNNClassifier)(
            model,
            pretrained=False,
            freeze="none",
            max_epochs=epochs,
            batch_size=32,
            image_size=size,
            device=str(device),
            n_jobs=1,  # decoding threads per fit; the search runs n_jobs fits
            lock_gpu=lock != "off",
            random_state=0,
            callbacks=[TrainingIntervals(log)],
        )
        search = GridSearchCV(estimator, grid, cv=StratifiedKFold(folds), n_jobs=n_jobs)
        # Start the workers (and import torch, timm, skorch there) before
        # timing: the first parallel search would otherwise pay for it.
        threads = (
            Parallel(n_jobs=n_jobs)(delayed(_torch_threads)() for _ in range(4))[0]
            if n_jobs != 1
            else _torch_threads()
        )
        # ... and warm them up (a first fit in a process pays for oneDNN /
        # cuDNN kernel selection): one untimed search with one candidate.
        warm = GridSearchCV(
            estimator, {"lr": grid["lr"][:1]}, cv=StratifiedKFold(folds), n_jobs=n_jobs
        )
        warm.fit(paths, y)
        open(log, "w").close()
        with PeakMemory(device, device_wide=True) as mem, Timer(device) as t:
            search.fit(paths, y)
        scores = np.asarray(search.cv_results_["mean_test_score"])
        if reference is None:
            reference = (search.best_params_, scores, t.seconds)
        rows.append(
            dict(
                n_jobs=n_jobs,
                device_lock={
                    "forced": "forced on the CPU",
                    "off": "off (lock_gpu=False)",
                }.get(lock, "per GPU" if device.type == "cuda" else "none (CPU)"),
                fit_s=round(t.seconds, 2),
                vs_n_jobs_1=round(t.seconds / reference[2], 3),
                max_concurrent_training=max_overlap(log),
                torch_threads_per_worker=threads,
                same_scores=bool(np.allclose(scores, reference[1], atol=1e-6)),
                same_best=search.best_params_ == reference[0],
                best_score=round(float(search.best_score_), 4),
                **mem.as_dict(),
            )
        )
        print(rows[-1])
        # a run stopped by a time limit keeps the searches it finished
        write_partial("gridsearch_njobs", args, device, settings, rows)
    report(
        "gridsearch_njobs",
        args,
        device,
        settings,
        rows,
        [
            "n_jobs",
            ("device_lock", "device lock"),
            ("fit_s", "search.fit s"),
            ("vs_n_jobs_1", "time vs n_jobs=1"),
            ("max_concurrent_training", "max fits training at once"),
            ("torch_threads_per_worker", "torch threads/worker"),
            ("same_scores", "same scores"),
            ("best_score", "best score"),
            ("host_peak_mb", "parent host peak MB"),
            ("gpu_peak_mb", "parent GPU peak MB"),
            ("gpu_device_peak_mb", "whole-GPU peak MB"),
        ],
        [
            f"{n_fits} fits + refit per search; the refit runs in the parent process",
            "max fits training at once: 1 means device work took turns "
            "(the GPU lock); on a CPU nothing is locked, except in the rows "
            "'forced on the CPU', which show what the GPU lock does; on a GPU the "
            "rows 'off' show parallel fits without the lock",
            "memory columns are the parent's only (workers are other processes), "
            "except the whole-GPU peak: all processes, sampled every 50 ms",
            "the worker processes are started, import skmedimg.neural and run "
            "one untimed search (one candidate) before the timed search",
        ],
    )


if __name__ == "__main__":
    main()
