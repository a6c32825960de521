"""ImageRandomOverSampler and ImageRandomUnderSampler on image inputs."""

from collections import Counter

import numpy as np
import pandas as pd
import pytest
from imblearn.over_sampling import RandomOverSampler
from imblearn.under_sampling import RandomUnderSampler
from sklearn.naive_bayes import GaussianNB
from sklearn.preprocessing import FunctionTransformer

from skmedimg.pipeline import make_pipeline
from skmedimg.preprocessing import (
    ImageRandomOverSampler,
    ImageRandomUnderSampler,
    ImageResizer,
)

Y = np.array(["glioma"] * 6 + ["meningioma"] * 3 + ["pituitary"] * 1)


def _flatten(X):
    return X.reshape(len(X), -1).astype(float)


def test_imblearn_samplers_reject_images_ours_accept_them():
    X = np.zeros((10, 4, 4, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match="Found array with dim 4"):
        RandomOverSampler().fit_resample(X, Y)
    X_res, y_res = ImageRandomOverSampler(random_state=0).fit_resample(X, Y)
    assert X_res.shape == (18, 4, 4, 3)
    assert Counter(y_res) == {"glioma": 6, "meningioma": 6, "pituitary": 6}


def test_indices_match_imblearn_on_a_feature_matrix():
    X = np.arange(10).reshape(-1, 1)
    for ours, theirs in [
        (ImageRandomOverSampler(random_state=3), RandomOverSampler(random_state=3)),
        (ImageRandomUnderSampler(random_state=3), RandomUnderSampler(random_state=3)),
    ]:
        images = np.repeat(X[:, :, None], 4, axis=2).reshape(10, 1, 4) * np.ones(
            (10, 3, 4)
        )
        X_res, y_res = ours.fit_resample(images, Y)
        X_ref, y_ref = theirs.fit_resample(X, Y)
        np.testing.assert_array_equal(X_res[:, 0, 0], X_ref[:, 0])
        np.testing.assert_array_equal(y_res, y_ref)
        np.testing.assert_array_equal(ours.sample_indices_, theirs.sample_indices_)
        assert ours.sampling_strategy_ == theirs.sampling_strategy_


def test_paths_and_series_keep_their_kind():
    paths = [f"scan_{i}.jpg" for i in range(10)]  # nothing is read
    X_res, y_res = ImageRandomUnderSampler(random_state=0).fit_resample(paths, Y)
    assert isinstance(X_res, list) and Counter(y_res) == {
        "glioma": 1,
        "meningioma": 1,
        "pituitary": 1,
    }
    assert all(paths.index(p) in range(10) for p in X_res)
    series = pd.Series(paths, index=range(100, 110))
    X_res, y_res = ImageRandomOverSampler(random_state=0).fit_resample(
        series, pd.Series(Y, index=series.index)
    )
    assert isinstance(X_res, pd.Series) and len(X_res) == 18
    assert (
        X_res.index.to_numpy() - 100 == np.array([paths.index(p) for p in X_res])
    ).all()


def test_sampling_strategy_dict_and_replacement():
    X = np.zeros((10, 2, 2), dtype=np.uint8)
    under = ImageRandomUnderSampler(
        sampling_strategy={"glioma": 2, "meningioma": 3}, random_state=0
    )
    _, y_res = under.fit_resample(X, Y)
    assert Counter(y_res) == {"glioma": 2, "meningioma": 3, "pituitary": 1}
    over = ImageRandomOverSampler(sampling_strategy={"pituitary": 4}, random_state=0)
    _, y_res = over.fit_resample(X, Y)
    assert Counter(y_res)["pituitary"] == 4
    under = ImageRandomUnderSampler(replacement=True, random_state=0)
    assert len(under.fit_resample(X, Y)[0]) == 3


def test_deterministic_with_random_state():
    X = np.arange(10)[:, None, None] * np.ones((10, 3, 3))
    a = ImageRandomOverSampler(random_state=7).fit_resample(X, Y)[0]
    b = ImageRandomOverSampler(random_state=7).fit_resample(X, Y)[0]
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "sampler, expected",
    [
        (ImageRandomUnderSampler(random_state=0), [1, 1, 1]),
        (ImageRandomOverSampler(random_state=0), [6, 6, 6]),
        (
            ImageRandomOverSampler(sampling_strategy="minority", random_state=0),
            [6, 3, 6],
        ),
    ],
)
def test_balancing_in_a_pipeline_changes_training_counts_only(sampler, expected):
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, (10, 12, 12), dtype=np.uint8)
    X_new = rng.integers(0, 256, (7, 20, 20), dtype=np.uint8)
    pipe = make_pipeline(
        sampler,
        ImageResizer(image_size=8, color="gray"),
        FunctionTransformer(_flatten),
        GaussianNB(),
    ).fit(X, Y)
    assert pipe[-1].class_count_.tolist() == expected
    # prediction: every image predicted, the sampler plays no part
    predicted = pipe.predict(X_new)
    assert predicted.shape == (7,)
    without_sampler = make_pipeline(*[step for _, step in pipe.steps[1:]])
    np.testing.assert_array_equal(predicted, without_sampler.predict(X_new))
    np.testing.assert_allclose(
        pipe.predict_proba(X_new), without_sampler.predict_proba(X_new)
    )
