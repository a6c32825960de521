"""Benchmark: CNNSegmenter against a hand-written MONAI training loop.

Two tasks, each trained twice in one run, with the same network constructor,
loss, optimizer, schedule, augmentation, patch size, epochs, seed and
sliding-window inference:

* ``CNNSegmenter`` (``skmedimg.segmentation``), fitted on arrays;
* a plain MONAI loop written the way MONAI's tutorials write it (batches of
  tensors, no DataLoader): the baseline.

Tasks:

* **drive**: DRIVE retinal vessels, 2-D MONAI ``UNet`` (channels 16-32-64-128,
  strides 2-2-2, 2 residual units) on the green channel (the channel with
  the vessel contrast; z-scored per image), trained on images 21-36 and
  validated on images 37-40 (fixed split by file name). Vessel masks 0/255
  are mapped to 0/1. Dice of the vessel class inside the field-of-view mask,
  on full-resolution sliding-window predictions (mean over the 4 images; the
  pooled figure is in the JSON). Target Dice >= 0.80 (second human observer
  0.79 on the test split).
* **brats**: the MSD Task01 / BraTS sub-volumes in ``brats_patches``, 3-D
  ``SegResNet`` (``init_filters=8``), trained on patient BRATS_009's
  sub-volumes and tested on BRATS_119's, on the regions WT = {1, 2, 3},
  TC = {2, 3}, ET = {3} (sigmoid outputs, one per region), per-channel
  z-score per volume. Dice of WT, TC and ET (mean over the test sub-volumes
  whose region is not empty).

Both: Dice + cross-entropy loss (``DiceCELoss`` with softmax for DRIVE's
classes; for the BraTS regions a sigmoid ``DiceLoss`` plus the binary
cross-entropy of each region, since MONAI's ``DiceCELoss(sigmoid=True)``
takes a softmax cross-entropy over the region channels when there are several
of them), per-channel z-score over the nonzero voxels
of each image (``normalize="channel"``), AdamW (lr 1e-3, weight decay 1e-5), the poly
schedule ``lr = lr0 * (1 - epoch / epochs) ** 0.9`` stepped once per epoch,
one random patch per training image per epoch, the report's augmentation
(random flips on every spatial axis with probability 0.5, per-channel
intensity scale 0.9-1.1 and shift -0.1..0.1 of the channel's std), sliding
window inference with overlap 0.25 and 4 windows per batch, blending
probabilities (softmax or sigmoid), then argmax or a 0.5 threshold.

CPU defaults (about 4-5 minutes per arm on one thread): DRIVE 96 px patches,
batch 4, 1500 epochs (6000 steps); BraTS 96 x 96 x 16 patches, batch 2, 60
epochs (360 steps). ``--full`` (a GPU): 128 px patches, 3000 epochs; BraTS
128 x 128 x 16, 300 epochs.

Each arm runs in a process of its own (``--only``) so that its wall time and
peak host memory (``ru_maxrss`` of the child) are its own. ``--seeds`` runs
every arm once per seed (the estimator's ``random_state``; the hand loop
seeds torch with what the estimator derives from it, see ``torch_seed``): one
seed on 12 training volumes and a few hundred steps says little about BraTS,
where Dice moves by tenths from seed to seed.

Usage::

    python benchmarks/bench_segmentation.py [--full] [--tasks drive brats]
        [--epochs-drive 1500] [--epochs-brats 60] [--methods estimator hand]
        [--seeds 0 1 2]
    python benchmarks/bench_segmentation.py --smoke   # seconds, synthetic data
"""

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import base_parser, default_data_dir, report, resolve, setup_threads

TASKS = ("drive", "brats")
METHODS = ("estimator", "hand")
REGIONS = {"WT": [1, 2, 3], "TC": [2, 3], "ET": [3]}
DRIVE_TRAIN = tuple(range(21, 37))
DRIVE_VAL = tuple(range(37, 41))
UNET = dict(channels=(16, 32, 64, 128), strides=(2, 2, 2), num_res_units=2)
SEGRESNET = dict(init_filters=8)
LR, WEIGHT_DECAY, POLY_POWER = 1e-3, 1e-5, 0.9
SW_OVERLAP, SW_BATCH = 0.25, 4


