"""The command line on URLs: pack into S3, push, pull, and every reading command."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from ih5.cli import cli
from tests.remote.helpers import make_source, same_tree


def ih5(*args: str) -> tuple[int, str, str]:
    """Run ``ih5 ARGS`` in-process; return exit code, stdout, stderr."""
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def ih5_json(*args: str) -> Any:
    code, out, err = ih5(*args, "--json")
    assert code == 0, err
    return json.loads(out)


def test_pack_into_s3_and_read_it_back_with_every_reading_command(
    bucket: str, tmp_path: Path
) -> None:
    source = make_source(tmp_path / "plate", {"a.txt": b"alpha", "d/b.bin": os.urandom(2000)})
    url = f"{bucket}/plates/plate-1"
    assert ih5_json("pack", str(source), url)["action"] == "created"
    (source / "a.txt").write_bytes(b"beta")
    packed = ih5_json("pack", str(source), url)
    assert (packed["action"], packed["record"], packed["changed"]) == ("patched", url, ["/a.txt"])

    info = ih5_json("info", url)
    assert (info["name"], info["containers"], info["manifest"]) == ("plate-1", 2, True)
    assert info["requests"] >= 1
    assert [entry["index"] for entry in ih5_json("log", url)] == [0, 1]
    assert ih5_json("verify", url)["ok"] is True
    assert [entry["path"] for entry in ih5_json("tree", url)][:2] == ["/", "/a.txt"]
    changed = ih5_json("diff", url, "--from", "0", "--to", "1")["changed"]
    assert [entry["path"] for entry in changed] == ["/a.txt"]
    code, out, _ = ih5("cat", url, "a.txt")
    assert code == 0 and out == "beta"  # a packed file's original bytes
    assert ih5_json("manifest", url)["user_block"]["patch_index"] == 1

    assert ih5("unpack", url, str(tmp_path / "restored"))[0] == 0
    assert same_tree(source, tmp_path / "restored")
    merged = ih5_json("merge", url, str(tmp_path / "merged.ih5"))
    assert merged["patch_index"] == 1


def test_push_and_pull_on_the_command_line(bucket: str, tmp_path: Path) -> None:
    source = make_source(tmp_path / "plate", {"a.txt": b"alpha"})
    archive = tmp_path / "archive"
    archive.mkdir()
    assert ih5("pack", str(source), str(archive / "rec"))[0] == 0
    pushed = ih5_json("push", str(archive / "rec"), f"{bucket}/p/rec")
    assert pushed["copied"] == ["rec.ih5", "rec.ih5mf.json"]
    pulled = ih5_json("pull", f"{bucket}/p/rec", str(tmp_path / "mirror"))
    assert pulled["copied"] == ["rec.ih5", "rec.ih5mf.json"]
    code, _, err = ih5("push", str(archive / "rec"), f"{bucket}/p/rec")
    assert code == 0 and "nothing pushed" in err


def test_info_over_http_says_how_many_requests_discovery_took(
    http_docs: tuple[Path, str], tmp_path: Path
) -> None:
    directory, url = http_docs
    source = make_source(tmp_path / "plate", {"a.txt": b"alpha"})
    assert ih5("pack", str(source), str(directory / "rec"))[0] == 0
    (source / "a.txt").write_bytes(b"beta")
    assert ih5("pack", str(source), str(directory / "rec"))[0] == 0
    info = ih5_json("info", f"{url}/rec")
    assert info["containers"] == 2
    # base, p1, the missing p2 (each with its first block), then 2 manifest checks.
    assert info["requests"] == 5


def test_a_missing_bucket_is_one_error_line_naming_it(s3_env: object, tmp_path: Path) -> None:
    code, _, err = ih5("info", "s3://no-such-bucket-here/p/rec")
    assert code == 3  # not found
    assert err.startswith("Error: bucket no-such-bucket-here does not exist")


def test_packing_to_an_http_url_is_refused_as_read_only(
    http_docs: tuple[Path, str], tmp_path: Path
) -> None:
    _, url = http_docs
    source = make_source(tmp_path / "plate", {"a.txt": b"alpha"})
    code, _, err = ih5("pack", str(source), f"{url}/rec")
    assert code == 7 and "read-only" in err  # the location refuses writes
