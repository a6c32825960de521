"""CNNSegmenter: MONAI segmentation networks as a scikit-learn estimator."""

from __future__ import annotations

import math
import os
import time
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from ..neural import (
    autocast,
    is_main_process,
    loaded_precision,
    resolve_device,
    resolve_distributed,
    resolve_loading_device,
    resolve_precision,
    start_data_parallel,
    torch_random,
)
from ..utils import reused_host_memory
from ._data import check_masks, normalize_image, read_segmentation_images
from ._metrics import dice_score, mean_dice
from ._networks import NETWORKS, build_network, encoder_reduction, size_multiple

__all__ = ["CNNSegmenter"]

_OPTIMIZERS = {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "sgd": torch.optim.SGD,
}


def _routed_key(key):
    prefix, sep, rest = key.partition("__")
    return prefix == "network" and bool(sep) and bool(rest)


class _DiceBCELoss(torch.nn.Module):
    """Dice of the sigmoid maps plus the binary cross-entropy of every channel.

    The sigmoid Dice + cross-entropy of overlapping regions. MONAI's
    ``DiceCELoss(sigmoid=True)`` applies the sigmoid to its Dice term only:
    with more than one output channel its cross-entropy term is a softmax
    over the channels (MONAI 1.6), which treats nested regions (WT, TC, ET)
    as exclusive classes and gives no cross-entropy at all where every
    target channel is 0 (the background). With one channel it is this loss.
    """

    def __init__(self):
        super().__init__()
        from monai.losses import DiceLoss

        self.dice = DiceLoss(sigmoid=True)
        self.bce = torch.nn.BCEWithLogitsLoss()

    def forward(self, input, target):
        return self.dice(input, target) + self.bce(input, target.to(input.dtype))


def _make_loss(loss, regions):
    from monai.losses import DiceCELoss, DiceFocalLoss, DiceLoss

    if regions:
        # one sigmoid per region; DiceFocalLoss's focal term is a sigmoid one
        if loss == "dice_ce":
            return _DiceBCELoss()
        return {"dice": DiceLoss, "dice_focal": DiceFocalLoss}[loss](sigmoid=True)
    cls = {"dice": DiceLoss, "dice_ce": DiceCELoss, "dice_focal": DiceFocalLoss}[loss]
    return cls(softmax=True, to_onehot_y=True)


def _pad_to(image, mask, size):
    """Pad ``(C, *spatial)`` and ``(*spatial)`` tensors at the end up to ``size``."""
    pads = [max(0, s - d) for s, d in zip(size, image.shape[1:], strict=True)]
    if not any(pads):
        return image, mask
    spec = []
    for p in reversed(pads):
        spec += [0, p]
    image = torch.nn.functional.pad(image, spec)
    if mask is not None:
        mask = torch.nn.functional.pad(mask, spec)
    return image, mask


