"""What a person reads: terminal tables that never cut a name and write durations as a
person does, the clock the figures are measured to, --account / --region / --limit, the
hints when a selection holds nothing, and `cprec sql`'s statements and errors."""

from __future__ import annotations

import csv
import io
import json
import math
import re
from datetime import timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
from click.testing import CliRunner
from conftest import (
    ACCOUNT,
    REGION,
    SCENARIO_NOW,
    action_row,
    build_scenario,
    execution_row,
    query_rows,
    t,
)

import queries
from queries.output import humane_seconds, render, wrap_name
from recorder.cli import main
from recorder.store import write_rows

OTHER_ACCOUNT, OTHER_REGION = "222222222222", "eu-west-1"


def cprec(data: Path, *args: str, code: int = 0):
    result = CliRunner().invoke(main, [*args, "--data", str(data)])
    assert result.exit_code == code, result.output
    return result


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return build_scenario(tmp_path_factory.mktemp("tables"))


# --- durations as a person writes them ------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (0, "0.0s"),
        (0.04, "0.0s"),
        (0.05, "0.1s"),  # half up
        (8.44, "8.4s"),
        (59.94, "59.9s"),
        (59.95, "1m 0s"),  # 60.0s would be a minute written as seconds
        (60, "1m 0s"),
        (259.5, "4m 20s"),
        (3599.4, "59m 59s"),
        (3599.5, "1h 0m"),
        (3600, "1h 0m"),
        (86369, "23h 59m"),  # 1439.48 minutes
        (86370, "1d 0h"),  # 1439.5 minutes: a day
        (1381945.4, "16d 0h"),  # 383.87 hours
        (-260, "-4m 20s"),
        (-0.04, "0.0s"),
        (None, ""),
        (math.nan, "nan"),
    ],
)
def test_humane_seconds_at_each_boundary(seconds, shown):
    assert humane_seconds(seconds) == shown


def test_a_wrapped_name_breaks_after_a_separator_and_joins_back():
    assert wrap_name("payments-feature-store-prod-us", 21) == ["payments-feature-", "store-prod-us"]
    assert wrap_name("orders.ledger-prod", 12) == ["orders.", "ledger-prod"]
    assert wrap_name("abcdefghijklmnop", 12) == ["abcdefghijkl", "mnop"]  # no separator
    assert wrap_name("web", 12) == ["web"]
    assert wrap_name("", 12) == [""]


LONG = "payments-feature-store-prod-us"
SECONDS = pa.table({
    "pipeline": [LONG, "web"],
    "stage": ["Build", "Deploy"],
    "runs": [172, 3],
    "failure_rate": [0.0872, 0.0],
    "p50_s": [1381945.4, 8.44],
    "max_s": [259.5, 3599.5],
})  # fmt: skip


def test_a_table_wraps_a_name_it_cannot_fit_and_writes_durations_humanely():
    # natural width: 30 + 6 + 4 + 12 + 6 + 6 + 5 separators of 2 = 74
    assert render(SECONDS, "table", width=74) == (
        "pipeline                        stage   runs  failure_rate   p50_s   max_s\n"
        "------------------------------  ------  ----  ------------  ------  ------\n"
        "payments-feature-store-prod-us  Build    172         0.087  16d 0h  4m 20s\n"
        "web                             Deploy     3         0.000    8.4s   1h 0m\n"
    )
    # 73: one space between columns (69 wide)
    assert render(SECONDS, "table", width=73).splitlines()[2] == (
        "payments-feature-store-prod-us Build   172        0.087 16d 0h 4m 20s"
    )
    # 68: one space is still one too wide, so the name wraps after a `-`, never cut, in
    # the grid with two spaces (24 = 68 - 44 for the rest)
    assert render(SECONDS, "table", width=68) == (
        "pipeline                  stage   runs  failure_rate   p50_s   max_s\n"
        "------------------------  ------  ----  ------------  ------  ------\n"
        "payments-feature-store-   Build    172         0.087  16d 0h  4m 20s\n"
        "prod-us\n"
        "web                       Deploy     3         0.000    8.4s   1h 0m\n"
    )
    # 50: not even at 12 wide would the name fit: records, the name whole
    assert "pipeline      payments-feature-store-prod-us" in render(SECONDS, "table", width=50)
    # exact seconds everywhere else
    assert render(SECONDS, "csv").splitlines()[1] == f"{LONG},Build,172,0.0872,1381945.4,259.5"


