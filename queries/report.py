"""`cprec report`: one self-contained HTML file with the delivery picture of a selection.

Every figure on the page is a row of a named query (queries/sql/), run here with the
report's window; nothing is computed a second time. Charts are Bokeh figures (BSD, a
NumFOCUS project) embedded with Bokeh's inline resources, core library only (~1.3 MB of
JavaScript), so the file opens offline and requests nothing from any host. Plotly was the
other candidate: its inline library alone is 4.8 MB, over the 5 MB the demo's report may
weigh. The page is a Jinja2 template (a Bokeh dependency) with autoescaping: pipeline
names, error messages and approval summaries are data, never markup.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from urllib.parse import quote

import duckdb
import jinja2
from bokeh.embed import components
from bokeh.models import ColumnDataSource, FactorRange, HoverTool, Legend, LegendItem
from bokeh.palettes import Category10_10, Category20_20
from bokeh.plotting import figure
from bokeh.resources import Resources

import queries
from recorder import __version__
from recorder.root import DataRoot

# the four keys of the headline, as the `dora` query names them
KEYS = (
    ("per_week", "frequency_band", "Deployment frequency", "per week", True),
    ("p50_lead_time_s", "lead_time_band", "Lead time for changes", "p50", False),
    ("change_failure_rate", "change_failure_rate_band", "Change failure rate", "", False),
    ("p50_restore_s", "restore_band", "Time to restore", "p50", False),
)
MAX_STAGE_ROWS = 60  # stage-duration rows drawn; the pipelines with the slowest p90 first
MAX_FAILURES = 20  # recent failures listed


@dataclass(frozen=True)
class Selection:
    since: datetime
    until: datetime | None
    now: datetime
    pipelines: Sequence[str] = ()
    deploy_stages: Sequence[str] = ()

    @property
    def end(self) -> datetime:
        return self.until or self.now

    def previous(self) -> Selection:
        """The period of the same length just before this one."""
        length = self.end - self.since
        return Selection(
            self.since - length, self.since, self.now, self.pipelines, self.deploy_stages
        )


def build_report(
    con: duckdb.DuckDBPyConnection, selection: Selection, *, data_root: str | Path | DataRoot
) -> str:
    """The report's HTML."""
    run = _Runner(con, selection, data_root)
    dora = run("dora")
    summary = run("pipeline-summary")
    context = {
        "version": __version__,
        "data_root": str(DataRoot.of(data_root).resolve()),
        "since": selection.since,
        "until": selection.end,
        "pipelines": ", ".join(selection.pipelines) or "all",
        "deploy_stages": ", ".join(selection.deploy_stages) or "default",
        "collected": next(iter(run("collection-health", window=False)), None),  # newest first
        "empty": not summary,
    }
    if summary:
        context |= _content(run, selection, dora, summary)
    return _template().render(**context)


class _Runner:
    def __init__(self, con, selection: Selection, data_root) -> None:
        self.con, self.selection, self.data_root = con, selection, data_root

    def __call__(self, name: str, *, selection: Selection | None = None, window: bool = True):
        s = selection or self.selection
        table = queries.run_query(
            self.con,
            name,
            since=s.since if window else None,
            until=s.until if window else None,
            now=s.now,
            pipelines=s.pipelines,
            deploy_stages=s.deploy_stages,
            data_root=self.data_root,
        )
        return table.to_pylist()


