"""CNNClassifier and the scikit-learn estimator contract, on images.

The image versions of scikit-learn's data checks (which feed 2-D feature
matrices, see checks_registry.py), and every bad input with its error.
"""

import pickle
import threading
import warnings

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.base import clone
from sklearn.exceptions import DataConversionWarning, NotFittedError
from sklearn.model_selection import GridSearchCV
from skorch.callbacks import Callback

from skmedimg.neural import BatchAugment, CNNClassifier, WeightsNotFoundError
from skmedimg.utils import ImageReadError


def make_lesions(n_samples=48, size=32, labels=(0, 1), random_state=0):
    """Dark noisy images; class ``labels[1]`` has a bright square."""
    rng = np.random.default_rng(random_state)
    X = rng.integers(0, 80, size=(n_samples, size, size), dtype=np.uint8)
    y = np.array([labels[i % len(labels)] for i in range(n_samples)])
    for i in range(n_samples):
        k = i % len(labels)
        if k:
            r, c = rng.integers(2, size // 2, size=2)
            w = size // 3
            X[i, r : r + w, c : c + w] = 150 + 50 * k
    return X, y


def tinted(X, random_state=0):
    """Colour versions of gray images ``X``, and the luminance of those."""
    rng = np.random.default_rng(random_state)
    colour = np.stack([X, X, X], axis=-1).astype(np.int16)
    colour += rng.integers(-40, 40, size=colour.shape, dtype=np.int16)
    colour = np.clip(colour, 0, 255).astype(np.uint8)
    luminance = np.stack(
        [np.asarray(Image.fromarray(im).convert("L")) for im in colour]
    )
    return colour, luminance


def tiny(**params):
    defaults = dict(
        pretrained=False,
        freeze="backbone",
        image_size=32,
        max_epochs=3,
        batch_size=16,
        lr=0.1,  # a random frozen backbone gives small features
        device="cpu",
        random_state=0,
    )
    defaults.update(params)
    return CNNClassifier("test_resnet", **defaults)


@pytest.fixture(scope="module")
def data():
    return make_lesions()


@pytest.fixture(scope="module")
def fitted(data):
    X, y = data
    return tiny(max_epochs=20).fit(X, y)


# ------------------------------------------------------------ basic contract


def test_fit_returns_self_and_score(data, fitted):
    X, y = data
    clf = tiny()
    assert clf.fit(X, y) is clf
    assert fitted.score(X, y) >= 0.9
    for name in ("classes_", "net_", "history_", "n_epochs_", "best_epoch_"):
        assert hasattr(fitted, name)
    assert fitted.n_epochs_ == 20 == fitted.best_epoch_
    assert set(fitted.history_) >= {"epoch", "train_loss", "train_acc", "lr", "dur"}
    assert len(fitted.history_["train_loss"]) == 20
    assert not hasattr(fitted, "n_features_in_")


def test_init_stores_only_and_no_fitted_state_before_fit():
    clf = CNNClassifier("no_such_model", freeze=99, module__drop_rate=0.5)
    assert clf.model_name == "no_such_model" and clf.freeze == 99
    assert not [k for k in vars(clf) if k.endswith("_")]
    assert clf.get_params()["module__drop_rate"] == 0.5


def test_predict_before_fit(data):
    X, _ = data
    for method in ("predict", "predict_proba", "predict_log_proba"):
        with pytest.raises(NotFittedError):
            getattr(tiny(), method)(X)


def test_fit_does_not_mutate_params(data):
    X, y = data
    augment = BatchAugment(hflip=True)
    clf = tiny(
        head=(8,),
        augment=augment,
        class_weight={0: 1.0, 1: 2.0},
        optimizer__eps=1e-7,
        max_epochs=1,
    )
    before = clf.get_params(deep=False)
    before_repr = {k: repr(v) for k, v in before.items()}
    clf.fit(X, y)
    after = clf.get_params(deep=False)
    assert set(after) == set(before)
    for key, value in before.items():
        assert after[key] is value, key
        assert repr(after[key]) == before_repr[key], key


def test_clone_keeps_routed_params_and_set_params_takes_effect(data):
    X, y = data
    clf = tiny(optimizer__eps=1e-6, callbacks__metrics__foo=None)
    copy = clone(clf)
    assert copy.get_params()["optimizer__eps"] == 1e-6
    copy.set_params(max_epochs=1, optimizer__eps=1e-5, lr=0.05)
    assert copy.optimizer__eps == 1e-5 and copy.max_epochs == 1
    copy.set_params(callbacks__metrics__foo=None)
    copy = tiny(optimizer__eps=1e-5).set_params(max_epochs=2).fit(X, y)
    assert copy.n_epochs_ == 2
    assert copy.net_.optimizer_.defaults["eps"] == 1e-5
    assert copy.history_["lr"][0] == pytest.approx(0.1)
    assert tiny(max_epochs=1).set_params(lr=0.05).fit(X, y).history_["lr"][
        0
    ] == pytest.approx(0.05)


def test_routed_params_in_grid_search(data):
    X, y = data
    search = GridSearchCV(
        tiny(max_epochs=1), {"optimizer__eps": [1e-8, 1e-6], "dropout": [0.0]}, cv=2
    )
    search.fit(X, y)
    assert search.best_estimator_.net_.optimizer_.defaults["eps"] in (1e-8, 1e-6)


def test_unknown_routed_param_is_a_clear_error(data):
    X, y = data
    with pytest.raises(TypeError, match="unexpected parameter.*modul__drop_rate"):
        tiny(modul__drop_rate=0.1).fit(X, y)
    with pytest.raises(TypeError, match="unexpected parameter.*typo"):
        tiny(typo=1).fit(X, y)


@pytest.mark.parametrize("size", [(0, 32), (32,), (32, 32, 3), (16.0, 16)])
def test_a_bad_image_size_tuple_is_named_before_any_work(data, size):
    from skmedimg.neural import CNNFeatureExtractor

    X, y = data
    extractor = CNNFeatureExtractor("test_resnet", pretrained=False, image_size=size)
    for estimator in (tiny(image_size=size), extractor):
        with pytest.raises(ValueError, match="image_size must be a positive int"):
            estimator.fit(X, y)


@pytest.mark.parametrize("key", ["criterion", "iterator_train", "module__", "modul__x"])
def test_set_params_rejects_a_key_that_is_not_a_routed_parameter(key):
    # A bare prefix, a prefix without a name or an unknown prefix is sklearn's
    # "Invalid parameter" at once, not a value stored for fit to trip over.
    clf = tiny()
    with pytest.raises(ValueError, match="Invalid parameter"):
        clf.set_params(**{key: 1})
    assert key not in vars(clf)


def test_module_kwargs_reach_timm(data):
    X, y = data
    clf = tiny(freeze="none", lr=1e-3, max_epochs=1, module__drop_path_rate=0.1)
    clf.fit(X[:16], y[:16])
    names = {type(m).__name__ for m in clf.net_.module_.backbone.modules()}
    assert "DropPath" in names


def test_pickle_round_trip(data, fitted):
    X, _ = data
    restored = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(restored.predict_proba(X), fitted.predict_proba(X))
    np.testing.assert_array_equal(restored.classes_, fitted.classes_)
    assert restored.history_ == fitted.history_


@pytest.mark.parametrize(
    "params",
    [
        {},
        {
            "freeze": "none",
            "augment": "medium",
            "dropout": 0.2,
            "head": (8,),
            "lr": 1e-2,
        },
    ],
    ids=["frozen-cache", "finetune-augment"],
)
def test_refit_determinism(data, params):
    X, y = data
    X, y = X[:24], y[:24]
    a = tiny(max_epochs=2, **params).fit(X, y).predict_proba(X)
    b = tiny(max_epochs=2, **params).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(a, b)
    # The global torch random state is left alone.
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    tiny(max_epochs=1, **params).fit(X, y)
    np.testing.assert_array_equal(torch.rand(3), expected)


class _Rendezvous(Callback):
    """Makes two fits in threads meet after every batch, if both are running."""

    def __init__(self, barrier):
        self.barrier = barrier

    def on_batch_end(self, net, **kwargs):
        try:
            self.barrier.wait()
        except threading.BrokenBarrierError:
            pass  # the other fit is not running now


def test_fits_in_threads_give_the_same_models_as_one_after_another(data):
    X, y = data
    X, y = X[:24], y[:24]
    params = dict(freeze="none", augment="medium", dropout=0.5, max_epochs=1, lr=1e-2)
    alone = [tiny(random_state=s, **params).fit(X, y).predict_proba(X) for s in (0, 1)]
    # The callback makes the two fits meet after every batch, so that their
    # batches alternate if both are on the device at once: they then drew
    # dropout masks and augmentations from each other's torch generator.
    barrier = threading.Barrier(2, timeout=1.0)
    together = [None, None]

    def fit(seed):
        clf = tiny(random_state=seed, callbacks=[_Rendezvous(barrier)], **params)
        together[seed] = clf.fit(X, y).predict_proba(X)

    threads = [threading.Thread(target=fit, args=(s,)) for s in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for seed in (0, 1):
        np.testing.assert_array_equal(together[seed], alone[seed])
    # One fit waited for the other: the first gave up waiting for it.
    assert barrier.broken


def test_predict_does_not_change_state(data, fitted):
    X, _ = data
    state = {k: v for k, v in vars(fitted).items() if k != "net_"}
    weights = {k: v.clone() for k, v in fitted.net_.module_.state_dict().items()}
    fitted.predict(X)
    fitted.predict_proba(X)
    assert {k: v for k, v in vars(fitted).items() if k != "net_"}.keys() == state.keys()
    for key, value in fitted.net_.module_.state_dict().items():
        assert torch.equal(value, weights[key]), key


def test_prediction_invariance(data, fitted):
    X, _ = data
    proba = fitted.predict_proba(X)
    order = np.random.default_rng(0).permutation(len(X))
    np.testing.assert_allclose(fitted.predict_proba(X[order]), proba[order], atol=1e-6)
    np.testing.assert_allclose(fitted.predict_proba(X[5:9]), proba[5:9], atol=1e-6)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)


# ------------------------------------------------------------ inputs and labels


def test_string_and_noncontiguous_labels():
    X, y = make_lesions(labels=("normal", "glioma", "pituitary"))
    clf = tiny(max_epochs=20).fit(X, y)
    np.testing.assert_array_equal(clf.classes_, ["glioma", "normal", "pituitary"])
    assert set(clf.predict(X)) <= set(clf.classes_)
    assert clf.predict(X).dtype == clf.classes_.dtype
    X, y = make_lesions(labels=(3, 11, 7))
    clf = tiny(max_epochs=20).fit(X, y)
    np.testing.assert_array_equal(clf.classes_, [3, 7, 11])
    proba = clf.predict_proba(X)
    assert proba.shape == (len(X), 3)
    # Column j of predict_proba is classes_[j].
    np.testing.assert_array_equal(clf.predict(X), clf.classes_[proba.argmax(1)])
    assert clf.score(X, y) > 0.6


def test_input_dtypes(data):
    X, y = data
    base = tiny(max_epochs=1).fit(X, y).predict_proba(X)
    variants = {
        "float [0, 1]": X.astype(np.float32) / 255.0,
        "float64 [0, 1]": X.astype(np.float64) / 255.0,
        "channel axis": X[..., None],
        "rgb": np.repeat(X[..., None], 3, axis=-1),
    }
    for name, Xv in variants.items():
        proba = tiny(max_epochs=1).fit(Xv, y).predict_proba(Xv)
        np.testing.assert_allclose(proba, base, atol=1e-5, err_msg=name)
    # uint16 is rescaled per image, like a 16-bit PNG.
    tiny(max_epochs=1).fit(X.astype(np.uint16) * 200, y)


def test_readonly_images(data, tmp_path):
    X, y = data
    path = tmp_path / "X.npy"
    np.save(path, X)
    X_ro = np.load(path, mmap_mode="r")
    assert not X_ro.flags.writeable
    a = tiny(max_epochs=1).fit(X_ro, y).predict_proba(X_ro)
    b = tiny(max_epochs=1).fit(np.asfortranarray(X), y).predict_proba(X)
    np.testing.assert_allclose(a, b, atol=1e-6)


def test_list_of_images(data, tmp_path):
    X, y = data
    paths = []
    for i, image in enumerate(X[:24]):
        path = tmp_path / f"img{i}.png"
        Image.fromarray(image).resize((40 + i % 3, 40)).save(path)
        paths.append(str(path))
    clf = tiny(max_epochs=1).fit(paths, y[:24])
    assert clf.predict(paths[:3]).shape == (3,)
    mixed = [X[0], Image.fromarray(X[1]), paths[2], np.zeros((50, 20, 3))]
    assert clf.predict_proba(mixed).shape == (4, 2)


def test_y_column_vector_warns(data):
    X, y = data
    with pytest.warns(DataConversionWarning):
        tiny(max_epochs=1).fit(X, y[:, None])


def test_class_weight(data):
    X, y = data
    weights = {}
    for class_weight in ["balanced", {0: 1.0, 1: 5.0}]:
        clf = tiny(max_epochs=1, class_weight=class_weight).fit(X[:30], y[:30])
        weights[str(class_weight)] = clf.net_.criterion_.weight.tolist()
    assert weights["balanced"] == pytest.approx([1.0, 1.0])
    assert weights[str({0: 1.0, 1: 5.0})] == pytest.approx([1.0, 5.0])
    with pytest.raises(ValueError, match="class_weight has labels not in y"):
        tiny(class_weight={0: 1.0, 2: 3.0}).fit(X, y)


def test_unseen_labels_in_score(data):
    # predict has no y; labels unseen in fit only matter to scorers, which
    # count them as errors.
    X, y = data
    names = np.array(["benign", "malignant"])[y]
    clf = tiny(max_epochs=20).fit(X, names)
    unseen = names.copy().astype(object)
    unseen[:6] = "unknown"
    assert clf.score(X, unseen) <= clf.score(X, names) - 6 / len(y) + 1e-9


# ------------------------------------------------------------------ bad inputs


def test_one_class_only(data):
    X, _ = data
    with pytest.raises(ValueError, match="at least 2 classes.*only one class: 'a'"):
        tiny().fit(X, ["a"] * len(X))


def test_length_mismatch(data):
    X, y = data
    with pytest.raises(ValueError, match="48 images and 47 labels"):
        tiny().fit(X, y[:-1])


def test_nan_images(data):
    X, y = data
    Xf = X.astype(np.float32)
    Xf[3, 0, 0] = np.nan
    Xf[7, 5, 5] = np.inf
    with pytest.raises(ImageReadError, match="item 3") as info:
        tiny().fit(Xf, y)
    assert [f[0] for f in info.value.failures] == [3, 7]
    assert "NaN" in str(info.value)


def test_bad_input_shapes(data, fitted):
    X, y = data
    with pytest.raises(ImageReadError, match="expected an image array"):
        tiny().fit(X.reshape(len(X), -1), y)
    with pytest.raises(ImageReadError, match="expected an image array"):
        fitted.predict(X[0].ravel())


def test_unknown_model_name(data):
    X, y = data
    with pytest.raises(ValueError, match="unknown model_name 'resnet5O'.*resnet50"):
        CNNClassifier("resnet5O", pretrained=False).fit(X, y)


def test_pretrained_offline_without_weights(data, monkeypatch):
    X, y = data
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(WeightsNotFoundError) as info:
        tiny(pretrained=True).fit(X, y)
    message = str(info.value)
    assert "local weights file" in message
    assert "timm's cache" in message
    assert "installed package" in message


def test_wrong_weights_file(data, tmp_path):
    from safetensors.torch import save_file

    from skmedimg.neural import create_backbone

    X, y = data
    other, _ = create_backbone("test_efficientnet")
    path = tmp_path / "other.safetensors"
    save_file(other.state_dict(), str(path))
    with pytest.raises(
        ValueError, match="other.safetensors.*does not fit.*test_resnet"
    ):
        tiny(pretrained=str(path)).fit(X, y)


def test_freeze_out_of_range(data):
    X, y = data
    with pytest.raises(ValueError, match="freeze=9 is out of range.*5 stages"):
        tiny(freeze=9).fit(X, y)


def test_bad_parameter_values(data):
    X, y = data
    with pytest.raises(ValueError, match="optimizer"):
        tiny(optimizer="adagrad").fit(X, y)
    with pytest.raises(ValueError, match="augment"):
        tiny(augment="heavy").fit(X, y)
    with pytest.raises(ValueError, match="head must be a tuple of positive ints"):
        tiny(head=(8, 0)).fit(X, y)


def test_batch_size_larger_than_data(data):
    X, y = data
    with pytest.warns(UserWarning, match="batch_size=64 is larger than the 20"):
        clf = tiny(batch_size=64, max_epochs=1).fit(X[:20], y[:20])
    assert clf.predict(X[:3]).shape == (3,)


def test_no_warnings_in_a_normal_fit(data):
    X, y = data
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tiny(max_epochs=1).fit(X, y).predict(X)
