"""Class activation maps (Grad-CAM and variants) of fitted CNN estimators.

Which implementation, and why
-----------------------------
The maps are computed here, with one forward hook on the target layer and
:func:`torch.autograd.grad`, rather than with the ``grad-cam`` package
(``pytorch-grad-cam``). That package is well kept, but it pulls in OpenCV
(``opencv-python``, about 60 MB, with its own native libraries) only to
resize and colour maps, which torch and matplotlib already do here; and its
``BaseCAM`` calls the model on float tensors, while our models take uint8
image batches and normalise them on the device. The methods are short and
their formulas follow the papers and that package's implementation:

* Grad-CAM (Selvaraju et al., 2017): channel weights are the spatial mean of
  the gradients of the class score, the map is ``ReLU(sum_k w_k A_k)``.
* Grad-CAM++ (Chattopadhay et al., 2018): weights are sums of the positive
  gradients weighted by ``alpha = g**2 / (2 g**2 + sum(A) g**3)``; better
  for several instances of a class in one image.
* Layer-CAM (Jiang et al., 2021): ``ReLU(sum_k ReLU(g_k) * A_k)``, weighted
  per position; useful for shallow layers and finer maps.

The class score is the logit of the target class (before the softmax).
"""

from __future__ import annotations

import warnings
from numbers import Integral

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.utils.validation import check_is_fitted

from ..utils import check_images

__all__ = ["GRADCAM_METHODS", "gradcam"]

#: Accepted values of ``method``.
GRADCAM_METHODS = ("gradcam", "gradcam++", "layercam")

_EPS = 1e-7


def _model_parts(estimator):
    """Return the torch pieces of a fitted CNN estimator.

    Returns ``(module, image_size, classes)``: ``module`` maps a uint8 image
    batch ``(n, H, W, 3)`` to logits and has ``preprocess`` and ``backbone``
    (an :class:`~skmedimg.neural.ImageClassifierModule`), ``image_size`` is
    ``(height, width)`` and ``classes`` the labels of the logits' columns.
    """
    check_is_fitted(estimator)
    module = getattr(getattr(estimator, "net_", None), "module_", None)
    if (
        module is None
        or not hasattr(module, "backbone")
        or not hasattr(module, "preprocess")
        or not hasattr(estimator, "image_size_")
    ):
        raise TypeError(
            "gradcam needs a fitted skmedimg.neural.CNNClassifier (or a Pipeline "
            f"ending in one); got {type(estimator).__name__}"
        )
    return module, tuple(estimator.image_size_), np.asarray(estimator.classes_)


def _unwrap_pipeline(estimator, X):
    """Split a fitted pipeline into its last step and ``X`` transformed by the rest.

    Samplers (steps with ``fit_resample``) pass images through at predict
    time, as in imbalanced-learn's ``Pipeline``, so they are skipped.
    """
    steps = getattr(estimator, "steps", None)
    if not steps:
        return estimator, X
    for _, step in steps[:-1]:
        if step is None or step == "passthrough" or hasattr(step, "fit_resample"):
            continue
        X = step.transform(X)
    return steps[-1][1], X


#: Maps with fewer cells than this along a side are too coarse to show where
#: a model looked: a 2 x 2 map upsampled is four coloured bands.
MIN_MAP_CELLS = 4


def _spatial_outputs(backbone, image_size, n_channels=3):
    """``[(name, (height, width))]`` of the modules with a spatial output.

    In the order in which modules finish during one forward pass of a blank
    image, so a stage (``layer4`` of a ResNet) comes after its blocks.
    """
    records = []
    hooks = [
        module.register_forward_hook(
            lambda m, args, out, name=name: records.append((name, out))
        )
        for name, module in backbone.named_modules()
        if name
    ]
    param = next(backbone.parameters(), None)
    device = param.device if param is not None else "cpu"
    try:
        with torch.no_grad():
            backbone(torch.zeros((1, n_channels, *image_size), device=device))
    finally:
        for hook in hooks:
            hook.remove()
    return [
        (name, (int(out.shape[2]), int(out.shape[3])))
        for name, out in records
        if isinstance(out, torch.Tensor) and out.ndim == 4
    ]