# --------------------------------------------------------------------------
# Settings
# --------------------------------------------------------------------------


def task_settings(task, args):
    """Settings of one task for this run (CPU defaults, ``--full``, ``--smoke``)."""
    if task == "drive":
        patch = 32 if args.smoke else (128 if args.full else 96)
        epochs = 3000 if args.full else 1500
        epochs = args.epochs_drive or (1 if args.smoke else epochs)
        return dict(
            network="unet",
            network_kwargs=UNET,
            input="green channel, z-score of the nonzero pixels",
            train=f"images {DRIVE_TRAIN[0]}-{DRIVE_TRAIN[-1]}",
            validation=f"images {DRIVE_VAL[0]}-{DRIVE_VAL[-1]}",
            roi_size=(patch, patch),
            epochs=epochs,
            batch_size=4,
            loss="DiceCELoss(softmax, to_onehot_y)",
        )
    patch = (
        (32, 32, 16) if args.smoke else ((128, 128, 16) if args.full else (96, 96, 16))
    )
    epochs = args.epochs_brats or (1 if args.smoke else (300 if args.full else 60))
    n_train = 2 if args.smoke else 12
    return dict(
        network="segresnet",
        network_kwargs=SEGRESNET,
        input="FLAIR, T1w, T1gd, T2w; per-channel z-score of the nonzero voxels",
        train=f"BRATS_009 sub-volumes ({n_train})",
        validation="BRATS_119 sub-volumes (12)",
        n_train=n_train,
        roi_size=patch,
        epochs=epochs,
        batch_size=2,
        loss="sigmoid DiceLoss + BCEWithLogitsLoss on WT/TC/ET",
    )


# --------------------------------------------------------------------------
# Data (the same arrays for both methods)
# --------------------------------------------------------------------------


def load_drive_arrays(data_dir):
    from skmedimg.datasets import load_drive
    from skmedimg.utils import read_images, read_masks

    data = load_drive(data_dir / "drive_training")
    rgb = read_images(list(data.images), color="rgb")  # (n, 584, 565, 3) uint8
    green = rgb[..., 1:2].astype(np.float32)
    vessels = read_masks(list(data.masks), binarize=True)
    fov = read_masks(list(data.fov_masks), binarize=True).astype(bool)
    train = np.isin(data.ids, DRIVE_TRAIN)
    val = np.isin(data.ids, DRIVE_VAL)
    return (green[train], vessels[train]), (green[val], vessels[val], fov[val])


def load_brats_arrays(data_dir, n_train):
    from skmedimg.datasets import load_decathlon
    from skmedimg.utils import read_masks, read_volume

    data = load_decathlon(data_dir / "brats_patches")
    train = np.char.startswith(data.names, "BRATS_009")
    test = np.char.startswith(data.names, "BRATS_119")
    X = np.stack([read_volume(p) for p in data.images])  # (n, 160, 160, 16, 4)
    y = read_masks(list(data.masks))  # (n, 160, 160, 16)
    idx = np.flatnonzero(train)[:n_train]
    return (X[idx], y[idx]), (X[test], y[test], None)


def synthetic_arrays(task, seed=0):
    """Tiny random data with a learnable structure, for ``--smoke``."""
    rng = np.random.default_rng(seed)
    shape = (40, 40) if task == "drive" else (40, 40, 16)
    n_channels = 1 if task == "drive" else 4
    n = 4
    y = np.zeros((n, *shape), np.uint8)
    for i in range(n):
        c = rng.integers(8, 32, size=len(shape) - (0 if task == "drive" else 1))
        y[i, c[0] - 6 : c[0] + 6, c[1] - 6 : c[1] + 6] = 1
        if task == "brats":
            y[i, c[0] - 3 : c[0] + 3, c[1] - 3 : c[1] + 3] = 3
    X = rng.normal(size=(n, *shape, n_channels)).astype(np.float32)
    X += y[..., None].astype(np.float32)
    fov = np.ones((2, *shape), bool) if task == "drive" else None
    return (X[:2], y[:2]), (X[2:], y[2:], fov)


