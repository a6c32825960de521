"""What the command line shows: progress, the console report, the threshold,
Grad-CAM panels, the explain figure and the training curves."""

import json

import numpy as np
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
    err = capsys.readouterr().err
    assert "Backbone features" in err
    assert "Predicting" in err


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


def test_the_console_shows_the_macro_roc_auc_of_three_classes(tmp_path, capsys):
    X, y = make_phantoms(30, n_classes=3, image_size=32, random_state=1)
    for i, (img, label) in enumerate(zip(X, y, strict=True)):
        sub = tmp_path / "data" / f"class{label}"
        sub.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(sub / f"{i:03d}.png")
    out = tmp_path / "model"
    assert main(["train", str(tmp_path / "data"), "--out", str(out), *FROZEN]) == 0
    metrics = json.loads((out / "report.json").read_text())["metrics"]
    assert _metric_lines(capsys.readouterr().out) == [
        f"macro ROC-AUC (one-vs-rest) {metrics['roc_auc']:.4f}"
    ]
