"""End-to-end: the UI in Chromium against a live Falconet server (see conftest.py).

Scenarios of issue 6: create hello_world in the editor, Execute with `greeting`, watch SUCCESS arrive
without a reload and read the greeting in Logs; a FILE input through the form; kill a running Sleep
from its page; resume a paused execution with an onResume input. Plus the executions list updating
live, a websocket drop that resumes from a fresh snapshot, the generated form's controls, Kestra's
validation messages at their field, revisions/topology, error states, and a phone-width dark page.
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest

expect = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)").expect

from .conftest import ARTIFACTS, REPO, Api, shot

LONG = 30_000  # ms: an execution reaching a state

HELLO_WORLD = """id: hello_world
namespace: company.team

inputs:
  - id: greeting
    type: STRING
    defaults: Hello World!

tasks:
  - id: hello
    type: io.kestra.plugin.core.log.Log
    message: "{{ inputs.greeting }}"
"""


def state_badge(page: Any) -> Any:
    return page.locator(".page-head .badge")


def open_execution(page: Any, base: str, execution: dict[str, Any]) -> None:
    page.goto(f"{base}/ui/executions/{execution['namespace']}/{execution['flowId']}/{execution['id']}")
    expect(page.get_by_role("heading", name=execution["id"])).to_be_visible()


def test_hello_world_from_the_editor_to_success_and_logs(page: Any, server_url: str) -> None:
    greeting = f"Bonjour from the browser {uuid.uuid4().hex[:8]}"
    page.goto(f"{server_url}/")
    expect(page).to_have_url(re.compile(r"/ui/$"))  # the dashboard
    page.get_by_role("link", name="Flows", exact=True).click()
    expect(page).to_have_url(re.compile(r"/ui/flows$"))
    page.get_by_role("link", name="+ Create flow").first.click()
    expect(page).to_have_url(re.compile(r"/ui/flows/new$"))

    editor = page.get_by_label("Flow YAML source")
    # an invalid flow first: the message appears at its line while typing
    editor.fill("id: hello_world\nnamespace: company.team\ntasks:\n  - id: hello\n    type: io.kestra.plugin.core.log.Log\n")
    expect(page.locator(".cm-host .cm-gutter-lint .cm-lint-marker-error")).to_have_count(1)
    expect(page.locator("#validation li").first).to_contain_text("Line ")
    shot(page, "editor-validation")
    editor.fill(HELLO_WORLD)
    expect(page.locator("#validation")).to_contain_text("Valid flow")
    expect(page.locator(".cm-host .hl-expr").first).to_have_text("{{ inputs.greeting }}")
    page.get_by_role("button", name="Save").click()
    expect(page).to_have_url(re.compile(r"/ui/flows/edit/company\.team/hello_world$"))
    expect(page.get_by_text("revision 1", exact=True)).to_be_visible()
    shot(page, "flow-editor")

    page.evaluate("window.__sameDocument = true")  # gone if anything reloads the page
    page.get_by_role("button", name="Execute").click()
    dialog = page.get_by_role("dialog")
    field = dialog.get_by_label("greeting")
    expect(field).to_have_value("Hello World!")  # the default is pre-filled
    field.fill(greeting)
    shot(page, "execute-form")
    dialog.get_by_role("button", name="Execute").click()

    expect(page).to_have_url(re.compile(r"/ui/executions/company\.team/hello_world/[\w-]+$"))
    expect(state_badge(page)).to_have_text("SUCCESS", timeout=LONG)
    assert page.evaluate("window.__sameDocument") is True
    expect(page.locator(".live")).to_have_text("final")
    shot(page, "execution-overview", full_page=True)
    if os.environ.get("FALCONET_UI_DOCS_SCREENSHOT"):
        (REPO / "docs").mkdir(exist_ok=True)
        shutil.copy(ARTIFACTS / "execution-overview.png", REPO / "docs" / "execution-page.png")
    expect(page.get_by_role("cell", name=greeting)).to_be_visible()  # inputs table

    # keyboard: arrows move between the tabs
    page.get_by_role("tab", name="Overview").focus()
    page.keyboard.press("ArrowRight")
    expect(page.get_by_role("tab", name="Gantt")).to_have_attribute("aria-selected", "true")
    expect(page.locator(".gantt-row[data-task='hello']")).to_have_attribute("data-state", "SUCCESS")
    shot(page, "execution-gantt")

    page.get_by_role("tab", name="Logs").click()
    expect(page).to_have_url(re.compile(r"/logs$"))
    logs = page.get_by_role("log")
    expect(logs).to_contain_text(greeting)
    expect(logs.locator(".vlog-head").first).to_contain_text("hello")
    page.get_by_label("Minimum level").select_option("ERROR")
    expect(logs).not_to_contain_text(greeting)
    page.get_by_label("Minimum level").select_option("TRACE")
    expect(logs).to_contain_text(greeting)
    with page.expect_download() as dl:
        page.get_by_role("link", name="⤓ Download").click()
    assert greeting in open(dl.value.path(), encoding="utf-8").read()
    shot(page, "execution-logs")

    # the page survives a reload on its URL (the server answers index.html)
    page.reload()
    expect(page.get_by_role("tab", name="Logs")).to_have_attribute("aria-selected", "true")
    expect(page.get_by_role("log")).to_contain_text(greeting)


FILE_FLOW = """id: file_input
namespace: company.team
inputs:
  - id: data
    type: FILE
    description: A text file to store
