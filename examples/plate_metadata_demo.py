"""Many worker processes update one plate metadata sidecar at once, and nothing is lost.

Usage: python examples/plate_metadata_demo.py OUT_DIR

Builds a small sample plate under OUT_DIR (two sub-directories, ``images``
and ``checkpoints``, of tiny fake TIFF files), then starts one worker process
per well. Each worker adds its well's files, site by site, to the shared
``images`` and ``checkpoints`` records of ``openhcs_metadata.json``. Finally
it validates the sidecar and checks that every worker's files are there.

The writer replaces whole records, so adding to a record that other
processes add to as well needs one read-modify-write: the worker holds the
sidecar's lock (``ih5.fs.file_lock``, re-entrant within a thread) across
reading the record and writing it back through ``AtomicMetadataWriter``,
whose own update takes the same lock again. Rerunning on an existing
OUT_DIR starts the records afresh and gives the same result.
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import time
from pathlib import Path
from typing import Any

from ih5.fs import atomic_write_bytes, file_lock
from ih5.metadata import (
    AtomicMetadataWriter,
    MetadataNotFoundError,
    MetadataUpdateRequest,
    PlateMetadata,
    get_metadata_path,
    load_plate_metadata,
    plate_view,
    read_plate_document,
)

WELLS = ("A01", "A02", "B01", "B02")
SITES = ("001", "002", "003")
CHANNELS = {"1": "DAPI", "2": "GFP"}
Z_INDEXES = ("001",)
SUBDIRECTORIES = ("images", "checkpoints")
LOCK_TIMEOUT = 30.0
RUN_TIMEOUT = 60.0
"""Seconds the workers get in total before they are stopped and the demo fails."""


def image_names(well: str, site: str) -> list[str]:
    """Name a well's files at one site, ImageXpress style: ``A01_s001_w1_z001.tif``."""
    return [f"{well}_s{site}_w{ch}_z{z}.tif" for ch in CHANNELS for z in Z_INDEXES]


def base_record(sub_dir: str) -> dict[str, Any]:
    """The record a sub-directory starts from, before any well's files are added."""
    return {
        "microscope_handler_name": "imagexpress",
        "source_filename_parser_name": "ImageXpressFilenameParser",
        "grid_dimensions": [1, len(SITES)] if sub_dir == "images" else None,
        "pixel_size": 0.65,
        "image_files": [],
        "channels": dict(CHANNELS),
        "wells": {},
        "sites": dict.fromkeys(SITES),
        "z_indexes": dict.fromkeys(Z_INDEXES),
        "available_backends": {"disk": True},
        "main": True if sub_dir == "images" else None,
        "plate_name": "sample_plate",
        "demo_run": {"tool": "plate_metadata_demo"},
    }


def make_sample_plate(plate: Path) -> int:
    """Write the fake image files (deterministic bytes); return how many the plate has."""
    count = 0
    for sub_dir in SUBDIRECTORIES:
        (plate / sub_dir).mkdir(parents=True, exist_ok=True)
        for well in WELLS:
            for site in SITES:
                for name in image_names(well, site):
                    target = plate / sub_dir / name
                    data = b"II*\x00" + f"{sub_dir}/{name}".encode()
                    if not target.exists() or target.read_bytes() != data:
                        atomic_write_bytes(target, data)
                    count += 1
    return count


def add_well_files(plate: Path, sub_dir: str, well: str, site: str) -> None:
    """Add one well's files at one site to a shared record, as one locked read-modify-write."""
    writer = AtomicMetadataWriter(LOCK_TIMEOUT)
    path = get_metadata_path(plate)
    files = [f"{sub_dir}/{name}" for name in image_names(well, site)]
    with file_lock(path, LOCK_TIMEOUT):
        try:
            current = read_plate_document(path)["subdirectories"].get(sub_dir)
        except MetadataNotFoundError:
            current = None
        record = dict(current) if current is not None else base_record(sub_dir)
        record["image_files"] = sorted({*record["image_files"], *files})
        record["wells"] = dict(sorted({**record["wells"], well: None}.items()))
        if sub_dir == "images":
            request = MetadataUpdateRequest(path, sub_dir, record, {"disk": True})
            writer.create_or_update_metadata(request)
        else:
            writer.update_subdirectory_metadata(path, sub_dir, record)


