"""Every bad input raises a clear error of the right type, naming what is wrong."""

import re

import numpy as np
import pytest
import scipy.sparse as sp
from PIL import Image
from sklearn.base import clone
from sklearn.utils._param_validation import InvalidParameterError

from skmedimg.preprocessing import (
    ImageRandomOverSampler,
    ImageRandomUnderSampler,
    ImageResizer,
    ImageValidator,
    IntensityFeatures,
    IntensityKMeans,
    SizeOutlierRejector,
    plot_elbow_silhouette,
    score_n_clusters,
    validate_images,
)
from skmedimg.utils import ImageReadError
from tests.preprocessing.checks_registry import ESTIMATORS

IDS = [type(est).__name__ for est in ESTIMATORS]
X_OK = np.random.default_rng(0).integers(0, 256, (12, 8, 8), dtype=np.uint8)
Y_OK = np.array([0] * 8 + [1] * 4)


@pytest.mark.parametrize(
    "estimator, message",
    [
        (ImageValidator(min_size=0), "The 'min_size' parameter of ImageValidator"),
        (
            ImageValidator(allowed_colors="cmyk"),
            "The 'allowed_colors' parameter of ImageValidator",
        ),
        (ImageValidator(n_jobs=1.5), "The 'n_jobs' parameter of ImageValidator"),
        (SizeOutlierRejector(threshold=0), "The 'threshold' parameter"),
        (SizeOutlierRejector(threshold="3"), "The 'threshold' parameter"),
        (SizeOutlierRejector(method="zscore"), "The 'method' parameter"),
        (ImageResizer(image_size=0), "The 'image_size' parameter of ImageResizer"),
        (ImageResizer(image_size="big"), "The 'image_size' parameter of ImageResizer"),
        (
            ImageResizer(resize_mode="squash"),
            "The 'resize_mode' parameter of ImageResizer",
        ),
        (ImageResizer(size="big"), "The 'size' parameter of ImageResizer"),
        (ImageResizer(mode="squash"), "The 'mode' parameter of ImageResizer"),
        (ImageResizer(color="cmyk"), "The 'color' parameter of ImageResizer"),
        (ImageResizer(resample="cubic"), "The 'resample' parameter of ImageResizer"),
        (IntensityFeatures(n_bins=0), "The 'n_bins' parameter of IntensityFeatures"),
        (IntensityFeatures(n_bins=300), "The 'n_bins' parameter"),
        (IntensityFeatures(per_channel="yes"), "The 'per_channel' parameter"),
        (IntensityFeatures(percentiles=50), "The 'percentiles' parameter"),
        (
            IntensityKMeans(n_clusters=0),
            "The 'n_clusters' parameter of IntensityKMeans",
        ),
        (IntensityKMeans(n_init="many"), "The 'n_init' parameter"),
        (IntensityKMeans(init="kmeans"), "The 'init' parameter"),
        (IntensityKMeans(scale=None), "The 'scale' parameter"),
        (IntensityKMeans(tol=-1), "The 'tol' parameter"),
        (
            ImageRandomOverSampler(sampling_strategy="majority"),
            "The 'sampling_strategy' parameter of ImageRandomOverSampler",
        ),
        (
            ImageRandomUnderSampler(sampling_strategy="minority"),
            "The 'sampling_strategy' parameter of ImageRandomUnderSampler",
        ),
        (ImageRandomUnderSampler(replacement="no"), "The 'replacement' parameter"),
    ],
    ids=lambda v: repr(v) if not isinstance(v, str) else "",
)
def test_invalid_parameters(estimator, message):
    with pytest.raises(InvalidParameterError, match=re.escape(message)):
        estimator.fit(X_OK, Y_OK)


@pytest.mark.parametrize(
    "estimator, message",
    [
        (
            ImageValidator(min_size=(10,)),
            "min_size must be a positive int or a (height, width) tuple of positive "
            "ints, got (10,)",
        ),
        (
            ImageValidator(allowed_colors=("gray", "cmyk")),
            "allowed_colors must be None, 'gray', 'rgb' or a non-empty sequence of "
            "them, got ('gray', 'cmyk')",
        ),
        (ImageValidator(allowed_colors=[]), "allowed_colors must be None"),
        (
            ImageResizer(image_size=(0, 5)),
            "image_size must be a positive int or a (height, width)",
        ),
        (ImageResizer(image_size=(4.5, 5)), "got (4.5, 5)"),
        (
            IntensityFeatures(percentiles=(50, 101)),
            "percentiles must be a 1-D sequence of numbers between 0 and 100, got "
            "(50, 101)",
        ),
        (IntensityFeatures(percentiles=("a",)), "percentiles must be a 1-D sequence"),
        (IntensityFeatures(image_size=(8, 8, 3)), "image_size must be a positive int"),
        (IntensityKMeans(percentiles=[[5]]), "percentiles must be a 1-D sequence"),
    ],
)
def test_malformed_parameter_contents(estimator, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        estimator.fit(X_OK, Y_OK)


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=IDS)
def test_empty_input(estimator):
    for X, message in [
        (
            np.zeros((0, 8, 8), dtype=np.uint8),
            "image input could not be used: empty input (shape (0, 8, 8))",
        ),
        ([], "image input could not be used: empty input (no images)"),
    ]:
        with pytest.raises(ImageReadError, match=re.escape(message)):
            clone(estimator).fit(X, [])


