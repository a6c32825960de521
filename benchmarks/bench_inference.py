"""Benchmark: inference and feature extraction throughput against a raw loop.

For each backbone, on the same uint8 images in host memory, in the same run:

* ``raw loop``: ``torch.inference_mode``, channels_last (on every device),
  bf16 autocast on GPUs that support it, normalised on the device, outputs
  kept on the device and copied back once. Two ways of feeding it are
  timed and the faster one is the baseline: the whole uint8 array pinned
  once per pass and sliced into ``non_blocking`` copies, or each batch
  pinned and copied on its own.
* ``raw loop, data already on the GPU``: the same loop over a uint8 tensor
  moved to the device before timing; the bound no estimator that takes host
  arrays can reach (reported, not the baseline).
* ``CNNClassifier.predict_proba`` (a fitted classifier; fitting is not timed).
* ``CNNFeatureExtractor.transform`` (pooled features; no ``memory`` cache).

From JPEG files (``--files N`` Brain Tumor MRI Training images, when the data
are present), in the same run, for the first model only (``--file-models``
names others): on a GPU decoding dominates them whatever the backbone, and
for every model they would take longer than all the array rows:

* ``raw loop, Pillow per batch``: the baseline a user writes: each batch of
  files opened with Pillow, converted to RGB and resized (bilinear), then the
  raw loop above; decoding and the network take turns.
* ``raw loop, Pillow all first``: every file decoded before the first batch
  (what ``predict_proba`` did before it worked in chunks).
* ``CNNClassifier.predict_proba`` and ``CNNFeatureExtractor.transform`` on
  the paths: both decode the next chunk in a thread while the current one
  runs, and hold at most two chunks of decoded images.

Best of ``--repeats`` passes after one warm-up pass each. The JSON is written
after each model (``<result>.partial.json``, until the run completes). CPU
defaults:
``resnet50`` and ``efficientnet_b0``, 128 images at 96 px, batch 64, 2
repeats, 256 files. ``--full``: ResNet-50, EfficientNet-B0, MobileNetV3-Small,
DenseNet-121/201 at 224 px, 8192 images, batch 256, 3 repeats, 4096 files.

Usage::

    python benchmarks/bench_inference.py [--full] [--models resnet50 ...]
                                         [--file-models resnet50 ...]
"""

import time

import numpy as np
import torch
from _common import (
    PeakMemory,
    amp_dtype,
    base_parser,
    default_data_dir,
    report,
    resolve,
    sample_folder,
    setup_threads,
    sync,
    synthetic_images,
    write_partial,
)
from PIL import Image

from skmedimg.neural import (
    CNNClassifier,
    CNNFeatureExtractor,
    autocast,
    create_backbone,
)


def raw_inference(model, X, *, mean, std, batch_size, device, feed="pin all"):
    """Features (or logits) of every image, the hand-written way.

    ``feed`` (CUDA): ``"pin all"`` pins the whole array and slices it, ``"per
    batch"`` pins each batch on its own; on other devices batches are plain
    slices. ``X`` may also be a tensor already on the device.
    """
    cuda = device.type == "cuda"
    fmt = torch.channels_last  # on every device (faster on CPUs too)
    dtype = amp_dtype(device)
    Xt = X if isinstance(X, torch.Tensor) else torch.from_numpy(X)
    if cuda and feed == "pin all" and Xt.device.type == "cpu":
        Xt = Xt.pin_memory()
    out = []
    with torch.inference_mode(), autocast(device, dtype):
        for i in range(0, len(Xt), batch_size):
            xb = Xt[i : i + batch_size]
            if cuda and feed == "per batch" and xb.device.type == "cpu":
                xb = xb.pin_memory()
            xb = xb.to(device, non_blocking=True)
            xb = xb.permute(0, 3, 1, 2).float().div_(255)
            xb = ((xb - mean) / std).contiguous(memory_format=fmt)
            out.append(model(xb).float())
    return torch.cat(out).cpu().numpy()


