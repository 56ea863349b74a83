"""`cprec report` in a real browser: headless Chromium (Debian's package; `.ci/run`
installs it) driven by Playwright, with every network request refused. The page must
load with no console error, draw every chart, and show the `dora` query's figures.

Without Chromium the browser tests are skipped, unless CPREC_REQUIRE_BROWSER=1 (set by
`.ci/run`), which makes a missing browser a failure."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

import queries
from queries.report import Selection, build_report, console_url, duration
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
            # the demo's account has every chart: its second pipeline got a slower build
            assert names == [
                "deployments", "failure_rate", "duration", "breakdown", "stages",
                "approvals", "regressions", "errors",
            ]  # fmt: skip
            for i, name in enumerate(names):
                canvas = charts.nth(i).locator(".bk-Figure, .bk-Plot").first
                canvas.wait_for(state="visible", timeout=15_000)
                box = charts.nth(i).bounding_box()
                assert box and box["width"] > 300 and box["height"] > 150, name
                page.wait_for_timeout(200)
                assert drawn(charts.nth(i).screenshot()) > 20, name
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
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "report.png"), full_page=True)
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
        assert f"<tr><td>{pipeline}</td>" in html


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
