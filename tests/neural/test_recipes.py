"""CNNClassifier(recipe=...): named recipes and the rule of recipe="auto"."""

import pickle

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV

from skmedimg.datasets import make_phantoms
from skmedimg.neural import (
    RECIPES,
    CNNClassifier,
    load_model,
    plan_recipe,
    save_model,
)


def cost_model(per_image_224):
    """A step cost of ``per_image_224`` s an image at 224 px, scaling with pixels."""

    def step_cost(size, train):
        scale = (size[0] * size[1]) / (224 * 224)
        return per_image_224 * scale * (1.0 if train else 1 / 3)

    return step_cost


def plan(n, budget, per_image=0.05, device="cpu", **kwargs):
    return plan_recipe(
        "auto",
        n_samples=n,
        device=device,
        native_size=(224, 224),
        time_budget=budget,
        step_cost=cost_model(per_image),
        **kwargs,
    )


# ----------------------------------------------------------- the written rule


def test_fast_device_fine_tunes_at_native_size():
    # 0.5 ms an image (a GPU): 5,000 images, 12-40 epochs fit at 224 px
    result = plan(5000, 900, per_image=0.0005, device="cpu")
    assert result["recipe"] == "fine-tune"
    assert result["params"]["image_size"] == (224, 224)
    assert result["params"]["max_epochs"] == 14  # round(70000 / 5000)
    assert result["params"]["optimizer"] == "adamw"
    assert result["params"]["lr_schedule"] == "onecycle"
    assert result["params"]["augment"] == "standard"
    assert result["estimated_seconds"] <= 900


def test_slow_device_lowers_the_size_before_the_recipe():
    # 50 ms an image at 224 px (a 2-core CPU): 5,000 images in 15 minutes
    result = plan(5000, 900)
    assert result["recipe"] == "fine-tune"
    size = result["params"]["image_size"]
    epochs = result["params"]["max_epochs"]
    assert size[0] < 224
    assert epochs >= 6
    # the largest size of the ladder that leaves 6 epochs: the next one up
    # would not
    per_epoch = 5000 * 0.05 * (size[0] / 224) ** 2
    assert epochs * per_epoch <= 0.85 * 900
    bigger = {192: 224, 160: 192, 128: 160, 96: 128}[size[0]]
    assert 6 * 5000 * 0.05 * (bigger / 224) ** 2 > 0.85 * 900
    assert "fits the 15.0 min budget" in result["reason"]


def test_tiny_budget_degrades_to_a_linear_probe():
    result = plan(5000, 30)
    assert result["recipe"] == "linear-probe"
    assert result["params"]["freeze"] == "backbone"
    assert result["params"]["augment"] is None
    assert "does not fit" in result["reason"]


def test_impossible_budget_warns_and_takes_the_cheapest():
    with pytest.warns(UserWarning, match="more than the 1 s time budget"):
        result = plan(5000, 1)
    assert result["recipe"] == "linear-probe"
    assert result["params"]["image_size"] == (96, 96)


def test_estimate_never_exceeds_budget_when_it_fits():
    for n in (100, 1000, 5000, 20000):
        for budget in (120, 600, 3600):
            result = plan(n, budget)
            if result["recipe"] == "fine-tune":
                assert result["estimated_seconds"] <= budget + 1e-6


def test_default_budget_scales_with_the_data():
    small, large = plan(100, None), plan(5000, None)
    assert small["budget"] == 180.0  # at least three minutes
    assert large["budget"] == pytest.approx(900.0)  # 15 minutes per 5,000


def test_given_parameters_are_kept():
    result = plan(5000, 900, given={"lr": 3e-4, "max_epochs": 7})
    assert result["params"]["lr"] == 3e-4
    assert result["params"]["max_epochs"] == 7
    frozen = plan(5000, 900, given={"freeze": "backbone"})
    assert frozen["recipe"] == "linear-probe"
    sized = plan(5000, 900, given={"image_size": 64})
    assert sized["params"]["image_size"] == (64, 64)


def test_small_images_are_not_upscaled_past_four_times():
    result = plan(4708, None, source_size=28)
    assert result["params"]["image_size"] == (96, 96)


def test_fixed_size_backbones_keep_their_size():
    result = plan(5000, 900, fixed_size=True, per_image=0.001)
    assert result["params"]["image_size"] == (224, 224)


def test_named_recipes_ignore_the_budget():
    for name, values in RECIPES.items():
        result = plan_recipe(
            name, n_samples=500, device="cpu", native_size=(224, 224), time_budget=1
        )
        assert result["recipe"] == name
        for key, value in values.items():
            if value is not None:
                assert result["params"][key] == value
    none = plan_recipe(None, n_samples=500, device="cpu", native_size=(224, 224))
    assert none["params"]["optimizer"] == "adam"
    assert none["params"]["max_epochs"] == 10
    assert none["params"]["augment"] is None


