"""Namespace files in Chromium: the Files tab of a namespace — tree, new file and folder, editor and save,
upload, rename (move), delete."""

from __future__ import annotations

import re
import urllib.parse
import uuid
from typing import Any

import pytest

expect = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)").expect

from .conftest import Api, shot


def _read(api: Api, ns: str, path: str) -> bytes:
    return api.call("GET", f"/namespaces/{ns}/files?{urllib.parse.urlencode({'path': path})}")


def test_namespace_files_tree_editor_upload_rename_delete(page: Any, server_url: str, api: Api, tmp_path: Any) -> None:
    ns = f"company.files{uuid.uuid4().hex[:6]}"
    page.goto(f"{server_url}/ui/namespaces/edit/{ns}/files")
    expect(page.get_by_role("tab", name="Files")).to_have_attribute("aria-selected", "true")
    expect(page.get_by_text("No file yet.")).to_be_visible()

    # a folder, then a file in it, edited and saved
    page.get_by_role("button", name="New folder").click()
    page.get_by_role("dialog").get_by_label(re.compile("Path in")).fill("scripts")
    page.get_by_role("dialog").get_by_role("button", name="OK").click()
    folder = page.locator("details[data-path='/scripts']")
    expect(folder).to_be_visible()
    folder.locator("summary").click()
    page.get_by_role("button", name="New file").click()
    page.get_by_role("dialog").get_by_label("Path in /scripts").fill("hello.py")
    page.get_by_role("dialog").get_by_role("button", name="OK").click()
    editor = page.get_by_label("Content of /scripts/hello.py")
    editor.fill("print('hello')\n")
    expect(page.get_by_text("Unsaved changes")).to_be_visible()
    page.get_by_role("button", name="Save file").click()
    expect(page.get_by_text("Saved /scripts/hello.py")).to_be_visible()
    assert _read(api, ns, "/scripts/hello.py") in (b"print('hello')\n", "print('hello')\n")

    # upload at the root
    page.locator(".nsf-root").click()
    data = tmp_path / "data.csv"
    data.write_text("a,b\n1,2\n")
    page.locator("#nsf-upload").set_input_files(str(data))
    expect(page.locator(".nsf-file[data-path='/data.csv']")).to_be_visible()
    page.locator(".nsf-file[data-path='/data.csv']").click()
    expect(page.get_by_label("Content of /data.csv")).to_contain_text("a,b")
    shot(page, "namespace-files")

    # rename (move) and delete
    page.get_by_role("button", name="Rename /data.csv", exact=True).click()
    page.get_by_role("dialog").get_by_label("New path").fill("/scripts/data.csv")
    page.get_by_role("dialog").get_by_role("button", name="OK").click()
    expect(page.locator(".nsf-file[data-path='/data.csv']")).to_have_count(0)
    page.locator("details[data-path='/scripts'] summary").click()
    expect(page.locator(".nsf-file[data-path='/scripts/data.csv']")).to_be_visible()
    page.get_by_role("button", name="Delete /scripts", exact=True).click()
    page.get_by_role("dialog").get_by_role("button", name="Delete").click()
    expect(page.get_by_text("No file yet.")).to_be_visible()
