"""
=================================================
Grid search on a Dask cluster
=================================================

A grid like the source reports' (learning rate x dropout x weight decay ...,
each candidate fitted on every fold) outgrows one GPU. skmedimg has no
scheduler of its own: its estimators are ordinary scikit-learn estimators, so
``GridSearchCV`` fans its fits out through joblib's Dask backend onto a
``dask.distributed`` cluster. You learn how to start a local cluster, run the
same search in this process and on the cluster, check that both give the same
scores, and what changes on a multi-GPU node or a multi-node cluster.

It runs offline on a CPU with synthetic phantoms and a tiny random backbone, on
a ``LocalCluster`` of 2 worker processes with 1 thread each, listening on
127.0.0.1 only. Set ``SKMEDIMG_EXAMPLES_FAST=1`` for an even smaller run. It
needs the ``dask`` extra (``pip install "skmedimg[dask]"``, which installs
``dask[distributed]``).
"""

# %%
# The data and the search
# -----------------------
# :func:`~skmedimg.datasets.make_phantoms` makes MRI-like images with a lesion
# class. The search is the one users write for a single machine: a
# :class:`~skmedimg.neural.CNNClassifier` over a timm backbone, a grid over
# head and optimizer settings, stratified folds, fixed seeds. Nothing in it is
# specific to Dask. Real images work the same way; give the workers arrays, or
# paths on a filesystem that every worker can read.
#
# Dask starts its worker processes with multiprocessing's "spawn" method,
# which imports this script again in each of them: the work below sits under
# ``if __name__ == "__main__":`` so that the workers only read the
# definitions (the usual rule for any script that starts processes).
import logging
import os
import time

import joblib
import numpy as np
import torch
from sklearn.model_selection import GridSearchCV, StratifiedKFold

from skmedimg.datasets import make_phantoms
from skmedimg.neural import CNNClassifier

fast = os.environ.get("SKMEDIMG_EXAMPLES_FAST") == "1"


def make_search():
    model = CNNClassifier(
        "test_resnet",  # a tiny timm model; use e.g. "resnet50" on real data
        pretrained=False,
        image_size=32,
        batch_size=16,
        max_epochs=1 if fast else 2,
        device="auto",  # resolved in fit, on whichever worker runs it
        random_state=0,
    )
    grid = {"lr": [1e-2, 1e-1], "dropout": [0.0, 0.5]}
    cv = StratifiedKFold(2, shuffle=True, random_state=0)
    return GridSearchCV(model, grid, cv=cv, scoring="neg_log_loss")


# %%
# The baseline: one process
# -------------------------
# ``n_jobs=1`` fits the 8 candidate-fold pairs one after another. Dask's
# workers run torch with one thread each (its nanny sets
# ``OMP_NUM_THREADS=1``), so we do the same here for a like-for-like
# comparison: torch splits CPU reductions across its threads, and a different
# thread count changes the last bits of the results.
if __name__ == "__main__":
    n_samples = 48 if fast else 96
    X, y = make_phantoms(n_samples, n_classes=2, image_size=32, random_state=0)
    torch.set_num_threads(1)
    start = time.perf_counter()
    local = make_search().fit(X, y)
    local_seconds = time.perf_counter() - start
    print(f"n_jobs=1 in this process: {local_seconds:.1f} s")
    print("best:", local.best_params_)

# %%
# The same search on a local Dask cluster
# ---------------------------------------
# ``LocalCluster`` starts a scheduler and 2 worker processes on this machine.
# Inside ``joblib.parallel_config(backend="dask")`` every joblib ``Parallel``
# call, GridSearchCV's included, sends its tasks to the cluster of the active
# ``Client``. ``scatter=[X, y]`` sends the images to every worker once, before
# the search: the fits do not carry them, and a worker that dies does not take
# the only copy with it (the scheduler then re-runs its fit elsewhere). The
# ``with`` blocks close the cluster, even on an error.
from distributed import Client, LocalCluster

if __name__ == "__main__":
    with (
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,  # one fit at a time per worker (see below)
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            silence_logs=logging.ERROR,
        ) as cluster,
        Client(cluster) as client,
    ):
        start = time.perf_counter()
        with joblib.parallel_config(backend="dask", n_jobs=-1, scatter=[X, y]):
            remote = make_search().fit(X, y)
        remote_seconds = time.perf_counter() - start
    print(f"dask, 2 workers: {remote_seconds:.1f} s (with starting torch on them)")
    print("best:", remote.best_params_)

# %%
# Same seeds, same results
# ------------------------
# Every fit is seeded by ``random_state`` and runs on the CPU with one thread
# in both cases, so the scores agree to the last bit: the cluster changes
# where the fits run, not what they compute.
if __name__ == "__main__":
    print("same best parameters:", remote.best_params_ == local.best_params_)
    same_scores = np.allclose(
        remote.cv_results_["mean_test_score"],
        local.cv_results_["mean_test_score"],
        rtol=1e-6,
        atol=0,
    )
    print("same scores:", same_scores)

# %%
# On a multi-GPU node, and on several machines
# --------------------------------------------
# Only the cluster changes; the search code stays as above.
#
# * One node with several GPUs: ``dask_cuda.LocalCUDACluster()`` (package
#   ``dask-cuda``) starts one worker per GPU and sets ``CUDA_VISIBLE_DEVICES``
#   for each, so ``device="auto"`` picks that worker's own GPU. Give each
#   worker one thread (``threads_per_worker=1``, its default).
# * Several machines: run ``dask scheduler`` on one, ``dask worker
#   tcp://<scheduler>:8786 --nworkers 1 --nthreads 1`` on each (or
#   ``dask cuda worker tcp://<scheduler>:8786`` on GPU machines), and connect
#   with ``Client("tcp://<scheduler>:8786")``. Every machine needs the same
#   Python packages, and image paths must be readable by every worker (a
#   shared filesystem), or pass arrays.
#
# One thread per worker: two fits in the same process share torch's global
# random generator, so their results would depend on timing. See the scaling
# guide (``docs/scale.rst``) for the recipes, fault behaviour and what the
# test-suite covers.
