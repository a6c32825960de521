"""Save and load fitted CNN estimators in a format that runs no code on load.

A pickle (or joblib) file can execute arbitrary code when it is loaded, so a
model received from someone else should not be unpickled. :func:`save_model`
writes one ``.safetensors`` file: the network's tensors, plus the estimator's
parameters and fitted attributes (``classes_``, ``history_`` ...) as JSON in
the file's metadata. :func:`load_model` rebuilds the estimator from them; it
reads tensors and JSON only, always onto the CPU first, so a model trained on
a GPU loads on a CPU-only machine.
"""

from __future__ import annotations

import importlib
import json
import os
import sys

import torch
from sklearn.utils.validation import check_is_fitted

from ._backbone import is_custom_model, model_label
from ._classifier import CNNClassifier
from ._json import from_json, jsonable

__all__ = ["load_model", "save_model"]

_FORMAT = "skmedimg.CNNClassifier"
_FORMAT_VERSION = "1"
#: Largest image side a saved model may declare: a file claiming more is
#: damaged or tampered with (an input of 100000 x 100000 pixels would only fail
#: at predict, after trying to allocate it).
_MAX_IMAGE_SIDE = 8192
# A CNNSegmenter (skmedimg.segmentation) writes its fitted attributes through
# its own ``_fitted_config`` / ``_set_fitted_config``; its subpackage imports
# MONAI, so it is only imported here when a file of that format is loaded.
_SEGMENTER_FORMAT = "skmedimg.CNNSegmenter"


def _segmenter_class():
    """CNNSegmenter when skmedimg.segmentation is imported, else None."""
    module = sys.modules.get("skmedimg.segmentation")
    return getattr(module, "CNNSegmenter", None)


def _config_params(estimator, drop=()):
    """Return the parameters as JSON, or raise ValueError naming the bad ones."""
    params = estimator.get_params(deep=False)
    for key in drop:
        params[key] = None
    if isinstance(params.get("device"), torch.device):
        params["device"] = str(params["device"])
    config_params, bad = {}, []
    for key, value in params.items():
        try:
            config_params[key] = jsonable(value)
        except TypeError as exc:
            bad.append(f"{key} ({exc})")
    if bad:
        raise ValueError(
            "these parameters cannot be saved in the safe format (they are code, "
            f"not data): {', '.join(bad)}. Set them to plain values (a preset "
            "name for augment, a loss name) or use pickle for trusted use."
        )
    return config_params


def _save_segmenter(estimator, path):
    from safetensors.torch import save_file

    check_is_fitted(estimator)
    config = {
        "params": _config_params(estimator),
        "fitted": estimator._fitted_config(),
    }
    tensors = {
        key: value.detach().to("cpu").contiguous().clone()
        for key, value in estimator.network_.state_dict().items()
    }
    metadata = {
        "format": _SEGMENTER_FORMAT,
        "format_version": _FORMAT_VERSION,
        "config": json.dumps(config),
    }
    path = os.fspath(path)
    save_file(tensors, path, metadata=metadata)
    return path


def _load_segmenter(path, config, tensors):
    cls = importlib.import_module("skmedimg.segmentation").CNNSegmenter
    try:
        params = {key: from_json(value) for key, value in config["params"].items()}
        for key, value in params.items():
            if isinstance(value, list):  # roi_size, network__channels ...
                params[key] = tuple(value)
        estimator = cls(**params)
        estimator._validate_params()
        return estimator._set_fitted_config(config["fitted"], tensors)
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise ValueError(
            f"{path!r}: the segmenter's saved configuration or weights are damaged "
            f"or from an incompatible version ({type(exc).__name__}: {exc})"
        ) from exc


def save_model(estimator, path):
    """Save a fitted :class:`CNNClassifier` to a ``.safetensors`` file.

    A fitted :class:`skmedimg.segmentation.CNNSegmenter` is saved the same
    way (its network's tensors and its fitted attributes).

    Parameters
    ----------
    estimator : CNNClassifier or CNNSegmenter
        A fitted estimator. Parameters must be plain values (numbers,
        strings, tuples, dicts); a custom ``model_name`` (a module class or
        factory), a callable ``augment``, a loss module or ``callbacks``
        cannot be written safely and raise ``ValueError`` (``memory`` and
        ``image_cache`` are not saved: they are caches).
    path : str or path-like
        Output file, conventionally ending in ``.safetensors``.

    Returns
    -------
    path : str
        The path written.

    Raises
    ------
    ValueError
        If a parameter cannot be represented as JSON.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from skmedimg.neural import CNNClassifier, save_model, load_model
    >>> X = np.random.default_rng(0).integers(0, 255, (8, 16, 16), dtype=np.uint8)
    >>> clf = CNNClassifier("test_resnet", pretrained=False, freeze="backbone",
    ...                     image_size=32, batch_size=4, max_epochs=1,
    ...                     random_state=0)
    >>> clf = clf.fit(X, [0, 1] * 4)
    >>> path = os.path.join(tempfile.mkdtemp(), "model.safetensors")
    >>> loaded = load_model(save_model(clf, path))
    >>> bool(np.allclose(loaded.predict_proba(X), clf.predict_proba(X)))
    True
    """
    from safetensors.torch import save_file

    segmenter = _segmenter_class()
    if segmenter is not None and isinstance(estimator, segmenter):
        return _save_segmenter(estimator, path)
    if not isinstance(estimator, CNNClassifier):
        raise TypeError(
            f"save_model saves a CNNClassifier or a CNNSegmenter, got {type(estimator)}"
        )
    check_is_fitted(estimator)
    if is_custom_model(estimator.model_name):
        # Loading would have to import and call code named in the file, which
        # is what this format exists to avoid.
        raise ValueError(
            f"save_model cannot save a CNNClassifier over the custom model "
            f"{model_label(estimator.model_name)}: the safe format holds tensors "
            "and JSON only, and rebuilding your network means running your "
            "code. Save it with pickle or joblib (joblib.dump(clf, "
            "'model.joblib'); load only files you trust)"
        )
    config_params = _config_params(estimator, drop=("memory", "image_cache"))
    fitted, tensors = estimator._fitted_config()
    config = {"params": config_params, **fitted}
    metadata = {
        "format": _FORMAT,
        "format_version": _FORMAT_VERSION,
        "config": json.dumps(config),
    }
    path = os.fspath(path)
    save_file(tensors, path, metadata=metadata)
    return path


