"""A cache refreshed run by run holds exactly what a cache built from scratch holds.

Over randomised simulated histories (several seeds): collections that move the
account's clock on, collectors killed at a random publish, compaction, a cache whose
derived rows another version of cprec computed (a version change), and a pipeline
deleted. After every step that leaves a completed state, the root's own cache (kept up
to date by the incremental refreshes) is compared with a cache of the same root built
from nothing in another directory, table by table and row for row: every table, every
derived relation, every stored statistic, and the list of loaded files.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest
from conftest import SIM_NOW as NOW
from conftest import run

from recorder import cache as cache_mod
from recorder.collect import FLUSH_ROWS_ENV
from recorder.compact import compact
from recorder.root import DataRoot
from recorder.simulator import Account, SimulatorServer
from recorder.testhooks import KILL_ENV

# a cache's bookkeeping that differs between two builds of the same rows
NOT_COMPARED = {"version", "parts"}

CHILD = """
import sys
from datetime import datetime
from recorder.collect import collect
from recorder.config import CollectConfig
r = collect(sys.argv[1], CollectConfig(endpoint_url=sys.argv[2],
                                       now=datetime.fromisoformat(sys.argv[3]), build_cache=True))
sys.exit(r.exit_code)
"""


def killed_collect(root: Path, srv, acct, nth: int) -> int:
    """A collector in a child process that kills itself at its `nth` publish of
    executions (or completes when it publishes fewer)."""
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(root), srv.endpoint_url, acct.now.isoformat()],
        env={**os.environ, KILL_ENV: f"publish:executions:{nth}", FLUSH_ROWS_ENV: "40"},
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    return proc.returncode


def cache_tables(path: Path) -> dict[str, list[tuple]]:
    """Every table of the cache file's `cache` schema, sorted."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        names = [
            r[0]
            for r in con.execute(
                "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'cache' "
                "ORDER BY table_name"
            ).fetchall()
            if r[0] not in NOT_COMPARED
        ]
        return {n: con.execute(f"SELECT * FROM cache.{n} ORDER BY ALL").fetchall() for n in names}
    finally:
        con.close()


def assert_incremental_equals_rebuilt(root: Path, scratch: Path, where: str) -> None:
    incremental = cache_tables(cache_mod.cache_path(root))
    elsewhere = DataRoot.of(root, cache_dir=scratch)  # the same root, its cache in scratch
    cache_mod.build(elsewhere)
    rebuilt = cache_tables(cache_mod.cache_path(elsewhere))
    assert sorted(incremental) == sorted(rebuilt), where
    assert len(rebuilt) > 20, where  # the tables, derived relations and statistics
    for name, rows in rebuilt.items():
        assert incremental[name] == rows, (where, name)


@pytest.mark.parametrize("seed", [3, 11, 29])
def test_a_cache_refreshed_run_by_run_equals_one_built_from_scratch(tmp_path, seed, monkeypatch):
    # a whole recompute takes the pipelines and names one at a time, the executions 7 at
    # a time (at 500 x 365: 50, and 100,000): the caches built from scratch here prove
    # the chunks add up to the whole
    monkeypatch.setattr(cache_mod, "KEY_CHUNK", 1)
    monkeypatch.setattr(cache_mod, "EXECUTION_CHUNK", 7)
    rng = random.Random(seed)
    acct = Account(pipelines=rng.randint(2, 4), days=rng.randint(2, 4), seed=seed, now=NOW)
    root = tmp_path / "data"
    steps = ["collect", *rng.sample(["kill", "compact", "version", "delete", "collect"], 5)]
    steps.append("collect")
    with SimulatorServer(acct) as srv:
        for i, step in enumerate(steps):
            where = f"seed {seed}, step {i}: {step}"
            if step == "collect":
                assert run(root, srv, acct, build_cache=True).exit_code == 0, where
            elif step == "kill":
                assert killed_collect(root, srv, acct, rng.randint(1, 3)) in (0, -signal.SIGKILL)
                # the next run repairs what the killed one left: it walks the whole tree
                assert run(root, srv, acct, build_cache=True).exit_code == 0, where
            elif step == "compact":
                compact(root, min_age_days=0, today=acct.now.date() + timedelta(days=2),
                        grace=timedelta(0), now=acct.now + timedelta(days=2))  # fmt: skip
            elif step == "version":
                # another version's deployment rule: it and what reads it are recomputed
                with duckdb.connect(str(cache_mod.cache_path(root))) as other:
                    other.execute("UPDATE cache.parts SET digest = 'other' "
                                  "WHERE part = 'deploy_attempts'")  # fmt: skip
                    other.execute("UPDATE cache.version SET stamp = 'other'")
                assert run(root, srv, acct, build_cache=True).exit_code == 0, where
            elif step == "delete":
                acct.delete_pipeline(acct.pipeline_names()[0])
                assert run(root, srv, acct, build_cache=True).exit_code == 0, where
            assert_incremental_equals_rebuilt(root, tmp_path / f"scratch{i}", where)
            acct.advance(minutes=rng.randint(20, 900))


