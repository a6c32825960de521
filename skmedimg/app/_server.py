"""A small web app that serves saved models: upload images, see predictions.

Which framework, and why
------------------------
The app is built on Flask (with its WSGI toolkit Werkzeug), installed by the
``app`` extra (``pip install 'skmedimg[app]'``). Flask is small, synchronous
and among the best kept Python web frameworks (the Pallets project), and its
few dependencies are pure Python. Synchronous fits the work: a request is a
CPU- or GPU-bound model call, which an asynchronous framework (Starlette /
FastAPI + uvicorn) would have to push to a thread pool anyway, at the cost of
more dependencies (pydantic, python-multipart, an ASGI server). Flask also has
what the safety rules need built in: an upload size limit
(``MAX_CONTENT_LENGTH``, answered with 413), request hooks (here a ``Host``
header allow-list) and error handlers that keep tracebacks on the server.
:func:`serve` runs Werkzeug's threaded server, which suits one person or a
small group on one machine; :func:`create_app` returns a WSGI application for
any production WSGI server (gunicorn, waitress) when more is needed.

Safety
------
* :func:`serve` binds to ``127.0.0.1`` by default, and then accepts only
  requests addressed to a loopback name (this stops DNS-rebinding pages from
  reading the answers). Binding to another address prints a warning: the app
  has no authentication.
* Models are loaded only from the paths given to :func:`load_models` (the
  command line), with :func:`skmedimg.neural.load_model`, whose format runs
  no code on load. No request can name a file.
* An upload is accepted by its content, never its file name: its first bytes
  must be the signature of a supported image format, and it must then decode
  with :func:`skmedimg.utils.read_images`, the library's one image reader,
  with its decompression bomb guard (``max_pixels``). Uploads larger than
  ``max_upload_mb`` are refused with 413.
* Every error is a JSON answer ``{"error": message}`` with a 4xx status (5xx
  for a failure of the server itself); tracebacks are logged on the server and
  never sent to the client, and the server goes on serving.
"""

from __future__ import annotations

import base64
import io
import ipaddress
import logging
import os
import sys
import tempfile
import threading
import warnings
from pathlib import Path

import numpy as np

from ._page import APP_CSS, APP_JS, PAGE_HTML

__all__ = [
    "DEFAULT_LOW_CONFIDENCE_MARGIN",
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_MAX_UPLOAD_MB",
    "MODEL_EXTENSIONS",
    "add_serve_parser",
    "create_app",
    "load_model_card",
    "load_models",
    "serve",
]

logger = logging.getLogger("skmedimg.app")

#: Default upload size limit, in megabytes (MiB).
DEFAULT_MAX_UPLOAD_MB = 20

#: Default decompression bomb guard of the app, in pixels (50 megapixels): an
#: upload declaring more is refused before its pixel data is decoded. Lower
#: than the reader's own default because a server decodes strangers' files.
DEFAULT_MAX_PIXELS = 50_000_000

#: File name endings of saved models looked for in a folder.
MODEL_EXTENSIONS = (".skmedimg", ".safetensors")

#: Default low-confidence rule: a prediction is marked when the two highest
#: class probabilities differ by less than this margin.
DEFAULT_LOW_CONFIDENCE_MARGIN = 0.2

# The largest training report read for a model card, in bytes.
_MAX_REPORT_BYTES = 5 * 1024 * 1024
# The most results, and classes per result, that one export accepts.
_MAX_EXPORT_RESULTS = 10_000
_MAX_EXPORT_CLASSES = 1_000
# Characters kept of one text value of an export.
_MAX_EXPORT_TEXT = 1_000

# The longest side of the image and overlay shown on the page, in pixels.
_DISPLAY_SIZE = 320
_OVERLAY_ALPHA = 0.4
_OVERLAY_CMAP = "jet"
_MASK_ALPHA = 0.5
_LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")

# Leading bytes of the formats the reader decodes, with the temporary file's
# suffix for each. A cheap first gate: files that pass are then decoded by the
# reader, which has the last word.
_SIGNATURES = (
    (b"\xff\xd8\xff", ".jpg"),
    (b"\x89PNG\r\n\x1a\n", ".png"),
    (b"GIF87a", ".gif"),
    (b"GIF89a", ".gif"),
    (b"BM", ".bmp"),
    (b"II*\x00", ".tif"),
    (b"MM\x00*", ".tif"),
)
_ACCEPTED = "JPEG, PNG, BMP, TIFF, GIF, WebP or DICOM"


class _ClientError(Exception):
    """A request the app refuses: an HTTP status and a message for the client."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.message = message


def _require_flask():
    try:
        import flask
    except ImportError:
        raise ImportError(
            "the skmedimg web app needs Flask: pip install 'skmedimg[app]'"
        ) from None
    return flask


# --------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------


def _model_files(folder):
    """List the saved models in a folder (``*.skmedimg``, ``*/model.*`` ...)."""
    found = [
        p
        for p in sorted(folder.iterdir())
        if p.is_file() and p.suffix.lower() in MODEL_EXTENSIONS
    ]
    if not found:  # a folder of ``skmedimg train --out`` folders
        found = [
            p
            for sub in sorted(folder.iterdir())
            if sub.is_dir()
            for p in sorted(sub.iterdir())
            if p.is_file() and p.stem == "model" and p.suffix in MODEL_EXTENSIONS
        ]
    return found


def _model_name(path, taken):
    """Display name of a model file: its stem, or its folder's name for ``model.*``."""
    path = Path(path).resolve()
    name = path.parent.name if path.stem == "model" and path.parent.name else path.stem
    unique, k = name, 2
    while unique in taken:
        unique, k = f"{name}-{k}", k + 1
    return unique


