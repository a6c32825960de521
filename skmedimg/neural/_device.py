"""Device and numerical precision: the one place that chooses them.

Every torch-backed part of skmedimg resolves its ``device`` and ``precision``
parameters here, in ``fit`` (never in ``__init__``), so that a model written
with ``device="auto"`` runs on a GPU when one is present and on the CPU
otherwise, with the same code.
"""

from __future__ import annotations

import contextlib
import warnings

import torch

__all__ = ["autocast", "resolve_device", "resolve_loading_device", "resolve_precision"]

#: Accepted values of the ``precision`` parameter.
PRECISIONS = ("auto", "fp32", "bf16", "fp16")

_DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_device(device="auto"):
    """Turn a ``device`` parameter into a :class:`torch.device`.

    Parameters
    ----------
    device : str or torch.device, default="auto"
        ``"auto"`` picks ``"cuda"`` when a CUDA device is available and
        ``"cpu"`` otherwise; anything else is passed to :class:`torch.device`
        (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"`` ...).

    Returns
    -------
    device : torch.device
        The resolved device.

    Raises
    ------
    ValueError
        If the device string is not understood by torch, or names CUDA when
        no CUDA device is available.

    Examples
    --------
    >>> from skmedimg.neural import resolve_device
    >>> resolve_device("cpu")
    device(type='cpu')
    """
    if isinstance(device, torch.device):
        resolved = device
    elif device is None or device == "auto":
        resolved = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        try:
            resolved = torch.device(device)
        except (RuntimeError, TypeError) as exc:
            raise ValueError(
                f"device must be 'auto' or a torch device string such as 'cpu' "
                f"or 'cuda:0', got {device!r} ({exc})"
            ) from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device={device!r} asks for CUDA, but no CUDA device is available "
            "(torch.cuda.is_available() is False); use device='auto' or 'cpu'"
        )
    if resolved.type == "cuda" and resolved.index is not None:
        count = torch.cuda.device_count()
        if resolved.index >= count:
            raise ValueError(
                f"device={device!r} asks for CUDA device {resolved.index}, but "
                f"this machine has {count} (cuda:0 to cuda:{count - 1})"
            )
    return resolved


def resolve_loading_device(device, *, what="the model"):
    """Choose the device a saved or pickled model is loaded onto.

    Like :func:`resolve_device`, except that a CUDA device on a machine
    without CUDA falls back to the CPU with a warning instead of an error, so
    that a model fitted on a GPU loads anywhere.

    Parameters
    ----------
    device : str, torch.device or None
        The device the model was fitted or saved with (``"auto"`` or
        ``None``: CUDA when available).
    what : str, default="the model"
        How the warning names the model.

    Returns
    -------
    device : torch.device
        The device to load onto.
    """
    if device is None or device == "auto":
        return resolve_device("auto")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        warnings.warn(
            f"{what} was fitted on {str(device)!r}, but no CUDA device is "
            "available here; it is loaded on the CPU.",
            UserWarning,
            stacklevel=3,
        )
        return torch.device("cpu")
    if device.type == "cuda" and device.index is not None:
        count = torch.cuda.device_count()
        if device.index >= count:
            warnings.warn(
                f"{what} was fitted on {str(device)!r}, but this machine has "
                f"{count} CUDA device(s); it is loaded on 'cuda:0'.",
                UserWarning,
                stacklevel=3,
            )
            return torch.device("cuda", 0)
    return device


def resolve_precision(precision="auto", device="cpu"):
    """Turn a ``precision`` parameter into an autocast dtype.

    Parameters
    ----------
    precision : {"auto", "fp32", "bf16", "fp16"}, default="auto"
        ``"auto"`` means bfloat16 autocast on a CUDA device that supports it
        (Ampere or newer) and float32 everywhere else. ``"bf16"`` and
        ``"fp16"`` force autocast to that type (``"fp16"`` training uses a
        gradient scaler); ``"fp32"`` disables autocast.
    device : str or torch.device, default="cpu"
        The resolved device the computation runs on.

    Returns
    -------
    dtype : torch.dtype or None
        The autocast dtype, or ``None`` for plain float32.

    Raises
    ------
    ValueError
        If ``precision`` is not one of the accepted values, or asks for
        ``"fp16"`` on a device other than CUDA.

    Examples
    --------
    >>> from skmedimg.neural import resolve_precision
    >>> resolve_precision("auto", "cpu") is None
    True
    >>> resolve_precision("bf16", "cpu")
    torch.bfloat16
    """
    device = torch.device(device)
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "auto":
        if device.type == "cuda" and _native_bf16(device):
            return torch.bfloat16
        return None
    if precision == "fp16" and device.type != "cuda":
        raise ValueError(
            "precision='fp16' needs a CUDA device (float16 autocast on "
            f"{device.type!r} is slow or unsupported); use 'bf16' or 'fp32'"
        )
    return _DTYPES[precision]


def _native_bf16(device):
    """Whether CUDA ``device`` computes in bfloat16 natively (Ampere or newer).

    ``torch.cuda.is_bf16_supported()`` also says yes for older GPUs (T4,
    V100) that only emulate it, slowly, and asks about the current device
    rather than ``device``.
    """
    if torch.version.hip:
        return True
    index = device.index if device.index is not None else torch.cuda.current_device()
    return torch.cuda.get_device_capability(index)[0] >= 8


def loaded_precision(precision, device):
    """Autocast dtype of a model fitted elsewhere and now run on ``device``.

    Like :func:`resolve_precision`, for the device the model is on now
    (``"auto"`` is decided again there), except that ``"fp16"`` off CUDA
    falls back to float32 instead of raising: a model trained in float16 on
    a GPU still predicts on a CPU.
    """
    device = torch.device(device)
    if precision == "fp16" and device.type != "cuda":
        precision = "fp32"
    return resolve_precision(precision, device)


def autocast(device, dtype):
    """Context manager running the enclosed code under autocast.

    Parameters
    ----------
    device : str or torch.device
        Device the computation runs on.
    dtype : torch.dtype or None
        The autocast dtype from :func:`resolve_precision`; ``None`` gives a
        no-op context (plain float32).

    Returns
    -------
    context : context manager
        :class:`torch.autocast` or :func:`contextlib.nullcontext`.

    Examples
    --------
    >>> import torch
    >>> from skmedimg.neural import autocast
    >>> with autocast("cpu", torch.bfloat16):
    ...     (torch.ones(2, 2) @ torch.ones(2, 2)).dtype
    torch.bfloat16
    """
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=torch.device(device).type, dtype=dtype)
