"""Fixed-shape image arrays: the ``ImageResizer`` transformer."""

from __future__ import annotations

from numbers import Integral

from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.utils._param_validation import Hidden, Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from ..utils import DEPRECATED, check_images, read_images, renamed_attribute
from ._base import _check_size


class ImageResizer(TransformerMixin, BaseEstimator):
    """Read and resize images into one uint8 array of shape (n, H, W, C).

    Turns any accepted image input (file paths, PIL images, arrays of any size,
    bit depth and channel count) into a fixed-shape ``uint8`` array, through
    :func:`skmedimg.utils.read_images`, whose module documents the bit-depth and
    colour rules. Large JPEGs are decoded at reduced scale when ``image_size``
    is smaller (Pillow's draft mode). The transformer is stateless: :meth:`fit` only
    validates its parameters and input.

    Parameters
    ----------
    image_size : int or tuple (height, width), default=224
        Output size. An int gives square images.
    resize_mode : {"stretch", "pad", "crop"}, default="stretch"
        ``"stretch"`` resizes ignoring the aspect ratio; ``"pad"`` keeps it and
        pads with black; ``"crop"`` keeps it and crops the centre.
    color : {"rgb", "gray", "keep"}, default="rgb"
        ``"rgb"`` gives three channels (gray repeated), ``"gray"`` one channel
        (ITU-R 601-2 luma), ``"keep"`` one channel if every image is gray and
        three otherwise.
    resample : {"bilinear", "bicubic", "lanczos", "nearest", "box"}, \
default="bilinear"
        Pillow resampling filter (antialiased when downscaling).
    n_jobs : int, default=None
        Number of threads decoding in parallel; ``None`` means 1 and ``-1`` all
        processors.
    size : int or tuple (height, width)
        Deprecated spelling of ``image_size``.

        .. deprecated:: 0.1
           ``size`` was renamed ``image_size`` and will be removed in 0.3.
    mode : {"stretch", "pad", "crop"}
        Deprecated spelling of ``resize_mode``.

        .. deprecated:: 0.1
           ``mode`` was renamed ``resize_mode`` and will be removed in 0.3.

    See Also
    --------
    skmedimg.utils.read_images : The reader this step calls.
    IntensityFeatures : Intensity statistics of images.

    Notes
    -----
    The output is an image array, not a feature matrix, so this transformer has
    no ``get_feature_names_out`` and no ``n_features_in_``. A Pipeline's
    ``get_feature_names_out`` needs every step to have one: call it on the
    slice after this step (``pipe[1:-1]`` when this step comes first).
    :meth:`set_output` is accepted, so that a Pipeline holding this step can be
    set to pandas output, and leaves the images a uint8 array. Memory:
    ``n * height * width * C`` bytes.

    An unreadable image raises :class:`~skmedimg.utils.ImageReadError` naming it,
    at predict time too; drop bad images while fitting with
    :class:`ImageValidator`.

    Examples
    --------
    >>> import numpy as np
    >>> from skmedimg.preprocessing import ImageResizer
    >>> images = [np.zeros((40, 60)), np.ones((30, 30, 3))]
    >>> ImageResizer(image_size=32).fit_transform(images).shape
    (2, 32, 32, 3)
    >>> ImageResizer(image_size=(16, 24), color="gray").fit_transform(images).shape
    (2, 16, 24, 1)
    """

    _parameter_constraints: dict = {
        "image_size": [Interval(Integral, 1, None, closed="left"), tuple],
        "resize_mode": [StrOptions({"stretch", "pad", "crop"})],
        "color": [StrOptions({"rgb", "gray", "keep"})],
        "resample": [StrOptions({"bilinear", "bicubic", "lanczos", "nearest", "box"})],
        "n_jobs": [Integral, None],
        # renamed in 0.1, removed in 0.3
        "size": [
            Interval(Integral, 1, None, closed="left"),
            tuple,
            Hidden(StrOptions({DEPRECATED})),
        ],
        "mode": [
            StrOptions({"stretch", "pad", "crop"}),
            Hidden(StrOptions({DEPRECATED})),
        ],
    }

    def __init__(
        self,
        image_size=224,
        *,
        resize_mode="stretch",
        color="rgb",
        resample="bilinear",
        n_jobs=None,
        size=DEPRECATED,
        mode=DEPRECATED,
    ):
        self.image_size = image_size
        self.resize_mode = resize_mode
        self.color = color
        self.resample = resample
        self.n_jobs = n_jobs
        self.size = size
        self.mode = mode

    def _resolved(self):
        """``(image_size, resize_mode)``, taking the deprecated names into account."""
        image_size = renamed_attribute(self, "size", "image_size")
        resize_mode = renamed_attribute(self, "mode", "resize_mode")
        return _check_size(image_size, "image_size"), resize_mode

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
        self._resolved()
        check_images(X)
        return self

    def transform(self, X):
        """Read and resize the images.

        Parameters
        ----------
        X : array-like of shape (n_samples,) or ndarray of shape \
(n_samples, height, width[, n_channels])
            Images: file paths, PIL images or arrays, with the sample axis first.

        Returns
        -------
        X_resized : ndarray of shape (n_samples, height, width, n_channels)
            ``uint8`` images, ``n_channels`` 3 or 1 by the colour rule.

        Raises
        ------
        ImageReadError
            If any image cannot be read; the message names each one.
        """
        check_is_fitted(self)
        image_size, resize_mode = self._resolved()
        return read_images(
            X,
            image_size=image_size,
            color=self.color,
            resize_mode=resize_mode,
            resample=self.resample,
            n_jobs=self.n_jobs,
        )

    def set_output(self, *, transform=None):
        """Accept an output container setting; images stay a uint8 array.

        A Pipeline's ``set_output`` calls this on every step; the setting
        applies to the feature-producing steps after this one.

        Parameters
        ----------
        transform : {"default", "pandas", "polars"} or None, default=None
            Ignored: images have no columns to name.

        Returns
        -------
        self : ImageResizer
            This transformer, unchanged.
        """
        return self

    def __sklearn_is_fitted__(self):
        """Stateless: always fitted."""
        return True

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        tags.input_tags.three_d_array = True
        tags.input_tags.string = True
        tags.transformer_tags.preserves_dtype = ["uint8"]
        # two_d_array stays True: see _BaseImageSampler.__sklearn_tags__.
        return tags
