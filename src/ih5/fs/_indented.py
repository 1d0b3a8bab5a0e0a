"""Indented JSON text, byte for byte as ``json.dumps(data, indent=2, ensure_ascii=False)``.

The standard library encodes indented JSON in pure Python, a generator per
container and a ``yield`` per token: about three times the time of the loop
below for a plate metadata sidecar, and every locked update encodes the whole
document. Only plain ``dict``/``list``/``str``/``int``/``float``/``bool``/``None``
trees are handled here (finite floats, string keys); anything else (a subclass,
a tuple, a non-string key, a non-finite float, a cycle) returns None, and the
caller uses ``json.dumps``, which decides and words the error as before.
"""

from __future__ import annotations

import json.encoder
import math
from typing import Any

_INDENT = "  "
_encode_string = json.encoder.encode_basestring  # the C one when it is built
_float_text = float.__repr__
_int_text = int.__repr__
_is_finite = math.isfinite


class _NotPlainError(Exception):
    """The tree holds something only ``json.dumps`` should encode."""


def _encode(node: Any, level: int, out: list[str]) -> None:
    kind = type(node)
    if kind is str:
        out.append(_encode_string(node))
    elif kind is dict:
        if not node:
            out.append("{}")
            return
        inner = "\n" + _INDENT * (level + 1)
        separator = "," + inner
        out.append("{" + inner)
        first = True
        for key, value in node.items():
            if type(key) is not str:
                raise _NotPlainError
            if first:
                first = False
            else:
                out.append(separator)
            out.append(_encode_string(key))
            out.append(": ")
            _encode(value, level + 1, out)
        out.append("\n" + _INDENT * level + "}")
    elif kind is list:
        if not node:
            out.append("[]")
            return
        inner = "\n" + _INDENT * (level + 1)
        separator = "," + inner
        out.append("[" + inner)
        first = True
        for value in node:
            if first:
                first = False
            else:
                out.append(separator)
            _encode(value, level + 1, out)
        out.append("\n" + _INDENT * level + "]")
    elif node is None:
        out.append("null")
    elif node is True:
        out.append("true")
    elif node is False:
        out.append("false")
    elif kind is int:
        out.append(_int_text(node))
    elif kind is float and _is_finite(node):
        out.append(_float_text(node))
    else:
        raise _NotPlainError


def indented_json(data: Any) -> str | None:
    """``json.dumps(data, indent=2, ensure_ascii=False)`` for a plain tree, else None."""
    out: list[str] = []
    try:
        _encode(data, 0, out)
    except (_NotPlainError, RecursionError):
        return None
    return "".join(out)
