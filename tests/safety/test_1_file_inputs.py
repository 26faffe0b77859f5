"""Issue 9.1 — a FILE input never names a server path, through a real socket.

A text value for a FILE input (create, validate, resume, Subflow inputs) is a URI checked by
``falconet.runtime.flow.fileinputs``: never a local path, never moved, its existence never revealed.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from falconet.runtime.store.base import ExecutionQuery

FLOW = """id: files
namespace: safety.files
inputs:
  - id: f
    type: FILE
tasks:
  - id: show
    type: io.kestra.plugin.core.debug.Return
    format: "{{ read(inputs.f) }}"
"""
PAUSED = """id: paused
namespace: safety.files
tasks:
  - id: wait
    type: io.kestra.plugin.core.flow.Pause
    onResume:
      - id: data
        type: FILE
  - id: show
    type: io.kestra.plugin.core.debug.Return
    format: "{{ outputs.wait.onResume.data }}"
"""
CHILD = """id: child
namespace: safety.elsewhere
inputs:
  - id: f
    type: FILE
tasks:
  - id: show
    type: io.kestra.plugin.core.debug.Return
    format: "{{ inputs.f }}"
"""
PARENT = """id: parent
namespace: safety.files
inputs:
  - id: where
    type: STRING
  - id: upload
    type: FILE
    required: false
tasks:
  - id: sub
    type: io.kestra.plugin.core.flow.Subflow
    namespace: safety.elsewhere
    flowId: child
    wait: true
    transmitFailed: true
    inputs:
      f: "{{ inputs.upload ?? inputs.where }}"
