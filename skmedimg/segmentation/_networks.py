"""The segmentation networks: MONAI's U-Net, SegResNet, UNETR, and a timm U-Net.

:func:`build_network` is the one place that builds them, and
:func:`size_multiple` says which input sizes each one takes.
"""

from __future__ import annotations

import logging
import math

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["NETWORKS", "TimmUNet", "build_network", "size_multiple"]

#: Accepted values of ``network``.
NETWORKS = ("unet", "segresnet", "unetr", "timm_unet")

_UNET_DEFAULTS = {"channels": (16, 32, 64, 128, 256), "num_res_units": 2}


def _unet_strides(kwargs):
    channels = tuple(kwargs.get("channels", _UNET_DEFAULTS["channels"]))
    return tuple(kwargs.get("strides", (2,) * (len(channels) - 1)))


def size_multiple(network, kwargs, encoder_reduction=32):
    """Return ``(multiple, rule)``: every side must be a multiple of ``multiple``.

    Parameters
    ----------
    network : str
        One of :data:`NETWORKS`.
    kwargs : dict
        The routed ``network__`` keyword arguments.
    encoder_reduction : int, default=32
        The total stride of the timm encoder (``timm_unet`` only).

    Returns
    -------
    multiple : int
        The size rule's divisor.
    rule : str
        The rule in words, for error messages.
    """
    if network == "unet":
        m = math.prod(int(s) for s in _unet_strides(kwargs))
        return m, f"U-Net with strides {_unet_strides(kwargs)} needs multiples of {m}"
    if network == "segresnet":
        depth = len(kwargs.get("blocks_down", (1, 2, 2, 4)))
        m = 2 ** (depth - 1)
        return m, f"SegResNet with {depth} levels needs multiples of 2**{depth - 1}={m}"
    if network == "unetr":
        return 16, "UNETR's patch grid needs multiples of 16"
    return (
        encoder_reduction,
        f"the timm encoder's total stride needs multiples of {encoder_reduction}",
    )


class _DecoderBlock(nn.Module):
    def __init__(self, in_channels, skip_channels, out_channels):
        super().__init__()
        self.block = nn.Sequential(
            nn.Conv2d(in_channels + skip_channels, out_channels, 3, padding=1),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, padding=1),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )

    def forward(self, x, skip):
        x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.block(torch.cat([x, skip], dim=1))


