"""Named training recipes and the ``recipe="auto"`` rule of CNNClassifier.

A recipe is a named set of values for the training parameters of
:class:`~skmedimg.neural.CNNClassifier` that are left at ``"auto"``
(``freeze``, ``optimizer``, ``lr``, ``weight_decay``, ``max_epochs``,
``lr_schedule``, ``label_smoothing``, ``augment``, ``early_stopping`` and
``image_size``). A value the user sets is always kept; the recipe fills the
rest. ``recipe="auto"`` picks a recipe, an input size and a number of epochs
from the device, the number of training images and a time budget, by the rule
written in :func:`plan_recipe`.

The rule, and why (figures in ``benchmarks/RESULTS.md``,
``benchmarks/bench_defaults.py``):

* Full fine-tuning with the ``"fine-tune"`` recipe is the most accurate thing
  these backbones do on medical images (Brain Tumor MRI 0.996 on a GPU, where a
  frozen backbone with a linear head reaches 0.92-0.93), so it is chosen
  whenever it fits the budget with enough epochs.
* Most of the cost of a fine-tune grows with the number of pixels, so on a
  slow device the input size comes down (224, 192, 160, 128, 96 px) before the
  recipe changes: a fine-tune at 128 px beats a linear probe at 224 px.
* When no size leaves ``MIN_EPOCHS`` epochs in the budget, the backbone is
  frozen and run once (``"linear-probe"``): the cheapest recipe there is.
"""

import time
import warnings
from numbers import Integral

import numpy as np
import torch

__all__ = ["RECIPES", "plan_recipe"]

#: The parameters a recipe fills when they are ``"auto"``.
RECIPE_PARAMS = (
    "freeze",
    "optimizer",
    "lr",
    "weight_decay",
    "max_epochs",
    "lr_schedule",
    "label_smoothing",
    "augment",
    "early_stopping",
    "image_size",
)

#: Named recipes: the values they give to the parameters left at ``"auto"``.
#: ``max_epochs=None`` means the rule of :func:`default_epochs`;
#: ``image_size=None`` the backbone's own input size.
RECIPES = {
    # Full fine-tuning as measured on an H100 (benchmarks/RESULTS.md): AdamW,
    # one-cycle schedule peaking at lr, label smoothing, flips and a small
    # affine augmentation on the device.
    "fine-tune": dict(
        freeze="none",
        optimizer="adamw",
        lr=1e-3,
        weight_decay=0.05,
        max_epochs=None,
        lr_schedule="onecycle",
        label_smoothing=0.1,
        augment="standard",
        early_stopping=None,
        image_size=None,
    ),
    # Frozen backbone, run once per fit; a linear head trained on its pooled
    # features with a cosine schedule. optimizer="logreg-cv" (scikit-learn's
    # LogisticRegression, C by cross-validation) scored the same on the test
    # splits of benchmarks/bench_linear_heads.py and took longer, so it is
    # an option, not the recipe's.
    "linear-probe": dict(
        freeze="backbone",
        optimizer="adamw",
        lr=1e-3,
        weight_decay=1e-4,
        max_epochs=60,
        lr_schedule="cosine",
        label_smoothing=0.1,
        augment=None,
        early_stopping=None,
        image_size=None,
    ),
    # The source reports' ResNet-50 recipe: unfrozen, Adam at 1e-4,
    # ReduceLROnPlateau, early stopping, horizontal flips + rotation + shifts.
    "report": dict(
        freeze="none",
        optimizer="adam",
        lr=1e-4,
        weight_decay=0.0,
        max_epochs=50,
        lr_schedule="plateau",
        label_smoothing=0.0,
        augment="light",
        early_stopping=5,
        image_size=None,
    ),
}

#: The values of ``recipe=None``: the parameters' defaults before recipes
#: existed (constant-rate Adam, no augmentation, 10 epochs).
PLAIN = dict(
    freeze="none",
    optimizer="adam",
    lr=1e-3,
    weight_decay=0.0,
    max_epochs=10,
    lr_schedule=None,
    label_smoothing=0.0,
    augment=None,
    early_stopping=None,
    image_size=None,
)

