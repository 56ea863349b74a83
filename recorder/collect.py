"""`cprec collect`: record state and execution history into partitioned Parquet.

Per region: ListPipelines, then per pipeline on a bounded thread pool:

1. GetPipelineState; a snapshot is written only when its hash differs from the last
   one stored.
2. GetPipeline, only when ListPipelines' version differs from the last one stored.
3. ListPipelineExecutions, paged until a page reaches back before the lower bound
   min(watermark - 6 h, start of the oldest recorded non-terminal execution); the
   watermark is the latest recorded start (first run: --since, default 12 months).
   Changed = not recorded, recorded non-terminal, or recorded with another status or
   lastUpdateTime. For the changed ones: pipeline-wide ListActionExecutions and
   ListRuleExecutions paged back to the oldest of them (per-execution filtered lists
   for the few that started before the window: re-polls and revived executions), then
   one GetPipelineExecution each, oldest first.

An idle pipeline therefore costs 2 calls (GetPipelineState + one
ListPipelineExecutions page); a run adds 1 GetCallerIdentity and the ListPipelines
pages. Writes are ordered so that a crash at any point leaves data from which the
next run completes the history: children before their execution, executions oldest
first (the watermark never runs ahead of a gap).
"""

from __future__ import annotations

import fnmatch
import json
import re
import sys
import uuid
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import click
import duckdb
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
)

from recorder import __version__, fetch
from recorder import cache as cache_mod
from recorder.client import CallStats, default_region, make_client
from recorder.errors import (
    EXIT_OK,
    EXIT_PARTIAL,
    CprecError,
    UserError,
    first_line,
)
from recorder.flatten import (
    flatten_action_execution,
    flatten_execution,
    flatten_pipeline,
    flatten_pipeline_state,
    flatten_rule_execution,
    has_stage_conditions,
    state_hash,
    ts,
)
from recorder.known import TERMINAL_EXECUTION, Known, load_known, to_us
from recorder.lock import data_lock
from recorder.logs import configure_logging, logger_for
from recorder.store import Batch, clean_tmp, write_rows
from recorder.timeparse import utcnow

OVERLAP = timedelta(hours=6)
RETENTION = timedelta(days=365)  # AWS keeps execution history for 12 months
FLUSH_ROWS = 10_000  # rows buffered per pipeline worker: bounds memory, whatever the history
EXECUTION_CHILDREN = (
    "action_executions",
    "rule_executions",
    "execution_revisions",
    "execution_variables",
)
# AWS region names: lower case, e.g. us-east-1, us-gov-west-1, eusc-de-east-1.
REGION = re.compile(r"[a-z]{2,}(-[a-z]+)+-[0-9]+")
VANISHED = frozenset({"PipelineNotFoundException"})
# Write order within a flush: dependants first, the rows the next run reads last.
WRITE_ORDER = (
    "pipeline_actions",
    "pipelines",
    "action_states",
    "condition_states",
    "stage_states",
    "action_executions",
    "rule_executions",
    "execution_revisions",
    "execution_variables",
    "executions",
)


@dataclass
class CollectResult:
    exit_code: int = EXIT_OK
    run_id: str = ""
    account_id: str | None = None
    api_calls: Counter = field(default_factory=Counter)  # logical calls by operation
    api_attempts: Counter = field(default_factory=Counter)  # HTTP requests by operation
    throttles: int = 0
    retries: int = 0
    rows_written: dict[str, int] = field(default_factory=dict)
    pipelines_listed: int = 0
    pipelines_recorded: int = 0
    pipelines_failed: dict[str, str] = field(default_factory=dict)  # "region/name" -> error
    pipelines_vanished: list[str] = field(default_factory=list)
    region_errors: dict[str, str] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)  # every Parquet file written


@dataclass
class _Outcome:
    name: str
    written: dict[str, int] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)
    error_code: str | None = None
    error: str | None = None
    vanished: bool = False