def load_models(paths):
    """Load saved models from files and folders, naming each one.

    Parameters
    ----------
    paths : str, path-like or sequence of them
        Model files written by :func:`skmedimg.neural.save_model` (such as
        the ``model.skmedimg`` of ``skmedimg train``), or folders holding
        them: a folder contributes its ``*.skmedimg`` and ``*.safetensors``
        files, or, when it has none, the ``model.*`` file of each of its
        sub-folders. In a folder, ``.safetensors`` files that are not
        skmedimg models (plain weights) are skipped with a warning.

    Returns
    -------
    models : dict of str to CNNClassifier or CNNSegmenter
        Fitted estimators in the order found, named by file stem (by the
        folder's name for files called ``model``), made unique with a
        ``-2``, ``-3`` ... suffix.

    Raises
    ------
    FileNotFoundError
        If a path does not exist.
    ValueError
        If a file given explicitly is not a saved skmedimg model, cannot be
        read, is a segmenter of 3-D volumes (the app segments 2-D images; in
        a folder such a model is skipped with a warning), or no model was
        found at all.

    See Also
    --------
    load_model_card : The training report beside a model file, as a card.

    Notes
    -----
    Loading uses :func:`skmedimg.neural.load_model`, which reads tensors and
    JSON only: no code from the file runs.
    """
    return _load_models(paths)[0]


def _load_models(paths):
    """Load models as :func:`load_models`; also return their model cards.

    Returns ``(models, cards)``, ``cards`` a dict from name to the card of
    :func:`load_model_card` for the models that have one.
    """
    from ..neural import load_model

    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    models, cards = {}, {}
    for given in paths:
        given = Path(given)
        if not given.exists():
            raise FileNotFoundError(f"{given}: no such model file or folder")
        explicit = not given.is_dir()
        files = [given] if explicit else _model_files(given)
        if not files:
            raise ValueError(
                f"{given}: no saved models found (looked for "
                f"{', '.join('*' + e for e in MODEL_EXTENSIONS)} and */model.*)"
            )
        for file in files:
            try:
                model = load_model(file)
            except Exception as exc:
                reason = " ".join(str(exc).split()) or type(exc).__name__
                if explicit:
                    raise ValueError(
                        f"{file}: cannot load a saved skmedimg model ({reason})"
                    ) from None
                warnings.warn(
                    f"skipping {file}: not a saved skmedimg model ({reason})",
                    UserWarning,
                    stacklevel=2,
                )
                continue
            reason = _unservable(model)
            if reason is not None:
                if explicit:
                    raise ValueError(f"{file}: {reason}")
                warnings.warn(f"skipping {file}: {reason}", UserWarning, stacklevel=2)
                continue
            name = _model_name(file, models)
            models[name] = model
            card = load_model_card(file, model=model)
            if card is not None:
                cards[name] = card
    if not models:
        raise ValueError(f"no saved skmedimg models in {', '.join(map(str, paths))}")
    return models, cards


# --------------------------------------------------------------------------
# Model cards: the training report beside a model file
# --------------------------------------------------------------------------


def _report_path(model_path):
    """The training report of a model file, or None: see :func:`load_model_card`."""
    model_path = Path(model_path)
    own = model_path.with_name(model_path.stem + ".report.json")
    if own.is_file():
        return own
    shared = model_path.with_name("report.json")
    if not shared.is_file():
        return None
    if model_path.stem == "model":
        return shared
    others = [
        p
        for p in model_path.parent.iterdir()
        if p.is_file() and p.suffix.lower() in MODEL_EXTENSIONS
    ]
    return shared if len(others) == 1 else None


def _number(value):
    """A finite real number as float, else None (reports are read, not trusted)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    value = float(value)
    return value if np.isfinite(value) else None


def _count(value):
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return int(value)


def _text(value):
    """A report's text value as str, cut to ``_MAX_EXPORT_TEXT``; else None."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    return str(value)[:_MAX_EXPORT_TEXT]


def _kept(mapping):
    """``mapping`` without its None and empty values."""
    return {k: v for k, v in mapping.items() if v is not None and v != {}}


def _card_metrics(report):
    """The test metrics of a card, from a classification or a Dice report."""
    metrics = report.get("metrics")
    metrics = metrics if isinstance(metrics, dict) else {}
    per_class = {}
    if report.get("task") == "segmentation":
        names = metrics.get("names") if isinstance(metrics.get("names"), dict) else {}
        classes = metrics.get("classes")
        for key, row in (classes if isinstance(classes, dict) else {}).items():
            if isinstance(row, dict):
                shown = _text(names.get(key)) or str(key)[:_MAX_EXPORT_TEXT]
                per_class[shown] = _kept({"dice": _number(row.get("dice"))})
        mean = metrics.get("mean") if isinstance(metrics.get("mean"), dict) else {}
        return _kept(
            {"mean_dice": _number(mean.get("dice")), "per_class": _kept(per_class)}
        )
    rows = metrics.get("per_class")
    for key, row in (rows if isinstance(rows, dict) else {}).items():
        if isinstance(row, dict):
            per_class[str(key)[:_MAX_EXPORT_TEXT]] = _kept(
                {
                    "sensitivity": _number(row.get("sensitivity")),
                    "specificity": _number(row.get("specificity")),
                    "support": _count(row.get("support")),
                }
            )
    return _kept(
        {
            "accuracy": _number(metrics.get("accuracy")),
            "balanced_accuracy": _number(metrics.get("balanced_accuracy")),
            "roc_auc": _number(metrics.get("roc_auc")),
            "positive_class": _text(metrics.get("pos_label")),
            "sensitivity": _number(metrics.get("sensitivity")),
            "specificity": _number(metrics.get("specificity")),
            "per_class": _kept(per_class),
        }
    )


def _report_classes(report):
    """The classes a report names (classifier or segmenter), as text, or None."""
    classes = report.get("classes")
    if classes is None and isinstance(report.get("model"), dict):
        classes = report["model"].get("classes")
    if not isinstance(classes, list):
        return None
    return [str(c) for c in classes]