tasks:
  - id: show
    type: io.kestra.plugin.core.log.Log
    message: "stored at {{ inputs.data }}"
"""


def test_file_input_through_the_form(page: Any, server_url: str, api: Api) -> None:
    api.put_flow(FILE_FLOW)
    content = f"name,score\nfalconet,{uuid.uuid4().int % 1000}\n"
    page.goto(f"{server_url}/ui/flows/edit/company.team/file_input")
    page.get_by_role("button", name="Execute").click()
    dialog = page.get_by_role("dialog")
    upload = dialog.get_by_label("data")
    expect(upload).to_have_attribute("type", "file")
    upload.set_input_files({"name": "scores.csv", "mimeType": "text/csv", "buffer": content.encode()})
    dialog.get_by_text("Labels and revision").click()
    dialog.get_by_role("button", name="+ Add label").click()
    dialog.get_by_label("Label 1 key").fill("team")
    dialog.get_by_label("Label 1 value").fill("data")
    dialog.get_by_role("button", name="Execute").click()
    expect(state_badge(page)).to_have_text("SUCCESS", timeout=LONG)

    expect(page.locator(".chip", has_text="team:data")).to_be_visible()
    row = page.get_by_role("row", name=re.compile(r"^data"))
    expect(row).to_contain_text("kestra:///")
    href = row.get_by_role("link", name="Download").get_attribute("href")
    assert href and href.startswith("/api/v1/executions/")
    resp = page.request.get(f"{server_url}{href}")
    assert resp.ok and resp.text() == content

    page.get_by_role("tab", name="Outputs").click()
    page.get_by_role("button", name="Preview").first.click()
    expect(page.get_by_role("region", name=re.compile(r"Preview of kestra:"))).to_contain_text("falconet")
    shot(page, "execution-file-preview")


SLEEP_FLOW = """id: sleepy
namespace: company.team
tasks:
  - id: nap
    type: io.kestra.plugin.core.flow.Sleep
    duration: PT2M
"""


def test_kill_a_running_sleep_from_its_page(page: Any, server_url: str, api: Api) -> None:
    api.put_flow(SLEEP_FLOW)
    execution = api.execute("company.team", "sleepy")
    open_execution(page, server_url, execution)
    expect(state_badge(page)).to_have_text("RUNNING", timeout=LONG)
    expect(page.get_by_role("button", name="Resume")).to_be_disabled()
    expect(page.get_by_role("button", name="Change status")).to_be_disabled()
    page.get_by_role("tab", name="Gantt").click()
    expect(page.locator(".gantt-row[data-task='nap']")).to_have_attribute("data-state", "RUNNING", timeout=LONG)
    page.get_by_role("button", name="Kill").click()
    page.get_by_role("dialog").get_by_role("button", name="Kill").click()
    expect(state_badge(page)).to_have_text("KILLED", timeout=LONG)
    expect(page.get_by_role("button", name="Kill")).to_be_disabled()
    expect(page.get_by_role("button", name="Change status")).to_be_enabled()
    expect(page.locator(".gantt-row[data-task='nap']")).to_have_attribute("data-state", "KILLED")
    assert api.execution(execution["id"])["state"]["current"] == "KILLED"
    shot(page, "execution-killed")


PAUSE_FLOW = """id: approval
namespace: company.team
tasks:
  - id: wait
    type: io.kestra.plugin.core.flow.Pause
    onResume:
      - id: reason
        type: STRING
        description: Why this is approved
  - id: after
    type: io.kestra.plugin.core.log.Log
    message: "Approved because {{ outputs.wait.onResume.reason }}"
