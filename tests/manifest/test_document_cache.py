"""The plain-form check of a manifest, remembered per hashsum of its bytes: a new process
opening the same manifest does not parse it again, and nothing else is answered by it."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import ih5
from ih5.format import read_user_block, write_user_block
from ih5.fs import hashsum_bytes, write_entry
from ih5.manifest import IH5MFRecord
from ih5.manifest import _sidecar as sidecar
from ih5.manifest._document import ManifestDocument, plain_document


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A cache directory of this test's own."""
    directory = tmp_path / "cache"
    monkeypatch.setenv("IH5_CACHE_DIR", str(directory))
    yield directory


@pytest.fixture
def parsed(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """The manifests whose plain form was checked by parsing them."""
    seen: list[bytes] = []

    def counted(raw: bytes) -> ManifestDocument | None:
        seen.append(raw)
        return plain_document(raw)

    monkeypatch.setattr(sidecar, "plain_document", counted)
    return seen


@pytest.fixture
def record(tmp_path: Path) -> Path:
    """A manifest record of a base and one patch, with manifest extensions."""
    path = tmp_path / "data" / "rec"
    path.parent.mkdir()
    with IH5MFRecord(path, "w") as rec:
        rec["g/ds"] = 1
        rec.commit_patch(manifest_exts={"site": "lab"})
    with IH5MFRecord(path, "r+") as rec:
        rec["g"].attrs["unit"] = "m"
    return path


def open_exts(record: Path) -> dict[str, Any]:
    with IH5MFRecord(record) as rec:
        return rec.manifest_exts


def test_a_manifest_checked_before_is_not_parsed_again(
    record: Path, cache: Path, parsed: list[bytes]
) -> None:
    assert open_exts(record) == {"site": "lab"}
    assert open_exts(record) == {"site": "lab"}
    assert len(parsed) == 1


def test_a_damaged_document_entry_only_costs_a_parse(
    record: Path, cache: Path, parsed: list[bytes]
) -> None:
    open_exts(record)
    for entry in (cache / "manifests").iterdir():
        entry.write_bytes(entry.read_bytes()[:-2] + b"!]")
    assert open_exts(record) == {"site": "lab"}
    assert len(parsed) == 2


@pytest.mark.parametrize("stored", [b'["not a uuid", {}]', b'{"site": "lab"}', b"[1]"])
def test_a_document_entry_that_does_not_fit_reads_as_missing(
    record: Path, cache: Path, parsed: list[bytes], stored: bytes
) -> None:
    open_exts(record)
    for entry in (cache / "manifests").iterdir():
        write_entry("manifests", entry.name, stored)
    assert open_exts(record) == {"site": "lab"}
    assert len(parsed) == 2


def rewrite_manifest(record: Path, change: Any) -> None:
    """Change the newest manifest's document and point its container's user block at it."""
    container = record.with_name(f"{record.name}.p1.ih5")
    manifest = container.with_name(f"{container.name[: -len('.ih5')]}.ih5mf.json")
    document = json.loads(manifest.read_text("utf-8"))
    change(document)
    raw = (json.dumps(document, indent=2) + "\n").encode("utf-8")
    manifest.write_bytes(raw)
    block = read_user_block(container)
    section = {**block.ub_exts["ih5mf_v01"], "manifest_hashsum": hashsum_bytes(raw)}
    write_user_block(
        container, block.model_copy(update={"ub_exts": {**block.ub_exts, "ih5mf_v01": section}})
    )


def test_a_manifest_of_another_uuid_is_refused_though_the_old_one_was_remembered(
    record: Path, cache: Path
) -> None:
    open_exts(record)
    rewrite_manifest(record, lambda doc: doc.update(manifest_uuid=str(uuid.uuid4())))
    with pytest.raises(ih5.ManifestError, match="uuid"):
        IH5MFRecord(record)


def test_a_damaged_skeleton_is_refused_though_the_intact_one_was_remembered(
    record: Path, cache: Path
) -> None:
    open_exts(record)

    def damage(document: dict[str, Any]) -> None:
        document["skeleton"]["/"]["node_type"] = "folder"

    rewrite_manifest(record, damage)
    with pytest.raises(ih5.ManifestError, match="node_type"):
        IH5MFRecord(record)