# ----------------------------------------------------------- in the estimator


@pytest.fixture(scope="module")
def phantoms():
    return make_phantoms(24, n_classes=2, image_size=32, random_state=0)


def tiny(**params):
    defaults = dict(
        pretrained=False, image_size=32, max_epochs=2, device="cpu", random_state=0
    )
    return CNNClassifier("test_resnet", **{**defaults, **params})


@pytest.mark.parametrize("recipe", ["fine-tune", "linear-probe", "report", None])
def test_named_recipe_round_trips(recipe, phantoms, tmp_path):
    X, y = phantoms
    clf = tiny(recipe=recipe)
    assert clone(clf).get_params()["recipe"] == recipe
    clf.fit(X, y)
    assert clf.recipe_ == recipe
    expected = RECIPES[recipe]["optimizer"] if recipe else "adam"
    assert clf.recipe_params_["optimizer"] == expected
    assert clf.recipe_params_["max_epochs"] == 2  # given, kept
    loaded = load_model(save_model(clf, tmp_path / "m.safetensors"))
    assert loaded.recipe_ == recipe
    assert loaded.recipe_params_ == clf.recipe_params_
    np.testing.assert_allclose(loaded.predict_proba(X), clf.predict_proba(X))
    again = pickle.loads(pickle.dumps(clf))
    assert again.recipe_params_ == clf.recipe_params_


def test_recipe_sets_the_network(phantoms):
    X, y = phantoms
    probe = tiny(recipe="linear-probe").fit(X, y)
    assert probe.recipe_params_["freeze"] == "backbone"
    assert all(not p.requires_grad for p in probe.net_.module_.backbone.parameters())
    tune = tiny(recipe="fine-tune").fit(X, y)
    assert any(p.requires_grad for p in tune.net_.module_.backbone.parameters())
    assert tune.net_.module_.augment is not None
    # the one-cycle schedule: the rate rises, then falls to about zero
    assert tune.history_["lr"][-1] < max(tune.history_["lr"])


def test_fit_does_not_change_the_auto_params(phantoms):
    X, y = phantoms
    clf = tiny()
    before = clf.get_params()
    clf.fit(X, y)
    assert clf.get_params() == before
    assert clf.lr == "auto" and clf.recipe_params_["lr"] == 1e-3


def test_auto_with_tiny_budget_probes_linearly(phantoms, monkeypatch):
    X, y = phantoms
    from skmedimg.neural import _classifier

    # 10 s an image: nothing fits
    monkeypatch.setattr(_classifier, "measure_step_cost", lambda *a, **k: 10.0)
    clf = CNNClassifier(
        "test_resnet", pretrained=False, device="cpu", random_state=0, time_budget=5
    )
    with pytest.warns(UserWarning, match="time budget"):
        clf.fit(X, y)
    assert clf.recipe_ == "linear-probe"
    assert "does not fit" in clf.recipe_reason_


def test_grid_search_over_recipes(phantoms):
    X, y = phantoms
    search = GridSearchCV(
        tiny(max_epochs=1), {"recipe": ["linear-probe", "fine-tune"]}, cv=2
    ).fit(X, y)
    assert set(search.cv_results_["param_recipe"]) == {"linear-probe", "fine-tune"}
    assert search.best_estimator_.recipe_ == search.best_params_["recipe"]


def test_verbose_prints_the_plan(phantoms, capsys):
    X, y = phantoms
    tiny(recipe="linear-probe", verbose=1).fit(X, y)
    out = capsys.readouterr().out
    assert out.startswith("recipe linear-probe")
    assert "freeze=backbone" in out


def test_bad_recipe_is_a_clear_error(phantoms):
    X, y = phantoms
    with pytest.raises(ValueError, match="recipe"):
        tiny(recipe="fast").fit(X, y)
    with pytest.raises(ValueError, match="time_budget"):
        tiny(time_budget=-1).fit(X, y)


def test_measured_cost_is_cached_and_leaves_the_random_state(phantoms):
    import torch

    from skmedimg.neural import _recipes

    X, y = phantoms
    _recipes._COSTS.clear()
    state = torch.get_rng_state()
    tiny(image_size="auto", max_epochs="auto", time_budget=600).fit(X, y)
    assert torch.equal(torch.get_rng_state(), state)
    assert len(_recipes._COSTS) >= 1
    first = dict(_recipes._COSTS)
    tiny(image_size="auto", max_epochs="auto", time_budget=600).fit(X, y)
    assert dict(_recipes._COSTS) == first


