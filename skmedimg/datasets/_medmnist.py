"""The MedMNIST 2-D datasets, read from the official npz files."""

from __future__ import annotations

import difflib
import hashlib
import http.client
import os
import urllib.error
import urllib.request
import uuid
import zipfile
from numbers import Integral

import numpy as np
from sklearn.utils import Bunch

from ..utils import DEPRECATED, renamed_argument

__all__ = ["MEDMNIST_NAMES", "load_medmnist"]

# File names, URLs, md5 values and labels as in the ``medmnist`` package
# (medmnist/info.py, version 3.0.2), so that its ``~/.medmnist`` cache works.
HOMEPAGE = "https://github.com/MedMNIST/MedMNIST/"
_BASE_URL = "https://zenodo.org/records/10519652/files/"
_SIZES = (28, 64, 128, 224)
_SPLITS = ("train", "val", "test")
_ORGANS = (
    "bladder",
    "femur-left",
    "femur-right",
    "heart",
    "kidney-left",
    "kidney-right",
    "liver",
    "lung-left",
    "lung-right",
    "pancreas",
    "spleen",
)

# name: (md5 for sizes 28, 64, 128, 224), task, n_channels, n_samples
# (train, val, test), license, labels.
_INFO = {
    "pathmnist": (
        (
            "a8b06965200029087d5bd730944a56c1",
            "55aa9c1e0525abe5a6b9d8343a507616",
            "ac42d08fb904d92c244187169d1fd1d9",
            "2c51a510bcdc9cf8ddb2af93af1eadec",
        ),
        "multi-class",
        3,
        (89996, 10004, 7180),
        "CC BY 4.0",
        (
            "adipose",
            "background",
            "debris",
            "lymphocytes",
            "mucus",
            "smooth muscle",
            "normal colon mucosa",
            "cancer-associated stroma",
            "colorectal adenocarcinoma epithelium",
        ),
    ),
    "chestmnist": (
        (
            "02c8a6516a18b556561a56cbdd36c4a8",
            "9de6cd0b934ebb5b7426cfba5efbae16",
            "db107e5590b27930b62dbaf558aebee3",
            "45bd33e6f06c3e8cdb481c74a89152aa",
        ),
        "multi-label, binary-class",
        1,
        (78468, 11219, 22433),
        "CC BY 4.0",
        (
            "atelectasis",
            "cardiomegaly",
            "effusion",
            "infiltration",
            "mass",
            "nodule",
            "pneumonia",
            "pneumothorax",
            "consolidation",
            "edema",
            "emphysema",
            "fibrosis",
            "pleural",
            "hernia",
        ),
    ),
    "dermamnist": (
        (
            "0744692d530f8e62ec473284d019b0c7",
            "b70a2f5635c6199aeaa28c31d7202e1f",
            "2defd784463fa5243564e855ed717de1",
            "8974907d8e169bef5f5b96bc506ae45d",
        ),
        "multi-class",
        3,
        (7007, 1003, 2005),
        "CC BY-NC 4.0",
        (
            "actinic keratoses and intraepithelial carcinoma",
            "basal cell carcinoma",
            "benign keratosis-like lesions",
            "dermatofibroma",
            "melanoma",
            "melanocytic nevi",
            "vascular lesions",
        ),
    ),
    "octmnist": (
        (
            "c68d92d5b585d8d81f7112f81e2d0842",
            "e229e9440236b774d9f0dfef9d07bdaf",
            "0a97e76651ace45c5d943ee3f65b63ae",
            "abc493b6d529d5de7569faaef2773ba3",
        ),
        "multi-class",
        1,
        (97477, 10832, 1000),
        "CC BY 4.0",
        (
            "choroidal neovascularization",
            "diabetic macular edema",
            "drusen",
            "normal",
        ),
    ),
    "pneumoniamnist": (
        (
            "28209eda62fecd6e6a2d98b1501bb15f",
            "8f4eceb4ccffa70c672198ea285246c6",
            "05b46931834c231683c68f40c47b2971",
            "d6a3c71de1b945ea11211b03746c1fe1",
        ),
        "binary-class",
        1,
        (4708, 524, 624),
        "CC BY 4.0",
        ("normal", "pneumonia"),
    ),
    "retinamnist": (
        (
            "bd4c0672f1bba3e3a89f0e4e876791e4",
            "afda852cc34dcda56f86ad2b2457dbcc",
            "e48e916a24454daf90583d4e6efb1a18",
            "eae7e3b6f3fcbda4ae613ebdcbe35348",
        ),
        "ordinal-regression",
        3,
        (1080, 120, 400),
        "CC BY 4.0",
        ("0", "1", "2", "3", "4"),
    ),
    "breastmnist": (
        (
            "750601b1f35ba3300ea97c75c52ff8f6",
            "742edef2a1fd1524b2efff4bd7ba9364",
            "363e4b3f8d712e9b5de15470a2aaadf1",
            "b56378a6eefa9fed602bb16d192d4c8b",
        ),
        "binary-class",
        1,
        (546, 78, 156),
        "CC BY 4.0",
        ("malignant", "normal, benign"),
    ),
    "bloodmnist": (
        (
            "7053d0359d879ad8a5505303e11de1dc",
            "2b94928a2ae4916078ca51e05b6b800b",
            "adace1e0ed228fccda1f39692059dd4c",
            "b718ff6835fcbdb22ba9eacccd7b2601",
        ),
        "multi-class",
        3,
        (11959, 1712, 3421),
        "CC BY 4.0",
        (
            "basophil",
            "eosinophil",
            "erythroblast",
            "immature granulocytes(myelocytes, metamyelocytes and promyelocytes)",
            "lymphocyte",
            "monocyte",
            "neutrophil",
            "platelet",
        ),
    ),
    "tissuemnist": (
        (
            "ebe78ee8b05294063de985d821c1c34b",
            "123ece2eba09d0aa5d698fda57103344",
            "61b955355d7425a89687b06cca3ce0c2",
            "b077128c4a949f0a4eb01517f9037b9c",
        ),
        "multi-class",
        1,
        (165466, 23640, 47280),
        "CC BY 4.0",
        (
            "Collecting Duct, Connecting Tubule",
            "Distal Convoluted Tubule",
            "Glomerular endothelial cells",
            "Interstitial endothelial cells",
            "Leukocytes",
            "Podocytes",
            "Proximal Tubule Segments",
            "Thick Ascending Limb",
        ),
    ),
    "organamnist": (
        (
            "68e3f8846a6bd62f0c9bf841c0d9eacc",
            "2dcccc29b88e6da5a01161ef20cda288",
            "eeae80d0a227a8d099027e1b3cfd3b60",
            "50747347e05c87dd3aaf92c49f9f3170",
        ),
        "multi-class",
        1,
        (34561, 6491, 17778),
        "CC BY 4.0",
        _ORGANS,
    ),
    "organcmnist": (
        (
            "b9ceb9546e10131b32923c5bbeaea2b1",
            "3ce34a8724ea6f548e6db4744d03b6a9",
            "773c1f009daa3fe5d9a2a201b2a7ed94",
            "050f5e875dc056f6768abf94ec9995d1",
        ),
        "multi-class",
        1,
        (12975, 2392, 8216),
        "CC BY 4.0",
        _ORGANS,
    ),
    "organsmnist": (
        (
            "9ab87b696fb54e2a387ebe992d6ed5f1",
            "53a6d115339d874c25e309a994ff46d3",
            "ded0c5fa01a95dc4978b956f613e9b8e",
            "b354719e553fbbb2513d5533f52a4cb1",
        ),
        "multi-class",
        1,
        (13932, 2452, 8827),
        "CC BY 4.0",
        _ORGANS,
    ),
}

