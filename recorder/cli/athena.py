"""`cprec athena-ddl`: the Athena tables and views over a data root copied to S3."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from recorder.cli.options import LazyDefault, data_option
from recorder.errors import EXIT_OK, EXIT_USAGE

if TYPE_CHECKING:
    from recorder.root import DataRoot


def _default_database() -> str:
    from recorder import athena  # pyarrow: imported when needed (options.py)

    return athena.DEFAULT_DATABASE


EXIT_CODES_HELP = f"""\b
Exit codes:
  {EXIT_OK}   the DDL was printed
  {EXIT_USAGE}   bad --location or --database, or no pipeline recorded under --data
"""


@click.command("athena-ddl", epilog=EXIT_CODES_HELP)
@click.option(
    "--location",
    required=True,
    metavar="S3_URI",
    help="Where the data root is in S3: s3://bucket/prefix (e.g. filled by "
    "`aws s3 sync DATA s3://bucket/prefix`).",
)
@click.option(
    "--database",
    cls=LazyDefault,
    default=_default_database,
    show_default=True,
    help="The Athena (Glue) database to create the tables and views in.",
)
@data_option
def athena_ddl(location: str, database: str, data: DataRoot) -> None:
    """Print the Athena DDL for the data root in S3.

    The data root given as --data (the local one, or the S3 location itself) lists
    the pipelines and days to project: re-run when pipelines are added.
    """
    from recorder import athena

    click.echo(athena.script(athena.target(location, database, data)), nl=False)


COMMANDS = [athena_ddl]
