"""``ih5 push`` and ``ih5 pull``, and how every command takes a record's URL.

A record argument is a local ``DIR/NAME``, a ``file://`` URL, or a remote URL
(``s3://BUCKET/PREFIX/NAME``, ``https://HOST/PATH/NAME``), which stays a string.
Object storage is reached with the ``AWS_*`` environment; ``--endpoint-url``,
``--region`` and ``--allow-http`` override it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from ih5.cli._engine import engine_options, engine_requested
from ih5.cli._many import push_items, push_on_engine
from ih5.cli._output import echo_json, json_option, say
from ih5.cli._progress import byte_progress

if TYPE_CHECKING:  # imported where used: ``ih5 --help`` loads no h5py, numpy or rich
    from ih5.record import TransferResult
    from ih5.store import RemoteOptions


F = TypeVar("F", bound=Callable[..., Any])


class RecordLocation(click.ParamType):  # type: ignore[type-arg]
    """A record: a local path (``Path``) or a remote URL (``str``)."""

    name = "record"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        from ih5.store import is_remote, local_path

        if isinstance(value, Path):
            return value
        text = str(value)
        if is_remote(text):
            return text
        try:
            return local_path(text)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


RECORD = RecordLocation()


def remote_options(func: F) -> F:
    """Add --endpoint-url, --region and --allow-http (default: the AWS_* environment)."""
    for option in reversed(
        [
            click.option(
                "--endpoint-url", help="S3 endpoint (default: $AWS_ENDPOINT_URL, else AWS)."
            ),
            click.option(
                "--region", help="S3 region (default: $AWS_REGION / $AWS_DEFAULT_REGION)."
            ),
            click.option(
                "--allow-http",
                is_flag=True,
                default=None,
                help="Allow an http:// endpoint (default: $AWS_ALLOW_HTTP).",
            ),
        ]
    ):
        func = option(func)
    return func


def options_from(
    endpoint_url: str | None, region: str | None, allow_http: bool | None
) -> RemoteOptions:
    """RemoteOptions from the command-line options (None: the environment decides)."""
    from ih5.store import RemoteOptions

    return RemoteOptions(endpoint=endpoint_url, region=region, allow_http=allow_http)


def _report(result: TransferResult, verb: str, as_json: bool) -> None:
    if as_json:
        echo_json(
            {
                "source": result.source,
                "target": result.target,
                "copied": list(result.copied),
                "present": result.present,
                "bytes": result.bytes_transferred,
                "requests": result.requests,
            }
        )
        return
    if not result.copied:
        say(f"{result.target}: has everything of {result.source} already; nothing {verb}")
        return
    say(
        f"{verb} {len(result.copied)} files ({result.bytes_transferred} bytes, "
        f"{result.requests} requests) from {result.source} to {result.target}: "
        + ", ".join(result.copied)
    )


@click.command("push")
@click.argument(
    "records", metavar="RECORD...", nargs=-1, required=True, type=click.Path(path_type=Path)
)
@click.argument("url")
@remote_options
@engine_options
@json_option
def push_command(
    records: tuple[Path, ...],
    url: str,
    endpoint_url: str | None,
    region: str | None,
    allow_http: bool | None,
    jobs: int | None,
    scheduler: str | None,
    local_dask: bool,
    as_json: bool,
) -> None:
    """Copy the containers and manifests of RECORD (DIR/NAME) that URL lacks.

    The local record is verified first; files are published in chain order,
    each container before its manifest, and never over an existing name.
    Exits 1 if URL holds another history of the record.

    With several RECORDs, or a directory of records, URL is a prefix: each
    record goes to URL/NAME, one task per record on a local pool (--jobs) or a
    Dask cluster (--scheduler, --dask); one failing record does not stop the
    others, and running the command again pushes only what is left.

    \b
    Examples:
      ih5 push archive/plate-1 s3://lab-archive/plates/plate-1
      AWS_ENDPOINT_URL=http://127.0.0.1:9000 ih5 push archive/plate-1 s3://b/p/plate-1 --allow-http
      ih5 push archive/ s3://lab-archive/plates --jobs 4
      ih5 push archive/plate-1 archive/plate-2 s3://lab-archive/plates --dask
    """
    from ih5.record import push

    remote = options_from(endpoint_url, region, allow_http)
    if len(records) > 1 or records[0].is_dir() or engine_requested(jobs, scheduler, local_dask):
        push_on_engine(push_items(records, url), jobs, scheduler, local_dask, remote, as_json)
        return
    (record,) = records
    with byte_progress() as bar:
        bar.phase("uploading", sum(path.stat().st_size for path in _files_of(record)))
        result = push(record, url, remote=remote, progress=bar.advance)
    _report(result, "pushed", as_json)


def _files_of(record: Path) -> list[Path]:
    return sorted(record.parent.glob(f"{record.name.removesuffix('.ih5')}*.ih5"))


@click.command("pull")
@click.argument("url")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@remote_options
@json_option
def pull_command(
    url: str,
    directory: Path,
    endpoint_url: str | None,
    region: str | None,
    allow_http: bool | None,
    as_json: bool,
) -> None:
    """Copy the containers and manifests of the remote record URL that DIRECTORY lacks.

    Each container and manifest is checked against its hashsum before it is
    published in DIRECTORY; the record keeps its name.

    \b
    Examples:
      ih5 pull s3://lab-archive/plates/plate-1 archive/
      ih5 pull https://data.example.org/plates/plate-1 mirror/ --json
    """
    from ih5.record import pull

    with byte_progress() as bar:
        bar.phase("downloading", 0)
        result = pull(
            url,
            directory,
            remote=options_from(endpoint_url, region, allow_http),
            progress=bar.advance,
        )
    _report(result, "pulled", as_json)