"""


def test_resume_a_paused_execution_with_an_on_resume_input(page: Any, server_url: str, api: Api) -> None:
    api.put_flow(PAUSE_FLOW)
    execution = api.execute("company.team", "approval")
    open_execution(page, server_url, execution)
    expect(state_badge(page)).to_have_text("PAUSED", timeout=LONG)
    resume = page.get_by_role("button", name="Resume")
    expect(resume).to_be_enabled()
    resume.click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_role("heading", name=re.compile("paused at wait"))).to_be_visible()
    # submitting without the required input: Kestra's message is shown at the field
    page.errors.allow(r"status of 422")
    dialog.get_by_role("button", name="Resume").click()
    expect(dialog.locator(".form-field[data-input='reason'] .field-error")).to_be_visible()
    expect(dialog.get_by_label("reason")).to_have_attribute("aria-invalid", "true")
    shot(page, "resume-form-error")
    reason = f"tests pass {uuid.uuid4().hex[:6]}"
    dialog.get_by_label("reason").fill(reason)
    dialog.get_by_role("button", name="Resume").click()
    expect(dialog).to_be_hidden()
    expect(state_badge(page)).to_have_text("SUCCESS", timeout=LONG)
    page.get_by_role("tab", name="Logs").click()
    expect(page.get_by_role("log")).to_contain_text(f"Approved because {reason}")
    page.get_by_role("tab", name="Outputs").click()
    expect(page.locator(".tree")).to_contain_text(reason)


LIVE_FLOW = """id: live_list
namespace: company.live
tasks:
  - id: pause_a_bit
    type: io.kestra.plugin.core.flow.Sleep
    duration: PT1S
  - id: done
    type: io.kestra.plugin.core.log.Log
    message: done
"""


def test_executions_list_rows_change_live(page: Any, server_url: str, api: Api) -> None:
    api.put_flow(LIVE_FLOW)
    page.goto(f"{server_url}/ui/executions?namespace=company.live")
    expect(page.locator(".live")).to_have_text("live")
    execution = api.execute("company.live", "live_list")
    row = page.locator(f"tr[data-execution-id='{execution['id']}']")
    expect(row).to_be_visible(timeout=LONG)
    expect(row.locator(".badge")).to_have_text("SUCCESS", timeout=LONG)
    shot(page, "executions-list")
    # labels filter: the correlation label Falconet gives every execution selects exactly this one
    page.get_by_label("Labels").fill(f"system.correlationId:{execution['id']}")
    page.get_by_role("button", name="Apply").click()
    expect(page).to_have_url(re.compile(r"labels=system\.correlationId"))
    expect(page.locator("tbody tr")).to_have_count(1)
    # date range: from tomorrow on, nothing
    page.get_by_label("From").fill((datetime.now() + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M"))
    expect(page).to_have_url(re.compile(r"startDate="))
    expect(page.get_by_text("No execution matches these filters.")).to_be_visible()
    page.get_by_label("From").fill((datetime.now() - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M"))
    expect(page.locator(f"tr[data-execution-id='{execution['id']}']")).to_be_visible()
    # filters: a state that does not match empties the list; the URL keeps the filters
    page.locator("summary", has_text="States").click()
    page.get_by_role("checkbox", name="FAILED").check()
    expect(page).to_have_url(re.compile(r"state=FAILED"))
    expect(page.locator(f"tr[data-execution-id='{execution['id']}']")).to_have_count(0)
    expect(page.get_by_text("No execution matches these filters.")).to_be_visible()


RECONNECT_FLOW = """id: reconnect
namespace: company.team
tasks:
  - id: first
    type: io.kestra.plugin.core.flow.Sleep
    duration: PT3S
  - id: second
    type: io.kestra.plugin.core.log.Log
    message: written after the drop
