"""One spelling per concept and one return type per kind of helper.

* No public estimator or function takes a parameter spelled ``size``,
  ``mode`` or ``pooling`` (``image_size``, ``resize_mode``/``overlay`` and
  timm's ``global_pool`` are the spellings), except an old name kept for two
  releases with the default ``"deprecated"``.
* Every public ``plot_*`` returns a matplotlib ``Figure`` and takes ``ax``
  (one Axes) or ``axes`` (several).
* Every loader returns the same keys for the same things.
* An old parameter name gives a ``FutureWarning`` and the same result as the
  new one; giving both is a ``ValueError``.
"""

import importlib
import inspect

import numpy as np
import pytest
from matplotlib.figure import Figure
from PIL import Image
from sklearn.base import BaseEstimator, clone
from sklearn.utils import Bunch

import skmedimg
from skmedimg.datasets import (
    load_decathlon,
    load_drive,
    load_image_folder,
    load_medmnist,
)
from skmedimg.preprocessing import (
    ImageResizer,
    IntensityFeatures,
    IntensityKMeans,
    plot_elbow_silhouette,
)
from skmedimg.segmentation import plot_segmentation
from tests.datasets.test_decathlon import _decathlon, _drive
from tests.datasets.test_medmnist import _fake_npz, fake_md5  # noqa: F401

SUBPACKAGES = [name for name in skmedimg.__all__ if name != "__version__"]

FORBIDDEN = {"size", "mode", "pooling"}

# (module, public name, parameter): why the old spelling is still there. An
# entry that no longer matches a parameter fails test_allow_list_is_current,
# so it is removed with the rename.
ALLOWED = {}


def _public_callables():
    """``(module, name, object)`` of every public class and function."""
    found = []
    for sub in SUBPACKAGES:
        module = importlib.import_module(f"skmedimg.{sub}")
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name)
            if not callable(obj) or not getattr(obj, "__module__", "").startswith(
                "skmedimg"
            ):
                continue  # constants, and re-exports of other libraries
            found.append((module.__name__, name, obj))
    return found


def _parameters(obj):
    target = obj.__init__ if inspect.isclass(obj) else obj
    try:
        return inspect.signature(target).parameters
    except (TypeError, ValueError):
        return {}


def _is_deprecated(param):
    return isinstance(param.default, str) and param.default == "deprecated"


PUBLIC = _public_callables()


def test_the_walk_sees_the_public_api():
    names = {name for _, name, _ in PUBLIC}
    assert {"ImageResizer", "load_medmnist", "plot_segmentation", "gradcam"} <= names
    assert len(PUBLIC) > 40


def test_no_public_parameter_is_spelled_size_mode_or_pooling():
    found = []
    for module, name, obj in PUBLIC:
        for param in _parameters(obj).values():
            if param.name not in FORBIDDEN or _is_deprecated(param):
                continue
            if (module, name, param.name) in ALLOWED:
                continue
            found.append(f"{module}.{name}({param.name}=...)")
    assert found == [], (
        "spell the image size image_size, the resize rule resize_mode (or say "
        "what the mode is about) and the pooling global_pool; keep an old name "
        "for two releases with the default 'deprecated' "
        "(skmedimg.utils.renamed_attribute / renamed_argument)"
    )


def test_allow_list_is_current():
    stale = []
    for (module, name, param), reason in ALLOWED.items():
        obj = getattr(importlib.import_module(module), name)
        if param not in _parameters(obj) or _is_deprecated(_parameters(obj)[param]):
            stale.append(f"{module}.{name}.{param}: {reason}")
    assert stale == [], "the rename is done: remove these allow-list entries"


def test_deprecated_parameters_are_validated_and_documented():
    deprecated = []
    for _, name, obj in PUBLIC:
        for param in _parameters(obj).values():
            if not _is_deprecated(param):
                continue
            deprecated.append(f"{name}.{param.name}")
            assert param.kind is inspect.Parameter.KEYWORD_ONLY, (name, param.name)
            doc = inspect.getdoc(obj)
            assert f"{param.name} :" in doc and ".. deprecated::" in doc, name
            if inspect.isclass(obj) and issubclass(obj, BaseEstimator):
                assert param.name in obj._parameter_constraints, (name, param.name)
    assert {
        "ImageResizer.size",
        "ImageResizer.mode",
        "IntensityFeatures.size",
        "IntensityKMeans.size",
        "load_medmnist.size",
        "plot_segmentation.mode",
        "plot_elbow_silhouette.ax",
    } <= set(deprecated)


# ------------------------------------------------------------------ plots

RNG = np.random.default_rng(0)
_MASK = np.zeros((16, 16), dtype=int)
_MASK[4:10, 4:10] = 1
_HISTORY = [
    {"epoch": 1, "train_loss": 0.9, "valid_loss": 0.8, "valid_acc": 0.6},
    {"epoch": 2, "train_loss": 0.6, "valid_loss": 0.7, "valid_acc": 0.7},
]
_SCORES = Bunch(
    k=np.arange(2, 5),
    inertia=np.array([9.0, 4.0, 3.0]),
    silhouette=np.array([0.5, 0.7, 0.4]),
    best_k=3,
)

