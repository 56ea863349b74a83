"""Never lose history: what the collector counts as recorded is exactly what the root holds.

Each test compares a root with a clean collect of the same simulated account, table by
table and row for row (the columns that name the run aside): the two losses of the
issue "Never lose history", a run stopped by --max-duration, and the crash matrix, a
kill at every publish and every step of the cache refresh (slow: .ci/run runs it).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import boto3
import duckdb
import pytest
from conftest import SIM_NOW as NOW
from conftest import run

import queries
from recorder import cache as cache_mod
from recorder import head, reader
from recorder.collect import FLUSH_ROWS_ENV
from recorder.errors import UserError
from recorder.lock import LEASE_TTL_ENV
from recorder.root import DataRoot
from recorder.schemas import TABLES
from recorder.simulator import Account, Faults, SimulatorServer
from recorder.store import Batch
from recorder.testhooks import KILL_ENV, TRACE_ENV

IGNORED = ("run_id", "recorded_at")  # differ between two collections of the same history
COMPARED = [t for t in TABLES if t != "collection_runs"]  # one row per run: never equal

# The collector in a child process at the simulated account's clock (the CLI takes the
# wall clock for snapshots), so that a kill hook can end it.
CHILD = """
import sys
from datetime import datetime
from recorder.collect import collect
from recorder.config import CollectConfig
r = collect(sys.argv[1], CollectConfig(endpoint_url=sys.argv[2],
                                       now=datetime.fromisoformat(sys.argv[3]),
                                       workers=int(sys.argv[4]), include=tuple(sys.argv[5:]),
                                       build_cache=True))
sys.exit(r.exit_code)
"""


def child(root, srv, acct, env: dict, *, workers: int = 1, include: tuple = ()) -> int:
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(root), srv.endpoint_url, acct.now.isoformat(),
         str(workers), *include],
        env={**os.environ, **env}, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    return proc.returncode


def table_rows(con, table: str, where: str = "", params=None) -> list[tuple]:
    """Every row of a view, sorted, without the columns that name the run."""
    cols = [c for c in con.sql(f"SELECT * FROM {table} LIMIT 0").columns if c not in IGNORED]
    return con.execute(
        f"SELECT {', '.join(cols)} FROM {table} {where} ORDER BY ALL", params
    ).fetchall()


def every_table(root, *, cache: bool | None = False) -> dict[str, list[tuple]]:
    """Each compared table's rows, through one connection (binding the views over the
    files is most of a connection's cost)."""
    con = reader.connect(root, cache=cache, tables=tuple(COMPARED))
    try:
        return {t: table_rows(con, t) for t in COMPARED}
    finally:
        con.close()


def assert_equal(root, reference: dict, *, cache: bool | None = False, where: str = "") -> None:
    got = every_table(root, cache=cache)
    for table in COMPARED:
        assert got[table] == reference[table], (where, table)


# 1. A cache that is not the root's ------------------------------------------------


def test_a_cache_of_an_earlier_life_of_the_root_is_never_used_for_the_cursor(tmp_path):
    """The issue's first loss, on a directory root whose cache lives elsewhere
    (--cache-dir), as an S3 root's does: the root is recreated empty, the cache stays.
    On the code before the fix the next runs recorded only what the old cache did not
    know (the new executions' window): every table short, for good."""
    acct = Account(pipelines=3, days=4, seed=7, now=NOW)
    root = DataRoot.of(tmp_path / "root", cache_dir=tmp_path / "cache")
    clean = tmp_path / "clean"
    with SimulatorServer(acct) as srv:
        assert run(root, srv, acct, build_cache=True).exit_code == 0
        first = head.read(root)
        shutil.rmtree(root.path)  # the bucket recreated (or restored empty)
        again = run(root, srv, acct, build_cache=True)
        later = run(root, srv, acct, build_cache=True)
        assert run(clean, srv, acct).exit_code == 0
    assert again.exit_code == later.exit_code == 0
    # a new root: a new identity, and its first run backfilled everything
    assert head.read(root).root_id != first.root_id
    assert again.rows_written == run_counts(clean)
    reference = every_table(clean)
    assert_equal(root, reference)
    assert_equal(root, reference, cache=True)


