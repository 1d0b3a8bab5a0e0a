"""A manifest's skeleton as text: one fragment per entry, exactly as the file spells it.

``json.dumps(manifest, indent=2)`` runs the pure-Python encoder and, with pydantic
models in between, costs seconds at 100,000 nodes. The fragments are the same
bytes written directly: built from a resolved tree, split out of a manifest file
written in this layout, or updated from the previous manifest's fragments by one
change set (the paths a patch holds), so that a commit costs what it changed
plus joining the text.
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Iterable, Mapping
from json.decoder import scanstring  # type: ignore[attr-defined]
from json.encoder import encode_basestring_ascii
from typing import Any

from ih5.fs import indented_json
from ih5.manifest._layout import LAYOUT_KEY, Describe
from ih5.record import Node, lookup, walk

quote = encode_basestring_ascii
"""A JSON string literal as ``json.dumps`` writes it (ASCII, C-accelerated)."""

Fragments = dict[str, str]
"""Absolute path -> the text of its skeleton entry, in the skeleton's order."""

_SKELETON_HEAD = '\n  "skeleton": {\n'
_ENTRY_SEPARATOR = ',\n    "'
_GROUP_LINE = '"node_type": "group"'


def reindent(text: str, level: int) -> str:
    """Text of ``json.dumps(value, indent=2)`` as it reads nested ``level`` deep."""
    return text.replace("\n", "\n" + "  " * level)


def dumps_at(value: Any, level: int) -> str:
    """``value`` as ``json.dumps(document, indent=2)`` writes it ``level`` deep.

    With an indent, ``json.dumps`` runs its pure-Python encoder; plain JSON data is
    written by ``ih5.fs.indented_json`` in fewer steps, the same bytes; anything else
    is left to ``json.dumps`` (its rules, its errors).
    """
    text = indented_json(value, level=level, ensure_ascii=True)
    return text if text is not None else reindent(json.dumps(value, indent=2), level)


def entry_fragment(
    path: str,
    node_type: str,
    patch_index: int,
    attrs: Mapping[str, int],
    extra: Mapping[str, Any] | None = None,
) -> str:
    """One skeleton entry (at depth 2 of the manifest document), without its comma."""
    plain = type(patch_index) is int and all(type(value) is int for value in attrs.values())
    if extra or not plain:
        data = {"node_type": node_type, "patch_index": patch_index, "attrs": dict(attrs)}
        return f"    {quote(path)}: {dumps_at({**data, **(extra or {})}, 2)}"
    if attrs:
        lines = ",\n".join(f"        {quote(name)}: {value!r}" for name, value in attrs.items())
        attrs_text = "{\n" + lines + "\n      }"
    else:
        attrs_text = "{}"
    return (
        f"    {quote(path)}: {{\n"
        f'      "node_type": {quote(node_type)},\n'
        f'      "patch_index": {patch_index!r},\n'
        f'      "attrs": {attrs_text}\n'
        "    }"
    )


def skeleton_text(fragments: Iterable[str]) -> str:
    """The skeleton object (at depth 1) made of its entries' fragments."""
    body = ",\n".join(fragments)
    return "{\n" + body + "\n  }" if body else "{}"


def node_fragment(path: str, node: Node, describe: Describe | None = None) -> str:
    """The entry of one node of a resolved tree (attributes sorted by name)."""
    node_type = "group" if node.is_group else "dataset"
    layout = describe(path, node) if describe is not None and not node.is_group else None
    extra = {LAYOUT_KEY: layout} if layout is not None else None
    return entry_fragment(path, node_type, node.created, dict(sorted(node.attrs.items())), extra)


def from_tree(root: Node, describe: Describe | None = None) -> Fragments:
    """Every entry of a resolved tree, root first, then depth-first in sorted order."""
    return {path: node_fragment(path, node, describe) for path, node in walk(root)}


def from_manifest_bytes(raw: bytes) -> Fragments | None:
    """The entries of a manifest file written in this layout; None if it is laid out otherwise.

    Entries sit at exactly four spaces of indentation, so the text between
    ``,\\n    "`` separators is one entry each.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    head = text.find(_SKELETON_HEAD)
    if head < 0:
        return None
    start = head + len(_SKELETON_HEAD)
    end = text.find("\n  }", start)
    if end < 0 or not text.startswith('    "', start):
        return None
    fragments: Fragments = {}
    for number, part in enumerate(text[start:end].split(_ENTRY_SEPARATOR)):
        fragment = part if number == 0 else '    "' + part
        try:
            path, _ = scanstring(fragment, 5)
        except ValueError:
            return None
        fragments[path] = fragment
    return fragments


def _order(path: str) -> list[str]:
    return path.split("/")


def _drop_subtree(fragments: Fragments, path: str) -> None:
    """Remove ``path`` and, if it was a group, everything below it."""
    old = fragments.pop(path, None)
    if old is None or _GROUP_LINE not in old.split("\n", 2)[1]:
        return
    prefix = "/" if path == "/" else path + "/"
    for key in [key for key in fragments if key.startswith(prefix)]:
        del fragments[key]


def updated(
    previous: Fragments,
    changed: Iterable[str],
    root: Node,
    index: int,
    describe: Describe | None = None,
) -> Fragments:
    """The entries after a patch with patch index ``index`` changed the paths ``changed``.

    ``previous`` are the entries of the state the patch was written on; ``root`` is
    the resolved tree with the patch applied. Every path whose resolved state a
    patch can change is a path the patch holds (its virtual groups included).
    """
    result = dict(previous)
    added: Fragments = {}
    covered: list[str] = []
    for path in sorted(changed, key=_order):
        if any(path == top or path.startswith(top + "/") for top in covered):
            continue
        node = lookup(root, path)
        if node is None:
            _drop_subtree(result, path)
            covered.append(path)
        elif node.created == index:
            if path == "/":
                return from_tree(root, describe)
            _drop_subtree(result, path)
            added.update((key, node_fragment(key, sub, describe)) for key, sub in walk(node, path))
            covered.append(path)
        elif path in result:
            result[path] = node_fragment(path, node, describe)
        else:
            added[path] = node_fragment(path, node, describe)
    if not added:
        return result
    new = sorted(added, key=_order)
    merged = heapq.merge(
        ((_order(key), key, text) for key, text in result.items()),
        ((_order(key), key, added[key]) for key in new),
    )
    return {key: text for _, key, text in merged}
