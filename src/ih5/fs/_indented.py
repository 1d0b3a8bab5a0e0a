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
from collections.abc import Callable
from typing import Any

_INDENT = "  "
_is_finite = math.isfinite


class _NotPlainError(Exception):
    """The tree holds something only ``json.dumps`` should encode."""


def _encode(node: Any, newline: str, out: list[str], quote: Callable[[str], str]) -> None:
    """Append the text of ``node`` whose lines continue after ``newline``."""
    kind = type(node)
    if kind is str:
        out.append(quote(node))
    elif kind is dict:
        if not node:
            out.append("{}")
            return
        inner = newline + _INDENT
        separator = "{" + inner
        for key, value in node.items():
            if type(key) is not str:
                raise _NotPlainError
            # Text and ints, most values of sidecars and manifests, without a call of their own.
            if type(value) is str:
                out.append(f"{separator}{quote(key)}: {quote(value)}")
            elif type(value) is int:
                out.append(f"{separator}{quote(key)}: {int.__repr__(value)}")
            else:
                out.append(f"{separator}{quote(key)}: ")
                _encode(value, inner, out, quote)
            separator = "," + inner
        out.append(newline + "}")
    elif kind is list:
        if not node:
            out.append("[]")
            return
        inner = newline + _INDENT
        separator = "[" + inner
        for value in node:
            if type(value) is str:
                out.append(separator + quote(value))
            elif type(value) is int:
                out.append(separator + int.__repr__(value))
            else:
                out.append(separator)
                _encode(value, inner, out, quote)
            separator = "," + inner
        out.append(newline + "]")
    elif node is None:
        out.append("null")
    elif node is True:
        out.append("true")
    elif node is False:
        out.append("false")
    elif kind is int:
        out.append(int.__repr__(node))
    elif kind is float and _is_finite(node):
        out.append(float.__repr__(node))
    else:
        raise _NotPlainError


def indented_json(data: Any, *, level: int = 0, ensure_ascii: bool = False) -> str | None:
    """``json.dumps(data, indent=2, ensure_ascii=ensure_ascii)`` for a plain tree, else None.

    With ``level``, the lines after the first continue as they would ``level`` deep
    in an enclosing document.
    """
    quote = json.encoder.encode_basestring_ascii if ensure_ascii else json.encoder.encode_basestring
    out: list[str] = []
    try:
        _encode(data, "\n" + _INDENT * level, out, quote)
    except (_NotPlainError, RecursionError):
        return None
    return "".join(out)
