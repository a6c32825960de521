"""Image datasets stored as ``<root>/<class>/<image>`` folders."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable

import numpy as np
from sklearn.utils import Bunch

from ..utils import IMAGE_EXTENSIONS

__all__ = ["load_image_folder"]

# Operating-system clutter that is never data: ignored without a warning, as
# are hidden files and folders (names starting with a dot).
_CLUTTER = {"thumbs.db", "desktop.ini", "__macosx"}
_N_LISTED = 10


def _is_ignored(name):
    return name.startswith(".") or name.lower() in _CLUTTER


def _normalise_extensions(extensions):
    if extensions is None:
        return tuple(IMAGE_EXTENSIONS)
    if isinstance(extensions, str) or not isinstance(extensions, Iterable):
        extensions = [extensions]
    out = []
    for ext in extensions:
        if not isinstance(ext, str) or not ext.strip(".").strip():
            raise ValueError(
                "extensions must be file name endings such as '.png' or 'jpg', "
                f"got {ext!r}"
            )
        ext = ext.lower()
        out.append(ext if ext.startswith(".") else "." + ext)
    if not out:
        raise ValueError("extensions must not be empty")
    return tuple(out)


def walk_files(folder, *, root=None, links=None):
    """All non-hidden files below ``folder``, sub-folders included.

    A folder's files come sorted by name, then its sub-folders, sorted.
    Symbolic links to folders are followed, except to a folder already
    walked or to one of ``folder``'s ancestors (a loop), and, when ``root``
    is given, to a folder elsewhere below ``root`` (another class folder of
    the same data set): those would repeat images or give them another
    class. The paths of the links not followed are appended to ``links``.
    """
    top = os.path.realpath(folder)
    inside = os.path.realpath(root) if root is not None else None
    seen = {top}
    files = []

    def refused(path):
        real = os.path.realpath(path)
        if real in seen or _is_below(top, real):
            return True
        if inside is not None and _is_below(real, inside):
            return not _is_below(real, top)
        return False

    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        kept = []
        for name in sorted(d for d in dirnames if not _is_ignored(d)):
            path = os.path.join(dirpath, name)
            if os.path.islink(path) and refused(path):
                if links is not None:
                    links.append(path)
                continue
            seen.add(os.path.realpath(path))
            kept.append(name)
        dirnames[:] = kept
        files.extend(
            os.path.join(dirpath, f) for f in sorted(filenames) if not _is_ignored(f)
        )
    return files


def _is_below(path, folder):
    """Whether ``path`` is ``folder`` or inside it (both real paths)."""
    return os.path.commonpath([path, folder]) == folder


def _list(paths, root):
    shown = [os.path.relpath(p, root) for p in paths[:_N_LISTED]]
    more = len(paths) - len(shown)
    return ", ".join(shown) + (f" and {more} more" if more > 0 else "")


def load_image_folder(path, *, extensions=None):
    """Load the file names and labels of an image folder dataset.

    The dataset is stored one folder per class, the layout of most Kaggle
    medical imaging sets and of torchvision's ``ImageFolder``::

        path/
            glioma/
                Tr-gl_0010.jpg
                ...
            notumor/
                ...

    Only file names are listed; read the pixels with
    :func:`skmedimg.utils.read_images` or pass the file names straight to a
    pipeline. ``Training/`` and ``Testing/`` folders are two calls.

    Parameters
    ----------
    path : str or os.PathLike
        The root folder, whose sub-folders are the classes.
    extensions : str or iterable of str, default=None
        File name endings that count as images (case-insensitive, with or
        without the dot). ``None`` means
        :data:`skmedimg.utils.IMAGE_EXTENSIONS`.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with the attributes:

        filenames : ndarray of str, shape (n_samples,)
            Absolute paths of the images, class by class in the order of
            ``target_names``; within a class, a folder's images sorted by
            name, then its sub-folders', sorted.
        images : ndarray of str, shape (n_samples,)
            The same paths under the name every loader uses for its images
            (:func:`load_medmnist` gives arrays there): what estimators take
            as ``X``.
        target : ndarray of int, shape (n_samples,)
            Class index of each image, into ``target_names``.
        target_names : list of str
            Class names: the sub-folder names, sorted.
        labels : ndarray of str, shape (n_samples,)
            Class name of each image (``target_names`` indexed by
            ``target``): the ``y`` to give a classifier that should predict
            names.
        skipped : ndarray of str
            Absolute paths of files that were not used: files without an image
            extension inside class folders and files directly in ``path``.
        DESCR : str
            A short description: the folder and the count per class.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    NotADirectoryError
        If ``path`` is not a folder.
    ValueError
        If ``path`` has no class sub-folders, or if some class folders hold no
        image (the message names them).

    Warns
    -----
    UserWarning
        When files were skipped (the warning lists them), when symbolic links
        to folders of the data set itself were not followed, and when there
        is a single class (fine for prediction, not for training a
        classifier).

    See Also
    --------
    load_medmnist : The MedMNIST benchmark datasets.
    make_phantoms : Synthetic labelled images, no files needed.

    Notes
    -----
    Hidden files and folders (names starting with a dot) and operating-system
    clutter (``Thumbs.db``, ``desktop.ini``, ``__MACOSX``) are ignored without
    a warning. Sub-folders inside a class folder are searched too, and their
    images belong to that class. Symbolic links to folders outside the data
    set are followed; links back into it (a loop, or another class's folder)
    are not. The result does not depend on the order in
    which the file system lists files. The files are not opened:
    :func:`skmedimg.utils.read_images` names the unreadable ones.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from PIL import Image
    >>> from skmedimg.datasets import load_image_folder
    >>> root = Path(tempfile.mkdtemp())
    >>> for name in ["normal/a.png", "normal/b.png", "pneumonia/c.png"]:
    ...     (root / name).parent.mkdir(exist_ok=True)
    ...     Image.new("L", (8, 8)).save(root / name)
    >>> data = load_image_folder(root)
    >>> data.target_names
    ['normal', 'pneumonia']
    >>> data.target
    array([0, 0, 1])
    >>> data.labels.tolist()
    ['normal', 'normal', 'pneumonia']
    >>> [Path(f).name for f in data.filenames]
    ['a.png', 'b.png', 'c.png']
    """
    extensions = _normalise_extensions(extensions)
    root = os.path.abspath(os.fspath(path))
    if not os.path.exists(root):
        raise FileNotFoundError(f"image folder not found: {root}")
    if not os.path.isdir(root):
        raise NotADirectoryError(
            f"expected a folder with one sub-folder per class, got a file: {root}"
        )

    entries = sorted(e for e in os.listdir(root) if not _is_ignored(e))
    classes = [e for e in entries if os.path.isdir(os.path.join(root, e))]
    loose = [os.path.join(root, e) for e in entries if e not in classes]
    if not classes:
        n_images = sum(p.lower().endswith(extensions) for p in loose)
        hint = (
            f" It holds {n_images} image file(s) directly: move them into "
            "sub-folders named after their class."
            if n_images
            else ""
        )
        raise ValueError(
            f"no class sub-folders in {root}; expected the layout "
            f"<root>/<class>/<image>.{hint}"
        )

    filenames, target, skipped, empty, links = [], [], list(loose), [], []
    for index, name in enumerate(classes):
        files = walk_files(os.path.join(root, name), root=root, links=links)
        images = [f for f in files if f.lower().endswith(extensions)]
        skipped.extend(f for f in files if not f.lower().endswith(extensions))
        if not images:
            empty.append(name)
        filenames.extend(images)
        target.extend([index] * len(images))

    if empty:
        raise ValueError(
            f"{len(empty)} class folder(s) in {root} hold no image file with an "
            f"extension in {list(extensions)}: {', '.join(empty)}. Remove them "
            "or add images."
        )
    if skipped:
        skipped.sort()
        warnings.warn(
            f"skipped {len(skipped)} file(s) in {root} that are not images in a "
            f"class folder (extensions {list(extensions)}): "
            f"{_list(skipped, root)}",
            UserWarning,
            stacklevel=2,
        )
    if links:
        warnings.warn(
            f"did not follow {len(links)} symbolic link(s) in {root} to folders "
            "of the data set itself (a loop, another class folder, or a second "
            f"way to the same images): {_list(sorted(links), root)}",
            UserWarning,
            stacklevel=2,
        )
    if len(classes) == 1:
        warnings.warn(
            f"{root} has a single class folder ({classes[0]!r}); this is fine "
            "for prediction but a classifier needs at least two classes",
            UserWarning,
            stacklevel=2,
        )

    target = np.asarray(target, dtype=np.int64)
    counts = np.bincount(target, minlength=len(classes))
    descr = f"Image folder {root}: {len(target)} images in {len(classes)} classes ("
    descr += ", ".join(f"{c} {n}" for c, n in zip(classes, counts, strict=True))
    descr += ")."
    filenames = np.asarray(filenames, dtype=str)
    return Bunch(
        filenames=filenames,
        images=filenames,
        target=target,
        target_names=classes,
        labels=np.asarray(classes, dtype=str)[target]
        if len(target)
        else np.asarray([], dtype=str),
        skipped=np.asarray(skipped, dtype=str),
        DESCR=descr,
    )
