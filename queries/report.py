"""`cprec report`: one self-contained HTML file with the delivery picture of a selection.

Every figure on the page is a row of a named query (queries/sql/), run here with the
report's window; nothing is computed a second time. What this module adds is arithmetic a
reader can check: the weeks drawn (whole weeks only), the ranking of pipelines, and the
sums that pool several pipelines into an "all" or "others" panel. Charts are Bokeh figures
(BSD, a NumFOCUS project; queries/charts.py) embedded with Bokeh's inline resources, core
library only (~1.3 MB of JavaScript), so the file opens offline and requests nothing from
any host. Plotly was the other candidate: its inline library alone is 4.8 MB, over the 5 MB
the demo's report may weigh. The page is a Jinja2 template (a Bokeh dependency) with
autoescaping: pipeline names, error messages and approval summaries are data, never markup.

Made for 5 to 500 pipelines: a trend is small multiples (all pipelines, the TOP pipelines
of the figure, the others), a bar chart lists its first rows and the page's pipeline filter
brings any other in, and every table row names its pipeline for that filter.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import duckdb
import jinja2
import markupsafe
from bokeh.embed import components
from bokeh.resources import Resources

import queries
from queries import charts
from queries.charts import duration, unit_for
from recorder import __version__
from recorder.console import console_url
from recorder.root import DataRoot

# the four keys of the headline, as the `dora` query names them
KEYS = (
    ("per_week", "frequency_band", "Deployment frequency", "per week", True),
    ("p50_lead_time_s", "lead_time_band", "Lead time for changes", "p50", False),
    ("change_failure_rate", "change_failure_rate_band", "Change failure rate", "", False),
    ("p50_restore_s", "restore_band", "Time to restore", "p50", False),
)
TOP = 10  # pipelines with a trend panel of their own: with "all" and "others", 3 rows of 4
MAX_FAILURES = 20  # recent failures listed (the filter shows the first 20 that match)
KEPT_FAILURES = 500  # recent failures in the file, for the filter
TABLE_ROWS = 25  # rows of a long table shown before "show all"


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
    con: duckdb.DuckDBPyConnection,
    selection: Selection,
    *,
    data_root: str | Path | DataRoot,
    prices: dict | None = None,
) -> str:
    """The report's HTML; `prices`: the cost section's (queries/cost.py; None: AWS's)."""
    run = _Runner(con, selection, data_root, prices)
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
    def __init__(self, con, selection: Selection, data_root, prices: dict | None) -> None:
        self.con, self.selection, self.data_root = con, selection, data_root
        self.prices = prices

    def __call__(
        self, name: str, *, selection: Selection | None = None, window: bool = True, **extra
    ):
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
            prices=self.prices,
            **extra,
        )
        return table.to_pylist()


def _content(run: _Runner, selection: Selection, dora: list[dict], summary: list[dict]) -> dict:
    previous = run("dora", selection=selection.previous())
    overall = next((r for r in dora if r["pipeline"] == "(all)"), None)
    before = next((r for r in previous if r["pipeline"] == "(all)"), None)
    weeks = whole_weeks(selection.since, selection.end)
    trends = weekly_trends(run("trend"), weeks)
    regressions = run("regressions")
    currency = (run.prices or {}).get("currency", "USD")
    figures = {}
    filters = {"pipelines": [r["pipeline"] for r in summary], "trends": {}, "bars": {}}
    for trend in trends:
        panels, filters["trends"][trend.key] = charts.trend(trend)
        figures |= panels
    for key, made in (
        ("breakdown", charts.breakdown(run("time-breakdown"))),
        ("stages", charts.stage_durations(run("stage-durations"))),
        ("approvals", charts.approvals(run("approval-waits"))),
        ("regressions", charts.regressions(regressions)),
        ("errors", charts.errors(run("error-codes"))),
        ("cost", charts.cost(costs := run("cost"), currency, run.prices is not None)),
    ):
        if made is not None:
            figures[key], spec = made
            if spec:
                filters["bars"][key] = spec
    script, divs = components(figures)
    per_dora = {r["pipeline"]: r for r in dora}
    # a pipeline without a deployment attempt in the window has no `dora` row: no keys
    blank = dict.fromkeys(("per_week", "p50_lead_time_s", "p50_restore_s"))
    rows = [{**blank, **r, **per_dora.get(r["pipeline"], {})} for r in summary]
    rows.sort(key=lambda r: (-(r["failure_rate"] or 0), r["pipeline"]))
    failures = run("recent-failures")[:KEPT_FAILURES]
    for f in failures:
        f["url"] = console_url(f["region"], f["pipeline"], f["execution_id"])
    return {
        "headline": _headline(overall, before),
        "rows": rows,
        "script": script,
        "charts": divs,
        "trends": trends,
        "weeks": week_span(weeks, selection),
        "filters": filters,
        "pipeline_count": len(summary),
        "regression_rows": regressions,
        "failures": failures,
        "cost_rows": [r for r in costs if r["cost"] != 0 or r["billable_minutes"]],
        "cost_months": run("cost", by="month"),
        "currency": currency,
        "prices_given": run.prices is not None,
        "max_failures": MAX_FAILURES,
        "kept_failures": KEPT_FAILURES,
        "table_rows": TABLE_ROWS,
        # the state's ages to the end of the window: with --until, the newest snapshot
        # before it was the state then, not now
        "state_clock": selection.end,
        "state": run("current-state", selection=replace(selection, now=selection.end)),
        "bokeh_js": Resources(mode="inline", components=["bokeh"]).render_js(),
    }


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


