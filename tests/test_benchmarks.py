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
