"""The ``skmedimg segment`` commands: train, evaluate and predict segmenters.

``segment train`` fits a :class:`~skmedimg.segmentation.CNNSegmenter` on a
folder of images and label masks (or, without a folder, on the embedded
phantoms of :func:`~skmedimg.datasets.make_segmentation_phantoms`), saves it
with :func:`~skmedimg.neural.save_model` and reports the Dice of every class
(or region) on a validation split; ``segment evaluate`` reports a saved
segmenter on another folder; ``segment predict`` writes the predicted masks
(NIfTI for volumes, PNG for 2-D images) and a summary.

Folder layouts, recognised by their sub-folders:

* ``imagesTr/`` + ``labelsTr/``: a Medical Segmentation Decathlon task
  (:func:`~skmedimg.datasets.load_decathlon`; ``dataset.json`` names the
  labels);
* ``images/`` + ``1st_manual/`` + ``mask/``: DRIVE
  (:func:`~skmedimg.datasets.load_drive`; vessels binarised, Dice inside the
  field of view);
* ``images/`` + ``masks/`` (or ``labels/``): images and masks paired by file
  name (PNG, TIFF, ... or NIfTI); a mask may add ``_mask``, ``_label``,
  ``_seg`` ... to its image's name.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import sys
import time
from pathlib import Path

from .cli import (
    _MODEL_FILE,
    CommandError,
    _Console,
    _figure,
    _json_default,
    _make_out,
    _model_path,
    _none,
    _one_line,
    _removes_new_empty_out,
    _table,
    _versions,
)

__all__ = ["add_segment_parser"]

#: The networks of CNNSegmenter (``skmedimg.segmentation.NETWORKS``, kept here
#: so that ``--help`` does not import torch; a test keeps the two equal).
NETWORKS = ("unet", "segresnet", "unetr", "timm_unet")

#: Named region sets of ``--regions``.
REGION_SETS = ("brats", "none")

_NIFTI = (".nii", ".nii.gz")
_MASK_SUFFIXES = (
    "_mask",
    "_masks",
    "-mask",
    "_label",
    "_labels",
    "_seg",
    "_segmentation",
    "_gt",
)
_N_LISTED = 10

#: The option of each CNNSegmenter parameter whose name differs.
_OPTION_OF = {"max_epochs": "--epochs", "verbose": "--quiet"}

#: Settings of the demo (the phantoms and a small U-Net that learns them in
#: about half a minute on two CPU cores), each overridden by its option.
_DEMO = {
    "n_classes": 3,
    "image_size": 64,
    "label_names": {"1": "edema", "2": "core"},
    "network_args": {"channels": (8, 16, 32), "strides": (2, 2), "num_res_units": 1},
    "params": {"max_epochs": 20, "lr": 1e-2, "batch_size": 8},
}


# --------------------------------------------------------------------------
# Option values
# --------------------------------------------------------------------------


def _roi_arg(value):
    """``64`` or ``128,128,64`` (also ``128x128x64``)."""
    parts = [p for p in re.split(r"[,x×]", value.strip()) if p.strip()]
    try:
        sides = [int(p) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{value!r}: a size such as 96 or 96,96 or 128,128,64"
        ) from None
    if not sides or min(sides) < 1:
        raise argparse.ArgumentTypeError(f"{value!r}: sides must be positive")
    return sides[0] if len(sides) == 1 else tuple(sides)


def _network_arg(value):
    """``NAME=VALUE`` for the network's constructor; VALUE a Python literal."""
    name, sep, text = value.partition("=")
    name = name.strip()
    if not sep or not name.isidentifier():
        raise argparse.ArgumentTypeError(
            f"{value!r}: NAME=VALUE, e.g. channels=16,32,64 or init_filters=8"
        )
    try:
        parsed = ast.literal_eval(text.strip())
    except (ValueError, SyntaxError):
        parsed = text.strip()  # a plain word: a string ("instance", "relu")
    if isinstance(parsed, list):
        parsed = tuple(parsed)
    return name, parsed


def _fraction_arg(value):
    fraction = float(value)
    if not 0 < fraction < 1:
        raise argparse.ArgumentTypeError(f"{value}: a fraction between 0 and 1")
    return fraction


def _epochs_or_none(value):
    return None if value == "none" else int(value)


# --------------------------------------------------------------------------
# Reading folders
# --------------------------------------------------------------------------


def _listed(items):
    items = [str(i) for i in items]
    more = len(items) - _N_LISTED
    return ", ".join(items[:_N_LISTED]) + (f" and {more} more" if more > 0 else "")


def _is_nifti(path):
    return str(path).lower().endswith(_NIFTI)


def _stem(name):
    lower = name.lower()
    for ext in _NIFTI:
        if lower.endswith(ext):
            return name[: -len(ext)]
    return os.path.splitext(name)[0]


def _image_files(folder):
    """Image and NIfTI files of ``folder`` (sub-folders included), sorted."""
    from .datasets import walk_files as _walk_files
    from .utils import IMAGE_EXTENSIONS

    extensions = tuple(IMAGE_EXTENSIONS) + _NIFTI
    return [f for f in _walk_files(folder) if f.lower().endswith(extensions)]


