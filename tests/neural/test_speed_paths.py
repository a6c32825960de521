"""The speed paths of CNNClassifier, on the CPU.

Batch iteration (slices, gathers, the prefetching thread), the loss kept on the
device during an epoch, ``torch.compile``, the one-cycle schedule, the frozen
feature cache across GridSearchCV candidates, and the per-GPU lock (forced on
for the CPU where the test needs it). Speed itself is measured in
``benchmarks/``, never asserted here.
"""

import os
import pickle
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from joblib import Memory, parallel_backend
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from skorch.callbacks import Callback

import skmedimg.neural._classifier as classifier_module
import skmedimg.neural._data as data_module
import skmedimg.neural._device_lock as lock_module
import skmedimg.neural._runner as runner_module
from skmedimg.neural import CNNClassifier
from skmedimg.neural._data import TensorBatchIterator, TensorDataset
from skmedimg.neural._device_lock import device_lock, device_lock_key, file_lock
from tests.neural.test_estimator_contract import make_lesions, tiny


@pytest.fixture(scope="module")
def data():
    return make_lesions(n_samples=40)


def _collect(iterator):
    return [(Xb.clone(), None if yb is None else yb.clone()) for Xb, yb in iterator]


# --------------------------------------------------------------------------
# Batch iteration
# --------------------------------------------------------------------------


@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("drop_last", [False, True])
def test_prefetching_thread_gives_the_same_batches(shuffle, drop_last):
    X = torch.arange(23 * 4, dtype=torch.uint8).view(23, 2, 2)
    y = torch.arange(23)

    def batches(prefetch):
        dataset = TensorDataset(X, y)
        gen = torch.Generator().manual_seed(0)
        it = TensorBatchIterator(
            dataset, 5, shuffle=shuffle, generator=gen, drop_last=drop_last
        )
        it.prefetch = prefetch
        return _collect(it)

    plain, threaded = batches(0), batches(3)
    assert len(plain) == (4 if drop_last else 5)
    for (a, ya), (b, yb) in zip(plain, threaded, strict=True):
        assert torch.equal(a, b) and torch.equal(ya, yb)
        assert torch.equal(X[ya], a)  # each label is its image's
    seen = torch.cat([yb for _, yb in plain])
    assert len(set(seen.tolist())) == len(seen)


def test_prefetching_thread_stops_when_abandoned():
    X = torch.zeros((100, 2), dtype=torch.uint8)
    it = TensorBatchIterator(TensorDataset(X), 1, prefetch=2)
    before = threading.active_count()
    batches = iter(it)
    next(batches)
    assert threading.active_count() == before + 1
    batches.close()  # what a `break` out of the loop does
    assert threading.active_count() == before


def test_prefetching_thread_raises_the_producer_error():
    class Broken(TensorDataset):
        pass

    dataset = Broken(torch.zeros((4, 2)))
    dataset.X = SimpleNamespace(device=torch.device("cpu"))  # not sliceable

    with pytest.raises(TypeError):
        list(TensorBatchIterator(dataset, 2, prefetch=2))


def test_unpinned_gather_equals_indexing():
    X = torch.randn(10, 3)
    index = torch.tensor([3, 1, 7])
    assert torch.equal(TensorBatchIterator._take(X, index, pin=False), X[index])
    assert TensorBatchIterator._take(None, index, pin=False) is None


# --------------------------------------------------------------------------
# The training loop
# --------------------------------------------------------------------------


def test_batch_losses_are_written_at_the_end_of_each_epoch(data):
    X, y = data
    clf = tiny(freeze="none", max_epochs=2, batch_size=16).fit(X, y)
    for row in clf.net_.history:
        batches = row["batches"]
        assert [b["train_batch_size"] for b in batches] == [16, 16, 8]
        losses = [b["train_loss"] for b in batches]
        assert all(isinstance(v, float) and np.isfinite(v) for v in losses)
        mean = np.average(losses, weights=[16, 16, 8])
        assert row["train_loss"] == pytest.approx(mean)
        assert row["train_batch_count"] == 3