class CNNSegmenter(BaseEstimator):
    """Semantic segmentation of 2-D images and 3-D volumes with MONAI networks.

    A scikit-learn estimator around MONAI's U-Net, SegResNet and UNETR (and a
    2-D U-Net with a timm encoder): ``fit`` on images and integer label masks,
    ``predict`` masks of each input's shape by sliding-window inference,
    ``predict_proba`` probability maps, ``score`` the mean Dice. Trains with
    a Dice loss, polynomial learning-rate decay, random crops, flips on every
    axis and per-channel intensity shift and scale, as in the BraTS recipe.

    Parameters
    ----------
    network : {"unet", "segresnet", "unetr", "timm_unet"}, default="unet"
        The network. ``"timm_unet"`` is 2-D only; its encoder is the timm
        backbone ``encoder``.
    regions : dict of str to list of int, default=None
        Overlapping regions to predict, one sigmoid output each, e.g.
        :data:`BRATS_REGIONS`. ``None``: one softmax over ``classes_``.
    roi_size : int or tuple of int, default=None
        Training patch size, and the sliding window at prediction. ``None``:
        the largest training image, rounded up to the network's size rule.
        An explicit size must follow the rule (U-Net: multiples of the product
        of its strides; SegResNet: of ``2**(levels - 1)``; UNETR: of 16; timm
        U-Net: of the encoder's total stride); images are padded to it.
    encoder : str, default="tf_efficientnet_lite0"
        timm backbone of ``"timm_unet"``.
    pretrained : bool or str, default=False
        Encoder weights of ``"timm_unet"`` (``True``: offline-first search of
        :func:`skmedimg.neural.create_backbone`; a path: that file).
    loss : {"dice", "dice_ce", "dice_focal"}, default="dice_ce"
        MONAI's DiceLoss, DiceCELoss or DiceFocalLoss. With ``regions``,
        ``"dice_ce"`` is the sigmoid Dice plus the binary cross-entropy of
        each region.
    optimizer : {"adam", "adamw", "sgd"}, default="adamw"
        The optimizer.
    lr : float, default=1e-3
        Learning rate.
    weight_decay : float, default=1e-5
        Weight decay.
    momentum : float, default=0.9
        SGD momentum (Adam's first beta).
    lr_schedule : {"poly", "cosine", "plateau"} or None, default="poly"
        ``"poly"``: PolynomialLR with power 0.9 over ``max_epochs``.
    max_epochs : int, default=50
        Training epochs.
    batch_size : int, default=2
        Patches per step.
    augment : {"report", "flip"} or None, default="report"
        ``"report"``: random flips on every spatial axis and per-channel
        intensity shift (±0.1 standard deviation) and scale (0.9-1.1), on the
        device, batch-wise; ``"flip"``: flips only. A random ``roi_size``
        crop is taken from larger images in every case.
    early_stopping : int, default=None
        Stop after this many epochs without a better validation Dice, and
        keep the best epoch's weights; ``None`` trains ``max_epochs``.
    validation_fraction : float, default=0.1
        Share of the samples held out for ``early_stopping``.
    normalize : {"channel", "minmax"} or None, default="channel"
        ``"channel"``: per-sample, per-channel z-score over non-zero voxels
        (MONAI's ``NormalizeIntensity(nonzero=True, channelwise=True)``; a
        constant channel is only centred); ``"minmax"``: to [0, 1].
    sw_overlap : float, default=0.25
        Overlap of the sliding windows.
    sw_batch_size : int, default=4
        Windows per forward pass.
    device : str, default="auto"
        Torch device (``"auto"``: CUDA when available).
    precision : {"auto", "fp32", "bf16", "fp16"}, default="auto"
        Autocast precision (see :func:`skmedimg.neural.resolve_precision`).
    distributed : "auto" or bool, default="auto"
        Train data-parallel over the processes started by ``torchrun``, as
        :class:`~skmedimg.neural.CNNClassifier` does: each process reads
        only its shard of the samples (masks and images), ``batch_size`` is
        the global batch (divisible by the number of processes), gradients
        are averaged by :class:`~torch.nn.parallel.DistributedDataParallel`,
        the training loss and the validation Dice are summed over the shards
        (so early stopping and the schedule decide alike), only rank 0
        shows progress, and every process ends with the same plain network.
        ``"auto"``: when launched with ``WORLD_SIZE`` above 1; ``True``:
        always (an error when not launched); ``False``: never. See
        :doc:`/distributed`.
    random_state : int, RandomState or None, default=None
        Seed of weights, crops, augmentation and shuffling; the same int on
        the same device gives the same model. Torch's global generators are
        left as they were.
    verbose : int, default=0
        1 shows a progress bar per fit.
    **kwargs : dict
        ``network__<name>`` keyword arguments of the network's constructor
        (``network__channels=(8, 16, 32)``, ``network__init_filters=8`` ...).

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Sorted labels seen in ``y``.
    regions_ : list of str or None
        Region names with ``regions``, else None.
    spatial_dims_ : int
        2 or 3.
    n_channels_in_ : int
        Image channels.
    roi_size_ : tuple of int
        The patch and window size used.
    network_ : torch.nn.Module
        The trained network.
    history_ : dict of list
        Per epoch: ``epoch``, ``train_loss``, ``lr``, ``dur`` and, with
        ``early_stopping``, ``valid_dice``.
    n_epochs_ : int
        Epochs trained.
    device_ : torch.device
        Where the network runs.

    See Also
    --------
    dice_score, dice_scorer, segmentation_report, SegmentationEnsemble

    Notes
    -----
    Prediction runs one sample at a time, so memory holds one volume's
    probability maps beyond the result. A model trained on a GPU unpickles
    on a CPU-only machine; :func:`skmedimg.neural.save_model` writes it
    safely.

    Examples
    --------
    >>> import numpy as np
    >>> from skmedimg.segmentation import CNNSegmenter
    >>> X = np.zeros((4, 16, 16), dtype=np.float32); X[:, 4:10, 4:10] = 1
    >>> y = (X > 0).astype(int)
    >>> seg = CNNSegmenter(network__channels=(4, 8), max_epochs=2,
    ...                    random_state=0).fit(X, y)
    >>> seg.predict(X).shape
    (4, 16, 16)
    """

    _parameter_constraints: dict = {
        "network": [StrOptions(set(NETWORKS))],
        "regions": [dict, None],
        "roi_size": [Interval(Integral, 1, None, closed="left"), tuple, list, None],
        "encoder": [str],
        "pretrained": ["boolean", str, os.PathLike],
        "loss": [StrOptions({"dice", "dice_ce", "dice_focal"})],
        "optimizer": [StrOptions(set(_OPTIMIZERS))],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "momentum": [Interval(Real, 0, 1, closed="both")],
        "lr_schedule": [StrOptions({"poly", "cosine", "plateau"}), None],
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "augment": [StrOptions({"report", "flip"}), None],
        "early_stopping": [Interval(Integral, 1, None, closed="left"), None],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "normalize": [StrOptions({"channel", "minmax"}), None],
        "sw_overlap": [Interval(Real, 0, 1, closed="left")],
        "sw_batch_size": [Interval(Integral, 1, None, closed="left")],
        "device": [str, torch.device],
        "precision": [StrOptions({"auto", "fp32", "bf16", "fp16"})],
        "distributed": [StrOptions({"auto"}), "boolean"],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        network="unet",
        *,
        regions=None,
        roi_size=None,
        encoder="tf_efficientnet_lite0",
        pretrained=False,
        loss="dice_ce",
        optimizer="adamw",
        lr=1e-3,
        weight_decay=1e-5,
        momentum=0.9,
        lr_schedule="poly",
        max_epochs=50,
        batch_size=2,
        augment="report",
        early_stopping=None,
        validation_fraction=0.1,
        normalize="channel",
        sw_overlap=0.25,
        sw_batch_size=4,
        device="auto",
        precision="auto",
        distributed="auto",
        random_state=None,
        verbose=0,
        **kwargs,
    ):
        self.network = network
        self.regions = regions
        self.roi_size = roi_size
        self.encoder = encoder
        self.pretrained = pretrained
        self.loss = loss
        self.optimizer = optimizer
        self.lr = lr
        self.weight_decay = weight_decay
        self.momentum = momentum
        self.lr_schedule = lr_schedule
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.augment = augment
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.normalize = normalize
        self.sw_overlap = sw_overlap
        self.sw_batch_size = sw_batch_size
        self.device = device
        self.precision = precision
        self.distributed = distributed
        self.random_state = random_state
        self.verbose = verbose
        vars(self).update(kwargs)

    # ----------------------------------------------------------------- params

    def _routed_params(self):
        own = set(self._get_param_names())
        return {
            key: value
            for key, value in vars(self).items()
            if key not in own and not key.startswith("_") and not key.endswith("_")
        }

    def get_params(self, deep=True):
        """Get parameters for this estimator, routed ``network__`` ones included.

        Parameters
        ----------
        deep : bool, default=True
            Unused (no sub-estimators); kept for scikit-learn.

        Returns
        -------
        params : dict
            Parameter names mapped to their values.
        """
        params = super().get_params(deep=deep)
        params.update(self._routed_params())
        return params

    def set_params(self, **params):
        """Set parameters, routed ``network__<name>`` ones included.

        Parameters
        ----------
        **params : dict
            Estimator parameters.

        Returns
        -------
        self : CNNSegmenter
            This estimator.
        """
        own = set(self._get_param_names())
        routed = {k: v for k, v in params.items() if k not in own and _routed_key(k)}
        for key, value in routed.items():
            setattr(self, key, value)
        rest = {k: v for k, v in params.items() if k not in routed}
        if rest:
            super().set_params(**rest)
        return self

    def _network_kwargs(self):
        routed = self._routed_params()
        bad = sorted(k for k in routed if not _routed_key(k))
        if bad:
            raise TypeError(
                f"CNNSegmenter got unexpected parameter(s) {', '.join(bad)}; "
                "keyword arguments of the network start with 'network__'"
            )
        return {k.partition("__")[2]: v for k, v in routed.items()}

    def _check_regions(self):
        if self.regions is None:
            return None
        if not self.regions:
            raise ValueError("regions must name at least one region, got {}")
        for name, labels in self.regions.items():
            labels = list(labels) if not isinstance(labels, Integral) else [labels]
            if not labels or not all(
                isinstance(v, Integral) and not isinstance(v, bool) and v >= 0
                for v in labels
            ):
                raise ValueError(
                    f"regions[{name!r}] must be a non-empty list of non-negative "
                    f"integer labels, got {self.regions[name]!r}"
                )
        return {str(k): [int(v) for v in v_] for k, v_ in self.regions.items()}

    def _size_rule(self, kwargs):
        reduction = 32
        if self.network == "timm_unet":
            reduction = encoder_reduction(self.encoder, kwargs)
        return size_multiple(self.network, kwargs, reduction)

    def _resolve_roi(self, shapes, spatial_dims, kwargs):
        multiple, rule = self._size_rule(kwargs)
        if self.roi_size is None:
            largest = np.max(np.array(shapes), axis=0)
            return tuple(int(math.ceil(s / multiple) * multiple) for s in largest)
        roi = self.roi_size
        roi = (int(roi),) * spatial_dims if isinstance(roi, Integral) else tuple(roi)
        if len(roi) != spatial_dims:
            raise ValueError(
                f"roi_size={self.roi_size!r} has {len(roi)} sides, but the masks "
                f"have {spatial_dims} spatial axes"
            )
        bad = [s for s in roi if int(s) % multiple or int(s) < 1]
        if bad:
            raise ValueError(
                f"roi_size={self.roi_size!r} cannot be taken by "
                f"network={self.network!r}: {rule} (got {tuple(roi)})"
            )
        return tuple(int(s) for s in roi)

    # -------------------------------------------------------------------- fit

    def _targets(self, mask):
        """Integer class indices, or float region channels ``(R, *spatial)``."""
        if self.regions_ is None:
            return np.searchsorted(self.classes_, mask).astype(np.int64)
        return np.stack(
            [np.isin(mask, self._regions[name]) for name in self.regions_]
        ).astype(np.float32)

    def fit(self, X, y):
        """Train the network on images ``X`` and label masks ``y``.

        Parameters
        ----------
        X : array-like of shape (n_samples, \\*spatial[, n_channels]), list or paths
            Images, channels last (one channel when absent); a list of
            per-sample arrays of varying size; or paths of 2-D image files or
            NIfTI volumes (``.nii``, ``.nii.gz``).
        y : array-like of shape (n_samples, \\*spatial), list or paths
            Integer label masks (non-negative), one per image, of its
            spatial shape.

        Returns
        -------
        self : CNNSegmenter
            The fitted estimator.
        """
        self._validate_params()
        if not resolve_distributed(self.distributed, what="CNNSegmenter"):
            return self._fit(X, y)
        group = start_data_parallel(resolve_device(self.device), what="CNNSegmenter")
        with group.guard("fit"):
            return self._fit(X, y, group)

    def _fit(self, X, y, group=None):
        """The body of :meth:`fit`; ``group``: a data-parallel fit's process group."""
        kwargs = self._network_kwargs()
        regions = self._check_regions()
        rng = check_random_state(self.random_state)
        shards = None
        if group is None:
            masks = check_masks(y)
            spatial_dims = masks[0].ndim
            images = read_segmentation_images(X, spatial_dims)
            positions = np.arange(len(masks))
        else:
            group.same_random_state(rng)  # rank 0's seed and split everywhere
            shards, images, masks = self._read_shard(group, X, y, rng)
            spatial_dims = masks[0].ndim
            positions = shards.indices
        if len(images) != len(masks):
            raise ValueError(f"X has {len(images)} images but y has {len(masks)} masks")
        channels = [im.shape[-1] for im in images]
        if len(set(channels)) > 1:
            odd = [i for i, c in enumerate(channels) if c != channels[0]]
            raise ValueError(
                f"all images must have the same number of channels, got "
                f"{sorted(set(channels))}: image {positions[0]} has {channels[0]}, "
                f"but images {[int(positions[i]) for i in odd]} have "
                f"{[channels[i] for i in odd]}"
            )
        bad = [
            f"sample {p}: image {im.shape[:-1]}, mask {m.shape}"
            for p, im, m in zip(positions, images, masks, strict=True)
            if im.shape[:-1] != m.shape
        ]
        if bad:
            raise ValueError(
                f"{len(bad)} of {len(masks)} image(s) differ in spatial shape from "
                f"their mask: {'; '.join(bad)}"
            )
        classes = np.unique(np.concatenate([np.unique(m) for m in masks]))
        shapes = [m.shape for m in masks]
        if group is not None:  # what every shard holds, on every rank
            shapes, classes = self._agree_on_data(
                group, spatial_dims, channels[0], shapes, classes
            )
        if len(classes) < 2:
            raise ValueError(
                f"y holds a single label ({classes[0]}) in every mask: there is "
                "nothing to segment; at least two classes are needed"
            )
        if regions is not None:
            unknown = sorted(
                set(classes.tolist()) - {0} - {v for r in regions.values() for v in r}
            )
            if unknown:
                raise ValueError(
                    f"y holds labels {unknown} that belong to no region of "
                    f"regions={regions}"
                )

        self.classes_ = classes
        self._regions = regions
        self.regions_ = None if regions is None else list(regions)
        self.spatial_dims_ = spatial_dims
        self.n_channels_in_ = int(images[0].shape[-1])
        self.roi_size_ = self._resolve_roi(shapes, spatial_dims, kwargs)
        device = resolve_device(self.device) if group is None else group.device
        amp_dtype = resolve_precision(self.precision, device)
        self.device_ = device

        if group is None:
            seed = int(rng.randint(0, 2**31 - 1))
        else:
            seed = self._seed
        n_out = len(self.regions_) if regions is not None else len(classes)

        data = [
            (
                torch.from_numpy(
                    np.ascontiguousarray(
                        np.moveaxis(normalize_image(im, self.normalize), -1, 0)
                    )
                ),
                torch.from_numpy(self._targets(m)),
            )
            for im, m in zip(images, masks, strict=True)
        ]
        train_idx = np.arange(len(data))
        valid_idx = np.array([], dtype=int)
        if shards is not None:  # this rank's training samples, then validation
            n_mine = len(shards.train)
            train_idx = np.arange(n_mine)
            valid_idx = np.arange(n_mine, len(data))
        elif self.early_stopping is not None:
            n_valid = max(1, int(round(self.validation_fraction * len(data))))
            if len(data) - n_valid < 1:
                raise ValueError(
                    f"early_stopping needs a validation split, but {len(data)} "
                    "sample(s) leave none to train on"
                )
            order = rng.permutation(len(data))
            valid_idx, train_idx = np.sort(order[:n_valid]), np.sort(order[n_valid:])

        with torch_random(seed, device), reused_host_memory(device):
            module = build_network(
                self.network,
                spatial_dims=spatial_dims,
                in_channels=self.n_channels_in_,
                out_channels=n_out,
                roi_size=self.roi_size_,
                kwargs=kwargs,
                encoder=self.encoder,
                pretrained=self.pretrained,
            ).to(device)
            self.weights_source_ = module.weights_source
            self.network_ = module
            self._train(
                module,
                data,
                train_idx,
                valid_idx,
                device,
                amp_dtype,
                masks,
                seed,
                group=group,
            )
        self.__dict__.pop("_seed", None)
        return self

    def _read_shard(self, group, X, y, rng):
        """A data-parallel fit's shards and this rank's images and masks.

        The seed and the validation split are drawn from ``rng`` as one
        process draws them; the samples are then shared as
        :meth:`~skmedimg.neural._distributed.DataParallelGroup.plan_shards`
        says (equal training shards), and each rank reads only its own.
        """
        images_in, masks_in = list(X), list(y)
        n = len(masks_in)
        if len(images_in) != n:
            raise ValueError(f"X has {len(images_in)} images but y has {n} masks")
        self._seed = int(rng.randint(0, 2**31 - 1))
        split = None
        if self.early_stopping is not None:
            n_valid = max(1, int(round(self.validation_fraction * n)))
            if n - n_valid < 1:
                raise ValueError(
                    f"early_stopping needs a validation split, but {n} "
                    "sample(s) leave none to train on"
                )
            order = rng.permutation(n)
            split = (np.sort(order[n_valid:]), np.sort(order[:n_valid]))
        shards = group.plan_shards(n, self._seed, gathered=False, split=split)

        def read(part):
            masks = check_masks([masks_in[int(i)] for i in part])
            images = read_segmentation_images(
                [images_in[int(i)] for i in part], masks[0].ndim
            )
            return images, masks

        images, masks = group.read_shard(
            read, np.arange(n), shards.indices, name=lambda i: f"sample {i}"
        )
        return shards, images, masks

    @staticmethod
    def _agree_on_data(group, spatial_dims, n_channels, shapes, classes):
        """The largest shape and every class over the shards; same axes and channels."""
        largest = tuple(np.max(np.array(shapes), axis=0).tolist())
        everyone = group.all_gather_object(
            (spatial_dims, n_channels, largest, classes.tolist())
        )
        dims = sorted({d for d, _, _, _ in everyone})
        channels = sorted({c for _, c, _, _ in everyone})
        if len(dims) > 1 or len(channels) > 1:
            raise ValueError(
                "all masks must have the same number of axes and all images the "
                f"same number of channels; the processes' shards hold {dims} "
                f"spatial axes and {channels} channels"
            )
        shapes = [s for _, _, s, _ in everyone]
        classes = np.unique(np.concatenate([np.asarray(c) for *_, c in everyone]))
        return shapes, classes

    def _optimizer(self, module):
        cls = _OPTIMIZERS[self.optimizer]
        kw = {"lr": float(self.lr), "weight_decay": float(self.weight_decay)}
        if self.optimizer == "sgd":
            kw["momentum"] = float(self.momentum)
        else:
            kw["betas"] = (float(self.momentum), 0.999)
        return cls(module.parameters(), **kw)

    def _scheduler(self, opt):
        sched = torch.optim.lr_scheduler
        if self.lr_schedule == "poly":
            return sched.PolynomialLR(opt, total_iters=int(self.max_epochs), power=0.9)
        if self.lr_schedule == "cosine":
            return sched.CosineAnnealingLR(opt, T_max=int(self.max_epochs))
        if self.lr_schedule == "plateau":
            return sched.ReduceLROnPlateau(opt, mode="min", factor=0.5, patience=2)
        return None

    def _batch(self, data, idx, gen):
        """Random ``roi_size_`` patches of the samples ``idx``, stacked."""
        images, targets = [], []
        roi = self.roi_size_
        for i in idx:
            image, target = data[i]
            # target: class indices (*spatial) or region channels (R, *spatial)
            image, target = _pad_to(image, target, roi)
            spatial = image.shape[1:]
            starts = [
                int(torch.randint(0, d - r + 1, (1,), generator=gen)) if d > r else 0
                for d, r in zip(spatial, roi, strict=True)
            ]
            sl = tuple(slice(s, s + r) for s, r in zip(starts, roi, strict=True))
            images.append(image[(slice(None), *sl)])
            if target.ndim == len(roi):
                targets.append(target[sl][None])
            else:
                targets.append(target[(slice(None), *sl)])
        return torch.stack(images), torch.stack(targets)

    def _augment(self, xb, yb, gen):
        """Flips on every spatial axis, intensity shift/scale; drawn on ``gen``."""
        if self.augment is None:
            return xb, yb
        n, c = xb.shape[:2]
        for axis in range(2, xb.ndim):
            flip = torch.rand(n, generator=gen) < 0.5
            if flip.any():
                f = flip.to(xb.device)
                shape = (n,) + (1,) * (xb.ndim - 1)
                xb = torch.where(f.view(shape), xb.flip(axis), xb)
                yb = torch.where(f.view(shape), yb.flip(axis), yb)
        if self.augment == "report":
            shift = (torch.rand(n, c, generator=gen) * 0.2 - 0.1).to(xb.device)
            scale = (torch.rand(n, c, generator=gen) * 0.2 + 0.9).to(xb.device)
            dims = tuple(range(2, xb.ndim))
            std = xb.std(dim=dims)
            view = (n, c) + (1,) * (xb.ndim - 2)
            xb = (xb + (shift * std).view(view)) * scale.view(view)
        return xb, yb

    def _train(
        self,
        module,
        data,
        train_idx,
        valid_idx,
        device,
        amp_dtype,
        masks,
        seed,
        group=None,
    ):
        """Train ``module``; in a data-parallel fit (``group``) on this rank's shard."""
        from tqdm.auto import tqdm

        loss_fn = _make_loss(self.loss, self._regions)
        opt = self._optimizer(module)
        scheduler = self._scheduler(opt)
        scaler = torch.amp.GradScaler("cuda") if amp_dtype == torch.float16 else None
        bs = int(self.batch_size)
        model = module
        if group is not None:
            bs = group.local_batch_size(bs)  # the global batch, shared
            seed = (seed + group.rank) % 2**31  # crops, flips, order per rank
            model = group.wrap(module)  # rank 0's weights; gradients averaged
        gen = torch.Generator().manual_seed(seed)
        history = {"epoch": [], "train_loss": [], "lr": [], "dur": []}
        has_valid = len(valid_idx) > 0  # every shard has some when any has
        if has_valid:
            history["valid_dice"] = []
        best, best_state, bad_epochs = -np.inf, None, 0
        bar = tqdm(
            total=int(self.max_epochs),
            disable=not (self.verbose and is_main_process()),
            desc="CNNSegmenter",
        )
        epoch = 0
        for epoch in range(1, int(self.max_epochs) + 1):
            start = time.perf_counter()
            module.train()
            order = train_idx[torch.randperm(len(train_idx), generator=gen).numpy()]
            losses, weights = [], []
            for b in range(0, len(order), bs):
                idx = order[b : b + bs]
                xb, yb = self._batch(data, idx, gen)
                xb, yb = xb.to(device), yb.to(device)
                xb, yb = self._augment(xb, yb, gen)
                opt.zero_grad(set_to_none=True)
                with autocast(device, amp_dtype):
                    out = model(xb)
                loss = loss_fn(out.float(), yb)
                if scaler is not None:
                    scaler.scale(loss).backward()
                    scaler.step(opt)
                    scaler.update()
                else:
                    loss.backward()
                    opt.step()
                losses.append(float(loss.detach()))
                weights.append(len(idx))
            if group is None:
                train_loss = float(np.average(losses, weights=weights))
            else:  # over the global batches
                total, count = group.sum(
                    [float(np.dot(losses, weights)), float(np.sum(weights))]
                )
                train_loss = float(total / count)
            history["epoch"].append(epoch)
            history["train_loss"].append(train_loss)
            history["lr"].append(float(opt.param_groups[0]["lr"]))
            if has_valid:
                dice = self._valid_dice(
                    data, valid_idx, masks, device, amp_dtype, group
                )
                history["valid_dice"].append(float(dice))
                if dice > best:
                    best, bad_epochs = dice, 0
                    best_state = {
                        k: v.detach().clone() for k, v in module.state_dict().items()
                    }
                else:
                    bad_epochs += 1
            if scheduler is not None:
                if self.lr_schedule == "plateau":
                    scheduler.step(train_loss)
                else:
                    scheduler.step()
            history["dur"].append(time.perf_counter() - start)
            bar.set_postfix(loss=f"{train_loss:.4f}")
            bar.update(1)
            if self.early_stopping is not None and bad_epochs >= self.early_stopping:
                break
        bar.close()
        if best_state is not None:
            module.load_state_dict(best_state)
        module.eval()
        self.history_ = history
        self.n_epochs_ = epoch

    def _valid_dice(self, data, valid_idx, masks, device, amp_dtype, group=None):
        """Mean Dice of the validation samples (of every rank's shard)."""
        pred = [self._predict_one(data[i][0], device, amp_dtype) for i in valid_idx]
        if self._regions is None:
            pred = [self.classes_[p.argmax(-1)] for p in pred]
            true = [masks[i] for i in valid_idx]
            scored = {"labels": [c for c in self.classes_ if c != 0]}
        else:
            pred = [p > 0.5 for p in pred]
            true = [np.moveaxis(data[i][1].numpy() > 0.5, 0, -1) for i in valid_idx]
            scored = {"regions": self._regions}
        if group is None:
            return dice_score(true, pred, **scored)
        # dice_score averages per-mask Dice over the masks, then over the
        # classes: per-class sums over every shard give the same mean.
        n_scored = len(scored.get("labels", scored.get("regions")))
        local = np.zeros(n_scored)
        if len(pred):
            per_class = dice_score(true, pred, average=None, **scored)
            local = np.asarray(per_class) * len(pred)
        sums = group.sum([*local.tolist(), len(pred)])
        return float(np.mean(sums[:-1] / sums[-1]))

    # ---------------------------------------------------------------- predict

    def _predict_one(self, image, device, amp_dtype):
        """Return the maps ``(*spatial, n_outputs)`` of one ``(C, *spatial)`` tensor."""
        from monai.inferers import sliding_window_inference

        module = self.network_
        regions = self._regions is not None

        def forward(x):
            with autocast(device, amp_dtype):
                out = module(x)
            out = out.float()
            return torch.sigmoid(out) if regions else torch.softmax(out, dim=1)

        was_training = module.training
        module.eval()
        try:
            with torch.inference_mode():
                out = sliding_window_inference(
                    image[None].to(device),
                    roi_size=self.roi_size_,
                    sw_batch_size=int(self.sw_batch_size),
                    predictor=forward,
                    overlap=float(self.sw_overlap),
                )
        finally:
            module.train(was_training)
        return np.ascontiguousarray(
            np.moveaxis(out[0].float().cpu().numpy(), 0, -1), dtype=np.float32
        )

    def _iter_proba(self, X):
        check_is_fitted(self)
        images = read_segmentation_images(
            X, self.spatial_dims_, n_channels=self.n_channels_in_
        )
        amp_dtype = loaded_precision(self.precision, self.device_)
        with reused_host_memory(self.device_):
            for im in images:
                tensor = torch.from_numpy(
                    np.ascontiguousarray(
                        np.moveaxis(normalize_image(im, self.normalize), -1, 0)
                    )
                )
                yield self._predict_one(tensor, self.device_, amp_dtype)

    @staticmethod
    def _stack(items):
        shapes = {item.shape for item in items}
        return np.stack(items) if len(shapes) == 1 else items

    def predict_proba(self, X):
        """Probability maps of each image.

        Parameters
        ----------
        X : array-like or list
            Images as in :meth:`fit`, with ``n_channels_in_`` channels.

        Returns
        -------
        proba : ndarray of shape (n_samples, \\*spatial, n_outputs) or list
            float32 softmax maps over ``classes_`` (or sigmoid maps of
            ``regions_``), channels last; a list when the spatial shapes
            differ.
        """
        return self._stack(list(self._iter_proba(X)))

    def predict(self, X):
        """Predicted masks, each of its image's spatial shape.

        Parameters
        ----------
        X : array-like or list
            Images as in :meth:`fit`.

        Returns
        -------
        masks : ndarray of shape (n_samples, \\*spatial) or list
            Labels from ``classes_``; with ``regions``, boolean masks of shape
            ``(n_samples, *spatial, n_regions)``. A list when the spatial
            shapes differ.
        """
        out = []
        for proba in self._iter_proba(X):
            if self._regions is None:
                out.append(self.classes_[proba.argmax(-1)])
            else:
                out.append(proba > 0.5)
        return self._stack(out)

    def score(self, X, y):
        """Mean Dice of the predictions on ``X`` against the masks ``y``.

        Over the labels of ``classes_`` and of ``y`` except the background
        (label 0), or over ``regions_``; a label the model was not fitted on
        is scored too (0 where it is present). A class absent from a mask and
        from its prediction scores 1.0 there, so an empty mask predicted empty
        scores 1.0 (see :func:`dice_score`).

        Parameters
        ----------
        X : array-like or list
            Images.
        y : array-like or list
            True label masks.

        Returns
        -------
        score : float
            The mean Dice.
        """
        return mean_dice(check_masks(y), list(self.predict(X)), self)

    # ------------------------------------------------------------ persistence

    def _rebuild_network(self, state, device):
        """Rebuild ``network_`` from the parameters and load ``state`` on ``device``."""
        n_out = len(self.regions_) if self.regions_ is not None else len(self.classes_)
        with torch_random():  # random weights, replaced by the saved ones
            module = build_network(
                self.network,
                spatial_dims=self.spatial_dims_,
                in_channels=self.n_channels_in_,
                out_channels=n_out,
                roi_size=self.roi_size_,
                kwargs=self._network_kwargs(),
                encoder=self.encoder,
                pretrained=False,
            )
        module.load_state_dict(state, strict=True)
        module.weights_source = getattr(self, "weights_source_", "random")
        return module.to(device).eval()

    def __getstate__(self):
        state = dict(self.__dict__)
        module = state.pop("network_", None)
        if module is not None:
            state["_network_state"] = {
                k: v.detach().to("cpu") for k, v in module.state_dict().items()
            }
        return state

    def __setstate__(self, state):
        tensors = state.pop("_network_state", None)
        self.__dict__.update(state)
        # a parameter added after a model was pickled takes its default
        self.__dict__.setdefault("distributed", "auto")
        if tensors is not None:
            device = resolve_loading_device(self.device_, what="the segmenter")
            self.device_ = device
            self.network_ = self._rebuild_network(tensors, device)

    def _fitted_config(self):
        """Return the fitted attributes as JSON types (for save_model)."""
        return {
            "classes": self.classes_.tolist(),
            "regions": self._regions,
            "spatial_dims": self.spatial_dims_,
            "n_channels_in": self.n_channels_in_,
            "roi_size": list(self.roi_size_),
            "history": self.history_,
            "n_epochs": self.n_epochs_,
            "device": str(self.device_),
            "weights_source": getattr(self, "weights_source_", "random"),
        }

    def _set_fitted_config(self, config, tensors):
        """Restore what :meth:`_fitted_config` wrote, with the network's tensors."""
        self.classes_ = np.array(config["classes"], dtype=np.int64)
        self._regions = config["regions"]
        self.regions_ = None if self._regions is None else list(self._regions)
        self.spatial_dims_ = int(config["spatial_dims"])
        self.n_channels_in_ = int(config["n_channels_in"])
        self.roi_size_ = tuple(config["roi_size"])
        self.history_ = config["history"]
        self.n_epochs_ = config["n_epochs"]
        self.weights_source_ = config["weights_source"]
        device = resolve_loading_device(self.device, what="the saved model")
        self.device_ = device
        self.network_ = self._rebuild_network(tensors, device)
        return self
