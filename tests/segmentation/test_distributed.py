"""Data-parallel fits of CNNSegmenter over 2 CPU processes (torch.distributed, gloo).

The processes are started as ``torchrun`` would start them, by the harness of
``tests/neural/test_distributed.py``.
"""

import os
import pickle

import numpy as np
import pytest

from skmedimg.neural import DistributedError
from skmedimg.segmentation import CNNSegmenter
from tests.neural.test_distributed import ATOL, _save, run_ranks


def _data(n=10):
    rng = np.random.default_rng(0)
    X = rng.normal(0, 0.3, size=(n, 16, 16)).astype(np.float32)
    y = np.zeros((n, 16, 16), dtype=int)
    for i in range(n):
        r, c = rng.integers(2, 9, size=2)
        y[i, r : r + 6, c : c + 6] = 1
    X[y == 1] += 1.0
    return X, y


def _segmenter(**params):
    # The global batch (8) is the whole training split (10 - 2 held out), so
    # the 1-process and 2-process fits take the same steps.
    defaults = dict(
        network__channels=(4, 8),
        max_epochs=3,
        batch_size=8,
        augment=None,
        early_stopping=3,
        validation_fraction=0.2,
        lr=1e-2,
        random_state=0,
    )
    return CNNSegmenter(**{**defaults, **params})


def _fit():
    import torch.distributed as dist

    X, y = _data()
    seg = _segmenter().fit(X, y)
    result = {
        "proba": np.stack(list(seg.predict_proba(X))),
        "history": seg.history_,
        "model": pickle.dumps(seg),
        "world_size": dist.get_world_size() if dist.is_initialized() else 1,
    }
    if dist.is_initialized():
        try:
            _segmenter(batch_size=3).fit(X, y)
        except ValueError as exc:
            result["indivisible"] = str(exc)
    return result


def _worker_fit(out):
    _save(out, _fit())


def test_two_processes_fit_the_segmenter_of_one(tmp_path):
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        ref = _fit()
    finally:
        torch.set_num_threads(threads)
    ranks = run_ranks(
        tmp_path, "_worker_fit", 2, module="tests.segmentation.test_distributed"
    )
    for code, err, _ in ranks:
        assert code == 0, err
    (_, _, r0), (_, _, r1) = ranks
    assert r0["world_size"] == r1["world_size"] == 2
    np.testing.assert_allclose(r0["proba"], ref["proba"], atol=ATOL)
    for key in ("train_loss", "valid_dice", "lr"):
        np.testing.assert_allclose(
            r0["history"][key], ref["history"][key], atol=ATOL, err_msg=key
        )
    np.testing.assert_allclose(r1["proba"], r0["proba"], atol=1e-7)
    model = pickle.loads(r0["model"])
    assert not isinstance(model.network_, torch.nn.parallel.DistributedDataParallel)
    assert "batch_size=3" in r0["indivisible"]


def test_distributed_true_without_a_launcher_is_a_clear_error(monkeypatch):
    for name in ("WORLD_SIZE", "RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    assert "WORLD_SIZE" not in os.environ
    with pytest.raises(DistributedError, match="CNNSegmenter"):
        _segmenter(distributed=True).fit(*_data())
