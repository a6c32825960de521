"""SegmentationEnsemble: the (weighted) mean of its members' probability maps."""

import numpy as np
import pytest

pytest.importorskip("monai")

from sklearn.base import clone  # noqa: E402

from skmedimg.datasets import make_segmentation_phantoms  # noqa: E402
from skmedimg.segmentation import (  # noqa: E402
    BRATS_REGIONS,
    CNNSegmenter,
    SegmentationEnsemble,
    dice_score,
)


def member(seed, **params):
    defaults = dict(
        network__channels=(4, 8),
        network__num_res_units=0,
        max_epochs=2,
        batch_size=4,
        lr=1e-2,
        device="cpu",
        random_state=seed,
    )
    return CNNSegmenter(**{**defaults, **params})


def members(**params):
    return [("a", member(0, **params)), ("b", member(1, **params))]


@pytest.fixture(scope="module")
def data():
    X, y = make_segmentation_phantoms(8, image_size=32, random_state=0)
    X_test, _ = make_segmentation_phantoms(3, image_size=32, random_state=1)
    return X, y, X_test


@pytest.fixture(scope="module")
def fitted(data):
    X, y, _ = data
    return SegmentationEnsemble(members()).fit(X, y)


def test_equal_weights_average_the_members_maps(fitted, data):
    _, _, X_test = data
    a, b = fitted.estimators_
    by_hand = (a.predict_proba(X_test) + b.predict_proba(X_test)) / 2
    proba = fitted.predict_proba(X_test)
    assert proba.shape == (3, 32, 32, 2) and proba.dtype == np.float32
    np.testing.assert_allclose(proba, by_hand, atol=1e-6)
    # the members differ, so the mean is neither of them
    assert not np.allclose(proba, a.predict_proba(X_test), atol=1e-3)
    np.testing.assert_array_equal(fitted.weights_, [0.5, 0.5])
    assert fitted.cv_scores_ is None
    np.testing.assert_array_equal(
        fitted.predict(X_test), fitted.classes_[by_hand.argmax(-1)]
    )
    assert fitted.named_estimators_["b"] is b
    # the members given are templates: cloned, never fitted in place
    assert not hasattr(fitted.estimators[0][1], "network_")


def test_given_weights_are_normalised(data, fitted):
    X, y, X_test = data
    weighted = SegmentationEnsemble(members(), weights=[3, 1]).fit(X, y)
    np.testing.assert_allclose(weighted.weights_, [0.75, 0.25])
    a, b = weighted.estimators_
    by_hand = 0.75 * a.predict_proba(X_test) + 0.25 * b.predict_proba(X_test)
    np.testing.assert_allclose(weighted.predict_proba(X_test), by_hand, atol=1e-6)
    # same seeds, same members: only the weights differ from the equal ensemble
    np.testing.assert_array_equal(
        a.predict_proba(X_test), fitted.estimators_[0].predict_proba(X_test)
    )


def test_cv_weights_are_the_members_cross_validated_dice(data):
    X, y, X_test = data
    ensemble = SegmentationEnsemble(members(), cv_weights=True, cv=2).fit(X, y)
    scores = ensemble.cv_scores_
    assert scores.shape == (2,) and np.isfinite(scores).all() and (scores > 0).all()
    np.testing.assert_allclose(ensemble.weights_, scores / scores.sum())
    a, b = ensemble.estimators_
    w = ensemble.weights_
    by_hand = w[0] * a.predict_proba(X_test) + w[1] * b.predict_proba(X_test)
    np.testing.assert_allclose(ensemble.predict_proba(X_test), by_hand, atol=1e-6)
    # the same as weights="cv"
    again = SegmentationEnsemble(members(), weights="cv", cv=2).fit(X, y)
    np.testing.assert_allclose(again.weights_, ensemble.weights_)


def test_clone_and_member_params(fitted):
    params = fitted.get_params()
    assert params["a__network__channels"] == (4, 8)
    assert params["b__random_state"] == 1
    copy = clone(fitted)
    assert not hasattr(copy, "estimators_")
    assert copy.get_params(deep=False).keys() == fitted.get_params(deep=False).keys()
    copy.set_params(a__network__channels=(2, 4), b__lr=0.1, cv=5)
    named = dict(copy.estimators)
    assert named["a"].get_params()["network__channels"] == (2, 4)
    assert named["b"].lr == 0.1 and copy.cv == 5
    # the original's members are untouched
    assert fitted.estimators[0][1].get_params()["network__channels"] == (4, 8)


def test_score_is_the_mean_dice_of_predict(fitted, data):
    X, y, _ = data
    expected = dice_score(y, fitted.predict(X), labels=[1])
    assert fitted.score(X, y) == pytest.approx(expected)


def test_sliding_window_shapes_and_regions():
    X, y = make_segmentation_phantoms(
        4, image_size=16, ndim=3, n_classes=4, random_state=0
    )
    ensemble = SegmentationEnsemble(members(regions=BRATS_REGIONS)).fit(X, y)
    assert ensemble.regions_ == ["WT", "TC", "ET"]
    big = np.random.default_rng(0).random((2, 20, 16, 24)).astype(np.float32)
    proba = ensemble.predict_proba(big)
    assert proba.shape == (2, 20, 16, 24, 3)
    assert proba.min() >= 0 and proba.max() <= 1
    a, b = ensemble.estimators_
    by_hand = (a.predict_proba(big) + b.predict_proba(big)) / 2
    np.testing.assert_allclose(proba, by_hand, atol=1e-6)
    np.testing.assert_array_equal(ensemble.predict(big), by_hand > 0.5)


def test_bad_ensembles_are_clear_errors(data):
    X, y, _ = data
    with pytest.raises(ValueError, match="weights must hold 2 non-negative numbers"):
        SegmentationEnsemble(members(), weights=[1, -1]).fit(X, y)
    with pytest.raises(ValueError, match="weights sum to 0"):
        SegmentationEnsemble(members(), weights=[0, 0]).fit(X, y)
    with pytest.raises(ValueError, match="give weights=None with it"):
        SegmentationEnsemble(members(), weights=[1, 1], cv_weights=True).fit(X, y)
    with pytest.raises(ValueError, match="non-empty list of \\(str, estimator\\)"):
        SegmentationEnsemble([]).fit(X, y)
    mixed = [("a", member(0)), ("b", member(1, regions={"lesion": [1]}))]
    with pytest.raises(ValueError, match="member 'b' predicts classes"):
        SegmentationEnsemble(mixed).fit(X, y)
