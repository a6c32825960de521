"""The streaming reader: decoded images a chunk at a time, failures by global index.

Fitting, predicting, extracting features, Grad-CAM, the intensity features
and the command line read their images through :func:`iter_image_chunks`,
so that a folder of any size is never held decoded in memory, the next chunk
is decoded while the caller works on the current one, and one error can name
every unreadable image with its index in the whole input.

Pixels come from :func:`~skmedimg.utils.read_images` (the one decoder), from
an :class:`~skmedimg.utils.ImageCache` of earlier decodes, or, on request,
from :func:`torchvision.io.decode_jpeg` on a CUDA device (JPEG files only;
every other format, and every file that device decoding refuses, goes
through ``read_images``).
"""

from __future__ import annotations

import os
from collections import namedtuple
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ._image_cache import ImageCache
from ._io import (
    DEFAULT_MAX_PIXELS,
    ImageReadError,
    _check_options,
    _item_name,
    _normalise_size,
    _stack,
    _validate,
    read_images,
)

__all__ = ["ImageChunk", "iter_image_chunks"]

#: Images decoded at a time when no ``chunk_size`` is given.
DEFAULT_CHUNK_SIZE = 256

_JPEG_EXTENSIONS = (".jpg", ".jpeg", ".jpe", ".jfif")

ImageChunk = namedtuple("ImageChunk", ["start", "images", "indices", "failures"])
ImageChunk.__doc__ = """One chunk of decoded images from :func:`iter_image_chunks`.

Attributes
----------
start : int
    Position of the chunk's first item in the sequence that was read (``X``,
    or ``X[indices]`` when ``indices`` was given).
images : ndarray of shape (n_good, height, width, n_channels) or list
    The images that were read, uint8, in input order; a list when no
    ``image_size`` was given and their sizes differ.
indices : ndarray of shape (n_good,)
    Index in ``X`` of each image in ``images``.
failures : list of tuple (int, str, str)
    ``(index in X, item, reason)`` of each item of the chunk that could not
    be read, as in :class:`~skmedimg.utils.ImageReadError`.
"""


def _as_cache(cache):
    if cache is None or isinstance(cache, ImageCache):
        return cache
    return ImageCache(cache)


def _items_of(X, part):
    """``X[part]``: a view for a contiguous run of a numeric array."""
    if len(part) and int(part[-1]) - int(part[0]) == len(part) - 1 and np.all(
        np.diff(part) == 1
    ):
        return X[int(part[0]) : int(part[-1]) + 1]
    return X[part]


def _is_cuda(device):
    return device is not None and str(device).startswith("cuda")


def _is_jpeg(item):
    return isinstance(item, str) and os.path.splitext(item)[1].lower() in _JPEG_EXTENSIONS


def _device_decodable(path, max_pixels):
    """Whether a JPEG file can go to torchvision's decoder as it is.

    Only the header is parsed: files that need the EXIF orientation, are not
    plain 8-bit gray / YCbCr JPEGs (CMYK, 12-bit) or exceed ``max_pixels``
    go through the CPU reader, which handles (or names) them.
    """
    from PIL import Image

    try:
        with Image.open(path) as img:
            if img.format != "JPEG" or img.mode not in ("L", "RGB"):
                return False
            if max_pixels is not None and img.width * img.height > max_pixels:
                return False
            orientation = img.getexif().get(0x0112, 1)
            return orientation in (0, 1)
    except Exception:
        return False


