"""Segmentation of 2-D images and 3-D volumes (this subpackage imports torch and MONAI).

* :class:`CNNSegmenter`: MONAI's U-Net, SegResNet and UNETR (and a 2-D U-Net
  with a timm encoder) as a scikit-learn estimator with sliding-window
  prediction.
* :func:`dice_score`, :data:`dice_scorer`, :func:`segmentation_report`: the
  metrics; :data:`BRATS_REGIONS` the BraTS WT/TC/ET regions of the
  Decathlon labels.
* :func:`plot_segmentation`: ground truth and prediction over the image.
* :class:`SegmentationEnsemble`: the mean of several segmenters' probability
  maps.
"""

from ._ensemble import SegmentationEnsemble
from ._metrics import BRATS_REGIONS, dice_score, dice_scorer, segmentation_report
from ._plot import plot_segmentation
from ._segmenter import CNNSegmenter

__all__ = [
    "BRATS_REGIONS",
    "CNNSegmenter",
    "SegmentationEnsemble",
    "dice_score",
    "dice_scorer",
    "plot_segmentation",
    "segmentation_report",
]
