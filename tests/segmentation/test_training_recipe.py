"""CNNSegmenter trains by the recipe it documents, step for step.

A hand-written loop of the documented recipe (per-channel z-score of the
non-zero voxels, one random patch per image per epoch, flips on every axis
and per-channel intensity shift and scale, AdamW, poly schedule stepped once
per epoch, sigmoid Dice + binary cross-entropy on overlapping regions) must
give the estimator's training losses when it starts from the same weights
and draws the same random numbers.
"""

import numpy as np
import pytest

pytest.importorskip("monai")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from sklearn.utils import check_random_state  # noqa: E402

from skmedimg.segmentation import BRATS_REGIONS, CNNSegmenter  # noqa: E402

ROI = (16, 16, 16)
EPOCHS, BATCH, LR, WEIGHT_DECAY = 3, 2, 1e-3, 1e-5


def _volumes(n=4, shape=(24, 20, 16), n_channels=4, seed=0):
    """Nested lesions (labels 1 > 2 > 3, as in BraTS) in noisy volumes."""
    rng = np.random.default_rng(seed)
    y = np.zeros((n, *shape), np.int64)
    for i in range(n):
        c = rng.integers(6, 14, size=3)
        for label, r in ((1, 5), (2, 3), (3, 1)):
            y[i, c[0] - r : c[0] + r, c[1] - r : c[1] + r, c[2] - r : c[2] + r] = label
    X = rng.normal(size=(n, *shape, n_channels)).astype(np.float32)
    X += y[..., None]
    X[:, :2] = 0  # a zero background, left out of the z-score
    return X, y


def _zscore(image):
    out = image.copy()
    for c in range(out.shape[-1]):
        ch = out[..., c]
        values = ch[ch != 0]
        ch[ch != 0] = (values - values.mean()) / values.std()
    return out


def _hand_losses(X, y, seed):
    """The documented recipe, written out; returns the mean loss of each epoch."""
    from monai.losses import DiceLoss
    from monai.networks.nets import SegResNet

    images = torch.from_numpy(np.stack([np.moveaxis(_zscore(x), -1, 0) for x in X]))
    regions = [np.isin(y, labels) for labels in BRATS_REGIONS.values()]
    targets = torch.from_numpy(np.stack(regions, axis=1).astype(np.float32))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = SegResNet(spatial_dims=3, in_channels=4, out_channels=3, init_filters=8)
    dice = DiceLoss(sigmoid=True)
    optimizer = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)
    gen = torch.Generator().manual_seed(seed)
    losses = []
    for epoch in range(EPOCHS):
        for group in optimizer.param_groups:  # poly, power 0.9, once per epoch
            group["lr"] = LR * (1 - epoch / EPOCHS) ** 0.9
        model.train()
        order = torch.randperm(len(images), generator=gen)
        total = 0.0
        for b in range(0, len(order), BATCH):
            idx = order[b : b + BATCH]
            xs, ys = [], []
            for i in idx:  # one random patch per image (no draw on a full axis)
                start = [
                    int(torch.randint(0, d - r + 1, (1,), generator=gen))
                    if d > r
                    else 0
                    for d, r in zip(images.shape[2:], ROI, strict=True)
                ]
                sl = tuple(slice(s, s + r) for s, r in zip(start, ROI, strict=True))
                xs.append(images[i][(slice(None), *sl)])
                ys.append(targets[i][(slice(None), *sl)])
            xb, yb = torch.stack(xs), torch.stack(ys)
            n = len(idx)
            for axis in range(2, 5):  # flip every axis with probability 0.5
                flip = torch.rand(n, generator=gen) < 0.5
                xb[flip], yb[flip] = xb[flip].flip(axis), yb[flip].flip(axis)
            shift = torch.rand(n, 4, generator=gen) * 0.2 - 0.1
            scale = torch.rand(n, 4, generator=gen) * 0.2 + 0.9
            std = xb.std(dim=(2, 3, 4))
            view = (n, 4, 1, 1, 1)
            xb = (xb + (shift * std).view(view)) * scale.view(view)
            optimizer.zero_grad()
            out = model(xb)
            loss = dice(out, yb) + F.binary_cross_entropy_with_logits(out, yb)
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * n
        losses.append(total / len(images))
    return losses


def test_region_training_follows_the_documented_recipe():
    X, y = _volumes()
    seg = CNNSegmenter(
        "segresnet",
        regions=BRATS_REGIONS,
        roi_size=ROI,
        loss="dice_ce",
        optimizer="adamw",
        lr=LR,
        weight_decay=WEIGHT_DECAY,
        lr_schedule="poly",
        max_epochs=EPOCHS,
        batch_size=BATCH,
        augment="report",
        normalize="channel",
        precision="fp32",
        device="cpu",
        random_state=0,
        network__init_filters=8,
    ).fit(X, y)
    # fit seeds torch with one draw from check_random_state(random_state)
    seed = int(check_random_state(0).randint(0, 2**31 - 1))
    expected = _hand_losses(X, y, seed)
    np.testing.assert_allclose(seg.history_["train_loss"], expected, rtol=1e-5)
    poly = [LR * (1 - e / EPOCHS) ** 0.9 for e in range(EPOCHS)]
    np.testing.assert_allclose(seg.history_["lr"], poly, rtol=1e-6)


def test_region_cross_entropy_is_binary_per_region():
    """The cross-entropy of nested regions is one sigmoid per region.

    A softmax over the region channels (MONAI's ``DiceCELoss`` with several
    channels) would be 0 on the background, where every target is 0, however
    wrong the logits; per-region binary cross-entropy is not.
    """
    from skmedimg.segmentation._segmenter import _make_loss

    loss_fn = _make_loss("dice_ce", BRATS_REGIONS)
    target = torch.zeros(1, 3, 4, 4, 4)
    target[:, :, :2] = 1  # nested: WT, TC and ET all on
    logits = torch.full_like(target, 3.0, requires_grad=True)
    loss = loss_fn(logits, target)
    loss.backward()
    assert (logits.grad[:, :, 2:] > 0).all()  # background pushed down everywhere
    from monai.losses import DiceLoss

    dice = DiceLoss(sigmoid=True)(logits, target)
    expected = dice + F.binary_cross_entropy_with_logits(logits, target)
    assert float(loss) == pytest.approx(float(expected), rel=1e-6)
