"""Benchmark: host memory and throughput of fitting and predicting at scale.

Synthetic JPEG folders of ``--sizes`` images (512 px originals, four classes
told apart by where a bright blob lies, 224 px target) are fitted and
predicted by ``CNNClassifier`` (``tf_efficientnet_lite0``) two ways in the
same run:

* **in memory** (the baseline, the only path before the streaming reader):
  ``in_memory_limit=None``, the decoded training set held as one array;
* **streamed**: ``in_memory_limit=0`` and an ``image_cache`` folder, so the
  training images are decoded a chunk at a time to the cache and every batch
  is read from disk; run twice, with the cache cold and then warm.

Each arm runs in a process of its own, so its peak resident memory
(anonymous resident memory, sampled, imports and model included; and
``ru_maxrss``, which also counts mapped cache files) is its own. Arms: the frozen fit
(one feature pass and a linear head), one fine-tuning epoch, ``predict_proba``
and ``CNNFeatureExtractor.transform``. Throughput is images per second of the
arm's whole call; ``vs_in_memory`` is the streamed arm's throughput over the
in-memory arm's, ``memory_vs_in_memory`` its peak over the in-memory peak.

A last part counts decodes: a 5-fold x 4-candidate ``GridSearchCV`` on
``--grid-images`` of the files, without and with ``image_cache`` (decodes
counted by wrapping the reader's file opener, ``n_jobs=1``).

Usage::

    python benchmarks/bench_scale.py [--sizes 2000 8000 32000] [--no-finetune]
        [--finetune-max 8000] [--model test_resnet] [--fit-only]
        [--calls "fit frozen" "fit 1 fine-tune epoch" predict_proba transform]
"""

import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import base_parser, report, resolve, setup_threads  # noqa: E402

ALL_SIZES = (2000, 8000, 32000)
ORIGINAL = 512
TARGET = 224
MODEL = "tf_efficientnet_lite0"
CALLS = ("fit frozen", "fit 1 fine-tune epoch", "predict_proba", "transform")


def make_folder(folder, n_images, seed=0):
    """``n_images`` JPEGs of 512 px in four class folders; returns paths, labels."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    # One blob of twice the image size, cut at an offset: the blob centred at
    # (cy, cx) without computing a Gaussian per image.
    yy, xx = np.mgrid[0 : 2 * ORIGINAL, 0 : 2 * ORIGINAL] - ORIGINAL
    template = 120 * np.exp(-(yy**2 + xx**2) / (2 * 45.0**2))
    centres = [(128, 128), (128, 384), (384, 128), (384, 384)]
    paths, labels = [], []
    for i in range(n_images):
        label = i % 4
        cy, cx = centres[label]
        cy, cx = cy + rng.integers(-40, 41), cx + rng.integers(-40, 41)
        top, left = ORIGINAL - cy, ORIGINAL - cx
        blob = template[top : top + ORIGINAL, left : left + ORIGINAL]
        noise = rng.normal(0, 12, size=(ORIGINAL // 8, ORIGINAL // 8))
        noise = np.kron(noise, np.ones((8, 8)))
        image = np.clip(60 + blob + noise, 0, 255).astype(np.uint8)
        path = folder / f"class{label}" / f"{i:06d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).convert("RGB").save(path, quality=90)
        paths.append(str(path))
        labels.append(f"class{label}")
    return np.asarray(paths, dtype=object), np.asarray(labels)


def _classifier(arm, cache, freeze):
    from skmedimg.neural import CNNClassifier

    streamed = arm["way"] == "streamed"
    model = arm.get("model_name", MODEL)
    return CNNClassifier(
        model,
        pretrained=model == MODEL,
        recipe=None,
        freeze=freeze,
        image_size=TARGET,
        max_epochs=1 if freeze == "none" else 5,
        batch_size=32,
        device="cpu",
        random_state=0,
        in_memory_limit=0 if streamed else None,
        image_cache=cache if streamed else None,
        verbose=0,
    )


def _rss_anon_kb():
    """Anonymous resident memory of this process (kB), 0 where /proc is absent.

    Pages of memory-mapped cache files count in the resident set but are file
    cache that the kernel drops under pressure; the anonymous part is the
    memory the process really holds.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class PeakAnon:
    """Sample the anonymous resident memory every 10 ms; ``mb`` is its peak."""

    def __enter__(self):
        import threading

        self._peak = _rss_anon_kb()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while not self._stop.wait(0.01):
            self._peak = max(self._peak, _rss_anon_kb())

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    @property
    def mb(self):
        return round(self._peak / 1024, 1)


