import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skmedimg.datasets import PHANTOM_CLASSES, make_phantoms


def test_shapes_and_dtype_gray():
    X, y = make_phantoms(10, n_classes=3, image_size=32, random_state=0)
    assert X.shape == (10, 32, 32)
    assert X.dtype == np.uint8
    assert y.shape == (10,)
    assert y.dtype.kind == "i"
    assert set(np.unique(y)) == {0, 1, 2}


def test_shapes_rgb_channels_identical():
    X, _ = make_phantoms(6, image_size=24, n_channels=3, random_state=0)
    gray, _ = make_phantoms(6, image_size=24, n_channels=1, random_state=0)
    assert X.shape == (6, 24, 24, 3)
    assert X.dtype == np.uint8
    for c in range(3):
        np.testing.assert_array_equal(X[..., c], gray)


def test_images_use_the_intensity_range():
    X, _ = make_phantoms(20, image_size=32, random_state=0)
    assert X.min() < 20
    assert X.max() > 200
    # background (corners) darker than the head (centre)
    assert X[:, :3, :3].mean() < X[:, 12:20, 12:20].mean() - 50


def test_deterministic_for_int_seed():
    X1, y1 = make_phantoms(12, image_size=32, random_state=42)
    X2, y2 = make_phantoms(12, image_size=32, random_state=42)
    np.testing.assert_array_equal(X1, X2)
    np.testing.assert_array_equal(y1, y2)
    X3, _ = make_phantoms(12, image_size=32, random_state=43)
    assert not np.array_equal(X1, X3)


def test_random_state_instance_advances():
    rng = np.random.RandomState(0)
    X1, _ = make_phantoms(4, image_size=32, random_state=rng)
    X2, _ = make_phantoms(4, image_size=32, random_state=rng)
    assert not np.array_equal(X1, X2)


def test_deterministic_across_chunks(monkeypatch):
    from skmedimg.datasets import _phantoms

    X1, y1 = make_phantoms(9, image_size=32, random_state=0)
    monkeypatch.setattr(_phantoms, "_CHUNK_PIXELS", 32 * 32 * 2)  # chunks of 2
    X2, y2 = make_phantoms(9, image_size=32, random_state=0)
    np.testing.assert_array_equal(y1, y2)
    np.testing.assert_array_equal(X1, X2)


@pytest.mark.parametrize(
    "n_samples, n_classes, expected",
    [(10, 4, [3, 3, 2, 2]), (12, 4, [3, 3, 3, 3]), (7, 2, [4, 3]), (6, 6, [1] * 6)],
)
def test_balanced_classes(n_samples, n_classes, expected):
    _, y = make_phantoms(n_samples, n_classes=n_classes, image_size=16, random_state=0)
    assert np.bincount(y, minlength=n_classes).tolist() == expected


def test_labels_are_shuffled():
    _, y = make_phantoms(40, image_size=16, random_state=0)
    assert not np.all(np.diff(y) >= 0)


def test_weights_give_imbalance():
    _, y = make_phantoms(100, n_classes=2, weights=[0.9, 0.1], image_size=16)
    assert np.bincount(y).tolist() == [90, 10]
    # n_classes - 1 weights: the last class gets the rest
    _, y = make_phantoms(100, n_classes=3, weights=[0.5, 0.3], image_size=16)
    assert np.bincount(y).tolist() == [50, 30, 20]
    # unnormalised weights are normalised; rounding keeps n_samples
    _, y = make_phantoms(10, n_classes=3, weights=[1, 1, 1], image_size=16)
    assert np.bincount(y).tolist() == [4, 3, 3]


def test_class_sep_changes_only_the_lesions():
    X0, y0 = make_phantoms(40, image_size=32, class_sep=0.0, random_state=1)
    X1, y1 = make_phantoms(40, image_size=32, class_sep=1.0, random_state=1)
    np.testing.assert_array_equal(y0, y1)
    healthy = y1 == 0
    np.testing.assert_array_equal(X0[healthy], X1[healthy])
    diff = np.abs(X0.astype(int) - X1.astype(int)).reshape(len(y1), -1)
    # every lesion class changes every one of its images
    assert np.all(diff[~healthy].max(axis=1) >= 10)


def test_noise_parameter():
    X0, _ = make_phantoms(4, image_size=32, noise=0.0, random_state=0)
    X1, _ = make_phantoms(4, image_size=32, noise=0.1, random_state=0)
    background = np.s_[:, :4, :4]
    assert X0[background].max() == 0
    assert X1[background].std() > 5


def test_every_class_has_a_description():
    assert len(PHANTOM_CLASSES) == 6
    _, y = make_phantoms(60, n_classes=6, image_size=32, random_state=0)
    assert np.bincount(y).tolist() == [10] * 6


def _linear_cv_accuracy(class_sep):
    X, y = make_phantoms(
        400, n_classes=4, image_size=32, class_sep=class_sep, random_state=0
    )
    # 2x2 average pooling keeps the fit fast (256 pixels per image)
    X = X.reshape(len(X), 16, 2, 16, 2).mean(axis=(2, 4)).reshape(len(X), -1)
    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.01, max_iter=500))
    cv = StratifiedKFold(3, shuffle=True, random_state=0)
    return cross_val_score(model, X / 255.0, y, cv=cv).mean()


def test_learnable_but_not_trivial_for_a_linear_model():
    # chance is 0.25: pixels carry signal, but lesions move, so a linear model
    # on raw pixels stays far from perfect
    score = _linear_cv_accuracy(1.0)
    assert 0.35 < score < 0.8
    # the signal is the lesions: without them the classes are chance level
    assert _linear_cv_accuracy(0.0) < 0.32


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n_samples": 0}, "n_samples must be an int >= 1"),
        ({"n_samples": 2.5}, "n_samples must be an int >= 1"),
        ({"n_classes": 1}, "n_classes must be an int between 2 and 6"),
        ({"n_classes": 7}, "n_classes must be an int between 2 and 6"),
        ({"image_size": 8}, "image_size must be an int >= 16"),
        ({"image_size": (32, 32)}, "image_size must be an int >= 16"),
        ({"n_channels": 2}, "n_channels must be 1 or 3"),
        ({"n_channels": True}, "n_channels must be 1 or 3"),
        ({"class_sep": -1}, r"class_sep must be a number in \[0, 100\]"),
        ({"class_sep": 1e40}, r"class_sep must be a number in \[0, 100\]"),
        ({"class_sep": float("inf")}, "class_sep must be a number"),
        ({"noise": float("nan")}, r"noise must be a number in \[0, 10\]"),
        ({"noise": 1e40}, r"noise must be a number in \[0, 10\]"),
        ({"noise": "high"}, "noise must be a number"),
        ({"weights": [0.5, 0.5, 0.5, 0.5, 0.5]}, "weights must have n_classes=4"),
        ({"weights": [0.5, -0.1, 0.3, 0.3]}, "weights must be non-negative"),
    ],
)
def test_argument_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_phantoms(**{"n_samples": 4, "image_size": 16, **kwargs})
