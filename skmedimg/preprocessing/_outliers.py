"""Dropping images of unusual size: the ``SizeOutlierRejector`` sampler."""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
from sklearn.utils._param_validation import Interval, StrOptions

from ..utils import read_image_sizes
from ..utils import item_name as _item_name
from ._base import _BaseImageSampler

# Scale factors that make MAD and the mean absolute deviation estimate the
# standard deviation of a normal distribution (so ``threshold`` keeps its
# meaning across methods).
_MAD_TO_STD = 1.482602218505602  # 1 / Phi^-1(3/4)
_MEANAD_TO_STD = 1.2533141373155001  # sqrt(pi / 2)
_IQR_TO_STD = 1.3489795003921634  # 2 Phi^-1(3/4)


class SizeOutlierRejector(_BaseImageSampler):
    """Drop images whose height or width is far from the training images' sizes.

    A sampler in the sense of imbalanced-learn. Sizes are read from the file
    headers, without decoding pixel data. With the default ``method="std"`` an
    image is dropped when its height or its width lies more than ``threshold``
    standard deviations from the mean of the images passed to
    :meth:`fit_resample`, the rule the source reports applied::

        outlier = (sizes > mean + threshold * std) | (sizes < mean - threshold * std)

    per axis (``std`` with ``ddof=0``), an image being dropped when either axis is
    an outlier. Robust alternatives use the median and the median absolute
    deviation (``"mad"``) or Tukey's fences on the quartiles (``"iqr"``).

    .. warning::
        At predict time imbalanced-learn's ``Pipeline`` skips samplers: images of
        any size are then passed on and predicted, never dropped. The statistics
        are computed on the data given to :meth:`fit_resample`, so inside
        cross-validation each training fold has its own.

    Parameters
    ----------
    threshold : float, default=3.0
        For ``"std"`` and ``"mad"``: how many (robust) standard deviations from
        the centre a size may lie. For ``"iqr"``: the fence multiplier ``k`` in
        ``[Q1 - k IQR, Q3 + k IQR]`` (1.5 is Tukey's "outside", 3 "far out").
    method : {"std", "mad", "iqr"}, default="std"
        ``"std"``: mean and standard deviation. ``"mad"``: median and
        ``1.4826 * MAD``, which estimates the standard deviation for normal
        data. ``"iqr"``: quartiles and interquartile range.
    n_jobs : int, default=None
        Number of threads reading headers; ``None`` means 1 and ``-1`` all
        processors.

    Attributes
    ----------
    mean_size_ : ndarray of shape (2,)
        Mean ``(height, width)`` of the training images (for every method).
    std_size_ : ndarray of shape (2,)
        Standard deviation (``ddof=0``) of ``(height, width)`` (for every method).
    lower_bound_ : ndarray of shape (2,)
        Smallest kept ``(height, width)``, as floats: sizes below are dropped.
    upper_bound_ : ndarray of shape (2,)
        Largest kept ``(height, width)``, as floats: sizes above are dropped.
    sample_indices_ : ndarray of shape (n_kept,)
        Indices of the images kept, as in imbalanced-learn's samplers.
    dropped_ : list of dict
        One ``{"index": int, "item": str, "height": int, "width": int,
        "reason": str}`` per dropped image, in input order.

    See Also
    --------
    ImageValidator : Drops unreadable images; put it before this step, since an
        unreadable header here raises :class:`~skmedimg.utils.ImageReadError`.
    skmedimg.utils.read_image_sizes : Reads the sizes.

    Notes
    -----
    When more than half the images share one size, the MAD (and, with more than a
    quarter on each side, the IQR) is zero and every other size would be an
    outlier. In that case the robust methods fall back, on that axis, to the mean
    absolute deviation around the median (scaled by ``sqrt(pi / 2)`` to estimate
    the standard deviation). If that is zero too, all sizes on that axis are
    equal and none is dropped.

    Examples
    --------
    >>> import numpy as np
    >>> from skmedimg.preprocessing import SizeOutlierRejector
    >>> X = [np.zeros((64, 64))] * 20 + [np.zeros((64, 500))]
    >>> rejector = SizeOutlierRejector(threshold=3.0)
    >>> X_kept, _ = rejector.fit_resample(X)
    >>> len(X_kept), rejector.dropped_[0]["index"], rejector.dropped_[0]["width"]
    (20, 20, 500)
    """

    _parameter_constraints: dict = {
        "threshold": [Interval(Real, 0, None, closed="neither")],
        "method": [StrOptions({"std", "mad", "iqr"})],
        "n_jobs": [Integral, None],
    }

    def __init__(self, threshold=3.0, *, method="std", n_jobs=None):
        self.threshold = threshold
        self.method = method
        self.n_jobs = n_jobs

    def _bounds(self, sizes):
        """Lower and upper kept sizes, per axis, for the chosen method."""
        t = self.threshold
        if self.method == "std":
            mean, std = sizes.mean(axis=0), sizes.std(axis=0)
            return mean - t * std, mean + t * std
        median = np.median(sizes, axis=0)
        mean_ad = np.mean(np.abs(sizes - median), axis=0) * _MEANAD_TO_STD
        if self.method == "mad":
            scale = np.median(np.abs(sizes - median), axis=0) * _MAD_TO_STD
            scale = np.where(scale > 0, scale, mean_ad)
            return median - t * scale, median + t * scale
        q1, q3 = np.percentile(sizes, [25, 75], axis=0)
        iqr = np.where(q3 > q1, q3 - q1, mean_ad * _IQR_TO_STD)
        return q1 - t * iqr, q3 + t * iqr

    def _select(self, X, y):
        sizes = read_image_sizes(X, n_jobs=self.n_jobs).astype(float)
        self.mean_size_ = sizes.mean(axis=0)
        self.std_size_ = sizes.std(axis=0)
        self.lower_bound_, self.upper_bound_ = self._bounds(sizes)
        outlier = (sizes > self.upper_bound_) | (sizes < self.lower_bound_)
        dropped = np.flatnonzero(outlier.any(axis=1))
        items = (
            X
            if isinstance(X, np.ndarray)
            else list(X.to_numpy() if hasattr(X, "to_numpy") else X)
        )
        self.dropped_ = []
        for i in dropped:
            height, width = (int(s) for s in sizes[i])
            reasons = [
                f"{name} {value} is outside [{lo:.1f}, {hi:.1f}]"
                for name, value, lo, hi, out in zip(
                    ("height", "width"),
                    (height, width),
                    self.lower_bound_,
                    self.upper_bound_,
                    outlier[i],
                    strict=True,
                )
                if out
            ]
            self.dropped_.append(
                {
                    "index": int(i),
                    "item": _item_name(items[i], int(i)),
                    "height": height,
                    "width": width,
                    "reason": " and ".join(reasons)
                    + f" (method={self.method!r}, threshold={self.threshold})",
                }
            )
        return np.flatnonzero(~outlier.any(axis=1))
