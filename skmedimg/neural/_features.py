"""CNNFeatureExtractor: pooled backbone features as a scikit-learn transformer.

The features + SVM method of the source reports is a pipeline; see the Notes
of :class:`CNNFeatureExtractor`.
"""

from __future__ import annotations

import copy
import os
from numbers import Integral

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import HasMethods, Hidden, Interval, StrOptions
from sklearn.utils.validation import check_is_fitted
from torch import nn

from ..utils import DEPRECATED, check_images, renamed_attribute
from ..utils import check_size as _check_size
from ._backbone import create_backbone, list_stages
from ._cache import (
    cached_rows,
    feature_settings,
    image_digest,
    memory_location,
    open_store,
)
from ._data import read_chunk
from ._device import (
    loaded_precision,
    resolve_device,
    resolve_loading_device,
    resolve_precision,
)
from ._module import ImageClassifierModule, uses_channels_last
from ._random import torch_random
from ._runner import BackboneRunner

__all__ = ["CNNFeatureExtractor"]

#: Accepted values of ``global_pool``, with timm's meaning of each name.
POOLINGS = ("avg", "max", "avgmax", "catavgmax")


class _StopForward(Exception):
    """Raised by a forward hook to skip the layers after the wanted one."""


# --------------------------------------------------------------------------
# Running the backbone
# --------------------------------------------------------------------------


def _pool(features, pooling):
    """Pool a feature map ``(n, C, H, W)`` or tokens ``(n, L, C)`` to ``(n, d)``."""
    if features.ndim == 2:
        return features
    dims = (2, 3) if features.ndim == 4 else (1,)
    if pooling == "avg":
        return features.mean(dims)
    peak = features.amax(dims)
    if pooling == "max":
        return peak
    mean = features.mean(dims)
    if pooling == "avgmax":
        return 0.5 * (mean + peak)
    return torch.cat([mean, peak], dim=1)


def _forward_batch(module, images, layer, pooling):
    """Pooled features of one uint8 batch ``(n, H, W, C)`` already on the device.

    Every forward pass of :meth:`CNNFeatureExtractor.transform` goes through
    this function (the tests count the images it sees).
    """
    return _features(module, images, layer, pooling)


def _features(module, images, layer, pooling):
    x = module.preprocess(images)
    if layer is None:
        return module.backbone(x)
    captured = []

    def hook(mod, args, output):
        captured.append(output)
        raise _StopForward

    handle = module.backbone.get_submodule(layer).register_forward_hook(hook)
    try:
        module.backbone(x)
    except _StopForward:
        pass
    finally:
        handle.remove()
    if not captured:
        raise ValueError(f"layer {layer!r} did not run in the backbone's forward pass")
    output = captured[0]
    if isinstance(output, tuple | list):
        output = output[0]
    if not isinstance(output, torch.Tensor) or output.ndim not in (2, 3, 4):
        raise ValueError(
            f"layer {layer!r} does not output a feature map (n, C, H, W) or "
            f"tokens (n, L, C); got {type(output).__name__}"
        )
    return _pool(output, pooling)


def _n_features_out(module, image_size, layer, pooling):
    """Count the output features with a shape-only pass on the meta device.

    A copy of the module on PyTorch's ``meta`` device computes shapes and no
    values, so no real image runs through the backbone (a real first pass
    can take a second on a CPU while oneDNN prepares its kernels); it also
    checks that ``layer`` runs.
    """
    meta = copy.deepcopy(module).to("meta")
    blank = torch.zeros((1, *image_size, 3), dtype=torch.uint8, device="meta")
    with torch.inference_mode():
        return int(_features(meta, blank, layer, pooling).shape[1])


def _resolve_layer(backbone, layer):
    """Return the module name of ``layer`` (a stage index or a name), or None."""
    if layer is None:
        return None
    stages = list_stages(backbone)
    if isinstance(layer, Integral) and not isinstance(layer, bool):
        if not -len(stages) <= layer < len(stages):
            raise ValueError(
                f"layer={layer} is out of range: the backbone has {len(stages)} "
                f"stages ({', '.join(stages)}); use 0 to {len(stages) - 1}, a "
                "negative index, or a module name"
            )
        return stages[layer]
    names = {name for name, _ in backbone.named_modules() if name}
    if layer not in names:
        raise ValueError(
            f"layer {layer!r} is not a module of the backbone; its stages are "
            f"{', '.join(stages)} (any name of backbone.named_modules() works)"
        )
    return layer


