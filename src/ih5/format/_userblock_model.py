"""The pydantic model of a user block's fields: the rules for input not in the plain form.

``IH5UserBlock`` checks the plain form every writer uses by itself, so that opening a
record imports no pydantic; any other input (strings for numbers, odd uuid
spellings, damage) is validated here, coerced as pydantic coerces it or refused
with pydantic's ValidationError, as when ``IH5UserBlock`` was this model.
"""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from ih5.fs import parse_hashsum

FROM_JSON: dict[str, bool] = {"parsed from JSON text": True}
"""Validation context of blocks just parsed by ``json.loads``."""


class IH5UserBlock(BaseModel):
    """The fields of a user block (named as the class whose input it checks, for messages)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    record_uuid: UUID
    patch_index: int = Field(ge=0, strict=True)
    patch_uuid: UUID
    prev_patch: UUID | None = None
    hdf5_hashsum: str | None = None
    ub_exts: dict[str, Any] = Field(default_factory=dict)

    @field_validator("hdf5_hashsum")
    @classmethod
    def _check_hashsum(cls, value: str | None) -> str | None:
        if value is not None:
            parse_hashsum(value)
        return value

    @field_validator("ub_exts")
    @classmethod
    def _check_ub_exts(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        # What was just parsed from JSON text is JSON already.
        if info.context is FROM_JSON:
            return value
        try:
            json.dumps(value)
        except (TypeError, ValueError, RecursionError) as exc:
            raise ValueError(f"ub_exts must be JSON-serializable ({exc})") from None
        return value


def validate_fields(data: object, context: dict[str, bool] | None) -> dict[str, Any]:
    """The fields of a user block from ``data``, as pydantic validates them (its
    ValidationError otherwise)."""
    return dict(IH5UserBlock.model_validate(data, context=context))


def frozen_error(name: str, value: object) -> Exception:
    """The error pydantic raises for an assignment to a field of a frozen model."""
    from pydantic_core import ValidationError

    return ValidationError.from_exception_data(
        "IH5UserBlock", [{"type": "frozen_instance", "loc": (name,), "input": value}]
    )
