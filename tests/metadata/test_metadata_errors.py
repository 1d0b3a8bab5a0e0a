"""The metadata floor's errors: typed like the builtins callers catch, carrying their path."""

from __future__ import annotations

import pickle

import pytest

from ih5 import Ih5Error
from ih5.errors import (
    MetadataNotFoundError,
    MetadataValidationError,
    MetadataWriteError,
    MigrationError,
)

METADATA_ERRORS = [
    (MetadataWriteError, OSError),
    (MetadataValidationError, ValueError),
    (MigrationError, ValueError),
    (MetadataNotFoundError, FileNotFoundError),
]


@pytest.mark.parametrize(("error_type", "builtin"), METADATA_ERRORS)
def test_metadata_error_is_an_ih5_error_and_the_builtin_callers_catch(
    error_type: type[Ih5Error], builtin: type[Exception]
) -> None:
    error = error_type("what went wrong; what to do", "/plate/openhcs_metadata.json")
    assert isinstance(error, Ih5Error)
    assert isinstance(error, builtin)
    assert str(error) == "what went wrong; what to do"
    assert error.path == "/plate/openhcs_metadata.json"


@pytest.mark.parametrize(("error_type", "builtin"), METADATA_ERRORS)
def test_metadata_error_pickles_with_its_message_and_path(
    error_type: type[Ih5Error], builtin: type[Exception]
) -> None:
    error = error_type("what went wrong", "/plate/openhcs_metadata.json")
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is error_type
    assert (str(copy), copy.path) == ("what went wrong", "/plate/openhcs_metadata.json")
