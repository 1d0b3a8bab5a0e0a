"""Sidecars written by other tools: what they wrote stays updatable or is refused untouched.

The original OpenHCS writer uses Python's ``json`` defaults, which write
``NaN`` and ``Infinity``; hand edits leave duplicate keys; other encoders
leave lone surrogate escapes. An update either keeps all of it as it was or
refuses with a typed error naming the JSON path, leaving the file byte-identical.
"""

from __future__ import annotations

import math
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ih5 import (
    CorruptDocumentError,
    UnserializableDataError,
    atomic_update_json,
    atomic_write_json,
    locked_json,
    read_json,
)
from ih5.errors import LossyDocumentError

Updater = Callable[[Path, Callable[[Any], Any]], Any]


def _by_function(path: Path, update: Callable[[Any], Any]) -> Any:
    return atomic_update_json(path, update, 5.0, backup_corrupt=True)


def _in_block(path: Path, update: Callable[[Any], Any]) -> Any:
    with locked_json(path, 5.0, backup_corrupt=True) as document:
        update(document)
    return document


UPDATERS = pytest.mark.parametrize(
    "updater", [_by_function, _in_block], ids=["atomic_update_json", "locked_json"]
)

OPENHCS_WITH_NAN = b"""{
  "subdirectories": {
    "images": {
      "pixel_size": NaN,
      "range": [
        -Infinity,
        Infinity
      ]
    }
  }
}
"""


def _add_run(document: Any) -> Any:
    document["run"] = 1
    return document


@UPDATERS
def test_regression_update_keeps_nan_and_infinity_read_from_the_file(
    target: Path, updater: Updater
) -> None:
    """A document holding NaN (as OpenHCS writes it) read fine but every update failed."""
    target.write_bytes(OPENHCS_WITH_NAN)
    updater(target, _add_run)
    text = target.read_text()
    assert '"pixel_size": NaN' in text
    assert '"range": [\n        -Infinity,\n        Infinity\n      ]' in text
    document = read_json(target)
    assert document["run"] == 1
    assert math.isnan(document["subdirectories"]["images"]["pixel_size"])


@UPDATERS
def test_update_still_refuses_nan_the_caller_adds(target: Path, updater: Updater) -> None:
    """Only values read from the file may stay non-finite; new data is checked as before."""
    target.write_bytes(OPENHCS_WITH_NAN)

    def add_nan(document: Any) -> Any:
        document["new"] = {"value": float("nan")}
        return document

    with pytest.raises(UnserializableDataError, match=r'\$\["new"\]\["value"\]'):
        updater(target, add_nan)
    assert target.read_bytes() == OPENHCS_WITH_NAN


def test_atomic_write_json_still_refuses_nan(target: Path) -> None:
    """Plain writes never accept a non-finite number."""
    with pytest.raises(UnserializableDataError):
        atomic_write_json(target, {"x": float("inf")})
    assert not target.exists()


def test_update_without_change_leaves_a_nan_document_byte_identical(target: Path) -> None:
    """An update that changes nothing writes nothing, even when the file holds NaN."""
    target.write_bytes(OPENHCS_WITH_NAN)
    atomic_update_json(target, lambda document: document, 5.0)
    assert target.read_bytes() == OPENHCS_WITH_NAN


LOSSY = [
    (b'{"a": {"name": "\\ud800"}}\n', r'$["a"]["name"]', "surrogate"),
    (b'{"a": ["ok", "x\\udfff"]}\n', r'$["a"][1]', "surrogate"),
    (b'{"\\udc80": 1}\n', '$["\\udc80"]', "surrogate"),
    (b'{"a": 1, "a": 2}\n', r'$["a"]', "duplicate"),
    (b'{"s": {"images": {"k": 1, "j": 2, "k": 3}}}\n', r'$["s"]["images"]["k"]', "duplicate"),
]


@UPDATERS
@pytest.mark.parametrize(("raw", "json_path", "what"), LOSSY)
def test_regression_update_refuses_lossy_documents_naming_the_json_path(
    target: Path, updater: Updater, raw: bytes, json_path: str, what: str
) -> None:
    """Lone surrogates raised a bare UnicodeEncodeError; duplicate keys were silently collapsed."""
    target.write_bytes(raw)
    with pytest.raises(LossyDocumentError, match=what) as caught:
        updater(target, _add_run)
    assert caught.value.json_path == json_path
    assert caught.value.path == str(target)
    assert target.read_bytes() == raw
    assert sorted(p.name for p in target.parent.iterdir()) == ["doc.json", "doc.json.lock"]


def test_lossy_document_error_is_a_corrupt_document_error_and_pickles(target: Path) -> None:
    """Callers that catch CorruptDocumentError see it; it crosses process boundaries intact."""
    target.write_bytes(b'{"a": 1, "a": 2}')
    with pytest.raises(CorruptDocumentError) as caught:
        read_json(target)
    error = caught.value
    assert isinstance(error, LossyDocumentError)
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.message, copy.path, copy.json_path) == (error.message, error.path, '$["a"]')


def test_valid_surrogate_pairs_are_not_lossy(target: Path) -> None:
    """An escaped emoji (a surrogate pair) is one valid character and updates fine."""
    target.write_bytes(b'{"face": "\\ud83d\\ude00"}')
    atomic_update_json(target, _add_run, 5.0)
    assert read_json(target) == {"face": "\U0001f600", "run": 1}
