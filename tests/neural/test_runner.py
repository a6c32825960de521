"""One backbone runner: the same chunk, lock and channels-last rules everywhere."""

import numpy as np
import pytest
import torch
from PIL import Image

import skmedimg.neural._device_lock as lock_module
import skmedimg.neural._runner as runner_module
from skmedimg.inspection import gradcam
from skmedimg.neural import BackboneRunner
from skmedimg.neural._module import uses_channels_last
from skmedimg.utils import ImageReadError, check_images
from tests.neural.test_chunks import reads  # noqa: F401, F811  (a fixture)
from tests.neural.test_estimator_contract import make_lesions, tiny
from tests.neural.test_features import extractor


@pytest.fixture(scope="module")
def data():
    return make_lesions(n_samples=20)


@pytest.fixture(scope="module")
def fitted(data):
    X, y = data
    return tiny(batch_size=4, max_epochs=1).fit(X, y)


def test_every_reader_decodes_chunks_of_the_same_size(
    data, fitted, reads, monkeypatch  # noqa: F811
):
    # predict_proba, transform and Grad-CAM read CHUNK_BATCHES batches at a
    # time (they had 16, 8 and 1 before sharing the runner).
    X, _ = data
    monkeypatch.setattr(runner_module, "CHUNK_BATCHES", 2)
    fitted.predict_proba(X[:19])
    assert reads == [8, 8, 3]
    reads.clear()
    extractor(batch_size=4).fit(X).transform(X[:19])
    assert reads == [8, 8, 3]
    reads.clear()
    gradcam(fitted, X[:19], target=1, batch_size=4, layer="layer1")
    assert reads == [8, 8, 3]


def test_chunked_outputs_equal_one_pass(data, fitted, monkeypatch):
    X, y = data
    whole = fitted.predict_proba(X)
    maps = gradcam(fitted, X, target=y, layer="layer1")
    features = extractor(batch_size=4).fit(X)
    rows = features.transform(X)
    monkeypatch.setattr(runner_module, "CHUNK_BATCHES", 1)
    np.testing.assert_allclose(fitted.predict_proba(X), whole, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        gradcam(fitted, X, target=y, layer="layer1", batch_size=3), maps, atol=1e-5
    )
    np.testing.assert_allclose(features.transform(X), rows, rtol=1e-5, atol=1e-5)


def test_gradcam_names_every_unreadable_file(data, fitted, tmp_path, monkeypatch):
    X, _ = data
    paths = []
    for i, image in enumerate(X[:10]):
        path = tmp_path / f"img{i}.png"
        if i in (1, 8):
            path.write_bytes(b"not a PNG")
        else:
            Image.fromarray(image).save(path)
        paths.append(str(path))
    monkeypatch.setattr(runner_module, "CHUNK_BATCHES", 1)
    with pytest.raises(ImageReadError) as info:
        gradcam(fitted, paths, target=1, batch_size=4, layer="layer1")
    assert [f[0] for f in info.value.failures] == [1, 8]  # in chunks 1 and 3


@pytest.fixture
def lock_calls(monkeypatch, tmp_path):
    """Whether the device lock is taken, with a CPU locked as if a GPU."""
    monkeypatch.setenv(lock_module.LOCK_DIR_ENV, str(tmp_path))
    monkeypatch.setattr(lock_module, "device_lock_key", lambda device: "cuda-fake")
    calls = []
    real = runner_module.device_lock

    def recording(device, enabled=True):
        calls.append(enabled)
        return real(device, enabled)

    monkeypatch.setattr(runner_module, "device_lock", recording)
    return calls


def test_the_lock_rule(data, lock_calls):
    X, y = data
    tiny(batch_size=4, max_epochs=1).fit(X, y)  # fit holds its own lock
    assert lock_calls == []
    clf = tiny(batch_size=4, max_epochs=1, lock_gpu=False).fit(X, y)
    clf.predict(X)
    assert lock_calls == []  # lock_gpu=False: never asked for
    clf.set_params(lock_gpu=True).predict(X)
    assert lock_calls == [True]  # one chunk: one turn on the device
    extractor(batch_size=4).fit(X).transform(X)
    assert lock_calls == [True, True]


def test_runner_run_and_stream_agree():
    X = check_images(np.arange(7 * 4 * 4, dtype=np.uint8).reshape(7, 4, 4, 1))
    runner = BackboneRunner("cpu", batch_size=2)

    def decode(X, part):
        return torch.from_numpy(np.ascontiguousarray(X[part]))

    def fn(batch):
        return batch.reshape(len(batch), -1).float().sum(1, keepdim=True)

    streamed = runner.stream(X, np.arange(7), decode, fn, 1)
    whole = runner.run(torch.from_numpy(X), fn).numpy()
    np.testing.assert_array_equal(streamed, whole)
    np.testing.assert_array_equal(whole[:, 0], X.reshape(7, -1).sum(1))
    assert runner.stream(X, np.arange(0), decode, fn, 1).shape == (0, 1)


def test_inference_mode_only_where_nothing_trains_on_the_outputs():
    images = torch.zeros((3, 2))
    frozen = BackboneRunner("cpu", inference=False).run(images, lambda b: b + 1)
    assert not frozen.is_inference()
    assert BackboneRunner("cpu").run(images, lambda b: b + 1).is_inference()
    with BackboneRunner("cpu", grad=True).computing():
        assert torch.is_grad_enabled() and not torch.is_inference_mode_enabled()


def test_the_channels_last_rule(data, fitted):
    X, _ = data
    assert uses_channels_last("cpu") and not uses_channels_last("meta")
    est = extractor().fit(X)
    assert est.module_.channels_last == fitted.net_.module_.channels_last
    assert est.module_.channels_last == uses_channels_last(est.device_)