@dataclass
class _Region:
    """Everything the pipeline workers of one region share (read-only)."""

    root: Path
    run_id: str
    account_id: str
    region: str
    client: object
    now: datetime | None
    since: datetime
    recorded_at: datetime
    known: dict[str, Known]

    def snapshot_time(self) -> datetime:
        return self.now or utcnow()


def select(names: list[str], include: tuple[str, ...], exclude: tuple[str, ...]) -> list[str]:
    """Names matching any include glob (all when none) and no exclude glob."""
    return [
        n
        for n in names
        if (not include or any(fnmatch.fnmatchcase(n, g) for g in include))
        and not any(fnmatch.fnmatchcase(n, g) for g in exclude)
    ]


def collect(
    data_root: Path,
    *,
    regions: list[str] | None = None,
    profile: str | None = None,
    endpoint_url: str | None = None,
    include: tuple[str, ...] | list[str] = (),
    exclude: tuple[str, ...] | list[str] = (),
    since: datetime | None = None,
    workers: int = 8,
    quiet: bool = True,
    now: datetime | None = None,
    log_format: str = "text",
) -> CollectResult:
    """Record every selected pipeline of every region into `data_root`.

    Raises UserError (exit 2) for configuration errors and LockedError (exit 75) when
    another collector holds the data root; otherwise the result carries exit code 0
    (all recorded) or 1 (some pipelines or regions failed, the rest written).
    """
    data_root = Path(data_root)
    with configure_logging(quiet=quiet, log_format=log_format):
        regions = _regions(regions, profile)
        now = now.astimezone(UTC) if now else None
        since = (since or (now or utcnow()) - RETENTION).astimezone(UTC)
        result = CollectResult(run_id=_run_id())
        with data_lock(data_root), cache_mod.writing(data_root) as claim:
            clean_tmp(data_root)
            # One Session per region, shared by that region's clients and threads;
            # GetCallerIdentity is counted with the first region's traffic.
            sessions = {r: _session(profile, r) for r in regions}
            stats = [CallStats() for _ in regions]
            result.account_id = _account_id(sessions[regions[0]], endpoint_url, stats[0])
            for region, region_stats in zip(regions, stats, strict=True):
                _collect_region(
                    data_root,
                    region,
                    result,
                    region_stats,
                    session=sessions[region],
                    endpoint_url=endpoint_url,
                    include=tuple(include),
                    exclude=tuple(exclude),
                    since=since,
                    now=now,
                    workers=workers,
                    progress=not quiet and _is_tty(),
                    cache_current=claim.current,
                )
            _refresh_cache(claim, result.files)
        if result.pipelines_failed or result.region_errors:
            result.exit_code = EXIT_PARTIAL
        return result


def _refresh_cache(claim: cache_mod.Writing, files: list[Path]) -> None:
    """Keep an existing query cache (`cprec cache`) current with what this run wrote."""
    try:
        claim.finish(files)
    except (duckdb.Error, CprecError) as e:  # busy or an unreadable file: never fail the run
        logger_for(account=None, region=None).warning(
            "query cache not refreshed (%s); queries read Parquet until `cprec cache`",
            first_line(e),
        )


def _run_id() -> str:
    return f"{utcnow():%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"


def _is_tty() -> bool:
    return sys.stderr.isatty()


def _regions(regions: list[str] | None, profile: str | None) -> list[str]:
    try:
        chosen = list(dict.fromkeys(regions or [])) or [default_region(profile)]
    except ProfileNotFound as e:
        raise UserError(str(e)) from None
    if not chosen or chosen[0] is None:
        raise UserError("no region: pass --region or set AWS_REGION or a profile region")
    for region in chosen:
        # Stored in every row and part of every key: a second spelling of one region
        # would record its whole history again under another name.
        if not REGION.fullmatch(region):
            raise UserError(f"{region!r} is not an AWS region name (like us-east-1)")
    return chosen


def _session(profile: str | None, region: str) -> boto3.Session:
    try:
        return boto3.Session(profile_name=profile, region_name=region)
    except ProfileNotFound as e:
        raise UserError(str(e)) from None


