"""The report's Bokeh figures (queries/report.py decides what they show).

Made to be read at a glance with 5 or 500 pipelines:
- a trend is small multiples, one figure per panel, in a CSS grid; the pipelines' panels
  share their axes, so a taller line is a larger figure;
- a bar chart has one row per pipeline (or pipeline and stage), the names horizontal on
  the y axis and the figure as tall as its rows, so no label can overlap another; it holds
  every row but shows the first MAX_ROWS, and the page's filter chooses others;
- one duration unit per chart (unit_for), named in the axis title; the hover says
  the exact figure in words (duration).

Each chart also returns its filter spec: what the page's script (templates/report.html)
needs to show other rows or pipelines without a server. Models the script changes are
named "<chart>-<part>" (Bokeh's get_model_by_name).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import TYPE_CHECKING

from bokeh.models import (
    ColumnDataSource,
    DataRange1d,
    FactorRange,
    FixedTicker,
    HoverTool,
    LabelSet,
    Legend,
    LegendItem,
    NumeralTickFormatter,
    Range1d,
    Span,
)
from bokeh.plotting import figure

if TYPE_CHECKING:
    from queries.report import Trend

BLUE, ORANGE, INK, GREY, GREEN = "#4c78a8", "#f58518", "#1d2330", "#8c959f", "#1a7f37"
PARTS = ("#4c78a8", "#f58518", "#54a24b", "#e45756", "#b279a2")  # Vega's, distinct in print
MAX_ROWS = 20  # rows of a bar chart before the filter
MAX_STAGE_ROWS = 40  # stage-duration rows: whole pipelines (about 10), the slowest p90 first
ROW = 24  # pixels per bar: 12 px labels never touch
FRAME = 80  # title, x axis and its title
LEGEND = 30  # a legend above the plot
PANEL_HEIGHT = 180
PAD = 1.08  # room right of the longest bar
LABELLED_PAD = 1.25  # and of its label
DAY_MS = 86_400_000


def _ms(week: date) -> int:
    return int(datetime.combine(week, time(), UTC).timestamp() * 1000)


def _nan(values: list) -> list[float]:
    """None as NaN: Bokeh leaves a gap in the line there."""
    return [math.nan if v is None else v for v in values]


def _plain(fig, *, title_size: str = "14px"):
    fig.toolbar.logo = None
    fig.toolbar_location = None  # hover still works; pan and zoom only get in the way
    fig.title.text_font_size = title_size
    fig.xgrid.grid_line_color = None
    fig.outline_line_color = None
    return fig


# --- units ---------------------------------------------------------------------------------


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


@dataclass(frozen=True)
class Unit:
    """The one duration unit of a chart: its name (the axis title's) and its seconds."""

    name: str
    seconds: int

    def of(self, seconds: float | None) -> float | None:
        return None if seconds is None else seconds / self.seconds


UNITS = (Unit("s", 1), Unit("min", 60), Unit("h", 3600), Unit("d", 86400))


def unit_for(largest_s: float | None) -> Unit:
    """The largest unit the chart's largest duration is at least 2 of: 100 s stays in
    seconds, 150 s reads 2.5 min, 3 h 10 min reads 3.2 h."""
    return next((u for u in reversed(UNITS) if (largest_s or 0) >= 2 * u.seconds), UNITS[0])


# --- trends: small multiples -------------------------------------------------------------------


def trend(t: Trend) -> tuple[dict, dict]:
    """The trend's panels by name ("<key>-all", "<key>-slot-<i>", "<key>-others"), and the
    filter spec: every pipeline's series, ranked, for the slots."""
    x = [_ms(w) for w in t.weeks]
    weeks = [f"week of Mon {w:%d %b %Y}" for w in t.weeks]
    pad = DAY_MS * (3.5 if len(x) == 1 else 1)
    x_range = Range1d(x[0] - pad, x[-1] + pad)
    shared_y = DataRange1d(start=0, range_padding=0.12)
    ticks = x[:: math.ceil(len(x) / 5)]  # 5 week labels at most in a panel
    reference = None
    if t.reference:
        reference = ColumnDataSource({"x": x, "y": _nan(t.reference.values)})
    figures, slot = {}, 0
    shared = []  # the renderers the shared y range fits (a shared range fits one plot's)
    for panel in t.panels:
        pooled = bool(panel.pipelines)
        own_scale = pooled and t.totals
        y_range = DataRange1d(start=0, range_padding=0.12) if own_scale else shared_y
        fig = _plain(
            figure(title=panel.label, x_range=x_range, y_range=y_range, height=PANEL_HEIGHT,
                   sizing_mode="stretch_width", x_axis_type="datetime"),
            title_size="12px",
        )  # fmt: skip
        fig.xaxis.ticker = FixedTicker(ticks=ticks)
        fig.xaxis.formatter.days = "%d %b"
        fig.xaxis.formatter.context = None  # the year under the first tick: the caption says it
        fig.yaxis.axis_label = t.axis
        fig.yaxis.axis_label_text_font_size = "11px"
        fig.yaxis.axis_label_text_font_style = "normal"
        if t.percent:
            fig.yaxis.formatter = NumeralTickFormatter(format="0%")
        if panel.lines:  # one grey line per pipeline: a figure that does not pool
            source = ColumnDataSource({
                "xs": [x] * len(panel.lines), "ys": [_nan(p.values) for p in panel.lines],
                "pipeline": [p.label for p in panel.lines],
            })  # fmt: skip
            fig.background_fill_color = fig.border_fill_color = "#eef0f3"
            lines = fig.multi_line("xs", "ys", source=source, color=GREY, alpha=0.6)
            shared.append(lines)
            fig.add_tools(HoverTool(renderers=[lines], tooltips=[("pipeline", "@pipeline")]))
            figures[f"{t.key}-others"] = fig
            continue
        name = f"{t.key}-all" if panel.label.startswith("all ") and pooled else None
        if pooled and name is None:
            name = f"{t.key}-others"
        if name is None:
            name, slot = f"{t.key}-slot-{slot}", slot + 1
            if t.threshold is not None:
                fig.add_layout(Span(location=t.threshold, dimension="width", line_dash="dashed",
                                    line_color=GREEN, line_alpha=0.7))  # fmt: skip
            if reference is not None:
                shared.append(fig.line("x", "y", source=reference, color=GREY,
                                       line_dash="dashed", line_width=1.5))  # fmt: skip
        color = INK if pooled else BLUE
        if pooled:
            fig.background_fill_color = fig.border_fill_color = "#eef0f3"
        fig.name = f"{name}-figure"
        source = ColumnDataSource(
            {"x": x, "y": _nan(panel.values), "text": panel.texts, "week": weeks},
            name=f"{name}-source",
        )
        if pooled:
            fig.varea("x", y1=0, y2="y", source=source, color=color, alpha=0.08)
        line = fig.line("x", "y", source=source, color=color, line_width=2)
        dots = fig.scatter("x", "y", source=source, color=color, size=6)
        if y_range is shared_y:
            shared += [line, dots]
        fig.add_tools(HoverTool(renderers=[dots], tooltips=[("", "@week"), ("", "@text")]))
        figures[name] = fig
    shared_y.renderers = shared
    spec = {
        "slots": slot,
        "order": t.order,
        "x": x,
        "week": weeks,
        "series": {p: {"y": panel.values, "text": panel.texts} for p, panel in t.every.items()},
    }
    return figures, spec


# --- bar charts: one row per pipeline --------------------------------------------------------


def _bar_figure(
    key: str,
    title: str,
    axis: str,
    factors: list,
    shown: list,
    end: float,
    start: float = 0,
    frame: int = FRAME,
):
    """A horizontal bar chart whose y axis holds `shown` (top first) of its `factors`."""
    nested = bool(factors) and isinstance(factors[0], tuple)
    y_range = FactorRange(*reversed(shown), name=f"{key}-y")
    if nested:
        y_range.group_padding = 1.0
    fig = _plain(figure(
        title=title, y_range=y_range, x_range=Range1d(start, end or 1, name=f"{key}-x"),
        height=_height(shown, frame), sizing_mode="stretch_width", name=f"{key}-figure",
    ))  # fmt: skip
    fig.ygrid.grid_line_color = None
    fig.xgrid.grid_line_color = "#e6e8eb"
    fig.yaxis.major_label_text_font_size = "12px"
    fig.xaxis.axis_label = axis
    fig.xaxis.axis_label_text_font_style = "normal"
    if nested:  # the pipeline name left of its stages, read left to right
        fig.yaxis.group_label_orientation = "horizontal"
        fig.yaxis.group_text_font_size = "12px"
        fig.yaxis.group_text_font_style = "bold"
        fig.yaxis.group_text_color = INK
    return fig


def _of(shown: int, total: int, what: str) -> str:
    """What a title says of the rows it leaves to the filter: nothing when it shows all."""
    return "" if shown == total else f" ({shown} of {total} {what}; the filter shows others)"


def _height(shown: list, frame: int = FRAME) -> int:
    groups = len({f[0] for f in shown if isinstance(f, tuple)})
    return frame + ROW * len(shown) + ROW * max(0, groups - 1)


def _spec(
    name: str,
    factors: list,
    pipelines: list[str],
    extent: list,
    cap: int,
    pad: float | None,
    frame: int = FRAME,
) -> dict:
    """What the filter needs: the chart's name (its title when filtered), every row's
    factor, pipeline and largest x, the rows shown at most, and the figure's sizes
    (x_range.end = the largest x shown * pad; pad None: the x axis stays)."""
    return {"name": name, "factors": factors, "pipelines": pipelines, "extent": extent,
            "cap": cap, "pad": pad, "row": ROW, "frame": frame}  # fmt: skip


def stage_durations(rows: list[dict]):
    """Per pipeline and stage: a bar to p50, a line p50 to p95, a dot at p90."""
    if not rows:
        return None
    end_s = _axis_end([r["p95_s"] or 0 for r in rows])
    slowest: dict[str, float] = {}  # a pipeline's slowest p90 among the stages not cut
    for r in rows:
        within = (r["p95_s"] or 0) <= end_s
        slowest[r["pipeline"]] = max(slowest.get(r["pipeline"], 0), within and r["p90_s"] or 0)
    ranked = sorted(slowest, key=lambda p: (-slowest[p], p))
    rank = {p: i for i, p in enumerate(ranked)}
    rows = sorted(rows, key=lambda r: rank[r["pipeline"]])  # stable: the query's stage order
    shown, count = [], 0
    for pipeline in ranked:  # whole pipelines, up to MAX_STAGE_ROWS rows
        mine = [(r["pipeline"], r["stage"]) for r in rows if r["pipeline"] == pipeline]
        if count + len(mine) > MAX_STAGE_ROWS and shown:
            break
        shown += mine
        count += len(mine)
    factors = [(r["pipeline"], r["stage"]) for r in rows]
    unit = unit_for(end_s)
    source = ColumnDataSource({
        "y": factors,
        **{k: [unit.of(r[f"{k}_s"]) for r in rows] for k in ("p50", "p90", "p95")},
        **{f"{k}_text": [duration(r[f"{k}_s"]) for r in rows]
           for k in ("p50", "p90", "p95", "max")},
        "runs": [r["runs"] for r in rows],
    })  # fmt: skip
    fig = _bar_figure(
        "stages", "Stage durations, the pipeline with the slowest stage (p90) first"
        f"{_of(len({f[0] for f in shown}), len(ranked), 'pipelines')}",
        f"{unit.name} · bar to p50, line p50 to p95, dot p90 · a stage far past the others "
        "(a wait for a person) is cut at the end, its figures written there",
        factors, shown, unit.of(end_s) * PAD,
    )  # fmt: skip
    fig.hbar(y="y", left=0, right="p50", height=0.6, source=source, color=BLUE)
    fig.segment(x0="p50", x1="p95", y0="y", y1="y", source=source, color=BLUE, line_width=2)
    dots = fig.scatter(x="p90", y="y", source=source, size=7, color=ORANGE)
    fig.add_tools(HoverTool(renderers=[dots], tooltips=[
        ("stage", "@y"), ("runs", "@runs"), ("p50", "@p50_text"), ("p90", "@p90_text"),
        ("p95", "@p95_text"), ("max", "@max_text"),
    ]))  # fmt: skip
    cut = [r for r in rows if (r["p95_s"] or 0) > end_s]
    fig.add_layout(LabelSet(
        x="x", y="y", text="text", source=ColumnDataSource({
            "x": [unit.of(end_s) * PAD] * len(cut), "y": [(r["pipeline"], r["stage"]) for r in cut],
            "text": [f"p50 {duration(r['p50_s'])} · p90 {duration(r['p90_s'])} · "
                     f"p95 {duration(r['p95_s'])} ▸" for r in cut],
        }), x_offset=-4, text_align="right", text_baseline="middle", text_font_size="11px",
        text_color=INK, background_fill_color="white", background_fill_alpha=0.85,
    ))  # fmt: skip
    # the axis stays as it is when the filter changes the rows (pad None)
    return fig, _spec("Stage durations", factors, [f[0] for f in factors], [], MAX_STAGE_ROWS, None)


CLIP = 4  # see _axis_end


def _axis_end(p95s: list[float]) -> float:
    """Where a stage-duration axis ends: at the longest p95 within CLIP times the upper
    quartile of all of them. A stage far beyond (an approval waiting hours for a person
    beside builds of minutes) would squash every other bar: it is cut at the edge and
    its figures written there."""
    if len(p95s) < 2:
        return max(p95s, default=0) or 1
    q3 = statistics.quantiles(p95s, n=4, method="inclusive")[2]  # robust to one outlier
    return max((p for p in p95s if p <= CLIP * q3), default=max(p95s)) or 1


BREAKDOWN = (
    ("source_to_start_s", "commit to start"),
    ("queued_s", "queued"),
    ("stages_s", "in stages (without approvals)"),
    ("approval_s", "approvals"),
    ("between_stages_s", "between stages"),
)


def breakdown(rows: list[dict]):
    """Per pipeline, the medians of the parts of a successful execution, stacked."""
    if not rows:
        return None
    for r in rows:  # approvals run inside stages: drawn apart, not twice
        r["stages_s"] = max(0.0, (r["in_stages_s"] or 0) - (r["approval_s"] or 0))
        r["parts_s"] = sum(r[k] or 0 for k, _ in BREAKDOWN)
    rows = sorted(rows, key=lambda r: (-r["parts_s"], r["pipeline"]))
    pipelines = [r["pipeline"] for r in rows]
    shown = pipelines[:MAX_ROWS]
    unit = unit_for(max(r["parts_s"] for r in rows[:MAX_ROWS]))
    data: dict[str, list] = {"pipeline": pipelines}
    for key, _ in BREAKDOWN:  # a part without a median (no revision time) is drawn as none
        data[key] = [unit.of(r[key] or 0) for r in rows]
        data[f"{key}_text"] = [duration(r[key]) or "no data" for r in rows]
    fig = _bar_figure(
        "breakdown", "Where a successful execution's time goes, the slowest first"
        f"{_of(len(shown), len(rows), 'pipelines')}",
        f"{unit.name} · the median of each part: the parts need not add up to a total",
        pipelines, shown, max(unit.of(r["parts_s"]) for r in rows[:MAX_ROWS]) * PAD,
        frame=FRAME + LEGEND,
    )  # fmt: skip
    keys = [k for k, _ in BREAKDOWN]
    bars = fig.hbar_stack(keys, y="pipeline", height=0.7, source=ColumnDataSource(data),
                          color=list(PARTS))  # fmt: skip
    fig.add_layout(Legend(
        items=[LegendItem(label=label, renderers=[bar])
               for bar, (_, label) in zip(bars, BREAKDOWN, strict=True)],
        orientation="horizontal", label_text_font_size="12px", border_line_color=None,
    ), "above")  # fmt: skip
    fig.add_tools(HoverTool(renderers=bars, tooltips=[("pipeline", "@pipeline")] + [
        (label, f"@{key}_text") for key, label in BREAKDOWN
    ]))  # fmt: skip
    extent = [unit.of(r["parts_s"]) for r in rows]
    return fig, _spec("Where a successful execution's time goes", pipelines, pipelines, extent,
                      MAX_ROWS, PAD, FRAME + LEGEND)  # fmt: skip


def _labelled_bars(key: str, title: str, axis: str, rows: list[dict], left: float = 0):
    """Bars from `left` to row["value"], labelled with row["text"] at their end."""
    labels = [r["label"] for r in rows]
    shown = labels[:MAX_ROWS]
    source = ColumnDataSource({k: [r[k] for r in rows] for k in rows[0]})
    top = max(r["value"] for r in rows[:MAX_ROWS])
    start = left - (top - left) * 0.04 if left else 0  # the bars' start a little in
    fig = _bar_figure(key, title, axis, labels, shown, top * LABELLED_PAD, start)
    bars = fig.hbar(y="label", left=left, right="value", height=0.7, source=source, color=BLUE)
    fig.add_layout(LabelSet(
        x="value", y="label", text="text", source=source, x_offset=4,
        text_font_size="11px", text_baseline="middle", text_color=INK,
    ))  # fmt: skip
    return fig, bars


def approvals(rows: list[dict]):
    rows = [r for r in rows if r["p50_approval_s"] is not None]
    if not rows:
        return None
    rows = sorted(rows, key=lambda r: (-r["p50_approval_s"], r["pipeline"], r["action"]))
    unit = unit_for(max(r["p50_approval_s"] for r in rows[:MAX_ROWS]))
    bars = [{
        "label": f"{r['pipeline']} / {r['action']}", "value": unit.of(r["p50_approval_s"]),
        "text": duration(r["p50_approval_s"]),
        "p90": duration(r["p90_approval_s"]) or "–", "n": r["approvals"],
    } for r in rows]  # fmt: skip
    fig, drawn = _labelled_bars(
        "approvals", "Approval waits, p50 of approved or rejected, the longest first"
        f"{_of(min(MAX_ROWS, len(rows)), len(rows), 'approval actions')}",
        f"p50 wait ({unit.name})", bars,
    )  # fmt: skip
    fig.add_tools(HoverTool(renderers=[drawn], tooltips=[
        ("approval", "@label"), ("p50", "@text"), ("p90", "@p90"), ("approvals", "@n"),
    ]))  # fmt: skip
    pipelines = [r["pipeline"] for r in rows]
    return fig, _spec("Approval waits", [b["label"] for b in bars], pipelines,
                      [b["value"] for b in bars], MAX_ROWS, LABELLED_PAD)  # fmt: skip


BASELINE, LISTED_FROM = 1.0, 1.25  # the ratio of no change; the regressions query's cut-off


def regressions(rows: list[dict]):
    """Recent p50 / baseline p50 per stage, with the baseline (1.0) and the query's
    cut-off (1.25) drawn as reference lines."""
    if not rows:
        return None
    bars = [{
        "label": f"{r['pipeline']} / {r['stage']}", "value": r["ratio"],
        "text": f"{r['ratio']:.2f}×", "recent": duration(r["recent_p50_s"]),
        "baseline": duration(r["baseline_p50_s"]), "versions": r["new_versions"] or "none",
    } for r in rows]  # fmt: skip
    fig, drawn = _labelled_bars(
        "regressions", "Stages that got slower: p50 of the last 7 days ÷ p50 of the 28 before"
        f"{_of(min(MAX_ROWS, len(rows)), len(rows), 'stages')}",
        "× the p50 of the 28 days before · each bar starts at 1.0 (solid), as before · "
        "dashed: 1.25, where the list starts", bars, left=BASELINE,
    )  # fmt: skip
    for at, dash in ((BASELINE, "solid"), (LISTED_FROM, "dashed")):
        fig.add_layout(Span(location=at, dimension="height", line_color=INK, line_dash=dash,
                            line_width=1.5, name=f"regressions-ref-{at}"))  # fmt: skip
    fig.add_tools(HoverTool(renderers=[drawn], tooltips=[
        ("stage", "@label"), ("ratio", "@text"), ("recent p50", "@recent"),
        ("baseline p50", "@baseline"), ("new versions", "@versions"),
    ]))  # fmt: skip
    pipelines = [r["pipeline"] for r in rows]
    return fig, _spec("Stages that got slower", [b["label"] for b in bars], pipelines,
                      [b["value"] for b in bars], MAX_ROWS, LABELLED_PAD)  # fmt: skip


def errors(rows: list[dict]):
    """The top 10 error codes of the selection (not per pipeline: the filter leaves it)."""
    rows = rows[:10]
    if not rows:
        return None
    bars = [{
        "label": f"{r['error_code'] or '(none)'} · {r['provider'] or '?'}",
        "value": r["failures"], "text": str(r["failures"]), "pipelines": r["pipelines"],
    } for r in rows]  # fmt: skip
    fig, drawn = _labelled_bars("errors", "Top error codes of failed actions (all pipelines)",
                                "failed actions", bars)  # fmt: skip
    fig.add_tools(HoverTool(renderers=[drawn], tooltips=[
        ("error", "@label"), ("failures", "@text"), ("pipelines", "@pipelines"),
    ]))  # fmt: skip
    return fig, None


def cost(rows: list[dict], currency: str = "USD", given: bool = False):
    """What each pipeline cost in the window (the `cost` query), the most first; `given`:
    at prices given (--prices, --price-per-minute), not AWS's."""
    rows = [r for r in rows if r["cost"]]
    if not rows:
        return None
    bars = [{
        "label": f"{r['pipeline']} ({r['pipeline_type']})", "value": r["cost"],
        "text": money(r["cost"], currency), "minutes": f"{r['billable_minutes']:,}",
        "wasted": money(r["failed_cost"] + r["superseded_cost"] + r["stopped_cost"], currency),
        "retried": money(r["retried_cost"], currency),
    } for r in rows]  # fmt: skip
    fig, drawn = _labelled_bars(
        "cost", "What each pipeline cost, the most first"
        f"{_of(min(MAX_ROWS, len(rows)), len(rows), 'pipelines')}",
        f"{currency} at the prices given" if given else
        f"{currency} at AWS's list prices (`cprec query cost --prices` for yours)", bars,
    )  # fmt: skip
    fig.add_tools(HoverTool(renderers=[drawn], tooltips=[
        ("pipeline", "@label"), ("cost", "@text"), ("billable minutes", "@minutes"),
        ("on failed, superseded, stopped runs", "@wasted"), ("on retried attempts", "@retried"),
    ]))  # fmt: skip
    pipelines = [r["pipeline"] for r in rows]
    return fig, _spec("What each pipeline cost", [b["label"] for b in bars], pipelines,
                      [b["value"] for b in bars], MAX_ROWS, LABELLED_PAD)  # fmt: skip


def money(value: float | None, currency: str = "USD") -> str:
    """$1,234.57; under a cent as $0.004; in another currency 1,234.57 EUR."""
    if value is None:
        return "unknown"
    amount = f"{value:,.2f}" if value == 0 or abs(value) >= 0.01 else f"{value:.3f}"
    return f"${amount}" if currency == "USD" else f"{amount} {currency}"
