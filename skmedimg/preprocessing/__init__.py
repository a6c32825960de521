"""Image preprocessing steps: validation, size outliers, resizing, intensity, balance.

Transformers (same number of images in and out):

* :class:`ImageResizer`: any image input to a fixed-shape ``uint8`` array.
* :class:`IntensityFeatures`: intensity statistics of each image.
* :class:`IntensityKMeans`: k-means on those statistics, with
  :func:`score_n_clusters` and :func:`plot_elbow_silhouette` to choose k.

Samplers (``fit_resample``, for ``skmedimg.pipeline.make_pipeline``; they
drop or repeat images while fitting and are skipped at predict time):

* :class:`ImageValidator` (and the function :func:`validate_images`): unreadable,
  missing, empty or corrupt images.
* :class:`SizeOutlierRejector`: images of unusual height or width.
* :class:`ImageRandomOverSampler`, :class:`ImageRandomUnderSampler`: class balance.
"""

from ._balance import ImageRandomOverSampler, ImageRandomUnderSampler
from ._intensity import (
    IntensityFeatures,
    IntensityKMeans,
    plot_elbow_silhouette,
    score_n_clusters,
)
from ._outliers import SizeOutlierRejector
from ._resize import ImageResizer
from ._validate import ImageValidator, validate_images

__all__ = [
    "ImageRandomOverSampler",
    "ImageRandomUnderSampler",
    "ImageResizer",
    "ImageValidator",
    "IntensityFeatures",
    "IntensityKMeans",
    "SizeOutlierRejector",
    "plot_elbow_silhouette",
    "score_n_clusters",
    "validate_images",
]
