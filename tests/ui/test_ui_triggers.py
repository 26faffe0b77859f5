"""Triggers in Chromium: /ui/admin/triggers and a flow's Triggers tab — last/next dates, enable/disable,
unlock, backfill start (with inputs and labels), pause, resume, delete."""

from __future__ import annotations

import re
import time
import urllib.parse
from datetime import datetime, timedelta
from typing import Any

import pytest

expect = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)").expect

from .conftest import Api, shot

FLOW = """id: nightly_report
namespace: company.triggers
inputs:
  - id: who
    type: STRING
    defaults: nobody
tasks:
  - id: hello
    type: io.kestra.plugin.core.log.Log
    message: "{{ inputs.who }}"
triggers:
  - id: at_three
    type: io.kestra.plugin.core.trigger.Schedule
    cron: "0 3 * * *"
"""


def _context(api: Api) -> dict[str, Any]:
    rows = api.call("GET", "/triggers/company.triggers/nightly_report")["results"]
    return rows[0]["triggerContext"]


def _local(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M")


def test_triggers_page_enable_disable_and_backfills(page: Any, server_url: str, api: Api) -> None:
    api.put_flow(FLOW)
    deadline = time.monotonic() + 15
    while not api.call("GET", "/triggers/company.triggers/nightly_report")["results"] and time.monotonic() < deadline:
        time.sleep(0.1)
    page.goto(f"{server_url}/ui/admin/triggers?q=nightly")
    expect(page.locator(".mainnav a[data-nav=triggers]")).to_have_attribute("aria-current", "page")
    row = page.locator("tr[data-trigger='company.triggers.nightly_report.at_three']")
    expect(row).to_contain_text("Schedule")
    expect(row.locator("td").nth(4).locator("time")).to_be_visible()  # next date
    switch = row.get_by_role("switch")
    expect(switch).to_be_checked()

    # disable: the scheduler stops (and a backfill of a disabled trigger waits, so it can be driven here)
    switch.uncheck()
    expect(row.locator("td").nth(4)).to_have_text("disabled")
    assert _context(api)["disabled"] is True
    row.get_by_role("button", name="Backfill").click()
    dialog = page.get_by_role("dialog")
    start = datetime.now() - timedelta(days=3, hours=12)
    dialog.get_by_label("Start").fill(_local(start))
    dialog.get_by_label("Labels").fill("oops")
    dialog.get_by_role("button", name="Start backfill").click()
    expect(dialog.get_by_role("alert")).to_contain_text('Label "oops" is not key:value')
    dialog.get_by_label("Labels").fill("team:data")
    dialog.get_by_label("Inputs (JSON)").fill('{"who": "backfill"}')
    dialog.get_by_role("button", name="Start backfill").click()
    expect(dialog).to_be_hidden()
    expect(row.locator("td").nth(5)).to_contain_text("running at")
    bf = _context(api)["backfill"]
    assert bf["inputs"] == {"who": "backfill"} and bf["labels"] == [{"key": "team", "value": "data"}]
    row.get_by_role("button", name="Pause backfill").click()
    expect(row.locator("td").nth(5)).to_contain_text("paused at")
    assert _context(api)["backfill"]["paused"] is True
    shot(page, "triggers-backfill-paused")
    row.get_by_role("button", name="Resume backfill").click()
    expect(row.locator("td").nth(5)).to_contain_text("running at")
    row.get_by_role("button", name="Delete backfill").click()
    expect(row.locator("td").nth(5)).to_have_text("—")
    assert _context(api).get("backfill") is None

    # enabled again, a real backfill of the last three 03:00 runs, with its inputs and labels
    switch.check()
    expect(row.locator("td").nth(4).locator("time")).to_be_visible()
    row.get_by_role("button", name="Backfill").click()
    dialog.get_by_label("Start").fill(_local(start))
    dialog.get_by_label("End").fill(_local(start + timedelta(days=3)))
    dialog.get_by_label("Inputs (JSON)").fill('{"who": "backfill"}')
    dialog.get_by_label("Labels").fill("team:data")
    dialog.get_by_role("button", name="Start backfill").click()
    query = urllib.parse.urlencode([("namespace", "company.triggers"), ("flowId", "nightly_report"), ("labels", "team:data")])
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        found = api.call("GET", f"/executions/search?{query}")
        if found["total"] >= 3:
            break
        time.sleep(0.2)
    assert found["total"] == 3, found["total"]
    assert all(e["inputs"]["who"] == "backfill" for e in found["results"])


def test_a_flows_triggers_tab(page: Any, server_url: str, api: Api) -> None:
    api.put_flow(FLOW)
    page.goto(f"{server_url}/ui/flows/edit/company.triggers/nightly_report/triggers")
    expect(page.get_by_role("tab", name="Triggers")).to_have_attribute("aria-selected", "true")
    row = page.locator("tr[data-trigger='company.triggers.nightly_report.at_three']")
    expect(row).to_be_visible()
    expect(page.locator("table thead")).not_to_contain_text("Flow")  # the flow is fixed here
    page.get_by_role("tab", name="Executions").click()
    expect(page).to_have_url(re.compile(r"/ui/flows/edit/company\.triggers/nightly_report/executions$"))


UPSTREAM = """id: upstream
namespace: company.triggers
tasks:
  - id: hello
    type: io.kestra.plugin.core.log.Log
    message: up
"""

DOWNSTREAM = """id: downstream
namespace: company.triggers
tasks:
  - id: hello
    type: io.kestra.plugin.core.log.Log
    message: down
triggers:
  - id: after_upstream
    type: io.kestra.plugin.core.trigger.Flow
    conditions:
      - type: io.kestra.plugin.core.condition.ExecutionFlow
        namespace: company.triggers
        flowId: upstream
"""


def test_unlock_a_locked_trigger(page: Any, server_url: str, api: Api) -> None:
    api.put_flow(UPSTREAM)
    api.put_flow(DOWNSTREAM)
    api.execute("company.triggers", "upstream")
    deadline = time.monotonic() + 20
    ctx: dict[str, Any] = {}
    while time.monotonic() < deadline:
        rows = api.call("GET", "/triggers/company.triggers/downstream")["results"]
        ctx = rows[0]["triggerContext"] if rows else {}
        if ctx.get("executionId"):
            break
        time.sleep(0.1)
    assert ctx.get("executionId"), ctx  # the Flow trigger keeps the execution it created: locked
    page.goto(f"{server_url}/ui/flows/edit/company.triggers/downstream/triggers")
    row = page.locator("tr[data-trigger='company.triggers.downstream.after_upstream']")
    unlock = row.get_by_role("button", name="Unlock")
    expect(unlock).to_have_attribute("title", f"Locked by execution {ctx['executionId']}")
    unlock.click()
    expect(page.get_by_text("after_upstream unlocked")).to_be_visible()
    expect(row.get_by_role("button", name="Unlock")).to_have_count(0)
    assert not api.call("GET", "/triggers/company.triggers/downstream")["results"][0]["triggerContext"].get("executionId")