"""
SECRET = b"do-not-leak: 0123456789"


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    """A file the server process can read, outside its data folder (like /var/lib/falconet/secret.key)."""
    path = tmp_path / "outside" / "secret.key"
    path.parent.mkdir()
    path.write_bytes(SECRET)
    return path


@pytest.fixture
async def http(start_server: Any, engine: Any, tmp_path: Path) -> Any:
    engine.config.local_files_allowed_paths = [str(tmp_path / "allowed")]
    (tmp_path / "allowed").mkdir()
    for source in (FLOW, PAUSED, CHILD, PARENT):
        await engine.create_flow(source)
    url = await start_server()
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        yield client


async def executions_of(engine: Any, flow_id: str) -> int:
    _, total = await engine.store.search_executions(ExecutionQuery(flow_id=flow_id, page=1, size=10))
    return total


def assert_refused(response: httpx.Response, value: str) -> str:
    assert response.status_code == 422, response.text
    message = response.json()["message"]
    assert "Invalid input for `" in message and value in message
    assert SECRET.decode() not in response.text
    return message


@pytest.mark.parametrize("value", ["{secret}", "{secret_name}", "../outside/secret.key", "file://{secret}",
                                   "nsfile:///../../outside/secret.key"])
async def test_a_text_field_never_names_a_server_file(http: Any, engine: Any, secret: Path, value: str) -> None:
    """``-F f=/var/lib/falconet/secret.key``: refused; the file stays where it is (today it is moved into
    storage and its content returned)."""
    value = value.format(secret=secret, secret_name=secret.name)
    response = await http.post("/api/v1/executions/safety.files/files?wait=true", files={"f": (None, value)})
    assert_refused(response, value)
    assert secret.read_bytes() == SECRET
    assert await executions_of(engine, "files") == 0


async def test_validate_does_not_reveal_whether_a_path_exists(http: Any, secret: Path) -> None:
    answers = []
    for path in (str(secret), str(secret.with_name("missing.key"))):
        response = await http.post("/api/v1/executions/safety.files/files/validate", files={"f": (None, path)})
        assert response.status_code == 200
        row = response.json()["inputs"][0]
        answers.append(row["errors"][0]["message"].replace(path, "<path>"))
    assert answers[0] == answers[1] and "Expected an uploaded file" in answers[0]
    assert secret.read_bytes() == SECRET


async def test_validate_reports_an_upload_without_a_server_path(http: Any, engine: Any) -> None:
    response = await http.post("/api/v1/executions/safety.files/files/validate", files={"f": ("a.csv", b"1,2")})
    row = response.json()["inputs"][0]
    assert row["errors"] == [] and row["value"].startswith("kestra:///safety/files/files/executions/")
    assert row["value"].endswith("/inputs/f/a.csv")
    assert str(engine.config.data_dir) not in response.text


async def test_kestra_uris_must_exist_in_the_namespace(http: Any, engine: Any) -> None:
    first = await http.post("/api/v1/executions/safety.files/files?wait=true", files={"f": ("a.txt", b"hello")})
    assert first.status_code == 200 and first.json()["state"]["current"] == "SUCCESS"
    uri = first.json()["inputs"]["f"]
    again = await http.post("/api/v1/executions/safety.files/files?wait=true", files={"f": (None, uri)})
    assert again.status_code == 200 and again.json()["inputs"]["f"] == uri
    other = engine.storage.put_bytes(b"theirs", "/safety/other/flow/executions/e1/inputs/f/x.txt")
    assert "does not belong to the namespace" in assert_refused(
        await http.post("/api/v1/executions/safety.files/files", files={"f": (None, other)}), other)
    missing = uri.replace("a.txt", "b.txt")
    assert "not found" in assert_refused(
        await http.post("/api/v1/executions/safety.files/files", files={"f": (None, missing)}), missing)


async def test_namespace_files_and_allowed_local_files(http: Any, engine: Any, tmp_path: Path,
                                                       secret: Path) -> None:
    nsfile = engine.storage.put_bytes(b"from the namespace", "/safety/files/_files/data/in.txt")
    done = await http.post("/api/v1/executions/safety.files/files?wait=true",
                           files={"f": (None, "nsfile:///data/in.txt")})
    assert done.status_code == 200 and done.json()["inputs"]["f"] == nsfile
    local = tmp_path / "allowed" / "local.txt"
    local.write_bytes(b"from an allowed folder")
    done = await http.post("/api/v1/executions/safety.files/files?wait=true", files={"f": (None, f"file://{local}")})
    assert done.status_code == 200, done.text
    assert done.json()["taskRunList"][0]["outputs"]["value"] == "from an allowed folder"
    assert local.read_bytes() == b"from an allowed folder"     # copied, never moved
    (tmp_path / "allowed" / "link.key").symlink_to(secret)
    for value in (f"file://{tmp_path}/allowed/../outside/secret.key", f"file://{tmp_path}/allowed/link.key"):
        assert_refused(await http.post("/api/v1/executions/safety.files/files", files={"f": (None, value)}), value)
    assert secret.read_bytes() == SECRET


async def test_resume_inputs_follow_the_same_rule(http: Any, engine: Any, secret: Path) -> None:
    created = (await http.post("/api/v1/executions/safety.files/paused")).json()
    with trio.fail_after(10):
        while (await engine.get_execution(created["id"]))["state"]["current"] != "PAUSED":
            await trio.sleep(0.01)
    refused = await http.post(f"/api/v1/executions/{created['id']}/resume", files={"data": (None, str(secret))})
    assert_refused(refused, str(secret))
    assert secret.read_bytes() == SECRET
    resumed = await http.post(f"/api/v1/executions/{created['id']}/resume", files={"data": ("r.txt", b"resumed")})
    assert resumed.status_code == 204
    final = await engine.wait_for_end(created["id"])
    assert final["state"]["current"] == "SUCCESS"
    assert final["taskRunList"][-1]["outputs"]["value"].endswith("/r.txt")


async def test_subflow_inputs_follow_the_same_rule(http: Any, engine: Any, secret: Path) -> None:
    refused = await http.post("/api/v1/executions/safety.files/parent?wait=true", files={"where": (None, str(secret))})
    assert refused.status_code == 200 and refused.json()["state"]["current"] == "FAILED"
    assert secret.read_bytes() == SECRET
    assert await executions_of(engine, "child") == 0
    # the parent's own upload (its namespace) reaches a child in another namespace
    passed = await http.post("/api/v1/executions/safety.files/parent?wait=true",
                             files={"where": (None, "unused"), "upload": ("u.txt", b"up")})
    assert passed.json()["state"]["current"] == "SUCCESS", passed.text
    assert await executions_of(engine, "child") == 1


def test_allowed_paths_come_from_kestras_configuration_key(tmp_path: Path) -> None:
    from falconet.runtime.config import ConfigError, load_config

    path = tmp_path / "falconet.yaml"
    path.write_text("kestra:\n  local-files:\n    allowed-paths: [/srv/shared, /data]\n")
    assert load_config(path, environ={}).local_files_allowed_paths == ["/srv/shared", "/data"]
    assert load_config(None, environ={"KESTRA_LOCAL_FILES_ALLOWED_PATHS": "[/x]"}).local_files_allowed_paths == ["/x"]
    assert load_config(None, environ={}).local_files_allowed_paths == []
    path.write_text("kestra:\n  local-files:\n    allowed-paths: [relative/dir]\n")
    with pytest.raises(ConfigError, match="absolute"):
        load_config(path, environ={})


async def test_resume_validation_follows_the_same_rule(http: Any, engine: Any, secret: Path) -> None:
    created = (await http.post("/api/v1/executions/safety.files/paused")).json()
    with trio.fail_after(10):
        while (await engine.get_execution(created["id"]))["state"]["current"] != "PAUSED":
            await trio.sleep(0.01)
    messages = []
    for path in (str(secret), str(secret.with_name("missing.key"))):
        response = await http.post(f"/api/v1/executions/{created['id']}/resume/validate",
                                   files={"data": (None, path)})
        assert response.status_code == 200, response.text
        messages.append(response.json()["inputs"][0]["errors"][0]["message"].replace(path, "<path>"))
    assert messages[0] == messages[1] and "Expected an uploaded file" in messages[0]
    nsfile = engine.storage.put_bytes(b"ns", "/safety/files/_files/r.txt")
    ok = await http.post(f"/api/v1/executions/{created['id']}/resume/validate",
                         files={"data": (None, "nsfile:///r.txt")})
    assert ok.json()["inputs"][0] == {**ok.json()["inputs"][0], "errors": [], "value": nsfile}
    upload = await http.post(f"/api/v1/executions/{created['id']}/resume/validate", files={"data": ("u.txt", b"u")})
    assert "/" not in upload.json()["inputs"][0]["value"] and str(engine.config.data_dir) not in upload.text
    assert secret.read_bytes() == SECRET
