"""`cprec collect` end to end: boto3 over HTTP against the in-process simulator.

Stored rows are compared row by row with what the simulator's own model holds
(read directly from the Account, not over HTTP), through the deduplicated view the
query layer uses: the latest `recorded_at` per natural key.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path

import boto3
import duckdb
import pyarrow.parquet as pq
from botocore.exceptions import ClientError
from click.testing import CliRunner
from conftest import SIM_NOW as NOW  # noqa: I001
from conftest import pending, run, wait_for

from recorder import collect as collect_mod
from recorder import config as config_mod
from recorder import fetch, layout
from recorder.cli import main
from recorder.client import CallStats, make_client
from recorder.errors import EXIT_LOCKED, EXIT_PARTIAL, EXIT_USAGE
from recorder.flatten import (
    flatten_action_execution,
    flatten_execution,
    flatten_pipeline,
    flatten_pipeline_state,
    flatten_rule_execution,
    state_hash,
    ts,
)
from recorder.known import TERMINAL_EXECUTION
from recorder.root import DataRoot
from recorder.schemas import EXECUTION_TABLES, TABLES
from recorder.simulator import Account, Faults, SimulatorServer
from recorder.simulator.fixtures import SeedAccount
from recorder.store import PAUSE_ENV, Batch

COMMON = ("account_id", "region", "run_id", "recorded_at")
COLLECT = [sys.executable, "-m", "recorder.cli", "collect"]


# --- what the simulator holds, and what is stored ------------------------------------


def _summaries(acct: Account, name: str) -> dict[str, dict]:
    out, token = {}, None
    while True:
        params = {
            "pipelineName": name,
            "maxResults": 100,
            **({"nextToken": token} if token else {}),
        }
        page = acct.call("ListPipelineExecutions", params)
        out.update({s["pipelineExecutionId"]: s for s in page["pipelineExecutionSummaries"]})
        token = page.get("nextToken")
        if not token:
            return out


def model_rows(acct: Account) -> dict[str, list[dict]]:
    """Every execution-table row the simulator's model implies, with pipeline and dt."""
    rows: dict[str, list[dict]] = defaultdict(list)
    for name in acct.pipeline_names():
        summaries = _summaries(acct, name)
        start = {i: ts(s["startTime"]).date() for i, s in summaries.items()}
        for detail in acct.all_executions(name):
            eid = detail["pipelineExecutionId"]
            flat = flatten_execution({"pipelineExecution": detail}, summaries[eid])
            for table, table_rows in flat.items():
                rows[table] += [{"pipeline": name, "dt": start[eid], **r} for r in table_rows]
        for table, items, flatten in (
            ("action_executions", acct.all_action_executions(name), flatten_action_execution),
            ("rule_executions", acct.all_rule_executions(name), flatten_rule_execution),
        ):
            rows[table] += [
                {"pipeline": name, "dt": start[d["pipelineExecutionId"]], **flatten(d)}
                for d in items
            ]
    return rows


def source(root: Path, table: str) -> str:
    glob = layout.file_glob(DataRoot.of(root), TABLES[table])
    return f"({layout.read_parquet_sql(TABLES[table], repr(glob))})"


def stored(root: Path, table: str, *, latest: bool = True) -> list[dict]:
    """A table's rows (deduplicated: latest recorded_at per natural key), sans COMMON."""
    if not layout.table_files(DataRoot.of(root), table):
        return []
    dedup = layout.latest_only_sql(TABLES[table])
    sql = f"SELECT * FROM {source(root, table)} {dedup if latest else ''}"
    arrow = duckdb.connect().sql(sql).to_arrow_table()
    return [{k: v for k, v in r.items() if k not in COMMON} for r in arrow.to_pylist()]


def q(sql: str) -> list[tuple]:
    return duckdb.connect().execute(sql).fetchall()


def count(root: Path, table: str, *, latest: bool = True) -> int:
    return len(stored(root, table, latest=latest))


