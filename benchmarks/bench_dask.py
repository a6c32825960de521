"""Benchmark: a CNNClassifier grid search on a Dask cluster of 1 vs 2 workers.

The same ``GridSearchCV`` (a tiny timm backbone fine-tuned on synthetic
phantoms, 4 candidates x 2 folds = 8 fits, plus the refit) three ways in the
same run:

(a) ``n_jobs=1`` in this process, torch limited to one thread (as on a worker);
(b) on a ``LocalCluster`` of 1 worker process x 1 thread: the whole search
    as one task on the worker (with a single slot, joblib would run the
    Dask backend's tasks sequentially in this process instead);
(c) under ``joblib.parallel_config(backend="dask")`` on 2 worker processes
    x 1 thread.

Each cluster is started before its timer and warmed up with one small task
(importing torch and skmedimg on the workers), so the times are those of the
search and its refit (which runs in this process, with one torch thread). The
best of ``--repeats`` runs is kept. The scores of (b) and (c) are checked against (a).

This measures what fan-out buys on the CPUs of one machine; on a GPU node the
same code runs one worker per GPU (``dask_cuda.LocalCUDACluster``, see
``docs/scale.rst``). A loaded or small machine (fewer free cores than
workers) shows little or no speed-up: read the ``cpu_count`` and ``load``
fields of the JSON next to the times.

Usage::

    python benchmarks/bench_dask.py [--repeats 2] [--epochs 4] [--samples 256]

Prints a table and writes ``benchmarks/results/dask.json``.
"""

import argparse
import datetime
import json
import logging
import os
import platform
import sys
import time
from pathlib import Path

import joblib
import numpy as np
import sklearn
import torch

import skmedimg

ROOT = Path(__file__).resolve().parents[1]
GRID = {"lr": [1e-2, 1e-1], "dropout": [0.0, 0.5]}


def make_search(epochs):
    from sklearn.model_selection import GridSearchCV, StratifiedKFold

    from skmedimg.neural import CNNClassifier

    estimator = CNNClassifier(
        "test_resnet",
        pretrained=False,
        image_size=32,
        batch_size=16,
        max_epochs=epochs,
        random_state=0,
    )
    cv = StratifiedKFold(2, shuffle=True, random_state=0)
    return GridSearchCV(estimator, GRID, cv=cv, scoring="neg_log_loss", n_jobs=1)


def _fit_search(epochs, X, y):
    return make_search(epochs).fit(X, y)


def _warm_up():
    import skmedimg.neural  # noqa: F401  (imports torch, timm, skorch)

    return os.getpid()


def time_search(X, y, epochs, repeats, n_workers=None):
    """Best wall time of the search, and its mean test scores."""
    best, scores = float("inf"), None
    if n_workers is None:
        old = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            for _ in range(repeats):
                start = time.perf_counter()
                search = make_search(epochs).fit(X, y)
                best = min(best, time.perf_counter() - start)
        finally:
            torch.set_num_threads(old)
        return best, search.cv_results_["mean_test_score"]

    from distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=n_workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            silence_logs=logging.ERROR,
        ) as cluster,
        Client(cluster) as client,
    ):
        client.wait_for_workers(n_workers, timeout=120)
        client.run(_warm_up)
        for _ in range(repeats):
            start = time.perf_counter()
            if n_workers == 1:
                # joblib runs a Parallel whose backend offers one slot
                # sequentially in *this* process, so the Dask backend on a
                # 1-thread cluster would time the client, not the worker:
                # run the whole search as one task on the worker instead.
                future = client.submit(_fit_search, epochs, X, y, pure=False)
                search = future.result()
            else:
                with joblib.parallel_config(backend="dask", n_jobs=-1):
                    search = make_search(epochs).fit(X, y)
            best = min(best, time.perf_counter() - start)
            scores = search.cv_results_["mean_test_score"]
    return best, scores


def versions():
    import dask
    import distributed
    import skorch
    import timm

    return {
        "python": sys.version.split()[0],
        "skmedimg": skmedimg.__version__,
        "torch": torch.__version__,
        "timm": timm.__version__,
        "skorch": skorch.__version__,
        "scikit-learn": sklearn.__version__,
        "joblib": joblib.__version__,
        "dask": dask.__version__,
        "distributed": distributed.__version__,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--samples", type=int, default=256)
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks" / "results" / "dask.json"
    )
    args = parser.parse_args(argv)

    from skmedimg.datasets import make_phantoms

    X, y = make_phantoms(args.samples, n_classes=2, image_size=32, random_state=0)
    # One torch thread here too: the refit of every search runs in this
    # process, and the workers run one thread each (OMP_NUM_THREADS=1).
    torch.set_num_threads(1)
    load_before = os.getloadavg()
    rows = []
    baseline_scores = None
    for label, n_workers in [
        ("n_jobs=1, in process", None),
        ("dask, 1 worker", 1),
        ("dask, 2 workers", 2),
    ]:
        seconds, scores = time_search(X, y, args.epochs, args.repeats, n_workers)
        if baseline_scores is None:
            baseline_scores = scores
        same = bool(np.allclose(scores, baseline_scores, rtol=1e-6, atol=0))
        rows.append(
            {
                "method": label,
                "n_workers": n_workers,
                "seconds": round(seconds, 3),
                "same_scores_as_n_jobs_1": same,
                "mean_test_score": [float(v) for v in scores],
            }
        )
    one = rows[1]["seconds"]
    for row in rows:
        row["speedup_vs_1_worker"] = round(one / row["seconds"], 2)

    width = max(len(r["method"]) for r in rows)
    print(f"{'method':<{width}}  seconds  vs 1 worker  same scores")
    for r in rows:
        print(
            f"{r['method']:<{width}}  {r['seconds']:7.2f}  "
            f"{r['speedup_vs_1_worker']:10.2f}x  {r['same_scores_as_n_jobs_1']}"
        )

    result = {
        "benchmark": "GridSearchCV(CNNClassifier) on dask: 1 vs 2 workers",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "search": {
            "model_name": "test_resnet",
            "image_size": 32,
            "n_samples": args.samples,
            "max_epochs": args.epochs,
            "grid": GRID,
            "cv": 2,
            "n_fits": 8,
            "repeats": args.repeats,
            "threads_per_worker": 1,
        },
        "hardware": {
            "machine": platform.machine(),
            "processor": platform.processor(),
            "cpu_count": os.cpu_count(),
            "cuda": torch.cuda.get_device_name(0)
            if torch.cuda.is_available()
            else None,
            "load_before": load_before,
            "load_after": os.getloadavg(),
        },
        "platform": platform.platform(),
        "versions": versions(),
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
