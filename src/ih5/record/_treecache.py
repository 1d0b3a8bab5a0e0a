"""The resolved tree of a committed chain, kept in the per-user cache across processes.

A chain's tree depends on every container in it, so the key hashes each one's
patch uuid and hashsum: a chain that grew, was truncated or had a container
replaced gets a new key. An entry is a flat depth-first list of the tree's
nodes; building the tree from it costs one step per node, without opening a
container. Damaged or foreign entries read as missing (see ``ih5.fs._usercache``).

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

SNAPSHOT_EVERY = 8
"""A chain's tree is written whole once it is this many containers past the newest
written one (fewer than the prefixes an opener looks for, ``PREFIX_PROBES``)."""


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
            keys.append((length, f"{ref.user_block.patch_uuid}.{digest.hexdigest()[:32]}.json"))
    return keys[::-1]


def tree_to_bytes(root: Node) -> bytes:
    """Depth-first rows ``[depth, name, created, is_group, attrs, deltas]``, the root first."""
    rows: list[list[object]] = []
    pending: list[tuple[int, str, Node]] = [(0, "", root)]
    while pending:
        depth, name, node = pending.pop()
        rows.append([depth, name, node.created, int(node.is_group), node.attrs, node.deltas])
        members = reversed(node.members().items())  # popped in their own order
        pending.extend((depth + 1, child, sub) for child, sub in members)
    return json.dumps(rows, separators=(",", ":")).encode("utf-8")


def tree_from_bytes(raw: bytes) -> Node | None:
    """The tree stored by :func:`tree_to_bytes`; None for anything that does not fit."""
    try:
        rows = json.loads(raw)
        _, _, created, _, attrs, _ = rows[0]
        root = Node(created, is_group=True)
        root.attrs = attrs
        path: list[Node] = [root]
        for depth, name, created, is_group, attrs, deltas in rows[1:]:
            node = Node(created, is_group == 1)
            node.attrs = attrs
            node.deltas = [int(index) for index in deltas]
            del path[depth:]
            members = path[depth - 1].children if depth >= 1 else None
            if members is None or not isinstance(name, str) or not isinstance(created, int):
                return None
            members[name] = node
            path.append(node)
    except (ValueError, TypeError, KeyError, IndexError):
        return None
    return root


def cached_prefix(chain: Sequence[ContainerRef], probes: int) -> tuple[int, Node] | None:
    """The cached tree of the longest of ``chain``'s ``probes`` longest prefixes, with
    that prefix's length (a fresh copy); None when none is cached."""
    for length, key in prefix_keys(chain, probes):
        raw = read_entry(_KIND, key)
        root = None if raw is None else tree_from_bytes(raw)
        if root is not None:
            return length, root
    return None


def remember_tree(chain: Sequence[ContainerRef], root: Node) -> None:
    """Keep the tree of ``chain`` for the next process that opens it."""
    write_entry(_KIND, chain_key(chain), tree_to_bytes(root))
