"""Explanations of fitted CNN estimators: class activation maps and overlays.

* :func:`gradcam`: Grad-CAM, Grad-CAM++ and Layer-CAM heat maps of a fitted
  :class:`~skmedimg.neural.CNNClassifier`, for the predicted or a given class.
* :func:`plot_gradcam`: a grid of images with their heat maps and true and
  predicted labels, written to a PNG.
"""

from ._gradcam import GRADCAM_METHODS, gradcam
from ._plot import plot_gradcam

__all__ = ["GRADCAM_METHODS", "gradcam", "plot_gradcam"]
