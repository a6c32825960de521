"""BackboneRunner: the one loop that runs a network over images without training.

The frozen-feature fit and ``predict_proba`` of :class:`CNNClassifier`,
:meth:`CNNFeatureExtractor.transform` and :func:`skmedimg.inspection.gradcam`
all do the same thing: decode a chunk of images (the next one in a thread,
see :func:`~skmedimg.neural._data.decode_chunks`), move it to the device a
batch at a time, run part of the network on each batch under the device lock
and the estimator's precision, and bring the outputs back to the host once
per chunk. They do it here, with one rule for each choice:

* **chunk**: :data:`CHUNK_BATCHES` batches of images are decoded at a time, so
  host memory holds at most two chunks of decoded images whatever the number
  of images, and the host waits for the device once per chunk;
* **lock**: the device lock (:func:`~skmedimg.neural._device_lock.device_lock`)
  is held while a chunk computes and released while the next one decodes,
  unless the estimator's ``lock_gpu`` is False;
* **channels last**: on the devices of
  :data:`~skmedimg.neural._module.CHANNELS_LAST_DEVICES`
  (:func:`~skmedimg.neural._module.uses_channels_last`);
* **precision**: autocast to the estimator's dtype; gradients only where they
  are asked for (Grad-CAM), in float32;
* **host memory**: on the CPU, freed activations are kept for the next batch
  instead of being unmapped and faulted in again
  (:func:`~skmedimg.utils.reused_host_memory`).
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch

from ..utils import reused_host_memory
from ._data import TensorBatchIterator, TensorDataset, decode_chunks
from ._device import autocast
from ._device_lock import device_lock

__all__ = ["CHUNK_BATCHES", "BackboneRunner"]

#: Images decoded at a time, in batches.
CHUNK_BATCHES = 16


class BackboneRunner:
    """Run ``fn`` over batches of images on a device, a chunk at a time.

    Parameters
    ----------
    device : torch.device
        Where the network is.
    amp_dtype : torch.dtype or None, default=None
        Autocast dtype (None: float32). Ignored with ``grad=True``.
    batch_size : int, default=32
        Images per forward pass.
    lock : bool, default=True
        Hold the device lock while computing.
    grad : bool, default=False
        Compute with autograd on (Grad-CAM) in float32; else without it.
    inference : bool, default=True
        Without ``grad``: ``torch.inference_mode`` (True) or ``torch.no_grad``
        (False, for outputs that later feed a training step).
    progress : str or None, default=None
        Description of a progress bar over the images; None shows none.
    """

    def __init__(
        self,
        device,
        amp_dtype=None,
        *,
        batch_size=32,
        lock=True,
        grad=False,
        inference=True,
        progress=None,
    ):
        self.device = torch.device(device)
        self.amp_dtype = amp_dtype
        self.batch_size = int(batch_size)
        self.lock = bool(lock)
        self.grad = bool(grad)
        self.inference = bool(inference)
        self.progress = progress

    @property
    def chunk_size(self):
        """Images decoded at a time."""
        return self.batch_size * CHUNK_BATCHES

    @contextlib.contextmanager
    def computing(self):
        """The context of device work: the lock, the grad mode and autocast."""
        # Without the lock no lock is asked for: a fit already holds it.
        lock = device_lock(self.device) if self.lock else contextlib.nullcontext()
        with lock:
            if self.grad:
                with torch.inference_mode(False), torch.enable_grad():
                    yield
                return
            mode = torch.inference_mode() if self.inference else torch.no_grad()
            with mode, autocast(self.device, self.amp_dtype):
                yield

    def batches(self, images):
        """Batches of a decoded chunk (a uint8 tensor, a feature matrix or
        :class:`~skmedimg.neural._data.DiskImages`) on the device.
        """
        return TensorBatchIterator(
            TensorDataset(images), batch_size=self.batch_size, device=self.device
        )

    def run(self, images, fn):
        """``fn`` of every batch of ``images``, concatenated, as float32 on the CPU.

        The outputs stay on the device until the end (no host wait per batch).
        """
        with (
            reused_host_memory(self.device),
            self.computing(),
            self._bar(len(images)) as bar,
        ):
            out = []
            for batch, _ in self.batches(images):
                out.append(fn(batch).float())
                bar(len(batch))
            return torch.cat(out).cpu()

    def chunks(self, X, indices, decode):
        """Yield ``(start, images)``: ``X[indices]`` decoded a chunk at a time.

        ``decode(X, part)`` decodes the indices ``part``; failures are
        reported once, at the end, with their indices in ``X`` (see
        :func:`~skmedimg.neural._data.decode_chunks`).
        """
        return decode_chunks(X, np.asarray(indices), self.chunk_size, decode)

    def stream(self, X, indices, decode, fn, n_outputs):
        """``fn`` over ``X[indices]`` decoded a chunk at a time.

        Returns a float32 array of shape ``(len(indices), n_outputs)``.
        """
        out = np.empty((len(indices), n_outputs), np.float32)
        with reused_host_memory(self.device), self._bar(len(indices)) as bar:
            for start, images in self.chunks(X, indices, decode):
                with self.computing():
                    block = torch.cat(
                        [fn(batch).float() for batch, _ in self.batches(images)]
                    )
                    block = block.cpu().numpy()
                out[start : start + len(block)] = block
                bar(len(block))
        return out

    @contextlib.contextmanager
    def _bar(self, total):
        if self.progress is None:
            yield lambda n: None
            return
        from tqdm.auto import tqdm

        bar = tqdm(total=total, desc=self.progress, unit="img")
        try:
            yield bar.update
        finally:
            bar.close()