# --- weeks and trends ---------------------------------------------------------------------


def whole_weeks(since: datetime, end: datetime) -> list[date]:
    """The Mondays (UTC, as the `trend` query's weeks) of the weeks wholly inside
    [since, end): a week the window cuts would read as a drop in every count."""
    start = since.astimezone(UTC)
    monday = start.date() - timedelta(days=start.weekday())
    if datetime.combine(monday, time(), UTC) < start:
        monday += timedelta(days=7)
    weeks = []
    while datetime.combine(monday + timedelta(days=7), time(), UTC) <= end:
        weeks.append(monday)
        monday += timedelta(days=7)
    return weeks


def week_span(weeks: list[date], selection: Selection) -> dict:
    """The weeks drawn and the days of the window left out, as the page states them."""
    start, end = selection.since.astimezone(UTC), selection.end.astimezone(UTC)
    if not weeks:
        return {"count": 0, "first": None, "last": None, "cut": []}
    first, after = weeks[0], weeks[-1] + timedelta(days=7)
    cut = []  # [from, to) of the partial weeks at either end
    if datetime.combine(first, time(), UTC) > start:
        cut.append((start, datetime.combine(first, time(), UTC)))
    if datetime.combine(after, time(), UTC) < end:
        cut.append((datetime.combine(after, time(), UTC), end))
    return {"count": len(weeks), "first": first, "last": after - timedelta(days=1), "cut": cut}


@dataclass(frozen=True)
class Panel:
    """One small multiple of a trend: one pipeline, or several pooled ("all", "others")."""

    label: str
    values: list  # one per week, in the trend's unit; None: nothing to draw that week
    texts: list[str]  # each value as the hover writes it
    pipelines: tuple[str, ...] = ()  # the pipelines pooled; () for a pipeline's own panel
    lines: tuple[Panel, ...] = ()  # a figure that does not pool (a median): its members


@dataclass(frozen=True)
class Trend:
    key: str
    title: str
    axis: str  # the y axis title, with the unit
    note: str  # how the pipelines were chosen and what the lines are
    weeks: list[date]
    panels: list[Panel]  # "all" (if the figure pools), the TOP pipelines, "others"
    every: dict[str, Panel] = field(repr=False)  # every pipeline's own panel, for the filter
    order: list[str] = field(repr=False)  # every pipeline, ranked as the panels are
    reference: Panel | None = None  # drawn dashed in every pipeline's panel
    threshold: float | None = None  # a horizontal line in every pipeline's panel
    percent: bool = False
    totals: bool = False  # the pooled panels are sums, on a scale of their own


def weekly_trends(rows: list[dict], weeks: list[date]) -> list[Trend]:
    """Deployments, failure rate and median duration per whole week, as small multiples."""
    shown = set(weeks)
    by: dict[str, dict[date, dict]] = {}  # pipeline -> week -> its `trend` row
    for r in rows:
        if r["week"] in shown:
            by.setdefault(r["pipeline"], {})[r["week"]] = r
    if not by:
        return []
    return [_deployments(by, weeks), _failure_rates(by, weeks), _durations(by, weeks)]


def _split(order: list[str]) -> tuple[list[str], list[str]]:
    """The pipelines with a panel of their own, and the others: an "others" panel of one
    pipeline would hide a name for nothing."""
    return (order, []) if len(order) <= TOP + 1 else (order[:TOP], order[TOP:])


def _panels(order: list[str], every: dict[str, Panel], pool: Callable | None) -> list[Panel]:
    """ "all" (when the figure pools and there is more than one pipeline), the top
    pipelines' own panels, then "others": pooled, or one line each when it does not pool."""
    top, rest = _split(order)
    panels = [pool(f"all {len(order)} pipelines", order)] if pool and len(order) > 1 else []
    panels += [every[p] for p in top]
    if rest and pool:
        panels.append(pool(f"the other {len(rest)} pipelines", rest))
    elif rest:
        lines = tuple(every[p] for p in rest)
        panels.append(Panel(f"the other {len(rest)} pipelines", [], [], tuple(rest), lines))
    return panels


