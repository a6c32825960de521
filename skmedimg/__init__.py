"""skmedimg: medical image classification as scikit-learn estimators.

The subpackages are imported on first use (PEP 562), so ``import skmedimg``
stays light and never imports torch:

* :mod:`skmedimg.datasets`: image folders, MedMNIST files and synthetic phantoms.
* :mod:`skmedimg.preprocessing`: validation, size outliers, resizing, intensity
  features and k-means, class balancing.
* :mod:`skmedimg.pipeline`: imbalanced-learn's pipeline, in which samplers may
  drop samples while fitting.
* :mod:`skmedimg.neural`: CNN estimators over timm backbones (imports torch).
* :mod:`skmedimg.inspection`: Grad-CAM maps and their plots (imports torch).
* :mod:`skmedimg.ensemble`: score-weighted soft voting.
* :mod:`skmedimg.metrics`: the clinical report and its plots.
* :mod:`skmedimg.app`: the upload-and-predict web page (the ``app`` extra).
* :mod:`skmedimg.segmentation`: 2-D and 3-D segmentation over MONAI networks
  (imports torch and MONAI).
* :mod:`skmedimg.utils`: the image reader and input validation.
"""

import importlib

from ._version import __version__

_SUBMODULES = [
    "app",
    "datasets",
    "ensemble",
    "inspection",
    "metrics",
    "neural",
    "pipeline",
    "preprocessing",
    "segmentation",
    "utils",
]

__all__ = ["__version__", *_SUBMODULES]


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'skmedimg' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
