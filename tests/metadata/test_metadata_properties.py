"""Property: unknown fields, anywhere, survive every writer update untouched."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ih5.fs import atomic_write_json, read_json
from ih5.metadata import (
    AtomicMetadataWriter,
    MetadataUpdateRequest,
    SubdirectoryRecord,
    get_metadata_path,
)

KNOWN = {*SubdirectoryRecord.model_fields, "subdirectories"}

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=10,
)
extra_fields = st.dictionaries(
    st.text(min_size=1, max_size=12).filter(lambda key: key not in KNOWN), json_values, max_size=4
)


@settings(max_examples=40, deadline=None)
@given(top=extra_fields, in_record=extra_fields, in_update=extra_fields)
def test_writer_unknown_fields_survive_updates(
    tmp_path_factory: pytest.TempPathFactory,
    top: dict[str, Any],
    in_record: dict[str, Any],
    in_update: dict[str, Any],
) -> None:
    sidecar = get_metadata_path(tmp_path_factory.mktemp("plate"))
    document = {
        **top,
        "subdirectories": {"images": {"image_files": ["images/a.tif"], **in_record}},
    }
    atomic_write_json(sidecar, document)
    writer = AtomicMetadataWriter(timeout=5.0)

    writer.update_subdirectory_metadata(sidecar, "checkpoints", {"image_files": [], **in_update})
    writer.create_or_update_metadata(
        MetadataUpdateRequest(sidecar, "results", in_update, {"memory": True})
    )
    writer.update_available_backends(sidecar, {"disk": True})

    after = read_json(sidecar)
    assert {key: after[key] for key in top} == top
    assert list(after)[: len(top) + 1] == [*top, "subdirectories"]
    assert after["subdirectories"]["images"] == document["subdirectories"]["images"]
    assert after["subdirectories"]["checkpoints"] == {"image_files": [], **in_update}
    assert after["subdirectories"]["results"] == in_update
    assert list(after["subdirectories"]) == ["images", "checkpoints", "results"]
