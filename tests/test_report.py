"""`cprec report` in a real browser: headless Chromium (Debian's package; `.ci/run`
installs it) driven by Playwright, with every network request refused. The page must
load with no console error, draw every chart, and show the `dora` query's figures.

Without Chromium the browser tests are skipped, unless CPREC_REQUIRE_BROWSER=1 (set by
`.ci/run`), which makes a missing browser a failure."""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from bokeh.models import LabelSet, Span

import queries
from queries import charts, cost, report
from queries.report import Selection, build_report, console_url, duration, whole_weeks
from recorder.cli.report import write_html

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = Path(os.environ.get("CPREC_TEST_ARTIFACTS", ROOT / "test-artifacts"))
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
NOW = "2026-11-01T00:00:00Z"
# the flags a closed network needs (no background connections, no Google lookups)
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


def browser_or_skip():
    if CHROMIUM is None:
        if os.environ.get("CPREC_REQUIRE_BROWSER") == "1":
            pytest.fail("CPREC_REQUIRE_BROWSER=1 but no chromium on PATH")
        pytest.skip("no chromium on PATH (.ci/run installs Debian's chromium)")
    from playwright.sync_api import sync_playwright

    return sync_playwright()


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    """A demo account with 36 days (regressions compare 7 days with the 28 before)."""
    base = tmp_path_factory.mktemp("report")
    argv = ["demo", "--pipelines", "3", "--days", "36", "--now", NOW, "--data", str(base / "data")]
    done = subprocess.run(
        [sys.executable, "-m", "recorder.cli", *argv],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    # the demo writes report.html beside the data and says where
    assert f"Report: {base / 'report.html'}" in done.stderr
    return base


def open_page(pw, path: Path):
    """The report in a fresh headless Chromium; returns (page, console errors, requests
    refused). Every request other than the file itself is refused and recorded."""
    browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    refused: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    url = path.resolve().as_uri()

    def route(r):
        if r.request.url == url:
            r.continue_()
        else:
            refused.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    page.goto(url)
    page.wait_for_load_state("load")
    return browser, page, errors, refused


def drawn(png: bytes) -> int:
    """Distinct colours in a screenshot: a blank area has one or two."""
    from PIL import Image

    return len(Image.open(io.BytesIO(png)).convert("RGB").getcolors(maxcolors=1 << 20) or [])


def test_the_demo_report_renders_offline_with_the_dora_figures(demo):
    path = demo / "report.html"
    assert path.stat().st_size < 5_000_000
    con = queries.connect(demo / "data")
    now = datetime.fromisoformat(NOW.replace("Z", "+00:00")).replace(hour=2)
    dora = queries.run_query(
        con, "dora", since=datetime(2026, 9, 26, tzinfo=UTC), now=now
    ).to_pylist()
    overall = next(r for r in dora if r["pipeline"] == "(all)")
    with browser_or_skip() as pw:
        browser, page, errors, refused = open_page(pw, path)
        try:
            charts = page.locator(".chart")
            names = [charts.nth(i).get_attribute("data-chart") for i in range(charts.count())]
            # the demo's account has every chart: its second pipeline got a slower build.
            # 3 pipelines: every trend has a panel for each, deployments and failure rate
            # an "all" panel before them (they pool; medians do not), and no "others"
            slots = [f"slot-{i}" for i in range(3)]
            assert names == [
                *(f"deployments-{p}" for p in ["all", *slots]),
                *(f"failure_rate-{p}" for p in ["all", *slots]),
                *(f"duration-{p}" for p in slots),
                "breakdown", "stages", "approvals", "regressions", "errors", "cost",
            ]  # fmt: skip
            for i, name in enumerate(names):
                canvas = charts.nth(i).locator(".bk-Figure, .bk-Plot").first
                canvas.wait_for(state="visible", timeout=15_000)
                box = charts.nth(i).bounding_box()
                assert box and box["width"] > 250 and box["height"] > 100, name
                page.wait_for_timeout(200)
                assert drawn(charts.nth(i).screenshot()) > 20, name
            # the cost table: the `cost` query's rows over the window, the most first
            costs = queries.run_query(
                con, "cost", since=datetime(2026, 9, 26, tzinfo=UTC), now=now
            ).to_pylist()
            cells = page.locator("#cost tr td:nth-child(5)")
            assert [cells.nth(i).inner_text() for i in range(cells.count())] == [
                f"${r['cost']:,.2f}" for r in costs if r["cost"] or r["billable_minutes"]
            ]
            cards = page.locator("#headline .card")
            shown = {
                cards.nth(i).get_attribute("data-key"): cards.nth(i).get_attribute("data-value")
                for i in range(cards.count())
            }
            assert shown == {
                key: repr(overall[key])
                for key in ("per_week", "p50_lead_time_s", "change_failure_rate", "p50_restore_s")
            }
            bands = [cards.nth(i).get_attribute("data-band") for i in range(cards.count())]
            assert bands == [
                overall["frequency_band"], overall["lead_time_band"],
                overall["change_failure_rate_band"], overall["restore_band"],
            ]  # fmt: skip
            # window 2026-09-26 00:00 (a Saturday) to 2026-11-01 02:00 (a Sunday): the
            # whole weeks are Mon 09-28 to Sun 10-25; 09-26..27 and 10-26..11-01 are cut
            weeks = page.locator("#weeks")
            assert [weeks.get_attribute(a) for a in ("data-first", "data-last", "data-count")] == [
                "2026-09-28", "2026-10-25", "4",
            ]  # fmt: skip
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "report.png"), full_page=True)
            assert_the_filter_narrows_the_page(page)
            assert errors == [] and refused == []
        finally:
            browser.close()


