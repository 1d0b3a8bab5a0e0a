"""Rendering values read from a record: strings decoded, numpy text for people, JSON for scripts."""

from __future__ import annotations

import base64
import math
import sys
from collections.abc import Mapping
from typing import Any

import numpy as np


def _decode(item: Any) -> Any:
    if isinstance(item, bytes):
        try:
            return item.decode("utf-8")
        except UnicodeDecodeError:
            return item
    return item


def decoded(value: Any) -> Any:
    """``value`` with its strings as ``str``: h5py hands out UTF-8 strings as bytes."""
    if isinstance(value, np.ndarray):
        if value.dtype.kind == "S":
            try:
                return np.char.decode(value, "utf-8")
            except UnicodeDecodeError:
                return value
        if value.dtype.kind == "O":
            return np.vectorize(_decode, otypes=[object])(value)
    return _decode(value)


def dtype_name(dtype: np.dtype[Any]) -> str:
    """A dtype as text; h5py's variable-length types read "vlen str" rather than "object"."""
    metadata: Mapping[str, Any] = dtype.metadata or {}
    vlen = metadata.get("vlen")
    if vlen is None:
        return str(dtype)
    return f"vlen {getattr(vlen, '__name__', vlen)}"


def as_text(value: Any) -> str:
    """Numpy's printing of a value, never summarised with "..."."""
    value = decoded(value)
    if isinstance(value, np.ndarray):
        return np.array2string(value, threshold=sys.maxsize)
    return str(value)


def to_json(value: Any) -> Any:
    """Plain JSON data: arrays as lists, bytes as UTF-8 text or base64, odd floats as text."""
    if isinstance(value, (np.ndarray, np.generic)):
        return to_json(value.tolist())
    if isinstance(value, (list, tuple)):
        return [to_json(item) for item in value]
    if isinstance(value, dict):
        return {key: to_json(item) for key, item in value.items()}
    if isinstance(value, bytes):
        text = _decode(value)
        return text if isinstance(text, str) else {"base64": base64.b64encode(value).decode()}
    if isinstance(value, float) and not math.isfinite(value):
        # Strict JSON has no NaN or Infinity; "nan", "inf" and "-inf" keep the meaning.
        return str(value)
    if isinstance(value, complex):
        return [to_json(value.real), to_json(value.imag)]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    # h5py.Empty (an empty dataspace) and other objects without a JSON form.
    return str(value)