#: Input sizes tried by ``recipe="auto"``, largest first (never above the
#: backbone's own size).
SIZE_LADDER = (224, 192, 160, 128, 96)

#: Sizes above this many times the images' own are not tried by ``"auto"``.
UPSCALE_LIMIT = 4

#: Fewest epochs for which ``"auto"`` fine-tunes rather than probes.
MIN_EPOCHS = 6

#: Fraction of the budget planned for training; the rest is for decoding the
#: images, building the model and the last predictions.
PLANNED_FRACTION = 0.85

#: Default budget: 15 minutes per 5,000 training images (0.18 s an image),
#: never less than three minutes.
SECONDS_PER_IMAGE = 0.18
MIN_BUDGET = 180.0


def default_epochs(n_samples):
    """Epochs of the fine-tune recipe for ``n_samples`` training images.

    About 70,000 image presentations, between 12 and 40 epochs: 12 for the
    5,712 Brain Tumor MRI training images, 15 for PneumoniaMNIST's 4,708, 40
    for BreastMNIST's 546 (the epochs measured on a GPU in
    ``benchmarks/RESULTS.md``).
    """
    return int(min(40, max(12, round(70_000 / max(int(n_samples), 1)))))


def default_budget(n_samples):
    """Default ``time_budget`` in seconds for ``n_samples`` training images."""
    return max(MIN_BUDGET, SECONDS_PER_IMAGE * int(n_samples))


def _square(size):
    if size is None:
        return None
    if isinstance(size, Integral):
        return (int(size), int(size))
    return tuple(int(s) for s in size)


def plan_recipe(recipe, **kwargs):
    """Decide the training parameters of a fit: the rule of ``recipe="auto"``.

    Parameters
    ----------
    recipe : {"auto", "fine-tune", "linear-probe", "report"} or None
        The recipe asked for. ``None`` gives the plain defaults (constant-rate
        Adam, no augmentation, 10 epochs, full fine-tuning).
    **kwargs
        ``n_samples``, ``device``, ``native_size``, ``time_budget``,
        ``given``, ``step_cost``, ``fixed_size``, ``source_size``: see
        Notes.

    Returns
    -------
    plan : dict
        ``recipe`` (the named recipe used), ``params`` (every parameter of
        ``RECIPE_PARAMS``; ``image_size`` a ``(height, width)`` tuple or
        None for the backbone's own), ``estimated_seconds`` (None when not
        estimated), ``budget`` and ``reason`` (one sentence).

    Notes
    -----
    ``n_samples`` (int): the number of training images. ``device``: the
    device that trains. ``native_size``: the backbone's own input size
    ``(height, width)``. ``time_budget`` (float or None): seconds for the
    fit; ``None`` is 0.18 s per training image and at least 3 minutes (15
    minutes for 5,000 images); only ``"auto"`` uses it. ``given`` (dict):
    the parameters the user set, kept as they are; ``"auto"`` plans around
    them (``freeze="backbone"`` means a linear probe; a given
    ``image_size`` or ``max_epochs`` is not changed). ``step_cost``
    (callable): ``step_cost(size, train)`` gives the seconds per image of a
    training step (``train=True``) or of a forward pass at ``size``; the
    estimator measures it on its own model. ``fixed_size`` (bool): the
    backbone takes only its own size (ViTs). ``source_size`` (int or None):
    the larger side of the training images; sizes above ``UPSCALE_LIMIT``
    (4) times it are not tried, since upscaled 28 px MedMNIST images hold
    nothing more at 224 px than at 96 px and the epochs a smaller size
    leaves are worth more.

    The rule of ``"auto"``: ``"fine-tune"`` at the largest size of the
    ladder (the backbone's own, then 224, 192, 160, 128, 96 px) at which
    ``MIN_EPOCHS`` (6) epochs, up to the recipe's 12-40, fit 85 % of the
    budget; else ``"linear-probe"`` at the largest size whose one forward
    pass fits, with a warning when none does.

    Examples
    --------
    >>> from skmedimg.neural import plan_recipe
    >>> def cost(size, train):  # 50 ms an image at 224 px, by pixels
    ...     return 0.05 * size[0] * size[1] / 224**2 * (1 if train else 1 / 3)
    >>> p = plan_recipe("auto", n_samples=5000, device="cpu",
    ...                 native_size=(224, 224), time_budget=900, step_cost=cost)
    >>> p["recipe"], p["params"]["image_size"], p["params"]["max_epochs"]
    ('fine-tune', (128, 128), 9)
    """
    result = _plan(recipe, **kwargs)
    params = result["params"]
    params["image_size"] = _square(params["image_size"])
    return result