def run_counts(root) -> dict[str, int]:
    """Rows per table in the root's files (every recording; one clean run: no repeats)."""
    con = queries.connect(root, cache=False)
    try:
        got = {t: con.execute(f"SELECT count(*) FROM raw.{t}").fetchall()[0][0] for t in COMPARED}
    finally:
        con.close()
    return {t: n for t, n in got.items() if n}


def collected_twice(tmp_path) -> tuple[Path, Path, Path]:
    """Root a collected twice (its cache built by the first run and refreshed by the
    second), a copy of a's cache as the first run left it, and root b collected once."""
    acct = Account(pipelines=2, days=2, seed=3, now=NOW)
    a, b, old = tmp_path / "a", tmp_path / "b", tmp_path / "old.duckdb"
    with SimulatorServer(acct) as srv:
        assert run(a, srv, acct, build_cache=True).exit_code == 0
        shutil.copy(cache_mod.cache_path(a), old)
        acct.advance(minutes=600)
        assert run(a, srv, acct).exit_code == 0
        assert run(b, srv, acct).exit_code == 0
    return a, b, old


def trusted(root: Path) -> bool:
    """Would a collector starting now read its cursor from the cache? (The head it marks
    is put back afterwards and its claim released, so the next question is asked of the
    same state.)"""
    saved = head.path(root).read_bytes()
    try:
        with cache_mod.writing(root, "probe") as claim:
            claim.release()
            return claim.current
    finally:
        head.path(root).write_bytes(saved)


def test_a_cache_of_another_root_or_an_older_copy_is_not_current(tmp_path):
    a, b, old = collected_twice(tmp_path)
    assert trusted(a)  # a's own cache, after a's last run
    assert not trusted(DataRoot.of(b, cache_dir=cache_mod.cache_dir(a)))  # a's cache given to b
    current = cache_mod.cache_path(a).read_bytes()
    shutil.copy(old, cache_mod.cache_path(a))
    assert not trusted(a)  # an older copy of a's cache put back
    cache_mod.cache_path(a).write_bytes(current)
    assert trusted(a)
    head.begin(a, "crashed")  # a collector that began and never ended
    assert not trusted(a)


def test_readers_never_answer_from_a_cache_that_is_not_the_roots_last_state(tmp_path):
    """An older copy of the cache put back (a backup restored), or another root's cache
    (--cache-dir), is not read: the files answer, or with --cache one line says why."""
    a, b, old = collected_twice(tmp_path)
    files = every_table(a)
    assert every_table(a, cache=True) == files  # its own cache: read, and whole
    shutil.copy(old, cache_mod.cache_path(a))
    with duckdb.connect(str(old), read_only=True) as con:  # it is behind the files
        cached = con.execute("SELECT count(*) FROM cache.executions").fetchall()[0][0]
    assert cached < len(files["executions"])
    assert every_table(a, cache=None) == files  # the files answer
    why = "it does not hold the root's last state (another root's, or an older copy)"
    with pytest.raises(UserError) as err:
        queries.connect(a, cache=True)
    assert err.value.message == f"cannot use the cache under {a}: {why}"
    with pytest.raises(UserError) as err:
        queries.connect(DataRoot.of(b, cache_dir=cache_mod.cache_dir(a)), cache=True)
    assert err.value.message == f"cannot use the cache under {b}: {why}"


def test_a_head_file_that_is_not_one_is_one_line(tmp_path):
    (tmp_path / ".head.json").write_text("not json")
    with pytest.raises(Exception) as err:
        head.read(tmp_path)
    assert (
        str(err.value)
        == f"{tmp_path}/.head.json is not a cprec head file; move it away and run again"
    )


# 2. A parent published before its children ----------------------------------------


