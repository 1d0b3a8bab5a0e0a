"""Helpers shared by the record tests."""

from __future__ import annotations

from ih5.record import IH5Record


def untouched(rec: IH5Record) -> bool:
    """True when ``rec`` holds a fresh open patch without any change (not a resumed one)."""
    writer = rec.chain.writer
    return writer is not None and len(writer.file) == 0 and len(writer.file.attrs) == 0
