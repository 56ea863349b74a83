"""`cprec demo` end to end (simulator + collector + queries), and every named query on its data."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

import queries
from queries.output import render
from recorder import cache
from recorder.cli import main
from recorder.cli.demo import MARKER, claim_root
from recorder.errors import UserError


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


def test_demo_leaves_a_current_query_cache(demo_run):
    # (before `con` below holds the cache open: a demo run again in this process could
    # not refresh it then, which test_demo_twice_adds_nothing_twice does)
    root, result = demo_run
    assert result.exit_code == 0, result.output
    con, why = cache.open_reader(root)
    assert why is None and con is not None
    con.close()
    # the query after the demo reads the cache, and it answers what the files say
    argv = ["query", "stage-durations", "--format", "csv", "--data", str(root)]
    cached = CliRunner().invoke(main, [*argv, "--cache"])
    files = CliRunner().invoke(main, [*argv, "--no-cache"])
    assert cached.exit_code == 0 and files.exit_code == 0, (cached.output, files.output)
    assert cached.stdout == files.stdout
    assert cached.stdout.startswith("pipeline,stage,runs,p50_s,p90_s,p95_s,max_s,mean_s\n")
    names = {p.name.removeprefix("pipeline=") for p in (root / "executions").iterdir()}
    assert len(names) == 3
    assert {line.split(",")[0] for line in cached.stdout.splitlines()[1:]} == names


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


def test_demo_names_the_history_it_recorded(demo_run):
    root, _ = demo_run
    assert json.loads((root / MARKER).read_text()) == {
        "seed": 7, "pipelines": 3, "days": 6, "now": "2026-03-02T00:00:00Z",
    }  # fmt: skip


def listing(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.mark.parametrize(
    ("flags", "theirs"),
    [
        (["--now", "2026-03-03"], "seed 7, 3 pipelines, 6 days up to 2026-03-03T00:00:00Z"),
        (["--seed", "8"], "seed 8, 3 pipelines, 6 days up to 2026-03-02T00:00:00Z"),
        (["--pipelines", "4"], "seed 7, 4 pipelines, 6 days up to 2026-03-02T00:00:00Z"),
    ],
)
def test_demo_refuses_to_mix_another_simulated_history(demo_run, flags, theirs):
    root, _ = demo_run
    before = listing(root)
    args = {"--pipelines": "3", "--days": "6", "--seed": "7", "--now": NOW, "--data": str(root)}
    args.update(zip(flags[::2], flags[1::2], strict=True))
    result = CliRunner().invoke(main, ["demo", *[x for kv in args.items() for x in kv]])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == (
        f"Error: {root} holds another simulated history (seed 7, 3 pipelines, 6 days up to "
        f"2026-03-02T00:00:00Z) than this demo's ({theirs}): pass another --data, or "
        f"delete {root} first\n"
    )
    assert listing(root) == before


def test_demo_refuses_a_data_root_holding_other_data(tmp_path):
    (tmp_path / "executions").mkdir()
    args = ["demo", "--pipelines", "1", "--days", "1", "--data", str(tmp_path)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2
    assert result.stderr == (
        f"Error: {tmp_path} holds recorded history that is not a demo's: pass another "
        "--data (the demo records into an empty directory or its own)\n"
    )
    assert listing(tmp_path) == ["executions"]


def test_claim_root_takes_an_empty_root_and_its_own_history_only(tmp_path):
    history = {"seed": 7, "pipelines": 3, "days": 6, "now": "2026-03-02T00:00:00Z"}
    claim_root(tmp_path, history)
    claim_root(tmp_path, dict(history))  # the same history again: fine
    assert listing(tmp_path) == [MARKER]
    (tmp_path / MARKER).write_text("{not json")
    with pytest.raises(UserError) as refused:
        claim_root(tmp_path, history)
    assert refused.value.message == (
        f"{tmp_path} holds another simulated history (an unreadable {MARKER}) than this "
        "demo's (seed 7, 3 pipelines, 6 days up to 2026-03-02T00:00:00Z): pass another "
        f"--data, or delete {tmp_path} first"
    )