def _pair_folders(root, image_dir, mask_dir):
    """Pair the files of ``images/`` and ``masks/`` by name; errors name them."""
    images = _image_files(image_dir)
    if not images:
        raise CommandError(f"{image_dir}: no image files (PNG, TIFF, ..., NIfTI)")
    by_key = {}
    for path in images:
        key = os.path.relpath(
            os.path.join(os.path.dirname(path), _stem(os.path.basename(path))),
            image_dir,
        )
        if key in by_key:
            raise CommandError(
                f"{image_dir}: two images named {key!r}: {by_key[key]} and {path}"
            )
        by_key[key] = path
    masks = {}
    orphans = []
    for path in _image_files(mask_dir):
        rel = os.path.relpath(
            os.path.join(os.path.dirname(path), _stem(os.path.basename(path))),
            mask_dir,
        )
        candidates = [rel] + [
            rel[: -len(s)] for s in _MASK_SUFFIXES if rel.lower().endswith(s)
        ]
        key = next((c for c in candidates if c in by_key), None)
        if key is None:
            orphans.append(path)
            continue
        if key in masks:
            raise CommandError(
                f"two masks for the image {by_key[key]}: {masks[key]} and {path}"
            )
        masks[key] = path
    if orphans:
        raise CommandError(
            f"{len(orphans)} mask(s) without an image in {image_dir}: "
            f"{_listed(orphans)} (a mask is named like its image, optionally "
            "with _mask, _label or _seg added)"
        )
    missing = [by_key[k] for k in by_key if k not in masks]
    if missing:
        raise CommandError(
            f"{len(missing)} image(s) without a mask in {mask_dir}: {_listed(missing)}"
        )
    keys = sorted(by_key)
    return {
        "layout": "images/ + masks/",
        "images": [by_key[k] for k in keys],
        "masks": [masks[k] for k in keys],
        "names": keys,
        "label_names": None,
        "modalities": None,
        "fov_masks": None,
        "binarize": False,
    }


def _list_data(path):
    """The images and masks of a segmentation folder, by its layout."""
    from .datasets import load_decathlon, load_drive

    root = Path(path)
    if not root.exists():
        raise CommandError(f"{root}: no such folder")
    if not root.is_dir():
        raise CommandError(f"{root}: not a folder (segmentation data is a folder)")
    try:
        if (root / "imagesTr").is_dir():
            data = load_decathlon(root)
            return {
                "layout": "decathlon",
                "images": list(data.images),
                "masks": list(data.masks),
                "names": list(data.names),
                "label_names": (
                    {str(k): v for k, v in data.labels.items() if k != 0}
                    if data.labels
                    else None
                ),
                "modalities": data.modalities,
                "fov_masks": None,
                "binarize": False,
            }
        if (root / "1st_manual").is_dir():
            data = load_drive(root)
            return {
                "layout": "drive",
                "images": list(data.images),
                "masks": list(data.masks),
                "names": [str(i) for i in data.ids],
                "label_names": {"1": "vessel"},
                "modalities": None,
                "fov_masks": list(data.fov_masks),
                "binarize": True,
            }
    except (FileNotFoundError, ValueError) as exc:
        raise CommandError(_one_line(exc)) from None
    if (root / "images").is_dir():
        for name in ("masks", "labels"):
            if (root / name).is_dir():
                return _pair_folders(root, root / "images", root / name)
        raise CommandError(f"{root} has images/ but no masks/ folder beside it")
    raise CommandError(
        f"{root}: expected imagesTr/ + labelsTr/ (Medical Segmentation "
        "Decathlon), images/ + masks/, or images/ + 1st_manual/ + mask/ (DRIVE)"
    )


def _read_image(path, n_channels=None):
    """One image: ``(*spatial[, C])`` from a 2-D file, ``(*spatial, C)`` from NIfTI.

    2-D files are read in gray for a one-channel model and in RGB for a
    three-channel one, whatever they hold; otherwise as stored.
    """
    from .utils import read_images, read_volume

    if _is_nifti(path):
        return read_volume(path)
    color = {1: "gray", 3: "rgb"}.get(n_channels, "keep")
    return read_images([path], color=color)[0]


def _read_failure(exc):
    from .utils import ImageReadError

    if isinstance(exc, ImageReadError) and exc.failures:
        return exc.failures[0][2]
    return _one_line(exc)


def _n_channels(image, spatial_dims):
    return 1 if image.ndim == spatial_dims else int(image.shape[-1])


