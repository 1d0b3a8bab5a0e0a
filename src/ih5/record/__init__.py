"""The record floor: a chain of IH5 containers shown as one h5py-like tree."""

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
