"""``skmedimg segment train / evaluate / predict`` on tiny phantoms."""

import argparse
import json

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("monai")

from skmedimg.cli import main  # noqa: E402
from skmedimg.datasets import make_segmentation_phantoms  # noqa: E402
from skmedimg.neural import load_model  # noqa: E402

# A two-level U-Net of 4 and 8 channels: a few seconds for a whole command.
TINY = [
    "--network-arg",
    "channels=4,8",
    "--network-arg",
    "strides=2,",
    "--network-arg",
    "num_res_units=0",
    "--batch-size",
    "4",
    "--device",
    "cpu",
]
FAST = ["--epochs", "2", *TINY, "--quiet"]
N_IMAGES = 8


def _is_png(path):
    with Image.open(path) as img:
        return img.format == "PNG" and min(img.size) > 100


def _save_pairs(root, X, y, *, mask_suffix="_mask"):
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for i, (image, mask) in enumerate(zip(X, y, strict=True)):
        Image.fromarray(image).save(root / "images" / f"case{i:02d}.png")
        Image.fromarray(mask.astype(np.uint8)).save(
            root / "masks" / f"case{i:02d}{mask_suffix}.png"
        )
    return root


@pytest.fixture(scope="module")
def seg_folder(tmp_path_factory):
    """images/ + masks/ of 32 x 32 phantoms, labels 0, 1, 2."""
    X, y = make_segmentation_phantoms(
        N_IMAGES, image_size=32, n_classes=3, random_state=0
    )
    return _save_pairs(tmp_path_factory.mktemp("seg"), X, y)