def test_records_wrap_a_long_name_and_cut_only_free_text():
    table = pa.table({
        "pipeline": ["identity.feature-store-prod-eu-with-a-rather-long-name-x"],
        "started": [3],
        "error_message": ["Error while executing command: npm test. Reason: exit status 1."],
    })  # fmt: skip
    # no grid fits 30 columns (12 + 7 + 12 + 4 spaces): records; labels are cut at a third
    assert render(table, "table", width=30) == (
        "-[ row 1 ]--------------------\n"
        "pipeline    identity.feature-\n"
        "            store-prod-eu-\n"
        "            with-a-rather-\n"
        "            long-name-x\n"
        "started     3\n"
        "error_mes…  Error while execu…\n"
    )


def test_no_name_of_any_query_is_cut_at_80_columns(tmp_path):
    root = build_scenario(tmp_path)
    row = execution_row("L1", "Failed", t("15:00:00"), t("17:00:00"))
    write_rows(root, "executions", [row], pipeline=LONG, run_id="r")
    write_rows(root, "action_executions", [
        action_row("L1", 1, "Build", "Compile", "Failed", t("15:00:00"), t("17:00:00"),
                   error=("JobFailed", "exit status 2 " * 10)),
    ], pipeline=LONG, run_id="r")  # fmt: skip
    for name in queries.named_queries():
        text = cprec(root, "query", name).stdout
        assert max(map(len, text.splitlines())) <= 80, (name, text)
        if "pipeline" in queries.get_query(name).parameters and name != "current-state":
            # whole, or wrapped into lines that join back to it
            joined = re.sub(r"-\n *", "-", text)
            assert LONG in joined or "payments-feature-" in text, (name, text)
            assert "…" not in "".join(line for line in text.splitlines() if "payments" in line)


# --- the recorded clock ----------------------------------------------------------------


def test_current_state_measures_ages_to_the_last_collection_run(data):
    """The last run recorded (run-2) started 01-07 10:00: O1's approval, pending since
    08:05, is 1 h 55 min old then, whatever the wall clock says; checked_age_s is how far
    each pipeline's state is behind that run (run-2 failed on api only: 0 for both)."""
    lines = cprec(data, "query", "current-state", "--format", "csv").stdout.splitlines()
    got = [(r["pipeline"], r["kind"], r["age_s"], r["checked_age_s"])
           for r in csv.DictReader(lines)]  # fmt: skip
    assert got == [
        ("ops", "approval", "6900.0", "0.0"),
        ("ops", "running", "6900.0", "0.0"),
        ("web", "running", "158365.0", "0.0"),  # 01-05 14:00:35 -> 01-07 10:00
        ("web", "disabled", "176400.0", "0.0"),  # 01-05 09:00 -> 01-07 10:00
    ]
    table = cprec(data, "query", "current-state").stdout.splitlines()
    assert [line for line in table if line.startswith("age_s")] == [
        "age_s          1h 55m", "age_s          1h 55m", "age_s          1d 20h",
        "age_s          2d 1h",
    ]  # fmt: skip
    assert re.fullmatch(
        r"\(as of 2026-01-07 10:00 UTC: the last collection run, \d+d \d+h ago\)",
        table[-1],
    ), table[-1]


def test_until_before_the_last_run_is_the_clock(data):
    out = cprec(data, "query", "approval-waits", "--until", "2026-01-07T09:00:00Z").stdout
    assert out.splitlines()[-1] == "(as of 2026-01-07 09:00 UTC: --until)"
    lines = cprec(data, "query", "approval-waits", "--format", "csv", "--until",
                  "2026-01-07T09:00:00Z").stdout  # fmt: skip
    # O1's approval started 08:05: pending 55 min at 09:00; no footer in CSV
    ops = next(r for r in csv.DictReader(io.StringIO(lines)) if r["pipeline"] == "ops")
    assert ops["oldest_pending_s"] == "3300.0"


