"""Finding unreadable images: ``validate_images`` and the ``ImageValidator`` sampler."""

from __future__ import annotations

from numbers import Integral

import numpy as np
from sklearn.utils import Bunch
from sklearn.utils._param_validation import Interval, StrOptions

from ..utils import ColumnTable, ImageReadError, read_image_sizes, read_images
from ..utils import item_name as _item_name
from ._base import _BaseImageSampler, _check_size

_COLORS = ("gray", "rgb")
# Files are decoded at a reduced size to prove their pixel data intact: JPEGs
# then decode at 1/2 to 1/8 scale (Pillow's draft), which still parses every
# byte of the compressed stream, so truncated or corrupt files are caught.
_PROBE_SIZE = (64, 64)


def _check_allowed_colors(allowed_colors):
    if allowed_colors is None:
        return None
    if isinstance(allowed_colors, str):
        allowed_colors = (allowed_colors,)
    allowed = tuple(allowed_colors)
    if not allowed or any(c not in _COLORS for c in allowed):
        raise ValueError(
            f"allowed_colors must be None, 'gray', 'rgb' or a non-empty sequence of "
            f"them, got {allowed_colors!r}"
        )
    return set(allowed)


def _color_of(n_channels):
    return "rgb" if n_channels >= 3 else "gray"


class _ValidationReport(Bunch):
    """The result of :func:`validate_images`: a Bunch that prints as a summary.

    Its ``repr`` gives the counts and the first few unusable items with their
    reasons instead of every array it holds; notebooks show the same as HTML.
    :meth:`table` gives one row per image, :meth:`to_frame` that table as a
    pandas ``DataFrame``.
    """

    _N_SHOWN = 5

    def table(self):
        """Return one row per image: its index, name, validity, size, colour, reason.

        Returns
        -------
        table : dict of ndarray
            Columns ``"index"``, ``"item"``, ``"valid"``, ``"height"``,
            ``"width"``, ``"color"`` and ``"reason"`` (empty for usable
            images); it prints as a table and has ``rows()`` and
            ``to_frame()``.
        """
        n_samples = len(self["valid_mask"])
        reasons = np.full(n_samples, "", dtype=object)
        for index, _, reason in self["failures"]:
            reasons[index] = reason
        sizes = np.asarray(self["sizes"]).reshape(-1, 2)
        return ColumnTable(
            {
                "index": np.arange(n_samples),
                "item": np.asarray(self["items"], dtype=object),
                "valid": np.asarray(self["valid_mask"], dtype=bool),
                "height": sizes[:, 0],
                "width": sizes[:, 1],
                "color": np.asarray(self["colors"], dtype=object),
                "reason": reasons,
            },
            title=self._title(),
        )

    def to_frame(self):
        """Return :meth:`table` as a pandas ``DataFrame`` (pandas must be installed).

        Returns
        -------
        frame : pandas.DataFrame
            One row per image.
        """
        return self.table().to_frame()

    def _title(self):
        return (
            f"ImageValidationReport({self['n_valid']} of {len(self['valid_mask'])} "
            f"image(s) usable, {self['n_invalid']} not)"
        )

    def _repr_html_(self):
        table = self.table()
        invalid = ~np.asarray(table["valid"], dtype=bool)
        shown = ColumnTable(
            {
                k: np.asarray(v, dtype=object)[invalid]
                for k, v in table.items()
                if k not in ("valid",)
            },
            title=self._title(),
        )
        return shown._repr_html_()

    def __repr__(self):
        lines = [self._title()]
        failures = self["failures"]
        for _, item, reason in failures[: self._N_SHOWN]:
            lines.append(f"  {item}: {reason}")
        if len(failures) > self._N_SHOWN:
            lines.append(
                f"  ... and {len(failures) - self._N_SHOWN} more (see .failures)"
            )
        return "\n".join(lines)

    __str__ = __repr__


def _reraise_if_global(exc):
    """Re-raise an ImageReadError about ``X`` as a whole, not about some items.

    Such errors carry no partial result (``images is None``); their index is -1,
    or 0 for a single image given instead of a sequence.
    """
    if exc.images is None or any(index < 0 for index, _, _ in exc.failures):
        raise exc


def _decode_one(i, item):
    """Decode one item; return ``(n_channels, failure)``."""
    try:
        image = read_images([item], image_size=_PROBE_SIZE, color="keep")
    except ImageReadError as exc:
        return None, (i, _item_name(item, i), exc.failures[0][2])
    return image.shape[-1], None


