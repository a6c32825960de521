import hashlib
import os
import shutil

import numpy as np
import pytest

from skmedimg.datasets import MEDMNIST_NAMES, _medmnist, load_medmnist

BREAST_MD5 = "750601b1f35ba3300ea97c75c52ff8f6"
PNEUMONIA_MD5 = "28209eda62fecd6e6a2d98b1501bb15f"


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path):
    """No test reads the real ~/.medmnist or $SKMEDIMG_DATA by accident."""
    monkeypatch.delenv("SKMEDIMG_DATA", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setattr(_medmnist, "_VERIFIED", {})


def _md5(path):
    return hashlib.md5(path.read_bytes()).hexdigest()


def _fake_npz(path, *, n=(5, 2, 3), shape=(28, 28), n_labels=1, seed=0):
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, count in zip(("train", "val", "test"), n, strict=True):
        arrays[f"{split}_images"] = rng.integers(0, 256, (count, *shape), np.uint8)
        arrays[f"{split}_labels"] = rng.integers(0, 2, (count, n_labels), np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **arrays)
    return arrays


@pytest.fixture
def fake_md5(monkeypatch):
    """Make the checksum table accept a given file's md5."""

    def accept(path):
        md5 = _md5(path)
        monkeypatch.setattr(_medmnist, "_expected_md5", lambda name, size: (md5,))
        return md5

    return accept


# ---------------------------------------------------------------- the table


def test_table_matches_the_medmnist_package():
    assert len(MEDMNIST_NAMES) == 12
    assert _medmnist._expected_md5("breastmnist", 28) == (BREAST_MD5,)
    assert _medmnist._expected_md5("pneumoniamnist", 28) == (PNEUMONIA_MD5,)
    assert _medmnist._filename("breastmnist", 28) == "breastmnist.npz"
    assert _medmnist._filename("breastmnist", 224) == "breastmnist_224.npz"
    assert _medmnist._url("breastmnist_64.npz") == (
        "https://zenodo.org/records/10519652/files/breastmnist_64.npz?download=1"
    )
    for name in MEDMNIST_NAMES:
        md5s, task, n_channels, n_samples, _, labels = _medmnist._INFO[name]
        assert len(md5s) == 4 and len(set(md5s)) == 4
        assert all(len(m) == 32 and int(m, 16) >= 0 for m in md5s)
        assert n_channels in (1, 3) and len(n_samples) == 3 and labels


def test_old_organ_files_are_accepted():
    # medmnist 2.x cached other 28x28 Organ{A,C,S}MNIST files under these names
    expected = _medmnist._expected_md5("organamnist", 28)
    assert expected == (
        "68e3f8846a6bd62f0c9bf841c0d9eacc",
        "866b832ed4eeba67bfb9edee1d5544e6",
    )
    assert len(_medmnist._expected_md5("organamnist", 64)) == 1


# ---------------------------------------------------------------- real files


def test_breastmnist_test_split(medmnist_dir):
    data = load_medmnist("breastmnist", split="test", data_home=medmnist_dir)
    assert data.images.shape == (156, 28, 28)
    assert data.images.dtype == np.uint8
    assert data.target.shape == (156,)
    assert data.target.dtype == np.int64
    assert set(np.unique(data.target)) == {0, 1}
    assert data.target_names == ["malignant", "normal, benign"]
    assert data.task == "binary-class"
    assert data.filename == os.path.join(str(medmnist_dir), "breastmnist.npz")
    assert data.n_channels == 1
    # the md5 was checked and remembered
    assert BREAST_MD5 in _medmnist._VERIFIED.values()


@pytest.mark.parametrize("split, n", [("train", 546), ("val", 78), ("test", 156)])
def test_breastmnist_split_sizes(medmnist_dir, split, n):
    data = load_medmnist("BreastMNIST", split=split, data_home=medmnist_dir)
    assert len(data.images) == len(data.target) == n
    assert data.name == "breastmnist"


def test_md5_is_computed_once(medmnist_dir, monkeypatch):
    load_medmnist("breastmnist", split="val", data_home=medmnist_dir)
    monkeypatch.setattr(_medmnist, "_md5", lambda path: pytest.fail("re-hashed"))
    data = load_medmnist("breastmnist", split="test", data_home=medmnist_dir)
    assert len(data.images) == 156


def test_skmedimg_data_env(shared_data, monkeypatch):
    monkeypatch.setenv("SKMEDIMG_DATA", str(shared_data))
    data = load_medmnist("pneumoniamnist", split="test")
    assert data.images.shape == (624, 28, 28)
    assert data.target_names == ["normal", "pneumonia"]
    assert data.filename == os.path.join(
        str(shared_data), "medmnist", "pneumoniamnist.npz"
    )


def test_skmedimg_data_env_without_subfolder(medmnist_dir, monkeypatch):
    monkeypatch.setenv("SKMEDIMG_DATA", str(medmnist_dir))
    data = load_medmnist("breastmnist", split="val")
    assert data.images.shape == (78, 28, 28)


def test_wrong_md5_is_a_clear_error(medmnist_dir, tmp_path):
    path = tmp_path / "breastmnist.npz"
    shutil.copyfile(medmnist_dir / "breastmnist.npz", path)
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF  # flip one byte
    path.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="failed its checksum") as info:
        load_medmnist("breastmnist", split="test", data_home=tmp_path)
    message = str(info.value)
    assert str(path) in message
    assert f"expected {BREAST_MD5}" in message
    assert "download=True" in message
    assert "breastmnist.npz?download=1" in message


