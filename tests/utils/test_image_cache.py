"""The decoded-image cache: keys, atomic concurrent writes, damaged entries."""

import os
import threading
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pytest
from PIL import Image

from skmedimg.utils import ImageCache, iter_image_chunks, read_images


def _write(path, value, size=(20, 24)):
    rng = np.random.default_rng(value)
    image = np.full((*size, 3), value, dtype=np.uint8)
    image[::2] = rng.integers(0, 255, size=image[::2].shape, dtype=np.uint8)
    Image.fromarray(image).save(path)
    return str(path)


def _read_through(paths, cache, **kwargs):
    kwargs = {"image_size": 8, "color": "rgb", **kwargs}
    (chunk,) = iter_image_chunks(
        paths, cache=cache, chunk_size=len(paths), prefetch=0, **kwargs
    )
    assert chunk.failures == []
    return chunk.images


def test_second_read_comes_from_the_cache_and_equals_the_decoder(tmp_path):
    paths = [_write(tmp_path / f"{i}.png", 10 * i) for i in range(4)]
    cache = ImageCache(tmp_path / "cache")
    first = _read_through(paths, cache)
    assert (cache.hits, cache.misses, cache.writes) == (0, 4, 4)
    again = _read_through(paths, cache)
    assert (cache.hits, cache.writes) == (4, 4)  # nothing decoded again
    np.testing.assert_array_equal(first, again)
    np.testing.assert_array_equal(first, read_images(paths, image_size=8, color="rgb"))


def test_a_changed_file_is_a_miss_never_a_stale_image(tmp_path):
    path = _write(tmp_path / "a.png", 10)
    cache = ImageCache(tmp_path / "cache")
    old = _read_through([path], cache)
    stat = os.stat(path)
    _write(tmp_path / "a.png", 200)
    # the same size and modification time would hide the change: move it on
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    new = _read_through([path], cache)
    assert cache.hits == 0 and cache.misses == 2
    assert not np.array_equal(old, new)
    np.testing.assert_array_equal(new, read_images([path], image_size=8, color="rgb"))


@pytest.mark.parametrize(
    "settings",
    [{"image_size": 12}, {"color": "gray"}, {"resize_mode": "pad"}],
    ids=["size", "color", "resize_mode"],
)
def test_other_reading_settings_are_misses(tmp_path, settings):
    path = _write(tmp_path / "a.png", 10)
    cache = ImageCache(tmp_path / "cache")
    _read_through([path], cache)
    images = _read_through([path], cache, **settings)
    assert cache.hits == 0 and cache.writes == 2
    expected = read_images(
        [path],
        image_size=settings.get("image_size", 8),
        color=settings.get("color", "rgb"),
        resize_mode=settings.get("resize_mode", "stretch"),
    )
    np.testing.assert_array_equal(images, expected)


def test_keys_depend_on_every_setting_and_on_the_file(tmp_path):
    path = _write(tmp_path / "a.png", 10)
    cache = ImageCache(tmp_path)
    base = {"image_size": (8, 8), "color": "rgb"}
    key = cache.key(path, **base)
    assert key == cache.key(path, **base)
    others = [
        cache.key(path, image_size=(8, 9), color="rgb"),
        cache.key(path, image_size=(8, 8), color="gray"),
        cache.key(path, **base, resize_mode="crop"),
        cache.key(path, **base, resample="bicubic"),
        cache.key(path, **base, decoder="device"),
        cache.key(_write(tmp_path / "b.png", 10), **base),
    ]
    assert len({key, *others}) == 7
    assert cache.key(tmp_path / "missing.png", **base) is None


@pytest.mark.parametrize("damage", ["crc", "short", "header", "empty"])
def test_a_damaged_entry_is_read_again_from_the_source(tmp_path, damage):
    paths = [_write(tmp_path / f"{i}.png", 30 * i) for i in range(3)]
    cache = ImageCache(tmp_path / "cache")
    expected = _read_through(paths, cache)
    entry = cache.entry_path(cache.key(paths[1], image_size=(8, 8), color="rgb"))
    data = bytearray(entry.read_bytes())
    if damage == "crc":
        data[-5] ^= 0xFF  # one pixel
    elif damage == "short":
        data = data[:-10]
    elif damage == "header":
        data[:8] = b"NOTMAGIC"
    else:
        data = b""
    entry.write_bytes(bytes(data))
    images = _read_through(paths, cache)
    np.testing.assert_array_equal(images, expected)
    assert cache.corrupt == 1 and cache.hits == 2
    # the damaged entry was replaced by a good one
    assert ImageCache(tmp_path / "cache").load(
        cache.key(paths[1], image_size=(8, 8), color="rgb")
    ).tobytes() == expected[1].tobytes()