def _plan(
    recipe,
    *,
    n_samples,
    device,
    native_size,
    time_budget=None,
    given=None,
    step_cost=None,
    fixed_size=False,
    source_size=None,
):
    given = dict(given or {})
    native = _square(native_size)
    if recipe is None:
        params = {**PLAIN, **given}
        return dict(
            recipe=None,
            params=params,
            estimated_seconds=None,
            budget=None,
            reason="recipe=None: the plain defaults and the parameters given",
        )
    if recipe != "auto":
        params = {**RECIPES[recipe], **given}
        if params["max_epochs"] is None:
            params["max_epochs"] = default_epochs(n_samples)
        return dict(
            recipe=recipe,
            params=params,
            estimated_seconds=None,
            budget=None,
            reason=f"recipe={recipe!r} asked for",
        )

    budget = float(time_budget) if time_budget is not None else None
    budget = default_budget(n_samples) if budget is None else budget
    planned = PLANNED_FRACTION * budget
    device = torch.device(device)
    n = max(int(n_samples), 1)
    where = f"{n} images on {'a GPU' if device.type == 'cuda' else device.type}"
    frozen = given.get("freeze") == "backbone"

    if given.get("image_size") is not None:
        sizes = [_square(given["image_size"])]
    elif fixed_size:
        sizes = [native]
    else:
        sizes = [native, *[(s, s) for s in SIZE_LADDER if s < min(native)]]
        if source_size:
            cap = max(SIZE_LADDER[-1], UPSCALE_LIMIT * int(source_size))
            sizes = [s for s in sizes if max(s) <= cap] or [sizes[-1]]

    if not frozen:
        epochs_given = given.get("max_epochs")
        wanted = epochs_given or default_epochs(n)
        for size in sizes:
            per_epoch = n * step_cost(size, True)
            fits = int(planned // per_epoch) if per_epoch > 0 else wanted
            epochs = min(wanted, fits)
            enough = epochs >= (epochs_given or MIN_EPOCHS)
            if enough:
                params = {**RECIPES["fine-tune"], **given}
                params.update(max_epochs=epochs, image_size=size)
                smaller = (
                    ""
                    if size == sizes[0]
                    else f" ({sizes[0][0]} px would leave fewer than "
                    f"{epochs_given or MIN_EPOCHS} epochs)"
                )
                return dict(
                    recipe="fine-tune",
                    params=params,
                    estimated_seconds=epochs * per_epoch / PLANNED_FRACTION,
                    budget=budget,
                    reason=f"fine-tune at {size[0]} px for {epochs} epochs fits the "
                    f"{_minutes(budget)} budget for {where}{smaller}",
                )
        if "freeze" in given:
            # Fine-tuning was asked for: the smallest size, over budget.
            size = sizes[-1]
            per_epoch = n * step_cost(size, True)
            epochs = epochs_given or MIN_EPOCHS
            params = {**RECIPES["fine-tune"], **given}
            params.update(max_epochs=epochs, image_size=size)
            warnings.warn(
                f"freeze={given['freeze']!r} with recipe='auto': {epochs} epochs "
                f"at {size[0]} px need about "
                f"{_minutes(epochs * per_epoch)}, more than the "
                f"{_minutes(budget)} time budget",
                UserWarning,
                stacklevel=3,
            )
            return dict(
                recipe="fine-tune",
                params=params,
                estimated_seconds=epochs * per_epoch / PLANNED_FRACTION,
                budget=budget,
                reason=f"fine-tuning asked for (freeze={given['freeze']!r}); over "
                "budget at every size",
            )

    # A linear probe: one forward pass over the images, then a cheap head.
    for size in sizes:
        cost = n * step_cost(size, False)
        if cost <= planned or size == sizes[-1]:
            break
    params = {**RECIPES["linear-probe"], **given}
    params["image_size"] = size
    if frozen:
        reason = f"freeze='backbone' given: a linear probe at {size[0]} px"
    else:
        reason = (
            f"fine-tuning {MIN_EPOCHS} epochs does not fit the {_minutes(budget)} "
            f"budget for {where} at any size down to {sizes[-1][0]} px: a linear "
            f"probe at {size[0]} px"
        )
    if cost > planned:
        warnings.warn(
            f"recipe='auto': even one pass of the backbone over {n} images at "
            f"{size[0]} px needs about {_minutes(cost)}, more than the "
            f"{_minutes(budget)} time budget",
            UserWarning,
            stacklevel=3,
        )
    return dict(
        recipe="linear-probe",
        params=params,
        estimated_seconds=cost / PLANNED_FRACTION,
        budget=budget,
        reason=reason,
    )


def _minutes(seconds):
    seconds = float(seconds)
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min"


# Measured costs, per process: (model, routed module options, device, size,
# train) -> seconds per image. One fit measures, the later ones (the folds and
# candidates of a search) reuse it, so they all plan alike.
_COSTS = {}


def measure_step_cost(module, key, size, train, *, device, amp_dtype, batch_size):
    """Seconds per image of a training step (or a forward pass) at ``size``.

    Timed on a copy of ``module`` (the model itself and the random
    generators are untouched) with a random batch: one warm-up step, then
    the fastest of three (a busy machine only slows steps down; the fit's
    time guard cuts a plan that proves too long). Cached per process under
    ``key``.
    """
    from ._device import autocast

    size = _square(size)
    cache_key = (key, str(device), size, bool(train))
    if cache_key in _COSTS:
        return _COSTS[cache_key]
    import copy

    probe = copy.deepcopy(module).to(device)
    channels = int(probe.mean.shape[1]) if hasattr(probe, "mean") else 3
    b = int(max(2, min(batch_size, 16)))
    generator = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (b, *size, channels), generator=generator)
    x = x.to(torch.uint8).to(device)
    target = torch.zeros(b, dtype=torch.long, device=device)
    params = [p for p in probe.parameters() if p.requires_grad]
    times = []
    with torch.random.fork_rng(devices=[] if device.type != "cuda" else [device]):
        for _ in range(4):
            start = time.perf_counter()
            if train:
                probe.train()
                with autocast(device, amp_dtype):
                    loss = torch.nn.functional.cross_entropy(probe(x), target)
                grads = torch.autograd.grad(loss, params) if params else ()
                del grads
            else:
                probe.eval()
                with torch.inference_mode(), autocast(device, amp_dtype):
                    probe.features(x) if hasattr(probe, "features") else probe(x)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            times.append(time.perf_counter() - start)
    # the fastest step: another process on the device only ever slows a step
    # down, and a plan that proves too long is cut by the fit's time guard
    cost = float(np.min(times[1:])) / b
    if train:
        cost *= 1.1  # the optimizer step and the batch slicing
    _COSTS[cache_key] = cost
    return cost


def describe(plan):
    """One line for the console: the recipe, its settings, time and reason."""
    p = plan["params"]
    size = p["image_size"]
    parts = [f"recipe {plan['recipe'] or 'none'}"]
    if size is not None:
        parts.append(f"{size[0]} px" if size[0] == size[1] else f"{size} px")
    parts.append(f"freeze={p['freeze']}")
    parts.append(f"{p['max_epochs']} epochs")
    parts.append(f"{p['optimizer']} lr={p['lr']:g}")
    if p["lr_schedule"]:
        parts.append(f"{p['lr_schedule']} schedule")
    if p["augment"]:
        parts.append(f"augment={p['augment']}")
    line = ", ".join(parts)
    if plan["estimated_seconds"] is not None:
        line += f"; about {_minutes(plan['estimated_seconds'])}"
        line += f" of a {_minutes(plan['budget'])} budget"
    return f"{line} ({plan['reason']})"
