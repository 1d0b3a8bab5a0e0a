"""The manifest floor: skeletons, manifest sidecars, manifest-backed records and stubs."""

from ih5.manifest._health import (
    ContainerHealth,
    ManifestHealth,
    RebuiltManifest,
    RecordHealth,
    check_record,
    rebuild_manifests,
)
from ih5.manifest._manifest import (
    IH5Manifest,
    IH5UBExtManifest,
    check_manifest,
    manifest_path,
    without_manifest_ext,
)
from ih5.manifest._mfrecord import IH5MFRecord, open_record
from ih5.manifest._skeleton import IH5Skeleton, SkeletonEntry

__all__ = [
    "ContainerHealth",
    "IH5MFRecord",
    "IH5Manifest",
    "IH5Skeleton",
    "IH5UBExtManifest",
    "ManifestHealth",
    "RebuiltManifest",
    "RecordHealth",
    "SkeletonEntry",
    "check_manifest",
    "check_record",
    "manifest_path",
    "open_record",
    "rebuild_manifests",
    "without_manifest_ext",
]
