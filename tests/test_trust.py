"""No wrong answer after a crash, an interruption, a concurrent writer or a bad file.

One test per case of the issue "Trustworthy answers", each against a clean
reference: kills happen at named points (recorder/testhooks.py, the store's pause
before a rename), never after a sleep.
"""

from __future__ import annotations

import gc
import os
import shutil
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import SIM_NOW as NOW
from conftest import build_scenario, pending, run, views_read_cache, wait_for, write_foreign_file

import queries
from recorder import compact as compact_mod
from recorder.cache import build, cache_path
from recorder.cli import main
from recorder.compact import compact
from recorder.root import DataRoot
from recorder.schemas import TABLES
from recorder.simulator import Account, SimulatorServer
from recorder.store import PAUSE_ENV
from recorder.testhooks import KILL_ENV

IGNORED = ("run_id", "recorded_at")  # differ between two collections of the same history


def rows(root: Path, table: str, *, cache: bool | None = None) -> list[tuple]:
    """Every row of a view, sorted, without the columns that name the run."""
    con = queries.connect(root, cache=cache)
    try:
        cols = [c for c in con.sql(f"SELECT * FROM {table}").columns if c not in IGNORED]
        got = con.sql(f"SELECT {', '.join(cols)} FROM {table} ORDER BY ALL").to_arrow_table()
        return [tuple(r.values()) for r in got.to_pylist()]
    finally:
        con.close()


def reads_cache(root: Path) -> bool:
    con = queries.connect(root)
    try:
        return views_read_cache(con)
    finally:
        con.close()


def cprec(*args: str, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "recorder.cli", *args],
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def collector(root: Path, srv, env: dict) -> subprocess.Popen:
    return cprec("collect", "--data", str(root), "--endpoint-url", srv.endpoint_url,
                 "--quiet", "--workers", "1", env=env)  # fmt: skip


def one_line_error(result, code: int = 2) -> str:
    assert result.exit_code == code, result.output
    err = result.output
    assert err.startswith("Error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    return err


@pytest.fixture
def acct():
    return Account(pipelines=3, days=4, seed=7, now=NOW)


# 1 ----------------------------------------------------------------------------------


def test_an_interrupted_first_cache_build_is_never_used(tmp_path, acct):
    root, clean = tmp_path / "data", tmp_path / "clean"
    with SimulatorServer(acct) as srv:
        assert run(root, srv, acct).exit_code == 0
        shutil.copytree(root, clean)
        reference = rows(root, "executions", cache=False)
        proc = cprec("cache", "--data", str(root), env={KILL_ENV: "cache-load:3"})
        proc.communicate(timeout=60)
        assert proc.returncode == -signal.SIGKILL
        assert cache_path(root).exists()  # a file whose build never committed

        assert not reads_cache(root)
        assert rows(root, "executions") == reference
        err = one_line_error(
            CliRunner().invoke(
                main, ["query", "pipeline-summary", "--data", str(root), "--cache"]
            )  # fmt: skip
        )
        assert "stopped before finishing" in err

        second = run(root, srv, acct)  # watermarks from the files, not an empty cache
        expected = run(clean, srv, acct)  # the same run where no cache was ever tried
    assert second.exit_code == 0
    assert second.api_calls == expected.api_calls
    assert second.rows_written == expected.rows_written
    assert reads_cache(root)  # the collector completed the build
    assert rows(root, "executions", cache=True) == reference


# 2 ----------------------------------------------------------------------------------


def test_a_killed_collector_counts_as_dead_even_while_a_zombie(tmp_path, acct):
    with SimulatorServer(acct) as srv:
        assert run(tmp_path, srv, acct).exit_code == 0
        build(tmp_path)
        last_completed = rows(tmp_path, "executions", cache=True)
        acct.advance(minutes=600)

        proc = collector(tmp_path, srv, {PAUSE_ENV: "4:60"})
        try:
            wait_for(lambda: pending(tmp_path))  # three new files published, paused
            # A writer is alive: the cache answers, as the last completed state.
            assert reads_cache(tmp_path)
            assert rows(tmp_path, "executions") == last_completed
            proc.send_signal(signal.SIGKILL)
            os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)  # dead, not reaped
            os.kill(proc.pid, 0)  # a zombie: a pid check would call it alive
            assert not reads_cache(tmp_path)
            assert rows(tmp_path, "executions") == rows(tmp_path, "executions", cache=False)
        finally:
            proc.kill()
            proc.communicate()

        assert run(tmp_path, srv, acct).exit_code == 0
    assert reads_cache(tmp_path)
    for table in ("executions", "action_executions", "stage_states", "stage_runs"):
        assert rows(tmp_path, table, cache=True) == rows(tmp_path, table, cache=False), table


