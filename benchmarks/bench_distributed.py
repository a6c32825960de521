"""Benchmark: one CNNClassifier fit in 1 process against N data-parallel ones.

The same fit (same data, same global ``batch_size``, same epochs and seed)
run by one process and by N processes started with
``python -m torch.distributed.run --standalone --nproc-per-node N`` (what
``torchrun`` runs), in the same run of this script:

* CPU (default): 1 against 2 processes over gloo, one torch thread each
  (``OMP_NUM_THREADS=1``), a tiny timm backbone fine-tuned on synthetic
  phantoms. Two processes use two cores where one process uses one, so the
  figure is what data-parallel training gives on the CPUs of one machine,
  not a GPU forecast; a loaded machine (read ``load_average_1min``) shows
  less.
* ``--full``: 1 GPU against every GPU of the machine (NCCL), ResNet-50 at
  224 px (random weights: throughput only) on synthetic images, bf16 where
  the GPU has it. The scaling efficiency is the images per second per GPU
  of the N-GPU fit over those of the 1-GPU fit. Without GPUs these rows say
  "not run".

Per row: seconds per epoch (the median of the epochs after the first, which
holds start-up costs), images per second (training images / that), the
images per second per process, the final accuracy on a held-out test split
(predicted on rank 0), and the scaling efficiency.

Usage::

    python benchmarks/bench_distributed.py [--quick] [--full] [--nproc N]

Prints a table and writes ``benchmarks/results/distributed.json`` (or
``distributed_full.json``).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from _common import RESULTS, ROOT, hardware

CPU = {
    "model_name": "test_resnet",
    "image_size": 32,
    "n_samples": 1024,
    "epochs": 8,
    "batch_size": 64,
    "lr": 1e-2,
}
QUICK = {**CPU, "n_samples": 512, "epochs": 6}
FULL = {
    "model_name": "resnet50",
    "image_size": 224,
    "n_samples": 8192,
    "epochs": 3,
    "batch_size": 256,
    "lr": 1e-3,
}


# ------------------------------------------------------------------- worker


def worker(settings, part):
    """One fit (data-parallel when launched by torchrun); rank 0 writes ``part``."""
    import torch
    from sklearn.model_selection import train_test_split

    from skmedimg.datasets import make_phantoms
    from skmedimg.neural import CNNClassifier, is_main_process

    if settings["device"] == "cpu":
        torch.set_num_threads(1)
    if settings["synthetic"]:
        rng = np.random.default_rng(0)
        n, size = settings["n_samples"], settings["image_size"]
        X = rng.integers(0, 256, size=(n, size, size, 3), dtype=np.uint8)
        y = np.arange(n) % 4
    else:
        X, y = make_phantoms(
            settings["n_samples"],
            n_classes=2,
            image_size=settings["image_size"],
            random_state=0,
        )
    X_fit, X_test, y_fit, y_test = train_test_split(
        X, y, test_size=0.2, stratify=y, random_state=0
    )
    clf = CNNClassifier(
        settings["model_name"],
        pretrained=False,
        recipe=None,
        image_size=settings["image_size"],
        batch_size=settings["batch_size"],
        max_epochs=settings["epochs"],
        optimizer="adamw",
        lr=settings["lr"],
        augment=None,
        early_stopping=None,
        device=settings["device"],
        precision="auto",
        lock_gpu=False,
        verbose=0,
        random_state=0,
    )
    clf.fit(X_fit, y_fit)
    if not is_main_process():
        return
    durations = clf.history_["dur"]
    steady = durations[1:] or durations
    epoch_s = statistics.median(steady)
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    accuracy = float(clf.score(X_test, y_test))
    Path(part).write_text(
        json.dumps(
            {
                "n_processes": world_size,
                "epoch_s": round(epoch_s, 4),
                "epoch_durations_s": [round(d, 4) for d in durations],
                "n_train": len(y_fit),
                "images_per_s": round(len(y_fit) / epoch_s, 1),
                "images_per_s_per_process": round(len(y_fit) / epoch_s / world_size, 1),
                "accuracy": round(accuracy, 4),
                "train_loss": [round(v, 4) for v in clf.history_["train_loss"]],
                "device": str(clf.device_),
            }
        )
    )


# ------------------------------------------------------------------- driver


def run(settings, nproc, timeout):
    """Run :func:`worker` in ``nproc`` processes; its rank-0 row."""
    with tempfile.TemporaryDirectory() as folder:
        part = Path(folder) / "row.json"
        script = Path(__file__).resolve()
        args = ["--worker", json.dumps(settings), "--part", str(part)]
        if nproc == 1:
            command = [sys.executable, str(script), *args]
        else:
            command = [
                sys.executable,
                "-m",
                "torch.distributed.run",
                "--standalone",
                "--nproc-per-node",
                str(nproc),
                str(script),
                *args,
            ]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        if settings["device"] == "cpu":
            env["OMP_NUM_THREADS"] = "1"
        done = subprocess.run(command, env=env, timeout=timeout)
        if done.returncode or not part.exists():
            return {"n_processes": nproc, "error": f"exit code {done.returncode}"}
        return json.loads(part.read_text())


def table(rows):
    head = (
        f"{'setting':<26}{'procs':>6}{'s/epoch':>9}{'img/s':>9}"
        f"{'img/s/proc':>11}{'efficiency':>11}{'accuracy':>9}"
    )
    print(head)
    for r in rows:
        if r.get("status") == "not run":
            print(f"{r['setting']:<26}{r['n_processes']:>6}  not run ({r['reason']})")
            continue
        if "error" in r:
            print(f"{r['setting']:<26}{r['n_processes']:>6}  failed: {r['error']}")
            continue
        print(
            f"{r['setting']:<26}{r['n_processes']:>6}{r['epoch_s']:>9.3f}"
            f"{r['images_per_s']:>9.1f}{r['images_per_s_per_process']:>11.1f}"
            f"{r['scaling_efficiency']:>11.2f}{r['accuracy']:>9.4f}"
        )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="1 GPU against all GPUs")
    parser.add_argument("--quick", action="store_true", help="fewer images, epochs")
    parser.add_argument("--nproc", type=int, default=None, help="processes (2 / GPUs)")
    parser.add_argument("--timeout", type=float, default=3600)
    parser.add_argument("--out", default=None, help="JSON file name in results/")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--part", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker is not None:
        return worker(json.loads(args.worker), args.part)

    import torch

    rows = []
    if args.full:
        n_gpus = torch.cuda.device_count()
        settings = {**FULL, "device": "cuda", "synthetic": True}
        nproc = args.nproc or n_gpus
        label = f"{FULL['model_name']} {FULL['image_size']}px GPU"
        if n_gpus == 0:
            rows = [
                {
                    "setting": label,
                    "n_processes": n,
                    "status": "not run",
                    "reason": "no CUDA device",
                }
                for n in (1, "N")
            ]
        elif nproc < 2:
            rows = [
                {
                    "setting": label,
                    "n_processes": nproc,
                    "status": "not run",
                    "reason": f"{n_gpus} GPU: nothing to scale over",
                }
            ]
        else:
            for n in (1, nproc):
                rows.append({"setting": label, **run(settings, n, args.timeout)})
        device = torch.device("cuda" if n_gpus else "cpu")
    else:
        base = QUICK if args.quick else CPU
        settings = {**base, "device": "cpu", "synthetic": False}
        label = f"{base['model_name']} {base['image_size']}px CPU gloo"
        for n in (1, args.nproc or 2):
            rows.append({"setting": label, **run(settings, n, args.timeout)})
        rows.append(
            {
                "setting": "GPUs (--full)",
                "n_processes": "N",
                "status": "not run",
                "reason": "run with --full on a GPU machine",
            }
        )
        device = torch.device("cpu")
    measured = [r for r in rows if "epoch_s" in r]
    if measured:
        one = measured[0]["images_per_s_per_process"]
        for r in measured:
            r["scaling_efficiency"] = round(r["images_per_s_per_process"] / one, 3)
    table(rows)
    result = {
        "benchmark": "one CNNClassifier fit: 1 process against N data-parallel",
        "settings": {**settings, "quick": args.quick},
        "hardware": hardware(device),
        "rows": rows,
    }
    name = args.out or ("distributed_full.json" if args.full else "distributed.json")
    if args.quick and not args.out:
        name = "distributed_quick.json"
    path = RESULTS / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