def _read_all(data, n_channels, quiet):
    """Read every image and mask; return them and the unreadable files."""
    from .utils import ImageReadError, read_masks

    read = {"X": [], "y": [], "names": [], "paths": [], "fovs": [], "skipped": []}
    fov_paths = data["fov_masks"] or [None] * len(data["images"])
    bar = None
    if not quiet and len(data["images"]) > 50:
        from tqdm.auto import tqdm

        bar = tqdm(
            total=len(data["images"]), desc="Reading", unit="img", file=sys.stderr
        )
    for image_path, mask_path, name, fov_path in zip(
        data["images"], data["masks"], data["names"], fov_paths, strict=True
    ):
        if bar is not None:
            bar.update(1)
        try:
            image = _read_image(image_path, n_channels)
        except (ImageReadError, FileNotFoundError) as exc:
            read["skipped"].append((image_path, _read_failure(exc)))
            continue
        try:
            mask = read_masks(mask_path, binarize=data["binarize"])
            fov = None if fov_path is None else read_masks(fov_path, binarize=True)
        except (ImageReadError, FileNotFoundError) as exc:
            read["skipped"].append((mask_path, _read_failure(exc)))
            continue
        if image.shape[: mask.ndim] != mask.shape or image.ndim > mask.ndim + 1:
            spatial = image.shape if image.ndim <= mask.ndim else image.shape[:-1]
            raise CommandError(
                f"{image_path} has spatial shape {spatial} but its mask "
                f"{mask_path} has shape {mask.shape}; a mask has its image's "
                "spatial shape"
            )
        for key, value in zip(
            ("X", "y", "names", "paths", "fovs"),
            (image, mask, name, image_path, fov),
            strict=True,
        ):
            read[key].append(value)
    if bar is not None:
        bar.close()
    return read


def _read_pairs(data, console, *, n_channels=None):
    """Read the images and masks of ``data``; skip unreadable pairs with a warning.

    Returns a dict of lists ``X``, ``y``, ``names``, ``paths``, ``fovs``
    (None without field-of-view masks) and ``skipped`` (``(file, reason)``).
    """
    read = _read_all(data, n_channels, console.quiet)
    if not read["X"]:
        raise CommandError("no image and mask could be read")
    dims = {m.ndim for m in read["y"]}
    if len(dims) > 1:
        raise CommandError(
            "the masks mix 2-D and 3-D shapes; a folder holds one kind: "
            + _listed(
                f"{n} {m.shape}" for n, m in zip(read["paths"], read["y"], strict=True)
            )
        )
    spatial_dims = dims.pop()
    channels = {_n_channels(im, spatial_dims) for im in read["X"]}
    if len(channels) > 1 and spatial_dims == 2 and n_channels is None:
        read = _read_all(data, 3, console.quiet)  # gray and colour: all in colour
    if read["skipped"]:
        listing = "; ".join(f"{item} ({reason})" for item, reason in read["skipped"])
        console.warn(f"skipping {len(read['skipped'])} unreadable file(s): {listing}")
    if data["fov_masks"] is None:
        read["fovs"] = None
    return read


# --------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------


def _brats_regions():
    from .segmentation import BRATS_REGIONS

    return dict(BRATS_REGIONS)


def _make_segmenter(args, demo):
    """The unfitted CNNSegmenter of the options, checked; errors name the option."""
    from sklearn.utils._param_validation import InvalidParameterError

    from .segmentation import CNNSegmenter

    params = {
        "network": args.network,
        "regions": _brats_regions() if args.regions == "brats" else None,
        "device": args.device,
        "precision": args.precision,
        "random_state": args.random_state,
        "verbose": 0 if args.quiet else 1,
    }
    given = {
        "roi_size": args.roi_size,
        "max_epochs": args.max_epochs,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "loss": args.loss,
        "early_stopping": args.early_stopping,
        "encoder": args.encoder,
    }
    network_args = dict(args.network_arg or [])
    if demo:
        params.update(_DEMO["params"])
        if args.network == "unet" and not network_args:
            network_args = dict(_DEMO["network_args"])
    params.update({k: v for k, v in given.items() if v is not None})
    if args.augment is not None:
        params["augment"] = _none(args.augment)
    params.update({f"network__{k}": v for k, v in network_args.items()})
    model = CNNSegmenter(**params)
    try:
        model._validate_params()
    except InvalidParameterError as exc:
        message = _one_line(exc)
        found = re.match(r"The '(\w+)' parameter", message)
        if found:
            name = found.group(1)
            option = _OPTION_OF.get(name, "--" + name.replace("_", "-"))
            message = f"{option}: {message}"
        raise CommandError(message) from None
    return model


