"""The `cprec` command line, on top of everything: a thin layer over the collector,
the storage layer and the query layer. Only here do errors become exit codes."""

from __future__ import annotations

import os

import click

from recorder import __version__
from recorder.errors import EXIT_INTERRUPTED, CprecError


class _Cli(click.Group):
    """Turns the library's errors into one `Error: ...` line and their exit code."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except CprecError as e:
            raise _one_line(e.message, e.exit_code) from None
        except KeyboardInterrupt:
            raise _one_line("interrupted; nothing half-done was kept", EXIT_INTERRUPTED) from None
        except RuntimeError as e:  # DuckDB reports Ctrl-C in a query as this
            if "interrupted" not in str(e).lower():
                raise
            raise _one_line("interrupted; nothing half-done was kept", EXIT_INTERRUPTED) from None


def _one_line(message: str, code: int) -> click.ClickException:
    exc = click.ClickException(message)
    exc.exit_code = code
    return exc


@click.group(
    cls=_Cli,
    invoke_without_command=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(__version__, prog_name="cprec")
@click.option(
    "--memory-limit",
    metavar="SIZE",
    envvar="CPREC_MEMORY_LIMIT",
    help="What DuckDB may hold in memory before it spills to disk, e.g. 512MB or 2GB "
    "(default 256MB, 1GB over the Parquet files; env CPREC_MEMORY_LIMIT).",
)
@click.pass_context
def main(ctx: click.Context, memory_limit: str | None) -> None:
    """Record AWS CodePipeline history as Parquet and query it with DuckDB."""
    if memory_limit:  # every connection reads it (recorder/views.py configure)
        before = os.environ.get("CPREC_MEMORY_LIMIT")
        os.environ["CPREC_MEMORY_LIMIT"] = memory_limit
        # as it was once the command ends (a caller in the same process: CliRunner)
        ctx.call_on_close(lambda: _restore("CPREC_MEMORY_LIMIT", before))
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())


def _restore(name: str, value: str | None) -> None:
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value


def _register() -> None:
    from recorder.cli import athena, collect, demo, maintain, otel, query, report, simulate, watch

    for command in [
        simulate.simulate,
        collect.collect_command,
        *query.COMMANDS,
        report.report_cmd,
        *maintain.COMMANDS,
        demo.demo,
        *athena.COMMANDS,
        watch.watch_cmd,
    ]:
        main.add_command(command)
    query.export_cmd.add_command(otel.otel_cmd)


_register()
