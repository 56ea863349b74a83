"""`cprec collect`: record state and execution history into partitioned Parquet.

Per region: ListPipelines, then per pipeline on a bounded thread pool:

1. GetPipelineState; a snapshot is written only when its hash differs from the last
   one stored.
2. GetPipeline, only when ListPipelines' version differs from the last one stored.
3. ListPipelineExecutions, paged back to the cursor's bound, keeping what the cursor
   calls changed (recorder/known.py's Cursor owns the window, the overlap and the
   "changed" test). For the changed ones: pipeline-wide ListActionExecutions and
   ListRuleExecutions paged back to the oldest of them (per-execution filtered lists
   for the few that started before the window: re-polls and revived executions), then
   one GetPipelineExecution each, oldest first.

An idle pipeline therefore costs 2 calls (GetPipelineState + one
ListPipelineExecutions page); a run adds 1 GetCallerIdentity and the ListPipelines
pages. With `--role-arn`, the same is done in each role's account (recorder/accounts.py),
one account after another under the one lock of the run. Writes are ordered so that a
crash at any point leaves data from which the next run completes the history: children
before their execution, executions oldest first (the watermark never runs ahead of a gap).
"""

from __future__ import annotations

import fnmatch
import json
import os
import pickle
import sqlite3
import sys
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from pathlib import Path

import click
import duckdb
import pyarrow as pa
from botocore.exceptions import BotoCoreError, ClientError
from botocore.parsers import ResponseParserError

from recorder import __version__, fetch, head
from recorder import cache as cache_mod
from recorder.accounts import Account
from recorder.client import CallStats, describe, make_client
from recorder.config import CollectConfig
from recorder.errors import EXIT_OK, EXIT_PARTIAL, CprecError, first_line
from recorder.flatten import (
    flatten_action_execution,
    flatten_execution,
    flatten_pipeline,
    flatten_pipeline_state,
    flatten_rule_execution,
    has_stage_conditions,
    state_hash,
    to_json,
    ts,
)
from recorder.known import RETENTION, Cursor, Known, from_us, load_known, to_us
from recorder.logs import configure_logging, logger_for
from recorder.progress import Progress
from recorder.root import DataRoot
from recorder.store import TMP_DIR, Batch, write_rows
from recorder.testhooks import checkpoint
from recorder.timeparse import utcnow

HEARTBEAT_S = 30
FLUSH_ROWS = 2_500  # rows buffered per pipeline worker: bounds memory, whatever the history
FLUSH_ROWS_ENV = "CPREC_TEST_FLUSH_ROWS"  # a crash matrix flushes more often
# A worker publishes what it buffered at least this often (at the next whole execution):
# a run killed by its scheduler (`timeout 300 cprec collect`, a container's or a
# Lambda's limit) keeps the executions it fetched until shortly before the kill.
FLUSH_SECONDS = 30.0
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


@dataclass(frozen=True)
class Run:
    """One collector run in one account: what every region and pipeline worker reads,
    never writes (`replace(run, account=...)` for the next account)."""

    root: DataRoot
    run_id: str
    account: Account
    endpoint_url: str | None
    include: tuple[str, ...]
    exclude: tuple[str, ...]
    since: datetime  # backfill lower bound for pipelines with no history
    now: datetime | None  # a fixed clock (the simulator's), or None for the wall clock
    workers: int
    progress: bool
    cache_current: bool  # the query cache holds every file: read watermarks from it
    deadline: float | None = None  # time.monotonic() after which no new work starts

    @property
    def account_id(self) -> str:
        return self.account.account_id

    def check_deadline(self) -> None:
        if self.deadline is not None and time.monotonic() >= self.deadline:
            raise OutOfTime


class OutOfTime(Exception):
    """--max-duration passed: a worker stops at the next whole execution."""


@dataclass(frozen=True)
class PipelineOutcome:
    name: str
    written: dict[str, int]
    files: tuple[Path, ...]
    error_code: str | None = None
    error: str | None = None
    vanished: bool = False
    unfinished: bool = False  # stopped at --max-duration; the next run continues it


