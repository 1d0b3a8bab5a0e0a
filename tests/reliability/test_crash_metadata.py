"""Sidecar updates under injected faults: the document stays valid JSON, old or new.

An update that returned is in the file; one that raised (a typed error)
left it byte-identical, unless only the directory fsync after the rename
failed (the new document is in place, its durability unknown: there is no
undoing a rename); a killed one left the old or the new document. The next
update keeps everything that was there and sweeps the temp files.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import pytest

from ih5 import AtomicMetadataWriter, atomic_update_json, atomic_write_json, get_metadata_path

from .faults import Mode
from .states import ABSENT, read_bytes_or_absent, valid_json
from .sweep import Scenario, sweep

MODES = ["error", "sticky", "kill"]


def subdirectory(name: str) -> dict[str, Any]:
    return {
        "microscope_handler_name": "imagexpress",
        "source_filename_parser_name": "ImageXpressFilenameParser",
        "grid_dimensions": [3, 3],
        "pixel_size": 0.65,
        "image_files": [f"{name}/A01_s001_w1_z001.tif"],
        "channels": {"1": "DAPI"},
        "wells": {"A01": None},
        "sites": {"001": None},
        "z_indexes": {"001": None},
        "available_backends": {"disk": True},
        "main": None,
    }


def build_plate(directory: Path, *, existing: bool) -> None:
    if existing:
        atomic_write_json(
            get_metadata_path(directory),
            {"subdirectories": {"images": subdirectory("images")}, "available_backends": {}},
        )


def update_plate(directory: Path) -> None:
    writer = AtomicMetadataWriter(timeout=5.0)
    writer.update_subdirectory_metadata(get_metadata_path(directory), "zarr", subdirectory("zarr"))


def observe_sidecar(directory: Path, name: str) -> Any:
    """The sidecar's bytes as a reader sees them; they must always parse."""
    raw = read_bytes_or_absent(directory / name)
    if raw != ABSENT:
        valid_json(raw)
    return raw


def resume_plate(directory: Path) -> Any:
    """Another process updates another record: it lands beside everything acknowledged."""
    path = get_metadata_path(directory)
    found = observe_sidecar(directory, path.name)
    AtomicMetadataWriter(timeout=5.0).update_subdirectory_metadata(
        path, "later", subdirectory("later")
    )
    document = valid_json(path.read_bytes())
    before = {"subdirectories": {}} if found == ABSENT else valid_json(found)
    assert list(document["subdirectories"]) == [*before["subdirectories"], "later"]
    assert {key: value for key, value in document.items() if key != "subdirectories"} == {
        key: value for key, value in before.items() if key != "subdirectories"
    }
    return found


@pytest.mark.parametrize("existing", [True, False], ids=["update", "create"])
@pytest.mark.parametrize("mode", MODES)
def test_metadata_writer_update_under_faults_keeps_the_old_or_the_new_document(
    tmp_path: Path, mode: Mode, existing: bool, long_run: bool
) -> None:
    name = get_metadata_path(Path()).name
    scenario = Scenario(
        name=f"update_subdirectory_metadata ({'update' if existing else 'create'})",
        build=partial(build_plate, existing=existing),
        operation=update_plate,
        observe=partial(observe_sidecar, name=name),
        resume=resume_plate,
        commit=name,
        record_dirs=False,
    )
    sweep(scenario, tmp_path, mode, long_run)


DOCUMENT = "doc.json"


def append(number: int) -> Any:
    def update(document: dict[str, Any]) -> dict[str, Any]:
        document.setdefault("numbers", []).append(number)
        return document

    return update


def build_document(directory: Path) -> None:
    atomic_write_json(directory / DOCUMENT, {"numbers": [0], "other": {"kept": True}})


def update_document(directory: Path) -> None:
    atomic_update_json(directory / DOCUMENT, append(1), lock_timeout=5.0)


def resume_document(directory: Path) -> Any:
    found = observe_sidecar(directory, DOCUMENT)
    atomic_update_json(directory / DOCUMENT, append(2), lock_timeout=5.0)
    before = valid_json(found)
    assert valid_json((directory / DOCUMENT).read_bytes()) == {
        **before,
        "numbers": [*before["numbers"], 2],
    }
    return found


@pytest.mark.parametrize("mode", MODES)
def test_atomic_update_json_under_faults_keeps_the_old_or_the_new_document(
    tmp_path: Path, mode: Mode, long_run: bool
) -> None:
    scenario = Scenario(
        name="atomic_update_json",
        build=build_document,
        operation=update_document,
        observe=partial(observe_sidecar, name=DOCUMENT),
        resume=resume_document,
        commit=DOCUMENT,
        record_dirs=False,
    )
    sweep(scenario, tmp_path, mode, long_run)
