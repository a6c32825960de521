"""CNNClassifier(ema=): an exponential moving average of the weights."""

import pickle

import numpy as np
import pytest
import torch
from skorch.callbacks import Callback

from tests.neural.test_estimator_contract import make_lesions, tiny


@pytest.fixture(scope="module")
def data():
    return make_lesions(n_samples=40)


class _Recorder(Callback):
    """Snapshots of the module's floating-point state.

    ``start``: at the beginning of training; ``steps``: after every
    optimizer step (the raw weights); ``valid``: at the first validation
    batch of each epoch (what validation scores).
    """

    def on_train_begin(self, net, **kwargs):
        self.start, self.steps, self.valid = _state(net), [], []
        self.in_valid = False

    def on_epoch_begin(self, net, **kwargs):
        self.in_valid = False

    def on_batch_end(self, net, training, **kwargs):
        if training:
            self.steps.append(_state(net))

    def on_batch_begin(self, net, training, **kwargs):
        if not training and not self.in_valid:
            self.valid.append(_state(net))
            self.in_valid = True


def _state(net):
    return {
        key: value.detach().clone()
        for key, value in net.module_.state_dict().items()
        if value.is_floating_point()
    }


def _expected_average(start, steps, decay, upto=None):
    """The average of ``steps`` from ``start``, with the decay's warm-up."""
    average = {key: value.clone() for key, value in start.items()}
    for t, state in enumerate(steps[:upto]):
        d = min(decay, (1 + t) / (10 + t))
        for key, value in state.items():
            average[key] += (1 - d) * (value - average[key])
    return average


def _assert_state_close(actual, expected, atol=1e-6):
    for key, value in expected.items():
        torch.testing.assert_close(actual[key], value, atol=atol, rtol=1e-5, msg=key)


@pytest.mark.parametrize("freeze", ["backbone", "none"])
def test_model_is_the_average_of_the_steps(data, freeze):
    X, y = data
    recorder = _Recorder()
    params = dict(freeze=freeze, max_epochs=3, lr=0.05 if freeze == "none" else 0.1)
    clf = tiny(ema=0.9, callbacks=[recorder], **params).fit(X, y)
    final = _state(clf.net_)
    _assert_state_close(final, _expected_average(recorder.start, recorder.steps, 0.9))
    # not the raw weights of the last step
    last = recorder.steps[-1]
    assert any(not torch.allclose(final[k], last[k]) for k in last)
    if freeze == "none":
        # BatchNorm statistics are averaged too
        key = "backbone.bn1.running_mean"
        assert not torch.allclose(final[key], last[key])


def test_training_trajectory_is_unchanged(data):
    """Swapping the averaged weights in and out leaves the raw steps exact."""
    X, y = data
    raw, averaged = _Recorder(), _Recorder()
    params = dict(freeze="none", lr=0.05, max_epochs=3, early_stopping=5)
    plain = tiny(callbacks=[raw], **params).fit(X, y)
    ema = tiny(ema=0.8, callbacks=[averaged], **params).fit(X, y)
    assert len(raw.steps) == len(averaged.steps)
    for a, b in zip(raw.steps, averaged.steps, strict=True):
        _assert_state_close(b, a, atol=0)
    np.testing.assert_allclose(
        plain.history_["train_loss"], ema.history_["train_loss"], rtol=1e-6
    )
    # validation saw other weights, so other scores
    assert plain.history_["valid_loss"] != ema.history_["valid_loss"]


def test_validation_and_early_stopping_use_the_average(data):
    X, y = data
    recorder = _Recorder()
    clf = tiny(
        ema=0.7,
        freeze="none",
        lr=0.05,
        max_epochs=4,
        early_stopping=1,
        callbacks=[recorder],
    ).fit(X, y)
    per_epoch = len(recorder.steps) // len(recorder.valid)
    for epoch, seen in enumerate(recorder.valid, start=1):
        expected = _expected_average(
            recorder.start, recorder.steps, 0.7, upto=epoch * per_epoch
        )
        _assert_state_close(seen, expected)
    # the restored best epoch is an averaged model too
    _assert_state_close(_state(clf.net_), recorder.valid[clf.best_epoch_ - 1])


def test_raw_weights_are_not_kept(data):
    X, y = data
    plain = tiny(freeze="none", max_epochs=1).fit(X, y)
    ema = tiny(freeze="none", max_epochs=1, ema=0.9).fit(X, y)
    assert dict(ema.net_.callbacks_)["ema"].state_ is None
    size, plain_size = len(pickle.dumps(ema)), len(pickle.dumps(plain))
    assert size < 1.05 * plain_size
    again = pickle.loads(pickle.dumps(ema))
    np.testing.assert_allclose(again.predict_proba(X), ema.predict_proba(X))


@pytest.mark.parametrize("bad", [0, 1, 1.5, -0.1])
def test_ema_outside_open_interval_is_refused(data, bad):
    X, y = data
    with pytest.raises(ValueError, match="'ema' parameter"):
        tiny(ema=bad).fit(X, y)
