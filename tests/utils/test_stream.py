"""The streaming reader: chunks, global failure indices, bounded-memory fit."""

import numpy as np
import pytest
from PIL import Image

from skmedimg.utils import (
    ImageCache,
    ImageChunk,
    ImageReadError,
    iter_image_chunks,
    read_images,
)


def _smooth(value, size=(48, 64)):
    """A smooth colour image (JPEG decoders agree closely on it)."""
    rows, cols = np.mgrid[0 : size[0], 0 : size[1]]
    image = np.stack(
        [
            (rows * 255 // size[0] + value) % 256,
            (cols * 255 // size[1]) % 256,
            np.full(size, value),
        ],
        axis=-1,
    )
    return image.astype(np.uint8)


def _files(tmp_path, n, bad=(), ext="png"):
    """``n`` image files; the indices in ``bad`` are broken ones."""
    paths = []
    for i in range(n):
        path = tmp_path / f"img{i:02d}.{ext}"
        if i in bad:
            path.write_bytes(b"\x89PNG\r\n\x1a\n not the rest of an image")
        else:
            Image.fromarray(_smooth(10 * i)).save(path)
        paths.append(str(path))
    return paths


@pytest.mark.parametrize("prefetch", [0, 1, 2])
@pytest.mark.parametrize("chunk_size", [1, 3, 4, 10, 11])
def test_chunks_cover_the_input_in_order(tmp_path, chunk_size, prefetch):
    paths = _files(tmp_path, 10)
    chunks = list(
        iter_image_chunks(
            paths, image_size=16, chunk_size=chunk_size, prefetch=prefetch
        )
    )
    assert all(isinstance(c, ImageChunk) for c in chunks)
    assert [c.start for c in chunks] == list(range(0, 10, chunk_size))
    assert [len(c.images) for c in chunks] == [
        min(chunk_size, 10 - s) for s in range(0, 10, chunk_size)
    ]
    np.testing.assert_array_equal(
        np.concatenate([c.images for c in chunks]),
        read_images(paths, image_size=16, color="rgb"),
    )
    np.testing.assert_array_equal(
        np.concatenate([c.indices for c in chunks]), np.arange(10)
    )


def test_failures_carry_their_global_index_from_every_chunk(tmp_path):
    bad = {0, 4, 5, 9}
    paths = _files(tmp_path, 10, bad=bad)
    X = paths[:3] + [np.full((5, 5), 9, dtype=np.uint8)] + paths[3:]  # 11 items
    bad_in_X = sorted(i if i < 3 else i + 1 for i in bad)
    chunks = list(iter_image_chunks(X, image_size=8, chunk_size=3))
    failures = [f for c in chunks for f in c.failures]
    assert [f[0] for f in failures] == bad_in_X
    assert [f[1] for f in failures] == [X[i] for i in bad_in_X]
    assert all("not a recognised image format" in f[2] for f in failures)
    good = np.concatenate([c.indices for c in chunks])
    assert sorted(good.tolist() + bad_in_X) == list(range(11))
    for c in chunks:  # the good images of a chunk, in order
        assert len(c.images) == len(c.indices)
    # an all-bad chunk yields an empty, well-shaped array
    (chunk,) = iter_image_chunks(X, image_size=8, chunk_size=2, indices=[5, 6])
    assert chunk.images.shape == (0, 8, 8, 3) and len(chunk.failures) == 2


def test_in_memory_items_failing_validation_are_named_by_index():
    X = [np.zeros((6, 6)), np.full((6, 6), np.nan), np.zeros((6, 6))]
    chunks = list(iter_image_chunks(X, image_size=4, chunk_size=2))
    assert chunks[0].failures == [(1, "item 1 (ndarray)", "contains NaN or infinite values")]
    assert chunks[0].indices.tolist() == [0] and chunks[1].indices.tolist() == [2]


def test_indices_select_and_order(tmp_path):
    paths = _files(tmp_path, 6)
    chunks = list(
        iter_image_chunks(paths, image_size=8, chunk_size=2, indices=[5, 1, 3])
    )
    assert [c.start for c in chunks] == [0, 2]
    assert np.concatenate([c.indices for c in chunks]).tolist() == [5, 1, 3]
    expected = read_images([paths[5], paths[1], paths[3]], image_size=8, color="rgb")
    np.testing.assert_array_equal(np.concatenate([c.images for c in chunks]), expected)


def test_arrays_without_a_size_and_whole_input_errors():
    X = np.zeros((5, 7, 9), dtype=np.uint8)
    chunks = list(iter_image_chunks(X, image_size=None, color="gray", chunk_size=2))
    assert [c.images.shape for c in chunks] == [(2, 7, 9, 1)] * 2 + [(1, 7, 9, 1)]
    mixed = [np.zeros((4, 4)), np.zeros((6, 5))]
    (chunk,) = iter_image_chunks(mixed, image_size=None, chunk_size=2)
    assert isinstance(chunk.images, list) and chunk.images[1].shape == (6, 5, 3)
    with pytest.raises(ImageReadError, match="empty input"):
        next(iter_image_chunks([], image_size=8))
    with pytest.raises(ValueError, match="chunk_size"):
        next(iter_image_chunks(X, image_size=8, chunk_size=0))
    with pytest.raises(ValueError, match="resize_mode='stretch' only"):
        next(
            iter_image_chunks(
                X, image_size=8, decode_on_device=True, device="cpu", resize_mode="pad"
            )
        )


def test_stopping_early_does_not_hang(tmp_path):
    paths = _files(tmp_path, 8)
    chunks = iter_image_chunks(paths, image_size=8, chunk_size=2, prefetch=2)
    first = next(chunks)
    chunks.close()
    assert first.images.shape == (2, 8, 8, 3)


def _decode_agreement(tmp_path, device):
    images = [_smooth(20 * i, size=(96, 80)) for i in range(5)]
    paths = []
    for i, image in enumerate(images):
        path = tmp_path / f"{i}.jpg"
        Image.fromarray(image).save(path, quality=95)
        paths.append(str(path))
    gray = tmp_path / "gray.jpg"
    Image.fromarray(images[0][..., 0]).save(gray, quality=95)
    png = tmp_path / "plain.png"
    Image.fromarray(images[1]).save(png)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(open(paths[2], "rb").read()[:200])
    X = [*paths, str(gray), str(png), str(broken)]
    kwargs = {"image_size": (40, 48), "chunk_size": 4}
    cpu = list(iter_image_chunks(X, **kwargs))
    dev = list(iter_image_chunks(X, device=device, decode_on_device=True, **kwargs))
    # the same items read and the same failures named, by global index
    assert [c.indices.tolist() for c in dev] == [c.indices.tolist() for c in cpu]
    assert [c.failures for c in dev] == [c.failures for c in cpu]
    assert [f[0] for c in dev for f in c.failures] == [7]
    a = np.concatenate([c.images for c in cpu]).astype(int)
    b = np.concatenate([c.images for c in dev]).astype(int)
    # within JPEG decoder tolerance: IDCTs and resize filters differ a little
    assert np.abs(a - b).mean() < 2.0
    assert np.abs(a - b).max() <= 24
    np.testing.assert_array_equal(a[6], b[6])  # the PNG is read by the CPU reader


def test_torchvision_decoding_matches_the_reader_on_a_cpu(tmp_path):
    pytest.importorskip("torchvision")
    _decode_agreement(tmp_path, "cpu")


@pytest.mark.gpu
def test_gpu_decoding_matches_the_cpu_reader(tmp_path):
    _decode_agreement(tmp_path, "cuda")


def test_cached_device_decodes_are_kept_apart(tmp_path):
    pytest.importorskip("torchvision")
    paths = []
    for i in range(3):
        path = tmp_path / f"{i}.jpg"
        Image.fromarray(_smooth(40 * i)).save(path)
        paths.append(str(path))
    cache = ImageCache(tmp_path / "cache")
    kwargs = {"image_size": 16, "chunk_size": 3, "cache": cache}
    list(iter_image_chunks(paths, **kwargs))
    list(iter_image_chunks(paths, device="cpu", decode_on_device=True, **kwargs))
    assert cache.writes == 6 and cache.hits == 0


# --------------------------------------------------------------------------
# CNNClassifier: the streamed fit equals the in-memory fit
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lesion_files(tmp_path_factory):
    from tests.neural.test_estimator_contract import make_lesions

    X, y = make_lesions(n_samples=24, size=24)
    folder = tmp_path_factory.mktemp("lesions")
    paths = []
    for i, image in enumerate(X):
        path = folder / f"{i:02d}.png"
        Image.fromarray(image).save(path)
        paths.append(str(path))
    return np.array(paths, dtype=object), y


@pytest.mark.parametrize(
    "params",
    [{"freeze": "backbone"}, {"freeze": "none", "early_stopping": 2, "augment": "flip"}],
    ids=["frozen", "fine-tune"],
)
def test_streamed_fit_equals_the_in_memory_fit(lesion_files, tmp_path, params):
    from skmedimg.neural import CNNClassifier

    X, y = lesion_files
    settings = dict(
        pretrained=False,
        image_size=24,
        max_epochs=2,
        batch_size=8,
        lr=0.05,
        device="cpu",
        random_state=0,
        **params,
    )
    in_memory = CNNClassifier("test_resnet", **settings).fit(X, y)
    streamed = CNNClassifier("test_resnet", in_memory_limit=1, **settings).fit(X, y)
    cached = CNNClassifier(
        "test_resnet", in_memory_limit=1, image_cache=tmp_path, **settings
    ).fit(X, y)
    expected = in_memory.predict_proba(X)
    np.testing.assert_allclose(streamed.predict_proba(X), expected, rtol=1e-5)
    np.testing.assert_allclose(cached.predict_proba(X), expected, rtol=1e-5)
    assert len(list((tmp_path / "skmedimg_images").rglob("*.img"))) == len(X)


def test_fit_through_the_cache_names_every_bad_file(lesion_files, tmp_path):
    from skmedimg.neural import CNNClassifier

    X, y = lesion_files
    X = X.copy()
    for i in (3, 17):
        broken = tmp_path / f"broken{i}.png"
        broken.write_bytes(b"\x89PNG\r\n\x1a\n broken")
        X[i] = str(broken)
    for limit in (None, 1):
        clf = CNNClassifier(
            "test_resnet",
            pretrained=False,
            freeze="backbone",
            image_size=24,
            max_epochs=1,
            device="cpu",
            in_memory_limit=limit,
            image_cache=tmp_path / "cache",
        )
        with pytest.raises(ImageReadError, match="2 of 24 image") as info:
            clf.fit(X, y)
        assert [f[0] for f in info.value.failures] == [3, 17]


def test_predict_reads_through_the_image_cache(lesion_files, tmp_path, monkeypatch):
    from skmedimg.neural import CNNClassifier
    from skmedimg.utils import _io

    X, y = lesion_files
    clf = CNNClassifier(
        "test_resnet",
        pretrained=False,
        freeze="backbone",
        image_size=24,
        max_epochs=1,
        device="cpu",
        random_state=0,
        image_cache=tmp_path,
    ).fit(X, y)
    expected = clf.predict_proba(X)

    def no_decoding(*args, **kwargs):
        raise AssertionError("an image was decoded again")

    # every file is in the cache now: predicting decodes none of them
    monkeypatch.setattr(_io, "_open_file", no_decoding)
    np.testing.assert_array_equal(clf.predict_proba(X), expected)
