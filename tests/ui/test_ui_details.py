"""Issue 14 points 2, 3 and 11 in Chromium: the editor never loses an edit, the small defects stay fixed,
an execution's live topology, and the light/dark/system theme toggle."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest

expect = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)").expect

from .conftest import Api, shot

LONG = 30_000


def flow_yaml(flow_id: str, body: str = "") -> str:
    return f"""id: {flow_id}
namespace: company.team
tasks:
  - id: hello
    type: io.kestra.plugin.core.log.Log
    message: hi
{body}"""


#### 2. never lose an edit ###################################################################################

def test_leaving_the_editor_with_unsaved_changes_asks_first(page: Any, server_url: str, api: Api) -> None:
    fid = f"guard_{uuid.uuid4().hex[:6]}"
    api.put_flow(flow_yaml(fid))
    page.goto(f"{server_url}/ui/flows/edit/company.team/{fid}")
    editor = page.get_by_label("Flow YAML source")
    expect(page.locator(".cm-content")).to_contain_text("message: hi")
    # unchanged: links leave at once
    page.get_by_role("link", name="Executions", exact=True).click()
    expect(page).to_have_url(re.compile(r"/ui/executions$"))
    page.go_back()
    expect(page.locator(".cm-content")).to_contain_text("message: hi")

    editor.fill(flow_yaml(fid).replace("message: hi", "message: my precious edit"))
    page.get_by_role("link", name="Executions", exact=True).click()
    dialog = page.get_by_role("dialog", name="Unsaved changes")
    expect(dialog).to_contain_text("unsaved changes")
    shot(page, "editor-leave-guard")
    dialog.get_by_role("button", name="Cancel").click()
    expect(page).to_have_url(re.compile(rf"/ui/flows/edit/company\.team/{fid}$"))
    expect(page.locator(".cm-content")).to_contain_text("my precious edit")

    # the browser's Back/Forward buttons are guarded too (Forward leads to the executions page visited before)
    page.go_forward()
    dialog = page.get_by_role("dialog", name="Unsaved changes")
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name="Cancel").click()
    expect(page).to_have_url(re.compile(rf"/ui/flows/edit/company\.team/{fid}$"))
    expect(page.locator(".cm-content")).to_contain_text("my precious edit")

    # switching tabs of the flow keeps the edit without asking
    page.get_by_role("tab", name="Revisions").click()
    expect(page.get_by_role("dialog")).to_have_count(0)
    page.get_by_role("tab", name="Editor").click()
    expect(page.locator(".cm-content")).to_contain_text("my precious edit")

    page.get_by_role("link", name="Flows", exact=True).first.click()
    page.get_by_role("dialog", name="Unsaved changes").get_by_role("button", name="Leave without saving").click()
    expect(page).to_have_url(re.compile(r"/ui/flows$"))

    # once saved, leaving asks nothing
    page.goto(f"{server_url}/ui/flows/edit/company.team/{fid}")
    editor.fill(flow_yaml(fid).replace("message: hi", "message: saved"))
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("revision 2", exact=True)).to_be_visible()
    page.get_by_role("link", name="Executions", exact=True).click()
    expect(page).to_have_url(re.compile(r"/ui/executions$"))


#### 3. the small defects ####################################################################################

def test_docs_panel_never_asks_for_a_half_typed_type(page: Any, server_url: str) -> None:
    asked: list[tuple[str, int]] = []
    page.on("response", lambda r: asked.append((r.url, r.status)) if "/api/v1/plugins/" in r.url else None)
    page.goto(f"{server_url}/ui/flows/new")
    editor = page.get_by_label("Flow YAML source")
    editor.fill("id: docs\nnamespace: company.team\ntasks:\n  - id: hello\n    ")
    editor.press("End")
    editor.press("Control+End")
    editor.press_sequentially("type: io.kestra.plugin.core.log.Log", delay=40)
    panel = page.get_by_role("complementary", name="Task documentation")
    expect(panel.get_by_role("heading", name="io.kestra.plugin.core.log.Log")).to_be_visible()
    assert asked and all(status == 200 for _, status in asked), asked
    assert all(url.endswith("/plugins/io.kestra.plugin.core.log.Log") for url, _ in asked), asked


def test_changing_the_executions_filter_opens_one_websocket(page: Any, server_url: str) -> None:
    sockets: list[str] = []
    page.on("websocket", lambda ws: sockets.append(ws.url))
    page.goto(f"{server_url}/ui/executions")
    live = page.locator(".filters .live")
    expect(live).to_have_attribute("data-status", "live")
    assert len(sockets) == 1
    page.get_by_label("Namespace").fill("company")
    page.get_by_label("Namespace").press("Enter")
    expect(page).to_have_url(re.compile(r"namespace=company"))
    expect(live).to_have_attribute("data-status", "live")
    assert len(sockets) == 2 and sockets[1].endswith("/api/v1/ws?namespace=company"), sockets
    # a state filter is applied in the page: the socket stays
    page.locator("summary", has_text="States").click()
    page.get_by_role("checkbox", name="FAILED").check()
    expect(page).to_have_url(re.compile(r"state=FAILED"))
    expect(live).to_have_attribute("data-status", "live")
    assert len(sockets) == 2, sockets


def test_the_connection_indicator_says_offline_when_the_network_is_gone(page: Any, server_url: str) -> None:
    page.goto(f"{server_url}/ui/executions")
    live = page.locator(".filters .live")
    expect(live).to_have_attribute("data-status", "live")
    page.context.set_offline(True)
    expect(live).to_have_attribute("data-status", "offline")
    expect(live).to_contain_text("offline")
    page.context.set_offline(False)
    expect(live).to_have_attribute("data-status", "live")


def test_editor_details_markdown_and_toasts(page: Any, server_url: str, api: Api) -> None:
    fid = f"details_{uuid.uuid4().hex[:6]}"
    api.put_flow(flow_yaml(fid))
    page.goto(f"{server_url}/ui/flows/edit/company.team/{fid}")
    editor = page.get_by_label("Flow YAML source")
    expect(page.locator(".cm-content")).to_contain_text("message: hi")
    bad = flow_yaml(fid, "  - id: wait\n    type: io.kestra.plugin.core.flow.Sleep\n    duration: soon\n")
    editor.fill(bad)
    message = page.locator("#validation li").first
    expect(message).to_contain_text("Invalid duration soon: expected")
    expect(message.locator("code")).to_have_text("soon")  # Markdown `code`, not raw backticks
    assert "`" not in message.inner_text()

    # a failed save, then a good one: the failure does not stay next to "Saved"
    page.errors.allow(r"status of 422")
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".toast-error")).to_contain_text("Save failed")
    editor.fill(bad.replace("duration: soon", "duration: PT1S"))
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".toast-success")).to_contain_text("revision 2")
    expect(page.locator(".toast-error")).to_have_count(0)
    # (Enter after a list item's key: tests/ui/test_ui_editor.py::test_highlighting_and_indentation)


BOOL_FLOW = """id: {fid}
namespace: company.team
inputs:
  - id: flag
    type: BOOLEAN
    required: false
