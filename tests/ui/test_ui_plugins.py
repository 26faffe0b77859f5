"""Plugin documentation in the UI (Chromium): /ui/plugins with its search, a type's page with its property
table, the flow editor's panel following the cursor, and the pure helpers of ``plugindocs.js``."""

from __future__ import annotations

import re
from typing import Any

import pytest

expect = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)").expect

from .conftest import shot

FLOW = """id: docs_panel
namespace: company.team
tasks:
  - id: hello
    type: io.kestra.plugin.core.log.Log
    message: |
      type: not.a.Type
    retry:
      type: constant
      interval: PT1S
  - id: par
    type: io.kestra.plugin.core.flow.Parallel
    tasks:
      - id: nested
        message: no type yet
      - id: sleep
        type: "io.kestra.plugin.core.flow.Sleep"
        duration: PT1S
inputs:
  - id: greeting
    type: STRING
triggers:
  - id: daily
    type: io.kestra.plugin.core.trigger.Schedule
    cron: "@daily"
"""


def test_type_at_line(bare_page: Any, static_url: str) -> None:
    bare_page.errors.allow(r"favicon\.ico")
    bare_page.goto(f"{static_url}/ui/assets/favicon.svg")
    found = bare_page.evaluate(f"""async (src) => {{
        const m = await import('{static_url}/ui/assets/js/plugindocs.js');
        return Array.from({{ length: src.split('\\n').length }}, (_, i) => m.typeAtLine(src, i + 1));
    }}""", FLOW)
    log, par, sleep, sched = ("io.kestra.plugin.core.log.Log", "io.kestra.plugin.core.flow.Parallel",
                              "io.kestra.plugin.core.flow.Sleep", "io.kestra.plugin.core.trigger.Schedule")
    assert found == [None, None, None,          # id, namespace, tasks:
                     log, log, log, log,        # hello, its type, message: |, the block line naming a type
                     log, log, log,             # retry: and its fields (their `type: constant` is no class)
                     par, par, par,             # par, its type, tasks:
                     par, par,                  # a nested task without a type: the enclosing Parallel
                     sleep, sleep, sleep,       # quoted type
                     None, None, None,          # inputs: an input's STRING is no plugin type
                     None, sched, sched, sched, sched]  # triggers:, the Schedule; a blank line counts with the line above


def test_plugins_list_search_and_type_page(page: Any, server_url: str) -> None:
    page.goto(f"{server_url}/ui/flows")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Plugins").click()
    expect(page).to_have_url(re.compile(r"/ui/plugins$"))
    expect(page.get_by_role("heading", name="Plugins", exact=True)).to_be_visible()
    expect(page.get_by_role("heading", name="io.kestra.plugin.core")).to_be_visible()
    expect(page.get_by_role("link", name="flow.Parallel")).to_be_visible()

    page.get_by_label("Search").fill("Log")
    expect(page).to_have_url(re.compile(r"/ui/plugins\?q=Log$"))
    expect(page.get_by_role("link", name="flow.Parallel")).to_have_count(0)
    page.get_by_label("Search").fill("nothing-is-called-this")
    expect(page.get_by_text("No plugin type matches this search.")).to_be_visible()
    page.get_by_label("Search").fill("Log")
    link = page.get_by_role("link", name="log.Log", exact=True)
    expect(link).to_be_visible()
    link.focus()
    page.keyboard.press("Enter")

    expect(page).to_have_url(re.compile(r"/ui/plugins/io\.kestra\.plugin\.core\.log\.Log$"))
    expect(page.get_by_role("heading", name="io.kestra.plugin.core.log.Log", level=1)).to_be_visible()
    expect(page.get_by_text("Log a message in the task logs.")).to_be_visible()
    expect(page.locator(".plugin-aliases")).to_have_text("tasks Aliases: io.kestra.core.tasks.log.Log")
    table = page.get_by_role("table", name="Properties of io.kestra.plugin.core.log.Log")
    message = table.locator("tr[data-prop=message]")
    expect(message.get_by_role("rowheader")).to_have_text("message")
    expect(message.locator("td").nth(1)).to_have_text("required")
    expect(message.locator("td").nth(3)).to_have_text("yes")  # dynamic
    expect(message).to_contain_text("A message or a list of messages")
    level = table.locator("tr[data-prop=level]")
    expect(level.locator("td").nth(0)).to_have_text("enum")
    expect(level.locator("td").nth(2)).to_have_text("INFO")
    expect(table.locator("tr[data-prop='retry']")).to_have_count(1)  # common task properties too
    shot(page, "plugins-log-doc", full_page=True)


