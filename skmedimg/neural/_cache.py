"""The per-image feature cache shared by CNNFeatureExtractor and CNNClassifier.

Features of a fixed (frozen, eval-mode) backbone depend only on the image,
the weights and the settings of the computation, so they are cached per
image: one ``.npy`` row per image content digest, under a folder named by a
digest of the settings (model, weights digest, image size, device type,
precision, library versions). Every estimator and grid-search candidate
that computes the same features on the same image reads the same row.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import uuid
from pathlib import Path

import numpy as np
import torch
from PIL import Image

__all__ = [
    "FeatureStore",
    "cached_rows",
    "feature_settings",
    "image_digest",
    "memory_location",
    "open_store",
    "state_digest",
]

#: Version of the cache layout; part of every settings key.
_CACHE_FORMAT = 1
#: Folder of the cache inside a ``memory`` location.
_CACHE_DIR = "skmedimg_cnn_features"


def state_digest(module):
    """Digest of a module's state dict: names, dtypes, shapes and values."""
    digest = hashlib.blake2b(digest_size=16)
    for name, tensor in module.state_dict().items():
        tensor = tensor.detach().cpu().contiguous().reshape(-1)
        digest.update(f"{name}\0{tensor.dtype}\0{tuple(tensor.shape)}\0".encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


# --------------------------------------------------------------------------
# The per-image feature cache
# --------------------------------------------------------------------------


def image_digest(item):
    """Content digest of one image: a file's bytes, or an array's pixels."""
    digest = hashlib.blake2b(digest_size=20)
    if isinstance(item, str):
        digest.update(b"file\0")
        with open(item, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    elif isinstance(item, Image.Image):
        digest.update(f"pil\0{item.mode}\0{item.size}\0".encode())
        digest.update(item.tobytes())
    else:
        arr = np.ascontiguousarray(item)
        digest.update(f"array\0{arr.dtype.str}\0{arr.shape}\0".encode())
        digest.update(memoryview(arr).cast("B"))
    return digest.hexdigest()


class FeatureStore:
    """Feature rows on disk, one ``.npy`` file per image, under one settings key.

    Writers write a temporary file and rename it into place (``os.replace``
    is atomic), so concurrent writers (GridSearchCV with ``n_jobs``) and
    readers never see a partial row; a row that cannot be read is a miss.
    """

    def __init__(self, location, settings, n_features):
        key = hashlib.blake2b(
            json.dumps(settings, sort_keys=True).encode(), digest_size=16
        ).hexdigest()
        self.root = Path(os.path.expanduser(os.fspath(location))) / _CACHE_DIR / key
        self.settings = settings
        self.n_features = n_features

    def _path(self, key):
        return self.root / key[:2] / f"{key}.npy"

    def get(self, key):
        try:
            row = np.load(self._path(key), allow_pickle=False)
        except (OSError, ValueError, EOFError):
            return None
        if row.shape != (self.n_features,) or row.dtype != np.float32:
            return None
        return row

    def put(self, key, row):
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        info = self.root / "settings.json"
        if not info.exists():
            self._write(info, lambda fh: fh.write(json.dumps(self.settings).encode()))
        self._write(path, lambda fh: np.save(fh, row, allow_pickle=False))

    @staticmethod
    def _write(path, write):
        tmp = path.with_name(
            f".{path.name}.{os.getpid()}.{threading.get_ident()}.{uuid.uuid4().hex}"
        )
        try:
            with open(tmp, "wb") as fh:
                write(fh)
            os.replace(tmp, path)
        finally:
            if tmp.exists():
                tmp.unlink()


def cached_rows(store, keys, compute):
    """Feature rows of the images named by ``keys``, from ``store`` or computed.

    Parameters
    ----------
    store : FeatureStore
        The cache.
    keys : list of str
        One content digest per image (:func:`image_digest`).
    compute : callable
        ``compute(indices)`` returns the rows ``(len(indices), n_features)``
        of the images at ``indices``; it is called once, with the first image
        of each missing content (duplicates are computed once).

    Returns
    -------
    rows : ndarray of shape (len(keys), n_features)
        float32 rows, in the order of ``keys``; the computed ones are stored.
    """
    out = np.empty((len(keys), store.n_features), dtype=np.float32)
    missing = {}  # key -> indices of the images with that content
    for i, key in enumerate(keys):
        row = store.get(key)
        if row is None:
            missing.setdefault(key, []).append(i)
        else:
            out[i] = row
    if missing:
        first = np.array([idx[0] for idx in missing.values()], dtype=np.intp)
        rows = np.asarray(compute(first), dtype=np.float32)
        for (key, idx), row in zip(missing.items(), rows, strict=True):
            out[idx] = row
            store.put(key, row)
    return out


def memory_location(memory):
    """Return the folder of a ``memory`` parameter, or None for no cache.

    Parameters
    ----------
    memory : str, path-like, joblib.Memory or None
        A folder, or an object with a ``location`` (a :class:`joblib.Memory`;
        ``location=None`` means no caching).

    Returns
    -------
    location : str or None
        The folder, with ``~`` expanded.
    """
    if memory is None:
        return None
    if isinstance(memory, str | os.PathLike):
        location = os.fspath(memory)
    else:
        location = getattr(memory, "location", None)
    return None if location is None else os.path.expanduser(os.fspath(location))


def feature_settings(model_name, network, image_size, device, amp_dtype, **extra):
    """Describe the features ``network`` computes, to key their cache.

    Parameters
    ----------
    model_name : str
        The timm model name.
    network : torch.nn.Module
        The module whose weights compute the features (digested).
    image_size : tuple of int
        ``(height, width)`` of the images fed to it.
    device : torch.device
        Where the features are computed (its type is recorded).
    amp_dtype : torch.dtype or None
        The autocast dtype.
    **extra : dict
        Settings particular to the estimator (layer, pooling, timm options).

    Returns
    -------
    settings : dict
        JSON-ready; with the library versions and the cache format.
    """
    import timm

    return {
        "format": _CACHE_FORMAT,
        "model_name": model_name,
        "weights": state_digest(network),
        "image_size": list(image_size),
        "device": torch.device(device).type,
        "precision": str(amp_dtype),
        "timm": timm.__version__,
        "torch": torch.__version__,
        **extra,
    }


def open_store(memory, settings, n_features):
    """Open the cache of ``settings`` in ``memory``'s folder (None without one).

    Parameters
    ----------
    memory : str, path-like, joblib.Memory or None
        The estimator's ``memory`` parameter.
    settings : dict or None
        From :func:`feature_settings`; None gives None.
    n_features : int
        Width of a row.

    Returns
    -------
    store : FeatureStore or None
    """
    location = memory_location(memory)
    if location is None or settings is None:
        return None
    return FeatureStore(location, settings, n_features)
