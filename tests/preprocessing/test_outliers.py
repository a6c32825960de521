"""SizeOutlierRejector: the 3-sigma rule of the source reports and robust ones."""

import numpy as np
import pytest
from PIL import Image

from skmedimg.preprocessing import SizeOutlierRejector
from skmedimg.utils import IMAGE_EXTENSIONS, ImageReadError, read_image_sizes


def _images_of_sizes(sizes):
    return [np.zeros((h, w), dtype=np.uint8) for h, w in sizes]


def _three_sigma(sizes, threshold=3.0):
    """The source reports' find_outliers, written out directly."""
    mean, std = sizes.mean(axis=0), sizes.std(axis=0)
    outlier = (sizes > mean + threshold * std) | (sizes < mean - threshold * std)
    return np.flatnonzero(outlier.any(axis=1))


def test_std_rule_matches_direct_computation():
    rng = np.random.default_rng(0)
    sizes = np.column_stack([rng.normal(300, 30, 200), rng.normal(400, 50, 200)])
    sizes = np.clip(sizes, 1, None).astype(int)
    sizes[[5, 50]] = [[900, 400], [300, 40]]  # a tall one and a narrow one
    rejector = SizeOutlierRejector()
    X_kept, y_kept = rejector.fit_resample(_images_of_sizes(sizes), np.arange(200))
    expected = _three_sigma(sizes.astype(float))
    assert {5, 50} <= set(expected)
    assert [d["index"] for d in rejector.dropped_] == expected.tolist()
    assert np.setdiff1d(np.arange(200), y_kept).tolist() == expected.tolist()
    assert len(X_kept) == 200 - len(expected)
    np.testing.assert_allclose(rejector.mean_size_, sizes.mean(axis=0))
    np.testing.assert_allclose(rejector.std_size_, sizes.std(axis=0))
    np.testing.assert_allclose(
        rejector.upper_bound_, sizes.mean(axis=0) + 3 * sizes.std(axis=0)
    )
    tall = next(d for d in rejector.dropped_ if d["index"] == 5)
    assert (tall["height"], tall["width"]) == (900, 400)
    assert tall["item"] == "item 5 (ndarray)"
    assert tall["reason"].startswith("height 900 is outside [")
    assert tall["reason"].endswith("(method='std', threshold=3.0)")
    narrow = next(d for d in rejector.dropped_ if d["index"] == 50)
    assert narrow["reason"].startswith("width 40 is outside [")


def test_threshold_changes_the_choice():
    rng = np.random.default_rng(3)
    sizes = rng.normal(100, 10, (50, 2)).astype(int)
    X = _images_of_sizes(sizes)
    strict = SizeOutlierRejector(threshold=1.0).fit(X)
    loose = SizeOutlierRejector(threshold=3.0).fit(X)
    assert [d["index"] for d in strict.dropped_] == _three_sigma(sizes, 1.0).tolist()
    assert len(strict.dropped_) > len(loose.dropped_)


def test_equal_sizes_drop_nothing_for_every_method():
    X = np.zeros((6, 10, 12), dtype=np.uint8)
    for method in ["std", "mad", "iqr"]:
        rejector = SizeOutlierRejector(method=method)
        X_kept, _ = rejector.fit_resample(X)
        assert X_kept.shape == X.shape and rejector.dropped_ == []


def test_robust_methods_fall_back_when_most_sizes_are_equal():
    # 70 % share one height: its MAD and IQR are 0, the fallback (mean absolute
    # deviation) keeps the moderate heights; all widths are equal: none dropped
    heights = [512] * 14 + [500, 520, 505] * 2 + [2000]
    sizes = np.array([[h, 512] for h in heights])
    X = _images_of_sizes(sizes)
    for method in ["mad", "iqr"]:
        rejector = SizeOutlierRejector(method=method).fit(X)
        assert [d["index"] for d in rejector.dropped_] == [len(sizes) - 1], method
        assert rejector.upper_bound_[0] > 520 and rejector.lower_bound_[0] < 500
        assert rejector.upper_bound_[1] == rejector.lower_bound_[1] == 512


