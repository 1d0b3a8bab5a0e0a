"""The manifest floor: skeletons, manifest sidecars, manifest-backed records and stubs.

Names are imported on first use (PEP 562): a re-pack opens its record and writes
the next manifest without loading the pydantic models or the health checks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ih5._lazy import lazy_names

if TYPE_CHECKING:
    from ih5.manifest._health import (
        ContainerHealth,
        ManifestHealth,
        RebuiltManifest,
        RecordHealth,
        check_record,
        rebuild_manifests,
    )
    from ih5.manifest._manifest import IH5Manifest, IH5UBExtManifest, check_manifest
    from ih5.manifest._mfrecord import IH5MFRecord, open_record
    from ih5.manifest._sidecar import manifest_path, without_manifest_ext
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

_SOURCES = {
    "ContainerHealth": "ih5.manifest._health",
    "ManifestHealth": "ih5.manifest._health",
    "RebuiltManifest": "ih5.manifest._health",
    "RecordHealth": "ih5.manifest._health",
    "check_record": "ih5.manifest._health",
    "rebuild_manifests": "ih5.manifest._health",
    "IH5Manifest": "ih5.manifest._manifest",
    "IH5UBExtManifest": "ih5.manifest._manifest",
    "check_manifest": "ih5.manifest._manifest",
    "IH5MFRecord": "ih5.manifest._mfrecord",
    "open_record": "ih5.manifest._mfrecord",
    "manifest_path": "ih5.manifest._sidecar",
    "without_manifest_ext": "ih5.manifest._sidecar",
    "IH5Skeleton": "ih5.manifest._skeleton",
    "SkeletonEntry": "ih5.manifest._skeleton",
}


__getattr__, __dir__ = lazy_names(__name__, _SOURCES, __all__, globals())