def load_model_card(model_path, *, model=None):
    """Read the training report beside a saved model as a short model card.

    ``skmedimg train --out DIR`` (and ``skmedimg segment train``) write
    ``model.skmedimg`` and ``report.json`` in ``DIR``. The report of a model
    file ``NAME.skmedimg`` is ``NAME.report.json`` beside it, else
    ``report.json`` beside it when the model file is called ``model.*`` or
    is the only model file in its folder (so that one report is never
    shown for several models).

    Parameters
    ----------
    model_path : str or path-like
        A saved model file.
    model : fitted estimator, default=None
        The model loaded from ``model_path``. When given, a report whose
        classes differ from the model's ``classes_`` is not used (it
        describes another model): a warning says so and None is returned.

    Returns
    -------
    card : dict or None
        None when there is no report, or it cannot be read (a warning says
        why). Otherwise a JSON-ready dict of the fields the report has,
        among: ``"report"`` (its file name), ``"date"`` (the report's
        ``"date"``, else its file's modification time, ISO 8601 in UTC) and
        ``"date_source"`` (``"report"`` or ``"file time"``), ``"model_name"``,
        ``"training_data"``, ``"test_data"``, ``"n_train"``, ``"n_test"``,
        ``"classes"``, ``"metrics"`` (``"accuracy"``,
        ``"balanced_accuracy"``, ``"roc_auc"``, ``"positive_class"``,
        ``"sensitivity"``, ``"specificity"`` and ``"per_class"``
        sensitivity, specificity and support; for a segmenter
        ``"mean_dice"`` and the Dice of every class), ``"recipe"``
        (``"name"``, ``"reason"``), ``"n_epochs"``, ``"best_epoch"``,
        ``"weights_source"``, ``"cross_validation"`` (mean and standard
        deviation of the accuracy) and ``"skmedimg_version"``.

    Examples
    --------
    >>> from skmedimg.app import load_model_card
    >>> card = load_model_card("brain-model/model.skmedimg")  # doctest: +SKIP
    >>> card["metrics"]["accuracy"], card["training_data"]  # doctest: +SKIP
    (0.93, 'data/Training')
    """
    import datetime
    import json

    path = _report_path(model_path)
    if path is None:
        return None
    try:
        if path.stat().st_size > _MAX_REPORT_BYTES:
            raise ValueError(f"larger than {_MAX_REPORT_BYTES // 2**20} MB")
        with open(path, encoding="utf-8") as handle:
            report = json.load(handle)
        if not isinstance(report, dict):
            raise ValueError("not a JSON object")
        modified = path.stat().st_mtime
    except (OSError, ValueError) as exc:  # JSONDecodeError is a ValueError
        warnings.warn(
            f"no model card for {model_path}: cannot read {path} ({exc})",
            UserWarning,
            stacklevel=2,
        )
        return None
    classes = _report_classes(report)
    if model is not None and classes is not None:
        own = [str(c) for c in model.classes_]
        if classes != own:
            warnings.warn(
                f"no model card for {model_path}: {path} describes classes "
                f"{classes[:20]}, the model has {own[:20]}",
                UserWarning,
                stacklevel=2,
            )
            return None
    settings = report.get("settings")
    settings = settings if isinstance(settings, dict) else {}
    date = _text(report.get("date"))
    source = "report"
    if date is None:
        date = datetime.datetime.fromtimestamp(modified, datetime.UTC)
        date, source = date.isoformat(timespec="seconds"), "file time"
    test_data = _text(settings.get("test_dir"))
    test_size = _number(settings.get("test_size"))
    if test_data is None and test_size is not None:
        test_data = f"{test_size:.0%} stratified split of the training data"
    split = report.get("split") if isinstance(report.get("split"), dict) else {}
    if test_data is None and _number(split.get("validation_size")) is not None:
        test_data = (
            f"{split['validation_size']:.0%} validation split of the training data"
        )
    recipe = report.get("recipe") if isinstance(report.get("recipe"), dict) else {}
    cv = report.get("cross_validation")
    cv = cv if isinstance(cv, dict) else {}
    mean = cv.get("mean") if isinstance(cv.get("mean"), dict) else {}
    std = cv.get("std") if isinstance(cv.get("std"), dict) else {}
    folds = cv.get("folds")
    versions = report.get("versions")
    versions = versions if isinstance(versions, dict) else {}
    model_info = report.get("model") if isinstance(report.get("model"), dict) else {}
    return _kept(
        {
            "report": path.name,
            "date": date,
            "date_source": source,
            "model_name": _text(settings.get("model"))
            or _text(model_info.get("network")),
            "training_data": _text(settings.get("data_dir"))
            or _text(settings.get("data")),
            "test_data": test_data,
            "n_train": _count(report.get("n_train")) or _count(split.get("n_train")),
            "n_test": _count(report.get("n_test")),
            "classes": [c[:_MAX_EXPORT_TEXT] for c in classes] if classes else None,
            "metrics": _card_metrics(report),
            "recipe": _kept(
                {
                    "name": _text(recipe.get("name")),
                    "reason": _text(recipe.get("reason")),
                }
            ),
            "n_epochs": _count(report.get("n_epochs"))
            or _count(model_info.get("n_epochs")),
            "best_epoch": _count(report.get("best_epoch")),
            "weights_source": _text(report.get("weights_source")),
            "cross_validation": _kept(
                {
                    "folds": len(folds) if isinstance(folds, list) else None,
                    "accuracy_mean": _number(mean.get("accuracy")),
                    "accuracy_std": _number(std.get("accuracy")),
                }
            )
            if cv
            else None,
            "skmedimg_version": _text(versions.get("skmedimg")),
        }
    )


def _is_segmenter(model):
    """Whether ``model`` is a fitted segmenter (a CNNSegmenter, by its attributes)."""
    return hasattr(model, "spatial_dims_") and hasattr(model, "n_channels_in_")


def _unservable(model):
    """Why the app cannot serve ``model`` (a segmenter), or None."""
    if not _is_segmenter(model):
        return None
    if model.spatial_dims_ != 2:
        return (
            f"a segmenter of {model.spatial_dims_}-D volumes; the app segments "
            "2-D images (use 'skmedimg segment predict' for volumes)"
        )
    if model.n_channels_in_ not in (1, 3):
        return (
            f"a segmenter of {model.n_channels_in_}-channel images; the app reads "
            "uploads in gray (1 channel) or RGB (3)"
        )
    return None


def _segment_keys(model):
    """The names of a segmenter's outputs: its regions, or its labels as text."""
    if getattr(model, "regions_", None) is not None:
        return [str(r) for r in model.regions_]
    return [str(c) for c in model.classes_]