def run_arm(arm):
    """One measurement in this process; returns its record."""
    with PeakAnon() as peak_anon:
        record = _timed_arm(arm)
    return {**record, "peak_anon_mb": peak_anon.mb}


def _timed_arm(arm):
    import torch

    torch.set_num_threads(arm["threads"])
    paths = np.load(arm["paths"], allow_pickle=True)
    labels = np.load(arm["labels"], allow_pickle=True)
    cache = arm["cache"]
    start = time.perf_counter()
    if arm["kind"] in ("fit frozen", "fit 1 fine-tune epoch"):
        freeze = "backbone" if arm["kind"] == "fit frozen" else "none"
        _classifier(arm, cache, freeze).fit(paths, labels)
    elif arm["kind"] == "predict_proba":
        import joblib

        clf = joblib.load(arm["model"])
        clf.set_params(image_cache=cache if arm["way"] == "streamed" else None)
        clf.predict_proba(paths)
    elif arm["kind"] == "transform":
        from skmedimg.neural import CNNFeatureExtractor

        model = arm.get("model_name", MODEL)
        extractor = CNNFeatureExtractor(
            model,
            pretrained=model == MODEL,
            image_size=TARGET,
            device="cpu",
            image_cache=cache if arm["way"] == "streamed" else None,
        )
        extractor.fit(paths[:8]).transform(paths)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"seconds": round(seconds, 2), "peak_rss_mb": round(peak, 1)}