def _decode_on_device(paths, *, size, color, device):
    """Decode JPEG files with :func:`torchvision.io.decode_jpeg` on ``device``.

    Images are resized on the device (bilinear, antialiased, as Pillow's
    filter) and returned as a host uint8 array ``(n, height, width, C)``.
    Raises on any failure; the caller then uses the CPU reader.
    """
    import warnings

    import torch
    import torch.nn.functional as F
    from torchvision.io import ImageReadMode, decode_jpeg

    data = [torch.from_numpy(np.fromfile(p, dtype=np.uint8)) for p in paths]
    mode = ImageReadMode.GRAY if color == "gray" else ImageReadMode.RGB
    with warnings.catch_warnings():
        # torchvision 0.29 marks its image codecs deprecated; they still work
        warnings.simplefilter("ignore", category=UserWarning)
        warnings.simplefilter("ignore", category=DeprecationWarning)
        decoded = decode_jpeg(data, mode=mode, device=device)
    out = torch.empty(
        (len(paths), size[0], size[1], 1 if color == "gray" else 3),
        dtype=torch.uint8,
        device=device,
    )
    for k, img in enumerate(decoded):
        if tuple(img.shape[1:]) != tuple(size):
            img = F.interpolate(
                img[None].float(),
                size=size,
                mode="bilinear",
                antialias=True,
                align_corners=False,
            )[0]
            img = img.round_().clamp_(0, 255).to(torch.uint8)
        out[k] = img.permute(1, 2, 0)
    return out.cpu().numpy()


class _ChunkReader:
    """Decode one chunk: cache lookups, device JPEG decoding, the CPU reader."""

    def __init__(
        self, X, *, size, color, cache, read_kwargs, device, on_device, prefailed
    ):
        self.X = X
        self.prefailed = prefailed
        self.size = size
        self.color = color
        self.cache = cache if size is not None else None
        self.read_kwargs = read_kwargs
        self.device = device
        self.on_device = on_device and size is not None

    def _key(self, item, decoder):
        if self.cache is None or not isinstance(item, str):
            return None
        return self.cache.key(
            item,
            image_size=self.size,
            color=self.color,
            resize_mode=self.read_kwargs["resize_mode"],
            resample=self.read_kwargs["resample"],
            decoder=decoder,
        )

    def _device_part(self, items, todo):
        """Decode the JPEG files among ``todo`` on the device: {position: image}."""
        max_pixels = self.read_kwargs["max_pixels"]
        jpegs = [
            j
            for j in todo
            if _is_jpeg(items[j]) and _device_decodable(items[j], max_pixels)
        ]
        if not jpegs:
            return {}
        try:
            images = _decode_on_device(
                [items[j] for j in jpegs],
                size=self.size,
                color=self.color,
                device=self.device,
            )
        except Exception:  # a bad file in the batch: the CPU reader names it
            return {}
        return dict(zip(jpegs, images, strict=True))

    def __call__(self, part):
        X = self.X
        items = _items_of(X, part)
        n = len(part)
        images = [None] * n
        # A JPEG file asked for on the device is looked up among device
        # decodes; everything else (and every device fall-back) among the
        # CPU reader's. Each image is stored under the decoder that made it.
        keys = [
            self._key(
                items[j], "device" if self.on_device and _is_jpeg(items[j]) else "cpu"
            )
            for j in range(n)
        ]
        todo, failures = [], []
        for j, key in enumerate(keys):
            failed = self.prefailed.get(int(part[j]))
            if failed is not None:  # found by validation: not read at all
                failures.append(failed)
                continue
            cached = self.cache.load(key) if key is not None else None
            if cached is not None:
                images[j] = cached
            else:
                todo.append(j)
        if self.on_device and todo:
            done = self._device_part(items, todo)
            for j, image in done.items():
                images[j] = image
                if self.cache is not None and keys[j] is not None:
                    self.cache.store(keys[j], image)
            todo = [j for j in todo if j not in done]
            for j in todo:  # read by the CPU reader: cached as its decodes
                if keys[j] is not None and _is_jpeg(items[j]):
                    keys[j] = self._key(items[j], "cpu")
        if todo:
            whole = len(todo) == n and not isinstance(items, list)
            subset = items if whole else [items[j] for j in todo]
            try:
                read = read_images(subset, **self.read_kwargs)
                for k, j in enumerate(todo):
                    images[j] = read[k]
            except ImageReadError as exc:
                if exc.failures and all(i < 0 for i, _, _ in exc.failures):
                    raise  # the input as a whole, not some of its items
                if exc.images is not None:
                    for k, j in enumerate(todo):
                        images[j] = exc.images[k]
                for k, _, reason in exc.failures:
                    index = int(part[todo[k]])
                    failures.append((index, _item_name(X[index], index), reason))
                    images[todo[k]] = None
        if self.cache is not None:
            for j in todo:
                if images[j] is not None and keys[j] is not None:
                    self.cache.store(keys[j], images[j])
        good = [j for j in range(n) if images[j] is not None]
        indices = np.asarray(part, dtype=np.intp)[good]
        return _assemble([images[j] for j in good], self.size, self.color), indices, (
            sorted(failures)
        )


