"""CNN estimators over timm backbones (this subpackage imports torch).

* :class:`CNNClassifier`: transfer learning with any timm backbone, as a
  scikit-learn classifier built on skorch.
* :func:`create_backbone` and the weights / freezing helpers: the one place
  that builds backbones and resolves pretrained weights, offline first.
* :func:`resolve_device`, :func:`resolve_precision`, :func:`autocast`: the one
  device / precision helper.
* :data:`RECIPES` and :func:`plan_recipe`: the named training recipes and the
  rule of ``recipe="auto"``.
* :func:`save_model` / :func:`load_model`: a safe file format (safetensors +
  JSON) that runs no code on load.

``loaded_precision``, ``resolve_loading_device``, ``torch_random``,
``resolve_distributed`` and ``start_data_parallel`` are package-internal:
the segmentation estimators share them; they are not part of the public
API. Nor are the helpers the estimators are built from (``make_augment``,
``check_model_name``, ``find_last_conv``, ``freeze_backbone``,
``keep_frozen_in_eval``, ``load_weights``): they stay importable from here,
but ``CNNClassifier``'s parameters (``augment``, ``freeze``, ``pretrained``)
and :func:`resolve_weights` are the public way.
"""

from ._augment import AUGMENT_PRESETS, BatchAugment, make_augment
from ._backbone import (
    SHIPPED_WEIGHTS,
    WeightsNotFoundError,
    check_model_name,
    create_backbone,
    create_custom_backbone,
    find_last_conv,
    freeze_backbone,
    keep_frozen_in_eval,
    list_stages,
    load_weights,
    resolve_weights,
    shipped_weights_path,
)
from ._classifier import CNNClassifier
from ._data import read_chunk
from ._device import (
    autocast,
    loaded_precision,
    resolve_device,
    resolve_loading_device,
    resolve_precision,
)
from ._distributed import (
    DistributedError,
    is_main_process,
    resolve_distributed,
    start_data_parallel,
)
from ._features import CNNFeatureExtractor
from ._losses import FalseNegativeLoss, FocalLoss
from ._module import ImageClassifierModule
from ._persist import load_model, save_model
from ._random import torch_random
from ._recipes import RECIPES, plan_recipe
from ._runner import BackboneRunner

# Package-internal (used by skmedimg.segmentation and skmedimg.inspection; not
# public API, may change without deprecation): loaded_precision,
# resolve_loading_device, torch_random, BackboneRunner, read_chunk,
# resolve_distributed, start_data_parallel.

__all__ = [
    "AUGMENT_PRESETS",
    "BatchAugment",
    "CNNClassifier",
    "CNNFeatureExtractor",
    "DistributedError",
    "FalseNegativeLoss",
    "FocalLoss",
    "ImageClassifierModule",
    "load_model",
    "plan_recipe",
    "RECIPES",
    "save_model",
    "SHIPPED_WEIGHTS",
    "WeightsNotFoundError",
    "autocast",
    "create_backbone",
    "create_custom_backbone",
    "is_main_process",
    "list_stages",
    "resolve_device",
    "resolve_precision",
    "resolve_weights",
    "shipped_weights_path",
]