def _check_models(models, model_cards=None):
    """Named fitted estimators and their cards, from :func:`create_app`'s arguments.

    Returns ``(models, cards)``: the cards found beside model files, updated
    with ``model_cards`` (whose None values remove a card).
    """
    cards = {}
    if isinstance(models, dict):
        models = dict(models)
        for name, model in list(models.items()):
            if isinstance(model, str | os.PathLike):
                loaded, found = _load_models([model])
                models[name] = next(iter(loaded.values()))
                if found:
                    cards[name] = next(iter(found.values()))
    else:
        models, cards = _load_models(models)
    if not models:
        raise ValueError("no models to serve")
    for name, model in models.items():
        if _is_segmenter(model):
            reason = _unservable(model)
            if reason is not None:
                raise ValueError(f"model {name!r} is {reason}")
            continue
        missing = [
            attr
            for attr in ("classes_", "image_size_", "predict_proba")
            if not hasattr(model, attr)
        ]
        if missing:
            raise TypeError(
                f"model {name!r} is not a fitted skmedimg CNN classifier or "
                f"segmenter (it has no {', '.join(missing)})"
            )
    named = {str(name): model for name, model in models.items()}
    if len(named) < len(models):
        raise ValueError(
            f"model names {list(models)} are not distinct as text; the page and "
            "the API name models by text"
        )
    cards = {str(name): card for name, card in cards.items()}
    for name, card in (model_cards or {}).items():
        if str(name) not in named:
            raise ValueError(
                f"model_cards names {name!r}, which is not a served model "
                f"({', '.join(named)})"
            )
        if card is not None and not isinstance(card, dict):
            raise TypeError(f"the model card of {name!r} is not a dict or None")
        cards[str(name)] = card
    return named, {name: card for name, card in cards.items() if card is not None}


# --------------------------------------------------------------------------
# Uploads
# --------------------------------------------------------------------------


#: Characters of a client's own text (a model name, a file name) that an
#: error message echoes; the rest is cut.
_ECHO_LIMIT = 80


def _echo(text):
    """Return a client's text for an error message, cut to ``_ECHO_LIMIT``."""
    text = str(text)
    if len(text) <= _ECHO_LIMIT:
        return text
    return f"{text[:_ECHO_LIMIT]}… ({len(text)} characters)"


def _sniff(data):
    """Return the temporary-file suffix of an upload's format, None if no image."""
    for signature, suffix in _SIGNATURES:
        if data.startswith(signature):
            return suffix
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return ".webp"
    if data[128:132] == b"DICM":
        return ".dcm"
    return None


class _Upload:
    """An upload written to a temporary file, so the reader applies its rules.

    Decoding goes through :func:`skmedimg.utils.read_images` on a path, like
    every other image of the library: format detection, mode conversion,
    DICOM and the decompression bomb guard live in that one place.
    """

    def __init__(self, data, filename, max_pixels):
        if not data:
            raise _ClientError(400, "the uploaded file is empty")
        suffix = _sniff(data)
        if suffix is None:
            raise _ClientError(
                415,
                f"not an image: the content is not {_ACCEPTED} (the file's "
                "content decides, not its name)",
            )
        self.filename = _echo(filename) if filename else "the upload"
        self.max_pixels = max_pixels
        fd, self.path = tempfile.mkstemp(prefix="skmedimg-upload-", suffix=suffix)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
        except BaseException:  # a full disk: no file left behind per request
            os.unlink(self.path)
            raise

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        try:
            os.unlink(self.path)
        except OSError:
            pass

    def _client_error(self, exc):
        reason = exc.failures[0][2] if exc.failures else str(exc)
        reason = reason.replace(self.path, self.filename)
        if "not a recognised image format" in reason:
            return _ClientError(415, f"not an image: {reason}")
        return _ClientError(422, f"cannot read the image: {reason}")

    def read(self, size=None, color="rgb"):
        """Decode the image to a ``(1, height, width[, 3])`` uint8 array at ``size``.

        ``color="gray"`` gives ``(1, height, width)``, converted before the
        resize, as a model with ``color="gray"`` reads its own images.
        """
        from ..utils import ImageReadError, read_images

        try:
            return read_images(
                [self.path], image_size=size, color=color, max_pixels=self.max_pixels
            )
        except ImageReadError as exc:
            raise self._client_error(exc) from None

    def display_size(self):
        """Return the (height, width) shown on the page: longest side at most 320."""
        from ..utils import ImageReadError, read_image_sizes

        try:
            height, width = read_image_sizes([self.path], max_pixels=self.max_pixels)[0]
        except ImageReadError as exc:
            raise self._client_error(exc) from None
        scale = min(1.0, _DISPLAY_SIZE / max(height, width))
        return max(1, round(height * scale)), max(1, round(width * scale))


def _png_data_url(rgb):
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb)).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _overlay(rgb, heatmap):
    """Blend a ``[0, 1]`` heat map, coloured, over a uint8 ``(H, W, 3)`` image."""
    from matplotlib import colormaps
    from PIL import Image

    height, width = rgb.shape[:2]
    resized = Image.fromarray(np.asarray(heatmap, dtype=np.float32), mode="F")
    resized = resized.resize((width, height), Image.Resampling.BILINEAR)
    colored = colormaps[_OVERLAY_CMAP](np.clip(np.asarray(resized), 0.0, 1.0))[..., :3]
    blend = (1.0 - _OVERLAY_ALPHA) * (rgb / 255.0) + _OVERLAY_ALPHA * colored
    return np.rint(blend * 255.0).astype(np.uint8)


def _colour(index):
    """Matplotlib's cycle colour ``index`` (gray skipped), as plot_segmentation."""
    return f"C{index % 10}" if index % 10 != 7 else "C9"


def _mask_overlay(rgb, mask, model):
    """Colour each class (or region) of ``mask`` over a uint8 ``(H, W, 3)`` image.

    The mask is resized to the image with nearest-neighbour sampling; the
    background (label 0) is left as it is. Returns the blend and the colour
    of each class as ``#rrggbb``.
    """
    from matplotlib.colors import to_hex, to_rgb
    from PIL import Image

    height, width = rgb.shape[:2]
    if getattr(model, "regions_", None) is not None:
        layers = [(str(r), mask[..., k]) for k, r in enumerate(model.regions_)]
    else:
        layers = [(str(c), mask == c) for c in model.classes_ if c != 0]
    blend = rgb.astype(np.float32) / 255.0
    colours = {}
    for i, (key, layer) in enumerate(layers):
        small = Image.fromarray(np.asarray(layer, dtype=np.uint8) * 255)
        small = np.asarray(small.resize((width, height), Image.Resampling.NEAREST))
        inside = small > 127
        colour = np.asarray(to_rgb(_colour(i)), dtype=np.float32)
        blend[inside] = (1.0 - _MASK_ALPHA) * blend[inside] + _MASK_ALPHA * colour
        colours[key] = to_hex(_colour(i))
    return np.rint(blend * 255.0).astype(np.uint8), colours