def _account_id(session: boto3.Session, endpoint_url: str | None, stats: CallStats) -> str:
    try:
        sts = make_client(
            "sts",
            region=session.region_name,
            session=session,
            endpoint_url=endpoint_url,
            stats=stats,
        )
        return fetch.account_id(sts)
    except (NoCredentialsError, PartialCredentialsError) as e:
        raise UserError(f"no AWS credentials: {e}") from None
    except (NoRegionError, ProfileNotFound) as e:
        raise UserError(str(e)) from None
    except ClientError as e:
        raise UserError(f"cannot identify the AWS account: {_describe(e)}") from None
    except BotoCoreError as e:
        raise UserError(f"cannot reach AWS: {e}") from None


def _describe(e: Exception) -> str:
    if isinstance(e, ClientError):
        err = e.response.get("Error", {})
        return f"{err.get('Code', 'Error')}: {err.get('Message', '')}".rstrip(": ")
    return f"{type(e).__name__}: {e}"


def _collect_region(
    root: Path,
    region: str,
    result: CollectResult,
    stats: CallStats,
    *,
    session,
    endpoint_url,
    include,
    exclude,
    since,
    now,
    workers,
    progress,
    cache_current=False,
) -> None:
    account = result.account_id
    log = logger_for(account=account, region=region)
    started = utcnow()
    outcomes: list[_Outcome] = []
    listed = 0
    error = None
    try:
        client = make_client(
            "codepipeline",
            region=region,
            session=session,
            endpoint_url=endpoint_url,
            stats=stats,
            max_pool_connections=workers,
        )
        summaries = fetch.list_pipelines(client)
        listed = len(summaries)
        by_name = {s["name"]: s for s in summaries}
        names = select(sorted(by_name), include, exclude)
        ctx = _Region(
            root=root,
            run_id=result.run_id,
            account_id=account,
            region=region,
            client=client,
            now=now,
            since=since,
            recorded_at=started,
            known=load_known(
                root,
                account,
                region,
                overlap=OVERLAP,
                open_floor=(now or started) - RETENTION,
                cache=cache_current,
            ),
        )
        log.info("collecting %d of %d pipelines", len(names), listed)
        outcomes = _run_pool(ctx, [by_name[n] for n in names], workers, progress)
    except (ClientError, BotoCoreError) as e:
        error = _describe(e)
        result.region_errors[region] = error
        log.error("region failed: %s", error)
    tally = _Tally.of(outcomes)
    _report(result, region, log, tally, listed, stats)
    for o in outcomes:
        result.files += o.files
    result.files += _write_run_row(
        root, result, region, stats, started, since, listed, tally, error
    )
    result.api_calls.update(stats.calls)
    result.api_attempts.update(stats.attempts)
    result.throttles += stats.throttles.total()
    result.retries += stats.retries


def _run_pool(ctx: _Region, summaries: list[dict], workers: int, progress: bool) -> list[_Outcome]:
    outcomes = []
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="cprec") as pool:
        futures = [pool.submit(_record_pipeline, ctx, s) for s in summaries]
        if progress:
            with click.progressbar(length=len(futures), label=ctx.region, file=sys.stderr) as bar:
                for f in as_completed(futures):
                    outcomes.append(f.result())
                    bar.update(1)
        else:
            outcomes = [f.result() for f in as_completed(futures)]
    return outcomes