def test_an_execution_killed_between_its_rows_loses_none_of_them(tmp_path):
    """The issue's reproduction of the second loss: a kill at a publish of
    execution_revisions left an execution recorded without its variables, for good (the
    29th at the issue's wall clock: 568 -> 566). At the simulated clock here the 36th to
    39th publish do it on the code before the fix: 496 execution_variables after two
    more runs, where a clean collect has 498."""
    acct = Account(pipelines=10, days=40, seed=11, now=NOW)
    only = ("growth-mobile-bff-dev",)
    root, clean = tmp_path / "root", tmp_path / "clean"
    with SimulatorServer(acct) as srv:
        killed = child(root, srv, acct, {KILL_ENV: "publish:execution_revisions:37"},
                       include=only)  # fmt: skip
        assert killed == -signal.SIGKILL
        for _ in range(2):
            assert run(root, srv, acct, include=only).exit_code == 0
        assert run(clean, srv, acct, include=only).exit_code == 0
    reference = every_table(clean)
    assert len(reference["execution_variables"]) == 498
    assert_equal(root, reference)


def test_a_batch_publishes_what_waited_too_long_at_the_next_group(tmp_path, monkeypatch):
    from recorder import store

    seen = []
    monkeypatch.setattr(store, "write_rows", lambda root, table, rows, **kw: seen.append(table))
    batch = Batch(tmp_path, "p", "r1", {}, ("action_executions", "executions"), 100, 0.2)
    day = NOW.date()
    batch.add({"executions": [{"execution_id": "e1"}]}, day)
    batch.add({"executions": [{"execution_id": "e2"}]}, day)
    assert seen == []  # young and under the bound
    time.sleep(0.25)
    batch.add({"executions": [{"execution_id": "e3"}]}, day)  # e1 waited 0.25 s
    assert seen == ["executions"] and batch.buffered == 1


# 3. Progress that a time-limited job keeps ----------------------------------------


def test_max_duration_commits_whole_executions_and_the_next_run_completes(tmp_path):
    """Under sustained faults (40 ms a call, 30 % throttled, 5 % answered 500), a run
    capped at 6 s stops cleanly (exit 0) having published whole executions, oldest
    first; the next run completes the history."""
    acct = Account(pipelines=3, days=10, seed=5, now=NOW)
    root, clean = tmp_path / "root", tmp_path / "clean"
    faults = Faults(latency_ms=40, throttle_rate=0.3, error_rate=0.05)
    with SimulatorServer(acct, faults) as srv:
        capped = run(root, srv, acct, max_duration=6.0, workers=2)
    assert capped.exit_code == 0
    assert capped.pipelines_unfinished  # it did stop early
    con = queries.connect(root, cache=False)
    try:
        recorded = table_rows(con, "executions")
        statuses = con.execute("SELECT status FROM collection_runs").fetchall()
    finally:
        con.close()
    assert len(recorded) > 0  # and kept what it fetched
    assert statuses == [("stopped",)]
    with SimulatorServer(acct) as srv:
        assert run(clean, srv, acct).exit_code == 0
        reference = every_table(clean)
        # every execution recorded by the capped run has every row under it
        ids = {r[0] for r in recorded}
        for table in ("action_executions", "execution_revisions", "execution_variables"):
            got = execution_rows(root, table, ids)
            assert got == execution_rows(clean, table, ids), table
        assert run(root, srv, acct).exit_code == 0
    assert_equal(root, reference)


def execution_rows(root, table: str, ids: set) -> list[tuple]:
    con = queries.connect(root, cache=False)
    try:
        return table_rows(con, table, "WHERE execution_id IN (SELECT unnest($i))",
                          {"i": sorted(ids)})  # fmt: skip
    finally:
        con.close()


# 4. The crash matrix ---------------------------------------------------------------

MATRIX_ACCOUNT = {"pipelines": 2, "days": 2, "seed": 5}
MATRIX_FLUSH_ROWS = "30"  # several flushes per pipeline, groups crossing the bound


