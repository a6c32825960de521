"""skmedimg estimators on a dask.distributed cluster, through joblib's Dask backend.

Every cluster here is a ``LocalCluster`` (or ``SpecCluster``) of 2 worker
processes with 1 thread each, listening on 127.0.0.1 only, opened in a ``with``
block so that it is closed even when a test fails. Every search runs under a
wall-clock bound (``_bounded``), so a lost worker cannot hang the test run.

Workers import this module by name (``tests.scale.test_dask``) to run the
functions and the callback submitted to them: pickle stores module-level
objects by reference, and spawned workers inherit the test process's
``sys.path``.

Determinism: dask's nanny starts workers with ``OMP_NUM_THREADS=1``, so torch
runs one thread per worker; the in-process baselines run under
``torch.set_num_threads(1)`` too. With matched thread counts the scores are
bit-identical. With different counts (the test process's default of one
thread per core) they differ in the last bits (observed: 1e-8 relative on
log-loss), because torch splits CPU reductions across its threads and float
addition is not associative; hence the tolerance on continuous scores.
"""

import concurrent.futures
import contextlib
import io
import json
import logging
import os
import pickle
import subprocess
import sys
import threading
import time
from pathlib import Path

import joblib
import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from skorch.callbacks import Callback

from skmedimg.datasets import make_phantoms
from skmedimg.neural import CNNClassifier, CNNFeatureExtractor

distributed = pytest.importorskip("distributed")
dask = pytest.importorskip("dask")
cloudpickle = pytest.importorskip("cloudpickle")

from distributed import Client, LocalCluster, Nanny, Scheduler, SpecCluster  # noqa: E402
from distributed.scheduler import KilledWorker  # noqa: E402

pytestmark = pytest.mark.slow

#: Seconds any one search or cluster call may take before the test fails.
TIMEOUT = int(os.environ.get("SKMEDIMG_DASK_TEST_TIMEOUT", "240"))

CLASSIFIER = {
    "model_name": "test_resnet",
    "pretrained": False,
    "image_size": 16,
    "batch_size": 8,
    "max_epochs": 2,
    "random_state": 0,
}
CLASSIFIER_GRID = {"lr": [1e-2, 1e-1], "dropout": [0.0, 0.5]}
EXTRACTOR = {
    "model_name": "test_efficientnet",
    "pretrained": False,
    "image_size": 32,
    "batch_size": 8,
    "random_state": 0,
}
PIPELINE_GRID = {
    "svc__C": [0.01, 1.0],
    "cnnfeatureextractor__global_pool": ["avg", "max"],
}
CV = StratifiedKFold(2, shuffle=True, random_state=0)


# --------------------------------------------------------------------------
# Helpers: clusters, bounded calls, in-process baselines
# --------------------------------------------------------------------------


@contextlib.contextmanager
def local_cluster(**config):
    """2 worker processes x 1 thread on loopback; closed on exit, even on error."""
    with (
        dask.config.set(config),
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            silence_logs=logging.CRITICAL,
        ) as cluster,
        Client(cluster, timeout="60s") as client,
    ):
        client.wait_for_workers(2, timeout=TIMEOUT)
        yield cluster, client


def _bounded(fn, timeout=TIMEOUT):
    """Run ``fn()`` in a thread; fail the test if it takes longer than timeout.

    On a timeout the test fails and its ``with`` block closes the cluster,
    which makes the abandoned search raise and its thread end.
    """
    future = concurrent.futures.Future()

    def target():
        try:
            future.set_result(fn())
        except BaseException as exc:
            future.set_exception(exc)

    # A daemon thread: an abandoned search must not keep the process alive.
    threading.Thread(target=target, daemon=True).start()
    try:
        return future.result(timeout=timeout)
    except concurrent.futures.TimeoutError:
        pytest.fail(f"the search did not finish within {timeout} s")


def dask_fit(search, X, y, **config):
    """``search.fit(X, y)`` under joblib's Dask backend (on the default client)."""

    def run():
        # parallel_config is thread-local: set it in the thread that fits.
        with joblib.parallel_config(backend="dask", n_jobs=-1, **config):
            return search.fit(X, y)

    return _bounded(run)


@contextlib.contextmanager
def torch_threads(n):
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def in_process_fit(search, X, y):
    """The baseline: ``n_jobs=1``, one torch thread (as on the workers)."""
    with torch_threads(1):
        return search.set_params(n_jobs=1).fit(X, y)


