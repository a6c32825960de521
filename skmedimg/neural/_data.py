"""Batches sliced from tensors, for skorch's training and inference loops.

skorch's default ``DataLoader`` collates batches sample by sample, which costs
more than the forward pass of a small network. Here the whole data set is one
tensor (uint8 images ``(n_samples, height, width, n_channels)`` or float
features ``(n_samples, n_features)``) and a batch is one slice (or one gather,
when shuffling). Batches move to the device as uint8; on CUDA they are pinned
and copied asynchronously while the previous batch computes, or the whole data
set is moved once when it fits comfortably in device memory.
"""

from __future__ import annotations

import torch

__all__ = ["TensorBatchIterator", "TensorDataset", "place_on_device"]


class TensorDataset(torch.utils.data.Dataset):
    """A data set of one ``X`` tensor and an optional ``y`` tensor.

    It is a :class:`torch.utils.data.Dataset` (so skorch uses it as given)
    whose batches :class:`TensorBatchIterator` slices directly.

    Parameters
    ----------
    X : torch.Tensor
        Images or features, sample axis first.
    y : torch.Tensor or None, default=None
        Integer class indices.
    """

    def __init__(self, X, y=None):
        if y is not None and len(y) != len(X):
            raise ValueError(f"X has {len(X)} samples but y has {len(y)}")
        self.X = X
        self.y = y

    def __len__(self):
        return len(self.X)

    def __getitem__(self, index):
        return self.X[index], (None if self.y is None else self.y[index])


def place_on_device(X, device, *, max_fraction=0.25):
    """Move a whole data set to a CUDA device when it fits comfortably.

    Parameters
    ----------
    X : torch.Tensor
        The data set on the CPU.
    device : torch.device
        The training device.
    max_fraction : float, default=0.25
        Move only when ``X`` takes at most this fraction of the free device
        memory.

    Returns
    -------
    X : torch.Tensor
        ``X`` on the device, or ``X`` unchanged (on the CPU).
    """
    device = torch.device(device)
    if device.type != "cuda" or X.device.type == "cuda":
        return X
    free, _ = torch.cuda.mem_get_info(device)
    if X.numel() * X.element_size() <= max_fraction * free:
        return X.to(device)
    return X


class TensorBatchIterator:
    """Iterate over a :class:`TensorDataset` in slices, moving them to a device.

    skorch builds it as ``iterator_train`` / ``iterator_valid`` with
    ``batch_size`` and the routed ``iterator_*__`` parameters.

    Parameters
    ----------
    dataset : TensorDataset
        The data.
    batch_size : int, default=32
        Samples per batch; the last batch may be smaller.
    shuffle : bool, default=False
        Draw a new permutation each epoch from ``generator``.
    generator : torch.Generator, default=None
        Random generator of the permutation (seeded by the estimator).
    drop_last : bool, default=False
        Drop a last incomplete batch.
    device : str or torch.device, default=None
        Move batches there (``non_blocking``, pinned, one batch ahead on CUDA).
        ``None`` leaves them where they are.
    """

    def __init__(
        self,
        dataset,
        batch_size=32,
        shuffle=False,
        generator=None,
        drop_last=False,
        device=None,
    ):
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.generator = generator
        self.drop_last = drop_last
        self.device = None if device is None else torch.device(device)

    def __len__(self):
        n = len(self.dataset)
        if self.drop_last:
            return n // self.batch_size
        return -(-n // self.batch_size)

    def _batches(self):
        X, y = self.dataset.X, self.dataset.y
        n = len(X)
        stop = n - n % self.batch_size if self.drop_last else n
        if self.shuffle:
            order = torch.randperm(n, generator=self.generator)
            if X.device.type != "cpu":
                order = order.to(X.device)
            for start in range(0, stop, self.batch_size):
                idx = order[start : start + self.batch_size]
                yield X[idx], (None if y is None else y[idx.to(y.device)])
        else:
            for start in range(0, stop, self.batch_size):
                sl = slice(start, start + self.batch_size)
                yield X[sl], (None if y is None else y[sl])

    def _to_device(self, tensor):
        if tensor is None or self.device is None or tensor.device == self.device:
            return tensor
        if self.device.type == "cuda":
            return tensor.pin_memory().to(self.device, non_blocking=True)
        return tensor.to(self.device)

    def __iter__(self):
        pending = None
        for Xb, yb in self._batches():
            batch = (self._to_device(Xb), self._to_device(yb))
            # Issue the next copy before handing out the current batch, so
            # the transfer overlaps with the computation on the previous one.
            if pending is not None:
                yield pending
            pending = batch
        if pending is not None:
            yield pending
