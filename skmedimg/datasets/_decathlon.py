"""Segmentation data sets on disk: Medical Segmentation Decathlon and DRIVE."""

from __future__ import annotations

import json
import os
import re

import numpy as np
from sklearn.utils import Bunch

__all__ = ["load_decathlon", "load_drive"]

_NIFTI = (".nii.gz", ".nii")
_SPLITS = {"training": ("imagesTr", "labelsTr"), "test": ("imagesTs", None)}
_N_LISTED = 10


def _listed(names):
    names = sorted(names)
    more = len(names) - _N_LISTED
    return ", ".join(names[:_N_LISTED]) + (f" and {more} more" if more > 0 else "")


def _nifti_files(folder):
    """Sorted NIfTI file names of ``folder``, hidden files (``._x``) left out."""
    return sorted(
        name
        for name in os.listdir(folder)
        if not name.startswith(".")
        and name.lower().endswith(_NIFTI)
        and os.path.isfile(os.path.join(folder, name))
    )


def _stem(name):
    lower = name.lower()
    for ext in _NIFTI:
        if lower.endswith(ext):
            return name[: -len(ext)]
    return name


def _read_dataset_json(path):
    try:
        with open(path, encoding="utf-8") as f:
            meta = json.load(f)
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path} is not a readable JSON file: {exc}") from exc
    if not isinstance(meta, dict):
        raise ValueError(f"{path} must hold a JSON object, got {type(meta).__name__}")

    def keyed(entry_name, convert_values):
        entry = meta.get(entry_name)
        if entry is None:
            return None
        if not isinstance(entry, dict):
            raise ValueError(
                f"{path}: '{entry_name}' must map indices to names, got {entry!r}"
            )
        try:
            items = sorted((int(k), v) for k, v in entry.items())
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"{path}: the keys of '{entry_name}' must be integers, got "
                f"{sorted(entry)}"
            ) from exc
        return convert_values(items)

    labels = keyed("labels", dict)
    modalities = keyed("modality", lambda items: [name for _, name in items])
    return meta, labels, modalities


def load_decathlon(root, *, split="training"):
    """List the images and label masks of a Medical Segmentation Decathlon task.

    Reads the folder layout of the Decathlon tasks (``Task01_BrainTumour``
    and its siblings): ``imagesTr/`` and ``labelsTr/`` hold NIfTI files of the
    same name (an image and its label mask), ``imagesTs/`` the unlabelled test
    images, and an optional ``dataset.json`` names the labels and the
    modalities (the channels on the images' 4th axis). Files are listed, not
    read: read them with :func:`skmedimg.utils.read_volume` and
    :func:`skmedimg.utils.read_masks`. Hidden files (the ``._`` files of
    archives made on macOS) are ignored.

    Parameters
    ----------
    root : str or path-like
        The task folder, the one holding ``imagesTr/``.
    split : {"training", "test"}, default="training"
        ``"training"`` pairs ``imagesTr/`` with ``labelsTr/``; ``"test"`` lists
        ``imagesTs/`` (no masks).

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        With the fields

        images : ndarray of str of shape (n_samples,)
            Image paths, sorted by file name.
        masks : ndarray of str of shape (n_samples,) or None
            The label mask of each image (same file name in ``labelsTr/``);
            None for ``split="test"``.
        names : ndarray of str of shape (n_samples,)
            File names without ``.nii.gz`` (for example ``BRATS_009``), to
            split by patient.
        labels : dict of int to str or None
            ``dataset.json``'s ``"labels"`` (for Task01: 0 background,
            1 edema, 2 non-enhancing tumour, 3 enhancing tumour), or None
            without ``dataset.json``.
        target_names : list of str or None
            The same names in label order, under the key every loader uses
            for class names (a legend's ``names`` for
            :func:`skmedimg.segmentation.plot_segmentation`), or None.
        modalities : list of str or None
            ``dataset.json``'s ``"modality"`` in channel order (for Task01:
            FLAIR, T1w, t1gd, T2w), or None.
        DESCR : str
            A one-line description.

    Raises
    ------
    FileNotFoundError
        If ``root`` or its images folder is missing, or an image has no label
        file (the message names the missing files).
    ValueError
        If ``split`` is unknown, the folder holds no NIfTI images, a label
        file has no image, or ``dataset.json`` is malformed.

    See Also
    --------
    load_drive : The DRIVE retinal vessel data set.
    skmedimg.utils.read_volume : Read the images, channels last.

    Examples
    --------
    >>> from skmedimg.datasets import load_decathlon
    >>> data = load_decathlon("Task01_BrainTumour")  # doctest: +SKIP
    >>> data.modalities  # doctest: +SKIP
    ['FLAIR', 'T1w', 't1gd', 'T2w']
    """
    if split not in _SPLITS:
        raise ValueError(f"split must be one of {sorted(_SPLITS)}, got {split!r}")
    root = os.fspath(root)
    if not os.path.isdir(root):
        raise FileNotFoundError(f"Decathlon folder not found: {root}")
    image_dir_name, label_dir_name = _SPLITS[split]
    image_dir = os.path.join(root, image_dir_name)
    if not os.path.isdir(image_dir):
        raise FileNotFoundError(
            f"{root} has no {image_dir_name}/ folder (expected the Medical "
            "Segmentation Decathlon layout imagesTr/, labelsTr/, imagesTs/)"
        )
    names = _nifti_files(image_dir)
    if not names:
        raise ValueError(f"{image_dir} holds no NIfTI images (.nii, .nii.gz)")

    masks = None
    if label_dir_name is not None:
        label_dir = os.path.join(root, label_dir_name)
        if not os.path.isdir(label_dir):
            raise FileNotFoundError(f"{root} has no {label_dir_name}/ folder")
        label_names = set(_nifti_files(label_dir))
        missing = [n for n in names if n not in label_names]
        if missing:
            raise FileNotFoundError(
                f"{len(missing)} image(s) of {image_dir} have no label file in "
                f"{label_dir}: {_listed(missing)}"
            )
        orphans = sorted(label_names - set(names))
        if orphans:
            raise ValueError(
                f"{len(orphans)} label file(s) of {label_dir} have no image in "
                f"{image_dir}: {_listed(orphans)}"
            )
        masks = np.asarray([os.path.join(label_dir, n) for n in names], dtype=str)

    labels = modalities = None
    meta = {}
    json_path = os.path.join(root, "dataset.json")
    if os.path.isfile(json_path):
        meta, labels, modalities = _read_dataset_json(json_path)
    title = meta.get("name") or os.path.basename(os.path.normpath(root))
    descr = f"Medical Segmentation Decathlon {title} ({split}): {len(names)} images"
    if modalities:
        descr += f", modalities {', '.join(modalities)}"
    return Bunch(
        images=np.asarray([os.path.join(image_dir, n) for n in names], dtype=str),
        masks=masks,
        names=np.asarray([_stem(n) for n in names], dtype=str),
        labels=labels,
        target_names=None if labels is None else [labels[k] for k in sorted(labels)],
        modalities=modalities,
        DESCR=descr + ".",
    )


