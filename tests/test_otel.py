"""`cprec export otel`: every recorded execution as an OpenTelemetry CI/CD trace.

Sent for real: to an OTLP/HTTP receiver on loopback written here (it decodes each
ExportTraceServiceRequest with opentelemetry-proto), and to rotel, a collector, which
forwards what it got to that receiver. The hand-built scenario below is checked span by
span: ids, parents, kinds, times, attributes, statuses and links, every value by hand.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import socket
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import ACCOUNT, REGION, SIM_NOW, action_row, common_columns, execution_row, run, t
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from recorder.cli import main
from recorder.root import DataRoot
from recorder.simulator import Account, SimulatorServer
from recorder.store import write_rows

SERVER, INTERNAL = 2, 1  # SpanKind in OTLP
ERROR = 2  # StatusCode
CONSOLE = "https://us-east-1.console.aws.amazon.com/codesuite/codepipeline/pipelines/web"


# -- a receiver -----------------------------------------------------------------------


class Receiver:
    """OTLP/HTTP traces on 127.0.0.1: keeps every request it accepted, decoded. `answers`:
    status codes to answer the next requests with instead (popped one a request; a 503
    says Retry-After: 0, so the exporter retries at once); `refuse`: answer every
    request with this code."""

    def __init__(self) -> None:
        self.requests: list[ExportTraceServiceRequest] = []
        self.headers: list[dict] = []
        self.answers: list[int] = []
        self.refuse: int | None = None
        self.retry_after = "0"
        self.attempts = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.headers.get("Content-Encoding") == "gzip":  # rotel compresses
                    body = gzip.decompress(body)
                receiver.attempts += 1
                receiver.headers.append({k.lower(): v for k, v in self.headers.items()})
                code = receiver.answers.pop(0) if receiver.answers else receiver.refuse
                if self.path != "/v1/traces":
                    code = 404
                if code and code != 200:
                    self.send_response(code)
                    self.send_header("Retry-After", receiver.retry_after)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                assert self.headers["Content-Type"] == "application/x-protobuf"
                receiver.requests.append(request)
                out = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1/traces"

    def __enter__(self) -> Receiver:
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def spans(self) -> dict[str, dict]:
        """Every span received, by span id (a span received twice fails)."""
        found: dict[str, dict] = {}
        for request in self.requests:
            for span in decode(request):
                assert span["span"] not in found, f"span {span['name']} received twice"
                found[span["span"]] = span
        return found


def value(v):
    kind = v.WhichOneof("value")
    if kind == "array_value":
        return [value(x) for x in v.array_value.values]
    return getattr(v, kind)


def decode(request: ExportTraceServiceRequest) -> list[dict]:
    out = []
    for rs in request.resource_spans:
        resource = {a.key: value(a.value) for a in rs.resource.attributes}
        for ss in rs.scope_spans:
            for s in ss.spans:
                out.append({
                    "resource": resource, "scope": (ss.scope.name, ss.schema_url),
                    "trace": s.trace_id.hex(), "span": s.span_id.hex(),
                    "parent": s.parent_span_id.hex(), "name": s.name, "kind": s.kind,
                    "start": s.start_time_unix_nano, "end": s.end_time_unix_nano,
                    "attrs": {a.key: value(a.value) for a in s.attributes},
                    "status": (s.status.code, s.status.message),
                    "links": [(lk.trace_id.hex(), lk.span_id.hex(),
                               {a.key: value(a.value) for a in lk.attributes})
                              for lk in s.links],
                })  # fmt: skip
    return out


def cprec(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


# -- the scenario ---------------------------------------------------------------------
#
# Pipeline `web`, account 111111111111, us-east-1, 2026-01-05 (UTC):
#   X1 Succeeded 10:00:00-10:20:00, STANDARD; revisions: source Checkout abc123 and
#      artifact SourceArtifact abc123
#      Source  Checkout  S 10:01:00-10:01:30   (queued 60 s after the start)
#      Build   Compile   F 10:02:00-10:04:00   JobFailed (30 s after Source ended)
#              Compile   S 10:05:00-10:08:00   the retry: links the failed attempt
#      Deploy  Approve   S 10:08:00-10:12:00   manual approval (no wait before Deploy)
#              Release   S 10:12:10-10:20:00   CodeDeploy d-1, its own URL
#   X2 Failed 11:00:00-11:05:00, ROLLBACK to X1
#      Deploy  Release   F 11:00:00-11:05:00   DeploymentFailed
#   X3 Stopped 12:00:00-12:30:00
#      Deploy  Approve   Abandoned 12:00:00-12:30:00
#   X4 InProgress since 13:00:00: not sent (not ended)

COMMIT_URL = "https://github.com/acme/web/commit/abc123"


def build_otel_scenario(root: Path) -> Path:
    a = action_row
    x2 = execution_row("X2", "Failed", t("11:00:00"), t("11:05:00"))
    x2 |= {"execution_type": "ROLLBACK", "rollback_target_execution_id": "X1"}
    executions = [
        execution_row("X1", "Succeeded", t("10:00:00"), t("10:20:00")),
        x2,
        execution_row("X3", "Stopped", t("12:00:00"), t("12:30:00")),
        execution_row("X4", "InProgress", t("13:00:00"), t("13:01:00")),
    ]
    release = a("X1", 5, "Deploy", "Release", "Succeeded", t("10:12:10"), t("10:20:00"))
    release |= {
        "external_execution_id": "d-1",
        "external_execution_url": "https://console.aws.amazon.com/codedeploy/d-1",
    }
    actions = [
        a("X1", 1, "Source", "Checkout", "Succeeded", t("10:01:00"), t("10:01:30")),
        a("X1", 2, "Build", "Compile", "Failed", t("10:02:00"), t("10:04:00"),
          error=("JobFailed", "Build failed: exit 2\nmore")),
        a("X1", 3, "Build", "Compile", "Succeeded", t("10:05:00"), t("10:08:00")),
        a("X1", 4, "Deploy", "Approve", "Succeeded", t("10:08:00"), t("10:12:00")),
        release,
        a("X2", 1, "Deploy", "Release", "Failed", t("11:00:00"), t("11:05:00"),
          error=("DeploymentFailed", "Deployment d-2 failed\nsee its logs")),
        a("X3", 1, "Deploy", "Approve", "Abandoned", t("12:00:00"), t("12:30:00")),
        a("X4", 1, "Source", "Checkout", "InProgress", t("13:00:00"), t("13:01:00")),
    ]  # fmt: skip

    def revision(kind, name):
        return {**common_columns(t("10:20:00")), "dt": t("10:00:00").date(),
                "execution_id": "X1", "kind": kind, "name": name, "revision_id": "abc123",
                "revision_summary": "Fix it", "revision_url": COMMIT_URL}  # fmt: skip

    write_rows(root, "executions", executions, pipeline="web", run_id="run-1")
    write_rows(root, "action_executions", actions, pipeline="web", run_id="run-1")
    write_rows(root, "execution_revisions", [revision("source", "Checkout"),
               revision("artifact", "SourceArtifact")], pipeline="web", run_id="run-1")  # fmt: skip
    return root


def trace_of(eid: str) -> str:
    key = "\x1f".join(["cprec-trace", ACCOUNT, REGION, "web", eid])
    return hashlib.sha256(key.encode()).digest()[:16].hex()


def span_of(eid: str, *key: str) -> str:
    text = "\x1f".join(["cprec-span", trace_of(eid), *key])
    return hashlib.sha256(text.encode()).digest()[:8].hex()


def ns(text: str) -> int:
    return int(t(text).timestamp()) * 1_000_000_000


def expected_spans() -> list[dict]:
    def span(eid, key, parent, name, kind, start, end, attrs, status=(0, ""), links=()):
        return {
            "resource": {"service.name": "web", "cloud.provider": "aws",
                         "cloud.account.id": ACCOUNT, "cloud.region": REGION},
            "scope": ("cprec", "https://opentelemetry.io/schemas/1.44.0"),
            "trace": trace_of(eid), "span": span_of(eid, *key),
            "parent": span_of(eid, *parent) if parent else "", "name": name, "kind": kind,
            "start": ns(start), "end": ns(end), "attrs": attrs, "status": status,
            "links": list(links),
        }  # fmt: skip

    def run_attrs(eid, result, status, **extra):
        return {
            "cicd.pipeline.name": "web", "cicd.pipeline.run.id": eid,
            "cicd.pipeline.run.url.full": f"{CONSOLE}/executions/{eid}/timeline?region={REGION}",
            "cicd.pipeline.action.name": "RUN", "cicd.pipeline.result": result,
            "cprec.execution.status": status,
            "cprec.execution.trigger_type": "StartPipelineExecution",
            "cprec.execution.type": "STANDARD", "cprec.pipeline.version": 1, **extra,
        }  # fmt: skip

    def stage(name, status, attempts, wait):
        return {"cprec.stage.name": name, "cprec.stage.status": status,
                "cprec.stage.attempts": attempts, "cprec.stage.wait_s": wait}  # fmt: skip

    def task(eid, n, stage, action, result, status, category, provider, attempt=1, **extra):
        return {
            "cicd.pipeline.task.name": action, "cicd.pipeline.task.run.id": f"{eid}-a{n}",
            "cicd.pipeline.task.run.url.full":
                f"{CONSOLE}/executions/{eid}/timeline?region={REGION}",
            "cicd.pipeline.task.run.result": result, "cprec.stage.name": stage,
            "cprec.action.status": status, "cprec.action.category": category,
            "cprec.action.provider": provider, "cprec.action.attempt": attempt, **extra,
        }  # fmt: skip

    run1, run2, run3 = ("run",), ("run",), ("run",)
    return [
        # X1
        span("X1", run1, None, "RUN web", SERVER, "10:00:00", "10:20:00", run_attrs(
            "X1", "success", "Succeeded", **{
                "vcs.ref.head.revision": "abc123", "cprec.revision.name": "Checkout",
                "cprec.revision.url": COMMIT_URL, "cprec.revision.summary": "Fix it",
                "cprec.revisions": ["Checkout=abc123", "SourceArtifact=abc123"]})),
        span("X1", ("wait", "Source"), run1, "queue", INTERNAL, "10:00:00", "10:01:00",
             {"cprec.wait.kind": "queue", "cprec.wait.before_stage": "Source"}),
        span("X1", ("stage", "Source"), run1, "Source", SERVER, "10:01:00", "10:01:30",
             stage("Source", "Succeeded", 1, 60.0)),
        span("X1", ("action", "X1-a1"), ("stage", "Source"), "Checkout", INTERNAL,
             "10:01:00", "10:01:30",
             task("X1", 1, "Source", "Checkout", "success", "Succeeded", "Source",
                  "CodeStarSourceConnection", **{"vcs.ref.head.revision": "abc123"})),
        span("X1", ("wait", "Build"), run1, "transition to Build", INTERNAL,
             "10:01:30", "10:02:00",
             {"cprec.wait.kind": "transition", "cprec.wait.before_stage": "Build",
              "cprec.wait.after_stage": "Source"}),
        span("X1", ("stage", "Build"), run1, "Build", SERVER, "10:02:00", "10:08:00",
             stage("Build", "Succeeded", 2, 30.0)),
        span("X1", ("action", "X1-a2"), ("stage", "Build"), "Compile", INTERNAL,
             "10:02:00", "10:04:00",
             task("X1", 2, "Build", "Compile", "failure", "Failed", "Build", "CodeBuild", **{
                 "cicd.pipeline.task.type": "build", "error.type": "JobFailed",
                 "cprec.action.error_code": "JobFailed",
                 "cprec.action.error_message": "Build failed: exit 2\nmore"}),
             status=(ERROR, "Build failed: exit 2")),
        span("X1", ("action", "X1-a3"), ("stage", "Build"), "Compile", INTERNAL,
             "10:05:00", "10:08:00",
             task("X1", 3, "Build", "Compile", "success", "Succeeded", "Build", "CodeBuild",
                  attempt=2, **{"cicd.pipeline.task.type": "build"}),
             links=[(trace_of("X1"), span_of("X1", "action", "X1-a2"),
                     {"cprec.link.type": "retry_of"})]),
        span("X1", ("stage", "Deploy"), run1, "Deploy", SERVER, "10:08:00", "10:20:00",
             stage("Deploy", "Succeeded", 1, 0.0)),
        span("X1", ("action", "X1-a4"), ("stage", "Deploy"), "Approve", INTERNAL,
             "10:08:00", "10:12:00",
             task("X1", 4, "Deploy", "Approve", "success", "Succeeded", "Approval", "Manual",
                  **{"cprec.wait.kind": "approval"})),
        span("X1", ("action", "X1-a5"), ("stage", "Deploy"), "Release", INTERNAL,
             "10:12:10", "10:20:00",
             task("X1", 5, "Deploy", "Release", "success", "Succeeded", "Deploy", "CodeDeploy",
                  **{"cicd.pipeline.task.type": "deploy",
                     "cicd.pipeline.task.run.url.full": "https://console.aws.amazon.com/codedeploy/d-1",
                     "cprec.action.external_execution_id": "d-1"})),
        # X2: the rollback to X1
        span("X2", run2, None, "RUN web", SERVER, "11:00:00", "11:05:00",
             run_attrs("X2", "failure", "Failed", **{
                 "error.type": "DeploymentFailed", "cprec.execution.type": "ROLLBACK"}),
             status=(ERROR, "Deployment d-2 failed"),
             links=[(trace_of("X1"), span_of("X1", "run"),
                     {"cprec.link.type": "rollback_target"})]),
        span("X2", ("stage", "Deploy"), run2, "Deploy", SERVER, "11:00:00", "11:05:00",
             stage("Deploy", "Failed", 1, 0.0), status=(ERROR, "")),
        span("X2", ("action", "X2-a1"), ("stage", "Deploy"), "Release", INTERNAL,
             "11:00:00", "11:05:00",
             task("X2", 1, "Deploy", "Release", "failure", "Failed", "Deploy", "CodeDeploy", **{
                 "cicd.pipeline.task.type": "deploy", "error.type": "DeploymentFailed",
                 "cprec.action.error_code": "DeploymentFailed",
                 "cprec.action.error_message": "Deployment d-2 failed\nsee its logs"}),
             status=(ERROR, "Deployment d-2 failed")),
        # X3: stopped while its approval waited
        span("X3", run3, None, "RUN web", SERVER, "12:00:00", "12:30:00",
             run_attrs("X3", "cancellation", "Stopped")),
        span("X3", ("stage", "Deploy"), run3, "Deploy", SERVER, "12:00:00", "12:30:00",
             stage("Deploy", "Abandoned", 1, 0.0)),
        span("X3", ("action", "X3-a1"), ("stage", "Deploy"), "Approve", INTERNAL,
             "12:00:00", "12:30:00",
             task("X3", 1, "Deploy", "Approve", "cancellation", "Abandoned", "Approval",
                  "Manual", **{"cprec.wait.kind": "approval"})),
    ]  # fmt: skip


@pytest.fixture
def scenario(tmp_path) -> Path:
    return build_otel_scenario(tmp_path / "data")


def test_every_span_of_the_scenario_arrives_exactly_as_recorded(scenario):
    with Receiver() as rx:
        result = cprec("export", "otel", "--endpoint", rx.url, "--data", str(scenario))
        assert result.exit_code == 0, result.output
        got = rx.spans()
    expected = expected_spans()
    assert len(got) == len(expected) == 17
    for span in expected:
        assert got.get(span["span"]) == span, span["name"]
    assert result.output == f"exported 3 executions as traces (17 spans) to {rx.url}\n"


def test_a_second_export_sends_nothing_new_and_all_sends_the_same_ids(scenario):
    with Receiver() as rx:
        url = rx.url.removesuffix("/v1/traces")  # a base URL gets the traces path
        assert cprec("export", "otel", "--endpoint", url, "--data", str(scenario)).exit_code == 0
        first = rx.spans()
        again = cprec("export", "otel", "--endpoint", url, "--data", str(scenario))
        assert (again.exit_code, again.output) == (0, f"nothing new to export to {rx.url}\n")
        assert len(rx.requests) == 1
        rx.requests.clear()
        resent = cprec("export", "otel", "--endpoint", url, "--all", "--data", str(scenario))
        assert resent.exit_code == 0, resent.output
        assert rx.spans() == first  # the same trace and span ids: a deduplicating backend
    state = json.loads((scenario / ".otel-export.json").read_text())
    assert state["destinations"] == {
        f"endpoint:{rx.url}": {
            "after": {"recorded_at": "2026-01-05T12:30:00Z", "account_id": ACCOUNT,
                      "region": REGION, "pipeline": "web", "execution_id": "X3"},
            "executions": 3,
            "exported_at": state["destinations"][f"endpoint:{rx.url}"]["exported_at"],
        }
    }  # fmt: skip


def test_the_file_holds_otlp_json_lines_of_the_same_requests(scenario, tmp_path):
    out = tmp_path / "traces.jsonl"
    with Receiver() as rx:
        cprec("export", "otel", "--endpoint", rx.url, "--data", str(scenario))
        sent = rx.requests
    result = cprec("export", "otel", "--file", str(out), "--data", str(scenario))
    assert result.output == f"exported 3 executions as traces (17 spans) to {out}\n"
    lines = out.read_text().splitlines()
    assert len(lines) == 1
    held = json.loads(lines[0])
    first = held["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    # OTLP JSON: ids in hex (not protobuf JSON's base64), enums and kinds as numbers
    assert first["traceId"] == trace_of("X1") and len(first["spanId"]) == 16
    assert first["kind"] == INTERNAL and first["startTimeUnixNano"] == str(ns("10:00:00"))
    for rs in held["resourceSpans"]:  # back to protobuf JSON to compare with what was sent
        for ss in rs["scopeSpans"]:
            for s in ss["spans"]:
                for d in [s, *s.get("links", [])]:
                    for k in ("traceId", "spanId", "parentSpanId"):
                        if k in d:
                            d[k] = base64.b64encode(bytes.fromhex(d[k])).decode()
    assert json_format.ParseDict(held, ExportTraceServiceRequest()) == sent[0]
    # a second export appends nothing: the file has a cursor of its own
    cprec("export", "otel", "--file", str(out), "--data", str(scenario))
    assert len(out.read_text().splitlines()) == 1


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_endpoint_is_one_error_line_and_moves_no_cursor(scenario):
    url = f"http://127.0.0.1:{free_port()}/v1/traces"
    result = CliRunner().invoke(
        main, ["export", "otel", "--endpoint", url, "--timeout", "1.5", "--data", str(scenario)]
    )
    assert result.exit_code == 1
    assert result.output.count("\n") == 1
    # (1 to 2 attempts: the exporter's first backoff is 1 s give or take 20 %)
    assert result.output.startswith(f"Error: {url}: gave up after ")
    assert result.output.endswith(
        " (retried with backoff): [Errno 111] Connection refused; the next export sends the "
        "rest (the cursor stays after the last accepted batch)\n"
    )
    assert not (scenario / ".otel-export.json").exists()


def test_a_refused_batch_is_not_retried_and_is_sent_again_next_run(scenario):
    with Receiver() as rx:
        rx.answers = [400]
        result = cprec("export", "otel", "--endpoint", rx.url, "--data", str(scenario))
        assert result.exit_code == 1
        assert result.output == (
            f"Error: {rx.url}: HTTP 400 Bad Request (1 attempt); the next export sends the "
            "rest (the cursor stays after the last accepted batch)\n"
        )
        assert rx.attempts == 1 and not (scenario / ".otel-export.json").exists()
        assert cprec("export", "otel", "--endpoint", rx.url, "--data", str(scenario)).exit_code == 0
        assert len(rx.spans()) == 17


def test_a_redirect_is_not_taken_for_acceptance(scenario):
    """The OTLP exporter follows no redirect and counts a 3xx as accepted: an http ->
    https redirect must not move the cursor past traces that never arrived."""
    with Receiver() as rx:
        rx.answers = [308]
        result = cprec("export", "otel", "--endpoint", rx.url, "--data", str(scenario))
        assert result.exit_code == 1
        assert result.output == (
            f"Error: {rx.url}: HTTP 308 Permanent Redirect (a redirect is not followed: give "
            "the URL it points to); the next export sends the rest (the cursor stays after "
            "the last accepted batch)\n"
        )
        assert rx.attempts == 1 and not (scenario / ".otel-export.json").exists()
        assert cprec("export", "otel", "--endpoint", rx.url, "--data", str(scenario)).exit_code == 0
        assert len(rx.spans()) == 17


def test_a_batch_too_large_is_sent_again_in_halves(scenario):
    """A 413 is not retried as such, but the batch is split: a receiver's request limit
    is in bytes and a batch counts executions (error messages make some large)."""
    with Receiver() as rx:
        rx.answers = [413]  # the 3 executions at once; then one by one
        result = cprec("export", "otel", "--endpoint", rx.url, "--data", str(scenario))
        assert (result.exit_code, result.output) == (
            0, f"exported 3 executions as traces (17 spans) to {rx.url}\n"
        )  # fmt: skip
        assert rx.attempts == 4 and [len(r.resource_spans[0].scope_spans[0].spans)
                                     for r in rx.requests] == [11, 3, 3]  # fmt: skip
        assert sorted(rx.spans()) == sorted(s["span"] for s in expected_spans())
        first = rx.url
    with Receiver() as rx:
        rx.refuse = 413  # even one execution alone: the cursor stays before it
        result = cprec("export", "otel", "--all", "--endpoint", rx.url, "--data", str(scenario))
        assert result.exit_code == 1
        assert result.output == (
            f"Error: {rx.url}: HTTP 413 Request Entity Too Large (1 attempt) (one execution "
            "alone); the next export sends the rest (the cursor stays after the last "
            "accepted batch)\n"
        )
        assert rx.attempts == 2  # 3 executions, then X1 alone
    # the first receiver's cursor is after X3; the second has none
    state = json.loads((scenario / ".otel-export.json").read_text())
    assert [(k, v["after"]["execution_id"]) for k, v in state["destinations"].items()] == [
        (f"endpoint:{first}", "X3")
    ]


def test_a_retry_after_past_the_timeout_says_so(scenario):
    """429 with a Retry-After longer than --timeout: no retry; the line names the answer
    (it said "gave up after 1 attempt (retried with backoff): Failed to export spans
    batch due to timeout, max retries or shutdown.")."""
    with Receiver() as rx:
        rx.refuse, rx.retry_after = 429, "30"
        args = ["--endpoint", rx.url, "--timeout", "2", "--data", str(scenario)]
        result = cprec("export", "otel", *args)
        assert result.exit_code == 1 and rx.attempts == 1
    assert result.output == (
        f"Error: {rx.url}: HTTP 429 Too Many Requests (1 attempt; a retry (Retry-After: 30) "
        "would end past --timeout); the next export sends the rest (the cursor stays after "
        "the last accepted batch)\n"
    )


def test_an_endpoint_failing_mid_export_loses_and_duplicates_nothing(scenario):
    base = ["export", "otel", "--batch-size", "1", "--data", str(scenario)]
    with Receiver() as rx:
        # batch 1 accepted; batch 2 after two 503s (retried with backoff: Retry-After 0);
        # batch 3 meets a 503 on every one of the exporter's 6 attempts
        rx.answers = [200, 503, 503, 200, *[503] * 6]
        result = cprec(*base, "--endpoint", rx.url)
        assert result.exit_code == 1
        assert result.output.splitlines() == [
            f"exported 2 executions as traces (14 spans) to {rx.url}",
            f"Error: {rx.url}: gave up after 6 attempts (retried with backoff): Service "
            "Unavailable; the next export sends the rest (the cursor stays after the last "
            "accepted batch)",
        ]
        state = json.loads((scenario / ".otel-export.json").read_text())
        assert state["destinations"][f"endpoint:{rx.url}"]["after"]["execution_id"] == "X2"
        assert rx.attempts == 10
        # it recovers: the next run sends X3 alone
        result = cprec(*base, "--endpoint", rx.url)
        assert result.output == f"exported 1 execution as traces (3 spans) to {rx.url}\n"
        got = rx.spans()  # every span once (a duplicate fails here)
    assert sorted(got) == sorted(s["span"] for s in expected_spans())


def test_a_running_collector_stops_the_export_at_once(scenario):
    with DataRoot.of(scenario).lock():
        result = CliRunner().invoke(
            main, ["export", "otel", "--file", "x.jsonl", "--data", str(scenario)]
        )
    assert result.exit_code == 75
    assert result.output.startswith("Error: another collector (pid ")


@pytest.mark.parametrize(
    "args, message",
    [
        ([], "give one of --endpoint URL or --file PATH"),
        (["--endpoint", "http://x", "--file", "f"], "give one of --endpoint URL or --file PATH"),
        (["--endpoint", "localhost:4318"], "--endpoint 'localhost:4318' is not an http(s) URL"),
        (
            ["--file", "f", "--until", "1d"],
            "--until 1d moves with the clock, and an execution it lets in later would be "
            "behind this destination's cursor, never sent; give a date or time",
        ),
    ],
)
def test_bad_destinations_are_one_line(scenario, args, message):
    result = CliRunner().invoke(main, ["export", "otel", *args, "--data", str(scenario)])
    assert (result.exit_code, result.output) == (2, f"Error: {message}\n")


def test_export_without_a_command_still_needs_dir(scenario):
    result = CliRunner().invoke(main, ["export", "--data", str(scenario)])
    assert result.exit_code == 2 and "Missing option '--dir'" in result.output


def test_incremental_export_after_a_second_collect_sends_only_the_new_executions(tmp_path):
    root = tmp_path / "data"
    acct = Account(pipelines=2, days=1, seed=5, now=SIM_NOW)
    with SimulatorServer(acct) as srv, Receiver() as rx:
        assert run(root, srv, acct).exit_code == 0
        args = ["export", "otel", "--endpoint", rx.url, "--data", str(root)]
        assert cprec(*args).exit_code == 0
        first = {s["trace"] for s in rx.spans().values()}
        ended = terminal_executions(root)
        assert first == {trace(*k) for k in ended} and first
        acct.advance(minutes=600)
        assert run(root, srv, acct).exit_code == 0
        rx.requests.clear()
        assert cprec(*args).exit_code == 0
        second = {s["trace"] for s in rx.spans().values()}
        now_ended = terminal_executions(root)
        # the executions that ended since (new ones, and ones running at the first export)
        assert second == {trace(*k) for k in now_ended - ended} and second
    assert ended < now_ended


def terminal_executions(root: Path) -> set[tuple]:
    import queries

    con = queries.connect(root, cache=False)
    rows = con.execute(
        "SELECT account_id, region, pipeline, execution_id FROM executions "
        "WHERE execution_terminal(status)"
    ).fetchall()
    con.close()
    return set(rows)


def trace(account: str, region: str, pipeline: str, eid: str) -> str:
    key = "\x1f".join(["cprec-trace", account, region, pipeline, eid])
    return hashlib.sha256(key.encode()).digest()[:16].hex()


def test_rotel_receives_the_export_and_forwards_what_it_got(scenario, tmp_path):
    rotel = pytest.importorskip("rotel")
    agent = Path(rotel.__file__).parent / "rotel-agent"
    http_port, grpc_port = free_port(), free_port()
    with Receiver() as rx:
        log = tmp_path / "rotel.out"
        with open(log, "w") as out:
            proc = subprocess.Popen(
                [str(agent), "start", "--otlp-http-endpoint", f"127.0.0.1:{http_port}",
                 "--otlp-grpc-endpoint", f"127.0.0.1:{grpc_port}",
                 "--exporter", "otlp", "--otlp-exporter-protocol", "http",
                 "--otlp-exporter-endpoint", rx.url.removesuffix("/v1/traces"),
                 "--debug-log", "traces", "--debug-log-verbosity", "detailed",
                 "--pid-file", str(tmp_path / "rotel.pid"),
                 "--log-file", str(tmp_path / "rotel.log")],
                stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        try:
            wait_listening(http_port, proc)
            url = f"http://127.0.0.1:{http_port}/v1/traces"
            result = cprec("export", "otel", "--endpoint", url, "--data", str(scenario))
            assert result.exit_code == 0, result.output
            wait_until(lambda: len(rx.spans()) == 17)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
        forwarded = rx.spans()
    expected = {s["span"]: s for s in expected_spans()}
    assert forwarded == expected  # rotel got every span, and passed each on unchanged
    printed = log.read_text()  # what it logged it got: every span, with its name
    for span in expected.values():
        assert f"ID             : {span['span']}" in printed


def wait_listening(port: int, proc: subprocess.Popen) -> None:
    def listening() -> bool:
        assert proc.poll() is None, "rotel exited"
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0

    wait_until(listening)


def wait_until(predicate, seconds: float = 20.0) -> None:
    import time

    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_ids_do_not_depend_on_the_batch(scenario, tmp_path):
    one, many = tmp_path / "one.jsonl", tmp_path / "many.jsonl"
    cprec("export", "otel", "--file", str(one), "--data", str(scenario))
    cprec("export", "otel", "--file", str(many), "--batch-size", "1", "--data", str(scenario))
    ids = [
        sorted(s["spanId"] for line in f.read_text().splitlines()
               for rs in json.loads(line)["resourceSpans"] for ss in rs["scopeSpans"]
               for s in ss["spans"])
        for f in (one, many)
    ]  # fmt: skip
    assert ids[0] == ids[1] and len(ids[0]) == 17
    assert len(many.read_text().splitlines()) == 3


def test_a_crash_after_a_batch_was_accepted_sends_it_again_with_the_same_ids(scenario, tmp_path):
    import os
    import sys

    out = tmp_path / "traces.jsonl"
    argv = [sys.executable, "-m", "recorder.cli", "export", "otel", "--file", str(out),
            "--batch-size", "1", "--data", str(scenario)]  # fmt: skip
    env = {**os.environ, "CPREC_TEST_KILL_AT": "otel:sent:2"}  # after X2 is written
    assert subprocess.run(argv, env=env, capture_output=True).returncode == -9
    state = json.loads((scenario / ".otel-export.json").read_text())
    assert [d["after"]["execution_id"] for d in state["destinations"].values()] == ["X1"]
    done = subprocess.run(argv, capture_output=True, text=True)
    assert done.stderr == f"exported 2 executions as traces (6 spans) to {out}\n"
    traces = [
        {s["traceId"] for rs in json.loads(line)["resourceSpans"] for ss in rs["scopeSpans"]
         for s in ss["spans"]}
        for line in out.read_text().splitlines()
    ]  # fmt: skip
    assert traces == [{trace_of("X1")}, {trace_of("X2")}, {trace_of("X2")}, {trace_of("X3")}]
    lines = out.read_text().splitlines()
    assert lines[1] == lines[2]  # the same spans, the same ids: a deduplicating backend


def test_headers_go_with_every_request(scenario):
    with Receiver() as rx:
        args = ["--header", "Authorization=Bearer s3cret", "--header", "X-Scope-OrgID=acme"]
        result = cprec("export", "otel", "--endpoint", rx.url, *args, "--data", str(scenario))
        assert result.exit_code == 0, result.output
    assert [(h["authorization"], h["x-scope-orgid"]) for h in rx.headers] == [
        ("Bearer s3cret", "acme")
    ]
    bad = CliRunner().invoke(main, ["export", "otel", "--endpoint", rx.url, "--header", "x"])
    assert bad.exit_code == 2 and "'x' is not NAME=VALUE" in bad.output
    for value, shown in (("A=b\nc", "'A=b\\nc'"), ("A=\u2713", "'A=\u2713'")):
        args = ["--endpoint", rx.url, "--header", value, "--data", str(scenario)]
        bad = CliRunner().invoke(main, ["export", "otel", *args])
        assert bad.exit_code == 2
        assert bad.output.splitlines()[-1] == (
            f"Error: Invalid value for '--header': {shown} is not a valid HTTP header"
        )


def test_a_line_cut_by_a_crash_is_cut_off_and_its_batch_written_whole(scenario, tmp_path):
    """A crash (or a full disk) mid-write leaves a last line without its newline, and no
    cursor for its batch: the next export cuts it off and writes the batch whole, so a
    replay of the file reads every line."""
    out = tmp_path / "traces.jsonl"
    assert cprec("export", "otel", "--file", str(out), "--data", str(scenario)).exit_code == 0
    whole = out.read_bytes()
    # the second destination's cursor is empty: the same batch again, after a cut line
    again = tmp_path / "again.jsonl"
    again.write_bytes(whole + b'{"resourceSpans":[{"res')
    assert cprec("export", "otel", "--file", str(again), "--data", str(scenario)).exit_code == 0
    assert again.read_bytes() == whole + whole
    assert [json.loads(x) for x in again.read_text().splitlines()] == [json.loads(whole)] * 2


def test_an_export_option_before_otel_is_refused_not_ignored(scenario):
    result = CliRunner().invoke(
        main, ["export", "--since", "30d", "otel", "--file", "x", "--data", str(scenario)]
    )
    assert result.exit_code == 2
    assert result.output.splitlines()[-1] == (
        "Error: --since before `otel` is an option of `export --dir`; "
        "give `otel`'s options after it"
    )


def test_a_stage_whose_actions_lack_a_start_or_an_end_sends_the_rest(scenario):
    """An action execution recorded without its start or its end is left out (as before);
    a stage run all of whose actions lack one has no time of its own and is left out too,
    instead of failing the batch (every later export would fail on it again)."""
    x5 = execution_row("X5", "Failed", t("14:00:00"), t("14:10:00"))
    no_end = action_row("X5", 1, "Build", "Compile", "Failed", t("14:01:00"), None,
                        recorded_at=t("14:10:00"))  # fmt: skip
    no_start = action_row("X5", 2, "Deploy", "Release", "Failed", t("14:02:00"), t("14:03:00"))
    no_start["start_time"] = None
    write_rows(scenario, "executions", [x5], pipeline="web", run_id="run-2")
    write_rows(scenario, "action_executions", [no_end, no_start], pipeline="web", run_id="run-2")
    with Receiver() as rx:
        result = cprec("export", "otel", "--endpoint", rx.url, "--data", str(scenario))
        assert (result.exit_code, result.output) == (
            0, f"exported 4 executions as traces (18 spans) to {rx.url}\n"
        )  # fmt: skip
        got = [s for s in rx.spans().values() if s["trace"] == trace_of("X5")]
    assert [(s["name"], s["parent"], s["start"], s["end"], s["status"]) for s in got] == [
        ("RUN web", "", ns("14:00:00"), ns("14:10:00"), (ERROR, ""))
    ]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "[1]",
        '{"version": 1, "destinations": {"file:/x": 3}}',
        '{"version": 1, "destinations": {"file:/x": {"after": {}}}}',
        '{"version": 1, "destinations": {"file:/x": {"after": {"recorded_at": "junk"}}}}',
        '{"version": 1, "destinations": {"file:/x": {"after": {"recorded_at": "2026-01-05T10:20:'
        '00Z", "account_id": 1, "region": "r", "pipeline": "p", "execution_id": "e"}}}}',
    ],
)
def test_a_cursor_file_not_cprec_s_is_one_line_and_left_alone(scenario, text):
    """A cursor file cut, edited or foreign: one line and exit 2, never a traceback (a
    destination's entry was only read, and failed, when that destination was used)."""
    state = scenario / ".otel-export.json"
    state.write_text(text)
    result = cprec("export", "otel", "--file", str(scenario / "t.jsonl"), "--data", str(scenario))
    assert (result.exit_code, result.output) == (
        2, f"Error: {state} is not a cprec export cursor file; move it away and run again\n"
    )  # fmt: skip
    assert state.read_text() == text and not (scenario / "t.jsonl").exists()