def validate_images(X, *, min_size=None, allowed_colors=None, n_jobs=None):
    """Check which images can be read and used, and say why the others cannot.

    Every image is checked in two passes: its header is read (size, format), then
    its pixel data is decoded (at a reduced scale for JPEGs) so that truncated and
    corrupt files are found too. Nothing is raised for bad items: the report says
    which items are usable and why the others are not. This is the function to
    call on new images before predicting, and what :class:`ImageValidator` uses
    during ``fit_resample``.

    Parameters
    ----------
    X : array-like of shape (n_samples,) or ndarray of shape \
(n_samples, height, width[, n_channels])
        File paths, PIL images or arrays, with the sample axis first (any input
        accepted by :func:`skmedimg.utils.check_images`).
    min_size : int or tuple (height, width), default=None
        Images with a smaller height or width are invalid. An int applies to both.
    allowed_colors : {"gray", "rgb"} or sequence of them, default=None
        Images of another kind are invalid. An image is ``"gray"`` when it decodes
        to one channel (modes ``1``, ``L``, ``LA``, ``I;16``, ...) and ``"rgb"``
        when it decodes to three (``RGB``, ``RGBA``, ``P``, ``CMYK``, ...), by the
        rule of :mod:`skmedimg.utils`. A colour JPEG of a gray scan is ``"rgb"``.
        ``None`` allows both.
    n_jobs : int, default=None
        Number of threads reading images; ``None`` means 1 and ``-1`` all
        processors.

    Returns
    -------
    report : :class:`~sklearn.utils.Bunch`
        It prints as a short summary (the counts and the first five unusable
        items with their reasons). With attributes

        valid_mask : ndarray of shape (n_samples,), dtype bool
            Whether each image is usable.
        valid_indices : ndarray of shape (n_valid,)
            Indices of the usable images.
        invalid : dict
            ``{item: reason}`` for each unusable image, where ``item`` is its
            path, or ``"item <index> (<type>)"`` for an in-memory image. A path
            listed twice appears once; ``failures`` keeps every occurrence.
        failures : list of tuple (int, str, str)
            ``(index, item, reason)`` for each unusable image, in input order
            (the form of ``skmedimg.utils.ImageReadError.failures``).
        sizes : ndarray of shape (n_samples, 2)
            ``(height, width)`` of each image, ``-1`` where it could not be read.
        colors : ndarray of shape (n_samples,), dtype object
            ``"gray"`` or ``"rgb"``, ``None`` where it could not be decoded.
        n_valid, n_invalid : int
            Counts.
        items : ndarray of shape (n_samples,), dtype object
            The name of each image, as in ``invalid``.

        Its ``table()`` gives one row per image (index, item, validity, size,
        colour and reason) as a printable table, and ``to_frame()`` the same
        as a pandas ``DataFrame`` (pandas must be installed).

    Raises
    ------
    ImageReadError
        Only when ``X`` as a whole is unusable (not a sequence of images, wrong
        array shape, empty).
    ValueError
        If ``min_size`` or ``allowed_colors`` is malformed.

    See Also
    --------
    ImageValidator : The same checks as a sampler that drops the bad images.
    skmedimg.utils.check_images : Validates input without decoding and raises.

    Examples
    --------
    >>> import numpy as np
    >>> from skmedimg.preprocessing import validate_images
    >>> images = [np.zeros((32, 32)), np.zeros((8, 8)), "missing.png"]
    >>> report = validate_images(images, min_size=16)
    >>> report.n_valid, report.valid_indices.tolist()
    (1, [0])
    >>> for item, reason in report.invalid.items():
    ...     print(f"{item}: {reason}")
    item 1 (ndarray): image of height 8 and width 8 is smaller than min_size=(16, 16)
    missing.png: file not found
    """
    min_size = _check_size(min_size, "min_size")
    allowed = _check_allowed_colors(allowed_colors)

    # Pass 1: headers (missing, empty, not an image, bad in-memory items).
    try:
        sizes = read_image_sizes(X, n_jobs=n_jobs)
        failures = {}
    except ImageReadError as exc:
        _reraise_if_global(exc)
        sizes = np.array(
            [(-1, -1) if s is None else s for s in exc.images], dtype=int
        ).reshape(-1, 2)
        failures = {i: (i, name, reason) for i, name, reason in exc.failures}
    n_samples = len(sizes)

    # Pass 2: pixel data (truncated or corrupt files) and the colour kind.
    colors = np.full(n_samples, None, dtype=object)
    if isinstance(X, np.ndarray) and X.dtype.kind in "biuf":
        items = X  # validated by pass 1; arrays need no decoding
        colors[:] = _color_of(X.shape[-1] if X.ndim == 4 else 1)
    else:
        items = list(X.to_numpy() if hasattr(X, "to_numpy") else X)
        todo = [i for i in range(n_samples) if i not in failures]
        if n_jobs is None or len(todo) < 2:
            results = [_decode_one(i, items[i]) for i in todo]
        else:
            from joblib import Parallel, delayed

            # Pillow releases the GIL while decoding, so threads scale.
            results = Parallel(n_jobs=n_jobs, prefer="threads")(
                delayed(_decode_one)(i, items[i]) for i in todo
            )
        for i, (n_channels, failure) in zip(todo, results, strict=True):
            if failure is not None:
                failures[i] = failure
            else:
                colors[i] = _color_of(n_channels)

    # Pass 3: the optional rules on size and colour.
    for i in range(n_samples):
        if i in failures:
            colors[i] = None
            continue
        height, width = sizes[i]
        if min_size is not None and (height < min_size[0] or width < min_size[1]):
            reason = (
                f"image of height {height} and width {width} is smaller than "
                f"min_size={min_size}"
            )
        elif allowed is not None and colors[i] not in allowed:
            reason = f"{colors[i]} image, but allowed_colors={sorted(allowed)}"
        else:
            continue
        failures[i] = (i, _item_name(items[i], i), reason)

    failure_list = [failures[i] for i in sorted(failures)]
    valid_mask = np.ones(n_samples, dtype=bool)
    valid_mask[list(failures)] = False
    return _ValidationReport(
        items=np.asarray(
            [_item_name(items[i], i) for i in range(n_samples)], dtype=object
        ),
        valid_mask=valid_mask,
        valid_indices=np.flatnonzero(valid_mask),
        invalid={name: reason for _, name, reason in failure_list},
        failures=failure_list,
        sizes=sizes,
        colors=colors,
        n_valid=int(valid_mask.sum()),
        n_invalid=len(failure_list),
    )


