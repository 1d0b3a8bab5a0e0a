"""IH5UserBlock checks blocks in the plain form without pydantic and agrees with the
pydantic model of its fields on every other input: the same fields, or its ValidationError."""

from __future__ import annotations

import copy
import io
import pickle
from typing import Any
from uuid import UUID

import pydantic
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ih5.format import IH5UserBlock, read_user_block_from
from ih5.format._userblock_model import IH5UserBlock as FieldsModel

RECORD = "3112726c-e578-11f1-9804-02fc00000001"
PATCH = "311271b8-e578-11f1-9804-02fc00000001"
HASH = "sha256:" + "a" * 64

odd_values: st.SearchStrategy[Any] = st.sampled_from(
    [
        None,
        True,
        False,
        0,
        1,
        -1,
        1.0,
        "1",
        "",
        [],
        {},
        {"a": 1},
        {1: "a"},
        {"a": object()},
        HASH,
        "sha256:abc",
        "md5:" + "0" * 32,
        RECORD,
        RECORD.upper(),
        RECORD.replace("-", ""),
        "{" + RECORD + "}",
        "urn:uuid:" + RECORD,
        UUID(PATCH),
        b"bytes",
    ]
)
field_names = st.sampled_from(
    ["record_uuid", "patch_index", "patch_uuid", "prev_patch", "hdf5_hashsum", "ub_exts", "other"]
)


def _fields(changes: dict[str, Any], dropped: set[str]) -> dict[str, Any]:
    fields: dict[str, Any] = {"record_uuid": RECORD, "patch_index": 2, "patch_uuid": PATCH}
    fields.update(changes)
    return {key: value for key, value in fields.items() if key not in dropped}


def _outcome(make: Any, fields: dict[str, Any]) -> dict[str, Any] | str:
    try:
        return dict(make(fields))
    except pydantic.ValidationError as exc:
        return f"refused: {[(err['loc'], err['type']) for err in exc.errors()]}"


@settings(max_examples=400, deadline=None)
@given(
    changes=st.dictionaries(field_names, odd_values, max_size=3),
    dropped=st.sets(field_names, max_size=2),
)
def test_user_block_fields_are_validated_as_the_pydantic_model_validates_them(
    changes: dict[str, Any], dropped: set[str]
) -> None:
    fields = _fields(changes, dropped)
    ours = _outcome(lambda data: IH5UserBlock(**data).model_dump(), fields)
    model = _outcome(lambda data: FieldsModel(**data).model_dump(), fields)
    assert ours == model


def test_a_plain_block_text_is_read_with_every_field() -> None:
    text = (
        f'{{"record_uuid": "{RECORD}", "patch_index": 0, "patch_uuid": "{PATCH}", '
        f'"prev_patch": null, "hdf5_hashsum": "{HASH}", "ub_exts": {{"e": [1]}}}}'
    )
    block = b"ih5_v01\n1024\n" + text.encode() + b"\0"
    stream = io.BytesIO(block.ljust(1024, b"\0") + b"\x89HDF\r\n\x1a\n")
    ub = read_user_block_from(stream, "plain")
    assert ub.model_dump(mode="json") == {
        "record_uuid": RECORD,
        "patch_index": 0,
        "patch_uuid": PATCH,
        "prev_patch": None,
        "hdf5_hashsum": HASH,
        "ub_exts": {"e": [1]},
    }


def test_user_block_copies_and_pickles_keep_it_equal_and_frozen() -> None:
    ub = IH5UserBlock(record_uuid=RECORD, patch_index=1, patch_uuid=PATCH, ub_exts={"e": [1]})
    for twin in (copy.deepcopy(ub), pickle.loads(pickle.dumps(ub)), ub.model_copy(deep=True)):
        assert twin == ub
        assert hash(twin) == hash(ub)
        with pytest.raises(pydantic.ValidationError):
            twin.patch_index = 3


def test_user_block_model_copy_applies_its_update_unchecked_as_pydantic_does() -> None:
    ub = IH5UserBlock(record_uuid=RECORD, patch_index=1, patch_uuid=PATCH)
    assert ub.model_copy(update={"hdf5_hashsum": HASH}).hdf5_hashsum == HASH
    assert ub.hdf5_hashsum is None


def test_user_block_is_a_field_of_a_pydantic_model_as_before() -> None:
    class Holder(pydantic.BaseModel):
        block: IH5UserBlock

    ub = IH5UserBlock(record_uuid=RECORD, patch_index=1, patch_uuid=PATCH)
    assert Holder(block=ub).block is ub
    parsed = Holder.model_validate_json(Holder(block=ub).model_dump_json())
    assert parsed.block == ub
    with pytest.raises(pydantic.ValidationError) as caught:
        Holder.model_validate({"block": {**ub.model_dump(), "patch_index": -1}})
    assert caught.value.errors()[0]["loc"] == ("block", "patch_index")