# MedMNIST v2 (medmnist < 3) shipped other 28x28 Organ{A,C,S}MNIST files under
# the same names; an old ``~/.medmnist`` cache holds them, so they are accepted.
_LEGACY_MD5 = {
    "organamnist.npz": "866b832ed4eeba67bfb9edee1d5544e6",
    "organcmnist.npz": "0afa5834fb105f7705a7d93372119a21",
    "organsmnist.npz": "e5c39f1af030238290b9557d9503af9d",
}

#: Names accepted by :func:`load_medmnist`.
MEDMNIST_NAMES = tuple(_INFO)

# Verified md5 per (path, size, mtime): hashing a 224px file takes seconds, so
# it is done once per file version and process.
_VERIFIED = {}
_CHUNK = 1 << 20


def _filename(name, size):
    return f"{name}.npz" if size == 28 else f"{name}_{size}.npz"


def _url(filename):
    return f"{_BASE_URL}{filename}?download=1"


def _expected_md5(name, size):
    md5 = _INFO[name][0][_SIZES.index(size)]
    legacy = _LEGACY_MD5.get(_filename(name, size))
    return (md5,) if legacy is None else (md5, legacy)


def _check_args(name, split, size):
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got {type(name).__name__}")
    key = name.lower()
    if key not in _INFO:
        close = difflib.get_close_matches(key, MEDMNIST_NAMES, n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise ValueError(
            f"unknown MedMNIST dataset {name!r}.{hint} Known 2-D datasets: "
            f"{', '.join(MEDMNIST_NAMES)}."
        )
    if split not in _SPLITS:
        raise ValueError(f"split must be one of {_SPLITS}, got {split!r}")
    if not isinstance(size, Integral) or isinstance(size, bool) or size not in _SIZES:
        raise ValueError(f"image_size must be one of {_SIZES} (an int), got {size!r}")
    return key


def _candidate_folders(data_home):
    """Folders searched for the npz file, and the one a download goes to."""
    if data_home is not None:
        folder = os.path.expanduser(os.fspath(data_home))
        return [folder], folder
    env = os.environ.get("SKMEDIMG_DATA")
    if env:
        env = os.path.expanduser(env)
        sub = os.path.join(env, "medmnist")
        return [sub, env], sub
    default = os.path.join(os.path.expanduser("~"), ".medmnist")
    return [default], default


def _md5(path):
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _file_key(path):
    st = os.stat(path)
    return os.path.realpath(path), st.st_size, st.st_mtime_ns


def _verify(path, expected, url):
    key = _file_key(path)
    if _VERIFIED.get(key) in expected:
        return
    actual = _md5(path)
    if actual not in expected:
        raise ValueError(
            f"MedMNIST file {path} failed its checksum: md5 {actual}, expected "
            f"{expected[0]}. The file is truncated, corrupt or not the official "
            f"one. Delete it and load again with download=True, or download "
            f"{url} and save it as {path}."
        )
    _VERIFIED[key] = actual


def _download(url, dest, expected):
    """Download ``url`` to ``dest`` through a temporary file, checking md5."""
    from tqdm.auto import tqdm

    folder = os.path.dirname(dest)
    os.makedirs(folder, exist_ok=True)
    # Not mkstemp, which makes the file private: a downloaded data set gets
    # the permissions of any file the user creates (the umask decides).
    tmp = os.path.join(folder, f".{os.path.basename(dest)}.{uuid.uuid4().hex}.part")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    fd = os.open(tmp, flags, 0o666)
    digest = hashlib.md5(usedforsecurity=False)
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                response = urllib.request.urlopen(url, timeout=60)
            except (urllib.error.URLError, OSError) as exc:
                reason = getattr(exc, "reason", exc)
                raise OSError(
                    f"could not download {url} ({reason}). Download it by hand "
                    f"and save it as {dest}."
                ) from exc
            with response:
                total = response.headers.get("Content-Length")
                with tqdm(
                    total=int(total) if total else None,
                    unit="B",
                    unit_scale=True,
                    desc=f"Downloading {os.path.basename(dest)}",
                    disable=None,
                ) as bar:
                    try:
                        for chunk in iter(lambda: response.read(_CHUNK), b""):
                            out.write(chunk)
                            digest.update(chunk)
                            bar.update(len(chunk))
                    except (http.client.HTTPException, OSError) as exc:
                        raise OSError(
                            f"the download of {url} broke off ({exc!r}); "
                            f"nothing was saved. Try again, or download it by "
                            f"hand and save it as {dest}."
                        ) from exc
        actual = digest.hexdigest()
        if actual not in expected:
            raise ValueError(
                f"the download of {url} failed its checksum: md5 {actual}, "
                f"expected {expected[0]}; nothing was saved. Try again later, or "
                f"download it by hand and save it as {dest}."
            )
        os.replace(tmp, dest)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    _VERIFIED[_file_key(dest)] = actual


def _read_split(path, split, url):
    keys = (f"{split}_images", f"{split}_labels")
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [k for k in keys if k not in npz.files]
            if missing:
                raise ValueError(f"it has no array {', '.join(missing)}")
            images, labels = npz[keys[0]], npz[keys[1]]
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise ValueError(
            f"cannot read MedMNIST file {path}: {exc}. Delete it and load again "
            f"with download=True, or download {url} and save it as {path}."
        ) from exc
    return images, labels


def load_medmnist(
    name,
    *,
    split="train",
    image_size=28,
    data_home=None,
    download=False,
    size=DEPRECATED,
):
    """Load one split of a MedMNIST 2-D dataset.

    Reads the official MedMNIST npz files, with the file names and md5 values
    of the ``medmnist`` package (version 3), so an existing ``~/.medmnist``
    cache works and nothing needs to be installed. Every file is checked
    against its md5 before use.

    Parameters
    ----------
    name : str
        Dataset name, case-insensitive: one of ``pathmnist``, ``chestmnist``,
        ``dermamnist``, ``octmnist``, ``pneumoniamnist``, ``retinamnist``,
        ``breastmnist``, ``bloodmnist``, ``tissuemnist``, ``organamnist``,
        ``organcmnist``, ``organsmnist`` (see :data:`MEDMNIST_NAMES`).
    split : {"train", "val", "test"}, default="train"
        Which split to return.
    image_size : {28, 64, 128, 224}, default=28
        Image size. Size 28 is the file ``{name}.npz``, the others
        ``{name}_{image_size}.npz`` (MedMNIST+).
    data_home : str or os.PathLike, default=None
        Folder holding the npz files. ``None`` means ``$SKMEDIMG_DATA/medmnist``
        or ``$SKMEDIMG_DATA`` when the environment variable ``SKMEDIMG_DATA``
        is set, else ``~/.medmnist`` (the ``medmnist`` package's cache).
    download : bool, default=False
        Download the file from Zenodo when it is missing. Downloads go to
        ``data_home`` (or ``$SKMEDIMG_DATA/medmnist``, or ``~/.medmnist``)
        through a temporary file that is renamed only after its md5 matched.
    size : {28, 64, 128, 224}
        Deprecated spelling of ``image_size``.

        .. deprecated:: 0.1
           ``size`` was renamed ``image_size`` and will be removed in 0.3.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with the attributes:

        images : ndarray of uint8, shape (n_samples, image_size, image_size) \
or (n_samples, image_size, image_size, 3)
            The images; gray datasets have no channel axis.
        target : ndarray of int, shape (n_samples,) or (n_samples, 14)
            Labels. One column per finding (0 or 1) for the multi-label
            ``chestmnist``; a 1-D array of class indices otherwise.
        target_names : list of str
            Class (or finding) names in label order, from the official
            label table.
        labels : ndarray of str, shape (n_samples,)
            The class name of each image (``target_names[target]``), as
            :func:`load_image_folder` gives ``labels``: what estimators take
            as ``y`` to predict names. For the multi-label ``chestmnist``, an
            object array of tuples of the findings present (``()`` for none).
        task : str
            ``"binary-class"``, ``"multi-class"``, ``"ordinal-regression"`` or
            ``"multi-label, binary-class"``.
        name, split, image_size : str, str, int
            The arguments, ``name`` in lower case. ``size`` holds
            ``image_size`` too, for code written before the rename.
        n_channels : int
            1 for gray datasets, 3 for colour ones.
        filename : str
            Path of the npz file that was read.
        url : str
            Where the file can be downloaded.
        license : str
            The dataset's licence.
        DESCR : str
            A short description.

    Raises
    ------
    TypeError
        If ``name`` is not a string.
    ValueError
        If ``name`` is unknown (the message suggests close names), ``split`` or
        ``image_size`` is invalid, or ``size`` and ``image_size`` are both
        given, or the file fails its md5 check or cannot be read
        (the message names the file and says how to replace it).
    FileNotFoundError
        If the file is missing and ``download=False``; the message says which
        file to put where and where to download it.
    OSError
        If a download fails.

    See Also
    --------
    load_image_folder : Images stored as ``<root>/<class>/<image>`` files.
    make_phantoms : Synthetic labelled images, no files needed.

    Notes
    -----
    The md5 of a file is computed once per process and file version (path,
    size and modification time), so repeated loads are fast. The MedMNIST
    datasets are licensed CC BY 4.0 except DermaMNIST (CC BY-NC 4.0); cite
    Yang et al., "MedMNIST v2", Scientific Data 10, 41 (2023).

    Examples
    --------
    >>> from skmedimg.datasets import load_medmnist
    >>> data = load_medmnist("breastmnist", split="test")  # doctest: +SKIP
    >>> data.images.shape, data.target_names  # doctest: +SKIP
    ((156, 28, 28), ['malignant', 'normal, benign'])
    >>> load_medmnist("brestmnist")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
        ...
    ValueError: unknown MedMNIST dataset 'brestmnist'. Did you mean 'breastmnist', ...
    """
    size = renamed_argument(
        "load_medmnist", "size", size, "image_size", image_size, default=28
    )
    name = _check_args(name, split, size)
    _, task, n_channels, n_samples, license_, labels = _INFO[name]
    filename = _filename(name, size)
    url = _url(filename)
    expected = _expected_md5(name, size)

    folders, download_folder = _candidate_folders(data_home)
    candidates = [os.path.join(folder, filename) for folder in folders]
    path = next((p for p in candidates if os.path.isfile(p)), None)
    if path is None:
        dest = os.path.join(download_folder, filename)
        if not download:
            looked = " or ".join(candidates)
            raise FileNotFoundError(
                f"MedMNIST file {filename} not found (looked for {looked}). "
                f"Load with download=True, or download {url} and save it as "
                f"{dest} (md5 {expected[0]})."
            )
        _download(url, dest, expected)
        path = dest
    _verify(path, expected, url)
    images, target = _read_split(path, split, url)

    if task != "multi-label, binary-class" and target.ndim == 2:
        target = target[:, 0]
    target = target.astype(np.int64, copy=False)
    descr = (
        f"MedMNIST {name} ({task}, {size}x{size}, {n_channels} channel(s)), "
        f"{split} split: {len(images)} images. Splits train/val/test: "
        f"{'/'.join(map(str, n_samples))}. Licence {license_}. {HOMEPAGE}"
    )
    if target.ndim == 1:
        names = np.asarray(labels, dtype=str)[target]
    else:
        names = np.empty(len(target), dtype=object)
        for i, row in enumerate(target):
            names[i] = tuple(labels[j] for j in np.flatnonzero(row))
    return Bunch(
        images=images,
        target=target,
        target_names=list(labels),
        labels=names,
        task=task,
        name=name,
        split=split,
        image_size=size,
        size=size,
        n_channels=n_channels,
        filename=path,
        url=url,
        license=license_,
        DESCR=descr,
    )
