"""The skorch net behind :class:`CNNClassifier`.

:class:`_ImageNet` extends skorch's ``NeuralNetClassifier`` with autocast,
trainable-only parameters, batches moved to the device by
:class:`~skmedimg.neural._data.TensorBatchIterator`, losses kept on the device
until the end of an epoch (skorch has no hook for that: its loop reads each
loss back to the host) and fp16 loss scaling.
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
    None) and ``shuffle_seed`` (seed of the training permutation generator).
    The weight average (``CNNClassifier(ema=...)``) is a callback,
    :class:`~skmedimg.neural._callbacks._WeightAveraging`.
    """

    def __init__(self, *args, amp_dtype=None, shuffle_seed=0, **kwargs):
        super().__init__(*args, **kwargs)
        self.amp_dtype = amp_dtype
        self.shuffle_seed = shuffle_seed

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

    def run_single_epoch(self, iterator, training, prefix, step_fn, **fit_params):
        # skorch's loop calls loss.item() after every batch, which makes the
        # host wait for the GPU once per batch. Here the losses stay on the
        # device and are written to the batch history at the end of the
        # epoch (callbacks see them from on_epoch_end on), so the host keeps
        # queueing work ahead of the GPU.
        if iterator is None:
            return
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
        return step