def test_an_empty_selection_is_a_clear_page(demo, tmp_path):
    path = tmp_path / "empty.html"
    con = queries.connect(demo / "data")
    now = datetime(2026, 11, 1, tzinfo=UTC)
    selection = Selection(now, None, now, pipelines=["no-such-*"])
    write_html(path, build_report(con, selection, data_root=demo / "data"))
    html = path.read_text()
    assert 'id="empty"' in html and "<script" not in html
    with browser_or_skip() as pw:
        browser, page, errors, refused = open_page(pw, path)
        try:
            assert "No execution was recorded for this selection" in page.inner_text("#empty")
            assert errors == [] and refused == []
        finally:
            browser.close()


def test_pipelines_without_a_deploy_stage_have_blank_delivery_keys(demo, tmp_path):
    con = queries.connect(demo / "data")
    now = datetime(2026, 11, 1, 2, tzinfo=UTC)
    selection = Selection(datetime(2026, 9, 26, tzinfo=UTC), None, now, deploy_stages=["nope"])
    html = build_report(con, selection, data_root=demo / "data")
    # no deployment anywhere: the headline has no figures, the pipelines are still listed
    assert html.count('data-value=""') == 4
    summary = queries.run_query(con, "pipeline-summary", since=selection.since, now=now)
    for pipeline in summary.column("pipeline").to_pylist():
        assert f'<tr data-pipeline="{pipeline}"><td class="pipe">{pipeline}</td>' in html
    # no figure is an en dash with its reason, never a blank cell (read as 0) nor a 0
    assert html.count('<td class="n none" title="no deployment attempt in the window">–</td>') == 3


def test_each_month_of_the_cost_is_in_money(demo):
    con = queries.connect(demo / "data")
    now = datetime(2026, 11, 1, 2, tzinfo=UTC)
    html = build_report(con, Selection(datetime(2026, 9, 26, tzinfo=UTC), None, now),
                        data_root=demo / "data")  # fmt: skip
    months = html[html.index('<table id="cost-months">') :].split("</table>")[0]
    cells = re.findall(r'<td class="n">([^<]*)</td></tr>', months)
    # the last column (failed + superseded + stopped: 0.418 and 3.254) as money, as the
    # cost beside it (it was 0.41800000000000004)
    assert cells == ["$0.42", "$3.25"]
    assert "At AWS's list prices, by the rules" in html