def test_truncated_npz_is_a_clear_error(medmnist_dir, tmp_path):
    path = tmp_path / "breastmnist.npz"
    raw = (medmnist_dir / "breastmnist.npz").read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match="truncated, corrupt or not the official"):
        load_medmnist("breastmnist", split="test", data_home=tmp_path)


def test_corrupt_npz_with_matching_md5(tmp_path, fake_md5):
    # the checksum table cannot catch a bad official file: np.load errors are
    # reported too
    path = tmp_path / "breastmnist.npz"
    path.write_bytes(b"PK\x03\x04 this is not a zip archive")
    fake_md5(path)
    with pytest.raises(ValueError, match="cannot read MedMNIST file") as info:
        load_medmnist("breastmnist", data_home=tmp_path)
    assert str(path) in str(info.value)


def test_npz_without_the_split(tmp_path, fake_md5):
    path = tmp_path / "breastmnist.npz"
    np.savez(path, train_images=np.zeros((2, 28, 28), np.uint8))
    fake_md5(path)
    with pytest.raises(ValueError, match="no array train_labels"):
        load_medmnist("breastmnist", data_home=tmp_path)


def test_modified_file_is_checked_again(tmp_path, fake_md5):
    path = tmp_path / "breastmnist.npz"
    _fake_npz(path)
    fake_md5(path)
    assert len(load_medmnist("breastmnist", data_home=tmp_path).images) == 5
    _fake_npz(path, seed=1)  # same size, new content and mtime
    os.utime(path, ns=(1, 1))
    with pytest.raises(ValueError, match="failed its checksum"):
        load_medmnist("breastmnist", data_home=tmp_path)


# ---------------------------------------------------------------- fake files


def test_colour_dataset(tmp_path, fake_md5):
    _fake_npz(tmp_path / "bloodmnist_64.npz", shape=(64, 64, 3))
    fake_md5(tmp_path / "bloodmnist_64.npz")
    data = load_medmnist("bloodmnist", split="val", image_size=64, data_home=tmp_path)
    assert data.images.shape == (2, 64, 64, 3)
    assert data.target.shape == (2,)
    assert len(data.target_names) == 8
    assert data.n_channels == 3