# --------------------------------------------------------------------------
# Dice, computed the same way for both methods
# --------------------------------------------------------------------------


def _dice(pred, true):
    denom = pred.sum() + true.sum()
    return float(2.0 * np.logical_and(pred, true).sum() / denom) if denom else np.nan


def drive_dice(pred, y, fov):
    """Vessel Dice inside the field of view: mean of the images and pooled."""
    per_image = [
        _dice((p == 1) & f, (t == 1) & f) for p, t, f in zip(pred, y, fov, strict=True)
    ]
    pooled = _dice((pred == 1) & fov, (y == 1) & fov)
    return {"vessel": float(np.nanmean(per_image)), "vessel_pooled": pooled}


def region_masks(y):
    """Boolean region masks ``(n, *spatial, 3)`` in WT, TC, ET order."""
    return np.stack([np.isin(y, labels) for labels in REGIONS.values()], axis=-1)


def brats_dice(pred_regions, y):
    true = region_masks(y)
    out = {}
    for k, name in enumerate(REGIONS):
        scores = [
            _dice(p[..., k], t[..., k]) if t[..., k].any() else np.nan
            for p, t in zip(pred_regions, true, strict=True)
        ]
        counted = [s for s in scores if not np.isnan(s)]
        out[name] = float(np.mean(counted)) if counted else np.nan
        out[f"{name}_n_volumes"] = len(counted)
    return out


# --------------------------------------------------------------------------
# The hand-written MONAI loop (the baseline)
# --------------------------------------------------------------------------


def zscore(image):
    """Per-channel z-score over the nonzero voxels of one ``(*spatial, C)`` image.

    MONAI's ``NormalizeIntensity(nonzero=True, channel_wise=True)``, as the
    BraTS tutorials use it: the zero background (outside the brain, outside
    DRIVE's field of view) stays zero.
    """
    out = image.astype(np.float32, copy=True)
    for c in range(out.shape[-1]):
        ch = out[..., c]
        nonzero = ch != 0
        if nonzero.any():
            values = ch[nonzero]
            std = values.std()
            ch[nonzero] = (values - values.mean()) / (std if std > 0 else 1.0)
    return out


def augment(x, y, generator):
    """The report's augmentation on a channels-first batch (image and target).

    A random flip on every spatial axis with probability 0.5 (image and
    target alike), then a per-channel intensity shift of -0.1..0.1 of the
    channel's std and a scale of 0.9..1.1.
    """
    import torch

    n, c = x.shape[:2]
    for axis in range(2, x.ndim):
        flip = torch.rand(n, generator=generator) < 0.5
        if flip.any():
            x[flip] = x[flip].flip(axis)
            y[flip] = y[flip].flip(axis)
    shape = (n, c) + (1,) * (x.ndim - 2)
    shift = torch.rand(n, c, generator=generator) * 0.2 - 0.1
    scale = torch.rand(n, c, generator=generator) * 0.2 + 0.9
    std = x.std(dim=tuple(range(2, x.ndim)))
    return (x + (shift * std).view(shape)) * scale.view(shape), y


def random_patches(images, targets, roi, generator):
    """One random patch of ``roi`` from each channels-first image/target."""
    import torch

    xs, ys = [], []
    for img, tgt in zip(images, targets, strict=True):
        spatial = img.shape[1:]
        start = [
            int(torch.randint(0, s - r + 1, (1,), generator=generator))
            for s, r in zip(spatial, roi, strict=True)
        ]
        sl = tuple(slice(a, a + r) for a, r in zip(start, roi, strict=True))
        xs.append(img[(slice(None), *sl)])
        ys.append(tgt[(slice(None), *sl)])
    return torch.stack(xs), torch.stack(ys)


def region_dice_bce():
    """Sigmoid Dice + binary cross-entropy of each region channel.

    Not ``DiceCELoss(sigmoid=True)``: MONAI applies the sigmoid to its Dice
    term only, and with several output channels its cross-entropy term is a
    softmax over them, which treats the nested regions as exclusive classes
    and is 0 wherever every region is 0 (the background).
    """
    import torch
    from monai.losses import DiceLoss

    dice, bce = DiceLoss(sigmoid=True), torch.nn.BCEWithLogitsLoss()

    def loss(out, target):
        return dice(out, target) + bce(out, target)

    return loss