def _check_out(out):
    """Check that ``--out`` can be a folder, before anything is read."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise CommandError(f"--out {out}: exists and is not a folder")
    existing = next(p for p in (out.absolute(), *out.absolute().parents) if p.exists())
    if not (existing.is_dir() and os.access(existing, os.W_OK | os.X_OK)):
        raise CommandError(f"--out {out}: {existing} is not a writable folder")
    return out


def _load_segmenter(path):
    """Load a saved CNNSegmenter; a classifier or another file is a clear error."""
    from .neural import load_model

    path = _model_path(path)
    try:
        model = load_model(path)
    except (ValueError, OSError) as exc:
        raise CommandError(
            f"{path}: not a segmentation model saved by skmedimg ({_one_line(exc)})"
        ) from None
    if not hasattr(model, "spatial_dims_"):
        raise CommandError(
            f"{path}: a {type(model).__name__} (a classification model), not a "
            "segmenter; 'skmedimg evaluate' and 'skmedimg predict' take it, and "
            "'skmedimg segment train' makes a segmenter"
        )
    return model


def _describe(model):
    regions = model.regions_
    what = (
        f"regions {', '.join(regions)}"
        if regions is not None
        else "labels " + ", ".join(str(c) for c in model.classes_)
    )
    return f"{model.network} ({model.spatial_dims_}-D, {what})"


# --------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------


def _region_stack(mask, regions):
    import numpy as np

    return np.stack([np.isin(mask, labels) for labels in regions.values()], axis=-1)


def _report_masks(model, y, pred, fovs):
    """Masks as the report scores them: region stacks, inside the field of view."""
    import numpy as np

    true = [np.asarray(m) for m in y]
    pred = [np.asarray(p) for p in pred]
    if fovs is not None:  # DRIVE: only the pixels inside the field of view
        true = [np.where(f > 0, t, 0) for t, f in zip(true, fovs, strict=True)]
        if model.regions is None:
            pred = [np.where(f > 0, p, 0) for p, f in zip(pred, fovs, strict=True)]
        else:
            pred = [p & (f > 0)[..., None] for p, f in zip(pred, fovs, strict=True)]
    if model.regions is not None:
        true = [_region_stack(t, model.regions) for t in true]
    return true, pred


def _class_names(model, label_names):
    """Display names of the report's keys (labels as text, or regions)."""
    if model.regions is not None:
        return {name: name for name in model.regions_}
    names = label_names or {}
    return {str(c): names.get(str(c), str(c)) for c in model.classes_ if c != 0}


def _dice_report(model, y, pred, names, fovs, label_names):
    import numpy as np

    from .segmentation import dice_score, segmentation_report

    true, pred = _report_masks(model, y, pred, fovs)
    if model.regions is not None:
        kw = {"regions": {n: list(v) for n, v in model.regions.items()}}
        keys = list(model.regions_)
    else:
        kw = {"labels": [int(c) for c in model.classes_ if c != 0]}
        keys = [str(c) for c in kw["labels"]]
    report = segmentation_report(true, pred, **kw)
    report["names"] = _class_names(model, label_names)
    per_image = []
    for name, t, p in zip(names, true, pred, strict=True):
        values = dice_score([t], [p], average=None, **kw)
        per_image.append(
            {
                "image": str(name),
                "dice": {k: float(v) for k, v in zip(keys, values, strict=True)},
                "mean_dice": float(np.mean(values)) if len(values) else None,
            }
        )
    report["per_image"] = per_image
    if fovs is not None:
        report["field_of_view"] = "Dice and volumes count the pixels inside it only"
    return report


def _write_overlay(model, X, y, pred, names, path, label_names, n_max=4):
    """Ground truth (solid) and prediction (dashed) over a few images."""
    import numpy as np
    from matplotlib.figure import Figure

    from .segmentation import plot_segmentation

    legend = _class_names(model, label_names)
    if model.regions is not None:
        truth = [_region_stack(m, model.regions) for m in y]
        legend_names = list(model.regions_)
    else:
        truth = list(y)
        legend_names = {int(k): v for k, v in legend.items()}
    pred = [np.asarray(p) for p in pred]
    if model.spatial_dims_ == 3:  # a montage of the volume with most foreground
        i = int(np.argmax([np.count_nonzero(m) for m in y]))
        fig = plot_segmentation(
            X[i], truth[i], pred=pred[i], names=legend_names, channel=0
        )
        fig.suptitle(f"{names[i]} (solid: ground truth, dashed: prediction)")
        fig.savefig(path, dpi=100)
        return
    k = min(n_max, len(X))
    fig = Figure(figsize=(3.3 * k + 1.8, 3.8), layout="constrained")
    axes = fig.subplots(1, k, squeeze=False).ravel()
    for i, ax in enumerate(axes):
        image = X[i]
        channel = 0 if image.ndim == 3 and image.shape[-1] not in (3, 4) else None
        plot_segmentation(
            image, truth[i], pred=pred[i], names=legend_names, ax=ax, channel=channel
        )
        ax.set_title(str(names[i]), fontsize=9)
        if i < k - 1 and ax.get_legend() is not None:
            ax.get_legend().remove()  # one legend, beside the last image
    fig.savefig(path, dpi=100)


