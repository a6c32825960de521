"""Intensity statistics of images and k-means on them, with elbow/silhouette help."""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    ClusterMixin,
    TransformerMixin,
    _fit_context,
)
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score
from sklearn.preprocessing import StandardScaler
from sklearn.utils import Bunch
from sklearn.utils._param_validation import Hidden, Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from ..utils import (
    DEPRECATED,
    ColumnTable,
    ImageReadError,
    check_images,
    iter_image_chunks,
    renamed_argument,
    renamed_attribute,
)
from ._base import _check_size

_CHUNK = 256  # images decoded at a time: bounds memory at full resolution
_DEPRECATED_SIZE = [
    Interval(Integral, 1, None, closed="left"),
    tuple,
    None,
    Hidden(StrOptions({DEPRECATED})),
]
_CHANNELS = ("r", "g", "b")


def _check_percentiles(percentiles):
    try:
        values = np.asarray(percentiles, dtype=float)
    except (TypeError, ValueError):
        values = None
    if (
        values is None
        or values.ndim != 1
        or not np.all(np.isfinite(values))
        or np.any((values < 0) | (values > 100))
    ):
        raise ValueError(
            "percentiles must be a 1-D sequence of numbers between 0 and 100, got "
            f"{percentiles!r}"
        )
    return values


def _histograms(images):
    """Grey-level counts of uint8 images: (n_images, n_channels, 256)."""
    if isinstance(images, np.ndarray):  # stacked (n, H, W, C)
        n, _, _, c = images.shape
        flat = images.reshape(n, -1, c).transpose(0, 2, 1).reshape(n * c, -1)
        offsets = (np.arange(n * c) * 256)[:, None]
        counts = np.bincount((flat + offsets).ravel(), minlength=n * c * 256)
        return counts.reshape(n, c, 256)
    return np.stack(
        [
            np.stack(
                [
                    np.bincount(img[..., k].ravel(), minlength=256)
                    for k in range(img.shape[-1])
                ]
            )
            for img in images
        ]
    )


def _stats_from_histograms(counts, percentiles, n_bins):
    """Mean, std, percentiles and bin fractions from grey-level counts.

    ``counts`` has shape (n, 256). The statistics equal ``np.mean``, ``np.std``
    and ``np.percentile`` (linear interpolation) on the pixel values.
    """
    counts = counts.astype(np.float64)
    n_pixels = counts.sum(axis=1)
    levels = np.arange(256, dtype=np.float64)
    mean = counts @ levels / n_pixels
    std = np.sqrt((counts * (levels - mean[:, None]) ** 2).sum(axis=1) / n_pixels)
    columns = [mean, std]
    if len(percentiles):
        cdf = np.cumsum(counts, axis=1)
        position = (n_pixels[:, None] - 1) * percentiles / 100.0  # (n, P)
        below = np.floor(position)
        above = np.minimum(below + 1, n_pixels[:, None] - 1)
        # the k-th smallest value is the number of levels whose cdf is <= k
        lo = (cdf[:, None, :] <= below[:, :, None]).sum(axis=2)
        hi = (cdf[:, None, :] <= above[:, :, None]).sum(axis=2)
        columns += list((lo + (position - below) * (hi - lo)).T)
    if n_bins:
        edges = _bin_edges(n_bins)
        fractions = np.add.reduceat(counts, edges[:-1], axis=1) / n_pixels[:, None]
        columns += list(fractions.T)
    return np.column_stack(columns)


def _bin_edges(n_bins):
    return np.floor(np.linspace(0, 256, n_bins + 1)).astype(int)


def _read_chunks(X, func, *, size, color, n_jobs):
    """Read ``X`` in chunks and apply ``func`` to each, reporting all failures."""
    # Items are checked first, so that every bad one is reported at once.
    X = check_images(X, check_files=False)
    outputs, failures = [], []
    for chunk in iter_image_chunks(
        X, image_size=size, color=color, chunk_size=_CHUNK, n_jobs=n_jobs
    ):
        failures += chunk.failures
        if not failures:
            outputs.append(func(chunk.images))
    if failures:
        raise ImageReadError(failures, n_items=len(X))
    return np.concatenate(outputs)