@dataclass(frozen=True)
class RegionOutcome:
    account_id: str
    region: str
    started: datetime
    listed: int  # what ListPipelines returned
    pipelines: list[PipelineOutcome]
    stats: CallStats
    error: str | None  # the region failed as a whole (e.g. ListPipelines or AssumeRole denied)

    @property
    def where(self) -> str:
        return f"{self.account_id}/{self.region}"

    @property
    def recorded(self) -> list[PipelineOutcome]:
        return [o for o in self.pipelines if not o.error and not o.vanished and not o.unfinished]

    @property
    def unfinished(self) -> list[PipelineOutcome]:
        return [o for o in self.pipelines if o.unfinished]

    @property
    def failed(self) -> list[PipelineOutcome]:
        return [o for o in self.pipelines if o.error]

    @property
    def vanished(self) -> list[PipelineOutcome]:
        return [o for o in self.pipelines if o.vanished]

    @property
    def written(self) -> Counter:
        return sum((Counter(o.written) for o in self.pipelines), Counter())


@dataclass(frozen=True)
class CollectResult:
    """What a run did, built once from its outcomes per account and region."""

    run_id: str
    regions: list[RegionOutcome]
    files: list[Path]  # every Parquet file written, the run rows included

    @property
    def accounts(self) -> list[str]:
        return list(dict.fromkeys(r.account_id for r in self.regions))

    @property
    def exit_code(self) -> int:
        return EXIT_PARTIAL if self.pipelines_failed or self.region_errors else EXIT_OK

    @property
    def api_calls(self) -> Counter:  # logical calls by operation
        return sum((r.stats.calls for r in self.regions), Counter())

    @property
    def api_attempts(self) -> Counter:  # HTTP requests by operation
        return sum((r.stats.attempts for r in self.regions), Counter())

    @property
    def throttles(self) -> int:
        return sum(r.stats.throttles.total() for r in self.regions)

    @property
    def retries(self) -> int:
        return sum(r.stats.retries for r in self.regions)

    @property
    def rows_written(self) -> dict[str, int]:
        return dict(sum((r.written for r in self.regions), Counter()))

    @property
    def pipelines_listed(self) -> int:
        return sum(r.listed for r in self.regions)

    @property
    def pipelines_recorded(self) -> int:
        return sum(len(r.recorded) for r in self.regions)

    @property
    def pipelines_failed(self) -> dict[str, str]:  # "account/region/name" -> error
        return {f"{r.where}/{o.name}": o.error for r in self.regions for o in r.failed}

    @property
    def pipelines_unfinished(self) -> list[str]:
        return [f"{r.where}/{o.name}" for r in self.regions for o in r.unfinished]

    @property
    def pipelines_vanished(self) -> list[str]:
        return [f"{r.where}/{o.name}" for r in self.regions for o in r.vanished]

    @property
    def region_errors(self) -> dict[str, str]:  # "account/region" -> error
        return {r.where: r.error for r in self.regions if r.error}


@dataclass(frozen=True)
class _Region:
    """What the pipeline workers of one region share (read-only)."""

    run: Run
    region: str
    client: object
    recorded_at: datetime
    known: dict[str, Known]
    progress: Progress

    def snapshot_time(self) -> datetime:
        return self.run.now or utcnow()

    @property
    def label(self) -> str:  # of the progress bar: the region, and the account of a role
        if self.run.account.role_arn is None:
            return self.region
        return f"{self.run.account_id} {self.region}"


def select(names: list[str], include: tuple[str, ...], exclude: tuple[str, ...]) -> list[str]:
    """Names matching any include glob (all when none) and no exclude glob."""
    return [
        n
        for n in names
        if (not include or any(fnmatch.fnmatchcase(n, g) for g in include))
        and not any(fnmatch.fnmatchcase(n, g) for g in exclude)
    ]


