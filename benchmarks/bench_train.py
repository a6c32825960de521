"""Benchmark: training throughput of CNNClassifier.fit against its baselines.

For each backbone, in the same run:

* ``raw loop``: the best hand-written PyTorch loop: the uint8 images already
  on the device, a shuffled slice per batch, normalised on the device,
  channels_last (on every device: faster on the CPUs measured here too) and
  bf16 autocast on GPUs that support it, no host sync per batch (the loss
  stays on the device).
* ``CNNClassifier``: ``CNNClassifier(model, freeze="none").fit(X, y)`` on the
  same uint8 array (defaults: bf16 + channels_last on a GPU).
* ``skorch defaults``: ``skorch.NeuralNetClassifier`` with the timm model,
  float32 ``(n, 3, H, W)`` normalised arrays and skorch's default
  ``DataLoader`` (sample-by-sample collation), no autocast.

Throughput is images per second over the epochs after the first (the first
one pays for cuDNN autotuning, oneDNN kernel preparation and allocations); the
end-to-end column divides all images by the whole ``fit`` call. Before the
timed methods of each backbone, an untimed raw loop of two batches pays that
architecture's one-time costs (kernel loading, cuDNN and cuBLAS set-up),
which the method run first would otherwise carry alone. Then, from a
JPEG folder (the brain tumour Training set): ``CNNClassifier.fit(paths)``
(decodes every file once, then trains on the uint8 tensor) against skorch
with a ``Dataset`` that opens and resizes each JPEG in ``__getitem__``, every
epoch (the notebook way), first epoch and later epochs separately.

CPU defaults are small (so it finishes in a few minutes on two cores):
``resnet50`` and ``efficientnet_b0``, 64 images at 64 px, batch 32, 3 epochs,
one torch thread, the three methods run in turn twice (round robin) and the
best later epoch of each kept (a loaded, shared CPU swings the epoch times;
on GPUs the median of the later epochs of one run is reported).
``--compile`` adds a ``CNNClassifier(compile=True)`` row (its first epoch
compiles; the later ones show what compilation gives).
``--full`` is the GPU setting of the targets: ResNet-50, EfficientNet-B0,
MobileNetV3-Small, DenseNet-121 and DenseNet-201 at 224 px, 4096 images,
batch 128, 5 epochs (3 for the skorch baselines, whose data loading
dominates and varies little), 2048 JPEGs for the folder rows.

Usage::

    python benchmarks/bench_train.py [--full] [--models resnet50 ...]
"""

import time

import numpy as np
import torch
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
    synthetic_images,
    write_partial,
)

from skmedimg.neural import CNNClassifier, autocast, create_backbone

WARMUP_BATCHES = 2  # of the untimed raw loop before each backbone's methods