"""


def test_websocket_drop_resumes_from_a_fresh_snapshot(page: Any, server_url: str, api: Api) -> None:
    api.put_flow(RECONNECT_FLOW)
    execution = api.execute("company.team", "reconnect")
    open_execution(page, server_url, execution)
    expect(state_badge(page)).to_have_text("RUNNING", timeout=LONG)
    expect(page.locator(".live")).to_have_text("live")
    assert page.evaluate("window.__falconetDropSockets()") >= 1
    expect(page.locator(".live")).not_to_have_text("live", timeout=2000)
    expect(page.locator(".live")).to_have_text(re.compile("live|final"), timeout=LONG)
    expect(state_badge(page)).to_have_text("SUCCESS", timeout=LONG)
    page.get_by_role("tab", name="Logs").click()
    expect(page.get_by_role("log")).to_contain_text("written after the drop")


ALL_INPUTS = """id: all_inputs
namespace: company.forms
inputs:
  - id: name
    type: STRING
    displayName: Your name
    defaults: Ada
  - id: count
    type: INT
    min: 1
    max: 10
    defaults: 3
  - id: ratio
    type: FLOAT
    required: false
  - id: enabled
    type: BOOLEAN
    defaults: true
  - id: when
    type: DATETIME
    required: false
  - id: day
    type: DATE
    required: false
  - id: at
    type: TIME
    required: false
  - id: wait
    type: DURATION
    required: false
  - id: upload
    type: FILE
    required: false
  - id: payload
    type: JSON
    required: false
  - id: config
    type: YAML
    required: false
  - id: link
    type: URI
    required: false
  - id: token
    type: SECRET
    required: false
  - id: numbers
    type: ARRAY
    itemType: INT
    required: false
  - id: mode
    type: SELECT
    values: [simple, advanced]
    defaults: simple
  - id: tags
    type: MULTISELECT
    values: [red, green, blue]
    required: false
  - id: mail
    type: EMAIL
    required: false
  - id: level
    type: INT
    required: false
    dependsOn:
      inputs: [mode]
      condition: "{{ inputs.mode == 'advanced' }}"
tasks:
  - id: show
    type: io.kestra.plugin.core.log.Log
    message: "{{ inputs.name }} {{ inputs.count }}"
"""


def test_execute_form_has_a_fitting_control_per_input_type(page: Any, server_url: str, api: Api) -> None:
    api.put_flow(ALL_INPUTS)
    page.goto(f"{server_url}/ui/flows/edit/company.forms/all_inputs")
    page.get_by_role("button", name="Execute").click()
    d = page.get_by_role("dialog")
    expect(d.get_by_label("Your name (name)")).to_have_value("Ada")
    expectations = {"count": "number", "ratio": "number", "when": "datetime-local", "day": "date",
                    "at": "time", "wait": "text", "upload": "file", "link": "text", "token": "password", "mail": "email"}
    for input_id, control_type in expectations.items():
        expect(d.get_by_label(re.compile(rf"^{input_id}\b"))).to_have_attribute("type", control_type)
    expect(d.get_by_label("count")).to_have_value("3")
    enabled = d.get_by_role("group", name=re.compile("enabled"))
    expect(enabled.get_by_role("radio", name="True")).to_be_checked()
    expect(enabled.get_by_role("radio")).to_have_count(3)
    for input_id in ("payload", "config", "numbers"):
        assert d.get_by_label(input_id).evaluate("e => e.tagName") == "TEXTAREA"
    expect(d.get_by_label("mode")).to_have_value("simple")
    expect(d.get_by_role("group", name=re.compile("tags")).get_by_role("checkbox")).to_have_count(3)
    # SECRET is masked, with a toggle
    d.get_by_role("button", name="Show token").click()
    expect(d.get_by_label(re.compile(r"^token\b"))).to_have_attribute("type", "text")
    # dependsOn: `level` shows only when mode == advanced
    expect(d.locator(".form-field[data-input='level']")).to_be_hidden()
    d.get_by_label("mode").select_option("advanced")
    expect(d.locator(".form-field[data-input='level']")).to_be_visible()
    shot(page, "execute-all-inputs", full_page=True)
    # Kestra's 422 for an out-of-range INT shows at that field
    page.errors.allow(r"status of 422")
    d.get_by_label("count").fill("50")
    d.get_by_role("button", name="Execute").click()
    err = d.locator(".form-field[data-input='count'] .field-error")
    expect(err).to_be_visible()
    expect(err).to_contain_text("count")
    expect(page).to_have_url(re.compile(r"/ui/flows/edit/company\.forms/all_inputs"))
    d.get_by_label("count").fill("5")
    d.get_by_role("button", name="Execute").click()
    expect(page).to_have_url(re.compile(r"/ui/executions/company\.forms/all_inputs/"))
    expect(state_badge(page)).to_have_text("SUCCESS", timeout=LONG)


REVISED = """id: revised
namespace: company.team
tasks:
  - id: branch
    type: io.kestra.plugin.core.flow.Parallel
    tasks:
      - id: left
        type: io.kestra.plugin.core.log.Log
        message: left
      - id: right
        type: io.kestra.plugin.core.log.Log
        message: right
