"""The resolved tree: the overlay's current structure, computed from container facts.

Each node says where its state comes from (the patch index that created or
last substituted it, and for each attribute the patch index holding its
value), so that resolving a path costs a dictionary lookup per path component
whatever the length of the chain. Writes in the open patch update the tree
in place.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping

from ih5.record._facts import ContainerFacts, NodeKind
from ih5.record._paths import join_path, split_path


class Node:
    """One group or dataset of the overlay.

    A group read from the tree cache may hold its members deferred (still in their
    cache encoding): they become nodes when first asked for, so an open that reads
    one path builds the nodes along it only.
    """

    __slots__ = ("_children", "_deferred", "attrs", "created", "deltas")

    def __init__(self, created: int, is_group: bool) -> None:
        self.created = created
        """Patch index of the container that created or last substituted this node."""
        self.attrs: dict[str, int] = {}
        """Attribute name -> patch index of the container holding its value."""
        self._children: dict[str, Node] | None = {} if is_group else None
        self._deferred: Deferred | None = None
        self.deltas: list[int] = []
        """For a dataset: patch indices of the chunk deltas laid over it, oldest first."""

    @classmethod
    def group_of(cls, created: int, attrs: dict[str, int], members: Deferred) -> Node:
        """A group whose members ``members()`` builds when they are first asked for."""
        node = cls(created, is_group=True)
        node.attrs = attrs
        node._deferred = members
        return node

    @property
    def deferred(self) -> Deferred | None:
        """What builds this group's members, while they have not been built."""
        return self._deferred

    @property
    def children(self) -> dict[str, Node] | None:
        """The members of a group by name (None for a dataset)."""
        if self._deferred is not None:
            self._build_members()
        return self._children

    def _build_members(self) -> None:
        with _BUILDING:  # two threads reading one record build the members once
            deferred = self._deferred
            if deferred is not None:
                self._children = deferred()
                self._deferred = None

    @property
    def is_group(self) -> bool:
        """True for groups, False for datasets."""
        return self._children is not None

    def members(self) -> dict[str, Node]:
        """The children of a group (datasets have none)."""
        children = self.children
        return children if children is not None else {}


Deferred = Callable[[], dict[str, Node]]
"""Builds the members of a group read from a cache (called once, on first use)."""
_BUILDING = threading.Lock()


def _apply_attrs(node: Node, attrs: Mapping[str, bool], index: int) -> None:
    for name, deleted in attrs.items():
        if deleted:
            node.attrs.pop(name, None)
        else:
            node.attrs[name] = index


def apply_container(root: Node | None, facts: ContainerFacts, index: int, is_base: bool) -> Node:
    """Lay one container over the tree of the containers before it; return the new root.

    A base container (or stub) is entirely real. In a patch, a substituting
    group or a dataset replaces what was at its path, a deletion marker
    removes it, and a virtual group only changes attributes and members.
    """
    root_fact = facts["/"]
    if root is None or is_base or root_fact.substituting:
        root = Node(index, is_group=True)
    pending: list[tuple[Node, str]] = [(root, "/")]
    while pending:
        node, path = pending.pop()
        fact = facts[path]
        _apply_attrs(node, fact.attrs, index)
        members = node.members()
        for name in fact.children:
            child_path = join_path(path, name)
            child_fact = facts[child_path]
            if child_fact.kind is NodeKind.DELETED:
                members.pop(name, None)
                continue
            if child_fact.kind is NodeKind.CHUNKS:
                target = members.get(name)
                if target is None or target.is_group or is_base:
                    # A chunk delta changes an older dataset; over anything else it is void.
                    members.pop(name, None)
                    continue
                target.deltas.append(index)
                _apply_attrs(target, child_fact.attrs, index)
                continue
            if child_fact.kind is NodeKind.DATASET:
                dataset = members[name] = Node(index, is_group=False)
                live = {name: False for name, deleted in child_fact.attrs.items() if not deleted}
                _apply_attrs(dataset, live, index)
                continue
            existing = members.get(name)
            if existing is None or is_base or child_fact.substituting:
                existing = members[name] = Node(index, is_group=True)
            elif not existing.is_group:
                # A virtual group over an older dataset carries that dataset's attribute changes.
                _apply_attrs(existing, child_fact.attrs, index)
                continue
            pending.append((existing, child_path))
    return root


def lookup(root: Node, path: str) -> Node | None:
    """Return the node at ``path`` or None."""
    node = root
    for name in split_path(path):
        children = node.children
        if children is None:
            return None
        child = children.get(name)
        if child is None:
            return None
        node = child
    return node


def walk(node: Node, path: str = "/") -> Iterator[tuple[str, Node]]:
    """Yield (absolute path, node) depth-first in sorted member order, ``node`` first."""
    pending = [(path, node)]
    while pending:
        current_path, current = pending.pop()
        yield current_path, current
        members = current.members()
        for name in sorted(members, reverse=True):
            pending.append((join_path(current_path, name), members[name]))