tasks:
  - id: show
    type: io.kestra.plugin.core.log.Log
    message: "flag={{{{ inputs.flag ?? 'unset' }}}}"
"""


def test_an_optional_boolean_input_can_stay_unset(page: Any, server_url: str, api: Api) -> None:
    fid = f"bool_{uuid.uuid4().hex[:6]}"
    api.put_flow(BOOL_FLOW.format(fid=fid))
    for choice, expected in (("Unset", None), ("False", False)):
        page.goto(f"{server_url}/ui/flows/edit/company.team/{fid}")
        page.get_by_role("button", name="Execute").click()
        group = page.get_by_role("dialog").get_by_role("group", name=re.compile("flag"))
        expect(group.get_by_role("radio", name="Unset")).to_be_checked()  # no default: nothing chosen for the user
        group.get_by_role("radio", name=choice).check()
        page.get_by_role("dialog").get_by_role("button", name="Execute").click()
        expect(page).to_have_url(re.compile(rf"/ui/executions/company\.team/{fid}/"))
        execution_id = page.url.rstrip("/").split("/")[-1]
        assert api.execution(execution_id).get("inputs", {}).get("flag") == expected


LONG_NAMES = """id: {fid}
namespace: company.team
tasks:
  - id: a_really_long_task_name_that_phones_used_to_cut
    type: io.kestra.plugin.core.log.Log
    message: hi
