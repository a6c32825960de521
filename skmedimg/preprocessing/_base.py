"""Shared pieces of the preprocessing steps: the image-sampler base and checks."""

from __future__ import annotations

import os
from dataclasses import fields
from numbers import Integral

import numpy as np
from imblearn.base import SamplerMixin
from imblearn.utils._tags import SamplerTags, Tags
from PIL import Image
from sklearn.base import BaseEstimator, _fit_context
from sklearn.utils import _safe_indexing
from sklearn.utils.validation import _num_samples, check_consistent_length

from ..utils import check_size as _check_size


def _check_y_length(X, y):
    """Raise if ``y`` has not one label per image (cheap: nothing is decoded)."""
    if y is None or isinstance(X, str | os.PathLike | Image.Image):
        return  # a single image: check_images raises the clear error later
    try:
        n_samples = _num_samples(X)
    except TypeError:
        return  # not a sequence: check_images raises the clear error later
    check_consistent_length(np.empty(n_samples), y)


class _BaseImageSampler(SamplerMixin, BaseEstimator):
    """Base of the samplers that take images (paths, arrays, PIL images).

    Subclasses implement ``_select(X, y)`` returning the indices of the samples to
    keep (in order, possibly repeated). ``fit_resample`` returns ``X`` and ``y``
    indexed by them, in the container kind they came in (list, array, pandas).

    imbalanced-learn's own samplers validate ``X`` as a 2-D feature matrix, so
    this base replaces their ``fit``/``fit_resample`` while keeping their
    ``SamplerMixin`` (which marks the step as a sampler for imbalanced-learn's
    ``Pipeline``) and their tags.
    """

    # Whether ``fit_resample`` needs ``y`` (class balancing) or accepts None.
    _requires_y = False

    @_fit_context(prefer_skip_nested_validation=True)
    def fit_resample(self, X, y=None):
        """Select the samples to keep and return them.

        Parameters
        ----------
        X : array-like of shape (n_samples,) or ndarray of shape \
(n_samples, height, width[, n_channels])
            Images: file paths, PIL images or arrays, with the sample axis first.
        y : array-like of shape (n_samples,), default=None
            Labels, resampled with ``X``.

        Returns
        -------
        X_resampled : same kind as X
            The kept images, in the container ``X`` came in (a list stays a list,
            an array an array, a pandas Series a Series).
        y_resampled : same kind as y, or None
            The labels of the kept images; ``None`` when ``y`` is None.
        """
        if y is None and self._requires_y:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y "
                "is None."
            )
        _check_y_length(X, y)
        indices = np.asarray(self._select(X, y), dtype=np.intp)
        self.sample_indices_ = indices
        X_res = _safe_indexing(X, indices)
        y_res = None if y is None else _safe_indexing(y, indices)
        return X_res, y_res

    def fit(self, X, y=None):
        """Run :meth:`fit_resample` and discard its output.

        Prefer :meth:`fit_resample`, which is what imbalanced-learn's
        ``Pipeline`` calls.

        Parameters
        ----------
        X : array-like of shape (n_samples,) or ndarray of shape \
(n_samples, height, width[, n_channels])
            Images: file paths, PIL images or arrays, with the sample axis first.
        y : array-like of shape (n_samples,), default=None
            Labels.

        Returns
        -------
        self : object
            The fitted sampler.
        """
        self.fit_resample(X, y)
        return self

    def _fit_resample(self, X, y):
        # Abstract in imblearn's SamplerMixin; unused since fit_resample is ours.
        indices = self._select(X, y)
        return _safe_indexing(X, indices), _safe_indexing(y, indices)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # imbalanced-learn's Tags are scikit-learn's plus ``sampler_tags``.
        tags = Tags(**{f.name: getattr(tags, f.name) for f in fields(tags)})
        tags.estimator_type = "sampler"
        tags.sampler_tags = SamplerTags(sample_indices=True)
        tags.target_tags.required = self._requires_y
        tags.input_tags.three_d_array = True
        tags.input_tags.string = True
        # ``two_d_array`` stays True although a 2-D feature matrix is not an
        # accepted input: scikit-learn runs no check at all, not even the API
        # checks, for an estimator that declares otherwise. The inapplicable
        # checks are listed, with reasons, in tests/preprocessing/checks_registry.
        return tags
