"""dice_score, the BraTS regions and segmentation_report on hand-made masks."""

import json

import numpy as np
import pytest

pytest.importorskip("monai")

from skmedimg.segmentation import (  # noqa: E402
    BRATS_REGIONS,
    dice_score,
    segmentation_report,
)


def test_dice_edge_cases():
    empty = np.zeros((1, 4, 4), dtype=int)
    full = empty.copy()
    full[0, 1:3, 1:3] = 1
    # empty prediction of an empty class: nothing to find, nothing found
    assert dice_score(empty, empty, labels=[1]) == 1.0
    assert dice_score(full, empty, labels=[1]) == 0.0
    assert dice_score(empty, full, labels=[1]) == 0.0
    assert dice_score(full, full) == 1.0


def test_dice_hand_computed_values():
    y_true = np.array([[0, 1, 1, 1, 2, 2]])
    y_pred = np.array([[0, 1, 1, 2, 2, 0]])
    # class 1: |T|=3 |P|=2 inter=2 -> 4/5; class 2: |T|=2 |P|=2 inter=1 -> 1/2
    np.testing.assert_allclose(dice_score(y_true, y_pred, average=None), [0.8, 0.5])
    assert dice_score(y_true, y_pred) == pytest.approx(0.65)
    # background: |T|=1 |P|=2 inter=1 -> 2/3
    np.testing.assert_allclose(
        dice_score(y_true, y_pred, include_background=True, average=None),
        [2 / 3, 0.8, 0.5],
    )
    # per-mask mean: the second mask scores 1 for class 1
    two = dice_score([y_true[0], y_true[0]], [y_pred[0], y_true[0]], labels=[1])
    assert two == pytest.approx((0.8 + 1.0) / 2)


def test_dice_shape_mismatch_names_the_mask():
    with pytest.raises(ValueError, match="mask 1: y_true has shape"):
        dice_score(
            [np.zeros((2, 2)), np.zeros((2, 2))],
            [np.zeros((2, 2))] * 0
            + [
                np.zeros((2, 2)),
                np.zeros((3, 2)),
            ],
        )


def test_brats_regions_are_the_decathlon_labels():
    # dataset.json of Task01_BrainTumour: 1 edema, 2 non-enhancing, 3 enhancing
    assert BRATS_REGIONS == {"WT": [1, 2, 3], "TC": [2, 3], "ET": [3]}
    y_true = np.array([[0, 1, 1, 2, 3, 3]])
    y_pred = np.array([[0, 1, 2, 2, 2, 3]])
    # WT: 5 vs 5 voxels, all shared -> 1; TC: T={3,4,5} P={2,3,4,5} -> 6/7;
    # ET: T={4,5} P={5} -> 2/3
    np.testing.assert_allclose(
        dice_score(y_true, y_pred, regions=BRATS_REGIONS, average=None),
        [1.0, 6 / 7, 2 / 3],
    )
    # boolean region masks (what a region model predicts) give the same
    pred_masks = np.stack([np.isin(y_pred, v) for v in BRATS_REGIONS.values()], -1)
    np.testing.assert_allclose(
        dice_score(y_true, pred_masks, regions=BRATS_REGIONS, average=None),
        [1.0, 6 / 7, 2 / 3],
    )


def test_segmentation_report_keys_hd95_and_json():
    y_true = np.zeros((1, 8, 8), dtype=int)
    y_pred = np.zeros((1, 8, 8), dtype=int)
    y_true[0, 2, 2] = 1
    y_pred[0, 2, 5] = 1
    y_true[0, 6, 6] = 2  # class 2 not predicted: HD95 undefined
    report = segmentation_report(y_true, y_pred)
    assert set(report) == {"classes", "mean", "n_samples"}
    assert set(report["classes"]) == {"1", "2"}
    one = report["classes"]["1"]
    assert set(one) == {"dice", "hd95", "volume_true", "volume_pred"}
    assert one["dice"] == 0.0
    assert one["hd95"] == pytest.approx(3.0)
    assert report["classes"]["2"]["hd95"] is None
    assert report["mean"]["hd95"] == pytest.approx(3.0)
    # spacing scales distances and volumes
    spaced = segmentation_report(y_true, y_pred, spacing=(2.0, 0.5))
    assert spaced["classes"]["1"]["hd95"] == pytest.approx(1.5)
    assert spaced["classes"]["1"]["volume_true"] == pytest.approx(1.0)
    json.dumps(report)  # plain Python types only
    regions = segmentation_report(y_true, y_pred, regions={"any": [1, 2]})
    assert set(regions["classes"]) == {"any"}
    assert regions["classes"]["any"]["dice"] == pytest.approx(2 * 0 / 3)
