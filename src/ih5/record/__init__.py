"""The record floor: a chain of IH5 containers shown as one h5py-like tree.

Names are imported on first use (PEP 562), so that a re-pack loads the record
modules it writes with, not the diff, transfer or merge ones.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ih5._lazy import lazy_names

if TYPE_CHECKING:
    from ih5.record._attrs import IH5AttributeManager
    from ih5.record._chunkmap import create_from_layout, describe_layout
    from ih5.record._commit import (
        CommitProtocol,
        Sealed,
        Sidecar,
        file_index,
        parse_staged_name,
        publish_container,
    )
    from ih5.record._diff import RecordDiff, diff_states
    from ih5.record._facts import read_facts
    from ih5.record._opening import RecordSource
    from ih5.record._overlay import IH5Dataset, IH5Group, IH5Object
    from ih5.record._parked import complete_parked, remote_names
    from ih5.record._record import ContainerInfo, IH5Record
    from ih5.record._strays import Stray, find_strays
    from ih5.record._transfer import TransferResult, pull, push
    from ih5.record._tree import Node, lookup, walk

__all__ = [
    "CommitProtocol",
    "ContainerInfo",
    "IH5AttributeManager",
    "IH5Dataset",
    "IH5Group",
    "IH5Object",
    "IH5Record",
    "Node",
    "RecordDiff",
    "RecordSource",
    "Sealed",
    "Sidecar",
    "Stray",
    "TransferResult",
    "complete_parked",
    "create_from_layout",
    "describe_layout",
    "diff_states",
    "file_index",
    "find_strays",
    "lookup",
    "parse_staged_name",
    "publish_container",
    "pull",
    "push",
    "read_facts",
    "remote_names",
    "walk",
]

_SOURCES = {
    "IH5AttributeManager": "ih5.record._attrs",
    "create_from_layout": "ih5.record._chunkmap",
    "describe_layout": "ih5.record._chunkmap",
    "CommitProtocol": "ih5.record._commit",
    "Sealed": "ih5.record._commit",
    "Sidecar": "ih5.record._commit",
    "file_index": "ih5.record._commit",
    "parse_staged_name": "ih5.record._commit",
    "publish_container": "ih5.record._commit",
    "RecordDiff": "ih5.record._diff",
    "diff_states": "ih5.record._diff",
    "read_facts": "ih5.record._facts",
    "RecordSource": "ih5.record._opening",
    "IH5Dataset": "ih5.record._overlay",
    "IH5Group": "ih5.record._overlay",
    "IH5Object": "ih5.record._overlay",
    "complete_parked": "ih5.record._parked",
    "remote_names": "ih5.record._parked",
    "ContainerInfo": "ih5.record._record",
    "IH5Record": "ih5.record._record",
    "Stray": "ih5.record._strays",
    "find_strays": "ih5.record._strays",
    "TransferResult": "ih5.record._transfer",
    "pull": "ih5.record._transfer",
    "push": "ih5.record._transfer",
    "Node": "ih5.record._tree",
    "lookup": "ih5.record._tree",
    "walk": "ih5.record._tree",
}


__getattr__, __dir__ = lazy_names(__name__, _SOURCES, __all__, globals())
