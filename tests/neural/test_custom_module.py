"""CNNClassifier over networks of the user's own: module classes and factories."""

import functools
import pickle
import sys

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from torch import nn

from skmedimg.inspection import gradcam
from skmedimg.neural import CNNClassifier, create_custom_backbone, save_model


class SmallCNN(nn.Module):
    """Two convolutions and a global pooling: pooled features of width 2w."""

    def __init__(self, width=8, in_chans=3):
        super().__init__()
        self.in_chans = in_chans
        self.body = nn.Sequential(
            nn.Conv2d(in_chans, width, 3, padding=1),
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )

    def forward(self, x):
        return self.body(x)


class SizedCNN(SmallCNN):
    """A SmallCNN that declares the input size it runs at."""

    input_size = (3, 24, 24)


class FeatureMap(nn.Module):
    """Forgets to pool: returns (n, C, H, W)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x):
        return self.conv(x)


def small_cnn(width=4):
    """A factory function returning a module."""
    return nn.Sequential(
        nn.Conv2d(3, width, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
    )


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.integers(0, 60, size=(32, 32, 32), dtype=np.uint8)
    y = np.array(["benign", "malignant"] * 16)
    X[y == "malignant", 8:24, 8:24] = 255  # a bright lesion
    return X, y


def tiny(model=SmallCNN, **params):
    defaults = dict(
        pretrained=False,
        recipe=None,
        max_epochs=2,
        batch_size=8,
        lr=0.01,
        device="cpu",
        random_state=0,
        verbose=0,
    )
    return CNNClassifier(model, **{**defaults, **params})


def test_class_with_module_params_trains_our_head(data):
    X, y = data
    clf = tiny(module__width=4, head=(8,)).fit(X, y)
    backbone = clf.net_.module_.backbone
    assert isinstance(backbone, SmallCNN)
    assert backbone.body[0].out_channels == 4
    assert backbone.num_features == 8  # inferred from the output: 2 * width
    assert clf.net_.module_.head[0].in_features == 8
    assert clf.image_size_ == (32, 32)  # the array's own size
    assert clf.data_config_["mean"] == (0.5, 0.5, 0.5)
    assert clf.weights_source_ == "random"
    assert clf.n_epochs_ == 2
    proba = clf.predict_proba(X[:6])
    assert proba.shape == (6, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    assert set(clf.predict(X)) <= set(clf.classes_)


@pytest.mark.parametrize(
    "model", [small_cnn, functools.partial(small_cnn, width=3)], ids=["fn", "partial"]
)
def test_factory_function(data, model):
    X, y = data
    clf = tiny(model).fit(X, y)
    width = 3 if isinstance(model, functools.partial) else 4
    assert clf.net_.module_.backbone[0].out_channels == width
    assert clf.predict(X[:4]).shape == (4,)


def test_clone_set_params_and_pickle(data):
    X, y = data
    clf = tiny(module__width=4)
    copy = clone(clf)
    assert copy.model_name is SmallCNN
    assert copy.get_params()["module__width"] == 4
    copy.set_params(module__width=6).fit(X, y)
    assert copy.net_.module_.backbone.body[0].out_channels == 6
    assert clf.module__width == 4  # the original is untouched

    loaded = pickle.loads(pickle.dumps(copy))
    np.testing.assert_allclose(
        loaded.predict_proba(X[:8]), copy.predict_proba(X[:8]), atol=1e-6
    )
    assert loaded.get_params()["model_name"] is SmallCNN


def test_same_seed_same_model(data):
    X, y = data
    a = tiny(module__width=4).fit(X, y).predict_proba(X[:8])
    b = tiny(module__width=4).fit(X, y).predict_proba(X[:8])
    np.testing.assert_array_equal(a, b)


def test_grid_search_over_module_params(data):
    X, y = data
    search = GridSearchCV(
        tiny(max_epochs=1),
        {"module__width": [2, 4]},
        cv=StratifiedKFold(2),
    ).fit(X, y)
    assert len(search.cv_results_["params"]) == 2
    best = search.best_params_["module__width"]
    assert search.best_estimator_.net_.module_.backbone.body[0].out_channels == best


def test_frozen_backbone_and_gradcam(data):
    X, y = data
    network, _ = create_custom_backbone(SmallCNN, width=4, image_size=32)
    # freeze="backbone" without augmentation: features computed once
    clf = tiny(module__width=4, freeze="backbone", augment=None).fit(X, y)
    backbone = clf.net_.module_.backbone
    assert not any(p.requires_grad for p in backbone.parameters())
    assert not backbone.training
    maps = gradcam(clf, X[:2])
    assert maps.shape == (2, 32, 32)
    assert network.num_features == 8


def test_freeze_first_stages_uses_children(data):
    X, y = data
    clf = tiny(small_cnn, freeze=1).fit(X, y)
    conv = clf.net_.module_.backbone[0]
    assert not conv.weight.requires_grad


def test_declared_input_size_and_required_size(data):
    X, y = data
    images = [X[i] for i in range(len(X))]  # a list: no one array size
    clf = tiny(SizedCNN, module__width=2).fit(images, y)
    assert clf.image_size_ == (24, 24)
    with pytest.raises(ValueError, match=r"image_size is needed .*SmallCNN"):
        tiny().fit(images, y)
    assert tiny(image_size=16).fit(images, y).image_size_ == (16, 16)


def test_gray_images(data):
    X, y = data
    clf = tiny(module__in_chans=1, module__width=2, color="gray").fit(X, y)
    assert clf.data_config_["input_size"] == (1, 32, 32)
    assert clf.predict(X[:3]).shape == (3,)
    with pytest.raises(ValueError, match="color='gray'"):
        tiny(module__in_chans=1).fit(X, y)


def test_pretrained_state_dict_file(data, tmp_path):
    from safetensors.torch import save_file

    X, y = data
    torch.manual_seed(1)
    source = SmallCNN(width=4)
    path = tmp_path / "small.safetensors"
    save_file(source.state_dict(), str(path))
    clf = tiny(
        module__width=4, pretrained=str(path), freeze="backbone", augment=None
    ).fit(X, y)
    loaded = clf.net_.module_.backbone.state_dict()
    for key, value in source.state_dict().items():
        torch.testing.assert_close(loaded[key], value)
    assert clf.weights_source_ == f"file:{path}"
    with pytest.raises(ValueError, match="does not fit the custom model"):
        tiny(module__width=6, pretrained=str(path)).fit(X, y)


def test_wrong_output_shape_names_what_was_expected(data):
    X, y = data
    with pytest.raises(ValueError) as info:
        tiny(FeatureMap).fit(X, y)
    message = str(info.value)
    assert "returned shape (2, 4, 32, 32)" in message
    assert "(n_samples, n_features)" in message
    assert "FeatureMap" in message


def test_failing_forward_names_the_input(data):
    X, y = data
    with pytest.raises(ValueError, match=r"failed on a batch of shape \(2, 3, 32"):
        tiny(_wrong_channels).fit(X, y)


def _wrong_channels():
    return nn.Sequential(nn.Conv2d(5, 2, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())


@pytest.mark.parametrize(
    ("params", "error", "match"),
    [
        ({"model_name": SmallCNN()}, TypeError, "pass its class"),
        ({"pretrained": True}, ValueError, "pretrained=True looks for ImageNet"),
        ({"module__depth": 3}, TypeError, r"SmallCNN\(depth=3\) failed"),
        ({"model_name": lambda: 3}, TypeError, "returned int, not a torch.nn.Module"),
    ],
    ids=["instance", "pretrained", "unknown-param", "not-a-module"],
)
def test_bad_models_are_refused_clearly(data, params, error, match):
    X, y = data
    clf = tiny().set_params(**params)
    with pytest.raises(error, match=match):
        clf.fit(X, y)
    assert not hasattr(clf, "net_")


def test_save_model_refuses_and_points_to_joblib(data, tmp_path):
    X, y = data
    clf = tiny(module__width=2).fit(X, y)
    with pytest.raises(ValueError, match="pickle or joblib"):
        save_model(clf, tmp_path / "model.safetensors")
    assert not (tmp_path / "model.safetensors").exists()


# --------------------------------------------------------------------------
# verbose="auto"
# --------------------------------------------------------------------------


def test_verbose_auto_is_the_default():
    assert CNNClassifier().verbose == "auto"


@pytest.mark.parametrize("tty", [True, False])
def test_verbose_auto_shows_progress_on_a_terminal(data, capsys, monkeypatch, tty):
    X, y = data
    monkeypatch.setattr(sys.stderr, "isatty", lambda: tty)
    tiny(small_cnn, verbose="auto").fit(X, y)
    err = capsys.readouterr().err
    if tty:
        assert "epoch" in err and "2/2" in err
    else:
        assert err == ""
