"""The `cprec` command line: a thin layer over fetch, store and query functions."""

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
    # Each area owns its commands; this file only wires them in.
    from recorder.simulator.command import simulate

    main.add_command(simulate)

    from recorder.collect import collect_command

    main.add_command(collect_command, "collect")

    from recorder.query_commands import COMMANDS as query_commands

    for command in query_commands:
        main.add_command(command)

    from recorder.maintenance_commands import COMMANDS as maintenance_commands

    for command in maintenance_commands:
        main.add_command(command)

    from recorder.demo import demo

    main.add_command(demo)


_register()


if __name__ == "__main__":
    main()