def collect(data_root: str | Path | DataRoot, config: CollectConfig) -> CollectResult:
    """Record every pipeline `config` selects, of every region, into `data_root`: of the
    caller's account, or of each account of its `role_arns`.

    The query cache is refreshed with what the run wrote when one exists; with
    `config.build_cache` (`cprec collect` without --no-cache) a local root without one
    gets one built from the whole tree at the end of the run.

    `config.max_duration` (seconds): no new execution is fetched after that long; what
    was fetched is published whole and the run ends normally, the pipelines it did not
    finish counted as unfinished (the next run continues them). The cache refresh and
    the run rows come after it.

    Raises UserError (exit 2) for configuration errors and LockedError (exit 75) when
    another collector holds the data root; otherwise the result carries exit code 0
    (all recorded) or 1 (some pipelines, regions or accounts failed, the rest written).
    """
    data_root = DataRoot.of(data_root)
    with configure_logging(quiet=config.quiet, log_format=config.log_format):
        scope = config.scope()
        run_id = _run_id()
        deadline = None if config.max_duration is None else time.monotonic() + config.max_duration
        # Arrow's default allocator (mimalloc) keeps freed segments per thread: with a
        # pool of workers each converting its own batches, that held ~45 MB more at peak
        # than the C library's allocator, which reuses memory across threads.
        pa.set_memory_pool(pa.system_memory_pool())
        # Asked before the lock is taken: no credentials, no trace left in the data root.
        accounts = scope.accounts()
        with data_root.lock(), cache_mod.writing(data_root, run_id) as claim:
            data_root.clean_tmp(TMP_DIR)
            run = Run(
                root=data_root,
                run_id=run_id,
                account=accounts[0],
                endpoint_url=config.endpoint_url,
                include=config.include,
                exclude=config.exclude,
                since=scope.since,
                now=scope.now,
                workers=config.workers,
                progress=not config.quiet and _is_tty(),
                cache_current=claim.current,
                deadline=deadline,
            )
            outcomes, files = [], []
            for account in accounts:
                if account.error:  # one line for the account; a failed run row per region
                    logger_for(account=account.account_id, region=None).error(
                        "account not recorded: %s", account.error
                    )
                for region in scope.regions:
                    outcome = _collect_region(replace(run, account=account), region)
                    outcomes.append(outcome)
                    files += [f for o in outcome.pipelines for f in o.files]
                    files += _write_run_row(run, outcome)
            _refresh_cache(claim, files, build=config.build_cache)
            checkpoint("end-step")
            head.end(data_root, run_id)  # after the last write: the root is whole again
        return CollectResult(run_id, outcomes, files)


def _refresh_cache(claim: cache_mod.Writing, files: list[Path], *, build: bool) -> None:
    """Keep the query cache current with what this run wrote; `build`: create it when a
    local root has none. An S3 root's cache is the reading machine's (readers build and
    sync their own): a collector, often in a container with no disk kept, builds none.
    That is the collector's policy for the kind of root, so the branch stays here."""
    build = build and not claim.root.is_s3
    new = build and not cache_mod.cache_path(claim.root).exists()
    try:
        result = claim.finish(files, build=build)
        if new and result is not None:
            logger_for(account=None, region=None).info(
                "built the query cache %s: %d files in %.1f s",
                cache_mod.cache_path(claim.root),
                result.files_loaded,
                result.seconds,
            )
    except (duckdb.Error, CprecError) as e:  # busy or an unreadable file: never fail the run
        logger_for(account=None, region=None).warning(
            "query cache not refreshed (%s); queries read Parquet until `cprec cache`",
            first_line(e),
        )


def _run_id() -> str:
    return f"{utcnow():%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"


def _is_tty() -> bool:
    return sys.stderr.isatty()