def _default_layer(backbone, image_size, n_channels=3):
    """Name of the last module whose output is a spatial map (the CAM target).

    The order is the order in which modules finish during one forward pass of
    a blank image, so a stage (``layer4`` of a ResNet) is found after its
    blocks, with its residual sums; modules whose output has one position
    (global pooling) do not count.
    """
    for name, (height, width) in reversed(
        _spatial_outputs(backbone, image_size, n_channels)
    ):
        if height * width > 1:
            return name
    raise ValueError(
        f"{type(backbone).__name__} has no layer with a spatial output (n, C, H, "
        "W) of more than one position at this image size; pass layer=<module "
        "name> (see backbone.named_modules())"
    )


def _warn_coarse(backbone, name, map_size, image_size, n_channels):
    """Warn that a map is coarser than MIN_MAP_CELLS, naming a finer layer."""
    finer = [
        candidate
        for candidate, (height, width) in _spatial_outputs(
            backbone, image_size, n_channels
        )
        if min(height, width) >= MIN_MAP_CELLS
    ]
    # the last finer one, a top-level stage when there is one
    stages = [c for c in finer if "." not in c]
    suggestion = (stages or finer or [None])[-1]
    advice = (
        f"pass an earlier layer, for example layer={suggestion!r}, or a larger "
        "image_size"
        if suggestion is not None
        else "train at a larger image_size"
    )
    warnings.warn(
        f"the Grad-CAM map of layer {name!r} has only {map_size[0]}x{map_size[1]} "
        f"cells at the input size {image_size[0]}x{image_size[1]}: it is too "
        f"coarse (under {MIN_MAP_CELLS}x{MIN_MAP_CELLS}) to show where the model "
        f"looked, and upsampled it draws bands of colour; {advice}.",
        UserWarning,
        stacklevel=3,
    )


def _resolve_layer(backbone, layer, image_size, n_channels=3):
    if layer is None:
        name = _default_layer(backbone, image_size, n_channels)
        return name, backbone.get_submodule(name)
    if isinstance(layer, torch.nn.Module):
        for name, module in backbone.named_modules():
            if module is layer:
                return name, module
        raise ValueError("layer is a module that is not part of the backbone")
    names = dict(backbone.named_modules())
    if not isinstance(layer, str) or layer not in names or not layer:
        stages = [entry["module"] for entry in getattr(backbone, "feature_info", [])]
        hint = f"; its stages are {', '.join(stages)}" if stages else ""
        raise ValueError(
            f"layer {layer!r} is not a module of the backbone (a name from "
            f"backbone.named_modules()){hint}"
        )
    return layer, names[layer]


def _target_indices(target, logits, classes):
    """Class indices of the maps: predicted, one label, or one label per image."""
    n_samples = logits.shape[0]
    if target is None:
        return logits.argmax(dim=1)
    labels = np.asarray(target)
    if labels.ndim == 0:
        labels = np.repeat(labels[None], n_samples)
    if labels.ndim != 1 or len(labels) != n_samples:
        raise ValueError(
            f"target must be None, one class label, or one label per image "
            f"({n_samples}); got an array of shape {labels.shape}"
        )
    index = {label: i for i, label in enumerate(classes.tolist())}
    unknown = sorted({str(t) for t in labels.tolist() if t not in index})
    if unknown:
        raise ValueError(
            f"target label(s) {', '.join(unknown)} not in the estimator's classes "
            f"{classes.tolist()}"
        )
    return torch.as_tensor([index[t] for t in labels.tolist()], device=logits.device)


def _cam(activations, gradients, method):
    """Class activation maps ``(n, h, w)`` from activations and their gradients."""
    if method == "gradcam":
        weights = gradients.mean(dim=(2, 3), keepdim=True)
        cam = (weights * activations).sum(dim=1)
    elif method == "gradcam++":
        g2 = gradients.pow(2)
        g3 = g2 * gradients
        total = activations.sum(dim=(2, 3), keepdim=True)
        alpha = g2 / (2 * g2 + total * g3 + _EPS)
        alpha = torch.where(gradients != 0, alpha, torch.zeros_like(alpha))
        weights = (alpha * gradients.clamp(min=0)).sum(dim=(2, 3), keepdim=True)
        cam = (weights * activations).sum(dim=1)
    else:  # layercam
        cam = (gradients.clamp(min=0) * activations).sum(dim=1)
    return cam.clamp(min=0)