def test_a_query_that_reads_no_clock_has_no_footer(data):
    assert cprec(data, "query", "stage-durations").stdout.splitlines()[-1].startswith("web ")


# --- --account, --region, --limit -------------------------------------------------------


def other_account(root: Path) -> Path:
    """The scenario plus pipeline `web` in another account and region: X1 failed."""
    where = {"account_id": OTHER_ACCOUNT, "region": OTHER_REGION}
    start = t("10:00:00", 6)
    write_rows(root, "executions", [
        {**execution_row("X1", "Failed", start, start + timedelta(minutes=5)), **where},
    ], pipeline="web", run_id="x")  # fmt: skip
    write_rows(root, "action_executions", [
        {**action_row("X1", 1, "Build", "Compile", "Failed", start + timedelta(seconds=10),
                      start + timedelta(minutes=5), error=("Timeout", "took too long")),
         **where},
    ], pipeline="web", run_id="x")  # fmt: skip
    return root


@pytest.fixture(scope="module")
def two_accounts(tmp_path_factory) -> Path:
    return other_account(build_scenario(tmp_path_factory.mktemp("two")))


@pytest.mark.parametrize("cache", [False, True])
def test_an_account_filter_answers_as_that_account_alone(tmp_path, two_accounts, cache):
    """Every named query over --account 111111111111 equals the query over a root holding
    that account only: the tables, the relations (stored by the cache or not) and the
    statistics per pipeline name are all narrowed."""
    if cache:
        cprec(two_accounts, "cache")
    alone = queries.connect(build_scenario(tmp_path / "alone"))
    for accounts, regions in (([ACCOUNT], []), (["1*"], [REGION]), ([], ["us-*"])):
        con = queries.connect(two_accounts, cache=cache, accounts=accounts, regions=regions)
        for name in queries.named_queries():
            got = query_rows(con, name, now=SCENARIO_NOW)
            assert got == query_rows(alone, name, now=SCENARIO_NOW), (name, accounts, regions)


def test_region_filter_exact_rows(two_accounts):
    out = cprec(two_accounts, "query", "recent-failures", "--region", OTHER_REGION,
                "--format", "csv").stdout  # fmt: skip
    assert out.splitlines()[1:] == [
        f"web,2026-01-06T10:00:00Z,X1,Build,action,Compile,Timeout,took too long,"
        f"{OTHER_REGION},{OTHER_ACCOUNT}"
    ]
    both = cprec(two_accounts, "query", "recent-failures", "--format", "csv").stdout
    assert [r["execution_id"] for r in csv.DictReader(io.StringIO(both))] == ["X1", "E4"]
    summary = cprec(two_accounts, "query", "pipeline-summary", "--account", OTHER_ACCOUNT,
                    "--format", "json").stdout  # fmt: skip
    assert json.loads(summary) == [{
        "pipeline": "web", "executions": 1, "succeeded": 0, "failed": 1, "superseded": 0,
        "stopped": 0, "running": 0, "failure_rate": 1.0, "superseded_rate": 0.0,
        "p50_s": None, "p90_s": None,  # durations are over Succeeded executions
    }]  # fmt: skip


