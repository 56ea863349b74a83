"""Errors a user can cause: one clear line, non-zero exit, no traceback."""

import click

# Exit codes, documented in the README.
EXIT_OK = 0
EXIT_PARTIAL = 1  # some pipelines failed, the rest were written
EXIT_USAGE = 2  # bad flag, bad value, bad SQL, unreadable file, no region/credentials
EXIT_LOCKED = 75  # another collector holds the data root's lock (EX_TEMPFAIL)


class UserError(click.ClickException):
    """A mistake in the input: printed as `Error: <message>`, exit 2."""

    exit_code = EXIT_USAGE


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (DuckDB's run to many lines)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
