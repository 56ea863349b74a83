"""`cprec report`: the delivery picture of a selection as one self-contained HTML file."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import click

from recorder.cli.options import cache_option, data_option
from recorder.cli.query import (
    deploy_stage_option,
    pipeline_option,
    price_options,
    prices_of,
    window_of,
)
from recorder.errors import UserError, WriteError

if TYPE_CHECKING:
    from recorder.root import DataRoot


@click.command("report")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default="report.html",
    show_default=True,
    help="The HTML file to write.",
)
@click.option(
    "--since",
    default="90d",
    show_default=True,
    help="Window start: YYYY-MM-DD, ISO time, or 30d / 12h.",
)
@click.option("--until", help="Window end (exclusive), same forms. Default: now.")
@pipeline_option
@deploy_stage_option
@price_options
@cache_option
@data_option
def report_cmd(
    output: Path,
    since: str,
    until: str | None,
    pipelines: tuple[str, ...],
    deploy_stages: tuple[str, ...],
    prices_file: Path | None,
    price_per_minute,
    use_cache: bool | None,
    data: DataRoot,
) -> None:
    """Write the delivery picture as one HTML page that opens offline.

    It opens offline in any browser: every script and style is inside it.
    """
    import queries  # DuckDB, pyarrow: imported when the command runs (options.py)
    from queries.report import Selection, build_report  # Bokeh: imported when used

    window = window_of(since, until)
    con = queries.connect(data, cache=use_cache)
    selection = Selection(window["since"], window["until"], window["now"], pipelines, deploy_stages)
    prices = prices_of(con, queries.get_query("cost"), prices_file, price_per_minute)
    html = build_report(con, selection, data_root=data, prices=prices)
    write_html(output, html)
    click.echo(f"wrote {output} ({len(html.encode()) / 1e6:.1f} MB)", err=True)


def write_html(path: Path, html: str) -> None:
    """Write `path` whole: a temporary file beside it, then a rename."""
    if not path.parent.is_dir():
        raise UserError(f"{path.parent} is not a directory")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(html)
        os.replace(tmp, path)
    except OSError as exc:
        raise WriteError(f"cannot write {path}: {exc.strerror}") from None
    finally:
        tmp.unlink(missing_ok=True)