def hand_network(task, settings, n_channels, n_outputs):
    from monai.networks.nets import SegResNet, UNet

    dims = len(settings["roi_size"])
    if task == "drive":
        return UNet(
            spatial_dims=dims,
            in_channels=n_channels,
            out_channels=n_outputs,
            **settings["network_kwargs"],
        )
    return SegResNet(
        spatial_dims=dims,
        in_channels=n_channels,
        out_channels=n_outputs,
        **settings["network_kwargs"],
    )


def torch_seed(seed):
    """The torch seed ``CNNSegmenter(random_state=seed)`` derives in ``fit``.

    The same seed number must give both arms the same initial weights: on
    12 training volumes and a few hundred steps the initial weights move the
    BraTS Dice by tenths, far more than anything else the arms could differ
    in. Their random numbers still part after the first crop (the hand loop
    draws a start on an axis the patch spans, where the estimator does not).
    """
    from sklearn.utils import check_random_state

    return int(check_random_state(seed).randint(0, 2**31 - 1))


def hand_fit_predict(task, settings, train, test, device, seed=0):
    """Train with the plain loop and predict the test images; returns masks."""
    import torch
    from monai.inferers import sliding_window_inference
    from monai.losses import DiceCELoss

    seed = torch_seed(seed)
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    X, y = train
    roi = tuple(settings["roi_size"])
    # channels last (n, *spatial, C) -> channels first (n, C, *spatial)
    images = torch.from_numpy(np.stack([np.moveaxis(zscore(x), -1, 0) for x in X]))
    if task == "drive":
        targets = torch.from_numpy(y[:, None].astype(np.int64))
        loss_fn = DiceCELoss(to_onehot_y=True, softmax=True)
        n_outputs = 2
    else:
        regions = region_masks(y)  # (n, *spatial, 3)
        targets = torch.from_numpy(np.moveaxis(regions, -1, 1).astype(np.float32))
        loss_fn = region_dice_bce()
        n_outputs = len(REGIONS)
    model = hand_network(task, settings, images.shape[1], n_outputs).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)
    epochs = settings["epochs"]
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda e: (1 - e / epochs) ** POLY_POWER
    )
    batch_size = settings["batch_size"]
    losses = []
    for _ in range(epochs):
        model.train()
        order = torch.randperm(len(images), generator=generator)
        epoch_loss = 0.0
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            xb, yb = random_patches(images[idx], targets[idx], roi, generator)
            xb, yb = augment(xb, yb, generator)
            xb, yb = xb.to(device), yb.to(device)
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(xb), yb)
            loss.backward()
            optimizer.step()
            epoch_loss += loss.item() * len(idx)
        scheduler.step()
        losses.append(epoch_loss / len(images))

    model.eval()

    def predictor(x):  # windows are blended as probabilities
        out = model(x)
        return torch.sigmoid(out) if task == "brats" else torch.softmax(out, dim=1)

    X_test = test[0]
    preds = []
    with torch.no_grad():
        for x in X_test:
            xt = torch.from_numpy(np.moveaxis(zscore(x), -1, 0)[None]).to(device)
            probs = (
                sliding_window_inference(
                    xt, roi, SW_BATCH, predictor, overlap=SW_OVERLAP
                )[0]
                .cpu()
                .numpy()
            )
            if task == "drive":
                preds.append(probs.argmax(0))
            else:
                preds.append(np.moveaxis(probs > 0.5, 0, -1))
    return np.stack(preds), losses


# --------------------------------------------------------------------------
# The estimator
# --------------------------------------------------------------------------


