"""`cprec --help` and `--version` start in a tenth of a second: building the commands
imports none of the heavy libraries (a second between them), which each command imports
when it runs. Checked by what is imported, not by a clock: a test machine's load would
make a time limit flaky, and one heavy import at module level is what slows start-up."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta

import click
import pytest
from click.testing import CliRunner

from recorder.cli import main

HEAVY = (
    "pyarrow", "duckdb", "boto3", "botocore", "bokeh", "jinja2", "numpy", "opentelemetry",
    "google.protobuf",
)  # fmt: skip

# Runs `cprec ARGS` in a fresh interpreter, then prints its exit code and the heavy
# modules it imported as the last line.
PROBE = f"""
import json, sys
from recorder.cli import main
try:
    main(sys.argv[1:], prog_name="cprec")
    code = 0
except SystemExit as e:
    code = e.code
heavy = sorted(m for m in {HEAVY!r} if m in sys.modules)
print("\\n" + json.dumps({{"exit": code, "heavy": heavy}}))
"""


def probe(*args: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


# Every command but two: `compact --help` lists the tables (recorder.schemas: pyarrow) and
# its default grace period (recorder.compact), `athena-ddl --help` the default database
# (recorder.athena: pyarrow); they import those when their own help is shown.
LIGHT = sorted(set(main.commands) - {"compact", "athena-ddl"})


@pytest.mark.parametrize(
    "args",
    [[], ["--help"], ["-h"], ["--version"], *([c, "--help"] for c in LIGHT),
     ["export", "otel", "--help"]],
    ids=str,
)  # fmt: skip
def test_help_and_version_import_no_heavy_module(args):
    assert probe(*args) == {"exit": 0, "heavy": []}


def test_the_probe_sees_a_command_import_what_it_needs(tmp_path):
    # `cprec queries` lists the named queries: the query layer, DuckDB and pyarrow load
    found = probe("queries", "--data", str(tmp_path))
    assert found["exit"] == 0
    assert {"duckdb", "pyarrow"} <= set(found["heavy"])


def test_every_command_help_lists_all_its_options():
    subcommands = [
        ([name, sub], command)
        for name, group in main.commands.items()
        if isinstance(group, click.Group)
        for sub, command in group.commands.items()
    ]
    for name, command in [([n], c) for n, c in main.commands.items()] + subcommands:
        result = CliRunner().invoke(main, [*name, "--help"])
        assert result.exit_code == 0, (name, result.output)
        for param in command.params:
            if isinstance(param, click.Option) and not param.hidden:
                for opt in [*param.opts, *param.secondary_opts]:
                    assert opt in result.output, (name, opt)


def test_options_read_from_slow_modules_show_their_values():
    from recorder.athena import DEFAULT_DATABASE
    from recorder.compact import GRACE
    from recorder.schemas import TABLES

    compact = " ".join(CliRunner().invoke(main, ["compact", "--help"]).output.split())
    assert f"--table [{'|'.join(TABLES)}]" in compact
    grace = int(GRACE / timedelta(minutes=1))
    assert f"outside cprec (DuckDB CLI, Athena). [default: {grace}; x>=0]" in compact
    athena = " ".join(CliRunner().invoke(main, ["athena-ddl", "--help"]).output.split())
    assert f"to create the tables and views in. [default: {DEFAULT_DATABASE}]" in athena


def test_a_lazy_choice_still_refuses_an_unknown_table(tmp_path):
    from recorder.schemas import TABLES

    result = CliRunner().invoke(main, ["compact", "--table", "nosuch", "--data", str(tmp_path)])
    assert result.exit_code == 2
    listed = ", ".join(f"'{t}'" for t in TABLES)
    assert result.stderr.splitlines()[-1] == (
        f"Error: Invalid value for '--table': 'nosuch' is not one of {listed}."
    )


def test_defaults_read_from_slow_modules_reach_the_command(tmp_path, monkeypatch):
    import recorder.athena
    import recorder.compact

    seen = {}

    def compact(root, **kwargs):
        seen["grace"] = kwargs["grace"]
        raise SystemExit(0)

    def target(location, database, data):
        seen["database"] = database
        raise SystemExit(0)

    monkeypatch.setattr(recorder.compact, "compact", compact)
    monkeypatch.setattr(recorder.athena, "target", target)
    runner = CliRunner()
    assert runner.invoke(main, ["compact", "--data", str(tmp_path)]).exit_code == 0
    argv = ["athena-ddl", "--location", "s3://b/p", "--data", str(tmp_path)]
    assert runner.invoke(main, argv).exit_code == 0
    assert seen == {"grace": timedelta(hours=1), "database": "cprec"}