def test_validation_losses_are_recorded(data):
    X, y = data
    clf = tiny(max_epochs=2, early_stopping=5, validation_fraction=0.25).fit(X, y)
    for row in clf.net_.history:
        valid = [b["valid_loss"] for b in row["batches"] if "valid_loss" in b]
        assert len(valid) == row["valid_batch_count"] == 1
        assert np.isfinite(valid).all()
        assert row["valid_loss"] == pytest.approx(valid[0])


def test_onecycle_schedule_rises_then_falls(data):
    X, y = data
    clf = tiny(max_epochs=6, lr=0.1, lr_schedule="onecycle", batch_size=8).fit(X, y)
    event_lr = [b["event_lr"] for row in clf.net_.history for b in row["batches"]]
    assert len(event_lr) == 6 * 5  # stepped once per batch
    peak = int(np.argmax(event_lr))
    assert event_lr[peak] == pytest.approx(0.1, rel=1e-3)
    assert 0 < peak < len(event_lr) - 1
    assert event_lr[0] < 0.01 and event_lr[-1] < 1e-4
    # momentum is not cycled: Adam's beta1 stays the momentum parameter
    assert clf.net_.optimizer_.param_groups[0]["betas"][0] == 0.9


def test_onecycle_with_drop_last_and_early_stopping():
    X, y = make_lesions(n_samples=41)
    # 41 images, batch 8: a last batch of 1 is dropped (BatchNorm needs 2)
    clf = tiny(freeze="none", max_epochs=2, batch_size=8, lr_schedule="onecycle")
    clf.fit(X, y)
    assert clf.n_epochs_ == 2
    clf = tiny(max_epochs=3, lr_schedule="onecycle", early_stopping=3)
    assert clf.fit(X, y).n_epochs_ == 3


def test_compile_gives_the_same_model(data):
    X, y = data
    params = dict(freeze="none", max_epochs=2, lr=1e-3, batch_size=16)
    eager = tiny(**params).fit(X, y)
    # The "eager" backend runs TorchDynamo's graph capture without code
    # generation: the code path of compile=True, fast and exact.
    compiled = tiny(compile=True, compile__backend="eager", **params).fit(X, y)
    module = compiled.net_.module_
    assert isinstance(module, classifier_module.ImageClassifierModule)
    assert module._compiled_call_impl is not None
    np.testing.assert_allclose(
        compiled.history_["train_loss"], eager.history_["train_loss"], rtol=1e-4
    )
    expected = eager.predict_proba(X)
    np.testing.assert_allclose(compiled.predict_proba(X), expected, atol=1e-5)
    loaded = pickle.loads(pickle.dumps(compiled))
    assert loaded.net_.module_._compiled_call_impl is None  # runs eagerly
    np.testing.assert_allclose(loaded.predict_proba(X), expected, atol=1e-5)


def test_compile_is_skipped_for_the_frozen_feature_cache(data):
    X, y = data
    clf = tiny(compile=True, compile__backend="eager").fit(X, y)
    assert clf.net_.module_._compiled_call_impl is None


def test_grid_search_runs_the_frozen_backbone_once_per_image(
    data, tmp_path, monkeypatch
):
    X, y = data
    seen = []  # images through the backbone, in fit and in predict
    original = classifier_module.ImageClassifierModule.features

    def counting(self, x):
        seen.append(len(x))
        return original(self, x)

    monkeypatch.setattr(classifier_module.ImageClassifierModule, "features", counting)
    grid = {"dropout": [0.0, 0.2], "lr": [0.1, 0.01], "head": [(), (8,)]}

    def search(memory):
        seen.clear()
        s = GridSearchCV(tiny(memory=memory), grid, cv=StratifiedKFold(2)).fit(X, y)
        return sum(seen), s.cv_results_["mean_test_score"]

    # 8 candidates x 2 folds: 16 fits on 20 images and 16 scorings of the
    # other 20, then the refit on all 40
    n_uncached, scores = search(None)
    assert n_uncached == 16 * (20 + 20) + 40
    # the per-image cache: each of the 40 images once, fits and scorings alike
    n_cached, cached_scores = search(Memory(tmp_path, verbose=0))
    assert n_cached == len(X)
    np.testing.assert_allclose(cached_scores, scores, rtol=1e-6)
    assert search(Memory(tmp_path, verbose=0))[0] == 0  # all cached now


