"""A cache of decoded images on disk, shared by fits, processes and machines.

Decoding and resizing a JPEG costs far more than reading the few hundred
kilobytes of its decoded pixels back from disk, and a grid search, a
cross-validation, repeated command-line runs and the workers of a cluster
decode the same files again and again. :class:`ImageCache` keeps each decoded
image (uint8, at the target size and colour) in a file of its own, so that
each image is decoded once.

Entry format
------------
One file per image: a 32-byte header, then the raw ``uint8`` pixels in
C order, ``(height, width, n_channels)``. The header is little-endian::

    8s  magic  b"SKMIMG01"
    I   height
    I   width
    I   n_channels
    I   dtype code (1: uint8)
    I   CRC32 of the pixel bytes
    4x  padding

so an entry can be memory-mapped (:meth:`ImageCache.open_memmap`) at offset
32. An entry is written to a temporary file in its folder and renamed into
place (:func:`os.replace`, atomic on POSIX and Windows), so concurrent
writers (threads, processes, machines sharing a file system) never leave a
half-written entry under its final name; two writers of one image write the
same bytes. A short entry or one whose CRC does not match (a crash, a disk
error, a hand edit) is never returned: it is removed and reported as a miss,
and the image is read from its source again.

Keys
----
An entry is found by the identity of its source file (absolute path, size in
bytes and modification time in nanoseconds) and the reading settings (target
size, colour rule, resize mode, resampling filter, decoder and the skmedimg
version), hashed with SHA-256. A changed file, or any other setting, is a
miss, never a stale image. Only files are cached; in-memory images have no
identity to key on and are decoded every time.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import tempfile
import threading
import zlib
from pathlib import Path

import numpy as np

from ._deprecation import DEPRECATED, renamed_argument

__all__ = ["ImageCache"]

_MAGIC = b"SKMIMG01"
_HEADER = struct.Struct("<8sIIIII4x")
#: Bytes before the pixels of an entry.
HEADER_SIZE = _HEADER.size  # 32
_DTYPE_CODES = {np.dtype(np.uint8): 1}
_SUBFOLDER = "skmedimg_images"


def _version():
    from .._version import __version__

    return __version__


class ImageCache:
    """Decoded images on disk, one file per image, keyed by file and settings.

    Parameters
    ----------
    folder : str or path-like
        Where the entries live (in a ``skmedimg_images`` subfolder, created
        when needed). Delete that subfolder to clear the cache.

    Attributes
    ----------
    hits : int
        Entries found and verified since this object was created.
    misses : int
        Lookups that found nothing usable (absent, stale or corrupt).
    writes : int
        Entries written.
    corrupt : int
        Entries found damaged (short, bad header or bad CRC) and removed.

    Notes
    -----
    The counters are per object and thread-safe; they let a caller tell how
    many images were decoded (``misses``) and how many were only read back.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from PIL import Image
    >>> from skmedimg.utils import ImageCache
    >>> folder = tempfile.mkdtemp()
    >>> path = os.path.join(folder, "a.png")
    >>> Image.fromarray(np.zeros((8, 8), dtype=np.uint8)).save(path)
    >>> cache = ImageCache(folder)
    >>> key = cache.key(path, image_size=(4, 4), color="rgb")
    >>> cache.load(key) is None
    True
    >>> cache.store(key, np.zeros((4, 4, 3), dtype=np.uint8))
    >>> cache.load(key).shape
    (4, 4, 3)
    """

    def __init__(self, folder):
        self.folder = Path(os.fspath(folder)) / _SUBFOLDER
        self.hits = 0
        self.misses = 0
        self.writes = 0
        self.corrupt = 0
        self._lock = threading.Lock()

    def __repr__(self):
        return f"ImageCache({str(self.folder.parent)!r})"

    def __getstate__(self):
        state = self.__dict__.copy()
        del state["_lock"]
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def _count(self, name):
        with self._lock:
            setattr(self, name, getattr(self, name) + 1)

    # ------------------------------------------------------------------ keys

    def key(
        self,
        path,
        *,
        image_size=None,
        color,
        resize_mode="stretch",
        resample="bilinear",
        decoder="cpu",
        size=DEPRECATED,
    ):
        """The key of a file read with these settings, or None if it is unusable.

        Parameters
        ----------
        path : str or path-like
            The source file.
        image_size : tuple (height, width)
            Target size (required).
        color : {"rgb", "gray", "keep"}
            Colour rule of the reader.
        resize_mode : str, default="stretch"
            Resize mode of the reader.
        resample : str, default="bilinear"
            Resampling filter of the reader.
        decoder : str, default="cpu"
            Which decoder made the pixels (``"cpu"`` for the Pillow reader);
            decoders differ within JPEG tolerance, so they do not share
            entries.
        size : tuple (height, width)
            Deprecated spelling of ``image_size``.

            .. deprecated:: 0.1
               ``size`` was renamed ``image_size`` and will be removed in 0.3.

        Returns
        -------
        key : str or None
            A hex digest; None when the file cannot be stat'ed (the reader
            then reports it).
        """
        size = renamed_argument(
            "ImageCache.key", "size", size, "image_size", image_size, default=None
        )
        if size is None:
            raise TypeError("ImageCache.key() needs image_size=(height, width)")
        try:
            path = os.path.abspath(os.fspath(path))
            st = os.stat(path)
        except (OSError, TypeError, ValueError):
            return None
        identity = {
            "path": path,
            "bytes": st.st_size,
            "mtime_ns": st.st_mtime_ns,
            "size": [int(s) for s in size],
            "color": color,
            "resize_mode": resize_mode,
            "resample": resample,
            "decoder": decoder,
            "version": _version(),
        }
        text = json.dumps(identity, sort_keys=True)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def entry_path(self, key):
        """The file of an entry (it may not exist)."""
        return self.folder / key[:2] / f"{key}.img"

    # --------------------------------------------------------------- reading

    def _read_header(self, fh):
        head = fh.read(HEADER_SIZE)
        if len(head) != HEADER_SIZE:
            return None
        magic, height, width, channels, code, crc = _HEADER.unpack(head)
        if magic != _MAGIC or code != 1 or min(height, width, channels) < 1:
            return None
        return (height, width, channels), crc

    def _discard(self, path):
        self._count("corrupt")
        try:
            os.remove(path)
        except OSError:
            pass

    def has(self, key, shape):
        """Whether an entry of ``shape`` (height, width, channels) exists.

        Only its header and length are checked, not its pixels: a reader of
        the entry checks the CRC (``load``, or ``read_entry`` with
        ``entry_crc_ok``) and decodes the source again if it fails. Counts a
        hit when True.
        """
        if key is None:
            return False
        path = self.entry_path(key)
        try:
            with open(path, "rb") as fh:
                header = self._read_header(fh)
                length = os.fstat(fh.fileno()).st_size
        except OSError:
            return False
        if header is None or header[0] != tuple(int(s) for s in shape):
            return False
        if length != HEADER_SIZE + int(np.prod(shape)):
            return False
        self._count("hits")
        return True

    def load(self, key):
        """The image of an entry, verified, or None (absent or damaged).

        A damaged entry (short, bad header, CRC mismatch) is removed and
        counted in ``corrupt``; the caller reads the source again.
        """
        if key is None:
            self._count("misses")
            return None
        path = self.entry_path(key)
        try:
            with open(path, "rb") as fh:
                header = self._read_header(fh)
                data = fh.read() if header is not None else b""
        except FileNotFoundError:
            self._count("misses")
            return None
        except OSError:
            self._count("misses")
            return None
        if header is not None:
            shape, crc = header
            if len(data) == int(np.prod(shape)) and zlib.crc32(data) == crc:
                self._count("hits")
                return np.frombuffer(data, dtype=np.uint8).reshape(shape).copy()
        self._discard(path)
        self._count("misses")
        return None

    def open_memmap(self, key):
        """A read-only memory map of a verified entry, or None.

        The CRC is checked once, when the map is opened.
        """
        image = self.load(key)
        if image is None:
            return None
        return np.memmap(
            self.entry_path(key),
            dtype=np.uint8,
            mode="r",
            offset=HEADER_SIZE,
            shape=image.shape,
        )

    # --------------------------------------------------------------- writing

    def store(self, key, image):
        """Write an entry atomically (temporary file, then :func:`os.replace`).

        Parameters
        ----------
        key : str
            From :meth:`key`; ``None`` stores nothing.
        image : ndarray of shape (height, width, n_channels), uint8
            The decoded image.
        """
        if key is None:
            return
        image = np.ascontiguousarray(image)
        if image.dtype != np.uint8 or image.ndim != 3:
            raise ValueError(
                "ImageCache stores uint8 images of shape (height, width, "
                f"n_channels), got dtype {image.dtype} and shape {image.shape}"
            )
        data = image.tobytes()
        header = _HEADER.pack(_MAGIC, *image.shape, 1, zlib.crc32(data))
        path = self.entry_path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".img")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(header)
                fh.write(data)
            os.replace(tmp, path)
        except BaseException:
            try:
                os.remove(tmp)
            except OSError:
                pass
            raise
        self._count("writes")


def read_entry(path, offset, nbytes, out):
    """Read ``nbytes`` at ``offset`` of ``path`` into the buffer ``out``.

    Returns whether the whole read succeeded.
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
    except OSError:
        return False
    try:
        view = memoryview(out).cast("B")
        done = 0
        while done < nbytes:
            n = _pread_into(fd, view[done:nbytes], offset + done)
            if n <= 0:
                return False
            done += n
        return True
    finally:
        os.close(fd)


def _pread_into(fd, view, offset):
    if hasattr(os, "preadv"):
        return os.preadv(fd, [view], offset)
    os.lseek(fd, offset, os.SEEK_SET)  # no pread (Windows)
    data = os.read(fd, len(view))
    view[: len(data)] = data
    return len(data)


def entry_crc_ok(path, image):
    """Whether ``image`` (read from the entry ``path``) matches its stored CRC."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(HEADER_SIZE)
    except OSError:
        return False
    if len(head) != HEADER_SIZE:
        return False
    magic, height, width, channels, code, crc = _HEADER.unpack(head)
    return (
        magic == _MAGIC
        and (height, width, channels) == tuple(image.shape)
        and zlib.crc32(np.ascontiguousarray(image).data) == crc
    )
