"""The `cprec` command line, on top of everything: a thin layer over the collector,
the storage layer and the query layer. Only here do errors become exit codes."""

from __future__ import annotations

import click

from recorder import __version__
from recorder.errors import CprecError


class _Cli(click.Group):
    """Turns the library's errors into one `Error: ...` line and their exit code."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except CprecError as e:
            exc = click.ClickException(e.message)
            exc.exit_code = e.exit_code
            raise exc from None


@click.group(cls=_Cli, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="cprec")
def main() -> None:
    """Record AWS CodePipeline history as Parquet and query it with DuckDB."""


def _register() -> None:
    from recorder.cli import collect, demo, maintain, query, simulate

    for command in [
        simulate.simulate,
        collect.collect_command,
        *query.COMMANDS,
        *maintain.COMMANDS,
        demo.demo,
    ]:
        main.add_command(command)


_register()