def test_multilabel_keeps_2d_target(tmp_path, fake_md5):
    arrays = _fake_npz(tmp_path / "chestmnist.npz", n_labels=14)
    fake_md5(tmp_path / "chestmnist.npz")
    data = load_medmnist("chestmnist", split="test", data_home=tmp_path)
    assert data.target.shape == (3, 14)
    np.testing.assert_array_equal(data.target, arrays["test_labels"])
    assert data.task == "multi-label, binary-class"
    assert data.target_names[0] == "atelectasis"
    for row, findings in zip(data.target, data.labels, strict=True):
        assert findings == tuple(data.target_names[j] for j in np.flatnonzero(row))


def test_labels_are_the_class_names_as_in_load_image_folder(tmp_path, fake_md5):
    _fake_npz(tmp_path / "breastmnist.npz")
    fake_md5(tmp_path / "breastmnist.npz")
    data = load_medmnist("breastmnist", split="train", data_home=tmp_path)
    assert data.labels.shape == (5,) and data.labels.dtype.kind == "U"
    assert data.labels.tolist() == [data.target_names[t] for t in data.target]


def test_default_folder_is_the_medmnist_cache(tmp_path, fake_md5):
    path = tmp_path / "home" / ".medmnist" / "retinamnist.npz"
    _fake_npz(path)
    fake_md5(path)
    data = load_medmnist("retinamnist")
    assert data.filename == str(path)
    assert data.target_names == ["0", "1", "2", "3", "4"]


# ---------------------------------------------------------------- missing files