# the delivery scenario's shop executions (tests/delivery_scenario.py) as they arrive: in
# time order, then with S3 re-recorded late and R1 (the rollback of S5) arriving after S6
ARRIVALS = {
    "in time order": ["S1", "S2", "S3", "S4", "S5", "R1", "S6", "S7", "S8", "S9"],
    "late": ["S1", "S2", "S4", "S5", "S6", "R1", "S7", "S3", "S9", "S8"],
}


@pytest.mark.parametrize("order", list(ARRIVALS))
def test_deployments_refreshed_one_execution_at_a_time_equal_a_build(tmp_path, monkeypatch, order):
    """deploy_attempts is refreshed from its horizon (recorder/derive.py): each refresh
    recomputes a pipeline's attempts only from the last deployment before what arrived.
    R1 rolls S5 back, so its arrival changes S5's row although S5 is older; S3 arriving
    after S5 is placed before it. After every arrival the cache equals one built from
    scratch, and the horizon bounded the pipeline every time (no whole recompute)."""
    from delivery_scenario import Pipeline, build_delivery_scenario

    from recorder import derive
    from recorder.store import write_rows

    built: list[Pipeline] = []
    monkeypatch.setattr(Pipeline, "write", lambda self, root: built.append(self))
    build_delivery_scenario(tmp_path / "unused")
    shop = next(p for p in built if p.name == "shop")
    root = tmp_path / "data"
    definitions = Pipeline("shop")
    monkeypatch.undo()  # Pipeline.write writes again
    definitions.write(root)  # the definitions only: no execution yet
    cache_mod.build(root)

    bounded: list[int] = []
    horizon_sql = derive.horizon_sql

    def spy(*args, **kw):
        bounded.append(1)
        return horizon_sql(*args, **kw)

    monkeypatch.setattr(derive, "horizon_sql", spy)
    for i, eid in enumerate(ARRIVALS[order]):
        written = [
            path
            for table, rows in shop.rows.items()
            for path in write_rows(
                root, table, [r for r in rows if r["execution_id"] == eid],
                pipeline="shop", run_id=f"run-{i}",
            )
        ]  # fmt: skip
        cache_mod.refresh(root, written=written)
        assert_incremental_equals_rebuilt(root, tmp_path / f"scratch{i}", f"{order}: {eid}")
    assert len(bounded) == len(ARRIVALS[order])
    con = duckdb.connect(str(cache_mod.cache_path(root)), read_only=True)
    # S5 (deployed 06:00) is rolled back at R1's start, 07:00, whichever arrived first
    assert con.execute(
        "SELECT execution_id, rolled_back_at FROM cache.deploy_attempts "
        "WHERE rolled_back_at IS NOT NULL"
    ).fetchall() == [("S5", datetime(2026, 1, 13, 7, tzinfo=UTC))]
