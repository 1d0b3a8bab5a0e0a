"""A packed file's media type, exactly as ``mimetypes.guess_type`` names it, cheaply.

``mimetypes`` reads the system's type tables (``/etc/mime.types``: some 2,000 lines)
in full before its first answer, a few milliseconds of a small re-pack. Yet one name
depends only on the lines that mention one of its suffixes: the first few names are
answered from those lines alone, by ``mimetypes``' own reader and lookup on a table
of its built-in types; then (many files to name) the full tables are read once.
"""

from __future__ import annotations

import io
import mimetypes
import os
import posixpath

OCTET_STREAM = "application/octet-stream"
PARTIAL_LOOKUPS = 4
"""Names answered from the matching lines before the full tables are read."""

_lookups = 0


def media_type(relative: str) -> str:
    """The media type of the file at ``relative`` (``application/octet-stream`` if unknown)."""
    global _lookups
    _lookups += 1
    if mimetypes.inited or _lookups > PARTIAL_LOOKUPS or not _partial_fits(relative):
        guessed = mimetypes.guess_type(relative)[0]
    else:
        guessed = _partial_guess(relative)
    return guessed or OCTET_STREAM


def _partial_fits(relative: str) -> bool:
    """Whether the partial tables answer as the full ones would: no URL scheme to strip
    (a colon), and no Windows registry to read."""
    return os.name == "posix" and ":" not in relative


def _suffixes(relative: str) -> set[str]:
    """Every suffix ``guess_type`` may look up for ``relative``, lower case, without the
    dot: the dot-separated parts of its last component, and of what the suffix map
    expands a suffix to (``.tgz`` -> ``.tar.gz``)."""
    name = posixpath.basename(relative)
    parts = {part.lower() for part in name.split(".")[1:]}
    for expansion in mimetypes.suffix_map.values():
        parts.update(part.lower() for part in expansion.split(".")[1:])
    parts.discard("")
    return parts


def _matching_lines(suffixes: set[str]) -> str:
    """The lines of the system's type tables, in the order ``mimetypes.init`` reads them,
    that contain one of ``suffixes`` as a word (any case): the only lines that can
    change an answer."""
    found: list[str] = []
    for path in mimetypes.knownfiles:
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as stream:
                found += _lines_with(stream.read(), suffixes)
    return "\n".join(found) + "\n"


def _lines_with(text: str, words: set[str]) -> list[str]:
    """The lines of ``text`` holding one of ``words`` (lower case) as a whitespace-separated
    word, in any case, in their order."""
    if not text.isascii():  # lower() could change offsets: look line by line
        return [line for line in text.splitlines() if words & set(line.lower().split())]
    lower = text.lower()
    starts: set[int] = set()
    for word in words:
        at = lower.find(word)
        while at >= 0:
            end = at + len(word)
            if (at == 0 or lower[at - 1].isspace()) and (end == len(lower) or lower[end].isspace()):
                starts.add(lower.rfind("\n", 0, at) + 1)
            at = lower.find(word, at + 1)
    lines = []
    for start in sorted(starts):
        stop = text.find("\n", start)
        lines.append(text[start : stop if stop >= 0 else len(text)])
    return lines


class _PartialTypes(mimetypes.MimeTypes):
    """``mimetypes``' built-in tables plus the given lines of the system's tables.

    ``MimeTypes()`` would read the system's tables in full first; this fills the
    documented tables from the module's built-in ones instead (still unread: the module
    is not initialised), then reads only ``lines``, with ``mimetypes``' own reader.
    """

    def __init__(self, lines: str) -> None:
        self.encodings_map = dict(mimetypes.encodings_map)
        self.suffix_map = dict(mimetypes.suffix_map)
        self.types_map = ({}, {})
        self.types_map_inv = ({}, {})
        for ext, kind in mimetypes.types_map.items():
            self.add_type(kind, ext, True)
        for ext, kind in mimetypes.common_types.items():
            self.add_type(kind, ext, False)
        self.readfp(io.StringIO(lines), True)


def _partial_guess(relative: str) -> str | None:
    suffixes = _suffixes(relative)
    lines = _matching_lines(suffixes) if suffixes else ""
    return _PartialTypes(lines).guess_type(relative)[0]
