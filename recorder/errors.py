"""Errors a user can cause, each carrying its exit code.

Library code raises these; only the CLI (recorder/cli.py) turns one into a single
`Error: ...` line and its exit code, never a traceback.
"""

# Exit codes, documented in the README.
EXIT_OK = 0
EXIT_PARTIAL = 1  # some pipelines failed, the rest were written
EXIT_USAGE = 2  # bad flag, bad value, bad SQL, unreadable file, no region/credentials
EXIT_FIRING = 3  # cprec watch: alerts fire
EXIT_LOCKED = 75  # another collector holds the data root's lock (EX_TEMPFAIL)
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT, as shells report it)


class CprecError(Exception):
    """An error meant for the user: one line, `exit_code`."""

    exit_code = EXIT_USAGE

    @property
    def message(self) -> str:
        return str(self)


class UserError(CprecError):
    """A mistake in the input or the data root: exit 2."""


class WriteError(CprecError):
    """Writing failed (a full disk, an I/O error); nothing half-written is kept: exit 1."""

    exit_code = EXIT_PARTIAL


class LockedError(CprecError):
    """Another collector (or compaction) holds the lock: exit 75."""

    exit_code = EXIT_LOCKED


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (DuckDB's run to many lines)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