def spawn(arm, script=__file__, env=None):
    """Run ``script --arm ARM`` in a process of its own; returns its record."""
    out = subprocess.run(
        [sys.executable, script, "--arm", json.dumps(arm)],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    if out.returncode:
        name = " ".join(str(arm[k]) for k in ("kind", "way") if k in arm)
        raise RuntimeError(f"arm {name} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def count_grid_decodes(paths, labels, threads, cache):
    """Decodes made by a 5-fold x 4-candidate GridSearchCV, without and with a cache."""
    import torch
    from sklearn.model_selection import GridSearchCV, StratifiedKFold

    from skmedimg.neural import CNNClassifier
    from skmedimg.utils import _io

    torch.set_num_threads(threads)
    opened = {"n": 0}
    original = _io._open_file

    def counting(*args, **kwargs):
        opened["n"] += 1
        return original(*args, **kwargs)

    rows = []
    _io._open_file = counting
    try:
        for way, folder in (("no cache", None), ("image_cache", cache)):
            opened["n"] = 0
            clf = CNNClassifier(
                "test_resnet",
                pretrained=False,
                recipe=None,
                freeze="backbone",
                image_size=64,
                max_epochs=2,
                device="cpu",
                random_state=0,
                image_cache=folder,
                verbose=0,
            )
            grid = GridSearchCV(
                clf,
                {"lr": [1e-3, 1e-2], "batch_size": [16, 32]},
                cv=StratifiedKFold(5, shuffle=True, random_state=0),
                n_jobs=1,
            )
            start = time.perf_counter()
            grid.fit(paths, labels)
            rows.append(
                {
                    "part": "GridSearchCV 5-fold x 4 candidates",
                    "way": way,
                    "n_images": len(paths),
                    "decodes": opened["n"],
                    "decodes_per_image": round(opened["n"] / len(paths), 2),
                    "seconds": round(time.perf_counter() - start, 1),
                }
            )
    finally:
        _io._open_file = original
    return rows


def main():
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000])
    parser.add_argument("--no-finetune", action="store_true")
    parser.add_argument(
        "--finetune-max",
        type=int,
        default=None,
        help="run the fine-tuning arms only on folders of at most this many images",
    )
    parser.add_argument(
        "--fit-only",
        action="store_true",
        help="skip the predict_proba and transform arms (the largest folders)",
    )
    parser.add_argument(
        "--model",
        default=MODEL,
        help="timm backbone (random weights unless it is the default); a small "
        "one such as test_resnet makes 32,000 images affordable on a CPU",
    )
    parser.add_argument(
        "--calls",
        nargs="+",
        choices=CALLS,
        default=None,
        help="run only these calls (default: all that the other options leave)",
    )
    parser.add_argument("--grid-images", type=int, default=200)
    parser.add_argument("--work", type=Path, default=None, help="scratch folder")
    parser.add_argument("--arm", default=None, help=argparse_hidden())
    args = parser.parse_args()
    if args.arm:
        print(json.dumps(run_arm(json.loads(args.arm))))
        return
    device = resolve("cpu" if args.device == "auto" else args.device)
    threads = setup_threads(args, device)
    work = Path(args.work or tempfile.mkdtemp(prefix="bench_scale_"))
    work.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()
    rows = []
    try:
        for n in args.sizes:
            folder = work / f"jpeg_{n}"
            start = time.perf_counter()
            paths, labels = make_folder(folder, n)
            print(
                f"{n} JPEGs written in {time.perf_counter() - start:.0f} s", flush=True
            )
            np.save(work / "paths.npy", paths)
            np.save(work / "labels.npy", labels)
            cache = work / f"cache_{n}"
            kinds = ["fit frozen"]
            if not args.no_finetune and n <= (args.finetune_max or n):
                kinds.append("fit 1 fine-tune epoch")
            base = {
                "paths": str(work / "paths.npy"),
                "labels": str(work / "labels.npy"),
                "threads": threads,
                "model_name": args.model,
            }
            kinds = [k for k in kinds if args.calls is None or k in args.calls]
            for kind in kinds:
                shutil.rmtree(cache, ignore_errors=True)
                ways = [("in memory", None), ("streamed", "cold"), ("streamed", "warm")]
                baseline = None
                for way, state in ways:
                    arm = {**base, "kind": kind, "way": way, "cache": str(cache)}
                    if way == "streamed" and state == "warm" and kind != "fit frozen":
                        continue
                    record = spawn(arm)
                    row = {
                        "n_images": n,
                        "call": kind,
                        "way": way if state is None else f"{way}, cache {state}",
                        "img_per_s": round(n / record["seconds"], 1),
                        **record,
                    }
                    if baseline is None:
                        baseline = row
                    row["vs_in_memory"] = round(
                        row["img_per_s"] / baseline["img_per_s"], 3
                    )
                    row["memory_vs_in_memory"] = round(
                        row["peak_anon_mb"] / baseline["peak_anon_mb"], 3
                    )
                    rows.append(row)
                    print(row, flush=True)
            # predict and transform: the cache is warm from the fits above
            import joblib

            model = work / "model.joblib"
            clf = _classifier(
                {"way": "in memory", "model_name": args.model}, None, "backbone"
            )
            clf.set_params(max_epochs=1)
            joblib.dump(clf.fit(paths[:64], labels[:64]), model)
            later = () if args.fit_only else ("predict_proba", "transform")
            later = [k for k in later if args.calls is None or k in args.calls]
            if later and not any(k == "fit frozen" for k in kinds):
                shutil.rmtree(cache, ignore_errors=True)
                # warm the cache for the streamed predict / transform rows
                warm = {
                    **base,
                    "kind": "fit frozen",
                    "way": "streamed",
                    "cache": str(cache),
                }
                spawn(warm)
            for kind in later:
                baseline = None
                for way in ("in memory", "streamed"):
                    arm = {
                        **base,
                        "kind": kind,
                        "way": way,
                        "cache": str(cache),
                        "model": str(model),
                    }
                    record = spawn(arm)
                    row = {
                        "n_images": n,
                        "call": kind,
                        "way": "decoded per chunk"
                        if way == "in memory"
                        else "image_cache, warm",
                        "img_per_s": round(n / record["seconds"], 1),
                        **record,
                    }
                    baseline = baseline or row
                    row["vs_in_memory"] = round(
                        row["img_per_s"] / baseline["img_per_s"], 3
                    )
                    row["memory_vs_in_memory"] = round(
                        row["peak_anon_mb"] / baseline["peak_anon_mb"], 3
                    )
                    rows.append(row)
                    print(row, flush=True)
            shutil.rmtree(folder, ignore_errors=True)
            shutil.rmtree(cache, ignore_errors=True)
        grid_rows = []
        if args.grid_images:  # 0: no grid search part
            grid_folder = work / "grid"
            paths, labels = make_folder(grid_folder, args.grid_images, seed=1)
            grid_rows = count_grid_decodes(paths, labels, threads, work / "grid_cache")
        for row in grid_rows:
            print(row, flush=True)
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    smallest = min(args.sizes)
    first = {
        (r["call"], r["way"]): r["peak_anon_mb"]
        for r in rows
        if r["n_images"] == smallest
    }
    for row in rows:
        row[f"memory_vs_{smallest}"] = round(
            row["peak_anon_mb"] / first[(row["call"], row["way"])], 3
        )
    not_run = [n for n in ALL_SIZES if n not in args.sizes]
    settings = {
        "model": args.model,
        "original_px": ORIGINAL,
        "target_px": TARGET,
        "sizes": args.sizes,
        "not_run": not_run,
        "finetune": not args.no_finetune,
        "finetune_max": args.finetune_max,
        "fit_only": args.fit_only,
        "calls": args.calls or list(CALLS),
        "threads": threads,
        "load_before": load_before,
        "load_after": os.getloadavg(),
    }
    notes = [
        "in memory: in_memory_limit=None (the decoded training set as one array, "
        "the only path before streaming); streamed: in_memory_limit=0 with an "
        "image_cache folder (cold: empty; warm: filled by the cold run)",
        "peak_anon_mb: peak anonymous resident memory of the arm's own process "
        "(sampled every 10 ms; imports and model included), the memory it holds; "
        "peak_rss_mb: ru_maxrss, which also counts pages of memory-mapped cache "
        "files (file cache the kernel can drop); vs_in_memory: throughput ratio; "
        "memory_vs_in_memory: peak_anon ratio",
        "predict_proba and transform decode a chunk at a time on both paths; the "
        "streamed row reads the warm cache",
        f"memory_vs_{min(args.sizes)}: peak_anon over that of the same call and "
        f"way at {min(args.sizes)} images (the bounded-memory target: at most 1.3 "
        "at 32,000 on the streamed path)",
        "the frozen fit keeps the pooled features of every training image in "
        "memory (the head's training set: 4 bytes per feature, 5 KB per image "
        "for tf_efficientnet_lite0's 1280), by design",
        f"sizes not run on this machine: {not_run or 'none'}",
        "CPU arms run with host memory reuse on (the default; "
        "SKMEDIMG_REUSE_HOST_MEMORY, see bench_host_memory.py for its effect)",
    ]
    report(
        "scale",
        args,
        device,
        settings,
        rows,
        [
            "n_images",
            "call",
            "way",
            "seconds",
            "img_per_s",
            "vs_in_memory",
            "peak_anon_mb",
            "memory_vs_in_memory",
            f"memory_vs_{min(args.sizes)}",
            "peak_rss_mb",
        ],
        notes=notes,
        grid=grid_rows,
    )
    from _common import table

    if grid_rows:
        print()
        print(
            table(
                grid_rows,
                ["part", "way", "n_images", "decodes", "decodes_per_image", "seconds"],
            )
        )


def argparse_hidden():
    import argparse

    return argparse.SUPPRESS


if __name__ == "__main__":
    main()
