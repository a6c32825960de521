"""CNNClassifier on a CUDA device; the pickle loads and predicts on a CPU."""

import os
import pickle
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from skmedimg.neural import CNNClassifier, shipped_weights_path
from tests.neural.test_pretrained import list_folder, sample_folder


@pytest.mark.gpu
@pytest.mark.slow
def test_gpu_training_and_cpu_unpickling(brain_training, brain_testing, tmp_path):
    import torch

    assert torch.cuda.is_available()
    pretrained = shipped_weights_path("tf_efficientnet_lite0") is not None
    paths, y = list_folder(brain_training)
    test_paths, y_test = list_folder(brain_testing)
    start = time.perf_counter()
    clf = CNNClassifier(
        "tf_efficientnet_lite0",
        pretrained=pretrained,
        freeze="none",
        augment="light",
        optimizer="adamw",
        lr=1e-3,
        label_smoothing=0.1,
        lr_schedule="cosine",
        batch_size=64,
        max_epochs=8,
        n_jobs=8,
        random_state=0,
    ).fit(paths, y)
    fit_time = time.perf_counter() - start
    assert clf.device_.type == "cuda"
    accuracy = clf.score(test_paths, y_test)
    print(
        f"GPU ({torch.cuda.get_device_name()}), pretrained={pretrained}: "
        f"{len(paths)} training images, fit {fit_time:.1f} s, "
        f"accuracy on {len(test_paths)} Testing images {accuracy:.4f}"
    )
    assert accuracy > 0.85

    sample = test_paths[:16]
    expected = clf.predict(sample)
    (tmp_path / "model.pkl").write_bytes(pickle.dumps(clf))
    np.save(tmp_path / "expected.npy", expected)
    np.save(tmp_path / "paths.npy", sample)
    script = textwrap.dedent(
        f"""
        import pickle, numpy as np, torch
        assert not torch.cuda.is_available()
        clf = pickle.loads(open({str(tmp_path / "model.pkl")!r}, "rb").read())
        assert str(clf.net_.device) == "cpu", clf.net_.device
        pred = clf.predict(np.load({str(tmp_path / "paths.npy")!r}))
        expected = np.load({str(tmp_path / "expected.npy")!r})
        print("cpu agreement", (pred == expected).mean())
        assert (pred == expected).mean() >= 0.9
        """
    )
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="")
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True
    )
    print(result.stdout, result.stderr[-2000:])
    assert result.returncode == 0


def test_sample_folder_helper_is_stratified(tmp_path):
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        for i in range(10):
            (tmp_path / name / f"{i}.png").write_bytes(b"x")
    paths, labels, test_paths, test_labels = sample_folder(tmp_path, 10, 10)
    assert sorted(labels.tolist()) == ["a"] * 5 + ["b"] * 5
    assert not set(paths) & set(test_paths)