# name: (tiny arguments, number of Axes drawn on)
PLOTS = {
    "plot_confusion_matrix": (lambda: ((["a", "b", "b"], ["a", "a", "b"]), {}), 1),
    "plot_training_curves": (lambda: ((_HISTORY,), {}), 2),
    "plot_gradcam": (
        lambda: ((np.zeros((2, 16, 16), np.uint8), RNG.random((2, 16, 16))), {}),
        2,
    ),
    "plot_segmentation": (lambda: ((RNG.random((16, 16)), _MASK), {}), 1),
    "plot_elbow_silhouette": (lambda: ((_SCORES,), {}), 2),
}

PLOT_FUNCTIONS = {name: obj for _, name, obj in PUBLIC if name.startswith("plot_")}


def test_every_plot_helper_is_covered():
    assert sorted(PLOT_FUNCTIONS) == sorted(PLOTS)


@pytest.mark.parametrize("name", sorted(PLOTS))
def test_plot_helpers_return_a_figure_and_draw_on_given_axes(name):
    import matplotlib.pyplot as plt

    func = PLOT_FUNCTIONS[name]
    make_args, n_axes = PLOTS[name]
    params = _parameters(func)
    spelling = "ax" if n_axes == 1 else "axes"
    assert spelling in params and not _is_deprecated(params[spelling])
    other = {"ax", "axes"} - {spelling}
    assert all(_is_deprecated(params[p]) for p in other if p in params)

    args, kwargs = make_args()
    fig = func(*args, **kwargs)
    assert isinstance(fig, Figure)

    given_fig = Figure()
    given = given_fig.subplots(1, n_axes)
    args, kwargs = make_args()
    assert func(*args, **{spelling: given}, **kwargs) is given_fig
    assert all(a.has_data() for a in np.ravel(given))
    plt.close("all")


# ---------------------------------------------------------------- loaders

CLASSIFICATION_KEYS = {"images", "target", "target_names", "labels", "DESCR"}
SEGMENTATION_KEYS = {"images", "masks", "target_names", "DESCR"}


def _image_folder(tmp_path, fake_md5=None):  # noqa: F811
    for name in ("glioma", "notumor"):
        (tmp_path / "train" / name).mkdir(parents=True)
        Image.fromarray(np.zeros((8, 8), np.uint8)).save(
            tmp_path / "train" / name / "a.png"
        )
    return load_image_folder(tmp_path / "train")


def _medmnist(tmp_path, fake_md5):  # noqa: F811
    _fake_npz(tmp_path / "breastmnist.npz")
    fake_md5(tmp_path / "breastmnist.npz")
    return load_medmnist("breastmnist", data_home=tmp_path)


LOADERS = {
    "load_image_folder": ("classification", _image_folder),
    "load_medmnist": ("classification", _medmnist),
    "load_decathlon": ("segmentation", lambda p, _: load_decathlon(_decathlon(p))),
    "load_drive": ("segmentation", lambda p, _: load_drive(_drive(p))),
}


def test_every_loader_is_covered():
    loaders = {
        name
        for module, name, _ in PUBLIC
        if module == "skmedimg.datasets" and name.startswith("load_")
    }
    assert loaders == set(LOADERS)


@pytest.mark.parametrize("name", sorted(LOADERS))
def test_loader_bunches_share_their_keys(name, tmp_path, fake_md5):  # noqa: F811
    kind, load = LOADERS[name]
    data = load(tmp_path, fake_md5)
    expected = CLASSIFICATION_KEYS if kind == "classification" else SEGMENTATION_KEYS
    assert expected <= set(data), sorted(expected - set(data))
    if kind == "classification":
        assert len(data.images) == len(data.target) == len(data.labels)
        names = np.asarray(data.target_names)
        assert data.labels.tolist() == names[data.target].tolist()
    else:
        assert len(data.images) == len(data.masks)


def test_old_loader_keys_still_work(tmp_path, fake_md5):  # noqa: F811
    folder = _image_folder(tmp_path)
    np.testing.assert_array_equal(folder.filenames, folder.images)
    data = _medmnist(tmp_path, fake_md5)
    assert data.size == data.image_size == 28


# ----------------------------------------------------------- deprecations

_X = RNG.integers(0, 256, (6, 20, 30)).astype(np.uint8)

ESTIMATOR_RENAMES = [
    (ImageResizer, {}, "size", "image_size", 8),
    (ImageResizer, {"image_size": 12}, "mode", "resize_mode", "pad"),
    (IntensityFeatures, {}, "size", "image_size", 8),
    (IntensityKMeans, {"n_clusters": 2, "random_state": 0}, "size", "image_size", 8),
]
_IDS = [f"{cls.__name__}.{old}" for cls, _, old, _, _ in ESTIMATOR_RENAMES]


