"""What the command line shows: progress, the console report, the threshold,
Grad-CAM panels, the explain figure and the training curves."""

import json

import numpy as np
from sklearn.model_selection import TunedThresholdClassifierCV, train_test_split

from skmedimg.datasets import load_image_folder
from skmedimg.neural import load_model
import pytest
from PIL import Image

from skmedimg.cli import main
from skmedimg.datasets import make_phantoms

FAST = [
    "--model",
    "test_efficientnet",
    "--pretrained",
    "false",
    "--image-size",
    "32",
    "--batch-size",
    "16",
]
# A frozen backbone without augmentation: the fast path, features computed once.
FROZEN = [*FAST, "--recipe", "linear-probe", "--epochs", "2"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """A <class>/<image> folder of two classes of phantoms."""
    root = tmp_path_factory.mktemp("views")
    X, y = make_phantoms(40, n_classes=2, image_size=32, random_state=0)
    for i, (img, label) in enumerate(zip(X, y, strict=True)):
        sub = root / ("lesion" if label else "healthy")
        sub.mkdir(exist_ok=True)
        Image.fromarray(img).save(sub / f"{i:03d}.png")
    return root


@pytest.fixture(scope="module")
def trained(folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("views-model")
    assert main(["train", str(folder), "--out", str(out), *FROZEN, "--quiet"]) == 0
    return out


def test_train_shows_the_feature_pass_and_the_prediction(folder, tmp_path, capsys):
    assert main(["train", str(folder), "--out", str(tmp_path), *FROZEN]) == 0
    captured = capsys.readouterr()
    assert "Backbone features" in captured.err
    assert "Predicting" in captured.err
    # gradcam.png: a correct and a wrong image of each class, where there is one
    cm = np.array(json.loads((tmp_path / "report.json").read_text())["metrics"][
        "confusion_matrix"
    ])
    n_right = int(np.sum(np.diag(cm) > 0))
    n_wrong = int(np.sum(cm.sum(axis=1) - np.diag(cm) > 0))
    assert (
        f"Grad-CAM: {n_right} correct and {n_wrong} misclassified images"
        in captured.out
    )


def test_evaluate_shows_the_prediction_unless_quiet(trained, folder, tmp_path, capsys):
    assert main(["evaluate", str(trained), str(folder), "--out", str(tmp_path)]) == 0
    assert "Predicting" in capsys.readouterr().err
    argv = ["evaluate", str(trained), str(folder), "--out", str(tmp_path), "--quiet"]
    assert main(argv) == 0
    assert "Predicting" not in capsys.readouterr().err


def _metric_lines(out):
    return [
        line
        for line in out.splitlines()
        if "sensitivity" in line or "ROC-AUC" in line
    ]


def test_the_console_shows_sensitivity_specificity_and_roc_auc(
    trained, folder, tmp_path, capsys
):
    assert main(["evaluate", str(trained), str(folder), "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    metrics = json.loads((tmp_path / "report.json").read_text())["metrics"]
    assert metrics["pos_label"] == "lesion"
    assert _metric_lines(out) == [
        f"positive class lesion: sensitivity {metrics['sensitivity']:.4f}, "
        f"specificity {metrics['specificity']:.4f}",
        f"ROC-AUC {metrics['roc_auc']:.4f}",
    ]


@pytest.fixture(scope="module")
def three_classes(tmp_path_factory):
    root = tmp_path_factory.mktemp("three")
    X, y = make_phantoms(30, n_classes=3, image_size=32, random_state=1)
    for i, (img, label) in enumerate(zip(X, y, strict=True)):
        sub = root / f"class{label}"
        sub.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(sub / f"{i:03d}.png")
    return root


def test_the_console_shows_the_macro_roc_auc_of_three_classes(
    three_classes, tmp_path, capsys
):
    out = tmp_path / "model"
    assert main(["train", str(three_classes), "--out", str(out), *FROZEN]) == 0
    metrics = json.loads((out / "report.json").read_text())["metrics"]
    assert _metric_lines(capsys.readouterr().out) == [
        f"macro ROC-AUC (one-vs-rest) {metrics['roc_auc']:.4f}"
    ]


@pytest.fixture(scope="module")
def thresholded(folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("threshold-model")
    argv = ["train", str(folder), "--out", str(out), *FROZEN, "--threshold", "auto"]
    assert main(argv) == 0
    return out


def _folder_data(folder):
    data = load_image_folder(folder)
    return np.asarray(data.filenames), np.array(data.target_names)[data.target]


def test_threshold_auto_is_chosen_on_a_validation_split_of_the_training_images(
    thresholded, folder
):
    report = json.loads((thresholded / "report.json").read_text())
    chosen = report["threshold"]
    assert chosen["pos_label"] == "lesion"
    assert 0.0 < chosen["threshold"] < 1.0
    stored = json.loads((thresholded / "threshold.json").read_text())
    assert stored["threshold"] == chosen["threshold"]
    # The split the command line made: test first, then validation from the
    # training images; the model never saw the validation images.
    X, y = _folder_data(folder)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.2, stratify=y, random_state=0
    )
    X_fit, X_val, _, y_val = train_test_split(
        X_train, y_train, test_size=0.2, stratify=y_train, random_state=0
    )
    assert chosen["n_validation"] == len(X_val)
    assert report["n_train"] == len(X_fit)
    assert not set(X_val) & set(X_test)
    model = load_model(thresholded / "model.skmedimg")
    tuned = TunedThresholdClassifierCV(
        model, scoring="balanced_accuracy", cv="prefit", refit=False
    ).fit(X_val, y_val)
    assert chosen["threshold"] == pytest.approx(tuned.best_threshold_, abs=1e-4)
    # The report's metrics are those of the threshold, with the 0.5 ones beside.
    p = model.predict_proba(X_test)[:, 1]
    cm = np.array(report["metrics"]["confusion_matrix"])
    assert cm[1, 1] == np.sum((p >= chosen["threshold"]) & (y_test == "lesion"))
    assert set(chosen["at_0.5"]) == {
        "sensitivity",
        "specificity",
        "balanced_accuracy",
    }


def test_predict_and_evaluate_apply_the_stored_threshold(
    thresholded, folder, tmp_path, capsys
):
    threshold = json.loads((thresholded / "threshold.json").read_text())["threshold"]
    model = load_model(thresholded / "model.skmedimg")
    X, y = _folder_data(folder)
    p = model.predict_proba(X)[:, 1]
    expected = np.where(p >= threshold, "lesion", "healthy")
    capsys.readouterr()
    argv = ["predict", str(thresholded), str(folder), "--format", "json", "--quiet"]
    assert main(argv) == 0
    rows = {r["image"]: r["label"] for r in json.loads(capsys.readouterr().out)}
    assert [rows[x] for x in X] == expected.tolist()
    # --threshold overrides the stored one
    assert main([*argv, "--threshold", "0.999"]) == 0
    rows = {r["image"]: r["label"] for r in json.loads(capsys.readouterr().out)}
    assert [rows[x] for x in X] == np.where(p >= 0.999, "lesion", "healthy").tolist()
    argv = ["evaluate", str(thresholded), str(folder), "--out", str(tmp_path)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "stored with the model" in out and "threshold 0.5 -> " in out
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["threshold"]["threshold"] == threshold
    cm = np.array(report["metrics"]["confusion_matrix"])
    assert cm[1, 1] == np.sum((expected == "lesion") & (y == "lesion"))
    assert cm[0, 0] == np.sum((expected == "healthy") & (y == "healthy"))


def test_threshold_needs_two_classes_and_auto_only_in_train(
    three_classes, trained, folder, tmp_path, capsys
):
    argv = ["train", str(three_classes), "--out", str(tmp_path), *FROZEN]
    assert main([*argv, "--threshold", "0.3"]) == 1
    assert "--threshold applies to two classes" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["predict", str(trained), str(folder), "--threshold", "auto"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit):
        main(["train", str(folder), "--threshold", "1.5"])
    assert "between 0 and 1" in capsys.readouterr().err


def test_gradcam_panels_cover_every_class_seeded():
    from skmedimg.cli import _gradcam_panels

    # in file order, the first correct and wrong images are all of class "a"
    y = np.array(["a"] * 10 + ["b"] * 10 + ["c"] * 10)
    y_pred = y.copy()
    y_pred[:6] = "b"  # a: 6 wrong, 4 right
    y_pred[[12, 13]] = "c"  # b: 2 wrong
    index, n_right, n_wrong = _gradcam_panels(y, y_pred, ["a", "b", "c"], 0)
    assert (n_right, n_wrong) == (3, 2)  # no wrong image of "c" exists
    assert [(y[i], y[i] == y_pred[i]) for i in index] == [
        ("a", True),
        ("a", False),
        ("b", True),
        ("b", False),
        ("c", True),
    ]
    again, _, _ = _gradcam_panels(y, y_pred, ["a", "b", "c"], 0)
    np.testing.assert_array_equal(index, again)
    draws = {tuple(_gradcam_panels(y, y_pred, ["a", "b", "c"], s)[0]) for s in range(8)}
    assert len(draws) > 1  # drawn at random, not the first in file order


def test_explain_writes_a_large_figure_with_probabilities_and_colour_bar(
    trained, folder, tmp_path, capsys
):
    from skmedimg.cli import _explain_figure
    from skmedimg.inspection import gradcam

    image = sorted((folder / "lesion").glob("*.png"))[0]
    out = tmp_path / "heatmap.png"
    assert main(["explain", str(trained), str(image), "--out", str(out)]) == 0
    model = load_model(trained / "model.skmedimg")
    proba = model.predict_proba([str(image)])[0]
    said = capsys.readouterr().out
    assert f"healthy {proba[0]:.4f}, lesion {proba[1]:.4f}" in said
    with Image.open(out) as img:
        assert img.size[0] >= 600 and img.size[1] >= 500

    images = np.asarray(Image.open(image).convert("RGB").resize((32, 32)))[None]
    maps = gradcam(model, images, target="lesion")
    fig = _explain_figure(model, images, maps, "lesion", "healthy", proba)
    assert len(fig.axes) == 2  # the map and its colour bar
    title = fig.get_suptitle()
    assert "Grad-CAM of class lesion" in title
    assert f"healthy {proba[0]:.2f}, lesion {proba[1]:.2f}" in title
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    box = fig._suptitle.get_window_extent(renderer)
    assert box.x0 >= 0 and box.x1 <= fig.bbox.width and box.y1 <= fig.bbox.height


def test_training_curves_say_when_there_is_no_validation_split(
    trained, folder, tmp_path, monkeypatch
):
    import skmedimg.metrics

    titles = []
    plot = skmedimg.metrics.plot_training_curves

    def spy(history, **kwargs):
        titles.append((sorted(history), kwargs.get("title")))
        return plot(history, **kwargs)

    monkeypatch.setattr(skmedimg.metrics, "plot_training_curves", spy)
    argv = ["evaluate", str(trained), str(folder), "--out", str(tmp_path), "--quiet"]
    assert main(argv) == 0
    ((keys, title),) = titles
    assert "valid_loss" not in keys
    assert title == "Training images only: no validation split without --early-stopping"
    assert (tmp_path / "training_curves.png").exists()


def test_train_help_describes_the_threshold(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "--threshold auto|FLOAT" in help_text
    assert "on 20% of the training images, held out of the fit" in help_text