# --------------------------------------------------------------------------
# The per-GPU lock
# --------------------------------------------------------------------------


def test_cpu_is_never_locked(tmp_path, monkeypatch):
    assert device_lock_key(torch.device("cpu")) is None
    assert device_lock_key("meta") is None
    monkeypatch.setattr(lock_module, "file_lock", None)  # would fail if used
    with device_lock("cpu") as waited:
        assert waited == 0.0


def test_cuda_key_names_the_physical_gpu(monkeypatch):
    props = {0: SimpleNamespace(uuid="GPU-abc"), 1: SimpleNamespace()}
    monkeypatch.setattr(torch.cuda, "get_device_properties", props.__getitem__)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    assert device_lock_key(torch.device("cuda")) == "cuda-GPU-abc"
    assert device_lock_key(torch.device("cuda:1")) == "cuda-1"  # no UUID
    with device_lock(torch.device("cuda"), enabled=False) as waited:
        assert waited == 0.0


def test_file_lock_is_reentrant_and_excludes_threads(tmp_path):
    intervals = []

    def hold():
        with file_lock("test", directory=tmp_path):
            with file_lock("test", directory=tmp_path):  # no deadlock
                start = time.perf_counter()
                time.sleep(0.05)
                intervals.append((start, time.perf_counter()))

    threads = [threading.Thread(target=hold) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    _assert_disjoint(intervals, 4)
    assert (tmp_path / "skmedimg-test.lock").exists()


def _assert_disjoint(intervals, n):
    assert len(intervals) == n
    intervals = sorted(intervals)
    for (_, end), (start, _) in zip(intervals, intervals[1:], strict=False):
        assert end <= start


def test_file_lock_excludes_processes(tmp_path):
    # Both processes import first, then meet (ready files) and ask for the
    # lock at the same moment: one holds it, the other waits.
    script = textwrap.dedent(
        f"""
        import pathlib, sys, time
        from skmedimg.neural._device_lock import file_lock
        d = pathlib.Path({str(tmp_path)!r})
        (d / f"ready-{{sys.argv[1]}}").touch()
        while len(list(d.glob("ready-*"))) < 2:
            time.sleep(0.01)
        with file_lock("cuda-fake", directory=d) as waited:
            start = time.time()
            time.sleep(0.4)
            print(start, time.time(), waited)
        """
    )
    root = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ, PYTHONPATH=root)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(i)],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        for i in range(2)
    ]
    rows = [p.communicate(timeout=120)[0].split() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    intervals = [(float(r[0]), float(r[1])) for r in rows]
    _assert_disjoint(intervals, 2)
    assert max(float(r[2]) for r in rows) > 0.2  # one of them waited


# Module-level: clone() deep-copies the callbacks, not this list.
_TRAIN_EVENTS = []


class _Events(Callback):
    def on_train_begin(self, net, **kwargs):
        _TRAIN_EVENTS.append(("begin", threading.get_ident(), time.perf_counter()))

    def on_train_end(self, net, **kwargs):
        _TRAIN_EVENTS.append(("end", threading.get_ident(), time.perf_counter()))


@pytest.fixture
def forced_lock(monkeypatch, tmp_path):
    """Lock the CPU as if it were a GPU, recording what happens in order."""
    events = []
    monkeypatch.setenv(lock_module.LOCK_DIR_ENV, str(tmp_path))
    monkeypatch.setattr(lock_module, "device_lock_key", lambda device: "cuda-fake")
    real_lock, real_read = classifier_module.device_lock, data_module.read_images

    def recording_lock(device, enabled=True):
        events.append(("lock", enabled))
        return real_lock(device, enabled)

    def recording_read(*args, **kwargs):
        events.append(("read", lock_module._lock_for(_lock_path(tmp_path))._depth))
        return real_read(*args, **kwargs)

    monkeypatch.setattr(classifier_module, "device_lock", recording_lock)  # fit
    monkeypatch.setattr(runner_module, "device_lock", recording_lock)  # predict
    monkeypatch.setattr(data_module, "read_images", recording_read)  # fit, predict
    return events, tmp_path


def _lock_path(directory):
    return os.path.join(str(directory), "skmedimg-cuda-fake.lock")


def test_a_failure_on_the_gpu_frees_its_tensors_before_the_lock_is_released(
    tmp_path, monkeypatch
):
    # The traceback of a failure (out of memory) holds the failed batch's
    # tensors: they must be freed before empty_cache runs, and a CUDA error
    # of the clean-up itself must not hide the original one.
    import weakref

    monkeypatch.setenv(lock_module.LOCK_DIR_ENV, str(tmp_path))
    seen = []

    class Activations:
        pass

    def work():
        activations = Activations()
        seen.append(weakref.ref(activations))
        raise MemoryError("CUDA out of memory")

    def empty_cache():
        seen.append(seen[0]() is None)

    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: None)
    monkeypatch.setattr(torch.cuda, "empty_cache", empty_cache)
    cuda = torch.device("cuda", 0)
    with pytest.raises(MemoryError, match="out of memory"):
        with lock_module._held("cuda-fake", cuda):
            work()
    assert seen[1] is True  # freed when the cache was emptied

    def broken_synchronize(device=None):
        raise RuntimeError("CUDA error: device-side assert triggered")

    monkeypatch.setattr(torch.cuda, "synchronize", broken_synchronize)
    with pytest.raises(ValueError, match="the original"):
        with lock_module._held("cuda-fake", cuda):
            raise ValueError("the original")
    with pytest.raises(RuntimeError, match="device-side assert"):
        with lock_module._held("cuda-fake", cuda):
            pass  # nothing else failed: the clean-up's error is the error
    # the lock was released every time
    assert lock_module._lock_for(_lock_path(tmp_path))._depth == 0