@pytest.mark.parametrize("cls, base, old, new, value", ESTIMATOR_RENAMES, ids=_IDS)
def test_old_estimator_parameter_warns_and_gives_the_same_result(
    cls, base, old, new, value
):
    expected = cls(**base, **{new: value}).fit_transform(_X)
    est = cls(**base, **{old: value})
    assert clone(est).get_params()[old] == value
    assert cls().get_params()[old] == "deprecated"
    with pytest.warns(FutureWarning, match=f"`{old}` was renamed `{new}`"):
        got = est.fit_transform(_X)
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("cls, base, old, new, value", ESTIMATOR_RENAMES, ids=_IDS)
def test_old_and_new_estimator_parameter_together_raise(cls, base, old, new, value):
    other = {"image_size": 5, "resize_mode": "crop"}[new]
    est = cls(**{**base, new: other, old: value})
    with pytest.raises(ValueError, match=f"`{old}` and `{new}` were both given"):
        est.fit_transform(_X)


def test_old_function_keywords_warn_and_give_the_same_result(tmp_path, fake_md5):  # noqa: F811
    import matplotlib.pyplot as plt

    image = RNG.random((16, 16))
    new = plot_segmentation(image, _MASK, overlay="fill")
    with pytest.warns(FutureWarning, match="`mode` was renamed `overlay`"):
        old = plot_segmentation(image, _MASK, mode="fill")
    np.testing.assert_array_equal(
        old.axes[0].images[1].get_array(), new.axes[0].images[1].get_array()
    )
    with pytest.raises(ValueError, match="`mode` and `overlay` were both given"):
        plot_segmentation(image, _MASK, mode="fill", overlay="fill")

    fig, axes = plt.subplots(1, 2)
    with pytest.warns(FutureWarning, match="`ax` was renamed `axes`"):
        assert plot_elbow_silhouette(_SCORES, ax=axes) is fig
    with pytest.raises(ValueError, match="`ax` and `axes` were both given"):
        plot_elbow_silhouette(_SCORES, ax=axes, axes=axes)
    plt.close("all")

    _fake_npz(tmp_path / "breastmnist_64.npz", shape=(64, 64))
    fake_md5(tmp_path / "breastmnist_64.npz")
    expected = load_medmnist("breastmnist", image_size=64, data_home=tmp_path)
    with pytest.warns(FutureWarning, match="`size` was renamed `image_size`"):
        got = load_medmnist("breastmnist", size=64, data_home=tmp_path)
    np.testing.assert_array_equal(got.images, expected.images)
    with pytest.raises(ValueError, match="`size` and `image_size` were both given"):
        load_medmnist("breastmnist", size=64, image_size=64, data_home=tmp_path)


def _renamed():
    """``{public name: {old parameter names}}``, from the signatures."""
    renamed = {}
    for _, name, obj in PUBLIC:
        old = {p.name for p in _parameters(obj).values() if _is_deprecated(p)}
        if old:
            renamed[name] = old
    return renamed


def test_the_project_itself_uses_no_old_name():
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    renamed = _renamed()
    found = []
    files = [
        *(root / "skmedimg").rglob("*.py"),
        *(root / "examples").glob("*.py"),
        *(root / "benchmarks").glob("*.py"),
    ]
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            called = (
                func.attr
                if isinstance(func, ast.Attribute)
                else (func.id if isinstance(func, ast.Name) else None)
            )
            for keyword in node.keywords:
                if keyword.arg in renamed.get(called, ()):
                    where = f"{path.relative_to(root)}:{node.lineno}"
                    found.append(f"{where} {called}({keyword.arg}=...)")
    assert found == []
    assert renamed["ImageResizer"] == {"size", "mode"}


def test_read_images_and_the_image_cache_key_renamed_size(tmp_path):
    from PIL import Image

    from skmedimg.utils import ImageCache, read_images

    expected = read_images(_X, image_size=8, color="rgb")
    with pytest.warns(FutureWarning, match="`size` was renamed `image_size`"):
        got = read_images(_X, size=8, color="rgb")
    np.testing.assert_array_equal(got, expected)
    with pytest.raises(ValueError, match="`size` and `image_size` were both given"):
        read_images(_X, size=8, image_size=8)

    path = tmp_path / "a.png"
    Image.fromarray(_X[0]).save(path)
    cache = ImageCache(tmp_path / "cache")
    key = cache.key(path, image_size=(4, 4), color="rgb")
    with pytest.warns(FutureWarning, match="`size` was renamed `image_size`"):
        assert cache.key(path, size=(4, 4), color="rgb") == key
    with pytest.raises(TypeError, match="needs image_size"):
        cache.key(path, color="rgb")


def test_feature_extractor_pooling_is_timms_global_pool():
    from skmedimg.neural import CNNFeatureExtractor

    params = dict(
        model_name="test_resnet", pretrained=False, image_size=32, random_state=0
    )
    expected = CNNFeatureExtractor(**params, global_pool="max").fit_transform(_X)
    old = CNNFeatureExtractor(**params, pooling="max")
    assert clone(old).get_params()["pooling"] == "max"
    with pytest.warns(FutureWarning, match="`pooling` was renamed `global_pool`"):
        got = old.fit_transform(_X)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    assert old.global_pool_ == "max"
    with pytest.raises(ValueError, match="`pooling` and `global_pool` were both"):
        CNNFeatureExtractor(**params, pooling="max", global_pool="avgmax").fit(_X)
