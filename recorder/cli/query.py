"""`cprec queries / query / sql / export / db`: the query layer on the command line."""

from __future__ import annotations

import csv
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from recorder.cli.options import (
    CommandGroup,
    DecimalParam,
    _stack,
    cache_option,
    data_option,
    output_options,
)
from recorder.errors import UserError
from recorder.timeparse import parse_bound, window_warnings

if TYPE_CHECKING:
    from recorder.root import DataRoot

# cost's groupings (queries/cost.py BY, kept equal by tests/test_cost.py): written out, so
# drawing --help does not import DuckDB.
BY = ("pipeline", "stage", "action", "account", "month")

pipeline_option = click.option(
    "--pipeline",
    "pipelines",
    multiple=True,
    metavar="GLOB",
    help="Only pipelines matching this glob (repeatable).",
)

deploy_stage_option = click.option(
    "--deploy-stage",
    "deploy_stages",
    multiple=True,
    metavar="GLOB",
    envvar="CPREC_DEPLOY_STAGE",
    show_envvar=True,
    help="Deploy stages: stage names matching this glob (repeatable; the variable "
    "takes globs separated by spaces). Default: each pipeline's last stage holding a "
    "Deploy action.",
)

# what a selection of executions is: by start time, pipeline, account and region
selection_options = _stack(
    click.option("--since", help="Start time on or after: YYYY-MM-DD, ISO time, or 30d / 12h."),
    click.option("--until", help="Start time before (exclusive): same forms as --since."),
    pipeline_option,
    click.option(
        "--account",
        "accounts",
        multiple=True,
        metavar="GLOB",
        help="Only accounts (ids) matching this glob (repeatable).",
    ),
    click.option(
        "--region",
        "regions",
        multiple=True,
        metavar="GLOB",
        help="Only regions matching this glob (repeatable).",
    ),
)

window_options = _stack(selection_options, deploy_stage_option)


price_options = _stack(
    click.option(
        "--prices",
        "prices_file",
        type=click.Path(dir_okay=False, path_type=Path),
        metavar="FILE",
        help="cost: a TOML file of prices replacing AWS's (other regions, later "
        "changes; queries/cost.py shows its keys).",
    ),
    click.option(
        "--price-per-minute",
        type=DecimalParam(),
        metavar="USD",
        help="cost: the V2 price per action execution minute in every region "
        "(default: AWS's, 0.002).",
    ),
)


def prices_of(con, query, prices_file: Path | None, per_minute) -> dict | None:
    """The prices to bind for `query` (None: AWS's); a price option given to a query that
    takes none is an error, not ignored."""
    from queries import cost

    if "prices" not in query.parameters:
        given = "--prices" if prices_file is not None else "--price-per-minute"
        if prices_file is not None or per_minute is not None:
            raise UserError(f"{given} applies to the cost query only, not {query.name}")
        return None
    if prices_file is None and per_minute is None:
        return None
    return cost.prices(con, prices_file, per_minute)


def connect_for(query, data, use_cache, accounts, regions):
    """A connection for `query`: narrowed to the accounts and regions, unless the query
    selects them itself (queries.SELF_SELECTING)."""
    import queries

    if queries.SELF_SELECTING & query.parameters:
        return queries.connect(data, cache=use_cache)
    return queries.connect(data, cache=use_cache, accounts=accounts, regions=regions)


def window_of(since: str | None, until: str | None) -> dict:
    now = datetime.now(UTC)
    window = {
        "since": parse_bound(since, now, name="--since") if since else None,
        "until": parse_bound(until, now, name="--until") if until else None,
        "now": now,
    }
    for warning in window_warnings(window["since"], window["until"], now):
        click.echo(f"Warning: {warning}", err=True)
    return window


def as_of(con, window: dict) -> tuple[datetime, str]:
    """The time the queries measure ages and open windows to (their `$now`): the recorded
    clock (queries.recorded_clock), else --until, else the wall clock; and the line that
    says so under a table."""
    import queries
    from queries.output import humane_seconds

    wall, until = window["now"], window["until"]
    recorded = queries.recorded_clock(con, until)
    if recorded is None:
        at, why = (until, "--until") if until else (wall, "now; no collection run is recorded")
    elif until is not None and recorded == until:
        at, why = until, "--until"
    else:
        at, why = recorded, "the last collection run"
        gap = humane_seconds(abs((wall - at).total_seconds()))
        why += f", {gap} ago" if at <= wall else f", {gap} from now"
    return at, f"(as of {at:%Y-%m-%d %H:%M} UTC: {why})"


