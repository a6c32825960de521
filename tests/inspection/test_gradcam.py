"""Grad-CAM and its variants on fitted CNNClassifiers, and the overlay plot."""

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from skmedimg.inspection import GRADCAM_METHODS, gradcam, plot_gradcam
from skmedimg.neural import CNNClassifier
from skmedimg.preprocessing import ImageResizer

SIZE, SIDE = 64, 20


def planted_squares(n_samples, seed):
    """Noise images; class 1 has a bright square at a random position.

    Returns the images, labels ("empty" / "square") and each square's top-left
    corner (rows, columns).
    """
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 100, size=(n_samples, SIZE, SIZE), dtype=np.uint8)
    y = np.where(np.arange(n_samples) % 2, "square", "empty")
    corners = np.zeros((n_samples, 2), dtype=int)
    for i in np.flatnonzero(y == "square"):
        r, c = rng.integers(0, SIZE - SIDE + 1, size=2)
        X[i, r : r + SIDE, c : c + SIDE] = rng.integers(200, 256, size=(SIDE, SIDE))
        corners[i] = r, c
    return X, y, corners


def _resnet(**params):
    """The tiny ResNet of these tests, random weights, seeded."""
    defaults = dict(pretrained=False, image_size=SIZE, batch_size=16, random_state=0)
    return CNNClassifier("test_resnet", **{**defaults, **params})


@pytest.fixture(scope="module")
def trained():
    """A tiny ResNet, fine-tuned from random weights, that learned the squares."""
    X, y, _ = planted_squares(160, seed=0)
    clf = _resnet(max_epochs=6, lr=3e-3).fit(X, y)
    return clf, X, y


@pytest.fixture(scope="module")
def held_out():
    return planted_squares(60, seed=1)


def peak(heatmap):
    """Row and column of the map's maximum.

    Bilinear upsampling makes the maximum a plateau where the hottest cell
    touches the border; its centre is the peak (``argmax`` would pick the
    plateau's first pixel).
    """
    rows, cols = np.nonzero(heatmap >= heatmap.max() - 1e-4)
    return rows.mean(), cols.mean()


def test_the_model_learned_the_task(trained, held_out):
    clf, X, y = trained
    assert (clf.predict(X) == y).mean() >= 0.95
    Xt, yt, _ = held_out
    assert (clf.predict(Xt) == yt).mean() >= 0.9


@pytest.mark.parametrize("method", GRADCAM_METHODS)
def test_maps_shape_range_and_dtype(trained, method):
    clf, X, _ = trained
    maps = gradcam(clf, X[:5], method=method)
    assert maps.shape == (5, SIZE, SIZE)
    assert maps.dtype == np.float32
    assert np.isfinite(maps).all()
    assert maps.min() >= 0 and maps.max() <= 1
    assert np.allclose(maps.reshape(5, -1).max(axis=1), 1)  # each scaled to 1


def test_maps_change_with_the_target_class(trained):
    clf, X, _ = trained
    square = gradcam(clf, X[:6], target="square")
    empty = gradcam(clf, X[:6], target="empty")
    assert np.abs(square - empty).mean() > 0.1
    # None explains the predicted class; a per-image target selects per image.
    predicted = clf.predict(X[:6])
    np.testing.assert_allclose(
        gradcam(clf, X[:6]), gradcam(clf, X[:6], target=predicted)
    )
    mixed = np.array(["square", "empty"] * 3)
    expected = np.where((mixed == "square")[:, None, None], square, empty)
    np.testing.assert_allclose(gradcam(clf, X[:6], target=mixed), expected, atol=1e-6)


def test_batches_do_not_change_the_maps(trained):
    clf, X, _ = trained
    np.testing.assert_allclose(
        gradcam(clf, X[:5], batch_size=2), gradcam(clf, X[:5]), atol=1e-5
    )


def test_map_follows_the_planted_square(trained, held_out):
    clf, _, _ = trained
    Xt, yt, corners = held_out
    squares = np.flatnonzero(yt == "square")
    # test_resnet's stages at 64 px: layer2 8x8 cells of 8 px, layer3 4x4 of
    # 16 px, layer4 (the default) 2x2 of 32 px. A peak cannot be placed more
    # finely than a cell, so it may miss a 20 px square by up to half a cell;
    # "near" allows that (the pointing game's tolerance).
    results = {}
    for layer, half_cell in (("layer2", 4), ("layer3", 8), (None, 16)):
        for method in ("gradcam", "gradcam++"):
            maps = gradcam(
                clf, Xt[squares], target="square", method=method, layer=layer
            )
            inside_hits, near_hits, inside, outside = [], [], [], []
            for heatmap, (r, c) in zip(maps, corners[squares], strict=True):
                pr, pc = peak(heatmap)
                inside_hits.append(r <= pr < r + SIDE and c <= pc < c + SIDE)
                near_hits.append(
                    r - half_cell <= pr < r + SIDE + half_cell
                    and c - half_cell <= pc < c + SIDE + half_cell
                )
                mask = np.zeros(heatmap.shape, dtype=bool)
                mask[r : r + SIDE, c : c + SIDE] = True
                inside.append(heatmap[mask].mean())
                outside.append(heatmap[~mask].mean())
            results[layer, method] = [
                np.mean(inside_hits),
                np.mean(near_hits),
                np.mean(inside),
                np.mean(outside),
            ]
    print("\n(layer, method): peak in square, peak near square, heat in, heat out")
    for key, value in results.items():
        print(key, np.round(value, 3))
    for (layer, _), (in_rate, near_rate, heat_in, heat_out) in results.items():
        assert heat_in > 2 * heat_out  # every layer, the default one included
        if layer is not None:  # the default layer's 2x2 map cannot point
            assert in_rate >= 0.6  # most peaks strictly inside the square
            assert near_rate >= 0.9  # almost all within half a cell of it