class IntensityFeatures(TransformerMixin, BaseEstimator):
    """Intensity statistics of each image: mean, std, percentiles, histogram.

    Each image is read as ``uint8`` (see :mod:`skmedimg.utils` for the bit-depth
    rule) and summarised by its mean and standard deviation of pixel values, the
    requested percentiles and, optionally, the fraction of pixels in ``n_bins``
    equal grey-level bins. By default colour images are first converted to gray
    with the ITU-R 601-2 luma transform ``L = 0.299 R + 0.587 G + 0.114 B``; with
    ``per_channel=True`` the statistics are computed for R, G and B separately
    (gray images then give three equal sets). The transformer is stateless.

    Parameters
    ----------
    percentiles : array-like of float, default=(5, 25, 50, 75, 95)
        Percentiles in ``[0, 100]`` (linear interpolation, as ``np.percentile``).
        May be empty.
    n_bins : int, default=None
        Number of histogram bins over the grey levels 0-255 (edges rounded down
        to whole levels); each feature is the fraction of pixels in one bin.
        ``None`` adds no histogram.
    per_channel : bool, default=False
        Compute the statistics per colour channel instead of on the luma.
    image_size : int or tuple (height, width), default=None
        Downsample every image to this size first (faster on large images; the
        statistics then describe the resized images). ``None`` uses full
        resolution.
    n_jobs : int, default=None
        Number of threads decoding images; ``None`` means 1 and ``-1`` all
        processors.
    size : int or tuple (height, width)
        Deprecated spelling of ``image_size``.

        .. deprecated:: 0.1
           ``size`` was renamed ``image_size`` and will be removed in 0.3.

    See Also
    --------
    IntensityKMeans : k-means on these features.

    Notes
    -----
    The statistics are computed from each image's 256-level histogram, exactly
    (they equal ``np.mean``, ``np.std`` and ``np.percentile`` on the pixels) and in
    time linear in the number of pixels. Images are decoded 256 at a time, so
    memory stays bounded at full resolution.

    Examples
    --------
    >>> import numpy as np
    >>> from skmedimg.preprocessing import IntensityFeatures
    >>> X = np.stack([np.full((8, 8), 10), np.arange(64).reshape(8, 8)]).astype("uint8")
    >>> features = IntensityFeatures(percentiles=(50,))
    >>> features.fit_transform(X).round(2)
    array([[10.  ,  0.  , 10.  ],
           [31.5 , 18.47, 31.5 ]])
    >>> features.get_feature_names_out()
    array(['mean', 'std', 'p50'], dtype=object)
    """

    _parameter_constraints: dict = {
        "percentiles": ["array-like"],
        "n_bins": [Interval(Integral, 1, 256, closed="both"), None],
        "per_channel": ["boolean"],
        "image_size": [Interval(Integral, 1, None, closed="left"), tuple, None],
        "n_jobs": [Integral, None],
        "size": _DEPRECATED_SIZE,  # renamed in 0.1, removed in 0.3
    }

    def __init__(
        self,
        percentiles=(5, 25, 50, 75, 95),
        *,
        n_bins=None,
        per_channel=False,
        image_size=None,
        n_jobs=None,
        size=DEPRECATED,
    ):
        self.percentiles = percentiles
        self.n_bins = n_bins
        self.per_channel = per_channel
        self.image_size = image_size
        self.n_jobs = n_jobs
        self.size = size

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Validate the parameters and the input; nothing is learned.

        Parameters
        ----------
        X : array-like of shape (n_samples,) or ndarray of shape \
(n_samples, height, width[, n_channels])
            Images: file paths, PIL images or arrays, with the sample axis first.
        y : None
            Ignored.

        Returns
        -------
        self : object
            The transformer.
        """
        _check_percentiles(self.percentiles)
        _check_size(renamed_attribute(self, "size", "image_size"), "image_size")
        check_images(X)
        return self

    def transform(self, X):
        """Compute the intensity statistics of each image.

        Parameters
        ----------
        X : array-like of shape (n_samples,) or ndarray of shape \
