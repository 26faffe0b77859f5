"""The dashboard (/ui/ and /ui/dashboard) in Chromium: charts by state, success ratio, durations, failures,
running/queued, next scheduled runs, live refresh; first paint with 10,000 executions in the store."""

from __future__ import annotations

import json
import os
import re
import shutil
from typing import Any

import pytest

expect = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)").expect

from .conftest import ARTIFACTS, REPO, Api, shot
from .seeded import EXECUTIONS, FIRST_PAINT_MS, first_paint, seeded_url  # noqa: F401

SCHEDULED = """id: nightly
namespace: company.dash
tasks:
  - id: hello
    type: io.kestra.plugin.core.log.Log
    message: hi
triggers:
  - id: every_day
    type: io.kestra.plugin.core.trigger.Schedule
    cron: "0 3 * * *"
"""

FAILING = """id: dash_fails
namespace: company.dash
tasks:
  - id: boom
    type: io.kestra.plugin.core.execution.Fail
    errorMessage: dashboard failure
"""


def test_dashboard_counts_ratio_and_lists_from_10000_executions(page: Any, seeded_url: str) -> None:  # noqa: F811
    api = Api(seeded_url)
    api.put_flow(SCHEDULED)
    fcp, ready = first_paint(page, f"{seeded_url}/ui/dashboard", "svg.chart rect[data-state]")
    (ARTIFACTS / "dashboard-paint.json").write_text(json.dumps({"fcp_ms": fcp, "charts_ms": ready}))
    assert fcp <= FIRST_PAINT_MS, (fcp, ready)
    expect(page.get_by_role("heading", name="Dashboard", level=1)).to_be_visible()
    # the seeded executions start every 1.4 minutes over the last ~10 days: the 7-day bars count them
    bars = page.locator("svg.chart g.bar")
    expect(bars).to_have_count(7)
    counted = page.evaluate("[...document.querySelectorAll('svg.chart rect[data-count]')].reduce((a, r) => a + +r.dataset.count, 0)")
    expect_in_7_days = sum(1 for i in range(EXECUTIONS) if i * 1.4 + 1 <= 7 * 24 * 60)
    assert abs(counted - expect_in_7_days) <= 24 * 60 / 1.4 + 1, (counted, expect_in_7_days)  # today's local midnight
    ratio = page.locator(".dash-ratio .dash-kpi-value")
    expect(ratio).to_have_text(re.compile(r"^7\d\.\d %$"))  # 7 of 10 seeded states are SUCCESS
    expect(page.get_by_role("region", name="Recent failures").locator("li").first).to_contain_text("FAILED")
    expect(page.get_by_role("region", name="Durations of the last 100 finished executions").locator("svg rect")).to_have_count(100)
    expect(page.get_by_role("region", name="Next scheduled runs")).to_contain_text("company.dash.nightly")
    path = shot(page, "dashboard")
    if os.environ.get("FALCONET_UI_DOCS_SCREENSHOT"):
        (REPO / "docs").mkdir(exist_ok=True)
        shutil.copy(path, REPO / "docs" / "dashboard.png")
    page.get_by_label("Period").select_option("30")
    expect(bars).to_have_count(30)
    expect(page).to_have_url(re.compile(r"/ui/dashboard\?days=30$"))


def test_dashboard_is_the_home_page_and_updates_live(page: Any, server_url: str, api: Api) -> None:
    page.goto(f"{server_url}/ui/")
    expect(page.get_by_role("heading", name="Dashboard", level=1)).to_be_visible()
    expect(page.locator(".mainnav a[data-nav=dashboard]")).to_have_attribute("aria-current", "page")
    expect(page.locator(".live")).to_have_text("live")
    failures = page.get_by_role("region", name="Recent failures")
    expect(failures).not_to_contain_text("company.dash.dash_fails")
    api.put_flow(FAILING)
    api.execute("company.dash", "dash_fails")
    expect(failures).to_contain_text("company.dash.dash_fails", timeout=15_000)  # no reload
    expect(page.locator("svg.chart rect[data-state=FAILED]").first).to_be_visible()
    shot(page, "dashboard-live")


@pytest.mark.parametrize("path", ["/ui/dashboard", "/ui/logs", "/ui/admin/triggers", "/ui/namespaces", "/ui/flows"])
def test_new_pages_fit_a_phone(phone_page: Any, server_url: str, path: str) -> None:
    phone_page.goto(server_url + path)
    expect(phone_page.locator("h1")).to_be_visible()
    phone_page.wait_for_timeout(300)  # the page's data arrives
    assert phone_page.evaluate("document.documentElement.scrollWidth") <= 390, path  # the phone's width
