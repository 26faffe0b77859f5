"""Kestra's flow routes beyond CRUD: graph, dependencies, single-task update, task/trigger validation,
import (YAML, zip), export (zip), delete/enable/disable by ids and by query."""
from __future__ import annotations

import io
import zipfile

from .conftest import YAML, flt

PARENT = """id: parent
namespace: company.team
# a comment that enable/disable keep
tasks:
  - id: loop
    type: io.kestra.plugin.core.flow.ForEach
    values: [1, 2]
    tasks:
      - id: call
        type: io.kestra.plugin.core.flow.Subflow
        namespace: company.team
        flowId: child
  - id: last
    type: io.kestra.plugin.core.log.Log
    message: done
"""

CHILD = """id: child
namespace: company.team
tasks:
  - id: hello
    type: io.kestra.plugin.core.log.Log
    message: hi
"""

LISTENER = """id: listener
namespace: company.other
tasks:
  - id: hello
    type: io.kestra.plugin.core.log.Log
    message: hi
triggers:
  - id: after_child
    type: io.kestra.plugin.core.trigger.Flow
    conditions:
      - type: io.kestra.plugin.core.condition.ExecutionFlowCondition
        namespace: company.team
        flowId: child
"""


async def test_graph_of_a_flow_and_of_a_source(api):
    await api.flow(PARENT)
    await api.flow(CHILD)
    status, body = await api.call("GET", "/api/v1/flows/company.team/parent/graph")
    assert status == 200
    uids = [n["uid"] for n in body["nodes"]]
    assert "root.cluster_loop.call" in uids and "root.last" in uids
    cluster = body["clusters"][0]
    assert cluster["cluster"]["uid"] == "root.cluster_loop" and "root.cluster_loop.call" in cluster["nodes"]
    assert {"source": "root.cluster_loop.end", "target": "root.last",
            "relation": {"relationType": "SEQUENTIAL"}} in body["edges"]
    status, posted = await api.call("POST", "/api/v1/flows/graph", data=PARENT, headers=YAML)
    assert status == 200 and posted == body
    status, _ = await api.call("POST", "/api/v1/flows/graph", data="id: x\nnamespace: y\n", headers=YAML)
    assert status == 422
    status, _ = await api.call("GET", "/api/v1/flows/company.team/nope/graph")
    assert status == 404


async def test_dependencies(api):
    for source in (PARENT, CHILD, LISTENER):
        await api.flow(source)
    status, body = await api.call("GET", "/api/v1/flows/company.team/child/dependencies")
    assert status == 200
    assert {n["id"] for n in body["nodes"]} == {"parent", "child", "listener"}
    assert {(e["source"], e["target"], e["relation"]) for e in body["edges"]} == {
        ("main_company.team_parent", "main_company.team_child", "FLOW_TASK"),
        ("main_company.team_child", "main_company.other_listener", "FLOW_TRIGGER"),
    }
    status, body = await api.call("GET", "/api/v1/flows/company.team/child/dependencies?destinationOnly=true")
    assert {e["target"] for e in body["edges"]} == {"main_company.other_listener"}
    status, body = await api.call("GET", "/api/v1/flows/company.team/parent/dependencies")
    assert {n["id"] for n in body["nodes"]} == {"parent", "child"}
    status, body = await api.call("GET", "/api/v1/flows/company.team/parent/dependencies?expandAll=true")
    assert {n["id"] for n in body["nodes"]} == {"parent", "child", "listener"}


async def test_update_one_task(api):
    await api.flow(CHILD)
    task = {"id": "hello", "type": "io.kestra.plugin.core.log.Log", "message": "changed"}
    status, body = await api.call("PATCH", "/api/v1/flows/company.team/child/hello", json=task)
    assert status == 200 and body["revision"] == 2 and body["tasks"][0]["message"] == "changed"
    status, _ = await api.call("PATCH", "/api/v1/flows/company.team/child/other", json={**task, "id": "other"})
    assert status == 404
    status, body = await api.call("PATCH", "/api/v1/flows/company.team/child/hello", json={**task, "id": "x"})
    assert status == 422 and "Invalid taskId" in body["message"]