(n_samples, height, width[, n_channels])
            Images: file paths, PIL images or arrays, with the sample axis first.

        Returns
        -------
        features : ndarray of shape (n_samples, n_features)
            ``float64`` statistics, in the order of :meth:`get_feature_names_out`.

        Raises
        ------
        ImageReadError
            If any image cannot be read; the message names each one.
        """
        check_is_fitted(self)
        self._validate_params()  # stateless: transform may come without fit
        percentiles = _check_percentiles(self.percentiles)
        n_bins = self.n_bins

        def features(images):
            counts = _histograms(images)  # (n, C, 256)
            return np.concatenate(
                [
                    _stats_from_histograms(counts[:, k], percentiles, n_bins)
                    for k in range(counts.shape[1])
                ],
                axis=1,
            )

        return _read_chunks(
            X,
            features,
            size=_check_size(
                renamed_attribute(self, "size", "image_size"), "image_size"
            ),
            color="rgb" if self.per_channel else "gray",
            n_jobs=self.n_jobs,
        )

    def get_feature_names_out(self, input_features=None):
        """Names of the features, e.g. ``mean``, ``std``, ``p25``, ``hist_0_64``.

        Parameters
        ----------
        input_features : None
            Ignored: images have no input feature names. Present for API
            consistency.

        Returns
        -------
        feature_names_out : ndarray of str objects
            With ``per_channel=True`` each name is prefixed by ``r_``, ``g_`` or
            ``b_``.
        """
        names = ["mean", "std"]
        names += [f"p{p:g}" for p in _check_percentiles(self.percentiles)]
        if self.n_bins:
            edges = _bin_edges(self.n_bins)
            names += [
                f"hist_{a}_{b}" for a, b in zip(edges[:-1], edges[1:], strict=True)
            ]
        if self.per_channel:
            names = [f"{c}_{name}" for c in _CHANNELS for name in names]
        return np.asarray(names, dtype=object)

    def __sklearn_is_fitted__(self):
        """Stateless: always fitted."""
        return True

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        tags.input_tags.three_d_array = True
        tags.input_tags.string = True
        # two_d_array stays True: see _BaseImageSampler.__sklearn_tags__.
        return tags


class IntensityKMeans(
    ClassNamePrefixFeaturesOutMixin, ClusterMixin, TransformerMixin, BaseEstimator
):
    """k-means clustering of images by their intensity statistics.

    Computes :class:`IntensityFeatures` of each image (on the luma, see there),
    standardises them (``scale=True``) and clusters them with scikit-learn's
    :class:`~sklearn.cluster.KMeans`. ``cluster_summary_`` gives, per cluster,
    the number of images and the mean and standard deviation of their mean
    intensities, the table the source reports printed. To choose ``n_clusters``
    by the elbow of the inertia and the silhouette score, see
    :func:`score_n_clusters` and :func:`plot_elbow_silhouette`.

    Parameters
    ----------
    n_clusters : int, default=8
        Number of clusters.
    percentiles : array-like of float, default=(5, 25, 50, 75, 95)
        Percentiles used as features besides the mean and the std.
    n_bins : int, default=None
        Number of grey-level histogram bins used as features (``None``: none).
    image_size : int or tuple (height, width), default=None
        Downsample the images to this size before computing the features.
    scale : bool, default=True
        Standardise each feature (zero mean, unit variance over the training
        images) before k-means, so that histogram fractions weigh as much as
        grey levels. With ``False`` k-means sees the raw features (mostly in grey
        levels, 0-255).
    init : {"k-means++", "random"}, default="k-means++"
        Initialisation, as in :class:`~sklearn.cluster.KMeans`.
    n_init : "auto" or int, default="auto"
        Number of k-means runs with different seeds, as in
        :class:`~sklearn.cluster.KMeans`.
    max_iter : int, default=300
        Maximum number of iterations of one run.
    tol : float, default=1e-4
        Convergence tolerance, as in :class:`~sklearn.cluster.KMeans`.
    random_state : int, RandomState instance or None, default=None
        Seeds the initialisation. Pass an int for reproducible clusters.
    n_jobs : int, default=None
        Number of threads decoding images; ``None`` means 1 and ``-1`` all
        processors.
    size : int or tuple (height, width)
        Deprecated spelling of ``image_size``.

        .. deprecated:: 0.1
           ``size`` was renamed ``image_size`` and will be removed in 0.3.

    Attributes
    ----------
    labels_ : ndarray of shape (n_samples,)
        Cluster of each training image.
    cluster_centers_ : ndarray of shape (n_clusters, n_features)
        Centres in the space k-means works in: the standardised features when
        ``scale=True`` (map back with ``scaler_.inverse_transform``).
    inertia_ : float
        Sum of squared distances of the training images to their centre.
    n_iter_ : int
        Number of iterations of the best run.
    cluster_summary_ : dict of ndarray
        The per-cluster table: ``"cluster"`` (id), ``"n_images"``,
        ``"intensity_mean"`` (mean over the cluster's images of their mean
        intensity) and ``"intensity_std"`` (standard deviation, ``ddof=0``, of
        those mean intensities), each of shape (n_clusters,). It prints as a
        table (and renders as one in notebooks); its ``rows()`` gives the rows
        as dicts and its ``to_frame()`` a pandas ``DataFrame`` (pandas must be
        installed), as does :meth:`cluster_table`.
    feature_names_ : ndarray of str objects
        Names of the intensity features clustered.
    scaler_ : StandardScaler or None
        The fitted scaler, ``None`` when ``scale=False``.
    kmeans_ : KMeans
        The fitted k-means.

    See Also
    --------
    IntensityFeatures : The features clustered.
    score_n_clusters : Inertia and silhouette for a range of ``n_clusters``.
    sklearn.cluster.KMeans : The clustering itself.

    Notes
    -----
    Reading the images dominates the cost; pass ``image_size`` (e.g. 128) to compute
    the features on downsampled images. k-means is deterministic given an int
    ``random_state``.

    Examples
    --------
    >>> import numpy as np
    >>> from skmedimg.preprocessing import IntensityKMeans
    >>> rng = np.random.default_rng(0)
    >>> dark = rng.integers(0, 60, (10, 16, 16), dtype=np.uint8)
    >>> bright = rng.integers(150, 256, (10, 16, 16), dtype=np.uint8)
    >>> X = np.concatenate([dark, bright])
    >>> km = IntensityKMeans(n_clusters=2, random_state=0).fit(X)
    >>> km.labels_.tolist() == [1] * 10 + [0] * 10
    True
    >>> km.predict(bright[:3]).tolist(), km.transform(bright[:3]).shape
    ([0, 0, 0], (3, 2))
    >>> km.cluster_summary_["n_images"], km.cluster_summary_["intensity_mean"].round(1)
    (array([10, 10]), array([203.2,  29.3]))
    >>> km.cluster_summary_
    Intensity clusters (2)
    cluster  n_images  intensity_mean  intensity_std
          0        10          203.19           1.43
          1        10           29.31           1.20
    """

    _parameter_constraints: dict = {
        "n_clusters": [Interval(Integral, 1, None, closed="left")],
        "percentiles": ["array-like"],
        "n_bins": [Interval(Integral, 1, 256, closed="both"), None],
        "image_size": [Interval(Integral, 1, None, closed="left"), tuple, None],
        "scale": ["boolean"],
        "init": [StrOptions({"k-means++", "random"})],
        "n_init": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "random_state": ["random_state"],
        "n_jobs": [Integral, None],
        "size": _DEPRECATED_SIZE,  # renamed in 0.1, removed in 0.3
    }

    def __init__(
        self,
        n_clusters=8,
        *,
        percentiles=(5, 25, 50, 75, 95),
        n_bins=None,
        image_size=None,
        scale=True,
        init="k-means++",
        n_init="auto",
        max_iter=300,
        tol=1e-4,
        random_state=None,
        n_jobs=None,
        size=DEPRECATED,
    ):
        self.n_clusters = n_clusters
        self.percentiles = percentiles
        self.n_bins = n_bins
        self.image_size = image_size
        self.scale = scale
        self.init = init
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.size = size

    def _feature_extractor(self):
        return IntensityFeatures(
            percentiles=self.percentiles,
            n_bins=self.n_bins,
            image_size=renamed_attribute(self, "size", "image_size", stacklevel=5),
            n_jobs=self.n_jobs,
        )

    def _make_kmeans(self, n_clusters, random_state):
        return KMeans(
            n_clusters=n_clusters,
            init=self.init,
            n_init=self.n_init,
            max_iter=self.max_iter,
            tol=self.tol,
            random_state=random_state,
        )

    def _fit_features(self, X):
        """Features of ``X`` and the fitted scaler (or None)."""
        features = self._feature_extractor().fit_transform(X)
        scaler = StandardScaler().fit(features) if self.scale else None
        return features, scaler

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Compute the intensity features of the images and cluster them.

        Parameters
        ----------
        X : array-like of shape (n_samples,) or ndarray of shape \
(n_samples, height, width[, n_channels])
            Images: file paths, PIL images or arrays, with the sample axis first.
        y : None
            Ignored.

        Returns
        -------
        self : object
            The fitted estimator.

        Raises
        ------
        ImageReadError
            If any image cannot be read; the message names each one.
        ValueError
            If there are fewer images than ``n_clusters``.
        """
        features, scaler = self._fit_features(X)
        if len(features) < self.n_clusters:
            raise ValueError(
                f"n_samples={len(features)} should be >= n_clusters={self.n_clusters}."
            )
        Z = features if scaler is None else scaler.transform(features)
        kmeans = self._make_kmeans(self.n_clusters, self.random_state).fit(Z)
        self.scaler_ = scaler
        self.kmeans_ = kmeans
        self.feature_names_ = self._feature_extractor().get_feature_names_out()
        self.labels_ = kmeans.labels_
        self.cluster_centers_ = kmeans.cluster_centers_
        self.inertia_ = float(kmeans.inertia_)
        self.n_iter_ = int(kmeans.n_iter_)
        self.cluster_summary_ = _summary(
            features[:, 0], kmeans.labels_, self.n_clusters
        )
        return self

    def _space(self, X):
        """Compute the features of ``X`` in the space k-means works in."""
        features = self._feature_extractor().fit_transform(X)
        return features if self.scaler_ is None else self.scaler_.transform(features)

    def predict(self, X):
        """Assign each image to its nearest cluster.

        Parameters
        ----------
        X : array-like of shape (n_samples,) or ndarray of shape \
(n_samples, height, width[, n_channels])
            Images: file paths, PIL images or arrays, with the sample axis first.

        Returns
        -------
        labels : ndarray of shape (n_samples,)
            Cluster ids.
        """
        check_is_fitted(self)
        return self.kmeans_.predict(self._space(X))

    def transform(self, X):
        """Distances of each image to every cluster centre.

        Parameters
        ----------
        X : array-like of shape (n_samples,) or ndarray of shape \
(n_samples, height, width[, n_channels])
            Images: file paths, PIL images or arrays, with the sample axis first.

        Returns
        -------
        distances : ndarray of shape (n_samples, n_clusters)
            Euclidean distances in the (standardised) feature space.
        """
        check_is_fitted(self)
        return self.kmeans_.transform(self._space(X))

    def score(self, X, y=None):
        """Opposite of the k-means objective (inertia) on ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples,) or ndarray of shape \
(n_samples, height, width[, n_channels])
            Images: file paths, PIL images or arrays, with the sample axis first.
        y : None
            Ignored.

        Returns
        -------
        score : float
            Minus the sum of squared distances to the nearest centre.
        """
        check_is_fitted(self)
        return float(self.kmeans_.score(self._space(X)))

    def cluster_table(self, *, as_frame=False):
        """Return ``cluster_summary_`` as a table, one row per cluster.

        Parameters
        ----------
        as_frame : bool, default=False
            Return a pandas ``DataFrame`` (pandas must be installed) instead
            of a list of dicts.

        Returns
        -------
        table : list of dict or pandas.DataFrame
            Rows with the keys ``"cluster"``, ``"n_images"``,
            ``"intensity_mean"`` and ``"intensity_std"``, as Python numbers.

        Examples
        --------
        >>> import numpy as np
        >>> from skmedimg.preprocessing import IntensityKMeans
        >>> rng = np.random.default_rng(0)
        >>> X = np.concatenate([rng.integers(0, 60, (4, 8, 8)),
        ...                     rng.integers(150, 256, (4, 8, 8))]).astype(np.uint8)
        >>> km = IntensityKMeans(n_clusters=2, random_state=0).fit(X)
        >>> [row["n_images"] for row in km.cluster_table()]
        [4, 4]
        """
        check_is_fitted(self)
        summary = ColumnTable(self.cluster_summary_)
        return summary.to_frame() if as_frame else summary.rows()

    @property
    def _n_features_out(self):
        """Number of transformed output features (one distance per cluster)."""
        return self.cluster_centers_.shape[0]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        tags.input_tags.string = True
        # two_d_array stays True: see _BaseImageSampler.__sklearn_tags__.
        return tags


