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

import os
import queue
import shutil
import tempfile
import threading
import weakref

import numpy as np
import torch

from ..utils import (
    HEADER_SIZE,
    ImageReadError,
    entry_crc_ok,
    iter_image_chunks,
    overlapped,
    read_chunked,
    read_entry,
    read_image_sizes,
    read_images,
    warn_upscale,
)
from ..utils import as_image_cache as _as_cache
from ..utils import item_name as _item_name

__all__ = [
    "DiskImages",
    "TensorBatchIterator",
    "TensorDataset",
    "decode_chunks",
    "place_on_device",
    "read_chunk",
    "read_model_input",
    "read_training_images",
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
    if not isinstance(X, torch.Tensor):  # DiskImages: streamed from disk
        return X
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
        if isinstance(tensor, DiskImages):  # a streamed fit: read from disk
            return tensor.read(index, pin=pin)
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
        items, image_size=size, color=color, n_jobs=n_jobs, warn_upscale=warn_upscale
    )
    return images[..., None] if images.ndim == 3 else images


def read_chunk(
    X, part, *, size, n_jobs, device, color="rgb", cache=None, decode_on_device=False
):
    """Decode ``X[part]`` to a uint8 ``(n, height, width, n_channels)`` tensor.

    ``color`` is ``"rgb"`` (3 channels) or ``"gray"`` (1 channel).

    ``X`` is the output of :func:`~skmedimg.utils.check_images` (an array or
    an object array of paths / images). On CUDA the tensor is pinned here,
    in the decoding thread, so that its batches are copied to the device
    without another host copy. ``cache`` (an
    :class:`~skmedimg.utils.ImageCache` or its folder) and
    ``decode_on_device`` are those of
    :func:`~skmedimg.utils.iter_image_chunks`. Failures are raised as one
    :class:`~skmedimg.utils.ImageReadError` whose indices are positions in
    ``part``, as :func:`decode_chunks` expects.
    """
    if cache is None and not decode_on_device:
        items = X[int(part[0]) : int(part[-1]) + 1] if _is_run(part) else X[part]
        images = read_model_input(
            items, size=size, color=color, n_jobs=n_jobs, warn_upscale=None
        )
    else:
        position = {int(index): k for k, index in enumerate(part)}
        (chunk,) = iter_image_chunks(
            X,
            image_size=size,
            color=color,
            chunk_size=max(len(part), 1),
            cache=cache,
            indices=part,
            n_jobs=n_jobs,
            device=device,
            decode_on_device=decode_on_device,
            prefetch=0,
        )
        if chunk.failures:
            raise ImageReadError(
                [(position[i], item, why) for i, item, why in chunk.failures],
                n_items=len(part),
            )
        images = chunk.images
    tensor = torch.from_numpy(np.ascontiguousarray(images))
    if torch.device(device).type == "cuda":
        tensor = tensor.pin_memory()
    return tensor


def _is_run(part):
    """Whether ``part`` is a non-empty run of consecutive indices."""
    return len(part) > 0 and bool(np.all(np.diff(part) == 1))


def decode_chunks(X, indices, chunk_size, decode):
    """Yield ``(start, images)`` for consecutive chunks of ``X[indices]``.

    ``decode(X, part)`` turns the indices ``part`` into an image tensor; a
    thread decodes the next chunk while the caller computes on the current
    one (:func:`skmedimg.utils._stream.overlapped`, the loop of
    :func:`~skmedimg.utils.iter_image_chunks`), so at most two chunks of
    decoded images are held at once, whatever the size of ``X``. ``start``
    is the position of the chunk's first image in ``indices``.

    Unreadable images do not stop the decoding: once one chunk has failed,
    no more chunks are yielded, but the rest are still decoded, so that the
    one :class:`~skmedimg.utils.ImageReadError` raised at the end names
    every bad item, with its index (and, for in-memory images, its name) in
    ``X``, not in its chunk.
    """
    indices = np.asarray(indices)
    parts = [indices[i : i + chunk_size] for i in range(0, len(indices), chunk_size)]
    failures = []
    start = 0
    for part, result in overlapped(lambda part: decode(X, part), parts):
        try:
            images = result()
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


# --------------------------------------------------------------------------
# Bounded memory: decoded images on disk, read a batch at a time (fit)
# --------------------------------------------------------------------------


def decoded_nbytes(n_samples, size, color):
    """Bytes of ``n_samples`` images decoded at ``size`` in ``color``."""
    channels = 1 if color == "gray" else 3
    return int(n_samples) * int(size[0]) * int(size[1]) * channels


