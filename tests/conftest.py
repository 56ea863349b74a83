"""Shared fixtures and builders of the tests.

Two worlds, two clocks:
- `build_scenario`: a hand-built data root whose every figure is computed by hand
  (SCENARIO_NOW; drawn below);
- the simulated account, collected over HTTP (SIM_NOW; `run`).


Scenario (all times 2026-01-05 UTC unless noted; account 111111111111, us-east-1):

web  E1 Succeeded 10:00:00-10:10:00  Source/Checkout 10:00:00-10:00:30 S   (stage 30 s)
                                     Build/Compile   10:00:40-10:05:00 S   (stage 260 s)
                                     Deploy/Approve  10:05:10-10:08:10 S   (180 s)
                                     Deploy/Release  10:08:20-10:10:00 S   (stage 290 s)
     E2 Succeeded 11:00:00-11:20:00  Source/Checkout 11:00:00-11:00:20 S   (stage 20 s)
        (stage retry of Build)       Build/Compile   11:00:30-11:02:30 F   JobFailed
                                     Build/Compile   11:10:00-11:14:00 S   (stage 810 s, 2 attempts)
                                     Deploy/Approve  11:14:10-11:16:10 S   (120 s)
                                     Deploy/Release  11:16:20-11:20:00 S   (stage 350 s)
     E3 Stopped   12:00:00-13:05:00  Source/Checkout 12:00:00-12:00:40 S   (stage 40 s)
                                     Build/Compile   12:00:50-12:04:50 S   (stage 240 s)
                                     Deploy/Approve  12:05:00-13:05:00 Abandoned (stage 3600 s)
     E4 Failed    13:30:00-13:33:40  Source/Checkout 13:30:00-13:30:30 S   (stage 30 s)
        (recorded InProgress first)  Build/Compile   13:30:40-13:33:40 F   JobFailed (stage 180 s)
     E5 InProgress 14:00:00-        Source/Checkout 14:00:00-14:00:25 S   (stage 25 s)
                                     Build/Compile   14:00:35-(14:01:00) InProgress (not terminal)
api  A1 Succeeded 01-06 09:00:00-09:02:00  Build/Compile 09:00:10-09:01:50 S (100 s)
     A2 Succeeded 01-13 09:00:00-09:04:00  Build/Compile 09:00:10-09:03:30 S (200 s)
ops  O1 InProgress 01-07 08:00:00-   Source/Checkout 08:00:00-08:00:30 S; Deploy/Approve from
                                     08:05:00 InProgress (a pending approval)
Snapshots: web at 13:31 (old) and 14:01 (Build running E5, Deploy transition disabled since
09:00 "Freeze for release" by alice); ops at 01-07 08:06 (Deploy running O1, approval pending).
Collector runs: R1 01-05 14:05:00-14:05:30 succeeded; R2 01-07 10:00:00-10:01:15 partial,
recorded twice.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import queries
from recorder import s3
from recorder.collect import collect
from recorder.config import CollectConfig
from recorder.schemas import TABLES
from recorder.simulator import Account, SimulatorServer
from recorder.simulator.command import simulated_accounts
from recorder.store import write_rows

SIM_NOW = datetime(2026, 11, 1, tzinfo=UTC)


def pytest_collection_modifyitems(config, items):
    """Leave out the tests marked slow (minutes of end-to-end runs) unless
    CPREC_SLOW_TESTS=1 (.ci/run sets it) or a `-m` expression chooses."""
    if os.environ.get("CPREC_SLOW_TESTS") == "1" or config.getoption("markexpr"):
        return
    slow = [item for item in items if item.get_closest_marker("slow")]
    if slow:
        config.hook.pytest_deselected(items=slow)
        items[:] = [item for item in items if not item.get_closest_marker("slow")]


@pytest.fixture(autouse=True)
def aws_env(monkeypatch, tmp_path):
    """Dummy credentials and region, and no shared config that could leak in."""
    for var in ("AWS_PROFILE", "AWS_REGION", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    for var in [v for v in os.environ if v.startswith("CPREC_")]:
        monkeypatch.delenv(var)


@pytest.fixture
def fast_backoff(monkeypatch):
    """Retry at once. Under test is what gets recorded and counted, not how long botocore
    waits: its backoff delay, the pacer (recorder/pacing.py, tested in test_pacing.py:
    here it never paces, so botocore's attempt limit holds) and the adaptive mode's
    client-side rate limiter are switched off; retry decisions
    and attempt limits stay botocore's own, and the retry quota is the one make_client
    leaves (lifted)."""
    from botocore.retries import adaptive, standard

    from recorder.pacing import Pacer

    monkeypatch.setattr(standard.ExponentialBackoff, "delay_amount", lambda self, ctx: 0.0)
    monkeypatch.setattr(adaptive.ClientRateLimiter, "on_sending_request", lambda *a, **kw: None)
    monkeypatch.setattr(Pacer, "acquire", lambda self: None)
    monkeypatch.setattr(Pacer, "record", lambda self, throttled: None)  # never paces


def run(root: Path, srv, acct: Account, **kw):
    """Collect the simulated account behind `srv` into `root` at the account's clock;
    `kw` are further CollectConfig fields."""
    return collect(root, CollectConfig(endpoint_url=srv.endpoint_url, now=acct.now, **kw))


def serve_accounts(count: int = 2, *, pipelines: int = 3, days: int = 2, **kw) -> SimulatorServer:
    """A simulator (to start with `with`) holding `count` accounts as `cprec simulate
    --accounts` builds them: 123456789012 (seed 7), 200000000001 (seed 8), ... at SIM_NOW;
    `kw` go to SimulatorServer (external_ids, session_seconds, faults)."""
    held = simulated_accounts(count, pipelines=pipelines, days=days, seed=7, now=SIM_NOW)
    return SimulatorServer(held[0], members=held[1:], **kw)


def wait_for(predicate, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def pending(root: Path) -> list[Path]:
    tmp = root / ".tmp"
    return list(tmp.iterdir()) if tmp.is_dir() else []


def views_read_cache(con) -> bool:
    """Whether a connection's views read the query cache (not the Parquet files)."""
    (sql,) = con.execute("SELECT sql FROM duckdb_views() WHERE view_name = 'executions'").fetchone()
    return 'cache".executions' in sql


def write_foreign_file(root: Path) -> Path:
    """A Parquet file in an executions partition whose execution_id is a number."""
    partition = next((root / "executions").glob("pipeline=*/dt=*"))
    foreign = partition / "foreign.parquet"
    pq.write_table(
        pa.table({"execution_id": [1], "account_id": ["1"], "region": ["us-east-1"],
                  "recorded_at": pa.array([0], pa.timestamp("us", tz="UTC"))}),
        foreign,
    )  # fmt: skip
    return foreign


# --- the hand-built scenario --------------------------------------------------------


ACCOUNT = "111111111111"
REGION = "us-east-1"
SCENARIO_NOW = datetime(2026, 1, 7, 10, 5, tzinfo=UTC)


def t(text: str, day: int = 5) -> datetime:
    return datetime.fromisoformat(f"2026-01-{day:02d}T{text}+00:00")


def query_rows(con, name: str, **kw) -> list[tuple]:
    """A named query's rows (every column), floats rounded to 9 places: a median or sum of
    seconds need not be exact in binary (260 + 0.7*550 is 645.0000000000001)."""
    return [
        tuple(round(v, 9) if isinstance(v, float) else v for v in r.values())
        for r in queries.run_query(con, name, **kw).to_pylist()
    ]


def common_columns(recorded_at: datetime, run_id: str = "run-1") -> dict:
    return {"account_id": ACCOUNT, "region": REGION, "run_id": run_id, "recorded_at": recorded_at}


def execution_row(eid, status, start, end, recorded_at=None, version=1):
    return {
        **common_columns(recorded_at or end or start),
        "dt": start.date(),
        "execution_id": eid,
        "status": status,
        "start_time": start,
        "last_update_time": end,
        "pipeline_version": version,
        "trigger_type": "StartPipelineExecution",
        "execution_type": "STANDARD",
    }


CATEGORY = {"Checkout": "Source", "Compile": "Build", "Approve": "Approval", "Release": "Deploy"}
PROVIDER = {"Checkout": "CodeStarSourceConnection", "Compile": "CodeBuild"}
PROVIDER |= {"Approve": "Manual", "Release": "CodeDeploy"}


def action_row(eid, n, stage, action, status, start, end, *, error=None, recorded_at=None):
    row = {
        **common_columns(recorded_at or end),
        "dt": start.date(),  # the execution's start date in real data; same day here
        "execution_id": eid,
        "action_execution_id": f"{eid}-a{n}",
        "pipeline_version": 1,
        "stage": stage,
        "action": action,
        "status": status,
        "start_time": start,
        "last_update_time": end,
        "category": CATEGORY[action],
        "provider": PROVIDER[action],
    }
    if error:
        row["error_code"], row["error_message"] = error
    return row


def build_scenario(root: Path) -> Path:
    w = {"executions": [], "action_executions": []}
    w["executions"] += [
        execution_row("E1", "Succeeded", t("10:00:00"), t("10:10:00")),
        execution_row("E2", "Succeeded", t("11:00:00"), t("11:20:00")),
        execution_row("E3", "Stopped", t("12:00:00"), t("13:05:00")),
        execution_row("E4", "InProgress", t("13:30:00"), t("13:31:00")),  # superseded below
        execution_row("E4", "Failed", t("13:30:00"), t("13:33:40"), recorded_at=t("14:05:00")),
        execution_row("E5", "InProgress", t("14:00:00"), t("14:01:00")),
    ]
    failed_build = ("JobFailed", "Build failed: exit status 2")
    a = action_row
    w["action_executions"] += [
        a("E1", 1, "Source", "Checkout", "Succeeded", t("10:00:00"), t("10:00:30")),
        a("E1", 2, "Build", "Compile", "Succeeded", t("10:00:40"), t("10:05:00")),
        a("E1", 3, "Deploy", "Approve", "Succeeded", t("10:05:10"), t("10:08:10")),
        a("E1", 4, "Deploy", "Release", "Succeeded", t("10:08:20"), t("10:10:00")),
        a("E2", 1, "Source", "Checkout", "Succeeded", t("11:00:00"), t("11:00:20")),
        a("E2", 2, "Build", "Compile", "Failed", t("11:00:30"), t("11:02:30"), error=failed_build),
        a("E2", 3, "Build", "Compile", "Succeeded", t("11:10:00"), t("11:14:00")),
        a("E2", 4, "Deploy", "Approve", "Succeeded", t("11:14:10"), t("11:16:10")),
        a("E2", 5, "Deploy", "Release", "Succeeded", t("11:16:20"), t("11:20:00")),
        a("E3", 1, "Source", "Checkout", "Succeeded", t("12:00:00"), t("12:00:40")),
        a("E3", 2, "Build", "Compile", "Succeeded", t("12:00:50"), t("12:04:50")),
        a("E3", 3, "Deploy", "Approve", "Abandoned", t("12:05:00"), t("13:05:00")),
        a("E4", 1, "Source", "Checkout", "Succeeded", t("13:30:00"), t("13:30:30")),
        a("E4", 2, "Build", "Compile", "InProgress", t("13:30:40"), t("13:31:00")),
        a("E4", 2, "Build", "Compile", "Failed", t("13:30:40"), t("13:33:40"),
          error=("JobFailed", "Tests failed:\n3 errors"), recorded_at=t("14:05:00")),
        a("E5", 1, "Source", "Checkout", "Succeeded", t("14:00:00"), t("14:00:25")),
        a("E5", 2, "Build", "Compile", "InProgress", t("14:00:35"), t("14:01:00")),
    ]  # fmt: skip
    for table, rows in w.items():
        write_rows(root, table, rows, pipeline="web", run_id="run-1")

    write_rows(root, "executions", [
        execution_row("A1", "Succeeded", t("09:00:00", 6), t("09:02:00", 6)),
        execution_row("A2", "Succeeded", t("09:00:00", 13), t("09:04:00", 13)),
    ], pipeline="api", run_id="run-1")  # fmt: skip
    write_rows(root, "action_executions", [
        a("A1", 1, "Build", "Compile", "Succeeded", t("09:00:10", 6), t("09:01:50", 6)),
        a("A2", 1, "Build", "Compile", "Succeeded", t("09:00:10", 13), t("09:03:30", 13)),
    ], pipeline="api", run_id="run-1")  # fmt: skip

    write_rows(root, "executions", [
        execution_row("O1", "InProgress", t("08:00:00", 7), t("08:05:00", 7)),
    ], pipeline="ops", run_id="run-2")  # fmt: skip
    write_rows(root, "action_executions", [
        a("O1", 1, "Source", "Checkout", "Succeeded", t("08:00:00", 7), t("08:00:30", 7)),
        a("O1", 2, "Deploy", "Approve", "InProgress", t("08:05:00", 7), t("08:05:00", 7)),
    ], pipeline="ops", run_id="run-2")  # fmt: skip
    write_rows(root, "pipeline_actions", [
        {**common_columns(t("08:06:00", 7), "run-2"), "dt": date(2026, 1, 7),
         "pipeline_version": 1, "stage": "Deploy", "action": "Approve", "category": "Approval"},
    ], pipeline="ops", run_id="run-2")  # fmt: skip

    def stage(snap, idx, name, latest=None, status=None, **extra):
        return {
            **common_columns(snap), "dt": snap.date(), "snapshot_at": snap, "pipeline_version": 1,
            "stage": name, "stage_index": idx, "latest_execution_id": latest,
            "latest_execution_status": status, "transition_enabled": True, **extra,
        }  # fmt: skip

    frozen = {
        "transition_enabled": False,
        "transition_disabled_reason": "Freeze for release",
        "transition_last_changed_by": "alice",
        "transition_last_changed_at": t("09:00:00"),
    }
    old, new = t("13:31:00"), t("14:01:00")
    write_rows(root, "stage_states", [
        stage(old, 0, "Source", "E4", "Succeeded"),
        stage(old, 1, "Build", "E4", "InProgress"),
        stage(old, 2, "Deploy", "E3", "Stopped"),
        stage(new, 0, "Source", "E5", "Succeeded"),
        stage(new, 1, "Build", "E5", "InProgress"),
        stage(new, 2, "Deploy", "E3", "Stopped", **frozen),
    ], pipeline="web", run_id="run-1")  # fmt: skip
    snap = t("08:06:00", 7)
    write_rows(root, "stage_states", [
        stage(snap, 0, "Source", "O1", "Succeeded"),
        stage(snap, 1, "Deploy", "O1", "InProgress"),
    ], pipeline="ops", run_id="run-2")  # fmt: skip
    write_rows(root, "action_states", [
        {**common_columns(snap, "run-2"), "dt": snap.date(), "snapshot_at": snap, "stage": "Source",
         "action": "Checkout", "status": "Succeeded", "last_status_change": t("08:00:30", 7)},
        {**common_columns(snap, "run-2"), "dt": snap.date(), "snapshot_at": snap, "stage": "Deploy",
         "action": "Approve", "status": "InProgress", "last_status_change": t("08:05:00", 7)},
    ], pipeline="ops", run_id="run-2")  # fmt: skip

    def run(run_id, start, end, status, **extra):
        return {
            **common_columns(end, run_id), "dt": start.date(), "started_at": start,
            "finished_at": end, "status": status, "pipelines_listed": 3, **extra,
        }  # fmt: skip

    r1 = run("run-1", t("14:05:00"), t("14:05:30"), "succeeded", pipelines_recorded=3,
             pipelines_failed=0, api_calls=40, throttles=0, retries=0,
             errors_json="[]")  # fmt: skip
    r2 = run("run-2", t("10:00:00", 7), t("10:01:15", 7), "partial", pipelines_recorded=2,
             pipelines_failed=1, api_calls=55, throttles=3, retries=3,
             errors_json='[{"pipeline": "api", "error": "AccessDenied"}]')  # fmt: skip
    write_rows(root, "collection_runs", [r1, r2], pipeline=None, run_id="run-2")
    write_rows(root, "collection_runs", [r2], pipeline=None, run_id="run-2")  # a duplicate
    return root


def write_old_schema_files(root: Path) -> None:
    """Files as an older collector wrote them: columns added since are missing."""
    for name, drop in (("executions", {"execution_type", "trigger_type"}),
                       ("action_executions", {"error_code", "category"})):  # fmt: skip
        schema = TABLES[name].schema
        old = pa.schema([f for f in schema if f.name not in drop])
        start = datetime(2025, 12, 1, 9, 0, tzinfo=UTC)
        row = {
            **common_columns(start + timedelta(minutes=5)),
            "execution_id": "OLD1",
            "status": "Failed",
            "start_time": start,
            "last_update_time": start + timedelta(minutes=5),
        }
        if name == "action_executions":
            row |= {"action_execution_id": "OLD1-a1", "stage": "Build", "action": "Compile",
                    "error_message": "old failure"}  # fmt: skip
        d = root / name / "pipeline=legacy" / "dt=2025-12-01"
        d.mkdir(parents=True)
        pq.write_table(pa.Table.from_pylist([row], schema=old), d / "part-old.parquet")


# -- an S3-protocol server on loopback (tests/test_s3.py, tests/test_history.py) --


@pytest.fixture(scope="module")
def s3_endpoint():
    """moto's S3 server in a process of its own, as S3 is to a user: a server in this
    process would need this process's GIL to answer the requests DuckDB's threads make
    through Python's filesystem callbacks while another thread holds it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    endpoint = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _answers(endpoint), timeout=30)
        yield endpoint
    finally:
        server.terminate()
        server.wait(10)


def _answers(endpoint: str) -> bool:
    try:
        with urllib.request.urlopen(endpoint + "/moto-api/", timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture
def bucket(s3_endpoint, monkeypatch, tmp_path):
    """A fresh bucket on the loopback server; S3 clients of this process and its children
    point there through the standard variable, and the user cache dir is the test's."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_endpoint)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "user-cache"))
    for f in (s3.client, s3.filesystem, s3._session):
        f.cache_clear()
    name = f"cprec-{uuid.uuid4().hex[:12]}"
    boto3.client("s3").create_bucket(Bucket=name)
    yield name
    for f in (s3.client, s3.filesystem, s3._session):
        f.cache_clear()