def test_the_cost_is_in_the_currency_of_the_prices_given(demo, tmp_path):
    """A prices file's `currency` is the report's (it said $ and "At AWS's list prices")."""
    con = queries.connect(demo / "data")
    now = datetime(2026, 11, 1, 2, tzinfo=UTC)
    file = tmp_path / "prices.toml"
    file.write_text('currency = "EUR"\n')  # AWS's figures, in another currency
    html = build_report(con, Selection(datetime(2026, 9, 26, tzinfo=UTC), None, now),
                        data_root=demo / "data", prices=cost.prices(con, file))  # fmt: skip
    section = html[html.index("<h2>What it costs</h2>") :].split("<h2>")[1]
    months = section[section.index('<table id="cost-months">') :].split("</table>")[0]
    assert re.findall(r'<td class="n">([^<]*)</td></tr>', months) == ["0.42 EUR", "3.25 EUR"]
    assert "$" not in section and "In EUR at the prices given, by the rules" in section
    assert "EUR at the prices given" in html[html.index('data-chart="cost"') :]


def test_console_links_and_durations():
    assert console_url("eu-west-1", "my.pipe@1", "e-1") == (
        "https://eu-west-1.console.aws.amazon.com/codesuite/codepipeline/pipelines/"
        "my.pipe%401/executions/e-1/timeline?region=eu-west-1"
    )
    assert console_url(None, "p", "e") is None
    # the two largest units: 95 s; 1 d 1 h 1 min 1 s -> 1 d 1 h
    assert [duration(x) for x in (0.4, 95, 3600, 90061, None)] == [
        "0 s", "1 min 35 s", "1 h", "1 d 1 h", ""
    ]  # fmt: skip


def bokeh(page, expression: str, name: str):
    """`expression` of the Bokeh model named `name` (m), evaluated in the page."""
    return page.evaluate(
        """([expression, name]) => {
            for (const doc of Bokeh.documents) {
                const m = doc.get_model_by_name(name);
                if (m) return Function("m", "return " + expression)(m);
            }
            return undefined;
        }""",
        [expression, name],
    )


def assert_the_filter_narrows_the_page(page):
    """Typing a pipeline's name keeps its rows and panels only; clearing it restores all."""
    table = page.locator("#pipelines tr[data-pipeline]")
    names = [table.nth(i).get_attribute("data-pipeline") for i in range(table.count())]
    assert len(names) == 3
    target = names[-1]  # the lowest failure rate: the last row, and no trend's first panel
    trend_first = bokeh(page, "m.title.text", "failure_rate-slot-0-figure")
    assert trend_first != target
    page.fill("#filter", target.upper())  # any part of a name, any case
    shown = page.locator("#pipelines tr[data-pipeline]:visible")
    assert [shown.nth(i).get_attribute("data-pipeline") for i in range(shown.count())] == [target]
    assert page.inner_text("#filter-count") == "1 of 3 pipelines match"
    for trend in ("deployments", "failure_rate", "duration"):
        assert bokeh(page, "m.title.text", f"{trend}-slot-0-figure") == target
        for slot in (1, 2):
            assert page.locator(f'[data-chart="{trend}-slot-{slot}"]').is_hidden()
    assert bokeh(page, "m.factors", "breakdown-y") == [target]
    assert {f[0] for f in bokeh(page, "m.factors", "stages-y")} == {target}
    # a glob matches whole names, as --pipeline does: nothing ends in "-nomatch"
    page.fill("#filter", "*-nomatch")
    assert page.inner_text("#filter-count") == "0 of 3 pipelines match"
    assert page.inner_text('.more[data-for="pipelines"]') == "No row matches the filter."
    page.fill("#filter", "")
    assert shown.count() == 3
    assert bokeh(page, "m.title.text", "failure_rate-slot-0-figure") == trend_first


