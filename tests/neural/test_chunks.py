"""Inference decodes a chunk of images at a time and names every bad item."""

import io

import numpy as np
import pytest
from PIL import Image

import skmedimg.neural._data as data_module
import skmedimg.neural._runner as runner_module
from skmedimg.neural._data import decode_chunks
from skmedimg.utils import ImageReadError, check_images
from tests.neural.test_estimator_contract import make_lesions, tiny
from tests.neural.test_features import extractor


@pytest.fixture(scope="module")
def data():
    return make_lesions(n_samples=24)


@pytest.fixture(scope="module")
def fitted(data):
    X, y = data
    return tiny(batch_size=4).fit(X, y)


@pytest.fixture
def reads(monkeypatch):
    """Number of images of each read_images call made while predicting."""
    sizes = []
    real = data_module.read_images

    def recording(items, **kwargs):
        sizes.append(len(items))
        return real(items, **kwargs)

    monkeypatch.setattr(data_module, "read_images", recording)
    return sizes


def _files(tmp_path, X, bad=()):
    """Write X as PNG files; the indices in ``bad`` get a broken file."""
    paths = []
    for i, image in enumerate(X):
        path = tmp_path / f"img{i:02d}.png"
        if i in bad:
            path.write_bytes(b"\x89PNG\r\n\x1a\n this is not the rest of a PNG")
        else:
            Image.fromarray(image).save(path)
        paths.append(str(path))
    return paths


def test_predict_decodes_a_chunk_at_a_time(data, fitted, reads, monkeypatch):
    X, _ = data
    whole = fitted.predict_proba(X)
    assert reads == [len(X)]  # 4 * 16 images per chunk by default
    reads.clear()
    monkeypatch.setattr(runner_module, "CHUNK_BATCHES", 2)
    chunked = fitted.predict_proba(X[:19])
    assert reads == [8, 8, 3]
    np.testing.assert_allclose(chunked, whole[:19], rtol=1e-5, atol=1e-6)


def test_predict_chunks_read_files_and_the_frozen_cache(data, tmp_path, monkeypatch):
    X, y = data
    (tmp_path / "images").mkdir()
    paths = _files(tmp_path / "images", X)
    clf = tiny(batch_size=4, memory=tmp_path / "cache").fit(X, y)
    expected = clf.predict_proba(X)  # every feature cached by now
    monkeypatch.setattr(runner_module, "CHUNK_BATCHES", 1)
    np.testing.assert_allclose(clf.predict_proba(paths), expected, atol=1e-6)


def test_predict_names_every_unreadable_file(data, fitted, tmp_path, monkeypatch):
    X, _ = data
    monkeypatch.setattr(runner_module, "CHUNK_BATCHES", 1)  # 4 a chunk
    paths = _files(tmp_path, X[:12], bad={1, 9})
    with pytest.raises(ImageReadError) as info:
        fitted.predict(paths)
    assert [f[0] for f in info.value.failures] == [1, 9]
    assert [f[1] for f in info.value.failures] == [paths[1], paths[9]]
    assert "2 of 12 image(s)" in str(info.value)


def test_in_memory_items_are_named_by_their_index_in_the_input(data, fitted):
    X, _ = data
    buffer = io.BytesIO()
    Image.fromarray(X[0]).save(buffer, format="PNG")
    truncated = Image.open(io.BytesIO(buffer.getvalue()[:60]))  # fails on load
    items = [Image.fromarray(image) for image in X[:9]]
    items[6] = truncated
    with pytest.raises(ImageReadError, match=r"item 6 \(PIL image\)") as info:
        fitted.predict(items)  # batch_size 4: item 6 is the third of chunk 2
    assert [f[0] for f in info.value.failures] == [6]


def test_decoding_goes_on_after_a_failure_but_yields_nothing_more():
    X = check_images(np.zeros((10, 4, 4), np.uint8))
    decoded = []

    def decode(X, part):
        decoded.append(part.tolist())
        if 3 in part or 8 in part:
            bad = [k for k, i in enumerate(part) if i in (3, 8)]
            raise ImageReadError([(k, f"item {k}", "broken") for k in bad])
        return part

    yielded = []
    with pytest.raises(ImageReadError) as info:
        for start, part in decode_chunks(X, np.arange(10), 2, decode):
            yielded.append((start, part.tolist()))
    assert yielded == [(0, [0, 1])]
    assert decoded == [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9]]
    assert [(f[0], f[1]) for f in info.value.failures] == [
        (3, "item 3 (ndarray)"),
        (8, "item 8 (ndarray)"),
    ]


def test_feature_extractor_names_bad_files_across_chunks(tmp_path, monkeypatch):
    X, _ = make_lesions(n_samples=12)
    est = extractor(batch_size=2).fit(X)
    monkeypatch.setattr(runner_module, "CHUNK_BATCHES", 1)
    paths = _files(tmp_path, X, bad={0, 11})
    with pytest.raises(ImageReadError) as info:
        est.transform(paths)
    assert [f[0] for f in info.value.failures] == [0, 11]
    good = [p for i, p in enumerate(paths) if i not in (0, 11)]
    np.testing.assert_allclose(
        est.transform(good), est.transform(np.delete(X, [0, 11], axis=0)), atol=1e-5
    )
