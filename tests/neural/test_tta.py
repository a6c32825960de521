"""CNNClassifier(tta=): test-time flips averaged in predict_proba."""

import numpy as np
import pytest

import skmedimg.neural._classifier as classifier_module
from tests.neural.test_estimator_contract import make_lesions, tiny


@pytest.fixture(scope="module")
def data():
    X, y = make_lesions(n_samples=32)
    # an asymmetric cue, so that flipped views really differ
    X[y == 1, :, :6] = 255
    return X, y


@pytest.fixture(scope="module")
def fitted(data):
    X, y = data
    return tiny(max_epochs=5).fit(X, y)


def _plain(clf, X):
    return clf.set_params(tta=None).predict_proba(X)


@pytest.mark.parametrize(
    "tta, views",
    [
        ("hflip", [lambda X: X, lambda X: X[:, :, ::-1]]),
        (
            "flips",
            [
                lambda X: X,
                lambda X: X[:, :, ::-1],
                lambda X: X[:, ::-1, :],
                lambda X: X[:, ::-1, ::-1],
            ],
        ),
    ],
)
def test_probabilities_are_the_mean_over_the_views(data, fitted, tta, views):
    X, _ = data
    expected = np.mean([_plain(fitted, np.ascontiguousarray(v(X))) for v in views], 0)
    proba = fitted.set_params(tta=tta).predict_proba(X)
    np.testing.assert_allclose(proba, expected, rtol=1e-5, atol=1e-6)
    assert not np.allclose(proba, _plain(fitted, X), atol=1e-4)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert fitted.net_.module_.tta == ()  # reset after predicting
    assert fitted.set_params(tta=tta).score(X, data[1]) == np.mean(
        fitted.classes_[expected.argmax(1)] == data[1]
    )


def test_training_and_its_validation_scores_do_not_change(data):
    X, y = data
    params = dict(freeze="none", lr=0.05, max_epochs=2, early_stopping=3)
    plain = tiny(**params).fit(X, y)
    flipped = tiny(tta="flips", **params).fit(X, y)
    for key in ("train_loss", "train_acc", "valid_loss", "valid_acc"):
        assert flipped.history_[key] == plain.history_[key], key


def test_frozen_feature_cache_is_bypassed(data, tmp_path, monkeypatch):
    X, y = data
    clf = tiny(memory=tmp_path, tta="hflip").fit(X, y)
    calls = []
    real = classifier_module._backbone_features

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(classifier_module, "_backbone_features", counting)
    proba = clf.predict_proba(X)
    assert calls == []  # no cached features read for the flipped views
    np.testing.assert_allclose(
        proba,
        (_plain(clf, X) + _plain(clf, np.ascontiguousarray(X[:, :, ::-1]))) / 2,
        rtol=1e-5,
        atol=1e-6,
    )


def test_unknown_tta_is_refused(data):
    X, y = data
    with pytest.raises(ValueError, match="'tta' parameter"):
        tiny(tta="rotate").fit(X, y)
