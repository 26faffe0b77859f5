"""Streaming multipart parsing edge cases, through the create route; routing of flows named like actions;
long-line previews."""
from __future__ import annotations

import pytest

from falconet.http import multipart

TEXT = """id: text
namespace: mp.test
inputs:
  - id: a
    type: STRING
    required: false
  - id: files
    type: FILE
    required: false
tasks:
  - id: r
    type: io.kestra.plugin.core.debug.Return
    format: "{{ inputs.a ?? 'none' }}"
"""


async def test_urlencoded_form_and_input_named_files(api):
    await api.flow(TEXT)
    status, doc = await api.call("POST", "/api/v1/executions/mp.test/text?wait=true", data="a=from+form",
                                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 200 and doc["inputs"]["a"] == "from form"
    # the flow has an input called "files": a part named "files" is that input, not the 0.21 form
    boundary = "b0undary"
    body = (f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="real.txt"\r\n\r\n'
            f"content\r\n--{boundary}--\r\n").encode()
    status, doc = await api.call("POST", "/api/v1/executions/mp.test/text", data=body,
                                 headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert status == 200 and doc["inputs"]["files"].startswith("kestra:///mp/test/text/executions/")


@pytest.mark.parametrize("body,content_type,fragment", [
    (b'--b\r\nContent-Disposition: form-data; name="a"\r\n\r\nunfinished', "multipart/form-data; boundary=b",
     "Truncated"),
    (b"--b\r\nX-Other: 1\r\n\r\nv\r\n--b--\r\n", "multipart/form-data; boundary=b", "Content-Disposition"),
    (b'--b\r\nContent-Disposition: form-data; filename="x"\r\n\r\nv\r\n--b--\r\n', "multipart/form-data; boundary=b",
     "no name"),
    (b"--b--\r\n", "multipart/form-data", "boundary"),
    (b"garbage", "multipart/form-data; boundary=b", "multipart"),
    (b"{}", "application/json", "multipart/form-data"),
])
async def test_malformed_bodies_are_400(api, body, content_type, fragment):
    await api.flow(TEXT)
    status, doc = await api.call("POST", "/api/v1/executions/mp.test/text", data=body,
                                 headers={"Content-Type": content_type})
    assert status == 400 and fragment in doc["message"], doc


async def test_limits(api, form, monkeypatch):
    await api.flow(TEXT)
    monkeypatch.setattr(multipart, "MAX_FIELD_SIZE", 10)
    body, headers = form({"a": "x" * 11})
    status, doc = await api.call("POST", "/api/v1/executions/mp.test/text", data=body, headers=headers)
    assert status == 413 and "The size of the text part 'a' exceeds the maximum allowed size of the text part 'a' [10]" in doc["message"]
    monkeypatch.setattr(multipart, "MAX_PARTS", 2)
    body, headers = form({"a": "1", "b": "2", "c": "3"})
    status, doc = await api.call("POST", "/api/v1/executions/mp.test/text", data=body, headers=headers)
    assert status == 400 and "Too many parts" in doc["message"]


async def test_temp_files_are_removed_after_a_failed_create(api, form, engine):
    await api.flow(TEXT.replace("type: STRING", "type: INT"))
    body, headers = form({"a": "not-an-int"}, [("files", "x.txt", b"data")])
    status, _ = await api.call("POST", "/api/v1/executions/mp.test/text", data=body, headers=headers)
    assert status == 422
    uploads = engine.config.data_dir / "tmp" / "uploads"
    assert not uploads.exists() or list(uploads.iterdir()) == []


async def test_flow_named_like_an_action(api):
    flow = TEXT.replace("id: text", "id: restart")
    await api.flow(flow)
    status, doc = await api.call("POST", "/api/v1/executions/mp.test/restart")
    assert status == 200 and doc["flowId"] == "restart" and doc["state"]["current"] == "CREATED"
    status, _ = await api.call("POST", "/api/v1/executions/mp.nothing/restart")
    assert status == 404


async def test_text_preview_is_bounded_for_huge_lines(api, form, engine, monkeypatch):
    from falconet.http.api import files

    monkeypatch.setattr(files, "PREVIEW_TEXT_LIMIT", 1000)
    await api.flow(TEXT)
    created = await api.execute("mp.test", "text")
    prefix = engine.storage.execution_prefix("mp.test", "text", created["id"])
    uri = engine.storage.put_bytes(b"y" * 50_000, prefix + "/tasks/t/one-line.txt")
    status, preview = await api.call("GET", f"/api/v1/executions/{created['id']}/file/preview?path={uri}")
    assert status == 200 and preview["type"] == "TEXT"
    assert len(preview["content"]) <= 1000 and preview["truncated"] is True


async def test_a_create_without_a_body_reads_none(api, monkeypatch):
    await api.flow(TEXT)
    reads = []
    real = multipart.body_chunks

    def counted(request):
        reads.append(request.headers.get("Content-Length"))
        return real(request)

    monkeypatch.setattr(multipart, "body_chunks", counted)
    status, doc = await api.call("POST", "/api/v1/executions/mp.test/text?wait=true",
                                 headers={"Content-Length": "0"})
    assert status == 200 and doc["state"]["current"] == "SUCCESS" and reads == []
    status, doc = await api.call("POST", "/api/v1/executions/mp.test/text", data=b"x",
                                 headers={"Content-Type": "text/plain"})
    assert status == 400 and "multipart/form-data" in doc["message"] and len(reads) == 1
