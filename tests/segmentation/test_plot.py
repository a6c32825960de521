import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.contour import ContourSet  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from skmedimg.segmentation import plot_segmentation  # noqa: E402

RNG = np.random.default_rng(0)


def _contours(ax):
    return [c for c in ax.collections if isinstance(c, ContourSet)]


def _legend(ax):
    legend = ax.get_legend()
    return [t.get_text() for t in legend.get_texts()] if legend else []


def _square_masks(shape=(32, 32)):
    mask = np.zeros(shape, dtype=np.uint8)
    mask[4:14, 4:14] = 1
    mask[18:28, 18:28] = 2
    pred = np.zeros_like(mask)
    pred[5:15, 4:14] = 1
    pred[18:28, 18:26] = 2
    return mask, pred


def test_2d_contours_ground_truth_solid_prediction_dashed():
    mask, pred = _square_masks()
    fig = plot_segmentation(
        RNG.random((32, 32)), mask, pred=pred, names={1: "edema", 2: "core"}
    )
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 1
    ax = fig.axes[0]
    contours = _contours(ax)
    assert len(contours) == 4  # two labels x (truth, prediction)
    styles = [c.get_linestyle() for c in contours]
    # solid is None/'solid' and dashed a dash pattern, depending on matplotlib
    dashed = [s for s in styles if s not in (None, "solid") and s != [(0, None)]]
    assert len(dashed) == 2
    assert _legend(ax) == ["edema", "core", "ground truth", "prediction"]
    assert len(ax.images) == 1  # the image only: no fill in contour overlay


def test_2d_fill_overlay_draws_a_fill_and_only_predictions_as_contours():
    mask, pred = _square_masks()
    fig = plot_segmentation(RNG.random((32, 32)), mask, pred=pred, overlay="fill")
    ax = fig.axes[0]
    assert len(ax.images) == 3  # the image and one fill per label
    fill = ax.images[1].get_array()
    assert fill.shape == (32, 32, 4)
    assert fill[8, 8, 3] == pytest.approx(0.4)  # alpha inside label 1
    assert fill[0, 0, 3] == 0
    assert len(_contours(ax)) == 2
    assert _legend(ax) == ["1", "2", "ground truth", "prediction"]


def test_mode_is_the_deprecated_spelling_of_overlay():
    mask, pred = _square_masks()
    image = RNG.random((32, 32))
    with pytest.warns(FutureWarning, match="`mode` was renamed `overlay`"):
        old = plot_segmentation(image, mask, pred=pred, mode="fill")
    new = plot_segmentation(image, mask, pred=pred, overlay="fill")
    old_fill, new_fill = (f.axes[0].images[1].get_array() for f in (old, new))
    np.testing.assert_array_equal(old_fill, new_fill)


def test_without_prediction_no_style_entries_and_rgb_image_shown_in_colour():
    mask, _ = _square_masks()
    image = RNG.integers(0, 255, (32, 32, 3)).astype(np.uint8)
    fig = plot_segmentation(image, mask, labels=[2])
    ax = fig.axes[0]
    assert _legend(ax) == ["2"]
    assert len(_contours(ax)) == 1
    assert ax.images[0].get_array().shape == (32, 32, 3)


def test_3d_montage_over_the_last_axis_with_foreground_slices():
    volume = RNG.random((24, 24, 20, 4))
    mask = np.zeros((24, 24, 20), dtype=np.uint8)
    mask[6:16, 6:16, 8:14] = 1
    mask[9:12, 9:12, 10:12] = 3
    fig = plot_segmentation(volume, mask, pred=mask, names=["bg", "edema", "x", "ET"])
    titles = [ax.get_title() for ax in fig.axes]
    assert len(fig.axes) == 4
    indices = [int(t.split()[1]) for t in titles]
    assert all(8 <= i < 14 for i in indices)
    assert indices == sorted(indices) and indices[0] == 8 and indices[-1] == 13
    assert _legend(fig.axes[-1]) == ["edema", "ET", "ground truth", "prediction"]
    fig = plot_segmentation(volume, mask, slices=[0, 10], channel=2)
    assert [ax.get_title() for ax in fig.axes] == ["slice 0", "slice 10"]
    assert len(_contours(fig.axes[0])) == 0  # no foreground on slice 0
    assert len(_contours(fig.axes[1])) == 2
    np.testing.assert_allclose(fig.axes[1].images[0].get_array(), volume[:, :, 10, 2])


def test_region_masks_as_predict_returns_them(tmp_path):
    regions = np.zeros((16, 16, 8, 3), dtype=bool)
    regions[2:10, 2:10, 2:6, 0] = True
    regions[4:8, 4:8, 3:5, 1] = True
    fig = plot_segmentation(
        RNG.random((16, 16, 8)),
        regions,
        pred=regions,
        names=["WT", "TC", "ET"],
        slices=2,
        path=tmp_path / "overlay.png",
    )
    assert len(fig.axes) == 2
    assert _legend(fig.axes[-1]) == ["WT", "TC", "ET", "ground truth", "prediction"]
    assert (tmp_path / "overlay.png").stat().st_size > 0


def test_given_axes_are_used():
    mask, _ = _square_masks()
    outer = Figure()
    ax = outer.subplots()
    fig = plot_segmentation(RNG.random((32, 32)), mask, ax=ax)
    assert fig is outer
    assert len(_contours(ax)) == 2


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(overlay="outline"), "overlay must be one of"),
        (dict(overlay="fill", mode="fill"), "`mode` and `overlay` were both given"),
        (dict(alpha=2), "alpha must be a number"),
        (dict(pred=np.zeros((8, 8), int)), "pred of shape \\(8, 8\\) does not fit"),
        (dict(slices=2), "slices applies to 3-D volumes only"),
        (dict(channel=3), None),
    ],
)
def test_bad_arguments(kwargs, message):
    mask, _ = _square_masks()
    if message is None:  # channel of a one-channel image: refused
        with pytest.raises(ValueError, match="channel must be an int in \\[0, 1\\)"):
            plot_segmentation(RNG.random((32, 32, 1)), mask, **kwargs)
        return
    with pytest.raises(ValueError, match=message):
        plot_segmentation(RNG.random((32, 32)), mask, **kwargs)


def test_bad_shapes_and_slices():
    with pytest.raises(ValueError, match="does not fit an image of shape"):
        plot_segmentation(RNG.random((8, 8, 8)), np.zeros((4, 4), int))
    volume = RNG.random((8, 8, 6))
    mask = np.zeros((8, 8, 6), int)
    with pytest.raises(ValueError, match="indices in \\[0, 6\\)"):
        plot_segmentation(volume, mask, slices=[9])
    with pytest.raises(ValueError, match="ax can hold one image"):
        plot_segmentation(volume, mask, slices=[1, 2], ax=Figure().subplots())
    with pytest.raises(ValueError, match="integer labels"):
        plot_segmentation(volume, mask.astype(float))