def _content(run: _Runner, selection: Selection, dora: list[dict], summary: list[dict]) -> dict:
    previous = run("dora", selection=selection.previous())
    overall = next((r for r in dora if r["pipeline"] == "(all)"), None)
    before = next((r for r in previous if r["pipeline"] == "(all)"), None)
    trend = run("trend")
    charts = {
        "deployments": _weekly(trend, "deployments", "Deployments per week"),
        "failure_rate": _weekly(trend, "failure_rate", "Failure rate per week", rate=True),
        "duration": _weekly(trend, "p50_s", "Median execution duration per week (s)"),
        "stages": _stage_durations(run("stage-durations")),
        "breakdown": _breakdown(run("time-breakdown")),
        "regressions": _regressions(regressions := run("regressions")),
        "errors": _errors(run("error-codes")),
        "approvals": _approvals(run("approval-waits")),
    }
    charts = {k: v for k, v in charts.items() if v is not None}
    script, divs = components(charts)
    per_dora = {r["pipeline"]: r for r in dora}
    # a pipeline without a deploy stage has no `dora` row: its delivery keys are blank
    blank = dict.fromkeys(("per_week", "p50_lead_time_s", "p50_restore_s"))
    rows = [{**blank, **r, **per_dora.get(r["pipeline"], {})} for r in summary]
    rows.sort(key=lambda r: (-(r["failure_rate"] or 0), r["pipeline"]))
    failures = run("recent-failures")
    for f in failures:
        f["url"] = console_url(f["region"], f["pipeline"], f["execution_id"])
    return {
        "headline": _headline(overall, before),
        "rows": rows,
        "script": script,
        "charts": divs,
        "regression_rows": regressions,
        "failures": failures[:MAX_FAILURES],
        "more_failures": max(0, len(failures) - MAX_FAILURES),
        "state": run("current-state"),
        "bokeh_js": Resources(mode="inline", components=["bokeh"]).render_js(),
    }


def console_url(region: str | None, pipeline: str, execution_id: str) -> str | None:
    """The execution's page in the AWS console."""
    if not region:
        return None
    return (
        f"https://{region}.console.aws.amazon.com/codesuite/codepipeline/pipelines/"
        f"{quote(pipeline, safe='')}/executions/{quote(execution_id, safe='')}/timeline"
        f"?region={region}"
    )


def _headline(now: dict | None, before: dict | None) -> list[dict]:
    cards = []
    for key, band, title, unit, higher_is_better in KEYS:
        value = now.get(key) if now else None
        old = before.get(key) if before else None
        change = None
        if value is not None and old is not None:
            better = value > old if higher_is_better else value < old
            change = {"text": _delta(key, value - old), "better": better, "same": value == old}
        cards.append({
            "key": key, "title": title, "unit": unit, "value": value,
            "text": _figure(key, value), "band": now.get(band) if now else None,
            "previous": _figure(key, old), "change": change,
        })  # fmt: skip
    return cards


def _figure(key: str, value: float | None) -> str:
    if value is None:
        return "no data"
    if key == "change_failure_rate":
        return f"{value:.1%}"
    if key == "per_week":
        return f"{value:.1f}"
    return duration(value)


def _delta(key: str, diff: float) -> str:
    sign = "+" if diff >= 0 else "−"
    if key == "change_failure_rate":
        return f"{sign}{abs(diff) * 100:.1f} pt"
    if key == "per_week":
        return f"{sign}{abs(diff):.1f}"
    return f"{sign}{duration(abs(diff))}"


def duration(seconds: float | None) -> str:
    """Seconds as the two largest units: 95 s -> '1 min 35 s', 90061 -> '1 d 1 h'."""
    if seconds is None:
        return ""
    s = round(seconds)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60), ("s", 1)):
        if s >= size or (unit == "s" and not parts):
            parts.append(f"{s // size} {unit}")
            s %= size
    return " ".join(parts[:2])


# --- charts ---------------------------------------------------------------------------------


def _style(fig, *, legend: bool = False):
    fig.toolbar.logo = None
    fig.toolbar_location = "above"
    fig.title.text_font_size = "14px"
    fig.xgrid.grid_line_color = None
    if legend:
        fig.add_layout(Legend(click_policy="hide", label_text_font_size="11px"), "right")
    return fig


def _palette(n: int) -> list[str]:
    colors = Category10_10 if n <= 10 else Category20_20
    return [colors[i % len(colors)] for i in range(n)]


