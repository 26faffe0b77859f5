"""Managing flows and executions in Chromium: new flow from a template, copy, export/import (YAML and
zip), disable/enable, delete; the flows list's last execution and sortable columns; executions sorted,
selected and changed in bulk (kill, restart, replay, delete, change status, labels) or by filter."""

from __future__ import annotations

import re
import zipfile
import time
import urllib.parse
import uuid
from typing import Any

import pytest

expect = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)").expect

from .conftest import Api, shot


def _flow(ns: str, fid: str, task: str = "io.kestra.plugin.core.log.Log", extra: str = "    message: hi") -> str:
    return f"id: {fid}\nnamespace: {ns}\ntasks:\n  - id: t\n    type: {task}\n{extra}\n"


def _wait_state(api: Api, eid: str, state: str) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while True:
        e = api.execution(eid)
        if e["state"]["current"] == state:
            return e
        assert time.monotonic() < deadline, e["state"]["current"]
        time.sleep(0.1)


def _toasts(page: Any) -> Any:
    """The toasts: a bulk action's toast repeats its dialog's title, and the dialog closed a moment before stays
    in the document until its ``close`` event (hidden, but found by text)."""
    return page.locator("#toasts")


def _eventually(check: Any) -> None:
    deadline = time.monotonic() + 10
    while not check():
        assert time.monotonic() < deadline
        time.sleep(0.1)


def test_templates_are_valid_flows(page: Any, server_url: str) -> None:
    page.goto(f"{server_url}/ui/flows")
    results = page.evaluate("""async () => {
      const { TEMPLATES } = await import('/ui/assets/js/flowtemplates.js');
      const out = [];
      for (const t of TEMPLATES) {
        const r = await fetch('/api/v1/flows/validate', { method: 'POST', headers: { 'Content-Type': 'application/x-yaml' }, body: t.source });
        out.push([t.id, await r.json()]);
      }
      return out;
    }""")
    assert len(results) >= 5
    for tid, res in results:
        assert not res[0].get("constraints"), (tid, res)


