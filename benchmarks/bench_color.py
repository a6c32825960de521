"""Benchmark: gray scans held with one channel, CNNClassifier(color="gray") vs "rgb".

X-rays, MRI, CT and ultrasound are gray, and RGB-pretrained backbones take
three channels. With ``color="rgb"`` (the default) the decoded training set is
held with the gray channel repeated three times; with ``color="gray"`` it is
held with one channel and repeated on the device, batch by batch. In the same
run, on the same PneumoniaMNIST images (28 px, upsampled), with the same seed:

* the bytes of the decoded training set (exact, from its shape);
* the wall time, peak host memory (RSS above its start) and peak GPU memory of
  ``fit`` (full fine-tuning, so that the images are read every epoch; or,
  with ``--freeze backbone``, the frozen fast path, which runs the backbone
  once over the images);
* the largest difference between the two models' test probabilities, which
  should be zero: the network sees the same numbers.

CPU defaults: ``tf_efficientnet_lite0`` (real weights if the ``weights`` extra
is installed), 1024 training and 256 test images at 128 px, 1 epoch.
``--full``: the 4708 training and 624 test images at 224 px, 2 epochs.

Usage::

    python benchmarks/bench_color.py [--full] [--n-train 1024] [--image-size 128]
                                     [--freeze backbone]
"""

import argparse
import gc
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from _common import (
    PeakMemory,
    Timer,
    base_parser,
    default_data_dir,
    report,
    resolve,
    setup_threads,
)

from skmedimg.datasets import load_medmnist
from skmedimg.neural import CNNClassifier, shipped_weights_path

MODEL = "tf_efficientnet_lite0"


def main():
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--n-train", type=int, default=None)
    parser.add_argument("--n-test", type=int, default=None)
    parser.add_argument("--image-size", type=int, default=None)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument(
        "--freeze",
        default="none",
        choices=["none", "backbone"],
        help="none (default): fine-tuning, the images are read every epoch; "
        "backbone: the frozen fast path, the backbone runs once over them",
    )
    parser.add_argument("--only", choices=["rgb", "gray"], help=argparse.SUPPRESS)
    parser.add_argument("--only-out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    device = resolve(args.device)
    threads = setup_threads(args, device)
    size = args.image_size or (224 if args.full else 128)
    epochs = args.epochs or (2 if args.full else 1)
    home = (args.data or default_data_dir()) / "medmnist"
    train = load_medmnist("pneumoniamnist", split="train", data_home=home)
    test = load_medmnist("pneumoniamnist", split="test", data_home=home)
    n_train = args.n_train or (None if args.full else 1024)
    n_test = args.n_test or (None if args.full else 256)
    X, y = train.images[:n_train], train.target[:n_train]
    X_test = test.images[:n_test]
    pretrained = shipped_weights_path(MODEL) is not None
    settings = dict(
        model=MODEL,
        pretrained=pretrained,
        data="pneumoniamnist (28 px, gray)",
        n_train=len(X),
        n_test=len(X_test),
        image_size=size,
        epochs=epochs,
        batch_size=64,
        freeze=args.freeze,
        torch_threads=threads,
    )
    if not args.only:
        print(f"device={device} settings={settings}")

    def model(color, max_epochs=epochs):
        return CNNClassifier(
            MODEL,
            pretrained=pretrained,
            freeze=args.freeze,
            optimizer="adamw",
            batch_size=64,
            max_epochs=max_epochs,
            image_size=size,
            color=color,
            device=str(device),
            random_state=0,
        )

    if args.only:  # one method, in a process of its own (see below)
        # An untimed warm-up fit pays the one-time costs (weights, kernels).
        model(args.only, max_epochs=1).fit(X[:128], y[:128])
        gc.collect()
        clf = model(args.only)
        with PeakMemory(device) as mem, Timer(device) as t:
            clf.fit(X, y)
        channels = 3 if args.only == "rgb" else 1
        row = dict(
            method=f'CNNClassifier(color="{args.only}")',
            decoded_mb=round(len(X) * size * size * channels / 2**20, 1),
            fit_s=t.seconds,
            **mem.as_dict(),
        )
        np.save(args.only_out + ".npy", clf.predict_proba(X_test))
        Path(args.only_out + ".json").write_text(json.dumps(row))
        return

    # Each method runs in a fresh process: memory freed by one fit, which a
    # later fit in the same process reuses without the process growing,
    # would make the second look smaller than it is.
    rows, proba = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for color in ("rgb", "gray"):
            out = str(Path(tmp) / color)
            command = [sys.executable, __file__, *sys.argv[1:], "--only", color]
            subprocess.run([*command, "--only-out", out], check=True)
            rows.append(json.loads(Path(out + ".json").read_text()))
            proba[color] = np.load(out + ".npy")
            print(rows[-1])
    base = rows[0]
    for row in rows:
        # the rgb fit's RSS may not rise above its start (0.0 MB): no ratio then
        row["memory_ratio"] = (
            round(row["host_delta_mb"] / base["host_delta_mb"], 3)
            if base["host_delta_mb"]
            else None
        )
        row["speed_ratio"] = round(base["fit_s"] / row["fit_s"], 3)
        row["fit_s"] = round(row["fit_s"], 2)
    diff = float(np.abs(proba["gray"] - proba["rgb"]).max())
    report(
        "color",
        args,
        device,
        settings,
        rows,
        [
            "method",
            ("decoded_mb", "decoded set MB"),
            ("host_delta_mb", "host peak above start MB"),
            ("memory_ratio", "host ratio"),
            ("gpu_peak_mb", "GPU peak MB"),
            ("fit_s", "fit s"),
            ("speed_ratio", "speed vs rgb"),
        ],
        [
            "baseline: color='rgb' (the default), same run, same seed; each method "
            "in a process of its own, after an untimed warm-up fit",
            f"largest difference of the two models' test probabilities: {diff:.3g}",
        ],
        max_proba_difference=diff,
    )


if __name__ == "__main__":
    main()