def test_missing_file_says_what_to_put_where(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        load_medmnist("breastmnist", image_size=64, data_home=tmp_path)
    message = str(info.value)
    assert "breastmnist_64.npz not found" in message
    assert f"save it as {tmp_path / 'breastmnist_64.npz'}" in message
    assert (
        "https://zenodo.org/records/10519652/files/breastmnist_64.npz?download=1"
        in message
    )
    assert "download=True" in message
    assert "742edef2a1fd1524b2efff4bd7ba9364" in message


def test_missing_file_default_and_env_folders(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError) as info:
        load_medmnist("breastmnist")
    home_cache = tmp_path / "home" / ".medmnist" / "breastmnist.npz"
    assert f"save it as {home_cache}" in str(info.value)

    monkeypatch.setenv("SKMEDIMG_DATA", str(tmp_path / "data"))
    with pytest.raises(FileNotFoundError) as info:
        load_medmnist("breastmnist")
    message = str(info.value)
    assert str(tmp_path / "data" / "medmnist" / "breastmnist.npz") in message
    assert str(tmp_path / "data" / "breastmnist.npz") in message


# ---------------------------------------------------------------- download


@pytest.fixture
def local_urls(monkeypatch, tmp_path):
    """Serve ``{filename}`` from a local folder through file:// URLs."""
    source = tmp_path / "server"
    source.mkdir()
    monkeypatch.setattr(
        _medmnist, "_url", lambda filename: (source / filename).as_uri()
    )
    return source


def test_download_real_file(medmnist_dir, local_urls, tmp_path):
    shutil.copyfile(medmnist_dir / "breastmnist.npz", local_urls / "breastmnist.npz")
    home = tmp_path / "cache"
    data = load_medmnist("breastmnist", split="test", data_home=home, download=True)
    assert data.images.shape == (156, 28, 28)
    assert _md5(home / "breastmnist.npz") == BREAST_MD5
    assert os.listdir(home) == ["breastmnist.npz"]  # no temporary file left
    # a second call uses the file on disk, not the URL
    (local_urls / "breastmnist.npz").unlink()
    again = load_medmnist("breastmnist", split="test", data_home=home, download=True)
    np.testing.assert_array_equal(again.images, data.images)


def test_download_to_env_folder(local_urls, tmp_path, monkeypatch, fake_md5):
    _fake_npz(local_urls / "dermamnist.npz", shape=(28, 28, 3))
    fake_md5(local_urls / "dermamnist.npz")
    monkeypatch.setenv("SKMEDIMG_DATA", str(tmp_path / "data"))
    data = load_medmnist("dermamnist", download=True)
    assert data.filename == str(tmp_path / "data" / "medmnist" / "dermamnist.npz")
    assert data.images.shape == (5, 28, 28, 3)


def test_download_with_wrong_md5_saves_nothing(local_urls, tmp_path):
    _fake_npz(local_urls / "breastmnist.npz")  # not the official file
    home = tmp_path / "cache"
    with pytest.raises(ValueError, match="failed its checksum") as info:
        load_medmnist("breastmnist", data_home=home, download=True)
    assert f"expected {BREAST_MD5}; nothing was saved" in str(info.value)
    assert os.listdir(home) == []


def test_download_failure_is_a_clear_error(local_urls, tmp_path):
    home = tmp_path / "cache"
    with pytest.raises(OSError, match="could not download") as info:
        load_medmnist("breastmnist", data_home=home, download=True)
    assert f"save it as {home / 'breastmnist.npz'}" in str(info.value)
    assert os.listdir(home) == []


def test_a_download_is_readable_as_the_umask_allows(local_urls, tmp_path, fake_md5):
    _fake_npz(local_urls / "dermamnist.npz", shape=(28, 28, 3))
    fake_md5(local_urls / "dermamnist.npz")
    home = tmp_path / "cache"
    old = os.umask(0o022)
    try:
        data = load_medmnist("dermamnist", data_home=home, download=True)
    finally:
        os.umask(old)
    assert os.stat(data.filename).st_mode & 0o777 == 0o644  # not 0o600


def test_a_download_that_breaks_off_is_an_oserror(local_urls, tmp_path, monkeypatch):
    import http.client

    class Response:
        headers = {"Content-Length": "100"}

        def __init__(self):
            self.calls = 0

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            pass

        def read(self, n):
            self.calls += 1
            if self.calls > 1:
                raise http.client.IncompleteRead(b"", 90)
            return b"0123456789"

    monkeypatch.setattr(_medmnist.urllib.request, "urlopen", lambda *a, **k: Response())
    home = tmp_path / "cache"
    with pytest.raises(OSError, match="broke off.*nothing was saved") as info:
        load_medmnist("breastmnist", data_home=home, download=True)
    assert f"save it as {home / 'breastmnist.npz'}" in str(info.value)
    assert os.listdir(home) == []


# ---------------------------------------------------------------- arguments


def test_unknown_name_suggests_close_names():
    with pytest.raises(ValueError, match="Did you mean 'breastmnist'") as info:
        load_medmnist("brestmnist")
    assert "Known 2-D datasets: pathmnist" in str(info.value)
    with pytest.raises(ValueError, match="unknown MedMNIST dataset 'foo'. Known"):
        load_medmnist("foo")


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"split": "validation"}, ValueError, "split must be one of"),
        (
            {"image_size": 32},
            ValueError,
            r"image_size must be one of \(28, 64, 128, 224\)",
        ),
        ({"image_size": "28"}, ValueError, "image_size must be one of"),
        ({"image_size": True}, ValueError, "image_size must be one of"),
        (
            {"image_size": 64.0},
            ValueError,
            r"image_size must be one of .* \(an int\), got 64.0",
        ),
        (
            {"image_size": 64, "size": 64},
            ValueError,
            "`size` and `image_size` were both given",
        ),
    ],
)
def test_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        load_medmnist("breastmnist", **kwargs)


def test_name_must_be_a_string():
    with pytest.raises(TypeError, match="name must be a str"):
        load_medmnist(3)


def test_size_is_the_deprecated_spelling_of_image_size(tmp_path, fake_md5):
    _fake_npz(tmp_path / "bloodmnist_64.npz", shape=(64, 64, 3))
    fake_md5(tmp_path / "bloodmnist_64.npz")
    new = load_medmnist("bloodmnist", split="val", image_size=64, data_home=tmp_path)
    with pytest.warns(FutureWarning, match="`size` was renamed `image_size`"):
        old = load_medmnist("bloodmnist", split="val", size=64, data_home=tmp_path)
    np.testing.assert_array_equal(old.images, new.images)
    assert new.image_size == new.size == old.image_size == 64