def kill_points(root, srv, acct, trace: Path, env: dict) -> Counter:
    """Every checkpoint (recorder/testhooks.py) a whole run passes, by name."""
    assert child(root, srv, acct, {**env, TRACE_ENV: str(trace)}) == 0
    points = Counter(trace.read_text().split())
    trace.unlink()
    return points


def each_kill(points: Counter, shard: tuple[int, int] = (0, 1)):
    """Every (point, nth pass) of `points`; with `shard` (i, n) the i-th of n interleaved
    parts of that list, so that n tests, run side by side (pytest-xdist), kill at every
    point between them."""
    every = [(p, n) for p, c in sorted(points.items()) for n in range(1, c + 1)]
    i, n = shard
    return every[i::n]


# The matrices' kill points, split across this many tests that pytest-xdist runs side by
# side (each repeats only the clean and traced runs its points are measured against).
SHARDS = {"directory": 2, "s3": 4}


def test_the_matrix_shards_kill_at_every_point_once():
    points = Counter({"publish:executions": 3, "cache-step": 2, "end-step": 1})
    every = each_kill(points)
    assert every == [("cache-step", 1), ("cache-step", 2), ("end-step", 1),
                     ("publish:executions", 1), ("publish:executions", 2),
                     ("publish:executions", 3)]  # fmt: skip
    for n in SHARDS.values():
        shards = [each_kill(points, (i, n)) for i in range(n)]
        assert sorted(sum(shards, [])) == every and all(shards), n


def crash_matrix(
    tmp_path: Path,
    make_root,
    srv,
    acct,
    *,
    copy_root=None,
    lapse: float = 0.0,
    shard: tuple[int, int] = (0, 1),
) -> Counter:
    """Kill a first collection (which also builds the cache) at every point it passes,
    then run the collector normally: every table, through the files and through the
    cache, equals a clean collect. With `copy_root(src, name)`, then the same for a
    second collection after the account moved on (its refresh is incremental), each
    starting from a copy of the first's root. `lapse`: how long a killed collector's
    lock outlives it (an S3 lease). `shard`: kill at that part of the points only
    (each_kill). Returns the kill points, by name (all of them, whatever the shard)."""
    flush = {FLUSH_ROWS_ENV: MATRIX_FLUSH_ROWS}
    clean = make_root("clean")
    assert child(clean, srv, acct, flush) == 0
    reference = every_table(clean)
    points = kill_points(make_root("traced"), srv, acct, tmp_path / "trace", flush)
    assert points["publish:executions"] and points["end-step"]
    for i, (point, n) in enumerate(each_kill(points, shard)):
        root = make_root(f"k{i}")
        assert child(root, srv, acct, {**flush, KILL_ENV: f"{point}:{n}"}) == -signal.SIGKILL
        time.sleep(lapse)
        assert run(root, srv, acct, build_cache=True).exit_code == 0, (point, n)
        assert_equal(root, reference, where=f"{point}:{n}")
        assert_equal(root, reference, cache=True, where=f"{point}:{n} cache")
    if copy_root is None:
        return points
    acct.advance(minutes=600)
    copy_root(clean, "clean2")
    assert child(make_root("clean2"), srv, acct, flush) == 0
    reference = every_table(make_root("clean2"))
    copy_root(clean, "traced2")
    second = kill_points(make_root("traced2"), srv, acct, tmp_path / "trace", flush)
    assert second["cache-step"] and not second["cache-load"] or second["publish:executions"]
    for i, (point, n) in enumerate(each_kill(second, shard)):
        root = copy_root(clean, f"j{i}")
        assert child(root, srv, acct, {**flush, KILL_ENV: f"{point}:{n}"}) == -signal.SIGKILL
        assert run(root, srv, acct, build_cache=True).exit_code == 0, (point, n)
        assert_equal(root, reference, where=f"second run {point}:{n}")
        assert_equal(root, reference, cache=True, where=f"second run {point}:{n} cache")
    return points + Counter({f"second {k}": v for k, v in second.items()})