def _weekly(trend: list[dict], column: str, title: str, *, rate: bool = False):
    by_pipeline: dict[str, list[dict]] = {}
    for r in trend:
        if r[column] is not None:
            by_pipeline.setdefault(r["pipeline"], []).append(r)
    if not by_pipeline:
        return None
    fig = _style(
        figure(title=title, x_axis_type="datetime", height=320, sizing_mode="stretch_width"),
        legend=True,
    )
    fig.add_tools(HoverTool(tooltips=[("pipeline", "@pipeline"), ("week", "@week{%F}"),
                                      (column, "@y{0.000}" if rate else "@y{0.0}")],
                            formatters={"@week": "datetime"}))  # fmt: skip
    for (pipeline, rows), color in zip(
        by_pipeline.items(), _palette(len(by_pipeline)), strict=True
    ):
        source = ColumnDataSource({
            "week": [datetime.combine(r["week"], datetime.min.time()) for r in rows],
            "y": [r[column] for r in rows],
            "pipeline": [pipeline] * len(rows),
        })  # fmt: skip
        line = fig.line("week", "y", source=source, color=color, line_width=2)
        dots = fig.scatter("week", "y", source=source, color=color, size=5)
        fig.legend[0].items.append(LegendItem(label=pipeline, renderers=[line, dots]))
    if rate:
        fig.y_range.start = 0
    return fig


def _stage_durations(rows: list[dict]):
    if not rows:
        return None
    slowest = {}
    for r in rows:
        slowest[r["pipeline"]] = max(slowest.get(r["pipeline"], 0), r["p90_s"] or 0)
    keep, count = [], 0
    for pipeline in sorted(slowest, key=lambda p: (-slowest[p], p)):
        mine = [r for r in rows if r["pipeline"] == pipeline]
        if count + len(mine) > MAX_STAGE_ROWS and keep:
            break
        keep += mine
        count += len(mine)
    factors = [(r["pipeline"], r["stage"]) for r in keep]
    source = ColumnDataSource({
        "y": factors,
        "p50": [r["p50_s"] for r in keep], "p90": [r["p90_s"] for r in keep],
        "p95": [r["p95_s"] for r in keep], "max": [r["max_s"] for r in keep],
        "runs": [r["runs"] for r in keep],
    })  # fmt: skip
    fig = _style(figure(
        title="Stage durations (s): bar to p50, line p50 to p95, dot p90",
        y_range=FactorRange(*reversed(factors)), height=max(180, 60 + 22 * len(factors)),
        sizing_mode="stretch_width", x_axis_type="log",
    ))  # fmt: skip
    fig.hbar(y="y", left=0.5, right="p50", height=0.6, source=source, color="#4c78a8")
    fig.segment(x0="p50", x1="p95", y0="y", y1="y", source=source, color="#4c78a8", line_width=2)
    fig.scatter(x="p90", y="y", source=source, size=7, color="#f58518")
    fig.add_tools(HoverTool(tooltips=[("stage", "@y"), ("runs", "@runs"), ("p50", "@p50{0.0}"),
                                      ("p90", "@p90{0.0}"), ("p95", "@p95{0.0}"),
                                      ("max", "@max{0.0}")]))  # fmt: skip
    fig.ygrid.grid_line_color = None
    return fig


BREAKDOWN = (
    ("source_to_start_s", "commit to start"),
    ("queued_s", "queued"),
    ("stages_s", "in stages (without approvals)"),
    ("approval_s", "approvals"),
    ("between_stages_s", "between stages"),
)


