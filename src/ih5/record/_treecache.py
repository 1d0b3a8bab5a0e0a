"""The resolved tree of a committed chain, kept in the per-user cache across processes.

A chain's tree depends on every container in it, so the key hashes each one's
patch uuid and hashsum: a chain that grew, was truncated or had a container
replaced gets a new key. An entry is the tree as nested JSON: a group is
``[created, attrs, members]`` (members: name -> node), a dataset ``[created, attrs,
deltas]``, or just ``created`` when it has neither attributes nor chunk deltas.
Decoding checks the whole entry's shape but builds the nodes of a group only when
its members are first asked for (``Node.group_of``), so an open that reads one path
costs little more than the JSON parse. Damaged or foreign entries read as missing
(see ``ih5.fs._usercache``).

Writing a whole tree costs one step per node, so it is not written for every
grown chain: at most ``SNAPSHOT_EVERY`` containers after the newest written
tree, an opener applies them from their cached facts (what they changed).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

from ih5.format import ContainerRef
from ih5.fs import read_entry, write_entry
from ih5.record._tree import Node

_KIND = "trees"
_FORMAT = "t3"
"""In each entry's name: entries of another encoding are never read as this one."""

SNAPSHOT_EVERY = 8
"""A chain's tree is written whole once it is this many containers past the newest
written one (fewer than the prefixes an opener looks for, ``PREFIX_PROBES``)."""

SMALL_TREE_BYTES = 64 << 10
"""A tree whose entry is smaller is written on every commit: that costs less than
reading the new container's facts from its file."""


def chain_key(chain: Sequence[ContainerRef]) -> str:
    """The cache name of a committed chain's tree."""
    return prefix_keys(chain, 1)[0][1]


def prefix_keys(chain: Sequence[ContainerRef], count: int) -> list[tuple[int, str]]:
    """The cache names of the ``count`` longest prefixes of ``chain``, longest first."""
    digest = hashlib.sha256()
    keys = []
    for length, ref in enumerate(chain, start=1):
        digest.update(f"{ref.user_block.patch_uuid} {ref.user_block.hdf5_hashsum}\n".encode())
        if length > len(chain) - count:
            name = f"{ref.user_block.patch_uuid}.{digest.hexdigest()[:32]}.{_FORMAT}.json"
            keys.append((length, name))
    return keys[::-1]


Row = int | list[object]
"""One node in an entry: ``created``, ``[created, attrs, deltas]`` or ``[created, attrs,
members]``."""


class _Encoded:
    """The members of a group as the cache entry holds them, built into nodes on demand."""

    __slots__ = ("raw",)

    def __init__(self, raw: dict[str, Row]) -> None:
        self.raw = raw

    def __call__(self) -> dict[str, Node]:
        return {name: _node(row) for name, row in self.raw.items()}


def _node(row: Row) -> Node:
    """The node of a row :func:`_fits` accepted (a group's members deferred)."""
    if isinstance(row, int):
        return Node(row, is_group=False)
    created, attrs, rest = row
    assert isinstance(created, int) and isinstance(attrs, dict)
    if isinstance(rest, dict) and rest:
        return Node.group_of(created, attrs, _Encoded(rest))
    node = Node(created, is_group=isinstance(rest, dict))
    node.attrs = attrs
    if isinstance(rest, list):
        node.deltas = rest
    return node


def _row(node: Node) -> Row:
    """The row of a dataset, or of a group with its members still to fill in."""
    if node.is_group:
        return [node.created, node.attrs, {}]
    if not node.attrs and not node.deltas:
        return node.created
    return [node.created, node.attrs, node.deltas]


def tree_to_bytes(root: Node) -> bytes:
    """The nested JSON of the tree under ``root``; members still deferred are copied as read."""
    top = _row(root)
    pending: list[tuple[Node, Row]] = [(root, top)]
    while pending:
        node, row = pending.pop()
        assert isinstance(row, list)
        deferred = node.deferred
        if isinstance(deferred, _Encoded):
            row[2] = deferred.raw
            continue
        members: dict[str, Row] = {}
        row[2] = members
        for name, child in node.members().items():
            members[name] = child_row = _row(child)
            if child.is_group:
                pending.append((child, child_row))
    return json.dumps(top, separators=(",", ":")).encode("utf-8")


def _fits(top: object) -> bool:
    """True when ``top`` is a tree as :func:`tree_to_bytes` writes it, rooted in a group."""
    if not isinstance(top, list) or len(top) != 3 or not isinstance(top[2], dict):
        return False
    pending: list[object] = [top]
    while pending:
        row = pending.pop()
        if type(row) is int:
            continue
        if type(row) is not list or len(row) != 3:
            return False
        created, attrs, rest = row
        if type(created) is not int or type(attrs) is not dict:
            return False
        for index in attrs.values():
            if type(index) is not int:
                return False
        if type(rest) is dict:
            pending.extend(rest.values())
        elif type(rest) is list:
            for index in rest:
                if type(index) is not int:
                    return False
        else:
            return False
    return True


def tree_from_bytes(raw: bytes) -> Node | None:
    """The tree stored by :func:`tree_to_bytes`; None for anything that does not fit."""
    try:
        top = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    return _node(top) if _fits(top) else None


def cached_prefix(chain: Sequence[ContainerRef], probes: int) -> tuple[int, Node, int] | None:
    """The cached tree of the longest of ``chain``'s ``probes`` longest prefixes, with
    that prefix's length and the entry's size in bytes (a fresh copy); None when none
    is cached."""
    for length, key in prefix_keys(chain, probes):
        raw = read_entry(_KIND, key)
        root = None if raw is None else tree_from_bytes(raw)
        if root is not None and raw is not None:
            return length, root, len(raw)
    return None


def remember_tree(chain: Sequence[ContainerRef], root: Node) -> int:
    """Keep the tree of ``chain`` for the next process that opens it (not a tree nested
    too deep for the JSON encoder: it is built from the facts each time); return the
    entry's size in bytes (0 when not kept)."""
    try:
        data = tree_to_bytes(root)
    except RecursionError:
        return 0
    write_entry(_KIND, chain_key(chain), data)
    return len(data)
