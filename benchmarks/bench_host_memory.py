"""Benchmark: CPU compute with host memory reused against glibc's defaults.

Every arm runs twice, each time in a process of its own (the allocator's state
is per process): once with ``SKMEDIMG_REUSE_HOST_MEMORY=0`` (glibc's own
``malloc`` thresholds, the baseline: every large activation is mapped, faulted
in page by page and unmapped, each batch) and once with the default (the
thresholds raised while skmedimg computes on the CPU, see
``skmedimg/utils/_host_memory.py``). Reported per arm: wall seconds, kernel
(sys) and user CPU seconds, minor page faults and peak anonymous memory, and
the speed and memory ratios of the default over the baseline.

Arms (CPU, ``--threads`` torch threads):

* ``CNNClassifier`` (``tf_efficientnet_lite0``, ImageNet weights): the frozen
  fit, in memory and streamed from a warm ``image_cache``; one fine-tuning
  epoch; ``predict_proba``; on a synthetic folder of ``--images`` 512 px JPEGs
  at 224 px;
* ``CNNSegmenter`` (SegResNet, 3-D): a fit of ``--volumes`` 48^3 phantoms and
  a sliding-window prediction.

Usage::

    python benchmarks/bench_host_memory.py [--images 800] [--threads 2]
"""

import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import base_parser, report, resolve, setup_threads  # noqa: E402
from bench_scale import PeakAnon, make_folder  # noqa: E402
from bench_scale import _classifier as scale_classifier  # noqa: E402
from bench_scale import spawn as spawn_arm  # noqa: E402

MODEL = "tf_efficientnet_lite0"
ARMS = (
    "fit frozen, in memory",
    "fit frozen, streamed (warm cache)",
    "fit 1 fine-tune epoch",
    "predict_proba",
    "CNNSegmenter fit 3-D",
    "CNNSegmenter predict 3-D",
)


def _classifier(freeze, streamed, cache):
    """The classifier of ``bench_scale.py``, with ``tf_efficientnet_lite0``."""
    way = "streamed" if streamed else "in memory"
    return scale_classifier({"way": way, "model_name": MODEL}, cache, freeze)


def _segmenter(volumes):
    from skmedimg.segmentation import CNNSegmenter

    return CNNSegmenter(
        "segresnet",
        roi_size=(32, 32, 32),
        network__init_filters=8,
        batch_size=2,
        max_epochs=3,
        device="cpu",
        random_state=0,
        verbose=0,
    )


def run_arm(arm):
    """One measurement in this process; returns its record."""
    import torch

    torch.set_num_threads(arm["threads"])
    with PeakAnon() as peak:
        record = _timed_call(arm)
    return {**record, "peak_anon_mb": peak.mb}


def _timed_call(arm):
    kind = arm["kind"]
    if kind.startswith("CNNSegmenter"):
        from skmedimg.datasets import make_segmentation_phantoms

        X, y = make_segmentation_phantoms(
            arm["volumes"], image_size=48, ndim=3, random_state=0
        )
        seg = _segmenter(arm["volumes"])
        if kind.endswith("predict 3-D"):
            seg.set_params(max_epochs=1).fit(X[:2], y[:2])
    else:
        paths = np.load(arm["paths"], allow_pickle=True)
        labels = np.load(arm["labels"], allow_pickle=True)
        if kind == "predict_proba":
            import joblib

            clf = joblib.load(arm["model"])
    before = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    if kind == "fit frozen, in memory":
        _classifier("backbone", False, None).fit(paths, labels)
    elif kind == "fit frozen, streamed (warm cache)":
        _classifier("backbone", True, arm["cache"]).fit(paths, labels)
    elif kind == "fit 1 fine-tune epoch":
        _classifier("none", False, None).fit(paths, labels)
    elif kind == "predict_proba":
        clf.predict_proba(paths)
    elif kind == "CNNSegmenter fit 3-D":
        seg.fit(X, y)
    elif kind == "CNNSegmenter predict 3-D":
        seg.predict(X)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "seconds": round(seconds, 2),
        "sys_s": round(after.ru_stime - before.ru_stime, 2),
        "user_s": round(after.ru_utime - before.ru_utime, 2),
        "minor_faults": after.ru_minflt - before.ru_minflt,
    }


def spawn(arm, reuse):
    env = dict(os.environ, SKMEDIMG_REUSE_HOST_MEMORY="1" if reuse else "0")
    return spawn_arm(arm, script=__file__, env=env)


def main():
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=800)
    parser.add_argument("--volumes", type=int, default=6)
    parser.add_argument("--arm", default=None, help="(internal) one arm, as JSON")
    args = parser.parse_args()
    if args.arm:
        print(json.dumps(run_arm(json.loads(args.arm))))
        return
    device = resolve("cpu")
    threads = setup_threads(args, device)
    from skmedimg.utils import _host_memory

    if not _host_memory.enabled():
        print("host memory reuse does not apply here (not glibc): nothing to compare")
        return
    load_before = os.getloadavg()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_host_memory_") as work:
        work = Path(work)
        paths, labels = make_folder(work / "jpeg", args.images)
        np.save(work / "paths.npy", paths)
        np.save(work / "labels.npy", labels)
        cache = work / "cache"
        import joblib

        # the warm cache and the model of predict_proba, made once
        clf = _classifier("backbone", True, str(cache)).set_params(max_epochs=1)
        joblib.dump(clf.fit(paths, labels), work / "model.joblib")
        base = {
            "paths": str(work / "paths.npy"),
            "labels": str(work / "labels.npy"),
            "cache": str(cache),
            "model": str(work / "model.joblib"),
            "threads": threads,
            "volumes": args.volumes,
        }
        for kind in ARMS:
            records = {}
            for reuse in (False, True):
                records[reuse] = spawn({**base, "kind": kind}, reuse)
            off, on = records[False], records[True]
            for reuse, record in ((False, off), (True, on)):
                row = {
                    "call": kind,
                    "host memory": "reused" if reuse else "glibc defaults",
                    **record,
                    "speed_vs_defaults": round(off["seconds"] / record["seconds"], 3),
                    "memory_vs_defaults": round(
                        record["peak_anon_mb"] / off["peak_anon_mb"], 3
                    ),
                }
                rows.append(row)
                print(row, flush=True)
    settings = {
        "model": MODEL,
        "images": args.images,
        "image_px": "512 px JPEGs read at 224 px",
        "segmenter": "SegResNet init_filters=8, 3 epochs, roi 32^3, phantoms 48^3",
        "volumes": args.volumes,
        "threads": threads,
        "load_before": load_before,
        "load_after": os.getloadavg(),
    }
    notes = [
        "glibc defaults: SKMEDIMG_REUSE_HOST_MEMORY=0 (the baseline); reused: the "
        "default, glibc's malloc thresholds raised while skmedimg computes on the CPU",
        "speed_vs_defaults: baseline seconds / seconds; memory_vs_defaults: peak "
        "anonymous resident memory / that of the baseline",
        "each row is one process; sys_s and user_s: CPU seconds of the timed call",
    ]
    report(
        "host_memory",
        args,
        device,
        settings,
        rows,
        [
            "call",
            "host memory",
            "seconds",
            "sys_s",
            "user_s",
            "minor_faults",
            "peak_anon_mb",
            "speed_vs_defaults",
            "memory_vs_defaults",
        ],
        notes=notes,
    )


if __name__ == "__main__":
    main()
