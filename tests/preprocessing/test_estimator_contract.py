"""The image versions of scikit-learn's estimator checks.

scikit-learn's ``parametrize_with_checks`` feeds 2-D feature matrices, which are
not images; the checks it cannot run on these estimators (listed with reasons in
``checks_registry.py``) are re-done here on image input.
"""

import pickle

import joblib
import numpy as np
import pandas as pd
import pytest
from PIL import Image
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from skmedimg.pipeline import make_pipeline
from skmedimg.preprocessing import (
    ImageRandomOverSampler,
    ImageRandomUnderSampler,
    ImageResizer,
    ImageValidator,
    IntensityFeatures,
    IntensityKMeans,
    SizeOutlierRejector,
)
from skmedimg.utils import ImageReadError
from tests.preprocessing.checks_registry import ESTIMATORS

IDS = [type(est).__name__ for est in ESTIMATORS]
SAMPLERS = (
    ImageValidator,
    SizeOutlierRejector,
    ImageRandomOverSampler,
    ImageRandomUnderSampler,
)
STATELESS = (ImageResizer, IntensityFeatures)
RANDOM = (ImageRandomOverSampler, ImageRandomUnderSampler)


def _data(n=24, size=16, seed=0):
    rng = np.random.default_rng(seed)
    y = np.array([0] * (2 * n // 3) + [1] * (n - 2 * n // 3))
    X = rng.integers(0, 100, (n, size, size)) + 120 * y[:, None, None]
    return X.astype(np.uint8), y


def _outputs(est, X, y=None):
    """What the fitted (or, for samplers, fitting) estimator produces."""
    if isinstance(est, SAMPLERS):
        X_res, y_res = est.fit_resample(X, y)
        return [np.asarray(X_res), None if y_res is None else np.asarray(y_res)]
    if isinstance(est, IntensityKMeans):
        return [est.predict(X), est.transform(X)]
    return [est.transform(X)]


def _assert_same(a, b):
    assert len(a) == len(b)
    for x, z in zip(a, b, strict=True):
        if x is None:
            assert z is None
        else:
            np.testing.assert_array_equal(x, z)


def _fitted(est, X, y):
    return clone(est).fit(X, y)


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=IDS)
def test_fit_returns_self(estimator):
    X, y = _data()
    est = clone(estimator)
    assert est.fit(X, y) is est
    if not isinstance(est, RANDOM):  # y is optional for all but class balancing
        assert clone(estimator).fit(X) is not None


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=IDS)
def test_fit_does_not_mutate_params(estimator):
    X, y = _data()
    est = clone(estimator)
    before = joblib.hash(est.get_params(deep=False))
    est.fit(X, y)
    _outputs(est, X, y)
    assert joblib.hash(est.get_params(deep=False)) == before


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=IDS)
def test_pickle_round_trip(estimator):
    X, y = _data()
    est = _fitted(estimator, X, y)
    restored = pickle.loads(pickle.dumps(est))
    if isinstance(est, SAMPLERS):
        np.testing.assert_array_equal(restored.sample_indices_, est.sample_indices_)
        assert getattr(restored, "dropped_", None) == getattr(est, "dropped_", None)
    else:
        _assert_same(_outputs(restored, X), _outputs(est, X))


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=IDS)
def test_refit_is_deterministic(estimator):
    X, y = _data()
    _assert_same(
        _outputs(_fitted(estimator, X, y), X, y),
        _outputs(clone(estimator).fit(X, y), X, y),
    )
    est = clone(estimator)
    first = _outputs(est.fit(X, y), X, y)
    _assert_same(_outputs(est.fit(X, y), X, y), first)  # refitting the same object


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=IDS)
def test_clone_is_unfitted_with_equal_params(estimator):
    X, y = _data()
    est = _fitted(estimator, X, y)
    copy = clone(est)
    assert joblib.hash(copy.get_params()) == joblib.hash(est.get_params())
    fitted_attrs = [k for k in vars(copy) if k.endswith("_") and not k.startswith("__")]
    assert fitted_attrs == []


