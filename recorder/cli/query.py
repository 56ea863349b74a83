"""`cprec queries / query / sql / export / db`: the query layer on the command line."""

from __future__ import annotations

import csv
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from recorder.cli.options import _stack, cache_option, data_option, output_options
from recorder.errors import UserError
from recorder.timeparse import parse_bound, window_warnings

if TYPE_CHECKING:
    from recorder.root import DataRoot

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

window_options = _stack(
    click.option("--since", help="Start time on or after: YYYY-MM-DD, ISO time, or 30d / 12h."),
    click.option("--until", help="Start time before (exclusive): same forms as --since."),
    pipeline_option,
    deploy_stage_option,
)


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


@click.command("queries")
@data_option
def queries_cmd(data: DataRoot) -> None:
    """List the named queries and what they answer."""
    import queries  # DuckDB, pyarrow: imported when the command runs (options.py)

    named = queries.named_queries()
    pad = max(map(len, named))
    for q in named.values():
        click.echo(f"{q.name.ljust(pad)}  {q.description}")


@click.command("query")
@click.argument("name")
@window_options
@output_options
@cache_option
@data_option
def query_cmd(
    name: str,
    since: str | None,
    until: str | None,
    pipelines: tuple[str, ...],
    deploy_stages: tuple[str, ...],
    fmt: str,
    output: Path | None,
    use_cache: bool | None,
    data: DataRoot,
) -> None:
    """Run the named query NAME (see `cprec queries`)."""
    import queries
    from queries.output import write_result
    from recorder.reader import data_errors

    queries.get_query(name)  # an unknown name fails before anything is read
    window = window_of(since, until)
    con = queries.connect(data, cache=use_cache)
    with data_errors(data):  # the rows are read as they are written
        result = queries.run_query(
            con, name, pipelines=pipelines, deploy_stages=deploy_stages, data_root=data,
            stream=True, **window,
        )  # fmt: skip
        write_result(result, fmt, output)


@click.command("sql")
@click.argument("sql")
@output_options
@cache_option
@data_option
def sql_cmd(
    sql: str, fmt: str, output: Path | None, use_cache: bool | None, data: DataRoot
) -> None:
    """Run SQL over the views (`-` reads it from standard input)."""
    import queries
    from queries.output import write_result

    if sql == "-":
        sql = sys.stdin.read()
    con = queries.connect(data, cache=use_cache)
    result = queries.run_sql(con, sql, data_root=data)
    if result is not None:
        write_result(result, fmt, output)


@click.command("export")
@click.option(
    "--dir",
    "directory",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory for <query>.csv files and index.csv (created if missing).",
)
@window_options
@cache_option
@data_option
def export_cmd(
    directory: Path,
    since: str | None,
    until: str | None,
    pipelines: tuple[str, ...],
    deploy_stages: tuple[str, ...],
    use_cache: bool | None,
    data: DataRoot,
) -> None:
    """Write every named query as CSV, with an index.csv."""
    import queries
    from queries.output import write_result
    from recorder.reader import data_errors

    window = window_of(since, until)
    con = queries.connect(data, cache=use_cache)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create {directory}: {exc.strerror}") from None
    index = []
    for q in queries.named_queries().values():
        file = f"{q.name}.csv"
        with data_errors(data):  # the rows are read as they are written
            result = queries.run_query(
                con, q.name, pipelines=pipelines, deploy_stages=deploy_stages, data_root=data,
                stream=True, **window,
            )  # fmt: skip
            rows = write_result(result, "csv", directory / file)
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
