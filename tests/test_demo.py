"""`cprec demo` end to end (simulator + collector + queries), and every named query on its data."""

from __future__ import annotations

import math
import re

import pytest
from click.testing import CliRunner

import queries
from queries.output import render
from recorder.cli import main


def _simulator_ready() -> bool:
    try:
        from recorder.simulator import Account, SimulatorServer  # noqa: F401
    except ImportError:
        return False
    return True


pytestmark = pytest.mark.skipif(not _simulator_ready(), reason="recorder.simulator is not in yet")

NOW = "2026-03-02"


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo") / "data"
    args = ["--pipelines", "3", "--days", "6", "--seed", "7", "--now", NOW, "--data", str(root)]
    result = CliRunner().invoke(main, ["demo", *args])
    return root, result


def test_demo_prints_progress_and_both_reports(demo_run):
    root, result = demo_run
    assert result.exit_code == 0, (result.output, result.exception)
    out = result.stdout
    assert "== pipeline-summary" in out and "== stage-durations" in out and "== dora" in out
    assert re.search(r"^pipeline +executions +succeeded +failed", out, re.M)
    assert "Collecting 6 days of history" in result.stderr
    assert "collecting again" in result.stderr and "rows written" in result.stderr
    # reports at their natural width: every pipeline name whole, in both reports
    names = {p.name.removeprefix("pipeline=") for p in (root / "executions").iterdir()}
    for report in out.split("\n== ")[1:]:
        assert all(f"\n{name} " in report for name in names), report
    assert (root / "executions").is_dir() and (root / "collection_runs").is_dir()


@pytest.fixture(scope="module")
def con(demo_run):
    root, result = demo_run
    assert result.exit_code == 0, result.output
    return queries.connect(root)


def as_dicts(con, name, **kw) -> list[dict]:
    return queries.run_query(con, name, **kw).to_pylist()


def test_every_named_query_runs_on_demo_data(con):
    for name in queries.named_queries():
        table = queries.run_query(con, name)
        for fmt in ("table", "csv", "json"):
            text = render(table, fmt)
            if fmt == "table":
                assert max(map(len, text.splitlines())) <= 80, name
    assert as_dicts(con, "pipeline-summary") and as_dicts(con, "stage-durations")
    assert len(as_dicts(con, "collection-health")) == 2


def test_demo_figures_are_consistent(con):
    for row in as_dicts(con, "stage-durations"):
        assert row["p50_s"] <= row["p90_s"] <= row["p95_s"] <= row["max_s"]
        assert 0 <= row["mean_s"] <= row["max_s"]
    for row in as_dicts(con, "failure-rates"):
        assert 0 <= row["succeeded"] + row["failed"] <= row["attempts"]
        # Failed / (Succeeded + Failed): an Abandoned attempt reached no outcome
        decided = row["succeeded"] + row["failed"]
        assert (
            math.isclose(row["failure_rate"], row["failed"] / decided)
            if decided
            else (row["failure_rate"] is None)
        )
    executions = dict(
        con.execute("SELECT pipeline, count(*) FROM executions GROUP BY 1").fetchall()
    )
    summary = as_dicts(con, "pipeline-summary")
    assert {r["pipeline"]: r["executions"] for r in summary} == executions
    # re-recorded executions count once: the view has one row per execution id
    dupes = con.execute(
        "SELECT count(*) FROM (SELECT pipeline, execution_id FROM executions "
        "GROUP BY ALL HAVING count(*) > 1)"
    ).fetchall()
    assert dupes == [(0,)]


def test_demo_twice_adds_nothing_twice(demo_run):
    root, _ = demo_run
    before = queries.run_query(queries.connect(root), "pipeline-summary").to_pylist()
    args = ["--pipelines", "3", "--days", "6", "--seed", "7", "--now", NOW, "--data", str(root)]
    assert CliRunner().invoke(main, ["demo", *args]).exit_code == 0
    after = queries.run_query(queries.connect(root), "pipeline-summary").to_pylist()
    assert [r["executions"] for r in after] == [r["executions"] for r in before]
