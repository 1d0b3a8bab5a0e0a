"""Writes and resizes of datasets of older patches become chunk deltas that read as h5py would.

Every behaviour is checked against a plain h5py file that receives the same
operations: the record must show exactly what h5py shows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest

from ih5.errors import IntegrityError, RecordModeError
from ih5.record import IH5Dataset, IH5Record
from ih5.record._chunkmap import CHUNKS_ATTR, PLAIN_SLOT
from ih5.record._diff import diff_states

Op = Callable[[Any], None]
"""One operation on a dataset: an h5py.Dataset or an IH5Dataset."""

KINDS: dict[str, dict[str, Any]] = {
    "float32-gzip": {"dtype": "f4", "compression": "gzip", "fillvalue": 2.5},
    "int64-lzf-shuffle": {"dtype": "i8", "compression": "lzf", "shuffle": True},
    "int16-fletcher32": {"dtype": "i2", "fletcher32": True, "fillvalue": -3},
    "int32-scaleoffset": {"dtype": "i4", "scaleoffset": 0},
    "fixed-string": {"dtype": "S3", "compression": "gzip"},
    "vlen-string": {"dtype": h5py.string_dtype()},
    "compound": {"dtype": np.dtype([("a", "i4"), ("b", "f8")])},
    "enum": {"dtype": h5py.enum_dtype({"off": 0, "on": 1, "auto": 2}, basetype="u1")},
}


def values_of(dtype: np.dtype[Any], count: int, seed: int) -> np.ndarray[Any, Any]:
    """``count`` values of ``dtype``."""
    rng = np.random.default_rng(seed)
    dtype = np.dtype(dtype)
    if dtype.kind == "O":
        return np.array([f"s{n}" * (n % 3) for n in rng.integers(0, 9, count)], dtype=object)
    if dtype.kind == "S":
        return np.array([b"a", b"bb", b"ccc"], dtype=dtype)[rng.integers(0, 3, count)]
    if dtype.names is not None:
        out = np.zeros(count, dtype=dtype)
        out["a"] = rng.integers(-9, 9, count)
        out["b"] = rng.integers(-9, 9, count) / 2
        return out
    if h5py.check_enum_dtype(dtype) is not None:
        return rng.integers(0, 3, count).astype(dtype)
    return rng.integers(-100, 100, count).astype(dtype)


def same(a: Any, b: Any) -> bool:
    """Equal values, shapes and kinds (strings compared as h5py returns them)."""
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and a.dtype.kind == b.dtype.kind and np.array_equal(a, b)


@pytest.fixture
def twin(tmp_path: Path) -> Iterator[Callable[..., tuple[IH5Record, h5py.File]]]:
    """A record and a plain h5py file holding the same committed dataset "x"."""
    opened: list[Any] = []

    def make(kind: str = "float32-gzip", rows: int = 20) -> tuple[IH5Record, h5py.File]:
        options = dict(KINDS[kind])
        data = values_of(options.pop("dtype"), rows, 1)
        create = {"data": data, "chunks": (4,), "maxshape": (None,), **options}
        with IH5Record(tmp_path / "rec", "w") as record:
            record.create_dataset("x", **create)
        plain = h5py.File(tmp_path / "plain.h5", "w")
        plain.create_dataset("x", **create)
        record = IH5Record(tmp_path / "rec", "r+")
        if not record.has_patch:  # "r+" opens one at once once issue 11 lands
            record.create_patch()
        opened.extend([plain, record])
        return record, plain

    yield make
    for item in reversed(opened):
        item.close()


def both(record: IH5Record, plain: h5py.File, op: Op) -> None:
    """Apply ``op`` to the record's and the plain file's dataset."""
    op(record["x"])
    op(plain["x"])


def dataset(record: IH5Record, path: str = "x") -> IH5Dataset:
    found = record[path]
    assert isinstance(found, IH5Dataset)
    return found


SELECTIONS: list[Any] = [
    (),
    5,
    -1,
    slice(3, 17),
    slice(1, None, 3),
    [0, 5, 6, 19],
    np.array([2, 9, 10]),
    np.arange(20) % 3 == 0,
    Ellipsis,
    slice(18, 40),
    slice(7, 7),
]


@pytest.mark.parametrize("selection", SELECTIONS, ids=repr)
def test_reads_after_chunk_writes_match_h5py(twin: Any, selection: Any) -> None:
    record, plain = twin()
    both(record, plain, lambda d: d.__setitem__(slice(2, 9, 2), 40))
    both(record, plain, lambda d: d.__setitem__([13, 17], [41, 42]))
    assert same(dataset(record)[selection], plain["x"][selection])


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_dtypes_and_filters_behave_as_in_h5py(twin: Any, kind: str) -> None:
    record, plain = twin(kind)
    dtype = plain["x"].dtype
    both(record, plain, lambda d: d.__setitem__(3, values_of(dtype, 1, 7)[0]))
    both(record, plain, lambda d: d.__setitem__(slice(8, 14), values_of(dtype, 6, 8)))
    both(record, plain, lambda d: d.resize((27,)))
    both(record, plain, lambda d: d.__setitem__([21, 25], values_of(dtype, 2, 9)))
    assert same(dataset(record)[()], plain["x"][()])
    location = record.location
    record.close()
    with IH5Record(location) as reader:
        assert same(dataset(reader)[()], plain["x"][()])
        assert dataset(reader).fillvalue == plain["x"].fillvalue


@pytest.mark.parametrize("sizes", [(30,), (9,), (9, 20), (3, 25), (0, 12), (22, 10, 26)], ids=repr)
def test_resizes_show_what_h5py_shows(twin: Any, sizes: tuple[int, ...]) -> None:
    record, plain = twin()
    for size in sizes:

        def resize(target: Any, rows: int = size) -> None:
            target.resize(rows, axis=0)

        both(record, plain, resize)
        assert dataset(record).shape == plain["x"].shape
        assert same(dataset(record)[()], plain["x"][()])


def test_shrink_and_grow_across_patches_show_fill_value(twin: Any) -> None:
    record, plain = twin()
    both(record, plain, lambda d: d.resize((6,)))
    record.commit_patch()
    record.create_patch()
    both(record, plain, lambda d: d.resize((16,)))
    assert same(dataset(record)[()], plain["x"][()])
    assert dataset(record)[10] == 2.5


def test_one_element_write_stores_one_chunk(twin: Any) -> None:
    record, _ = twin(rows=400)
    dataset(record)[123] = 7.0
    writer = record.chain.writer
    assert writer is not None
    delta = writer.delta("/x")
    assert delta is not None
    assert list(delta.facts.rows) == [(30,)]
    assert delta.stored.shape == (4,)


def test_growing_adds_no_chunks_and_shrinking_copies_none(twin: Any) -> None:
    record, _ = twin(rows=400)
    dataset(record).resize((4000,))
    dataset(record).resize((10,))
    writer = record.chain.writer
    assert writer is not None
    delta = writer.delta("/x")
    assert delta is not None and delta.stored.shape == (0,)
    assert delta.facts.floor == (10,)


def test_reverted_chunk_is_not_stored_again(twin: Any) -> None:
    record, _ = twin()
    original = dataset(record)[()]
    dataset(record)[0:8] = 99.0
    record.commit_patch()
    record.create_patch()
    dataset(record)[0:8] = original[0:8]
    writer = record.chain.writer
    assert writer is not None
    delta = writer.delta("/x")
    assert delta is not None
    assert delta.stored.shape == (0,)
    assert {ref.slot for ref in delta.facts.rows.values()} == {PLAIN_SLOT}
    assert same(dataset(record)[()], original)


def test_equal_chunks_are_stored_once(twin: Any) -> None:
    record, _ = twin(rows=40)
    dataset(record)[0:40] = 1.0
    writer = record.chain.writer
    assert writer is not None
    delta = writer.delta("/x")
    assert delta is not None
    assert len(delta.facts.rows) == 10
    assert delta.stored.shape == (4,)


def test_contiguous_older_dataset_says_to_make_it_chunked(tmp_path: Path) -> None:
    with IH5Record(tmp_path / "rec", "w") as record:
        record["x"] = np.arange(5)
    with IH5Record(tmp_path / "rec", "r+") as record:
        if not record.has_patch:  # "r+" opens one at once once issue 11 lands
            record.create_patch()
        with pytest.raises(RecordModeError, match="chunks=True"):
            dataset(record)[0] = 1
        with pytest.raises(RecordModeError, match="copy_into_patch"):
            dataset(record).resize((3,))


def test_resize_beyond_maxshape_is_refused(tmp_path: Path) -> None:
    with IH5Record(tmp_path / "rec", "w") as record:
        record.create_dataset("x", data=np.arange(5), chunks=(2,), maxshape=(8,))
    with IH5Record(tmp_path / "rec", "r+") as record:
        if not record.has_patch:  # "r+" opens one at once once issue 11 lands
            record.create_patch()
        with pytest.raises(ValueError, match="maxshape"):
            dataset(record).resize((9,))
        assert dataset(record).shape == (5,)


def test_metador_compatible_record_refuses_chunk_writes(tmp_path: Path) -> None:
    with IH5Record(tmp_path / "rec", "w", metador_compatible=True) as record:
        record.create_dataset("x", data=np.arange(8), chunks=(2,), maxshape=(None,))
    with IH5Record(tmp_path / "rec", "r+") as record:
        if not record.has_patch:  # "r+" opens one at once once issue 11 lands
            record.create_patch()
        with pytest.raises(RecordModeError, match="copy_into_patch"):
            dataset(record)[0] = 5
        with pytest.raises(ValueError, match="not from the latest patch"):
            dataset(record).resize((10,))
        dataset(record).copy_into_patch()[0] = 5
        dataset(record).resize((10,))
    with IH5Record(tmp_path / "rec") as record:
        assert dataset(record)[()].tolist() == [5, 1, 2, 3, 4, 5, 6, 7, 0, 0]
        assert not any(CHUNKS_ATTR in h5py.File(path)["x"].attrs for path in record.containers)


def test_each_past_state_opens_with_at(twin: Any) -> None:
    record, _ = twin()
    states = [dataset(record)[()]]
    for step in range(3):
        dataset(record)[step * 5] = 100.0 + step
        dataset(record).resize((20 + step,))
        states.append(dataset(record)[()])
        record.commit_patch()
        record.create_patch()
    location = record.location
    record.close(commit=False)
    for index, state in enumerate(states):
        with IH5Record(location, at=index) as past:
            assert same(dataset(past)[()], state)


def test_merge_writes_a_plain_chunked_compressed_dataset(twin: Any, tmp_path: Path) -> None:
    record, plain = twin(rows=40)
    both(record, plain, lambda d: d.__setitem__(slice(5, 9), 1.0))
    both(record, plain, lambda d: d.resize((50,)))
    record.commit_patch()
    merged = record.merge_files(tmp_path / "merged.ih5")
    with h5py.File(merged) as file:
        out = file["x"]
        assert isinstance(out, h5py.Dataset)
        assert (out.chunks, out.compression, out.maxshape, out.fillvalue) == (
            plain["x"].chunks,
            "gzip",
            (None,),
            2.5,
        )
        assert same(out[()], plain["x"][()])


def test_later_patch_reusing_a_merged_away_chunk_says_so(twin: Any, tmp_path: Path) -> None:
    record, _ = twin()
    original = dataset(record)[0:4]
    dataset(record)[0:4] = 9.0
    record.commit_patch()
    merged = record.merge_files(tmp_path / "merged.ih5")
    record.create_patch()
    dataset(record)[0:4] = original
    record.commit_patch()
    later = record.containers[-1]
    with IH5Record([merged, later]) as reader, pytest.raises(IntegrityError, match="merged"):
        dataset(reader)[()]


def test_diff_reports_changed_chunk_regions(twin: Any) -> None:
    record, _ = twin()
    dataset(record)[5] = 1.0
    dataset(record)[[13, 14]] = 2.0
    location = record.location
    record.close()
    changes = diff_states(location, 0, 1)
    assert changes.changed == ()
    region = changes.regions["/x"]
    assert region.regions == (((4, 8),), ((12, 16),))
    assert (region.shape_before, region.shape_after) == ((20,), (20,))


def test_read_direct_astype_len_and_iteration(twin: Any) -> None:
    record, plain = twin()
    both(record, plain, lambda d: d.__setitem__(slice(0, 20), np.arange(20.0)))
    view = dataset(record)
    out = np.zeros(10, dtype="f4")
    view.read_direct(out, np.s_[4:14], np.s_[0:10])
    assert out.tolist() == list(range(4, 14))
    assert view.astype("i2")[2:5].dtype == np.int16
    assert len(view) == 20
    assert [float(v) for v in view] == [float(v) for v in plain["x"]]


def test_suspended_patch_resumes_its_chunk_delta(twin: Any) -> None:
    record, plain = twin()
    both(record, plain, lambda d: d.__setitem__(3, 50.0))
    location = record.location
    record.close(commit=False)
    with IH5Record(location, "r+") as resumed:
        assert resumed.has_patch
        both(resumed, plain, lambda d: d.__setitem__(3, 51.0))
        both(resumed, plain, lambda d: d.__setitem__(9, 52.0))
    with IH5Record(location) as reader:
        assert same(dataset(reader)[()], plain["x"][()])


def test_copy_into_patch_of_a_patched_dataset_keeps_values(twin: Any) -> None:
    record, plain = twin()
    both(record, plain, lambda d: d.__setitem__(3, 50.0))
    record.commit_patch()
    record.create_patch()
    dataset(record).copy_into_patch()
    record.commit_patch()
    with h5py.File(record.containers[-1]) as newest:
        assert isinstance(newest["x"], h5py.Dataset)
        assert same(newest["x"][()], plain["x"][()])


def test_asstr_reads_patched_strings(twin: Any) -> None:
    record, plain = twin("vlen-string")
    both(record, plain, lambda d: d.__setitem__(2, "neu"))
    assert dataset(record).asstr()[()].tolist() == plain["x"].asstr()[()].tolist()
    assert dataset(record).asstr()[2] == "neu"
