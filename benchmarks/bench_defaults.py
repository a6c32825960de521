"""Benchmark: what ``skmedimg train`` gives with no options, beside baselines.

For each data set (official splits: train on the training split, score the
test split once), in the same run and on the same machine:

* ``skmedimg train`` with **no options** (``--recipe auto`` and its default
  time budget: 15 minutes per 5,000 training images, at least 3 minutes), run
  as a user runs it, in a child process;
* ``--recipe linear-probe``, the recipe ``auto`` falls back to when no
  fine-tune fits the budget (frozen backbone at 224 px, a logistic-regression
  head with ``C`` chosen by 5-fold cross-validation);
* the command line's previous default, ``--recipe none --freeze backbone
  --epochs 10`` (a frozen backbone and a linear head trained 10 epochs with
  constant-rate Adam at 224 px);
* the baseline: frozen ``tf_efficientnet_lite0`` features (224 px,
  :class:`~skmedimg.neural.CNNFeatureExtractor`) and scikit-learn's
  ``LogisticRegression`` on standardised features, ``C`` chosen by 5-fold
  cross-validation on the training split.

Accuracy, balanced accuracy, wall time (child process or fit + predict, data
loading included), the recipe chosen and its reason. Brain Tumor MRI also
gets the accuracy on the 1095 test images that are not byte-identical copies
of a training image (216 of the 1311 are).

Targets (2-core CPU): above the baseline on every set, within the budget,
Brain Tumor MRI at least 0.97.

Usage::

    python benchmarks/bench_defaults.py [--sets breastmnist pneumoniamnist
        brain_tumor_mri] [--methods auto previous logreg] [--time-budget 15m]
"""

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import base_parser, default_data_dir, report, resolve, write_partial

SETS = ("breastmnist", "pneumoniamnist", "brain_tumor_mri")
METHODS = ("auto", "linear-probe", "previous", "logreg")
MODEL = "tf_efficientnet_lite0"


def default_budget(n_train):
    from skmedimg.neural._recipes import default_budget as budget

    return budget(n_train)


def _seconds(text):
    from skmedimg.cli import _budget_arg

    return float(_budget_arg(text))


def _paths(data, name):
    """Training and test inputs of a set, as the command line takes them."""
    if name == "brain_tumor_mri":
        root = data / "brain_tumor_mri"
        return [str(root / "Training"), "--test-dir", str(root / "Testing")]
    return [str(data / "medmnist" / f"{name}.npz")]


def run_cli(data, name, extra, out):
    """``skmedimg train`` in a child process: its report and wall time."""
    command = [
        sys.executable,
        "-m",
        "skmedimg",
        "train",
        *_paths(data, name),
        "--out",
        str(out),
        *extra,
    ]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr[-3000:]}"
        )
    lines = [line for line in done.stdout.splitlines() if line.startswith("recipe ")]
    with open(out / "report.json") as fh:
        result = json.load(fh)
    return result, wall, lines[0] if lines else None


def load_set(data, name):
    """``(X_train, y_train, X_test, y_test)`` for the in-process baseline."""
    from skmedimg.datasets import load_image_folder, load_medmnist

    if name == "brain_tumor_mri":
        train = load_image_folder(data / name / "Training")
        test = load_image_folder(data / name / "Testing")
        return (
            np.asarray(train.filenames),
            np.asarray(train.labels),
            np.asarray(test.filenames),
            np.asarray(test.labels),
        )
    train = load_medmnist(name, split="train", data_home=data / "medmnist")
    test = load_medmnist(name, split="test", data_home=data / "medmnist")
    return (
        train.images,
        np.asarray(train.target).ravel().astype(str),
        test.images,
        np.asarray(test.target).ravel().astype(str),
    )


def digest(path):
    with open(path, "rb") as handle:
        return hashlib.md5(handle.read(), usedforsecurity=False).hexdigest()


def not_copies(X_train, X_test):
    """Mask of the test files that are not byte-identical to a training file."""
    seen = {digest(p) for p in X_train}
    return np.asarray([digest(p) not in seen for p in X_test])


def scores(y_true, y_pred, keep=None):
    from sklearn.metrics import accuracy_score, balanced_accuracy_score

    out = dict(
        accuracy=float(accuracy_score(y_true, y_pred)),
        balanced_accuracy=float(balanced_accuracy_score(y_true, y_pred)),
    )
    if keep is not None:
        out["accuracy_no_copies"] = float(accuracy_score(y_true[keep], y_pred[keep]))
    return out