def read_training_images(
    X,
    *,
    size,
    color,
    n_jobs=None,
    cache=None,
    in_memory_limit=None,
    device=None,
    decode_on_device=False,
    chunk_size=None,
):
    """The training images of a fit: a tensor, or :class:`DiskImages` when large.

    Without a cache, device decoding or a limit that ``X`` exceeds, this is
    :func:`read_model_input` in one call (the in-memory path, unchanged).
    With a cache or device decoding, ``X`` is read chunk by chunk through
    :func:`~skmedimg.utils.iter_image_chunks` into one array. When the
    decoded images take more than ``in_memory_limit`` bytes they go to disk
    instead: entries of ``cache`` for files, a temporary file for the rest
    (and for everything without a cache), and the result is a
    :class:`DiskImages` whose batches are read when used, so host memory is
    bounded by ``chunk_size`` and the batch size, not by ``len(X)``. Either
    way one :class:`~skmedimg.utils.ImageReadError` names every bad image.
    """
    nbytes = decoded_nbytes(len(X), size, color)
    streamed = in_memory_limit is not None and nbytes > in_memory_limit
    if streamed or cache is not None or decode_on_device:
        # The chunked readers do not say it: the sizes come from the headers.
        _warn_if_upscaled(X, size)
    if chunk_size is None:
        per_image = decoded_nbytes(1, size, color)
        chunk_size = int(np.clip(_STREAM_CHUNK_BYTES // per_image, 1, 1024))
    if not streamed:
        if cache is None and not decode_on_device:
            images = read_model_input(X, size=size, color=color, n_jobs=n_jobs)
        else:
            images = read_chunked(
                X,
                image_size=size,
                color=color,
                chunk_size=chunk_size,
                cache=cache,
                n_jobs=n_jobs,
                device=device,
                decode_on_device=decode_on_device,
            )
        return torch.from_numpy(np.ascontiguousarray(images))
    return DiskImages.from_images(
        X,
        size=size,
        color=color,
        n_jobs=n_jobs,
        cache=cache,
        device=device,
        decode_on_device=decode_on_device,
        chunk_size=chunk_size,
    )


def _warn_if_upscaled(X, size):
    """Say once, as the in-memory read does, that images are upscaled a lot."""
    if isinstance(X, np.ndarray) and X.dtype != object:
        warn_upscale([X.shape[1:3]], size, UPSCALE_WARNING_FACTOR, n_images=len(X))
        return
    try:
        sizes = read_image_sizes(X)
    except ImageReadError:  # the decoding names the unreadable ones
        return
    warn_upscale(sizes, size, UPSCALE_WARNING_FACTOR)


#: Bytes of decoded images per chunk when filling a :class:`DiskImages`.
_STREAM_CHUNK_BYTES = 64 * 2**20


class _TemporaryStore:
    """A temporary folder removed with the last :class:`DiskImages` using it."""

    def __init__(self):
        self.folder = tempfile.mkdtemp(prefix="skmedimg-images-")
        self._finalizer = weakref.finalize(
            self, shutil.rmtree, self.folder, ignore_errors=True
        )


class DiskImages:
    """Decoded images on disk, read a batch at a time: ``X`` of a streamed fit.

    It stands where a uint8 tensor ``(n, height, width, n_channels)`` stands
    in a :class:`TensorDataset`: :class:`TensorBatchIterator` reads each
    batch (a slice or an index tensor) from disk with :meth:`read`, straight
    into pinned memory for CUDA copies. Indexing (``images[indices]``)
    selects a subset without reading it, as a view does.

    Each image is a run of bytes in a file: an entry of an
    :class:`~skmedimg.utils.ImageCache` (its CRC is checked on every read;
    a damaged entry is decoded from its source again) or a row of a
    temporary file (removed with the last object using it).
    """

    def __init__(self, paths, offsets, verified, shape, *, source, store=None):
        self._paths = paths  # object array: the file of each image
        self._offsets = offsets  # int64 array: where its pixels start
        self._verified = verified  # bool array: a cache entry (CRC checked)
        self._shape = tuple(shape)
        self._source = source  # (X, read settings, cache) to decode again
        self._store = store
        self.device = torch.device("cpu")
        self.dtype = torch.uint8

    @classmethod
    def from_images(
        cls,
        X,
        *,
        size,
        color,
        n_jobs=None,
        cache=None,
        device=None,
        decode_on_device=False,
        chunk_size=256,
    ):
        """Decode ``X`` chunk by chunk to disk (cache entries or a temporary file)."""
        cache = _as_cache(cache)
        channels = 1 if color == "gray" else 3
        shape = (int(size[0]), int(size[1]), channels)
        per_image = int(np.prod(shape))
        n = len(X)
        paths = np.empty(n, dtype=object)
        offsets = np.zeros(n, dtype=np.int64)
        verified = np.zeros(n, dtype=bool)
        store = fd = None
        failures = []
        decoder = "device" if decode_on_device and device is not None else "cpu"
        # The cache key of each file (None: not cached), computed once.
        keys = np.empty(n, dtype=object)

        def take_entry(index):
            paths[index] = str(cache.entry_path(keys[index]))
            offsets[index] = HEADER_SIZE
            verified[index] = True

        # Entries already in the cache are used where they are, unread: every
        # batch read checks their CRC (and decodes the source of a bad one).
        pending = []
        for index in range(n):
            item = X[index]
            if cache is not None and isinstance(item, str):
                keys[index] = cache.key(
                    item, image_size=size, color=color, decoder=decoder
                )
            if keys[index] is not None and cache.has(keys[index], shape):
                take_entry(index)
            else:
                pending.append(index)
        try:
            for chunk in iter_image_chunks(
                X,
                image_size=size,
                color=color,
                chunk_size=chunk_size,
                cache=cache,
                indices=np.asarray(pending, dtype=np.int64),
                n_jobs=n_jobs,
                device=device,
                decode_on_device=decode_on_device,
            ):
                failures += chunk.failures
                if failures:
                    continue  # read on, to name every bad image
                for index, image in zip(chunk.indices, chunk.images, strict=True):
                    key = keys[index]
                    if key is not None and os.path.exists(cache.entry_path(key)):
                        take_entry(index)  # the reader stored it
                        continue
                    if fd is None:
                        store = _TemporaryStore()
                        stack = os.path.join(store.folder, "images.bin")
                        fd = os.open(stack, os.O_RDWR | os.O_CREAT, 0o600)
                    os.pwrite(fd, np.ascontiguousarray(image).data, index * per_image)
                    paths[index] = stack
                    offsets[index] = index * per_image
        finally:
            if fd is not None:
                os.close(fd)
        if failures:
            raise ImageReadError(failures, n_items=n)
        source = (X, {"image_size": size, "color": color}, cache, decoder)
        return cls(paths, offsets, verified, shape, source=source, store=store)

    # ------------------------------------------------------ tensor-like API

    def __len__(self):
        return len(self._paths)

    @property
    def shape(self):
        return torch.Size((len(self), *self._shape))

    @property
    def ndim(self):
        return 1 + len(self._shape)

    def _subset(self, index):
        if isinstance(index, torch.Tensor):
            index = index.cpu().numpy()
        positions = np.arange(len(self))[index]
        view = object.__new__(type(self))
        view.__dict__.update(self.__dict__)
        view._paths = self._paths[positions]
        view._offsets = self._offsets[positions]
        view._verified = self._verified[positions]
        view._source_rows = self._rows()[positions]
        return view

    def _rows(self):
        """Index of each image in the source ``X``."""
        rows = self.__dict__.get("_source_rows")
        return np.arange(len(self)) if rows is None else rows

    def __getitem__(self, index):
        """A subset, not read (use :meth:`read` for the pixels)."""
        return self._subset(index)

    def read(self, index=slice(None), *, pin=False):
        """The images at ``index`` (a slice, an index array or tensor), as a tensor.

        ``pin=True`` reads them into pinned memory, for asynchronous CUDA
        copies.
        """
        if isinstance(index, torch.Tensor):
            index = index.cpu().numpy()
        positions = np.arange(len(self))[index]
        out = torch.empty((len(positions), *self._shape), dtype=torch.uint8)
        if pin:
            out = out.pin_memory()
        host = out.numpy()
        nbytes = int(np.prod(self._shape))
        rows = self._rows()
        for k, p in enumerate(positions):
            ok = read_entry(self._paths[p], int(self._offsets[p]), nbytes, host[k])
            if ok and self._verified[p]:
                ok = entry_crc_ok(self._paths[p], host[k])
            if not ok:  # a damaged or vanished entry: decode its source again
                host[k] = self._decode_again(int(rows[p]))
        return out

    def _decode_again(self, row):
        X, settings, cache, decoder = self._source
        item = X[row]
        image = read_model_input(
            [item], size=settings["image_size"], color=settings["color"], warn_upscale=None
        )[0]
        if cache is not None and isinstance(item, str) and decoder == "cpu":
            cache.store(cache.key(item, **settings), image)
        return image

    def numpy(self):
        """The images one at a time (an iterable, read a chunk at a time)."""
        return _ChunkedRows(self)


class _ChunkedRows:
    """Iterate over the images of a :class:`DiskImages`, 256 read at a time."""

    def __init__(self, images):
        self.images = images

    def __len__(self):
        return len(self.images)

    def __iter__(self):
        for start in range(0, len(self.images), 256):
            yield from self.images.read(slice(start, start + 256)).numpy()