def assert_same_search(dask_search, local_search, rtol=0.0):
    assert dask_search.best_params_ == local_search.best_params_
    assert [str(p) for p in dask_search.cv_results_["params"]] == [
        str(p) for p in local_search.cv_results_["params"]
    ]
    keys = ["mean_test_score"] + [
        f"split{i}_test_score" for i in range(CV.get_n_splits())
    ]
    for key in keys:
        np.testing.assert_allclose(
            dask_search.cv_results_[key],
            local_search.cv_results_[key],
            rtol=rtol,
            atol=0,
            err_msg=key,
        )


@pytest.fixture(scope="module")
def images():
    return make_phantoms(48, n_classes=2, image_size=32, random_state=0)


@pytest.fixture(scope="module")
def cluster():
    with local_cluster() as (cluster, client):
        yield cluster, client


# --------------------------------------------------------------------------
# GridSearchCV on the cluster gives the in-process results
# --------------------------------------------------------------------------


def classifier_search():
    # neg_log_loss: continuous scores, so that equal results mean equal
    # training, not just equal argmaxes.
    return GridSearchCV(
        CNNClassifier(**CLASSIFIER), CLASSIFIER_GRID, cv=CV, scoring="neg_log_loss"
    )


def pipeline_search():
    model = make_pipeline(
        CNNFeatureExtractor(**EXTRACTOR), StandardScaler(), SVC(kernel="linear")
    )
    return GridSearchCV(model, PIPELINE_GRID, cv=CV, scoring="roc_auc")


@pytest.mark.parametrize(
    "make_search, n_workers_used",
    # The pipeline's fits take milliseconds: joblib batches them, and one
    # worker may take them all. The CNN fits take long enough to spread.
    [(classifier_search, {2}), (pipeline_search, {1, 2})],
)
def test_grid_search_on_dask_matches_n_jobs_1(
    cluster, images, make_search, n_workers_used
):
    _, client = cluster
    X, y = images
    local = in_process_fit(make_search(), X, y)
    # The refit runs in this process: one torch thread, as for the baseline.
    with distributed.get_task_stream(client) as stream, torch_threads(1):
        remote = dask_fit(make_search(), X, y)
    # The fits ran on the worker processes, not in this one.
    workers = {task["worker"] for task in stream.data}
    assert workers <= set(client.scheduler_info()["workers"])
    assert len(workers) in n_workers_used, workers
    assert len(remote.cv_results_["params"]) == 4
    # Same thread count on both sides: identical, bit for bit (observed);
    # the tolerance only covers a worker with a different torch thread count.
    assert_same_search(remote, local, rtol=1e-6)
    # The refit happened here, on the chosen parameters.
    with torch_threads(1):
        np.testing.assert_allclose(
            remote.predict_proba(X)
            if hasattr(remote, "predict_proba")
            else remote.decision_function(X),
            local.predict_proba(X)
            if hasattr(local, "predict_proba")
            else local.decision_function(X),
            rtol=1e-5,
            atol=1e-6,
        )


# --------------------------------------------------------------------------
# The device is chosen on the worker
# --------------------------------------------------------------------------


def _fit_on_worker(estimator, X, y):
    """Runs on a worker: fit, and report where and how."""
    fitted = estimator.fit(X, y)
    return {
        "pid": os.getpid(),
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "cuda_available": torch.cuda.is_available(),
        "device_param": fitted.get_params()["device"],
        "device_": str(fitted.device_),
        "estimator": fitted,
    }


