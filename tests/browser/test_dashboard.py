"""The supervision dashboard in real Chromium: a regulator signs in, opens it, and
every chart is drawn (a Chart.js instance with data, pixels on its canvas); the
12-month preset redraws them; a CSV link downloads the chart's table.

The demo data (``seed-demo``) has six months of history, so the charts have
something to draw.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

PASSWORD = "demo-pass-2026"
REGULATOR = "regulator@example.com"
CHARTS = (
    "volume",
    "categories",
    "regions",
    "sla",
    "outcomes",
    "satisfaction",
    "merchants",
    "platforms",
)
TIMEOUT_MS = 15_000

#: For each chart: its Chart.js type, the sum of its first dataset, and whether
#: the canvas has pixels that are not transparent (something was drawn).
CHART_STATE = """
() => Object.fromEntries(Object.entries(window.dashboardCharts || {}).map(
  ([id, chart]) => {
    const canvas = chart.canvas;
    const context = canvas.getContext("2d");
    const pixels = context.getImageData(0, 0, canvas.width, canvas.height).data;
    let painted = 0;
    for (let i = 3; i < pixels.length; i += 4) { if (pixels[i] > 0) painted++; }
    const first = chart.data.datasets[0].data;
    return [id, {
      type: chart.config.type,
      labels: chart.data.labels.length,
      total: first.reduce((a, b) => a + (b || 0), 0),
      painted: painted,
      width: canvas.width,
    }];
  }))
"""


def test_the_regulator_sees_the_charts_drawn_and_downloads_a_csv(
    live_server, new_context
):
    base = live_server.url
    context = new_context(
        locale="en-US", timezone_id="Asia/Shanghai", accept_downloads=True
    )
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(f"script error: {exc}"))
    page.goto(f"{base}/login?lang=en")
    form = page.get_by_test_id("login-form")
    form.locator("input[name=email]").fill(REGULATOR)
    form.locator("input[name=password]").fill(PASSWORD)
    page.get_by_test_id("login-submit").click()
    expect(page.get_by_test_id("logout")).to_be_visible()

    page.get_by_test_id("nav-supervision").click()
    expect(page.get_by_test_id("dashboard-filters")).to_be_visible()
    page.wait_for_function(
        "document.documentElement.dataset.charts === 'ready'", timeout=TIMEOUT_MS
    )
    state = page.evaluate(CHART_STATE)
    assert set(state) == set(CHARTS), state
    for chart_id in ("volume", "categories", "regions", "sla"):
        drawn = state[chart_id]
        assert drawn["labels"] > 0 and drawn["width"] > 0, (chart_id, drawn)
        assert drawn["painted"] > 1000, (chart_id, drawn)
    assert state["volume"]["type"] == "line"
    complaints = int(
        page.get_by_test_id("headline-complaints").get_attribute("data-value")
    )
    assert complaints > 0
    assert state["volume"]["total"] == complaints
    expect(page.get_by_test_id("table-categories").locator("tbody tr")).to_have_count(
        11
    )

    # The 12-month preset: more history, redrawn.
    page.get_by_test_id("preset-last_12_months").click()
    page.wait_for_function(
        "document.documentElement.dataset.charts === 'ready'", timeout=TIMEOUT_MS
    )
    year = page.evaluate(CHART_STATE)
    year_total = int(
        page.get_by_test_id("headline-complaints").get_attribute("data-value")
    )
    assert year_total > complaints
    assert year["volume"]["total"] == year_total
    assert year["outcomes"]["total"] > 0 and year["outcomes"]["painted"] > 1000

    # The CSV of the categories chart holds the table under it.
    with page.expect_download() as info:
        page.get_by_test_id("csv-categories").click()
    download = info.value
    assert download.suggested_filename.startswith("complaints-by-category_")
    assert download.suggested_filename.endswith(".csv")
    raw = Path(download.path()).read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    # The header is the table's, in the page's language (the account's).
    header = page.get_by_test_id("table-categories").locator("thead th")
    assert rows[0] == [header.nth(i).inner_text() for i in range(header.count())]
    assert sum(int(row[1]) for row in rows[1:]) == year_total
    assert not problems, problems