"""


def test_on_a_phone_gantt_names_are_whole_and_results_stay_in_view(phone_page: Any, server_url: str, api: Api) -> None:
    page = phone_page
    fid = f"phone_{uuid.uuid4().hex[:6]}"
    api.put_flow(LONG_NAMES.format(fid=fid))
    ex = api.execute("company.team", fid)
    page.goto(f"{server_url}/ui/executions/company.team/{fid}/{ex['id']}/gantt")
    label = page.locator(".gantt-row[data-task='a_really_long_task_name_that_phones_used_to_cut'] .gantt-label button")
    expect(label).to_be_visible(timeout=LONG)
    cut = label.evaluate("(b) => b.scrollWidth > b.clientWidth + 1 || b.getBoundingClientRect().right > innerWidth")
    assert not cut, "the task name is cut on a phone"
    shot(page, "phone-gantt")

    page.goto(f"{server_url}/ui/executions?flowId={fid}")
    results = page.locator("table, .empty").first
    expect(results).to_be_visible()
    top = results.evaluate("(e) => e.getBoundingClientRect().top")
    assert top < page.viewport_size["height"] / 2, f"the results start at {top}px: the filters hide them"
    expect(page.get_by_label("Namespace")).to_be_hidden()
    page.get_by_role("button", name=re.compile(r"^Filters")).click()
    expect(page.get_by_label("Namespace")).to_be_visible()
    expect(page.get_by_role("button", name=re.compile(r"^Filters"))).to_have_text("Filters (1)")
    shot(page, "phone-executions-filters")


#### 11. execution topology, theme toggle ###################################################################

TOPO_FLOW = """id: {fid}
namespace: company.team
tasks:
  - id: wait
    type: io.kestra.plugin.core.flow.Sleep
    duration: PT2S
  - id: branches
    type: io.kestra.plugin.core.flow.Parallel
    tasks:
      - id: left
        type: io.kestra.plugin.core.log.Log
        message: left
      - id: right
        type: io.kestra.plugin.core.log.Log
        message: right
"""


def test_execution_topology_shows_live_task_states(page: Any, server_url: str, api: Api) -> None:
    fid = f"topo_{uuid.uuid4().hex[:6]}"
    api.put_flow(TOPO_FLOW.format(fid=fid))
    ex = api.execute("company.team", fid)
    page.goto(f"{server_url}/ui/executions/company.team/{fid}/{ex['id']}")
    page.evaluate("window.__sameDocument = true")
    page.get_by_role("tab", name="Topology").click()
    expect(page).to_have_url(re.compile(r"/topology$"))
    topo = page.get_by_role("region", name="Execution topology")
    wait = topo.locator("[data-task=wait]")
    expect(wait).to_have_attribute("data-state", "RUNNING", timeout=LONG)
    expect(topo.locator("[data-task=left] .tstate")).to_have_text("not run")
    shot(page, "execution-topology-running")
    expect(wait).to_have_attribute("data-state", "SUCCESS", timeout=LONG)
    expect(topo.locator("[data-task=left]")).to_have_attribute("data-state", "SUCCESS", timeout=LONG)
    expect(topo.locator("[data-task=branches] > .tstate")).to_have_text("SUCCESS")
    assert page.evaluate("window.__sameDocument") is True  # live, without a reload
    shot(page, "execution-topology-done")


def test_theme_toggle_light_dark_system(browser: Any, server_url: str, request: Any) -> None:
    from .conftest import _new_page

    gen = _new_page(browser, request, color_scheme="dark")
    page = next(gen)
    try:
        page.goto(f"{server_url}/ui/flows")
        picker = page.get_by_label("Colour theme")
        expect(picker).to_have_value("system")
        bg = lambda: page.evaluate("getComputedStyle(document.body).backgroundColor")  # noqa: E731
        dark_bg = bg()
        picker.select_option("light")
        expect(page.locator("html")).to_have_attribute("data-theme", "light")
        assert bg() != dark_bg
        light_bg = bg()
        picker.select_option("dark")
        assert bg() == dark_bg
        # the choice survives a reload and applies before the first paint
        page.reload()
        assert page.evaluate("document.documentElement.dataset.theme") == "dark"
        expect(page.get_by_label("Colour theme")).to_have_value("dark")
        page.get_by_label("Colour theme").select_option("light")
        page.reload()
        assert bg() == light_bg
        page.get_by_label("Colour theme").select_option("system")
        expect(page.locator("html")).not_to_have_attribute("data-theme", re.compile("."))
        assert page.evaluate("localStorage.getItem('falconet.theme')") is None and bg() == dark_bg
        shot(page, "theme-system-dark")
    finally:
        next(gen, None)