SET_PARAMS = {
    ImageValidator: ("min_size", 17, lambda out: len(out[0]) == 0),
    SizeOutlierRejector: ("threshold", 0.01, lambda out: len(out[0]) < 24),
    ImageResizer: ("image_size", (5, 7), lambda out: out[0].shape == (24, 5, 7, 3)),
    IntensityFeatures: ("n_bins", 4, lambda out: out[0].shape == (24, 11)),
    IntensityKMeans: ("n_clusters", 3, lambda out: out[1].shape == (24, 3)),
    ImageRandomOverSampler: (
        "sampling_strategy",
        {1: 12},
        lambda out: len(out[0]) == 28,
    ),
    ImageRandomUnderSampler: (
        "sampling_strategy",
        {0: 4},
        lambda out: len(out[0]) == 12,
    ),
}


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=IDS)
def test_set_params_takes_effect(estimator):
    X, y = _data()
    X = X.copy()
    X[3] = 0
    if isinstance(estimator, SizeOutlierRejector):  # give the sizes a spread
        X = [np.zeros((16, 16 + i % 5), dtype=np.uint8) for i in range(24)]
    name, value, effect = SET_PARAMS[type(estimator)]
    est = clone(estimator).set_params(**{name: value})
    assert getattr(est, name) == value
    if isinstance(est, ImageValidator):
        with pytest.raises(ImageReadError, match="smaller than min_size=\\(17, 17\\)"):
            est.fit_resample(X, y)
        return
    assert effect(_outputs(est.fit(X, y), X, y))


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=IDS)
def test_n_samples_preserved(estimator):
    X, y = _data()
    est = _fitted(estimator, X, y)
    outputs = _outputs(est, X, y)
    if isinstance(est, SAMPLERS):
        assert len(outputs[0]) == len(outputs[1]) == len(est.sample_indices_)
        np.testing.assert_array_equal(outputs[0], X[est.sample_indices_])
    else:
        assert all(len(out) == len(X) for out in outputs)
        assert all(len(out) == 5 for out in _outputs(est, X[:5]))


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=IDS)
def test_methods_do_not_change_state(estimator):
    if isinstance(estimator, SAMPLERS):
        pytest.skip("samplers have no method but fit_resample, which fits")
    X, y = _data()
    est = _fitted(estimator, X, y)
    state = joblib.hash(vars(est))
    _outputs(est, X)
    if hasattr(est, "score"):
        est.score(X)
    assert joblib.hash(vars(est)) == state