def test_limit_and_the_default_limit_of_recent_queries(data, monkeypatch):
    args = ["query", "collection-health", "--format", "csv"]
    runs = lambda out: [r["run_id"] for r in csv.DictReader(io.StringIO(out))]  # noqa: E731
    assert runs(cprec(data, *args).stdout) == ["run-2", "run-1"]  # newest first, under 50
    first = cprec(data, *args, "--limit", "1")
    assert runs(first.stdout) == ["run-2"] and first.stderr == ""  # asked: no note
    monkeypatch.setitem(queries.DEFAULT_LIMITS, "collection-health", 1)
    cut = cprec(data, *args)
    assert runs(cut.stdout) == ["run-2"]
    assert cut.stderr == "Note: the first 1 rows of more (--limit N shows N, --limit 0 all)\n"
    assert runs(cprec(data, *args, "--limit", "0").stdout) == ["run-2", "run-1"]
    limited = cprec(data, "query", "stage-durations", "--limit", "2", "--format", "csv").stdout
    assert [(r["pipeline"], r["stage"]) for r in csv.DictReader(io.StringIO(limited))] == [
        ("api", "Build"), ("ops", "Source"),
    ]  # fmt: skip
    assert "newest recent-failures 50" not in (help := cprec(data, "query", "--help").stdout)
    assert "the newest 50 recent-failures, 50 collection-health" in " ".join(help.split())


def test_the_limit_help_names_every_default_limit():
    # written out in recorder/cli/query.py so that --help imports no DuckDB
    from recorder.cli.query import LIMIT_HELP

    bounded = ", ".join(f"{n} {name}" for name, n in queries.DEFAULT_LIMITS.items())
    assert f"the newest {bounded} (" in LIMIT_HELP


def test_a_negative_limit_is_refused(data):
    result = cprec(data, "query", "trend", "--limit", "-1", code=2)
    assert "--limit" in result.stderr


# --- hints when a selection holds nothing ----------------------------------------------


@pytest.mark.parametrize(
    ("args", "hint"),
    [
        (["--pipeline", "nosuch"],
         "--pipeline nosuch matches none of the 3 recorded pipelines (api, ops, web)"),
        (["--account", "9*"],
         "--account 9* matches none of the 1 recorded accounts (111111111111)"),
        (["--region", "eu-*"], "--region eu-* matches none of the 1 recorded regions (us-east-1)"),
        (["--since", "2026-02-01"],
         "the window (--since 2026-02-01 00:00 UTC) holds no recorded execution: those "
         "recorded started from 2026-01-05 10:00 to 2026-01-13 09:00 UTC"),
        (["--since", "2026-01-08", "--until", "2026-01-10", "--pipeline", "[aw]*"],
         "the window (--since 2026-01-08 00:00 --until 2026-01-10 00:00 UTC) holds no "
         "recorded execution: those recorded started from 2026-01-05 10:00 to 2026-01-13 "
         "09:00 UTC"),
    ],
)  # fmt: skip
def test_an_empty_selection_says_why_on_stderr(data, args, hint):
    result = cprec(data, "query", "recent-failures", *args)
    assert result.stdout.endswith("(no rows)\n")
    assert result.stderr == f"Hint: {hint}\n"
    csv_out = cprec(data, "query", "recent-failures", "--format", "csv", *args)
    assert csv_out.stdout.count("\n") == 1 and csv_out.stderr == f"Hint: {hint}\n"


def test_filters_that_match_only_apart(two_accounts):
    result = cprec(two_accounts, "query", "pipeline-summary", "--account", OTHER_ACCOUNT,
                   "--pipeline", "api")  # fmt: skip
    assert result.stderr == (
        f"Hint: no recorded execution matches --account {OTHER_ACCOUNT} and --pipeline api "
        "together\n"
    )


def test_no_hint_when_the_answer_is_simply_none(data, tmp_path):
    assert cprec(data, "query", "regressions").stderr == ""  # there is data: none got slower
    empty = tmp_path / "empty"
    empty.mkdir()
    assert cprec(empty, "query", "trend").stderr == (
        "Hint: nothing is recorded here yet: `cprec collect` records an account\n"
    )
    future = cprec(data, "query", "trend", "--since", "2999-01-01")
    assert future.stderr.startswith("Warning: --since 2999-01-01 00:00 UTC is in the future")
    assert "Hint" not in future.stderr  # the warning said it


# --- cprec sql ---------------------------------------------------------------------------


