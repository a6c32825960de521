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