def _collect_region(run: Run, region: str) -> RegionOutcome:
    started, stats = utcnow(), run.account.stats[region]
    if run.account.error:  # the role could not be assumed: nothing to ask (told once)
        return RegionOutcome(run.account_id, region, started, 0, [], stats, run.account.error)
    log = logger_for(account=run.account_id, region=region)
    pipelines: list[PipelineOutcome] = []
    listed, error = 0, None
    try:
        client = make_client(
            "codepipeline",
            region=region,
            session=run.account.sessions[region],
            endpoint_url=run.endpoint_url,
            stats=stats,
            max_pool_connections=run.workers,
        )
        summaries = fetch.list_pipelines(client)
        listed = len(summaries)
        by_name = {s["name"]: s for s in summaries}
        names = select(sorted(by_name), run.include, run.exclude)
        known = load_known(
            run.root,
            run.account_id,
            region,
            open_floor=(run.now or started) - RETENTION,
            cache=run.cache_current,
        )
        # A pinned clock (`now`, the tests' simulated account) dates what it records too:
        # a definition's partition day must not depend on when the wall clock ran.
        recorded_at = run.now or started
        ctx = _Region(run=run, region=region, client=client, recorded_at=recorded_at,
                      known=known, progress=Progress(len(names), stats))  # fmt: skip
        log.info("collecting %d of %d pipelines", len(names), listed)
        pipelines = _run_pool(ctx, [by_name[n] for n in work_order(names, known)])
    except (ClientError, BotoCoreError, ResponseParserError) as e:
        error = describe(e)
        if run.account.role_arn is None:
            log.error("region failed: %s", error)
        else:
            log.error("region failed (as %s): %s", run.account.role_arn, error)
    outcome = RegionOutcome(run.account_id, region, started, listed, pipelines, stats, error)
    _report(outcome, log)
    return outcome


def work_order(names: list[str], known: dict[str, Known]) -> list[str]:
    """Pipelines whose oldest unrecorded execution is oldest first, so that a backfill
    longer than one run (--max-duration, a crash) fetches first what AWS deletes
    soonest: those never recorded (their history reaches back 12 months), then those
    a run left part way (each worker fetches a pipeline's executions oldest first, so
    what is left of one starts after its watermark), the longest untouched first."""
    floor = datetime.min.replace(tzinfo=UTC)
    return sorted(names, key=lambda n: ((k := known.get(n)) and k.watermark) or floor)


def _run_pool(ctx: _Region, summaries: list[dict]) -> list[PipelineOutcome]:
    """Every pipeline on the worker threads; the progress bar redrawn each second on a
    terminal, a line in the log every HEARTBEAT_S otherwise (a throttled run does not
    look hung): executions done and to do, the request rate, throttles, an ETA."""
    outcomes = []
    progress, log = ctx.progress, logger_for(account=ctx.run.account_id, region=ctx.region)
    with ThreadPoolExecutor(max_workers=ctx.run.workers, thread_name_prefix="cprec") as pool:
        pending = {pool.submit(_record_pipeline, ctx, s) for s in summaries}
        if ctx.run.progress:
            # the bar counts pipelines; the text after it, executions (the ETA is theirs)
            with click.progressbar(length=len(pending), label=ctx.label, file=sys.stderr,
                                   show_eta=False, show_pos=True,
                                   item_show_func=lambda _: progress.line()) as bar:  # fmt: skip
                while pending:
                    done, pending = wait(pending, timeout=1.0)
                    outcomes += [f.result() for f in done]
                    if done:
                        bar.update(len(done))
                    else:
                        bar.render_progress()
        else:
            while pending:
                done, pending = wait(pending, timeout=HEARTBEAT_S)
                outcomes += [f.result() for f in done]
                if pending:
                    log.info("%d of %d pipelines done; %s",
                             len(outcomes), len(summaries), progress.line())  # fmt: skip
    return outcomes