@click.command("queries")
@data_option
def queries_cmd(data: DataRoot) -> None:
    """List the named queries and what they answer."""
    import queries  # DuckDB, pyarrow: imported when the command runs (options.py)

    named = queries.named_queries()
    pad = max(map(len, named))
    for q in named.values():
        click.echo(f"{q.name.ljust(pad)}  {q.description}")


# Written out rather than built from queries.DEFAULT_LIMITS, which would import DuckDB
# to draw --help (tests/test_tables.py keeps the two equal).
LIMIT_HELP = (
    "Show the first N rows only (0: all). Default: all; the newest 50 recent-failures, "
    "50 collection-health (the queries that list what happened: a year of them is "
    "millions of rows)."
)


@click.command("query")
@click.argument("name")
@window_options
@click.option("--limit", type=click.IntRange(min=0), metavar="N", help=LIMIT_HELP)
@click.option(
    "--by",
    type=click.Choice(BY),
    help="cost: one row per pipeline (the default), stage, action, account or month.",
)
@price_options
@output_options
@cache_option
@data_option
def query_cmd(
    name: str,
    since: str | None,
    until: str | None,
    pipelines: tuple[str, ...],
    accounts: tuple[str, ...],
    regions: tuple[str, ...],
    deploy_stages: tuple[str, ...],
    limit: int | None,
    by: str | None,
    prices_file: Path | None,
    price_per_minute,
    fmt: str,
    output: Path | None,
    use_cache: bool | None,
    data: DataRoot,
) -> None:
    """Run the named query NAME (see `cprec queries`).

    Ages, and windows left open by --until, are measured to the recorded clock (the
    start of the last collection run), not the wall clock: a table says it on its last
    line. A selection that holds nothing (a --pipeline, --account or --region matching no
    recorded one, a window without recorded executions) prints a hint on stderr; the
    exit code stays 0."""
    import queries
    from queries.output import write_result
    from recorder.reader import data_errors

    query = queries.get_query(name)  # an unknown name fails before anything is read
    if by is not None and "by" not in query.parameters:
        raise UserError(f"--by applies to the cost query only, not {name}")
    window = window_of(since, until)
    warned = bool(window_warnings(window["since"], window["until"], window["now"]))
    con = connect_for(query, data, use_cache, accounts, regions)
    prices = prices_of(con, query, prices_file, price_per_minute)
    window["now"], footer = as_of(con, window)
    if "now" not in query.parameters:
        footer = None  # its figures do not depend on a clock
    default = limit is None and query.default_limit is not None
    limit = query.default_limit if limit is None else (limit or None)
    with data_errors(data):  # the rows are read as they are written
        result = queries.run_query(
            con, name, pipelines=pipelines, deploy_stages=deploy_stages, data_root=data,
            accounts=accounts, regions=regions, by=by or "pipeline", prices=prices,
            stream=limit is None, limit=None if limit is None else limit + 1, **window,
        )  # fmt: skip
        more = limit is not None and result.num_rows > limit
        if more:
            result = result.slice(0, limit)
        rows = write_result(result, fmt, output, footer=footer)
    if more and default:
        click.echo(
            f"Note: the first {limit} rows of more (--limit N shows N, --limit 0 all)", err=True
        )
    if not rows and not warned:
        plain = queries.connect(data, cache=use_cache)  # not narrowed: what could match
        hint = queries.empty_hint(
            plain, name, pipelines=pipelines, accounts=accounts, regions=regions,
            since=window["since"], until=window["until"],
        )  # fmt: skip
        if hint:
            click.echo(f"Hint: {hint}", err=True)


@click.command("sql")
@click.argument("sql")
@output_options
@cache_option
@data_option
def sql_cmd(
    sql: str, fmt: str, output: Path | None, use_cache: bool | None, data: DataRoot
) -> None:
    """Run SQL over the views (`-` reads it from standard input).

    Several statements separated by `;` run in order, and every one that returns rows is
    shown (with --format table or markdown; a CSV, JSON or Parquet result holds one, so
    there such SQL is refused before it runs). Every error of the SQL is one line
    `Error: SQL: ...`."""
    import queries
    from queries.output import write_results

    if sql == "-":
        sql = sys.stdin.read()
    con = queries.connect(data, cache=use_cache)
    one = fmt not in ("table", "markdown")
    results = queries.run_sql(con, sql, data_root=data, one_result=one)
    if results:
        write_results(results, fmt, output)


