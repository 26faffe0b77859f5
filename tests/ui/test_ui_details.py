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
    expect(editor).to_have_value(re.compile("message: hi"))
    # unchanged: links leave at once
    page.get_by_role("link", name="Executions", exact=True).click()
    expect(page).to_have_url(re.compile(r"/ui/executions$"))
    page.go_back()
    expect(editor).to_have_value(re.compile("message: hi"))

    editor.fill(flow_yaml(fid).replace("message: hi", "message: my precious edit"))
    page.get_by_role("link", name="Executions", exact=True).click()
    dialog = page.get_by_role("dialog", name="Unsaved changes")
    expect(dialog).to_contain_text("unsaved changes")
    shot(page, "editor-leave-guard")
    dialog.get_by_role("button", name="Cancel").click()
    expect(page).to_have_url(re.compile(rf"/ui/flows/edit/company\.team/{fid}$"))
    expect(editor).to_have_value(re.compile("my precious edit"))

    # the browser's Back/Forward buttons are guarded too (Forward leads to the executions page visited before)
    page.go_forward()
    dialog = page.get_by_role("dialog", name="Unsaved changes")
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name="Cancel").click()
    expect(page).to_have_url(re.compile(rf"/ui/flows/edit/company\.team/{fid}$"))
    expect(editor).to_have_value(re.compile("my precious edit"))

    # switching tabs of the flow keeps the edit without asking
    page.get_by_role("tab", name="Revisions").click()
    expect(page.get_by_role("dialog")).to_have_count(0)
    page.get_by_role("tab", name="Editor").click()
    expect(editor).to_have_value(re.compile("my precious edit"))

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
