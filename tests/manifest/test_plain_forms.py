"""Opening and committing read and write manifests in their plain form without the models,
with the same results: the same bytes written, the same documents accepted and refused."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ih5
from ih5.format import read_user_block, write_user_block
from ih5.fs import hashsum_bytes
from ih5.manifest import IH5Manifest, IH5MFRecord
from ih5.manifest._document import plain_document
from ih5.manifest._fragments import dumps_at, reindent

FIXTURES = Path(os.environ.get("IH5_FIXTURES", "/work/shared/fixtures")) / "metador-0.1.1"
MANIFESTS = ["merged.ih5mf.json", "mfrec.ih5mf.json", "mfrec.p1.ih5mf.json", "stub.p2.ih5mf.json"]

json_leaves = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=8)
    | st.sampled_from([0.0, -0.0, 1e300, float("nan"), float("inf")])
)
json_values = st.recursive(
    json_leaves,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(max_size=6), inner, max_size=4)
        | st.dictionaries(st.integers() | st.booleans() | st.none(), inner, max_size=2)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(value=json_values, level=st.integers(min_value=0, max_value=3))
def test_dumps_at_writes_what_json_dumps_with_an_indent_writes(value: Any, level: int) -> None:
    assert dumps_at(value, level) == reindent(json.dumps(value, indent=2), level)


def test_dumps_at_refuses_what_json_dumps_refuses() -> None:
    with pytest.raises(TypeError):
        dumps_at({"a": {"b": object()}}, 1)


@pytest.mark.parametrize("name", MANIFESTS)
def test_metador_manifests_are_in_the_plain_form(metador: Path, name: str) -> None:
    raw = (metador / name).read_bytes()
    document = plain_document(raw)
    manifest = IH5Manifest.from_bytes(raw, name)
    assert document is not None
    assert document.manifest_uuid == manifest.manifest_uuid
    assert document.manifest_exts == manifest.manifest_exts


def _variants() -> st.SearchStrategy[tuple[str, list[str], Any]]:
    """A place in a manifest document and a value to put there."""
    places = st.sampled_from(
        [
            ["manifest_uuid"],
            ["manifest_exts"],
            ["user_block"],
            ["user_block", "patch_index"],
            ["user_block", "record_uuid"],
            ["user_block", "prev_patch"],
            ["user_block", "hdf5_hashsum"],
            ["user_block", "ub_exts"],
            ["skeleton"],
            ["skeleton", "/"],
            ["skeleton", "/", "node_type"],
            ["skeleton", "/", "patch_index"],
            ["skeleton", "/", "attrs"],
        ]
    )
    odd: st.SearchStrategy[Any] = st.sampled_from(
        [
            None,
            True,
            1,
            -1,
            1.0,
            "1",
            "group",
            "dataset",
            [],
            {},
            {"a": 1},
            {"a": "1"},
            "sha256:" + "0" * 64,
            "3112726C-E578-11F1-9804-02FC00000001",
            "3112726ce57811f1980402fc00000001",
            "{3112726c-e578-11f1-9804-02fc00000001}",
        ]
    )
    return st.tuples(st.sampled_from(MANIFESTS), places, odd)


def _put(document: dict[str, Any], place: list[str], value: Any) -> None:
    target = document
    for key in place[:-1]:
        target = target[key]
    target[place[-1]] = value


@settings(max_examples=300, deadline=None)
@given(variant=_variants())
def test_a_document_taken_in_the_plain_form_is_one_the_models_take_alike(
    variant: tuple[str, list[str], Any],
) -> None:
    if not FIXTURES.is_dir():
        pytest.skip(f"metador-core fixtures not found at {FIXTURES}")
    name, place, value = variant
    document = json.loads((FIXTURES / name).read_text("utf-8"))
    _put(document, place, value)
    raw = json.dumps(document, indent=2).encode("utf-8")
    plain = plain_document(raw)
    if plain is None:
        return  # the models decide, as they always did
    manifest = IH5Manifest.from_bytes(raw, name)
    assert (plain.manifest_uuid, plain.manifest_exts) == (
        manifest.manifest_uuid,
        manifest.manifest_exts,
    )


def _rewrite_manifest(directory: Path, change: Any) -> None:
    """Change merged's manifest document and point its user block at the new bytes."""
    manifest = directory / "merged.ih5mf.json"
    document = json.loads(manifest.read_text("utf-8"))
    change(document)
    raw = (json.dumps(document, indent=2) + "\n").encode("utf-8")
    manifest.write_bytes(raw)
    block = read_user_block(directory / "merged.ih5")
    section = {**block.ub_exts["ih5mf_v01"], "manifest_hashsum": hashsum_bytes(raw)}
    write_user_block(
        directory / "merged.ih5",
        block.model_copy(update={"ub_exts": {**block.ub_exts, "ih5mf_v01": section}}),
    )


def test_a_manifest_not_in_the_plain_form_still_opens_as_the_models_read_it(
    metador: Path,
) -> None:
    def spell_an_index_as_text(document: dict[str, Any]) -> None:
        document["skeleton"]["/"]["patch_index"] = str(document["skeleton"]["/"]["patch_index"])
        document["manifest_exts"] = {"kept": [1, 2]}

    _rewrite_manifest(metador, spell_an_index_as_text)
    assert plain_document((metador / "merged.ih5mf.json").read_bytes()) is None
    with IH5MFRecord(metador / "merged") as rec:
        assert rec.manifest_exts == {"kept": [1, 2]}
        assert isinstance(rec.manifest.skeleton["/"].patch_index, int)


def test_a_manifest_of_another_uuid_in_the_plain_form_is_refused_at_open(
    metador: Path,
) -> None:
    def other_uuid(document: dict[str, Any]) -> None:
        document["manifest_uuid"] = str(uuid.uuid4())

    _rewrite_manifest(metador, other_uuid)
    assert plain_document((metador / "merged.ih5mf.json").read_bytes()) is not None
    with pytest.raises(ih5.ManifestError, match="uuid"):
        IH5MFRecord(metador / "merged")


def test_a_damaged_skeleton_is_refused_at_open_though_its_hashsum_matches(
    metador: Path,
) -> None:
    def damage(document: dict[str, Any]) -> None:
        document["skeleton"]["/"]["node_type"] = "folder"

    _rewrite_manifest(metador, damage)
    with pytest.raises(ih5.ManifestError, match="node_type"):
        IH5MFRecord(metador / "merged")
