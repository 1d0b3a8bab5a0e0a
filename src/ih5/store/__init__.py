"""The store floor: where a record's containers and sidecars live.

Every container and sidecar is listed, read, staged, published and removed
through a :class:`Store`. Publishing is create-if-absent: two writers can never
both publish one name, with or without a lock. Today's implementation is the
local directory; object storage fits behind the same interface (no renames
across the seam, publishing by key).
"""

from ih5.store._local import LocalStore
from ih5.store._seam import Store

__all__ = ["LocalStore", "Store"]
