"""`cprec collect --plan`: what a collection would fetch, how many calls, how long.

From the listings alone: per pipeline, ListPipelineExecutions back to where the next
run would resume (the same Cursor as the collector's, over what the data root already
holds) and GetPipeline (the actions and rules an execution runs). Nothing is written.

The calls a run would make, per operation:
- GetPipelineExecution: one per changed execution (exact);
- ListPipelineExecutions, ListPipelines: the pages this plan read (exact);
- GetPipelineState: one per pipeline; GetPipeline: one per changed definition (exact);
- ListActionExecutions (and ListRuleExecutions where stages have conditions): the
  pipeline-wide pages back to the oldest changed execution of the window, at the
  definition's actions (rules) per execution, 100 a page, plus one per changed
  execution older than the window (estimated: failed executions run fewer actions,
  retried ones more).
The time at R requests/s: AWS's limits are token buckets per operation, so the busiest
operation's calls over R; and at least the calls over the rate this plan itself got
(the same workers, the same network, its own throttles).
"""

from __future__ import annotations

import math
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError
from botocore.parsers import ResponseParserError

from recorder import fetch
from recorder.client import describe, make_client
from recorder.collect import VANISHED, select, work_order
from recorder.config import CollectConfig, Scope
from recorder.errors import EXIT_PARTIAL, CprecError, UserError
from recorder.flatten import ts
from recorder.known import RETENTION, Cursor, Known, load_known
from recorder.logs import configure_logging
from recorder.progress import duration
from recorder.root import DataRoot

PAGE = fetch.PAGE_SIZE


class PlanError(CprecError):
    """AWS refused or did not answer a listing (after botocore's retries): no estimate."""

    exit_code = EXIT_PARTIAL


@dataclass
class RegionPlan:
    account_id: str
    region: str
    pipelines: int = 0
    to_fetch: int = 0  # changed executions
    calls: Counter = field(default_factory=Counter)  # the run's, estimated
    made: int = 0  # calls this plan made
    seconds: float = 0.0  # this plan's wall time


@dataclass
class Plan:
    since: datetime
    workers: int
    regions: list[RegionPlan]

    @property
    def calls(self) -> Counter:
        return sum((r.calls for r in self.regions), Counter())

    def seconds_at(self, rate: float) -> float:
        """The least time at `rate` requests/s per operation and region: the busiest
        bucket's calls over the rate, and no faster than this plan's own rate."""
        by_bucket = max((n for r in self.regions for n in r.calls.values()), default=0)
        made = sum(r.made for r in self.regions)
        measured = made / sum(r.seconds for r in self.regions) if made else math.inf
        return max(by_bucket / rate, self.calls.total() / measured)

    def text(self, rates: tuple[float, ...]) -> str:
        lines = []
        for r in self.regions:
            by_op = ", ".join(f"{op} {n:,}" for op, n in r.calls.most_common())
            lines += [
                f"{r.account_id} {r.region}: {r.pipelines} pipelines, back to "
                f"{self.since:%Y-%m-%d}",
                f"  executions to fetch: {r.to_fetch:,}",
                f"  calls: ~{r.calls.total():,} ({by_op})",
                f"  this plan: {r.made:,} calls in {r.seconds:.1f} s",
            ]
        at = [f"~{duration(self.seconds_at(rate))} at {rate:g} requests/s" for rate in rates]
        lines.append(
            f"time: {', '.join(at)} per operation (AWS documents no CodePipeline rate); "
            f"{self.workers} workers"
        )
        return "\n".join(lines)


def plan(data_root: str | Path | DataRoot, config: CollectConfig) -> Plan:
    """What collecting `config`'s selection into `data_root` would fetch, checked and its
    accounts identified as the run does them (the same errors, exit 2); nothing written.
    Of the run's own settings it reads `workers` (the plan lists on as many threads)."""
    data_root = DataRoot.of(data_root)
    with configure_logging(quiet=config.quiet, log_format="text"):
        scope = config.scope()
        accounts = scope.accounts()
        out = Plan(scope.since, config.workers, [])
        for account in accounts:
            if account.error:
                raise UserError(account.error)
            for region in scope.regions:
                try:
                    out.regions.append(_plan_region(data_root, account, region, scope))
                except (ClientError, BotoCoreError, ResponseParserError) as e:
                    raise PlanError(
                        f"cannot plan {account.account_id} {region}: {describe(e)}"
                    ) from None
        return out


def _plan_region(root: DataRoot, account, region: str, scope: Scope) -> RegionPlan:
    config, since, workers = scope.config, scope.since, scope.config.workers
    stats = account.stats[region]
    started = time.monotonic()
    client = make_client("codepipeline", region=region, session=account.sessions[region],
                         endpoint_url=config.endpoint_url, stats=stats,
                         max_pool_connections=workers)  # fmt: skip
    summaries = fetch.list_pipelines(client)
    by_name = {s["name"]: s for s in summaries}
    names = select(sorted(by_name), config.include, config.exclude)
    known = load_known(root, account.account_id, region, open_floor=scope.clock - RETENTION)
    result = RegionPlan(account.account_id, region, pipelines=len(names))
    for op in ("GetCallerIdentity", "ListPipelines"):  # as many as the run would make
        result.calls[op] = stats.calls[op]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="cprec-plan") as pool:
        for calls, changed in pool.map(
            lambda n: _plan_pipeline(client, by_name[n], known.get(n) or Known(), since),
            work_order(names, known),
        ):
            result.calls.update(calls)
            result.to_fetch += changed
    result.made = stats.calls.total()  # the account's GetCallerIdentity with its first region
    result.seconds = time.monotonic() - started
    return result


def _plan_pipeline(client, summary: dict, known: Known, since: datetime):
    try:
        return _plan_listing(client, summary, known, since)
    except ClientError as e:
        if e.response.get("Error", {}).get("Code") in VANISHED:  # deleted since listed
            return Counter(), 0
        raise


def _plan_listing(client, summary: dict, known: Known, since: datetime):
    name = summary["name"]
    cursor = Cursor(known, since)
    starts, changed, older = [], 0, 0
    oldest_recent, recent_without_start = None, False
    for s in fetch.list_executions(client, name, cursor.bound):
        start = ts(s.get("startTime"))
        starts.append(start)
        if not cursor.is_changed(s):
            continue
        changed += 1
        if not cursor.in_window(start):
            older += 1
        elif start is None:
            recent_without_start = True
        elif oldest_recent is None or start < oldest_recent:
            oldest_recent = start
    definition = fetch.get_pipeline(client, name)["pipeline"]
    stages = definition.get("stages") or []
    actions = sum(len(st.get("actions") or []) for st in stages)
    rules = sum(
        len(c.get("rules") or [])
        for st in stages
        for when in ("beforeEntry", "onSuccess", "onFailure")
        for c in (st.get(when) or {}).get("conditions") or []
    )
    calls = Counter(
        ListPipelineExecutions=max(1, math.ceil(len(starts) / PAGE)),
        GetPipelineState=1,
        GetPipeline=int(summary.get("version") != known.version),
        GetPipelineExecution=changed,
    )
    if changed > older:  # the window's changed executions: listed pipeline-wide
        span = len(starts) if recent_without_start else sum(
            1 for s in starts if s is not None and s >= oldest_recent
        )  # fmt: skip
        calls["ListActionExecutions"] = max(1, math.ceil(span * actions / PAGE))
        if rules:
            calls["ListRuleExecutions"] = max(1, math.ceil(span * rules / PAGE))
    calls["ListActionExecutions"] += older
    if rules:
        calls["ListRuleExecutions"] += older
    return +calls, changed
