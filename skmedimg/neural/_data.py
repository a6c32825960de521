"""Batches sliced from tensors, for skorch's training and inference loops.

skorch's default ``DataLoader`` collates batches sample by sample, which costs
more than the forward pass of a small network. Here the whole data set is one
tensor (uint8 images ``(n_samples, height, width, n_channels)`` or float
features ``(n_samples, n_features)``) and a batch is one slice (or one gather,
when shuffling). Batches move to the device as uint8. On CUDA the whole data
set is moved once when it fits comfortably in device memory
(:func:`place_on_device`); otherwise a background thread gathers the next
batches straight into pinned host memory and they are copied with
``non_blocking=True`` on a side CUDA stream, so that gathering and transfer
overlap with the computation on the current batch.
"""

from __future__ import annotations

import queue
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from ..utils import ImageReadError, read_images
from ..utils._io import _item_name

__all__ = [
    "TensorBatchIterator",
    "TensorDataset",
    "decode_chunks",
    "place_on_device",
    "read_chunk",
    "read_model_input",
]


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
        Move batches there. ``None`` leaves them where they are. From host
        memory to CUDA, batches are gathered into pinned memory and copied
        with ``non_blocking=True`` on a side stream, one batch ahead.
    prefetch : int, default=None
        Batches gathered ahead by a background thread when the data set is
        in host memory; ``None`` means 2 when copying to CUDA and 0 (no
        thread) otherwise.
    """

    def __init__(
        self,
        dataset,
        batch_size=32,
        shuffle=False,
        generator=None,
        drop_last=False,
        device=None,
        prefetch=None,
    ):
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.generator = generator
        self.drop_last = drop_last
        self.device = None if device is None else torch.device(device)
        self.prefetch = prefetch

    def __len__(self):
        n = len(self.dataset)
        if self.drop_last:
            return n // self.batch_size
        return -(-n // self.batch_size)

    def _indices(self):
        """Slices (in order) or index tensors (shuffled), one per batch."""
        n = len(self.dataset.X)
        stop = n - n % self.batch_size if self.drop_last else n
        if self.shuffle:
            order = torch.randperm(n, generator=self.generator)
            if self.dataset.X.device.type != "cpu":  # one copy, not one per batch
                order = order.to(self.dataset.X.device)
            for start in range(0, stop, self.batch_size):
                yield order[start : start + self.batch_size]
        else:
            for start in range(0, stop, self.batch_size):
                yield slice(start, start + self.batch_size)

    @staticmethod
    def _take(tensor, index, pin):
        """One batch of ``tensor``: a view (slice) or a gather (index tensor)."""
        if tensor is None:
            return None
        if isinstance(index, slice):
            batch = tensor[index]
            return batch.pin_memory() if pin else batch
        if index.device != tensor.device:
            index = index.to(tensor.device)
        if tensor.device.type != "cpu" or not pin:
            return tensor[index]
        # Gather straight into pinned memory: one copy instead of two.
        out = torch.empty(
            (len(index), *tensor.shape[1:]), dtype=tensor.dtype, pin_memory=True
        )
        return torch.index_select(tensor, 0, index, out=out)

    def _host_batches(self, pin):
        X, y = self.dataset.X, self.dataset.y
        for index in self._indices():
            yield self._take(X, index, pin), self._take(y, index, pin)

    @staticmethod
    def _prefetched(batches, depth):
        """Run the generator ``batches`` in a thread, ``depth`` batches ahead."""
        out = queue.Queue(maxsize=depth)
        stop = threading.Event()
        done = object()

        def work():
            try:
                for batch in batches:
                    if stop.is_set():
                        return
                    out.put(batch)
                out.put(done)
            except BaseException as exc:  # handed to the consumer
                out.put(exc)

        thread = threading.Thread(target=work, daemon=True)
        thread.start()
        try:
            while True:
                item = out.get()
                if item is done:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()
            while thread.is_alive():  # unblock a producer waiting on put()
                try:
                    out.get_nowait()
                except queue.Empty:
                    thread.join(timeout=0.01)

    def _copy_async(self, batch, stream):
        """Issue the host-to-device copy of a pinned batch on ``stream``."""
        with torch.cuda.stream(stream):
            moved = tuple(
                None if t is None else t.to(self.device, non_blocking=True)
                for t in batch
            )
            event = torch.cuda.Event()
            event.record(stream)
        return moved, event

    def _ready(self, moved, event):
        """Make the current stream wait for a copy and own its tensors."""
        current = torch.cuda.current_stream(self.device)
        current.wait_event(event)
        for t in moved:
            if t is not None:
                # The tensors were allocated on the side stream: tell the
                # caching allocator they are used on the current one.
                t.record_stream(current)
        return moved

    def __iter__(self):
        on_host = self.dataset.X.device.type == "cpu"
        cuda = self.device is not None and self.device.type == "cuda" and on_host
        prefetch = self.prefetch
        if prefetch is None:
            prefetch = 2 if cuda else 0
        batches = self._host_batches(pin=cuda)
        if prefetch and on_host:
            batches = self._prefetched(batches, int(prefetch))
        if not cuda:
            for Xb, yb in batches:
                yield self._to_device(Xb), self._to_device(yb)
            return
        stream = torch.cuda.Stream(self.device)
        pending = None
        for batch in batches:
            # Issue the next copy before handing out the current batch, so
            # the transfer overlaps with the computation on the previous one.
            issued = self._copy_async(batch, stream)
            if pending is not None:
                yield self._ready(*pending)
            pending = issued
        if pending is not None:
            yield self._ready(*pending)

    def _to_device(self, tensor):
        if tensor is None or self.device is None or tensor.device == self.device:
            return tensor
        return tensor.to(self.device)


# --------------------------------------------------------------------------
# Decoding a large input a chunk at a time (inference)
# --------------------------------------------------------------------------


#: Upscaling factor from which reading the training images warns (once per fit).
UPSCALE_WARNING_FACTOR = 4


def read_model_input(
    items, *, size, color="rgb", n_jobs=None, warn_upscale=UPSCALE_WARNING_FACTOR
):
    """Decode images to the uint8 ``(n, height, width, n_channels)`` array of a module.

    ``color`` is ``"rgb"`` (3 channels) or ``"gray"`` (1 channel, which
    :class:`~skmedimg.neural.ImageClassifierModule` repeats on the device).
    ``fit`` reads its images with this function in one call, so images
    upscaled ``warn_upscale`` times or more are said once per fit (a
    ``UserWarning``); the chunks of prediction do not repeat it.
    """
    images = read_images(
        items, size=size, color=color, n_jobs=n_jobs, warn_upscale=warn_upscale
    )
    return images[..., None] if images.ndim == 3 else images


def read_chunk(X, part, *, size, n_jobs, device, color="rgb"):
    """Decode ``X[part]`` to a uint8 ``(n, height, width, n_channels)`` tensor.

    ``color`` is ``"rgb"`` (3 channels) or ``"gray"`` (1 channel).

    ``X`` is the output of :func:`~skmedimg.utils.check_images` (an array or
    an object array of paths / images). On CUDA the tensor is pinned here,
    in the decoding thread, so that its batches are copied to the device
    without another host copy.
    """
    if len(part) and np.all(np.diff(part) == 1):
        items = X[int(part[0]) : int(part[-1]) + 1]  # a view for arrays
    else:
        items = X[part]
    images = read_model_input(
        items, size=size, color=color, n_jobs=n_jobs, warn_upscale=None
    )
    tensor = torch.from_numpy(np.ascontiguousarray(images))
    if torch.device(device).type == "cuda":
        tensor = tensor.pin_memory()
    return tensor


def decode_chunks(X, indices, chunk_size, decode):
    """Yield ``(start, images)`` for consecutive chunks of ``X[indices]``.

    ``decode(X, part)`` turns the indices ``part`` into an image tensor; a
    thread decodes the next chunk while the caller computes on the current
    one, so at most two chunks of decoded images are held at once, whatever
    the size of ``X``. ``start`` is the position of the chunk's first image
    in ``indices``.

    Unreadable images do not stop the decoding: once one chunk has failed,
    no more chunks are yielded, but the rest are still decoded, so that the
    one :class:`~skmedimg.utils.ImageReadError` raised at the end names
    every bad item, with its index (and, for in-memory images, its name) in
    ``X``, not in its chunk.
    """
    indices = np.asarray(indices)
    parts = [indices[i : i + chunk_size] for i in range(0, len(indices), chunk_size)]
    failures = []
    with ThreadPoolExecutor(max_workers=1) as decoder:
        pending = decoder.submit(decode, X, parts[0]) if parts else None
        start = 0
        for k, part in enumerate(parts):
            future = pending
            pending = (
                decoder.submit(decode, X, parts[k + 1]) if k + 1 < len(parts) else None
            )
            try:
                images = future.result()
            except ImageReadError as exc:
                if exc.failures and all(i < 0 for i, _, _ in exc.failures):
                    raise  # the input as a whole, not some of its items
                for i, _, reason in exc.failures:
                    index = int(part[i])
                    failures.append((index, _item_name(X[index], index), reason))
                images = None
            if images is not None and not failures:
                yield start, images
            start += len(part)
    if failures:
        raise ImageReadError(failures, n_items=len(X))
