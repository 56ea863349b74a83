"""An S3 data root, against a real S3-protocol server on loopback (moto's server mode).

The collector, the readers, compaction and the cache reach it through boto3 and
pyarrow over HTTP, configured only by the standard AWS_ENDPOINT_URL_S3 variable.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta

import boto3
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from conftest import SIM_NOW as NOW
from conftest import query_rows, run, wait_for

import queries
from recorder import s3
from recorder.cli import main
from recorder.compact import compact
from recorder.errors import EXIT_LOCKED
from recorder.lock import LEASE_TTL_ENV
from recorder.schemas import TABLES
from recorder.simulator import Account, SimulatorServer
from recorder.store import PAUSE_ENV

pytest.importorskip("moto.server")  # the test extras install it
pytestmark = pytest.mark.slow

COLLECT = [sys.executable, "-m", "recorder.cli", "collect"]


def keys(bucket: str, prefix: str = "") -> list[str]:
    pages = (
        boto3.client("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    )
    return sorted(o["Key"] for p in pages for o in p.get("Contents", []))


def all_answers(root, *, cache: bool) -> dict[str, list[tuple]]:
    con = queries.connect(root, cache=cache)
    try:
        return {n: query_rows(con, n, now=NOW) for n in queries.named_queries()}
    finally:
        con.close()


def view_rows(root) -> dict[str, list[tuple]]:
    """Every row of every view over the Parquet files (--no-cache), without the
    bookkeeping of the recording (run_id and recorded_at: which run, at what wall time)."""
    con = queries.connect(root, cache=False)
    rows = {}
    try:
        for name in [*TABLES, "stage_runs"]:
            if name == "collection_runs":
                continue
            table = con.sql(f"SELECT * FROM {name}").to_arrow_table()
            table = table.drop_columns(
                [c for c in ("run_id", "recorded_at") if c in table.column_names]
            )
            rows[name] = sorted(map(repr, table.to_pylist()))
    finally:
        con.close()
    return rows


def strip_run_specific(answers: dict[str, list[tuple]]) -> dict[str, list[tuple]]:
    """collection-health describes the collector runs themselves: their ids and their
    wall-clock durations differ between two runs over the same account."""
    return {n: rows for n, rows in answers.items() if n != "collection-health"}


def test_collect_into_s3_answers_every_query_exactly_as_a_local_root(bucket, tmp_path):
    acct = Account(pipelines=2, days=4, seed=41, now=NOW)
    local, remote = tmp_path / "local", f"s3://{bucket}/history"
    with SimulatorServer(acct) as srv:
        assert run(local, srv, acct).exit_code == 0
        result = run(remote, srv, acct)
    assert result.exit_code == 0
    # The same layout: every local file's partition holds one object of the same table.
    local_parts = sorted(
        str(f.parent.relative_to(local)) for f in local.rglob("*.parquet") if ".cache" not in str(f)
    )
    remote_keys = keys(bucket, "history/")
    assert "history/.head.json" in remote_keys  # the root's head (recorder/head.py)
    remote_keys.remove("history/.head.json")
    remote_parts = sorted(k.removeprefix("history/").rsplit("/", 1)[0] for k in remote_keys)
    assert remote_parts == local_parts
    assert not [k for k in remote_keys if not k.endswith(".parquet")]  # no lock, no temp object
    # Read from the objects directly, every view holds the same rows as from the files
    # (but the run ids, which differ between two collections, and the runs themselves).
    direct, on_disk = view_rows(remote), view_rows(local)
    assert sum(map(len, on_disk.values())) > 500  # 570 rows in 10 views
    assert direct == on_disk
    # Through the reader's local cache, built on first use under the user cache dir,
    # every named query answers row for row as the local root.
    from_local, cached = all_answers(local, cache=False), all_answers(remote, cache=True)
    expected = strip_run_specific(from_local)
    assert sum(len(rows) for rows in expected.values()) > 50  # a real history, not empty
    assert strip_run_specific(cached) == expected
    (cache_dir,) = (tmp_path / "user-cache" / "cprec").iterdir()
    assert cache_dir.name.startswith(f"{bucket}-") and (cache_dir / "cprec.duckdb").exists()
    assert len(cached["collection-health"]) == len(from_local["collection-health"]) == 1


def test_a_reader_cache_follows_new_objects_written_by_another_collector(bucket, tmp_path):
    acct = Account(pipelines=2, days=4, seed=43, now=NOW)
    remote = f"s3://{bucket}/p"
    cache_dir = tmp_path / "reader-cache"
    with SimulatorServer(acct) as srv:
        assert run(remote, srv, acct).exit_code == 0
        cli = CliRunner()
        args = ["query", "pipeline-summary", "--format", "csv", "--data", remote]
        first = cli.invoke(main, [*args, "--cache-dir", str(cache_dir)])
        assert first.exit_code == 0, first.output
        acct.advance(minutes=600)
        assert run(remote, srv, acct).exit_code == 0
    second = cli.invoke(main, [*args, "--cache-dir", str(cache_dir)])
    direct = cli.invoke(main, [*args, "--no-cache"])
    assert second.exit_code == direct.exit_code == 0
    assert second.output == direct.output != first.output  # new executions were loaded
    assert (cache_dir / "cprec.duckdb").exists()


def test_compaction_in_s3_merges_and_deletes_after_the_grace_period(bucket, tmp_path):
    acct = Account(pipelines=2, days=4, seed=47, now=NOW)
    remote = f"s3://{bucket}/p"
    with SimulatorServer(acct) as srv:
        for _ in range(3):  # three runs: partitions of today and earlier get several files
            assert run(remote, srv, acct).exit_code == 0
            acct.advance(minutes=180)
    # Through the reader's cache, which follows the objects compaction adds and deletes
    # (direct reads of the objects are compared with a local root above).
    before = all_answers(remote, cache=True)
    n_before = len([k for k in keys(bucket, "p/") if k.endswith(".parquet")])
    today = (NOW + timedelta(hours=9)).date()
    kept = compact(remote, today=today, min_age_days=0, grace=timedelta(hours=1))
    assert kept.partitions > 0 and kept.removed == []
    assert kept.waiting == kept.files_before  # replaced objects stay for readers
    assert "p/.compact-replaced.jsonl" in keys(bucket, "p/")
    assert all_answers(remote, cache=True) == before
    done = compact(remote, today=today, min_age_days=0, grace=timedelta(0))
    assert len(done.removed) == kept.files_before and done.waiting == 0
    objects = [k for k in keys(bucket, "p/") if k.endswith(".parquet")]
    # before - merged inputs + one merged file per partition
    assert len(objects) == n_before - kept.files_before + kept.partitions
    assert all_answers(remote, cache=True) == before
    assert not any(k.endswith(".lock") for k in keys(bucket, "p/"))


def _spawn(remote: str, srv, extra_env: dict[str, str]) -> subprocess.Popen:
    env = {**os.environ, **extra_env}
    args = ["--data", remote, "--endpoint-url", srv.endpoint_url, "--quiet", "--workers", "1"]
    return subprocess.Popen(
        [*COLLECT, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _collect_cli(remote: str, srv):
    return CliRunner().invoke(
        main, ["collect", "--data", remote, "--endpoint-url", srv.endpoint_url, "--quiet"]
    )


def test_a_second_collector_exits_75_while_the_first_holds_the_lease(bucket):
    acct = Account(pipelines=2, days=2, seed=53, now=NOW)
    remote = f"s3://{bucket}/p"
    with SimulatorServer(acct) as srv:
        first = _spawn(remote, srv, {PAUSE_ENV: "1:3"})  # holds the lease, pauses 3 s
        try:
            wait_for(lambda: "p/.lock" in keys(bucket, "p/"))
            second = _collect_cli(remote, srv)
            assert second.exit_code == EXIT_LOCKED == 75
            (line,) = second.output.splitlines()
            assert line.startswith("Error: another collector (")
            assert f":{first.pid}:" in line and f"holds {remote}/.lock until " in line
            assert first.wait(60) == 0, first.stderr.read()
        finally:
            first.kill()
    assert "p/.lock" not in keys(bucket, "p/")  # released at the end
    assert len({k.split("/part-")[1][:20] for k in keys(bucket, "p/") if "/part-" in k}) == 1


def test_a_killed_collectors_lease_lapses_and_leaves_only_whole_objects(bucket, tmp_path):
    acct = Account(pipelines=3, days=5, seed=59, now=NOW)
    remote = f"s3://{bucket}/p"
    with SimulatorServer(acct) as srv:
        # Pauses before its 12th PUT, holding a lease of 4 s (renewed every 1.3 s).
        proc = _spawn(remote, srv, {PAUSE_ENV: "12:60", LEASE_TTL_ENV: "4"})
        try:
            wait_for(lambda: len([k for k in keys(bucket, "p/") if "/part-" in k]) == 11)
            time.sleep(0.5)
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
        finally:
            proc.kill()
        killed_at = time.monotonic()
        objects = [k for k in keys(bucket, "p/") if k.endswith(".parquet")]
        assert len(objects) == 11  # killed mid-history, before its 12th object
        fs = s3.filesystem()
        for k in objects:  # every object readers see is a whole Parquet file
            pq.read_metadata(f"{bucket}/{k}", filesystem=fs)
        assert "p/.lock" in keys(bucket, "p/")  # the crashed holder could not release it
        locked = _collect_cli(remote, srv)
        if (
            time.monotonic() - killed_at < 2.5
        ):  # well inside the lease (last renewed < 1.4 s before the kill)
            assert locked.exit_code == 75, locked.output
        wait_for(lambda: time.monotonic() - killed_at > 4.5, timeout=10)
        after = _collect_cli(remote, srv)
        assert after.exit_code == 0, after.output
    local = tmp_path / "local"
    with SimulatorServer(acct) as srv:
        assert run(local, srv, acct).exit_code == 0
    # The history is complete: every query equals a clean run's, but current-state, whose
    # snapshots the command-line runs took at the wall clock (the clean run: the
    # account's clock), and collection-health (the runs themselves).
    expected = strip_run_specific(all_answers(local, cache=False))
    answers = strip_run_specific(all_answers(remote, cache=True))
    del expected["current-state"], answers["current-state"]
    assert answers == expected


def test_every_command_takes_an_s3_root(bucket, tmp_path):
    acct = Account(pipelines=2, days=3, seed=61, now=NOW)
    remote, local = f"s3://{bucket}/p", tmp_path / "local"
    with SimulatorServer(acct) as srv:
        assert run(remote, srv, acct).exit_code == 0
        assert run(local, srv, acct).exit_code == 0
    cli = CliRunner()

    def out(*args):
        r = cli.invoke(main, list(args))
        assert r.exit_code == 0, r.output
        return r.output

    for data in (remote, str(local)):
        assert "loaded" in out("cache", "--data", data)
    q = ("query", "stage-durations", "--format", "csv", "--until", "2026-11-01T00:00:00Z")
    assert out(*q, "--data", remote) == out(*q, "--data", str(local))
    sql = ("sql", "SELECT count(*) AS n FROM action_executions", "--format", "csv")
    assert out(*sql, "--data", remote) == out(*sql, "--data", str(local))
    out("export", "--dir", str(tmp_path / "export"), "--data", remote)
    assert (tmp_path / "export" / "index.csv").exists()
    db = out("db", str(tmp_path / "views.duckdb"), "--data", remote)
    assert f"views over {remote}" in db
    assert "compacted" in out("compact", "--data", remote, "--min-age-days", "0")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("s3://A_B/p", "Error: Invalid value for '--data' (env var: 'CPREC_DATA'): "
                       "s3://A_B/p is not an S3 location (s3://bucket or s3://bucket/prefix)"),
        ("s3://ok-bucket//p", "Error: Invalid value for '--data' (env var: 'CPREC_DATA'): "
                              "s3://ok-bucket//p: an empty folder name (//) in the prefix"),
        ("s3://no-such-bucket-here/p", "Error: cannot read data root s3://no-such-bucket-here/p: "
                                       "NoSuchBucket: The specified bucket does not exist"),
    ],
)  # fmt: skip
def test_a_bad_s3_root_is_one_line(bucket, data, message):
    result = CliRunner().invoke(main, ["query", "pipeline-summary", "--data", data])
    assert result.exit_code == 2
    assert result.output.splitlines()[-1] == message
    assert result.output.count("\n") <= 4 and "Traceback" not in result.output  # click usage


def test_collect_into_a_missing_bucket_is_one_line(bucket):
    acct = Account(pipelines=1, days=1, seed=67, now=NOW)
    with SimulatorServer(acct) as srv:
        result = _collect_cli("s3://no-such-bucket-here/p", srv)
    assert result.exit_code == 2
    assert result.output == (
        "Error: cannot use data root s3://no-such-bucket-here/p: "
        "NoSuchBucket: The specified bucket does not exist\n"
    )


def test_s3_paths_print_as_uris_and_join_like_paths():
    root = s3.parse("s3://bucket-1/a/b")
    f = root / "executions" / "pipeline=x" / "dt=2026-01-01" / "part-1.parquet"
    assert str(f) == "s3://bucket-1/a/b/executions/pipeline=x/dt=2026-01-01/part-1.parquet"
    assert (f.bucket, f.key) == (
        "bucket-1",
        "a/b/executions/pipeline=x/dt=2026-01-01/part-1.parquet",
    )
    assert f.relative_to(root).parts == (
        "executions",
        "pipeline=x",
        "dt=2026-01-01",
        "part-1.parquet",
    )
    assert (
        str(s3.parse("s3://bucket-1")) == "s3://bucket-1" and s3.parse("s3://bucket-1/").key == ""
    )
    with pytest.raises(TypeError):
        open(f)  # never opened as a local file
