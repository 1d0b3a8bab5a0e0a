"""Where a plate keeps its metadata sidecar."""

from __future__ import annotations

import os
from pathlib import Path

METADATA_FILENAME = "openhcs_metadata.json"


def get_metadata_path(plate_root: str | os.PathLike[str]) -> Path:
    """Return the sidecar path of the plate rooted at ``plate_root``."""
    return Path(plate_root) / METADATA_FILENAME
