"""The ``ih5_layout`` of a chunked dataset in a manifest's skeleton entry."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import h5py

from ih5.record import IH5Record, Node, describe_layout

LAYOUT_KEY = "ih5_layout"
"""Extra skeleton key of a chunked dataset: shape, type, chunks, filters, chunk deltas.

metador-core 0.1.1 ignores unknown keys of a skeleton entry; a stub uses it to
accept chunk writes and resizes of datasets whose data it does not have.
"""

Describe = Callable[[str, Node], "dict[str, Any] | None"]
"""(path, dataset node) -> the dataset's layout, or None for contiguous storage."""


def layout_of(record: IH5Record, path: str, node: Node) -> dict[str, Any] | None:
    """The ``ih5_layout`` of the dataset ``node`` at ``path`` (None if not chunked)."""
    dataset = record.chain.h5(node.created)[path]
    if not isinstance(dataset, h5py.Dataset) or dataset.chunks is None:
        return None
    # Without chunk deltas the shape is the dataset's own: no assembled view needed.
    shape = record.chain.chunked(path, node).shape if node.deltas else tuple(dataset.shape)
    return describe_layout(dataset, shape, node.deltas)