def test_fit_and_predict_hold_the_lock_around_device_work_only(data, forced_lock):
    X, y = data
    events, directory = forced_lock
    held = []

    class Check(Callback):
        def on_epoch_begin(self, net, **kwargs):
            held.append(lock_module._lock_for(_lock_path(directory))._depth)

    clf = tiny(max_epochs=2, callbacks=[Check()]).fit(X, y)
    assert events == [("read", 0), ("lock", True)]  # decoded before locking
    assert held == [1, 1]
    clf.predict(X[:3])
    assert events[2:] == [("read", 0), ("lock", True)]
    assert lock_module._lock_for(_lock_path(directory))._depth == 0
    tiny(max_epochs=1, lock_gpu=False).fit(X, y)
    assert events[-1] == ("lock", False)


def test_parallel_grid_search_takes_turns_on_the_device(data, forced_lock):
    X, y = data
    _TRAIN_EVENTS.clear()
    grid = {"lr": [0.1, 0.01], "dropout": [0.0, 0.5]}
    search = GridSearchCV(
        tiny(freeze="none", max_epochs=1, callbacks=[_Events()]),
        grid,
        cv=StratifiedKFold(2),
        n_jobs=2,
    )
    with parallel_backend("threading", n_jobs=2):
        search.fit(X, y)
    threads = {ident for _, ident, _ in _TRAIN_EVENTS}
    assert len(threads) >= 2  # the workers really ran in parallel threads
    begins = [t for name, _, t in _TRAIN_EVENTS if name == "begin"]
    ends = [t for name, _, t in _TRAIN_EVENTS if name == "end"]
    _assert_disjoint(list(zip(sorted(begins), sorted(ends), strict=True)), 9)


def test_head_takes_the_width_after_the_pre_logits_layers():
    # MobileNetV3 pools 576 channels, then a conv_head makes 1024 features.
    X, y = make_lesions(n_samples=16)
    clf = CNNClassifier(
        "mobilenetv3_small_050",
        pretrained=False,
        image_size=32,
        max_epochs=1,
        batch_size=8,
        device="cpu",
        random_state=0,
    ).fit(X, y)
    assert clf.net_.module_.head[-1].in_features == 1024
    assert clf.predict_proba(X).shape == (16, 2)