def _write_curves(model, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .metrics import plot_training_curves

    history = getattr(model, "history_", None)
    if not history or not history.get("epoch"):
        return False
    fig = plot_training_curves(history)
    _figure(fig).savefig(path, dpi=120, bbox_inches="tight")
    plt.close("all")
    return True


def _report(model, X, y, names, out, console, *, fovs, label_names, extra):
    """Predict, print the Dice table, write report.json and the plots."""
    start = time.perf_counter()
    pred = list(model.predict(X))
    predict_s = time.perf_counter() - start
    metrics = _dice_report(model, y, pred, names, fovs, label_names)
    shown = {
        key: key if name == key else f"{key} ({name})"
        for key, name in metrics["names"].items()
    }
    rows = [
        {
            "class": shown.get(key, key),
            "dice": value["dice"],
            "hd95": "-" if value["hd95"] is None else value["hd95"],
            "volume_true": value["volume_true"],
            "volume_pred": value["volume_pred"],
        }
        for key, value in metrics["classes"].items()
    ]
    if rows:
        console.say(_table(rows))
    files = ["report.json", "overlay.png"]
    _write_overlay(model, X, y, pred, names, out / "overlay.png", label_names)
    if _write_curves(model, out / "training_curves.png"):
        files.append("training_curves.png")
    report = {
        "task": "segmentation",
        "metrics": metrics,
        "n_test": len(y),
        **extra,
        "model": {
            **extra.get("model", {}),
            "network": model.network,
            "spatial_dims": model.spatial_dims_,
            "n_channels": model.n_channels_in_,
            "roi_size": list(model.roi_size_),
            "classes": model.classes_.tolist(),
            "regions": model.regions,
            "n_epochs": model.n_epochs_,
            "history": model.history_,
        },
        "timings": {**extra.get("timings", {}), "predict_s": predict_s},
        "versions": _seg_versions(),
    }
    with open(out / "report.json", "w") as fh:
        json.dump(report, fh, indent=2, default=_json_default)
    mean = metrics["mean"]["dice"]
    console.result(
        f"mean Dice {mean:.4f} on {len(y)} image(s); wrote "
        + ", ".join(str(out / f) for f in files)
    )
    return report


def _seg_versions():
    import monai

    versions = _versions()
    versions["monai"] = monai.__version__
    try:
        import nibabel

        versions["nibabel"] = nibabel.__version__
    except ImportError:  # pragma: no cover - the seg extra installs it
        pass
    return versions


# --------------------------------------------------------------------------
# Commands
# --------------------------------------------------------------------------


def _split(n, names, args, where):
    """Train and validation indices: a seeded split, by group with a pattern."""
    import numpy as np
    from sklearn.model_selection import GroupShuffleSplit, train_test_split

    if n < 2:
        raise CommandError(
            f"{where}: {n} image(s); training needs at least 2 (one to train on, "
            "one to validate)"
        )
    index = np.arange(n)
    if not args.group_pattern:
        train, valid = train_test_split(
            index, test_size=args.validation_size, random_state=args.random_state
        )
        return np.sort(train), np.sort(valid), None
    pattern = re.compile(args.group_pattern)
    groups = []
    for name in names:
        found = pattern.search(str(name))
        if found is None:
            raise CommandError(
                f"--group-pattern {args.group_pattern!r} does not match {name!r}"
            )
        groups.append(found.group(0))
    if len(set(groups)) < 2:
        raise CommandError(
            f"--group-pattern {args.group_pattern!r} finds one group "
            f"({groups[0]!r}); a validation split by group needs two or more"
        )
    splitter = GroupShuffleSplit(
        1, test_size=args.validation_size, random_state=args.random_state
    )
    train, valid = next(splitter.split(index, groups=groups))
    return np.sort(train), np.sort(valid), sorted(set(groups[i] for i in valid))


def _demo_data(args, console):
    from .datasets import make_segmentation_phantoms

    X, y = make_segmentation_phantoms(
        args.n_samples,
        image_size=_DEMO["image_size"],
        n_classes=_DEMO["n_classes"],
        random_state=args.random_state,
    )
    console.say(
        f"skmedimg segment demo: {args.n_samples} synthetic phantoms of "
        f"{_DEMO['image_size']} x {_DEMO['image_size']} pixels with lesions "
        "(labels 1 edema, 2 core), offline, from random weights."
    )
    data = {
        "layout": "phantoms",
        "label_names": dict(_DEMO["label_names"]),
        "modalities": None,
    }
    names = [f"phantom {i}" for i in range(len(X))]
    return list(X), list(y), names, None, [], data


@_removes_new_empty_out
def _cmd_train(args, console):
    import numpy as np

    from .neural import is_main_process, save_model

    demo = args.demo or args.data_dir is None
    if args.demo and args.data_dir is not None:
        raise CommandError("--demo trains on phantoms; give no DATA_DIR with it")
    out = _check_out(args.out)
    # Under torchrun every process runs this command and trains its shard of
    # the one model (CNNSegmenter(distributed="auto")); only rank 0 prints
    # and writes the folder.
    writer = is_main_process()
    if not writer:
        console = _Console(True, silent=True)
    model = _make_segmenter(args, demo)
    start = time.perf_counter()
    if demo:
        X, y, names, fovs, skipped, data = _demo_data(args, console)
        where = "the phantoms"
    else:
        data = _list_data(args.data_dir)
        if args.binarize:
            data["binarize"] = True
        read = _read_pairs(data, console)
        X, y, names, fovs = read["X"], read["y"], read["names"], read["fovs"]
        skipped = read["skipped"]
        where = str(args.data_dir)
    train, valid, valid_groups = _split(len(X), names, args, where)
    load_s = time.perf_counter() - start
    if writer:
        _make_out(out)

    def take(items, index):
        return None if items is None else [items[i] for i in index]

    labels = np.unique(np.concatenate([np.unique(m) for m in y]))
    spatial = y[0].shape if len({m.shape for m in y}) == 1 else "various sizes"
    console.say(
        f"Training {args.network} on {len(train)} image(s) ({y[0].ndim}-D, "
        f"{spatial}, {_n_channels(X[0], y[0].ndim)} channel(s), labels "
        f"{labels.tolist()}), validating on {len(valid)}"
    )
    start = time.perf_counter()
    model.fit(take(X, train), take(y, train))
    fit_s = time.perf_counter() - start
    if not writer:
        return 0
    save_model(model, out / _MODEL_FILE)  # before anything else can fail
    settings = {k: v for k, v in vars(args).items() if k != "func"}
    extra = {
        "data": {
            "dir": None if demo else str(args.data_dir),
            "layout": data["layout"],
            "n_images": len(X),
            "label_names": data["label_names"],
            "modalities": data["modalities"],
            "skipped_unreadable": [item for item, _ in skipped],
        },
        "split": {
            "validation_size": args.validation_size,
            "random_state": args.random_state,
            "group_pattern": args.group_pattern,
            "validation_groups": valid_groups,
            "n_train": len(train),
            "n_validation": len(valid),
            "validation": take(names, valid),
        },
        "settings": settings,
        "model": {
            "file": str(out / _MODEL_FILE),
            "params": {
                k: v
                for k, v in model.get_params().items()
                if k not in ("verbose",)
            },
            "weights_source": getattr(model, "weights_source_", None),
        },
        "timings": {"load_s": load_s, "fit_s": fit_s},
    }
    _report(
        model,
        take(X, valid),
        take(y, valid),
        take(names, valid),
        out,
        console,
        fovs=take(fovs, valid),
        label_names=data["label_names"],
        extra=extra,
    )
    console.say(f"Model saved to {out / _MODEL_FILE}")
    return 0


def _check_fits(model, X, names):
    """Each image has the model's spatial axes and channels; errors name it."""
    dims, channels = model.spatial_dims_, model.n_channels_in_
    for image, name in zip(X, names, strict=True):
        ok_dims = image.ndim == dims + 1 or (channels == 1 and image.ndim == dims)
        if not ok_dims or _n_channels(image, dims) != channels:
            raise CommandError(
                f"{name}: an image of shape {image.shape}, but the model segments "
                f"{dims}-D images with {channels} channel(s)"
            )


@_removes_new_empty_out
def _cmd_evaluate(args, console):
    model = _load_segmenter(args.model)
    out = _check_out(args.out)
    start = time.perf_counter()
    data = _list_data(args.data_dir)
    if args.binarize:
        data["binarize"] = True
    read = _read_pairs(data, console, n_channels=model.n_channels_in_)
    X, y, names, fovs = read["X"], read["y"], read["names"], read["fovs"]
    _check_fits(model, X, read["paths"])
    load_s = time.perf_counter() - start
    _make_out(out)
    console.say(f"Evaluating {_describe(model)} on {len(X)} image(s)")
    _report(
        model,
        X,
        y,
        names,
        out,
        console,
        fovs=fovs,
        label_names=data["label_names"],
        extra={
            "data": {
                "dir": str(args.data_dir),
                "layout": data["layout"],
                "label_names": data["label_names"],
                "skipped_unreadable": [item for item, _ in read["skipped"]],
            },
            "model": {"file": str(_model_path(args.model))},
            "timings": {"load_s": load_s},
        },
    )
    return 0


def _collect(inputs):
    """Image and NIfTI files named on the command line; folders searched."""
    paths, failures = [], []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found = _image_files(p)
            if not found:
                failures.append((str(p), "no image or NIfTI files in this folder"))
            paths += found
        else:
            paths.append(str(p))
    return paths, failures


def _mask_name(path, taken, suffix):
    stem = _stem(os.path.basename(path))
    name, k = f"{stem}_mask", 2
    while name in taken:
        name, k = f"{stem}_mask-{k}", k + 1
    taken.add(name)
    return name + suffix


def _write_mask(mask, source, out, taken, model):
    """Write one predicted mask: NIfTI beside a NIfTI input, else PNG(s)."""
    import numpy as np
    from PIL import Image

    regions = model.regions_
    if regions is not None:
        mask = mask.astype(np.uint8)
    elif mask.max(initial=0) < 256:
        mask = mask.astype(np.uint8)
    else:
        mask = mask.astype(np.uint16 if mask.max() < 65536 else np.int32)
    if _is_nifti(source):
        import nibabel as nib

        image = nib.load(source)
        name = _mask_name(source, taken, ".nii.gz")
        written = nib.Nifti1Image(mask, image.affine)
        written.header.set_xyzt_units(*image.header.get_xyzt_units())
        nib.save(written, str(out / name))
        zooms = image.header.get_zooms()[: model.spatial_dims_]
        return [str(out / name)], float(np.prod(zooms))
    name = _mask_name(source, taken, ".png")
    if regions is None:
        Image.fromarray(mask).save(out / name)
        return [str(out / name)], None
    files = []
    for k, region in enumerate(regions):  # one 0/1 PNG per region
        region_name = name[: -len(".png")] + f"_{region}.png"
        Image.fromarray(mask[..., k]).save(out / region_name)
        files.append(str(out / region_name))
    return files, None


def _fractions(model, mask):
    import numpy as np

    if model.regions_ is not None:
        return {
            r: float(mask[..., k].mean()) for k, r in enumerate(model.regions_)
        }, {r: int(mask[..., k].sum()) for k, r in enumerate(model.regions_)}
    counts = {str(c): int(np.count_nonzero(mask == c)) for c in model.classes_}
    return {c: n / mask.size for c, n in counts.items()}, counts


@_removes_new_empty_out
def _cmd_predict(args, console):
    model = _load_segmenter(args.model)
    out = _check_out(args.out)
    paths, failures = _collect(args.images)
    for item, reason in failures:
        print(f"skmedimg: cannot read {item}: {reason}", file=sys.stderr)
    _make_out(out)
    from tqdm.auto import tqdm

    rows, taken = [], set()
    bar = tqdm(
        paths,
        desc="Segmenting",
        unit="img",
        file=sys.stderr,
        disable=args.quiet or len(paths) < 2,
    )
    for path in bar:
        try:
            image = _read_image(path, model.n_channels_in_)
            _check_fits(model, [image], [path])
        except CommandError as exc:  # a 2-D image for a 3-D model ...
            failures.append((path, str(exc).partition(": ")[2]))
        except Exception as exc:  # unreadable: reported, the others predicted
            failures.append((path, _read_failure(exc)))
        else:
            mask = model.predict([image])[0]
            files, voxel = _write_mask(mask, path, out, taken, model)
            fractions, counts = _fractions(model, mask)
            row = {
                "image": path,
                "masks": files,
                "shape": list(mask.shape[: model.spatial_dims_]),
                "fractions": fractions,
            }
            if voxel is not None:  # voxel size from the NIfTI header (mm)
                row["voxel_volume_mm3"] = voxel
                row["volumes_ml"] = {k: n * voxel / 1000 for k, n in counts.items()}
            rows.append(row)
            continue
        print(f"skmedimg: cannot segment {path}: {failures[-1][1]}", file=sys.stderr)
    summary = {
        "model": str(_model_path(args.model)),
        "classes": model.classes_.tolist(),
        "regions": model.regions_,
        "masks": "label values as trained (PNG, NIfTI)"
        if model.regions_ is None
        else "one 0/1 mask per region (a PNG each, or the 4th NIfTI axis)",
        "images": rows,
        "failures": [{"image": item, "error": reason} for item, reason in failures],
    }
    with open(out / "summary.json", "w") as fh:
        json.dump(summary, fh, indent=2, default=_json_default)
    if rows:
        shown = [k for k in rows[0]["fractions"] if k != "0"]
        console.say(
            _table(
                [
                    {
                        "image": r["image"],
                        "mask": os.path.basename(r["masks"][0]),
                        **{f"% {k}": f"{100 * r['fractions'][k]:.2f}" for k in shown},
                    }
                    for r in rows
                ]
            )
        )
    console.result(
        f"segmented {len(rows)} image(s); wrote {out / 'summary.json'}"
        + (f"; {len(failures)} failed" if failures else "")
    )
    return 1 if failures else 0


# --------------------------------------------------------------------------
# Parser
# --------------------------------------------------------------------------


def _add_common(parser):
    parser.add_argument("--quiet", action="store_true", help="print only results")
    parser.add_argument(
        "--debug", action="store_true", help="show tracebacks on failure"
    )


def _add_binarize(parser):
    parser.add_argument(
        "--binarize",
        action="store_true",
        help="read masks as 0/1 (mask > 0), for masks stored as 0/255 "
        "(automatic for DRIVE)",
    )


def add_segment_parser(subparsers):
    """Add ``skmedimg segment {train,evaluate,predict}`` to the command line.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        The result of ``parser.add_subparsers()``.

    Returns
    -------
    parser : argparse.ArgumentParser
        The ``segment`` parser.
    """
    segment = subparsers.add_parser(
        "segment",
        help="segmentation: train, evaluate and predict with CNNSegmenter",
        description="Train, evaluate and apply segmentation models "
        "(skmedimg.segmentation.CNNSegmenter) on 2-D images and 3-D volumes.",
    )
    commands = segment.add_subparsers(
        dest="segment_command", required=True, metavar="COMMAND"
    )

    train = commands.add_parser(
        "train",
        help="train on a folder of images and masks (no folder: phantoms)",
        description="Train a segmenter on DATA_DIR: imagesTr/ + labelsTr/ "
        "(Medical Segmentation Decathlon), images/ + masks/ (masks named like "
        "their images), or DRIVE's images/ + 1st_manual/ + mask/. Without "
        "DATA_DIR, or with --demo, on synthetic phantoms, offline. Writes "
        "model.skmedimg, report.json (Dice of every class or region on a "
        "validation split), overlay.png and training_curves.png to --out.",
    )
    train.add_argument(
        "data_dir", nargs="?", default=None, metavar="DATA_DIR",
        help="the data folder (default: the phantoms)",
    )
    train.add_argument(
        "--demo", action="store_true", help="train on synthetic phantoms, offline"
    )
    train.add_argument(
        "--n-samples", type=int, default=64,
        help="phantoms of the demo (%(default)s)",
    )
    train.add_argument(
        "--out", default="skmedimg-segmenter", help="output folder (%(default)s)"
    )
    train.add_argument(
        "--network", choices=NETWORKS, default="unet",
        help="MONAI U-Net, SegResNet, UNETR, or a 2-D U-Net with a timm encoder "
        "(%(default)s)",
    )
    train.add_argument(
        "--network-arg", type=_network_arg, action="append", metavar="NAME=VALUE",
        help="an argument of the network's constructor, repeatable: "
        "channels=16,32,64 (U-Net), init_filters=8 (SegResNet) ...",
    )
    train.add_argument(
        "--encoder", default=None,
        help="timm backbone of --network timm_unet (tf_efficientnet_lite0)",
    )
    train.add_argument(
        "--roi-size", type=_roi_arg, default=None, metavar="SIZE",
        help="training patch and sliding window: 96, or 128,128,64 (default: the "
        "largest image, rounded up to the network's size rule)",
    )
    train.add_argument(
        "--epochs", "--max-epochs", dest="max_epochs", type=int, default=None,
        help="epochs (default: 50; the demo 20)",
    )
    train.add_argument(
        "--batch-size", type=int, default=None,
        help="patches per step (default: 2; the demo 8)",
    )
    train.add_argument(
        "--lr", type=float, default=None,
        help="learning rate (default: 1e-3; the demo 1e-2)",
    )
    train.add_argument(
        "--loss", choices=["dice", "dice_ce", "dice_focal"], default=None,
        help="MONAI's Dice, Dice + cross-entropy or Dice + focal loss (dice_ce)",
    )
    train.add_argument(
        "--augment", choices=["report", "flip", "none"], default=None,
        help="report: flips and intensity jitter; flip: flips only (report)",
    )
    train.add_argument(
        "--early-stopping", type=_epochs_or_none, default=None, metavar="PATIENCE",
        help="stop after PATIENCE epochs without a better Dice on a split of the "
        "training images (default: none)",
    )
    train.add_argument(
        "--regions", choices=REGION_SETS, default="none",
        help="brats: predict the BraTS regions WT {1,2,3}, TC {2,3}, ET {3} of "
        "the Decathlon labels instead of the labels (%(default)s)",
    )
    _add_binarize(train)
    train.add_argument(
        "--validation-size", type=_fraction_arg, default=0.2, metavar="FRACTION",
        help="share of the images held out for the report (%(default)s)",
    )
    train.add_argument(
        "--group-pattern", default=None, metavar="REGEX",
        help="split by group: the part of each file name the regular expression "
        "matches, e.g. 'BRATS_[0-9]+' keeps a patient's images together",
    )
    train.add_argument(
        "--device", default="auto", help="auto, cpu, cuda, cuda:1 ... (%(default)s)"
    )
    train.add_argument(
        "--precision", choices=["auto", "fp32", "bf16", "fp16"], default="auto",
        help="auto: bf16 autocast on GPUs that support it (%(default)s)",
    )
    train.add_argument(
        "--random-state", type=int, default=0,
        help="seed of the phantoms, the split and the model (%(default)s)",
    )
    _add_common(train)
    train.set_defaults(func=_cmd_train)

    evaluate = commands.add_parser(
        "evaluate",
        help="report a saved segmenter on a folder of images and masks",
        description="Dice of every class (or region) of a saved segmenter on "
        "DATA_DIR (same layouts as 'segment train'): report.json, overlay.png.",
    )
    evaluate.add_argument("model", help="model file or the folder holding it")
    evaluate.add_argument("data_dir", metavar="DATA_DIR")
    evaluate.add_argument("--out", default="skmedimg-segmentation-evaluation")
    _add_binarize(evaluate)
    _add_common(evaluate)
    evaluate.set_defaults(func=_cmd_evaluate)

    predict = commands.add_parser(
        "predict",
        help="write the masks a saved segmenter predicts",
        description="Segment images and volumes: a NIfTI mask for each NIfTI "
        "volume, a PNG mask for each 2-D image, and summary.json (the share of "
        "each class, volumes in ml for NIfTI) in --out.",
    )
    predict.add_argument("model", help="model file or the folder holding it")
    predict.add_argument("images", nargs="+", metavar="IMAGE_OR_DIR")
    predict.add_argument("--out", default="skmedimg-masks", help="output folder")
    _add_common(predict)
    predict.set_defaults(func=_cmd_predict)
    return segment
