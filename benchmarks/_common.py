"""Shared helpers of the benchmark scripts: data, hardware, memory, tables, JSON.

Benchmarks are scripts, not library code: they print a table and write
``benchmarks/results/<name>.json`` with the hardware, the versions, the date,
the settings and every measured row, always with the baseline of the same run.
"""

import argparse
import datetime
import json
import os
import platform
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
if str(ROOT) not in sys.path:  # run as `python benchmarks/bench_x.py`
    sys.path.insert(0, str(ROOT))


def default_data_dir():
    """``$SKMEDIMG_DATA``, else ``../shared/data`` next to the repository."""
    env = os.environ.get("SKMEDIMG_DATA")
    return Path(env) if env else ROOT.parent / "shared" / "data"


def base_parser(description):
    """Argument parser with ``--full``, ``--data`` and ``--device``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--full", action="store_true", help="the GPU settings (full data, 224 px)"
    )
    parser.add_argument("--data", type=Path, default=None, help="data folder")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda ...")
    parser.add_argument("--out", default=None, help="JSON file name in results/")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads; default 1 on a CPU (see setup_threads), torch's "
        "own choice on a GPU; 0 = torch's own choice",
    )
    return parser


def setup_threads(args, device):
    """Set the torch threads of a CPU run; returns the number used.

    On a CPU shared with other jobs, torch's OpenMP threads spin on barriers
    and a busy core slows every step down by several times, at random: the
    epoch times of one method swung from 0.6 s to 13 s in one run here. One
    thread per process gives figures that compare (all methods get the
    same), at the price of absolute speed; pass ``--threads 0`` on a quiet
    machine.
    """
    import torch

    threads = args.threads
    if threads is None:
        threads = 1 if device.type == "cpu" else 0
    if threads > 0:
        torch.set_num_threads(threads)
    return torch.get_num_threads()


def resolve(device):
    """The torch device of a ``--device`` value."""
    from skmedimg.neural import resolve_device

    return resolve_device(device)


def amp_dtype(device):
    """bf16 where the GPU supports it, else None (float32)."""
    from skmedimg.neural import resolve_precision

    return resolve_precision("auto", device)


def sync(device):
    """Wait for the device (timings must not stop while kernels are queued)."""
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def hardware(device):
    """Hardware and software of the run."""
    import sklearn
    import skorch
    import timm
    import torch

    import skmedimg

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "affinity": len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else None,
        "load_average_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "torch_threads": torch.get_num_threads(),
        "device": str(device),
        "gpu": None,
        "versions": {
            "skmedimg": skmedimg.__version__,
            "torch": torch.__version__,
            "timm": timm.__version__,
            "skorch": skorch.__version__,
            "scikit-learn": sklearn.__version__,
            "numpy": np.__version__,
        },
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info["gpu"] = {
            "name": props.name,
            "memory_gib": round(props.total_memory / 2**30, 1),
            "capability": f"{props.major}.{props.minor}",
            "cuda": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version(),
        }
    return info


def _rss_bytes():
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:  # not Linux: the process peak so far
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class PeakMemory:
    """Peak host RSS (sampled every 5 ms) and peak CUDA memory of a block.

    ``resource.getrusage`` gives only the peak of the whole process, which
    cannot be reset between methods; a sampling thread gives the peak of
    each block (to within the sampling interval). ``host_peak_mb`` is the
    peak RSS of the process during the block, ``host_delta_mb`` that minus
    the RSS when the block started; ``gpu_peak_mb`` is
    ``torch.cuda.max_memory_allocated`` (None on CPUs).
    """

    def __init__(self, device, device_wide=False):
        self.device = device
        self.device_wide = device_wide and device.type == "cuda"

    def __enter__(self):
        import torch

        self.device_used_ = None
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(self.device)
        self.start_ = self.peak_ = _rss_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _device_used(self):
        import torch

        free, total = torch.cuda.mem_get_info(self.device)
        return total - free

    def _sample(self):
        ticks = 0
        while not self._stop.wait(0.005):
            self.peak_ = max(self.peak_, _rss_bytes())
            ticks += 1
            if self.device_wide and ticks % 10 == 0:  # every 50 ms
                used = self._device_used()
                self.device_used_ = max(self.device_used_ or 0, used)

    def __exit__(self, *exc):
        import torch

        self._stop.set()
        self._thread.join()
        self.peak_ = max(self.peak_, _rss_bytes())
        self.gpu_peak_ = None
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.gpu_peak_ = torch.cuda.max_memory_allocated(self.device)
        return False

    def as_dict(self):
        mb = 2**20
        out = {
            "host_peak_mb": round(self.peak_ / mb, 1),
            "host_delta_mb": round((self.peak_ - self.start_) / mb, 1),
            "gpu_peak_mb": None
            if self.gpu_peak_ is None
            else round(self.gpu_peak_ / mb, 1),
        }
        if self.device_wide:
            out["gpu_device_peak_mb"] = (
                None if self.device_used_ is None else round(self.device_used_ / mb)
            )
        return out


class Timer:
    """Wall time of a block, synchronising the device at both ends."""

    def __init__(self, device):
        self.device = device

    def __enter__(self):
        sync(self.device)
        self.start_ = time.perf_counter()
        return self

    def __exit__(self, *exc):
        sync(self.device)
        self.seconds = time.perf_counter() - self.start_
        return False


def synthetic_images(n_samples, size, n_classes=4, seed=0):
    """Random uint8 images ``(n, size, size, 3)`` and labels, for throughput."""
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 256, size=(n_samples, size, size, 3), dtype=np.uint8)
    y = np.arange(n_samples) % n_classes
    return X, y


def sample_folder(folder, n_samples, seed=0):
    """A class-stratified sample of paths (all with ``n_samples=None``)."""
    from skmedimg.datasets import load_image_folder

    data = load_image_folder(folder)
    if n_samples is None or n_samples >= len(data.filenames):
        return data.filenames, data.labels
    from sklearn.model_selection import train_test_split

    paths, _, y, _ = train_test_split(
        data.filenames,
        data.labels,
        train_size=n_samples,
        stratify=data.target,
        random_state=seed,
    )
    return paths, y


def _fmt(value):
    if value is None:
        return "-"
    if isinstance(value, float):
        if abs(value) >= 100:
            return f"{value:,.0f}"
        if abs(value) >= 1:
            return f"{value:.2f}"
        # 4 significant digits: an accuracy of 0.9957 must not print as 0.996
        return f"{value:.4g}"
    return str(value)


def table(rows, columns):
    """Rows (dicts) as a Markdown table of ``columns`` (key or (key, title))."""
    cols = [(c, c) if isinstance(c, str) else c for c in columns]
    head = "| " + " | ".join(title for _, title in cols) + " |"
    rule = "|" + "|".join("---" for _ in cols) + "|"
    body = [
        "| " + " | ".join(_fmt(row.get(key)) for key, _ in cols) + " |" for row in rows
    ]
    return "\n".join([head, rule, *body])


def result_path(name, args):
    """``results/<name>.json`` (``<name>_full.json`` with ``--full``, or ``--out``)."""
    return RESULTS / (args.out or f"{name}{'_full' if args.full else ''}.json")


def _partial_path(name, args):
    path = result_path(name, args)
    return path.with_name(path.stem + ".partial.json")


def _payload(name, args, device, settings, rows, **extra):
    return {
        "benchmark": name,
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "full": bool(args.full),
        "hardware": hardware(device),
        "settings": settings,
        "rows": rows,
        **extra,
    }


def write_partial(name, args, device, settings, rows, **extra):
    """Write what a long run has measured so far to ``<result>.partial.json``.

    A run stopped before its end (a time limit, a crash) keeps the parts it
    finished; :func:`report` removes the file when the run completes.
    """
    RESULTS.mkdir(parents=True, exist_ok=True)
    payload = _payload(name, args, device, settings, rows, complete=False, **extra)
    path = _partial_path(name, args)
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    return path


def report(name, args, device, settings, rows, columns, notes=(), **extra):
    """Print the table and write ``results/<name>.json``.

    ``extra`` items (per-seed or per-epoch records) go into the JSON as they are.
    """
    text = table(rows, columns)
    print()
    print(text)
    for note in notes:
        print(f"* {note}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = result_path(name, args)
    payload = _payload(
        name, args, device, settings, rows, table=text, notes=list(notes), **extra
    )
    out.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    _partial_path(name, args).unlink(missing_ok=True)
    shown = out.relative_to(ROOT) if out.is_relative_to(ROOT) else out
    print(f"\nwrote {shown}")
    return payload
