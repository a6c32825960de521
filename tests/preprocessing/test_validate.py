"""ImageValidator and validate_images: unreadable images are found and named."""

import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from skmedimg.preprocessing import ImageValidator, validate_images
from skmedimg.utils import IMAGE_EXTENSIONS, ImageReadError


def _save(path, array, **kwargs):
    Image.fromarray(array).save(path, **kwargs)
    return str(path)


def _plant_bad_files(folder, source_jpeg=None):
    """Zero-byte, truncated JPEG, text named .jpg, missing: {path: reason start}."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    zero = folder / "zero_bytes.jpg"
    zero.write_bytes(b"")
    if source_jpeg is None:
        rng = np.random.default_rng(0)
        source_jpeg = _save(
            folder / "source.jpg", rng.integers(0, 256, (64, 64), dtype=np.uint8)
        )
    data = Path(source_jpeg).read_bytes()
    truncated = folder / "truncated.jpg"
    truncated.write_bytes(data[: len(data) // 2])
    text = folder / "notes.jpg"
    text.write_text("this is not an image\n")
    missing = folder / "missing.jpg"
    return {
        str(zero): "empty file (0 bytes)",
        str(truncated): "truncated or corrupt image data",
        str(text): "not a recognised image format",
        str(missing): "file not found",
    }


@pytest.fixture
def files(tmp_path):
    rng = np.random.default_rng(0)
    good = [
        _save(tmp_path / "gray.png", rng.integers(0, 256, (40, 30), dtype=np.uint8)),
        _save(tmp_path / "rgb.png", rng.integers(0, 256, (20, 50, 3), dtype=np.uint8)),
        _save(
            tmp_path / "gray.jpg",
            rng.integers(0, 256, (64, 64), dtype=np.uint8),
            quality=90,
        ),
        _save(tmp_path / "rgba.png", rng.integers(0, 256, (32, 32, 4), dtype=np.uint8)),
    ]
    bad = _plant_bad_files(tmp_path / "bad", source_jpeg=good[2])
    return good, bad


def test_validate_images_names_each_bad_file_with_its_reason(files):
    good, bad = files
    X = good[:2] + list(bad) + good[2:]
    report = validate_images(X)
    assert report.n_valid == len(good) and report.n_invalid == len(bad)
    assert report.valid_mask.tolist() == [True, True] + [False] * 4 + [True, True]
    assert report.valid_indices.tolist() == [0, 1, 6, 7]
    assert set(report.invalid) == set(bad)
    for path, reason in bad.items():
        assert report.invalid[path].startswith(reason), (path, report.invalid[path])
    assert [f[0] for f in report.failures] == [2, 3, 4, 5]
    assert report.sizes.tolist()[:2] == [[40, 30], [20, 50]]
    # the truncated JPEG has a readable header: its size is known
    assert report.sizes[3].tolist() == [64, 64]
    assert report.sizes[2].tolist() == [-1, -1]
    assert report.colors.tolist() == ["gray", "rgb", None, None, None, None] + [
        "gray",
        "rgb",
    ]


def test_truncated_jpeg_is_caught_though_its_header_reads(files):
    good, bad = files
    truncated = next(p for p in bad if p.endswith("truncated.jpg"))
    report = validate_images([good[0], truncated])
    assert list(report.invalid) == [truncated]
    assert report.invalid[truncated].startswith(
        "truncated or corrupt image data (image file is truncated"
    )


def test_min_size_and_allowed_colors(files):
    good, _ = files
    report = validate_images(good, min_size=(25, 35))
    assert report.invalid == {
        good[0]: "image of height 40 and width 30 is smaller than min_size=(25, 35)",
        good[1]: "image of height 20 and width 50 is smaller than min_size=(25, 35)",
        good[3]: "image of height 32 and width 32 is smaller than min_size=(25, 35)",
    }
    report = validate_images(good, allowed_colors="gray")
    assert report.invalid == {
        good[1]: "rgb image, but allowed_colors=['gray']",
        good[3]: "rgb image, but allowed_colors=['gray']",
    }
    report = validate_images(good, allowed_colors=("gray", "rgb"), min_size=1)
    assert report.n_invalid == 0


def test_in_memory_images():
    images = [
        np.zeros((8, 8)),
        np.full((8, 8), np.nan),
        Image.new("RGB", (5, 7)),
        np.zeros((0, 4)),
        "missing.png",
    ]
    report = validate_images(images)
    assert report.invalid == {
        "item 1 (ndarray)": "contains NaN or infinite values",
        "item 3 (ndarray)": "empty image (shape (0, 4))",
        "missing.png": "file not found",
    }
    assert report.colors[2] == "rgb" and report.sizes[2].tolist() == [7, 5]
    X = np.zeros((4, 6, 6, 3))
    X[2, 0, 0, 0] = np.inf
    report = validate_images(X)
    assert report.invalid == {"item 2 (ndarray)": "contains NaN or infinite values"}
    assert report.colors.tolist() == ["rgb", "rgb", None, "rgb"]


def test_validator_drops_planted_files_and_keeps_container_kind(files):
    good, bad = files
    X = good[:2] + list(bad) + good[2:]
    y = list("aabcdeff")
    validator = ImageValidator()
    X_kept, y_kept = validator.fit_resample(X, y)
    assert X_kept == good and y_kept == list("aaff")
    assert validator.sample_indices_.tolist() == [0, 1, 6, 7]
    assert [(d["index"], d["item"]) for d in validator.dropped_] == [
        (i, p) for i, p in zip(range(2, 6), bad, strict=True)
    ]
    for dropped in validator.dropped_:
        assert dropped["reason"].startswith(bad[dropped["item"]])

    series = pd.Series(X, index=[f"id{i}" for i in range(len(X))])
    labels = pd.Series(y, index=series.index)
    X_kept, y_kept = ImageValidator().fit_resample(series, labels)
    assert isinstance(X_kept, pd.Series) and isinstance(y_kept, pd.Series)
    assert X_kept.index.tolist() == ["id0", "id1", "id6", "id7"]
    assert y_kept.tolist() == list("aaff")

    X_kept, y_kept = ImageValidator().fit_resample(np.array(X, dtype=object))
    assert isinstance(X_kept, np.ndarray) and X_kept.tolist() == good
    assert y_kept is None


def test_validator_on_image_array_drops_nan_images():
    X = np.random.default_rng(0).random((5, 8, 8))
    X[1, 2, 3] = np.nan
    validator = ImageValidator().fit(X, np.arange(5))
    assert validator.sample_indices_.tolist() == [0, 2, 3, 4]
    assert validator.dropped_ == [
        {
            "index": 1,
            "item": "item 1 (ndarray)",
            "reason": "contains NaN or infinite values",
        }
    ]
    X_kept, _ = validator.fit_resample(X)
    assert X_kept.shape == (4, 8, 8)


def test_validator_threads_give_the_same_result(files):
    good, bad = files
    X = list(bad) + good
    one = ImageValidator().fit(X)
    two = ImageValidator(n_jobs=2).fit(X)
    assert one.dropped_ == two.dropped_
    assert one.sample_indices_.tolist() == two.sample_indices_.tolist()


def test_validator_all_bad_raises_naming_every_item(files):
    _, bad = files
    with pytest.raises(ImageReadError, match="4 of 4 image") as info:
        ImageValidator().fit_resample(list(bad), [0, 1, 0, 1])
    assert [item for _, item, _ in info.value.failures] == list(bad)
    for path in bad:
        assert path in str(info.value)


def test_validator_pickles_with_its_report(files):
    good, bad = files
    validator = ImageValidator(min_size=2).fit(good + list(bad))
    restored = pickle.loads(pickle.dumps(validator))
    assert restored.dropped_ == validator.dropped_
    assert restored.get_params() == validator.get_params()


def test_real_testing_set_with_planted_files(brain_testing_original, tmp_path):
    paths = sorted(
        str(p)
        for p in brain_testing_original.rglob("*")
        if p.suffix.lower() in IMAGE_EXTENSIONS
    )
    assert len(paths) == 1311
    bad = _plant_bad_files(tmp_path, source_jpeg=paths[0])
    # scatter the planted files through the real ones
    X = list(paths)
    positions = [0, 400, 900, len(X) + 3]
    for position, path in zip(positions, bad, strict=True):
        X.insert(position, path)
    y = np.array([Path(p).parent.name for p in X])
    validator = ImageValidator(n_jobs=2)
    X_kept, y_kept = validator.fit_resample(X, y)
    assert X_kept == paths  # exactly the real files, in order
    assert len(y_kept) == 1311
    assert {d["item"] for d in validator.dropped_} == set(bad)
    assert [d["index"] for d in validator.dropped_] == positions
    for dropped in validator.dropped_:
        assert dropped["reason"].startswith(bad[dropped["item"]])


def test_the_report_prints_as_a_short_summary():
    images = [np.zeros((32, 32))] * 3 + [f"missing{i}.png" for i in range(7)]
    report = validate_images(images)
    text = repr(report)
    lines = text.splitlines()
    assert lines[0] == "ImageValidationReport(3 of 10 image(s) usable, 7 not)"
    assert lines[1:6] == [f"  missing{i}.png: file not found" for i in range(5)]
    assert lines[6] == "  ... and 2 more (see .failures)" and len(lines) == 7
    assert "array(" not in text and str(report) == text
    # still the Bunch it was: attributes, keys, pickling
    assert report.n_valid == report["n_valid"] == 3
    assert pickle.loads(pickle.dumps(report)).failures == report.failures
    clean = validate_images([np.zeros((8, 8))])
    assert repr(clean) == "ImageValidationReport(1 of 1 image(s) usable, 0 not)"


def test_the_report_as_a_table_html_and_frame():
    images = [np.zeros((32, 24)), "missing.png", np.zeros((4, 4))]
    report = validate_images(images, min_size=8)
    table = report.table()
    assert table["index"].tolist() == [0, 1, 2]
    assert table["item"].tolist() == [
        "item 0 (ndarray)",
        "missing.png",
        "item 2 (ndarray)",
    ]
    assert table["valid"].tolist() == [True, False, False]
    assert table["height"].tolist() == [32, -1, 4]
    assert table["reason"][1] == "file not found"
    assert table["reason"][0] == "" and "smaller than min_size" in table["reason"][2]
    lines = repr(table).splitlines()
    assert lines[0] == "ImageValidationReport(1 of 3 image(s) usable, 2 not)"
    assert lines[1].split() == [
        "index",
        "item",
        "valid",
        "height",
        "width",
        "color",
        "reason",
    ]
    frame = report.to_frame()
    assert isinstance(frame, pd.DataFrame) and frame.shape == (3, 7)
    assert frame["valid"].tolist() == [True, False, False]
    html = report._repr_html_()
    # the unusable images only, one row each, their reasons escaped
    assert html.count("<tr>") == 1 + 2 and "missing.png" in html
    assert "item 0 (ndarray)" not in html
    assert report["items"].tolist() == table["item"].tolist()