def by_key(table: str, rows: list[dict]) -> list[dict]:
    key = ("pipeline", *TABLES[table].key)
    return sorted(rows, key=lambda r: tuple(str(r[k]) for k in key))


def assert_matches_model(root: Path, acct: Account) -> dict[str, int]:
    expected = model_rows(acct)
    sizes = {}
    for table in EXECUTION_TABLES:
        got = by_key(table, stored(root, table))
        want = by_key(table, expected[table])
        assert len(got) == len(want), table
        for g, w in zip(got, want, strict=True):
            assert g == w, table
        sizes[table] = len(got)
    return sizes


def open_executions(acct: Account) -> dict[str, dict[str, tuple]]:
    """pipeline -> {execution id: (status, lastUpdateTime)} of what the model shows."""
    return {
        name: {i: (s["status"], s["lastUpdateTime"]) for i, s in _summaries(acct, name).items()}
        for name in acct.pipeline_names()
    }


def recorded_day(acct: Account):
    """The dt of what has no start time of its own (definitions): the UTC day of the
    run's clock, here the simulated account's (the CLI's is the wall clock)."""
    return acct.now.astimezone(UTC).date()


def cli(*args: str, env: dict | None = None):
    return CliRunner().invoke(main, ["collect", *args], env=env, catch_exceptions=False)


# --- the full account -----------------------------------------------------------------


def test_first_run_records_everything_the_simulator_holds(tmp_path):
    acct = Account(pipelines=20, days=30, seed=7, now=NOW)
    with SimulatorServer(acct) as srv:
        result = run(tmp_path, srv, acct, workers=8)
        server_calls = Counter(srv.calls)
    assert result.exit_code == 0 and result.pipelines_recorded == 20
    sizes = assert_matches_model(tmp_path, acct)
    assert sizes == {t: result.rows_written[t] for t in EXECUTION_TABLES}
    assert sizes["executions"] > 3000 and sizes["action_executions"] > 10000
    # a clean run: one HTTP request per logical call, as the server counted them
    assert result.api_calls == result.api_attempts == server_calls
    # one GetPipelineExecution per execution, one GetPipeline/GetPipelineState per pipeline
    assert result.api_calls["GetPipelineExecution"] == sizes["executions"]
    assert result.api_calls["GetPipeline"] == result.api_calls["GetPipelineState"] == 20
    assert result.api_calls["GetCallerIdentity"] == result.api_calls["ListPipelines"] == 1
    # the definitions, exactly, and one state snapshot per pipeline
    definitions, actions = [], []
    for name in acct.pipeline_names():
        row, action_rows = flatten_pipeline(acct.call("GetPipeline", {"name": name}))
        definitions.append({"pipeline": name, "dt": recorded_day(acct), **row})
        actions += [{"pipeline": name, "dt": recorded_day(acct), **a} for a in action_rows]
    assert by_key("pipelines", stored(tmp_path, "pipelines")) == by_key("pipelines", definitions)
    assert by_key("pipeline_actions", stored(tmp_path, "pipeline_actions")) == by_key(
        "pipeline_actions", actions
    )
    hashes = q(
        f"SELECT count(DISTINCT pipeline), count(DISTINCT snapshot_at) "
        f"FROM {source(tmp_path, 'stage_states')}"
    )
    assert hashes == [(20, 1)]
    runs = q(
        f"SELECT status, pipelines_recorded, api_calls, api_calls_json, throttles "
        f"FROM read_parquet('{tmp_path}/collection_runs/*/*.parquet')"
    )
    assert runs == [
        (
            "succeeded",
            20,
            result.api_calls.total(),
            json.dumps(dict(sorted(server_calls.items()))),
            0,
        )
    ]
    # no temporary file left, partition keys only in paths
    assert list((tmp_path / ".tmp").iterdir()) == []
    some = next(tmp_path.glob("executions/*/*/*.parquet"))
    assert {"pipeline", "dt"}.isdisjoint(pq.read_schema(some).names)