def estimator_fit_predict(task, settings, train, test, device, seed=0):
    from skmedimg.segmentation import BRATS_REGIONS, CNNSegmenter

    X, y = train
    routed = {f"network__{k}": v for k, v in settings["network_kwargs"].items()}
    seg = CNNSegmenter(
        settings["network"],
        regions=BRATS_REGIONS if task == "brats" else None,
        roi_size=tuple(settings["roi_size"]),
        loss="dice_ce",
        optimizer="adamw",
        lr=LR,
        weight_decay=WEIGHT_DECAY,
        lr_schedule="poly",
        max_epochs=settings["epochs"],
        batch_size=settings["batch_size"],
        augment="report",
        early_stopping=None,
        normalize="channel",
        sw_overlap=SW_OVERLAP,
        sw_batch_size=SW_BATCH,
        device=str(device),
        random_state=seed,
        **routed,
    )
    seg.fit(X, y)
    pred = seg.predict(test[0])
    losses = [float(v) for v in seg.history_["train_loss"]]
    return np.asarray(pred), losses


# --------------------------------------------------------------------------
# One arm in its own process
# --------------------------------------------------------------------------


def seed_spread(rows, keys):
    """Mean, min and max of each Dice over the seeds of every task and method."""
    out = []
    for task, method in dict.fromkeys((r["task"], r["method"]) for r in rows):
        group = [r for r in rows if r["task"] == task and r["method"] == method]
        summary = dict(task=task, method=method, seeds=[r["seed"] for r in group])
        for k in keys:
            values = [r[k] for r in group if r.get(k) is not None]
            if values:
                summary[k] = (
                    f"{np.mean(values):.3f} ({min(values):.3f}-{max(values):.3f})"
                )
        out.append(summary)
    return out


def run_arm(task, method, seed, args, out):
    device = resolve(args.device)
    threads = setup_threads(args, device)
    settings = task_settings(task, args)
    data_dir = args.data or default_data_dir()
    t0 = time.perf_counter()
    if args.smoke:
        train, test = synthetic_arrays(task)
    elif task == "drive":
        train, test = load_drive_arrays(data_dir)
    else:
        train, test = load_brats_arrays(data_dir, settings["n_train"])
    load_s = time.perf_counter() - t0
    fit_predict = estimator_fit_predict if method == "estimator" else hand_fit_predict
    t0 = time.perf_counter()
    pred, losses = fit_predict(task, settings, train, test, device, seed=seed)
    wall = time.perf_counter() - t0
    if task == "drive":
        dice = drive_dice(pred, test[1], test[2])
    else:
        dice = brats_dice(pred, test[1])
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB -> MB
    row = dict(
        task=task,
        method="CNNSegmenter" if method == "estimator" else "hand MONAI loop",
        seed=seed,
        **{f"dice_{k}": v for k, v in dice.items()},
        fit_predict_s=round(wall, 1),
        load_s=round(load_s, 1),
        peak_rss_mb=round(peak, 1),
        torch_threads=threads,
        final_train_loss=round(losses[-1], 4) if losses else None,
    )
    Path(out).write_text(json.dumps(row))