def _assemble(images, size, color):
    """Stack the good images of a chunk as ``read_images`` would."""
    if not images:
        if size is None:
            return []
        channels = 1 if color == "gray" else 3
        return np.empty((0, *size, channels), dtype=np.uint8)
    if isinstance(images, np.ndarray):
        return images
    if size is not None or len({img.shape[:2] for img in images}) == 1:
        return _stack(images, color)
    return images


def iter_image_chunks(
    X,
    *,
    image_size,
    color="rgb",
    chunk_size=DEFAULT_CHUNK_SIZE,
    cache=None,
    indices=None,
    resize_mode="stretch",
    resample="bilinear",
    n_jobs=None,
    max_pixels=DEFAULT_MAX_PIXELS,
    device=None,
    decode_on_device=False,
    prefetch=1,
):
    """Decode images a chunk at a time, the next chunk while this one is used.

    A thread decodes the next ``prefetch`` chunk(s) while the caller works on
    the current one (Pillow releases the GIL while decoding, and device work
    releases it too), so at most ``prefetch + 1`` chunks of decoded images
    are held at once, whatever the size of ``X``. Unreadable images do not
    stop the iteration: each chunk lists its failures with their index in
    ``X``, so that a caller can skip them (the command line) or raise one
    :class:`ImageReadError` naming all of them (the estimators).

    Parameters
    ----------
    X : array-like
        Any input accepted by :func:`check_images`.
    image_size : int, tuple (height, width) or None
        Target size; ``None`` keeps each image's size (the chunk's images are
        then a list when their sizes differ, and nothing is cached).
    color : {"rgb", "gray", "keep"}, default="rgb"
        Colour rule of :func:`read_images`.
    chunk_size : int, default=256
        Items per chunk.
    cache : ImageCache, str, path-like or None, default=None
        A cache of decoded images (or its folder): files found there are not
        decoded, and files decoded here are stored there. Only file paths
        are cached, and only with an ``image_size``.
    indices : array-like of int or None, default=None
        Read only ``X[indices]``, in that order; chunk ``start`` positions
        count in ``indices`` and failures and ``ImageChunk.indices`` in ``X``.
    resize_mode : {"stretch", "pad", "crop"}, default="stretch"
        As in :func:`read_images`.
    resample : str, default="bilinear"
        As in :func:`read_images`.
    n_jobs : int, default=None
        Threads decoding each chunk, as in :func:`read_images`.
    max_pixels : int or None, default=178956970
        Decompression bomb guard, as in :func:`read_images`.
    device : str, torch.device or None, default=None
        The device for ``decode_on_device``.
    decode_on_device : bool, default=False
        Decode JPEG files with :func:`torchvision.io.decode_jpeg` on
        ``device`` (nvJPEG on CUDA) and resize them there, with
        ``resize_mode="stretch"`` only. Files in other formats, files that
        need an EXIF rotation, CMYK or 12-bit JPEGs and any batch the device
        refuses go through :func:`read_images`, which names bad files as
        usual. The pixels match the CPU reader within JPEG decoder tolerance
        (a few grey levels), not exactly, which is why it is off by default.
    prefetch : int, default=1
        Chunks decoded ahead of the one being used; 0 decodes in the
        caller's thread.

    Yields
    ------
    chunk : ImageChunk
        ``(start, images, indices, failures)``, one per ``chunk_size`` items.

    Raises
    ------
    ImageReadError
        At once, if ``X`` as a whole is not image input (wrong type, shape or
        empty); item failures are reported in the chunks instead.

    See Also
    --------
    read_images : Read a whole input in one call.
    ImageCache : The decoded-image cache.

    Examples
    --------
    >>> import numpy as np
    >>> from skmedimg.utils import iter_image_chunks
    >>> X = np.zeros((5, 20, 30), dtype=np.uint8)
    >>> [(c.start, c.images.shape, c.failures)
    ...  for c in iter_image_chunks(X, image_size=8, chunk_size=2)]
    ... # doctest: +NORMALIZE_WHITESPACE
    [(0, (2, 8, 8, 3), []), (2, (2, 8, 8, 3), []), (4, (1, 8, 8, 3), [])]
    """
    _check_options(color, resize_mode, resample)
    size = _normalise_size(image_size)
    if int(chunk_size) < 1:
        raise ValueError(f"chunk_size must be a positive int, got {chunk_size!r}")
    on_device = bool(decode_on_device) and device is not None
    if on_device and resize_mode != "stretch":
        raise ValueError(
            "decode_on_device resizes with resize_mode='stretch' only, got "
            f"resize_mode={resize_mode!r}"
        )
    # Problems of single items are reported in their chunk.
    X, prefailed = _validate(X, check_files=False)
    indices = np.arange(len(X)) if indices is None else np.asarray(indices)
    reader = _ChunkReader(
        X,
        size=size,
        color=color,
        cache=_as_cache(cache),
        read_kwargs={
            "image_size": size,
            "color": color,
            "resize_mode": resize_mode,
            "resample": resample,
            "n_jobs": n_jobs,
            "max_pixels": max_pixels,
        },
        device=device,
        on_device=on_device,
        prefailed={int(f[0]): f for f in prefailed},
    )
    chunk_size = int(chunk_size)
    parts = [indices[i : i + chunk_size] for i in range(0, len(indices), chunk_size)]
    start = 0
    for part, result in overlapped(reader, parts, prefetch=prefetch):
        yield ImageChunk(start, *result())
        start += len(part)