def pillow_batch(paths, size):
    """Decode files with Pillow the plain way: RGB, bilinear resize."""
    images = []
    for path in paths:
        with Image.open(path) as img:
            img = img.convert("RGB").resize((size, size), Image.BILINEAR)
            images.append(np.asarray(img))
    return np.stack(images)


def raw_files_inference(model, paths, size, *, all_first, **kwargs):
    """The raw loop over image files, decoded per batch or all first."""
    batch_size = kwargs["batch_size"]
    if all_first:
        return raw_inference(model, pillow_batch(paths, size), **kwargs)
    out = [
        raw_inference(model, pillow_batch(paths[i : i + batch_size], size), **kwargs)
        for i in range(0, len(paths), batch_size)
    ]
    return np.concatenate(out)


def table_rows(model_name, results, n, baseline):
    """Rows of ``{method: (best_s, times, memory)}``, with ratios to ``baseline``."""
    base = n / results[baseline][0]
    return [
        dict(
            model=model_name,
            method=method,
            img_s=round(n / best, 1),
            vs_raw=round(n / best / base, 3),
            times_s=[round(t, 3) for t in times],
            **mem.as_dict(),
        )
        for method, (best, times, mem) in results.items()
    ]


def best_of(func, repeats, device):
    func()  # warm-up
    times = []
    for _ in range(repeats):
        sync(device)
        start = time.perf_counter()
        func()
        sync(device)
        times.append(time.perf_counter() - start)
    return min(times), times