def _record_pipeline(ctx: _Region, summary: dict) -> _Outcome:
    """Fetch, flatten and write one pipeline; failures are returned, never raised."""
    name = summary["name"]
    log = logger_for(account=ctx.account_id, region=ctx.region, pipeline=name)
    known = ctx.known.get(name) or Known()
    common = {
        "account_id": ctx.account_id,
        "region": ctx.region,
        "run_id": ctx.run_id,
        "recorded_at": ctx.recorded_at,
    }
    batch = Batch(ctx.root, name, ctx.run_id, common, WRITE_ORDER, FLUSH_ROWS)
    outcome = _Outcome(name, written=batch.written, files=batch.files)
    try:
        _record_state(ctx, name, known, batch)
        if summary.get("version") != known.version:
            definition = fetch.get_pipeline(ctx.client, name)
            row, actions = flatten_pipeline(definition)
            batch.add("pipelines", [row], ctx.recorded_at.date())
            batch.add("pipeline_actions", actions, ctx.recorded_at.date())
            known = replace(known, has_conditions=has_stage_conditions(definition["pipeline"]))
        _record_executions(ctx, name, known, batch, log)
        batch.flush()
    except (ClientError, BotoCoreError) as e:
        if isinstance(e, ClientError):
            code = e.response.get("Error", {}).get("Code")
        else:
            code = type(e).__name__
        if code in VANISHED:
            outcome.vanished = True
            log.warning("pipeline deleted during the run; skipped (%s)", _describe(e))
        else:
            outcome.error_code, outcome.error = code, _describe(e)
        # What was fetched is buffered in crash-safe order (children first, executions
        # oldest first): keeping it is as safe as a crash here, and saves the next run.
        # Children of executions not fetched yet are dropped: the next run lists them
        # again with their execution, so writing them now would only write them twice.
        fetched = {r["execution_id"] for r in batch.rows.get("executions", [])}
        for table in EXECUTION_CHILDREN:
            batch.retain(table, lambda row: row["execution_id"] in fetched)
        batch.flush()
    except Exception as e:  # a bug: keep the other pipelines going, but show the traceback
        log.exception("unexpected error")
        outcome.error_code, outcome.error = type(e).__name__, _describe(e)
    return outcome


def _record_state(ctx: _Region, name: str, known: Known, batch: Batch) -> None:
    state = fetch.get_pipeline_state(ctx.client, name)
    if state_hash(state) == known.state_hash:
        return
    snapshot_at = ctx.snapshot_time()
    for table, rows in flatten_pipeline_state(state, snapshot_at).items():
        batch.add(table, rows, snapshot_at.date())


def _record_executions(ctx: _Region, name: str, known: Known, batch: Batch, log) -> None:
    window = ctx.since if known.watermark is None else known.watermark - OVERLAP
    bound = min(window, known.oldest_open) if known.oldest_open else window
    floor = max(bound, ctx.since)
    changed = [
        s for s in fetch.list_executions(ctx.client, name, bound) if _is_changed(s, known, floor)
    ]
    if not changed:
        return
    # The model lets startTime be absent (the seed sample has none): such an execution
    # is always in the window and partitioned by the day it was recorded.
    start = {s["pipelineExecutionId"]: ts(s.get("startTime")) for s in changed}
    day = {i: (t or ctx.recorded_at).date() for i, t in start.items()}
    recent = {i for i, t in start.items() if t is None or t >= window}

    def keep(table: str, flatten, items) -> None:
        for item in items:
            batch.add(table, [flatten(item)], day[item["pipelineExecutionId"]])
            if batch.full:
                batch.flush()

    listers = [("action_executions", flatten_action_execution, fetch.list_action_executions)]
    if known.has_conditions is not False:  # rule executions come from stage conditions only
        listers.append(("rule_executions", flatten_rule_execution, fetch.list_rule_executions))
    for table, flatten, lister in listers:
        if recent:
            # pipeline-wide, newest first, back to the oldest recent changed execution
            oldest = (
                None if any(start[i] is None for i in recent) else min(start[i] for i in recent)
            )
            listed = lister(ctx.client, name, bound=oldest)
            keep(table, flatten, (d for d in listed if d["pipelineExecutionId"] in recent))
        for execution_id in sorted(set(start) - recent):  # re-polls from before the window
            keep(table, flatten, lister(ctx.client, name, execution_id=execution_id))

    # Oldest first, so that a crash never leaves the watermark ahead of a gap.
    for s in sorted(changed, key=lambda s: start[s["pipelineExecutionId"]] or ctx.recorded_at):
        execution_id = s["pipelineExecutionId"]
        try:
            detail = fetch.get_pipeline_execution(ctx.client, name, execution_id)
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") != "PipelineExecutionNotFoundException":
                raise
            log.warning("execution %s no longer exists; skipped", execution_id)
            continue
        for table, rows in flatten_execution(detail, s).items():
            batch.add(table, rows, day[execution_id])
        if batch.full:
            batch.flush()