# ------------------------------------------------- the logistic-regression head


@pytest.mark.parametrize("n_classes", [2, 3])
def test_logistic_head_gives_scikit_learns_probabilities(n_classes):
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    from skmedimg.neural._linear_head import fit_logistic_head

    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(n_classes), 30)
    features = rng.normal(size=(len(y), 8)) * [1, 5, 0.1, 1, 1, 1, 2, 1]
    features[:, 0] += 2.0 * y  # one informative feature
    weight, bias, C = fit_logistic_head(
        torch.from_numpy(features), y, n_classes, class_weight=None, seed=0
    )
    logits = torch.from_numpy(features).float() @ weight.T + bias
    proba = torch.softmax(logits, dim=1).numpy()
    scaler = StandardScaler().fit(features)
    Z = scaler.transform(features)
    reference = LogisticRegression(C=C, max_iter=1000).fit(Z, y)
    expected = reference.predict_proba(Z)
    np.testing.assert_allclose(proba, expected, atol=1e-4)
    assert (proba.argmax(1) == y).mean() > 0.8


def test_logreg_head_is_solved_without_epochs(phantoms):
    X, y = phantoms
    clf = tiny(recipe="linear-probe", optimizer="logreg-cv").fit(X, y)
    assert clf.recipe_params_["optimizer"] == "logreg-cv"
    assert clf.n_epochs_ == 0 and "C=" in clf.recipe_reason_
    proba = clf.predict_proba(X)
    np.testing.assert_allclose(proba.sum(1), 1, rtol=1e-5)
    assert clf.score(X, y) >= 0.75


def test_logreg_head_needs_a_frozen_linear_head(phantoms):
    X, y = phantoms
    # a conflict is an error naming the parameter
    with pytest.raises(ValueError, match="augment='light'"):
        tiny(recipe="linear-probe", optimizer="logreg-cv", augment="light").fit(X, y)
    with pytest.raises(ValueError, match="freeze='none'"):
        tiny(recipe=None, optimizer="logreg-cv").fit(X, y)
    with pytest.raises(ValueError, match="loss='focal'"):
        tiny(recipe="linear-probe", optimizer="logreg-cv", loss="focal").fit(X, y)


# ------------------------------------------------------------ the time budget


def test_onecycle_is_compressed_to_end_annealed():
    from skmedimg.neural._classifier import _compress_onecycle

    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=0.1)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=0.1, total_steps=100, cycle_momentum=False
    )
    for _ in range(20):
        opt.step()
        sched.step()
    _compress_onecycle(sched, 0.5)  # end after 50 steps instead of 100
    lrs = []
    for _ in range(29):
        opt.step()
        sched.step()
        lrs.append(opt.param_groups[0]["lr"])
    assert sched.total_steps == 50
    assert max(lrs) <= 0.1 + 1e-9
    assert lrs[-1] < 1e-3  # annealed at the new end, not half-way down
    assert all(a >= b for a, b in zip(lrs[1:], lrs[2:], strict=False))


def test_auto_stops_early_when_epochs_run_slower_than_measured(phantoms, monkeypatch):
    X, y = phantoms
    from skmedimg.neural import _classifier

    # measured far faster than real: the plan takes 40 epochs, which overrun
    monkeypatch.setattr(_classifier, "measure_step_cost", lambda *a, **k: 1e-7)
    clf = tiny(max_epochs="auto", time_budget=0.3, batch_size=2).fit(X, y)
    assert clf.recipe_ == "fine-tune" and clf.recipe_params_["max_epochs"] == 40
    assert clf.n_epochs_ == 2  # the deadline passed in the first epoch: one more
    assert "stopped after 2 of 40 epochs" in clf.recipe_reason_
    # the compressed schedule still ends annealed (one-cycle's floor is
    # lr / 25 / 1e4), not at its warm-up rate lr / 25
    assert clf.net_.optimizer_.param_groups[0]["lr"] < 1e-3 / 25 / 10
    assert not hasattr(clf, "_deadline")
    # a number of epochs given is kept, however long it takes
    given = tiny(max_epochs=3, time_budget=0.3, batch_size=2).fit(X, y)
    assert given.n_epochs_ == 3


def test_model_with_auto_image_size_saves_and_loads(phantoms, tmp_path):
    # CNNClassifier() and `skmedimg train` keep image_size="auto"
    X, y = phantoms
    clf = tiny(recipe="linear-probe").fit(X, y).set_params(image_size="auto")
    loaded = load_model(save_model(clf, tmp_path / "m.safetensors"))
    assert loaded.image_size == "auto" and loaded.image_size_ == (32, 32)
    np.testing.assert_allclose(loaded.predict_proba(X), clf.predict_proba(X))