def test_only_whole_weeks_are_drawn():
    def at(day, *hms):
        return datetime(2026, 10, day, *hms, tzinfo=UTC)

    # Sat 10-03 to Sun 10-25 02:00: the weeks of Mon 10-05 and 10-12 are whole; that of
    # 10-19 ends Mon 10-26 00:00, after the window
    assert whole_weeks(at(3), at(25, 2)) == [date(2026, 10, 5), date(2026, 10, 12)]
    # Monday 00:00 to Monday 00:00: whole weeks exactly; a second later, the first is cut
    assert whole_weeks(at(5), at(19)) == [date(2026, 10, 5), date(2026, 10, 12)]
    assert whole_weeks(at(5, 0, 0, 1), at(19)) == [date(2026, 10, 12)]
    assert whole_weeks(at(6), at(12)) == []  # six days: no week


def test_a_trend_draws_the_top_pipelines_and_pools_the_others(monkeypatch):
    monkeypatch.setattr(report, "TOP", 2)
    w0, w1, w2 = date(2026, 9, 28), date(2026, 10, 5), date(2026, 10, 12)

    def row(pipeline, week, deployments, succeeded, failed, p50_s):
        ended = succeeded + failed  # the trend query's failure_rate
        rate = failed / ended if ended else None
        return {"pipeline": pipeline, "week": week, "executions": ended + 1,
                "succeeded": succeeded, "failed": failed, "failure_rate": rate,
                "p50_s": p50_s, "deployments": deployments}  # fmt: skip

    rows = [
        row("a", w1, 5, 8, 2, 600), row("a", w2, 4, 9, 1, 660),
        row("b", w1, 3, 3, 1, 1200),  # b has no row in w2
        row("c", w1, 1, 4, 0, 300), row("c", w2, 2, 2, 2, 360),
        row("d", w2, 0, 0, 3, None),  # 3 failures, no success: no median
        row("d", w0, 9, 1, 0, 100),  # a partial week: left out of every figure
    ]  # fmt: skip
    deployments, failures, durations = report.weekly_trends(rows, [w1, w2])

    # deployments over w1 and w2: a 5 + 4 = 9, b 3 + 0 = 3, c 1 + 2 = 3, d 0 (its 9 are
    # in w0). Top 2: a, then b before c by name; the others c and d summed
    assert deployments.order == ["a", "b", "c", "d"]
    assert [(p.label, p.values) for p in deployments.panels] == [
        ("all 4 pipelines", [5 + 3 + 1 + 0, 4 + 0 + 2 + 0]),
        ("a", [5, 4]),
        ("b", [3, 0]),  # no row in w2 is no deployment: drawn as 0
        ("the other 2 pipelines", [1 + 0, 2 + 0]),
    ]
    assert deployments.panels[-1].pipelines == ("c", "d")
    assert deployments.threshold == 7  # DORA's elite: daily

    # failure rate over both weeks: d 3 / 3, b 1 / 4, c 2 / 8 (tied with b, after it by
    # name), a 3 / 20. Top 2: d and b; pooled: sum of failed / sum of (succeeded + failed)
    assert failures.order == ["d", "b", "c", "a"]
    assert [(p.label, p.values) for p in failures.panels] == [
        ("all 4 pipelines", [(2 + 1 + 0) / (3 + 8 + 3 + 4), (1 + 2 + 3) / (6 + 9 + 2 + 0)]),
        ("d", [None, 1.0]),  # no execution in w1: a gap, not 0 %
        ("b", [0.25, None]),
        ("the other 2 pipelines", [(0 + 2) / (2 + 4 + 8), (2 + 1) / (3 + 2 + 9)]),
    ]
    assert failures.panels[-1].texts == ["2 of 14 failed (14.3%)", "3 of 14 failed (21.4%)"]
    assert failures.reference is failures.panels[0]  # the dashed line in every panel

    # medians do not pool: the slowest weeks b 1200 s, a 660 s on panels of their own
    # (in minutes: 1200 s is at least 2 min), c and d one grey line each
    assert durations.order == ["b", "a", "c", "d"]
    assert durations.axis == "median (min)"
    assert [(p.label, p.values) for p in durations.panels[:2]] == [
        ("b", [1200 / 60, None]), ("a", [600 / 60, 660 / 60]),
    ]  # fmt: skip
    others = durations.panels[2]
    assert (others.label, [(p.label, p.values) for p in others.lines]) == (
        "the other 2 pipelines", [("c", [300 / 60, 360 / 60]), ("d", [None, None])]
    )  # fmt: skip