def _record_pipeline(ctx: _Region, summary: dict) -> PipelineOutcome:
    """Fetch, flatten and write one pipeline; failures are returned, never raised."""
    name = summary["name"]
    run = ctx.run
    log = logger_for(account=run.account_id, region=ctx.region, pipeline=name)
    known = ctx.known.get(name) or Known()
    common = {
        "account_id": run.account_id,
        "region": ctx.region,
        "run_id": run.run_id,
        "recorded_at": ctx.recorded_at,
    }
    limit = int(os.environ.get(FLUSH_ROWS_ENV) or FLUSH_ROWS)
    batch = Batch(run.root, name, run.run_id, common, WRITE_ORDER, limit, FLUSH_SECONDS)
    failure: dict = {}
    try:
        run.check_deadline()
        _record_state(ctx, name, known, batch)
        if summary.get("version") != known.version:
            definition = fetch.get_pipeline(ctx.client, name)
            row, actions = flatten_pipeline(definition)
            batch.add({"pipelines": [row], "pipeline_actions": actions}, ctx.recorded_at.date())
            known = replace(known, has_conditions=has_stage_conditions(definition["pipeline"]))
        _record_executions(ctx, name, Cursor(known, run.since), batch, log)
        batch.flush()
    except OutOfTime:
        # --max-duration: what is buffered is whole executions, oldest first; publish it
        # and leave the rest to the next run (its cursor starts after what was written).
        failure = {"unfinished": True}
        try:
            batch.flush()
        except OSError as e:
            failure = {"error_code": type(e).__name__, "error": describe(e)}
    except (ClientError, BotoCoreError, ResponseParserError, OSError) as e:
        # AWS said no, or did not answer, or the disk is full: one line, not a traceback
        if isinstance(e, ClientError):
            code = e.response.get("Error", {}).get("Code")
        else:
            code = type(e).__name__
        if code in VANISHED:
            failure = {"vanished": True}
            log.warning("pipeline deleted during the run; skipped (%s)", describe(e))
        else:
            failure = {"error_code": code, "error": describe(e)}
        # What is buffered is whole groups (an execution with every row under it, oldest
        # first): publishing it is as safe as a crash here, and saves the next run.
        try:
            batch.flush()
        except OSError:
            pass  # the disk is full: the error above says so; the next run fetches again
    except Exception as e:  # a bug: keep the other pipelines going, but show the traceback
        log.exception("unexpected error")
        failure = {"error_code": type(e).__name__, "error": describe(e)}
    return PipelineOutcome(name, dict(batch.written), tuple(batch.files), **failure)


def _record_state(ctx: _Region, name: str, known: Known, batch: Batch) -> None:
    state = fetch.get_pipeline_state(ctx.client, name)
    if state_hash(state) == known.state_hash:
        return
    snapshot_at = ctx.snapshot_time()
    batch.add(flatten_pipeline_state(state, snapshot_at), snapshot_at.date())


def _record_executions(ctx: _Region, name: str, cursor: Cursor, batch: Batch, log) -> None:
    """Fetch what changed since the cursor, flatten it, write it (crash-safe order)."""
    with _Listing(ctx.recorded_at) as listing:
        for s in fetch.list_executions(ctx.client, name, cursor.bound):
            ctx.run.check_deadline()
            if cursor.is_changed(s):
                start = ts(s.get("startTime"))
                listing.add(s, start, recent=cursor.in_window(start))
        ctx.progress.listing_ended(len(listing))
        if not listing:
            return

        listers = [("action_executions", flatten_action_execution, fetch.list_action_executions)]
        if cursor.known.has_conditions is not False:  # rule executions come from conditions only
            listers.append(("rule_executions", flatten_rule_execution, fetch.list_rule_executions))
        for table, flatten, lister in listers:
            if listing.has_recent:
                # pipeline-wide, newest first, back to the oldest recent changed execution
                for d in lister(ctx.client, name, bound=listing.oldest_recent()):
                    ctx.run.check_deadline()
                    if listing.is_recent(d["pipelineExecutionId"]):
                        listing.add_child(table, d["pipelineExecutionId"], flatten(d))
            for execution_id in listing.older():  # re-polls from before the window
                for d in lister(ctx.client, name, execution_id=execution_id):
                    ctx.run.check_deadline()
                    listing.add_child(table, execution_id, flatten(d))

        # Oldest first, each execution with every row under it as one group (the batch
        # publishes a group whole, children before the execution): a crash or a deadline
        # never leaves the watermark ahead of a gap, nor an execution without its rows.
        for s in listing.oldest_first():
            ctx.run.check_deadline()
            execution_id = s["pipelineExecutionId"]
            children = listing.children(execution_id)
            try:
                detail = fetch.get_pipeline_execution(ctx.client, name, execution_id)
                ctx.progress.fetched_one()
            except ClientError as e:
                if e.response.get("Error", {}).get("Code") != "PipelineExecutionNotFoundException":
                    raise
                log.warning("execution %s no longer exists; skipped", execution_id)
                ctx.progress.fetched_one()
                batch.add(children, listing.day(execution_id))  # what AWS did return of it
                continue
            batch.add({**children, **flatten_execution(detail, s)}, listing.day(execution_id))