def _read_saved(path):
    """Read the JSON configuration and the tensors of a file of save_model."""
    from safetensors import SafetensorError, safe_open

    not_ours = (
        f"{path!r} is not a model (CNNClassifier or CNNSegmenter) saved by "
        "skmedimg.neural.save_model"
    )
    if os.path.isdir(path):
        raise IsADirectoryError(
            f"{path!r} is a folder, not a model saved by "
            "skmedimg.neural.save_model"
        )
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path!r}: no such file")
    try:
        with safe_open(path, framework="pt", device="cpu") as handle:
            metadata = handle.metadata() or {}
            if metadata.get("format") not in (_FORMAT, _SEGMENTER_FORMAT):
                raise ValueError(not_ours)
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    except (SafetensorError, OSError) as exc:
        raise ValueError(
            f"{not_ours}: it is not a readable safetensors file ({exc})"
        ) from exc
    try:
        config = json.loads(metadata["config"])
    except (KeyError, ValueError) as exc:
        raise ValueError(
            f"{path!r}: the model's saved configuration is missing or damaged"
        ) from exc
    except RecursionError:
        raise ValueError(
            f"{path!r}: the model's saved configuration is damaged (nested too "
            "deeply to read)"
        ) from None
    if not isinstance(config, dict):
        raise ValueError(
            f"{path!r}: the model's saved configuration is damaged (not a "
            f"JSON object but {type(config).__name__})"
        )
    if metadata["format"] == _SEGMENTER_FORMAT:
        config["__format__"] = _SEGMENTER_FORMAT
    return config, tensors


def _check_image_size(value, what):
    """Raise ValueError unless ``value`` is a plausible (height, width)."""
    sides = [value, value] if isinstance(value, int) else value
    if (
        not isinstance(sides, list | tuple)
        or len(sides) != 2
        or not all(isinstance(s, int) and not isinstance(s, bool) for s in sides)
        or not all(1 <= s <= _MAX_IMAGE_SIDE for s in sides)
    ):
        raise ValueError(
            f"{what} must be (height, width) with sides from 1 to "
            f"{_MAX_IMAGE_SIDE}, got {value!r}"
        )


def _estimator_from_config(config):
    """Build the CNNClassifier of ``config``, with its fitted attributes but no net."""
    params = {key: from_json(value) for key, value in config["params"].items()}
    _check_image_size(config["image_size"], "the saved image size")
    if params.get("image_size") not in (None, "auto"):
        _check_image_size(params["image_size"], "the saved image_size parameter")
    for key in ("head", "image_size"):
        if isinstance(params.get(key), list):
            params[key] = tuple(params[key])
    estimator = CNNClassifier(**params)
    estimator._validate_params()
    estimator._set_fitted_config(config)
    return estimator


def load_model(path):
    """Load a :class:`CNNClassifier` written by :func:`save_model`.

    Only tensors and JSON are read: no code runs. The model goes to the
    device its ``device`` parameter names when available (``"auto"``: CUDA if
    present), else to the CPU.

    Parameters
    ----------
    path : str or path-like
        A file written by :func:`save_model`.

    Returns
    -------
    estimator : CNNClassifier or CNNSegmenter
        A fitted estimator that predicts like the saved one. The optimizer
        state is not saved: calling ``fit`` again trains from scratch.

    Raises
    ------
    FileNotFoundError, IsADirectoryError
        If ``path`` is not a file.
    ValueError
        If the file was not written by :func:`save_model`, or is damaged (a
        configuration nested too deeply, an image size with a side over
        8192): the message names the file and says which.
    """
    path = os.fspath(path)
    config, tensors = _read_saved(path)
    if config.get("__format__") == _SEGMENTER_FORMAT:
        return _load_segmenter(path, config, tensors)
    try:
        estimator = _estimator_from_config(config)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ValueError(
            f"{path!r}: the model's saved configuration is damaged or from an "
            f"incompatible version ({type(exc).__name__}: {exc})"
        ) from exc
    except RecursionError:
        raise ValueError(
            f"{path!r}: the model's saved configuration is damaged (nested too "
            "deeply to read)"
        ) from None
    try:
        estimator._load_network(tensors)
    except RuntimeError as exc:
        detail = str(exc).strip().splitlines()
        raise ValueError(
            f"{path!r}: the saved weights do not fit the saved configuration "
            f"({estimator.model_name}, {len(estimator.classes_)} classes): "
            f"{detail[1].strip() if len(detail) > 1 else detail[0]}"
        ) from exc
    return estimator
