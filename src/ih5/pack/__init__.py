"""The pack floor: directories to records and back, incrementally, from manifests alone.

Names are imported on first use (PEP 562), so that ``ih5 pack`` loads the packer
without the audit, many-record and unpacking modules.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ih5._lazy import lazy_names

if TYPE_CHECKING:
    from ih5.pack._audit import (
        ContainerCheck,
        RecordCheck,
        VerifyPlan,
        plan_verify,
        verify_many,
        verify_plan,
    )
    from ih5.pack._codecs import (
        ENTRY_POINT_GROUP,
        FileCodec,
        NpyCodec,
        PackOptions,
        RawCodec,
        installed_codecs,
    )
    from ih5.pack._exclusion import is_own_file
    from ih5.pack._many import (
        CATALOG_NAME,
        CatalogRebuild,
        PackItem,
        PackOutcome,
        PackPlan,
        Skipped,
        pack_many,
        pack_plan,
        plan_many,
        rebuild_catalog,
        record_name_for,
    )
    from ih5.pack._packer import Changes, PackProgress, PackResult, compare_states, pack_directory
    from ih5.pack._pushing import PushItem, PushOutcome, plan_push, push_many, push_plan
    from ih5.pack._tasks import dask_executor, run_tasks
    from ih5.pack._tree_state import EntryState, TreeState
    from ih5.pack._unpacker import (
        UnpackResult,
        copy_packed_file,
        extract_member,
        is_packed_file,
        rebuild_pack_manifests,
        recorded_state,
        unpack_record,
        write_packed_file,
    )

__all__ = [
    "CATALOG_NAME",
    "ENTRY_POINT_GROUP",
    "CatalogRebuild",
    "Changes",
    "ContainerCheck",
    "EntryState",
    "FileCodec",
    "NpyCodec",
    "PackItem",
    "PackOptions",
    "PackOutcome",
    "PackPlan",
    "PackProgress",
    "PackResult",
    "PushItem",
    "PushOutcome",
    "RawCodec",
    "RecordCheck",
    "Skipped",
    "TreeState",
    "UnpackResult",
    "VerifyPlan",
    "compare_states",
    "copy_packed_file",
    "dask_executor",
    "extract_member",
    "installed_codecs",
    "is_own_file",
    "is_packed_file",
    "pack_directory",
    "pack_many",
    "pack_plan",
    "plan_many",
    "plan_push",
    "plan_verify",
    "push_many",
    "push_plan",
    "rebuild_catalog",
    "rebuild_pack_manifests",
    "record_name_for",
    "recorded_state",
    "run_tasks",
    "unpack_record",
    "verify_many",
    "verify_plan",
    "write_packed_file",
]

_SOURCES = {
    "ContainerCheck": "ih5.pack._audit",
    "RecordCheck": "ih5.pack._audit",
    "VerifyPlan": "ih5.pack._audit",
    "plan_verify": "ih5.pack._audit",
    "verify_many": "ih5.pack._audit",
    "verify_plan": "ih5.pack._audit",
    "ENTRY_POINT_GROUP": "ih5.pack._codecs",
    "FileCodec": "ih5.pack._codecs",
    "NpyCodec": "ih5.pack._codecs",
    "PackOptions": "ih5.pack._codecs",
    "RawCodec": "ih5.pack._codecs",
    "installed_codecs": "ih5.pack._codecs",
    "is_own_file": "ih5.pack._exclusion",
    "CATALOG_NAME": "ih5.pack._many",
    "CatalogRebuild": "ih5.pack._many",
    "PackItem": "ih5.pack._many",
    "PackOutcome": "ih5.pack._many",
    "PackPlan": "ih5.pack._many",
    "Skipped": "ih5.pack._many",
    "pack_many": "ih5.pack._many",
    "pack_plan": "ih5.pack._many",
    "plan_many": "ih5.pack._many",
    "rebuild_catalog": "ih5.pack._many",
    "record_name_for": "ih5.pack._many",
    "Changes": "ih5.pack._packer",
    "PackProgress": "ih5.pack._packer",
    "PackResult": "ih5.pack._packer",
    "compare_states": "ih5.pack._packer",
    "pack_directory": "ih5.pack._packer",
    "dask_executor": "ih5.pack._tasks",
    "PushItem": "ih5.pack._pushing",
    "PushOutcome": "ih5.pack._pushing",
    "plan_push": "ih5.pack._pushing",
    "push_many": "ih5.pack._pushing",
    "push_plan": "ih5.pack._pushing",
    "run_tasks": "ih5.pack._tasks",
    "EntryState": "ih5.pack._tree_state",
    "TreeState": "ih5.pack._tree_state",
    "UnpackResult": "ih5.pack._unpacker",
    "copy_packed_file": "ih5.pack._unpacker",
    "extract_member": "ih5.pack._unpacker",
    "is_packed_file": "ih5.pack._unpacker",
    "rebuild_pack_manifests": "ih5.pack._unpacker",
    "recorded_state": "ih5.pack._unpacker",
    "unpack_record": "ih5.pack._unpacker",
    "write_packed_file": "ih5.pack._unpacker",
}


__getattr__, __dir__ = lazy_names(__name__, _SOURCES, __all__, globals())
