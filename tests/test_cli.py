import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from skmedimg.cli import main
from skmedimg.datasets import make_phantoms
from skmedimg.neural import load_model

FAST = [
    "--model",
    "test_efficientnet",
    "--pretrained",
    "false",
    "--epochs",
    "2",
    "--image-size",
    "32",
    "--batch-size",
    "16",
    "--quiet",
]


def _is_png(path):
    with Image.open(path) as img:
        return img.format == "PNG" and min(img.size) > 100


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    """A <class>/<image> folder of phantoms with one corrupt file."""
    root = tmp_path_factory.mktemp("folder")
    X, y = make_phantoms(48, n_classes=2, image_size=40, random_state=0)
    for i, (img, label) in enumerate(zip(X, y, strict=True)):
        folder = root / ("lesion" if label else "healthy")
        folder.mkdir(exist_ok=True)
        Image.fromarray(img).save(folder / f"{i:03d}.png")
    (root / "healthy" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    return root


@pytest.fixture(scope="module")
def trained(image_folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("model")
    code = main(
        ["train", str(image_folder), "--test-size", "0.25", "--out", str(out), *FAST]
    )
    assert code == 0
    return out


def test_train_writes_model_and_report(trained, image_folder):
    report = json.loads((trained / "report.json").read_text())
    assert set(report["classes"]) == {"healthy", "lesion"}
    assert 0.0 <= report["metrics"]["accuracy"] <= 1.0
    assert report["n_train"] + report["n_test"] == 48  # the broken file skipped
    assert report["skipped_unreadable"]["train"] + report["skipped_unreadable"][
        "test"
    ] == [str(image_folder / "healthy" / "broken.png")]
    assert report["settings"]["model"] == "test_efficientnet"
    assert "torch" in report["versions"] and report["timings"]["fit_s"] > 0
    cm = np.array(report["metrics"]["confusion_matrix"])
    assert cm.sum() == report["n_test"]
    assert (trained / "model.skmedimg").exists()
    for name in ["confusion_matrix.png", "training_curves.png"]:
        assert _is_png(trained / name)


def test_train_warns_about_unreadable_files(image_folder, tmp_path, capsys):
    code = main(["train", str(image_folder), "--out", str(tmp_path), *FAST])
    assert code == 0
    captured = capsys.readouterr()
    assert "skipping 1 unreadable image(s)" in captured.err
    assert "broken.png" in captured.err
    # --quiet prints the result line only.
    (line,) = captured.out.strip().splitlines()
    assert line.startswith("accuracy ") and "report.json" in line


def test_predict_reports_corrupt_image_and_predicts_the_others(
    trained, image_folder, capsys
):
    code = main(
        [
            "predict",
            str(trained),
            str(image_folder / "lesion"),
            str(image_folder / "healthy" / "broken.png"),
            "--format",
            "json",
        ]
    )
    captured = capsys.readouterr()
    rows = json.loads(captured.out)
    n_lesion = len(list((image_folder / "lesion").glob("*.png")))
    predicted = [r for r in rows if "label" in r]
    assert len(predicted) == n_lesion
    for row in predicted:
        assert row["label"] in {"healthy", "lesion"}
        assert sum(row["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
    assert [r["image"] for r in rows if "error" in r] == [
        str(image_folder / "healthy" / "broken.png")
    ]
    assert "broken.png" in captured.err
    assert code == 1


def test_predict_table_and_csv_give_one_row_per_image(trained, image_folder, capsys):
    assert (
        main(
            [
                "predict",
                str(trained / "model.skmedimg"),
                str(image_folder / "lesion"),
                "--format",
                "csv",
            ]
        )
        == 0
    )
    lines = capsys.readouterr().out.strip().splitlines()
    n_lesion = len(list((image_folder / "lesion").glob("*.png")))
    assert lines[0] == "image,label,p_healthy,p_lesion"
    assert len(lines) == 1 + n_lesion
    assert main(["predict", str(trained), str(image_folder / "lesion")]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 1 + n_lesion


def test_predict_matches_the_saved_model(trained, image_folder, capsys):
    from skmedimg.neural import load_model

    model = load_model(trained / "model.skmedimg")
    paths = sorted(str(p) for p in (image_folder / "lesion").glob("*.png"))
    main(["predict", str(trained), *paths, "--format", "json"])
    rows = json.loads(capsys.readouterr().out)
    assert [r["label"] for r in rows] == list(model.predict(paths))


def test_predict_works_a_chunk_of_files_at_a_time(
    trained, image_folder, capsys, monkeypatch
):
    import skmedimg.cli as cli

    folder = [str(image_folder / "lesion"), str(image_folder / "healthy")]
    main(["predict", str(trained), *folder, "--format", "json"])
    whole = json.loads(capsys.readouterr().out)
    reads = []
    real = cli._read_for_model

    def recording(model, paths, *args, **kwargs):
        reads.append(len(paths))
        return real(model, paths, *args, **kwargs)

    monkeypatch.setattr(cli, "_PREDICT_CHUNK", 5)
    monkeypatch.setattr(cli, "_read_for_model", recording)
    code = main(["predict", str(trained), *folder, "--format", "json"])
    chunked = json.loads(capsys.readouterr().out)
    assert reads == [5] * 9 + [4]  # 48 phantoms and the broken file
    assert code == 1
    assert [r["image"] for r in chunked] == [r["image"] for r in whole]
    for a, b in zip(whole, chunked, strict=True):
        assert a.get("label") == b.get("label") and a.get("error") == b.get("error")
    assert [r["image"] for r in chunked if "error" in r] == [
        str(image_folder / "healthy" / "broken.png")
    ]


def test_train_passes_the_recipe_options_to_the_model(image_folder, tmp_path):
    from skmedimg.neural import load_model

    recipe = {
        "--optimizer": "adamw",
        "--weight-decay": "0.01",
        "--lr-schedule": "onecycle",
        "--label-smoothing": "0.1",
        "--ema": "0.9",
        "--tta": "hflip",
        "--dropout": "0.2",
        "--class-weight": "balanced",
        "--loss": "false_negative",
        "--negative-class": "healthy",
        "--fn-weight": "3",
        "--device": "cpu",
        "--precision": "fp32",
        "--color": "gray",
    }
    options = [str(item) for pair in recipe.items() for item in pair]
    code = main(["train", str(image_folder), "--out", str(tmp_path), *FAST, *options])
    assert code == 0
    params = load_model(tmp_path / "model.skmedimg").get_params()
    assert {k: params[k] for k in ("optimizer", "lr_schedule", "tta")} == {
        "optimizer": "adamw",
        "lr_schedule": "onecycle",
        "tta": "hflip",
    }
    assert (params["weight_decay"], params["label_smoothing"], params["ema"]) == (
        0.01,
        0.1,
        0.9,
    )
    assert {
        k: params[k]
        for k in (
            "dropout",
            "class_weight",
            "loss",
            "criterion__negative_class",
            "criterion__fn_weight",
            "device",
            "precision",
            "color",
        )
    } == {
        "dropout": 0.2,
        "class_weight": "balanced",
        "loss": "false_negative",
        "criterion__negative_class": "healthy",
        "criterion__fn_weight": 3.0,
        "device": "cpu",
        "precision": "fp32",
        "color": "gray",
    }
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["settings"]["ema"] == 0.9 and report["settings"]["tta"] == "hflip"
    assert report["settings"]["class_weight"] == "balanced"


@pytest.mark.parametrize(
    "options, message",
    [
        (["--negative-class", "healthy"], "apply only to --loss false_negative"),
        (
            ["--loss", "false_negative", "--negative-class", "nobody"],
            "'nobody' is not one of the classes",
        ),
    ],
)
def test_screening_options_are_checked(
    image_folder, tmp_path, capsys, options, message
):
    code = main(["train", str(image_folder), "--out", str(tmp_path), *FAST, *options])
    assert code == 1
    assert message in capsys.readouterr().err


def test_evaluate_writes_report(trained, image_folder, tmp_path):
    code = main(
        ["evaluate", str(trained), str(image_folder), "--out", str(tmp_path), "--quiet"]
    )
    assert code == 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["n_test"] == 48
    assert _is_png(tmp_path / "confusion_matrix.png")


def test_demo_runs_offline_and_writes_report(tmp_path, capsys):
    code = main(
        [
            "demo",
            "--out",
            str(tmp_path),
            "--n-samples",
            "64",
            "--model",
            "test_efficientnet",
            "--epochs",
            "2",
            "--image-size",
            "32",
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "RANDOM weights" in out  # no shipped weights for this backbone
    assert "precision" in out and "recall" in out  # the classification report
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["n_test"] == 16 and report["weights_source"] == "random"
    assert _is_png(tmp_path / "confusion_matrix.png")


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "{missing}"], "no such file or directory"),
        (["train", "{one_class}"], "only one class"),
        (["predict", "{missing}", "x.png"], "no such model file"),
    ],
)
def test_failures_are_one_line_with_exit_code_1(argv, message, tmp_path, capsys):
    one_class = tmp_path / "one"
    (one_class / "only").mkdir(parents=True)
    Image.new("L", (8, 8)).save(one_class / "only" / "a.png")
    argv = [a.format(missing=tmp_path / "nope", one_class=one_class) for a in argv]
    assert main([*argv, *FAST[-1:]]) == 1
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert "Traceback" not in err


@pytest.mark.parametrize(
    "options, message",
    [
        (["--epochs", "0"], "--epochs: The 'max_epochs' parameter"),
        (["--augment", "bogus"], "--augment: The 'augment' parameter"),
        (["--freeze", "bogus"], "--freeze: The 'freeze' parameter"),
        (["--pretrained", "{missing}.pth"], "no such weights file"),
        (["--negative-class", "healthy"], "apply only to --loss false_negative"),
        (["--out", "{a_file}"], "exists and is not a folder"),
        (["--out", "{a_file}/sub"], "is not a writable folder"),
    ],
)
def test_options_are_checked_before_any_image_is_read(
    image_folder, tmp_path, capsys, monkeypatch, options, message
):
    import skmedimg.cli

    def no_reading(*args, **kwargs):
        raise AssertionError("images were read before the options were checked")

    monkeypatch.setattr(skmedimg.cli, "_drop_unreadable", no_reading)
    (tmp_path / "file").write_text("not a folder")
    fill = {"missing": tmp_path / "nope", "a_file": tmp_path / "file"}
    options = [o.format(**fill) for o in options]
    argv = ["train", str(image_folder), "--out", str(tmp_path / "out"), *FAST]
    assert main([*argv, *options]) == 1
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_too_many_folds_is_an_error_before_training(image_folder, tmp_path, capsys):
    # 48 images in all, so no class has 40 in the training split
    argv = ["train", str(image_folder), "--out", str(tmp_path), "--cv", "40", *FAST]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "--cv 40: the smallest class" in err and "fewer than the folds" in err
    assert not (tmp_path / "model.skmedimg").exists()
    with pytest.raises(SystemExit) as info:
        main([*argv[: -len(FAST) - 2], "--cv", "1", *FAST])
    assert info.value.code == 2
    assert "needs 2 folds or more" in capsys.readouterr().err


def test_the_model_is_saved_before_cross_validation(
    image_folder, tmp_path, capsys, monkeypatch
):
    import skmedimg.cli

    def failing(*args, **kwargs):
        raise MemoryError("cross-validation ran out of memory")

    monkeypatch.setattr(skmedimg.cli, "_cross_validate", failing)
    argv = ["train", str(image_folder), "--out", str(tmp_path), "--cv", "2", *FAST]
    assert main(argv) == 1
    assert "ran out of memory" in capsys.readouterr().err
    model = load_model(tmp_path / "model.skmedimg")
    assert set(model.classes_) == {"healthy", "lesion"}


def test_evaluate_on_one_class_and_a_folder_without_a_model(
    trained, image_folder, tmp_path, capsys
):
    # Sensitivity on positives only is a legitimate evaluation.
    code = main(
        [
            "evaluate",
            str(trained),
            str(image_folder),
            "--out",
            str(tmp_path / "all"),
            "--quiet",
        ]
    )
    assert code == 0
    one = tmp_path / "one" / "lesion"
    one.mkdir(parents=True)
    for path in sorted((image_folder / "lesion").glob("*.png"))[:5]:
        (one / path.name).write_bytes(path.read_bytes())
    out = tmp_path / "eval"
    code = main(["evaluate", str(trained), str(one.parent), "--out", str(out)])
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    assert report["n_test"] == 5
    capsys.readouterr()
    assert main(["evaluate", str(tmp_path), str(one.parent), "--quiet"]) == 1
    assert "a folder without model.skmedimg" in capsys.readouterr().err


def test_a_medmnist_file_name_that_is_not_name_size(tmp_path, capsys):
    bad = tmp_path / "breastmnist_abc.npz"
    bad.write_bytes(b"")
    assert main(["train", str(bad), "--out", str(tmp_path / "o"), *FAST]) == 1
    assert "<name>_<size>.npz" in capsys.readouterr().err


def test_bad_usage_exits_2(capsys):
    with pytest.raises(SystemExit) as info:
        main(["train"])
    assert info.value.code == 2
    with pytest.raises(SystemExit) as info:
        main(["predict", "m", "x.png", "--format", "xml"])
    assert info.value.code == 2


def test_module_entry_point():
    result = subprocess.run(
        [sys.executable, "-m", "skmedimg", "--version"],
        capture_output=True,
        text=True,
        check=True,
    )
    import skmedimg

    assert result.stdout.strip() == skmedimg.__version__


@pytest.mark.slow
def test_train_on_the_brain_tumour_folders(brain_training, brain_testing, tmp_path):
    code = main(
        [
            "train",
            str(brain_training),
            "--test-dir",
            str(brain_testing),
            "--out",
            str(tmp_path),
            "--n-jobs",
            "2",
            *FAST,
        ]
    )
    assert code == 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["n_train"] == 5708 and report["n_test"] == 1311
    assert set(report["classes"]) == {"glioma", "meningioma", "notumor", "pituitary"}
    assert report["metrics"]["accuracy"] > 0.25  # above chance after 2 epochs
    for name in ["confusion_matrix.png", "training_curves.png"]:
        assert _is_png(tmp_path / name)


def test_train_with_cross_validation_reports_every_fold(image_folder, tmp_path, capsys):
    argv = ["train", str(image_folder), "--out", str(tmp_path), "--cv", "3", *FAST]
    assert main(argv[:-1]) == 0  # not --quiet: the fold table is printed
    out = capsys.readouterr().out
    assert "fold" in out and "balanced_accuracy" in out
    cv = json.loads((tmp_path / "report.json").read_text())["cross_validation"]
    assert [f["fold"] for f in cv["folds"]] == [1, 2, 3]
    accuracies = [f["accuracy"] for f in cv["folds"]]
    assert all(0.0 <= a <= 1.0 for a in accuracies)
    assert cv["mean"]["accuracy"] == pytest.approx(np.mean(accuracies))


def test_predict_reports_a_folder_without_images_and_predicts_the_rest(
    trained, image_folder, tmp_path, capsys
):
    empty = tmp_path / "emptydir"
    empty.mkdir()
    good = sorted((image_folder / "lesion").glob("*.png"))[:2]
    args = ["predict", str(trained), str(good[0]), str(empty), str(good[1])]
    assert main(args) == 1
    captured = capsys.readouterr()
    assert "emptydir: no image files found" in captured.err
    assert captured.out.count(".png") == 2  # the two good rows of the table
    assert main([*args, "--format", "json"]) == 1
    rows = json.loads(capsys.readouterr().out)
    assert [r["image"] for r in rows if "label" in r] == [str(g) for g in good]
    assert [r["image"] for r in rows if "error" in r] == [str(empty)]


def test_predict_finds_images_in_a_folder_below_a_hidden_one(
    trained, image_folder, tmp_path, capsys
):
    # ~/.cache/scans is a usual place; hidden files inside are still skipped
    folder = tmp_path / ".cache" / "scans"
    (folder / "sub").mkdir(parents=True)
    sources = sorted((image_folder / "lesion").glob("*.png"))[:3]
    for i, src in enumerate(sources):
        target = folder / ("sub" if i else "") / src.name
        target.write_bytes(src.read_bytes())
    (folder / ".hidden.png").write_bytes(sources[0].read_bytes())
    assert main(["predict", str(trained), str(folder), "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert sorted(Path(r["image"]).name for r in rows) == sorted(
        s.name for s in sources
    )


def test_explain_writes_the_map_of_the_class_asked_for(tmp_path, capsys):
    # Classes that are numbers: --target is matched as the command line
    # spells it, and the figure and the message name the class explained.
    from skmedimg.neural import save_model
    from tests.helpers import phantom_model

    model, X, _ = phantom_model()
    path = save_model(model, tmp_path / "numbers.skmedimg")
    image = tmp_path / "scan.png"
    Image.fromarray(X[0]).save(image)
    out = tmp_path / "map.png"
    assert (
        main(["explain", str(path), str(image), "--target", "1", "--out", str(out)])
        == 0
    )
    assert "Grad-CAM of class 1 written to" in capsys.readouterr().out
    assert Image.open(out).format == "PNG"
    assert main(["explain", str(path), str(image), "--target", "7", "--quiet"]) == 1
    assert (
        "--target '7' is not one of the classes ['0', '1']" in capsys.readouterr().err
    )


def test_the_report_gives_the_sensitivity_of_the_positive_class(
    trained, image_folder, tmp_path, capsys
):
    # Classes "healthy" and "lesion": by default the second, "lesion".
    one = tmp_path / "one" / "lesion"
    one.mkdir(parents=True)
    for path in sorted((image_folder / "lesion").glob("*.png"))[:5]:
        (one / path.name).write_bytes(path.read_bytes())
    out = tmp_path / "eval"
    assert main(["evaluate", str(trained), str(one.parent), "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["metrics"]["pos_label"] == "lesion"
    recall = report["metrics"]["per_class"]["lesion"]["recall"]
    assert report["metrics"]["sensitivity"] == recall
    # naming the other class: its sensitivity, and a warning that it is 0/0
    argv = ["evaluate", str(trained), str(one.parent), "--out", str(out)]
    assert main([*argv, "--positive-class", "healthy"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["metrics"]["pos_label"] == "healthy"
    assert "no test image of the positive class 'healthy'" in capsys.readouterr().err
    assert main([*argv, "--positive-class", "tumour", "--quiet"]) == 1
    assert (
        "--positive-class 'tumour' is not one of the classes" in capsys.readouterr().err
    )


def test_a_screening_model_reports_the_sensitivity_of_the_disease(
    image_folder, tmp_path
):
    # trained with the false-negative loss and "lesion" as the negative class
    # (an odd choice, to differ from the default): "healthy" is positive
    argv = ["train", str(image_folder), "--out", str(tmp_path), *FAST]
    screening = ["--loss", "false_negative", "--negative-class", "lesion"]
    assert main([*argv, *screening]) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["metrics"]["pos_label"] == "healthy"


def test_a_failed_train_removes_the_output_folder_it_created(image_folder, tmp_path):
    # --positive-class is checked against the classes found, after --out is
    # made: the run fails before writing anything.
    fail = ["--positive-class", "nope", *FAST]
    out = tmp_path / "new" / "run"
    assert main(["train", str(image_folder), "--out", str(out), *fail]) == 1
    assert not out.exists() and not (tmp_path / "new").exists()
    assert tmp_path.exists()
    # A folder that existed before is kept, empty or not.
    existing = tmp_path / "existing"
    existing.mkdir()
    assert main(["train", str(image_folder), "--out", str(existing), *fail]) == 1
    assert existing.is_dir()
    # Only the missing part of the path is removed.
    deeper = existing / "a" / "b"
    assert main(["train", str(image_folder), "--out", str(deeper), *fail]) == 1
    assert existing.is_dir() and not (existing / "a").exists()


def test_model_help_names_the_backbones_with_offline_weights(capsys):
    from skmedimg.neural import SHIPPED_WEIGHTS

    with pytest.raises(SystemExit):
        main(["train", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "Real weights offline: " + ", ".join(sorted(SHIPPED_WEIGHTS)) in help_text
