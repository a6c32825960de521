"""Benchmark: the weight averaging of ``CNNClassifier(ema=...)`` against torch's and timm's.

Three ways to keep an exponential moving average of a model's weights during
training, on the same network (``tf_efficientnet_lite0``, random weights) in
the same run:

* **ours**: ``_WeightAveraging.on_batch_end`` (the code ``ema=`` runs), which averages
  only the tensors that training changes (trainable parameters and the
  floating-point buffers of modules in training mode) with one
  ``torch._foreach_lerp_`` call, and swaps the averaged weights into the
  module in place when it is evaluated;
* **torch**: ``torch.optim.swa_utils.AveragedModel`` with
  ``get_ema_multi_avg_fn`` (a deep copy of the whole module);
* **timm**: ``timm.utils.ModelEmaV3`` with its warm-up (a deep copy too).

Two settings: full fine-tuning (every tensor trains) and a frozen backbone
(only the classifier head trains, as in the linear-probe recipe). Reported:
milliseconds per update (median of ``--steps`` after a warm-up), the extra
memory the average holds (bytes of the tensors it keeps), and both as ratios
to ours. Prints a table and writes ``benchmarks/results/ema.json``.

Usage::

    python benchmarks/bench_ema.py [--steps 200] [--device cpu]
"""

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import base_parser, report, resolve, setup_threads, sync  # noqa: E402

MODEL = "tf_efficientnet_lite0"
DECAY = 0.999


def _model(device, frozen):
    import timm

    model = timm.create_model(MODEL, pretrained=False, num_classes=4).to(device)
    if frozen:
        for name, p in model.named_parameters():
            p.requires_grad = name.startswith("classifier")
        for module in model.modules():  # frozen parts stay in eval mode
            module.train(False)
        model.get_classifier().train(True)
    else:
        model.train(True)
    return model


def _nudge(model):
    import torch

    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(1e-4)


def _bytes(tensors):
    return sum(t.numel() * t.element_size() for t in tensors)


def time_updates(update, model, steps, device):
    times = []
    for step in range(steps + 10):
        _nudge(model)
        sync(device)
        start = time.perf_counter()
        update(step)
        sync(device)
        if step >= 10:
            times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def ours(model):
    from skmedimg.neural._callbacks import _WeightAveraging

    averaging = _WeightAveraging(DECAY)
    averaging.start(model)
    update = averaging.on_batch_end
    return (
        lambda step: update(None, training=True),
        _bytes(averaging.state_["other"]),
    )


def torch_swa(model):
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    averaged = AveragedModel(
        model, multi_avg_fn=get_ema_multi_avg_fn(DECAY), use_buffers=True
    )
    held = list(averaged.module.parameters()) + list(averaged.module.buffers())
    return (lambda step: averaged.update_parameters(model)), _bytes(held)


def timm_ema(model):
    from timm.utils import ModelEmaV3

    ema = ModelEmaV3(model, decay=DECAY, use_warmup=True)
    held = list(ema.module.parameters()) + list(ema.module.buffers())
    return (lambda step: ema.update(model, step=step)), _bytes(held)


def main():
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    args = parser.parse_args()
    device = resolve("cpu" if args.device == "auto" else args.device)
    threads = setup_threads(args, device)
    rows = []
    for setting, frozen in (("full fine-tune", False), ("frozen backbone", True)):
        baseline = None
        for name, make in (("ours", ours), ("torch AveragedModel", torch_swa),
                           ("timm ModelEmaV3", timm_ema)):
            model = _model(device, frozen)
            update, held = make(model)
            ms = time_updates(update, model, args.steps, device)
            row = {
                "setting": setting,
                "method": name,
                "ms_per_update": round(ms, 4),
                "held_mb": round(held / 2**20, 3),
            }
            if baseline is None:
                baseline = (ms, held)
            row["time_vs_ours"] = round(ms / baseline[0], 2)
            row["memory_vs_ours"] = round(held / baseline[1], 1)
            rows.append(row)
            print(row, flush=True)
            del model, update
    report(
        "ema",
        args,
        device,
        {"model": MODEL, "decay": DECAY, "steps": args.steps, "threads": threads},
        rows,
        ["setting", "method", "ms_per_update", "time_vs_ours", "held_mb",
         "memory_vs_ours"],
        notes=[
            "ms_per_update: median over the timed steps (10 warm-up steps first)",
            "held_mb: bytes of the tensors the average keeps beside the model",
            "time_vs_ours / memory_vs_ours: ratio to ours (above 1: ours is "
            "faster / smaller)",
        ],
    )


if __name__ == "__main__":
    main()
