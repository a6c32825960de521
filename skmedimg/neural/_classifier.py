"""CNNClassifier: transfer learning over timm backbones as a scikit-learn classifier.

The estimator only: its torch module is in ``_module.py``, its skorch net in
``_net.py``, the net's callbacks in ``_callbacks.py`` and the loop that runs a
backbone over images for inference in ``_runner.py``.
"""

from __future__ import annotations

import copy
import os
import time
import warnings
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, column_or_1d
from skorch.callbacks import EarlyStopping, LRScheduler
from skorch.helper import predefined_split
from torch import nn

from ..utils import (
    check_images,
    check_labels,
    read_image_sizes,
    resolve_verbose,
    reused_host_memory,
)
from ..utils import check_size as _check_size
from ._augment import AUGMENT_PRESETS, make_augment
from ._backbone import (
    create_backbone,
    create_custom_backbone,
    freeze_backbone,
    is_custom_model,
    model_label,
)
from ._cache import (
    cached_rows,
    feature_settings,
    image_digest,
    memory_location,
    open_store,
)
from ._callbacks import (  # noqa: F401  (pickles of earlier versions name them here)
    BUDGET_TRAINING_FRACTION,
    _compress_onecycle,
    _EpochMetrics,
    _EpochProgressBar,
    _TimeBudget,
    _WeightAveraging,
)
from ._data import (
    TensorBatchIterator,
    TensorDataset,
    place_on_device,
    read_chunk,
    read_training_images,
)
from ._device import (
    loaded_precision,
    resolve_device,
    resolve_loading_device,
    resolve_precision,
)
from ._device_lock import device_lock, release_cached_memory
from ._distributed import is_main_process, resolve_distributed, start_data_parallel
from ._json import from_json, jsonable
from ._linear_head import fit_logistic_head
from ._losses import FalseNegativeLoss, FocalLoss
from ._module import (  # noqa: F401  (pickles of earlier versions name them here)
    ImageClassifierModule,
    make_head,
    pooled_width,
    softmax,
    uses_channels_last,
)
from ._net import _ImageNet
from ._random import torch_random
from ._recipes import (
    PLAIN,
    RECIPE_PARAMS,
    RECIPES,
    describe,
    measure_step_cost,
    plan_recipe,
)
from ._runner import BackboneRunner

__all__ = ["CNNClassifier", "ImageClassifierModule"]

#: Prefixes of the routed ``**kwargs`` parameters and where they go.
ROUTED_PREFIXES = {
    "module": "keyword arguments of timm.create_model (drop_rate, drop_path_rate "
    "...) or of a custom model",
    "criterion": "keyword arguments of the loss (gamma, negative_class, fn_weight)",
    "optimizer": "keyword arguments of the torch optimizer (betas, eps, nesterov ...)",
    "callbacks": "parameters of the skorch callbacks (early_stopping, lr_scheduler)",
    "iterator_train": "parameters of the training batch iterator (drop_last ...)",
    "iterator_valid": "parameters of the validation / prediction batch iterator",
    "compile": "keyword arguments of torch.compile (mode, backend, dynamic ...)",
}


def _is_routed_key(key):
    """Whether ``key`` is ``<prefix>__<name>`` with a routed prefix and a name."""
    prefix, sep, rest = key.partition("__")
    return prefix in ROUTED_PREFIXES and bool(sep) and bool(rest)


#: Test-time augmentation views: the image axes (of uint8 NHWC batches) that
#: each view flips.
_TTA_VIEWS = {
    "hflip": ((), (2,)),
    "flips": ((), (2,), (1,), (1, 2)),
}

#: The predict non-linearity under its earlier name, for nets pickled by
#: earlier versions.
_softmax = softmax

_OPTIMIZERS = {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "sgd": torch.optim.SGD,
    "rmsprop": torch.optim.RMSprop,
}


_AUTO = StrOptions({"auto"})


def _is_auto(value):
    return isinstance(value, str) and value == "auto"


def _source_side(X, n_probe=64):
    """Return the larger side of the training images (up to ``n_probe`` of them).

    Arrays give it at no cost; files are asked for their size only (headers,
    no pixels). None when it cannot be told.
    """
    if isinstance(X, np.ndarray) and X.dtype != object and X.ndim >= 3:
        return int(max(X.shape[1:3]))
    n = len(X)
    if n == 0:
        return None
    picks = [X[int(i)] for i in np.linspace(0, n - 1, min(n, n_probe)).round()]
    try:
        sizes = read_image_sizes(picks)
    except Exception:  # an unreadable file is reported by the reading itself
        return None
    sides = [max(int(h), int(w)) for h, w in np.asarray(sizes).reshape(-1, 2)]
    return int(np.median(sides)) if sides else None


class _NetCallbacks:
    """The ``callbacks`` parameter in a pickle: names of the net's callbacks."""

    def __init__(self, entries):
        self.entries = list(entries)


def _silent(*args, **kwargs):
    """Sink for skorch messages when ``verbose=0``."""


# --------------------------------------------------------------------------
# Frozen-backbone features
# --------------------------------------------------------------------------


def _backbone_features(module, images, runner):
    """Pooled features of decoded images, in eval mode, float32 on the CPU."""
    module.eval()
    return runner.run(images, module.features)


# --------------------------------------------------------------------------
# The estimator
# --------------------------------------------------------------------------


