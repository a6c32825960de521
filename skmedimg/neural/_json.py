"""Estimator parameters and fitted attributes as JSON types (for save_model)."""

from __future__ import annotations

import os

import numpy as np

__all__ = ["from_json", "jsonable"]


def jsonable(value):
    """Convert a parameter value to JSON types, or raise TypeError."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {"__dict__": [[jsonable(k), jsonable(v)] for k, v in value.items()]}
    raise TypeError(type(value).__name__)


def from_json(value):
    """Invert :func:`jsonable` (tuples come back as lists)."""
    if isinstance(value, dict) and "__dict__" in value:
        return {from_json(k): from_json(v) for k, v in value["__dict__"]}
    if isinstance(value, list):
        return [from_json(v) for v in value]
    return value