# --------------------------------------------------------------------------
# The estimator
# --------------------------------------------------------------------------


class CNNFeatureExtractor(TransformerMixin, BaseEstimator):
    """Pooled features of a timm backbone, as a scikit-learn transformer.

    Turns images into a feature matrix ``(n_samples, n_features)`` for an SVM,
    logistic regression, k-NN or feature selection: the reports' "ResNet-50
    features + SVM" method as a pipeline (see the module documentation and
    the Examples). ``X`` is what :class:`CNNClassifier` takes: an image array
    or a sequence of file paths, PIL images or arrays.

    Parameters
    ----------
    model_name : str, default="tf_efficientnet_lite0"
        Any timm model name (``"resnet50"``, ``"densenet201"``,
        ``"tf_efficientnet_lite0"`` ...). The default has real ImageNet
        weights offline with the ``weights`` extra.
    pretrained : bool or str or path-like, default=True
        ``True``: ImageNet weights, searched offline first (a local file,
        timm's cache, an installed package, then timm's hub; see
        :func:`create_backbone`); never falls back silently to random
        weights. ``False``: random weights (seeded by ``random_state``). A
        path: that ``.safetensors`` / ``.pth`` file.
    global_pool : {"avg", "max", "avgmax", "catavgmax"}, default="avg"
        How the spatial feature map becomes one vector, in timm's vocabulary
        and under timm's name: average, maximum, their mean (``"avgmax"``),
        or both concatenated (``"catavgmax"``, twice the features). With
        ``layer=None`` it is passed to timm's ``create_model``.
    layer : int or str, default=None
        ``None``: the backbone's final features (what its classifier would
        see). An int: the output of that stage of timm's ``feature_info``
        (``0`` the shallowest, ``-1`` the deepest; see :func:`list_stages`),
        for less ImageNet-specific, more generic features. A str: the output
        of that module (a name from ``backbone.named_modules()``). The layers
        after it are not run.
    image_size : int or tuple (height, width), default=None
        Size the images are resized to; ``None`` takes the backbone's
        ``input_size`` from timm's data config (224 for most).
    color : {"rgb", "gray"}, default="rgb"
        How images are decoded: ``"rgb"``, three channels (gray images
        repeated); ``"gray"``, one channel (colour images converted to
        luminance), repeated to the backbone's three on the device. For gray
        scans both give the same features; ``"gray"`` decodes and copies a
        third of the bytes.
    batch_size : int, default=32
        Images per forward pass.
    device : str or torch.device, default="auto"
        ``"auto"`` uses CUDA when available, else the CPU.
    precision : {"auto", "fp32", "bf16", "fp16"}, default="auto"
        ``"auto"``: bfloat16 autocast on a GPU that computes in it natively
        (compute capability 8.0, Ampere, or newer), float32 elsewhere.
    memory : str, path-like or joblib.Memory, default=None
        Folder (or a ``joblib.Memory`` whose ``location`` is used) of an
        on-disk cache of feature rows, one per image, keyed by the image's
        content (a file's bytes, an array's pixels) and by everything that
        changes the features (architecture, a digest of the weights, layer,
        pooling, image size, device type, precision, timm and torch
        versions). Features computed once are reused by every later
        ``transform``: by all GridSearchCV candidates and by all folds that
        share images. ``None``: no cache.
    image_cache : str, path-like or None, default=None
        Folder of a cache of decoded images
        (:class:`~skmedimg.utils.ImageCache`, uint8 at ``image_size`` and
        ``color``): image files found there are not decoded again, and files
        decoded by :meth:`transform` are stored there, so repeated
        transforms, cross-validation folds and workers sharing the folder
        decode each file once. Only file paths are cached.
    decode_on_device : bool, default=False
        On CUDA, decode JPEG files with nvJPEG
        (:func:`torchvision.io.decode_jpeg`) and resize them on the device;
        other formats and refused files go through the CPU reader. Off by
        default: the pixels match the CPU reader only within JPEG decoder
        tolerance. Ignored on a CPU.
    n_jobs : int, default=None
        Threads decoding image files.
    random_state : int, RandomState instance or None, default=None
        Seeds the random weights of ``pretrained=False``. The global torch
        random state is left as it was.
    verbose : int, default=0
        ``1`` shows a progress bar over the images the backbone runs on.
    pooling : {"avg", "max", "avgmax", "catavgmax"}
        Deprecated spelling of ``global_pool``.

        .. deprecated:: 0.1
           ``pooling`` was renamed ``global_pool`` (timm's name) and will be
           removed in 0.3.

    Attributes
    ----------
    module_ : torch.nn.Module
        The backbone (``module_.backbone``, a timm model) behind the
        normalisation with timm's mean and std (``module_.preprocess``), in
        eval mode on ``device_``.
    data_config_ : dict
        timm's data config of the backbone (``mean``, ``std``,
        ``input_size`` ...).
    image_size_ : tuple (height, width)
        The size images are resized to.
    layer_ : str or None
        The module whose output is pooled; ``None`` for the final features.
    global_pool_ : str
        The pooling used (``global_pool``, or the deprecated ``pooling``).
    n_features_out_ : int
        Number of output features.
    device_ : torch.device
        The device the backbone runs on.
    weights_source_ : str
        Where the weights came from (``"random"``, ``"file:<path>"``,
        ``"timm"``, ``"package:<path>"``).

    See Also
    --------
    CNNClassifier : Fine-tune the same backbones end to end.
    create_backbone : The backbone and weights resolution.

    Notes
    -----
    *Features + SVM.* The reports fed ResNet-50 features through feature
    selection into an SVM. That is an ordinary pipeline, so ``GridSearchCV``,
    ``cross_validate`` and ``classification_report`` work unchanged, and its
    steps keep their usual names (``svc__C``, ``selectkbest__k``)::

        model = make_pipeline(
            CNNFeatureExtractor("tf_efficientnet_lite0", memory="~/.cache/skmedimg"),
            StandardScaler(),
            SelectKBest(f_classif, k=256),  # or PCA(n_components=0.95)
            SVC(kernel="linear"),
        )
        search = GridSearchCV(model, {"svc__C": [0.001, 0.01, 0.1, 1]}, cv=5)

    No convenience estimator wraps it: the pipeline is as short and more
    flexible. For probabilities (soft voting, ROC-AUC) use
    ``CalibratedClassifierCV(SVC(kernel="linear"), ensemble=False)``, which
    replaces ``SVC(probability=True)`` (deprecated in scikit-learn 1.9). With
    ``memory=`` the search runs the backbone once per image, whatever the
    number of candidates and folds. On 100 training and 50 test images per
    class of the brain tumour MRI set, ``tf_efficientnet_lite0`` features at
    160 px, a scaler and a linear SVM (``C`` chosen by 3-fold CV) reach 0.85
    test accuracy with ImageNet weights and 0.70 with random ones (about 10 s
    each on two CPU cores).

    *Inputs and the number of features.* Images have no ``n_features_in_``;
    ``fit`` only builds the backbone (and checks that ``X`` is images; the
    number of features comes from a shape-only pass on PyTorch's ``meta``
    device), so fitting is cheap and all work happens in :meth:`transform`. Images are
    decoded by :func:`skmedimg.utils.read_images` to RGB uint8 at
    ``image_size`` (gray images repeated to three channels), a few batches at
    a time, so host memory stays bounded for large sets.

    *Speed.* Batches move to the device as uint8 and are converted and
    normalised there, in channels-last layout (about twice as fast for
    EfficientNets on a CPU as well), under :func:`torch.inference_mode` and,
    on GPUs that support it, bfloat16 autocast. The output is float32.

    *The cache.* Rows are ``.npy`` files under
    ``<memory>/skmedimg_cnn_features/<settings key>/``, written to a
    temporary file and renamed into place, so concurrent writers are safe.
    Delete the folder to clear it (``joblib.Memory.clear`` does not touch
    it). Hashing costs a read of each file (cheap next to decoding it); an
    image found in the cache is not decoded at all. With ``pretrained=False``
    and ``random_state=None`` every fit draws new weights, so nothing is
    shared between fits (correct, but useless).

    *Pickling.* The backbone is pickled as a CPU state dict and rebuilt on
    load, so a fitted extractor pickled on a GPU machine loads on a CPU-only
    one (where it then runs on the CPU). The pickle is about the size of the
    weights (13 MB for ``tf_efficientnet_lite0``).

    *Determinism.* Eval mode, no randomness: the same images, weights and
    device give the same features.

    Examples
    --------
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from sklearn.svm import SVC
    >>> from skmedimg.datasets import make_phantoms
    >>> from skmedimg.neural import CNNFeatureExtractor
    >>> X, y = make_phantoms(40, n_classes=2, image_size=32, random_state=0)
    >>> extractor = CNNFeatureExtractor("test_resnet", pretrained=False,
    ...                                 image_size=32, random_state=0)
    >>> extractor.fit_transform(X).shape
    (40, 96)
    >>> extractor.get_feature_names_out()[:3]
    array(['cnn0', 'cnn1', 'cnn2'], dtype=object)
    >>> model = make_pipeline(extractor, StandardScaler(), SVC(kernel="linear"))
    >>> model.fit(X[:30], y[:30]).predict(X[30:]).shape
    (10,)
    """

    _parameter_constraints: dict = {
        "model_name": [str],
        "pretrained": ["boolean", str, os.PathLike],
        "global_pool": [StrOptions(set(POOLINGS))],
        "pooling": [StrOptions(set(POOLINGS)), Hidden(StrOptions({DEPRECATED}))],
        "layer": [Integral, str, None],
        "image_size": [Interval(Integral, 1, None, closed="left"), tuple, None],
        "color": [StrOptions({"rgb", "gray"})],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "device": [str, torch.device],
        "precision": [StrOptions({"auto", "fp32", "bf16", "fp16"})],
        "memory": [str, os.PathLike, HasMethods(["cache"]), None],
        "image_cache": [str, os.PathLike, None],
        "decode_on_device": ["boolean"],
        "n_jobs": [Integral, None],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        model_name="tf_efficientnet_lite0",
        *,
        pretrained=True,
        global_pool="avg",
        layer=None,
        image_size=None,
        color="rgb",
        batch_size=32,
        device="auto",
        precision="auto",
        memory=None,
        image_cache=None,
        decode_on_device=False,
        n_jobs=None,
        random_state=None,
        verbose=0,
        pooling=DEPRECATED,
    ):
        self.model_name = model_name
        self.pretrained = pretrained
        self.global_pool = global_pool
        self.layer = layer
        self.image_size = image_size
        self.color = color
        self.batch_size = batch_size
        self.device = device
        self.precision = precision
        self.memory = memory
        self.image_cache = image_cache
        self.decode_on_device = decode_on_device
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose
        self.pooling = pooling

    # -------------------------------------------------------------------- fit

    def _build_module(self, backbone, config, device):
        module = ImageClassifierModule(
            backbone,
            nn.Identity(),
            mean=config["mean"],
            std=config["std"],
            channels_last=uses_channels_last(device),
        )
        if not module.channels_last:
            return module.to(device).eval()
        # Channels-last weights too: the input alone converts only the first
        # convolution's output.
        return module.to(device, memory_format=torch.channels_last).eval()

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Build the backbone; ``X`` is only checked to be images.

        Parameters
        ----------
        X : array-like
            Images: an array ``(n_samples, height, width[, n_channels])``, or a
            sequence of file paths, PIL images or arrays of any size.
        y : None
            Ignored.

        Returns
        -------
        self : CNNFeatureExtractor
            The fitted extractor.
        """
        _check_size(self.image_size, "image_size")
        check_images(X)
        device = resolve_device(self.device)
        resolve_precision(self.precision, device)  # fails early on a bad choice
        seed = int(check_random_state(self.random_state).randint(2**31 - 1))
        global_pool = renamed_attribute(self, "pooling", "global_pool")
        build = {
            "model_name": self.model_name,
            "image_size": self.image_size,
            # timm's own pooling for the final features; intermediate
            # layers are pooled here (the head's pooling is never run).
            "global_pool": global_pool if self.layer is None else "avg",
        }
        with torch_random(seed, device):
            backbone, config = _create(pretrained=self.pretrained, **build)
        layer = _resolve_layer(backbone, self.layer)
        size = self.image_size or config["input_size"][1:]
        if isinstance(size, Integral):
            size = (size, size)
        self.image_size_ = tuple(int(s) for s in size)
        module = self._build_module(backbone, config, device)
        self.n_features_out_ = _n_features_out(
            module, self.image_size_, layer, global_pool
        )
        self.module_ = module
        self.data_config_ = config
        self.layer_ = layer
        self.global_pool_ = global_pool
        self.device_ = device
        self.weights_source_ = backbone.weights_source
        self._build = build
        return self

    # -------------------------------------------------------------- transform

    def _store(self, amp_dtype):
        if memory_location(self.memory) is None:
            return None  # no cache: no weights digest either
        settings = feature_settings(
            self.model_name,
            self.module_,
            self.image_size_,
            self.device_,
            amp_dtype,
            layer=self.layer_,
            pooling=self._pool,
            read={
                "color": self._color,
                "resize_mode": "stretch",
                "resample": "bilinear",
            },
        )
        return open_store(self.memory, settings, self.n_features_out_)

    def _decode(self, X, part):
        """Decode ``X[part]`` to a uint8 tensor, pinned for CUDA copies."""
        return read_chunk(
            X,
            part,
            size=self.image_size_,
            color=self._color,
            n_jobs=self.n_jobs,
            device=self.device_,
            # extractors pickled before these parameters existed
            cache=getattr(self, "image_cache", None),
            decode_on_device=getattr(self, "decode_on_device", False),
        )

    @property
    def _pool(self):
        # extractors pickled before global_pool held it as pooling
        return self.__dict__.get("global_pool_") or self.__dict__["pooling"]

    @property
    def _color(self):
        return getattr(self, "color", "rgb")  # extractors pickled before it

    def _compute(self, X, indices, amp_dtype):
        """Features of ``X[indices]``, decoding a few batches at a time.

        A thread decodes (or, for arrays, checks and copies) the next chunk of
        images while the device computes the current one (see
        :class:`~skmedimg.neural._runner.BackboneRunner`). Features stay on
        the device until the end of a chunk: the host waits for the device
        once per chunk, not once per batch.
        """
        runner = BackboneRunner(
            self.device_,
            amp_dtype,
            batch_size=int(self.batch_size),
            progress="CNN features" if self.verbose else None,
        )
        self.module_.eval()

        def forward(batch):
            return _forward_batch(self.module_, batch, self.layer_, self._pool)

        return runner.stream(X, indices, self._decode, forward, self.n_features_out_)

    def transform(self, X):
        """Pooled backbone features of images ``X``.

        Parameters
        ----------
        X : array-like
            Images, as for :meth:`fit`.

        Returns
        -------
        X_features : ndarray of shape (n_samples, n_features)
            float32 features, one row per image, in input order.

        Raises
        ------
        ImageReadError
            If any image cannot be read; the message names each one.
        """
        check_is_fitted(self)
        X = check_images(X)
        # loaded_precision: a model fitted in float16 on a GPU, unpickled on a
        # CPU, transforms in float32.
        amp_dtype = loaded_precision(self.precision, self.device_)
        store = self._store(amp_dtype)
        n_samples = len(X)
        if store is None:
            return self._compute(X, np.arange(n_samples), amp_dtype)

        keys = [image_digest(X[i]) for i in range(n_samples)]
        return cached_rows(store, keys, lambda idx: self._compute(X, idx, amp_dtype))

    def get_feature_names_out(self, input_features=None):
        """Names of the output features: ``cnn0``, ``cnn1`` ...

        Parameters
        ----------
        input_features : None
            Ignored: images have no input feature names. Present for API
            consistency.

        Returns
        -------
        feature_names_out : ndarray of str objects
            ``n_features_out_`` names.
        """
        check_is_fitted(self)
        return np.asarray(
            [f"cnn{i}" for i in range(self.n_features_out_)], dtype=object
        )

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        tags.input_tags.string = True
        # The output is float32 whatever the input: no dtype is "preserved".
        tags.transformer_tags.preserves_dtype = []
        # two_d_array stays True only so that scikit-learn's API checks run at
        # all; the checks that feed 2-D feature matrices are listed, with the
        # reason, in tests/features_checks/checks_registry.py.
        return tags

    # ---------------------------------------------------------------- pickling

    def __getstate__(self):
        state = dict(super().__getstate__())  # a copy: self.__dict__ stays
        module = state.pop("module_", None)
        if module is not None:
            state["_module_state"] = {
                key: value.detach().cpu() for key, value in module.state_dict().items()
            }
        return state

    def __setstate__(self, state):
        module_state = state.pop("_module_state", None)
        super().__setstate__(state)
        if module_state is None:
            return
        device = resolve_loading_device(self.device_, what="This CNNFeatureExtractor")
        with torch_random():  # random weights, replaced by the saved ones
            backbone, _ = _create(pretrained=False, **self._build)
        module = self._build_module(backbone, self.data_config_, device)
        module.load_state_dict(module_state)
        self.module_ = module
        self.device_ = device


def _create(*, model_name, pretrained, image_size, global_pool):
    return create_backbone(
        model_name,
        pretrained=pretrained,
        image_size=image_size,
        global_pool=global_pool,
    )