def worker(plate: Path, well: str) -> None:
    """One well's job: add its files to both records, one site per update."""
    for site in SITES:
        for sub_dir in SUBDIRECTORIES:
            add_well_files(plate, sub_dir, well, site)


def run_workers(plate: Path) -> list[str]:
    """Run one worker process per well; return a line per worker that failed."""
    context = multiprocessing.get_context("spawn")
    processes = {well: context.Process(target=worker, args=(plate, well)) for well in WELLS}
    failures = []
    try:
        for process in processes.values():
            process.start()
        deadline = time.monotonic() + RUN_TIMEOUT
        for well, process in processes.items():
            process.join(max(0.0, deadline - time.monotonic()))
            if process.exitcode != 0:
                failures.append(f"worker {well} failed (exit code {process.exitcode})")
    finally:
        for process in processes.values():
            if process.is_alive():
                process.kill()
                process.join()
    return failures


def missing_updates(doc: PlateMetadata) -> list[str]:
    """List every worker update that did not make it into the sidecar."""
    problems = []
    if list(doc.subdirectories) != list(SUBDIRECTORIES):
        problems.append(f"sub-directories are {list(doc.subdirectories)}")
    for sub_dir in SUBDIRECTORIES:
        record = doc.subdirectories.get(sub_dir)
        files = set(record.image_files) if record is not None else set()
        for well in WELLS:
            for site in SITES:
                if not {f"{sub_dir}/{name}" for name in image_names(well, site)} <= files:
                    problems.append(f"{sub_dir}: files of well {well} site {site} are missing")
    return problems


def main(argv: list[str] | None = None) -> int:
    """Build the plate, run the workers, check the sidecar; 0 when every update is there."""
    parser = argparse.ArgumentParser(
        description="Run worker processes that update one plate metadata sidecar at once."
    )
    parser.add_argument("out_dir", type=Path, help="directory to build the sample plate in")
    args = parser.parse_args(argv)
    plate = args.out_dir / "sample_plate"
    path = get_metadata_path(plate)

    files = make_sample_plate(plate)
    print(
        f"sample plate: {plate} ({len(WELLS)} wells, {files} files in {len(SUBDIRECTORIES)} dirs)"
    )
    # Start the records afresh (this also fixes their order: images first).
    AtomicMetadataWriter(LOCK_TIMEOUT).merge_subdirectory_metadata(
        path, {sub_dir: base_record(sub_dir) for sub_dir in SUBDIRECTORIES}
    )

    started = time.monotonic()
    failures = run_workers(plate)
    updates = len(WELLS) * len(SITES) * len(SUBDIRECTORIES)
    print(
        f"{len(WELLS)} worker processes made {updates} concurrent read-modify-write updates "
        f"in {time.monotonic() - started:.1f} s"
    )

    doc = load_plate_metadata(path)
    for sub_dir, record in doc.subdirectories.items():
        wells = ",".join(record.wells or {})
        flag = " (main)" if record.is_main else ""
        print(f"  {sub_dir}{flag}: {len(record.image_files)} image files, wells {wells}")
    view = plate_view(doc)
    backends = ",".join(name for name, on in (view.available_backends or {}).items() if on)
    print(f"plate view: {len(view.image_files)} image files, backends {backends}")
    print(f"sidecar: {path}")

    problems = failures + missing_updates(doc)
    for problem in problems:
        print(f"MISSING: {problem}", file=sys.stderr)
    if problems:
        return 1
    print("OK: the sidecar is valid and every worker's update is in it")
    print("try next:")
    print(f"  ih5 meta show {plate}")
    print(f"  ih5 pack {plate} {args.out_dir / 'archive' / 'sample-plate'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
