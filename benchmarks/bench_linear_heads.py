"""Benchmark: linear heads on frozen features, the recipe's beside scikit-learn's.

On the same frozen ``tf_efficientnet_lite0`` features (computed once per set
and size, cached with ``memory=``), three linear heads, each scored once on
the official test split:

* ``recipe``: the ``"linear-probe"`` recipe's head (AdamW, lr 1e-3, cosine
  schedule, label smoothing 0.1, 60 epochs);
* ``logreg-cv``: ``CNNClassifier(optimizer="logreg-cv")``, scikit-learn's
  ``LogisticRegression`` on standardised features, ``C`` by 5-fold
  cross-validation of the log-loss, folded into the head;
* ``previous``: the defaults before recipes (Adam, lr 1e-3, 10 epochs).

Reported: the accuracy on a validation split (a stratified 20 % of the
training split, the heads fitted on the other 80 %), which is what chooses
the recipe's head; then the accuracy and balanced accuracy on the test split
of heads fitted on the whole training split; the head's fit time (the feature
pass is shared and timed once, as ``features_s``) and the ratios to
``recipe``.

Usage::

    python benchmarks/bench_linear_heads.py [--sets breastmnist pneumoniamnist
        brain_tumor_mri] [--sizes 96 224]
"""

import tempfile
import time

import numpy as np
from _common import base_parser, default_data_dir, report, resolve, write_partial

SETS = ("breastmnist", "pneumoniamnist", "brain_tumor_mri")
HEADS = {
    "recipe": dict(recipe="linear-probe"),
    "logreg-cv": dict(recipe="linear-probe", optimizer="logreg-cv"),
    "previous": dict(recipe=None, freeze="backbone"),
}


def load_set(data, name, size):
    """The set's official splits, Brain Tumor MRI's files decoded at ``size``."""
    from bench_defaults import load_set as official_splits

    from skmedimg.utils import read_images

    X, y, X_test, y_test = official_splits(data, name)
    if name == "brain_tumor_mri":
        X = read_images(X, image_size=size, color="rgb")
        X_test = read_images(X_test, image_size=size, color="rgb")
    return X, y, X_test, y_test


def main():
    from sklearn.metrics import accuracy_score, balanced_accuracy_score
    from sklearn.model_selection import train_test_split

    from skmedimg.neural import CNNClassifier, shipped_weights_path

    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="+", choices=SETS, default=list(SETS))
    parser.add_argument("--sizes", nargs="+", type=int, default=[96, 224])
    args = parser.parse_args()
    device = resolve(args.device)
    data = args.data or default_data_dir()
    model = "tf_efficientnet_lite0"
    settings = dict(
        model=model,
        pretrained=shipped_weights_path(model) is not None,
        sets=args.sets,
        sizes=args.sizes,
        heads={k: {p: str(v) for p, v in h.items()} for k, h in HEADS.items()},
    )
    rows = []
    cache = tempfile.mkdtemp(prefix="bench_linear_heads_")
    for name in args.sets:
        for size in args.sizes:
            X, y, X_test, y_test = load_set(data, name, size)
            common = dict(
                pretrained=settings["pretrained"],
                image_size=size,
                device=str(device),
                memory=cache,
                random_state=0,
            )
            # the shared feature pass, timed once
            start = time.perf_counter()
            CNNClassifier(model, **common, **HEADS["recipe"]).fit(X, y)
            features_s = time.perf_counter() - start
            fit, val = train_test_split(
                np.arange(len(y)), test_size=0.2, stratify=y, random_state=0
            )
            by_head = {}
            for head, params in HEADS.items():
                chooser = CNNClassifier(model, **common, **params).fit(X[fit], y[fit])
                val_accuracy = float(chooser.score(X[val], y[val]))
                start = time.perf_counter()
                clf = CNNClassifier(model, **common, **params).fit(X, y)
                fit_s = time.perf_counter() - start
                y_pred = clf.predict(X_test)
                row = dict(
                    set=name,
                    size=size,
                    head=head,
                    n_train=len(y),
                    val_accuracy=val_accuracy,
                    accuracy=float(accuracy_score(y_test, y_pred)),
                    balanced_accuracy=float(balanced_accuracy_score(y_test, y_pred)),
                    head_fit_s=fit_s,
                    features_s=features_s,
                    note=clf.recipe_reason_,
                )
                by_head[head] = row
                rows.append(row)
                print(row, flush=True)
                write_partial("linear_heads", args, device, settings, rows)
            base = by_head["recipe"]
            for row in by_head.values():
                row["val_vs_recipe"] = row["val_accuracy"] - base["val_accuracy"]
                row["vs_recipe"] = row["accuracy"] - base["accuracy"]
                row["time_vs_recipe"] = row["head_fit_s"] / base["head_fit_s"]
    report(
        "linear_heads",
        args,
        device,
        settings,
        rows,
        [
            "set",
            "size",
            "head",
            "n_train",
            "val_accuracy",
            "val_vs_recipe",
            "accuracy",
            "balanced_accuracy",
            "vs_recipe",
            "head_fit_s",
            "time_vs_recipe",
            "features_s",
        ],
        notes=[
            "val_accuracy: heads fitted on 80 % of the training split, scored on "
            "the other 20 % (the choice is made on it); accuracy: fitted on the "
            "whole training split, scored once on the test split",
            "one feature pass per set and size (features_s), cached; head_fit_s "
            "is the fit on the cached features",
            "recipe: the linear-probe recipe's head (AdamW, cosine, 60 epochs); "
            "logreg-cv: LogisticRegression, C by 5-fold CV of the log-loss; "
            "previous: Adam, 10 epochs",
        ],
    )


if __name__ == "__main__":
    main()
