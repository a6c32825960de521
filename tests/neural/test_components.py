"""Losses, augmentation and batch iteration."""

import numpy as np
import pytest
import torch
from torch.nn import functional as F
from torchvision.transforms import v2

from skmedimg.neural import (
    AUGMENT_PRESETS,
    BatchAugment,
    FalseNegativeLoss,
    FocalLoss,
    make_augment,
)
from skmedimg.neural._data import TensorBatchIterator, TensorDataset


def test_focal_loss_generalises_cross_entropy():
    torch.manual_seed(0)
    logits, target = torch.randn(16, 4), torch.randint(0, 4, (16,))
    weight = torch.tensor([1.0, 2.0, 0.5, 1.0])
    both = {"weight": weight, "label_smoothing": 0.1}
    for kwargs in ({}, {"weight": weight}, {"label_smoothing": 0.1}, both):
        expected = F.cross_entropy(logits, target, **kwargs)
        got = FocalLoss(gamma=0.0, **kwargs)(logits, target)
        assert torch.isclose(got, expected, atol=1e-6), kwargs
    # Focusing down-weights easy samples: the loss shrinks as gamma grows.
    assert FocalLoss(gamma=2.0)(logits, target) < FocalLoss(gamma=0.0)(logits, target)


def test_false_negative_loss_penalises_missed_positives():
    logits = torch.tensor([[3.0, 0.0, 0.0], [3.0, 0.0, 0.0], [0.0, 3.0, 0.0]])
    target = torch.tensor([0, 1, 1])  # sample 1: a positive called negative
    ce = F.cross_entropy(logits, target)
    assert torch.isclose(FalseNegativeLoss(fn_weight=0.0)(logits, target), ce)
    strict = FalseNegativeLoss(negative_index=0, fn_weight=3.0)(logits, target)
    assert strict > ce
    # Negatives called negative are not penalised.
    neg_only = FalseNegativeLoss(fn_weight=3.0)(logits[:1], target[:1])
    assert torch.isclose(neg_only, F.cross_entropy(logits[:1], target[:1]))
    # The gradient pushes probability away from the negative class.
    x = logits[1:2].clone().requires_grad_(True)
    FalseNegativeLoss(fn_weight=5.0)(x, target[1:2]).backward()
    assert x.grad[0, 0] > 0


def test_presets_exist():
    assert set(AUGMENT_PRESETS) == {"flip", "light", "medium", "standard"}
    for name in AUGMENT_PRESETS:
        assert isinstance(make_augment(name), BatchAugment)
    assert make_augment(None) is None
    with pytest.raises(ValueError, match="augment must be"):
        make_augment("heavy")
    with pytest.raises(ValueError, match="augment must be"):
        make_augment(3)


def test_batch_augment_per_image_and_seeded():
    x = torch.rand(8, 3, 16, 16)
    augment = make_augment("medium")
    torch.manual_seed(0)
    a = augment(x)
    torch.manual_seed(0)
    b = augment(x)
    assert a.shape == x.shape and torch.equal(a, b)
    # Each image gets its own transform.
    same = x[:1].repeat(8, 1, 1, 1)
    out = augment(same)
    assert not torch.allclose(out[0], out[1])


def test_flip_preset_only_flips():
    x = torch.rand(64, 1, 4, 4)
    out = make_augment("flip")(x)
    for original, flipped in zip(x, out, strict=True):
        candidates = [
            original,
            original.flip(-1),
            original.flip(-2),
            original.flip(-1).flip(-2),
        ]
        assert any(torch.equal(flipped, c) for c in candidates)
    assert not torch.equal(out, x)


def test_identity_batch_augment():
    x = torch.rand(4, 3, 8, 8)
    assert torch.equal(BatchAugment()(x), x)


def test_user_transform_is_applied_per_image():
    transform = v2.RandomHorizontalFlip(p=0.5)
    augment = make_augment(transform)
    x = torch.rand(1, 3, 8, 8).repeat(32, 1, 1, 1)
    torch.manual_seed(0)
    out = augment(x)
    flipped = [torch.equal(o, x[0].flip(-1)) for o in out]
    assert 0 < sum(flipped) < 32


def test_tensor_batch_iterator_slices_and_shuffles():
    X = torch.arange(10).view(10, 1)
    y = torch.arange(10)
    it = TensorBatchIterator(TensorDataset(X, y), batch_size=4)
    batches = list(it)
    assert len(it) == 3 == len(batches)
    assert [len(b[0]) for b in batches] == [4, 4, 2]
    assert torch.equal(torch.cat([b[0] for b in batches]).ravel(), y)
    gen = torch.Generator().manual_seed(0)
    it = TensorBatchIterator(TensorDataset(X, y), 4, shuffle=True, generator=gen)
    first, second = torch.cat([b[1] for b in it]), torch.cat([b[1] for b in it])
    assert sorted(first.tolist()) == list(range(10))
    assert not torch.equal(first, second)  # a new order each epoch
    for Xb, yb in it:
        assert torch.equal(Xb.ravel(), yb)
    it = TensorBatchIterator(TensorDataset(X, y), 4, drop_last=True)
    assert len(it) == 2 == len(list(it))
    with pytest.raises(ValueError, match="10 samples but y has 3"):
        TensorDataset(X, y[:3])


def _line_angle(image):
    """Angle of the principal axis of the bright pixels, in degrees [0, 180)."""
    rows, cols = np.nonzero(image > 0.5)
    cov = np.cov(np.stack([cols - cols.mean(), rows - rows.mean()]))
    direction = np.linalg.eigh(cov)[1][:, -1]
    return np.degrees(np.arctan2(direction[1], direction[0])) % 180


@pytest.mark.parametrize("height, width", [(64, 64), (32, 96), (96, 32)])
def test_rotation_turns_every_direction_by_the_angle(monkeypatch, height, width):
    # In grid_sample's [-1, 1] units a plain rotation shears a non-square
    # image: horizontal lines turned 6.9 degrees and vertical ones 47.8 for
    # 20 asked, at 32 x 96.
    from skmedimg.neural import BatchAugment

    monkeypatch.setattr(torch, "rand", lambda n, device=None: torch.ones(n))
    augment = BatchAugment(rotation=20.0)  # rand 1: +20 degrees, no flip
    horizontal = torch.zeros(1, 1, height, width)
    horizontal[0, 0, height // 2, width // 4 : 3 * width // 4] = 1.0
    vertical = torch.zeros(1, 1, height, width)
    vertical[0, 0, height // 4 : 3 * height // 4, width // 2] = 1.0
    turned_h = _line_angle(augment(horizontal)[0, 0].numpy())
    turned_v = _line_angle(augment(vertical)[0, 0].numpy())
    assert abs((180 - turned_h) - 20) < 2.5
    assert abs((90 - turned_v) - 20) < 2.5
