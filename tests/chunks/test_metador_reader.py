"""What metador-core 0.1.1 shows for a record with chunk deltas: never the dataset's values.

metador resolves a path by FORMAT.md section 4: the newest container with a
non-virtual entry there decides. A chunk delta is a *substituting group*, so
metador shows a group where the dataset was: plainly not the dataset, never
older or partial values. ``read_like_metador`` applies exactly those rules to
the containers with plain h5py. With ``IH5_METADOR_PYTHON`` naming a Python
that has metador-core 0.1.1 installed, the real reader is asked as well.
"""

from __future__ import annotations

import os
import subprocess
import textwrap
from pathlib import Path

import h5py
import numpy as np
import pytest

from ih5.format import SUBST_ATTR, is_deletion_marker
from ih5.record import IH5Dataset, IH5Record


def read_like_metador(containers: list[Path], path: str) -> tuple[str, Path]:
    """Kind ("dataset", "group", "deleted", "missing") and container metador takes ``path`` from."""
    for container in reversed(containers):
        with h5py.File(container) as file:
            entry = file.get(path)
            if entry is None:
                continue
            if isinstance(entry, h5py.Dataset):
                return ("deleted" if is_deletion_marker(entry) else "dataset"), container
            if SUBST_ATTR in entry.attrs or container == containers[0]:
                return "group", container
    return "missing", containers[0]


@pytest.fixture
def patched(tmp_path: Path) -> Path:
    """A record whose dataset "x" got one element changed in patch 1."""
    with IH5Record(tmp_path / "rec", "w") as record:
        record.create_dataset("x", data=np.arange(100.0), chunks=(10,), compression="gzip")
        record["untouched"] = np.arange(3)
    with IH5Record(tmp_path / "rec", "r+") as record:
        if not record.has_patch:  # "r+" opens one at once once issue 11 lands
            record.create_patch()
        found = record["x"]
        assert isinstance(found, IH5Dataset)
        found[42] = -1.0
    return tmp_path / "rec"


def committed(tmp_path: Path) -> list[Path]:
    with IH5Record(tmp_path / "rec") as record:
        return record.containers


def test_metador_sees_a_group_where_a_patched_dataset_is(patched: Path, tmp_path: Path) -> None:
    containers = committed(tmp_path)
    kind, source = read_like_metador(containers, "/x")
    assert (kind, source) == ("group", containers[1])
    with h5py.File(source) as file:
        assert sorted(file["x"]) == ["chunks", "hashes", "index"]
        # metador refuses to list attributes whose names are not printable ASCII.
        assert any(not name.isprintable() for name in file["x"].attrs)


def test_metador_still_reads_untouched_datasets(patched: Path, tmp_path: Path) -> None:
    assert read_like_metador(committed(tmp_path), "/untouched")[0] == "dataset"


def test_merged_record_reads_as_plain_datasets_for_metador(patched: Path, tmp_path: Path) -> None:
    with IH5Record(tmp_path / "rec") as record:
        merged = record.merge_files(tmp_path / "merged.ih5")
    kind, _ = read_like_metador([merged], "/x")
    assert kind == "dataset"
    with h5py.File(merged) as file:
        assert file["x"][42] == -1.0 and file["x"][41] == 41.0


METADOR_SCRIPT = textwrap.dedent(
    """
    import sys
    import metador_core.container  # noqa: F401  (metador's import order)
    from metador_core.ih5.container import IH5Record
    record = IH5Record(sys.argv[1], "r")
    node = record["x"]
    print(type(node).__name__, sorted(node.keys()) if hasattr(node, "keys") else "")
    try:
        node[42]
        print("read")
    except Exception as exc:
        print("refused", type(exc).__name__)
    """
)


@pytest.mark.skipif(
    not os.environ.get("IH5_METADOR_PYTHON"),
    reason="set IH5_METADOR_PYTHON to a Python with metador-core 0.1.1 to ask the real reader",
)
def test_real_metador_shows_a_group_and_refuses_values(patched: Path, tmp_path: Path) -> None:
    result = subprocess.run(
        [os.environ["IH5_METADOR_PYTHON"], "-c", METADOR_SCRIPT, str(tmp_path / "rec")],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    kind, *rest = result.stdout.splitlines()
    assert kind == "IH5Group ['chunks', 'hashes', 'index']"
    assert rest[0].startswith("refused")


MANIFEST_SCRIPT = textwrap.dedent(
    """
    import sys
    import metador_core.container  # noqa: F401  (metador's import order)
    from metador_core.ih5.manifest import IH5MFRecord
    record = IH5MFRecord(sys.argv[1], "r")
    print(record.manifest.skeleton.__root__["/x"].node_type.value, record["x"][3])
    """
)


@pytest.mark.skipif(
    not os.environ.get("IH5_METADOR_PYTHON"),
    reason="set IH5_METADOR_PYTHON to a Python with metador-core 0.1.1 to ask the real reader",
)
def test_real_metador_reads_manifests_with_layouts(tmp_path: Path) -> None:
    from ih5.manifest import IH5MFRecord

    with IH5MFRecord(tmp_path / "rec", "w") as record:
        record.create_dataset("x", data=np.arange(10.0), chunks=(5,), maxshape=(None,))
    result = subprocess.run(
        [os.environ["IH5_METADOR_PYTHON"], "-c", MANIFEST_SCRIPT, str(tmp_path / "rec")],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert result.stdout.split() == ["dataset", "3.0"]