def raw_loop(model_name, X, y, *, epochs, batch_size, device, n_classes):
    """The best hand-written loop; returns per-epoch seconds."""
    torch.manual_seed(0)
    backbone, config = create_backbone(model_name, pretrained=False)
    # MobileNetV3 pools 576 channels, then its conv_head gives 1024 features
    width = getattr(backbone, "head_hidden_size", None) or backbone.num_features
    model = torch.nn.Sequential(backbone, torch.nn.Linear(width, n_classes))
    # channels_last on every device: the reference raw loop, and faster on
    # the CPUs measured here too (see RESULTS.md)
    fmt = torch.channels_last
    model = model.to(device, memory_format=fmt).train()
    mean = torch.tensor(config["mean"], device=device).view(1, -1, 1, 1)
    std = torch.tensor(config["std"], device=device).view(1, -1, 1, 1)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    dtype = amp_dtype(device)
    Xd = torch.from_numpy(X).to(device)
    yd = torch.from_numpy(y).long().to(device)
    n = len(Xd)
    durations = []
    for _ in range(epochs):
        start = time.perf_counter()
        order = torch.randperm(n, device=device)
        losses = []
        for i in range(0, n, batch_size):
            idx = order[i : i + batch_size]
            xb = Xd[idx].permute(0, 3, 1, 2).float().div_(255)
            xb = ((xb - mean) / std).contiguous(memory_format=fmt)
            with autocast(device, dtype):
                loss = loss_fn(model(xb).float(), yd[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(loss.detach())
        float(torch.stack(losses).mean())  # one sync per epoch
        durations.append(time.perf_counter() - start)
    return durations


class _Normalized(torch.utils.data.Dataset):
    """What a skorch user passes: float32 CHW arrays, one sample at a time."""

    def __init__(self, X, y, mean, std):
        self.X = X
        self.y = y
        self.mean = np.asarray(mean, np.float32).reshape(-1, 1, 1)
        self.std = np.asarray(std, np.float32).reshape(-1, 1, 1)

    def __len__(self):
        return len(self.X)

    def __getitem__(self, i):
        x = self.X[i].transpose(2, 0, 1).astype(np.float32) / 255.0
        return (x - self.mean) / self.std, self.y[i]


class _JpegFolder(_Normalized):
    """The notebook way: open, convert and resize each JPEG every epoch."""

    def __init__(self, paths, y, mean, std, size):
        super().__init__(paths, y, mean, std)
        self.size = size

    def __getitem__(self, i):
        from PIL import Image

        with Image.open(self.X[i]) as im:
            img = np.asarray(im.convert("RGB").resize((self.size, self.size)))
        x = img.transpose(2, 0, 1).astype(np.float32) / 255.0
        return (x - self.mean) / self.std, self.y[i]


def skorch_defaults(model_name, dataset, *, epochs, batch_size, device, n_classes):
    """Plain skorch: timm model, default DataLoader, fp32; per-epoch seconds."""
    import timm
    from skorch import NeuralNetClassifier

    torch.manual_seed(0)
    net = NeuralNetClassifier(
        timm.create_model(model_name, pretrained=False, num_classes=n_classes),
        criterion=torch.nn.CrossEntropyLoss,
        optimizer=torch.optim.Adam,
        lr=1e-3,
        max_epochs=epochs,
        batch_size=batch_size,
        iterator_train__shuffle=True,
        train_split=None,
        device=str(device),
        verbose=0,
    )
    net.fit(dataset, y=None)
    return list(net.history[:, "dur"])


def throughput(n, durations, best):
    """Images per second over the epochs after the first (best or median)."""
    later = durations[1:] or durations
    if best:
        return n / min(later)
    return n / float(np.median(later))


def main():
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=None)
    parser.add_argument("--n-images", type=int, default=None)
    parser.add_argument("--image-size", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--n-jpeg", type=int, default=None)
    parser.add_argument("--no-jpeg", action="store_true")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument(
        "--median",
        action="store_true",
        help="median of the later epochs instead of the best one (default on GPUs)",
    )
    parser.add_argument(
        "--compile",
        action="store_true",
        help="also time CNNClassifier(compile=True) (its first epoch compiles)",
    )
    parser.add_argument(
        "--skorch-epochs",
        type=int,
        default=None,
        help="epochs of the skorch baselines (default: --epochs, 3 with --full)",
    )
    args = parser.parse_args()
    device = resolve(args.device)
    full = args.full
    models = args.models or (
        [
            "resnet50",
            "efficientnet_b0",
            "mobilenetv3_small_100",
            "densenet121",
            "densenet201",
        ]
        if full
        else ["resnet50", "efficientnet_b0"]
    )
    threads = setup_threads(args, device)
    n = args.n_images or (4096 if full else 64)
    size = args.image_size or (224 if full else 64)
    batch_size = args.batch_size or (128 if full else 32)
    epochs = args.epochs or (5 if full else 3)
    skorch_epochs = args.skorch_epochs or (3 if full else epochs)
    repeats = args.repeats or (1 if full else 2)
    n_jpeg = args.n_jpeg or (2048 if full else 64)
    # On a shared, loaded CPU the epoch times swing by 3x: the best later
    # epoch of each method is the fairer figure there; on a GPU the median.
    best = not args.median and device.type != "cuda"
    settings = dict(
        models=models,
        n_images=n,
        image_size=size,
        batch_size=batch_size,
        epochs=epochs,
        skorch_epochs=skorch_epochs,
        n_jpeg=n_jpeg,
        precision=str(amp_dtype(device)),
        throughput="best later epoch" if best else "median of later epochs",
        repeats=repeats,
        raw_warmup_batches=WARMUP_BATCHES,
        torch_threads=threads,
    )
    print(f"device={device} settings={settings}")
    n_classes = 4
    X, y = synthetic_images(n, size, n_classes)

    def fine_tuner(model_name, **params):
        """The CNNClassifier of every row: random weights, all layers trained."""
        return CNNClassifier(
            model_name,
            pretrained=False,
            freeze="none",
            batch_size=batch_size,
            max_epochs=epochs,
            image_size=size,
            device=str(device),
            random_state=0,
            **params,
        )

    rows = []
    for model_name in models:
        _, config = create_backbone(model_name, pretrained=False)
        dataset = _Normalized(X, y, config["mean"], config["std"])
        common = dict(epochs=epochs, batch_size=batch_size, device=device)

        def run_raw(model_name=model_name, common=common):
            return raw_loop(model_name, X, y, n_classes=n_classes, **common)

        def run_clf(model_name=model_name, compile=False):
            clf = fine_tuner(model_name, compile=compile).fit(X, y)
            return list(clf.history_["dur"])

        def run_skorch(model_name=model_name, dataset=dataset, common=common):
            return skorch_defaults(
                model_name,
                dataset,
                n_classes=n_classes,
                **{**common, "epochs": skorch_epochs},
            )

        methods = {
            "raw loop": run_raw,
            "CNNClassifier": run_clf,
            "skorch defaults": run_skorch,
        }
        if args.compile:
            # the first epoch pays the compilation; the later ones show its gain
            methods["CNNClassifier(compile=True)"] = lambda m=model_name: run_clf(
                m, compile=True
            )
        # Untimed, a few batches of the raw loop pay the architecture's
        # one-time costs, which the raw loop, run first, would otherwise carry
        # alone in its first epoch and its end-to-end figure.
        warm = WARMUP_BATCHES * batch_size
        raw_loop(
            model_name,
            X[:warm],
            y[:warm],
            n_classes=n_classes,
            **{**common, "epochs": 1},
        )
        results = {name: ([], [], None) for name in methods}
        # Round robin: a busy spell of the machine hits every method alike.
        for _ in range(repeats):
            for name, run in methods.items():
                with PeakMemory(device) as mem, Timer(device) as t:
                    dur = run()
                durations, walls, _ = results[name]
                results[name] = (durations + [dur], walls + [t.seconds], mem)
        rate = {
            name: max(throughput(n, d, best) for d in durs)
            for name, (durs, _, _) in results.items()
        }
        for method, (durs, walls, mem) in results.items():
            rows.append(
                dict(
                    model=model_name,
                    input="uint8 array",
                    method=method,
                    img_s=round(rate[method], 1),
                    vs_raw=round(rate[method] / rate["raw loop"], 3),
                    end_to_end_img_s=round(n * len(durs[0]) / min(walls), 1),
                    epoch_s=[[round(x, 3) for x in d] for d in durs],
                    **mem.as_dict(),
                )
            )
            print(rows[-1])
        # a run stopped by a time limit keeps the models it finished
        write_partial("train", args, device, settings, rows)

    folder = (args.data or default_data_dir()) / "brain_tumor_mri" / "Training"
    notes = [
        "img_s: images per second over epochs 2.. (the first pays warm-up), "
        + ("the best such epoch" if best else "their median")
        + "; vs_raw: ratio to the raw loop of the same run and model.",
        f"each backbone's methods follow an untimed raw loop of {WARMUP_BATCHES} "
        "batches, which pays the architecture's one-time costs.",
    ]
    if args.no_jpeg or not folder.is_dir():
        why = "--no-jpeg" if args.no_jpeg else f"no folder {folder}"
        notes.append(f"JPEG rows skipped ({why})")
    else:
        paths, labels = sample_folder(folder, n_jpeg)
        model_name = models[0]
        _, config = create_backbone(model_name, pretrained=False)
        with PeakMemory(device) as mem, Timer(device) as t:
            clf = fine_tuner(model_name, n_jobs=-1).fit(paths, labels)
        dur = list(clf.history_["dur"])
        setup = t.seconds - sum(dur)  # decoding + model creation
        jpeg = {"CNNClassifier (decode once)": ([setup + dur[0], *dur[1:]], mem)}
        del clf
        y_idx = np.unique(labels, return_inverse=True)[1]
        dataset = _JpegFolder(paths, y_idx, config["mean"], config["std"], size)
        with PeakMemory(device) as mem, Timer(device) as t:
            dur = skorch_defaults(
                model_name,
                dataset,
                epochs=skorch_epochs,
                batch_size=batch_size,
                device=device,
                n_classes=4,
            )
        jpeg["skorch, PIL per sample per epoch"] = (dur, mem)
        base = throughput(len(paths), jpeg["skorch, PIL per sample per epoch"][0], best)
        for method, (dur, mem) in jpeg.items():
            rate = throughput(len(paths), dur, best)
            rows.append(
                dict(
                    model=model_name,
                    input=f"{len(paths)} JPEGs",
                    method=method,
                    img_s=round(rate, 1),
                    first_epoch_s=round(dur[0], 2),
                    later_epoch_s=round(float(np.mean(dur[1:] or dur)), 2),
                    vs_skorch=round(rate / base, 3),
                    # the epochs this row ran (the skorch one: skorch_epochs)
                    end_to_end_img_s=round(len(paths) * len(dur) / sum(dur), 1),
                    epoch_s=[round(d, 3) for d in dur],
                    **mem.as_dict(),
                )
            )
            print(rows[-1])
        notes.append(
            "JPEG rows: first_epoch_s includes decoding (and, for CNNClassifier, "
            "model creation); vs_skorch is the ratio of later-epoch throughput."
        )
    report(
        "train",
        args,
        device,
        settings,
        rows,
        [
            "model",
            "input",
            "method",
            ("img_s", "img/s"),
            "vs_raw",
            "vs_skorch",
            ("end_to_end_img_s", "end-to-end img/s"),
            ("first_epoch_s", "1st epoch s"),
            ("later_epoch_s", "later epoch s"),
            ("host_peak_mb", "host peak MB"),
            ("gpu_peak_mb", "GPU peak MB"),
        ],
        notes,
    )


if __name__ == "__main__":
    main()