def _summary(mean_intensity, labels, n_clusters):
    clusters = np.arange(n_clusters)
    n_images = np.bincount(labels, minlength=n_clusters)
    means = np.full(n_clusters, np.nan)
    stds = np.full(n_clusters, np.nan)
    for k in clusters[n_images > 0]:
        values = mean_intensity[labels == k]
        means[k], stds[k] = values.mean(), values.std()
    return ColumnTable(
        {
            "cluster": clusters,
            "n_images": n_images,
            "intensity_mean": means,
            "intensity_std": stds,
        },
        title=f"Intensity clusters ({n_clusters})",
    )


def score_n_clusters(
    X,
    k_range=range(2, 9),
    *,
    estimator=None,
    silhouette_sample_size=None,
    random_state=None,
):
    """Inertia and silhouette score of intensity k-means for a range of k.

    The intensity features are computed once; then one k-means is fitted per
    ``k``. Pick ``k`` at the elbow of the inertia curve or at the highest
    silhouette score; :func:`plot_elbow_silhouette` draws both.

    Parameters
    ----------
    X : array-like of shape (n_samples,) or ndarray of shape \
(n_samples, height, width[, n_channels])
        Images: file paths, PIL images or arrays, with the sample axis first.
    k_range : iterable of int, default=range(2, 9)
        Numbers of clusters to try, each between 2 and ``n_samples - 1`` (the
        silhouette score's range).
    estimator : IntensityKMeans, default=None
        Template for the features, scaling and k-means settings (its
        ``n_clusters`` is ignored). ``None`` means ``IntensityKMeans()``; pass
        ``random_state`` (or an estimator with an int one) for reproducible
        scores.
    silhouette_sample_size : int, default=None
        Compute the silhouette on a random subset of this many images (the score
        costs ``O(n_samples ** 2)``). ``None`` uses all.
    random_state : int, RandomState instance or None, default=None
        Seed of the k-means runs and of the silhouette subset, the same for
        every ``k``. ``None`` uses the ``random_state`` of ``estimator``
        (so ``IntensityKMeans(n_clusters=k, random_state=...)`` fitted on the
        same images gives the same clustering).

    Returns
    -------
    scores : :class:`~sklearn.utils.Bunch`
        With ``k`` (ndarray of the k tried), ``inertia`` and ``silhouette``
        (ndarrays of float, one per k), and ``best_k`` (the k with the highest
        silhouette score).

    Raises
    ------
    ValueError
        If ``k_range`` is empty or holds a k outside ``[2, n_samples - 1]``.

    See Also
    --------
    IntensityKMeans : The clustering scored.
    plot_elbow_silhouette : Plots the result.

    Examples
    --------
    >>> import numpy as np
    >>> from skmedimg.preprocessing import IntensityKMeans, score_n_clusters
    >>> rng = np.random.default_rng(0)
    >>> groups = [rng.integers(a, 2 * a + 40, (8, 16, 16)) for a in (0, 60, 120)]
    >>> X = np.concatenate(groups).astype(np.uint8)  # 3 brightness/contrast groups
    >>> estimator = IntensityKMeans(random_state=0)
    >>> scores = score_n_clusters(X, range(2, 6), estimator=estimator)
    >>> scores.k.tolist(), scores.best_k
    ([2, 3, 4, 5], 3)
    >>> scores.silhouette.round(2)
    array([0.65, 0.95, 0.75, 0.75])
    """
    if estimator is None:
        estimator = IntensityKMeans()
    if not isinstance(estimator, IntensityKMeans):
        raise TypeError(
            f"estimator must be an IntensityKMeans, got {type(estimator).__name__}"
        )
    estimator._validate_params()
    ks = np.array([int(k) for k in k_range], dtype=int)
    if ks.size == 0:
        raise ValueError(
            "k_range is empty; give numbers of clusters such as range(2, 9)"
        )
    features, scaler = estimator._fit_features(X)
    n_samples = len(features)
    bad = ks[(ks < 2) | (ks > n_samples - 1)]
    if bad.size:
        raise ValueError(
            f"k_range holds {bad.tolist()}, but the silhouette score needs "
            f"2 <= k <= n_samples - 1 = {n_samples - 1}"
        )
    Z = features if scaler is None else scaler.transform(features)
    # Each k gets the estimator's random_state, so scores[k] matches
    # IntensityKMeans(n_clusters=k, random_state=...) fitted on the same X.
    if random_state is None:
        random_state = estimator.random_state
    inertia, silhouette = [], []
    for k in ks:
        kmeans = estimator._make_kmeans(int(k), random_state).fit(Z)
        found = len(np.unique(kmeans.labels_))
        if found < 2:
            n_distinct = len(np.unique(Z, axis=0))
            raise ValueError(
                f"k-means with k={int(k)} put every image in one cluster: the "
                f"images have {n_distinct} distinct feature vector(s), so no "
                "silhouette can be computed; the images may be identical or "
                "constant"
            )
        inertia.append(float(kmeans.inertia_))
        silhouette.append(
            float(
                silhouette_score(
                    Z,
                    kmeans.labels_,
                    sample_size=silhouette_sample_size,
                    random_state=random_state,
                )
            )
        )
    silhouette = np.asarray(silhouette)
    return Bunch(
        k=ks,
        inertia=np.asarray(inertia),
        silhouette=silhouette,
        best_k=int(ks[np.argmax(silhouette)]),
    )