def _deployments(by: dict, weeks: list[date]) -> Trend:
    def count(pipelines: Sequence[str]) -> list[int]:
        # a week without a `trend` row for a pipeline had no deployment of it: 0
        return [sum(by[p].get(w, {}).get("deployments", 0) for p in pipelines) for w in weeks]

    def pooled(label: str, pipelines: Sequence[str]) -> Panel:
        n = count(pipelines)
        return Panel(label, n, [str(x) for x in n], tuple(pipelines))

    every = {p: Panel(p, (n := count([p])), [str(x) for x in n]) for p in by}
    order = sorted(by, key=lambda p: (-sum(every[p].values), p))
    return Trend(
        "deployments", "Deployments per week", "deployments per week",
        f"{_chosen(order, 'the most deployments in these weeks')}; the pooled panels (grey) "
        "are totals, each on its own scale. Dashed green: 7 a week (daily), DORA's elite "
        "deployment frequency.",
        weeks, _panels(order, every, pooled), every, order, threshold=7, totals=True,
    )  # fmt: skip


def _failure_rates(by: dict, weeks: list[date]) -> Trend:
    def pooled(label: str, pipelines: Sequence[str]) -> Panel:
        # a pooled week: the pipelines' failed executions over those with an outcome,
        # failure_rate's definition (_macros.sql) over their summed counts
        values, texts = [], []
        for w in weeks:
            failed = sum(by[p].get(w, {}).get("failed", 0) for p in pipelines)
            ended = failed + sum(by[p].get(w, {}).get("succeeded", 0) for p in pipelines)
            values.append(failed / ended if ended else None)
            texts.append(_rate_text(failed, ended))
        return Panel(label, values, texts, tuple(pipelines))

    def own(p: str) -> Panel:  # the `trend` query's own failure_rate
        rows = [by[p].get(w) for w in weeks]
        return Panel(
            p, [r["failure_rate"] if r else None for r in rows],
            [_rate_text(r["failed"], r["failed"] + r["succeeded"]) if r else "no execution"
             for r in rows],
        )  # fmt: skip

    every = {p: own(p) for p in by}

    def worst(p: str):  # the pipeline's failure rate over the weeks drawn, None last
        failed = sum(r["failed"] for r in by[p].values())
        ended = failed + sum(r["succeeded"] for r in by[p].values())
        return (ended == 0, -(failed / ended) if ended else 0, p)

    order = sorted(by, key=worst)
    panels = _panels(order, every, pooled)
    return Trend(
        "failure_rate", "Failure rate per week", "failed executions (%)",
        f"{_chosen(order, 'the highest failure rate over these weeks')} (failed / (succeeded + "
        "failed), as in the table). Dashed grey in a pipeline's panel: all pipelines pooled.",
        weeks, panels, every, order, reference=panels[0] if panels[0].pipelines else None,
        percent=True,
    )  # fmt: skip


def _durations(by: dict, weeks: list[date]) -> Trend:
    seconds = {p: [by[p].get(w, {}).get("p50_s") for w in weeks] for p in by}
    unit = unit_for(max((s for v in seconds.values() for s in v if s is not None), default=0))
    every = {
        p: Panel(p, [unit.of(s) for s in v], [duration(s) or "no success" for s in v])
        for p, v in seconds.items()
    }

    def slowest(p: str):  # the pipeline's slowest week drawn, None last
        peak = max((s for s in seconds[p] if s is not None), default=None)
        return (peak is None, -(peak or 0), p)

    order = sorted(by, key=slowest)
    return Trend(
        "duration", "Median duration of a successful execution per week", f"median ({unit.name})",
        f"{_chosen(order, 'the slowest week')}; medians do not pool, so the others are drawn "
        "one grey line each.",
        weeks, _panels(order, every, None), every, order,
    )  # fmt: skip


def _chosen(order: list[str], what: str) -> str:
    top, rest = _split(order)
    if not rest:
        return f"Every pipeline, {what.replace('the ', '', 1)} first"
    return f"The {len(top)} pipelines of {len(order)} with {what}"


def _rate_text(failed: int, ended: int) -> str:
    return f"{failed} of {ended} failed ({failed / ended:.1%})" if ended else "no outcome"


# --- the page ---------------------------------------------------------------------------------


def _cell(text: str, why: str) -> markupsafe.Markup:
    """A number cell; an en dash (with why in its tooltip) where there is no figure, so a
    blank is never read as 0 or 0 as a blank."""
    if text:
        return markupsafe.Markup('<td class="n">{}</td>').format(text)
    return markupsafe.Markup('<td class="n none" title="{}">–</td>').format(why)


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
    env.filters["day"] = lambda d: f"{d:%a %Y-%m-%d}"
    env.filters["money"] = charts.money
    env.filters["cell"] = lambda x, kind, why: _cell(env.filters[kind](x), why)
    return env.get_template("report.html")
