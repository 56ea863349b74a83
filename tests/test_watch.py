"""`cprec watch`: each rule at its boundary, the state between runs, and the deliveries
against real servers (http.server on loopback for the webhook, moto's server for SNS),
crashes included.

Every scenario is a small hand-built data root (conftest's builders) whose recorded clock
(queries/sql/watch/_clock.sql) is set by writing a collection run that starts at it:
each rule is checked one second before its threshold (nothing) and at it (fires).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import uuid
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import boto3
import pytest
from click.testing import CliRunner
from conftest import ACCOUNT, REGION, action_row, common_columns, execution_row

import queries
from queries.watch import evaluate, load_rules
from recorder.cli import main
from recorder.store import write_rows
from recorder.watch import STATE_FILE, human

ROOT = Path(__file__).resolve().parent.parent
S = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
SEC = timedelta(seconds=1)
H = timedelta(hours=1)
D = timedelta(days=1)
LINK = "https://us-east-1.console.aws.amazon.com/codesuite/codepipeline/pipelines/app"


# -- builders -------------------------------------------------------------------------


def clock_at(root: Path, at: datetime) -> None:
    """A collection run starting at `at`: the recorded clock moves there."""
    run_id = f"run-{uuid.uuid4().hex[:8]}"
    row = {**common_columns(at, run_id), "dt": at.date(), "started_at": at, "finished_at": at,
           "status": "succeeded", "errors_json": "[]"}  # fmt: skip
    write_rows(root, "collection_runs", [row], pipeline=None, run_id=run_id)


def put(root: Path, table: str, rows: list[dict], pipeline: str = "app") -> None:
    write_rows(root, table, rows, pipeline=pipeline, run_id="r")


def holds(root: Path, rule: str, rules=None) -> list[dict]:
    con = queries.connect(root, cache=False)
    rows, _ = evaluate(con, rules or load_rules(None))
    return [r for r in rows if r["rule"] == rule]


def pending_approval(root: Path) -> None:
    put(root, "executions", [execution_row("X1", "InProgress", S, S)])
    put(root, "action_executions", [action_row("X1", 1, "Deploy", "Approve", "InProgress", S, S)])


def approve(root: Path, at: datetime) -> None:
    put(root, "executions", [execution_row("X1", "Succeeded", S, at, recorded_at=at)])
    put(root, "action_executions",
        [action_row("X1", 1, "Deploy", "Approve", "Succeeded", S, at, recorded_at=at)])  # fmt: skip


def rules_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rules.toml"
    path.write_text(text)
    return path


def watch(root: Path, *args: str):
    return CliRunner().invoke(main, ["watch", "--data", str(root), *args])


# -- the rules, each at its boundary ----------------------------------------------------


def test_approval_waiting_fires_at_its_hours(tmp_path):
    pending_approval(tmp_path)
    clock_at(tmp_path, S + 24 * H - SEC)
    assert holds(tmp_path, "approval-waiting") == []
    clock_at(tmp_path, S + 24 * H)
    [row] = holds(tmp_path, "approval-waiting")
    assert (row["pipeline"], row["stage"], row["action"], row["subject"]) == (
        "app", "Deploy", "Approve", "Deploy/Approve/X1-a1")  # fmt: skip
    assert (row["since"], row["age_s"], row["threshold"], row["repeat_s"]) == (
        S, 86400.0, 86400.0, 86400.0)  # fmt: skip
    assert holds(tmp_path, "stuck") == []  # waiting for a person is not stuck


def baseline_and_running(root: Path) -> None:
    """Five Succeeded builds of 100..500 s in the last days (p95 = 400 + 0.8 x 100 = 480 s),
    and X running its build since S."""
    executions, actions = [], []
    for i, seconds in enumerate((100, 200, 300, 400, 500), 1):
        start = S - i * D
        end = start + timedelta(seconds=seconds)
        executions.append(execution_row(f"B{i}", "Succeeded", start, end))
        actions.append(action_row(f"B{i}", 1, "Build", "Compile", "Succeeded", start, end))
    executions.append(execution_row("X", "InProgress", S, S))
    actions.append(action_row("X", 1, "Build", "Compile", "InProgress", S, S))
    put(root, "executions", executions)
    put(root, "action_executions", actions)


def test_running_long_fires_at_factor_times_its_own_p95(tmp_path):
    baseline_and_running(tmp_path)
    clock_at(tmp_path, S + 1440 * SEC - SEC)
    assert holds(tmp_path, "running-long") == []
    clock_at(tmp_path, S + 1440 * SEC)
    [row] = holds(tmp_path, "running-long")
    assert (row["subject"], row["age_s"], row["threshold"], row["detail"]) == (
        "Build/Compile/X-a1",
        1440.0,
        1440.0,
        "3 x its p95 of 480.0 s over 5 runs in 30 days",
    )


def test_running_long_of_a_stage_and_the_absolute_bound(tmp_path):
    baseline_and_running(tmp_path)
    stage = load_rules(rules_file(tmp_path, '[running-long]\nscope = "stage"\n'))
    clock_at(tmp_path, S + 1440 * SEC - SEC)
    assert holds(tmp_path, "running-long", stage) == []
    clock_at(tmp_path, S + 1440 * SEC)
    [row] = holds(tmp_path, "running-long", stage)
    assert (row["stage"], row["action"], row["subject"], row["threshold"]) == (
        "Build", None, "Build/X", 1440.0)  # fmt: skip
    # fewer Succeeded runs than min_runs: max_hours
    few = load_rules(rules_file(tmp_path, "[running-long]\nmin_runs = 6\nmax_hours = 2\n"))
    assert holds(tmp_path, "running-long", few) == []
    clock_at(tmp_path, S + 2 * H - SEC)
    assert holds(tmp_path, "running-long", few) == []
    clock_at(tmp_path, S + 2 * H)
    [row] = holds(tmp_path, "running-long", few)
    assert (row["threshold"], row["detail"]) == (
        7200.0, "the absolute bound (5 of the 6 runs needed for a p95 in 30 days)")  # fmt: skip


def test_stuck_fires_after_minutes_without_a_change(tmp_path):
    put(tmp_path, "executions", [execution_row("X", "InProgress", S, S + 600 * SEC)])
    put(tmp_path, "action_executions", [
        action_row("X", 1, "Source", "Checkout", "Succeeded", S, S + 60 * SEC),
        action_row("X", 2, "Build", "Compile", "InProgress", S + 120 * SEC, S + 300 * SEC),
    ])  # fmt: skip
    changed = S + 600 * SEC  # the execution's last update, later than its actions'
    clock_at(tmp_path, changed + H - SEC)
    assert holds(tmp_path, "stuck") == []
    clock_at(tmp_path, changed + H)
    [row] = holds(tmp_path, "stuck")
    assert (row["stage"], row["action"], row["execution_id"], row["since"], row["age_s"]) == (
        "Build", "Compile", "X", changed, 3600.0)  # fmt: skip
    assert row["detail"] == "execution X InProgress"


def test_failing_streak_fires_at_its_length_and_ignores_superseded_runs(tmp_path):
    def execution(eid, status, day, error=None):
        start = S + day * D
        end = start + 60 * SEC
        put(tmp_path, "executions", [execution_row(eid, status, start, end)])
        if status == "Superseded":  # before it reached Build
            return
        put(tmp_path, "action_executions", [action_row(
            eid, 1, "Build", "Compile", "Failed" if error else "Succeeded", start, end, error=error,
        )])  # fmt: skip

    execution("E1", "Succeeded", 0)
    execution("E2", "Failed", 1, ("JobFailed", "exit status 2"))
    execution("E3", "Superseded", 2)
    execution("E4", "Failed", 3, ("JobFailed", "exit status 2"))
    clock_at(tmp_path, S + 10 * D)
    assert holds(tmp_path, "failing-streak") == []  # 2 in a row
    execution("E5", "Failed", 4, ("Timeout", "build timed out"))
    [row] = holds(tmp_path, "failing-streak")
    assert (row["value"], row["threshold"], row["since"], row["execution_id"]) == (
        3, 3, S + D, "E5")  # fmt: skip
    assert (row["stage"], row["action"], row["detail"]) == ("Build", "Compile",
                                                            "Timeout: build timed out")  # fmt: skip
    # per stage, the same streak of the Build stage's runs
    per_stage = load_rules(rules_file(tmp_path, '[failing-streak]\nscope = "stage"\n'))
    [row] = holds(tmp_path, "failing-streak", per_stage)
    assert (row["subject"], row["value"]) == ("Build", 3)
    execution("E6", "Succeeded", 5)
    assert holds(tmp_path, "failing-streak") == []


def test_no_deploy_fires_after_days_without_a_deployment(tmp_path):
    put(tmp_path, "pipeline_actions", [
        {**common_columns(S), "dt": S.date(), "pipeline_version": 1, "stage": "Deploy",
         "stage_index": 1, "action": "Release", "category": "Deploy"},
    ])  # fmt: skip
    end = S + 100 * SEC
    put(tmp_path, "executions", [execution_row("D1", "Succeeded", S, end)])
    put(
        tmp_path,
        "action_executions",
        [action_row("D1", 1, "Deploy", "Release", "Succeeded", S, end)],
    )
    clock_at(tmp_path, end + 10 * D - SEC)
    assert holds(tmp_path, "no-deploy") == []
    clock_at(tmp_path, end + 10 * D)
    [row] = holds(tmp_path, "no-deploy")
    assert (row["stage"], row["since"], row["age_s"], row["detail"]) == (
        "Deploy", end, 864000.0, "last deployment D1")  # fmt: skip


def test_blocked_fires_after_hours_of_a_disabled_transition(tmp_path):
    disabled = S - 2 * H
    put(tmp_path, "stage_states", [
        {**common_columns(S), "dt": S.date(), "snapshot_at": S, "stage": name, "stage_index": i,
         "transition_enabled": i == 0, **({} if i == 0 else {
             "transition_disabled_reason": "Freeze", "transition_last_changed_by": "bob",
             "transition_last_changed_at": disabled})}
        for i, name in enumerate(["Source", "Deploy"])
    ])  # fmt: skip
    clock_at(tmp_path, disabled + 24 * H - SEC)
    assert holds(tmp_path, "blocked") == []
    clock_at(tmp_path, disabled + 24 * H)
    [row] = holds(tmp_path, "blocked")
    assert (row["stage"], row["since"], row["detail"]) == ("Deploy", disabled, "Freeze by bob")


def test_overrides_by_glob_later_ones_win(tmp_path):
    pending_approval(tmp_path)
    clock_at(tmp_path, S + 2 * H)
    path = rules_file(tmp_path, """