def test_layer_override_and_errors(trained):
    clf, X, _ = trained
    backbone = clf.net_.module_.backbone
    by_name = gradcam(clf, X[:2], layer="layer2")
    by_module = gradcam(clf, X[:2], layer=backbone.layer2)
    np.testing.assert_array_equal(by_name, by_module)
    with pytest.raises(ValueError, match="not a module of the backbone.*layer1"):
        gradcam(clf, X[:2], layer="layer9")
    with pytest.raises(ValueError, match="not part of the backbone"):
        gradcam(clf, X[:2], layer=torch.nn.Conv2d(3, 3, 1))
    with pytest.raises(ValueError, match="method must be one of"):
        gradcam(clf, X[:2], method="scorecam")
    with pytest.raises(ValueError, match="batch_size"):
        gradcam(clf, X[:2], batch_size=0)


def test_bad_targets(trained):
    clf, X, _ = trained
    with pytest.raises(ValueError, match="tumour not in the estimator's classes"):
        gradcam(clf, X[:2], target="tumour")
    with pytest.raises(ValueError, match="3 labels but X has 2 images"):
        gradcam(clf, X[:2], target=["empty"] * 3)


def test_needs_a_fitted_cnn(trained):
    _, X, y = trained
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        gradcam(CNNClassifier("test_resnet", pretrained=False), X[:2])
    flat = LogisticRegression().fit(X.reshape(len(X), -1)[:, :10], y)
    with pytest.raises(TypeError, match="fitted skmedimg.neural.CNNClassifier"):
        gradcam(flat, X[:2])


def test_leaves_the_model_as_it_was(trained):
    clf, X, _ = trained
    module = clf.net_.module_
    before = {k: v.clone() for k, v in module.state_dict().items()}
    grads = [None if p.grad is None else p.grad.clone() for p in module.parameters()]
    proba = clf.predict_proba(X[:4])
    gradcam(clf, X[:4], method="gradcam++")
    assert all(torch.equal(before[k], v) for k, v in module.state_dict().items())
    # No gradient was accumulated into the parameters (training left its own).
    for grad, param in zip(grads, module.parameters(), strict=True):
        assert (grad is None and param.grad is None) or torch.equal(grad, param.grad)
    np.testing.assert_array_equal(clf.predict_proba(X[:4]), proba)


def test_frozen_backbone_and_pipeline(trained):
    _, X, y = trained
    big = [np.kron(img, np.ones((2, 2), dtype=np.uint8)) for img in X[:32]]
    model = make_pipeline(
        ImageResizer(image_size=SIZE),
        _resnet(freeze="backbone", max_epochs=1),
    ).fit(big, y[:32])
    maps = gradcam(model, big[:3])
    assert maps.shape == (3, SIZE, SIZE)
    assert np.isfinite(maps).all()


def _reference_gradcam(clf, X, layer, target):
    """Grad-CAM by hand: the layer's output kept apart from in-place changes."""
    module = clf.net_.module_.eval()
    captured = []

    def keep(mod, args, output):
        output = output if output.requires_grad else output.detach().requires_grad_()
        captured.append(output)
        return output.clone()

    handle = module.backbone.get_submodule(layer).register_forward_hook(keep)
    try:
        images = torch.from_numpy(np.stack([X] * 3, axis=-1))
        logits = module(images)
        index = list(clf.classes_).index(target)
        (grads,) = torch.autograd.grad(logits[:, index].sum(), captured[0])
    finally:
        handle.remove()
    cam = (grads.mean(dim=(2, 3), keepdim=True) * captured[0]).sum(dim=1).clamp(min=0)
    cam = torch.nn.functional.interpolate(
        cam[:, None], size=(SIZE, SIZE), mode="bilinear", align_corners=False
    )[:, 0]
    flat = cam.reshape(len(cam), -1)
    low, high = flat.min(1).values.view(-1, 1, 1), flat.max(1).values.view(-1, 1, 1)
    span = high - low
    scaled = (cam - low) / torch.where(span > 0, span, 1.0)
    return torch.where(span > 0, scaled, 0.0).detach().numpy()


