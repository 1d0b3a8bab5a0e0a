"""The manifest floor: skeletons, manifest sidecars, manifest-backed records and stubs."""

from ih5.manifest.manifest import (
    IH5Manifest,
    IH5UBExtManifest,
    check_manifest,
    manifest_path,
    without_manifest_ext,
)
from ih5.manifest.mfrecord import IH5MFRecord
from ih5.manifest.skeleton import IH5Skeleton, SkeletonEntry

__all__ = [
    "IH5MFRecord",
    "IH5Manifest",
    "IH5Skeleton",
    "IH5UBExtManifest",
    "SkeletonEntry",
    "check_manifest",
    "manifest_path",
    "without_manifest_ext",
]
