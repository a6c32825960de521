"""skorch callbacks of :class:`CNNClassifier`: epoch metrics, progress, time budget."""

from __future__ import annotations

import time

import torch
from skorch.callbacks import Callback

__all__ = [
    "BUDGET_TRAINING_FRACTION",
    "_EpochMetrics",
    "_EpochProgressBar",
    "_TimeBudget",
    "_compress_onecycle",
]


class _EpochMetrics(Callback):
    """Record accuracy (train and valid) and the learning rate of each epoch."""

    def on_epoch_begin(self, net, **kwargs):
        self.lr_ = float(net.optimizer_.param_groups[0]["lr"])
        self.counts_ = {True: [0, 0], False: [0, 0]}
        self.correct_ = {True: None, False: None}

    def on_batch_end(self, net, batch, training, **kwargs):
        y_pred = kwargs.get("y_pred")
        y = batch[1]
        if y_pred is None or y is None:
            return
        hits = (y_pred.argmax(dim=-1) == y.to(y_pred.device)).sum()
        prev = self.correct_[training]
        self.correct_[training] = hits if prev is None else prev + hits
        self.counts_[training][1] += len(y)

    def on_epoch_end(self, net, **kwargs):
        group = getattr(net, "_data_parallel", None)
        for training, name in ((True, "train_acc"), (False, "valid_acc")):
            correct = self.correct_[training]
            correct = 0.0 if correct is None else float(correct)
            total = self.counts_[training][1]
            if group is not None:  # counted over the shards of every rank
                correct, total = group.sum_counts([correct, total])
            if total:
                net.history.record(name, correct / total)
        net.history.record("lr", self.lr_)
        self.correct_ = {True: None, False: None}  # no device tensors kept


class _EpochProgressBar(Callback):
    """A tqdm bar with one step per epoch, showing loss and accuracy."""

    def __init__(self, desc="CNNClassifier"):
        self.desc = desc

    def on_train_begin(self, net, **kwargs):
        from tqdm.auto import tqdm

        self.bar_ = tqdm(total=net.max_epochs, desc=self.desc, unit="epoch")

    def on_epoch_end(self, net, **kwargs):
        row = net.history[-1]
        keys = ("train_loss", "train_acc", "valid_loss", "valid_acc")
        self.bar_.set_postfix({k: f"{row[k]:.4f}" for k in keys if k in row})
        self.bar_.update(1)

    def on_train_end(self, net, **kwargs):
        self.bar_.close()

    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("bar_", None)
        return state


#: Share of ``time_budget`` (counted from the start of ``fit``) by which a
#: ``recipe="auto"`` fine-tune ends its last epoch; the rest is for the
#: predictions that usually follow.
BUDGET_TRAINING_FRACTION = 0.9


class _TimeBudget(Callback):
    """Shorten a fine-tune that runs slower than planned, within its budget.

    ``recipe="auto"`` plans its epochs from a few measured steps; when the
    device turns out slower (another job started, a thermal limit), the
    planned epochs would overrun the time budget. After each epoch this
    projects the end from the epochs so far; when it falls after
    ``deadline`` (a ``time.perf_counter`` value), training stops after the
    epochs that still fit (at least one more), and a one-cycle schedule is
    compressed to end there, so the last epoch still anneals the rate.
    """

    def __init__(self, deadline):
        self.deadline = deadline

    def on_train_begin(self, net, **kwargs):
        self.start_ = time.perf_counter()
        self.planned_ = int(net.max_epochs)
        self.stop_after_ = None

    def on_epoch_end(self, net, **kwargs):
        done = len(net.history)
        if self.stop_after_ is not None:
            if done >= self.stop_after_:
                raise KeyboardInterrupt  # skorch ends training as for EarlyStopping
            return
        now = time.perf_counter()
        per_epoch = (now - self.start_) / max(done, 1)
        left = self.planned_ - done
        more = None
        if left > 0 and now + per_epoch * left > self.deadline:
            more = max(1, int((self.deadline - now) // per_epoch))
        group = getattr(net, "_data_parallel", None)
        if group is not None:  # every process stops when rank 0 does
            more = group.broadcast_object(more)
        if more is None:
            return
        self.stop_after_ = done + more
        scheduler = dict(net.callbacks_).get("lr_scheduler")
        onecycle = getattr(scheduler, "lr_scheduler_", None)
        if isinstance(onecycle, torch.optim.lr_scheduler.OneCycleLR):
            _compress_onecycle(onecycle, self.stop_after_ / self.planned_)


def _compress_onecycle(scheduler, fraction):
    """End a running OneCycleLR after ``fraction`` of its steps."""
    step = scheduler.last_epoch
    total = max(step + 1, int(round(scheduler.total_steps * fraction)))
    phases = scheduler._schedule_phases
    if len(phases) != 2:  # three-phase schedules are not compressed
        return
    if step < phases[0]["end_step"]:  # still warming up: a shorter warm-up
        warm = 0.3 * total - 1
        if warm <= step:  # none left: anneal from the rate reached
            for group in scheduler.optimizer.param_groups:
                group["max_lr"] = group["lr"]
            warm = float(step)
        phases[0]["end_step"] = warm
    phases[1]["end_step"] = total - 1
    scheduler.total_steps = total

