"""Protocol pieces of the benchmark scripts that their figures depend on."""

import sys
from pathlib import Path

import numpy as np
import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def bench_accuracy():
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import bench_accuracy
    finally:
        sys.path.remove(str(BENCHMARKS))
    return bench_accuracy


def test_validation_split_keeps_identical_files_on_one_side(bench_accuracy, tmp_path):
    paths, labels = [], []
    for i in range(60):
        label = "ab"[i % 2]
        content = f"scan {i // 3 if i < 30 else i}".encode()  # copies among 0-29
        path = tmp_path / f"{i}.jpg"
        path.write_bytes(content + label.encode())
        paths.append(str(path))
        labels.append(label)
    X, y = np.asarray(paths), np.asarray(labels)
    digests = bench_accuracy.file_digests
    assert len(set(digests(X))) < len(X)  # there are copies to keep together
    X_fit, X_val, y_fit, y_val = bench_accuracy.split_apart_copies(X, y, 0.2)
    assert not set(digests(X_fit)) & set(digests(X_val))
    assert sorted([*X_fit, *X_val]) == sorted(paths)
    assert set(y_val) == {"a", "b"}


def test_the_brain_tumour_validation_split_has_no_copy_of_a_fit_image(
    bench_accuracy, brain_training
):
    from skmedimg.datasets import load_image_folder

    data = load_image_folder(brain_training)
    X, y = data.filenames, data.labels
    digests = bench_accuracy.file_digests(X)
    assert len(set(digests)) < len(digests)  # the folder does hold copies
    X_fit, X_val, _, y_val = bench_accuracy.split_apart_copies(X, y, 0.1)
    assert 0.09 < len(X_val) / len(X) < 0.11
    fit, val = bench_accuracy.file_digests(X_fit), bench_accuracy.file_digests(X_val)
    assert not set(fit) & set(val)
    assert set(y_val) == set(y)


@pytest.fixture(scope="module")
def bench_segmentation():
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import bench_segmentation
    finally:
        sys.path.remove(str(BENCHMARKS))
    return bench_segmentation


def test_segmentation_dice_counts_only_the_field_of_view(bench_segmentation):
    y = np.zeros((1, 4, 4), np.uint8)
    y[0, :, :2] = 1
    pred = y.copy()
    pred[0, 0, 2:] = 1  # false positives, outside the field of view
    fov = np.ones((1, 4, 4), bool)
    fov[0, 0] = False
    dice = bench_segmentation.drive_dice(pred, y, fov)
    assert dice["vessel"] == pytest.approx(1.0)
    fov[0, 0] = True
    assert bench_segmentation.drive_dice(pred, y, fov)["vessel"] == pytest.approx(
        2 * 8 / (10 + 8)
    )


def test_segmentation_brats_regions_use_label_3_for_enhancing(bench_segmentation):
    y = np.array([[0, 1, 2, 3]])
    regions = bench_segmentation.region_masks(y)
    assert list(bench_segmentation.REGIONS) == ["WT", "TC", "ET"]
    np.testing.assert_array_equal(regions[0, :, 0], [0, 1, 1, 1])
    np.testing.assert_array_equal(regions[0, :, 1], [0, 0, 1, 1])
    np.testing.assert_array_equal(regions[0, :, 2], [0, 0, 0, 1])
    # an empty region is left out of the mean, not scored 0 or 1
    dice = bench_segmentation.brats_dice(regions, np.array([[0, 1, 2, 2]]))
    assert dice["ET_n_volumes"] == 0 and np.isnan(dice["ET"])
    assert dice["WT"] == pytest.approx(1.0)


def test_segmentation_hand_loop_augments_image_and_target_alike(bench_segmentation):
    torch = pytest.importorskip("torch")
    gen = torch.Generator().manual_seed(0)
    x = torch.arange(2 * 6 * 5, dtype=torch.float32).reshape(2, 1, 6, 5)
    y = x.clone()
    for _ in range(5):
        xa, ya = bench_segmentation.augment(x.clone(), y.clone(), gen)
        # intensities change, the geometry of image and target stays matched
        order_x = xa.flatten(1).argsort(dim=1)
        order_y = ya.flatten(1).argsort(dim=1)
        assert torch.equal(order_x, order_y)
    patches, targets = bench_segmentation.random_patches(x, y, (3, 4), gen)
    assert patches.shape == (2, 1, 3, 4)
    assert torch.equal(patches, targets)
