"""A collector run keeps an existing query cache current, or marks it stale if it cannot."""

from __future__ import annotations

import subprocess
import sys

from click.testing import CliRunner
from conftest import SIM_NOW as NOW
from conftest import run, views_read_cache

import queries
from recorder.cache import STALE_MARKER, WRITING_MARKER, cache_path, open_reader, refresh
from recorder.cli import main
from recorder.simulator import Account, SimulatorServer
from recorder.store import write_rows

HOLD = """
import sys, duckdb
con = duckdb.connect(sys.argv[1])
print("holding", flush=True)
sys.stdin.read()
"""


def is_usable(root) -> bool:
    con, _ = open_reader(root)
    if con is not None:
        con.close()
    return con is not None


def answers(root, *, cache: bool) -> dict[str, list[tuple]]:
    """Rows of a few queries, floats to 9 places: a mean summed in another order differs
    in the last bit."""
    con = queries.connect(root, cache=cache)
    names = ("stage-durations", "failure-rates", "pipeline-summary", "current-state")
    return {
        n: [
            tuple(round(v, 9) if isinstance(v, float) else v for v in r.values())
            for r in queries.run_query(con, n, now=NOW).to_pylist()
        ]
        for n in names
    }


def test_collect_refreshes_the_cache_with_the_files_it_wrote(tmp_path):
    acct = Account(pipelines=3, days=4, seed=11, now=NOW)
    with SimulatorServer(acct) as srv:
        assert run(tmp_path, srv, acct).exit_code == 0
        refresh(tmp_path)
        acct.advance(minutes=240)
        second = run(tmp_path, srv, acct)
    assert second.exit_code == 0
    assert second.rows_written["executions"] > 0  # the advance brought new executions
    assert is_usable(tmp_path)
    cached = answers(tmp_path, cache=True)
    assert cached == answers(tmp_path, cache=False)
    assert (
        sum(r[1] for r in cached["pipeline-summary"])  # (pipeline, executions, ...)
        == (
            queries.connect(tmp_path, cache=False)
            .execute("SELECT count(*) FROM executions")
            .fetchone()[0]
        )
    )


def test_collect_marks_a_busy_cache_stale_and_still_succeeds(tmp_path):
    acct = Account(pipelines=2, days=2, seed=11, now=NOW)
    with SimulatorServer(acct) as srv:
        assert run(tmp_path, srv, acct).exit_code == 0
        refresh(tmp_path)
        acct.advance(minutes=240)
        # Another process holding the cache read-write: the collector cannot open it.
        holder = subprocess.Popen(
            [sys.executable, "-c", HOLD, str(cache_path(tmp_path))],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert holder.stdout.readline() == "holding\n"
            result = run(tmp_path, srv, acct)
        finally:
            holder.communicate("")
    assert result.exit_code == 0
    assert (cache_path(tmp_path).parent / STALE_MARKER).exists()
    assert not is_usable(tmp_path)
    refresh(tmp_path)
    assert is_usable(tmp_path)
    assert answers(tmp_path, cache=True) == answers(tmp_path, cache=False)


def test_known_state_from_the_cache_fetches_exactly_what_the_files_would(tmp_path):
    with_cache, without = tmp_path / "with", tmp_path / "without"
    acct = Account(pipelines=3, days=4, seed=5, now=NOW)
    with SimulatorServer(acct) as srv:
        for root in (with_cache, without):
            assert run(root, srv, acct).exit_code == 0
        refresh(with_cache)
        acct.advance(minutes=90)
        a, b = run(with_cache, srv, acct), run(without, srv, acct)
    assert a.exit_code == b.exit_code == 0
    assert a.api_calls == b.api_calls
    assert a.rows_written == b.rows_written
    assert is_usable(with_cache)
    assert not (cache_path(with_cache).parent / WRITING_MARKER).exists()


def test_a_collector_that_died_leaves_the_cache_unused_until_a_run_refreshes_it(tmp_path):
    acct = Account(pipelines=2, days=2, seed=5, now=NOW)
    with SimulatorServer(acct) as srv:
        assert run(tmp_path, srv, acct).exit_code == 0
        refresh(tmp_path)
        marker = cache_path(tmp_path).parent / WRITING_MARKER
        marker.touch()  # a run that wrote files, then died (its flock died with it)
        stray = write_rows(tmp_path, "executions", [{
            "dt": NOW.date(), "account_id": "123456789012", "region": "us-east-1",
            "run_id": "dead", "recorded_at": NOW, "execution_id": "written-by-the-dead-run",
            "status": "Succeeded", "start_time": NOW,
        }], pipeline=acct.pipeline_names()[0], run_id="dead")  # fmt: skip
        assert not is_usable(tmp_path)
        assert not views_read_cache(queries.connect(tmp_path))

        assert run(tmp_path, srv, acct).exit_code == 0  # refreshes the whole tree

    assert not marker.exists() and is_usable(tmp_path)
    con = queries.connect(tmp_path)
    assert views_read_cache(con)
    ids = con.execute("SELECT execution_id FROM executions WHERE run_id = 'dead'").fetchall()
    assert ids == [("written-by-the-dead-run",)] and stray


def every_answer(root, *, cache: bool) -> dict[str, list[tuple]]:
    """Every named query's rows, floats to 9 places (a mean summed in another order)."""
    con = queries.connect(root, cache=cache)
    try:
        rows = {
            n: [
                tuple(round(v, 9) if isinstance(v, float) else v for v in r.values())
                for r in queries.run_query(con, n, now=NOW).to_pylist()
            ]
            for n in queries.named_queries()
        }
        assert views_read_cache(con) == cache
        return rows
    finally:
        con.close()


def cprec_collect(root, srv, *args: str):
    result = CliRunner().invoke(
        main,
        ["collect", "--data", str(root), "--endpoint-url", srv.endpoint_url,
         "--region", "us-east-1", *args],
        catch_exceptions=False,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return result.output


def test_a_first_cprec_collect_builds_the_cache_and_no_cache_builds_none(tmp_path):
    acct = Account(pipelines=3, days=4, seed=11, now=NOW)
    built, plain = tmp_path / "built", tmp_path / "plain"
    with SimulatorServer(acct) as srv:
        first = cprec_collect(built, srv)
        assert cprec_collect(plain, srv, "--no-cache")
        assert "built the query cache" in first
        assert is_usable(built)
        assert every_answer(built, cache=True) == every_answer(built, cache=False)
        assert not cache_path(plain).exists()

        acct.advance(minutes=240)
        again = cprec_collect(built, srv)  # refreshed with what it wrote, not rebuilt
        assert "built the query cache" not in again
        acct.advance(minutes=240)
        cprec_collect(built, srv, "--no-cache")  # an existing cache is still kept current
        cprec_collect(plain, srv, "--no-cache")
    assert is_usable(built)
    assert every_answer(built, cache=True) == every_answer(built, cache=False)
    assert not cache_path(plain).exists()