def main():
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", choices=TASKS, default=list(TASKS))
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument("--epochs-drive", type=int, default=None)
    parser.add_argument("--epochs-brats", type=int, default=None)
    parser.add_argument(
        "--seeds",
        nargs="+",
        type=int,
        default=[0],
        help="run every arm once per seed (default: 0)",
    )
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="seconds: tiny synthetic data, 1 epoch (checks the script runs)",
    )
    parser.add_argument(
        "--baseline-from",
        type=Path,
        default=None,
        help="take the hand-loop rows from this earlier results JSON instead of "
        "running them (the table then says so)",
    )
    parser.add_argument("--only", help=argparse.SUPPRESS)  # task:method:seed
    parser.add_argument("--only-out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.only:
        task, method, seed = args.only.split(":")
        run_arm(task, method, int(seed), args, args.only_out)
        return

    device = resolve(args.device)
    settings = {
        task: {k: v for k, v in task_settings(task, args).items()}
        for task in args.tasks
    }
    settings["common"] = dict(
        optimizer="AdamW",
        lr=LR,
        weight_decay=WEIGHT_DECAY,
        schedule=f"poly, power {POLY_POWER}, per epoch",
        augmentation="flips on every axis p=0.5, per-channel intensity scale "
        "0.9-1.1 and shift +-0.1 std",
        patches="one random patch per training image per epoch",
        sliding_window=f"overlap {SW_OVERLAP}, {SW_BATCH} windows per batch",
        seeds=list(args.seeds),
        smoke=bool(args.smoke),
    )
    print(f"device={device} settings={json.dumps(settings, default=str)}")
    rows, failures, reused = [], [], []
    methods = list(args.methods)
    if args.baseline_from is not None:
        earlier = json.loads(args.baseline_from.read_text())
        for row in earlier["rows"]:
            if row["task"] in args.tasks and row["method"] == "hand MONAI loop":
                rows.append({**row, "from": str(args.baseline_from.name)})
        reused.append(
            f"hand-loop rows taken from {args.baseline_from.name} (run "
            f"{earlier['hardware']['date']}, load average "
            f"{earlier['hardware']['load_average_1min']}), not from this run"
        )
        methods = [m for m in methods if m != "hand"]
    with tempfile.TemporaryDirectory() as tmp:
        for task in args.tasks:
            for seed in args.seeds:
                for method in methods:
                    out = str(Path(tmp) / f"{task}_{method}_{seed}.json")
                    command = [sys.executable, __file__, *sys.argv[1:]]
                    command += ["--only", f"{task}:{method}:{seed}", "--only-out", out]
                    done = subprocess.run(command, capture_output=True, text=True)
                    if done.returncode != 0:
                        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
                        failures.append(
                            f"{task} {method} seed {seed} failed: {' | '.join(tail)}"
                        )
                        print(failures[-1], flush=True)
                        continue
                    rows.append(json.loads(Path(out).read_text()))
                    print(rows[-1], flush=True)
    dice_keys = ["dice_vessel", "dice_WT", "dice_TC", "dice_ET"]
    for row in rows:
        base = next(
            (
                r
                for r in rows
                if r["task"] == row["task"]
                and r["method"] == "hand MONAI loop"
                and r.get("seed", 0) == row.get("seed", 0)
            ),
            None,
        )
        if base is None:
            continue
        keys = [k for k in dice_keys if row.get(k) is not None]
        ratios = [row[k] / base[k] for k in keys if base.get(k)]
        row["dice_ratio"] = round(float(np.mean(ratios)), 3) if ratios else None
        row["speed_ratio"] = round(base["fit_predict_s"] / row["fit_predict_s"], 3)
    spread = seed_spread(rows, dice_keys) if len(args.seeds) > 1 else []
    notes = [
        "baseline: the hand-written MONAI loop of the same run (same network, "
        "loss, optimizer, schedule, augmentation, patch, epochs, sliding "
        "window, initial weights: the hand loop seeds torch as CNNSegmenter "
        "does from random_state, and their random draws part after the first "
        "crop); each arm in a process of its own",
        "dice_ratio: mean over the task's classes/regions of Dice / baseline Dice; "
        "speed_ratio: baseline time / time (>1 is faster). Target: both >= 0.95",
        "DRIVE target: vessel Dice inside the field of view >= 0.80 (second "
        "observer 0.79)",
        *(
            f"{r['task']} {r['method']}: mean (min-max) over seeds {r['seeds']}: "
            + ", ".join(f"{k[5:]} {r[k]}" for k in dice_keys if k in r)
            for r in spread
        ),
        *reused,
        *failures,
    ]
    report(
        "segmentation" + ("_smoke" if args.smoke else ""),
        args,
        device,
        settings,
        rows,
        [
            "task",
            "method",
            "seed",
            ("dice_vessel", "Dice vessel (FOV)"),
            ("dice_WT", "Dice WT"),
            ("dice_TC", "Dice TC"),
            ("dice_ET", "Dice ET"),
            ("fit_predict_s", "fit+predict s"),
            ("peak_rss_mb", "peak RSS MB"),
            ("dice_ratio", "Dice ratio"),
            ("speed_ratio", "speed ratio"),
        ],
        notes,
        seed_spread=spread,
    )
    if failures:
        sys.exit(1)


if __name__ == "__main__":
    main()
