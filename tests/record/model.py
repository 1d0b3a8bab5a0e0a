"""A plain in-memory tree that says what a record should hold, and checks that it does.

A group is ``{"attrs": {...}, "members": {...}}``, a dataset is
``{"attrs": {...}, "value": np.ndarray}`` (plus ``"compression"`` when filtered).
String values are kept as ``str``; h5py reads string datasets back as
``bytes``, which the comparison decodes.
"""

from __future__ import annotations

import copy
import posixpath
from collections.abc import Iterator
from typing import Any

import numpy as np

from ih5.record import IH5Dataset, IH5Group

Tree = dict[str, Any]


def new_group() -> Tree:
    """An empty model group."""
    return {"attrs": {}, "members": {}}


def new_dataset(value: Any) -> Tree:
    """A model dataset holding ``value``."""
    return {"attrs": {}, "value": value}


def is_group(node: Tree) -> bool:
    """True for a model group, False for a model dataset."""
    return "members" in node


def parts(path: str) -> list[str]:
    """The member names of an absolute path ("/" has none)."""
    return [name for name in path.split("/") if name]


def lookup(root: Tree, path: str) -> Tree | None:
    """The model node at ``path``, or None when nothing (or a dataset) is in the way."""
    node = root
    for name in parts(path):
        if not is_group(node) or name not in node["members"]:
            return None
        node = node["members"][name]
    return node


def walk(root: Tree, path: str = "/") -> Iterator[tuple[str, Tree]]:
    """Yield (absolute path, node) for ``root`` and everything below it, depth-first."""
    yield path, root
    if is_group(root):
        for name in sorted(root["members"]):
            yield from walk(root["members"][name], posixpath.join(path, name))


def is_creatable(root: Tree, path: str) -> bool:
    """True when nothing is at ``path`` and every existing ancestor is a group."""
    node = root
    for name in parts(path):
        if not is_group(node):
            return False
        if name not in node["members"]:
            return True
        node = node["members"][name]
    return False


def put(root: Tree, path: str, node: Tree) -> None:
    """Place ``node`` at ``path``, creating missing parent groups (as ``create_*`` does)."""
    *parents, name = parts(path)
    group = root
    for parent in parents:
        group = group["members"].setdefault(parent, new_group())
    group["members"][name] = node


def remove(root: Tree, path: str) -> Tree:
    """Take the node at ``path`` out of the tree and return it."""
    *parents, name = parts(path)
    parent = lookup(root, "/" + "/".join(parents))
    assert parent is not None
    node: Tree = parent["members"].pop(name)
    return node


def snapshot(root: Tree) -> Tree:
    """A deep copy that later changes to ``root`` do not touch."""
    return copy.deepcopy(root)


def _normalized(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.ndarray) and value.dtype.kind == "O":
        return np.array(
            [v.decode("utf-8") if isinstance(v, bytes) else v for v in value.flat], dtype=object
        ).reshape(value.shape)
    return value


def same_value(actual: Any, expected: Any) -> bool:
    """Whether a value read through h5py equals the value the model wrote."""
    actual = _normalized(actual)
    if isinstance(expected, str):
        return isinstance(actual, str) and actual == expected
    if isinstance(expected, np.void):
        return isinstance(actual, np.void) and actual.tobytes() == expected.tobytes()
    if isinstance(expected, (bool, np.bool_)):
        return isinstance(actual, (bool, np.bool_)) and bool(actual) == bool(expected)
    want = np.asarray(expected)
    got = np.asarray(actual)
    return (
        got.shape == want.shape and got.dtype.kind == want.dtype.kind and np.array_equal(got, want)
    )


def differences(group: IH5Group, root: Tree) -> list[str]:
    """Every way the record below ``group`` differs from the model ``root`` (empty: equal)."""
    found: list[str] = []
    _compare(group, root, found)
    names: list[str] = []
    group.visit(names.append)
    expected = [posixpath.relpath(path, group.name) for path, _ in walk(root, group.name)][1:]
    if names != expected:
        found.append(f"visit() gives {names}, the model walks {expected}")
    return found


def _compare(obj: IH5Group | IH5Dataset, node: Tree, found: list[str]) -> None:
    path = obj.name
    attr_names = sorted(obj.attrs)
    if attr_names != sorted(node["attrs"]):
        found.append(f"{path}: attributes {attr_names}, expected {sorted(node['attrs'])}")
    else:
        for key in attr_names:
            if not same_value(obj.attrs[key], node["attrs"][key]):
                found.append(f"{path}@{key}: {obj.attrs[key]!r}, expected {node['attrs'][key]!r}")
    if not is_group(node):
        if not isinstance(obj, IH5Dataset):
            found.append(f"{path}: a group, expected a dataset")
        elif not same_value(obj[()], node["value"]):
            found.append(f"{path}: value {obj[()]!r}, expected {node['value']!r}")
        elif obj.compression != node.get("compression"):
            found.append(
                f"{path}: compression {obj.compression}, expected {node.get('compression')}"
            )
        return
    if not isinstance(obj, IH5Group):
        found.append(f"{path}: a dataset, expected a group")
        return
    keys = list(obj)
    if keys != sorted(node["members"]) or len(obj) != len(keys):
        found.append(f"{path}: members {keys}, expected {sorted(node['members'])}")
    for name in sorted(set(keys) & set(node["members"])):
        _compare(obj[name], node["members"][name], found)


def assert_matches(group: IH5Group, root: Tree, where: str) -> None:
    """Fail with a readable list of differences when the record is not the model."""
    found = differences(group, root)
    assert not found, f"{where} differs from the model:\n  " + "\n  ".join(found)


def tree_of(obj: IH5Group | IH5Dataset) -> Tree:
    """Read a record (or part of one) into a model tree, to compare two records."""
    attrs = {key: obj.attrs[key] for key in obj.attrs}
    if isinstance(obj, IH5Dataset):
        node = {"attrs": attrs, "value": _normalized(obj[()])}
        if obj.compression is not None:
            node["compression"] = obj.compression
        return node
    return {"attrs": attrs, "members": {name: tree_of(obj[name]) for name in obj}}