def test_several_statements_show_every_result(data):
    out = cprec(data, "sql", "SELECT 1 AS a; CREATE TEMP TABLE x AS SELECT 2 AS b; FROM x").stdout
    assert out == "a\n-\n1\n\nb\n-\n2\n"
    md = cprec(data, "sql", "SELECT 1 AS a; SELECT 2 AS b", "--format", "markdown").stdout
    assert md == "| a |\n|---|\n| 1 |\n\n| b |\n|---|\n| 2 |\n"
    # a statement run alone shows what DuckDB answers, as before
    assert cprec(data, "sql", "SELECT 3 AS c", "--format", "csv").stdout == "c\n3\n"


def test_several_results_in_a_format_that_holds_one_are_refused(data, tmp_path):
    out = tmp_path / "x.csv"
    result = cprec(data, "sql", "SELECT 1; SELECT 2", "--format", "csv", "-o", str(out), code=2)
    assert result.stderr == (
        "Error: SQL: 2 of its statements return rows, and this format holds one result: "
        "run them one at a time, or show them all with --format table\n"
    )
    assert not out.exists()
    ok = cprec(data, "sql", "CREATE TEMP TABLE x AS SELECT 1 AS a; FROM x", "--format", "json")
    assert json.loads(ok.stdout) == [{"a": 1}]


@pytest.mark.parametrize("cache", [True, False])
def test_every_sql_error_is_worded_one_way(tmp_path, cache):
    root = build_scenario(tmp_path)
    if cache:
        cprec(root, "cache")
    errors = {
        "SELEC 1": 'Error: SQL: Parser Error: syntax error at or near "SELEC"',
        "SELECT * FROM nope": "Error: SQL: Catalog Error: Table with name nope does not exist!",
        "SELECT 1; SELECT * FROM nope":
            "Error: SQL: statement 2 of 2: Catalog Error: Table with name nope does not exist!",
        "   ": "Error: SQL: empty SQL, nothing to run",
    }  # fmt: skip
    if cache:  # the cache is read-only: worded as any other error of the SQL, with a hint
        errors["CREATE TABLE t AS SELECT 1"] = (
            'Error: SQL: Invalid Input Error: Cannot execute statement of type "CREATE" on '
            'database "cprec" which is attached in read-only mode! (the query cache is '
            "read-only: CREATE TEMP TABLE, or add --no-cache)"
        )
    for sql, line in errors.items():
        result = cprec(root, "sql", sql, "--cache" if cache else "--no-cache", code=2)
        assert result.stderr == line + "\n", sql


# --- the README's direct-DuckDB example ---------------------------------------------------


def readme_duckdb_example() -> str:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    part = readme.split("Read the files directly with DuckDB", 1)[1]
    return re.search(r"```sql\n(.*?)```", part, re.S).group(1)


def test_the_readme_duckdb_example_counts_each_recording_once(tmp_path):
    """On the scenario, with web's first Release also recorded while it ran (as a re-polled
    execution records its actions again): the README's SQL over the files counts 2
    attempts, as the deduplicated view does; the same SQL without its QUALIFY counts 3."""
    root = build_scenario(tmp_path)
    early = action_row("E1", 4, "Deploy", "Release", "InProgress", t("10:08:20"), t("10:09:00"),
                       recorded_at=t("10:09:00"))  # fmt: skip
    write_rows(root, "action_executions", [early], pipeline="web", run_id="run-0")
    sql = readme_duckdb_example()
    assert "QUALIFY" in sql and "'data/action_executions/" in sql
    sql = sql.replace("'data/", f"'{root}/").replace("DATE '2026-11-01'", "DATE '2026-01-01'")
    con = duckdb.connect()
    assert con.sql(sql).fetchall() == [("web", 2, 0)]
    raw = re.sub(r"QUALIFY.*?= 1\n", "", sql, flags=re.S)
    assert con.sql(raw).fetchall() == [("web", 3, 0)]  # what the example counted before
    views = queries.connect(root)
    assert views.sql(
        "SELECT pipeline, count(*), count(*) FILTER (WHERE status = 'Failed') "
        "FROM action_executions WHERE category = 'Deploy' GROUP BY pipeline"
    ).fetchall() == [("web", 2, 0)]
