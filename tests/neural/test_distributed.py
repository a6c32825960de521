"""Data-parallel fits of CNNClassifier over 2 CPU processes (torch.distributed, gloo).

Each test starts its processes as ``torchrun`` would: ``python`` with
``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``, ``MASTER_ADDR`` and a free
``MASTER_PORT`` in the environment, running one of the ``_worker_*``
functions below, which writes what it saw to ``rank<r>.pkl``. The one-process
reference fits run in the test process, with one torch thread like the
workers. Tiny images and models: a few seconds per run.
"""

import json
import os
import pickle
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from torch import nn

from skmedimg.neural import CNNClassifier, DistributedError

ROOT = Path(__file__).resolve().parents[2]
#: Seconds a collective waits in these tests before DistributedError.
TIMEOUT = 30
#: Tolerance of predict_proba between the 2-process and the 1-process fit:
#: the gradients are the same sums, added in another order (float32).
ATOL = 1e-5


class TinyNet(nn.Module):
    """Convolution, ReLU, pooling: no BatchNorm, no dropout, deterministic."""

    def __init__(self, width=4, in_chans=3):
        super().__init__()
        self.in_chans = in_chans
        self.body = nn.Sequential(
            nn.Conv2d(in_chans, width, 3, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )

    def forward(self, x):
        return self.body(x)


def _data(n=40, size=16):
    rng = np.random.default_rng(0)
    X = rng.integers(0, 60, size=(n, size, size), dtype=np.uint8)
    y = np.array(["benign", "malignant"] * (n // 2))
    X[y == "malignant", 4:12, 4:12] = 255  # a bright lesion
    return X, y


def _tiny(**params):
    defaults = dict(
        pretrained=False,
        recipe=None,
        max_epochs=3,
        lr=0.05,
        optimizer="sgd",
        augment=None,
        dropout=0.0,
        early_stopping=None,
        lr_schedule=None,
        verbose=0,
        random_state=0,
    )
    return CNNClassifier(TinyNet, **{**defaults, **params})


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_ranks(
    out,
    worker,
    world_size=2,
    *,
    args=(),
    timeout=120,
    cwd=None,
    module="tests.neural.test_distributed",
):
    """Run ``module.worker(out, *args)`` in ``world_size`` processes (None: plain).

    Returns ``[(returncode, stderr, result)]`` per rank, ``result`` the
    object the worker pickled (or None).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    base = {
        k: v
        for k, v in os.environ.items()
        if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
    }
    base.update(
        PYTHONPATH=os.pathsep.join([str(ROOT), base.get("PYTHONPATH", "")]),
        OMP_NUM_THREADS="1",
        MPLBACKEND="Agg",
        SKMEDIMG_DISTRIBUTED_TIMEOUT=str(TIMEOUT),
    )
    code = (
        # a process still running after 100 s prints its stack (to stderr)
        "import sys, faulthandler, torch; faulthandler.dump_traceback_later(100); "
        "torch.set_num_threads(1); "
        f"import {module} as t; "
        f"t.{worker}(*sys.argv[1:])"
    )
    port = str(_free_port())
    ranks = [None] if world_size is None else range(world_size)
    procs = []
    for rank in ranks:
        env = dict(base)
        if rank is not None:
            env.update(
                WORLD_SIZE=str(world_size),
                RANK=str(rank),
                LOCAL_RANK=str(rank),
                LOCAL_WORLD_SIZE=str(world_size),
                MASTER_ADDR="127.0.0.1",
                MASTER_PORT=port,
            )
        workdir = cwd(rank) if callable(cwd) else cwd
        procs.append(
            subprocess.Popen(
                [sys.executable, "-c", code, str(out), *map(str, args)],
                env=env,
                cwd=workdir,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    results = []
    for rank, proc in zip(ranks, procs, strict=True):
        try:
            _, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            for p in procs:
                p.kill()
            errors = [p.communicate()[1][-2000:] for p in procs]
            raise AssertionError(
                f"rank {rank} did not finish in {timeout} s; their errors: {errors}"
            ) from None
        path = out / f"rank{0 if rank is None else rank}.pkl"
        result = pickle.loads(path.read_bytes()) if path.exists() else None
        results.append((proc.returncode, err, result))
    return results


def _save(out, result):
    rank = int(os.environ.get("RANK", "0"))
    with open(Path(out) / f"rank{rank}.pkl", "wb") as fh:
        pickle.dump(result, fh)


# ------------------------------------------------------------------ workers


def _fit(mode, memory=None):
    """A tiny fit, data-parallel when launched; its model and scores.

    ``memory``: the frozen-feature cache folder of the ``"frozen"`` mode.
    """
    import torch.distributed as dist

    X, y = _data()
    result = {"decoded": []}
    read = CNNClassifier._read

    def counting_read(self, images, size):  # how many images this rank decodes
        result["decoded"].append(len(images))
        return read(self, images, size)

    if mode in ("train", "bf16"):
        # The global batch (32) is the whole training split (40 - 8 held
        # out): each step sees the same images in every run, so the
        # 1-process and 2-process fits take the same steps.
        clf = _tiny(
            batch_size=32,
            early_stopping=3,
            validation_fraction=0.2,
            lr_schedule="plateau",
            precision="fp32" if mode == "train" else mode,
        )
        if mode == "train" and dist.is_initialized() or os.environ.get("WORLD_SIZE"):
            try:  # a global batch the 2 processes cannot share
                _tiny(batch_size=31).fit(X, y)
            except ValueError as exc:
                result["indivisible"] = str(exc)
    else:  # frozen backbone: features gathered, head fitted alike everywhere
        clf = _tiny(
            freeze="backbone",
            optimizer="logreg-cv" if mode == "logreg" else "adam",
            batch_size=8,
            max_epochs=3,
            lr=0.01,
            early_stopping=2 if mode == "frozen" else None,
            memory=str(memory) if mode == "frozen" else None,
        )
    CNNClassifier._read = counting_read
    try:
        clf.fit(X, y)
    finally:
        CNNClassifier._read = read
    result.update(
        proba=clf.predict_proba(X),
        history=clf.history_,
        model=pickle.dumps(clf),
        world_size=dist.get_world_size() if dist.is_initialized() else 1,
    )
    return result


def _one_process(mode, memory=None):
    """The reference: the same fit in this process, one torch thread."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _fit(mode, memory)
    finally:
        torch.set_num_threads(threads)


def _worker_fit(out, modes):
    memory = Path(out) / "features"
    _save(out, {mode: _fit(mode, memory) for mode in modes.split(",")})


class _FailOnRank1:
    """A user callback that raises on rank 1 only, in the second epoch."""

    def __init__(self):
        from skorch.callbacks import Callback

        class Fail(Callback):
            def on_epoch_begin(self, net, **kwargs):
                if os.environ.get("RANK") == "1" and len(net.history) == 2:
                    raise RuntimeError("rank 1 is out of luck")

        self.callback = Fail()


def _worker_fail(out):
    X, y = _data()
    clf = _tiny(batch_size=8, max_epochs=4, callbacks=[_FailOnRank1().callback])
    started = time.perf_counter()
    try:
        clf.fit(X, y)
        outcome = ("finished", "")
    except Exception as exc:  # noqa: BLE001 - what each rank saw
        outcome = (type(exc).__name__, str(exc))
    _save(out, {"outcome": outcome, "seconds": time.perf_counter() - started})


def _read_arrays(part):
    """Stack in-memory images; strings are unreadable files."""
    from skmedimg.utils import ImageReadError

    bad = [(i, str(v), "unreadable") for i, v in enumerate(part) if isinstance(v, str)]
    if bad:
        raise ImageReadError(bad, n_items=len(part))
    return np.stack(list(part))


def _worker_gather(out):
    """The collectives and the shard reading, directly."""
    import torch

    from skmedimg.neural._distributed import start_data_parallel
    from skmedimg.utils import ImageReadError

    group = start_data_parallel(torch.device("cpu"))
    n = 41  # not a multiple of the processes
    mine = group.shard(np.arange(n), seed=3, equal=False)
    rows = torch.from_numpy(np.stack([mine * 10.0, mine + 0.5], axis=1)).float()
    gathered = group.gather_rows(rows, mine, n).numpy()
    equal = group.shard(np.arange(n), seed=3, equal=True)
    items = [np.full((8, 8), i, dtype=np.uint8) for i in range(6)]
    items[4] = "/no/such/image.png"  # in one rank's shard only
    X = np.empty(len(items), dtype=object)
    X[:] = items
    try:
        group.read_shard(
            _read_arrays, X, group.shard(np.arange(6), seed=0, equal=False)
        )
        read_error = None
    except ImageReadError as exc:
        read_error = [(i, reason) for i, _, reason in exc.failures]
    _save(
        out,
        {
            "mine": mine,
            "equal": equal,
            "gathered": gathered,
            "read_error": read_error,
            "shards_of_6": group.shard(np.arange(6), seed=0, equal=False),
        },
    )


def _worker_cli(out, data_dir):
    from skmedimg.cli import main

    code = main(
        [
            "train",
            data_dir,
            "--out",
            "report",
            "--model",
            "test_resnet",
            "--pretrained",
            "false",
            "--recipe",
            "none",
            "--epochs",
            "1",
            "--image-size",
            "32",
            "--batch-size",
            "8",
            "--augment",
            "none",
            "--quiet",
        ]
    )
    _save(out, {"code": code, "cwd": os.getcwd()})


# -------------------------------------------------------------------- tests


MODES = ("train", "bf16", "logreg", "frozen")


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory):
    """Every mode of :func:`_fit`, fitted over 2 processes (one run)."""
    out = tmp_path_factory.mktemp("two_processes")
    ranks = run_ranks(out, "_worker_fit", 2, args=(",".join(MODES),))
    for code, err, _ in ranks:
        assert code == 0, err
    return [result for _, _, result in ranks], out


def test_two_processes_fit_the_model_of_one(two_processes):
    ref = _one_process("train")
    r0, r1 = (result["train"] for result in two_processes[0])
    assert r0["world_size"] == r1["world_size"] == 2
    # each rank decoded its shard: 16 training + 4 validation images of 40
    assert r0["decoded"] == r1["decoded"] == [20]
    assert ref["decoded"] == [40]
    # rank 0 holds the one-process model, up to the order of float sums
    np.testing.assert_allclose(r0["proba"], ref["proba"], atol=ATOL)
    assert not np.allclose(r0["proba"], 0.5, atol=1e-3)  # it did learn something
    for key in ("train_loss", "train_acc", "valid_loss", "valid_acc", "lr"):
        np.testing.assert_allclose(
            r0["history"][key], ref["history"][key], atol=ATOL, err_msg=key
        )
    # every rank ends with the same model and scores
    np.testing.assert_allclose(r1["proba"], r0["proba"], atol=1e-7)
    assert r1["history"]["valid_loss"] == r0["history"]["valid_loss"]
    # the fitted model is a plain one: it unpickles without a process group
    model = pickle.loads(r0["model"])
    assert type(model.net_.module_).__name__ == "ImageClassifierModule"
    np.testing.assert_allclose(model.predict_proba(_data()[0]), r0["proba"])
    # the global batch must be shared evenly, and the error says so
    assert "batch_size=31" in r0["indivisible"] and "2 processes" in r0["indivisible"]


def test_bf16_autocast_trains_data_parallel(two_processes):
    ref = _one_process("bf16")
    r0, r1 = (result["bf16"] for result in two_processes[0])
    assert r0["world_size"] == 2
    np.testing.assert_allclose(r1["proba"], r0["proba"], atol=1e-7)
    # bfloat16 keeps 8 bits of mantissa: the sums' order shows more
    np.testing.assert_allclose(r0["proba"], ref["proba"], atol=2e-2)
    model = pickle.loads(r0["model"])
    assert model.net_.amp_dtype is not None


def test_frozen_features_are_gathered_and_the_head_fitted_alike(
    two_processes, tmp_path
):
    results, out = two_processes
    # memory=: each rank wrote the features of its shard to the shared cache
    assert len(list((out / "features").rglob("*.npy"))) == 40
    for mode in ("logreg", "frozen"):
        ref = _one_process(mode, memory=tmp_path / "features")
        r0, r1 = (result[mode] for result in results)
        assert r0["world_size"] == r1["world_size"] == 2
        assert r0["decoded"] == r1["decoded"] == [20]  # features of half each
        np.testing.assert_allclose(r0["proba"], ref["proba"], atol=ATOL, err_msg=mode)
        np.testing.assert_allclose(r1["proba"], r0["proba"], atol=1e-7, err_msg=mode)


def test_collectives_shard_gather_and_name_bad_images(tmp_path):
    ranks = run_ranks(tmp_path, "_worker_gather", 2)
    for code, err, _ in ranks:
        assert code == 0, err
    (_, _, r0), (_, _, r1) = ranks
    # disjoint shards covering every position
    assert not set(r0["mine"]) & set(r1["mine"])
    assert sorted([*r0["mine"], *r1["mine"]]) == list(range(41))
    assert len(r0["equal"]) == len(r1["equal"]) == 20
    # every rank holds every row, at its position
    expected = np.stack([np.arange(41) * 10.0, np.arange(41) + 0.5], axis=1)
    np.testing.assert_array_equal(r0["gathered"], expected)
    np.testing.assert_array_equal(r1["gathered"], expected)
    # the bad item of one shard is named, with its index in X, on both ranks
    assert r0["read_error"] == r1["read_error"] == [(4, "unreadable")]


def test_a_failing_rank_stops_the_other_with_distributed_error(tmp_path):
    started = time.perf_counter()
    ranks = run_ranks(tmp_path, "_worker_fail", 2)
    (_, _, r0), (_, _, r1) = ranks
    assert r1["outcome"] == ("RuntimeError", "rank 1 is out of luck")
    name, message = r0["outcome"]
    assert name == "DistributedError", message
    assert "rank 0 of 2" in message
    # it stopped at once, not after waiting for the timeout
    assert r0["seconds"] < TIMEOUT
    assert time.perf_counter() - started < 90


def test_distributed_true_without_a_launcher_is_a_clear_error(monkeypatch):
    for name in ("WORLD_SIZE", "RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    X, y = _data()
    with pytest.raises(DistributedError, match="torchrun --nproc-per-node"):
        _tiny(distributed=True).fit(X, y)
    assert not hasattr(_tiny(distributed=True), "classes_")


def test_auto_stays_in_one_process_in_the_threads_of_a_search(monkeypatch):
    import threading

    from skmedimg.neural._distributed import resolve_distributed

    monkeypatch.setenv("WORLD_SIZE", "2")  # as under torchrun
    assert resolve_distributed("auto") is True
    seen = []
    thread = threading.Thread(target=lambda: seen.append(resolve_distributed("auto")))
    thread.start()
    thread.join()
    assert seen == [False]
    assert resolve_distributed(False) is False


def test_models_pickled_before_the_parameters_get_their_defaults():
    clf = _tiny(max_epochs=1, batch_size=8).fit(*_data())
    state = clf.__getstate__()
    del state["distributed"], state["sync_batchnorm"]  # as pickled before
    old = CNNClassifier.__new__(CNNClassifier)
    old.__setstate__(state)
    params = old.get_params()
    assert params["distributed"] == "auto" and params["sync_batchnorm"] is False


def test_distributed_is_a_parameter():
    clf = _tiny(distributed=False, sync_batchnorm=True)
    params = clf.get_params()
    assert params["distributed"] is False and params["sync_batchnorm"] is True
    with pytest.raises(ValueError, match="distributed"):
        _tiny(distributed="always").fit(*_data())


def test_sync_batchnorm_needs_gpus():
    from skmedimg.neural._distributed import DataParallelGroup

    group = object.__new__(DataParallelGroup)
    group.device, group.backend = __import__("torch").device("cpu"), "gloo"
    with pytest.raises(ValueError, match="sync_batchnorm=True needs CUDA"):
        group.check_sync_batchnorm()


def test_cli_under_torchrun_writes_from_rank_0_only(tmp_path):
    from PIL import Image

    from skmedimg.datasets import make_phantoms

    X, y = make_phantoms(32, n_classes=2, image_size=32, random_state=0)
    data = tmp_path / "data"
    for i, (image, label) in enumerate(zip(X, y, strict=True)):
        folder = data / f"class{label}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.asarray(image).squeeze()).save(folder / f"{i}.png")
    (data / "class0" / "broken.png").write_bytes(b"not a png")
    workdirs = [tmp_path / f"cwd{r}" for r in range(2)]
    for folder in workdirs:
        folder.mkdir()
    ranks = run_ranks(
        tmp_path / "out",
        "_worker_cli",
        2,
        args=(str(data),),
        cwd=lambda rank: workdirs[rank],
        timeout=180,
    )
    for code, err, result in ranks:
        assert code == 0 and result is not None and result["code"] == 0, err
    # --out report is relative: each rank would write below its own folder
    written = sorted(p.name for p in (workdirs[0] / "report").iterdir())
    assert "model.skmedimg" in written and "report.json" in written
    assert not (workdirs[1] / "report").exists()
    # the files were checked in shares; the broken one is skipped by both
    report = json.loads((workdirs[0] / "report" / "report.json").read_text())
    skipped = report["skipped_unreadable"]
    assert [Path(p).name for p in skipped["train"] + skipped["test"]] == ["broken.png"]
    assert "skipping 1 unreadable image" in ranks[0][1]
    assert "skipping" not in ranks[1][1]
    assert ranks[1][1].strip() == "" or "Training on" not in ranks[1][1]


def test_nproc_relaunches_through_torch_distributed_run(monkeypatch, tmp_path):
    import subprocess as sp

    from skmedimg import cli

    calls = []
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.setattr(sp, "call", lambda command: calls.append(command) or 0)
    argv = ["train", str(tmp_path), "--nproc", "2", "--epochs", "1", "--quiet"]
    assert cli.main(argv) == 0
    (command,) = calls
    assert command[:3] == [sys.executable, "-m", "torch.distributed.run"]
    assert command[command.index("--nproc-per-node") + 1] == "2"
    assert command[command.index("-m", 3) :] == [
        "-m", "skmedimg", "train", str(tmp_path), "--epochs", "1", "--quiet"
    ]  # fmt: skip
    # a failing process makes the command fail
    monkeypatch.setattr(sp, "call", lambda command: 1)
    assert cli.main(argv) == 1
    # a bad option is said once, before any process starts
    monkeypatch.setattr(sp, "call", lambda command: calls.append(command) or 0)
    assert cli.main([*argv, "--lr", "-1"]) == 1
    assert len(calls) == 1
    assert cli._without_nproc(["train", "d", "--nproc=3", "--quiet"]) == [
        "train",
        "d",
        "--quiet",
    ]


@pytest.mark.parametrize(
    "message, collective",
    [
        # what gloo raised here when a peer hung, crashed or closed the group
        ("[../gloo/transport/tcp/unbound_buffer.cc:78] Timed out waiting "
         "10000ms for recv operation to complete", True),
        ("[../gloo/transport/tcp/pair.cc:545] Read error [127.0.0.1]:33166: "
         "Connection reset by peer.", True),
        ("[../gloo/transport/tcp/pair.cc:561] Connection closed by peer "
         "[127.0.0.1]:25503.", True),
        ("rank 1 is out of luck", False),
    ],
)  # fmt: skip
def test_failed_collectives_are_told_from_other_errors(message, collective):
    from skmedimg.neural._distributed import is_collective_failure

    assert is_collective_failure(RuntimeError(message)) is collective
    assert not is_collective_failure(ValueError(message))


def test_sync_batchnorm_is_converted_and_put_back_with_the_trained_values():
    import torch
    from timm.layers import BatchNormAct2d

    from skmedimg.neural._distributed import DataParallelGroup

    group = object.__new__(DataParallelGroup)  # no process group needed
    group.device, group.backend = torch.device("cuda", 0), "nccl"
    module = nn.Sequential(
        nn.Conv2d(3, 4, 3),
        nn.BatchNorm2d(4),
        nn.Sequential(nn.Conv2d(4, 4, 1), BatchNormAct2d(4)),
    )
    keys = list(module.state_dict())
    originals = group.convert_sync_batchnorm(module)
    assert isinstance(module[1], nn.SyncBatchNorm)
    assert type(module[2][1]).__name__ == "SyncBatchNormAct"
    assert module[1].weight is originals["1"].weight  # shared, not copied
    with torch.no_grad():  # what training does to the synchronised layers
        module[1].weight.add_(1.0)
        module[2][1].running_mean.add_(2.0)
    group.revert_sync_batchnorm(module, originals)
    assert type(module[1]) is nn.BatchNorm2d
    assert type(module[2][1]) is BatchNormAct2d
    assert torch.equal(module[1].weight, torch.full((4,), 2.0))
    assert torch.equal(module[2][1].running_mean, torch.full((4,), 2.0))
    assert list(module.state_dict()) == keys
