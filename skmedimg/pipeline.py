"""Pipelines whose steps may drop or add images: imbalanced-learn's ``Pipeline``.

scikit-learn's :class:`~sklearn.pipeline.Pipeline` only chains transformers, which
never change the number of samples. Steps that drop unreadable images or size
outliers, or that balance classes, are samplers (``fit_resample``), so skmedimg
uses imbalanced-learn's :class:`~imblearn.pipeline.Pipeline` and
:func:`~imblearn.pipeline.make_pipeline`, re-exported here unchanged.

While fitting, each sampler's ``fit_resample`` changes the data seen by the
following steps. At predict time samplers are skipped: every image given to
``predict`` gets a prediction, and an unreadable one makes the first step that
reads pixels raise :class:`~skmedimg.utils.ImageReadError` naming it.

Examples
--------
>>> import numpy as np
>>> from sklearn.preprocessing import FunctionTransformer
>>> from sklearn.neighbors import KNeighborsClassifier
>>> from skmedimg.pipeline import make_pipeline
>>> from skmedimg.preprocessing import ImageResizer, ImageValidator
>>> rng = np.random.default_rng(0)
>>> X = list(rng.integers(0, 256, (12, 20, 20), dtype=np.uint8))
>>> X[3] = np.full((20, 20), np.nan)  # an unusable image, dropped while fitting
>>> y = [0, 1] * 6
>>> pipe = make_pipeline(
...     ImageValidator(),
...     ImageResizer(image_size=8, color="gray"),
...     FunctionTransformer(np.reshape, kw_args={"shape": (-1, 64)}),
...     KNeighborsClassifier(n_neighbors=1),
... ).fit(X, y)
>>> pipe[-1].n_samples_fit_
11
>>> pipe.predict(X[:2]).shape
(2,)
"""

from imblearn.pipeline import Pipeline, make_pipeline

__all__ = ["Pipeline", "make_pipeline"]