# --------------------------------------------------------------------------
# The app
# --------------------------------------------------------------------------


def _host_name(host):
    """Lower-cased host name of a ``Host`` header, without the port.

    A header that is not ``name``, ``name:port``, ``[ipv6]`` or
    ``[ipv6]:port`` comes back whole, so that it matches no trusted name.
    """
    host = host.strip().lower()
    if host.startswith("["):  # IPv6 literal, "[::1]:8000"
        end = host.find("]")
        name, rest = host[: end + 1], host[end + 1 :]
        if end < 0 or (rest and not (rest[:1] == ":" and rest[1:].isdigit())):
            return host
        return name
    if host.count(":") == 1:
        name, port = host.split(":")
        return name if port.isdigit() else host
    return host


def _truthy(value):
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def _confidence(proba, margin):
    """The gap of the two highest probabilities, and whether it is under ``margin``."""
    top = np.sort(np.asarray(proba, dtype=float))[::-1]
    gap = float(top[0] - top[1]) if top.size > 1 else 1.0
    return gap, bool(gap < margin)


# The columns of an export, in order, before those of the class probabilities.
_EXPORT_FIELDS = (
    "time",
    "file",
    "model",
    "task",
    "label",
    "probability",
    "margin",
    "low_confidence",
    "error",
)


def _export_records(payload):
    """Check and normalise the ``results`` of an export request.

    Every record is a JSON object; known fields are kept (text cut to
    ``_MAX_EXPORT_TEXT`` characters, numbers finite), others dropped.
    Raises ``_ClientError`` (400) naming the first bad record.
    """
    if not isinstance(payload, dict) or not isinstance(payload.get("results"), list):
        raise _ClientError(
            400, 'send a JSON object {"results": [...]}, the records to export'
        )
    results = payload["results"]
    if len(results) > _MAX_EXPORT_RESULTS:
        raise _ClientError(
            400,
            f"{len(results)} results; one export takes at most {_MAX_EXPORT_RESULTS}",
        )
    records = []
    for i, item in enumerate(results):
        if not isinstance(item, dict):
            raise _ClientError(400, f"result {i} is not a JSON object")
        record = {}
        for key in ("time", "file", "model", "task", "label", "error"):
            value = item.get(key)
            if value is not None:
                text = _text(value)
                if text is None:
                    raise _ClientError(400, f"result {i}: {key!r} is not text")
                record[key] = text
        for key in ("margin", "probability"):
            if item.get(key) is not None:
                value = _number(item[key])
                if value is None:
                    raise _ClientError(400, f"result {i}: {key!r} is not a number")
                record[key] = value
        if item.get("low_confidence") is not None:
            if not isinstance(item["low_confidence"], bool):
                raise _ClientError(
                    400, f"result {i}: 'low_confidence' is not true or false"
                )
            record["low_confidence"] = item["low_confidence"]
        for key in ("probabilities", "fractions"):
            values = item.get(key)
            if values is None:
                continue
            if not isinstance(values, dict) or len(values) > _MAX_EXPORT_CLASSES:
                raise _ClientError(
                    400,
                    f"result {i}: {key!r} is not an object of at most "
                    f"{_MAX_EXPORT_CLASSES} numbers",
                )
            numbers = {}
            for name, value in values.items():
                number = _number(value)
                if number is None:
                    raise _ClientError(
                        400,
                        f"result {i}: {key!r} of {_echo(repr(name))} is not a number",
                    )
                numbers[str(name)[:_MAX_EXPORT_TEXT]] = number
            record[key] = numbers
        if "probabilities" in record and "probability" not in record:
            record["probability"] = max(record["probabilities"].values(), default=None)
        records.append(_kept(record))
    return records