@pytest.mark.gpu
@pytest.mark.parametrize("shuffle", [False, True])
def test_pinned_side_stream_copies_give_the_same_batches(shuffle):
    X = torch.randint(0, 255, (300, 8, 8, 3), dtype=torch.uint8)
    y = torch.arange(300)

    def batches(device):
        gen = torch.Generator().manual_seed(0)
        it = TensorBatchIterator(
            TensorDataset(X, y), 64, shuffle=shuffle, generator=gen, device=device
        )
        return [(Xb.cpu(), yb.cpu()) for Xb, yb in it]

    for (a, ya), (b, yb) in zip(batches(None), batches("cuda"), strict=True):
        assert torch.equal(a, b) and torch.equal(ya, yb)


@pytest.mark.gpu
def test_fit_streams_from_host_memory_when_the_data_does_not_fit(data, monkeypatch):
    # Force the path of a data set too large for the GPU: batches are
    # gathered into pinned memory and copied on a side stream.
    monkeypatch.setattr(classifier_module, "place_on_device", lambda X, device: X)
    X, y = data
    on_host = tiny(freeze="none", max_epochs=2, device="cuda", precision="fp32")
    on_host.fit(X, y)
    monkeypatch.undo()
    on_device = tiny(freeze="none", max_epochs=2, device="cuda", precision="fp32")
    on_device.fit(X, y)
    np.testing.assert_allclose(
        on_host.history_["train_loss"], on_device.history_["train_loss"], rtol=1e-3
    )


@pytest.mark.gpu
@pytest.mark.parametrize("resident", [True, False], ids=["on-device", "streamed"])
def test_gray_images_train_on_cuda_as_their_rgb_repeat(data, monkeypatch, resident):
    # One-channel batches, on the device or copied from pinned host memory,
    # repeated to three channels there: the same training as RGB batches.
    if not resident:
        monkeypatch.setattr(classifier_module, "place_on_device", lambda X, device: X)
    X, y = data
    params = dict(freeze="none", augment="medium", max_epochs=2, device="cuda")
    rgb = tiny(**params).fit(X, y)
    gray = tiny(color="gray", **params).fit(X, y)
    np.testing.assert_allclose(
        gray.history_["train_loss"], rgb.history_["train_loss"], rtol=1e-3
    )
    np.testing.assert_allclose(gray.predict_proba(X), rgb.predict_proba(X), atol=1e-3)


def test_mobilenet_head_survives_save_and_load(tmp_path):
    from skmedimg.neural import load_model, save_model

    X, y = make_lesions(n_samples=16)
    clf = CNNClassifier(
        "mobilenetv3_small_050",
        pretrained=False,
        image_size=32,
        max_epochs=1,
        batch_size=8,
        device="cpu",
        random_state=0,
    ).fit(X, y)
    loaded = load_model(save_model(clf, tmp_path / "mobilenet.safetensors"))
    np.testing.assert_allclose(loaded.predict_proba(X), clf.predict_proba(X), atol=1e-6)


def _efficientnet(**params):
    """A small CNNClassifier on the CPU, batches of 8, seeded."""
    defaults = dict(pretrained=False, image_size=32, batch_size=8, device="cpu")
    return CNNClassifier("test_efficientnet", random_state=0, **{**defaults, **params})


def test_callbacks_are_pickled_with_the_device_dependent_attributes():
    # After a GPU fit, the learning-rate scheduler holds the optimizer and its
    # state tensors on the GPU. They must go through skorch's map_location
    # unpickling, like the module, or the model does not load on a CPU.
    import pickle

    X, y = make_lesions(n_samples=16)
    clf = _efficientnet(max_epochs=2, optimizer="adamw", lr_schedule="cosine").fit(X, y)
    state = clf.net_.__getstate__()
    for name in ("module", "module_", "criterion", "callbacks_"):
        assert name not in state, name
    # The weights (the module was given to skorch initialised) are pickled
    # once, not twice: once, plus AdamW's two moments, is 3x their size.
    n_bytes = sum(
        t.numel() * t.element_size() for t in clf.net_.module_.state_dict().values()
    )
    assert len(pickle.dumps(clf)) < 3.5 * n_bytes
    # the accuracy counters are plain numbers between epochs
    assert dict(clf.net_.callbacks_)["metrics"].correct_ == {True: None, False: None}
    restored = pickle.loads(pickle.dumps(clf))
    scheduler = dict(restored.net_.callbacks_)["lr_scheduler"].lr_scheduler_
    assert scheduler.last_epoch == 2
    assert len(scheduler.optimizer.state) > 0
    np.testing.assert_allclose(restored.predict_proba(X), clf.predict_proba(X))


