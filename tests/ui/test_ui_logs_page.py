"""The logs search page (/ui/logs) in Chromium: text, namespace, flow, level and time-range filters over
every execution's logs, paging, and live appends."""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import pytest

expect = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)").expect

from .conftest import Api, shot


def _flow(tag: str) -> str:
    return f"""id: logs_page
namespace: company.logsui
tasks:
  - id: say
    type: io.kestra.plugin.core.log.Log
    message: "{tag} info line"
  - id: warn
    type: io.kestra.plugin.core.log.Log
    level: WARN
    message: "{tag} warn line"
"""


def _wait_success(api: Api, execution_id: str) -> None:
    deadline = time.monotonic() + 20
    while api.execution(execution_id)["state"]["current"] != "SUCCESS":
        assert time.monotonic() < deadline
        time.sleep(0.1)


def test_search_filters_and_live(page: Any, server_url: str, api: Api) -> None:
    tag = f"lg{uuid.uuid4().hex[:8]}"
    api.put_flow(_flow(tag))
    _wait_success(api, api.execute("company.logsui", "logs_page")["id"])
    page.goto(f"{server_url}/ui/logs")
    expect(page.locator(".mainnav a[data-nav=logs]")).to_have_attribute("aria-current", "page")
    page.get_by_label("Search").fill(tag)
    expect(page).to_have_url(re.compile(rf"q={tag}"))
    rows = page.locator(".glog-row")
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text(f"{tag} info line")
    expect(rows.first.get_by_role("link")).to_have_text("company.logsui.logs_page")
    page.get_by_label("Minimum level").select_option("WARN")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(f"{tag} warn line")
    page.get_by_label("Minimum level").select_option("INFO")
    expect(rows).to_have_count(2)
    page.get_by_label("Namespace").fill("company.other")
    expect(page.get_by_text("No log line matches these filters.")).to_be_visible()
    page.get_by_label("Namespace").fill("company.logsui")
    page.get_by_label("Flow").fill("logs_page")
    expect(rows).to_have_count(2)
    page.get_by_label("Time range").select_option("PT15M")
    expect(rows).to_have_count(2)
    page.get_by_label("Time range").select_option("custom")
    page.get_by_label("To").fill("2001-01-01T00:00")
    expect(page.get_by_text("No log line matches these filters.")).to_be_visible()
    page.get_by_label("Time range").select_option("")
    expect(rows).to_have_count(2)

    # live: a new execution's lines are appended without a reload
    page.evaluate("window.__sameDocument = true")
    _wait_success(api, api.execute("company.logsui", "logs_page")["id"])
    expect(rows).to_have_count(4, timeout=10_000)
    assert page.evaluate("window.__sameDocument") is True
    shot(page, "logs-page")
    # a reload on the URL keeps the filters
    page.reload()
    expect(page.get_by_label("Search")).to_have_value(tag)
    expect(rows).to_have_count(4)
    # the link opens the execution's logs
    rows.first.get_by_role("link").click()
    expect(page).to_have_url(re.compile(r"/ui/executions/company\.logsui/logs_page/[\w-]+/logs$"))
