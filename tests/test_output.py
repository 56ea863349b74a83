"""Every output format keeps columns by position, writes intervals one way, and gives
the same bytes for the same data."""

from __future__ import annotations

import json

import duckdb
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from conftest import build_scenario

from recorder.cli import main

DUPLICATES = "SELECT 'Failed' AS status, 'Succeeded' AS status, 3 AS n, 4 AS status"
INTERVALS = (
    "SELECT INTERVAL '602.991 seconds' AS took, INTERVAL '1 month 2 days 3 seconds' AS odd, "
    "INTERVAL '0 seconds' AS zero, CAST(NULL AS INTERVAL) AS none, "
    "TIMESTAMPTZ '2026-01-05 10:10:00+00' - TIMESTAMPTZ '2026-01-05 10:00:00.5+00' AS diff"
)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return build_scenario(tmp_path_factory.mktemp("output"))


def cprec(data, *args: str) -> str:
    result = CliRunner().invoke(main, [*args, "--data", str(data)])
    assert result.exit_code == 0, result.output
    return result.stdout


def test_duplicate_names_keep_every_column_in_every_format(data, tmp_path):
    assert cprec(data, "sql", DUPLICATES, "--format", "csv") == (
        "status,status,n,status\nFailed,Succeeded,3,4\n"
    )
    expected = {"status": "Failed", "status_2": "Succeeded", "n": 3, "status_3": 4}
    assert json.loads(cprec(data, "sql", DUPLICATES, "--format", "json")) == [expected]
    assert cprec(data, "sql", DUPLICATES, "--format", "jsonl") == json.dumps(expected) + "\n"
    assert cprec(data, "sql", DUPLICATES, "--format", "markdown") == (
        "| status | status | n | status |\n|---|---|---|---|\n| Failed | Succeeded | 3 | 4 |\n"
    )
    assert cprec(data, "sql", DUPLICATES) == (
        "status  status     n  status\n------  ---------  -  ------\nFailed  Succeeded  3       4\n"
    )
    out = tmp_path / "dup.parquet"
    cprec(data, "sql", DUPLICATES, "--format", "parquet", "-o", str(out))
    assert pq.read_table(out).to_pylist() == [expected]


def test_a_name_already_taken_is_skipped_when_suffixing(data):
    sql = "SELECT 1 AS a, 2 AS a_2, 3 AS a"
    assert json.loads(cprec(data, "sql", sql, "--format", "json")) == [{"a": 1, "a_2": 2, "a_3": 3}]


def test_intervals_are_iso_8601_durations_in_every_format(data, tmp_path):
    # 602.991 s stays seconds (no month/day part); 1 month 2 days 3 s keeps its parts;
    # 10:10:00 - 10:00:00.5 = 599.5 s
    values = ["PT602.991S", "P1M2DT3S", "PT0S", None, "PT599.5S"]
    assert cprec(data, "sql", INTERVALS, "--format", "csv") == (
        "took,odd,zero,none,diff\nPT602.991S,P1M2DT3S,PT0S,,PT599.5S\n"
    )
    names = ["took", "odd", "zero", "none", "diff"]
    assert json.loads(cprec(data, "sql", INTERVALS, "--format", "json")) == [
        dict(zip(names, values, strict=True))
    ]
    assert "| PT602.991S | P1M2DT3S | PT0S |  | PT599.5S |" in cprec(
        data, "sql", INTERVALS, "--format", "markdown"
    )
    assert "PT602.991S  P1M2DT3S  PT0S" in cprec(data, "sql", INTERVALS)
    out = tmp_path / "intervals.parquet"
    cprec(data, "sql", INTERVALS, "--format", "parquet", "-o", str(out))
    assert pq.read_table(out).to_pylist() == [dict(zip(names, values, strict=True))]


@pytest.mark.parametrize("fmt", ["table", "csv", "json", "jsonl", "markdown", "parquet"])
def test_the_same_query_gives_the_same_bytes(data, tmp_path, fmt):
    outputs = []
    for n in range(2):
        for cache in ("--no-cache", "--cache") if n == 0 else ("--cache", "--no-cache"):
            if cache == "--cache":
                CliRunner().invoke(main, ["cache", "--data", str(data)])
            out = tmp_path / f"{n}{cache}.{fmt}"
            args = ["query", "stage-durations", "--format", fmt, "-o", str(out), cache]
            cprec(data, *args)
            outputs.append(out.read_bytes())
    assert len(set(outputs)) == 1


def test_means_do_not_depend_on_the_order_rows_are_summed():
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    from queries.relations import catalog

    con.execute(catalog().macros)
    forward = "SELECT {f}(x) FROM (VALUES (1e11), (0.000001), (-1e11)) t(x)"
    backward = "SELECT {f}(x) FROM (VALUES (-1e11), (1e11), (0.000001)) t(x)"
    # As doubles the sum depends on the order: (1e11 + 1e-6) - 1e11 loses the 1e-6.
    plain = [con.execute(q.format(f="avg") + "").fetchone()[0] for q in (forward, backward)]
    assert plain[0] != plain[1]
    # Summed as DECIMAL(18, 6): exactly 0.000001 / 3 either way.
    exact = [con.execute(q.format(f="mean_exact")).fetchone()[0] for q in (forward, backward)]
    assert exact[0] == exact[1] == 0.000001 / 3


def test_decimals_keep_every_digit_and_nan_is_not_null(data):
    sql = (
        "SELECT 1234567890.123456789::DECIMAL(20,9) AS d, 0.5::DECIMAL(4,1) AS h, "
        "'nan'::DOUBLE AS n, NULL::DOUBLE AS z"
    )
    assert cprec(data, "sql", sql, "--format", "csv") == "d,h,n,z\n1234567890.123456789,0.5,nan,\n"
    # JSON has no NaN (null); a decimal a float cannot hold exactly is its digits as text
    assert json.loads(cprec(data, "sql", sql, "--format", "json")) == [
        {"d": "1234567890.123456789", "h": 0.5, "n": None, "z": None}
    ]


@pytest.mark.parametrize(
    ("sql", "fmt"),
    [("SELECT 'infinity'::TIMESTAMP AS t", "csv"), ("SELECT [INTERVAL 1 DAY] AS l", "parquet")],
)
def test_values_a_format_cannot_hold_are_one_line(data, tmp_path, sql, fmt):
    result = CliRunner().invoke(
        main, ["sql", sql, "--format", fmt, "-o", str(tmp_path / "x"), "--data", str(data)]
    )
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert result.stderr.startswith(f"Error: cannot write this result as {fmt}: ")