class _Gradients(Callback):
    """Record the head's gradient at every on_grad_computed."""

    def on_train_begin(self, net, **kwargs):
        self.seen_ = []

    def on_grad_computed(self, net, named_parameters, **kwargs):
        grads = {n: p.grad.clone() for n, p in named_parameters if "head" in n}
        self.seen_.append(grads)


def test_scaled_float16_steps_tell_callbacks_the_unscaled_gradients(monkeypatch):
    # fp16 training (CUDA only) steps through a gradient scaler; callbacks
    # such as gradient clipping must still hear of every step, with the
    # gradients unscaled. A CPU scaler stands in for the CUDA one.
    original = classifier_module._ImageNet.initialize

    def with_cpu_scaler(self):
        original(self)
        self.grad_scaler_ = torch.amp.GradScaler("cpu", init_scale=2.0**12)
        return self

    X, y = make_lesions(n_samples=16)
    params = dict(freeze="none", max_epochs=1, batch_size=8, lr=1e-3)
    plain = tiny(callbacks=[_Gradients()], **params).fit(X, y)
    monkeypatch.setattr(classifier_module._ImageNet, "initialize", with_cpu_scaler)
    scaled = tiny(callbacks=[_Gradients()], **params).fit(X, y)
    assert scaled.net_.grad_scaler_.is_enabled()
    seen, expected = scaled.callbacks[0].seen_, plain.callbacks[0].seen_
    assert len(seen) == len(expected) == 2  # one per batch
    for name, grad in expected[0].items():  # the first step: same weights
        torch.testing.assert_close(seen[0][name], grad)


def test_augmentation_samples_in_float32_under_bf16_autocast():
    X, y = make_lesions(n_samples=16)
    clf = tiny(freeze="none", augment="medium", max_epochs=1).fit(X, y)
    module = clf.net_.module_.train()
    x = torch.from_numpy(np.stack([X[:4]] * 3, axis=-1)).to(torch.uint8)
    torch.manual_seed(0)
    expected = module.preprocess(x)
    torch.manual_seed(0)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        augmented = module.preprocess(x)
    torch.testing.assert_close(augmented, expected, rtol=0, atol=0)


def test_user_callbacks_are_pickled_once_with_the_net():
    # A user's scheduler holds the optimizer and its state after fit (on the
    # GPU after a GPU fit): pickled with the estimator's parameters, plainly,
    # it would be written twice and would not load without CUDA.
    import pickle

    from skorch.callbacks import LRScheduler

    X, y = make_lesions(n_samples=16)
    clf = _efficientnet(
        max_epochs=2,
        optimizer="adamw",
        callbacks=[("sched", LRScheduler("StepLR", step_size=1)), _ModeWatch()],
    ).fit(X, y)
    state = dict(clf.__getstate__())
    state.pop("net_")
    assert len(pickle.dumps(state)) < 20_000  # parameters only, no tensors
    assert isinstance(clf.callbacks, list)  # pickling changed nothing
    restored = pickle.loads(pickle.dumps(clf))
    fitted = dict(restored.net_.callbacks_)
    name, scheduler = restored.callbacks[0]
    assert name == "sched" and scheduler is fitted["sched"]
    assert len(scheduler.lr_scheduler_.optimizer.state) > 0
    assert restored.callbacks[1] is fitted["user_1"]
    assert len(restored.callbacks[1].seen_) == len(clf.callbacks[1].seen_) > 0
    np.testing.assert_allclose(restored.predict_proba(X), clf.predict_proba(X))
    # an unfitted estimator pickles its callbacks as they are
    assert isinstance(pickle.loads(pickle.dumps(clone(clf))).callbacks, list)


