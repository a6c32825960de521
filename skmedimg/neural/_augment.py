"""Data augmentation applied on the device to whole batches.

The presets reproduce the augmentation of the source reports (Keras
``ImageDataGenerator`` settings) as batched torch operations: each image of a
batch gets its own random flip / rotation / zoom / shift, drawn from torch's
random generator on the batch's device, in one ``grid_sample`` call. They run
on training batches only, after the uint8 batch has reached the device and
before normalisation.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["AUGMENT_PRESETS", "BatchAugment", "make_augment"]

#: Named presets (keyword arguments of :class:`BatchAugment`).
AUGMENT_PRESETS = {
    # Horizontal and vertical flips.
    "flip": {"hflip": True, "vflip": True},
    # The reports' ResNet-50 recipe: horizontal flip, rotation 10, shifts 0.05.
    "light": {"hflip": True, "rotation": 10.0, "shift": 0.05},
    # The fine-tune recipe's (measured on Brain Tumor MRI, BreastMNIST and
    # PneumoniaMNIST): flips, rotation 10, zoom 0.1, shifts 0.05.
    "standard": {
        "hflip": True,
        "vflip": True,
        "rotation": 10.0,
        "zoom": 0.1,
        "shift": 0.05,
    },
    # The reports' VGG / Inception recipes: flips, rotation 20, zoom 0.2,
    # width / height shifts 0.2.
    "medium": {
        "hflip": True,
        "vflip": True,
        "rotation": 20.0,
        "zoom": 0.2,
        "shift": 0.2,
    },
}


class BatchAugment(nn.Module):
    """Random flips and affine transforms, drawn per image, for a batch.

    Parameters
    ----------
    hflip : bool, default=False
        Flip left-right with probability 0.5.
    vflip : bool, default=False
        Flip upside-down with probability 0.5.
    rotation : float, default=0.0
        Maximum rotation in degrees (uniform in ``[-rotation, rotation]``).
    zoom : float, default=0.0
        Zoom range: the scale factor is uniform in ``[1 - zoom, 1 + zoom]``.
    shift : float, default=0.0
        Maximum shift as a fraction of the width and height (uniform, drawn
        independently for both axes).
    padding_mode : {"border", "zeros", "reflection"}, default="border"
        How pixels outside the image are filled; ``"border"`` repeats the
        edge, like Keras' default ``fill_mode="nearest"``.

    Examples
    --------
    >>> import torch
    >>> from skmedimg.neural import BatchAugment
    >>> augment = BatchAugment(hflip=True, rotation=10.0)
    >>> augment(torch.rand(4, 3, 16, 16)).shape
    torch.Size([4, 3, 16, 16])
    """

    def __init__(
        self,
        hflip=False,
        vflip=False,
        rotation=0.0,
        zoom=0.0,
        shift=0.0,
        padding_mode="border",
    ):
        super().__init__()
        self.hflip = bool(hflip)
        self.vflip = bool(vflip)
        self.rotation = float(rotation)
        self.zoom = float(zoom)
        self.shift = float(shift)
        self.padding_mode = padding_mode

    def extra_repr(self):  # noqa: D102
        return (
            f"hflip={self.hflip}, vflip={self.vflip}, rotation={self.rotation}, "
            f"zoom={self.zoom}, shift={self.shift}, padding_mode={self.padding_mode!r}"
        )

    def forward(self, x):
        """Augment a float batch ``(n_samples, n_channels, height, width)``."""
        n = x.shape[0]
        device = x.device

        def uniform(bound):
            return (torch.rand(n, device=device) * 2.0 - 1.0) * bound

        sx = torch.ones(n, device=device)
        sy = torch.ones(n, device=device)
        if self.hflip:
            sx = torch.where(torch.rand(n, device=device) < 0.5, -sx, sx)
        if self.vflip:
            sy = torch.where(torch.rand(n, device=device) < 0.5, -sy, sy)
        if not (self.rotation or self.zoom or self.shift):
            if self.hflip:
                x = torch.where((sx < 0).view(n, 1, 1, 1), x.flip(-1), x)
            if self.vflip:
                x = torch.where((sy < 0).view(n, 1, 1, 1), x.flip(-2), x)
            return x
        angle = uniform(self.rotation * math.pi / 180.0)
        scale = 1.0 + uniform(self.zoom)
        cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
        # grid_sample maps output coordinates to input coordinates, in [-1, 1]
        # units; a shift of a fraction f of the size is 2 f in those units. A
        # rotation in those units shears a non-square image: the aspect ratio
        # goes into the off-diagonal terms, so that pixels turn by the angle.
        height, width = x.shape[-2:]
        aspect = height / width
        theta = torch.stack(
            [
                torch.stack(
                    [cos * sx, -sin * sy * aspect, uniform(2.0 * self.shift)], -1
                ),
                torch.stack(
                    [sin * sx / aspect, cos * sy, uniform(2.0 * self.shift)], -1
                ),
            ],
            dim=1,
        )
        grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
        return F.grid_sample(
            x,
            grid,
            mode="bilinear",
            padding_mode=self.padding_mode,
            align_corners=False,
        )


class _PerSample(nn.Module):
    """Apply a user transform (torchvision v2 or any callable) image by image.

    torchvision's v2 transforms draw one set of random parameters per call, so
    calling one on a batch would transform every image alike; this module calls
    it on each image instead.
    """

    def __init__(self, transform):
        super().__init__()
        self.transform = transform

    def forward(self, x):
        return torch.stack([self.transform(image) for image in x])


def make_augment(augment):
    """Build the augmentation module for an ``augment`` parameter.

    Parameters
    ----------
    augment : None, str, BatchAugment or callable
        ``None``: no augmentation. A preset name from :data:`AUGMENT_PRESETS`
        (``"flip"``, ``"light"``, ``"medium"``). A :class:`BatchAugment`. Any
        other callable (a torchvision v2 transform, for example) is applied to
        each training image separately as a float tensor
        ``(n_channels, height, width)`` in ``[0, 1]`` on the device, and must
        return a tensor of the same shape.

    Returns
    -------
    module : torch.nn.Module or None
        The module to call on float training batches.

    Raises
    ------
    ValueError
        If ``augment`` is an unknown preset name or not callable.
    """
    if augment is None:
        return None
    if isinstance(augment, str):
        if augment not in AUGMENT_PRESETS:
            raise ValueError(
                f"augment must be None, one of {sorted(AUGMENT_PRESETS)}, a "
                f"BatchAugment or a callable transform, got {augment!r}"
            )
        return BatchAugment(**AUGMENT_PRESETS[augment])
    if isinstance(augment, BatchAugment):
        return augment
    if callable(augment):
        return _PerSample(augment)
    raise ValueError(
        f"augment must be None, a preset name, a BatchAugment or a callable, "
        f"got {type(augment).__name__}"
    )
