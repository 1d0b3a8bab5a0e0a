"""What a pack leaves out: ih5's own lock and staging files, and ``--exclude`` patterns.

ih5's lock files (``X.lock`` beside a file ``X`` that ih5 locks: a record's
``NAME.ih5`` or a JSON sidecar), a locked writer's in-flight marker and request
queue (``.X.ih5-in-flight``, ``.X.ih5-queue/``) and its staging and temp files are
never data; a user's ``poetry.lock`` is. Patterns follow ``.gitignore``: ``*.tmp``
matches at any depth, ``/build`` or ``a/b`` only from the source root, a
trailing ``/`` only directories, ``**`` any number of directories, and an
excluded directory is left out with everything below it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

from ih5.errors import PackError
from ih5.fs import IN_FLIGHT_SUFFIX, LOCK_SUFFIX, QUEUE_SUFFIX, TEMP_SUFFIX
from ih5.record import parse_staged_name

Excluded = Callable[[str, bool, Collection[str]], bool]
"""(relative path, is a directory, names in its directory) -> leave it out."""

_LOCKED_SUFFIXES = (".ih5", ".json")
"""Files ih5 takes locks on: record bases and JSON sidecars (lock file: name + .lock)."""
_STUB_STAGING = re.compile(r"\.[A-Za-z0-9-]+\.stub-[0-9]+-.+")
UNPACK_TEMP_LABEL = "ih5-unpack"
"""Labels the temp files of unpacking (``.ih5-unpack.PID-TOKEN.ih5tmp``)."""
_UNPACK_TEMP = re.compile(rf"\.{re.escape(UNPACK_TEMP_LABEL)}\..+")


def is_own_file(name: str, siblings: Collection[str]) -> bool:
    """True for a file ih5 makes for its own bookkeeping beside the data it guards."""
    if name.endswith(LOCK_SUFFIX):
        guarded = name.removesuffix(LOCK_SUFFIX)
        return guarded.endswith(_LOCKED_SUFFIXES) and guarded in siblings
    for suffix in (IN_FLIGHT_SUFFIX, QUEUE_SUFFIX):
        if name.startswith(".") and name.endswith(suffix):
            return name.removesuffix(suffix).endswith(_LOCKED_SUFFIXES)
    return (
        name.endswith(TEMP_SUFFIX)
        or parse_staged_name(name) is not None
        or _STUB_STAGING.fullmatch(name) is not None
        or _UNPACK_TEMP.fullmatch(name) is not None
    )


@dataclass(frozen=True)
class _Pattern:
    regex: re.Pattern[str]
    anchored: bool
    directories_only: bool


def _translate(glob: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(glob):
        char = glob[i]
        if glob.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
            continue
        if glob.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[":
            end = glob.find("]", i + 1)
            if end == -1:
                out.append(re.escape(char))
            else:
                body = glob[i + 1 : end]
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append(f"[{body}]")
                i = end
        else:
            out.append(re.escape(char))
        i += 1
    return "".join(out)


def _compile(pattern: str) -> _Pattern:
    text = pattern.strip()
    if not text or text.startswith(("#", "!")):
        raise PackError(
            f"--exclude {pattern!r}: give a pattern such as '*.tmp', 'build/' or '/data/raw' "
            "(comments and '!' negation are not supported)",
            pattern,
        )
    directories_only = text.endswith("/")
    text = text.rstrip("/")
    anchored = "/" in text
    text = text.lstrip("/")
    return _Pattern(re.compile(_translate(text)), anchored, directories_only)


def exclusion(patterns: Sequence[str] = ()) -> Excluded:
    """The predicate a scan asks for each path: ih5's own files, then ``patterns``."""
    compiled = [_compile(pattern) for pattern in patterns]

    def excluded(relative: str, is_dir: bool, siblings: Collection[str]) -> bool:
        name = relative.rpartition("/")[2]
        if is_own_file(name, siblings):
            return True
        for pattern in compiled:
            if pattern.directories_only and not is_dir:
                continue
            subject = relative if pattern.anchored else name
            if pattern.regex.fullmatch(subject):
                return True
        return False

    return excluded