def test_second_run_and_incremental_run(tmp_path):
    acct = Account(pipelines=6, days=10, seed=13, now=NOW)
    with SimulatorServer(acct) as srv:
        first = run(tmp_path, srv, acct)
        assert first.exit_code == 0
        assert_matches_model(tmp_path, acct)
        before = open_executions(acct)
        open_ids = {
            (p, i) for p, ex in before.items() for i, (s, _) in ex.items()
            if s not in TERMINAL_EXECUTION
        }  # fmt: skip
        assert open_ids, "the scenario needs executions in progress"
        dedup = {t: count(tmp_path, t) for t in EXECUTION_TABLES}

        # right after: nothing new; only the non-terminal executions are polled again
        srv.calls.clear()
        second = run(tmp_path, srv, acct)
        assert second.exit_code == 0
        assert {t: count(tmp_path, t) for t in EXECUTION_TABLES} == dedup
        assert second.api_calls["GetPipelineExecution"] == len(open_ids)
        assert second.rows_written.get("executions", 0) == len(open_ids)
        assert (
            second.api_calls["GetPipelineState"] == second.api_calls["ListPipelineExecutions"] == 6
        )
        assert "GetPipeline" not in second.api_calls  # versions unchanged
        assert not {"stage_states", "pipelines"} & set(second.rows_written)  # nothing changed

        # idle pipelines (nothing in progress) cost exactly 2 calls each, plus the run's 2
        idle = sorted(set(acct.pipeline_names()) - {p for p, _ in open_ids})
        assert idle, "the scenario needs idle pipelines"
        third = run(tmp_path, srv, acct, include=idle)
        assert dict(third.api_calls) == {
            "GetCallerIdentity": 1,
            "ListPipelines": 1,
            "GetPipelineState": len(idle),
            "ListPipelineExecutions": len(idle),
        }
        assert third.rows_written == {}

        # the clock moves: only new and changed executions are fetched
        acct.advance(hours=8)
        after = open_executions(acct)
        changed = {
            (p, i) for p, ex in after.items() for i, now_seen in ex.items()
            if i not in before[p] or (p, i) in open_ids or before[p][i] != now_seen
        }  # fmt: skip
        finished = {(p, i) for p, i in open_ids if after[p][i][0] in TERMINAL_EXECUTION}
        assert finished and changed - open_ids, "the scenario needs progress and new runs"
        fourth = run(tmp_path, srv, acct)
        assert fourth.exit_code == 0
        assert fourth.api_calls["GetPipelineExecution"] == len(changed)
        written = q(f"SELECT pipeline, execution_id, run_id FROM {source(tmp_path, 'executions')}")
        assert {(p, i) for p, i, r in written if r == fourth.run_id} == changed
    assert_matches_model(tmp_path, acct)
    statuses = {
        (r["pipeline"], r["execution_id"]): r["status"] for r in stored(tmp_path, "executions")
    }
    assert all(statuses[k] in TERMINAL_EXECUTION for k in finished)


def test_names_with_dots_ats_and_digits_stay_text(tmp_path):
    acct = Account(names=["svc.api@prod-1_x", "42"], days=3, seed=3, now=NOW)
    with SimulatorServer(acct) as srv:
        assert run(tmp_path, srv, acct).exit_code == 0
    assert sorted(p.name for p in (tmp_path / "executions").iterdir()) == [
        "pipeline=42",
        "pipeline=svc.api@prod-1_x",
    ]
    assert not list(tmp_path.rglob("*%*"))
    types = q(
        f"SELECT DISTINCT pipeline, typeof(pipeline) FROM {source(tmp_path, 'executions')} "
        "ORDER BY 1"
    )
    assert types == [("42", "VARCHAR"), ("svc.api@prod-1_x", "VARCHAR")]
    assert_matches_model(tmp_path, acct)


def test_pipeline_and_exclude_globs(tmp_path):
    acct = Account(names=["web-prod", "web-dev", "api-prod"], days=2, seed=5, now=NOW)
    with SimulatorServer(acct) as srv:
        result = run(tmp_path, srv, acct, include=["*-prod", "web-*"], exclude=["web-dev"])
    assert (result.pipelines_listed, result.pipelines_recorded) == (3, 2)
    assert sorted(p.name for p in (tmp_path / "pipelines").iterdir()) == [
        "pipeline=api-prod",
        "pipeline=web-prod",
    ]


