"""The seven CodePipeline operations: paging, and the modeled errors each answers.

Input validation and `ApiError` live in `protocol.py`, shared with `model` and
`fixtures`. `Operations` reads its account through the `Pipelines` protocol, not
`model.Account`: `model` imports this module, so this one must not import it.
`nextToken` is opaque and signed: it carries the (start, id) of the last item
returned, so paging stays free of duplicates while the clock moves.
"""

from __future__ import annotations

import base64
import hashlib
import json
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterator
from typing import Any, Protocol

from recorder.simulator import projection
from recorder.simulator.definitions import PipelineSpec, declaration
from recorder.simulator.protocol import RETENTION_S, ApiError
from recorder.simulator.state import pipeline_state
from recorder.simulator.timeline import Timeline

_LAST = 1 << 128  # above every id number


def _token(op: str, scope: str, key: list) -> str:
    raw = base64.urlsafe_b64encode(json.dumps([op, scope, key]).encode()).decode().rstrip("=")
    return f"{raw}.{hashlib.sha256(f'cprec-sim|{raw}'.encode()).hexdigest()[:16]}"


def _untoken(op: str, scope: str, token: str) -> Any:
    try:
        raw, sig = token.rsplit(".", 1)
        if hashlib.sha256(f"cprec-sim|{raw}".encode()).hexdigest()[:16] != sig:
            raise ValueError
        t_op, t_scope, key = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
        if (t_op, t_scope) != (op, scope):
            raise ValueError
        return key
    except (ValueError, TypeError):
        raise ApiError("InvalidNextTokenException", "The next token is not valid.") from None


def _page(op: str, scope: str, params: dict, items: Iterator[tuple[Any, dict]], key: str):
    """Fill one page of `key` from `items` ((sort key, body) newest first)."""
    limit = params.get("maxResults", 100)
    out, last = [], None
    for sort_key, body in items:
        if len(out) == limit:
            return {key: out, "nextToken": _token(op, scope, list(last))}
        out.append(body)
        last = sort_key
    return {key: out}


def _desc(keys: list, rows: list, now: float, token_key) -> Iterator[int]:
    """Positions of `rows` newest first, started by `now`, after `token_key`."""
    end = bisect_right(keys, (now, _LAST))
    if token_key is not None:
        end = min(end, bisect_left(keys, tuple(token_key)))
    return iter(range(end - 1, -1, -1))


class Pipelines(Protocol):
    """What `Operations` reads of an account (`model.Account` is one), typed by shape."""

    _now: float

    def pipeline_names(self) -> list[str]: ...

    def _spec(self, name: str) -> PipelineSpec: ...

    def _pipeline(self, name: str) -> tuple[PipelineSpec, Timeline]: ...


