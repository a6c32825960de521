"""Class balancing for images: random over- and under-sampling."""

from __future__ import annotations

from collections.abc import Mapping
from numbers import Real

import numpy as np
from imblearn.over_sampling import RandomOverSampler
from imblearn.under_sampling import RandomUnderSampler
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import column_or_1d

from ..utils import check_images
from ._base import _BaseImageSampler


class _BaseImageBalancer(_BaseImageSampler):
    """Runs an imbalanced-learn sampler on sample indices and indexes X with them.

    imbalanced-learn's random samplers only ever select rows, so running them on
    ``np.arange(n_samples).reshape(-1, 1)`` gives the selected indices with all of
    imbalanced-learn's ``sampling_strategy`` logic, for any kind of image input.
    """

    _requires_y = True

    def _sampler(self):
        raise NotImplementedError

    def _select(self, X, y):
        n_samples = len(check_images(X, check_files=False))
        check_classification_targets(y)
        y = column_or_1d(y, warn=True)
        sampler = self._sampler()
        sampler.fit_resample(np.arange(n_samples).reshape(-1, 1), y)
        self.sampling_strategy_ = sampler.sampling_strategy_
        return sampler.sample_indices_


class ImageRandomOverSampler(_BaseImageBalancer):
    """Balance classes by repeating randomly chosen images of the smaller classes.

    The image version of imbalanced-learn's
    :class:`~imblearn.over_sampling.RandomOverSampler`, with the same
    ``sampling_strategy`` and ``random_state``: it accepts file paths, PIL images
    and image arrays of any dimension (which imbalanced-learn's samplers reject)
    and returns the resampled images in the container they came in. Nothing is
    decoded: paths are repeated, not copied.

    .. warning::
        At predict time imbalanced-learn's ``Pipeline`` skips samplers: only the
        training data of each fit is resampled, never the data predicted.

    Parameters
    ----------
    sampling_strategy : float, str, dict or callable, default="auto"
        What to resample, as in imbalanced-learn: a float (binary only: desired
        ratio of minority to majority counts), ``"minority"``, ``"not minority"``,
        ``"not majority"``, ``"all"``, ``"auto"`` (= ``"not majority"``), a dict
        ``{class: n_samples}`` or a callable ``y -> dict``.
    random_state : int, RandomState instance or None, default=None
        Seeds the choice of repeated images.

    Attributes
    ----------
    sampling_strategy_ : dict
        ``{class: number of images to add}``, from imbalanced-learn.
    sample_indices_ : ndarray of shape (n_resampled,)
        Indices of the images returned (repeats included).

    See Also
    --------
    ImageRandomUnderSampler : Balances by dropping images of larger classes.
    imblearn.over_sampling.RandomOverSampler : The sampler reused here.

    Notes
    -----
    Repeated images bring no new information: combine over-sampling with
    augmentation (the CNN estimators' ``augment``) or prefer ``class_weight``.

    Examples
    --------
    >>> import numpy as np
    >>> from skmedimg.preprocessing import ImageRandomOverSampler
    >>> X = np.zeros((6, 8, 8, 3), dtype=np.uint8)
    >>> y = np.array([0, 0, 0, 0, 1, 1])
    >>> X_res, y_res = ImageRandomOverSampler(random_state=0).fit_resample(X, y)
    >>> X_res.shape, np.bincount(y_res)
    ((8, 8, 8, 3), array([4, 4]))
    """

    _parameter_constraints: dict = {
        "sampling_strategy": [
            Interval(Real, 0, 1, closed="right"),
            StrOptions({"auto", "minority", "not minority", "not majority", "all"}),
            Mapping,
            callable,
        ],
        "random_state": ["random_state"],
    }

    def __init__(self, *, sampling_strategy="auto", random_state=None):
        self.sampling_strategy = sampling_strategy
        self.random_state = random_state

    def _sampler(self):
        return RandomOverSampler(
            sampling_strategy=self.sampling_strategy, random_state=self.random_state
        )


class ImageRandomUnderSampler(_BaseImageBalancer):
    """Balance classes by keeping a random subset of the images of larger classes.

    The image version of imbalanced-learn's
    :class:`~imblearn.under_sampling.RandomUnderSampler`, with the same
    ``sampling_strategy``, ``random_state`` and ``replacement``: it accepts file
    paths, PIL images and image arrays of any dimension (which imbalanced-learn's
    samplers reject) and returns the kept images in the container they came in.
    Nothing is decoded.

    .. warning::
        At predict time imbalanced-learn's ``Pipeline`` skips samplers: only the
        training data of each fit is resampled, never the data predicted.

    Parameters
    ----------
    sampling_strategy : float, str, dict or callable, default="auto"
        What to resample, as in imbalanced-learn: a float (binary only: desired
        ratio of minority to majority counts after resampling), ``"majority"``,
        ``"not minority"``, ``"not majority"``, ``"all"``, ``"auto"``
        (= ``"not minority"``), a dict ``{class: n_samples}`` or a callable
        ``y -> dict``.
    random_state : int, RandomState instance or None, default=None
        Seeds the choice of kept images.
    replacement : bool, default=False
        Whether to draw the kept images with replacement.

    Attributes
    ----------
    sampling_strategy_ : dict
        ``{class: number of images to keep}``, from imbalanced-learn.
    sample_indices_ : ndarray of shape (n_resampled,)
        Indices of the images kept.

    See Also
    --------
    ImageRandomOverSampler : Balances by repeating images of smaller classes.
    imblearn.under_sampling.RandomUnderSampler : The sampler reused here.

    Examples
    --------
    >>> from skmedimg.preprocessing import ImageRandomUnderSampler
    >>> paths = ["a.png", "b.png", "c.png", "d.png", "e.png"]
    >>> y = ["glioma", "glioma", "glioma", "pituitary", "pituitary"]
    >>> sampler = ImageRandomUnderSampler(random_state=0)
    >>> paths_res, y_res = sampler.fit_resample(paths, y)
    >>> len(paths_res), sorted(y_res)
    (4, ['glioma', 'glioma', 'pituitary', 'pituitary'])
    """

    _parameter_constraints: dict = {
        "sampling_strategy": [
            Interval(Real, 0, 1, closed="right"),
            StrOptions({"auto", "majority", "not minority", "not majority", "all"}),
            Mapping,
            callable,
        ],
        "random_state": ["random_state"],
        "replacement": ["boolean"],
    }

    def __init__(
        self, *, sampling_strategy="auto", random_state=None, replacement=False
    ):
        self.sampling_strategy = sampling_strategy
        self.random_state = random_state
        self.replacement = replacement

    def _sampler(self):
        return RandomUnderSampler(
            sampling_strategy=self.sampling_strategy,
            random_state=self.random_state,
            replacement=self.replacement,
        )