# --- faults ---------------------------------------------------------------------------


def test_throttling_errors_and_dropped_connections_change_nothing(tmp_path, fast_backoff):
    acct = Account(pipelines=4, days=6, seed=21, now=NOW)
    clean = tmp_path / "clean"
    faulty = tmp_path / "faulty"
    with SimulatorServer(acct) as srv:
        assert run(clean, srv, acct).exit_code == 0
    faults = Faults(throttle_rate=0.3, error_burst=5, error_rate=0.05, drop_rate=0.05, seed=4)
    with SimulatorServer(acct, faults=faults) as srv:
        result = run(faulty, srv, acct)
        faulted = Counter(srv.faulted)
        attempts = Counter(srv.calls)
    assert result.exit_code == 0 and result.pipelines_recorded == 4
    assert faulted["throttle"] > 50 and faulted["error"] >= 5 and faulted["drop"] > 0
    assert result.throttles == faulted["throttle"]
    assert result.retries == sum(faulted.values())
    assert result.api_attempts == attempts  # every HTTP request the server saw, by operation
    for table in EXECUTION_TABLES:
        assert by_key(table, stored(faulty, table)) == by_key(table, stored(clean, table))
    assert_matches_model(faulty, acct)
    (row,) = q(
        f"SELECT throttles, retries, transient_errors "
        f"FROM read_parquet('{faulty}/collection_runs/*/*.parquet')"
    )
    assert row == (faulted["throttle"], sum(faulted.values()), faulted["error"] + faulted["drop"])


def test_pipeline_deleted_mid_run_is_a_warning(tmp_path):
    acct = Account(pipelines=4, days=3, seed=9, now=NOW)
    gone = acct.pipeline_names()[1]
    with SimulatorServer(acct, faults=Faults(vanish=(gone,))) as srv:
        result = cli(
            "--data", str(tmp_path), "--endpoint-url", srv.endpoint_url, "--log-format", "json"
        )
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.splitlines()]
    warnings = [line for line in lines if line["level"] == "WARNING"]
    assert len(warnings) == 1
    assert warnings[0]["pipeline"] == gone and warnings[0]["account"] == "123456789012"
    assert warnings[0]["region"] == "us-east-1" and "deleted" in warnings[0]["message"]
    recorded = {p.name.removeprefix("pipeline=") for p in (tmp_path / "executions").iterdir()}
    assert recorded == set(acct.pipeline_names()) - {gone}
    (row,) = q(
        f"SELECT status, pipelines_recorded, pipelines_vanished "
        f"FROM read_parquet('{tmp_path}/collection_runs/*/*.parquet')"
    )
    assert row == ("succeeded", 3, 1)


def test_access_denied_is_exit_1_and_one_line(tmp_path):
    acct = Account(pipelines=2, days=1, seed=1, now=NOW)
    with SimulatorServer(acct, faults=Faults(access_denied=True)) as srv:
        result = cli("--data", str(tmp_path), "--endpoint-url", srv.endpoint_url, "--quiet")
    assert result.exit_code == EXIT_PARTIAL == 1
    (line,) = result.output.splitlines()
    assert "AccessDeniedException" in line and "codepipeline:ListPipelines" in line
    assert "region=us-east-1" in line and "Traceback" not in result.output
    (row,) = q(
        f"SELECT status, errors_json FROM read_parquet('{tmp_path}/collection_runs/*/*.parquet')"
    )
    assert row[0] == "failed" and "AccessDeniedException" in row[1]


# --- usage and configuration errors -------------------------------------------------