class _Listing:
    """One pipeline's changed executions, as listed, spilled to a temporary SQLite file.

    Executions are listed newest first but written oldest first, so the whole listing is
    held until it ends: a year of a busy pipeline is tens of thousands of summaries
    (~3 KB each as botocore returns them), the memory that grew with the history. The
    standard library's SQLite keeps them on disk (a private temporary database, deleted
    on close; SQLite sorts within its bounded page cache), so the collector holds a few
    MB per worker whatever the history length.
    """

    def __init__(self, recorded_at: datetime) -> None:
        self.recorded_us = to_us(recorded_at)
        self.db = sqlite3.connect("")  # "": a private temporary on-disk database
        self.db.execute(
            "CREATE TABLE listed (id TEXT PRIMARY KEY, start_us INTEGER, recent INTEGER, "
            "summary TEXT)"
        )
        # Rows under the listed executions (action and rule executions), held until their
        # execution is fetched, so it is published with them. Pickled: these are our own
        # flattened rows in a private file, and pickle keeps their datetimes exactly.
        self.db.execute("CREATE TABLE children (id TEXT, tbl TEXT, row BLOB)")
        self.db.execute("CREATE INDEX children_id ON children (id)")
        self.count = self.recent = 0
        self.recent_without_start = False

    def __enter__(self) -> _Listing:
        return self

    def __exit__(self, *exc) -> None:
        self.db.close()

    def __len__(self) -> int:
        return self.count

    def add(self, summary: dict, start: datetime | None, *, recent: bool) -> None:
        # Timestamps go in as ISO text, which flatten's ts() reads back exactly.
        cur = self.db.execute(
            "INSERT OR REPLACE INTO listed VALUES (?, ?, ?, ?)",
            (summary["pipelineExecutionId"], to_us(start), recent, to_json(summary)),
        )
        self.count += cur.rowcount > 0
        self.recent += recent
        self.recent_without_start |= recent and start is None

    def add_child(self, table: str, execution_id: str, row: dict) -> None:
        self.db.execute(
            "INSERT INTO children VALUES (?, ?, ?)", (execution_id, table, pickle.dumps(row))
        )

    def children(self, execution_id: str) -> dict[str, list[dict]]:
        """The rows held for one execution, by table, in the order they were listed."""
        rows: dict[str, list[dict]] = defaultdict(list)
        for table, row in self.db.execute(
            "SELECT tbl, row FROM children WHERE id = ? ORDER BY rowid", (execution_id,)
        ):
            rows[table].append(pickle.loads(row))
        return dict(rows)

    @property
    def has_recent(self) -> bool:
        return self.recent > 0

    def oldest_recent(self) -> datetime | None:
        """Where a pipeline-wide listing stops: the oldest recent start (None: page to the
        end, as a recent execution without a start time may be anywhere)."""
        if self.recent_without_start:
            return None
        return from_us(
            self.db.execute("SELECT min(start_us) FROM listed WHERE recent").fetchone()[0]
        )

    def _get(self, execution_id: str) -> tuple[int | None, int] | None:
        return self.db.execute(
            "SELECT start_us, recent FROM listed WHERE id = ?", (execution_id,)
        ).fetchone()

    def is_recent(self, execution_id: str) -> bool:
        row = self._get(execution_id)
        return bool(row and row[1])

    def day(self, execution_id: str) -> date:
        """An execution's partition: its start day, or the day it was recorded."""
        start_us = self._get(execution_id)[0]
        return from_us(self.recorded_us if start_us is None else start_us).date()

    def older(self) -> Iterator[str]:
        """Ids of the changed executions that started before the window, in id order."""
        for (execution_id,) in self.db.execute(
            "SELECT id FROM listed WHERE NOT recent ORDER BY id"
        ):
            yield execution_id

    def oldest_first(self) -> Iterator[dict]:
        """Summaries by start (no start: the recording time), listing order among equals."""
        rows = self.db.execute(
            "SELECT summary FROM listed ORDER BY coalesce(start_us, ?), rowid",
            (self.recorded_us,),
        )
        for (summary,) in rows:
            yield json.loads(summary)


