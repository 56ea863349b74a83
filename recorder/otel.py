"""`cprec export otel`: recorded executions as OpenTelemetry CI/CD traces, and the
export cursor per destination.

Shape (OpenTelemetry semantic conventions v1.44.0, whose CI/CD attributes are a release
candidate; SEMCONV below): one trace per execution.
- The root span is the pipeline run (kind SERVER, named `RUN <pipeline>` as the
  conventions name it: `{cicd.pipeline.action.name} {cicd.pipeline.name}`).
- A span per stage run (the action executions of one stage in one execution, as
  DESIGN.md and relations/stage_runs.sql define it). The conventions define no stage
  span; as the OpenTelemetry Collector's GitLab receiver does for stages, it is named
  after the stage, of kind SERVER, a child of the pipeline run, from its first start
  to its last end, with the stage's status; its own attributes are cprec's (`cprec.*`).
- A task span per action execution (every attempt; kind INTERNAL as the conventions
  say), a child of its stage run. A manual approval's span is its wait, from the
  request to the decision (`cprec.wait.kind=approval`).
- A wait span before each stage run that did not start when the run before it ended:
  `queue` before the first stage (from the execution's start), `transition to <stage>`
  between stages (disabled transitions, entry conditions, a lock on the stage).
- Links: an action's attempt after the first links the attempt before it (a retried
  stage retries its actions: `cprec.link.type=retry_of`); a rollback's root span links
  the root span of the execution it rolled back to (`rollback_target`).

Ids are derived, never random (StableIds, the SDK's IdGenerator): the trace id from
(account, region, pipeline, execution id), each span id from its trace's key and its
own (the stage name, the action execution id, ...), so a resent execution carries the
same ids and a backend that deduplicates keeps one copy. The SDK builds the spans with
their recorded start and end times; the OTLP/HTTP exporter sends them (with its
retries and backoff), and `--file` writes the same request as OTLP JSON.

The cursor: `<root>/.otel-export.json`, replaced whole (as `.watch.json`), only under
`<root>/.otel-export.lock`. Per destination (and selection), the last execution sent,
in the order queries/sql/otel/executions.sql sends them (recorded_at, then the key). It
is written after each batch the destination accepted, never before: a failure or a
crash leaves it at the last accepted batch, and the next run sends the rest (a batch
in doubt, cut by a crash after it was sent, is sent again: same ids).
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit, urlunsplit

from opentelemetry import trace as trace_api
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.sdk.trace.sampling import ALWAYS_ON
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags

from recorder import __version__, statefile
from recorder.console import console_url
from recorder.errors import EXIT_PARTIAL, CprecError, UserError
from recorder.root import DataRoot
from recorder.testhooks import checkpoint

SEMCONV = "1.44.0"
SCHEMA_URL = f"https://opentelemetry.io/schemas/{SEMCONV}"
STATE_FILE = ".otel-export.json"
LOCK_FILE = ".otel-export.lock"
STATE_VERSION = 1
BATCH = 200  # executions per request (a few thousand spans: well under 4 MiB)

# CodePipeline's statuses as cicd.pipeline.result / cicd.pipeline.task.run.result. A
# superseded execution was overtaken by a newer one and a cancelled one dropped from a
# queue: the system ended them, as a user's stop does (`cancellation`). Any other status
# is sent lower-cased (the conventions allow a custom value).
PIPELINE_RESULT = {
    "Succeeded": "success",
    "Failed": "failure",
    "Stopped": "cancellation",
    "Superseded": "cancellation",
    "Cancelled": "cancellation",
}
TASK_RESULT = {"Succeeded": "success", "Failed": "failure", "Abandoned": "cancellation"}
# cicd.pipeline.task.type knows build, test and deploy; Source, Approval, Invoke and
# Compute actions have none.
TASK_TYPE = {"Build": "build", "Test": "test", "Deploy": "deploy"}


class ExportError(CprecError):
    """The destination did not accept a batch: the cursor stays before it, exit 1."""

    exit_code = EXIT_PARTIAL


class TooLarge(ExportError):
    """The batch was too large to send (HTTP 413, or past the exporter's own limit):
    `export` sends it again in halves."""


# -- ids ------------------------------------------------------------------------------


def _digest(*parts: str) -> bytes:
    return hashlib.sha256("\x1f".join(parts).encode()).digest()


def trace_id_of(account_id: str, region: str, pipeline: str, execution_id: str) -> int:
    """The trace id of an execution (128 bits of a sha256; never 0, which is invalid)."""
    digest = _digest("cprec-trace", account_id, region, pipeline, execution_id)
    return int.from_bytes(digest[:16], "big") or 1


def span_id_of(trace_id: int, *key: str) -> int:
    """The id of the span `key` names in trace `trace_id` (64 bits; never 0)."""
    return int.from_bytes(_digest("cprec-span", f"{trace_id:032x}", *key)[:8], "big") or 1


class StableIds(IdGenerator):
    """Hands the SDK the ids set just before each span starts (`next`)."""

    def __init__(self) -> None:
        self.trace_id = 0
        self.span_id = 0

    def next(self, trace_id: int, span_id: int) -> None:
        self.trace_id, self.span_id = trace_id, span_id

    def generate_trace_id(self) -> int:
        return self.trace_id

    def generate_span_id(self) -> int:
        return self.span_id


class _Collect(SpanProcessor):
    """Keeps every ended span, in order: a batch is exported whole, by the caller."""

    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []

    def on_end(self, span: ReadableSpan) -> None:
        self.spans.append(span)


# -- spans ----------------------------------------------------------------------------


def _ns(t: datetime) -> int:
    return int(t.timestamp()) * 1_000_000_000 + t.microsecond * 1000


def _error_status(error: str | None) -> Status:
    first = (error or "").strip().splitlines()
    return Status(StatusCode.ERROR, first[0] if first else None)


def _attrs(**values) -> dict:
    """Attributes with their dotted names (`__` for `.`), None values left out."""
    return {k.replace("__", "."): v for k, v in values.items() if v is not None and v != ""}


class SpanBuilder:
    """Builds the spans of executions (the dicts of queries/otel.py) with the SDK: one
    TracerProvider per resource (account, region, pipeline), ids from StableIds."""

    def __init__(self) -> None:
        self.ids = StableIds()
        self.collect = _Collect()
        self._tracers: dict[tuple[str, str, str], trace_api.Tracer] = {}

    def _tracer(self, account_id: str, region: str, pipeline: str) -> trace_api.Tracer:
        key = (account_id, region, pipeline)
        if key not in self._tracers:
            resource = Resource(
                {
                    "service.name": pipeline,
                    "cloud.provider": "aws",
                    "cloud.account.id": account_id,
                    "cloud.region": region,
                },
                schema_url=SCHEMA_URL,
            )
            provider = TracerProvider(
                sampler=ALWAYS_ON, resource=resource, id_generator=self.ids,
                shutdown_on_exit=False,
            )  # fmt: skip
            provider.add_span_processor(self.collect)
            self._tracers[key] = provider.get_tracer("cprec", __version__, schema_url=SCHEMA_URL)
        return self._tracers[key]

    def build(self, executions: Iterable[dict]) -> list[ReadableSpan]:
        self.collect.spans = []
        built = 0
        for e in executions:
            self._execution(e)
            built += 1
        if built and not self.collect.spans:  # the SDK's no-op tracers
            raise UserError("OTEL_SDK_DISABLED=true switches the OpenTelemetry SDK off; unset it")
        return self.collect.spans

    def _start(self, tracer, trace_id, span_id, name, parent, kind, attributes, start, links=()):
        self.ids.next(trace_id, span_id)
        context = trace_api.set_span_in_context(parent) if parent is not None else Context()
        return tracer.start_span(
            name, context=context, kind=kind, attributes=attributes, links=list(links),
            start_time=_ns(start), record_exception=False, set_status_on_exception=False,
        )  # fmt: skip

    def _execution(self, e: dict) -> None:
        account, region, pipeline, eid = (e[k] for k in ("account_id", "region", "pipeline",
                                                         "execution_id"))  # fmt: skip
        tracer = self._tracer(account, region, pipeline)
        tid = trace_id_of(account, region, pipeline, eid)
        url = console_url(region, pipeline, eid)
        result = PIPELINE_RESULT.get(e["status"], e["status"].lower())
        failed = [a for a in e["actions"] if a["status"] == "Failed"]
        error = failed[-1] if failed else None
        links = []
        if e.get("execution_type") == "ROLLBACK" and e.get("rollback_target_execution_id"):
            target = trace_id_of(account, region, pipeline, e["rollback_target_execution_id"])
            links.append(_link(target, span_id_of(target, "run"), "rollback_target"))
        root = self._start(
            tracer, tid, span_id_of(tid, "run"), f"RUN {pipeline}", None, SpanKind.SERVER,
            {
                "cicd.pipeline.name": pipeline,
                "cicd.pipeline.run.id": eid,
                "cicd.pipeline.run.url.full": url,
                "cicd.pipeline.action.name": "RUN",
                "cicd.pipeline.result": result,
                **_attrs(error__type=_error_type(error) if result == "failure" else None),
                **_vcs(e["revisions"]),
                **_attrs(
                    cprec__execution__status=e["status"],
                    cprec__execution__status_summary=e.get("status_summary"),
                    cprec__execution__trigger_type=e.get("trigger_type"),
                    cprec__execution__trigger_detail=e.get("trigger_detail"),
                    cprec__execution__type=e.get("execution_type"),
                    cprec__execution__mode=e.get("execution_mode"),
                    cprec__execution__stop_trigger_reason=e.get("stop_trigger_reason"),
                    cprec__pipeline__version=e.get("pipeline_version"),
                ),
            },
            e["start_time"], links,
        )  # fmt: skip
        if result == "failure":
            root.set_status(_error_status(
                e.get("status_summary") or (error or {}).get("error_message")
            ))  # fmt: skip
        stages = {}
        for s in e["stages"]:
            wait = s["wait_s"]
            if wait and wait > 0:
                first = s["after_stage"] is None
                waited = self._start(
                    tracer, tid, span_id_of(tid, "wait", s["stage"]),
                    "queue" if first else f"transition to {s['stage']}", root,
                    SpanKind.INTERNAL,
                    _attrs(cprec__wait__kind="queue" if first else "transition",
                           cprec__wait__before_stage=s["stage"],
                           cprec__wait__after_stage=s["after_stage"]),
                    s["start_time"] - timedelta(seconds=wait),
                )  # fmt: skip
                waited.end(_ns(s["start_time"]))
            span = self._start(
                tracer, tid, span_id_of(tid, "stage", s["stage"]), s["stage"], root,
                SpanKind.SERVER,
                _attrs(cprec__stage__name=s["stage"], cprec__stage__status=s["status"],
                       cprec__stage__attempts=s["attempts"], cprec__stage__wait_s=wait),
                s["start_time"],
            )  # fmt: skip
            if s["status"] == "Failed":
                span.set_status(Status(StatusCode.ERROR))
            stages[s["stage"]] = (span, s)
        attempts: dict[tuple[str, str], int] = {}
        for a in e["actions"]:
            parent = stages[a["stage"]][0] if a["stage"] in stages else root
            sid = span_id_of(tid, "action", a["action_execution_id"])
            links = []
            before = attempts.get((a["stage"], a["action"]))
            if before is not None:
                links.append(_link(tid, before, "retry_of"))
            attempts[a["stage"], a["action"]] = sid
            task_result = TASK_RESULT.get(a["status"], a["status"].lower())
            span = self._start(
                tracer, tid, sid, a["action"], parent, SpanKind.INTERNAL,
                {
                    "cicd.pipeline.task.name": a["action"],
                    "cicd.pipeline.task.run.id": a["action_execution_id"],
                    "cicd.pipeline.task.run.url.full": a.get("external_execution_url") or url,
                    "cicd.pipeline.task.run.result": task_result,
                    **_attrs(
                        cicd__pipeline__task__type=TASK_TYPE.get(a.get("category")),
                        error__type=_error_type(a) if task_result == "failure" else None,
                        **_vcs_of_source(a, e["revisions"]),
                        cprec__stage__name=a["stage"],
                        cprec__action__status=a["status"],
                        cprec__action__category=a.get("category"),
                        cprec__action__owner=a.get("owner"),
                        cprec__action__provider=a.get("provider"),
                        cprec__action__attempt=a["attempt"],
                        cprec__action__external_execution_id=a.get("external_execution_id"),
                        cprec__action__external_execution_summary=a.get(
                            "external_execution_summary"
                        ),
                        cprec__action__error_code=a.get("error_code"),
                        cprec__action__error_message=a.get("error_message"),
                        cprec__wait__kind="approval" if a.get("category") == "Approval" else None,
                    ),
                },
                a["start_time"], links,
            )  # fmt: skip
            if task_result == "failure":
                span.set_status(_error_status(a.get("error_message")))
            span.end(_ns(a["end_time"]))
        for span, s in stages.values():
            span.end(_ns(s["end_time"]))
        root.end(_ns(e["end_time"]))


def _link(trace_id: int, span_id: int, kind: str) -> Link:
    context = SpanContext(trace_id, span_id, is_remote=True,
                          trace_flags=TraceFlags(TraceFlags.SAMPLED))  # fmt: skip
    return Link(context, {"cprec.link.type": kind})


def _error_type(action: dict | None) -> str:
    """error.type: the failed action's error code (JobFailed, ...), else `_OTHER`."""
    return (action or {}).get("error_code") or "_OTHER"


def _vcs(revisions: list[dict]) -> dict:
    """The run's revision as vcs.* (the first source revision, else the first artifact
    revision, by name), and every revision as `cprec.revisions` (`name=revision`)."""
    if not revisions:
        return {}
    first = revisions[0]  # sources first (queries/sql/otel/revisions.sql)
    return _attrs(
        vcs__ref__head__revision=first.get("revision_id"),
        cprec__revision__name=first.get("name"),
        cprec__revision__change_id=first.get("revision_change_id"),
        cprec__revision__url=first.get("revision_url"),
        cprec__revision__summary=first.get("revision_summary"),
        cprec__revisions=[f"{r['name']}={r.get('revision_id') or ''}" for r in revisions],
    )


def _vcs_of_source(action: dict, revisions: list[dict]) -> dict:
    """A source action's own revision (a 'source' revision carries its action's name)."""
    for r in revisions:
        if r["kind"] == "source" and r["name"] == action["action"]:
            return {"vcs__ref__head__revision": r.get("revision_id")}
    return {}


# -- destinations -----------------------------------------------------------------------


class Endpoint:
    """OTLP over HTTP (protobuf), with the OTLP exporter's retries: 429, 502, 503, 504
    and broken connections are retried with exponential backoff for `timeout` seconds
    (a `Retry-After` is honoured), anything else fails the batch at once."""

    def __init__(self, url: str, timeout: float = 10.0, headers: dict | None = None) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise UserError(f"--endpoint {url!r} is not an http(s) URL")
        if parts.path in ("", "/"):  # a collector's base address: its traces path
            parts = parts._replace(path="/v1/traces")
        self.url = urlunsplit(parts)
        self.key = f"endpoint:{self.url}"
        self.shown = self.url
        self.timeout = timeout
        self.headers = headers or {}
        self._exporter = None
        self._last = None

    def send(self, spans: list[ReadableSpan]) -> None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.trace.export import SpanExportResult

        if self._exporter is None:
            import requests

            # The exporter follows no redirect and counts any answer below 400 as
            # accepted: a 301/307/308 (an http -> https redirect) would move the cursor
            # past traces that never arrived. Its last answer is kept to check it.
            session = requests.Session()
            session.hooks["response"].append(self._answered)
            self._exporter = OTLPSpanExporter(
                endpoint=self.url, timeout=self.timeout, headers=self.headers, session=session
            )
        self._last = None
        with _ExporterLog() as log:
            result = self._exporter.export(spans)
        if result is not SpanExportResult.SUCCESS:
            too_large = (self._last is not None and self._last.status_code == 413) or any(
                str(r.msg).startswith("Dropping span batch") for r in log.records
            )
            why = log.why(self._last) or ("too large to send" if too_large else "not accepted")
            raise (TooLarge if too_large else ExportError)(f"{self.url}: {why}")
        if self._last is not None and not 200 <= self._last.status_code < 300:
            answer = self._last
            where = answer.headers.get("Location")
            raise ExportError(
                f"{self.url}: HTTP {answer.status_code} {answer.reason}"
                + (f" to {where}" if where else "")
                + " (a redirect is not followed: give the URL it points to)"
            )

    def _answered(self, response, *args, **kwargs) -> None:
        self._last = response

    def close(self) -> None:
        if self._exporter is not None:
            self._exporter.shutdown()


class _ExporterLog(logging.Handler):
    """What the OTLP exporter logs while it sends (it returns only FAILURE): its last
    error becomes the one `Error:` line, and its retry warnings stay off the terminal."""

    NAMES = ("opentelemetry.exporter.otlp.proto.http.trace_exporter",
             "opentelemetry.exporter.otlp.common.http")  # fmt: skip

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []
        self._saved: list[tuple[logging.Logger, bool]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def why(self, answer=None) -> str | None:
        """The one line; `answer`: the last HTTP response, if any."""
        errors = [r for r in self.records if r.levelno >= logging.ERROR]
        retries = [r for r in self.records if r.levelno == logging.WARNING and r.args]
        if not errors:
            return None
        attempts = f"{len(retries) + 1} attempt{'s' * bool(retries)}"
        last = errors[-1]
        if "code:" in last.msg and last.args and len(last.args) == 3:  # not retried
            _, code, reason = last.args
            cause = f"HTTP {code} {reason}" if code else _short(reason)
            return f"{cause} ({attempts})"
        if not retries and answer is not None:  # retryable, but not within --timeout
            wait = answer.headers.get("Retry-After")
            after = f" (Retry-After: {wait})" if wait else ""
            return (f"HTTP {answer.status_code} {answer.reason} (1 attempt; a retry{after} "
                    "would end past --timeout)")  # fmt: skip
        cause = _short(retries[-1].args[0]) if retries else last.getMessage()
        return f"gave up after {attempts} (retried with backoff): {cause}"

    def __enter__(self) -> _ExporterLog:
        for name in self.NAMES:
            logger = logging.getLogger(name)
            self._saved.append((logger, logger.propagate))
            logger.addHandler(self)
            logger.propagate = False
        return self

    def __exit__(self, *exc) -> None:
        for logger, propagate in self._saved:
            logger.removeHandler(self)
            logger.propagate = propagate


def _short(cause) -> str:
    """`[Errno 111] Connection refused` out of urllib3's paragraph about it."""
    text = str(cause)
    if "[Errno" in text:
        text = text[text.index("[Errno") :]
        return text.split("'")[0].split('"')[0].rstrip(")").strip()
    return text


class JsonLines:
    """OTLP JSON lines: one ExportTraceServiceRequest a line, in the protobuf JSON
    mapping as the Collector's file exporter writes it (and its file receiver, or
    `otelcol`'s replay, reads it). The SDK has an OTLP protobuf encoder but no JSON one,
    so the request the exporter would send is turned to JSON by protobuf's own
    json_format; OTLP JSON differs from the plain mapping in two points, fixed after:
    trace and span ids are hex, not base64, and enums are numbers."""

    def __init__(self, path) -> None:
        self.path = os.path.abspath(path)
        self.key = f"file:{self.path}"
        self.shown = str(path)

    def send(self, spans: list[ReadableSpan]) -> None:
        line = (request_json(spans) + "\n").encode()
        try:
            with open(self.path, "a+b") as fh:
                # A last line without its newline was cut by a crash or a full disk: its
                # batch was never acknowledged (the cursor moves after the fsync), so it is
                # sent again. Cut it off, or a replay of the file would stop at it.
                whole = _whole_lines(fh)
                fh.truncate(whole)
                try:
                    fh.write(line)
                    fh.flush()
                    os.fsync(fh.fileno())
                except OSError:
                    fh.truncate(whole)  # no half line left behind
                    raise
        except OSError as e:
            raise UserError(f"cannot write {self.shown}: {e.strerror or e}") from None

    def close(self) -> None:
        pass


def _whole_lines(fh, chunk: int = 65536) -> int:
    """The size of the file up to and including its last newline (0 without one), read
    backwards from its end a chunk at a time."""
    end = fh.seek(0, os.SEEK_END)
    at = end
    while at > 0:
        start = max(0, at - chunk)
        fh.seek(start)
        found = fh.read(at - start).rfind(b"\n")
        if found >= 0:
            return start + found + 1
        at = start
    return 0


def request_json(spans: list[ReadableSpan]) -> str:
    from google.protobuf import json_format
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    request = json_format.MessageToDict(encode_spans(spans), use_integers_for_enums=True)
    for resource in request.get("resourceSpans", []):
        for scope in resource.get("scopeSpans", []):
            for span in scope.get("spans", []):
                _hex_ids(span)
                for link in span.get("links", []):
                    _hex_ids(link)
    return json.dumps(request, separators=(",", ":"), ensure_ascii=False)


def _hex_ids(d: dict) -> None:
    for key in ("traceId", "spanId", "parentSpanId"):
        if d.get(key):
            d[key] = base64.b64decode(d[key]).hex()


# -- the cursor ------------------------------------------------------------------------


def read_state(root: DataRoot) -> dict:
    def check(state: dict) -> None:
        if state.get("version") != STATE_VERSION or not isinstance(state["destinations"], dict):
            raise ValueError
        for entry in state["destinations"].values():  # each cursor whole, or none is used
            after = cursor_of(entry)
            if (
                after["recorded_at"].tzinfo is None
                or not all(isinstance(after[k], str) for k in ("account_id", "region",
                                                                "pipeline", "execution_id"))
                or type(entry.get("executions", 0)) is not int
            ):  # fmt: skip
                raise ValueError

    empty = {"version": STATE_VERSION, "destinations": {}}
    return statefile.read(root, STATE_FILE, empty=empty, check=check, what="export cursor file")


def write_state(root: DataRoot, state: dict) -> None:
    statefile.write(root, STATE_FILE, state)


def _position(e: dict) -> dict:
    at = e["recorded_at"].astimezone(UTC).isoformat().replace("+00:00", "Z")
    return {"recorded_at": at, **{k: e[k] for k in ("account_id", "region", "pipeline",
                                                       "execution_id")}}  # fmt: skip


def cursor_of(entry: dict | None) -> dict | None:
    """A stored position as the query's cursor (recorded_at as a datetime)."""
    if not entry:
        return None
    return {**entry["after"], "recorded_at": datetime.fromisoformat(entry["after"]["recorded_at"])}


# -- a run ------------------------------------------------------------------------------


@dataclass
class Outcome:
    executions: int = 0
    spans: int = 0
    batches: int = 0
    error: str | None = None


def export(
    root: DataRoot,
    destination,
    batches: Callable[[dict | None, int], list[dict]],
    *,
    size: int = BATCH,
    selection: str = "",
    resend: bool = False,
) -> Outcome:
    """Send what `batches(cursor, size)` returns (the next `size` executions after the
    cursor; [] at the end) to `destination`, batch after batch, moving the destination's
    cursor after each batch it accepted; a batch refused as too large is sent again in
    halves (a batch's size is counted in executions, a request's limit in bytes).
    `selection`: the filters, part of the cursor's key (another selection has a cursor
    of its own). `resend`: from the beginning (`--all`)."""
    key = destination.key + (f" {selection}" if selection else "")
    builder = SpanBuilder()
    outcome = Outcome()
    with root.lock(LOCK_FILE, holder="otel export"):
        state = read_state(root)
        entry = None if resend else state["destinations"].get(key)
        cursor = cursor_of(entry)
        try:
            while executions := batches(cursor, size):
                spans = builder.build(executions)
                try:
                    destination.send(spans)
                except TooLarge as e:
                    if len(executions) > 1:
                        size = len(executions) // 2
                        continue
                    outcome.error = f"{e.message} (one execution alone)"
                    break
                except ExportError as e:
                    outcome.error = e.message
                    break
                checkpoint("otel:sent")
                position = _position(executions[-1])
                total = (entry or {}).get("executions", 0) + len(executions)
                entry = {
                    "after": position,
                    "executions": total,
                    "exported_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
                }
                state["destinations"][key] = entry
                write_state(root, state)
                checkpoint("otel:committed")
                cursor = cursor_of(entry)
                outcome.executions += len(executions)
                outcome.spans += len(spans)
                outcome.batches += 1
        finally:
            destination.close()
    return outcome
