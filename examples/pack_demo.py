"""The main job on bundled sample data: archive plates, change them, publish only the change.

Generates a small deterministic plate set, packs it with ``ih5 pack-many``,
changes a few files, re-packs from the newest manifests alone (as a packer
without access to the archive would), puts the patches next to the records,
then verifies, shows history and differences, and unpacks to compare with
the source byte for byte. Run: ``python examples/pack_demo.py OUT_DIR``.

With ``--s3`` the remote is object storage: the demo starts moto's S3 server on
127.0.0.1 (``pip install ".[dev]"`` brings it), pushes the records into a bucket,
re-packs into ``s3://`` from the newest manifest there alone, and verifies, diffs
and unpacks the records where they live.
"""

from __future__ import annotations

import argparse
import contextlib
import filecmp
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ih5 import AtomicMetadataWriter, get_metadata_path
from ih5.pack import is_own_file

PLATES = ("plate_1", "plate_2", "plate_3")
WELLS = ("A01", "A02", "B01")
SITES = ("s1", "s2")
CHANNELS = ("w1", "w2")


def ih5(*args: str) -> str:
    """Run the ``ih5`` command line; stop the demo with its message if it fails."""
    done = subprocess.run(
        [sys.executable, "-m", "ih5", *args], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        sys.exit(f"ih5 {' '.join(args)} failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


def make_plate(root: Path, seed: int) -> None:
    """A plate directory: small 16-bit images as .npy per well, site and channel + metadata."""
    rng = np.random.default_rng(seed)
    images = root / "images"
    images.mkdir(parents=True)
    files = []
    for well in WELLS:
        for site in SITES:
            for channel in CHANNELS:
                name = f"{well}_{site}_{channel}.npy"
                np.save(images / name, rng.integers(0, 4096, (64, 64), dtype=np.uint16))
                files.append(f"images/{name}")
    AtomicMetadataWriter().update_subdirectory_metadata(
        get_metadata_path(root),
        "images",
        {
            "microscope_handler_name": "imagexpress",
            "source_filename_parser_name": "ImageXpressFilenameParser",
            "grid_dimensions": [1, 2],
            "pixel_size": 0.65,
            "image_files": files,
            "channels": {"1": "DAPI", "2": "GFP"},
            "wells": dict.fromkeys(WELLS),
            "sites": {"1": None, "2": None},
            "z_indexes": {"1": None},
            "available_backends": {"disk": True},
            "main": True,
        },
    )


def edit_plates(plates: Path) -> None:
    """Change one image, add one, delete one in every plate."""
    for index, plate in enumerate(sorted(plates.iterdir())):
        images = plate / "images"
        np.save(images / "A01_s1_w1.npy", np.full((64, 64), index, dtype=np.uint16))
        np.save(images / "C01_s1_w1.npy", np.ones((64, 64), dtype=np.uint16))
        (images / "B01_s2_w2.npy").unlink()


def same_tree(left: Path, right: Path) -> bool:
    """True when both trees hold the same paths and byte-identical files.

    ih5's own lock files beside the source's sidecar are not data and are never packed.
    """
    compare = filecmp.dircmp(left, right)
    names = set(compare.left_list)
    left_only = [name for name in compare.left_only if not is_own_file(name, names)]
    if left_only or compare.right_only or compare.funny_files:
        return False
    _, mismatch, errors = filecmp.cmpfiles(left, right, compare.common_files, shallow=False)
    if mismatch or errors:
        return False
    return all(same_tree(left / sub, right / sub) for sub in compare.common_dirs)


def size(path: Path | str) -> int:
    return Path(path).stat().st_size


@contextlib.contextmanager
def local_s3(log: Path) -> Iterator[str]:
    """moto's S3 server on a free 127.0.0.1 port with bucket ``demo``; the AWS_* environment
    points at it for the ``with`` block. Yields the bucket's URL."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    endpoint = f"http://127.0.0.1:{port}"
    with open(log, "wb") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(endpoint + "/moto-api/", timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        os.environ.update(
            {
                "AWS_ACCESS_KEY_ID": "demo",
                "AWS_SECRET_ACCESS_KEY": "demo",
                "AWS_REGION": "us-east-1",
                "AWS_ENDPOINT_URL": endpoint,
                "AWS_ALLOW_HTTP": "true",
            }
        )
        # Create the bucket with a plain S3 request (moto accepts any credentials).
        urllib.request.urlopen(urllib.request.Request(endpoint + "/demo", method="PUT")).close()
        yield "s3://demo"
    finally:
        server.terminate()
        server.wait(timeout=10)


def main_s3(out: Path, plates: Path, archive: Path, packed: list[dict[str, str]]) -> None:
    """Steps 3 to 5 against object storage: push, re-pack into s3://, read there."""
    with local_s3(out / "moto.log") as bucket:
        for row in packed:
            ih5("push", str(archive / row["name"]), f"{bucket}/archive/{row['name']}")
        print(f"2. pushed the {len(packed)} records into {bucket}/archive")
        edit_plates(plates)
        for row in packed:
            url = f"{bucket}/archive/{row['name']}"
            result = json.loads(ih5("pack", str(plates / Path(row["source"]).name), url, "--json"))
            changes = (len(result["added"]), len(result["changed"]), len(result["removed"]))
            print(
                f"3. {row['name']}: re-packed into {url} from its manifest there alone -> "
                f"patch {result['patch_index']} (+{changes[0]} ~{changes[1]} -{changes[2]})"
            )
        for row in packed:
            url = f"{bucket}/archive/{row['name']}"
            ih5("verify", url)
            history = json.loads(ih5("log", url, "--json"))
            diff = json.loads(ih5("diff", url, "--from", "0", "--to", "1", "--json"))
            restored = out / "restored" / row["name"]
            ih5("unpack", url, str(restored))
            source = plates / Path(row["source"]).name
            if not same_tree(source, restored):
                sys.exit(f"unpacked {url} differs from {source}")
            print(
                f"4. {row['name']}: verified {len(history)} containers in S3, diff 0->1 lists "
                f"{sum(len(v) for v in diff.values() if isinstance(v, list))} paths, "
                "unpacked copy equals the source"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="working directory (recreated)")
    parser.add_argument(
        "--s3", action="store_true", help="use a local S3-compatible server as the remote"
    )
    arguments = parser.parse_args()
    out: Path = arguments.out
    started = time.monotonic()
    shutil.rmtree(out, ignore_errors=True)
    plates, archive, remote = out / "plates", out / "archive", out / "packer"
    for seed, name in enumerate(PLATES):
        make_plate(plates / name, seed)
    data = sum(size(path) for path in plates.rglob("*") if path.is_file())
    print(
        f"1. generated {len(PLATES)} sample plates in {plates} "
        f"({data} bytes of images and sidecars)"
    )

    packed = json.loads(ih5("pack-many", str(plates), str(archive), "--jobs", "2", "--json"))
    bases = [size(archive / f"{row['name']}.ih5") for row in packed]
    print(
        f"2. packed them with 2 jobs into {archive}, one record each: "
        + ", ".join(
            f"{row['name']} (base {base} bytes)" for row, base in zip(packed, bases, strict=True)
        )
    )
    if arguments.s3:
        main_s3(out, plates, archive, packed)
        print(f"done in {time.monotonic() - started:.1f} s; everything is under {out}")
        return

    edit_plates(plates)
    remote.mkdir()
    for row in packed:
        shutil.copy(archive / f"{row['name']}.ih5mf.json", remote)
    patches = []
    for row in packed:
        manifest = remote / f"{row['name']}.ih5mf.json"
        result = json.loads(
            ih5(
                "pack",
                str(plates / Path(row["source"]).name),
                str(remote / row["name"]),
                "--json",
            )
        )
        patches += [Path(path) for path in result["written"]]
        changes = (len(result["added"]), len(result["changed"]), len(result["removed"]))
        patch = size(result["written"][0])
        stayed = result["total_bytes"] - result["bytes_packed"]
        print(
            f"3. {row['name']}: re-packed from its manifest alone ({size(manifest)} bytes, no "
            f"data) -> patch {result['patch_index']} (+{changes[0]} ~{changes[1]} "
            f"-{changes[2]}: added, changed, removed files), {patch} bytes; the {stayed} "
            "bytes of unchanged files did not travel"
        )
    for path in patches:
        shutil.copy(path, archive)
    moved = sum(size(path) for path in patches)
    print(
        f"4. copied {len(patches)} patch files ({moved} bytes: a patch and its manifest per "
        "plate) next to the records"
    )

    for row in packed:
        record = str(archive / row["name"])
        ih5("verify", record)
        history = json.loads(ih5("log", record, "--json"))
        diff = json.loads(ih5("diff", record, "--json"))
        restored = out / "restored" / row["name"]
        ih5("unpack", record, str(restored))
        source = plates / Path(row["source"]).name
        if not same_tree(source, restored):
            sys.exit(f"unpacked {record} differs from {source}")
        print(
            f"5. {row['name']}: verified {len(history)} containers, diff 0->1 lists "
            f"{sum(len(v) for v in diff.values() if isinstance(v, list))} paths, "
            "unpacked copy equals the source"
        )
    print(f"done in {time.monotonic() - started:.1f} s; everything is under {out}")
    first = archive / packed[0]["name"]
    print("try next:")
    for command in (
        f"ih5 log {first}",
        f"ih5 diff {first}",
        f"ih5 cat {first} /openhcs_metadata.json",
        f"ih5 unpack {first} {out / 'state-0'} --at 0",
    ):
        print(f"  {command}")


if __name__ == "__main__":
    main()