class CNNClassifier(ClassifierMixin, BaseEstimator):
    """Transfer learning with a timm backbone, as a scikit-learn classifier.

    A pretrained (or random) timm backbone, frozen entirely, partly or not at
    all, with a new head (optional hidden layers, dropout), trained with skorch
    on a GPU when one is present. ``X`` is images (paths, arrays, PIL images:
    anything :func:`skmedimg.utils.read_images` accepts); ``predict`` returns
    the original labels, so ``Pipeline``, ``GridSearchCV``, ``cross_validate``,
    ``VotingClassifier(voting="soft")`` and ``classification_report`` work as
    with any scikit-learn classifier.

    Parameters
    ----------
    model_name : str, torch.nn.Module subclass or callable, \
default="tf_efficientnet_lite0"
        Any timm model name: ``"resnet50"``, ``"vgg16"``, ``"vgg19"``,
        ``"inception_v3"``, ``"efficientnet_b0"``, ``"efficientnet_b2"``,
        ``"efficientnetv2_rw_s"``, ``"densenet201"``,
        ``"mobilenetv3_small_100"``, ``"tf_efficientnet_lite0"`` ... The
        default has real ImageNet weights offline with the ``weights`` extra.
        Or a network of your own, as skorch takes one: a module class or a
        function returning a module, called with the ``module__<name>``
        parameters (and nothing else) in every fit. Its ``forward`` maps a
        normalised float batch ``(n_samples, n_channels, height, width)`` to
        pooled features ``(n_samples, n_features)``, as a timm model with
        ``num_classes=0`` does; the head (``head``, ``dropout``) is added.
        It takes 3 channels unless it has an ``in_chans`` attribute (or gets
        ``module__in_chans``); it runs at ``image_size``, else at its
        ``input_size`` attribute, else at the size of an image array ``X``;
        mean and std are 0.5 per channel unless it has a timm-style
        ``pretrained_cfg`` dict. ``pretrained`` must be ``False`` or a
        state-dict file. See :func:`create_custom_backbone`; such a model is
        saved with pickle or joblib, not :func:`save_model`.
    pretrained : bool or str or path-like, default=True
        ``True``: ImageNet weights, searched offline first (a local file,
        timm's cache, an installed package, then timm's hub; see
        :func:`create_backbone`). ``False``: random weights. A path: that
        ``.safetensors`` / ``.pth`` file. Never falls back silently to random
        weights.
    recipe : {"auto", "fine-tune", "linear-probe", "report"} or None, \
default="auto"
        How to train, in one word: the values of the training parameters
        left at ``"auto"`` (``freeze``, ``optimizer``, ``lr``,
        ``weight_decay``, ``max_epochs``, ``lr_schedule``,
        ``label_smoothing``, ``augment``, ``early_stopping``,
        ``image_size``); a parameter you set is always kept.
        ``"fine-tune"``: every weight trains, AdamW, one-cycle schedule
        peaking at ``lr=1e-3``, weight decay 0.05, label smoothing 0.1, the
        ``"standard"`` augmentation, 12-40 epochs (about 70,000 image
        presentations): the most accurate recipe, made for GPUs.
        ``"linear-probe"``: frozen backbone run once, a linear head trained
        60 epochs (AdamW, cosine): the cheapest. ``"report"``: the source
        reports' ResNet-50 settings (Adam 1e-4, ReduceLROnPlateau, early
        stopping after 5 epochs, ``"light"`` augmentation, up to 50 epochs).
        ``"auto"``: ``"fine-tune"`` at the largest input size (224, 192, 160,
        128 or 96 px, never above 4 times the images' own size) that leaves
        at least 6 epochs in ``time_budget``, measured on this device with a
        few steps of the model; else ``"linear-probe"``. With
        ``freeze="backbone"`` it is ``"linear-probe"``. ``None``: the plain
        values (full fine-tuning, constant-rate Adam at 1e-3, no
        augmentation, 10 epochs). What a fit chose is in ``recipe_``,
        ``recipe_params_`` and ``recipe_reason_`` (printed with
        ``verbose=1``). See :func:`skmedimg.neural.plan_recipe`.
    time_budget : float or None, default=None
        Seconds ``recipe="auto"`` may plan for the fit; ``None``: 0.18 s
        per training image and at least 3 minutes (15 minutes for 5,000
        images). The plan is an estimate from a measured training step;
        the reason and the estimate are in ``recipe_reason_``. When the
        epochs of a planned fine-tune run slower than measured (another job
        took the device), training stops after the epochs that end within
        90 % of the budget (counted from the start of ``fit``; at least one
        more), the one-cycle schedule compressed to end there, and
        ``recipe_reason_`` says so; a ``max_epochs`` you give is never cut.
    freeze : {"none", "backbone", "auto"} or int, default="auto"
        ``"backbone"`` freezes every backbone weight and keeps its BatchNorm
        statistics fixed (eval mode); only the head trains. With no
        ``augment`` the backbone then runs once per fit (see Notes).
        ``"none"`` fine-tunes everything; an int ``k`` freezes the first
        ``k`` stages of timm's ``feature_info`` (and the stem).
        ``"auto"``: the recipe's.
    head : tuple of int, default=()
        Hidden layer sizes of the head (ReLU); ``()`` is a linear head on the
        pooled features.
    dropout : float, default=0.0
        Dropout probability before every linear layer of the head.
    optimizer : {"adam", "adamw", "sgd", "rmsprop", "logreg-cv", "auto"} or \
torch optimizer class, default="auto"
        Optimizer of the trainable parameters (``"auto"``: the recipe's).
        ``"logreg-cv"`` fits a linear head on a frozen backbone as
        scikit-learn's multinomial ``LogisticRegression`` on the standardised
        pooled features, with ``C`` chosen by stratified 5-fold
        cross-validation among ``1e-4 .. 10``, in one pass and no epochs
        (``lr``, ``max_epochs`` and the schedule are not used); it needs
        ``freeze="backbone"``, ``head=()``, no augmentation, no early
        stopping and the cross-entropy loss.
    lr : float or "auto", default="auto"
        Learning rate (the peak of the one-cycle schedule).
    momentum : float, default=0.9
        Momentum of ``"sgd"`` and ``"rmsprop"``; for ``"adam"`` and
        ``"adamw"`` it is the first-moment decay ``beta1`` (whose default,
        0.9, is Adam's), as fastai does, so a grid over ``momentum`` means
        something for every optimizer. Ignored by other optimizer classes.
    weight_decay : float or "auto", default="auto"
        Weight decay (L2 for adam / sgd / rmsprop, decoupled for adamw).
    batch_size : int, default=32
        Images per batch, for training and prediction. When larger than the
        training set it is reduced to the training set size, with a warning.
        When the training images would leave a last batch of one image, that
        batch is dropped (BatchNorm cannot train on one image): each epoch
        leaves out one image, another one each epoch since the order is
        shuffled.
    max_epochs : int or "auto", default="auto"
        Maximum number of passes over the training data.
    early_stopping : int, None or "auto", default="auto"
        Patience in epochs: stop when the validation loss has not improved
        for that many epochs and restore the best weights. ``None``: no
        validation split, train ``max_epochs``.
    validation_fraction : float, default=0.1
        Fraction of the training images held out, stratified, for early
        stopping (only used when ``early_stopping`` is set).
    tta : {"hflip", "flips"} or None, default=None
        Test-time augmentation of ``predict`` and ``predict_proba`` (and what
        is built on them, ``score`` included): the probabilities are the mean
        over the image and its horizontal mirror (``"hflip"``), or over the
        image flipped horizontally, vertically and both (``"flips"``), at 2
        or 4 times the cost. The validation scores of ``history_`` are
        without it. With a frozen-backbone feature cache (``memory``),
        predictions run the backbone on every view instead of reading the
        cache.
    ema : float in (0, 1) or None, default=None
        Decay of an exponential moving average of the weights, updated after
        every optimizer step (0.999 is a common choice; the decay warms up as
        ``min(ema, (1 + t) / (10 + t))`` at step ``t``). The averaged
        weights are the model: they make the predictions, the validation
        scores of ``history_`` and the checkpoints of early stopping, while
        the training scores are those of the raw weights. It smooths the
        last epochs' noise of small or noisy training sets. ``None``: the
        weights of the last step (or of early stopping's best epoch).
    lr_schedule : {"plateau", "cosine", "onecycle", "auto"} or None, \
default="auto"
        ``"plateau"``: divide the learning rate by 5 after 2 epochs without
        improvement of the validation loss (training loss without a
        validation split), as Keras' ReduceLROnPlateau with ``patience=2``
        (torch's ``patience=1``: ``callbacks__lr_scheduler__patience`` counts
        the bad epochs tolerated before the one that reduces). ``"cosine"``: cosine
        annealing to 0 over ``max_epochs``. ``"onecycle"``: the one-cycle
        policy stepped every batch (:class:`torch.optim.lr_scheduler.OneCycleLR`
        peaking at ``lr`` after 30% of the steps; momentum is not cycled, so
        ``momentum`` keeps its meaning). Tune them with
        ``callbacks__lr_scheduler__factor=...`` and the like.
    class_weight : dict, "balanced" or None, default=None
        Per-class loss weights, as in scikit-learn (keys are labels).
    loss : {"cross_entropy", "focal", "false_negative"} or torch.nn.Module, \
default="cross_entropy"
        ``"focal"`` is :class:`FocalLoss` (``criterion__gamma``, default 2).
        ``"false_negative"`` is :class:`FalseNegativeLoss` for screening: it
        penalises probability given to the negative class for diseased cases;
        name the negative class with ``criterion__negative_class=<label>``
        (default: ``classes_[0]``) and its weight with
        ``criterion__fn_weight`` (default 2). A module instance is used as
        given (``class_weight`` and ``label_smoothing`` then do not apply).
    label_smoothing : float or "auto", default="auto"
        Label smoothing of the loss.
    augment : {"flip", "light", "medium", "standard", "auto"}, BatchAugment, \
callable or None, default="auto"
        Augmentation of training batches, on the device: ``"flip"`` (h+v
        flips), ``"light"`` (h flip, rotation 10, shifts 0.05: the reports'
        ResNet-50 recipe), ``"medium"`` (flips, rotation 20, zoom 0.2, shifts
        0.2: the reports' VGG / Inception recipes), ``"standard"`` (flips,
        rotation 10, zoom 0.1, shifts 0.05: the fine-tune recipe's), a
        :class:`BatchAugment`,
        or a torchvision v2 transform applied per image (see
        ``make_augment``).
    image_size : int or tuple (height, width), None or "auto", default="auto"
        Size the images are resized to; ``None`` takes the backbone's
        ``input_size`` from timm's data config (224 for most); ``"auto"``
        the recipe's (``recipe="auto"`` lowers it to fit the time budget).
    color : {"rgb", "gray"}, default="rgb"
        How images are decoded and held. ``"rgb"``: three channels, gray
        images repeated to three. ``"gray"``: one channel (colour images are
        converted to luminance), repeated to the backbone's three channels
        only on the device, batch by batch; for scans (X-ray, MRI, CT,
        ultrasound) it gives the same model with a third of the memory for
        the decoded training set and a third of the host-to-device copies.
    device : str, default="auto"
        ``"auto"`` uses CUDA when available, else the CPU.
    precision : {"auto", "fp32", "bf16", "fp16"}, default="auto"
        ``"auto"``: bfloat16 autocast on a GPU that computes in it natively
        (compute capability 8.0, Ampere, or newer), float32 elsewhere.
    memory : str, path-like or joblib.Memory, default=None
        Folder of a per-image cache of the frozen-backbone features (used
        when ``freeze="backbone"`` and ``augment=None``). Each image's
        features are computed once and read back by every later fit and
        prediction with the same backbone, weights, image size, device type
        and precision, so the candidates and folds of a ``GridSearchCV`` that
        change only the head, optimizer or schedule run the backbone once per
        image, training and validation folds alike. The folder can be shared
        with :class:`CNNFeatureExtractor` (each keeps its own sub-folder).
    image_cache : str, path-like or None, default=None
        Folder of a cache of decoded images (:class:`~skmedimg.utils.ImageCache`:
        uint8 at ``image_size`` and ``color``, one file per image, keyed by
        the file's path, size and modification time and the reading
        settings). Image files found there are not decoded again (by ``fit``
        and ``predict``), so the
        fits of a ``GridSearchCV`` or a cross-validation, repeated runs and
        workers sharing a file system decode each file once; a large
        training set streams from it (see ``in_memory_limit``). Only file
        paths are cached. Like ``memory``, it names a folder and is not
        fitted state.
    in_memory_limit : int or None, default=4294967296
        Bytes of decoded training images (``n_samples * H * W * channels``)
        up to which ``fit`` holds them in memory as one array (4 GiB, about
        28,000 RGB images at 224 px). A larger training set is decoded a
        chunk at a time to disk (the ``image_cache`` entries, or a temporary
        file removed after the fit) and every batch is read from there when
        it is used, so host memory is bounded by the chunk and batch sizes,
        not by the number of images; training is otherwise the same, batch
        for batch. ``None`` always holds them in memory.
    decode_on_device : bool, default=False
        On CUDA, decode the JPEG files of ``fit`` with nvJPEG
        (:func:`torchvision.io.decode_jpeg`) and resize them on the device;
        other formats and files the device refuses go through the CPU reader
        (bad files are still named). Off by default: the pixels match the
        CPU reader only within JPEG decoder tolerance (a few grey levels),
        so a model trained one way and used the other sees slightly
        different inputs. Ignored on a CPU.
    n_jobs : int, default=None
        Threads decoding image files.
    compile : bool, default=False
        Compile the network with :func:`torch.compile` (in place, so
        ``net_.module_`` stays an :class:`ImageClassifierModule`) when the
        backbone runs during training; the frozen-backbone fast path, where
        only the head trains, is never compiled. ``compile__<name>`` goes to
        ``torch.compile`` (``compile__mode="max-autotune"``). It pays on a
        GPU for long fits of large backbones; the first batches wait for the
        compilation (tens of seconds, more for DenseNets) and every new batch
        shape (the last, smaller batch; prediction) compiles again, so on
        small data and on CPUs it costs more than it gives. A pickled model
        runs uncompiled after loading.
    lock_gpu : bool, default=True
        Take turns on the GPU with other processes: while ``fit`` and
        ``predict`` compute on a CUDA device they hold an exclusive lock on
        that GPU, shared by every process of the machine, so that
        ``GridSearchCV(..., n_jobs=-1)`` runs candidates one after another on
        the device (no out-of-memory errors, no thrashing) while the workers
        decode images in parallel. Decoding happens before the lock is taken.
        No effect on CPUs. See Notes.
    distributed : "auto" or bool, default="auto"
        Train this one model data-parallel over the processes started by
        ``torchrun`` (or ``accelerate launch``, or ``srun`` with torchrun's
        rendezvous), one per GPU: each process decodes only its shard of the
        training images, the network is wrapped in
        :class:`~torch.nn.parallel.DistributedDataParallel` (gradients
        averaged every step), validation scores are summed over the shards
        so early stopping and the learning-rate schedule decide alike
        everywhere, and only rank 0 prints. ``batch_size`` is the global
        batch; each process takes ``batch_size // world_size`` images per
        step. ``"auto"``: when launched with ``WORLD_SIZE`` above 1;
        ``True``: always (an error when not launched); ``False``: never. The
        frozen-backbone fast path computes the features in shards, gathers
        them and trains the head alike on every process. See
        :doc:`/distributed`.
    sync_batchnorm : bool, default=False
        In a data-parallel fit on GPUs, normalise BatchNorm layers with the
        statistics of the global batch (:class:`~torch.nn.SyncBatchNorm`,
        one more collective per layer and step) instead of each process's
        own; the fitted model holds plain BatchNorm layers again. Not
        available on CPUs; ignored outside data-parallel fits.
    random_state : int, RandomState instance or None, default=None
        Seeds the head (and a random backbone), the validation split, the
        batch order, dropout and augmentation. The global torch random state
        is left as it was.
    verbose : int or "auto", default="auto"
        ``0``: silent. ``1``: the recipe chosen, a progress bar over the
        images during the frozen backbone's feature pass, then one with one
        step per epoch showing loss and accuracy (and early stopping's
        messages). ``"auto"``: ``1`` when a person is likely watching,
        ``0`` otherwise, decided at each fit by
        :func:`skmedimg.utils.is_interactive`: ``1`` when standard error is a
        terminal or the code runs in a Jupyter / IPython kernel, ``0`` when
        it is a pipe or a file (CI, logs, pytest's capture), in joblib
        worker processes and in threads other than the main one (parallel
        ``GridSearchCV`` / ``cross_validate``).
    callbacks : list of skorch callbacks, default=None
        More skorch callbacks (``(name, callback)`` tuples or callbacks).
    **kwargs : dict
        Routed parameters, as in skorch: ``module__<name>`` goes to
        :func:`timm.create_model` (``module__drop_path_rate=0.1``), or to
        a custom ``model_name`` (``module__width=16``),
        ``criterion__<name>`` to the loss, ``optimizer__<name>`` to the
        optimizer, ``callbacks__<callback>__<name>`` to a callback
        (``callbacks__early_stopping__threshold``), ``iterator_train__`` /
        ``iterator_valid__`` to the batch iterators, ``compile__<name>`` to
        :func:`torch.compile`. They take part in
        ``get_params`` / ``set_params``, so ``clone`` and ``GridSearchCV`` see
        them.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The class labels.
    net_ : skorch.NeuralNetClassifier
        The trained skorch net; ``net_.module_`` is an
        :class:`ImageClassifierModule` (``.backbone``, ``.head``).
    history_ : dict of list
        Per epoch: ``epoch``, ``train_loss``, ``train_acc``, ``valid_loss`` and
        ``valid_acc`` (with early stopping), ``lr``, ``dur`` (seconds).
    n_epochs_ : int
        Epochs run.
    best_epoch_ : int
        The epoch (1-based) whose weights the model holds: the best validation
        loss with early stopping, else the last.
    image_size_ : tuple (height, width)
        The input size used.
    data_config_ : dict
        timm's data config of the backbone (mean, std, input size ...); for
        a custom model, the one :func:`create_custom_backbone` gives.
    device_ : torch.device
        The device the model was trained on.
    recipe_ : str or None
        The named recipe the fit used (``"fine-tune"``, ``"linear-probe"``,
        ``"report"``, or None for ``recipe=None``).
    recipe_params_ : dict
        The values the fit used for every recipe parameter (``"auto"``
        resolved; ``image_size`` as a tuple or None).
    recipe_reason_ : str
        Why: the rule's reason and estimate, in one sentence.
    weights_source_ : str
        Where the backbone's weights came from (``"random"``,
        ``"file:<path>"``, ``"timm"``, ``"package:<path>"``).

    See Also
    --------
    skmedimg.neural.create_backbone : The backbone and weights resolution.
    skmedimg.neural.save_model : Save in a format that runs no code on load.

    Notes
    -----
    *Design.* The estimator owns a skorch ``NeuralNetClassifier`` (``net_``)
    rather than inheriting from it. Composition keeps this class's parameters
    exactly the documented ones (skorch's own ``module``, ``criterion``,
    ``iterator_*`` ... are built in ``fit`` from them), lets ``predict`` return
    labels and ``predict_proba`` order columns by ``classes_`` without fighting
    skorch's index-based API, and keeps ``__init__`` free of work while skorch
    nets hold state from ``initialize``. Pickling goes through skorch's own
    mechanism, so a model trained on a GPU unpickles on a CPU-only machine.

    *Images.* Images are decoded once by :func:`skmedimg.utils.read_images`
    to uint8 ``(n_samples, height, width, 3)`` at ``image_size``; gray images
    are repeated to three channels (the rule that lets every RGB-pretrained
    backbone read them). With ``color="gray"`` they are held as
    ``(n_samples, height, width, 1)`` and repeated on the device instead.
    Batches are slices of one uint8 tensor; they are
    moved to the device as uint8 and converted, augmented and normalised
    there (mean and std from timm's data config), in channels-last layout
    (on GPUs and CPUs). Memory: ``fit`` holds the decoded training set,
    ``n_samples * H * W * 3`` bytes (7.5 GB for 50,000 images at 224 px; a
    third of that with ``color="gray"``) up to ``in_memory_limit``, and
    streams a larger one from disk (a chunk is decoded while the previous
    one is written; batches are read from disk, in a thread ahead of the
    step on CUDA);
    ``predict`` and ``predict_proba`` decode ``16 * batch_size`` images at a
    time, the next chunk in a thread while the current one runs, so a folder
    of any size can be predicted. An unreadable image stops neither: the
    rest are still read, and one :class:`~skmedimg.utils.ImageReadError`
    names every bad item with its index in ``X``.

    *Frozen-backbone fast path.* With ``freeze="backbone"`` and
    ``augment=None`` the backbone is deterministic in eval mode, so it runs
    once over the training images; the pooled features are cached and only
    the head trains for all epochs. The result is the same as running the
    frozen backbone every epoch, many times faster. ``memory`` keeps the
    features on disk, per image, for later fits and predictions.

    *Parallel search.* With ``n_jobs>1`` (``GridSearchCV``,
    ``cross_validate``) each worker process fits its own candidate. On a
    GPU the device work takes turns (``lock_gpu=True``): every worker holds
    a CUDA context (about 0.5 GB) and its candidate's weights and optimizer
    state between its turns, but only one trains at a time, and the
    allocator's cache is emptied at the end of each turn. The parallelism
    pays where decoding image files is a large part of the work; with
    images already decoded it gives little over ``n_jobs=1``. On a CPU
    joblib's default (loky) backend gives each worker ``cpu_count //
    n_jobs`` torch threads, so the cores are shared, not oversubscribed;
    with the threading backend torch's threads are shared by all workers.

    *Determinism.* The same int ``random_state`` on the same device and
    software gives the same predictions; GPUs may add nondeterminism of their
    own (cuDNN). Fits running at once in threads of one process (joblib's
    threading backend, a Dask worker with several threads) give the same
    models as one after another: torch's random generators are global to the
    process, so the threads take turns building and training their models
    (decoding still runs in parallel).

    *Sample weights.* ``fit`` takes no ``sample_weight``: weight the classes
    with ``class_weight``, or balance them with the samplers of
    :mod:`skmedimg.preprocessing` in a pipeline. ``score`` takes one, as
    every scikit-learn classifier does.

    Examples
    --------
    >>> import numpy as np
    >>> from skmedimg.neural import CNNClassifier
    >>> rng = np.random.default_rng(0)
    >>> X = rng.integers(0, 60, size=(40, 32, 32), dtype=np.uint8)
    >>> y = np.array(["benign", "malignant"] * 20)
    >>> X[y == "malignant", 8:24, 8:24] = 255  # a bright lesion
    >>> clf = CNNClassifier("test_resnet", pretrained=False, freeze="backbone",
    ...                     max_epochs=20, lr=0.01, random_state=0)
    >>> clf.fit(X, y).predict(X[:4])
    array(['benign', 'malignant', 'benign', 'malignant'], dtype='<U9')
    """

    _parameter_constraints: dict = {
        "model_name": [str, callable],
        "pretrained": ["boolean", str, os.PathLike],
        "recipe": [StrOptions({"auto", *RECIPES}), None],
        "time_budget": [Interval(Real, 0, None, closed="neither"), None],
        "freeze": [
            StrOptions({"none", "backbone", "auto"}),
            Interval(Integral, 0, None, closed="left"),
        ],
        "head": [tuple, list, None],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "optimizer": [StrOptions({*_OPTIMIZERS, "logreg-cv", "auto"}), type],
        "lr": [Interval(Real, 0, None, closed="neither"), _AUTO],
        "momentum": [Interval(Real, 0, 1, closed="left")],
        "weight_decay": [Interval(Real, 0, None, closed="left"), _AUTO],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "max_epochs": [
            Interval(Integral, 1, None, closed="left"),
            _AUTO,
        ],
        "early_stopping": [
            Interval(Integral, 1, None, closed="left"),
            None,
            _AUTO,
        ],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "ema": [Interval(Real, 0, 1, closed="neither"), None],
        "tta": [StrOptions(set(_TTA_VIEWS)), None],
        "lr_schedule": [StrOptions({"plateau", "cosine", "onecycle", "auto"}), None],
        "class_weight": [StrOptions({"balanced"}), dict, None],
        "loss": [StrOptions({"cross_entropy", "focal", "false_negative"}), nn.Module],
        "label_smoothing": [Interval(Real, 0, 1, closed="left"), _AUTO],
        "augment": [StrOptions({*AUGMENT_PRESETS, "auto"}), callable, None],
        "image_size": [
            Interval(Integral, 1, None, closed="left"),
            tuple,
            None,
            _AUTO,
        ],
        "color": [StrOptions({"rgb", "gray"})],
        "device": [str, torch.device],
        "precision": [StrOptions({"auto", "fp32", "bf16", "fp16"})],
        "memory": [str, os.PathLike, HasMethods(["cache"]), None],
        "image_cache": [str, os.PathLike, None],
        "in_memory_limit": [Interval(Integral, 0, None, closed="left"), None],
        "decode_on_device": ["boolean"],
        "n_jobs": [Integral, None],
        "compile": ["boolean"],
        "lock_gpu": ["boolean"],
        "distributed": [StrOptions({"auto"}), "boolean"],
        "sync_batchnorm": ["boolean"],
        "random_state": ["random_state"],
        "verbose": ["verbose", _AUTO],
        "callbacks": [list, None],
    }

    def __init__(
        self,
        model_name="tf_efficientnet_lite0",
        *,
        pretrained=True,
        recipe="auto",
        time_budget=None,
        freeze="auto",
        head=(),
        dropout=0.0,
        optimizer="auto",
        lr="auto",
        momentum=0.9,
        weight_decay="auto",
        batch_size=32,
        max_epochs="auto",
        early_stopping="auto",
        validation_fraction=0.1,
        ema=None,
        tta=None,
        lr_schedule="auto",
        class_weight=None,
        loss="cross_entropy",
        label_smoothing="auto",
        augment="auto",
        image_size="auto",
        color="rgb",
        device="auto",
        precision="auto",
        memory=None,
        image_cache=None,
        in_memory_limit=4 * 2**30,
        decode_on_device=False,
        n_jobs=None,
        compile=False,
        lock_gpu=True,
        distributed="auto",
        sync_batchnorm=False,
        random_state=None,
        verbose="auto",
        callbacks=None,
        **kwargs,
    ):
        self.model_name = model_name
        self.pretrained = pretrained
        self.recipe = recipe
        self.time_budget = time_budget
        self.freeze = freeze
        self.head = head
        self.dropout = dropout
        self.optimizer = optimizer
        self.lr = lr
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.ema = ema
        self.tta = tta
        self.lr_schedule = lr_schedule
        self.class_weight = class_weight
        self.loss = loss
        self.label_smoothing = label_smoothing
        self.augment = augment
        self.image_size = image_size
        self.color = color
        self.device = device
        self.precision = precision
        self.memory = memory
        self.image_cache = image_cache
        self.in_memory_limit = in_memory_limit
        self.decode_on_device = decode_on_device
        self.n_jobs = n_jobs
        self.compile = compile
        self.lock_gpu = lock_gpu
        self.distributed = distributed
        self.sync_batchnorm = sync_batchnorm
        self.random_state = random_state
        self.verbose = verbose
        self.callbacks = callbacks
        # Routed parameters are stored verbatim, as skorch does.
        vars(self).update(kwargs)

    # ----------------------------------------------------------------- params

    def _p(self, name):
        """Return the value a fit uses for a recipe parameter ("auto" resolved)."""
        resolved = self.__dict__.get("recipe_params_")
        if resolved is not None:
            return resolved[name]
        value = getattr(self, name)
        if _is_auto(value):
            raise RuntimeError(f"{name}='auto' is resolved by fit")  # pragma: no cover
        return value

    def _routed_params(self):
        """Return the ``**kwargs`` parameters (``module__x`` ...), as stored."""
        own = set(self._get_param_names())
        return {
            key: value
            for key, value in vars(self).items()
            if key not in own and not key.startswith("_") and not key.endswith("_")
        }

    def get_params(self, deep=True):
        """Get parameters for this estimator, routed ``**kwargs`` included.

        Parameters
        ----------
        deep : bool, default=True
            If True, will return the parameters for this estimator and
            contained subobjects that are estimators.

        Returns
        -------
        params : dict
            Parameter names mapped to their values.
        """
        params = super().get_params(deep=deep)
        params.update(self._routed_params())
        return params

    def set_params(self, **params):
        """Set the parameters of this estimator, routed ones included.

        Parameters
        ----------
        **params : dict
            Estimator parameters; keys starting with a routed prefix
            (``module__``, ``criterion__``, ``optimizer__``, ``callbacks__``,
            ``iterator_train__``, ``iterator_valid__``, ``compile__``) are
            stored as given.

        Returns
        -------
        self : CNNClassifier
            This estimator.
        """
        own = set(self._get_param_names())
        routed = {
            key: value
            for key, value in params.items()
            if key not in own and _is_routed_key(key)
        }
        for key, value in routed.items():
            setattr(self, key, value)
        rest = {key: value for key, value in params.items() if key not in routed}
        if rest:
            super().set_params(**rest)
        return self

    def _check_routed_params(self):
        routed = self._routed_params()
        out = {prefix: {} for prefix in ROUTED_PREFIXES}
        bad = []
        for key, value in routed.items():
            if _is_routed_key(key):
                prefix, _, rest = key.partition("__")
                out[prefix][rest] = value
            else:
                bad.append(key)
        if bad:
            known = "; ".join(f"{p}__: {d}" for p, d in ROUTED_PREFIXES.items())
            raise TypeError(
                f"CNNClassifier got unexpected parameter(s) {', '.join(sorted(bad))}. "
                f"Routed parameters start with one of these prefixes: {known}"
            )
        return out

    def _user_callback_entries(self):
        """``(name, callback, given_as_tuple)`` of each entry of ``callbacks``."""
        return [
            (*cb, True) if isinstance(cb, tuple) else (f"user_{i}", cb, False)
            for i, cb in enumerate(self.callbacks or ())
        ]

    def __getstate__(self):
        state = dict(super().__getstate__())  # may be the instance's __dict__
        net = state.get("net_")
        if net is None or not self.callbacks:
            return state
        # skorch initialises the user's callbacks in place: after fit they may
        # hold the optimizer and its state, on the GPU. The net pickles them
        # with its device-mapped attributes; pickled here again, plainly, they
        # would be written twice and would not load without CUDA. So the
        # parameter is written as the names of the net's callbacks.
        by_name = dict(net.callbacks)
        entries = self._user_callback_entries()
        if all(by_name.get(name) is cb for name, cb, _ in entries):
            state["callbacks"] = _NetCallbacks(
                [(name, as_tuple) for name, _, as_tuple in entries]
            )
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        # parameters added after a model was pickled take their defaults
        self.__dict__.setdefault("distributed", "auto")
        self.__dict__.setdefault("sync_batchnorm", False)
        net = self.__dict__.get("net_")
        if net is None:
            return
        if isinstance(self.callbacks, _NetCallbacks):
            by_name = dict(net.callbacks)
            self.callbacks = [
                (name, by_name[name]) if as_tuple else by_name[name]
                for name, as_tuple in self.callbacks.entries
            ]
        # skorch's unpickling may have moved the net to the CPU (no CUDA
        # here): make the fitted state say where the model now runs. The
        # precision is decided again for that device: GPU-only float16 falls
        # back to float32, and "auto" gives bf16 only on a GPU that computes
        # in it natively (not when a model fitted on an A100 loads on a T4).
        device = torch.device(net.device)
        if device != self.device_:
            self.device_ = device
        device = self.device_
        net.amp_dtype = loaded_precision(self.precision, device)
        net.module_.channels_last = uses_channels_last(device)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # X is a stack of images (n_samples, height, width[, n_channels]) or a
        # sequence of paths / images. two_d_array stays True only so that
        # scikit-learn's API checks run at all; the checks that feed 2-D
        # feature matrices are listed as expected failures with the reason.
        tags.input_tags.three_d_array = True
        tags.classifier_tags.poor_score = True
        return tags

    # -------------------------------------------------------------------- fit

    def _read(self, X, size):
        """The training images: a uint8 tensor, or :class:`DiskImages` if large."""
        return read_training_images(
            X,
            size=size,
            color=self.color,
            n_jobs=self.n_jobs,
            cache=self.image_cache,
            in_memory_limit=self.in_memory_limit,
            device=self.device_,
            decode_on_device=self.decode_on_device,
        )

    def _build_criterion(self, n_classes, y_enc, routed):
        kwargs = dict(routed)
        if isinstance(self.loss, nn.Module):
            if kwargs:
                raise TypeError(
                    "criterion__ parameters cannot be combined with a loss module "
                    "instance; configure the instance instead"
                )
            return copy.deepcopy(self.loss)
        weight = None
        if self.class_weight is not None:
            classes = np.arange(n_classes)
            if isinstance(self.class_weight, dict):
                unknown = set(self.class_weight) - set(self.classes_.tolist())
                if unknown:
                    raise ValueError(
                        f"class_weight has labels not in y: {sorted(map(str, unknown))}"
                        f"; the classes are {self.classes_.tolist()}"
                    )
                mapping = {
                    int(np.flatnonzero(self.classes_ == label)[0]): w
                    for label, w in self.class_weight.items()
                }
            else:
                mapping = "balanced"
            weight = torch.tensor(
                compute_class_weight(mapping, classes=classes, y=y_enc),
                dtype=torch.float32,
            )
        common = {
            "weight": weight,
            "label_smoothing": float(self._p("label_smoothing")),
        }
        if self.loss == "cross_entropy":
            return nn.CrossEntropyLoss(**common, **kwargs)
        if self.loss == "focal":
            return FocalLoss(**common, **kwargs)
        negative = kwargs.pop("negative_class", self.classes_[0])
        matches = np.flatnonzero(self.classes_ == negative)
        if not len(matches):
            raise ValueError(
                f"criterion__negative_class={negative!r} is not one of the classes "
                f"{self.classes_.tolist()}"
            )
        return FalseNegativeLoss(negative_index=int(matches[0]), **common, **kwargs)

    def _optimizer_params(self):
        name = self._p("optimizer")
        if name == "logreg-cv":
            # the head is solved, not stepped: an optimizer skorch can build
            return torch.optim.SGD, {}
        if isinstance(name, str):
            cls = _OPTIMIZERS[name]
        else:
            cls = name
        kwargs = {"weight_decay": float(self._p("weight_decay"))}
        if cls in (torch.optim.SGD, torch.optim.RMSprop):
            kwargs["momentum"] = float(self.momentum)
        elif cls in (torch.optim.Adam, torch.optim.AdamW):
            kwargs["betas"] = (float(self.momentum), 0.999)
        return cls, kwargs

    def _callbacks(self, has_valid, steps_per_epoch):
        verbose = self._verbose()
        callbacks = [("metrics", _EpochMetrics())]
        if self.ema:  # before the callbacks that read the weights
            callbacks.append(("ema", _WeightAveraging(float(self.ema))))
        if self._p("early_stopping") is not None:
            callbacks.append(
                (
                    "early_stopping",
                    EarlyStopping(
                        monitor="valid_loss",
                        patience=int(self._p("early_stopping")),
                        load_best=True,
                        sink=print if verbose else _silent,
                    ),
                )
            )
        if self._p("lr_schedule") == "plateau":
            scheduler = LRScheduler(
                policy="ReduceLROnPlateau",
                monitor="valid_loss" if has_valid else "train_loss",
                factor=0.2,
                # torch reduces after patience + 1 bad epochs, Keras after
                # patience: 1 here is Keras' patience=2 that the docs promise
                patience=1,
            )
            callbacks.append(("lr_scheduler", scheduler))
        elif self._p("lr_schedule") == "cosine":
            scheduler = LRScheduler(
                policy="CosineAnnealingLR", T_max=int(self._p("max_epochs"))
            )
            callbacks.append(("lr_scheduler", scheduler))
        elif self._p("lr_schedule") == "onecycle":
            scheduler = LRScheduler(
                policy=torch.optim.lr_scheduler.OneCycleLR,
                max_lr=float(self._p("lr")),
                total_steps=int(self._p("max_epochs")) * max(1, int(steps_per_epoch)),
                cycle_momentum=False,
                step_every="batch",
            )
            callbacks.append(("lr_scheduler", scheduler))
        deadline = getattr(self, "_deadline", None)
        if deadline is not None:
            callbacks.append(("time_budget", _TimeBudget(deadline)))
        for name, cb, _ in self._user_callback_entries():
            callbacks.append((name, cb))
        if verbose:
            callbacks.append(("progress", _EpochProgressBar()))
        return callbacks

    def _build_net(
        self,
        module,
        criterion,
        *,
        routed,
        device,
        amp_dtype,
        seed,
        batch_size,
        valid=None,
        n_train=None,
    ):
        opt_cls, opt_kwargs = self._optimizer_params()
        params = {f"optimizer__{k}": v for k, v in opt_kwargs.items()}
        drop_last = n_train is not None and n_train % batch_size == 1 and n_train > 1
        params["iterator_train__drop_last"] = drop_last
        for prefix in ("optimizer", "callbacks", "iterator_train", "iterator_valid"):
            params.update({f"{prefix}__{k}": v for k, v in routed[prefix].items()})
        drop_last = params["iterator_train__drop_last"]
        n = n_train or 0
        steps_per_epoch = n // batch_size if drop_last else -(-n // batch_size)
        return _ImageNet(
            module=module,
            criterion=criterion,
            optimizer=opt_cls,
            lr=float(self._p("lr")),
            max_epochs=int(self._p("max_epochs")),
            batch_size=int(batch_size),
            iterator_train=TensorBatchIterator,
            iterator_train__shuffle=True,
            iterator_valid=TensorBatchIterator,
            dataset=TensorDataset,
            train_split=None if valid is None else predefined_split(valid),
            callbacks=self._callbacks(valid is not None, steps_per_epoch),
            predict_nonlinearity=softmax,
            classes=list(range(len(self.classes_))),
            device=str(device),
            verbose=0,
            amp_dtype=amp_dtype,
            shuffle_seed=seed,
            **params,
        )

    def _frozen_store(self, module, amp_dtype):
        """Open the cache of this fit's frozen features (None without ``memory``)."""
        if memory_location(self.memory) is None:
            return None  # no cache: no weights digest either
        settings = feature_settings(
            model_label(self.model_name),
            module.backbone,
            self.image_size_,
            self.device_,
            amp_dtype,
            estimator="CNNClassifier",
            # timm options such as global_pool change the features, not the
            # weights
            module={
                key: repr(value)
                for key, value in sorted(self._check_routed_params()["module"].items())
            },
        )
        return open_store(self.memory, settings, pooled_width(module.backbone))

    def _frozen_features(
        self, module, images, device, amp_dtype, store, progress=False, lock=False
    ):
        """Backbone features of decoded images, per image from ``store`` if any.

        ``lock=False`` (fit): the caller holds the device lock already.
        """
        runner = BackboneRunner(
            device,
            amp_dtype,
            batch_size=max(int(self.batch_size), 64),
            lock=lock,
            # the features are the input of the head's training: autograd
            # refuses inference tensors
            inference=False,
            progress="Backbone features" if progress else None,
        )

        def compute(indices=None):
            X = images if indices is None else images[torch.from_numpy(indices)]
            return _backbone_features(module, X, runner)

        if store is None:
            return compute()
        keys = [image_digest(image) for image in images.numpy()]
        rows = cached_rows(store, keys, lambda indices: compute(indices).numpy())
        return torch.from_numpy(rows)

    def _make_module(self, backbone, config, n_classes, device):
        """Freeze the backbone and wrap it with a new head (fit and load_model)."""
        head = () if self.head is None else tuple(self.head)
        frozen = freeze_backbone(backbone, self._p("freeze"))
        head_module = make_head(
            pooled_width(backbone), head, n_classes, float(self.dropout)
        )
        return ImageClassifierModule(
            backbone,
            head_module,
            mean=config["mean"],
            std=config["std"],
            augment=make_augment(copy.deepcopy(self._p("augment"))),
            frozen=frozen,
            channels_last=uses_channels_last(device),
        )

    def _plan(self, given, backbone, config, X, amp_dtype, routed):
        """Resolve the recipe: the training parameters this fit uses."""
        n_samples = len(X)
        source_size = (
            _source_side(X)
            if self.recipe == "auto"
            and "image_size" not in given
            and not is_custom_model(self.model_name)
            else None
        )
        native = tuple(int(s) for s in config["input_size"][1:])
        cfg = getattr(backbone, "pretrained_cfg", None) or {}
        # A custom model runs at the one size it was checked at (its own, or
        # the images'): the recipe does not change it.
        fixed = is_custom_model(self.model_name) or bool(
            cfg.get("fixed_input_size", False)
            if isinstance(cfg, dict)
            else getattr(cfg, "fixed_input_size", False)
        )
        key = (
            model_label(self.model_name),
            tuple(sorted((k, repr(v)) for k, v in routed["module"].items())),
            self.color,
        )

        def step_cost(size, train):
            probe = ImageClassifierModule(
                backbone,
                make_head(pooled_width(backbone), (), 2, 0.0),
                mean=config["mean"],
                std=config["std"],
                augment=make_augment("standard") if train else None,
                channels_last=uses_channels_last(self.device_),
            )
            return measure_step_cost(
                probe,
                key,
                size,
                train,
                device=self.device_,
                amp_dtype=amp_dtype,
                batch_size=int(self.batch_size),
            )

        return plan_recipe(
            self.recipe,
            n_samples=n_samples,
            device=self.device_,
            native_size=native,
            time_budget=self.time_budget,
            given=given,
            step_cost=step_cost,
            fixed_size=fixed,
            source_size=source_size,
        )

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Train the network on images ``X`` with labels ``y``.

        Parameters
        ----------
        X : array-like
            Images: an array ``(n_samples, height, width[, n_channels])``, or a
            sequence of file paths, PIL images or arrays of any size (see
            :func:`skmedimg.utils.read_images`).
        y : array-like of shape (n_samples,)
            Class labels (strings or numbers), at least two classes.

        Returns
        -------
        self : CNNClassifier
            The fitted estimator.
        """
        # Data-parallel (distributed=...): join the process group first, so
        # that a failure anywhere stops every process (see _distributed).
        if not resolve_distributed(self.distributed):
            return self._fit(X, y)
        group = start_data_parallel(resolve_device(self.device))
        with group.guard("fit"):
            return self._fit(X, y, group=group)

    def _verbose(self):
        """Whether this fit prints: ``verbose``, and only on rank 0."""
        return bool(resolve_verbose(self.verbose)) and is_main_process()

    def _fit(self, X, y, group=None):
        """The body of :meth:`fit`; ``group``: a data-parallel fit's process group."""
        started = time.perf_counter()
        routed = self._check_routed_params()
        if not _is_auto(self.image_size):
            _check_size(self.image_size, "image_size")
        head = () if self.head is None else tuple(self.head)
        if not all(isinstance(h, Integral) and h > 0 for h in head):
            raise ValueError(
                f"head must be a tuple of positive ints, got {self.head!r}"
            )
        custom = is_custom_model(self.model_name)
        if not custom:
            self._check_channels(routed["module"].get("in_chans", 3))
        y = check_labels(column_or_1d(y, warn=True))
        check_classification_targets(y)
        X = check_images(X)
        n_samples = len(X)
        if n_samples != len(y):
            raise ValueError(
                f"X and y have different lengths: {n_samples} images and "
                f"{len(y)} labels"
            )
        encoder = LabelEncoder().fit(y)
        self.classes_ = encoder.classes_
        if len(self.classes_) < 2:
            raise ValueError(
                "CNNClassifier needs samples of at least 2 classes in y; got only "
                f"one class: {self.classes_.tolist()[0]!r}"
            )
        y_enc = encoder.transform(y)
        n_classes = len(self.classes_)

        self.device_ = resolve_device(self.device) if group is None else group.device
        release_cached_memory(self.device_)
        amp_dtype = resolve_precision(self.precision, self.device_)
        rng = check_random_state(self.random_state)
        if group is not None:  # rank 0's seed and split on every rank
            group.same_random_state(rng)
        seed = int(rng.randint(np.iinfo(np.int32).max))
        # The global torch generators are shared by the threads of a
        # process: building the model and training hold them (see
        # _random.torch_random), decoding in between does not.
        given = {
            name: getattr(self, name)
            for name in RECIPE_PARAMS
            if not (
                isinstance(getattr(self, name), str) and getattr(self, name) == "auto"
            )
        }
        self.__dict__.pop("recipe_params_", None)
        with torch_random(seed, self.device_):
            backbone, config = self._create_backbone(
                X, given.get("image_size"), routed["module"]
            )
            self.data_config_ = config
            self.weights_source_ = backbone.weights_source
            plan = self._plan(given, backbone, config, X, amp_dtype, routed)
            if group is not None:  # rank 0's measurements decide for all
                plan = group.broadcast_object(plan)
            self.recipe_ = plan["recipe"]
            self.recipe_params_ = plan["params"]
            self.recipe_reason_ = plan["reason"]
            if (
                self.recipe == "auto"
                and plan["recipe"] == "fine-tune"
                and plan["budget"]
                and "max_epochs" not in given
            ):
                # the epochs the plan chose end by then, or fewer are run
                self._deadline = started + BUDGET_TRAINING_FRACTION * plan["budget"]
            if self._verbose():
                print(describe(plan), flush=True)
            size = self._p("image_size") or config["input_size"][1:]
            if isinstance(size, Integral):
                size = (int(size), int(size))
            self.image_size_ = tuple(int(s) for s in size)
            module = self._make_module(backbone, config, n_classes, self.device_)
            self._check_logreg(routed)
            fast = self._p("freeze") == "backbone" and self._p("augment") is None
            if self.compile and not fast:
                module.compile(**routed["compile"])
            cpu_state = torch.get_rng_state()
        shards = None
        train_seed = seed
        if group is not None:
            shards, cpu_state, train_seed = self._plan_shards(
                group, y_enc, rng, seed, fast, cpu_state
            )
        # Decoding is CPU work: done before taking the GPU, so parallel
        # workers decode while another one trains.
        if shards is None:
            images = self._read(X, self.image_size_)
        else:  # this rank's shard only
            images = group.read_shard(
                lambda items: self._read(items, self.image_size_), X, shards.indices
            )
        try:
            with (
                torch_random(train_seed, self.device_, cpu_state=cpu_state),
                device_lock(self.device_, enabled=self.lock_gpu),
                reused_host_memory(self.device_),
            ):
                net = self._fit_on_device(
                    module,
                    images,
                    y_enc,
                    routed,
                    amp_dtype,
                    seed,
                    rng,
                    fast,
                    group=group,
                    shards=shards,
                )
        finally:
            self.__dict__.pop("_deadline", None)
        guard = dict(net.callbacks_).get("time_budget")
        if guard is not None and guard.stop_after_ is not None:
            self.recipe_reason_ += (
                f"; stopped after {len(net.history)} of {guard.planned_} epochs, "
                "which ran slower than measured, to stay within the time budget"
            )
        self.net_ = net
        self.history_ = _history_dict(net.history)
        self.n_epochs_ = len(net.history)
        stopper = dict(net.callbacks_).get("early_stopping")
        best = getattr(stopper, "best_epoch_", None)
        self.best_epoch_ = int(best) if best is not None else self.n_epochs_
        return self

    def _check_channels(self, in_chans, what=None):
        """The backbone's input channels must be those the images are read with."""
        what = what or f"module__in_chans={in_chans!r}"
        if in_chans not in (1, 3):
            raise ValueError(
                f"{what}: CNNClassifier reads images with "
                "1 channel (color='gray') or 3 (color='rgb')"
            )
        if in_chans == 1 and self.color != "gray":
            raise ValueError(
                f"{what} builds a backbone for one-channel images; "
                "set color='gray' so that the images are read with one channel"
            )

    def _create_backbone(self, X, image_size, module_params):
        """Build the timm or custom backbone and its data config (in fit)."""
        if not is_custom_model(self.model_name):
            return create_backbone(
                self.model_name,
                pretrained=self.pretrained,
                image_size=image_size,
                **module_params,
            )
        # One array of images of one size gives the size a custom model runs
        # at when neither image_size nor the model says.
        default_size = (
            tuple(int(s) for s in X.shape[1:3])
            if isinstance(X, np.ndarray) and X.dtype != object and X.ndim >= 3
            else None
        )
        backbone, config = create_custom_backbone(
            self.model_name,
            pretrained=self.pretrained,
            image_size=image_size,
            default_size=default_size,
            **module_params,
        )
        self._check_channels(
            config["input_size"][0],
            what=f"the custom model {model_label(self.model_name)} with "
            f"in_chans={config['input_size'][0]}",
        )
        return backbone, config

    def _plan_shards(self, group, y_enc, rng, seed, fast, cpu_state):
        """A data-parallel fit's shards, torch random state and training seed.

        The frozen-backbone fast path gathers every image's features and
        trains the head alike on every rank (rank 0's random state); a
        network that trains data-parallel gets equal shards of the training
        images (the split drawn as a one-process fit draws it), a local
        batch of ``batch_size // world_size`` and a random stream per rank.
        """
        if fast:
            shards = group.plan_shards(len(y_enc), seed, gathered=True)
            return shards, group.broadcast_object(cpu_state), seed
        group.local_batch_size(int(self.batch_size))  # divisible, or an error
        if self.sync_batchnorm:
            group.check_sync_batchnorm()
        split = None
        if self._p("early_stopping") is not None:
            split = self._split(y_enc, rng)
        shards = group.plan_shards(len(y_enc), seed, gathered=False, split=split)
        if group.rank == 0:
            return shards, cpu_state, seed
        return shards, None, (seed + group.rank) % 2**31

    def _fit_on_device(
        self,
        module,
        images,
        y_enc,
        routed,
        amp_dtype,
        seed,
        rng,
        fast,
        group=None,
        shards=None,
    ):
        """Move the module to the device, cache frozen features, train.

        In a data-parallel fit (``group``), ``images`` are this rank's shard
        (``shards``).
        """
        n_classes = len(self.classes_)
        if module.channels_last:
            # Weights in channels-last too, so that convolutions do not
            # convert them on every call.
            module = module.to(self.device_, memory_format=torch.channels_last)
        else:
            module = module.to(self.device_)
        if group is not None:  # rank 0's initial weights everywhere
            group.broadcast_module(module)
        y_t = torch.from_numpy(y_enc.astype(np.int64))
        self._frozen_cache_settings = None
        if fast:
            store = self._frozen_store(module, amp_dtype)
            if store is not None:  # predict reads the same cache
                self._frozen_cache_settings = store.settings
            data = self._frozen_features(
                module,
                images,
                self.device_,
                amp_dtype,
                store,
                progress=self._verbose(),
            )
            if group is not None:  # every image's features on every rank
                data = group.gather_rows(data, shards.indices, len(y_enc))
        else:
            data = images
        if self._p("optimizer") == "logreg-cv":
            return self._fit_logistic(module, data, y_enc, routed, amp_dtype, seed)

        parallel = group is not None and not fast
        if parallel:  # this rank's training images, then its validation ones
            n_mine = len(shards.train)
            train = TensorDataset(data[:n_mine], y_t[torch.from_numpy(shards.train)])
            valid = None
            if shards.valid is not None:
                valid = TensorDataset(
                    data[n_mine:], y_t[torch.from_numpy(shards.valid)]
                )
        elif self._p("early_stopping") is not None:
            train_idx, valid_idx = self._split(y_enc, rng)
            train = TensorDataset(data[train_idx], y_t[train_idx])
            valid = TensorDataset(data[valid_idx], y_t[valid_idx])
        else:
            train, valid = TensorDataset(data, y_t), None
        n_train = len(train)
        batch_size = int(self.batch_size)
        if parallel:  # the global batch, shared by the ranks
            batch_size = group.local_batch_size(batch_size)
        if batch_size > n_train:
            warnings.warn(
                f"batch_size={batch_size} is larger than the {n_train} training "
                f"images; using batch_size={n_train}",
                UserWarning,
                stacklevel=4,
            )
            batch_size = n_train
        train.X = place_on_device(train.X, self.device_)
        train.y = train.y.to(train.X.device)
        if valid is not None:
            valid.X = place_on_device(valid.X, self.device_)
            valid.y = valid.y.to(valid.X.device)

        criterion = self._build_criterion(n_classes, y_enc, routed["criterion"])
        net = self._build_net(
            module,
            criterion,
            routed=routed,
            device=self.device_,
            amp_dtype=amp_dtype,
            seed=seed if not parallel else (seed + group.rank) % 2**31,
            batch_size=batch_size,
            valid=valid,
            n_train=n_train,
        )
        if parallel:
            group.fit_net(net, train, sync_batchnorm=self.sync_batchnorm)
        else:
            net.fit(train, y=None)
        # The data sets (on the device, perhaps) are not needed any more;
        # skorch keeps a reference to the validation set in train_split.
        net.train_split = None
        # Nor is early stopping's copy of the best weights, which it has
        # loaded into the module: a second model on the device otherwise.
        stopper = dict(net.callbacks_).get("early_stopping")
        if stopper is not None:
            stopper.best_model_weights_ = None
        return net

    def _check_logreg(self, routed):
        """``optimizer="logreg-cv"`` needs a frozen backbone and a linear head."""
        if self._p("optimizer") != "logreg-cv":
            return
        problems = []
        if self._p("freeze") != "backbone":
            problems.append(f"freeze={self._p('freeze')!r}")
        if self.head is not None and tuple(self.head):
            problems.append(f"head={self.head!r}")
        if self._p("augment") is not None:
            problems.append(f"augment={self._p('augment')!r}")
        if self._p("early_stopping") is not None:
            problems.append(f"early_stopping={self._p('early_stopping')!r}")
        if not (isinstance(self.loss, str) and self.loss == "cross_entropy"):
            problems.append(f"loss={self.loss!r}")
        if routed["criterion"]:
            problems.append("criterion__ parameters")
        if self.ema:
            problems.append(f"ema={self.ema!r}")
        if self.callbacks:
            problems.append("callbacks")
        if problems:
            raise ValueError(
                "optimizer='logreg-cv' fits a linear head on a frozen backbone "
                "without augmentation, early stopping or a custom loss; these "
                f"parameters do not allow it: {', '.join(problems)}"
            )

    def _fit_logistic(self, module, features, y_enc, routed, amp_dtype, seed):
        """Solve the linear head as a logistic regression (``"logreg-cv"``)."""
        n_classes = len(self.classes_)
        criterion = self._build_criterion(n_classes, y_enc, routed["criterion"])
        weights = getattr(criterion, "weight", None)
        class_weight = (
            None
            if weights is None
            else {i: float(w) for i, w in enumerate(weights.tolist())}
        )
        weight, bias, C = fit_logistic_head(
            features,
            y_enc,
            n_classes,
            class_weight=class_weight,
            seed=seed,
            n_jobs=self.n_jobs,
        )
        linear = module.head[-1]
        with torch.no_grad():
            linear.weight.copy_(weight.to(linear.weight.device))
            linear.bias.copy_(bias.to(linear.bias.device))
        net = self._build_net(
            module,
            criterion,
            routed=routed,
            device=self.device_,
            amp_dtype=amp_dtype,
            seed=seed,
            batch_size=int(self.batch_size),
        )
        net.initialize()
        self.recipe_reason_ = (
            f"{self.recipe_reason_}; logistic-regression head, C={C:g} chosen by "
            "cross-validation"
        )
        return net

    def _split(self, y_enc, rng):
        indices = np.arange(len(y_enc))
        try:
            return train_test_split(
                indices,
                test_size=self.validation_fraction,
                stratify=y_enc,
                random_state=rng,
            )
        except ValueError as exc:
            raise ValueError(
                f"early_stopping needs a stratified validation split of "
                f"validation_fraction={self.validation_fraction} of the "
                f"{len(y_enc)} images, which failed: {exc}. Use more images, a "
                "larger validation_fraction, or early_stopping=None."
            ) from None

    # ------------------------------------------------------------ save / load

    def _fitted_config(self):
        """Return the fitted state as JSON types, and the module's tensors.

        :func:`~skmedimg.neural.save_model` writes both into its file;
        :meth:`_set_fitted_config` and :meth:`_load_network` restore them.
        """
        check_is_fitted(self)
        classes = self.classes_
        module = self.net_.module_
        config = {
            "classes": classes.tolist(),
            "classes_dtype": classes.dtype.str if classes.dtype != object else "object",
            "image_size": list(self.image_size_),
            "data_config": jsonable(self.data_config_),
            "weights_source": self.weights_source_,
            "history": self.history_,
            "n_epochs": self.n_epochs_,
            "best_epoch": self.best_epoch_,
            "frozen": module.frozen,
            "recipe": self.recipe_,
            "recipe_params": jsonable(self.recipe_params_),
            "recipe_reason": self.recipe_reason_,
        }
        tensors = {
            key: value.detach().to("cpu").contiguous().clone()
            for key, value in module.state_dict().items()
        }
        return config, tensors

    def _set_fitted_config(self, config):
        """Restore the fitted attributes that :meth:`_fitted_config` wrote.

        The network is built by :meth:`_load_network` afterwards. Raises
        ``KeyError``, ``TypeError`` or ``ValueError`` on a damaged
        configuration.
        """
        dtype = config["classes_dtype"]
        self.classes_ = np.array(
            config["classes"], dtype=object if dtype == "object" else np.dtype(dtype)
        )
        self.image_size_ = tuple(config["image_size"])
        data_config = from_json(config["data_config"])
        for key in ("input_size", "mean", "std"):
            if isinstance(data_config.get(key), list):
                data_config[key] = tuple(data_config[key])
        self.data_config_ = data_config
        self.weights_source_ = config["weights_source"]
        self.history_ = config["history"]
        self.n_epochs_ = config["n_epochs"]
        self.best_epoch_ = config["best_epoch"]
        if "recipe_params" in config:
            resolved = from_json(config["recipe_params"])
            self.recipe_ = config["recipe"]
            self.recipe_reason_ = config["recipe_reason"]
        else:  # written before recipes existed: every parameter was explicit
            params = self.get_params(deep=False)
            resolved = {**PLAIN, **{k: v for k, v in params.items() if k in PLAIN}}
            self.recipe_ = None
            self.recipe_reason_ = "saved before recipes existed"
        if isinstance(resolved.get("image_size"), list):
            resolved["image_size"] = tuple(resolved["image_size"])
        self.recipe_params_ = resolved
        self._check_routed_params()  # a damaged routed parameter fails here
        return self

    def _load_network(self, tensors):
        """Build the module and the net around saved weights (``load_model``).

        Raises ``RuntimeError`` when ``tensors`` do not fit the configuration.
        """
        routed = self._check_routed_params()
        device = resolve_loading_device(self.device, what="the saved model")
        self.device_ = device
        with torch_random():  # random weights, replaced by the saved ones
            backbone, _ = create_backbone(
                self.model_name,
                pretrained=False,
                image_size=self.recipe_params_["image_size"],
                **routed["module"],
            )
            module = self._make_module(
                backbone, self.data_config_, len(self.classes_), device
            )
        module.load_state_dict(tensors, strict=True)
        module.to(device)
        net = self._build_net(
            module,
            nn.CrossEntropyLoss(),
            routed=routed,
            device=device,
            amp_dtype=loaded_precision(self.precision, device),
            seed=0,
            batch_size=int(self.batch_size),
        )
        net.initialize()
        self.net_ = net
        return self

    # ---------------------------------------------------------------- predict

    def predict_proba(self, X):
        """Class probabilities of images ``X``.

        Parameters
        ----------
        X : array-like
            Images, as for :meth:`fit`.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Probabilities, columns in the order of ``classes_``.
        """
        check_is_fitted(self)
        X = check_images(X)
        device = torch.device(self.net_.device)
        tta = _TTA_VIEWS[self.tta] if getattr(self, "tta", None) else ()
        store = None if tta else self._prediction_store(device)
        lock = getattr(self, "lock_gpu", True)
        proba = np.empty((len(X), len(self.classes_)), dtype=np.float64)

        def decode(X, part):
            return read_chunk(
                X,
                part,
                size=self.image_size_,
                color=getattr(self, "color", "rgb"),  # models pickled before it
                n_jobs=self.n_jobs,
                device=device,
                cache=getattr(self, "image_cache", None),
            )

        # A few batches are decoded at a time (the next chunk in a thread
        # while this one runs), so a large folder is never held in memory
        # decoded, and one error names every unreadable image.
        module = self.net_.module_
        amp_dtype = self.net_.amp_dtype
        runner = BackboneRunner(
            device, amp_dtype, batch_size=int(self.batch_size), lock=lock
        )
        module.eval()
        module.tta = tta
        try:
            for start, images in runner.chunks(X, np.arange(len(X)), decode):
                if store is not None:  # cached frozen features: only the head runs
                    images = self._frozen_features(
                        module, images, device, amp_dtype, store, lock=lock
                    )
                part = runner.run(images, lambda batch: softmax(module(batch)))
                proba[start : start + len(part)] = part.numpy()
        finally:
            del module.tta  # back to the class default
        return proba / proba.sum(axis=1, keepdims=True)

    def _prediction_store(self, device):
        """Open the fit's frozen-feature cache if it applies to this device."""
        settings = getattr(self, "_frozen_cache_settings", None)
        if settings is None:
            return None
        if settings["device"] != device.type or settings["precision"] != str(
            self.net_.amp_dtype
        ):
            return None  # loaded elsewhere (a GPU model on a CPU, say)
        width = pooled_width(self.net_.module_.backbone)
        return open_store(self.memory, settings, width)

    def predict(self, X):
        """Predict class labels of images ``X``.

        Parameters
        ----------
        X : array-like
            Images, as for :meth:`fit`.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            Labels from ``classes_``.
        """
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]

    def predict_log_proba(self, X):
        """Log of the class probabilities of images ``X``.

        Parameters
        ----------
        X : array-like
            Images, as for :meth:`fit`.

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
            Columns in the order of ``classes_``.
        """
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))


def _history_dict(history):
    keys = ["epoch", "train_loss", "train_acc", "valid_loss", "valid_acc", "lr", "dur"]
    out = {}
    for key in keys:
        if all(key in row for row in history):
            out[key] = [row[key] for row in history]
    return out
