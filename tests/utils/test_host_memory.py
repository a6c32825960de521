"""reused_host_memory: CPU compute reuses freed host memory (glibc only)."""

import json
import os
import resource
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from skmedimg.neural import BackboneRunner
from skmedimg.utils import _host_memory, reused_host_memory

glibc = pytest.mark.skipif(
    not _host_memory.enabled(), reason="the tuning applies to glibc's malloc only"
)


def _faults_per_round(n_rounds=8):
    """Minor page faults of each forward pass of a small convolutional
    network whose activations (34 MB each) are freed after every pass."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 32, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.Conv2d(32, 32, 3, padding=1),
        torch.nn.ReLU(),
    ).eval()
    x = torch.rand(16, 3, 128, 128)
    faults = []
    with torch.inference_mode():
        for _ in range(n_rounds):
            before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            net(x)
            faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    return faults


@glibc
def test_blocks_nest_and_the_last_restores():
    d0 = _host_memory.depth()  # 0 unless a block is left open elsewhere
    with reused_host_memory("cpu"):
        assert _host_memory.depth() == d0 + 1
        with reused_host_memory(torch.device("cpu")):
            assert _host_memory.depth() == d0 + 2
        assert _host_memory.depth() == d0 + 1
    assert _host_memory.depth() == d0


@glibc
def test_an_error_inside_still_restores():
    d0 = _host_memory.depth()
    with pytest.raises(RuntimeError, match="boom"):
        with reused_host_memory("cpu"):
            raise RuntimeError("boom")
    assert _host_memory.depth() == d0


def test_other_devices_and_the_switch_leave_malloc_alone(monkeypatch):
    d0 = _host_memory.depth()
    with reused_host_memory("cuda:0"), reused_host_memory("mps"):
        assert _host_memory.depth() == d0
    monkeypatch.setenv(_host_memory.ENV, "0")
    assert not _host_memory.enabled()
    with reused_host_memory("cpu"):
        assert _host_memory.depth() == d0


_FAULTS_SCRIPT = """
import json
from tests.utils.test_host_memory import _faults_per_round
from skmedimg.utils import reused_host_memory
outside = _faults_per_round()
with reused_host_memory("cpu"):
    inside = _faults_per_round()
print(json.dumps([outside, inside]))
"""


@glibc
def test_large_buffers_are_reused_not_faulted_in_again():
    # The activations are above glibc's largest dynamic mmap threshold (32
    # MB): outside the block every pass maps fresh pages; inside, the heap
    # keeps them (it may still grow once or twice, while allocations settle).
    # In a fresh process: a heap left large by earlier work would serve them
    # without faults either way.
    root = Path(__file__).resolve().parents[2]
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]),
    )
    env.pop(_host_memory.ENV, None)
    out = subprocess.run(
        [sys.executable, "-c", _FAULTS_SCRIPT],
        capture_output=True,
        text=True,
        check=True,
        cwd=root,
        env=env,
    )
    outside, inside = json.loads(out.stdout.strip().splitlines()[-1])
    pages = 16 * 32 * 128 * 128 * 4 // resource.getpagesize()
    assert np.median(outside) > pages / 2, outside
    assert np.median(inside) < pages / 10, inside
    assert sum(inside) < sum(outside) / 2, (inside, outside)


@glibc
def test_threads_share_one_setting():
    entered, release = threading.Barrier(3), threading.Event()

    def work():
        with reused_host_memory("cpu"):
            entered.wait()
            release.wait()

    d0 = _host_memory.depth()
    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    entered.wait()
    assert _host_memory.depth() == d0 + 2
    release.set()
    for t in threads:
        t.join()
    assert _host_memory.depth() == d0


@glibc
def test_the_backbone_runner_computes_inside_the_block():
    d0 = _host_memory.depth()
    depths = []

    def fn(batch):
        depths.append(_host_memory.depth())
        return batch.float().mean(dim=(1, 2, 3))[:, None]

    images = torch.zeros((10, 4, 4, 3), dtype=torch.uint8)
    runner = BackboneRunner("cpu", batch_size=4, lock=False)
    out = runner.run(images, fn)
    assert out.shape == (10, 1)
    streamed = runner.stream(
        np.zeros((10, 4, 4, 3), np.uint8),
        np.arange(10),
        lambda X, part: torch.from_numpy(X[part]),
        fn,
        1,
    )
    assert streamed.shape == (10, 1)
    assert depths and set(depths) == {d0 + 1}
    assert _host_memory.depth() == d0


class _DepthProbe(torch.nn.Module):
    """Pooled features of a batch; records whether it runs inside a block."""

    seen = []

    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(1))

    def forward(self, x):
        _DepthProbe.seen.append((len(x), _host_memory.depth()))
        return x.mean(dim=(2, 3)) * self.scale


@glibc
@pytest.mark.parametrize("freeze", ["none", "backbone"])
def test_a_cpu_fit_and_predict_compute_inside_the_block(freeze):
    from skmedimg.neural import CNNClassifier

    d0 = _host_memory.depth()
    rng = np.random.default_rng(0)
    X = rng.integers(0, 255, size=(12, 8, 8, 3), dtype=np.uint8)
    y = np.array([0, 1] * 6)
    _DepthProbe.seen = []
    clf = CNNClassifier(
        _DepthProbe,
        pretrained=False,
        freeze=freeze,
        image_size=8,
        max_epochs=1,
        batch_size=4,
        device="cpu",
        recipe=None,
        random_state=0,
        verbose=0,
    ).fit(X, y)
    clf.predict_proba(X)
    # every pass over the data (batches of 4, the 12 images at predict); the
    # 2-image shape probe when the network is built runs before the block;
    # the frozen fit's backbone pass is a block nested in the fit's
    on_data = [depth for n, depth in _DepthProbe.seen if n != 2]
    assert len(on_data) >= 3 and min(on_data) > d0
    assert _host_memory.depth() == d0
