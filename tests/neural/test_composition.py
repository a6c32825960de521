"""CNNClassifier composed as users compose: on BreastMNIST (real data, CPU)."""

import numpy as np
import pytest
from joblib import Memory
from sklearn.ensemble import VotingClassifier
from sklearn.frozen import FrozenEstimator
from sklearn.metrics import balanced_accuracy_score, classification_report
from sklearn.model_selection import (
    FixedThresholdClassifier,
    GridSearchCV,
    StratifiedKFold,
    TunedThresholdClassifierCV,
    cross_validate,
)
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from sklearn.svm import SVC

from skmedimg.neural import CNNClassifier

NAMES = np.array(["malignant", "benign"])  # BreastMNIST: 0 malignant, 1 benign


@pytest.fixture(scope="module")
def breast(medmnist_dir):
    data = np.load(medmnist_dir / "breastmnist.npz")
    X, y = data["train_images"], NAMES[data["train_labels"].ravel()]
    X_test, y_test = data["test_images"], NAMES[data["test_labels"].ravel()]
    return X, y, X_test, y_test


@pytest.fixture(scope="module")
def breast_val(medmnist_dir):
    data = np.load(medmnist_dir / "breastmnist.npz")
    return data["val_images"], NAMES[data["val_labels"].ravel()]


def tiny_breast(**params):
    defaults = dict(
        pretrained=False,
        freeze="none",
        image_size=28,
        max_epochs=3,
        batch_size=64,
        device="cpu",
        random_state=0,
    )
    defaults.update(params)
    return CNNClassifier("test_resnet", **defaults)


def flatten(X):
    """Images (n, H, W) to pixel rows (n, H * W), scaled to [0, 1]."""
    return np.asarray(X, dtype=np.float32).reshape(len(X), -1) / 255.0


def test_grid_search_with_the_reports_grid(breast, tmp_path):
    X, y, X_test, y_test = breast
    # A subset of the report's grid {"dropout": [0.0, 0.1, 0.2], "weight_decay":
    # [0.0, 0.001, 0.01], "momentum": [0.9, 0.95], "lr": [1e-4, 1e-3, 1e-2]},
    # with a frozen backbone whose features are cached across candidates.
    grid = {
        "dropout": [0.0, 0.2],
        "weight_decay": [0.0, 0.01],
        "momentum": [0.9, 0.95],
        "lr": [1e-2],
    }
    search = GridSearchCV(
        tiny_breast(
            freeze="backbone", max_epochs=10, memory=Memory(tmp_path, verbose=0)
        ),
        grid,
        cv=StratifiedKFold(3),
    )
    search.fit(X, y)
    assert len(search.cv_results_["params"]) == 8
    assert set(search.best_params_) == set(grid)
    y_pred = search.predict(X_test)
    report = classification_report(y_test, y_pred, zero_division=0)
    print(report)
    assert "malignant" in report and "benign" in report
    assert set(y_pred) <= {"malignant", "benign"}


@pytest.mark.slow
def test_grid_search_fine_tuning(breast):
    X, y, _, _ = breast
    search = GridSearchCV(
        tiny_breast(max_epochs=1),
        {"lr": [1e-3, 1e-2]},
        cv=StratifiedKFold(3),
    )
    search.fit(X, y)
    assert search.best_estimator_.n_epochs_ == 1
    assert 0.5 <= search.best_score_ <= 1.0


# CNN + SVM soft voting is usually written with SVC(probability=True),
# deprecated in scikit-learn 1.9 in favour of
# CalibratedClassifierCV(SVC(), ensemble=False).
@pytest.mark.filterwarnings("ignore:The `probability` parameter:FutureWarning")
def test_soft_voting_with_an_svm(breast):
    X, y, X_test, y_test = breast
    svm = make_pipeline(
        FunctionTransformer(flatten), StandardScaler(), SVC(probability=True)
    )
    vote = VotingClassifier(
        [("cnn", tiny_breast(max_epochs=3)), ("svm", svm)], voting="soft"
    )
    vote.fit(X, y)
    proba = vote.predict_proba(X_test)
    assert proba.shape == (len(X_test), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_array_equal(vote.classes_, ["benign", "malignant"])
    accuracy = (vote.predict(X_test) == y_test).mean()
    print(f"soft vote accuracy on the BreastMNIST test split: {accuracy:.3f}")
    assert accuracy > 0.6


def test_cross_validate_five_folds(breast):
    X, y, _, _ = breast
    scores = cross_validate(
        tiny_breast(max_epochs=2),
        X,
        y,
        cv=StratifiedKFold(5, shuffle=True, random_state=0),
        scoring=["accuracy", "roc_auc"],
    )
    assert len(scores["test_accuracy"]) == 5
    assert np.isfinite(scores["test_roc_auc"]).all()


def test_operating_point_chosen_on_the_validation_split(breast, breast_val):
    # A fitted model, then its decision threshold for "malignant" chosen on the
    # official validation split for balanced accuracy; the model is not refitted.
    X, y, X_test, _ = breast
    X_val, y_val = breast_val
    clf = tiny_breast(max_epochs=3).fit(X, y)
    tuned = TunedThresholdClassifierCV(
        clf, scoring="balanced_accuracy", cv="prefit", refit=False
    ).fit(X_val, y_val)
    assert tuned.estimator_ is clf
    p_malignant = clf.predict_proba(X_test)[:, list(clf.classes_).index("malignant")]
    expected = np.where(p_malignant >= tuned.best_threshold_, "malignant", "benign")
    np.testing.assert_array_equal(tuned.predict(X_test), expected)
    # The threshold is the best one on the split it was chosen on, so it does at
    # least as well there as the default 0.5.
    assert tuned.best_score_ == pytest.approx(
        balanced_accuracy_score(y_val, tuned.predict(X_val))
    )
    assert tuned.best_score_ >= balanced_accuracy_score(y_val, clf.predict(X_val))

    # A fixed operating point on the same fitted model.
    fixed = FixedThresholdClassifier(
        FrozenEstimator(clf), threshold=0.25, pos_label="malignant"
    ).fit(X, y)
    np.testing.assert_array_equal(
        fixed.predict(X_test), np.where(p_malignant >= 0.25, "malignant", "benign")
    )