def _is_changed(summary: dict, known: Known, floor: datetime) -> bool:
    recorded = known.executions.get(summary["pipelineExecutionId"])
    if recorded is None:
        # Unrecorded and older than the bound: outside the window (the last page reaches
        # past the bound), or older than --since.
        start = ts(summary.get("startTime"))
        return start is None or start >= floor
    status, updated = recorded
    return (
        status not in TERMINAL_EXECUTION
        or status != summary.get("status")
        or updated != to_us(ts(summary.get("lastUpdateTime")))
    )


@dataclass
class _Tally:
    """One region's outcomes, summed once for the log, the result and the run row."""

    recorded: list[_Outcome]
    failed: list[_Outcome]
    vanished: list[_Outcome]
    written: Counter

    @classmethod
    def of(cls, outcomes: list[_Outcome]) -> _Tally:
        written = Counter()
        for o in outcomes:
            written.update(o.written)
        return cls(
            recorded=[o for o in outcomes if not o.error and not o.vanished],
            failed=[o for o in outcomes if o.error],
            vanished=[o for o in outcomes if o.vanished],
            written=written,
        )


def _report(
    result: CollectResult, region: str, log, tally: _Tally, listed: int, stats: CallStats
) -> None:
    for table, n in tally.written.items():
        result.rows_written[table] = result.rows_written.get(table, 0) + n
    result.pipelines_listed += listed
    result.pipelines_recorded += len(tally.recorded)
    result.pipelines_vanished += [f"{region}/{o.name}" for o in tally.vanished]
    result.pipelines_failed.update({f"{region}/{o.name}": o.error for o in tally.failed})
    # One line per kind of error, not one per pipeline (AccessDenied hits them all).
    by_code: dict[str, list[_Outcome]] = defaultdict(list)
    for o in tally.failed:
        by_code[o.error_code].append(o)
    for group in by_code.values():
        names = sorted(o.name for o in group)
        shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
        log.error("%d pipeline(s) failed (%s): %s", len(group), shown, group[0].error)
    total = len(tally.recorded) + len(tally.failed) + len(tally.vanished)
    log.info(
        "recorded %d of %d pipelines: %d rows, %d API calls, %d throttled",
        len(tally.recorded),
        total,
        sum(tally.written.values()),
        stats.calls.total(),
        stats.throttles.total(),
    )


def _write_run_row(root, result, region, stats, started, since, listed, tally, error) -> list[Path]:
    errors = [{"pipeline": o.name, "error": o.error} for o in tally.failed]
    if error:
        errors.insert(0, {"pipeline": None, "error": error})
    row = {
        "account_id": result.account_id,
        "region": region,
        "run_id": result.run_id,
        "recorded_at": started,
        "started_at": started,
        "finished_at": utcnow(),
        "status": "failed" if error else ("partial" if tally.failed else "succeeded"),
        "cprec_version": __version__,
        "since": since,
        "pipelines_listed": listed,
        "pipelines_recorded": len(tally.recorded),
        "pipelines_failed": len(tally.failed),
        "pipelines_vanished": len(tally.vanished),
        "api_calls": stats.calls.total(),
        "api_calls_json": json.dumps(dict(sorted(stats.calls.items()))),
        "api_attempts_json": json.dumps(dict(sorted(stats.attempts.items()))),
        "throttles": stats.throttles.total(),
        "retries": stats.retries,
        "transient_errors": stats.transient.total(),
        "rows_written_json": json.dumps(dict(sorted(tally.written.items()))),
        "errors_json": json.dumps(errors),
        "dt": started.date(),
    }
    return write_rows(root, "collection_runs", [row], pipeline=None, run_id=result.run_id)