async def test_validate_task_and_trigger(api):
    ok = {"id": "t", "type": "io.kestra.plugin.core.log.Log", "message": "hi"}
    status, body = await api.call("POST", "/api/v1/flows/validate/task", json=ok)
    assert status == 200 and body == {}
    status, body = await api.call("POST", "/api/v1/flows/validate/task", json={"id": "t", "type": "io.nope.Task"})
    assert status == 200 and "io.nope.Task" in body["constraints"]
    status, body = await api.call("POST", "/api/v1/flows/validate/task?section=TRIGGERS",
                                  data="id: s\ntype: io.kestra.plugin.core.trigger.Schedule\ncron: '0 9 * * *'\n",
                                  headers=YAML)
    assert status == 200 and body == {}
    status, body = await api.call("POST", "/api/v1/flows/validate/trigger",
                                  json={"id": "s", "type": "io.kestra.plugin.core.trigger.Schedule"})
    assert status == 200 and "cron" in body["constraints"]


async def test_import_yaml_and_zip_then_export(api, form):
    data, headers = form(files=[("fileUpload", "flows.yaml", (PARENT + "---\n" + CHILD + "---\nid: bad\n").encode())])
    status, body = await api.call("POST", "/api/v1/flows/import", data=data, headers=headers)
    assert status == 200 and body == ["2"]
    assert await api.engine.get_flow("company.team", "child") is not None
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("company.other.listener.yml", LISTENER)
        archive.writestr("broken.yml", "id: [")
        archive.writestr("README.txt", "not a flow")
    data, headers = form(files=[("fileUpload", "flows.zip", buffer.getvalue())])
    status, body = await api.call("POST", "/api/v1/flows/import", data=data, headers=headers)
    assert status == 200 and body == ["broken.yml"]
    assert await api.engine.get_flow("company.other", "listener") is not None
    data, headers = form(files=[("fileUpload", "flows.exe", b"MZ")])
    status, _ = await api.call("POST", "/api/v1/flows/import", data=data, headers=headers)
    assert status == 422
    # the import never hits "replace the namespace 'import'"
    assert await api.engine.get_flow("company.team", "parent") is not None

    response = await api.client.post("/api/v1/flows/export/by-ids", json=[{"namespace": "company.team", "id": "child"}])
    assert response.status_code == 200
    with zipfile.ZipFile(io.BytesIO(await response.get_data())) as archive:
        assert archive.namelist() == ["company.team.child.yml"]
        assert archive.read("company.team.child.yml").decode() == CHILD
    response = await api.client.get("/api/v1/flows/export/by-query?" + flt("namespace", "PREFIX", "company.team"))
    with zipfile.ZipFile(io.BytesIO(await response.get_data())) as archive:
        assert sorted(archive.namelist()) == ["company.team.child.yml", "company.team.parent.yml"]
    status, _ = await api.call("POST", "/api/v1/flows/export/by-ids", json=[{"namespace": "x", "id": "y"}])
    assert status == 404


async def test_enable_disable_and_delete_by_ids_and_query(api, engine):
    for source in (PARENT, CHILD, LISTENER):
        await api.flow(source)
    status, body = await api.call("POST", "/api/v1/flows/disable/by-ids", json=[{"namespace": "company.team", "id": "parent"}])
    assert status == 200 and body == {"count": 1}
    parent = await engine.get_flow("company.team", "parent")
    assert parent.disabled and "# a comment that enable/disable keep" in parent.source
    status, body = await api.call("POST", "/api/v1/flows/disable/by-query?" + flt("namespace", "EQUALS", "company.team"))
    assert body == {"count": 1}                                  # parent already disabled
    assert (await engine.get_flow("company.team", "child")).disabled
    assert not (await engine.get_flow("company.other", "listener")).disabled
    status, body = await api.call("POST", "/api/v1/flows/enable/by-query?namespace=company")
    assert body == {"count": 2}
    status, body = await api.call("POST", "/api/v1/flows/enable/by-ids", json=[{"namespace": "company.team", "id": "child"}])
    assert body == {"count": 0}
    status, body = await api.call("DELETE", "/api/v1/flows/delete/by-query?" + flt("flowId", "EQUALS", "nothing"))
    assert status == 200 and body == {"count": 0}
    status, body = await api.call("DELETE", "/api/v1/flows/delete/by-query?flowid=child")
    assert status == 400
    status, body = await api.call("DELETE", "/api/v1/flows/delete/by-query?" + flt("flowId", "IN", "child,listener"))
    assert body == {"count": 2}
    assert await engine.get_flow("company.team", "child") is None
    assert await engine.get_flow("company.team", "parent") is not None