class Operations:
    """Operation handlers over an Account; the Account holds the lock."""

    def __init__(self, account: Pipelines):
        self.acct = account

    def handler(self, operation: str) -> Callable[[dict], dict]:
        return getattr(self, "op_" + operation)

    def _pipeline(self, name: str):
        return self.acct._pipeline(name)

    def op_ListPipelines(self, p: dict) -> dict:
        after = _untoken("ListPipelines", "", p["nextToken"]) if "nextToken" in p else None
        now = self.acct._now
        rows = []
        for name in sorted(self.acct.pipeline_names()):
            if after is not None and name <= after[0]:
                continue
            spec = self.acct._spec(name)
            v = spec.version_at(now)
            body = {"name": name, "version": v.number, "pipelineType": spec.pipeline_type,
                    "executionMode": spec.execution_mode, "created": spec.created,
                    "updated": v.updated}  # fmt: skip
            rows.append(([name], body))
        return _page("ListPipelines", "", p, iter(rows), "pipelines")

    def op_GetPipeline(self, p: dict) -> dict:
        spec, _ = self._pipeline(p["name"])
        current = spec.version_at(self.acct._now)
        number = p.get("version", current.number)
        if number > current.number:
            raise ApiError(
                "PipelineVersionNotFoundException",
                f"Pipeline version {number} of pipeline {spec.name} not found",
            )
        v = spec.versions[number - 1]
        return {
            "pipeline": declaration(spec, v),
            "metadata": {"pipelineArn": spec.arn, "created": spec.created, "updated": v.updated},
        }

    def op_GetPipelineState(self, p: dict) -> dict:
        spec, tl = self._pipeline(p["name"])
        return pipeline_state(spec, tl, self.acct._now)

    def _execution(self, spec, tl, execution_id: str):
        now = self.acct._now
        tl.ensure(now)
        ex = tl.by_id.get(execution_id)
        if ex is None or ex.start > now or ex.start < now - RETENTION_S:
            raise ApiError(
                "PipelineExecutionNotFoundException",
                f"Pipeline execution with id '{execution_id}' does not exist in pipeline "
                f"with name '{spec.name}'.",
            )
        return ex

    def op_ListPipelineExecutions(self, p: dict) -> dict:
        spec, tl = self._pipeline(p["pipelineName"])
        now = self.acct._now
        tl.ensure(now)
        idx = tl.index()
        token = (
            _untoken("ListPipelineExecutions", spec.name, p["nextToken"])
            if "nextToken" in p
            else None
        )
        stage = p.get("filter", {}).get("succeededInStage", {}).get("stageName")

        def rows():
            for i in _desc(idx.execution_keys, idx.executions, now, token):
                ex = idx.executions[i]
                if ex.start < now - RETENTION_S:
                    return
                if stage and not _succeeded_in(ex, stage, now):
                    continue
                yield idx.execution_keys[i], projection.execution_summary(spec, ex, now)

        return _page("ListPipelineExecutions", spec.name, p, rows(), "pipelineExecutionSummaries")

    def op_GetPipelineExecution(self, p: dict) -> dict:
        spec, tl = self._pipeline(p["pipelineName"])
        ex = self._execution(spec, tl, p["pipelineExecutionId"])
        return {"pipelineExecution": projection.execution_detail(spec, ex, self.acct._now)}

    def op_ListActionExecutions(self, p: dict) -> dict:
        return self._list_runs(p, "ListActionExecutions", "actionExecutionDetails")

    def op_ListRuleExecutions(self, p: dict) -> dict:
        return self._list_runs(p, "ListRuleExecutions", "ruleExecutionDetails")

    def _list_runs(self, p: dict, op: str, key: str) -> dict:
        spec, tl = self._pipeline(p["pipelineName"])
        now = self.acct._now
        tl.ensure(now)
        rules = op == "ListRuleExecutions"
        render = projection.rule_detail if rules else projection.action_detail
        token = _untoken(op, spec.name, p["nextToken"]) if "nextToken" in p else None
        f = p.get("filter", {})
        latest = f.get("latestInPipelineExecution")
        ex_id = f.get("pipelineExecutionId") or (latest or {}).get("pipelineExecutionId")
        if ex_id:
            ex = self._execution(spec, tl, ex_id)
            runs = sorted((r for r in (ex.rules if rules else ex.actions) if r.start <= now),
                          key=lambda r: (r.start, r.n), reverse=True)  # fmt: skip
            if latest and latest.get("startTimeRange") == "Latest":
                seen: set[str] = set()
                kept = []
                for r in runs:
                    name = r.rule.name if rules else r.action.name
                    if (r.stage, name) not in seen:
                        seen.add((r.stage, name))
                        kept.append(r)
                runs = kept
            if token is not None:
                runs = [r for r in runs if (r.start, r.n) < tuple(token)]
            rows = (((r.start, r.n), render(spec, ex, r, now)) for r in runs)
            return _page(op, spec.name, p, rows, key)
        idx = tl.index()
        keys, items = (idx.rule_keys, idx.rules) if rules else (idx.action_keys, idx.actions)

        def all_rows():
            cutoff = now - RETENTION_S
            for i in _desc(keys, items, now, token):
                start, rid, ex, run = items[i]
                if start < cutoff:
                    return
                if ex.start >= cutoff:
                    yield (start, rid), render(spec, ex, run, now)

        return _page(op, spec.name, p, all_rows(), key)


def _succeeded_in(ex, stage: str, now: float) -> bool:
    if not any(r.stage == stage and r.start <= now for r in ex.actions):
        return False
    return projection.stage_status(ex, stage, now) == "Succeeded"
