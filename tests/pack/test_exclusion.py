"""What a pack leaves out: ih5's own files always, and gitignore-style ``--exclude`` patterns."""

from __future__ import annotations

import pytest

from ih5.pack._exclusion import exclusion, is_own_file


@pytest.mark.parametrize(
    ("name", "siblings", "own"),
    [
        ("openhcs_metadata.json.lock", {"openhcs_metadata.json"}, True),
        ("rec.ih5.lock", {"rec.ih5"}, True),
        ("poetry.lock", {"poetry"}, False),
        ("orphan.json.lock", set(), False),
        (".rec.p2.ih5.host-42-0123abcd.writing", set(), True),
        (".rec.ih5mf.json.host-42-0123abcd.staged", set(), True),
        (".doc.json.abc.ih5tmp", set(), True),
        (".rec.stub-42-xyz", set(), True),
        ("data.writing", set(), False),
        (".openhcs_metadata.json.ih5-queue", set(), True),
        (".openhcs_metadata.json.ih5-in-flight", set(), True),
        (".notes.txt.ih5-queue", set(), False),
    ],
)
def test_own_files_are_told_from_data(name: str, siblings: set[str], own: bool) -> None:
    assert is_own_file(name, siblings | {name}) is own


@pytest.mark.parametrize(
    ("pattern", "path", "is_dir", "excluded"),
    [
        ("*.tmp", "a.tmp", False, True),
        ("*.tmp", "deep/down/b.tmp", False, True),
        ("*.tmp", "a.tmpx", False, False),
        ("/build", "build", True, True),
        ("/build", "src/build", True, False),
        ("cache/", "x/cache", True, True),
        ("cache/", "x/cache", False, False),
        ("a/*.txt", "a/b.txt", False, True),
        ("a/*.txt", "a/c/b.txt", False, False),
        ("a/**/b.txt", "a/b.txt", False, True),
        ("a/**/b.txt", "a/x/y/b.txt", False, True),
        ("data?.bin", "data1.bin", False, True),
        ("[ab].txt", "b.txt", False, True),
        ("[!ab].txt", "b.txt", False, False),
    ],
)
def test_exclude_patterns_match_as_gitignore_does(
    pattern: str, path: str, is_dir: bool, excluded: bool
) -> None:
    assert exclusion([pattern])(path, is_dir, set()) is excluded