@pytest.mark.parametrize("freeze", [None, "backbone"])
def test_a_layer_whose_output_is_changed_in_place_later(trained, freeze):
    # timm's BatchNorm layers are followed by ReLU(inplace=True), a block's
    # last BatchNorm by "x += shortcut": the map must be of the named layer.
    clf, X, y = trained
    if freeze:
        clf = _resnet(freeze="backbone", max_epochs=1).fit(X[:32], y[:32])
    for layer in ("bn1", "layer2.0.bn2"):
        maps = gradcam(clf, X[1:4], layer=layer, target="square")
        expected = _reference_gradcam(clf, X[1:4], layer, "square")
        np.testing.assert_allclose(maps, expected, atol=1e-5)


def test_tta_models_explain_the_class_that_predict_gives(trained):
    _, X, y = trained
    # recipe=None: 2 epochs of constant-rate Adam; the fine-tune recipe's
    # warm-up and augmentation need more epochs than this to learn anything
    clf = _resnet(max_epochs=2, lr=3e-3, tta="flips", recipe=None).fit(X[:96], y[:96])
    predicted = clf.predict(X)
    plain = clf.set_params(tta=None).predict(X)
    clf.set_params(tta="flips")
    assert (predicted != plain).any()  # the views change some predictions
    np.testing.assert_array_equal(gradcam(clf, X), gradcam(clf, X, target=predicted))


def test_paths_are_read_like_predict(tmp_path, trained):
    clf, X, _ = trained
    paths = []
    for i in range(3):
        path = tmp_path / f"{i}.png"
        Image.fromarray(X[i]).save(path)
        paths.append(str(path))
    np.testing.assert_allclose(gradcam(clf, paths), gradcam(clf, X[:3]), atol=1e-6)


def test_plot_writes_a_png(tmp_path, trained):
    clf, X, y = trained
    maps = gradcam(clf, X[:5])
    path = tmp_path / "cam.png"
    proba = clf.predict_proba(X[:5])
    fig = plot_gradcam(
        X[:5],
        maps,
        y_true=y[:5],
        y_pred=clf.predict(X[:5]),
        y_proba=proba,
        class_names={"square": "lesion", "empty": "normal"},
        ncols=3,
        path=path,
    )
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(path) as png:
        assert png.format == "PNG" and png.width > 200 and png.height > 200
    assert len(fig.axes) == 6  # five panels and the colour bar
    panels, colorbar = fig.axes[:5], fig.axes[5]
    assert "Grad-CAM" in colorbar.get_ylabel()
    titles = [ax.get_title() for ax in panels]
    assert all(t.startswith("true: ") and "\npred: " in t for t in titles)
    assert {"lesion", "normal"} & set(" ".join(titles).split())
    for title, row in zip(titles, proba, strict=True):
        assert title.endswith(f" ({row.max():.2f})")
    # one probability per image, without y_pred
    fig = plot_gradcam(X[:2], maps[:2], y_proba=[0.25, 0.875])
    assert [ax.get_title() for ax in fig.axes[:2]] == ["p = 0.25", "p = 0.88"]
    with pytest.raises(ValueError, match="y_proba must have shape"):
        plot_gradcam(X[:2], maps[:2], y_proba=[0.5])


def test_a_map_coarser_than_4x4_warns_and_names_an_earlier_layer(trained):
    import warnings

    clf, X, _ = trained  # 64 pixels: the last stage of the ResNet is 2 x 2
    with pytest.warns(UserWarning, match="has only 2x2 cells") as record:
        gradcam(clf, X[:3], batch_size=2)  # said once, not per batch
    coarse = [w for w in record if "cells" in str(w.message)]
    assert len(coarse) == 1
    message = str(coarse[0].message)
    assert "layer 'layer4'" in message and "layer='layer3'" in message
    with warnings.catch_warnings():  # the layer named: 4 x 4, no warning
        warnings.simplefilter("error")
        assert gradcam(clf, X[:1], layer="layer3").shape == (1, 64, 64)


def test_plot_bad_inputs(trained):
    _, X, _ = trained
    with pytest.raises(ValueError, match="2 images but 3 heat maps"):
        plot_gradcam(X[:2], np.zeros((3, 8, 8)))
    with pytest.raises(ValueError, match="one label per image"):
        plot_gradcam(X[:2], np.zeros((2, 8, 8)), y_true=["a"])
    with pytest.raises(ValueError, match=r"\(n_samples, height, width\)"):
        plot_gradcam(X[:2], np.zeros((2, 8)))
    with pytest.raises(ValueError, match="no heat maps to plot"):
        plot_gradcam(X[:0], np.zeros((0, 8, 8)))
    from matplotlib.figure import Figure

    axes = Figure().subplots(1, 3)
    with pytest.raises(ValueError, match=r"one matplotlib Axes per image \(2\), got 3"):
        plot_gradcam(X[:2], np.zeros((2, 8, 8)), axes=axes)


def test_class_names_index_only_labels_in_their_range():
    from skmedimg.inspection._plot import _label_name

    names = ["healthy", "tumour"]
    assert _label_name(np.int64(1), names) == "tumour"
    assert _label_name(0, names) == "healthy"
    assert _label_name(-1, names) == "-1"  # not the last name
    assert _label_name(0.7, names) == "0.7"  # not the first
    assert _label_name(2, names) == "2"
    assert _label_name("x", {"x": "lesion"}) == "lesion"