# 3 ----------------------------------------------------------------------------------


def test_cache_beside_a_collector_waits_for_it(tmp_path, acct):
    with SimulatorServer(acct) as srv:
        proc = collector(tmp_path, srv, {PAUSE_ENV: "6:60"})  # its first run
        try:
            wait_for(lambda: pending(tmp_path))
            err = one_line_error(CliRunner().invoke(main, ["cache", "--data", str(tmp_path)]), 75)
            assert "holds" in err
            assert not cache_path(tmp_path).exists()
        finally:
            proc.kill()
            proc.communicate()
        built = CliRunner().invoke(main, ["cache", "--data", str(tmp_path)])
        assert built.exit_code == 0, built.output
        assert run(tmp_path, srv, acct).exit_code == 0
    for table in TABLES:
        assert rows(tmp_path, table, cache=True) == rows(tmp_path, table, cache=False), table


# 4 ----------------------------------------------------------------------------------


def test_compaction_never_deletes_a_file_a_reader_listed(tmp_path, acct, monkeypatch):
    monkeypatch.setattr(compact_mod, "READER_PATIENCE_S", 0.05)
    with SimulatorServer(acct) as srv:
        assert run(tmp_path, srv, acct).exit_code == 0
        acct.advance(minutes=240)
        assert run(tmp_path, srv, acct).exit_code == 0
    reader = queries.connect(tmp_path, cache=False)  # lists every file now

    def durations(con) -> list[tuple]:  # means to 9 places: a sum in another order
        got = queries.run_query(con, "stage-durations", now=NOW).to_pylist()
        return [tuple(round(v, 9) if isinstance(v, float) else v for v in r.values()) for r in got]

    before = durations(reader)

    today = (NOW + timedelta(days=1)).date()
    first = compact(tmp_path, min_age_days=0, today=today, grace=timedelta(0))
    assert first.partitions > 0 and first.removed == []  # a reader is open
    assert first.waiting == first.files_before
    assert durations(reader) == before
    # raw.* meanwhile holds the merged rows beside their inputs; the views do not change
    raw = reader.execute("SELECT count(*) FROM raw.executions").fetchone()[0]
    assert raw > len(rows(tmp_path, "executions", cache=False))

    reader.close()
    del reader
    gc.collect()  # the connection's read lock goes with it
    second = compact(tmp_path, min_age_days=0, today=today, grace=timedelta(0))
    assert (second.partitions, len(second.removed), second.waiting) == (0, first.files_before, 0)
    con = queries.connect(tmp_path, cache=False)
    assert durations(con) == before


# 5 ----------------------------------------------------------------------------------


@pytest.mark.parametrize("region", ["", "US-EAST-1", "not a region", "us-east-1 "])
def test_a_region_that_is_not_one_is_refused(tmp_path, region):
    result = CliRunner().invoke(
        main,
        [
            "collect",
            "--data",
            str(tmp_path / "d"),
            "--region",
            region,
            "--endpoint-url",
            "http://127.0.0.1:9",
        ],  # fmt: skip
    )
    assert "is not an AWS region name" in one_line_error(result)
    assert not (tmp_path / "d").exists()


# 6 ----------------------------------------------------------------------------------


def test_a_pipeline_named_like_hives_null_partition_reads_back(tmp_path):
    names = ["__HIVE_DEFAULT_PARTITION__", "plain"]
    acct = Account(names=names, days=3, seed=3, now=NOW)
    with SimulatorServer(acct) as srv:
        assert run(tmp_path, srv, acct).exit_code == 0
        second = run(tmp_path, srv, acct)
    assert second.api_calls.total() == 1 + 1 + 2 * 2  # idle: nothing fetched again
    assert sum(second.rows_written.values()) == 0
    con = queries.connect(tmp_path, cache=False)
    assert con.execute("SELECT DISTINCT pipeline FROM executions ORDER BY 1").fetchall() == [
        ("__HIVE_DEFAULT_PARTITION__",),
        ("plain",),
    ]
    build(tmp_path)
    for table in ("executions", "stage_runs", "stage_states"):
        assert rows(tmp_path, table, cache=True) == rows(tmp_path, table, cache=False)


