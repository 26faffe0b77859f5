"""``/namespaces``: search, get, autocomplete, dependencies, and the namespace-file API (storage safety,
revisions, zip import/export, tasks reading the files) — the file tests on the local folder and on S3."""
from __future__ import annotations

import io
import zipfile
from typing import Any

import pytest

from falconet.runtime.config import Config
from falconet.runtime.kernel.startup import open_engine

NS = "company.team"
FILES = f"/api/v1/namespaces/{NS}/files"


@pytest.fixture
async def engine(request: Any, tmp_path: Any) -> Any:
    """tests/http/conftest.py's engine; on S3 storage (tests/s3.py) for a test parametrized with ``engine="s3"``."""
    config = None
    if getattr(request, "param", "local") == "s3":
        config = Config(storage_type="s3", storage_s3=request.getfixturevalue("s3_settings"))
    async with open_engine(data_dir=tmp_path, store="memory", config=config) as eng:
        yield eng


#: run a test on both storages
BOTH_STORAGES = pytest.mark.parametrize("engine", ["local", "s3"], indirect=True)

PARENT = """id: parent
namespace: company.team
tasks:
  - id: call
    type: io.kestra.plugin.core.flow.Subflow
    namespace: company.team
    flowId: child
"""
CHILD = """id: child
namespace: company.team
tasks:
  - id: hi
    type: io.kestra.plugin.core.log.Log
    message: hi
"""
LISTENER = """id: listener
namespace: company.other
tasks:
  - id: hi
    type: io.kestra.plugin.core.log.Log
    message: hi
triggers:
  - id: on_child
    type: io.kestra.plugin.core.trigger.Flow
    conditions:
      - type: io.kestra.plugin.core.condition.ExecutionFlow
        namespace: company.team
        flowId: child
"""


async def upload(api: Any, form: Any, path: str, data: bytes, filename: str = "file",
                 method: str = "POST") -> tuple[int, Any]:
    body, headers = form(files=[("fileContent", filename, data)])
    return await api.call(method, f"{FILES}?path={path}", data=body, headers=headers)


#### Namespaces #############################################################################################

async def test_search_lists_flow_namespaces_their_parents_and_system(api: Any) -> None:
    for source in (PARENT, CHILD, LISTENER):
        await api.flow(source)
    status, body = await api.call("GET", "/api/v1/namespaces/search?size=100")
    assert status == 200
    assert [r["id"] for r in body["results"]] == ["company", "company.other", "company.team", "system"]
    assert body["total"] == 4 and body["results"][0] == {"id": "company", "disabled": True, "deleted": False}
    status, body = await api.call("GET", "/api/v1/namespaces/search?q=TEAM")
    assert [r["id"] for r in body["results"]] == ["company.team"]
    status, body = await api.call("GET", "/api/v1/main/namespaces/search?filters[q][EQUALS]=other")
    assert status == 200 and [r["id"] for r in body["results"]] == ["company.other"]
    status, body = await api.call("GET", "/api/v1/namespaces/search?size=2&page=2&sort=id:desc")
    assert [r["id"] for r in body["results"]] == ["company.other", "company"] and body["total"] == 4


@pytest.mark.parametrize("query", ["namespace=x", "filters[flowId][EQUALS]=x", "filters[q][REGEX]=x"])
async def test_search_refuses_what_it_does_not_understand(api: Any, query: str) -> None:
    status, body = await api.call("GET", f"/api/v1/namespaces/search?{query}")
    assert status == 400 and query.split("=")[0] in body["message"]


async def test_get_and_autocomplete(api: Any) -> None:
    await api.flow(CHILD)
    status, body = await api.call("GET", f"/api/v1/namespaces/{NS}")
    assert status == 200 and body == {"id": NS, "deleted": False}
    status, body = await api.call("POST", "/api/v1/namespaces/autocomplete", json={"q": "team"})
    assert status == 200 and body == ["company.team"]
    status, body = await api.call("POST", "/api/v1/namespaces/autocomplete", json={"ids": ["system"]})
    assert body[0] == "system" and "company" in body
    status, _ = await api.call("POST", "/api/v1/namespaces/autocomplete", json={"q": 3})
    assert status == 400


async def test_namespace_dependencies(api: Any) -> None:
    for source in (PARENT, CHILD, LISTENER):
        await api.flow(source)
    status, graph = await api.call("GET", f"/api/v1/namespaces/{NS}/dependencies")
    assert status == 200
    uids = {n["uid"] for n in graph["nodes"]}
    assert uids == {"main_company.team_parent", "main_company.team_child", "main_company.other_listener"}
    assert sorted((e["source"], e["target"], e["relation"]) for e in graph["edges"]) == [
        ("main_company.team_child", "main_company.other_listener", "FLOW_TRIGGER"),
        ("main_company.team_parent", "main_company.team_child", "FLOW_TASK"),
    ]