"""


def test_flows_list_revisions_diff_and_topology(page: Any, server_url: str, api: Api) -> None:
    api.put_flow(REVISED)
    api.put_flow(REVISED.replace("message: right", "message: right side"))
    page.goto(f"{server_url}/ui/flows")
    page.get_by_label("Search").fill("revised")
    expect(page.get_by_role("link", name="revised", exact=True)).to_be_visible()
    page.get_by_label("Search").fill("no-such-flow-anywhere")
    expect(page.get_by_text("No flow matches these filters.")).to_be_visible()
    page.get_by_label("Search").fill("revised")
    page.get_by_role("link", name="revised", exact=True).click()
    page.get_by_role("tab", name="Topology").click()
    expect(page.get_by_role("group", name=re.compile("branch"))).to_contain_text("left")
    expect(page.get_by_role("group", name=re.compile("branch"))).to_contain_text("right")
    shot(page, "flow-topology")
    page.get_by_role("tab", name="Revisions").click()
    expect(page.get_by_label("Compare")).to_have_value("1")
    expect(page.get_by_label("with")).to_have_value("2")
    diff = page.get_by_role("region", name="Diff revision 1 to revision 2")
    expect(diff.locator(".del")).to_contain_text("message: right")
    expect(diff.locator(".add")).to_contain_text("message: right side")
    shot(page, "flow-revisions")


def test_error_states_show_kestra_messages(page: Any, server_url: str) -> None:
    page.errors.allow(r"status of 404")
    page.goto(f"{server_url}/ui/flows/edit/company.nowhere/missing_flow")
    expect(page.get_by_text("Flow not found")).to_be_visible()
    page.goto(f"{server_url}/ui/executions/company.nowhere/missing_flow/doesNotExist42")
    expect(page.get_by_text("Execution not found")).to_be_visible()
    page.goto(f"{server_url}/ui/no/such/page")
    expect(page.get_by_text("Page not found")).to_be_visible()
    # Kestra >= 0.23 URLs carry the tenant: /ui/main/... opens the same page
    page.goto(f"{server_url}/ui/main/flows?q=nothing-like-this")
    expect(page).to_have_url(re.compile(r"/ui/flows\?q=nothing-like-this$"))
    expect(page.get_by_text("No flow matches these filters.")).to_be_visible()


def test_phone_width_dark_execution_page(phone_page: Any, server_url: str, api: Api) -> None:
    page = phone_page
    api.put_flow(HELLO_WORLD.replace("id: hello_world", "id: phone_flow"))
    execution = api.execute("company.team", "phone_flow")
    open_execution(page, server_url, execution)
    expect(state_badge(page)).to_have_text("SUCCESS", timeout=LONG)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(18, 20, 27)"
    shot(page, "phone-dark-overview", full_page=True)
    page.get_by_role("tab", name="Gantt").click()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    page.get_by_role("tab", name="Logs").click()
    expect(page.get_by_role("log")).to_contain_text("Hello World!")
    shot(page, "phone-dark-logs", full_page=True)


RICH = """id: rich
namespace: company.team
description: Nested flowables, outputs, metrics and a retried task.
inputs:
  - id: who
    type: STRING
    defaults: Falconet
tasks:
  - id: hello
    type: io.kestra.plugin.core.log.Log
    message: "Hello {{ inputs.who }}"
  - id: fan_out
    type: io.kestra.plugin.core.flow.Parallel
    tasks:
      - id: ret
        type: io.kestra.plugin.core.debug.Return
        format: "value for {{ inputs.who }}"
      - id: each
        type: io.kestra.plugin.core.flow.ForEach
        values: ["a", "b", "c"]
        tasks:
          - id: item
            type: io.kestra.plugin.core.log.Log
            message: "item {{ taskrun.value }}"
  - id: nap
    type: io.kestra.plugin.core.flow.Sleep
    duration: PT1S
  - id: flaky
    type: io.kestra.plugin.core.execution.Fail
    allowFailure: true
    retry:
      type: constant
      interval: PT0.2S
      maxAttempt: 3
