"""The pack floor: directories to records and back, incrementally, from manifests alone.

Names are imported on first use (PEP 562), so that ``ih5 pack`` loads the packer
without the audit, many-record and unpacking modules.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ih5._lazy import lazy_names

if TYPE_CHECKING:
    from ih5.pack.audit import (
        ContainerCheck,
        RecordCheck,
        VerifyPlan,
        plan_verify,
        verify_many,
        verify_plan,
    )
    from ih5.pack.codecs import (
        ENTRY_POINT_GROUP,
        FileCodec,
        NpyCodec,
        PackOptions,
        RawCodec,
        installed_codecs,
    )
    from ih5.pack.exclusion import is_own_file
    from ih5.pack.many import (
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
    from ih5.pack.packer import Changes, PackProgress, PackResult, compare_states, pack_directory
    from ih5.pack.pushing import PushItem, PushOutcome, plan_push, push_many, push_plan
    from ih5.pack.tasks import dask_executor, run_tasks
    from ih5.pack.tree_state import EntryState, TreeState
    from ih5.pack.unpacker import (
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
    "ContainerCheck": "ih5.pack.audit",
    "RecordCheck": "ih5.pack.audit",
    "VerifyPlan": "ih5.pack.audit",
    "plan_verify": "ih5.pack.audit",
    "verify_many": "ih5.pack.audit",
    "verify_plan": "ih5.pack.audit",
    "ENTRY_POINT_GROUP": "ih5.pack.codecs",
    "FileCodec": "ih5.pack.codecs",
    "NpyCodec": "ih5.pack.codecs",
    "PackOptions": "ih5.pack.codecs",
    "RawCodec": "ih5.pack.codecs",
    "installed_codecs": "ih5.pack.codecs",
    "is_own_file": "ih5.pack.exclusion",
    "CATALOG_NAME": "ih5.pack.many",
    "CatalogRebuild": "ih5.pack.many",
    "PackItem": "ih5.pack.many",
    "PackOutcome": "ih5.pack.many",
    "PackPlan": "ih5.pack.many",
    "Skipped": "ih5.pack.many",
    "pack_many": "ih5.pack.many",
    "pack_plan": "ih5.pack.many",
    "plan_many": "ih5.pack.many",
    "rebuild_catalog": "ih5.pack.many",
    "record_name_for": "ih5.pack.many",
    "Changes": "ih5.pack.packer",
    "PackProgress": "ih5.pack.packer",
    "PackResult": "ih5.pack.packer",
    "compare_states": "ih5.pack.packer",
    "pack_directory": "ih5.pack.packer",
    "dask_executor": "ih5.pack.tasks",
    "PushItem": "ih5.pack.pushing",
    "PushOutcome": "ih5.pack.pushing",
    "plan_push": "ih5.pack.pushing",
    "push_many": "ih5.pack.pushing",
    "push_plan": "ih5.pack.pushing",
    "run_tasks": "ih5.pack.tasks",
    "EntryState": "ih5.pack.tree_state",
    "TreeState": "ih5.pack.tree_state",
    "UnpackResult": "ih5.pack.unpacker",
    "copy_packed_file": "ih5.pack.unpacker",
    "extract_member": "ih5.pack.unpacker",
    "is_packed_file": "ih5.pack.unpacker",
    "rebuild_pack_manifests": "ih5.pack.unpacker",
    "recorded_state": "ih5.pack.unpacker",
    "unpack_record": "ih5.pack.unpacker",
    "write_packed_file": "ih5.pack.unpacker",
}


__getattr__, __dir__ = lazy_names(__name__, _SOURCES, __all__, globals())