def overlapped(func, parts, *, prefetch=1):
    """Yield ``(part, result)`` for each part, computing ``func(part)`` ahead.

    A thread runs ``func`` on the next ``prefetch`` parts while the caller
    uses the current one; ``result()`` returns ``func(part)`` or raises what
    it raised, so the caller decides what an error means. ``prefetch=0``
    runs ``func`` in the caller's thread. This is the one decode-ahead loop
    of the library (:func:`iter_image_chunks` and the CNN estimators' chunk
    decoding use it).
    """
    if not prefetch:
        for part in parts:
            try:
                value = func(part)
            except Exception as exc:  # handed over through result()
                yield part, _raiser(exc)
            else:
                yield part, _returner(value)
        return
    with ThreadPoolExecutor(max_workers=1) as worker:
        pending = []
        try:
            for part in parts:
                pending.append((part, worker.submit(func, part)))
                if len(pending) > int(prefetch):
                    done, future = pending.pop(0)
                    yield done, future.result
            while pending:
                done, future = pending.pop(0)
                yield done, future.result
        finally:
            for _, future in pending:  # the caller stopped early
                future.cancel()


def _raiser(exc):
    def result():
        raise exc

    return result


def _returner(value):
    return lambda: value


def read_chunked(X, **kwargs):
    """Decode all of ``X`` through :func:`iter_image_chunks` into one array.

    Raises one :class:`ImageReadError` naming every unreadable item (by its
    index in ``X``) after reading them all.
    """
    X, _ = _validate(X, check_files=False)
    out, failures = None, []
    for chunk in iter_image_chunks(X, **kwargs):
        failures += chunk.failures
        if failures:
            continue
        if out is None:
            out = np.empty((len(X), *chunk.images.shape[1:]), dtype=np.uint8)
        out[chunk.indices] = chunk.images
    if failures:
        raise ImageReadError(failures, n_items=len(X))
    return out