def test_device_auto_is_resolved_on_each_worker(images):
    """One GPU per worker via CUDA_VISIBLE_DEVICES: the recipe of docs/scale.rst.

    A SpecCluster gives each worker process its own environment; this is what
    ``dask_cuda.LocalCUDACluster`` does on a GPU node. Without GPUs (here) both
    workers resolve ``device="auto"`` to the CPU; on a 2-GPU node each would
    resolve to ``cuda`` = its own GPU (``cuda:0`` in its process).
    """
    X, y = images
    workers = {
        f"gpu{i}": {
            "cls": Nanny,
            "options": {
                "nthreads": 1,
                "host": "127.0.0.1",
                "env": {"CUDA_VISIBLE_DEVICES": str(i)},
            },
        }
        for i in range(2)
    }
    scheduler = {
        "cls": Scheduler,
        "options": {"host": "127.0.0.1", "dashboard_address": None},
    }
    estimator = CNNClassifier(**{**CLASSIFIER, "freeze": "backbone"})
    with (
        SpecCluster(
            workers=workers, scheduler=scheduler, silence_logs=logging.CRITICAL
        ) as spec_cluster,
        Client(spec_cluster, timeout="60s") as client,
    ):
        client.wait_for_workers(2, timeout=TIMEOUT)
        addresses = sorted(client.scheduler_info()["workers"])
        futures = [
            client.submit(
                _fit_on_worker, clone(estimator), X, y, workers=[addr], pure=False
            )
            for addr in addresses
        ]
        reports = client.gather(futures)
    assert {r["cuda_visible_devices"] for r in reports} == {"0", "1"}
    assert os.getpid() not in {r["pid"] for r in reports}
    for report in reports:
        # The parameter stays "auto" (clone/set_params safe); the fitted
        # device_ is the worker's own choice.
        assert report["device_param"] == "auto"
        expected = "cuda" if report["cuda_available"] else "cpu"
        assert report["device_"].split(":")[0] == expected
        # The fitted estimator came back through a pickle and still predicts.
        assert report["estimator"].predict(X[:4]).shape == (4,)
    assert estimator.get_params()["device"] == "auto"
    assert not hasattr(estimator, "device_")


# --------------------------------------------------------------------------
# Pickling: before and after fit, pickle and cloudpickle, no CUDA state
# --------------------------------------------------------------------------


def _registered_estimators():
    from tests.test_common import ESTIMATORS

    return ESTIMATORS


def _fit_data(estimator):
    if type(estimator).__name__ == "ScoreWeightedVotingClassifier":
        rng = np.random.default_rng(0)
        X = rng.normal(size=(40, 4))
        y = (X[:, 0] > 0).astype(int)
        return X, y
    return make_phantoms(24, n_classes=2, image_size=16, random_state=0)


def _outputs(estimator, X, y):
    """What a fitted estimator computes, for comparing a copy with it."""
    if hasattr(estimator, "fit_resample"):
        Xr, yr = clone(estimator).fit_resample(X, y)
        return [np.asarray(yr)]
    out = []
    for method in ("predict_proba", "transform", "predict"):
        if hasattr(estimator, method):
            out.append(np.asarray(getattr(estimator, method)(X)))
    assert out, f"{type(estimator).__name__} computes nothing to compare"
    return out


class _DeviceAudit(pickle.Pickler):
    """Pickle an object and record every non-CPU tensor or storage location.

    ``persistent_id`` sees every object the pickler saves. skorch nets pickle
    their torch attributes into a nested blob (``__getstate__``), so their raw
    ``__dict__`` is audited too; ``torch.save`` blobs are read back with a
    ``map_location`` that records the storage locations.
    """

    def __init__(self, file):
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self.found = []

    def persistent_id(self, obj):
        if isinstance(obj, torch.Tensor):
            if obj.device.type != "cpu":
                self.found.append(f"tensor on {obj.device}")
        elif hasattr(obj, "cuda_dependent_attributes_"):
            # A skorch net: module_, optimizer_, criterion_ ... as they are.
            for prefix in obj.cuda_dependent_attributes_:
                for key, value in vars(obj).items():
                    if key.startswith(prefix):
                        nested = _DeviceAudit(io.BytesIO())
                        nested.dump(value)
                        self.found.extend(nested.found)
        elif isinstance(obj, bytes) and obj[:4] == b"PK\x03\x04":

            def record(storage, location):
                if not location.startswith("cpu"):
                    self.found.append(f"storage saved on {location}")
                return storage

            with contextlib.suppress(Exception):
                torch.load(io.BytesIO(obj), map_location=record, weights_only=False)
        return None


def cuda_state_in_pickle(obj):
    audit = _DeviceAudit(io.BytesIO())
    audit.dump(obj)
    return audit.found


@pytest.mark.parametrize(
    "estimator", _registered_estimators(), ids=lambda est: type(est).__name__
)
def test_every_estimator_pickles_before_and_after_fit(estimator):
    X, y = _fit_data(estimator)
    estimator = clone(estimator)
    for dumps in (pickle.dumps, cloudpickle.dumps):
        copy = pickle.loads(dumps(estimator))
        assert copy.get_params().keys() == estimator.get_params().keys()
    fitted = clone(estimator).fit(X, y)
    expected = _outputs(fitted, X, y)
    assert not cuda_state_in_pickle(fitted)
    for dumps in (pickle.dumps, cloudpickle.dumps):
        copy = pickle.loads(dumps(fitted))
        for got, want in zip(_outputs(copy, X, y), expected, strict=True):
            np.testing.assert_array_equal(got, want)