def test_alias_and_unknown_type_pages(page: Any, server_url: str) -> None:
    page.goto(f"{server_url}/ui/plugins/io.kestra.core.tasks.log.Log")
    expect(page).to_have_url(re.compile(r"/ui/plugins/io\.kestra\.plugin\.core\.log\.Log$"))
    expect(page.get_by_role("heading", name="io.kestra.plugin.core.log.Log", level=1)).to_be_visible()
    page.errors.allow(r"404")  # the browser logs the failed request of the unknown type
    page.goto(f"{server_url}/ui/plugins/com.example.Nope")
    expect(page.get_by_text("There is no plugin type com.example.Nope.")).to_be_visible()


def test_editor_panel_follows_the_cursor(page: Any, server_url: str) -> None:
    page.goto(f"{server_url}/ui/flows/new")
    editor = page.get_by_label("Flow YAML source")
    editor.fill(FLOW)
    panel = page.get_by_role("complementary", name="Task documentation")
    toggle = page.get_by_role("button", name="Documentation")
    expect(toggle).to_have_attribute("aria-pressed", "true")

    def caret_on(line: int) -> None:
        editor.focus()  # real key presses: the panel follows keyboard moves
        page.keyboard.press("Control+Home")
        for _ in range(line - 1):
            page.keyboard.press("ArrowDown")
        page.keyboard.press("End")

    caret_on(6)  # message: | of the Log task
    expect(panel.get_by_role("heading", name="io.kestra.plugin.core.log.Log", level=2)).to_be_visible()
    expect(panel.locator("dt[data-prop=message]")).to_contain_text("required")
    shot(page, "plugins-editor-panel")
    caret_on(17)  # inside the Sleep task
    expect(panel.get_by_role("heading", name="io.kestra.plugin.core.flow.Sleep", level=2)).to_be_visible()
    expect(panel.locator("dt[data-prop=duration]")).to_be_visible()
    caret_on(2)  # namespace: no task there
    expect(panel).to_contain_text("Put the cursor on a task")

    toggle.click()
    expect(panel).to_be_hidden()
    expect(toggle).to_have_attribute("aria-pressed", "false")
    toggle.press("Enter")  # keyboard: shown again, and the choice is remembered
    expect(panel).to_be_visible()
    caret_on(24)
    expect(panel.get_by_role("heading", name="io.kestra.plugin.core.trigger.Schedule", level=2)).to_be_visible()
    panel.get_by_role("link", name="Open the full documentation").click()
    # the new flow is not saved: leaving the editor asks first
    page.get_by_role("dialog", name="Unsaved changes").get_by_role("button", name="Leave without saving").click()
    expect(page).to_have_url(re.compile(r"/ui/plugins/io\.kestra\.plugin\.core\.trigger\.Schedule$"))
    expect(page.get_by_role("table").locator("tr[data-prop=cron]")).to_contain_text("required")


def test_type_page_shows_examples_outputs_and_metrics(page: Any, server_url: str) -> None:
    page.goto(f"{server_url}/ui/plugins/io.kestra.plugin.core.debug.Return")
    examples = page.get_by_role("region", name="Examples")
    expect(examples.locator("figcaption").first).to_contain_text("Return a rendered value")
    expect(examples.locator("pre").first).to_have_text(re.compile(
        r'^id: "return"\ntype: "io\.kestra\.plugin\.core\.debug\.Return"\nformat: "\{\{ task\.id \}\}'))
    outputs = page.get_by_role("region", name="Outputs")
    expect(outputs.locator("tr[data-output=value]")).to_contain_text("The rendered format.")
    expect(outputs.locator("tr[data-output=value] td").nth(1)).to_have_text("yes")
    metrics = page.get_by_role("region", name="Metrics")
    expect(metrics.locator("tr[data-metric=length]")).to_contain_text("counter")
    expect(metrics.locator("tr[data-metric=duration]")).to_contain_text("timer")
    shot(page, "plugins-return-doc", full_page=True)
    # a full-flow example is shown as written
    page.goto(f"{server_url}/ui/plugins/io.kestra.plugin.core.flow.ForEach")
    expect(page.get_by_role("region", name="Examples").locator("pre").first).to_have_text(re.compile(r"^id: example\nnamespace: company\.team"))