def test_flow_from_template_copy_export_import_disable_delete(page: Any, server_url: str, api: Api) -> None:
    ns = f"company.manage{uuid.uuid4().hex[:6]}"
    page.goto(f"{server_url}/ui/flows")
    page.get_by_role("link", name="From a template…").click()
    page.get_by_role("dialog").get_by_role("link", name="Parallel tasks").click()
    expect(page).to_have_url(re.compile(r"/ui/flows/new\?template=parallel$"))
    expect(page.locator(".cm-content")).to_contain_text("io.kestra.plugin.core.flow.Parallel")
    expect(page.locator("#validation")).to_contain_text("Valid flow")
    # into our namespace, then save
    editor = page.get_by_label("Flow YAML source")
    text = page.evaluate("""async () => (await import('/ui/assets/js/flowtemplates.js')).TEMPLATES.find((t) => t.id === 'parallel').source""")
    editor.fill(text.replace("namespace: company.team", f"namespace: {ns}"))
    page.get_by_role("button", name="Save").click()
    expect(page).to_have_url(re.compile(rf"/ui/flows/edit/{re.escape(ns)}/parallel_work$"))

    # copy: the editor opens with the source under a new id, unsaved
    page.get_by_role("button", name="Copy").click()
    expect(page).to_have_url(re.compile(r"/ui/flows/new\?copy="))
    expect(page.locator(".cm-content")).to_contain_text("id: parallel_work_copy")
    expect(page.get_by_text("Unsaved changes")).to_be_visible()
    page.get_by_role("button", name="Save").click()
    expect(page).to_have_url(re.compile(rf"/ui/flows/edit/{re.escape(ns)}/parallel_work_copy$"))

    # the list: both, never run; select both and export one YAML of two documents
    page.goto(f"{server_url}/ui/flows?namespace={ns}")
    rows = page.locator("tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.first.locator("td.last-exec")).to_have_text("never run")
    page.get_by_label("Select every flow of this page").check()
    expect(page.get_by_role("toolbar", name="Flow actions")).to_contain_text("2 selected")
    with page.expect_download() as dl:
        page.get_by_role("button", name="Export YAML").click()
    exported = open(dl.value.path(), encoding="utf-8").read()
    assert exported.count("---\n") == 1 and "id: parallel_work\n" in exported and "id: parallel_work_copy\n" in exported

    with page.expect_download() as dl_zip:
        page.get_by_role("button", name="Export zip").click()
    with zipfile.ZipFile(dl_zip.value.path()) as z:
        assert sorted(z.namelist()) == [f"{ns}.parallel_work.yml", f"{ns}.parallel_work_copy.yml"]

    # disable both
    page.get_by_role("button", name="Disable").click()
    expect(rows.first).to_contain_text("disabled")
    _eventually(lambda: api.call("GET", f"/flows/{ns}/parallel_work")["disabled"] is True)
    page.get_by_label("Select every flow of this page").check()
    page.get_by_role("button", name="Enable").click()
    expect(rows.first).not_to_contain_text("disabled")
    _eventually(lambda: api.call("GET", f"/flows/{ns}/parallel_work")["disabled"] is False)

    # delete both, then import them back: from the YAML export, then (deleted again) from the zip
    for exported_file in (dl.value.path(), dl_zip.value.path()):
        page.get_by_label("Select every flow of this page").check()
        page.get_by_role("toolbar", name="Flow actions").get_by_role("button", name="Delete").click()
        page.get_by_role("dialog").get_by_role("button", name="Delete").click()
        expect(page.get_by_text("No flow matches these filters.")).to_be_visible()
        name = "flows.zip" if str(exported_file) == str(dl_zip.value.path()) else "flows.yml"
        page.locator("#flows-import").set_input_files({"name": name, "mimeType": "application/octet-stream",
                                                       "buffer": open(exported_file, "rb").read()})
        expect(page.get_by_text(f"Imported {name}")).to_be_visible()
        expect(rows).to_have_count(2)

    # last execution state and date; sorting by namespace/id
    e = api.execute(ns, "parallel_work")
    _wait_state(api, e["id"], "SUCCESS")
    page.reload()
    expect(page.locator(f"tr[data-flow='{ns}.parallel_work'] td.last-exec")).to_contain_text("SUCCESS")
    page.get_by_role("button", name="Id").click()
    expect(page).to_have_url(re.compile(r"sort=id%3Adesc|sort=id:desc"))
    expect(rows.first).to_contain_text("parallel_work_copy")
    shot(page, "flows-manage")

    # delete from the flow page
    page.goto(f"{server_url}/ui/flows/edit/{ns}/parallel_work_copy")
    page.locator(".flow-more").get_by_role("button", name="Delete").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete").click()
    expect(page).to_have_url(re.compile(rf"/ui/flows\?namespace={re.escape(ns)}$"))
    expect(rows).to_have_count(1)


def test_a_done_bulk_action_unchecks_the_boxes_before_the_list_reloads(page: Any, server_url: str, api: Api) -> None:
    ns = f"company.unpick{uuid.uuid4().hex[:6]}"
    api.put_flow(_flow(ns, "fails", "io.kestra.plugin.core.execution.Fail", "    errorMessage: no"))
    failed = [api.execute(ns, "fails")["id"] for _ in range(2)]
    for eid in failed:
        _wait_state(api, eid, "FAILED")
    page.goto(f"{server_url}/ui/executions?namespace={ns}")
    expect(page.locator("tbody tr")).to_have_count(2)
    held: list[Any] = []
    for eid in failed:
        page.get_by_label(f"Select execution {eid}").check()
    page.route("**/api/v1/executions/search*", lambda route: held.append(route))  # the reload waits
    bar = page.get_by_role("toolbar", name="Bulk actions")
    bar.get_by_role("button", name="Set labels").click()
    page.get_by_role("dialog").get_by_label("Labels").fill("team:unpick")
    page.get_by_role("dialog").get_by_role("button", name="Set labels").click()
    expect(_toasts(page).get_by_text("Set labels: 2 executions")).to_be_visible()
    # the reload has not answered, yet no box claims the cleared selection and the bar is gone
    for eid in failed:
        expect(page.get_by_label(f"Select execution {eid}")).not_to_be_checked()
    expect(bar).to_be_hidden()
    page.get_by_label(f"Select execution {failed[0]}").check()
    expect(bar).to_contain_text("1 selected")
    assert held, "the reload was held"
    for route in held:
        route.continue_()
    page.unroute("**/api/v1/executions/search*")
    expect(page.get_by_label(f"Select execution {failed[0]}")).to_be_checked()
    expect(bar).to_contain_text("1 selected")


def test_executions_sort_select_and_bulk_actions(page: Any, server_url: str, api: Api) -> None:
    ns = f"company.bulk{uuid.uuid4().hex[:6]}"
    api.put_flow(_flow(ns, "fails", "io.kestra.plugin.core.execution.Fail", "    errorMessage: no"))
    api.put_flow(_flow(ns, "sleeps", "io.kestra.plugin.core.flow.Sleep", "    duration: PT60S"))
    failed = [api.execute(ns, "fails")["id"] for _ in range(3)]
    for eid in failed:
        _wait_state(api, eid, "FAILED")
    sleeping = [api.execute(ns, "sleeps")["id"] for _ in range(2)]
    for eid in sleeping:
        _wait_state(api, eid, "RUNNING")

    page.goto(f"{server_url}/ui/executions?namespace={ns}")
    rows = page.locator("tbody tr")
    expect(rows).to_have_count(5)
    # sortable: by flow ascending puts "fails" first, descending "sleeps"
    page.get_by_role("button", name="Flow", exact=True).click()
    expect(page.locator("th[aria-sort=descending]")).to_contain_text("Flow")
    expect(rows.first).to_contain_text("sleeps")
    page.get_by_role("button", name="Flow", exact=True).click()
    expect(rows.first).to_contain_text("fails")
    expect(page).to_have_url(re.compile(r"sort=flowId%3Aasc"))

    def select(ids: list[str]) -> None:
        for eid in ids:
            page.get_by_label(f"Select execution {eid}").check()

    bar = page.get_by_role("toolbar", name="Bulk actions")
    # labels on the three failed ones
    select(failed)
    expect(bar).to_contain_text("3 selected")
    bar.get_by_role("button", name="Set labels").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Labels").fill("team:bulk")
    dialog.get_by_role("button", name="Set labels").click()
    expect(_toasts(page).get_by_text("Set labels: 3 executions")).to_be_visible()
    _eventually(lambda: all({"key": "team", "value": "bulk"} in api.execution(i)["labels"] for i in failed))

    # change status of one
    select(failed[:1])
    bar.get_by_role("button", name="Change status").click()
    page.get_by_role("dialog").get_by_label("New status").select_option("WARNING")
    page.get_by_role("dialog").get_by_role("button", name="Change status").click()
    _wait_state(api, failed[0], "WARNING")

    # replay one: a new execution
    select(failed[1:2])
    bar.get_by_role("button", name="Replay").click()
    page.get_by_role("dialog").get_by_role("button", name="Replay").click()
    expect(_toasts(page).get_by_text("Replay: 1 execution")).to_be_visible()

    # restart the last failed one
    select(failed[2:])
    bar.get_by_role("button", name="Restart").click()
    page.get_by_role("dialog").get_by_role("button", name="Restart").click()
    expect(_toasts(page).get_by_text("Restart: 1 execution")).to_be_visible()

    # kill every RUNNING execution of the filter (by query)
    page.goto(f"{server_url}/ui/executions?namespace={ns}&state=RUNNING&flowId=sleeps")
    expect(rows).to_have_count(2)
    page.get_by_label("Select every execution of this page").check()
    page.get_by_label(re.compile(r"All 2 matching the filter")).check()
    bar.get_by_role("button", name="Kill").click()
    page.get_by_role("dialog").get_by_role("button", name="Kill").click()
    for eid in sleeping:
        _wait_state(api, eid, "KILLED")
    shot(page, "executions-bulk")

    # delete the two killed ones by selection
    page.goto(f"{server_url}/ui/executions?namespace={ns}&flowId=sleeps")
    expect(rows).to_have_count(2)
    select(sleeping)
    bar.get_by_role("button", name="Delete").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete").click()
    expect(page.get_by_text("No execution matches these filters.")).to_be_visible()
    query = urllib.parse.urlencode({"namespace": ns, "flowId": "sleeps"})
    _eventually(lambda: api.call("GET", f"/executions/search?{query}")["total"] == 0)