_UNPICKLE_WITHOUT_CUDA = """
import pickle, sys
import numpy as np, torch
assert not torch.cuda.is_available()
estimator, X, expected = pickle.load(open(sys.argv[1], "rb"))
got = estimator.predict_proba(X) if hasattr(estimator, "predict_proba") else (
    estimator.transform(X))
np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
print("device_", estimator.device_)
"""


@pytest.mark.parametrize("kind", ["classifier", "extractor"])
def test_fitted_cnn_unpickles_in_a_process_without_cuda(tmp_path, images, kind):
    X, y = images
    if kind == "classifier":
        estimator = CNNClassifier(**CLASSIFIER).fit(X, y)
        expected = estimator.predict_proba(X)
    else:
        estimator = CNNFeatureExtractor(**EXTRACTOR).fit(X)
        expected = estimator.transform(X)
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps((estimator, X, expected)))
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run(
        [sys.executable, "-c", _UNPICKLE_WITHOUT_CUDA, str(path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert done.returncode == 0, done.stderr
    assert "device_ cpu" in done.stdout


@pytest.mark.gpu
def test_gpu_fitted_classifier_unpickles_without_cuda(tmp_path, images):
    """A model fitted on a GPU: no CUDA storage in its pickle, loads on a CPU."""
    X, y = images
    estimator = CNNClassifier(**{**CLASSIFIER, "device": "cuda"}).fit(X, y)
    expected = estimator.predict_proba(X)
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps((estimator, X, expected)))
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run(
        [sys.executable, "-c", _UNPICKLE_WITHOUT_CUDA, str(path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert done.returncode == 0, done.stderr
    # device_ should describe where the unpickled model runs.
    assert "device_ cpu" in done.stdout


# --------------------------------------------------------------------------
# memory= caches under concurrent writers
# --------------------------------------------------------------------------


def _wait_for_peers(barrier, n_peers, timeout=TIMEOUT):
    """A file barrier: every worker writes its name and waits for the others."""
    barrier.mkdir(parents=True, exist_ok=True)
    (barrier / str(os.getpid())).touch()
    deadline = time.monotonic() + timeout
    while len(list(barrier.iterdir())) < n_peers:
        if time.monotonic() > deadline:
            raise TimeoutError("the other worker never reached the barrier")
        time.sleep(0.01)


def _fill_caches(location, barrier, X, y, rounds):
    """Runs on a worker: fill both caches at the same moment as the other one."""
    _wait_for_peers(Path(barrier), 2)
    out = []
    for _ in range(rounds):
        clf = CNNClassifier(**{**CLASSIFIER, "freeze": "backbone"}, memory=location)
        proba = clf.fit(X, y).predict_proba(X)
        features = CNNFeatureExtractor(**EXTRACTOR, memory=location).fit_transform(X)
        out.append((proba, features))
    return os.getpid(), out


def test_memory_caches_are_safe_under_concurrent_writers(cluster, images, tmp_path):
    _, client = cluster
    X, y = images
    location = str(tmp_path / "cache")
    with torch_threads(1):
        clf = CNNClassifier(**{**CLASSIFIER, "freeze": "backbone"})
        want_proba = clf.fit(X, y).predict_proba(X)
        want_features = CNNFeatureExtractor(**EXTRACTOR).fit_transform(X)

    addresses = sorted(client.scheduler_info()["workers"])
    futures = [
        client.submit(
            _fill_caches,
            location,
            str(tmp_path / "barrier"),
            X,
            y,
            2,
            workers=[addr],
            pure=False,
        )
        for addr in addresses
    ]
    results = client.gather(futures)
    assert len({pid for pid, _ in results}) == 2
    for _, rounds in results:
        for proba, features in rounds:
            np.testing.assert_allclose(proba, want_proba, rtol=1e-6, atol=1e-7)
            np.testing.assert_allclose(features, want_features, rtol=1e-6, atol=1e-6)

    # No half-written or orphaned files: every row loads, and no temporary
    # file (".<row>.<pid>...") is left behind.
    root = Path(location)
    leftovers = [p for p in root.rglob("*") if p.is_file() and p.name.startswith(".")]
    assert not leftovers, leftovers
    # Two caches, one per estimator's settings, each with one row per image
    # although both workers wrote them.
    caches = sorted(root.glob("skmedimg_cnn_features/*"))
    assert len(caches) == 2
    for cache in caches:
        settings = json.loads((cache / "settings.json").read_text())
        rows = list(cache.glob("*/*.npy"))
        assert len(rows) == len(X), settings
        for row in rows:
            assert np.isfinite(np.load(row)).all()

    # A fresh reader in this process gets the same answers from the cache.
    with torch_threads(1):
        clf = CNNClassifier(**{**CLASSIFIER, "freeze": "backbone"}, memory=location)
        np.testing.assert_allclose(
            clf.fit(X, y).predict_proba(X), want_proba, rtol=1e-6, atol=1e-7
        )
        features = CNNFeatureExtractor(**EXTRACTOR, memory=location).fit_transform(X)
        np.testing.assert_allclose(features, want_features, rtol=1e-6, atol=1e-6)


# --------------------------------------------------------------------------
# A worker dies during a search
# --------------------------------------------------------------------------


class ExitWorkerOnce(Callback):
    """Kill the dask worker process running the first fit to start (once).

    Outside a dask worker (the in-process baseline) it does nothing, so the
    same parameters give the same search there. ``os.open(O_EXCL)`` on a
    marker file makes "first" hold across processes.
    """

    def __init__(self, marker):
        self.marker = marker

    def on_epoch_begin(self, net, **kwargs):
        try:
            distributed.get_worker()
        except ValueError:
            return  # not on a dask worker
        try:
            fd = os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)
        os._exit(1)  # the worker process dies mid-fit, without cleanup


def killing_search(marker):
    estimator = CNNClassifier(
        **{**CLASSIFIER, "freeze": "backbone"}, callbacks=[ExitWorkerOnce(marker)]
    )
    return GridSearchCV(estimator, CLASSIFIER_GRID, cv=CV, scoring="neg_log_loss")


def test_worker_killed_mid_search_is_retried_and_nothing_is_lost(images, tmp_path):
    """A worker dies mid-fit: the scheduler re-runs its task, the search completes.

    ``scatter=[X, y]`` broadcasts the data to every worker first. Without it,
    joblib's Dask backend scatters each large argument (> 1 kB) to one worker
    only; if that worker dies, the only copy is gone and the search fails
    with ``FutureCancelledError`` ("lost scattered data") instead of being
    retried (see docs/scale.rst).
    """
    X, y = images
    marker = str(tmp_path / "killed")
    with local_cluster() as (cluster, client):
        pids_before = set(client.run(os.getpid).values())
        remote = dask_fit(killing_search(marker), X, y, scatter=[X, y])
        pids_after = set(client.run(os.getpid).values())
    # A worker did die: the marker holds its pid, the nanny started a new one.
    killed = int(Path(marker).read_text())
    assert killed in pids_before
    assert killed not in pids_after
    # The scheduler re-ran the lost fit elsewhere; every candidate and fold
    # is there, with the scores a search without the failure gets.
    local = in_process_fit(killing_search(marker), X, y)
    assert len(remote.cv_results_["params"]) == 4
    for i in range(CV.get_n_splits()):
        assert np.isfinite(remote.cv_results_[f"split{i}_test_score"]).all()
    assert_same_search(remote, local, rtol=1e-6)


@pytest.mark.xfail(
    reason=(
        "observed with joblib 1.6.0 and distributed 2026.8.0: the scheduler marks "
        "the killed tasks failed (KilledWorker, allowed-failures=0), but "
        "joblib's Dask backend never hands the error to Parallel, and the "
        "search waits forever (bounded here at 45 s). Ordinary task errors do "
        "propagate. Until fixed upstream, keep the default allowed-failures "
        "(retries) and bound searches with a timeout of your own. Not run by "
        "default (it only waits out its 45 s bound); run it with --runxfail."
    ),
    run=False,
)
def test_worker_killed_without_retries_is_a_clear_error(images, tmp_path):
    """``allowed-failures=0``: no retry; the search should raise KilledWorker."""
    X, y = images
    marker = str(tmp_path / "killed")
    config = {"distributed.scheduler.allowed-failures": 0}
    with local_cluster(**config) as (_, client):
        with pytest.raises(KilledWorker, match="workers died") as info:
            _bounded(
                lambda: dask_fit(killing_search(marker), X, y, scatter=[X, y]),
                timeout=45,
            )
        assert client.status == "running"
    assert Path(marker).exists()
    # The message names the task (a batch of GridSearchCV's _fit_and_score).
    assert "_fit_and_score" in str(info.value)
