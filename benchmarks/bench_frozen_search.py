"""Benchmark: a grid search over frozen-backbone classifiers, with and without memory.

The reports' tuning loop: ``GridSearchCV`` over the head of a frozen,
pretrained backbone (dropout x learning rate), k-fold. In the same run, on the
same images:

* ``memory=None``: every candidate computes the features of its training
  fold once per fit, and runs the whole network over its validation fold
  when it is scored;
* ``memory=<folder>``, empty: the per-image feature cache; each image goes
  through the backbone once, whichever fold, candidate or scoring needs it;
* ``memory=<folder>``, filled by the previous row: a second search (another
  grid on the same data, say) reads every feature from disk.

Images through the backbone are counted (a wrapper around
``ImageClassifierModule.features``); the scores of the three searches must be
the same.

CPU defaults: ``tf_efficientnet_lite0`` with its real weights, 400 Brain Tumor
MRI training images at 128 px, a 2 x 2 grid, 5 folds, 20 epochs, one torch
thread. ``--full``: 224 px, the whole Training set.

Usage::

    python benchmarks/bench_frozen_search.py [--full] [--n-images 400]
"""

import tempfile

import numpy as np
from _common import (
    PeakMemory,
    Timer,
    amp_dtype,
    base_parser,
    default_data_dir,
    report,
    resolve,
    sample_folder,
    setup_threads,
)
from sklearn.model_selection import GridSearchCV, StratifiedKFold

import skmedimg.neural._classifier as classifier_module
from skmedimg.neural import CNNClassifier, shipped_weights_path
from skmedimg.utils import read_images

MODEL = "tf_efficientnet_lite0"


def main():
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--n-images", type=int, default=None)
    parser.add_argument("--image-size", type=int, default=None)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=20)
    args = parser.parse_args()
    device = resolve(args.device)
    threads = setup_threads(args, device)
    full = args.full
    n = args.n_images or (None if full else 400)
    size = args.image_size or (224 if full else 128)
    pretrained = shipped_weights_path(MODEL) is not None
    grid = {"dropout": [0.0, 0.3], "lr": [1e-3, 3e-3]}
    paths, y = sample_folder(
        (args.data or default_data_dir()) / "brain_tumor_mri" / "Training", n
    )
    settings = dict(
        model=MODEL,
        pretrained=pretrained,
        n_images=len(paths),
        image_size=size,
        grid=grid,
        folds=args.folds,
        epochs=args.epochs,
        precision=str(amp_dtype(device)),
        torch_threads=threads,
    )
    print(f"device={device} settings={settings}")
    with Timer(device) as t:
        X = read_images(paths, image_size=size, color="rgb", n_jobs=-1)
    decode_s = t.seconds

    seen = []
    features = classifier_module.ImageClassifierModule.features

    def counting(self, x):
        seen.append(len(x))
        return features(self, x)

    classifier_module.ImageClassifierModule.features = counting
    estimator = CNNClassifier(
        MODEL,
        pretrained=pretrained,
        freeze="backbone",
        max_epochs=args.epochs,
        batch_size=32,
        image_size=size,
        device=str(device),
        random_state=0,
    )
    # Untimed warm-up: the first fit of a process pays the device's start-up.
    estimator.fit(X[:64], y[:64])
    folder = tempfile.mkdtemp(prefix="skmedimg-bench-cache-")
    runs = [
        ("memory=None", None),
        ("memory=<folder>, empty", folder),
        ("memory=<folder>, filled", folder),
    ]
    rows, reference = [], None
    for name, memory in runs:
        seen.clear()
        search = GridSearchCV(
            estimator.set_params(memory=memory), grid, cv=StratifiedKFold(args.folds)
        )
        with PeakMemory(device) as mem, Timer(device) as t:
            search.fit(X, y)
        scores = search.cv_results_["mean_test_score"]
        if reference is None:
            reference = (t.seconds, scores)
        rows.append(
            dict(
                method=name,
                fit_s=round(t.seconds, 2),
                speedup=round(reference[0] / t.seconds, 2),
                images_through_backbone=int(sum(seen)),
                same_scores=bool(np.allclose(scores, reference[1], atol=1e-6)),
                best_score=round(float(search.best_score_), 4),
                **mem.as_dict(),
            )
        )
        print(rows[-1])
    classifier_module.ImageClassifierModule.features = features
    n_fits = len(grid["dropout"]) * len(grid["lr"]) * args.folds
    report(
        "frozen_search",
        args,
        device,
        settings,
        rows,
        [
            "method",
            ("fit_s", "search.fit s"),
            ("speedup", "speed-up"),
            ("images_through_backbone", "images through the backbone"),
            ("same_scores", "same scores"),
            ("best_score", "best score"),
            ("host_peak_mb", "host peak MB"),
            ("gpu_peak_mb", "GPU peak MB"),
        ],
        [
            f"{n_fits} fits + the refit per search, on {len(X)} decoded images "
            f"(decoding took {decode_s:.2f} s, outside the searches)",
            "speed-up: the memory=None search's time / this row's time, same run",
        ],
    )


if __name__ == "__main__":
    main()