class ImageValidator(_BaseImageSampler):
    """Drop unreadable, missing, empty or undecodable images while fitting.

    A sampler in the sense of imbalanced-learn: :meth:`fit_resample` returns the
    images that can be read (and, optionally, that are large enough and of an
    allowed colour kind) with their labels, and records what it dropped and why in
    ``dropped_``. Each image's header is read and its pixel data decoded (at a
    reduced scale for JPEGs), so truncated and corrupt files are found, not only
    missing ones. Use it as the first step of ``skmedimg.pipeline.make_pipeline``.

    .. warning::
        At predict time imbalanced-learn's ``Pipeline`` skips samplers: this step
        does not run then, so it neither drops nor checks new images. A bad image
        at predict time is never dropped silently: the first step that reads
        pixels (:class:`ImageResizer`, :class:`IntensityFeatures`, the CNN
        estimators) raises :class:`~skmedimg.utils.ImageReadError` naming the
        file. To check new images up front, call :func:`validate_images`.

    Parameters
    ----------
    min_size : int or tuple (height, width), default=None
        Drop images with a smaller height or width. An int applies to both.
    allowed_colors : {"gray", "rgb"} or sequence of them, default=None
        Drop images of another kind (see :func:`validate_images`). ``None``
        allows both.
    n_jobs : int, default=None
        Number of threads reading images; ``None`` means 1 and ``-1`` all
        processors.

    Attributes
    ----------
    sample_indices_ : ndarray of shape (n_kept,)
        Indices of the images kept, as in imbalanced-learn's samplers.
    dropped_ : list of dict
        One ``{"index": int, "item": str, "reason": str}`` per dropped image, in
        input order; ``item`` is the path, or ``"item <index> (<type>)"`` for an
        in-memory image. ``pandas.DataFrame(dropped_)`` makes it a table.

    See Also
    --------
    validate_images : The same checks as a function returning a report.
    SizeOutlierRejector : Drops images of unusual size.

    Notes
    -----
    Decoding every image costs about as much as reading the data set once at
    reduced size; use ``n_jobs`` to spread it over threads. All images are read in
    ``fit_resample``; none are kept in memory.

    Examples
    --------
    >>> import numpy as np
    >>> from skmedimg.preprocessing import ImageValidator
    >>> X = [np.zeros((32, 32)), "missing.png", np.full((32, 32), np.nan)]
    >>> validator = ImageValidator()
    >>> X_kept, y_kept = validator.fit_resample(X, [0, 1, 0])
    >>> len(X_kept), y_kept
    (1, [0])
    >>> for dropped in validator.dropped_:
    ...     print(dropped["index"], dropped["item"], "-", dropped["reason"])
    1 missing.png - file not found
    2 item 2 (ndarray) - contains NaN or infinite values
    """

    _parameter_constraints: dict = {
        "min_size": [Interval(Integral, 1, None, closed="left"), tuple, None],
        "allowed_colors": [StrOptions(set(_COLORS)), list, tuple, set, None],
        "n_jobs": [Integral, None],
    }

    def __init__(self, *, min_size=None, allowed_colors=None, n_jobs=None):
        self.min_size = min_size
        self.allowed_colors = allowed_colors
        self.n_jobs = n_jobs

    def _select(self, X, y):
        report = validate_images(
            X,
            min_size=self.min_size,
            allowed_colors=self.allowed_colors,
            n_jobs=self.n_jobs,
        )
        self.dropped_ = [
            {"index": i, "item": item, "reason": reason}
            for i, item, reason in report.failures
        ]
        if report.n_valid == 0:
            raise ImageReadError(report.failures, n_items=len(report.valid_mask))
        return report.valid_indices