def _dtype_variants():
    X, _ = _data()
    base = X.astype(float)
    return {
        "uint8": X,
        "uint16": (base * 250).astype(np.uint16),
        "int64 with negatives": (base - 100).astype(np.int64),
        "float32 in [0, 1]": (base / 255).astype(np.float32),
        "float64": base * 1000.0,
        "bool": X > 100,
        "fortran order": np.asfortranarray(X),
        "with a channel axis": X[..., None],
    }


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=IDS)
def test_image_dtypes(estimator):
    _, y = _data()
    for name, X in _dtype_variants().items():
        est = clone(estimator).fit(X, y)
        outputs = _outputs(est, X, y)
        if isinstance(est, (ImageValidator, SizeOutlierRejector)):
            assert len(outputs[0]) == len(X), name  # nothing to drop
        elif isinstance(est, SAMPLERS):
            assert len(outputs[0]) == len(est.sample_indices_) > len(X) // 2, name
        else:
            assert all(len(out) == len(X) for out in outputs), name
    # memory layout and a trailing channel axis change nothing
    variants = _dtype_variants()
    reference = _outputs(
        clone(estimator).fit(variants["uint8"], y), variants["uint8"], y
    )
    for name in ["fortran order", "with a channel axis"]:
        X = variants[name]
        outputs = _outputs(clone(estimator).fit(X, y), X, y)
        if not isinstance(estimator, SAMPLERS):
            for out, ref in zip(outputs, reference, strict=True):
                np.testing.assert_allclose(out, ref, err_msg=name)


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=IDS)
def test_output_dtypes(estimator):
    _, y = _data()
    for X in _dtype_variants().values():
        out = _outputs(clone(estimator).fit(X, y), X, y)[
            -1 if isinstance(estimator, IntensityKMeans) else 0
        ]
        if isinstance(estimator, ImageResizer):
            assert out.dtype == np.uint8
        elif isinstance(estimator, (IntensityFeatures, IntensityKMeans)):
            assert out.dtype == np.float64
        else:  # samplers return the images as given
            assert out.dtype == X.dtype


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=IDS)
def test_readonly_images(estimator, tmp_path):
    X, y = _data()
    X.setflags(write=False)
    _outputs(clone(estimator).fit(X, y), X, y)
    memmap = joblib.load(joblib.dump(X, tmp_path / "X.joblib")[0], mmap_mode="r")
    _outputs(clone(estimator).fit(memmap, y), memmap, y)


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=IDS)
def test_sample_order(estimator):
    X, y = _data()
    perm = np.random.default_rng(1).permutation(len(X))
    if isinstance(estimator, RANDOM):
        pytest.skip("random resampling depends on the order by design")
    if isinstance(estimator, SAMPLERS):
        est = clone(estimator)
        kept = set(map(bytes, est.fit_resample(X, y)[0]))
        assert set(map(bytes, est.fit_resample(X[perm], y[perm])[0])) == kept
        return
    est = _fitted(estimator, X, y)
    for whole, permuted in zip(_outputs(est, X), _outputs(est, X[perm]), strict=True):
        np.testing.assert_allclose(whole[perm], permuted)
    for whole, part in zip(_outputs(est, X), _outputs(est, X[5:9]), strict=True):
        np.testing.assert_allclose(whole[5:9], part)


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=IDS)
def test_fitted_state(estimator):
    X, y = _data()
    est = clone(estimator)
    if isinstance(est, STATELESS):
        check_is_fitted(est)
        _outputs(est, X)  # no fit needed
    elif isinstance(est, IntensityKMeans):
        for method in (
            est.predict,
            est.transform,
            est.score,
            est.get_feature_names_out,
        ):
            with pytest.raises(NotFittedError):
                method(X) if method != est.get_feature_names_out else method()
    else:
        with pytest.raises(NotFittedError):
            check_is_fitted(est)
    est.fit(X, y)
    check_is_fitted(est)


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=IDS)
def test_pipeline_consistency(estimator):
    X, y = _data()
    alone = clone(estimator).fit(X, y)
    pipe = make_pipeline(clone(estimator)).fit(X, y)
    if isinstance(estimator, SAMPLERS):
        _assert_same(
            list(clone(estimator).fit_resample(X, y)),
            list(make_pipeline(clone(estimator)).fit_resample(X, y)),
        )
    elif isinstance(estimator, IntensityKMeans):
        np.testing.assert_array_equal(pipe.predict(X), alone.predict(X))
        np.testing.assert_allclose(pipe.transform(X), alone.transform(X))
    else:
        np.testing.assert_array_equal(pipe.transform(X), alone.transform(X))


@pytest.fixture(scope="module")
def png_paths(tmp_path_factory):
    X, _ = _data()
    folder = tmp_path_factory.mktemp("pngs")
    paths = []
    for i, image in enumerate(X):
        paths.append(str(folder / f"{i}.png"))
        Image.fromarray(image).save(paths[-1])
    return paths


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=IDS)
def test_container_kinds(estimator, png_paths):
    """Paths as a list, a tuple, a 1-D object array and a pandas Series agree."""
    X, y = _data()
    reference = _outputs(clone(estimator).fit(X, y), X, y)
    for paths in (png_paths, tuple(png_paths), pd.Series(png_paths)):
        est = clone(estimator).fit(paths, y)
        outputs = _outputs(est, paths, y)
        if isinstance(est, SAMPLERS):
            np.testing.assert_array_equal(outputs[1], reference[1])
            np.testing.assert_array_equal(
                est.sample_indices_, clone(estimator).fit(X, y).sample_indices_
            )
        else:
            for out, ref in zip(outputs, reference, strict=True):
                np.testing.assert_allclose(out, ref)


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=IDS)
def test_object_array_of_paths(estimator, png_paths):
    _, y = _data()
    paths = np.array(png_paths, dtype=object)
    est = clone(estimator).fit(paths, y)
    out = _outputs(est, paths, y)
    if isinstance(est, SAMPLERS):
        assert out[0].dtype == object
        assert set(out[0]) <= set(png_paths)


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=IDS)
def test_one_image_not_a_sequence(estimator, png_paths):
    with pytest.raises(
        ImageReadError, match="a single image was given where a sequence"
    ):
        clone(estimator).fit(png_paths[0], [0])
    with pytest.raises(ImageReadError, match="expected an image array of shape"):
        clone(estimator).fit(np.zeros((24, 16)), np.arange(24) % 2)