def test_unpickled_gpu_model_reports_the_cpu_and_drops_autocast():
    import pickle

    X, y = make_lesions(n_samples=16)
    clf = _efficientnet(max_epochs=1).fit(X, y)
    expected = clf.predict_proba(X)
    # As if fitted on a GPU: skorch's unpickling (no CUDA here) keeps the net on
    # the CPU, and the estimator must say so and stop asking for bf16.
    clf.device_ = torch.device("cuda", 0)
    clf.net_.amp_dtype = torch.bfloat16
    back = pickle.loads(pickle.dumps(clf))
    assert back.device_ == torch.device("cpu")
    assert back.net_.amp_dtype is None
    np.testing.assert_allclose(back.predict_proba(X), expected, atol=1e-6)


def test_unpickled_fp16_feature_extractor_transforms_on_the_cpu():
    import pickle

    from skmedimg.neural import CNNFeatureExtractor

    X, _ = make_lesions(n_samples=8)
    extractor = CNNFeatureExtractor(
        "test_efficientnet", pretrained=False, image_size=32, device="cpu"
    ).fit(X)
    expected = extractor.transform(X)
    # As if fitted with precision="fp16" on a GPU; unpickled without CUDA.
    extractor.precision = "fp16"
    extractor.device_ = torch.device("cuda", 0)
    with pytest.warns(UserWarning, match="loaded on the CPU"):
        back = pickle.loads(pickle.dumps(extractor))
    assert back.device_ == torch.device("cpu")
    np.testing.assert_allclose(back.transform(X), expected, atol=1e-6)


# --------------------------------------------------------------------------
# Training mode is set when it changes, not before every batch
# --------------------------------------------------------------------------


class _ModeWatch(Callback):
    """Record, at each forward pass, the phase and the modes of the module.

    For the backbone's BatchNorm layers, the set of ``training`` flags of the
    frozen ones and of the others.
    """

    def on_train_begin(self, net, **kwargs):
        self.seen_ = []
        self.phase_ = None
        module = net.module_
        frozen = [module.backbone.get_submodule(name) for name in module.frozen]
        frozen_ids = {id(m) for f in frozen for m in f.modules()}
        norms = [
            m
            for m in module.backbone.modules()
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
        ]

        def hook(module, args):
            modes = {
                kind: {m.training for m in norms if (id(m) in frozen_ids) == kind}
                for kind in (True, False)
            }
            self.seen_.append((self.phase_, module.training, modes))

        self.handle_ = module.register_forward_pre_hook(hook)

    def on_batch_begin(self, net, batch, training, **kwargs):
        self.phase_ = training

    def on_train_end(self, net, **kwargs):
        self.handle_.remove()


@pytest.mark.parametrize("early_stopping", [5, None])
@pytest.mark.parametrize("freeze", ["none", "backbone", 1])
def test_module_mode_is_set_once_per_phase(data, monkeypatch, freeze, early_stopping):
    X, y = data
    calls = []
    original = classifier_module.ImageClassifierModule.train

    def counting_train(self, mode=True):
        calls.append(mode)
        return original(self, mode)

    monkeypatch.setattr(
        classifier_module.ImageClassifierModule, "train", counting_train
    )
    watch = _ModeWatch()
    clf = tiny(
        freeze=freeze,
        max_epochs=3,
        early_stopping=early_stopping,
        batch_size=8,
        callbacks=[watch],
    ).fit(X, y)
    n_batches = sum(len(row["batches"]) for row in clf.net_.history)
    assert n_batches >= 12
    assert len(watch.seen_) == n_batches
    # one switch into training and one back to eval per epoch, at most
    assert len(calls) <= 2 * 3 + 2
    for training, module_training, modes in watch.seen_:
        assert module_training == training
        assert modes[True] <= {False}  # frozen statistics stay fixed
        assert modes[False] <= {training}  # the others follow the phase
        if freeze == 1:
            assert modes[True] and modes[False]  # both kinds were checked
