"""Where a recorded pipeline or execution is in the AWS console: the one builder of
those links, for the report, the watch's messages and the exported traces."""

from __future__ import annotations

from urllib.parse import quote


def console_url(region: str | None, pipeline: str, execution_id: str | None = None) -> str | None:
    """The execution's timeline in the AWS console, else (no execution id) the pipeline's
    page; None without a region (the console's address names it)."""
    if not region:
        return None
    base = (
        f"https://{region}.console.aws.amazon.com/codesuite/codepipeline/pipelines/"
        f"{quote(pipeline, safe='')}"
    )
    if execution_id:
        return f"{base}/executions/{quote(execution_id, safe='')}/timeline?region={region}"
    return f"{base}/view?region={region}"