class TimmUNet(nn.Module):
    """A 2-D U-Net whose encoder is a timm backbone (``features_only``).

    Parameters
    ----------
    encoder : torch.nn.Module
        A timm model built with ``features_only=True``.
    out_channels : int
        Number of output maps.
    decoder_channels : tuple of int, default=None
        Width of each decoder stage, deepest first; ``None`` halves the
        encoder's widths.
    """

    def __init__(self, encoder, out_channels, decoder_channels=None):
        super().__init__()
        self.encoder = encoder
        widths = list(encoder.feature_info.channels())
        skips = widths[:-1][::-1]
        if decoder_channels is None:
            decoder_channels = [max(8, w // 2) for w in skips]
        decoder_channels = list(decoder_channels)
        if len(decoder_channels) != len(skips):
            raise ValueError(
                f"decoder_channels needs {len(skips)} widths (one per encoder "
                f"stage but the last), got {decoder_channels}"
            )
        blocks, width = [], widths[-1]
        for skip, out in zip(skips, decoder_channels, strict=True):
            blocks.append(_DecoderBlock(width, skip, out))
            width = out
        self.decoder = nn.ModuleList(blocks)
        self.head = nn.Conv2d(width, out_channels, 1)

    def forward(self, x):
        """Logits of shape ``(n, out_channels, H, W)``."""
        features = self.encoder(x)
        y = features[-1]
        for block, skip in zip(self.decoder, features[:-1][::-1], strict=True):
            y = block(y, skip)
        y = self.head(y)
        return F.interpolate(y, size=x.shape[-2:], mode="bilinear", align_corners=False)


def build_network(
    network,
    *,
    spatial_dims,
    in_channels,
    out_channels,
    roi_size,
    kwargs,
    encoder="tf_efficientnet_lite0",
    pretrained=False,
):
    """Build a segmentation network.

    Parameters
    ----------
    network : {"unet", "segresnet", "unetr", "timm_unet"}
        Which network.
    spatial_dims : {2, 3}
        2-D or 3-D.
    in_channels, out_channels : int
        Input channels and output maps.
    roi_size : tuple of int
        The patch size (UNETR's fixed ``img_size``).
    kwargs : dict
        More keyword arguments for the network's constructor.
    encoder : str, default="tf_efficientnet_lite0"
        timm backbone of ``timm_unet``.
    pretrained : bool or str, default=False
        Encoder weights of ``timm_unet``, resolved offline first by
        :func:`skmedimg.neural.create_backbone`.

    Returns
    -------
    module : torch.nn.Module
        The network; ``module.weights_source`` says where its weights came
        from.
    """
    kwargs = dict(kwargs)
    source = "random"
    if network == "unet":
        from monai.networks.nets import UNet

        params = dict(_UNET_DEFAULTS, strides=_unet_strides(kwargs))
        params.update(kwargs)
        module = UNet(
            spatial_dims=spatial_dims,
            in_channels=in_channels,
            out_channels=out_channels,
            **params,
        )
    elif network == "segresnet":
        from monai.networks.nets import SegResNet

        module = SegResNet(
            spatial_dims=spatial_dims,
            in_channels=in_channels,
            out_channels=out_channels,
            **kwargs,
        )
    elif network == "unetr":
        from monai.networks.nets import UNETR

        module = UNETR(
            in_channels=in_channels,
            out_channels=out_channels,
            img_size=tuple(roi_size),
            spatial_dims=spatial_dims,
            **kwargs,
        )
    elif network == "timm_unet":
        if spatial_dims != 2:
            raise ValueError(
                f"network='timm_unet' is 2-D only, but the masks have "
                f"{spatial_dims} spatial dimensions; use 'unet', 'segresnet' or "
                "'unetr' for volumes"
            )
        decoder_channels = kwargs.pop("decoder_channels", None)
        backbone, source = _timm_encoder(encoder, pretrained, in_channels, kwargs)
        module = TimmUNet(backbone, out_channels, decoder_channels)
    else:
        raise ValueError(f"network must be one of {NETWORKS}, got {network!r}")
    module.weights_source = source
    return module


#: timm keyword arguments of ``features_only`` models alone.
_FEATURE_KWARGS = ("out_indices", "feature_cls", "feature_cfg", "flatten_sequential")


def _timm_encoder(encoder, pretrained, in_channels, kwargs):
    """The ``features_only`` timm encoder and where its weights came from.

    Weights are found and checked by :func:`skmedimg.neural.create_backbone`
    on the whole backbone (a shipped or local file holds its last
    convolution too, which the features-only model lacks); timm then copies
    them into its features-only model, adapting the first convolution to
    ``in_channels`` by its own rule.
    """
    import timm

    from ..neural import create_backbone

    if pretrained is False or pretrained is None:
        backbone, _ = create_backbone(
            encoder,
            pretrained=False,
            in_chans=in_channels,
            features_only=True,
            **kwargs,
        )
        return backbone, backbone.weights_source
    full_kwargs = {k: v for k, v in kwargs.items() if k not in _FEATURE_KWARGS}
    full, _ = create_backbone(encoder, pretrained=pretrained, **full_kwargs)
    # timm logs the head tensors it leaves out as "unexpected keys"
    builder_log = logging.getLogger("timm.models._builder")
    level = builder_log.level
    builder_log.setLevel(logging.ERROR)
    try:
        backbone = timm.create_model(
            encoder,
            pretrained=True,
            pretrained_cfg_overlay={"state_dict": full.state_dict()},
            in_chans=in_channels,
            features_only=True,
            **kwargs,
        )
    finally:
        builder_log.setLevel(level)
    return backbone, full.weights_source


def encoder_reduction(encoder, kwargs):
    """Total stride of a timm ``features_only`` encoder (built on the meta device)."""
    import timm

    kwargs = {k: v for k, v in kwargs.items() if k != "decoder_channels"}
    with torch.device("meta"):
        model = timm.create_model(
            encoder, pretrained=False, features_only=True, **kwargs
        )
    return int(model.feature_info.reduction()[-1])
