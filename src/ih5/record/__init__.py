"""The record floor: a chain of IH5 containers shown as one h5py-like tree."""

from ih5.record._attrs import IH5AttributeManager
from ih5.record._diff import RecordDiff, diff_states
from ih5.record._overlay import IH5Dataset, IH5Group, IH5Object
from ih5.record._record import ContainerInfo, IH5Record
from ih5.record._transfer import TransferResult, pull, push

__all__ = [
    "ContainerInfo",
    "IH5AttributeManager",
    "IH5Dataset",
    "IH5Group",
    "IH5Object",
    "IH5Record",
    "RecordDiff",
    "TransferResult",
    "diff_states",
    "pull",
    "push",
]