def test_one_unit_per_chart():
    # the largest unit the chart's largest duration is at least 2 of
    assert [charts.unit_for(s).name for s in (None, 100, 119, 120, 7199, 7200, 3 * 86400)] == [
        "s", "s", "s", "min", "min", "h", "d",
    ]  # fmt: skip


def test_the_regressions_chart_draws_the_baseline_and_the_cut_off():
    rows = [{"pipeline": "p", "stage": s, "recent_p50_s": r, "baseline_p50_s": b,
             "ratio": r / b, "new_versions": v}
            for s, r, b, v in (("Build", 300, 200, "3"), ("Test", 125, 100, None))]  # fmt: skip
    fig, spec = charts.regressions(rows)

    assert sorted((s.location, s.line_dash) for s in fig.select(Span)) == [
        (1.0, []), (1.25, [6])  # solid: as before; dashed: the query lists from 1.25
    ]  # fmt: skip
    assert spec["factors"] == ["p / Build", "p / Test"]
    assert spec["extent"] == [1.5, 1.25]
    assert list(fig.y_range.factors) == ["p / Test", "p / Build"]  # top first


def test_a_far_stage_is_cut_at_the_axis_end_with_its_figures(monkeypatch):
    # the inclusive upper quartile of 10, 20, 30, 40, 10000 s is the 4th, 40 s; 4 x 40 =
    # 160 s: 10000 s (an approval) is cut and the axis ends at 40 s
    assert charts._axis_end([10, 20, 30, 40, 10_000]) == 40
    monkeypatch.setattr(charts, "MAX_STAGE_ROWS", 5)
    stages = [("x", "Build", 50), ("x", "Approval", 10_000), ("y", "Build", 20),
              ("y", "Test", 30), ("z", "Build", 40), ("z", "Test", 40)]  # fmt: skip
    rows = [{"pipeline": p, "stage": s, "runs": 9, "p50_s": p95 / 2, "p90_s": p95 * 0.9,
             "p95_s": p95, "max_s": p95} for p, s, p95 in stages]  # fmt: skip
    fig, spec = charts.stage_durations(rows)
    # p95s 20 30 40 40 50 10000: upper quartile 40 + 0.75 x (50 - 40) = 47.5, 4 x 47.5 =
    # 190 s; the axis ends at 50 s (seconds: under 2 min) and x's Approval is cut
    assert fig.x_range.end == 50 * charts.PAD
    # pipelines by their slowest p90 of the stages not cut: x 45, z 36, y 27; whole
    # pipelines up to 5 rows: x and z (4 rows), not y (6)
    assert list(fig.y_range.factors) == [("z", "Test"), ("z", "Build"), ("x", "Approval"),
                                         ("x", "Build")]  # fmt: skip
    assert [f[0] for f in spec["factors"]] == ["x", "x", "z", "z", "y", "y"]
    (labels,) = fig.select(LabelSet)
    cut = labels.source.data
    assert cut["y"] == [("x", "Approval")]
    assert cut["text"] == ["p50 1 h 23 min · p90 2 h 30 min · p95 2 h 46 min ▸"]


def test_a_window_without_a_whole_week_draws_no_trend_and_says_why(demo):
    con = queries.connect(demo / "data")
    now = datetime(2026, 11, 1, 2, tzinfo=UTC)
    # Wed 10-28 to Sun 11-01 02:00: no Monday-to-Sunday week inside
    html = build_report(con, Selection(datetime(2026, 10, 28, tzinfo=UTC), None, now),
                        data_root=demo / "data")  # fmt: skip
    assert '<p class="sub" id="weeks" data-count="0">The window holds no whole week' in html
    assert "data-trend=" not in html and 'data-chart="breakdown"' in html
