import json

import numpy as np
import pytest
from PIL import Image

from skmedimg.datasets import load_decathlon, load_drive
from skmedimg.utils import read_masks, read_volume

TASK01_JSON = {
    "name": "BRATS",
    "modality": {"0": "FLAIR", "1": "T1w", "2": "t1gd", "3": "T2w"},
    "labels": {
        "0": "background",
        "1": "edema",
        "2": "non-enhancing tumor",
        "3": "enhancing tumour",
    },
}


def _touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def _decathlon(tmp_path, names=("BRATS_002", "BRATS_001"), meta=TASK01_JSON):
    root = tmp_path / "Task01_BrainTumour"
    for name in names:
        _touch(root / "imagesTr" / f"{name}.nii.gz")
        _touch(root / "labelsTr" / f"{name}.nii.gz")
    # archive clutter made on macOS: never data
    _touch(root / "imagesTr" / "._BRATS_001.nii.gz")
    _touch(root / "imagesTs" / "BRATS_900.nii.gz")
    if meta is not None:
        (root / "dataset.json").write_text(json.dumps(meta))
    return root


def test_decathlon_pairs_by_file_name_with_dataset_json(tmp_path):
    root = _decathlon(tmp_path)
    data = load_decathlon(root)
    assert [p.split("/")[-1] for p in data.images] == [
        "BRATS_001.nii.gz",
        "BRATS_002.nii.gz",
    ]
    assert [p.split("/")[-2:] for p in data.masks] == [
        ["labelsTr", "BRATS_001.nii.gz"],
        ["labelsTr", "BRATS_002.nii.gz"],
    ]
    assert list(data.names) == ["BRATS_001", "BRATS_002"]
    assert data.labels == {
        0: "background",
        1: "edema",
        2: "non-enhancing tumor",
        3: "enhancing tumour",
    }
    assert data.modalities == ["FLAIR", "T1w", "t1gd", "T2w"]
    assert "BRATS" in data.DESCR and "2 images" in data.DESCR


def test_decathlon_test_split_and_no_json(tmp_path):
    root = _decathlon(tmp_path, meta=None)
    data = load_decathlon(root, split="test")
    assert [p.split("/")[-1] for p in data.images] == ["BRATS_900.nii.gz"]
    assert data.masks is None
    assert data.labels is None and data.modalities is None


def test_decathlon_missing_label_is_named(tmp_path):
    root = _decathlon(tmp_path)
    (root / "labelsTr" / "BRATS_002.nii.gz").unlink()
    with pytest.raises(FileNotFoundError, match="no label file .*BRATS_002.nii.gz"):
        load_decathlon(root)


def test_decathlon_orphan_label_bad_split_and_missing_folders(tmp_path):
    root = _decathlon(tmp_path)
    _touch(root / "labelsTr" / "BRATS_777.nii.gz")
    with pytest.raises(ValueError, match="have no image .*BRATS_777.nii.gz"):
        load_decathlon(root)
    with pytest.raises(ValueError, match="split must be one of"):
        load_decathlon(root, split="validation")
    with pytest.raises(FileNotFoundError, match="has no imagesTr/"):
        load_decathlon(tmp_path)
    with pytest.raises(FileNotFoundError, match="not found"):
        load_decathlon(tmp_path / "nowhere")
    empty = tmp_path / "empty"
    (empty / "imagesTr").mkdir(parents=True)
    with pytest.raises(ValueError, match="holds no NIfTI images"):
        load_decathlon(empty)


def test_decathlon_malformed_json(tmp_path):
    root = _decathlon(tmp_path, meta={"labels": {"zero": "background"}})
    with pytest.raises(ValueError, match="keys of 'labels' must be integers"):
        load_decathlon(root)
    (root / "dataset.json").write_text("{not json")
    with pytest.raises(ValueError, match="dataset.json is not a readable JSON"):
        load_decathlon(root)


def _drive(tmp_path, ids=(22, 21)):
    root = tmp_path / "DRIVE" / "training"
    for name in ("images", "1st_manual", "mask"):
        (root / name).mkdir(parents=True)
    for i in ids:
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(
            root / "images" / f"{i}_training.tif"
        )
        vessels = np.zeros((8, 8), np.uint8)
        vessels[2:4] = 255
        Image.fromarray(vessels).save(root / "1st_manual" / f"{i}_manual1.gif")
        Image.fromarray(np.full((8, 8), 255, np.uint8)).save(
            root / "mask" / f"{i}_training_mask.gif"
        )
    return root


def test_drive_matches_by_number(tmp_path):
    root = _drive(tmp_path)
    data = load_drive(root)
    assert list(data.ids) == [21, 22]
    assert [p.split("/")[-1] for p in data.images] == [
        "21_training.tif",
        "22_training.tif",
    ]
    assert [p.split("/")[-1] for p in data.masks] == [
        "21_manual1.gif",
        "22_manual1.gif",
    ]
    assert [p.split("/")[-1] for p in data.fov_masks] == [
        "21_training_mask.gif",
        "22_training_mask.gif",
    ]
    vessels = read_masks(data.masks, binarize=True)
    assert vessels.shape == (2, 8, 8)
    assert vessels.sum() == 2 * 16


def test_drive_missing_masks_and_folders(tmp_path):
    root = _drive(tmp_path)
    (root / "mask" / "22_training_mask.gif").unlink()
    with pytest.raises(
        FileNotFoundError, match="no field-of-view mask .*22_training.tif"
    ):
        load_drive(root)
    (root / "1st_manual" / "21_manual1.gif").unlink()
    with pytest.raises(FileNotFoundError, match="no vessel mask .*21_training.tif"):
        load_drive(root)
    with pytest.raises(FileNotFoundError, match="has no images/ folder"):
        load_drive(tmp_path)


def test_real_drive(shared_data):
    root = shared_data / "drive_training"
    if not root.is_dir():
        pytest.skip(f"{root} is absent")
    data = load_drive(root)
    assert list(data.ids) == list(range(21, 41))
    fov = read_masks(data.fov_masks[:1], binarize=True)
    assert fov.shape == (1, 584, 565)
    assert 0.5 < fov.mean() < 0.9


def test_real_brats_patches(shared_data):
    root = shared_data / "brats_patches"
    if not root.is_dir():
        pytest.skip(f"{root} is absent")
    data = load_decathlon(root)
    assert len(data.images) == 24
    assert sum(name.startswith("BRATS_009") for name in data.names) == 12
    vol = read_volume(data.images[0])
    mask = read_masks(data.masks[0])
    assert vol.shape[:3] == mask.shape
