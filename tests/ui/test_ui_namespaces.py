"""Namespaces in Chromium: /ui/namespaces (with parents), a namespace's overview, executions and KV store
(add with a type, edit, expiry, delete)."""

from __future__ import annotations

import re
from typing import Any

import pytest

expect = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)").expect

from .conftest import Api, shot

FLOW = """id: ns_flow
namespace: company.nsui.sub
tasks:
  - id: hello
    type: io.kestra.plugin.core.log.Log
    message: hi
"""


def test_namespaces_list_and_overview(page: Any, server_url: str, api: Api) -> None:
    api.put_flow(FLOW)
    api.execute("company.nsui.sub", "ns_flow")
    page.goto(f"{server_url}/ui/namespaces")
    expect(page.locator(".mainnav a[data-nav=namespaces]")).to_have_attribute("aria-current", "page")
    parent = page.locator("li[data-namespace='company.nsui']")
    expect(parent).to_contain_text("parent, no flow of its own")
    page.locator("li[data-namespace='company.nsui.sub'] a").click()
    expect(page).to_have_url(re.compile(r"/ui/namespaces/edit/company\.nsui\.sub$"))
    expect(page.get_by_role("heading", name="company.nsui.sub", level=1)).to_be_visible()
    expect(page.get_by_role("region", name="Flows")).to_contain_text("ns_flow")
    expect(page.get_by_role("region", name="Recent executions").locator("tbody tr").first).to_contain_text("ns_flow")
    page.get_by_role("tab", name="Executions").click()
    expect(page).to_have_url(re.compile(r"/ui/namespaces/edit/company\.nsui\.sub/executions$"))
    expect(page.locator("tbody tr").first).to_contain_text("ns_flow")


def test_kv_store_add_edit_expiry_delete(page: Any, server_url: str, api: Api) -> None:
    ns = "company.kvui"
    page.goto(f"{server_url}/ui/namespaces/edit/{ns}/kv")
    expect(page.get_by_role("tab", name="KV Store")).to_have_attribute("aria-selected", "true")
    expect(page.get_by_text("No key in this namespace.")).to_be_visible()

    def add(key: str, type_: str, value: str, ttl: str = "") -> None:
        page.get_by_role("button", name="+ Add a key").click()
        dialog = page.get_by_role("dialog")
        dialog.get_by_label("Key").fill(key)
        dialog.get_by_label("Type").select_option(type_)
        if type_ == "BOOLEAN":
            dialog.get_by_label("Value").select_option(value)
        else:
            dialog.get_by_label("Value").fill(value)
        if ttl:
            dialog.get_by_label("Expires after").fill(ttl)
        dialog.get_by_role("button", name="Save").click()
        expect(dialog).to_be_hidden()

    add("text", "STRING", "12")
    add("count", "NUMBER", "42")
    add("flag", "BOOLEAN", "false")
    add("config", "JSON", '{"a": [1, 2]}', ttl="P7D")
    assert api.call("GET", f"/namespaces/{ns}/kv/text") == {"type": "STRING", "value": "12"}
    assert api.call("GET", f"/namespaces/{ns}/kv/count") == {"type": "NUMBER", "value": 42}
    assert api.call("GET", f"/namespaces/{ns}/kv/flag") == {"type": "BOOLEAN", "value": False}
    assert api.call("GET", f"/namespaces/{ns}/kv/config") == {"type": "JSON", "value": {"a": [1, 2]}}
    expect(page.locator("tr[data-key=config] td").nth(3).locator("time")).to_be_visible()  # expires
    expect(page.locator("tr[data-key=count] td").nth(3)).to_have_text("never")

    # a bad value is refused in the form, nothing is sent
    page.get_by_role("button", name="+ Add a key").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Key").fill("bad")
    dialog.get_by_label("Type").select_option("JSON")
    dialog.get_by_label("Value").fill("{nope")
    dialog.get_by_role("button", name="Save").click()
    expect(dialog.get_by_role("alert")).to_have_text("Not valid JSON")
    dialog.get_by_role("button", name="Cancel").click()

    # edit: the current value and type are loaded
    page.locator("tr[data-key=count]").get_by_role("button", name="Edit").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_label("Type")).to_have_value("NUMBER")
    expect(dialog.get_by_label("Value")).to_have_value("42")
    dialog.get_by_label("Value").fill("43.5")
    dialog.get_by_role("button", name="Save").click()
    expect(dialog).to_be_hidden()
    assert api.call("GET", f"/namespaces/{ns}/kv/count") == {"type": "NUMBER", "value": 43.5}
    shot(page, "namespace-kv")

    page.locator("tr[data-key=text]").get_by_role("button", name="Delete").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete").click()
    expect(page.locator("tr[data-key=text]")).to_have_count(0)
    assert [e["key"] for e in api.call("GET", f"/namespaces/{ns}/kv")] == ["config", "count", "flag"]