def _csv_cell(value):
    """A CSV cell; text that a spreadsheet would run as a formula is quoted."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    text = str(value)
    if text[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + text
    return text


def _export_csv(records):
    """Write export records as CSV text: one row per result.

    After the columns of ``_EXPORT_FIELDS`` come ``p(<class>)`` for every
    class probability and ``share(<class>)`` for every segmentation share,
    in the order the classes first appear.
    """
    import csv

    extra = {}
    for record in records:
        for key, prefix in (("probabilities", "p"), ("fractions", "share")):
            for name in record.get(key, {}):
                extra.setdefault(f"{prefix}({name})", (key, name))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([_csv_cell(c) for c in (*_EXPORT_FIELDS, *extra)])
    for record in records:
        row = [record.get(field, "") for field in _EXPORT_FIELDS]
        row += [record.get(key, {}).get(name, "") for key, name in extra.values()]
        writer.writerow([_csv_cell(v) if v != "" else "" for v in row])
    return buffer.getvalue()


def create_app(
    models,
    *,
    max_upload_mb=DEFAULT_MAX_UPLOAD_MB,
    max_pixels=DEFAULT_MAX_PIXELS,
    trusted_hosts=_LOOPBACK_NAMES,
    model_cards=None,
    low_confidence_margin=DEFAULT_LOW_CONFIDENCE_MARGIN,
):
    """Build the upload-and-predict web app (a Flask WSGI application).

    Routes:

    * ``GET /``: the page. Choose a model, upload or drop one or more images,
      press Predict; each image gets its label, a bar for the probability of
      every class, and its Grad-CAM overlay with a colour legend (a
      segmenter: its mask over the image and the share of the image of
      every class); a click enlarges an image. The selected model's card is
      shown, low-confidence predictions are marked, and the results of the
      session can be exported as CSV or JSON.
    * ``GET /models``: ``{"models": [{"name", "classes", "image_size",
      "model_name", "card"}, ...]}``; a segmenter's entry is ``{"name",
      "task": "segmentation", "classes", "roi_size", "model_name", "card"}``
      (its network). ``"card"`` is the model card of
      :func:`load_model_card` (the training report beside the model file),
      or None.
    * ``POST /predict``: multipart form with the image in the field ``file``,
      optionally ``model`` (a name from ``/models``; default: the first) and
      ``explain=1``. Answers ``{"model": name, "label": label,
      "probabilities": {class: p, ...}}`` with labels as strings, classes in
      the model's ``classes_`` order, then ``"margin"``: the highest
      probability minus the second highest, and ``"low_confidence"``:
      whether the margin is below ``low_confidence_margin``; with
      ``explain=1`` also
      ``"explanation": {"method": "gradcam", "class": label, "image":
      data_url, "overlay": data_url}`` (PNG data URLs, longest side at most
      320 pixels). A segmenter (``"task": "segmentation"`` in ``/models``)
      predicts the mask at the upload's own size and answers ``{"model":
      name, "task": "segmentation", "fractions": {class: share of the
      image, ...}, "segmentation": {"image": data_url, "overlay": data_url,
      "colors": {class: "#rrggbb", ...}}}``: its classes as text (or its
      regions, whose shares may overlap), the mask coloured over the image.
      Errors answer ``{"error": message}``: 400 (no file, empty file,
      unknown model), 413 (too large), 415 (not an image by content), 422
      (corrupt, truncated, or over ``max_pixels``).
    * ``POST /export?format=csv`` (or ``json``): a JSON body ``{"results":
      [record, ...]}``, records being ``/predict`` answers with ``"file"``,
      ``"time"`` and ``"error"`` added as wished (the page sends the
      results of its session), answered as a file to download. The CSV has
      one row per record: ``time, file, model, task, label, probability``
      (the highest), ``margin, low_confidence, error``, then ``p(<class>)``
      of every class probability and ``share(<class>)`` of every
      segmentation share; text that a spreadsheet would run as a formula
      (``=``, ``+``, ``-``, ``@``) gets a leading ``'``. The JSON is
      ``{"exported_at", "low_confidence_margin", "models": {name: card},
      "results": [record, ...]}``. At most 10000 records; a malformed one
      is refused with 400 naming it.

    Parameters
    ----------
    models : dict, str, path-like or sequence of them
        Either a dict from display name to a fitted
        :class:`~skmedimg.neural.CNNClassifier` or 2-D
        :class:`~skmedimg.segmentation.CNNSegmenter` of gray or RGB images
        (or to a saved model's path),
        or paths of saved models and folders, loaded with
        :func:`load_models`.
    max_upload_mb : float, default=20
        Largest accepted request, in megabytes (MiB); larger ones get 413.
    max_pixels : int, default=50_000_000
        Decompression bomb guard: an upload declaring more pixels is refused
        (422) before its pixel data is decoded.
    trusted_hosts : sequence of str or None, \
default=("localhost", "127.0.0.1", "[::1]")
        Accepted host names in the request's ``Host`` header (the port is
        ignored; IPv6 addresses in brackets); other requests get 400. The
        default accepts loopback names only, which stops DNS-rebinding
        attacks on a local server. ``None``
        accepts any host (behind a reverse proxy, or when :func:`serve` binds
        to a public address).
    model_cards : dict or None, default=None
        Model cards by model name (dicts as :func:`load_model_card` returns,
        shown on the page as they are), replacing those found beside model
        files; None for a name removes its card.
    low_confidence_margin : float, default=0.2
        A prediction whose two highest class probabilities differ by less
        than this is marked low-confidence (``"low_confidence": true`` and
        a mark on the page); 0 marks none.

    Returns
    -------
    app : flask.Flask
        The WSGI application; ``app.test_client()`` works for tests, and any
        WSGI server can run it.

    Raises
    ------
    ImportError
        If Flask is not installed (``pip install 'skmedimg[app]'``).
    TypeError
        If a model is not a fitted CNN classifier or segmenter.
    ValueError
        If a segmenter segments volumes, or images that are neither gray nor
        RGB, if ``model_cards`` names a model not served, or if
        ``low_confidence_margin`` is not in [0, 1].

    See Also
    --------
    serve : Run the app on a local port.
    load_models : Load the saved models in files and folders.

    Notes
    -----
    Model calls are serialised by one lock (a model uses all CPU cores, or
    the GPU, for one request), so concurrent requests queue; decoding runs in
    parallel. Grad-CAM needs one backward pass per image, about twice the
    cost of a prediction.

    Examples
    --------
    >>> import numpy as np
    >>> from skmedimg.app import create_app
    >>> from skmedimg.neural import CNNClassifier
    >>> X = np.random.default_rng(0).integers(0, 255, (8, 16, 16), dtype=np.uint8)
    >>> clf = CNNClassifier("test_resnet", pretrained=False, freeze="backbone",
    ...                     image_size=32, batch_size=4, max_epochs=1,
    ...                     random_state=0)
    >>> app = create_app({"demo": clf.fit(X, ["a", "b"] * 4)})
    >>> app.test_client().get("/models").get_json()["models"][0]["classes"]
    ['a', 'b']
    """
    flask = _require_flask()
    from werkzeug.exceptions import HTTPException

    models, cards = _check_models(models, model_cards)
    margin = _number(low_confidence_margin)
    if margin is None or not 0.0 <= margin <= 1.0:
        raise ValueError(
            f"low_confidence_margin must be a number in [0, 1], got "
            f"{low_confidence_margin!r}"
        )
    max_bytes = int(float(max_upload_mb) * 1024 * 1024)
    lock = threading.Lock()

    app = flask.Flask("skmedimg.app")
    app.config["MAX_CONTENT_LENGTH"] = max_bytes
    app.json.sort_keys = False
    app.extensions["skmedimg"] = {
        "models": models,
        "cards": cards,
        "max_pixels": max_pixels,
        "low_confidence_margin": margin,
    }

    def model_info(name, model):
        if _is_segmenter(model):
            return {
                "name": name,
                "task": "segmentation",
                "classes": _segment_keys(model),
                "roi_size": [int(s) for s in model.roi_size_],
                "model_name": str(model.network),
                "card": cards.get(name),
            }
        return {
            "name": name,
            "classes": [str(c) for c in model.classes_],
            "image_size": [int(s) for s in model.image_size_],
            "model_name": str(getattr(model, "model_name", type(model).__name__)),
            "card": cards.get(name),
        }

    def error(status, message):
        response = flask.jsonify({"error": message})
        response.status_code = status
        return response

    # Werkzeug's own TRUSTED_HOSTS cannot match IPv6 names ("[::1]"), hence this.
    allowed = {_host_name(h) for h in trusted_hosts} if trusted_hosts else None

    @app.before_request
    def check_host():
        if allowed is not None:
            host = flask.request.environ.get("HTTP_HOST", "")
            if _host_name(host) not in allowed:
                raise _ClientError(400, "requests must be addressed to this machine")

    @app.after_request
    def security_headers(response):
        response.headers["Content-Security-Policy"] = (
            "default-src 'none'; script-src 'self'; style-src 'self'; "
            "img-src 'self' data: blob:; connect-src 'self'; form-action 'self'; "
            "base-uri 'none'; frame-ancestors 'none'"
        )
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers.setdefault("Cache-Control", "no-store")
        return response

    @app.errorhandler(_ClientError)
    def client_error(exc):
        return error(exc.status, exc.message)

    @app.errorhandler(HTTPException)
    def http_error(exc):
        length = flask.request.content_length
        if exc.code == 413 and (length is None or length > max_bytes):
            limit = max_bytes / (1024 * 1024)
            return error(413, f"the upload is larger than the limit of {limit:g} MB")
        response = error(exc.code or 500, exc.description or exc.name)
        allow = exc.get_response().headers.get("Allow")  # 405: the methods
        if allow:
            response.headers["Allow"] = allow
        return response

    @app.errorhandler(Exception)
    def server_error(exc):
        logger.exception("request failed")
        return error(500, "internal error while handling the request (see the log)")

    @app.get("/")
    def index():
        return flask.render_template_string(
            PAGE_HTML,
            models=[model_info(n, m) for n, m in models.items()],
            max_bytes=max_bytes,
            max_mb=f"{max_upload_mb:g}",
            margin=f"{margin:g}",
        )

    @app.get("/app.js")
    def app_js():
        return flask.Response(APP_JS, mimetype="text/javascript")

    @app.get("/app.css")
    def app_css():
        return flask.Response(APP_CSS, mimetype="text/css")

    @app.get("/models")
    def list_models():
        return {"models": [model_info(n, m) for n, m in models.items()]}

    @app.post("/predict")
    def predict():
        request = flask.request
        name = request.values.get("model") or next(iter(models))
        if name not in models:
            raise _ClientError(
                400,
                f"unknown model {_echo(repr(name))}; loaded models: "
                f"{', '.join(models)}",
            )
        upload = request.files.get("file")
        if upload is None:
            raise _ClientError(400, "no image: send it in the multipart field 'file'")
        model = models[name]
        with _Upload(upload.read(), upload.filename, max_pixels) as image:
            if _is_segmenter(model):
                return _segment(name, model, image, lock)
            X = image.read(
                size=tuple(model.image_size_), color=getattr(model, "color", "rgb")
            )
            with lock:
                proba = np.asarray(model.predict_proba(X))[0]
            classes = [str(c) for c in model.classes_]
            label = classes[int(np.argmax(proba))]
            answer = {
                "model": name,
                "label": label,
                "probabilities": {
                    c: float(p) for c, p in zip(classes, proba, strict=True)
                },
            }
            answer["margin"], answer["low_confidence"] = _confidence(proba, margin)
            if _truthy(request.values.get("explain", "")):
                answer.update(_explain(model, X, image, label, lock))
        return answer

    @app.post("/export")
    def export():
        import datetime
        import json

        request = flask.request
        kind = request.args.get("format", "csv")
        if kind not in ("csv", "json"):
            raise _ClientError(
                400, f"unknown format {_echo(repr(kind))}; use 'csv' or 'json'"
            )
        payload = request.get_json(silent=True)
        records = _export_records(payload)
        now = datetime.datetime.now(datetime.UTC)
        stamp = now.strftime("%Y%m%d-%H%M%S")
        if kind == "csv":
            body, mimetype = _export_csv(records), "text/csv"
        else:
            used = {r["model"] for r in records if "model" in r}
            body = json.dumps(
                {
                    "exported_at": now.isoformat(timespec="seconds"),
                    "low_confidence_margin": margin,
                    "models": {n: cards.get(n) for n in models if n in used},
                    "results": records,
                },
                indent=2,
            )
            mimetype = "application/json"
        response = flask.Response(body, mimetype=mimetype)
        response.headers["Content-Disposition"] = (
            f'attachment; filename="skmedimg-results-{stamp}.{kind}"'
        )
        return response

    return app


def _segment(name, model, image, lock):
    """The /predict answer of a segmenter: class shares and the mask overlay."""
    color = "gray" if model.n_channels_in_ == 1 else "rgb"
    X = image.read(color=color)  # at the upload's own size
    with lock:
        mask = np.asarray(model.predict(X)[0])
    if getattr(model, "regions_", None) is not None:
        fractions = {
            str(r): float(mask[..., k].mean()) for k, r in enumerate(model.regions_)
        }
    else:
        fractions = {str(c): float(np.mean(mask == c)) for c in model.classes_}
    shown = image.read(size=image.display_size())[0]
    overlay, colours = _mask_overlay(shown, mask, model)
    return {
        "model": name,
        "task": "segmentation",
        "fractions": fractions,
        "segmentation": {
            "image": _png_data_url(shown),
            "overlay": _png_data_url(overlay),
            "colors": colours,
        },
    }


def _explain(model, X, image, label, lock):
    """Compute the Grad-CAM part of a /predict answer; report failures, not raise."""
    from ..inspection import gradcam

    try:
        with lock:
            heatmap = gradcam(model, X)[0]
    except Exception as exc:  # a model Grad-CAM cannot explain: still predict
        logger.warning("Grad-CAM failed: %s", exc)
        return {"explanation": None, "explanation_error": "Grad-CAM unavailable"}
    shown = image.read(size=image.display_size())[0]
    return {
        "explanation": {
            "method": "gradcam",
            "class": label,
            "image": _png_data_url(shown),
            "overlay": _png_data_url(_overlay(shown, heatmap)),
        }
    }


# --------------------------------------------------------------------------
# Running it
# --------------------------------------------------------------------------


def _is_loopback(host):
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _url_host(host):
    """``host`` as a URL writes it: IPv6 addresses in brackets."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def _trusted_hosts(host):
    """Host names answered when bound to ``host``; ``None`` (any) off loopback.

    The loopback names, and the address bound if it is another loopback
    address (``127.0.0.2``, ``0:0:0:0:0:0:0:1``).
    """
    if not _is_loopback(host):
        return None
    return (*_LOOPBACK_NAMES, _url_host(host))