# 8 ----------------------------------------------------------------------------------


def test_a_file_with_a_conflicting_schema_is_refused_by_every_command(tmp_path, acct):
    with SimulatorServer(acct) as srv:
        assert run(tmp_path, srv, acct).exit_code == 0
        reference = rows(tmp_path, "executions", cache=False)
        foreign = write_foreign_file(tmp_path)
        d = ["--data", str(tmp_path)]
        for args in (
            ["sql", "SELECT count(*) FROM executions"],
            ["query", "pipeline-summary"],
            ["export", "--dir", str(tmp_path / "out")],
            ["db", str(tmp_path / "x.duckdb")],
            ["compact", "--min-age-days", "0"],
            ["cache"],
            ["collect", "--endpoint-url", srv.endpoint_url],
        ):
            err = one_line_error(CliRunner().invoke(main, [*args, *d]))
            assert str(foreign) in err and "execution_id is BIGINT" in err, args
        foreign.unlink()
        assert rows(tmp_path, "executions", cache=False) == reference


# 9 ----------------------------------------------------------------------------------


def test_readers_never_see_half_a_state_snapshot(tmp_path, acct):
    states = ("stage_states", "action_states", "condition_states")
    with SimulatorServer(acct) as srv:
        assert run(tmp_path, srv, acct).exit_code == 0
        before = {t: rows(tmp_path, t, cache=False) for t in states}
        acct.advance(minutes=600)
        proc = collector(tmp_path, srv, {KILL_ENV: "publish:stage_states:1"})
        proc.communicate(timeout=60)
        assert proc.returncode == -signal.SIGKILL
    con = queries.connect(tmp_path, cache=False)
    raw = con.execute("SELECT count(*) FROM raw.action_states").fetchone()[0]
    assert raw > len(before["action_states"])  # half a snapshot is on disk
    assert {t: rows(tmp_path, t, cache=False) for t in states} == before


# 10 ---------------------------------------------------------------------------------


def test_sql_cannot_write_to_the_cache(tmp_path, acct):
    with SimulatorServer(acct) as srv:
        assert run(tmp_path, srv, acct).exit_code == 0
    build(tmp_path)
    reference = rows(tmp_path, "executions", cache=True)
    path = str(cache_path(tmp_path).resolve())
    for sql in (
        f"ATTACH '{path}' AS w; DELETE FROM w.cache.executions",
        "DELETE FROM cache.executions",
        "DROP TABLE cache.version",
    ):
        result = CliRunner().invoke(main, ["sql", sql, "--data", str(tmp_path)])
        assert "read-only" in one_line_error(result), sql
    assert rows(tmp_path, "executions", cache=True) == reference


# 11 ---------------------------------------------------------------------------------


@pytest.mark.parametrize("elsewhere", [False, True], ids=["in-root", "cache-dir"])
def test_a_failed_rebuild_leaves_the_cache_it_would_replace(tmp_path, elsewhere):
    root = build_scenario(tmp_path / "data")
    where = ["--data", str(root)] + (["--cache-dir", str(tmp_path / "c")] if elsewhere else [])
    built = CliRunner().invoke(main, ["cache", *where])
    assert built.exit_code == 0, built.output
    data = DataRoot.of(root, cache_dir=tmp_path / "c" if elsewhere else None)  # as --cache-dir
    path = cache_path(data)
    assert path.parent == (tmp_path / "c" if elsewhere else root / ".cache")
    before = path.read_bytes()
    reference = rows(data, "executions", cache=True)
    foreign = write_foreign_file(root)

    err = one_line_error(CliRunner().invoke(main, ["cache", "--rebuild", *where]))

    assert str(foreign) in err and "execution_id is BIGINT" in err
    assert sorted(p.name for p in path.parent.iterdir()) == ["cprec.duckdb"]  # no new file
    assert path.read_bytes() == before
    assert reads_cache(data)  # not marked stale: it holds what it held
    assert rows(data, "executions") == reference
