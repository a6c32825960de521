"""The torch module of :class:`CNNClassifier`: uint8 images -> backbone -> head.

:class:`ImageClassifierModule` takes image batches as decoded (uint8,
channels last), scales, augments and normalises them on the device, and runs
a timm (or custom) backbone and a small head. The frozen-feature path feeds it
pooled features instead of images.
"""

from __future__ import annotations

import torch
from torch import nn

from ._backbone import keep_frozen_in_eval

__all__ = [
    "CHANNELS_LAST_DEVICES",
    "ImageClassifierModule",
    "make_head",
    "pooled_width",
    "softmax",
    "uses_channels_last",
]

#: Device types where modules run in the channels-last memory format (GPUs,
#: and CPUs with oneDNN: see ``ImageClassifierModule.preprocess``).
CHANNELS_LAST_DEVICES = ("cuda", "cpu")


def uses_channels_last(device):
    """Whether a module on ``device`` runs in the channels-last memory format."""
    return torch.device(device).type in CHANNELS_LAST_DEVICES


def softmax(logits):
    """Class probabilities of logits (the nets' predict non-linearity)."""
    return torch.softmax(logits, dim=-1)


def pooled_width(backbone):
    """Width of the backbone's output with ``num_classes=0``.

    timm's ``num_features`` is the width before the pre-logits layers; models
    with a ``conv_head`` after pooling (MobileNetV3: 576 -> 1024) output
    ``head_hidden_size`` features.
    """
    return int(getattr(backbone, "head_hidden_size", None) or backbone.num_features)



def make_head(n_features, hidden, n_classes, dropout):
    layers = []
    for width in hidden:
        if dropout:
            layers.append(nn.Dropout(dropout))
        layers += [nn.Linear(n_features, int(width)), nn.ReLU()]
        n_features = int(width)
    if dropout:
        layers.append(nn.Dropout(dropout))
    layers.append(nn.Linear(n_features, n_classes))
    return nn.Sequential(*layers)


class ImageClassifierModule(nn.Module):
    """A timm backbone and a head, taking uint8 image batches.

    ``forward`` takes ``(n_samples, height, width, n_channels)`` uint8 (or
    float in ``[0, 255]``) images on the device (one channel is repeated to
    the backbone's channels), scales them to ``[0, 1]``,
    augments them in training mode, normalises them with the backbone's mean
    and std and runs backbone and head. A 2-D input is taken as pooled
    features (the frozen-backbone cache) and goes to the head directly.
    Logits are returned in float32.

    Parameters
    ----------
    backbone : torch.nn.Module
        A timm model with ``num_classes=0``.
    head : torch.nn.Module
        Maps pooled features to logits.
    mean, std : sequence of float
        Normalisation, from timm's data config.
    augment : torch.nn.Module, default=None
        Applied to float ``[0, 1]`` batches in training mode only.
    frozen : list of str, default=()
        Backbone modules kept in eval mode whatever ``train()`` says (see
        :func:`freeze_backbone`).
    channels_last : bool, default=False
        Use the channels-last memory format (faster convolutions on GPUs and
        on the CPUs measured in ``benchmarks/RESULTS.md``).

    Attributes
    ----------
    tta : tuple of tuple of int
        Test-time views, as the image axes each one flips (``()`` is the
        image itself). Empty (the default): none. When set, an image batch
        in eval mode gives the log of the views' mean probabilities, whose
        softmax is that mean. ``CNNClassifier`` sets it while predicting.
    """

    tta = ()

    def __init__(
        self, backbone, head, mean, std, augment=None, frozen=(), channels_last=False
    ):
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.augment = augment
        self.frozen = list(frozen)
        self.channels_last = bool(channels_last)
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1).float())
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1).float())

    def __getstate__(self):
        # A module compiled in place (``Module.compile``) holds the compiled
        # callable, which does not pickle: an unpickled module runs eagerly.
        state = super().__getstate__()
        state.pop("_compiled_call_impl", None)
        return state

    def train(self, mode=True):
        """Set training mode, keeping frozen backbone modules in eval mode."""
        super().train(mode)
        keep_frozen_in_eval(self.backbone, self.frozen)
        return self

    def preprocess(self, x):
        """Turn an image batch into the normalised float input of the backbone."""
        x = x.permute(0, 3, 1, 2).float().div_(255.0)
        if x.shape[1] == 1 and self.mean.shape[1] > 1:
            # Gray images held with one channel (color="gray"): repeated to
            # the backbone's channels here, as a view; the normalisation
            # below writes the repeated batch.
            x = x.expand(-1, self.mean.shape[1], -1, -1)
            if self.training and self.augment is not None:
                x = x.contiguous(memory_format=torch.channels_last)
        if self.training and self.augment is not None:
            # In float32: under bf16 autocast, affine_grid's matmul would round
            # the sampling coordinates (by up to a pixel at 512 px).
            with torch.autocast(x.device.type, enabled=False):
                x = self.augment(x)
        x = (x - self.mean) / self.std
        # permute() left a channels-last layout: keep it where convolutions
        # like it (GPUs, and CPUs with oneDNN: 1.1-1.6x faster training of
        # ResNet / EfficientNet / DenseNet / MobileNet than NCHW, measured
        # with torch 2.14 on an AMD EPYC), make it plain NCHW elsewhere.
        memory_format = (
            torch.channels_last if self.channels_last else torch.contiguous_format
        )
        return x.contiguous(memory_format=memory_format)

    def features(self, x):
        """Pooled backbone features of an image batch."""
        return self.backbone(self.preprocess(x))

    def _logits(self, x):
        features = x if x.ndim == 2 else self.features(x)
        return self.head(features.to(self.head[-1].weight.dtype)).float()

    def forward(self, x):
        """Logits (float32) of an image batch or of a batch of pooled features."""
        if not self.tta or self.training or x.ndim == 2:
            return self._logits(x)
        # uint8 (batch, height, width, channels): flips of axes 1 and 2
        proba = sum(
            torch.softmax(self._logits(x.flip(dims) if dims else x), dim=-1)
            for dims in self.tta
        )
        return torch.log(proba / len(self.tta))