def plot_elbow_silhouette(scores, *, axes=None, ax=DEPRECATED):
    """Plot the inertia (elbow) and the silhouette score against k.

    Parameters
    ----------
    scores : Bunch
        The result of :func:`score_n_clusters` (``k``, ``inertia``,
        ``silhouette``, ``best_k``).
    axes : sequence of two matplotlib Axes, default=None
        Where to draw the inertia and the silhouette curves. ``None`` creates a
        figure with two side-by-side axes (with :mod:`matplotlib.pyplot`, so
        close it with ``plt.close(fig)``).
    ax : sequence of two matplotlib Axes
        Deprecated spelling of ``axes``.

        .. deprecated:: 0.1
           ``ax`` was renamed ``axes`` (the helpers that draw on several Axes
           take ``axes``) and will be removed in 0.3.

    Returns
    -------
    figure : matplotlib.figure.Figure
        The figure holding the two panels; ``figure.axes`` are the inertia and
        the silhouette axes.

        .. versionchanged:: 0.1
           The figure is returned, as by every ``plot_*`` helper, instead of
           the array of the two Axes.

    See Also
    --------
    score_n_clusters : Computes the scores.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import matplotlib.pyplot as plt
    >>> import numpy as np
    >>> from sklearn.utils import Bunch
    >>> from skmedimg.preprocessing import plot_elbow_silhouette
    >>> scores = Bunch(k=np.arange(2, 6), inertia=np.array([9.0, 4.0, 3.0, 2.5]),
    ...                silhouette=np.array([0.5, 0.7, 0.4, 0.3]), best_k=3)
    >>> fig = plot_elbow_silhouette(scores)
    >>> fig.axes[1].get_ylabel()
    'silhouette score'
    >>> plt.close(fig)
    """
    axes = renamed_argument(
        "plot_elbow_silhouette", "ax", ax, "axes", axes, default=None
    )
    if axes is None:
        import matplotlib.pyplot as plt

        _, axes = plt.subplots(1, 2, figsize=(9, 3.5), layout="constrained")
    axes = np.asarray(axes, dtype=object).ravel()
    if axes.size != 2:
        raise ValueError(f"axes must hold two matplotlib Axes, got {axes.size}")
    k = np.asarray(scores["k"])
    axes[0].plot(k, scores["inertia"], "o-")
    axes[0].set(xlabel="number of clusters k", ylabel="inertia", title="Elbow")
    axes[1].plot(k, scores["silhouette"], "o-", color="tab:orange")
    best = int(scores["best_k"])
    axes[1].axvline(best, color="gray", linestyle="--", label=f"best k = {best}")
    axes[1].set(
        xlabel="number of clusters k", ylabel="silhouette score", title="Silhouette"
    )
    axes[1].legend()
    for a in axes:
        a.set_xticks(k)
    return axes[0].figure