"""


def test_gantt_outputs_and_metrics_of_a_nested_flow(page: Any, server_url: str, api: Api) -> None:
    api.put_flow(RICH)
    execution = api.execute("company.team", "rich")
    page.goto(f"{server_url}/ui/executions/company.team/rich/{execution['id']}/gantt")
    expect(state_badge(page)).to_have_text("WARNING", timeout=LONG)
    rows = page.locator(".gantt-row[data-task]")
    expect(rows).to_have_count(9)
    order = rows.evaluate_all("rs => rs.map((r) => r.dataset.task)")
    assert order == ["hello", "fan_out", "ret", "each", "item", "item", "item", "nap", "flaky"]
    indent = rows.locator(".gantt-label").evaluate_all("ls => ls.map((l) => parseInt(l.style.paddingLeft))")
    assert indent[1] < indent[2] < indent[4]  # fan_out > each > item
    expect(page.locator(".gantt-row.attempt")).to_have_count(3)  # flaky's three attempts
    page.locator(".gantt-row[data-task='flaky'] button").click()
    expect(page.get_by_role("button", name="Replay from this task run")).to_be_enabled()
    page.locator("#toasts").evaluate("t => t.replaceChildren()")
    path = shot(page, "execution-page", full_page=True)
    if os.environ.get("FALCONET_UI_DOCS_SCREENSHOT"):
        (REPO / "docs").mkdir(exist_ok=True)
        shutil.copy(path, REPO / "docs" / "execution-page.png")

    page.get_by_role("tab", name="Outputs").click()
    expect(page.locator(".tree details[data-taskrun]")).to_contain_text("value for Falconet")
    page.get_by_role("tab", name="Metrics").click()
    table = page.get_by_role("table")
    expect(table.get_by_role("row", name=re.compile(r"ret\s+length\s+counter\s+18"))).to_be_visible()
    expect(table.get_by_role("row", name=re.compile(r"ret\s+duration\s+timer"))).to_be_visible()
    page.get_by_role("tab", name="Logs").click()
    logs = page.get_by_role("log")
    expect(logs.locator(".vlog-head")).to_have_count(5)  # hello, item ×3, flaky
    page.get_by_label("Group by task").uncheck()
    expect(logs.locator(".vlog-head")).to_have_count(0)
    expect(logs).to_contain_text("item › item b")


FAILING = """id: failing
namespace: company.team
tasks:
  - id: first
    type: io.kestra.plugin.core.log.Log
    message: before the failure
  - id: boom
    type: io.kestra.plugin.core.execution.Fail
    errorMessage: deliberate failure
"""


def test_change_status_and_replay_of_a_failed_execution(page: Any, server_url: str, api: Api) -> None:
    api.put_flow(FAILING)
    execution = api.execute("company.team", "failing")
    open_execution(page, server_url, execution)
    expect(state_badge(page)).to_have_text("FAILED", timeout=LONG)
    expect(page.get_by_role("button", name="Kill")).to_be_disabled()
    expect(page.get_by_role("button", name="Resume")).to_be_disabled()
    expect(page.get_by_role("button", name="Restart")).to_be_enabled()

    page.get_by_role("button", name="Change status").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("New status").select_option("SUCCESS")
    dialog.get_by_role("button", name="Change status").click()
    expect(state_badge(page)).to_have_text("SUCCESS", timeout=LONG)
    assert api.execution(execution["id"])["state"]["current"] == "SUCCESS"

    page.get_by_role("button", name="Replay").click()
    dialog = page.get_by_role("dialog")
    boom = dialog.get_by_label("Replay from task run").locator("option", has_text="boom")
    dialog.get_by_label("Replay from task run").select_option(boom.get_attribute("value"))
    dialog.get_by_role("button", name="Replay").click()
    expect(page).not_to_have_url(re.compile(execution["id"]))
    expect(page).to_have_url(re.compile(r"/ui/executions/company\.team/failing/[\w-]+$"))
    expect(state_badge(page)).to_have_text("FAILED", timeout=LONG)
    expect(page.get_by_role("link", name=execution["id"]).first).to_be_visible()  # the original / parent execution


def test_restart_a_failed_execution(page: Any, server_url: str, api: Api) -> None:
    api.put_flow(FAILING)
    execution = api.execute("company.team", "failing")
    open_execution(page, server_url, execution)
    expect(state_badge(page)).to_have_text("FAILED", timeout=LONG)
    page.get_by_role("button", name="Restart").click()
    page.get_by_role("dialog").get_by_role("button", name="Restart").click()
    history = page.locator("section[aria-labelledby='hist-h'] li")
    expect(history.filter(has_text="RESTARTED")).to_have_count(1, timeout=LONG)
    expect(history.last).to_contain_text("FAILED", timeout=LONG)
    expect(state_badge(page)).to_have_text("FAILED")
    expect(page.locator("dl.kv")).to_contain_text("Attempt2")
