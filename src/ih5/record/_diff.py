"""Comparing two committed states of one record without reading dataset values.

The resolved tree says which container created each node and which holds
each attribute value. A node whose creating container differs between the
states was replaced (rewritten, substituted or re-created), so no dataset
value needs to be read. An attribute whose source container differs is
compared by value, because patches often write an attribute again with the
value it already had.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ih5.errors import StubError
from ih5.record._opening import RecordSource
from ih5.record._record import IH5Record
from ih5.record._tree import Node, walk


@dataclass(frozen=True)
class NodeChange:
    """A path present in both states whose node was replaced or changed kind."""

    path: str
    before: str
    """Kind in the older state: "group" or "dataset"."""
    after: str
    """Kind in the newer state: "group" or "dataset"."""


@dataclass(frozen=True)
class AttrChanges:
    """Attribute names added, removed and changed at one path."""

    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.changed)


Box = tuple[tuple[int, int], ...]
"""A box of elements: per axis (start, stop)."""


def _join_along(boxes: list[Box], axis: int) -> list[Box]:
    """Join boxes that touch along ``axis`` and span the same ranges on every other axis."""
    groups: dict[Box, list[tuple[int, int]]] = {}
    for box in boxes:
        groups.setdefault(box[:axis] + box[axis + 1 :], []).append(box[axis])
    joined: list[Box] = []
    for rest, spans in groups.items():
        runs: list[list[int]] = []
        for start, stop in sorted(spans):
            if runs and runs[-1][1] >= start:
                runs[-1][1] = max(runs[-1][1], stop)
            else:
                runs.append([start, stop])
        joined += [(*rest[:axis], (start, stop), *rest[axis:]) for start, stop in runs]
    return joined


@dataclass(frozen=True)
class RegionChanges:
    """Chunk-level changes of one dataset kept across both states (chunk deltas)."""

    shape_before: tuple[int, ...]
    shape_after: tuple[int, ...]
    regions: tuple[Box, ...] = ()
    """Changed chunks as boxes: per axis (start, stop) in elements, in C order."""

    def __bool__(self) -> bool:
        return bool(self.regions) or self.shape_before != self.shape_after

    def merged(self) -> tuple[Box, ...]:
        """The changed chunks joined into fewer boxes: neighbours along an axis whose other
        ranges are equal become one box (still on chunk boundaries), in C order."""
        boxes = list(self.regions)
        for axis in reversed(range(len(self.shape_after))):
            boxes = _join_along(boxes, axis)
        return tuple(sorted(boxes))


@dataclass(frozen=True)
class RecordDiff:
    """What differs between the states ``from_index`` and ``to_index`` of a record.

    Paths are absolute and sorted; a path added or removed with a group
    is listed too. ``attrs`` covers only paths present in both states.
    """

    from_index: int
    to_index: int
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    changed: tuple[NodeChange, ...] = ()
    attrs: Mapping[str, AttrChanges] = field(default_factory=dict)
    regions: Mapping[str, RegionChanges] = field(default_factory=dict)
    """Datasets changed by chunk deltas (not replaced): their changed chunks."""

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.changed or self.attrs or self.regions)


def _kind(node: Node) -> str:
    return "group" if node.is_group else "dataset"


def _same_value(old: Any, new: Any) -> bool:
    """Equal type, shape and content; NaNs compare by their bits."""
    old_array, new_array = np.asarray(old), np.asarray(new)
    if old_array.dtype != new_array.dtype or old_array.shape != new_array.shape:
        return False
    if old_array.dtype.hasobject:
        return bool(np.all(old_array == new_array))
    return old_array.tobytes() == new_array.tobytes()


def _attr_changed(old: IH5Record, new: IH5Record, path: str, name: str) -> bool:
    try:
        return not _same_value(old[path].attrs[name], new[path].attrs[name])
    except StubError:
        # A stub holds placeholders only: the values cannot be compared, so report a change.
        return True


def _attr_changes(
    old: IH5Record, new: IH5Record, path: str, before: Node, after: Node
) -> AttrChanges:
    changed = tuple(
        name
        for name, index in sorted(after.attrs.items())
        if name in before.attrs
        and before.attrs[name] != index
        and _attr_changed(old, new, path, name)
    )
    return AttrChanges(
        added=tuple(sorted(after.attrs.keys() - before.attrs.keys())),
        removed=tuple(sorted(before.attrs.keys() - after.attrs.keys())),
        changed=changed,
    )


def _region_changes(
    old: IH5Record, new: IH5Record, path: str, before: Node, after: Node
) -> RegionChanges:
    """Which chunks show other values in ``after`` than in ``before`` (same plain storage)."""
    old_view = old.chain.chunked(path, before)
    new_view = new.chain.chunked(path, after)
    candidates: set[tuple[int, ...]] = set()
    for view, others in ((old_view, set(after.deltas)), (new_view, set(before.deltas))):
        for level, facts in view.deltas:
            if level not in others:
                candidates.update(facts.rows)
    if old_view.shape != new_view.shape or old_view.plain_clip != new_view.plain_clip:
        candidates.update(old_view.grid())
        candidates.update(new_view.grid())
    regions = []
    for coords in sorted(candidates):
        before_at, after_at = old_view.locate(coords), new_view.locate(coords)
        origin = new_view.origin(coords)
        ends = [o + c for o, c in zip(origin, new_view.chunks, strict=True)]
        seen_before = [min(e, c) for e, c in zip(ends, before_at.clip, strict=True)]
        seen_after = [min(e, c) for e, c in zip(ends, after_at.clip, strict=True)]
        if before_at.ref == after_at.ref and seen_before == seen_after:
            continue
        limit = [max(a, b) for a, b in zip(old_view.shape, new_view.shape, strict=True)]
        box = tuple((o, min(e, n)) for o, e, n in zip(origin, ends, limit, strict=True))
        if all(a < b for a, b in box):
            regions.append(box)
    return RegionChanges(old_view.shape, new_view.shape, tuple(regions))


def diff_states(
    record: RecordSource, from_index: int, to_index: int, *, verify: bool = True
) -> RecordDiff:
    """Compare the committed states ``from_index`` and ``to_index`` of ``record``.

    Both states are opened read-only (``IH5Record(record, "r", at=K)``);
    ``verify`` checks every container's hashsum once, on the first opening.
    """
    # Hash once, when opening the later state (its chain includes the earlier one's).
    with (
        IH5Record(record, "r", at=from_index, verify=verify and from_index > to_index) as old,
        IH5Record(record, "r", at=to_index, verify=verify and from_index <= to_index) as new,
    ):
        before = dict(walk(old.chain.root))
        after = dict(walk(new.chain.root))
        attrs: dict[str, AttrChanges] = {}
        regions: dict[str, RegionChanges] = {}
        for path, node in after.items():
            if path in before:
                changes = _attr_changes(old, new, path, before[path], node)
                if changes:
                    attrs[path] = changes
                same_storage = not node.is_group and not before[path].is_group
                same_storage = same_storage and before[path].created == node.created
                if same_storage and before[path].deltas != node.deltas:
                    region = _region_changes(old, new, path, before[path], node)
                    if region:
                        regions[path] = region
    return RecordDiff(
        from_index=from_index,
        to_index=to_index,
        added=tuple(sorted(path for path in after if path not in before)),
        removed=tuple(sorted(path for path in before if path not in after)),
        changed=tuple(
            NodeChange(path, _kind(before[path]), _kind(after[path]))
            for path in sorted(after)
            if path in before
            and (
                before[path].created != after[path].created
                or before[path].is_group != after[path].is_group
            )
        ),
        attrs=dict(sorted(attrs.items())),
        regions=dict(sorted(regions.items())),
    )