def _report(outcome: RegionOutcome, log) -> None:
    # One line per kind of error, not one per pipeline (AccessDenied hits them all).
    by_code: dict[str, list[PipelineOutcome]] = defaultdict(list)
    for o in outcome.failed:
        by_code[o.error_code].append(o)
    for group in by_code.values():
        names = sorted(o.name for o in group)
        shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
        log.error("%d pipeline(s) failed (%s): %s", len(group), shown, group[0].error)
    if outcome.unfinished:
        log.warning(
            "stopped at --max-duration: %d of %d pipelines unfinished (the next run "
            "continues them, oldest executions first)",
            len(outcome.unfinished),
            len(outcome.pipelines),
        )
    log.info(
        "recorded %d of %d pipelines: %d rows, %d API calls, %d throttled",
        len(outcome.recorded),
        len(outcome.pipelines),
        sum(outcome.written.values()),
        outcome.stats.calls.total(),
        outcome.stats.throttles.total(),
    )


def _status(outcome: RegionOutcome) -> str:
    if outcome.error:
        return "failed"
    if outcome.failed:
        return "partial"
    return "stopped" if outcome.unfinished else "succeeded"


def _write_run_row(run: Run, outcome: RegionOutcome) -> list[Path]:
    try:
        return _run_row(run, outcome)
    except OSError as e:
        logger_for(account=outcome.account_id, region=outcome.region).error(
            "run not recorded in collection_runs: %s", e.strerror or e
        )
        return []


def _run_row(run: Run, outcome: RegionOutcome) -> list[Path]:
    errors = [{"pipeline": o.name, "error": o.error} for o in outcome.failed]
    if outcome.error:
        errors.insert(0, {"pipeline": None, "error": outcome.error})
    stats, started, finished = outcome.stats, outcome.started, utcnow()
    if run.now is not None:
        # A pinned clock (the demo's, the tests') dates the run as it dates what the run
        # recorded: the queries measure ages to the last run's start (queries.recorded_clock),
        # which must be on the clock of the states and executions it recorded.
        started, finished = run.now, run.now + (finished - started)
    row = {
        "account_id": outcome.account_id,
        "region": outcome.region,
        "run_id": run.run_id,
        "recorded_at": started,
        "started_at": started,
        "finished_at": finished,
        "status": _status(outcome),
        "cprec_version": __version__,
        "since": run.since,
        "pipelines_listed": outcome.listed,
        "pipelines_recorded": len(outcome.recorded),
        "pipelines_failed": len(outcome.failed),
        "pipelines_vanished": len(outcome.vanished),
        "api_calls": stats.calls.total(),
        "api_calls_json": json.dumps(dict(sorted(stats.calls.items()))),
        "api_attempts_json": json.dumps(dict(sorted(stats.attempts.items()))),
        "throttles": stats.throttles.total(),
        "retries": stats.retries,
        "transient_errors": stats.transient.total(),
        "pipelines_unfinished": len(outcome.unfinished),
        "rows_written_json": json.dumps(dict(sorted(outcome.written.items()))),
        "errors_json": json.dumps(errors),
        "dt": started.date(),
    }
    return write_rows(run.root, "collection_runs", [row], pipeline=None, run_id=run.run_id)