def _breakdown(rows: list[dict]):
    if not rows:
        return None
    data: dict[str, list] = {"pipeline": [r["pipeline"] for r in rows]}
    for r in rows:  # approvals run inside stages: drawn apart, not twice
        r["stages_s"] = max(0.0, (r["in_stages_s"] or 0) - (r["approval_s"] or 0))
    for key, _ in BREAKDOWN:
        data[key] = [(r[key] or 0) / 60 for r in rows]
    fig = _style(figure(
        title="Where a successful execution's time goes (medians of each part, minutes)",
        y_range=list(reversed(data["pipeline"])), height=max(180, 80 + 28 * len(rows)),
        sizing_mode="stretch_width",
    ), legend=True)  # fmt: skip
    keys = [k for k, _ in BREAKDOWN]
    bars = fig.hbar_stack(keys, y="pipeline", height=0.7, source=ColumnDataSource(data),
                          color=_palette(len(keys)))  # fmt: skip
    for bar, (_, label) in zip(bars, BREAKDOWN, strict=True):
        fig.legend[0].items.append(LegendItem(label=label, renderers=[bar]))
    fig.add_tools(HoverTool(tooltips=[("pipeline", "@pipeline")] + [
        (label, f"@{key}{{0.0}} min") for key, label in BREAKDOWN
    ]))  # fmt: skip
    fig.ygrid.grid_line_color = None
    return fig


def _bars(title: str, labels: list[str], values: list[float], hover: list[tuple], extra: dict):
    source = ColumnDataSource({"label": labels, "value": values, **extra})
    fig = _style(figure(title=title, y_range=list(reversed(labels)),
                        height=max(180, 80 + 24 * len(labels)),
                        sizing_mode="stretch_width"))  # fmt: skip
    fig.hbar(y="label", right="value", height=0.7, source=source, color="#4c78a8")
    fig.add_tools(HoverTool(tooltips=hover))
    fig.ygrid.grid_line_color = None
    return fig


def _regressions(rows: list[dict]):
    if not rows:
        return None
    labels = [f"{r['pipeline']} / {r['stage']}" for r in rows]
    return _bars(
        "Stages that got slower: p50 of the last 7 days ÷ p50 of the 28 before",
        labels, [r["ratio"] for r in rows],
        [("stage", "@label"), ("ratio", "@value{0.00}"), ("recent p50", "@recent{0.0} s"),
         ("baseline p50", "@baseline{0.0} s"), ("new versions", "@versions")],
        {"recent": [r["recent_p50_s"] for r in rows],
         "baseline": [r["baseline_p50_s"] for r in rows],
         "versions": [r["new_versions"] or "none" for r in rows]},
    )  # fmt: skip


def _errors(rows: list[dict]):
    rows = rows[:10]
    if not rows:
        return None
    labels = [f"{r['error_code'] or '(none)'} · {r['provider'] or '?'}" for r in rows]
    return _bars(
        "Top error codes of failed actions", labels, [r["failures"] for r in rows],
        [("error", "@label"), ("failures", "@value"), ("pipelines", "@pipelines")],
        {"pipelines": [r["pipelines"] for r in rows]},
    )  # fmt: skip


def _approvals(rows: list[dict]):
    rows = [r for r in rows if r["p50_approval_s"] is not None]
    if not rows:
        return None
    labels = [f"{r['pipeline']} / {r['action']}" for r in rows]
    return _bars(
        "Approval waits: p50 of approved or rejected (hours)", labels,
        [r["p50_approval_s"] / 3600 for r in rows],
        [("approval", "@label"), ("p50", "@value{0.00} h"), ("p90", "@p90{0.00} h"),
         ("approvals", "@n")],
        {"p90": [(r["p90_approval_s"] or math.nan) / 3600 for r in rows],
         "n": [r["approvals"] for r in rows]},
    )  # fmt: skip


# --- the page ---------------------------------------------------------------------------------


def _template() -> jinja2.Template:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("queries", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["duration"] = duration
    env.filters["when"] = lambda t: t.strftime("%Y-%m-%d %H:%M UTC") if t else ""
    env.filters["rate"] = lambda r: "" if r is None else f"{r:.1%}"
    env.filters["num"] = lambda x, d=1: "" if x is None else f"{x:.{d}f}"
    return env.get_template("report.html")