#### Namespace files ########################################################################################

@BOTH_STORAGES
async def test_file_lifecycle_directory_stats_search_move_delete(api: Any, form: Any) -> None:
    status, listing = await api.call("GET", f"{FILES}/directory")
    assert status == 200 and listing == []
    assert (await api.call("POST", f"{FILES}/directory?path=/scripts"))[0] == 200
    assert (await upload(api, form, "/scripts/hello.py", b"print('hi')\n"))[0] == 200
    status, listing = await api.call("GET", f"{FILES}/directory")
    assert [(e["fileName"], e["type"]) for e in listing] == [("scripts", "Directory")]
    status, listing = await api.call("GET", f"{FILES}/directory?path=/scripts")
    assert [(e["fileName"], e["type"], e["size"]) for e in listing] == [("hello.py", "File", 12)]
    response = await api.client.get(f"{FILES}?path=/scripts/hello.py")
    assert response.status_code == 200 and await response.get_data() == b"print('hi')\n"
    status, stats = await api.call("GET", f"{FILES}/stats?path=/scripts/hello.py")
    assert status == 200 and stats["type"] == "File" and stats["size"] == 12 and stats["lastModifiedTime"] > 0
    status, root = await api.call("GET", f"{FILES}/stats")
    assert status == 200 and root["type"] == "Directory"
    status, found = await api.call("GET", f"{FILES}/search?q=hello")
    assert found == ["/scripts/hello.py"]
    assert (await api.call("PUT", f"{FILES}?from=/scripts&to=/lib"))[0] == 200
    status, found = await api.call("GET", f"{FILES}/search?q=.py")
    assert found == ["/lib/hello.py"]
    assert (await api.call("GET", f"{FILES}?path=/scripts/hello.py"))[0] == 404
    assert (await api.call("DELETE", f"{FILES}?path=/lib/hello.py"))[0] == 200
    assert (await api.call("GET", f"{FILES}?path=/lib/hello.py"))[0] == 404
    assert (await api.call("DELETE", f"{FILES}?path=/lib/hello.py"))[0] == 404
    assert (await api.call("DELETE", f"{FILES}?path=/lib"))[0] == 200
    status, listing = await api.call("GET", f"{FILES}/directory")
    assert listing == []


@BOTH_STORAGES
async def test_revisions_keep_every_version(api: Any, form: Any) -> None:
    for content in (b"v1", b"v2", b"v3"):
        assert (await upload(api, form, "/conf.txt", content))[0] == 200
    status, revisions = await api.call("GET", f"{FILES}/revisions?path=/conf.txt")
    assert status == 200 and revisions == [{"revision": 1}, {"revision": 2}, {"revision": 3}]
    for n, expected in ((1, b"v1"), (2, b"v2"), (3, b"v3")):
        response = await api.client.get(f"{FILES}?path=/conf.txt&revision={n}")
        assert await response.get_data() == expected
    response = await api.client.get(f"{FILES}?path=/conf.txt")
    assert await response.get_data() == b"v3"
    assert (await api.call("GET", f"{FILES}?path=/conf.txt&revision=4"))[0] == 404
    # PUT with a path and a body replaces the file (a new revision)
    assert (await upload(api, form, "/conf.txt", b"v4", method="PUT"))[0] == 200
    status, revisions = await api.call("GET", f"{FILES}/revisions?path=/conf.txt")
    assert revisions[-1] == {"revision": 4}
    # revisions follow a move
    assert (await api.call("PUT", f"{FILES}?from=/conf.txt&to=/etc/conf.txt"))[0] == 200
    response = await api.client.get(f"{FILES}?path=/etc/conf.txt&revision=2")
    assert await response.get_data() == b"v2"


@pytest.mark.parametrize("path", [
    "/../../secret", "../x", "/a/../../b", "/a/./b", "/a//b", "/a\\b", "/a%00b".replace("%00", "\x00"),
    "/" + "x" * 300, "/a\nb", "/_flows/x.yml",
])
async def test_hostile_paths_are_refused_and_nothing_escapes(api: Any, form: Any, path: str, tmp_path: Any) -> None:
    from urllib.parse import quote

    q = quote(path, safe="")
    data_dir = api.engine.storage.base_dir.parent
    before = sorted(p for p in data_dir.rglob("*") if p.is_file())
    for method, url in (("GET", f"{FILES}?path={q}"), ("GET", f"{FILES}/stats?path={q}"),
                        ("GET", f"{FILES}/directory?path={q}"), ("POST", f"{FILES}/directory?path={q}"),
                        ("DELETE", f"{FILES}?path={q}"), ("PUT", f"{FILES}?from=/a&to={q}")):
        status, body = await api.call(method, url)
        assert 400 <= status < 500 and status != 404, (method, url, status, body)
    status, _ = await upload(api, form, q, b"data")
    assert 400 <= status < 500
    assert sorted(p for p in data_dir.rglob("*") if p.is_file()) == before


