"""`cprec watch`'s memory between runs and its deliveries.

queries/watch.py says which conditions hold now; this module turns them into events
against what the previous runs saw, and delivers them:

- fire: a condition that holds and is not among the alerts;
- repeat: an alert still holding `repeat_s` (its rule's `repeat_hours`) after it was
  last sent, when that is not 0;
- resolve: an alert whose condition no longer holds.

State: `<root>/.watch.json`, replaced whole (a rename, or one S3 PUT, as `.head.json`),
only under `<root>/.watch.lock` (an flock, or an S3 lease: recorder/root.py), so two
watches never interleave. It holds the alerts that fire and an outbox: the messages
not yet delivered, each with a dedupe key (`id`) and, per sink, `pending` or `sending`.

Why this order (a crash may come between any two steps; `checkpoint` names the points
the tests kill at):
1. The events and their messages are computed, and written in ONE state write: the
   alerts as they are after the events (a resolved alert leaves them in the same write
   that queues its resolve) and the messages in the outbox as `pending`. A crash before
   it changes nothing: the next run computes the same events again. A crash after it
   loses nothing: a pending message is sent by the next run, even if its condition has
   changed meanwhile (so a resolve is never lost, and never computed twice: its alert
   is gone).
2. Per message and sink: `sending` is written (the intent), the message is sent, then
   the message is removed for that sink. A crash between the send and that write
   leaves `sending`: the next run cannot know whether it arrived and does NOT send it
   again (it says so on stderr). Exactly once is impossible over a webhook without the
   receiver's help; of at-least-once and at-most-once, this is the second, because a
   duplicated page wakes someone and a run every few minutes resends nothing that still
   matters: an alert that still holds is in the alerts, and its resolve is a message of
   its own. The one message that can be lost is the one whose request was cut short in
   that window, and it is named on stderr; the dedupe key travels with every message
   (`Idempotency-Key` header, SNS `MessageDeduplicationId` on FIFO topics and a message
   attribute) for receivers that can do better.
3. A send that fails (after its retries) puts the message back to `pending`, stops that
   sink for this run (the next messages wait behind it, in order) and is one `Error:`
   line; the next run sends them.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol
from urllib.parse import urlsplit

from recorder import statefile
from recorder.console import console_url
from recorder.errors import EXIT_FIRING, EXIT_PARTIAL, CprecError, UserError
from recorder.root import DataRoot
from recorder.testhooks import checkpoint

STATE_FILE = ".watch.json"
LOCK_FILE = ".watch.lock"
STATE_VERSION = 1
APPROVAL_LIMIT_S = 7 * 86400  # CodePipeline rejects an approval left this long
# The webhook's waits between attempts, in seconds: urllib has no retry of its own, and
# botocore's (for SNS) is not for HTTP in general; 4 attempts over ~7 s ride out a
# restart of a chat server without holding a cron run for long.
WEBHOOK_DELAYS = (1.0, 2.0, 4.0)
DELAYS_ENV = "CPREC_TEST_WEBHOOK_DELAYS"  # tests: "0.01,0.01"


class DeliveryError(CprecError):
    """A message could not be delivered; it stays pending for the next run: exit 1."""

    exit_code = EXIT_PARTIAL


# -- events -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    kind: str  # fire | repeat | resolve
    alert: dict  # the condition (fire, repeat) or the stored alert (resolve), JSON-able
    at: str  # the pipeline's recorded clock, ISO
    text: str  # one line: what, where, how long, why, and the console link

    def record(self) -> dict:
        """The event as one JSON object (--format jsonl, and what sinks build on)."""
        return {"event": self.kind, **self.alert, "at": self.at, "message": self.text}


def key_of(alert: dict) -> str:
    return "|".join(alert[k] or "" for k in ("rule", "account_id", "region", "pipeline", "subject"))


def iso(t: datetime | str | None) -> str | None:
    if t is None or isinstance(t, str):
        return t
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _seconds(a: str, b: str) -> float:
    return (datetime.fromisoformat(b) - datetime.fromisoformat(a)).total_seconds()


def human(seconds: float) -> str:
    """A duration in its two largest units: `2 d 3 h`, `1 h 5 min`, `42 s`."""
    s = max(0, int(round(seconds)))
    units = ((86400, "d"), (3600, "h"), (60, "min"), (1, "s"))
    for i, (size, unit) in enumerate(units):
        if s >= size or size == 1:
            text = f"{s // size} {unit}"
            if size > 1:
                smaller, name = units[i + 1]
                if (s % size) // smaller:
                    text += f" {(s % size) // smaller} {name}"
            return text
    raise AssertionError("unreachable")


def where(alert: dict) -> str:
    place = "/".join(p for p in (alert.get("stage"), alert.get("action")) if p)
    return " ".join(
        p for p in (alert["account_id"], alert["region"], alert["pipeline"], place) if p
    )


def _why(a: dict) -> str:
    age, rule = human(a["age_s"]), a["rule"]
    limit = human(a["threshold"]) if rule != "failing-streak" else None
    detail = a.get("detail")
    if rule == "approval-waiting":
        left = APPROVAL_LIMIT_S - a["age_s"]
        end = (
            f"CodePipeline rejects it in {human(left)}"
            if left > 0
            else "past CodePipeline's 7 days"
        )
        return f"approval waiting for {age} (limit {limit}); {end}"
    if rule == "running-long":
        return f"running for {age}, limit {limit} = {detail}"
    if rule == "stuck":
        return f"no state change for {age} (limit {limit}); {detail}"
    if rule == "failing-streak":
        last = f"; last: {detail}" if detail else ""
        return f"{a['value']:g} failures in a row over {age} (limit {a['threshold']:g}){last}"
    if rule == "no-deploy":
        return f"no successful deployment for {age} (limit {limit}); {detail}"
    return f"transition disabled for {age} (limit {limit}): {detail}"  # blocked


def message(kind: str, alert: dict, at: str) -> str:
    head = {"fire": "FIRING", "repeat": "STILL FIRING", "resolve": "RESOLVED"}[kind]
    if kind == "resolve":
        why = f"cleared after {human(_seconds(alert['since'], at))}"
    else:
        why = _why(alert)
    return f"{head} {alert['rule']} {where(alert)}: {why} {alert['console_url']}"


def conditions_of(rows: list[dict]) -> dict[str, dict]:
    """Condition rows (queries/watch.py) as JSON-able alerts by key, with their link."""
    out = {}
    for row in rows:
        alert = {k: iso(v) if isinstance(v, datetime) else v for k, v in row.items()}
        alert["console_url"] = console_url(
            alert["region"], alert["pipeline"], alert.get("execution_id")
        )
        out[key_of(alert)] = alert
    return out


def diff(state: dict, now: dict[str, dict], clocks: dict[tuple, str]) -> list[Event]:
    """The events that take the alerts of `state` to the conditions `now`."""
    events = []
    alerts = state["alerts"]
    for key, cond in now.items():
        held = alerts.get(key)
        if held is None:
            events.append(Event("fire", cond, cond["clock"], message("fire", cond, cond["clock"])))
        elif cond["repeat_s"] and _seconds(held["notified_at"], cond["clock"]) >= cond["repeat_s"]:
            events.append(
                Event("repeat", cond, cond["clock"], message("repeat", cond, cond["clock"]))
            )
    latest = max(clocks.values(), default=None)
    for key, held in alerts.items():
        if key not in now:
            at = clocks.get((held["account_id"], held["region"], held["pipeline"]), latest)
            at = at or held["notified_at"]
            events.append(Event("resolve", held, at, message("resolve", held, at)))
    return events


def apply(state: dict, events: list[Event]) -> None:
    for e in events:
        key = key_of(e.alert)
        if e.kind == "resolve":
            del state["alerts"][key]
        else:
            fired = state["alerts"].get(key, {}).get("fired_at", e.at)
            state["alerts"][key] = {**e.alert, "fired_at": fired, "notified_at": e.at}


# -- the state file ---------------------------------------------------------------------


def read_state(root: DataRoot) -> dict:
    def check(state: dict) -> None:
        if state.get("version") != STATE_VERSION:
            raise ValueError
        state["alerts"], state["outbox"]  # noqa: B018 - both must be there

    empty = {"version": STATE_VERSION, "alerts": {}, "outbox": []}
    return statefile.read(root, STATE_FILE, empty=empty, check=check, what="watch state file")


def write_state(root: DataRoot, state: dict) -> None:
    """Replace the state whole: readers (the next run) see the old one or the new one."""
    statefile.write(root, STATE_FILE, state)


# -- sinks ------------------------------------------------------------------------------


class Sink(Protocol):
    name: str

    def send(self, entry: dict) -> None:
        """Deliver one outbox entry, or raise DeliveryError."""


def slack_payload(entry: dict) -> dict:
    """The Slack incoming-webhook JSON (also read by Mattermost and Teams workflows): the
    message, its console link as a Slack link."""
    record = entry["record"]
    text = record["message"].removesuffix(" " + record["console_url"])
    return {"text": f"{text}\n<{record['console_url']}|Open in the AWS console>"}


def _delays() -> tuple[float, ...]:
    spec = os.environ.get(DELAYS_ENV)
    return tuple(float(x) for x in spec.split(",")) if spec else WEBHOOK_DELAYS


class Webhook:
    """POSTs each message as Slack incoming-webhook JSON, retrying connection errors,
    timeouts, 429 and 5xx answers with backoff (WEBHOOK_DELAYS)."""

    name = "webhook"

    def __init__(self, url: str, timeout: float = 10.0):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise UserError(f"--webhook {url!r} is not an http(s) URL")
        self.url, self.timeout = url, timeout
        self.shown = f"{parts.scheme}://{parts.netloc}"  # the path is the webhook's secret

    def send(self, entry: dict) -> None:
        body = json.dumps(slack_payload(entry)).encode()
        delays = _delays()
        why = ""
        for attempt in range(len(delays) + 1):
            if attempt:
                time.sleep(delays[attempt - 1])
            request = urllib.request.Request(
                self.url, data=body, method="POST",
                headers={"Content-Type": "application/json", "Idempotency-Key": entry["id"]},
            )  # fmt: skip
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as answer:
                    answer.read()
                return
            except urllib.error.HTTPError as e:
                why = f"HTTP {e.code} {e.reason}"
                if e.code != 429 and e.code < 500:  # the request is wrong: no retry mends it
                    break
            except (urllib.error.URLError, OSError) as e:
                why = str(getattr(e, "reason", e))
        raise DeliveryError(
            f"webhook {self.shown}: {why} after {attempt + 1} attempt{'s' * bool(attempt)}"
        )


class Sns:
    """Publishes each message to an SNS topic (boto3's default credentials and endpoint
    configuration; the topic's region from its ARN)."""

    name = "sns"

    def __init__(self, arn: str):
        parts = arn.split(":")
        if len(parts) != 6 or parts[:3] != ["arn", parts[1], "sns"] or not parts[3]:
            raise UserError(f"--sns-topic {arn!r} is not an SNS topic ARN")
        import boto3  # here: `cprec --help` and runs without --sns-topic need no boto3
        from botocore.config import Config

        self.arn = arn
        self.fifo = arn.endswith(".fifo")
        self.client = boto3.client(
            "sns",
            region_name=parts[3],
            config=Config(retries={"mode": "standard", "max_attempts": 5}),
        )

    def send(self, entry: dict) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        record = entry["record"]
        subject = f"cprec {record['event']} {record['rule']} {record['pipeline']}"
        kw = {
            "TopicArn": self.arn,
            "Subject": "".join(c if c.isprintable() else " " for c in subject)[:100],
            "Message": record["message"],
            "MessageAttributes": {
                name: {"DataType": "String", "StringValue": value}
                for name, value in (
                    ("event", record["event"]),
                    ("rule", record["rule"]),
                    ("pipeline", record["pipeline"]),
                    ("dedupe_key", entry["id"]),
                )
            },  # fmt: skip
        }
        if self.fifo:
            kw |= {"MessageGroupId": "cprec", "MessageDeduplicationId": entry["id"]}
        try:
            self.client.publish(**kw)
        except ClientError as e:
            err = e.response.get("Error", {})
            raise DeliveryError(
                f"SNS {self.arn}: {err.get('Code', '?')}: {err.get('Message', '')}".rstrip(": ")
            ) from None
        except BotoCoreError as e:
            raise DeliveryError(f"SNS {self.arn}: {e}") from None


# -- a run ------------------------------------------------------------------------------


@dataclass
class Outcome:
    events: list[Event]
    firing: int  # alerts firing after this run
    delivered: int = 0
    pending: int = 0  # messages left in the outbox
    in_doubt: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        if self.errors:
            return EXIT_PARTIAL
        return EXIT_FIRING if self.firing else 0


def _entry(event: Event, sinks: list[Sink]) -> dict:
    record = event.record()
    ident = hashlib.sha256(f"{key_of(event.alert)}#{event.kind}#{event.at}".encode()).hexdigest()
    return {"id": ident[:32], "record": record, "sinks": {s.name: "pending" for s in sinks}}


def run(
    root: DataRoot, rows: list[dict], clocks: dict[tuple, datetime], sinks: list[Sink]
) -> Outcome:
    """One watch: events from `rows` (the conditions that hold) against the state, written
    (step 1 of the module's docstring), then delivered to `sinks` (step 2)."""
    with root.lock(LOCK_FILE, holder="watch"):
        state = read_state(root)
        in_doubt = []
        for entry in state["outbox"]:
            for name, status in list(entry["sinks"].items()):
                if status == "sending":  # a crash during its send: never sent twice
                    del entry["sinks"][name]
                    in_doubt.append(f"{name}: {entry['record']['message']}")
        state["outbox"] = [e for e in state["outbox"] if e["sinks"]]
        events = diff(state, conditions_of(rows), {k: iso(v) for k, v in clocks.items()})
        apply(state, events)
        state["outbox"] += [_entry(e, sinks) for e in events if sinks]
        if events or in_doubt:
            write_state(root, state)
        checkpoint("watch:committed")
        outcome = Outcome(events, len(state["alerts"]), in_doubt=in_doubt)
        _deliver(root, state, sinks, outcome)
        outcome.pending = len(state["outbox"])
        return outcome


def _deliver(root: DataRoot, state: dict, sinks: list[Sink], outcome: Outcome) -> None:
    for sink in sinks:
        for entry in list(state["outbox"]):
            if entry["sinks"].get(sink.name) != "pending":
                continue
            entry["sinks"][sink.name] = "sending"
            write_state(root, state)  # the intent, before the message can be out
            checkpoint("watch:sending")
            try:
                sink.send(entry)
            except DeliveryError as e:
                entry["sinks"][sink.name] = "pending"
                write_state(root, state)
                left = sum(1 for x in state["outbox"] if x["sinks"].get(sink.name) == "pending")
                outcome.errors.append(
                    f"{e.message}; {left} message{'s' * (left != 1)} kept pending for the next run"
                )
                break  # the rest wait behind it, in order
            checkpoint("watch:sent")
            del entry["sinks"][sink.name]
            if not entry["sinks"]:
                state["outbox"].remove(entry)
            write_state(root, state)
            outcome.delivered += 1
