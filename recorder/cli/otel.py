"""`cprec export otel`: the recorded history as OpenTelemetry traces (queries/otel.py
reads the executions, recorder/otel.py builds, sends and remembers)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from recorder.cli.options import cache_option, data_option
from recorder.cli.query import selection_options, window_of
from recorder.errors import EXIT_LOCKED, EXIT_OK, EXIT_PARTIAL, EXIT_USAGE, UserError
from recorder.timeparse import parse_bound

if TYPE_CHECKING:
    from recorder.root import DataRoot

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)  # a relative bound parses otherwise against it

EXIT_CODES_HELP = f"""\b
Exit codes:
  {EXIT_OK}   every selected execution was sent (or none was new)
  {EXIT_PARTIAL}   the destination did not accept a batch after retries; what it accepted
      is remembered, the rest is sent next run
  {EXIT_USAGE}   bad input (flag, URL, data root, unwritable file)
  {EXIT_LOCKED}  a collector is writing, or another export runs; nothing was sent
"""


def _header(ctx, param, values: tuple[str, ...]) -> dict[str, str]:
    headers = {}
    for value in values:
        name, sep, text = value.partition("=")
        if not sep or not name.strip():
            raise click.BadParameter(f"{value!r} is not NAME=VALUE", ctx, param)
        from requests.exceptions import InvalidHeader
        from requests.utils import check_header_validity

        try:  # as the request would refuse it, but before anything is read or sent
            check_header_validity((name.strip(), text))
            text.encode("latin-1")
        except (InvalidHeader, UnicodeEncodeError):
            raise click.BadParameter(f"{value!r} is not a valid HTTP header", ctx, param) from None
        headers[name.strip()] = text
    return headers


@click.command(
    "otel",
    epilog=EXIT_CODES_HELP,
    short_help="Send every recorded execution as an OpenTelemetry trace.",
)
@click.option(
    "--endpoint",
    metavar="URL",
    envvar="CPREC_OTEL_ENDPOINT",
    show_envvar=True,
    help="OTLP/HTTP traces endpoint (protobuf), e.g. http://localhost:4318/v1/traces; a "
    "URL without a path gets /v1/traces.",
)
@click.option(
    "--file",
    "file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Append OTLP JSON lines to this file instead (one ExportTraceServiceRequest a "
    "line, as a collector's file exporter writes them).",
)
@click.option(
    "--all",
    "resend",
    is_flag=True,
    help="Send every selected execution again, not only those recorded since the last "
    "export to this destination.",
)
@click.option(
    "--header",
    "headers",
    multiple=True,
    metavar="NAME=VALUE",
    callback=_header,
    help="HTTP header for --endpoint, e.g. Authorization=... (repeatable).",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.1),
    default=10.0,
    show_default=True,
    metavar="SECONDS",
    help="How long one batch may take with --endpoint, retries with backoff included.",
)
@selection_options
@click.option("--batch-size", type=click.IntRange(min=1), default=None, hidden=True)
@cache_option
@data_option
def otel_cmd(
    endpoint: str | None,
    file: Path | None,
    resend: bool,
    headers: dict[str, str],
    timeout: float,
    since: str | None,
    until: str | None,
    pipelines: tuple[str, ...],
    accounts: tuple[str, ...],
    regions: tuple[str, ...],
    batch_size: int | None,
    use_cache: bool | None,
    data: DataRoot,
) -> None:
    """Send every recorded execution, as it ended, as an OpenTelemetry CI/CD trace: the
    run, its stage runs, each action execution, approvals and waits, with their
    recorded times (README: "Traces").

    Incremental: only executions recorded as ended since the last export to the same
    destination (and selection) are sent; the data root remembers where each export
    stopped (.otel-export.json), after the destination accepted each batch. Trace and
    span ids derive from the execution and its stages and actions, so what is sent
    again (--all) carries the same ids."""
    # heavy modules here, not at import: `cprec --help` stays fast
    import queries
    from queries import otel as rows
    from recorder import otel

    if (endpoint is None) == (file is None):
        raise UserError("give one of --endpoint URL or --file PATH")
    if endpoint is not None:
        destination = otel.Endpoint(endpoint, timeout=timeout, headers=headers)
    else:
        destination = otel.JsonLines(file)
    window = window_of(since, until)
    if until is not None and window["until"] != parse_bound(until, EPOCH, name="--until"):
        # A relative --until moves on with the clock: an execution it lets in later was
        # recorded before the cursor (which only moves forward) and would never be sent.
        raise UserError(
            f"--until {until} moves with the clock, and an execution it lets in later "
            "would be behind this destination's cursor, never sent; give a date or time"
        )
    root = data.existing()
    # No collector writes while the bound is read: every row up to it is there for good
    # (a collection that starts later records at a later recorded_at).
    with root.lock(holder="collector"):
        con = queries.connect(root, cache=use_cache, accounts=accounts, regions=regions)
        bound = rows.bound(con)
    selection = " ".join(
        f"--{name} {value}"
        for name, values in (
            ("since", [since]),
            ("until", [until]),
            ("pipeline", pipelines),
            ("account", accounts),
            ("region", regions),
        )  # fmt: skip
        for value in values
        if value
    )

    chosen = rows.Selection(
        con, bound=bound, since=window["since"], until=window["until"], pipelines=pipelines,
        data_root=root,
    )  # fmt: skip
    size = batch_size or otel.BATCH
    outcome = otel.export(
        root, destination, chosen.batch, size=size, selection=selection, resend=resend,
    )  # fmt: skip
    con.close()
    if outcome.executions:
        click.echo(
            f"exported {outcome.executions} execution{'s' * (outcome.executions != 1)} as "
            f"traces ({outcome.spans} spans) to {destination.shown}",
            err=True,
        )
    elif outcome.error is None:
        click.echo(f"nothing new to export to {destination.shown}", err=True)
    if outcome.error is not None:
        raise otel.ExportError(
            f"{outcome.error}; the next export sends the rest (the cursor stays after the "
            f"last accepted batch)"
        )
