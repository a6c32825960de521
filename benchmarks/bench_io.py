"""Benchmark: read and resize the original-resolution brain MRI test images.

Reads the 1311 images of ``brain_tumor_mri_testing_original/Testing`` (194
sizes, most 512x512, grayscale JPEG) and resizes them to 224x224 RGB, three ways
in the same run:

(a) plain Pillow, the loop users write by hand::

        np.stack([np.asarray(Image.open(p).convert("RGB").resize((224, 224)))
                  for p in paths])

(b) ``skmedimg.utils.read_images(paths, image_size=224, color="rgb", n_jobs=1)``
(c) the same with ``n_jobs=-1`` (threads).

One warm-up pass (so that every method finds the files in the OS page cache),
then the best of ``--repeats`` timed passes per method. Prints a table and
writes ``benchmarks/results/io.json``. It also prints how far the pixels of (b)
are from (a): ``read_images`` resizes with a bilinear filter (Pillow's
``resize`` defaults to bicubic) and decodes large JPEGs at a reduced scale
(Pillow's ``draft``), so the pixels differ slightly; the difference against a
bilinear Pillow baseline isolates the effect of ``draft``.

Usage::

    python benchmarks/bench_io.py [DATA_DIR] [--repeats 3]

``DATA_DIR`` defaults to ``$SKMEDIMG_DATA``, else ``../shared/data`` next to
the repository root.
"""

import argparse
import datetime
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import PIL
from PIL import Image

import skmedimg
from skmedimg.datasets import load_image_folder
from skmedimg.utils import read_images

ROOT = Path(__file__).resolve().parents[1]
SIZE = 224


def default_data_dir():
    env = os.environ.get("SKMEDIMG_DATA")
    return Path(env) if env else ROOT.parent / "shared" / "data"


def pillow_baseline(paths, resample=None):
    if resample is None:  # exactly the hand-written loop
        return np.stack(
            [
                np.asarray(Image.open(p).convert("RGB").resize((SIZE, SIZE)))
                for p in paths
            ]
        )
    return np.stack(
        [
            np.asarray(Image.open(p).convert("RGB").resize((SIZE, SIZE), resample))
            for p in paths
        ]
    )


def best_time(func, repeats):
    times = []
    result = None
    for _ in range(repeats):
        start = time.perf_counter()
        result = func()
        times.append(time.perf_counter() - start)
    return min(times), times, result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("data_dir", nargs="?", type=Path, default=None)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--output", type=Path, default=ROOT / "benchmarks" / "results" / "io.json"
    )
    args = parser.parse_args(argv)

    data_dir = args.data_dir or default_data_dir()
    folder = data_dir / "brain_tumor_mri_testing_original" / "Testing"
    if not folder.is_dir():
        sys.exit(f"image folder not found: {folder} (give DATA_DIR or SKMEDIMG_DATA)")
    paths = list(load_image_folder(folder).filenames)
    n = len(paths)
    print(f"{n} images from {folder}, resized to {SIZE}x{SIZE} RGB")

    methods = {
        "Pillow open/convert/resize loop": lambda: pillow_baseline(paths),
        "read_images n_jobs=1": lambda: read_images(
            paths, image_size=SIZE, color="rgb", n_jobs=1
        ),
        "read_images n_jobs=-1": lambda: read_images(
            paths, image_size=SIZE, color="rgb", n_jobs=-1
        ),
    }

    # warm-up: page cache, imports, thread pool
    for func in methods.values():
        func()

    results, outputs = [], {}
    for name, func in methods.items():
        best, times, out = best_time(func, args.repeats)
        outputs[name] = out
        results.append(
            {
                "method": name,
                "best_seconds": best,
                "all_seconds": times,
                "images_per_second": n / best,
            }
        )
    base = results[0]["images_per_second"]
    for row in results:
        row["ratio_vs_pillow"] = row["images_per_second"] / base

    a = outputs["Pillow open/convert/resize loop"].astype(np.int16)
    b = outputs["read_images n_jobs=1"].astype(np.int16)
    c = outputs["read_images n_jobs=-1"]
    bilinear = pillow_baseline(paths, Image.Resampling.BILINEAR).astype(np.int16)
    diff = {
        "shape_a": list(a.shape),
        "shape_b": list(b.shape),
        "mean_abs_diff_vs_pillow_default": float(np.abs(a - b).mean()),
        "max_abs_diff_vs_pillow_default": int(np.abs(a - b).max()),
        "mean_abs_diff_vs_pillow_bilinear": float(np.abs(bilinear - b).mean()),
        "n_jobs_outputs_identical": bool(np.array_equal(b, c)),
    }

    width = max(len(r["method"]) for r in results)
    print()
    print(f"{'method':<{width}}  {'best s':>7}  {'images/s':>9}  {'vs Pillow':>9}")
    for r in results:
        print(
            f"{r['method']:<{width}}  {r['best_seconds']:7.2f}  "
            f"{r['images_per_second']:9.1f}  {r['ratio_vs_pillow']:8.2f}x"
        )
    print()
    print(
        "pixels, read_images vs Pillow loop: mean |diff| "
        f"{diff['mean_abs_diff_vs_pillow_default']:.2f} of 255 (max "
        f"{diff['max_abs_diff_vs_pillow_default']}); vs a bilinear Pillow loop "
        f"(draft decoding only): {diff['mean_abs_diff_vs_pillow_bilinear']:.2f}; "
        f"n_jobs=1 and -1 identical: {diff['n_jobs_outputs_identical']}"
    )

    report = {
        "benchmark": "read + resize to 224x224 RGB",
        "dataset": str(folder),
        "n_images": n,
        "repeats": args.repeats,
        "results": results,
        "pixel_difference": diff,
        "hardware": {
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "machine": platform.machine(),
            "processor": platform.processor(),
            "load_average": list(os.getloadavg())
            if hasattr(os, "getloadavg")
            else None,
        },
        "versions": {
            "python": platform.python_version(),
            "pillow": PIL.__version__,
            "numpy": np.__version__,
            "skmedimg": skmedimg.__version__,
        },
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec="seconds"
        ),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
