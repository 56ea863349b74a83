"""`cprec queries / query / sql / export / db` through click's CliRunner."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from conftest import action_row, build_scenario, execution_row, t, write_old_schema_files

import queries
from recorder.cli import main
from recorder.cli.demo import demo
from recorder.cli.query import COMMANDS
from recorder.store import write_rows

# The query commands on their own, so these tests do not depend on the rest of the CLI;
# test_registered_in_main checks the wiring.
cli = main
LONG = "identity.feature-store-prod-eu-with-a-rather-long-name"


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    root = build_scenario(tmp_path_factory.mktemp("cli"))
    start = t("15:00:00")
    row = execution_row("L1", "Failed", start, start + timedelta(hours=2))
    write_rows(root, "executions", [row], pipeline=LONG, run_id="r")
    message = "Error while executing command: npm test. Reason: exit status 1. " * 6
    write_rows(root, "action_executions", [
        action_row("L1", 1, "Build-and-unit-test-everything", "Compile", "Failed", start,
                start + timedelta(hours=2), error=("JobFailed", message)),
    ], pipeline=LONG, run_id="r")  # fmt: skip
    return root


def run(data: Path, *args: str, input: str | None = None):
    return CliRunner().invoke(cli, [*args, "--data", str(data)], input=input)


def assert_one_line_error(result, *needles: str) -> None:
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)  # not an uncaught exception
    err = result.stderr.strip()
    assert err.startswith("Error: ") and "\n" not in err, err
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in err


def test_help_of_every_command():
    for command in COMMANDS:
        result = CliRunner().invoke(cli, [command.name, "--help"])
        assert result.exit_code == 0, command.name
        assert command.help.splitlines()[0] in result.output
        assert "--data" in result.output


def test_demo_help():
    result = CliRunner().invoke(demo, ["--help"])
    assert result.exit_code == 0, result.output
    for option in ("--pipelines", "--days", "--seed", "--now", "--advance", "--data"):
        assert option in result.output


def test_registered_in_main():
    from recorder.cli import main

    for command in [*COMMANDS, demo]:
        assert main.commands[command.name] is command


def test_queries_lists_names_and_descriptions(data):
    result = run(data, "queries")
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert [line.split()[0] for line in lines] == list(queries.named_queries())
    assert "stage-durations" in result.output and "p50/p90/p95" in result.output


@pytest.mark.parametrize(
    ("name", "header"),
    [
        ("stage-durations", "pipeline,stage,runs,p50_s,p90_s,p95_s,max_s,mean_s"),
        ("failure-rates", "pipeline,stage,action,attempts,succeeded,failed,failure_rate"),
    ],
)
def test_csv_has_the_documented_header(data, name, header):
    result = run(data, "query", name, "--format", "csv", "--pipeline", "web")
    assert result.exit_code == 0, result.output
    reader = csv.DictReader(io.StringIO(result.stdout))
    assert reader.fieldnames == header.split(",")
    got = list(reader)
    assert len(got) == 3 if name == "stage-durations" else 4
    if name == "failure-rates":  # full precision in csv
        assert got[1] == {"pipeline": "web", "stage": "Build", "action": "Compile",
                          "attempts": "5", "succeeded": "3", "failed": "2",
                          "failure_rate": "0.4"}  # fmt: skip


def test_csv_keeps_full_precision_and_multiline_text(data, tmp_path):
    out = tmp_path / "sd.csv"
    result = run(data, "query", "stage-durations", "--format", "csv", "-o", str(out))
    assert result.exit_code == 0 and result.stdout == ""
    rows = list(csv.DictReader(out.open(newline="")))
    deploy = next(r for r in rows if r["pipeline"] == "web" and r["stage"] == "Deploy")
    assert float(deploy["mean_s"]) == pytest.approx(4240 / 3, abs=1e-9)
    failures = run(data, "query", "recent-failures", "--format", "csv", "--pipeline", "web")
    (row,) = csv.DictReader(io.StringIO(failures.stdout))
    assert row["error_message"] == "Tests failed:\n3 errors"
    assert row["start_time"] == "2026-01-05T13:30:00Z"


def test_json_and_jsonl(data):
    result = run(data, "query", "pipeline-summary", "--format", "json")
    assert result.exit_code == 0
    got = json.loads(result.stdout)
    assert got[0]["pipeline"] == "api" and got[0]["p50_s"] == 180.0
    assert {r["pipeline"] for r in got} == {"api", "ops", "web", LONG}
    lines = run(data, "query", "current-state", "--format", "jsonl").stdout.splitlines()
    states = [json.loads(line) for line in lines]
    assert len(states) == 4
    assert states[0]["since"] == "2026-01-07T08:05:00Z"  # ISO 8601


def test_markdown(data):
    result = run(data, "query", "trend", "--format", "markdown", "--pipeline", "api")
    assert result.stdout.splitlines() == [
        "| pipeline | week | executions | succeeded | failed | failure_rate | p50_s "
        "| deployments |",
        "|---|---|---|---|---|---|---|---|",
        "| api | 2026-01-05 | 1 | 1 | 0 | 0.0 | 120.0 | 0 |",
        "| api | 2026-01-12 | 1 | 1 | 0 | 0.0 | 240.0 | 0 |",
    ]


def test_parquet_needs_a_file(data, tmp_path):
    assert_one_line_error(run(data, "query", "trend", "--format", "parquet"), "-o")
    out = tmp_path / "trend.parquet"
    result = run(data, "query", "trend", "--format", "parquet", "-o", str(out))
    assert result.exit_code == 0
    table = pq.read_table(out)
    assert table.column_names == [
        "pipeline",
        "week",
        "executions",
        "succeeded",
        "failed",
        "failure_rate",
        "p50_s",
        "deployments",
    ]
    assert table.num_rows == 5


def test_every_table_fits_80_columns(data):
    for name in queries.named_queries():
        result = run(data, "query", name)
        assert result.exit_code == 0, (name, result.output)
        lines = result.stdout.splitlines()
        assert lines, name
        assert max(len(line) for line in lines) <= 80, (name, result.stdout)
    table = run(data, "query", "stage-durations").stdout
    # names are never cut: the long one wraps after its separators, in its own column
    lines = table.splitlines()
    width = len(lines[1].split("  ")[0])
    names: list[str] = []
    for cell in (line[:width].strip() for line in lines[2:]):
        if names and names[-1][-1] in "-._@/":
            names[-1] += cell
        elif cell:
            names.append(cell)
    assert LONG in names and "…" not in table
    # durations as a person writes them, rounded for display only: web Build's p95 is
    # 727.5 s, web Deploy's mean 1413.3 s
    assert "12m 8s" in table and "23m 33s" in table


def test_window_and_pipeline_options(data):
    window = ["--since", "2026-01-06", "--until", "2026-01-13T00:00:00Z"]
    pipelines = ["--pipeline", "a*", "--pipeline", "o?s"]
    result = run(data, "query", "pipeline-summary", "--format", "csv", *window, *pipelines)
    assert [r["pipeline"] for r in csv.DictReader(io.StringIO(result.stdout))] == ["api", "ops"]


def test_a_quote_in_pipeline_returns_no_rows(data):
    for pattern in ["web'", "'; DROP VIEW executions; --", '"']:
        result = run(data, "query", "pipeline-summary", "--pipeline", pattern, "--format", "csv")
        assert result.exit_code == 0, result.output
        assert result.stdout == (
            "pipeline,executions,succeeded,failed,superseded,stopped,running,failure_rate,"
            "superseded_rate,p50_s,p90_s\n"
        )


def test_unknown_query_lists_the_valid_ones(data):
    result = run(data, "query", "stage-duration")
    assert_one_line_error(result, "'stage-duration'", "stage-durations", "trend")


@pytest.mark.parametrize("option", ["--since", "--until"])
def test_bad_time_bound(data, option):
    assert_one_line_error(run(data, "query", "trend", option, "last tuesday"), option)


def test_sql(data):
    result = run(
        data, "sql", "SELECT count(*) AS n FROM stage_runs WHERE terminal", "--format", "csv"
    )
    assert result.stdout == "n\n16\n"
    stdin = run(data, "sql", "-", "--format", "json", input="SELECT 'a''b' AS s")
    assert json.loads(stdin.stdout) == [{"s": "a'b"}]


@pytest.mark.parametrize(
    ("sql", "needle"),
    [
        ("SELEC 1", "syntax error"),
        ("SELECT * FROM no_such_table", "no_such_table"),
        ("SELECT nope FROM executions", "nope"),
        ("   ", "empty SQL"),
    ],
)
def test_sql_errors(data, sql, needle):
    assert_one_line_error(run(data, "sql", sql), needle)


def test_corrupt_parquet_names_the_file(tmp_path):
    build_scenario(tmp_path)
    bad = tmp_path / "action_executions" / "pipeline=web" / "dt=2026-01-05" / "part-x.parquet"
    bad.write_bytes(b"PAR1 this is not a parquet file")
    reads = "SELECT count(*) FROM action_executions"
    for args in (["query", "stage-durations"], ["sql", reads], ["export", "--dir", "x"]):
        assert_one_line_error(run(tmp_path, *args), "part-x.parquet")
    # over the files, a statement reads only what it names: a file it does not read
    # cannot change its answer
    assert run(tmp_path, "sql", "SELECT 1 AS one", "--format", "csv").output == "one\n1\n"


def test_missing_data_root(tmp_path):
    assert_one_line_error(run(tmp_path / "nope", "query", "trend"), "nope")


def test_data_from_the_environment(data):
    result = CliRunner().invoke(cli, ["sql", "SELECT count(*) AS n FROM executions"],
                                env={"CPREC_DATA": str(data)})  # fmt: skip
    assert "9" in result.stdout


def test_every_query_on_empty_and_old_schema_roots(tmp_path):
    empty, old = tmp_path / "empty", tmp_path / "old"
    empty.mkdir()
    write_old_schema_files(old)
    for root in (empty, old):
        for name in queries.named_queries():
            for fmt in ("table", "csv", "json"):
                result = run(root, "query", name, "--format", fmt)
                assert result.exit_code == 0, (root, name, result.output)


def test_export(data, tmp_path):
    out = tmp_path / "reports"
    result = run(data, "export", "--dir", str(out), "--pipeline", "web")
    assert result.exit_code == 0, result.output
    index = list(csv.DictReader((out / "index.csv").open(newline="")))
    assert [r["name"] for r in index] == list(queries.named_queries())
    for entry in index:
        rows = list(csv.DictReader((out / entry["file"]).open(newline="")))
        assert len(rows) == int(entry["rows"])
    summary = list(csv.DictReader((out / "pipeline-summary.csv").open(newline="")))
    assert [r["pipeline"] for r in summary] == ["web"]


def test_db(data, tmp_path):
    path = tmp_path / "cprec.duckdb"
    result = run(data, "db", str(path))
    assert result.exit_code == 0, result.output
    with duckdb.connect(str(path), read_only=True) as db:
        assert db.execute("SELECT count(*) FROM executions").fetchall() == [(9,)]
        assert db.execute("SELECT count(*) FROM raw.executions").fetchall() == [(10,)]
    # twice is fine (views are replaced), and another file is never overwritten
    assert run(data, "db", str(path)).exit_code == 0
    other = tmp_path / "notes.txt"
    other.write_text("keep me")
    assert_one_line_error(run(data, "db", str(other)), "not a DuckDB database")
    assert other.read_text() == "keep me"