def test_since_after_now_is_refused_before_credentials_or_the_data_root(tmp_path, monkeypatch):
    monkeypatch.setattr(config_mod, "utcnow", lambda: datetime(2026, 3, 1, 12, tzinfo=UTC))
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")  # asked for, they would be the error
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    root = tmp_path / "data"
    result = cli("--data", str(root), "--since", "2030-01-01",
                 "--endpoint-url", "http://127.0.0.1:9")  # fmt: skip
    assert result.exit_code == EXIT_USAGE
    assert result.output.splitlines() == [
        "Error: --since 2030-01-01T00:00:00+00:00 is after now (2026-03-01T12:00:00+00:00): "
        "no execution would be recorded"
    ]
    assert not root.exists()


def test_usage_errors_exit_2_with_one_line(tmp_path, monkeypatch):
    bad_flag = cli("--data", str(tmp_path), "--workers", "0")
    assert bad_flag.exit_code == EXIT_USAGE and "--workers" in bad_flag.output
    bad_since = cli("--data", str(tmp_path), "--since", "last tuesday")
    assert bad_since.exit_code == EXIT_USAGE
    assert bad_since.output.strip().splitlines() == [
        "Error: --since: 'last tuesday' is not a date (YYYY-MM-DD), a time (ISO 8601) "
        "or a relative age like 30d, 12h, 90m, 2w"
    ]
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    no_region = cli("--data", str(tmp_path))
    assert no_region.exit_code == EXIT_USAGE
    assert no_region.output.splitlines() == [
        "Error: no region: pass --region or set AWS_REGION or a profile region"
    ]
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    no_creds = cli(
        "--data", str(tmp_path), "--region", "eu-west-1", "--endpoint-url", "http://127.0.0.1:9"
    )
    assert no_creds.exit_code == EXIT_USAGE
    assert no_creds.output.splitlines() == [
        "Error: no AWS credentials: Unable to locate credentials"
    ]
    no_profile = cli("--data", str(tmp_path), "--profile", "nope", "--region", "eu-west-1")
    assert no_profile.exit_code == EXIT_USAGE
    assert no_profile.output.splitlines() == ["Error: The config profile (nope) could not be found"]


def test_options_come_from_cprec_environment(tmp_path, monkeypatch):
    acct = Account(names=["alpha", "beta"], days=1, seed=2, now=NOW)
    with SimulatorServer(acct) as srv:
        env = {
            "CPREC_DATA": str(tmp_path),
            "CPREC_ENDPOINT_URL": srv.endpoint_url,
            "CPREC_REGION": "us-east-1",
            "CPREC_EXCLUDE": "beta",
            "CPREC_QUIET": "1",
            "CPREC_SINCE": "2026-10-31",
        }
        result = cli(env=env)
    assert result.exit_code == 0 and result.output == ""
    assert [p.name for p in (tmp_path / "pipelines").iterdir()] == ["pipeline=alpha"]


def test_help_documents_exit_codes():
    text = cli("--help").output
    for line in ("0   every selected pipeline was recorded", "1   some pipelines", "2   usage",
                 "75  another collector holds"):  # fmt: skip
        assert line in text
    assert "CPREC_DATA" in text and "--since DATE|30d" in text


# --- crashes and overlapping runs (real processes) ------------------------------------


def _published(root: Path) -> list[Path]:
    return [f for t in root.iterdir() if t.name in TABLES for f in t.rglob("*") if f.is_file()]