def logreg_baseline(X_train, y_train, X_test, device):
    """Frozen features + LogisticRegression, C by 5-fold CV: predictions, time."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV, StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from skmedimg.neural import CNNFeatureExtractor, shipped_weights_path

    start = time.perf_counter()
    extractor = CNNFeatureExtractor(
        MODEL,
        pretrained=shipped_weights_path(MODEL) is not None,
        device=str(device),
        n_jobs=-1,
    )
    F_train = extractor.fit_transform(X_train)
    F_test = extractor.transform(X_test)
    search = GridSearchCV(
        make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)),
        {"logisticregression__C": np.logspace(-4, 1, 6)},
        cv=StratifiedKFold(5, shuffle=True, random_state=0),
    )
    search.fit(F_train, y_train)
    y_pred = search.predict(F_test)
    return (
        y_pred,
        time.perf_counter() - start,
        float(search.best_params_["logisticregression__C"]),
    )


def main():
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="+", choices=SETS, default=list(SETS))
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument(
        "--time-budget",
        default=None,
        help="passed to the no-option run as --time-budget (default: its own)",
    )
    args = parser.parse_args()
    device = resolve(args.device)
    data = args.data or default_data_dir()
    settings = dict(
        model=MODEL,
        sets=args.sets,
        methods=args.methods,
        time_budget=args.time_budget or "default (0.18 s per image, >= 3 min)",
        cpu_count=os.cpu_count(),
        load_before=os.getloadavg(),
    )
    rows = []
    work = Path(tempfile.mkdtemp(prefix="bench_defaults_"))
    for name in args.sets:
        X_train, y_train, X_test, y_test = load_set(data, name)
        keep = not_copies(X_train, X_test) if name == "brain_tumor_mri" else None
        by_method = {}
        for method in args.methods:
            print(f"{name}: {method} ...", flush=True)
            row = dict(set=name, method=method, n_train=len(y_train))
            if method == "logreg":
                y_pred, wall, c = logreg_baseline(X_train, y_train, X_test, device)
                row.update(scores(y_test, y_pred, keep), wall_s=wall, recipe=f"C={c:g}")
            else:
                extra = []
                if method == "previous":
                    extra = [
                        "--recipe",
                        "none",
                        "--freeze",
                        "backbone",
                        "--epochs",
                        "10",
                    ]
                elif method == "linear-probe":
                    extra = ["--recipe", "linear-probe"]
                elif args.time_budget:
                    extra = ["--time-budget", args.time_budget]
                out = work / f"{name}_{method}"
                result, wall, line = run_cli(data, name, extra, out)
                metrics = result["metrics"]
                if method == "auto":
                    budget = (
                        _seconds(args.time_budget)
                        if args.time_budget
                        else default_budget(len(y_train))
                    )
                    row.update(budget_s=budget, within_budget=wall <= budget)
                row.update(
                    accuracy=metrics["accuracy"],
                    balanced_accuracy=metrics["balanced_accuracy"],
                    wall_s=wall,
                    fit_s=result.get("timings", {}).get("fit_s"),
                    recipe=line,
                )
                if keep is not None:
                    from skmedimg.neural import load_model

                    model = load_model(out / "model.skmedimg")
                    row.update(scores(y_test, model.predict(X_test), keep))
            by_method[method] = row
            rows.append(row)
            print(json.dumps(row, default=str), flush=True)
            write_partial("defaults", args, device, settings, rows)
        base = by_method.get("logreg")
        for row in by_method.values():
            if base is not None:
                row["vs_logreg"] = row["accuracy"] - base["accuracy"]
                row["time_vs_logreg"] = row["wall_s"] / base["wall_s"]
    notes = [
        "auto: `skmedimg train` with no options (budget_s: its time budget; "
        "within_budget: the whole command's wall time, decoding and testing "
        "included, is no more); linear-probe: `--recipe linear-probe`; previous: `--recipe none "
        "--freeze backbone --epochs 10`, the command line's defaults before "
        "recipes; logreg: frozen 224 px features + LogisticRegression, C by 5-fold CV",
        "vs_logreg: accuracy minus the baseline's; time_vs_logreg: wall-time ratio",
        "targets: above logreg on every set, within the budget, Brain Tumor MRI "
        ">= 0.97",
    ]
    settings["load_after"] = os.getloadavg()
    report(
        "defaults",
        args,
        device,
        settings,
        rows,
        [
            "set",
            "method",
            "n_train",
            "accuracy",
            "balanced_accuracy",
            "accuracy_no_copies",
            "vs_logreg",
            "wall_s",
            "budget_s",
            "within_budget",
            "time_vs_logreg",
            "recipe",
        ],
        notes=notes,
    )


if __name__ == "__main__":
    main()