def test_mad_rule_matches_direct_computation():
    rng = np.random.default_rng(1)
    sizes = rng.integers(200, 300, (50, 2))
    sizes[7] = [1000, 250]
    rejector = SizeOutlierRejector(method="mad", threshold=3.0).fit(
        _images_of_sizes(sizes)
    )
    median = np.median(sizes, axis=0)
    scale = 1.4826 * np.median(np.abs(sizes - median), axis=0)
    expected = np.flatnonzero(
        ((sizes > median + 3 * scale) | (sizes < median - 3 * scale)).any(axis=1)
    )
    assert [d["index"] for d in rejector.dropped_] == expected.tolist()
    assert 7 in expected


def test_iqr_rule_matches_tukey_fences():
    rng = np.random.default_rng(2)
    sizes = rng.integers(200, 300, (50, 2))
    sizes[3] = [250, 20]
    rejector = SizeOutlierRejector(method="iqr", threshold=1.5).fit(
        _images_of_sizes(sizes)
    )
    q1, q3 = np.percentile(sizes, [25, 75], axis=0)
    lower, upper = q1 - 1.5 * (q3 - q1), q3 + 1.5 * (q3 - q1)
    np.testing.assert_allclose(rejector.lower_bound_, lower)
    expected = np.flatnonzero(((sizes > upper) | (sizes < lower)).any(axis=1))
    assert [d["index"] for d in rejector.dropped_] == expected.tolist() == [3]


def test_sizes_come_from_headers_without_decoding(tmp_path, monkeypatch):
    paths = []
    for i, (h, w) in enumerate([(30, 30)] * 8 + [(30, 300)]):
        path = tmp_path / f"{i}.png"
        Image.new("L", (w, h)).save(path)
        paths.append(str(path))

    def no_decoding(*args, **kwargs):
        raise AssertionError("pixel data was decoded")

    monkeypatch.setattr(Image.Image, "load", no_decoding)
    rejector = SizeOutlierRejector(threshold=2.0)
    X_kept, _ = rejector.fit_resample(paths)
    assert X_kept == paths[:8]
    assert rejector.dropped_[0]["item"] == paths[8]


def test_unreadable_header_raises_naming_the_file(tmp_path):
    good = tmp_path / "good.png"
    Image.new("L", (8, 8)).save(good)
    text = tmp_path / "text.png"
    text.write_text("no image")
    with pytest.raises(ImageReadError, match="text.png: not a recognised image format"):
        SizeOutlierRejector().fit_resample([str(good), str(text)])


def test_real_testing_set_matches_three_sigma(brain_testing_original):
    paths = sorted(
        str(p)
        for p in brain_testing_original.rglob("*")
        if p.suffix.lower() in IMAGE_EXTENSIONS
    )
    sizes = read_image_sizes(paths)
    assert len(np.unique(sizes, axis=0)) == 194
    rejector = SizeOutlierRejector(n_jobs=2)
    X_kept, _ = rejector.fit_resample(paths)
    expected = _three_sigma(sizes.astype(float))
    assert [d["index"] for d in rejector.dropped_] == expected.tolist()
    assert [d["item"] for d in rejector.dropped_] == [paths[i] for i in expected]
    assert len(X_kept) == len(paths) - len(expected)
    np.testing.assert_allclose(rejector.mean_size_, sizes.mean(axis=0))
    # the robust rules; most images are 512 x 512, so the MAD is 0 and the
    # documented fallback applies: mean absolute deviation * sqrt(pi / 2)
    sizes = sizes.astype(float)
    median = np.median(sizes, axis=0)
    assert np.all(np.median(np.abs(sizes - median), axis=0) == 0)
    scale = np.sqrt(np.pi / 2) * np.mean(np.abs(sizes - median), axis=0)
    outlier = (sizes > median + 3 * scale) | (sizes < median - 3 * scale)
    mad = SizeOutlierRejector(method="mad").fit(paths)
    expected = np.flatnonzero(outlier.any(axis=1))
    assert [d["index"] for d in mad.dropped_] == expected.tolist()
    q1, q3 = np.percentile(sizes, [25, 75], axis=0)
    outlier = (sizes > q3 + 3 * (q3 - q1)) | (sizes < q1 - 3 * (q3 - q1))
    iqr = SizeOutlierRejector(method="iqr").fit(paths)
    expected = np.flatnonzero(outlier.any(axis=1))
    assert [d["index"] for d in iqr.dropped_] == expected.tolist()
