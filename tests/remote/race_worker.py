"""One packer of the remote race suite: wait for the start time, pack, print the result.

Run as ``python -m tests.remote.race_worker SOURCE URL START``; exits 0 with the
result as JSON, 3 on ConflictError (it lost every race), 1 on anything else.
"""

from __future__ import annotations

import json
import sys
import time

from ih5 import ConflictError, pack_directory


def main() -> int:
    source, url, start = sys.argv[1], sys.argv[2], float(sys.argv[3])
    time.sleep(max(0.0, start - time.time()))
    try:
        result = pack_directory(source, url)
    except ConflictError as exc:
        print(json.dumps({"conflict": str(exc)}), flush=True)
        return 3
    print(
        json.dumps(
            {
                "action": result.action,
                "patch_index": result.patch_index,
                "manifest_hashsum": result.manifest_hashsum,
                "written": [path.name for path in result.written],
            }
        ),
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
