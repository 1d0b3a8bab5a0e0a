"""The pack floor: directories to records and back, incrementally, from manifests alone."""

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
    "plan_verify",
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
