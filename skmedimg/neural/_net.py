"""The skorch net behind :class:`CNNClassifier`.

:class:`_ImageNet` extends skorch's ``NeuralNetClassifier`` with autocast,
trainable-only parameters, batches moved to the device by
:class:`~skmedimg.neural._data.TensorBatchIterator`, losses kept on the device
until the end of an epoch, and an average of the weights.
"""

from __future__ import annotations

import torch
from skorch import NeuralNetClassifier
from skorch.callbacks import EpochTimer, PassthroughScoring
from skorch.dataset import unpack_data
from skorch.utils import TeeGenerator

from ._data import TensorBatchIterator
from ._device import autocast

__all__ = ["_ImageNet"]


class _ImageNet(NeuralNetClassifier):
    """skorch net with autocast, trainable-only parameters and device batches.

    Parameters beyond NeuralNetClassifier's: ``amp_dtype`` (autocast dtype or
    None), ``shuffle_seed`` (seed of the training permutation generator) and
    ``ema`` (decay of an exponential moving average of the weights, or None).

    With ``ema``, the module holds the raw weights while it trains and the
    averaged ones whenever it does not: during validation (so validation
    scores, early stopping and its checkpoints see the averaged model) and
    after training.

    The average is ours rather than ``torch.optim.swa_utils.AveragedModel``
    or timm's ``ModelEmaV3`` because it keeps only the tensors that training
    changes and swaps them into the module in place, where both libraries
    hold a deep copy of the whole module: measured in
    ``benchmarks/bench_ema.py`` (``results/ema.json``, EfficientNet-Lite0 on
    a CPU), an update took 3.7-4.9 times less time than theirs when every
    weight trains, and with a frozen backbone (the linear-probe recipe) it
    held 0.02 MB instead of 13 MB and took about 1 % of their time.
    """

    def __init__(self, *args, amp_dtype=None, shuffle_seed=0, ema=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.amp_dtype = amp_dtype
        self.shuffle_seed = shuffle_seed
        self.ema = ema

    @property
    def _default_callbacks(self):
        return [
            ("epoch_timer", EpochTimer()),
            ("train_loss", PassthroughScoring(name="train_loss", on_train=True)),
            ("valid_loss", PassthroughScoring(name="valid_loss")),
        ]

    def initialize(self):
        super().initialize()
        self.shuffle_generator_ = torch.Generator().manual_seed(int(self.shuffle_seed))
        use_scaler = self.amp_dtype == torch.float16
        self.grad_scaler_ = torch.amp.GradScaler("cuda", enabled=use_scaler)
        # skorch pickles ``module_``, ``criterion_`` and ``optimizer_`` apart,
        # with a map_location, so that a net fitted on a GPU unpickles on a
        # machine without one. Other attributes hold the same device tensors:
        # ``module`` and ``criterion`` are the very instances (given
        # initialised), the callbacks hold the optimizer and its state (a
        # learning-rate scheduler), and an fp16 gradient scaler its scale.
        # Pickled in the same stream as ``module_``, a shared instance is
        # also written once, not twice.
        for name in ("module", "criterion", "callbacks", "grad_scaler_"):
            if name not in self.cuda_dependent_attributes_:
                self.cuda_dependent_attributes_ = [
                    *self.cuda_dependent_attributes_,
                    name,
                ]
        return self

    def _set_training(self, training=True):
        # skorch sets the mode of every module before every batch. Walking
        # the hundreds of modules of a backbone (and putting its frozen part
        # back in eval mode) costs more than a step of a linear head on
        # cached features, so the mode is set only when it changes.
        for name in self._modules + self._criteria:
            module = getattr(self, name + "_")
            if isinstance(module, torch.nn.Module) and module.training != training:
                module.train(training)

    def get_all_learnable_params(self):
        for name, param in super().get_all_learnable_params():
            if param.requires_grad:
                yield name, param

    def get_iterator(self, dataset, training=False):
        # The device is injected here, not stored as an iterator parameter, so
        # that a net unpickled on a CPU-only machine iterates on the CPU.
        iterator = super().get_iterator(dataset, training=training)
        if isinstance(iterator, TensorBatchIterator):
            iterator.device = torch.device(self.device)
            if training and iterator.shuffle and iterator.generator is None:
                iterator.generator = self.shuffle_generator_
        return iterator

    def infer(self, x, **fit_params):
        with autocast(self.device, self.amp_dtype):
            return super().infer(x, **fit_params)

    # -------------------------------------------------- weight averaging

    def _ema_tensors(self):
        """Return the tensors that training changes, to be averaged.

        They are the trainable parameters and the floating-point buffers
        (BatchNorm statistics) of modules in training mode. Frozen parts are
        left out: their average is themselves.
        """
        self._set_training(True)
        tensors = [p for p in self.module_.parameters() if p.requires_grad]
        for module in self.module_.modules():
            if module.training:
                tensors.extend(
                    b
                    for b in module.buffers(recurse=False)
                    if b is not None and b.is_floating_point()
                )
        return tensors

    def _ema_use(self, averaged):
        """Put the averaged (True) or the raw (False) weights in the module."""
        if not self.ema or getattr(self, "ema_state_", None) is None:
            return
        state = self.ema_state_
        if state["averaged_in"] == averaged:
            return
        with torch.no_grad():
            for live, other in zip(state["live"], state["other"], strict=True):
                held = live.detach().clone()
                live.detach().copy_(other)
                other.copy_(held)
        state["averaged_in"] = averaged

    def _ema_update(self):
        """Take one step of the average.

        The decay warms up as ``min(ema, (1 + t) / (10 + t))`` at step
        ``t``, so that the first, untrained weights fade quickly in short
        trainings.
        """
        state = self.ema_state_
        t = state["steps"]
        decay = min(float(self.ema), (1.0 + t) / (10.0 + t))
        with torch.no_grad():
            live = [tensor.detach() for tensor in state["live"]]
            torch._foreach_lerp_(state["other"], live, 1.0 - decay)
        state["steps"] = t + 1

    def notify(self, method_name, **cb_kwargs):
        if self.ema and method_name == "on_train_end":
            # The averaged weights are the model; early stopping's on_train_end
            # may then load its best checkpoint, itself an averaged one.
            self._ema_use(True)
            super().notify(method_name, **cb_kwargs)
            self.ema_state_ = None  # the raw weights are not kept
            return
        super().notify(method_name, **cb_kwargs)

    def run_single_epoch(self, iterator, training, prefix, step_fn, **fit_params):
        # skorch's loop calls loss.item() after every batch, which makes the
        # host wait for the GPU once per batch. Here the losses stay on the
        # device and are written to the batch history at the end of the
        # epoch (callbacks see them from on_epoch_end on), so the host keeps
        # queueing work ahead of the GPU.
        if iterator is None:
            return
        if self.ema:
            if getattr(self, "ema_state_", None) is None:
                live = self._ema_tensors()
                self.ema_state_ = {
                    "live": live,
                    "other": [t.detach().clone() for t in live],
                    "averaged_in": False,
                    "steps": 0,
                }
            self._ema_use(not training)
        losses = []
        for batch in iterator:
            self.notify("on_batch_begin", batch=batch, training=training)
            step = step_fn(batch, **fit_params)
            losses.append(step["loss"].detach())
            self.history.record_batch(prefix + "_batch_size", len(batch[0]))
            self.notify("on_batch_end", batch=batch, training=training, **step)
        rows = self.history[-1]["batches"][-len(losses) :] if losses else []
        values = torch.stack(losses).float().cpu().tolist() if losses else []
        for row, value in zip(rows, values, strict=True):
            row[prefix + "_loss"] = value
        group = getattr(self, "_data_parallel", None)
        if group is not None:  # the losses of the global batches, on every rank
            group.sync_epoch_losses(rows, values, prefix, training)
        self.history.record(prefix + "_batch_count", len(losses))

    def predict_proba(self, X):
        # Outputs stay on the device and come back once, not once per batch;
        # inference_mode skips autograd's version counters.
        nonlin = self._get_predict_nonlinearity()
        with torch.inference_mode():
            outputs = [
                nonlin(yp) for yp in self.forward_iter(X, training=False, device=None)
            ]
            return torch.cat(outputs).float().cpu().numpy()

    def train_step_single(self, batch, **fit_params):
        if not self.grad_scaler_.is_enabled():
            return super().train_step_single(batch, **fit_params)
        self._set_training(True)
        Xi, yi = unpack_data(batch)
        y_pred = self.infer(Xi, **fit_params)
        loss = self.get_loss(y_pred, yi, X=Xi, training=True)
        self.grad_scaler_.scale(loss).backward()
        return {"loss": loss, "y_pred": y_pred}

    def train_step(self, batch, **fit_params):
        if not self.grad_scaler_.is_enabled():
            step = super().train_step(batch, **fit_params)
        else:
            self._zero_grad_optimizer()
            step = self.train_step_single(batch, **fit_params)
            # Unscaled before callbacks see them (gradient clipping), as
            # skorch's own step tells them: GradScaler.step does not unscale
            # again, and skips the step if they hold inf or NaN.
            self.grad_scaler_.unscale_(self.optimizer_)
            self.notify(
                "on_grad_computed",
                named_parameters=TeeGenerator(self.get_all_learnable_params()),
                batch=batch,
                training=True,
            )
            self.grad_scaler_.step(self.optimizer_)
            self.grad_scaler_.update()
        if self.ema:
            self._ema_update()
        return step

