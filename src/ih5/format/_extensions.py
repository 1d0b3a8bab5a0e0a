"""The user block extension FORMAT.md defines (``ih5mf_v01``) as far as chains need it."""

from __future__ import annotations

from typing import Any

MANIFEST_EXT = "ih5mf_v01"
"""Names the container's own manifest and marks stubs; it describes one container only."""


def _manifest_section(ub_exts: dict[str, Any]) -> dict[str, Any]:
    section = ub_exts.get(MANIFEST_EXT)
    return section if isinstance(section, dict) else {}


def is_stub_container(ub_exts: dict[str, Any]) -> bool:
    """True when a container's extensions mark it as a stub (structure without data)."""
    return _manifest_section(ub_exts).get("is_stub_container") is True


def inheritable_exts(ub_exts: dict[str, Any]) -> dict[str, Any]:
    """The extensions a new patch inherits: all but those describing one container."""
    return {key: value for key, value in ub_exts.items() if key != MANIFEST_EXT}


def named_manifest_hashsum(ub_exts: dict[str, Any]) -> str | None:
    """The hashsum of the manifest a container's user block names (None if it names none)."""
    value = _manifest_section(ub_exts).get("manifest_hashsum")
    return value if isinstance(value, str) else None
