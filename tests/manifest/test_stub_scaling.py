"""Building a stub is linear in the manifest's entries and in its depth.

Counted, not timed: the number of HDF5 group lookups and overlay member lookups
while a stub is built must grow in proportion to the tree, so that a manifest
1,500 levels deep or with 100,000 entries does not take minutes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import h5py
import pytest

from ih5.manifest import IH5MFRecord
from ih5.record._tree import Node


@contextmanager
def counted_lookups(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Count calls of every HDF5 and overlay lookup made inside the block."""
    count = [0]

    def counting(original: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            count[0] += 1
            return original(*args, **kwargs)

        return wrapper

    with monkeypatch.context() as patched:
        for name in ("get", "__getitem__", "__contains__"):
            patched.setattr(h5py.Group, name, counting(getattr(h5py.Group, name)))
        patched.setattr(Node, "members", counting(Node.members))
        yield count


def _deep(rec: IH5MFRecord, size: int) -> None:
    rec.create_group("/".join(f"g{i}" for i in range(size)))


def _wide(rec: IH5MFRecord, size: int) -> None:
    for i in range(size):
        rec.create_group(f"g{i % 10}/s{i}")


def stub_lookups(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    shape: Callable[[IH5MFRecord, int], None],
    size: int,
) -> int:
    """Lookups made while building a stub of a record of the given shape and size."""
    real = tmp_path / f"real{size}"
    real.mkdir()
    with IH5MFRecord(real / "rec", "w") as rec:
        shape(rec, size)
    target = tmp_path / f"stub{size}"
    target.mkdir()
    with counted_lookups(monkeypatch) as count:
        built = IH5MFRecord.create_stub(target / "rec", real / "rec.ih5mf.json")
    if isinstance(built, IH5MFRecord):
        built.close()
    return count[0]


@pytest.mark.parametrize("shape", [_deep, _wide], ids=["deep", "wide"])
def test_stub_lookups_grow_linearly_with_the_tree(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shape: Callable[[IH5MFRecord, int], None]
) -> None:
    """Doubling the depth (or the entries) of a manifest at most doubles the stub's lookups."""
    small = stub_lookups(tmp_path, monkeypatch, shape, 150)
    large = stub_lookups(tmp_path, monkeypatch, shape, 300)
    assert large <= 2.2 * small, (small, large)
