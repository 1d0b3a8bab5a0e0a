"""The fs floor's errors: typed like the builtins callers catch, carrying their path, picklable."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import pytest

from ih5 import (
    CorruptDocumentError,
    FileLockError,
    FileLockTimeoutError,
    HashsumFormatError,
    Ih5Error,
    UnreadableDocumentError,
    UnserializableDataError,
    file_lock,
)

FS_ERRORS = [
    (Ih5Error, Exception),
    (FileLockError, OSError),
    (FileLockTimeoutError, TimeoutError),
    (UnserializableDataError, TypeError),
    (CorruptDocumentError, ValueError),
    (UnreadableDocumentError, OSError),
    (HashsumFormatError, ValueError),
]


@pytest.mark.parametrize(("error_type", "builtin"), FS_ERRORS)
def test_fs_error_is_an_ih5_error_and_the_builtin_callers_catch(
    error_type: type[Ih5Error], builtin: type[Exception]
) -> None:
    error = error_type("what went wrong; what to do", "/plate/doc.json")
    assert isinstance(error, Ih5Error)
    assert isinstance(error, builtin)


@pytest.mark.parametrize("path", ["/plate/doc.json", Path("/plate/doc.json"), None])
@pytest.mark.parametrize(("error_type", "builtin"), FS_ERRORS)
def test_fs_error_round_trips_through_pickle(
    error_type: type[Ih5Error], builtin: type[Exception], path: str | Path | None
) -> None:
    error = error_type("what went wrong; what to do", path)
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is error_type
    assert copy.message == error.message == str(copy)
    assert copy.path == error.path == (None if path is None else "/plate/doc.json")


def test_fs_error_raised_by_a_lock_timeout_round_trips_through_pickle(
    tmp_path: Path, foreign_lock: Callable[[Path], AbstractContextManager[int]]
) -> None:
    target = tmp_path / "doc.json"
    with foreign_lock(target), pytest.raises(FileLockTimeoutError) as caught, file_lock(target, 0):
        pass
    copy = pickle.loads(pickle.dumps(caught.value))
    assert type(copy) is FileLockTimeoutError
    assert (str(copy), copy.path) == (str(caught.value), caught.value.path)