[approval-waiting]
hours = 1
[[override]]
pipeline = ["ap?", "other"]
approval-waiting.hours = 3
[[override]]
pipeline = "a*"
approval-waiting.hours = 2
""")  # fmt: skip
    [row] = holds(tmp_path, "approval-waiting", load_rules(path))
    assert row["threshold"] == 7200.0
    path.write_text('[[override]]\npipeline = "web*"\napproval-waiting.enabled = false\n')
    assert len(holds(tmp_path, "approval-waiting", load_rules(path))) == 0  # 24 h default
    path.write_text('[[override]]\npipeline = "app"\napproval-waiting = {enabled = false}\n')
    assert holds(tmp_path, "approval-waiting", load_rules(path)) == []


@pytest.mark.parametrize(
    "text, error",
    [
        ("[stuck]\nminutes = 5 5\n",
         "Expected newline or end of document after a statement (at line 2, column 13)"),
        ("[stuck]\nminutez = 5\n",
         "unknown key stuck.minutez (valid: enabled, minutes, repeat_hours)"),
        ("[stuck]\nminutes = 'x'\n", "stuck.minutes must be a number of at least 0, not 'x'"),
        ("[[override]]\npipeline = 'a'\n[[override]]\npipeline = 'b'\nstuck.enabled = 1\n",
         "override[2].stuck.enabled must be true or false, not 1"),
        ("[[override]]\nstuck.minutes = 1\n",
         "override[1] has no pipeline (a GLOB or a list of GLOBs)"),
        ("[running-long]\nscope = 'job'\n",
         "running-long.scope must be 'action' or 'stage', not 'job'"),
        ("[failing-streak]\nfailures = 0\n",
         "failing-streak.failures must be a whole number of at least 1, not 0"),
        ("paging = true\n", "unknown key 'paging' (valid: deploy_stages, override, "
         "approval-waiting, running-long, stuck, failing-streak, no-deploy, blocked)"),
    ],
)  # fmt: skip
def test_a_bad_rules_file_is_one_line_naming_the_line_or_key(tmp_path, text, error):
    path = rules_file(tmp_path, text)
    pending_approval(tmp_path / "data")
    result = watch(tmp_path / "data", "--rules", str(path))
    assert result.exit_code == 2
    assert result.output == f"Error: rules file {path}: {error}\n"


def test_the_default_rules_are_the_shipped_file():
    result = CliRunner().invoke(main, ["watch", "--default-rules"])
    assert result.exit_code == 0
    assert result.output == (ROOT / "queries/sql/watch/default-rules.toml").read_text()
    assert load_rules(None).params["stuck"] == {"enabled": True, "minutes": 60, "repeat_hours": 0}


def test_human_durations():
    assert [human(s) for s in (0, 42, 60, 3599, 3600, 86400, 90061, 7 * 86400 - 1)] == [
        "0 s", "42 s", "1 min", "59 min 59 s", "1 h", "1 d", "1 d 1 h", "6 d 23 h"]  # fmt: skip


# -- state between runs -----------------------------------------------------------------

FIRE = (f"FIRING approval-waiting {ACCOUNT} {REGION} app Deploy/Approve: approval waiting for "
        f"1 d (limit 1 d); CodePipeline rejects it in 6 d {LINK}/executions/X1/timeline"
        f"?region={REGION}")  # fmt: skip


def test_an_alert_fires_once_repeats_as_configured_and_resolves(tmp_path):
    pending_approval(tmp_path)
    clock_at(tmp_path, S + 24 * H - SEC)
    first = watch(tmp_path)
    assert (first.exit_code, first.output) == (0, "")
    clock_at(tmp_path, S + 24 * H)
    fired = watch(tmp_path)
    assert (fired.exit_code, fired.stdout) == (3, FIRE + "\n")
    again = watch(tmp_path)  # same clock: still firing, nothing sent again
    assert (again.exit_code, again.stdout) == (3, "")
    clock_at(tmp_path, S + 48 * H - SEC)
    assert watch(tmp_path).stdout == ""  # repeat_hours = 24 after the last notification
    clock_at(tmp_path, S + 48 * H)
    repeat = watch(tmp_path)
    assert repeat.stdout.startswith("STILL FIRING approval-waiting ")
    assert "approval waiting for 2 d (limit 1 d); CodePipeline rejects it in 5 d" in repeat.stdout
    approve(tmp_path, S + 49 * H)
    clock_at(tmp_path, S + 50 * H)
    resolved = watch(tmp_path, "--format", "jsonl")
    assert resolved.exit_code == 0
    [record] = [json.loads(line) for line in resolved.stdout.splitlines()]
    assert record["event"] == "resolve"
    assert record["message"] == (f"RESOLVED approval-waiting {ACCOUNT} {REGION} app Deploy/Approve:"
                                 f" cleared after 2 d 2 h {LINK}/executions/X1/timeline"
                                 f"?region={REGION}")  # fmt: skip
    assert (record["at"], record["since"]) == ("2026-03-04T14:00:00Z", "2026-03-02T12:00:00Z")
    assert json.loads((tmp_path / STATE_FILE).read_text())["alerts"] == {}
    assert watch(tmp_path).output == ""


# -- the webhook on loopback ------------------------------------------------------------


class Hook:
    """A Slack-like incoming webhook: records each JSON body and its Idempotency-Key; answers
    503 to the first `failing` requests."""

    def __init__(self):
        self.bodies: list[dict] = []
        self.keys: list[str] = []
        self.failing = 0
        self.requests = 0
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hook.requests += 1
                if hook.failing > 0:
                    hook.failing -= 1
                    self.send_response(503)
                    self.end_headers()
                    return
                assert self.headers["Content-Type"] == "application/json"
                hook.bodies.append(json.loads(body))
                hook.keys.append(self.headers["Idempotency-Key"])
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/services/T0/B0/secret"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def hook(monkeypatch):
    monkeypatch.setenv("CPREC_TEST_WEBHOOK_DELAYS", "0.01,0.02")
    h = Hook()
    yield h
    h.server.shutdown()
    h.server.server_close()


def slack(line: str) -> dict:
    text, _, url = line.rpartition(" ")
    return {"text": f"{text}\n<{url}|Open in the AWS console>"}


def test_the_webhook_receives_slack_json(tmp_path, hook):
    pending_approval(tmp_path)
    clock_at(tmp_path, S + 24 * H)
    hook.failing = 2  # two 503s, then the third attempt goes through
    result = watch(tmp_path, "--webhook", hook.url)
    assert (result.exit_code, result.stdout, result.stderr) == (3, FIRE + "\n", "")
    assert hook.bodies == [slack(FIRE)]
    assert hook.requests == 3
    assert len(hook.keys[0]) == 32
    assert json.loads((tmp_path / STATE_FILE).read_text())["outbox"] == []


def test_a_webhook_that_fails_keeps_the_alert_pending_then_recovers(tmp_path, hook):
    pending_approval(tmp_path)
    clock_at(tmp_path, S + 24 * H)
    hook.failing = 3  # every attempt of this run
    down = watch(tmp_path, "--webhook", hook.url)
    port = hook.url.split(":")[2].split("/")[0]
    assert down.exit_code == 1
    assert down.stdout == FIRE + "\n"
    assert down.stderr == (
        f"Error: webhook http://127.0.0.1:{port}: HTTP 503 Service Unavailable "
        "after 3 attempts; 1 message kept pending for the next run\n"
    )
    assert hook.bodies == []
    [entry] = json.loads((tmp_path / STATE_FILE).read_text())["outbox"]
    assert entry["sinks"] == {"webhook": "pending"}
    up = watch(tmp_path, "--webhook", hook.url)
    assert (up.exit_code, up.stdout, up.stderr) == (3, "", "")  # nothing new, the fire delivered
    assert hook.bodies == [slack(FIRE)]
    assert watch(tmp_path, "--webhook", hook.url).exit_code == 3
    assert hook.bodies == [slack(FIRE)]


def test_an_unreachable_webhook_is_one_line(tmp_path, monkeypatch):
    pending_approval(tmp_path)
    clock_at(tmp_path, S + 24 * H)
    monkeypatch.setenv("CPREC_TEST_WEBHOOK_DELAYS", "0.01")
    result = watch(tmp_path, "--webhook", "http://127.0.0.1:9/hook")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: webhook http://127.0.0.1:9: ")
    assert result.stderr.endswith(" after 2 attempts; 1 message kept pending for the next run\n")
    assert result.stderr.count("\n") == 1


# -- crashes ----------------------------------------------------------------------------


def watch_process(root: Path, url: str, kill_at: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CPREC_TEST_WEBHOOK_DELAYS": "0.01"}
    if kill_at:
        env["CPREC_TEST_KILL_AT"] = kill_at
    return subprocess.run(
        [sys.executable, "-m", "recorder.cli", "watch", "--data", str(root), "--webhook", url],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def two_alerts(root: Path) -> None:
    pending_approval(root)
    put(root, "stage_states", [
        {**common_columns(S), "dt": S.date(), "snapshot_at": S, "stage": "Deploy",
         "stage_index": 1, "transition_enabled": False, "transition_last_changed_at": S},
    ])  # fmt: skip
    clock_at(root, S + 24 * H)


def test_a_crash_between_send_and_state_write_never_sends_twice(tmp_path, hook):
    two_alerts(tmp_path)
    killed = watch_process(tmp_path, hook.url, kill_at="watch:sent:1")
    assert killed.returncode == -9
    assert [b["text"].split(" ")[:2] for b in hook.bodies] == [["FIRING", "approval-waiting"]]
    state = json.loads((tmp_path / STATE_FILE).read_text())
    assert [e["sinks"] for e in state["outbox"]] == [{"webhook": "sending"}, {"webhook": "pending"}]
    again = watch_process(tmp_path, hook.url)
    assert again.returncode == 3
    assert again.stdout == ""  # the events were decided by the killed run
    assert again.stderr.startswith("Warning: a crash interrupted this send, not repeated: webhook: "
                                   "FIRING approval-waiting ")  # fmt: skip
    assert [b["text"].split(" ")[:2] for b in hook.bodies] == [
        ["FIRING", "approval-waiting"], ["FIRING", "blocked"]]  # fmt: skip
    assert watch_process(tmp_path, hook.url).stderr == ""
    assert len(hook.bodies) == 2


def test_a_crash_before_a_resolve_is_sent_loses_nothing(tmp_path, hook):
    pending_approval(tmp_path)
    clock_at(tmp_path, S + 24 * H)
    assert watch_process(tmp_path, hook.url).returncode == 3
    approve(tmp_path, S + 25 * H)
    clock_at(tmp_path, S + 26 * H)
    killed = watch_process(tmp_path, hook.url, kill_at="watch:committed:1")
    assert killed.returncode == -9
    assert len(hook.bodies) == 1  # the fire only
    state = json.loads((tmp_path / STATE_FILE).read_text())
    assert state["alerts"] == {}  # resolved in the same write that queued its message
    assert [e["record"]["event"] for e in state["outbox"]] == ["resolve"]
    after = watch_process(tmp_path, hook.url)
    assert (after.returncode, after.stdout, after.stderr) == (0, "", "")
    assert hook.bodies[1]["text"].startswith(
        f"RESOLVED approval-waiting {ACCOUNT} {REGION} app Deploy/Approve: cleared after 1 d 2 h\n"
    )
    assert watch_process(tmp_path, hook.url).returncode == 0
    assert len(hook.bodies) == 2


# -- SNS against moto's server ----------------------------------------------------------


@pytest.fixture
def sns_server(monkeypatch):
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    monkeypatch.setenv("AWS_ENDPOINT_URL_SNS", f"http://{host}:{port}")
    yield
    server.stop()


def test_sns_publishes_each_event(tmp_path, sns_server):
    from moto.sns.models import sns_backends

    arn = boto3.client("sns", region_name="eu-west-1").create_topic(Name="cprec")["TopicArn"]
    pending_approval(tmp_path)
    clock_at(tmp_path, S + 24 * H)
    result = watch(tmp_path, "--sns-topic", arn)
    assert (result.exit_code, result.stdout, result.stderr) == (3, FIRE + "\n", "")
    topic = sns_backends["123456789012"]["eu-west-1"].topics[arn]
    [(_, text, subject, attributes, _)] = topic.sent_notifications
    assert (text, subject) == (FIRE, "cprec fire approval-waiting app")
    assert {k: v["Value"] for k, v in attributes.items() if k != "dedupe_key"} == {
        "event": "fire", "rule": "approval-waiting", "pipeline": "app"}  # fmt: skip


def test_an_sns_error_is_one_line_and_keeps_the_message(tmp_path, sns_server):
    pending_approval(tmp_path)
    clock_at(tmp_path, S + 24 * H)
    arn = "arn:aws:sns:eu-west-1:123456789012:missing"
    result = watch(tmp_path, "--sns-topic", arn)
    assert result.exit_code == 1
    assert result.stderr == (f"Error: SNS {arn}: NotFound: Endpoint does not exist; 1 message kept "
                             "pending for the next run\n")  # fmt: skip
    [entry] = json.loads((tmp_path / STATE_FILE).read_text())["outbox"]
    assert entry["sinks"] == {"sns": "pending"}
    bad = watch(tmp_path, "--sns-topic", "arn:aws:sqs:eu-west-1:1:q")
    assert (bad.exit_code, bad.output) == (
        2, "Error: --sns-topic 'arn:aws:sqs:eu-west-1:1:q' is not an SNS topic ARN\n")  # fmt: skip


def test_no_clock_no_alert_and_a_missing_root_is_one_line(tmp_path):
    pending_approval(tmp_path)  # hand-written rows, never collected: nothing to measure to
    assert holds(tmp_path, "approval-waiting") == []
    result = watch(tmp_path / "nowhere")
    assert result.exit_code == 2 and result.output.startswith("Error: data root ")
    assert date(2026, 3, 2) == S.date()


def test_the_readme_rules_file_is_valid():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Alerts that need history: `cprec watch`")[1].split("\n## ")[0]
    [text] = re.findall(r"^```toml\n(.*?)^```", section, re.M | re.S)
    rules = load_rules(rules_file(Path(tempfile.mkdtemp()), text))
    assert rules.deploy_stages == ("Deploy*",)
    assert rules.params["stuck"]["minutes"] == 90
    assert [o.patterns for o in rules.overrides] == [("*-dev", "sandbox-*"), ("payments-*",)]
    assert rules.overrides[1].values == {"approval-waiting": {"hours": 4, "repeat_hours": 4}}


def test_one_watch_at_a_time_and_messages_wait_for_their_sink(tmp_path, hook):
    from recorder.lock import data_lock

    pending_approval(tmp_path)
    clock_at(tmp_path, S + 24 * H)
    with data_lock(tmp_path, ".watch.lock", holder="watch"):
        result = watch(tmp_path)
    assert result.exit_code == 75
    assert result.output.startswith("Error: another watch (pid ")
    assert not (tmp_path / STATE_FILE).exists()
    hook.failing = 3
    assert watch(tmp_path, "--webhook", hook.url).exit_code == 1
    later = watch(tmp_path)  # no --webhook: the message waits for it
    assert (later.exit_code, later.stdout) == (3, "")
    assert later.stderr == (
        "Warning: 1 message(s) wait for a sink not given this run (--webhook, --sns-topic)\n"
    )
    assert watch(tmp_path, "--webhook", hook.url).stderr == ""
    assert hook.bodies == [slack(FIRE)]
