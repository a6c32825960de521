"""Shared fixtures: the real-data folder, temporary images, GPU skipping."""

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _shared_data():
    env = os.environ.get("SKMEDIMG_DATA")
    path = Path(env) if env else ROOT.parent / "shared" / "data"
    return path if path.is_dir() else None


SHARED_DATA = _shared_data()


@pytest.fixture(scope="session")
def shared_data():
    """Path of the real-data folder (``../shared/data`` or ``$SKMEDIMG_DATA``)."""
    if SHARED_DATA is None:
        pytest.skip("real data folder ../shared/data (or $SKMEDIMG_DATA) is absent")
    return SHARED_DATA


def _data_subdir(name):
    @pytest.fixture(scope="session")
    def fixture(shared_data):
        path = shared_data / name
        if not path.exists():
            pytest.skip(f"{path} is absent")
        return path

    return fixture


brain_training = _data_subdir("brain_tumor_mri/Training")
brain_testing = _data_subdir("brain_tumor_mri/Testing")
brain_testing_original = _data_subdir("brain_tumor_mri_testing_original/Testing")
medmnist_dir = _data_subdir("medmnist")


def pytest_collection_modifyitems(config, items):
    gpu_items = [item for item in items if "gpu" in item.keywords]
    if not gpu_items:
        return
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device; none is available")
    for item in gpu_items:
        item.add_marker(skip)