def _normalise(maps):
    """Scale each map to [0, 1]; a constant map becomes zeros."""
    flat = maps.reshape(maps.shape[0], -1)
    low = flat.min(dim=1).values.view(-1, 1, 1)
    span = (flat.max(dim=1).values.view(-1, 1, 1) - low).clamp(min=0)
    scaled = (maps - low) / torch.where(span > 0, span, torch.ones_like(span))
    return torch.where(span > 0, scaled, torch.zeros_like(maps))


def gradcam(estimator, X, *, target=None, method="gradcam", layer=None, batch_size=16):
    """Class activation maps: where a fitted CNN looked for a class.

    Parameters
    ----------
    estimator : CNNClassifier or Pipeline
        A fitted :class:`skmedimg.neural.CNNClassifier`, or a fitted pipeline
        ending in one (its earlier steps transform ``X``; samplers pass it
        through, as at predict time).
    X : array-like
        Images: an array ``(n_samples, height, width[, n_channels])``, or a
        sequence of file paths, PIL images or arrays of any size. They are
        read exactly as ``predict`` reads them (RGB, resized to the
        estimator's ``image_size_``).
    target : label, array-like of shape (n_samples,) or None, default=None
        The class to explain: ``None`` for the predicted class of each image,
        one class label for all images, or one label per image (for example
        ``y_true`` to see the evidence for the true class of misclassified
        images). Labels, not indices, as in ``classes_``. With the
        estimator's ``tta``, the predicted class is that of ``predict``
        (over the flipped views); the map is of the image as given.
    method : {"gradcam", "gradcam++", "layercam"}, default="gradcam"
        The weighting of the feature maps (see the module documentation).
    layer : str or torch.nn.Module, default=None
        The backbone module whose output is explained, by its name in
        ``estimator.net_.module_.backbone.named_modules()`` (``"layer3"``,
        ``"blocks.5"`` ...). ``None``: the last module with a spatial output,
        that is the output of the last stage after its residual sums
        (``layer4`` of a ResNet, ``bn2`` after an EfficientNet's head
        convolution), which is what Grad-CAM papers use. This is deliberately
        not ``find_last_conv``: in a ResNet the last
        convolution to run is a shortcut's downsampling, which sees only the
        residual branch.
    batch_size : int, default=16
        Images per forward and backward pass.

    Returns
    -------
    heatmaps : ndarray of shape (n_samples, height, width)
        float32 maps in ``[0, 1]`` at the estimator's input resolution
        ``image_size_``: the map's positive part, bilinearly upsampled from
        the layer's resolution, then scaled by its own minimum and maximum
        (as pytorch-grad-cam does). A constant map, such as one with no
        positive evidence for the target class, is all zeros.

    Warns
    -----
    UserWarning
        If the layer's map is coarser than 4 x 4 cells (a small
        ``image_size``, a late layer): the message names an earlier ``layer``
        with a finer map.

    Raises
    ------
    TypeError
        If ``estimator`` is not a fitted CNN estimator.
    ValueError
        If ``method`` or ``layer`` is unknown, or ``target`` holds labels the
        estimator does not know.

    See Also
    --------
    plot_gradcam : Overlay the maps on the images and write a PNG.

    Notes
    -----
    The maps are computed in float32 on the estimator's device, with the
    model in eval mode (no dropout or augmentation), one forward and one
    backward pass per batch; the weights do not change and no gradient is
    stored on them. A frozen backbone works too: the target layer's output
    is made to require gradients by the hook.

    Examples
    --------
    >>> import numpy as np
    >>> from skmedimg.inspection import gradcam
    >>> from skmedimg.neural import CNNClassifier
    >>> rng = np.random.default_rng(0)
    >>> X = rng.integers(0, 60, size=(20, 64, 64), dtype=np.uint8)
    >>> y = np.array(["normal", "lesion"] * 10)
    >>> X[y == "lesion", 16:40, 16:40] = 255
    >>> clf = CNNClassifier("test_resnet", pretrained=False, image_size=64,
    ...                     batch_size=10, max_epochs=2, random_state=0).fit(X, y)
    >>> maps = gradcam(clf, X[:3], target="lesion", layer="layer3")  # 4 x 4 cells
    >>> maps.shape, float(maps.min()) >= 0, float(maps.max()) <= 1
    ((3, 64, 64), True, True)
    """
    if method not in GRADCAM_METHODS:
        raise ValueError(f"method must be one of {GRADCAM_METHODS}, got {method!r}")
    if not isinstance(batch_size, Integral) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    from ..neural import BackboneRunner, read_chunk

    estimator, X = _unwrap_pipeline(estimator, X)
    module, image_size, classes = _model_parts(estimator)
    color = getattr(estimator, "color", "rgb")  # as the model reads images
    X = check_images(X)
    n_samples = len(X)
    targets = None if target is None else np.asarray(target)
    # The maps are of the image itself, but with test-time augmentation "the
    # predicted class" is what predict says over the flipped views too.
    predict_targets = target is None and bool(getattr(estimator, "tta", None))
    if targets is not None and targets.ndim == 1 and len(targets) != n_samples:
        raise ValueError(
            f"target has {len(targets)} labels but X has {n_samples} images"
        )
    param = next(module.parameters())
    device = param.device
    was_training = module.training
    module.eval()
    try:
        # The backbone's input channels: those of its normalisation (1 for a
        # backbone built with module__in_chans=1).
        n_channels = module.mean.numel()
        name, target_layer = _resolve_layer(
            module.backbone, layer, image_size, n_channels
        )
        out = np.empty((n_samples, *image_size), dtype=np.float32)
        runner = BackboneRunner(
            device,
            batch_size=int(batch_size),
            lock=getattr(estimator, "lock_gpu", True),
            grad=True,
        )

        def decode(X, part):  # as predict reads them
            return read_chunk(
                X,
                part,
                size=image_size,
                color=color,
                n_jobs=getattr(estimator, "n_jobs", None),
                device=device,
                cache=getattr(estimator, "image_cache", None),
            )

        # The next chunk is decoded while this one runs; an unreadable image
        # stops the maps, and the error names every one, by its index in X.
        for start, images in runner.chunks(X, np.arange(n_samples), decode):
            chunk_targets = targets
            if targets is not None and targets.ndim == 1:
                chunk_targets = targets[start : start + len(images)]
            elif predict_targets:  # from the chunk already decoded
                chunk_targets = np.asarray(estimator.predict(images.numpy()))
            row = start
            with runner.computing():
                for batch, _ in runner.batches(images):
                    batch_targets = chunk_targets
                    if chunk_targets is not None and chunk_targets.ndim == 1:
                        offset = row - start
                        batch_targets = chunk_targets[offset : offset + len(batch)]
                    maps = _batch_maps(
                        module, target_layer, batch, batch_targets, classes, method
                    )
                    if row == 0 and min(maps.shape[1:]) < MIN_MAP_CELLS:
                        _warn_coarse(
                            module.backbone,
                            name,
                            tuple(maps.shape[1:]),
                            image_size,
                            n_channels,
                        )
                    maps = F.interpolate(
                        maps[:, None],
                        size=image_size,
                        mode="bilinear",
                        align_corners=False,
                    )[:, 0]
                    out[row : row + len(batch)] = _normalise(maps).cpu().numpy()
                    row += len(batch)
    finally:
        module.train(was_training)
    return out


def _batch_maps(module, target_layer, images, targets, classes, method):
    captured = []

    def hook(mod, args, output):
        if isinstance(output, tuple | list):
            raise ValueError(
                "the target layer returns a tuple; choose a module that returns "
                "one feature map (n, C, H, W)"
            )
        if not output.requires_grad:
            # A frozen backbone: start the graph here.
            output = output.detach().requires_grad_(True)
        captured.append(output)
        # A copy goes on: the layers after this one may work in place (timm's
        # ReLU(inplace=True) after a BatchNorm, a block's "x += shortcut"),
        # which would change the captured activations and their gradient.
        return output.clone()

    handle = target_layer.register_forward_hook(hook)
    try:
        with torch.inference_mode(False), torch.enable_grad():
            logits = module(images)
            activations = captured[0]
            if activations.ndim != 4:
                raise ValueError(
                    "the target layer's output has shape "
                    f"{tuple(activations.shape)}, not a feature map (n, C, H, W)"
                )
            index = _target_indices(targets, logits, classes)
            score = logits.gather(1, index.view(-1, 1)).sum()
            (gradients,) = torch.autograd.grad(score, activations)
    finally:
        handle.remove()
    return _cam(activations.detach().float(), gradients.float(), method)