def _spawn(root: Path, srv, pause: str, workers: int = 2) -> subprocess.Popen:
    env = {**os.environ, PAUSE_ENV: pause}
    args = ["--data", str(root), "--endpoint-url", srv.endpoint_url, "--quiet"]
    args += ["--workers", str(workers)]
    return subprocess.Popen(
        [*COLLECT, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def test_sigkill_mid_write_leaves_no_partial_file_and_next_run_completes(tmp_path):
    acct = Account(pipelines=4, days=8, seed=13, now=NOW)
    with SimulatorServer(acct) as srv:
        proc = _spawn(tmp_path, srv, "40:60", workers=1)
        try:
            # the 40th file is written and fsynced, not yet renamed into its table
            wait_for(lambda: len(_published(tmp_path)) == 39 and pending(tmp_path))
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
        finally:
            proc.kill()
        assert proc.returncode == -signal.SIGKILL
        (leftover,) = pending(tmp_path)
        assert leftover.name.endswith(".parquet.tmp") and leftover.stat().st_size > 0
        files = _published(tmp_path)
        assert len(files) == 39  # killed mid-history
        assert all(f.suffix == ".parquet" for f in files)
        for f in files:
            pq.read_metadata(f)  # every published file is whole
        assert not (tmp_path / "collection_runs").exists()

        result = run(tmp_path, srv, acct)
        assert result.exit_code == 0
    assert pending(tmp_path) == []
    assert_matches_model(tmp_path, acct)


def test_overlapping_runs_one_writes_one_exits_locked(tmp_path):
    acct = Account(pipelines=2, days=2, seed=17, now=NOW)
    with SimulatorServer(acct) as srv:
        first = _spawn(tmp_path, srv, "1:2")  # holds the lock, pauses 2 s at its first file
        try:
            wait_for(lambda: pending(tmp_path))
            second = cli("--data", str(tmp_path), "--endpoint-url", srv.endpoint_url)
            assert second.exit_code == EXIT_LOCKED == 75
            (line,) = second.output.splitlines()
            assert line.startswith(f"Error: another collector (pid {first.pid}) holds ")
            assert first.wait(30) == 0, first.stderr.read()
        finally:
            first.kill()
    run_ids = {"-".join(f.name.split("-")[1:3]) for f in tmp_path.rglob("part-*.parquet")}
    assert len(run_ids) == 1
    assert_matches_model(tmp_path, acct)


def test_runs_every_half_hour_follow_retries_and_revivals(tmp_path):
    """A cron every 30 min over 8 h: the history matches the model at the end, and a
    Failed execution revived by a manual stage retry was re-recorded."""
    acct = Account(pipelines=6, days=4, seed=19, now=NOW)
    with SimulatorServer(acct) as srv:
        for _ in range(16):
            assert run(tmp_path, srv, acct).exit_code == 0
            acct.advance(minutes=30)
        assert run(tmp_path, srv, acct).exit_code == 0
    assert_matches_model(tmp_path, acct)
    history = q(
        f"SELECT execution_id, list(status ORDER BY recorded_at) "
        f"FROM {source(tmp_path, 'executions')} GROUP BY ALL"
    )
    revived = [(i, s) for i, s in history if "Failed" in s and s[-1] != "Failed"]
    assert len(revived) == 1, revived


def test_seed_samples_over_http_land_as_their_exact_rows(tmp_path):
    """SeedAccount serves the shared/seeds samples verbatim; through boto3 they
    become the rows test_flatten pins down, in the partitions the contract names."""
    fixtures = Path(__file__).parent / "fixtures"
    execution = json.loads((fixtures / "get_pipeline_execution.json").read_text())
    state = json.loads((fixtures / "get_pipeline_state.json").read_text())
    acct = SeedAccount()
    with SimulatorServer(acct) as srv:
        first = run(tmp_path, srv, acct)
        second = run(tmp_path, srv, acct)
        client = boto3.client("codepipeline", endpoint_url=srv.endpoint_url)
        as_received = client.get_pipeline_state(name="string")  # timestamps as datetimes
    assert first.exit_code == second.exit_code == 0
    assert first.api_calls["GetPipelineExecution"] == 1
    assert "GetPipelineExecution" not in second.api_calls  # terminal and unchanged
    assert second.rows_written == {}
    day = recorded_day(acct)  # no startTime in the sample: the day it was recorded
    (summary,) = acct.call("ListPipelineExecutions", {"pipelineName": "MyFirstPipeline"})[
        "pipelineExecutionSummaries"
    ]
    rows = flatten_execution(execution, summary)
    for table in ("executions", "execution_revisions", "execution_variables"):
        want = [{"pipeline": "MyFirstPipeline", "dt": day, **r} for r in rows[table]]
        assert by_key(table, stored(tmp_path, table)) == by_key(table, want)
    (artifact,) = [r for r in stored(tmp_path, "execution_revisions") if r["kind"] == "artifact"]
    assert artifact["revision_url"] == ""
    assert artifact["created"] == datetime(2015, 3, 25, 15, 53, 57, 768977, tzinfo=UTC)
    # the hash is of the response as boto3 hands it over (datetimes, not epoch numbers)
    snapshot = flatten_pipeline_state(state, acct.now)
    snapshot["stage_states"][0]["state_hash"] = state_hash(as_received)
    for table, table_rows in snapshot.items():
        got = [r for r in stored(tmp_path, table) if r["pipeline"] == "string"]
        want = [{"pipeline": "string", "dt": acct.now.date(), **r} for r in table_rows]
        assert by_key(table, got) == by_key(table, want)


def test_clients_retry_and_count_every_attempt(tmp_path, fast_backoff):
    client = make_client("codepipeline", region="us-east-1", endpoint_url="http://127.0.0.1:9")
    # max_attempts 10 = 10 retries after the first attempt, as botocore reads it
    assert client.meta.config.retries == {"mode": "standard", "total_max_attempts": 11}
    acct = Account(names=["one"], days=1, seed=1, now=NOW)
    with SimulatorServer(acct, faults=Faults(throttle_burst=3, error_burst=2)) as srv:
        stats = CallStats()
        client = make_client("codepipeline", region="us-east-1", endpoint_url=srv.endpoint_url,
                             stats=stats)  # fmt: skip
        assert [p["name"] for p in client.list_pipelines()["pipelines"]] == ["one"]
        assert srv.calls == {"ListPipelines": 6}
    assert stats.calls == {"ListPipelines": 1} and stats.attempts == {"ListPipelines": 6}
    assert stats.throttles == {"ListPipelines": 3} and stats.transient == {"ListPipelines": 2}
    assert stats.retries == 5


def test_buffered_rows_stay_bounded_whatever_the_history(tmp_path, monkeypatch):
    """Memory does not grow with history: with a 40-row bound, a long backfill (thousands
    of rows per pipeline) never holds more than 40 rows in any pipeline's buffer, the
    listing of executions is spilled (none held as dicts), and the same history lands
    as with an unbounded buffer, in more files than partitions."""
    monkeypatch.setattr("recorder.collect.FLUSH_ROWS", 40)
    batches, listings = [], []

    class Recorded(Batch):
        def __init__(self, *args, **kw):
            super().__init__(*args, **kw)
            batches.append(self)

    class Spied(collect_mod._Listing):
        def __init__(self, *args, **kw):
            super().__init__(*args, **kw)
            listings.append(self)

    monkeypatch.setattr(collect_mod, "Batch", Recorded)
    monkeypatch.setattr(collect_mod, "_Listing", Spied)
    acct = Account(pipelines=2, days=30, seed=23, now=NOW)
    with SimulatorServer(acct) as srv:
        assert run(tmp_path, srv, acct).exit_code == 0
    counts = assert_matches_model(tmp_path, acct)
    # 2 pipelines x 30 days at ~6 executions a day (the model's exact rows checked above):
    # 1,720 action executions, 43 times the bound
    assert counts["executions"] == 374 and counts["action_executions"] == 1720
    written = sum(sum(b.written.values()) for b in batches)
    assert written >= sum(counts.values())  # every recorded row went through a batch
    assert [b.limit for b in batches] == [40, 40]
    assert max(b.peak for b in batches) == 40  # reached, never exceeded
    assert sum(len(x) for x in listings) == counts["executions"]  # all spilled, then read
    files = list(tmp_path.glob("action_executions/*/*/*.parquet"))
    assert len(files) > len({f.parent for f in files})  # a partition got more than one flush
    assert max(pq.read_metadata(f).num_rows for f in files) <= 40


def test_a_failure_mid_pipeline_keeps_the_oldest_first_prefix(tmp_path, monkeypatch):
    """GetPipelineExecution fails for good on the 10th execution of one pipeline: exit 1,
    the other pipeline and that pipeline's 9 oldest executions are kept, and the next
    run completes the history from the watermark they leave."""
    acct = Account(pipelines=2, days=4, seed=29, now=NOW)
    victim = acct.pipeline_names()[0]
    real = fetch.get_pipeline_execution
    seen = Counter()

    def flaky(client, name, execution_id):
        seen[name] += 1
        if name == victim and seen[name] == 10:
            error = {"Error": {"Code": "InternalFailure", "Message": "boom"}}
            raise ClientError(error, "GetPipelineExecution")
        return real(client, name, execution_id)

    monkeypatch.setattr(fetch, "get_pipeline_execution", flaky)
    with SimulatorServer(acct) as srv:
        first = run(tmp_path, srv, acct)
        assert first.exit_code == EXIT_PARTIAL
        assert first.pipelines_failed == {
            f"123456789012/us-east-1/{victim}": "InternalFailure: boom"
        }
        kept = [r for r in stored(tmp_path, "executions") if r["pipeline"] == victim]
        oldest = sorted(_summaries(acct, victim).values(), key=lambda s: s["startTime"])[:9]
        assert sorted(r["execution_id"] for r in kept) == sorted(
            s["pipelineExecutionId"] for s in oldest
        )
        # children only of the executions kept: the others' were dropped, not written
        for table in ("action_executions", "execution_revisions", "execution_variables"):
            children = {r["execution_id"] for r in stored(tmp_path, table)
                        if r["pipeline"] == victim}  # fmt: skip
            assert children <= {r["execution_id"] for r in kept}, table
        second = run(tmp_path, srv, acct)
    assert second.exit_code == 0
    assert_matches_model(tmp_path, acct)
    # so the children of the executions the first run could not fetch were written once,
    # by the second run (without the drop, they were written by both)
    late = {s["pipelineExecutionId"] for s in _summaries(acct, victim).values()} - {
        r["execution_id"] for r in kept
    }
    for table in ("action_executions", "execution_revisions"):
        raw = [r for r in stored(tmp_path, table, latest=False)
               if r["pipeline"] == victim and r["execution_id"] in late]  # fmt: skip
        assert raw and len(raw) == len(
            [
                r
                for r in stored(tmp_path, table)
                if r["pipeline"] == victim and r["execution_id"] in late
            ]
        ), table


def test_a_write_failing_mid_flush_never_publishes_an_execution_without_children(
    tmp_path, monkeypatch
):
    """The second action_executions file of one pipeline cannot be written (EIO on that
    partition): the executions buffered after it are not written either, so the next
    run fetches them again, children included, and the history is whole."""
    import errno

    import recorder.store

    acct = Account(pipelines=2, days=4, seed=29, now=NOW)
    victim = acct.pipeline_names()[0]
    real = recorder.store.write_parquet_atomic
    seen = Counter()

    def failing(table_data, dest, root, *args):
        if f"action_executions/pipeline={victim}/" in str(dest):
            seen["writes"] += 1
            if seen["writes"] == 2:
                raise OSError(errno.EIO, "Input/output error")
        return real(table_data, dest, root, *args)

    monkeypatch.setattr(recorder.store, "write_parquet_atomic", failing)
    with SimulatorServer(acct) as srv:
        first = run(tmp_path, srv, acct)
        assert first.exit_code == EXIT_PARTIAL
        assert list(first.pipelines_failed) == [f"123456789012/us-east-1/{victim}"]
        recorded = {r["execution_id"] for r in stored(tmp_path, "executions")
                    if r["pipeline"] == victim}  # fmt: skip
        with_children = {r["execution_id"] for r in stored(tmp_path, "action_executions")
                         if r["pipeline"] == victim}  # fmt: skip
        assert recorded <= with_children  # no execution published before its children
        monkeypatch.setattr(recorder.store, "write_parquet_atomic", real)
        assert run(tmp_path, srv, acct).exit_code == 0
    assert_matches_model(tmp_path, acct)
