"""Every gallery example runs offline in fast mode and writes the PNGs it promises.

Each example runs in a subprocess, as a user runs it (``python examples/plot_x.py``),
with ``SKMEDIMG_EXAMPLES_FAST=1`` (smaller sizes), the Agg backend and its
figures written to a temporary folder. ``SKMEDIMG_DATA`` is removed so that the
embedded defaults (synthetic phantoms) are used; one test per real data set runs
an example on ``../shared/data`` when it is present.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

#: The figures each example promises in its docstring.
PROMISED = {
    "plot_brain_tumour_segmentation.py": ["brain_tumour_segmentation_slices.png"],
    "plot_class_imbalance.py": ["class_imbalance_recall.png"],
    "plot_cross_validation.py": ["cross_validation_folds.png"],
    "plot_dask_grid_search.py": [],
    "plot_features_svm.py": ["features_svm_scores.png"],
    "plot_fine_tuning.py": ["fine_tuning_training_curves.png"],
    "plot_gradcam.py": ["gradcam_predicted.png", "gradcam_true_class.png"],
    "plot_grid_search.py": ["grid_search_scores.png"],
    "plot_intensity_kmeans.py": ["intensity_kmeans_elbow_silhouette.png"],
    "plot_medmnist.py": ["medmnist_confusion_matrix.png"],
    "plot_resizing.py": ["resizing_modes.png"],
    "plot_segmentation.py": ["segmentation_overlay.png"],
    "plot_transfer_learning.py": ["transfer_learning_confusion_matrix.png"],
    "plot_tumour_vs_no_tumour.py": ["tumour_vs_no_tumour.png"],
    "plot_validation_outliers.py": ["validation_size_outliers.png"],
    "plot_weighted_ensemble.py": ["weighted_ensemble_scores.png"],
}


#: Modules an example needs beyond the core dependencies (from an extra).
REQUIRES = {
    "plot_brain_tumour_segmentation.py": "monai",
    "plot_dask_grid_search.py": "dask.distributed",
    "plot_segmentation.py": "monai",
}


def _run(example, tmp_path, *args, data=None):
    env = {k: v for k, v in os.environ.items() if k != "SKMEDIMG_DATA"}
    env.update(
        SKMEDIMG_EXAMPLES_FAST="1",
        SKMEDIMG_EXAMPLES_OUT=str(tmp_path / "out"),
        MPLBACKEND="Agg",
        # One example runs at a time: one torch thread keeps it predictable on
        # small shared CI machines, where two busy-waiting threads can stall.
        OMP_NUM_THREADS=env.get("OMP_NUM_THREADS", "1"),
    )
    if data is not None:
        env["SKMEDIMG_DATA"] = str(data)
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / example), *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, (
        f"{example} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    )
    for name in PROMISED[example]:
        png = tmp_path / "out" / name
        assert png.is_file(), f"{example} did not write {name}"
        assert png.read_bytes()[:8] == PNG_SIGNATURE, f"{name} is not a PNG"
    return result.stdout


def test_every_example_is_listed():
    found = sorted(p.name for p in EXAMPLES.glob("plot_*.py"))
    assert found == sorted(PROMISED)


def test_examples_have_a_gallery_header():
    for name in PROMISED:
        text = (EXAMPLES / name).read_text()
        lines = text.splitlines()
        assert lines[0] == '"""', name
        assert set(lines[1]) == {"="} and set(lines[3]) == {"="}, name
        assert len(lines[1]) >= len(lines[2]), name
        assert "# %%" in text, name
        for promised in PROMISED[name]:
            assert f"``{promised}``" in text, f"{name} does not name {promised}"


@pytest.mark.parametrize("example", sorted(PROMISED))
def test_example_runs_in_fast_mode(example, tmp_path):
    if example in REQUIRES:
        pytest.importorskip(REQUIRES[example])
    _run(example, tmp_path)


def test_medmnist_example_falls_back_to_phantoms_offline(tmp_path):
    empty = tmp_path / "no_medmnist_here"
    empty.mkdir()
    stdout = _run("plot_medmnist.py", tmp_path, str(empty))
    assert "BreastMNIST not found" in stdout
    assert "synthetic phantoms" in stdout


def test_medmnist_example_on_the_real_file(tmp_path, medmnist_dir):
    if not (medmnist_dir / "breastmnist.npz").is_file():
        pytest.skip(f"{medmnist_dir / 'breastmnist.npz'} is absent")
    stdout = _run("plot_medmnist.py", tmp_path, data=medmnist_dir.parent)
    assert "MedMNIST breastmnist" in stdout
    assert "malignant" in stdout


def test_transfer_learning_example_on_a_real_folder(tmp_path, brain_training):
    stdout = _run("plot_transfer_learning.py", tmp_path, str(brain_training))
    assert "90 training and 30 test images" in stdout
    assert "notumor" in stdout


def test_validation_example_on_real_sizes(tmp_path, shared_data):
    if not (shared_data / "brain_tumor_mri_testing_original").is_dir():
        pytest.skip("brain_tumor_mri_testing_original is absent")
    stdout = _run("plot_validation_outliers.py", tmp_path, data=shared_data)
    assert "files in 4 classes" in stdout


@pytest.mark.slow
def test_segmentation_example_on_drive(tmp_path, shared_data):
    pytest.importorskip("monai")
    if not (shared_data / "drive_training").is_dir():
        pytest.skip("drive_training is absent")
    stdout = _run("plot_segmentation.py", tmp_path, data=shared_data)
    assert "DRIVE: 20 images of 584 x 565 pixels" in stdout
    assert "mean Dice on the test images" in stdout


@pytest.mark.slow
def test_brain_tumour_segmentation_example_on_brats_patches(tmp_path, shared_data):
    pytest.importorskip("monai")
    if not (shared_data / "brats_patches").is_dir():
        pytest.skip("brats_patches is absent")
    stdout = _run("plot_brain_tumour_segmentation.py", tmp_path, data=shared_data)
    assert "12 of BRATS_009 for training, 12 of BRATS_119 for testing" in stdout
    for name in ("segresnet", "unetr", "ensemble"):
        line = next(ln for ln in stdout.splitlines() if f"{name} Dice:" in ln)
        assert all(region in line for region in ("WT", "TC", "ET")), line
