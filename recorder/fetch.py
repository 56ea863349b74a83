"""Dumb fetchers: call and page, nothing else (flattening lives in flatten.py).

List results are paged with botocore paginators at 100 items a page. The
time-ordered lists (executions, action and rule executions; newest first) stop
after the first page whose oldest `startTime` is before a lower bound; they never
stop at the first known id, since the order is not documented.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from recorder.flatten import ts

PAGE_SIZE = 100


def paginate(
    client, method: str, key: str, *, back_to: datetime | None = None, **kwargs
) -> Iterator[dict]:
    """Items of every page; with `back_to`, none after the first page reaching before it."""
    config = {"PageSize": PAGE_SIZE}
    for page in client.get_paginator(method).paginate(**kwargs, PaginationConfig=config):
        items = page.get(key) or []
        yield from items
        if back_to is not None and any(
            (ts(i.get("startTime")) or back_to) < back_to for i in items
        ):
            return


def account_id(sts) -> str:
    return sts.get_caller_identity()["Account"]


def list_pipelines(client) -> list[dict]:
    return list(paginate(client, "list_pipelines", "pipelines"))


def get_pipeline(client, name: str) -> dict:
    return client.get_pipeline(name=name)


def get_pipeline_state(client, name: str) -> dict:
    return client.get_pipeline_state(name=name)


def get_pipeline_execution(client, name: str, execution_id: str) -> dict:
    return client.get_pipeline_execution(pipelineName=name, pipelineExecutionId=execution_id)


def list_executions(client, name: str, bound: datetime | None) -> Iterator[dict]:
    return paginate(
        client,
        "list_pipeline_executions",
        "pipelineExecutionSummaries",
        back_to=bound,
        pipelineName=name,
    )


def list_action_executions(
    client, name: str, *, bound: datetime | None = None, execution_id: str | None = None
) -> Iterator[dict]:
    """Pipeline-wide back to `bound`, or every action execution of one execution."""
    return _runs(
        client, "list_action_executions", "actionExecutionDetails", name, bound, execution_id
    )


def list_rule_executions(
    client, name: str, *, bound: datetime | None = None, execution_id: str | None = None
) -> Iterator[dict]:
    """Pipeline-wide back to `bound`, or every rule execution of one execution."""
    return _runs(client, "list_rule_executions", "ruleExecutionDetails", name, bound, execution_id)


def _runs(client, method, key, name, bound, execution_id) -> Iterator[dict]:
    kwargs = {"filter": {"pipelineExecutionId": execution_id}} if execution_id else {}
    return paginate(client, method, key, back_to=bound, pipelineName=name, **kwargs)
