"""A record's member as the kind a test expects, so that typed tests read it like h5py."""

from __future__ import annotations

from ih5 import IH5Dataset, IH5Group


def as_dataset(node: object) -> IH5Dataset:
    """``node``, which must be a dataset (``rec["x"]`` may be a group or a dataset)."""
    assert isinstance(node, IH5Dataset), f"expected a dataset, got {node!r}"
    return node


def as_group(node: object) -> IH5Group:
    """``node``, which must be a group."""
    assert isinstance(node, IH5Group), f"expected a group, got {node!r}"
    return node