def main():
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=None)
    parser.add_argument("--n-images", type=int, default=None)
    parser.add_argument("--image-size", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument(
        "--files",
        type=int,
        default=None,
        help="Brain Tumor MRI JPEG files for the file rows (0: none)",
    )
    parser.add_argument(
        "--file-models",
        nargs="+",
        default=None,
        help="models with file rows (default: the first model only)",
    )
    args = parser.parse_args()
    device = resolve(args.device)
    threads = setup_threads(args, device)
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
    # On a GPU, decoding (one CPU thread) dominates the file rows whatever the
    # backbone: for all 5 models of --full they alone would take 5-8 minutes.
    file_models = args.file_models or models[:1]
    if not set(file_models) <= set(models):
        parser.error(f"--file-models {file_models} not all in --models {models}")
    n = args.n_images or (8192 if full else 128)
    size = args.image_size or (224 if full else 96)
    batch_size = args.batch_size or (256 if full else 64)
    repeats = args.repeats or (3 if full else 2)
    n_files = args.files if args.files is not None else (4096 if full else 256)
    folder = (args.data or default_data_dir()) / "brain_tumor_mri" / "Training"
    paths = []
    if n_files and folder.is_dir():
        paths = [str(p) for p in sample_folder(folder, n_files)[0]]
    elif n_files:
        print(f"no {folder}: the file rows are skipped")
    settings = dict(
        models=models,
        n_images=n,
        image_size=size,
        batch_size=batch_size,
        repeats=repeats,
        n_files=len(paths),
        file_models=file_models if paths else [],
        precision=str(amp_dtype(device)),
        torch_threads=threads,
    )
    print(f"device={device} settings={settings}")
    X, y = synthetic_images(n, size)
    rows = []
    for model_name in models:
        torch.manual_seed(0)
        backbone, config = create_backbone(model_name, pretrained=False)
        backbone = backbone.to(device, memory_format=torch.channels_last).eval()
        mean = torch.tensor(config["mean"], device=device).view(1, -1, 1, 1)
        std = torch.tensor(config["std"], device=device).view(1, -1, 1, 1)
        file_rows = bool(paths) and model_name in file_models
        results = {}
        feeds = ["pin all", "per batch"] if device.type == "cuda" else ["host array"]
        raw = {}
        for feed in feeds:
            with PeakMemory(device) as mem:
                best, times = best_of(
                    lambda b=backbone, m=mean, s=std, f=feed: raw_inference(
                        b,
                        X,
                        mean=m,
                        std=s,
                        batch_size=batch_size,
                        device=device,
                        feed=f,
                    ),
                    repeats,
                    device,
                )
            raw[feed] = (best, times, mem)
        feed = min(raw, key=lambda f: raw[f][0])
        results[f"raw inference_mode loop ({feed})"] = raw[feed]
        bound = None
        if device.type == "cuda":
            X_device = torch.from_numpy(X).to(device)
            with PeakMemory(device) as mem:
                best, times = best_of(
                    lambda b=backbone, m=mean, s=std, xd=X_device: raw_inference(
                        b, xd, mean=m, std=s, batch_size=batch_size, device=device
                    ),
                    repeats,
                    device,
                )
            del X_device
            bound = ("raw loop, data already on the GPU (bound)", (best, times, mem))
        file_results = {}
        for all_first in (False, True):
            if not file_rows:
                break
            name = "all first" if all_first else "per batch"
            with PeakMemory(device) as mem:
                best, times = best_of(
                    lambda b=backbone, m=mean, s=std, a=all_first: raw_files_inference(
                        b,
                        paths,
                        size,
                        all_first=a,
                        mean=m,
                        std=s,
                        batch_size=batch_size,
                        device=device,
                    ),
                    repeats,
                    device,
                )
            file_results[f"files: raw loop, Pillow {name}"] = (best, times, mem)
        del backbone

        clf = CNNClassifier(
            model_name,
            pretrained=False,
            freeze="backbone",
            max_epochs=1,
            batch_size=batch_size,
            image_size=size,
            device=str(device),
            random_state=0,
        ).fit(X[:batch_size], y[:batch_size])
        with PeakMemory(device) as mem:
            best, times = best_of(lambda c=clf: c.predict_proba(X), repeats, device)
        results["CNNClassifier.predict_proba"] = (best, times, mem)
        if file_rows:
            with PeakMemory(device) as mem:
                best, times = best_of(
                    lambda c=clf: c.predict_proba(paths), repeats, device
                )
            file_results["files: CNNClassifier.predict_proba"] = (best, times, mem)
        del clf

        ext = CNNFeatureExtractor(
            model_name,
            pretrained=False,
            batch_size=batch_size,
            image_size=size,
            device=str(device),
            random_state=0,
        ).fit(X[:2])
        with PeakMemory(device) as mem:
            best, times = best_of(lambda e=ext: e.transform(X), repeats, device)
        results["CNNFeatureExtractor.transform"] = (best, times, mem)
        if file_rows:
            with PeakMemory(device) as mem:
                best, times = best_of(lambda e=ext: e.transform(paths), repeats, device)
            file_results["files: CNNFeatureExtractor.transform"] = (best, times, mem)
        del ext

        if bound is not None:
            results[bound[0]] = bound[1]
        new = table_rows(model_name, results, n, f"raw inference_mode loop ({feed})")
        new[0]["raw_feeds_img_s"] = {f: round(n / raw[f][0], 1) for f in raw}
        if file_results:
            baseline = "files: raw loop, Pillow per batch"
            new += table_rows(model_name, file_results, len(paths), baseline)
        for row in new:
            print(row)
        rows += new
        # a run stopped by a time limit keeps the models it finished
        write_partial("inference", args, device, settings, rows)
    report(
        "inference",
        args,
        device,
        settings,
        rows,
        [
            "model",
            "method",
            ("img_s", "img/s"),
            "vs_raw",
            ("host_peak_mb", "host peak MB"),
            ("host_delta_mb", "host +MB"),
            ("gpu_peak_mb", "GPU peak MB"),
        ],
        [
            "img/s: best of the timed passes after a warm-up pass; vs_raw: ratio "
            "to the raw loop of the same run and model (on GPUs the faster of "
            "its two ways of feeding, named in the row)",
            "CNNClassifier.predict_proba also runs its linear head and softmax; "
            "both estimators also check and copy the input array "
            "(skmedimg.utils.read_images), which the raw loop does not",
            "files rows: vs_raw is the ratio to 'raw loop, Pillow per batch' "
            "on the same files; the estimators read with skmedimg's reader "
            "(reduced-scale JPEG decoding, EXIF orientation) with n_jobs=None; "
            f"only for {', '.join(file_models)} (on a GPU decoding dominates "
            "them, whatever the backbone)",
        ],
    )


if __name__ == "__main__":
    main()