EXPORT_FORMATS = ("csv", "json", "jsonl", "parquet")


@click.group(
    "export",
    cls=CommandGroup,
    invoke_without_command=True,
    short_help="Write every named query to files; `export otel`: traces.",
)
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory for a <query>.<format> file per query and index.csv (created if "
    "missing). Required unless a command follows.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(EXPORT_FORMATS),
    default="csv",
    show_default=True,
    help="Format of the query files, at full precision (seconds as seconds).",
)
@window_options
@price_options
@cache_option
@data_option
@click.pass_context
def export_cmd(
    ctx: click.Context,
    directory: Path | None,
    fmt: str,
    since: str | None,
    until: str | None,
    pipelines: tuple[str, ...],
    accounts: tuple[str, ...],
    regions: tuple[str, ...],
    deploy_stages: tuple[str, ...],
    prices_file: Path | None,
    price_per_minute,
    use_cache: bool | None,
    data: DataRoot,
) -> None:
    """Write every named query to a file, with an index.csv.

    index.csv lists each query's name, file, rows and description. The files hold every
    row: the queries that list what happened (recent-failures, collection-health) are
    not cut to their newest rows, as `cprec query` cuts them. Ages are measured to the
    recorded clock, as `cprec query` measures them.

    `cprec export otel` sends every recorded execution as an OpenTelemetry trace instead
    (`cprec export otel --help`)."""
    if ctx.invoked_subcommand is not None:  # `export otel`: its own options say what to do
        given = [
            p.opts[0] for p in ctx.command.params
            if ctx.get_parameter_source(p.name) is click.core.ParameterSource.COMMANDLINE
        ]  # fmt: skip
        if given:  # never silently ignored
            raise click.UsageError(
                f"{given[0]} before `{ctx.invoked_subcommand}` is an option of `export --dir`; "
                f"give `{ctx.invoked_subcommand}`'s options after it",
                ctx,
            )
        return
    if directory is None:
        raise click.UsageError("Missing option '--dir'.", ctx)
    import queries
    from queries.output import write_result
    from recorder.reader import data_errors

    window = window_of(since, until)
    con = queries.connect(data, cache=use_cache, accounts=accounts, regions=regions)
    whole = queries.connect(data, cache=use_cache) if accounts or regions else con
    prices = prices_of(whole, queries.get_query("cost"), prices_file, price_per_minute)
    window["now"], _ = as_of(con, window)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create {directory}: {exc.strerror}") from None
    index = []
    for q in queries.named_queries().values():
        file = f"{q.name}.{fmt}"
        with data_errors(data):  # the rows are read as they are written
            result = queries.run_query(
                whole if queries.SELF_SELECTING & q.parameters else con, q.name,
                pipelines=pipelines, deploy_stages=deploy_stages, accounts=accounts,
                regions=regions, prices=prices, data_root=data, stream=True, **window,
            )  # fmt: skip
            rows = write_result(result, fmt, directory / file)
        index.append({"name": q.name, "file": file, "rows": rows, "description": q.description})
    with open(directory / "index.csv", "w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, ["name", "file", "rows", "description"], lineterminator="\n")
        writer.writeheader()
        writer.writerows(index)
    click.echo(f"wrote {len(index)} queries and index.csv to {directory}", err=True)


@click.command("db", short_help="Write a DuckDB database file of views or tables.")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@data_option
@click.option(
    "--materialize",
    is_flag=True,
    help="Write the deduplicated and derived tables as tables holding their rows (from "
    "the cache when it is current, else the Parquet files), not views: fast to open, a "
    "copy as of now (run again to bring it up to date). Written whole, then renamed into "
    "place.",
)
def db_cmd(path: Path, data: DataRoot, materialize: bool) -> None:
    """Write a DuckDB database file whose views read the Parquet files (or, with
    --materialize, whose tables hold the rows)."""
    import queries

    source = queries.write_database(path, data, materialize=materialize)
    if materialize:
        click.echo(
            f"wrote {path}: tables copied from {source} of {data} (open with `duckdb {path}`; "
            "run again to bring it up to date)",
            err=True,
        )
        return
    click.echo(
        f"wrote {path}: views over {data.resolve()} (open with `duckdb {path}`; "
        "run again after a table gets its first files)",
        err=True,
    )


COMMANDS: list[Callable] = [queries_cmd, query_cmd, sql_cmd, export_cmd, db_cmd]
