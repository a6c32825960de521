"""The preprocessing steps composed as users compose them."""

from pathlib import Path

import imblearn.pipeline
import numpy as np
import pytest
from PIL import Image
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_validate
from sklearn.neighbors import KNeighborsClassifier
from sklearn.preprocessing import FunctionTransformer

import skmedimg.pipeline
from skmedimg.pipeline import Pipeline, make_pipeline
from skmedimg.preprocessing import (
    ImageResizer,
    ImageValidator,
    SizeOutlierRejector,
    validate_images,
)
from skmedimg.utils import IMAGE_EXTENSIONS, ImageReadError, read_image_sizes


def _flatten(X):
    return X.reshape(len(X), -1) / 255.0


def _pipeline(classifier=None):
    return make_pipeline(
        ImageValidator(),
        SizeOutlierRejector(),
        ImageResizer(image_size=16, color="gray"),
        FunctionTransformer(_flatten),
        classifier or KNeighborsClassifier(n_neighbors=3),
    )


def test_reexports_are_imblearns():
    assert Pipeline is imblearn.pipeline.Pipeline
    assert make_pipeline is imblearn.pipeline.make_pipeline
    assert skmedimg.pipeline.__all__ == ["Pipeline", "make_pipeline"]


def _varied_images(n, seed=0):
    """Arrays of varied sizes around 40 x 40, two classes by brightness."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    X = []
    for label in y:
        h, w = rng.integers(36, 45, 2)
        X.append(rng.integers(0, 120, (h, w)).astype(np.uint8) + 100 * label)
    return X, y


def test_grid_search_drops_per_training_fold_only():
    X, y = _varied_images(60)
    X[7] = np.zeros((400, 40), dtype=np.uint8)  # size outliers, in different folds
    X[22] = np.zeros((40, 300), dtype=np.uint8)
    X[45] = np.zeros((41, 41), dtype=np.uint8)  # not an outlier
    seen = []

    def record(estimator, X_test, y_test):
        # called once per (candidate, fold), right after fitting on the fold
        seen.append(
            {
                "mean_size": estimator["sizeoutlierrejector"].mean_size_.copy(),
                "dropped": [
                    d["index"] for d in estimator["sizeoutlierrejector"].dropped_
                ],
                "n_fit": estimator[-1].n_samples_fit_,
                "n_test": len(X_test),
            }
        )
        return estimator.score(X_test, y_test)

    cv = StratifiedKFold(n_splits=3, shuffle=True, random_state=0)
    grid = GridSearchCV(
        _pipeline(),
        {
            "sizeoutlierrejector__threshold": [2.5, 3.0],
            "kneighborsclassifier__n_neighbors": [1, 3],
        },
        cv=cv,
        scoring=record,
        refit=False,
    ).fit(X, y)
    assert len(seen) == 4 * 3
    sizes = read_image_sizes(X).astype(float)
    folds = list(cv.split(X, y))
    for i, record_ in enumerate(seen):
        candidate = grid.cv_results_["params"][i // 3]
        threshold = candidate["sizeoutlierrejector__threshold"]
        train, test = folds[i % 3]
        fold_sizes = sizes[train]
        mean, std = fold_sizes.mean(axis=0), fold_sizes.std(axis=0)
        outlier = (fold_sizes > mean + threshold * std) | (
            fold_sizes < mean - threshold * std
        )
        expected = np.flatnonzero(outlier.any(axis=1))
        np.testing.assert_allclose(record_["mean_size"], mean)
        assert record_["dropped"] == expected.tolist()
        assert set(train[expected]) <= {7, 22}  # only planted outliers dropped
        assert record_["n_fit"] == len(train) - len(expected)
        assert record_["n_test"] == len(test)  # test folds are never resampled
    assert not np.isnan(grid.cv_results_["mean_test_score"]).any()


def test_validator_drops_in_training_folds_and_never_at_predict(tmp_path):
    rng = np.random.default_rng(0)
    y = np.arange(24) % 2
    paths = []
    for i, label in enumerate(y):
        path = tmp_path / f"{i}.png"
        pixels = rng.integers(0, 100, (32, 32)) + 120 * label
        Image.fromarray(pixels.astype(np.uint8)).save(path)
        paths.append(str(path))
    Path(paths[5]).write_bytes(b"")  # broken in the training data
    cv = StratifiedKFold(n_splits=3, shuffle=True, random_state=0)
    # the fold testing on the broken file cannot be scored: predict raises
    # (never a silent drop), which cross_validate reports as a nan score
    with pytest.warns(UserWarning, match=r"Scoring failed[\s\S]*ImageReadError"):
        result = cross_validate(
            _pipeline(), paths, y, cv=cv, return_estimator=True, error_score=np.nan
        )
    folds = list(cv.split(paths, y))
    for (train, test), fitted, score in zip(
        folds, result["estimator"], result["test_score"], strict=True
    ):
        dropped = [train[d["index"]] for d in fitted["imagevalidator"].dropped_]
        assert dropped == ([5] if 5 in train else [])
        assert fitted[-1].n_samples_fit_ == len(train) - len(dropped)
        assert np.isnan(score) == (5 in test)
    fitted = result["estimator"][0]
    with pytest.raises(ImageReadError, match=r"5\.png: empty file \(0 bytes\)"):
        fitted.predict([paths[0], paths[5]])


def test_real_paths_fit_and_predict(brain_testing_original, tmp_path):
    paths = sorted(
        str(p)
        for p in brain_testing_original.rglob("*")
        if p.suffix.lower() in IMAGE_EXTENSIONS
    )
    rng = np.random.default_rng(0)
    order = rng.permutation(len(paths))
    train = [paths[i] for i in order[:240]]
    new = [paths[i] for i in order[240:300]]
    zero = tmp_path / "zero.jpg"
    zero.write_bytes(b"")
    text = tmp_path / "text.jpg"
    text.write_text("not an image")
    X = train + [str(zero), str(text)]
    y = [Path(p).parent.name for p in train] + ["glioma", "notumor"]
    pipe = _pipeline(LogisticRegression(max_iter=200)).fit(X, y)
    assert {d["item"] for d in pipe["imagevalidator"].dropped_} == {
        str(zero),
        str(text),
    }
    n_outliers = len(pipe["sizeoutlierrejector"].dropped_)
    assert pipe[-1].coef_.shape == (4, 256)
    predicted = pipe.predict(new)
    assert predicted.shape == (60,)
    assert set(predicted) <= {"glioma", "meningioma", "notumor", "pituitary"}
    assert pipe.score(new, [Path(p).parent.name for p in new]) > 0.25
    # what the final step saw: the 240 real images less the size outliers
    knn = _pipeline().fit(X, y)
    assert knn[-1].n_samples_fit_ == 240 - n_outliers
    # at predict time the validator is skipped: a bad file is named, not dropped
    with pytest.raises(ImageReadError, match="text.jpg: not a recognised image format"):
        pipe.predict(new[:3] + [str(text)])
    report = validate_images(new[:3] + [str(text)])
    assert list(report.invalid) == [str(text)]