_DRIVE_ID = re.compile(r"^(\d+)_")


def _drive_files(folder, suffixes):
    """Map each DRIVE image number to its file in ``folder``."""
    out = {}
    for name in sorted(os.listdir(folder)):
        if name.startswith(".") or not name.lower().endswith(suffixes):
            continue
        match = _DRIVE_ID.match(name)
        if match is None:
            continue
        key = int(match.group(1))
        if key in out:
            raise ValueError(
                f"{folder} holds two files for image {key}: {out[key]} and {name}"
            )
        out[key] = name
    return out


def load_drive(root):
    """List the images, vessel masks and field-of-view masks of DRIVE.

    Reads the layout of the DRIVE retinal vessel data set (the training or
    test folder of the official archive): ``images/NN_training.tif`` (RGB
    fundus photographs, 565 x 584), ``1st_manual/NN_manual1.gif`` (the first
    observer's vessel masks, stored as 0/255) and
    ``mask/NN_training_mask.gif`` (the field of view, 0/255). Files are
    matched by their leading number ``NN``. Published DRIVE figures are
    computed inside the field of view.

    Parameters
    ----------
    root : str or path-like
        The folder holding ``images/``, ``1st_manual/`` and ``mask/``.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        With the fields

        images : ndarray of str of shape (n_samples,)
            Photograph paths, sorted by image number.
        masks : ndarray of str of shape (n_samples,)
            Vessel mask paths (0 background, 255 vessel: read them with
            ``skmedimg.utils.read_masks(paths, binarize=True)`` for 0/1
            labels).
        fov_masks : ndarray of str of shape (n_samples,)
            Field-of-view mask paths (0 outside, 255 inside).
        ids : ndarray of int of shape (n_samples,)
            The image numbers (21 to 40 for the training split).
        target_names : list of str
            ``["background", "vessel"]``: the names of the binarised mask
            labels 0 and 1, under the key every loader uses for class names.
        DESCR : str
            A one-line description.

    Raises
    ------
    FileNotFoundError
        If ``root`` or one of its three folders is missing, or an image has no
        vessel or field-of-view mask (the message names the images).
    ValueError
        If ``images/`` holds no numbered TIFF images.

    See Also
    --------
    load_decathlon : Medical Segmentation Decathlon folders.
    skmedimg.utils.read_masks : Read the masks as integer arrays.

    Examples
    --------
    >>> from skmedimg.datasets import load_drive
    >>> data = load_drive("DRIVE/training")  # doctest: +SKIP
    >>> len(data.images), data.ids[0]  # doctest: +SKIP
    (20, 21)
    """
    root = os.fspath(root)
    if not os.path.isdir(root):
        raise FileNotFoundError(f"DRIVE folder not found: {root}")
    folders = {}
    for name in ("images", "1st_manual", "mask"):
        folder = os.path.join(root, name)
        if not os.path.isdir(folder):
            raise FileNotFoundError(
                f"{root} has no {name}/ folder (expected the DRIVE layout "
                "images/, 1st_manual/, mask/)"
            )
        folders[name] = folder
    images = _drive_files(folders["images"], (".tif", ".tiff"))
    if not images:
        raise ValueError(f"{folders['images']} holds no numbered TIFF images")
    vessels = _drive_files(folders["1st_manual"], (".gif", ".png", ".tif"))
    fovs = _drive_files(folders["mask"], (".gif", ".png", ".tif"))
    for kind, found in (("vessel mask", vessels), ("field-of-view mask", fovs)):
        missing = [images[k] for k in sorted(images) if k not in found]
        if missing:
            raise FileNotFoundError(
                f"{len(missing)} image(s) have no {kind} in {root}: {_listed(missing)}"
            )
    ids = sorted(images)
    return Bunch(
        images=np.asarray(
            [os.path.join(folders["images"], images[k]) for k in ids], dtype=str
        ),
        masks=np.asarray(
            [os.path.join(folders["1st_manual"], vessels[k]) for k in ids], dtype=str
        ),
        fov_masks=np.asarray(
            [os.path.join(folders["mask"], fovs[k]) for k in ids], dtype=str
        ),
        ids=np.asarray(ids, dtype=np.int64),
        target_names=["background", "vessel"],
        DESCR=f"DRIVE retinal vessels {root}: {len(ids)} images (ids "
        f"{ids[0]}-{ids[-1]}).",
    )