@pytest.mark.slow
@pytest.mark.parametrize("shard", range(SHARDS["directory"]))
def test_crash_matrix_directory_root(tmp_path, shard):
    acct = Account(**MATRIX_ACCOUNT, now=NOW)

    def copy_root(src: Path, name: str) -> Path:
        shutil.copytree(src, tmp_path / name)  # the cache (.cache) and the head with it
        return tmp_path / name

    with SimulatorServer(acct) as srv:
        points = crash_matrix(tmp_path, lambda name: tmp_path / name, srv, acct,
                              copy_root=copy_root, shard=(shard, SHARDS["directory"]))  # fmt: skip
    print(f"crash matrix (directory root): {points.total()} kill points {dict(points)}")


@pytest.mark.slow
@pytest.mark.parametrize("shard", range(SHARDS["s3"]))
def test_crash_matrix_s3_root(bucket, tmp_path, monkeypatch, shard):
    """An S3 root's collector builds no cache (its readers do: `sync`), so the cache steps
    are a reader's: killed at each while it builds its cache, then read again."""
    monkeypatch.setenv(LEASE_TTL_ENV, "1")  # a killed collector's lease lapses in 1 s
    acct = Account(**MATRIX_ACCOUNT, now=NOW)
    with SimulatorServer(acct) as srv:
        points = crash_matrix(tmp_path, lambda name: f"s3://{bucket}/{name}", srv, acct,
                              lapse=1.2, shard=(shard, SHARDS["s3"]))  # fmt: skip
    remote = f"s3://{bucket}/clean"
    reference = every_table(remote)
    shutil.rmtree(cache_mod.cache_dir(remote))
    reader = [sys.executable, "-m", "recorder.cli", "sql", "SELECT 1", "--data", remote]
    trace = tmp_path / "trace"
    subprocess.run(reader, env={**os.environ, TRACE_ENV: str(trace)}, check=True,
                   capture_output=True, timeout=300)  # fmt: skip
    steps = Counter(p for p in trace.read_text().split() if p.startswith("cache-"))
    assert steps["cache-step"] and steps["cache-load"]
    for point, n in each_kill(steps, (shard, SHARDS["s3"])):
        shutil.rmtree(cache_mod.cache_dir(remote), ignore_errors=True)
        killed = subprocess.run(reader, env={**os.environ, KILL_ENV: f"{point}:{n}"},
                                capture_output=True, timeout=300)  # fmt: skip
        assert killed.returncode == -signal.SIGKILL, (point, n)
        assert_equal(remote, reference, cache=True, where=f"reader {point}:{n}")
    total = points + Counter({f"reader {k}": v for k, v in steps.items()})
    print(f"crash matrix (S3 root): {total.total()} kill points {dict(total)}")


@pytest.mark.slow
def test_a_recreated_bucket_is_backfilled_whole(bucket, tmp_path):
    """The issue's first loss as a user met it: collect into s3://b/history and query it
    (this machine's cache of it is built); the bucket's objects go (recreated, expired,
    restored empty); the same command runs again, twice. On the code before the fix both
    runs wrote 7 rows, and the bucket held 7 of the clean collect's 701 for good (the
    issue's try: 88 of 109)."""
    acct = Account(pipelines=4, days=3, seed=19, now=NOW)
    remote, clean = f"s3://{bucket}/history", tmp_path / "clean"
    with SimulatorServer(acct) as srv:
        assert run(remote, srv, acct).exit_code == 0
        every_table(remote, cache=True)  # a reader builds and syncs its local cache
        s3_client = boto3.client("s3")
        for page in s3_client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for o in page.get("Contents", []):
                s3_client.delete_object(Bucket=bucket, Key=o["Key"])
        for _ in range(2):
            assert run(remote, srv, acct).exit_code == 0
        assert run(clean, srv, acct).exit_code == 0
    reference = every_table(clean)
    assert_equal(remote, reference)
    assert_equal(remote, reference, cache=True)