def _use(estimator, X, y):
    """Run the estimator on X the way a pipeline would at fit time."""
    est = clone(estimator)
    if hasattr(est, "fit_resample"):
        return est.fit_resample(X, y)
    return est.fit(X, y).transform(X)


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=IDS)
def test_nan_images(estimator):
    X = X_OK.astype(float)
    X[[2, 9], 0, 0] = [np.nan, np.inf]
    if isinstance(estimator, ImageValidator):
        X_kept, y_kept = _use(estimator, X, Y_OK)
        assert len(X_kept) == len(y_kept) == 10
        return
    with pytest.raises(ImageReadError, match="2 of 12 image") as info:
        _use(estimator, X, Y_OK)
    assert [(i, reason) for i, _, reason in info.value.failures] == [
        (2, "contains NaN or infinite values"),
        (9, "contains NaN or infinite values"),
    ]
    # transformers fitted on good images name the bad ones at transform time
    if hasattr(estimator, "transform"):
        fitted = clone(estimator).fit(X_OK, Y_OK)
        with pytest.raises(ImageReadError, match="item 9 \\(ndarray\\): contains NaN"):
            fitted.transform(X)


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=IDS)
def test_complex_images_rejected(estimator):
    X = np.zeros((3, 4, 4), dtype=complex)
    with pytest.raises(
        ImageReadError,
        match=re.escape(
            "expected a 1-D sequence of images, got an array of dtype complex128 and "
            "shape (3, 4, 4)"
        ),
    ):
        clone(estimator).fit(X, [0, 1, 0])


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=IDS)
def test_sparse_rejected(estimator):
    X = sp.csr_matrix(np.ones((3, 4)))
    with pytest.raises(ImageReadError, match="a sparse matrix is not image input"):
        clone(estimator).fit(X, [0, 1, 0])


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=IDS)
def test_bad_files_are_all_named(estimator, tmp_path):
    good = tmp_path / "good.png"
    Image.fromarray(X_OK[0]).save(good)
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    X = [str(good), str(tmp_path / "missing.png"), str(empty)]
    if isinstance(estimator, ImageValidator):
        kept, _ = clone(estimator).fit_resample(X, [0, 1, 0])
        assert kept == [str(good)]
        return
    if isinstance(estimator, (ImageRandomOverSampler, ImageRandomUnderSampler)):
        pytest.skip("class balancing reads nothing: paths are only indexed")
    with pytest.raises(ImageReadError, match="2 of 3 image") as info:
        _use(estimator, X, [0, 1, 0])
    assert [item for _, item, _ in info.value.failures] == X[1:]
    message = str(info.value)
    assert "missing.png: file not found" in message
    assert "empty.png: empty file (0 bytes)" in message


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=IDS)
def test_y_of_wrong_length(estimator):
    if not hasattr(estimator, "fit_resample"):
        pytest.skip("y is ignored by transformers and clusterers")
    with pytest.raises(ValueError, match=r"inconsistent numbers of samples: \[12, 5\]"):
        clone(estimator).fit_resample(X_OK, Y_OK[:5])


@pytest.mark.parametrize(
    "sampler", [ImageRandomOverSampler(), ImageRandomUnderSampler()]
)
def test_class_balancing_needs_class_labels(sampler):
    with pytest.raises(
        ValueError, match="requires y to be passed, but the target y is None"
    ):
        clone(sampler).fit_resample(X_OK)
    with pytest.raises(ValueError, match="Unknown label type: continuous"):
        clone(sampler).fit_resample(X_OK, np.linspace(0, 1, 12))
    three = np.arange(12) % 3
    with pytest.raises(
        ValueError, match="can be a float only when the type of target is binary"
    ):
        clone(sampler).set_params(sampling_strategy=0.5).fit_resample(X_OK, three)


def test_kmeans_fewer_images_than_clusters():
    with pytest.raises(ValueError, match=r"n_samples=12 should be >= n_clusters=13\."):
        IntensityKMeans(n_clusters=13).fit(X_OK)


def test_score_n_clusters_bad_arguments():
    with pytest.raises(ValueError, match=r"k_range is empty"):
        score_n_clusters(X_OK, [])
    with pytest.raises(
        ValueError,
        match=re.escape(
            "k_range holds [1, 12], but the silhouette score needs "
            "2 <= k <= n_samples - 1 = 11"
        ),
    ):
        score_n_clusters(X_OK, [1, 3, 12])
    with pytest.raises(
        TypeError, match="estimator must be an IntensityKMeans, got KMeans"
    ):
        from sklearn.cluster import KMeans

        score_n_clusters(X_OK, estimator=KMeans())
    with pytest.raises(InvalidParameterError, match="The 'n_init' parameter"):
        score_n_clusters(X_OK, estimator=IntensityKMeans(n_init=0))


def test_plot_needs_two_axes():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    _, axes = plt.subplots(1, 3)
    scores = {"k": [2, 3], "inertia": [2.0, 1.0], "silhouette": [0.5, 0.4], "best_k": 2}
    with pytest.raises(ValueError, match="axes must hold two matplotlib Axes, got 3"):
        plot_elbow_silhouette(scores, axes=axes)
    plt.close("all")


def test_validate_images_bad_arguments():
    with pytest.raises(ImageReadError, match="a single image was given"):
        validate_images("scan.png")
    with pytest.raises(ImageReadError, match="expected an image array of shape"):
        validate_images(np.zeros((3, 4)))
    with pytest.raises(ValueError, match="min_size must be a positive int"):
        validate_images(X_OK, min_size=-1)
    with pytest.raises(ValueError, match="allowed_colors must be None"):
        validate_images(X_OK, allowed_colors="rgba")
    report = validate_images([X_OK[0], 42, None])
    assert report.invalid == {
        "item 1 (int)": "unsupported item type int; expected a file path, a PIL "
        "image or a numpy array",
        "item 2 (NoneType)": "unsupported item type NoneType; expected a file path, a "
        "PIL image or a numpy array",
    }