async def test_hostile_namespace_is_refused(api: Any) -> None:
    status, _ = await api.call("GET", "/api/v1/namespaces/..%2F..%2Fetc/files/directory")
    assert 400 <= status < 500


@BOTH_STORAGES
async def test_zip_upload_and_export_round_trip_with_flows(api: Any, form: Any) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("a.txt", "A")
        archive.writestr("dir/b.txt", "B")
        archive.writestr("_flows/imported.yml", CHILD.replace("id: child", "id: imported")
                         .replace("namespace: company.team", "namespace: elsewhere"))
    assert (await upload(api, form, "/", buffer.getvalue(), filename="bundle.zip"))[0] == 200
    status, found = await api.call("GET", f"{FILES}/search?q=txt")
    assert found == ["/a.txt", "/dir/b.txt"]
    status, flow = await api.call("GET", f"/api/v1/flows/{NS}/imported")
    assert status == 200 and flow["namespace"] == NS
    response = await api.client.get(f"{FILES}/export")
    assert response.status_code == 200
    assert response.headers["Content-Disposition"] == f'attachment; filename="{NS}_files.zip"'
    with zipfile.ZipFile(io.BytesIO(await response.get_data())) as archive:
        assert sorted(archive.namelist()) == ["_flows/imported.yml", "a.txt", "dir/b.txt"]
        assert archive.read("dir/b.txt") == b"B"


@BOTH_STORAGES
async def test_zip_slip_entries_are_refused(api: Any, form: Any) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("ok.txt", "fine")
        archive.writestr("../../evil.txt", "evil")
    status, _ = await upload(api, form, "/", buffer.getvalue(), filename="x.zip")
    assert status == 422
    status, found = await api.call("GET", f"{FILES}/search?q=txt")
    assert found == []   # checked before anything is written
    status, _ = await upload(api, form, "/", b"not a zip", filename="x.zip")
    assert status == 422


@BOTH_STORAGES
async def test_tasks_read_namespace_files(api: Any, form: Any) -> None:
    await upload(api, form, "/data/greeting.txt", b"hello from a namespace file")
    await upload(api, form, "/run.sh", b"cat data/greeting.txt\n")
    await api.flow("""id: reader
namespace: company.team
tasks:
  - id: read
    type: io.kestra.plugin.core.debug.Return
    format: "{{ read('data/greeting.txt') }}|{{ read('nsfile:///data/greeting.txt') }}"
  - id: script
    type: io.kestra.plugin.scripts.shell.Commands
    namespaceFiles:
      enabled: true
    commands:
      - sh run.sh
  - id: wd
    type: io.kestra.plugin.core.flow.WorkingDirectory
    namespaceFiles:
      enabled: true
      include: ["data/**"]
    tasks:
      - id: in_wd
        type: io.kestra.plugin.scripts.shell.Commands
        commands:
          - test ! -e run.sh && cat data/greeting.txt
""")
    execution = await api.execute(NS, "reader", "?wait=true")
    execution = await api.wait(execution["id"])
    assert execution["state"]["current"] == "SUCCESS", execution
    outputs = {tr["taskId"]: tr.get("outputs") for tr in execution["taskRunList"]}
    assert outputs["read"]["value"] == "hello from a namespace file|hello from a namespace file"
    status, logs = await api.call("GET", f"/api/v1/logs/{execution['id']}")
    said = [line for line in logs if line["message"] == "hello from a namespace file"]
    assert {line["taskId"] for line in said} == {"script", "in_wd"}


@BOTH_STORAGES
async def test_read_of_another_namespace_and_hostile_nsfile_uris(api: Any, form: Any) -> None:
    body, headers = form(files=[("fileContent", "f", b"shared value")])
    assert (await api.call("POST", "/api/v1/namespaces/company.shared/files?path=/v.txt", data=body,
                           headers=headers))[0] == 200
    await api.flow("""id: cross
namespace: company.team
tasks:
  - id: other
    type: io.kestra.plugin.core.debug.Return
    format: "{{ read('nsfile://company.shared/v.txt') }}"
  - id: escape
    type: io.kestra.plugin.core.debug.Return
    format: "{{ read('nsfile:///../../../secret.key') }}"
""")
    execution = await api.wait((await api.execute(NS, "cross"))["id"])
    runs = {tr["taskId"]: tr for tr in execution["taskRunList"]}
    assert runs["other"]["outputs"]["value"] == "shared value"
    assert runs["escape"]["state"]["current"] == "FAILED" and execution["state"]["current"] == "FAILED"
