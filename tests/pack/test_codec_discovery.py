"""Finding codec plug-ins: a real installed distribution is found, and without one the
full ``importlib.metadata`` scan is skipped (in fresh interpreters, as a command runs)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

PROBE = """
import json, sys
from ih5.pack import installed_codecs
names = [codec.name for codec in installed_codecs()]
print(json.dumps([names, "importlib.metadata" in sys.modules]))
"""
"""Prints the installed codecs' names and whether ``importlib.metadata`` was imported."""

PLUGIN = '''
class ReversedCodec:
    """Stands for a lab's own codec; only its name matters to the discovery."""

    name = "reversed"

    def accepts(self, filename, head, size):
        return False
'''


def _probe(*path_entries: Path) -> tuple[list[str], bool]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([*map(str, path_entries), env.get("PYTHONPATH", "")])
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, timeout=60
    )
    assert done.returncode == 0, done.stderr
    names, scanned = json.loads(done.stdout)
    return names, scanned


def _install(site: Path, dist_info: str, entry_points: str) -> None:
    """Lay out a distribution as pip installs one: a module and ``*.dist-info`` metadata."""
    (site / "lab_codecs.py").write_text(PLUGIN)
    info = site / dist_info
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: lab-codecs\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(entry_points)


def test_a_codec_declared_by_an_installed_distribution_is_found(tmp_path: Path) -> None:
    _install(
        tmp_path,
        "lab_codecs-1.0.dist-info",
        "[ih5.codecs]\nreversed = lab_codecs:ReversedCodec\n",
    )
    names, scanned = _probe(tmp_path)
    assert names == ["reversed", "npy", "raw"]
    assert scanned


def test_a_codec_in_an_upper_case_egg_info_is_found(tmp_path: Path) -> None:
    _install(
        tmp_path,
        "Lab_Codecs-1.0.EGG-INFO",
        "[ih5.codecs]\nreversed = lab_codecs:ReversedCodec\n",
    )
    assert _probe(tmp_path)[0] == ["reversed", "npy", "raw"]


def test_without_a_declaring_distribution_importlib_metadata_is_not_loaded(
    tmp_path: Path,
) -> None:
    _install(tmp_path, "lab_tools-1.0.dist-info", "[console_scripts]\nlab = lab_codecs:main\n")
    assert _probe(tmp_path) == (["npy", "raw"], False)


def test_a_zipped_path_entry_gets_the_full_scan(tmp_path: Path) -> None:
    archive = tmp_path / "bundle.zip"
    archive.write_bytes(b"")  # not readable as a directory: the quick look cannot be sure
    names, scanned = _probe(archive)
    assert names == ["npy", "raw"]
    assert scanned


def test_a_distribution_mentioning_the_group_anywhere_gets_the_full_scan(
    tmp_path: Path,
) -> None:
    # Mentioned, but not as a section: importlib.metadata decides, and finds no codec.
    _install(tmp_path, "lab_tools-1.0.dist-info", "[console_scripts]\nx = ih5.codecs:main\n")
    assert _probe(tmp_path) == (["npy", "raw"], True)