def test_concurrent_writers_in_threads_leave_only_whole_entries(tmp_path):
    paths = [_write(tmp_path / f"{i}.png", 20 * i) for i in range(6)]
    expected = read_images(paths, image_size=8, color="rgb")
    errors = []

    def work():
        try:
            images = _read_through(paths, ImageCache(tmp_path / "cache"))
            np.testing.assert_array_equal(images, expected)
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    folder = tmp_path / "cache" / "skmedimg_images"
    entries = list(folder.rglob("*.img"))
    assert len(entries) == 6
    assert not list(folder.rglob(".tmp-*"))  # no temporary file left behind
    cache = ImageCache(tmp_path / "cache")
    np.testing.assert_array_equal(_read_through(paths, cache), expected)
    assert cache.hits == 6 and cache.corrupt == 0


def _fill(args):
    folder, paths = args
    images = _read_through(paths, ImageCache(folder))
    return images.tobytes()


def test_concurrent_writers_in_processes(tmp_path):
    paths = [_write(tmp_path / f"{i}.png", 20 * i) for i in range(4)]
    expected = read_images(paths, image_size=8, color="rgb").tobytes()
    folder = str(tmp_path / "cache")
    with ProcessPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(_fill, [(folder, paths)] * 3))
    assert results == [expected] * 3
    cache = ImageCache(folder)
    assert _read_through(paths, cache).tobytes() == expected
    assert cache.hits == 4


def test_memory_map_and_store_checks(tmp_path):
    cache = ImageCache(tmp_path)
    path = _write(tmp_path / "a.png", 10)
    key = cache.key(path, image_size=(4, 5), color="gray")
    assert cache.open_memmap(key) is None
    image = np.arange(20, dtype=np.uint8).reshape(4, 5, 1)
    cache.store(key, image)
    mapped = cache.open_memmap(key)
    np.testing.assert_array_equal(mapped, image)
    with pytest.raises(ValueError, match="uint8 images"):
        cache.store(key, image.astype(np.float32))
    assert repr(cache).startswith("ImageCache(")


def test_in_memory_images_are_not_cached(tmp_path):
    cache = ImageCache(tmp_path / "cache")
    X = np.zeros((3, 10, 10), dtype=np.uint8)
    _read_through(X, cache)
    assert cache.writes == 0 and not (tmp_path / "cache").exists()


@pytest.mark.parametrize("damage", ["crc", "short", "header", "vanished"])
def test_streamed_training_images_never_use_a_damaged_entry(tmp_path, damage):
    # A streamed fit takes entries found in the cache without reading them
    # (header and length only); every batch read checks their pixels.
    from skmedimg.neural._data import DiskImages

    paths = np.asarray(
        [_write(tmp_path / f"{i}.png", 30 * i) for i in range(4)], dtype=object
    )
    cache = ImageCache(tmp_path / "cache")
    expected = _read_through(list(paths), cache)
    entry = cache.entry_path(cache.key(paths[2], image_size=(8, 8), color="rgb"))
    data = bytearray(entry.read_bytes())
    if damage == "crc":
        data[-5] ^= 0xFF
    elif damage == "short":
        data = data[:-10]
    elif damage == "header":
        data[:8] = b"NOTMAGIC"
    warm = ImageCache(tmp_path / "cache")
    if damage == "crc":  # found, read later: the CRC catches it
        entry.write_bytes(bytes(data))
        images = DiskImages.from_images(paths, size=(8, 8), color="rgb", cache=warm)
        assert warm.hits == 4 and warm.misses == 0
    elif damage == "vanished":  # found, then removed before the batch read
        images = DiskImages.from_images(paths, size=(8, 8), color="rgb", cache=warm)
        os.remove(entry)
    else:  # refused at once, decoded again
        entry.write_bytes(bytes(data))
        images = DiskImages.from_images(paths, size=(8, 8), color="rgb", cache=warm)
        assert warm.hits == 3
    np.testing.assert_array_equal(images.read().numpy(), expected)
    np.testing.assert_array_equal(images.read(np.array([2, 0])).numpy(), expected[[2, 0]])