def serve(
    models,
    *,
    host="127.0.0.1",
    port=8000,
    max_upload_mb=DEFAULT_MAX_UPLOAD_MB,
    max_pixels=DEFAULT_MAX_PIXELS,
    quiet=False,
    model_cards=None,
    low_confidence_margin=DEFAULT_LOW_CONFIDENCE_MARGIN,
):
    """Serve the upload-and-predict page until interrupted (Ctrl+C).

    Parameters
    ----------
    models : dict, str, path-like or sequence of them
        Saved model files or folders, or a dict from name to fitted model;
        see :func:`create_app`.
    host : str, default="127.0.0.1"
        Address to bind. The default is reachable from this machine only.
        Any other address makes the page reachable from the network, without
        authentication: a warning is printed.
    port : int, default=8000
        Port to listen on; ``0`` picks a free one (printed).
    max_upload_mb : float, default=20
        Largest accepted upload, in megabytes.
    max_pixels : int, default=50_000_000
        Decompression bomb guard, see :func:`create_app`.
    quiet : bool, default=False
        Print only warnings and errors (no address line, no request log).
    model_cards : dict or None, default=None
        Model cards by model name, see :func:`create_app`.
    low_confidence_margin : float, default=0.2
        The low-confidence rule, see :func:`create_app`.

    See Also
    --------
    create_app : The WSGI application, for tests or another server.

    Notes
    -----
    Runs Werkzeug's threaded development server, which suits local use. On
    a loopback address only requests to loopback host names are answered.

    Examples
    --------
    Serve the models trained into ``runs/effnet/`` and ``runs/resnet/``:

    >>> from skmedimg.app import serve
    >>> serve(["runs/"])  # doctest: +SKIP
    skmedimg: serving effnet, resnet at http://127.0.0.1:8000/ (Ctrl+C stops)
    """
    _require_flask()
    from werkzeug.serving import make_server

    trusted = _trusted_hosts(host)
    app = create_app(
        models,
        max_upload_mb=max_upload_mb,
        max_pixels=max_pixels,
        trusted_hosts=trusted,
        model_cards=model_cards,
        low_confidence_margin=low_confidence_margin,
    )
    if trusted is None:
        print(
            f"skmedimg: warning: serving on {host}, reachable from the network "
            "without authentication; use --host 127.0.0.1 for this machine only",
            file=sys.stderr,
            flush=True,
        )
    logging.getLogger("werkzeug").setLevel(logging.WARNING if quiet else logging.INFO)
    server = make_server(host, port, app, threaded=True)
    shown_host = _url_host(host)
    names = ", ".join(app.extensions["skmedimg"]["models"])
    if not quiet:
        print(
            f"skmedimg: serving {names} at http://{shown_host}:{server.server_port}/ "
            "(Ctrl+C stops)",
            flush=True,
        )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def add_serve_parser(subparsers):
    """Add the ``serve`` command to the ``skmedimg`` command line.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        The result of ``parser.add_subparsers()``.

    Returns
    -------
    parser : argparse.ArgumentParser
        The ``serve`` parser, its ``func`` default set to the command.
    """
    parser = subparsers.add_parser(
        "serve",
        help="serve a web page that predicts and explains uploaded images",
        description="Serve saved models on a local web page: upload images, see "
        "the label, the probability of every class and a Grad-CAM overlay (or, "
        "for a segmenter, the predicted mask and the share of every class). "
        "POST /predict (multipart field 'file') answers JSON for scripts.",
    )
    parser.add_argument(
        "models",
        nargs="+",
        metavar="MODEL_OR_DIR",
        help="saved model files (model.skmedimg, *.safetensors) or folders of them",
    )
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind (%(default)s: this machine only)",
    )
    parser.add_argument(
        "--port", type=int, default=8000, help="port; 0 picks a free one (%(default)s)"
    )
    parser.add_argument(
        "--max-upload-mb",
        type=float,
        default=DEFAULT_MAX_UPLOAD_MB,
        help="largest accepted upload in MB (%(default)s)",
    )
    parser.add_argument(
        "--low-confidence-margin",
        type=float,
        default=DEFAULT_LOW_CONFIDENCE_MARGIN,
        metavar="M",
        help="mark a prediction low-confidence when its two highest class "
        "probabilities differ by less than M (%(default)s; 0: never)",
    )
    parser.set_defaults(func=_cmd_serve)
    return parser


def _cmd_serve(args, console):
    """Run ``skmedimg serve`` (``console`` has ``say`` and ``warn``)."""
    _require_flask()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        models, cards = _load_models(args.models)
    for warning in caught:
        console.warn(str(warning.message))
    for name, model in models.items():
        if _is_segmenter(model):
            regions = ", ".join(_segment_keys(model))
            console.say(f"loaded segmenter {name}: {model.network} ({regions})")
            continue
        classes = ", ".join(str(c) for c in model.classes_)
        console.say(f"loaded model {name}: {model.model_name} ({classes})")
    for name, card in cards.items():
        console.say(f"model card of {name}: {card['report']}")
    serve(
        models,
        host=args.host,
        port=args.port,
        max_upload_mb=args.max_upload_mb,
        quiet=getattr(args, "quiet", False),
        model_cards=cards,
        low_confidence_margin=getattr(
            args, "low_confidence_margin", DEFAULT_LOW_CONFIDENCE_MARGIN
        ),
    )
    return 0
