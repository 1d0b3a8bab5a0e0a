"""A packed file's media type is what ``mimetypes.guess_type`` says, though the first
names are answered without reading the system's type tables in full."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

PROBE = """
import json, mimetypes, sys
names, tables = json.loads(sys.argv[1]), json.loads(sys.argv[2])
if tables is not None:
    mimetypes.knownfiles = tables
from ih5.pack import _media
ours = []
for name in names:
    _media._lookups = 0  # each name answered from the matching lines alone
    ours.append(_media.media_type(name))
untouched = not mimetypes.inited
mimetypes.init()
theirs = [mimetypes.guess_type(name)[0] or _media.OCTET_STREAM for name in names]
print(json.dumps([ours, theirs, untouched]))
"""

NAMES = [
    "a/b.bin",
    "a.b.c.bin",
    "x.PNG",
    "x.png",
    "archive.tar.gz",
    "f.tgz",
    "x.svgz",
    "file.gz",
    "x.Z",
    "noext",
    "d.d/file",
    ".hidden",
    "trailing.",
    "t.csv",
    "r.lab",
    "s.LAB",
    "tab.dat",
    "u.ünï",
    "notes.txt",
]

FIRST_TABLE = """\
# overrides of built-in types, an upper-case suffix, comments and tabs
application/x-lab-bin   bin
image/x-upper PNG
application/x-tarball tar
# application/x-commented csv
text/x-tabbed\tdat\t# dat files
text/x-first lab
"""

SECOND_TABLE = """\
text/x-second lab
text/x-ünï ünï
"""


def _compare(tables: list[str] | None) -> tuple[list[str], list[str]]:
    """Our answers and ``mimetypes``' for NAMES, with ``tables`` as the system's tables
    (None: the real ones)."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(NAMES), json.dumps(tables)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    ours, theirs, untouched = json.loads(done.stdout)
    assert untouched  # the partial answers read no table in full
    return ours, theirs


def test_media_types_match_mimetypes_with_the_systems_tables() -> None:
    ours, theirs = _compare(None)
    assert dict(zip(NAMES, ours, strict=True)) == dict(zip(NAMES, theirs, strict=True))


def test_media_types_match_mimetypes_with_tables_that_override(tmp_path: Path) -> None:
    first, second = tmp_path / "first.types", tmp_path / "second.types"
    first.write_text(FIRST_TABLE, encoding="utf-8")
    second.write_text(SECOND_TABLE, encoding="utf-8")
    ours, theirs = _compare([str(first), str(tmp_path / "missing.types"), str(second)])
    assert dict(zip(NAMES, ours, strict=True)) == dict(zip(NAMES, theirs, strict=True))
    # The tables took effect (the comparison is not between two empty lookups).
    assert ours[NAMES.index("a/b.bin")] == "application/x-lab-bin"
    assert ours[NAMES.index("r.lab")] == "text/x-second"
    assert ours[NAMES.index("archive.tar.gz")] == "application/x-tarball"


def test_after_the_first_names_the_full_tables_are_read() -> None:
    probe = (
        "import mimetypes\n"
        "from ih5.pack._media import PARTIAL_LOOKUPS, media_type\n"
        "for number in range(PARTIAL_LOOKUPS):\n"
        "    media_type(f'f{number}.bin')\n"
        "before = mimetypes.inited\n"
        "media_type('more.bin')\n"
        "print(before, mimetypes.inited)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.split() == ["False", "True"]