@pytest.fixture(scope="module")
def trained(seg_folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("segmodel")
    code = main(["segment", "train", str(seg_folder), "--out", str(out), *FAST])
    assert code == 0
    return out


def _one_line_error(capsys, message):
    err = capsys.readouterr().err.strip()
    assert message in err, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    return err


# --------------------------------------------------------------------------
# train
# --------------------------------------------------------------------------


def test_train_writes_model_report_and_overlay(trained, seg_folder):
    from skmedimg.segmentation import CNNSegmenter

    report = json.loads((trained / "report.json").read_text())
    assert report["task"] == "segmentation"
    assert report["data"]["layout"] == "images/ + masks/"
    split = report["split"]
    assert split["n_train"] + split["n_validation"] == N_IMAGES
    assert split["n_validation"] == report["n_test"] == 2  # 20 % of 8, rounded up
    assert set(split["validation"]) < {f"case{i:02d}" for i in range(N_IMAGES)}
    metrics = report["metrics"]
    assert list(metrics["classes"]) == ["1", "2"]  # the background is not scored
    for value in metrics["classes"].values():
        assert 0.0 <= value["dice"] <= 1.0
    assert metrics["mean"]["dice"] == pytest.approx(
        np.mean([v["dice"] for v in metrics["classes"].values()])
    )
    assert [row["image"] for row in metrics["per_image"]] == split["validation"]
    assert report["model"]["spatial_dims"] == 2
    assert report["model"]["classes"] == [0, 1, 2]
    assert len(report["model"]["history"]["train_loss"]) == 2
    assert report["settings"]["max_epochs"] == 2
    assert report["model"]["params"]["network__channels"] == [4, 8]
    assert "monai" in report["versions"] and report["timings"]["fit_s"] > 0
    for name in ("overlay.png", "training_curves.png"):
        assert _is_png(trained / name)
    model = load_model(trained / "model.skmedimg")
    assert isinstance(model, CNNSegmenter)
    assert model.classes_.tolist() == [0, 1, 2] and model.n_epochs_ == 2


def test_the_validation_split_is_chosen_by_the_seed():
    from skmedimg._cli_segment import _split

    names = [f"BRATS_{p:03d}_p{k}" for p in (1, 2, 3, 4) for k in range(3)]

    def split(seed, pattern=None):
        args = argparse.Namespace(
            validation_size=0.25, random_state=seed, group_pattern=pattern
        )
        return _split(len(names), names, args, "here")

    train, valid, groups = split(0)
    assert len(valid) == 3 and groups is None
    assert sorted([*train, *valid]) == list(range(len(names)))
    assert np.array_equal(valid, split(0)[1])
    assert any(not np.array_equal(valid, split(s)[1]) for s in (1, 2, 3))
    # by patient: a patient's patches stay on one side
    train, valid, groups = split(0, r"BRATS_\d+")
    assert len(groups) == 1 and len(valid) == 3
    assert {names[i][:9] for i in valid} == set(groups)
    assert not {names[i][:9] for i in train} & set(groups)


def test_demo_trains_on_phantoms_without_a_folder(tmp_path, capsys):
    code = main(
        [
            "segment",
            "train",
            "--out",
            str(tmp_path),
            "--n-samples",
            "6",
            "--epochs",
            "2",
            *TINY,
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "synthetic phantoms" in out and "mean Dice" in out
    assert "edema" in out  # the Dice table names the classes
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["data"]["layout"] == "phantoms"
    assert report["data"]["label_names"] == {"1": "edema", "2": "core"}
    assert report["metrics"]["names"] == {"1": "edema", "2": "core"}
    assert report["split"]["n_train"] == 4 and report["split"]["n_validation"] == 2
    assert _is_png(tmp_path / "overlay.png")
    assert (tmp_path / "model.skmedimg").is_file()


# --------------------------------------------------------------------------
# evaluate and predict
# --------------------------------------------------------------------------


def test_evaluate_writes_the_dice_report(trained, seg_folder, tmp_path, capsys):
    out = tmp_path / "eval"
    argv = ["segment", "evaluate", str(trained), str(seg_folder)]
    code = main([*argv, "--out", str(out)])
    assert code == 0
    assert "mean Dice" in capsys.readouterr().out
    report = json.loads((out / "report.json").read_text())
    assert report["n_test"] == N_IMAGES
    assert len(report["metrics"]["per_image"]) == N_IMAGES
    assert list(report["metrics"]["classes"]) == ["1", "2"]
    assert report["model"]["file"] == str(trained / "model.skmedimg")
    assert _is_png(out / "overlay.png")


def test_predict_writes_png_masks_and_a_summary(trained, seg_folder, tmp_path, capsys):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    # a colour image for the gray model: read in gray, as in training
    colour = tmp_path / "colour.png"
    gray = np.asarray(Image.open(seg_folder / "images" / "case00.png"))
    Image.fromarray(np.stack([gray] * 3, axis=-1)).save(colour)
    out = tmp_path / "masks"
    argv = ["segment", "predict", str(trained), str(seg_folder / "images")]
    code = main([*argv, str(colour), str(broken), "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 1  # one file could not be read; the others are segmented
    assert "broken.png" in captured.err and "case00.png" not in captured.err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["classes"] == [0, 1, 2]
    assert [f["image"] for f in summary["failures"]] == [str(broken)]
    rows = summary["images"]
    assert len(rows) == N_IMAGES + 1
    model = load_model(trained / "model.skmedimg")
    expected = model.predict([gray])[0]
    for row in rows:
        (mask_path,) = row["masks"]
        mask = np.asarray(Image.open(mask_path))
        assert mask.shape == (32, 32) == tuple(row["shape"])
        assert set(np.unique(mask)) <= {0, 1, 2}
        assert sum(row["fractions"].values()) == pytest.approx(1.0)
        assert row["fractions"]["1"] == pytest.approx(np.mean(mask == 1))
    by_image = {row["image"]: row for row in rows}
    for path in (seg_folder / "images" / "case00.png", colour):
        mask = np.asarray(Image.open(by_image[str(path)]["masks"][0]))
        assert np.array_equal(mask, expected)
    assert by_image[str(colour)]["masks"] == [str(out / "colour_mask.png")]


def test_3d_decathlon_folder_with_brats_regions_and_nifti_masks(tmp_path, capsys):
    nib = pytest.importorskip("nibabel")
    X, y = make_segmentation_phantoms(
        4, image_size=16, ndim=3, n_channels=2, n_classes=4, random_state=0
    )
    root = tmp_path / "Task01_Tiny"
    (root / "imagesTr").mkdir(parents=True)
    (root / "labelsTr").mkdir()
    affine = np.diag([1.5, 1.5, 2.0, 1.0])
    for i, (image, mask) in enumerate(zip(X, y, strict=True)):
        name = f"BRATS_{i:03d}.nii.gz"
        nib.save(nib.Nifti1Image(image, affine), root / "imagesTr" / name)
        nib.save(
            nib.Nifti1Image(mask.astype(np.uint8), affine), root / "labelsTr" / name
        )
    labels = {"0": "background", "1": "edema", "2": "non-enhancing", "3": "enhancing"}
    (root / "dataset.json").write_text(json.dumps({"labels": labels}))
    out = tmp_path / "model"
    argv = ["segment", "train", str(root), "--regions", "brats", "--out", str(out)]
    assert main([*argv, *FAST, "--validation-size", "0.25"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["data"]["layout"] == "decathlon"
    assert report["data"]["label_names"] == {
        "1": "edema",
        "2": "non-enhancing",
        "3": "enhancing",
    }
    assert list(report["metrics"]["classes"]) == ["WT", "TC", "ET"]
    assert report["model"]["regions"] == {"WT": [1, 2, 3], "TC": [2, 3], "ET": [3]}
    assert report["model"]["spatial_dims"] == 3 and report["n_test"] == 1
    assert _is_png(out / "overlay.png")

    masks = tmp_path / "masks"
    source = root / "imagesTr" / "BRATS_000.nii.gz"
    assert main(["segment", "predict", str(out), str(source), "--out", str(masks)]) == 0
    written = nib.load(masks / "BRATS_000_mask.nii.gz")
    assert written.shape == (16, 16, 16, 3)  # WT, TC, ET on the 4th axis
    assert np.allclose(written.affine, affine)
    data = np.asarray(written.dataobj)
    assert data.dtype == np.uint8 and set(np.unique(data)) <= {0, 1}
    (row,) = json.loads((masks / "summary.json").read_text())["images"]
    assert row["voxel_volume_mm3"] == pytest.approx(1.5 * 1.5 * 2.0)
    assert row["volumes_ml"]["WT"] == pytest.approx(
        data[..., 0].sum() * 4.5 / 1000
    )
    # the classification commands point a segmenter to these commands
    capsys.readouterr()
    assert main(["predict", str(out), str(source), "--quiet"]) == 1
    _one_line_error(capsys, "a segmentation model (CNNSegmenter)")


# --------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------


def _folder_with(tmp_path, problem):
    X, y = make_segmentation_phantoms(3, image_size=16, random_state=0)
    root = _save_pairs(tmp_path / "data", X, y)
    if problem == "orphan mask":
        Image.fromarray(y[0].astype(np.uint8)).save(root / "masks" / "extra_mask.png")
    elif problem == "missing mask":
        (root / "masks" / "case01_mask.png").unlink()
    elif problem == "no masks folder":
        for path in (root / "masks").iterdir():
            path.unlink()
        (root / "masks").rmdir()
    elif problem == "wrong shape":
        Image.fromarray(np.zeros((8, 8), np.uint8)).save(
            root / "masks" / "case02_mask.png"
        )
    elif problem == "no layout":
        (root / "images").rename(root / "pictures")
    return root


@pytest.mark.parametrize(
    "problem, message",
    [
        ("orphan mask", "1 mask(s) without an image in"),
        ("missing mask", "1 image(s) without a mask in"),
        ("no masks folder", "has images/ but no masks/ folder"),
        ("wrong shape", "case02.png has spatial shape (16, 16) but its mask"),
        ("no layout", "expected imagesTr/ + labelsTr/"),
    ],
)
def test_folder_problems_are_one_line_errors_naming_the_item(
    tmp_path, capsys, problem, message
):
    root = _folder_with(tmp_path, problem)
    out = tmp_path / "out"
    assert main(["segment", "train", str(root), "--out", str(out), *FAST]) == 1
    err = _one_line_error(capsys, message)
    if problem == "orphan mask":
        assert "extra_mask.png" in err
    if problem == "missing mask":
        assert "case01.png" in err
    assert not out.exists()  # a failed run leaves no empty output folder


def test_option_and_model_errors(trained, seg_folder, tmp_path, capsys):
    from skmedimg.neural import save_model
    from tests.helpers import phantom_model

    out = str(tmp_path / "out")
    train = ["train", str(seg_folder), "--out", out, *FAST]
    cases = [
        (["train", str(tmp_path / "nope"), *FAST], "nope: no such folder"),
        ([*train, "--demo"], "give no DATA_DIR with it"),
        ([*train, "--epochs", "0"], "--epochs: The 'max_epochs' parameter"),
        ([*train, "--group-pattern", "zzz"], "'zzz' does not match 'case00'"),
        (["predict", str(tmp_path / "nope.skmedimg"), "x.png"], "no such model file"),
    ]
    for argv, message in cases:
        assert main(["segment", *argv, "--out", out]) == 1, argv
        _one_line_error(capsys, message)
    assert not (tmp_path / "out").exists()

    not_a_model = tmp_path / "weights.skmedimg"
    not_a_model.write_bytes(b"not a model")
    assert main(["segment", "predict", str(not_a_model), "x.png", "--out", out]) == 1
    _one_line_error(capsys, "not a segmentation model saved by skmedimg")

    classifier = tmp_path / "classifier.skmedimg"
    save_model(phantom_model()[0], classifier)
    image = str(seg_folder / "images" / "case00.png")
    for argv in (["predict", str(classifier), image], ["evaluate", str(classifier)]):
        if argv[0] == "evaluate":
            argv.append(str(seg_folder))
        assert main(["segment", *argv, "--out", out]) == 1
        _one_line_error(capsys, "(a classification model), not a segmenter")


def test_usage_errors_exit_2(capsys):
    for argv in (["segment"], ["segment", "predict", "m"], ["segment", "nope"]):
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 2, argv
    with pytest.raises(SystemExit) as info:
        main(["segment", "train", "--roi-size", "a,b"])
    assert info.value.code == 2
    assert "96,96" in capsys.readouterr().err


def test_the_choices_of_the_options_are_the_estimators():
    # The parser does not import torch, so it spells the choices itself.
    from skmedimg.cli import _build_parser
    from skmedimg.segmentation import CNNSegmenter

    parser = _build_parser()
    commands = next(a for a in parser._actions if a.dest == "command")
    segment = commands.choices["segment"]
    train = next(a for a in segment._actions if a.dest == "segment_command")
    train = train.choices["train"]
    choices = {a.dest: a.choices for a in train._actions if a.choices}
    constraints = CNNSegmenter._parameter_constraints
    for option, param in [("network", "network"), ("loss", "loss")]:
        assert set(choices[option]) == constraints[param][0].options, option
    assert set(choices["augment"]) == constraints["augment"][0].options | {"none"}
    assert set(choices["precision"]) == constraints["precision"][0].options
