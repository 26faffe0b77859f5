"""The execution routes Kestra's UI and 2.0 SDK use beyond the basics: bulk actions by ids and by query,
the flow for the Execute dialog, executable namespaces, latest executions, graph, eval, resume
validation, CSV export, breakpoints (not served), the 2.0 pause/kill bodies."""
from __future__ import annotations

import csv
import io
import json

import trio

from .conftest import SLEEP, flt

HELLO = """id: hello
namespace: company.team
inputs:
  - id: name
    type: STRING
    defaults: world
labels:
  team: data
tasks:
  - id: greet
    type: io.kestra.plugin.core.debug.Return
    format: "hi {{ inputs.name }}"
  - id: branch
    type: io.kestra.plugin.core.flow.If
    condition: "{{ true }}"
    then:
      - id: inner
        type: io.kestra.plugin.core.log.Log
        message: in
triggers:
  - id: daily
    type: io.kestra.plugin.core.trigger.Schedule
    cron: "0 9 * * *"
"""

QUEUED = """id: queued
namespace: company.team
concurrency:
  limit: 1
tasks:
  - id: sleep
    type: io.kestra.plugin.core.flow.Sleep
    duration: PT1H
"""


#### Bulk by ids and by query ###############################################################################

async def test_pause_and_resume_by_ids_and_by_query(api, engine):
    await api.flow(SLEEP)
    await api.flow(HELLO)
    runs = [await api.execute("company.team", "sleep") for _ in range(2)]
    for r in runs:
        await api.wait_state(r["id"], "RUNNING")
    done = (await api.runs("company.team", "hello"))[0]
    status, body = await api.call("POST", "/api/v1/executions/pause/by-ids", json=[runs[0]["id"], done["id"]])
    assert status == 400 and body["invalids"][0]["invalidValue"] == done["id"]
    assert (await engine.get_execution(runs[0]["id"]))["state"]["current"] == "RUNNING"   # nothing done
    status, body = await api.call("POST", "/api/v1/executions/pause/by-ids", json=[runs[0]["id"]])
    assert status == 200 and body == {"count": 1}
    await api.wait_state(runs[0]["id"], "PAUSED")
    status, body = await api.call("POST", "/api/v1/executions/pause/by-query?" + flt("flowId", "EQUALS", "sleep"))
    assert status == 200 and body == {"count": 1}                                       # the other one
    await api.wait_state(runs[1]["id"], "PAUSED")
    status, body = await api.call("POST", "/api/v1/executions/resume/by-ids", json=[runs[0]["id"]])
    assert status == 200 and body == {"count": 1}
    await api.wait_state(runs[0]["id"], "RUNNING")
    status, body = await api.call("POST", "/api/v1/main/executions/resume/by-query?" + flt("state", "EQUALS", "PAUSED"))
    assert status == 200 and body == {"count": 1}
    await api.wait_state(runs[1]["id"], "RUNNING")
    status, body = await api.call("DELETE", "/api/v1/executions/kill/by-query?" + flt("flowId", "EQUALS", "sleep"))
    assert body == {"count": 2}
    for r in runs:
        await api.wait(r["id"])


async def test_replay_labels_change_status_by_ids_and_query(api, engine):
    await api.flow(HELLO)
    a, b = await api.runs("company.team", "hello", 2)
    status, body = await api.call("POST", "/api/v1/executions/replay/by-ids", json=[a["id"]])
    assert status == 200 and body == {"count": 1}
    status, body = await api.call("POST", "/api/v1/executions/replay/by-query?latestRevision=true&"
                                  + flt("q", "EQUALS", b["id"]))
    assert status == 200 and body == {"count": 1}
    status, body = await api.call("GET", "/api/v1/executions/search?size=50&" + flt("flowId", "EQUALS", "hello"))
    replays = [d for d in body["results"] if d.get("parentId") in (a["id"], b["id"])]
    assert len(replays) == 2
    for r in replays:
        await api.wait(r["id"])

    status, body = await api.call("POST", "/api/v1/executions/labels/by-ids",
                                  json={"executionsId": [a["id"]], "executionLabels": [{"key": "k", "value": "v1"}]})
    assert status == 200 and body == {"count": 1}
    assert {"key": "k", "value": "v1"} in (await engine.get_execution(a["id"]))["labels"]
    status, body = await api.call("POST", "/api/v1/executions/labels/by-query?" + flt("q", "EQUALS", b["id"]),
                                  json=[{"key": "k", "value": "v2"}])
    assert status == 200 and body == {"count": 1}
    assert {"key": "k", "value": "v2"} in (await engine.get_execution(b["id"]))["labels"]
    assert {"key": "k", "value": "v2"} not in (await engine.get_execution(a["id"]))["labels"]

    status, body = await api.call("POST", "/api/v1/executions/change-status/by-ids?newStatus=FAILED", json=[a["id"]])
    assert status == 200 and body == {"count": 1}
    assert (await engine.get_execution(a["id"]))["state"]["current"] == "FAILED"
    status, body = await api.call("POST", "/api/v1/executions/change-status/by-query?newStatus=WARNING&"
                                  + flt("state", "EQUALS", "FAILED"))
    assert status == 200 and body == {"count": 1}
    assert (await engine.get_execution(a["id"]))["state"]["current"] == "WARNING"
    status, body = await api.call("POST", "/api/v1/executions/change-status/by-ids", json=[a["id"]])
    assert status == 400 and "newStatus" in body["message"]


async def test_unqueue_and_force_run_by_ids_and_query(api, engine):
    await api.flow(QUEUED)
    first = await api.execute("company.team", "queued")
    await api.wait_state(first["id"], "RUNNING")
    second = await api.execute("company.team", "queued")
    third = await api.execute("company.team", "queued")
    await api.wait_state(second["id"], "QUEUED")
    await api.wait_state(third["id"], "QUEUED")
    status, body = await api.call("POST", "/api/v1/executions/unqueue/by-ids?state=RUNNING", json=[second["id"]])
    assert status == 200 and body == {"count": 1}
    await api.wait_state(second["id"], "RUNNING")
    status, body = await api.call("POST", "/api/v1/executions/force-run/by-query?" + flt("state", "EQUALS", "QUEUED"))
    assert status == 200 and body == {"count": 1}
    await api.wait_state(third["id"], "RUNNING")
    status, body = await api.call("POST", "/api/v1/executions/unqueue/by-query?" + flt("flowId", "EQUALS", "none"))
    assert status == 200 and body == {"count": 0}
    status, body = await api.call("POST", "/api/v1/executions/force-run/by-ids", json=[])
    assert status == 200 and body == {"count": 0}
    await api.call("DELETE", "/api/v1/executions/kill/by-query?" + flt("flowId", "EQUALS", "queued"))
    for e in (first, second, third):
        await api.wait(e["id"])


async def test_bulk_by_query_refuses_unknown_parameters(api, engine):
    await api.flow(HELLO)
    done = (await api.runs("company.team", "hello"))[0]
    status, body = await api.call("POST", "/api/v1/executions/change-status/by-query?newStatus=FAILED&flowid=hello")
    assert status == 400 and "flowid" in body["message"]
    status, body = await api.call("POST", "/api/v1/executions/pause/by-ids?foo=1", json=[done["id"]])
    assert status == 400 and "foo" in body["message"]
    assert (await engine.get_execution(done["id"]))["state"]["current"] == "SUCCESS"


#### Views ##################################################################################################

async def test_flow_for_execution_namespaces_and_flows(api):
    await api.flow(HELLO)
    await api.flow(SLEEP.replace("company.team", "other"))
    status, body = await api.call("GET", "/api/v1/main/executions/flows/company.team/hello")
    assert status == 200 and body["id"] == "hello" and body["inputs"][0]["id"] == "name"
    assert "source" not in body and body["tasks"][1] == {"id": "branch", "type": "io.kestra.plugin.core.flow.If",
                                                          "tasks": [{"id": "inner", "type": "io.kestra.plugin.core.log.Log"}]}
    assert body["triggers"] == [{"id": "daily", "type": "io.kestra.plugin.core.trigger.Schedule"}]
    status, _ = await api.call("GET", "/api/v1/executions/flows/company.team/nope")
    assert status == 404
    status, body = await api.call("GET", "/api/v1/executions/namespaces")
    assert status == 200 and body == ["company.team", "other"]
    status, body = await api.call("GET", "/api/v1/executions/namespaces/other/flows")
    assert status == 200 and [f["id"] for f in body] == ["sleep"]


async def test_latest_executions(api):
    await api.flow(HELLO)
    _, last = await api.runs("company.team", "hello", 2)
    status, body = await api.call("POST", "/api/v1/executions/latest",
                                  json=[{"namespace": "company.team", "id": "hello"},
                                        {"namespace": "company.team", "id": "never"}])
    assert status == 200 and len(body) == 1
    assert body[0]["id"] == last["id"] and body[0]["status"] == "SUCCESS" and body[0]["flowId"] == "hello"
    status, _ = await api.call("POST", "/api/v1/executions/latest", json={"namespace": "x"})
    assert status == 422


async def test_execution_graph(api):
    await api.flow(HELLO)
    done = (await api.runs("company.team", "hello"))[0]
    status, body = await api.call("GET", f"/api/v1/executions/{done['id']}/graph")
    assert status == 200
    by_uid = {n["uid"]: n for n in body["nodes"]}
    assert by_uid["root.greet"]["taskRun"]["state"]["current"] == "SUCCESS"
    assert by_uid["root.cluster_branch.inner"]["type"].endswith("GraphTask")
    assert {"source": "root.root", "target": "root.greet", "relation": {"relationType": "SEQUENTIAL"}} in body["edges"]
    assert [c["cluster"]["uid"] for c in body["clusters"]] == ["root.Triggers", "root.cluster_branch"]
    status, _ = await api.call("GET", "/api/v1/executions/nope/graph")
    assert status == 404


async def test_the_engine_runtime_state_is_stored_but_never_shown(api):
    await api.flow(HELLO)
    done = (await api.runs("company.team", "hello"))[0]
    stored = await api.engine.store.get_execution(done["id"])
    assert any("_extra" in tr for tr in stored["taskRunList"])  # e.g. the ``dispatched`` flag of a task run
    for path in (f"/api/v1/executions/{done['id']}", f"/api/v1/executions/{done['id']}/graph",
                 "/api/v1/executions/search"):
        status, body = await api.call("GET", path)
        assert status == 200 and "_extra" not in json.dumps(body), path


async def test_eval_expression_on_a_task_run(api, monkeypatch):
    monkeypatch.setenv("SECRET_TOKEN", "c2VjcmV0")
    await api.flow(HELLO)
    done = (await api.runs("company.team", "hello"))[0]
    greet = next(tr for tr in done["taskRunList"] if tr["taskId"] == "greet")
    text = {"Content-Type": "text/plain"}
    status, body = await api.call("POST", f"/api/v1/executions/{done['id']}/eval/{greet['id']}",
                                  data="{{ outputs.greet.value }} / {{ task.id }} / {{ inputs.name }}", headers=text)
    assert status == 200 and body == {"result": "hi world / greet / world"}
    status, body = await api.call("POST", f"/api/v1/executions/{done['id']}/eval/{greet['id']}",
                                  data="{{ nope.nothing }}", headers=text)
    assert status == 200 and "result" not in body and body["error"]
    status, body = await api.call("POST", f"/api/v1/executions/{done['id']}/actions/eval",
                                  data="{{ secret('TOKEN') }}", headers=text)
    assert status == 200 and "secret" in body["error"] and "result" not in body
    status, _ = await api.call("POST", f"/api/v1/executions/{done['id']}/eval/nope", data="x", headers=text)
    assert status == 404


async def test_resume_validate(api, form):
    created = await api.paused_execution("INT")
    data, headers = form({"answer": "abc"})
    status, body = await api.call("POST", f"/api/v1/executions/{created['id']}/resume/validate", data=data,
                                  headers=headers)
    assert status == 200 and body["inputs"][0]["input"]["id"] == "answer" and body["inputs"][0]["errors"]
    data, headers = form({"answer": "42"})
    status, body = await api.call("POST", f"/api/v1/executions/{created['id']}/resume/validate", data=data,
                                  headers=headers)
    assert status == 200 and body["inputs"][0]["value"] == 42 and body["inputs"][0]["errors"] == []
    doc = await api.engine.get_execution(created["id"])
    assert doc["state"]["current"] == "PAUSED"                                            # nothing resumed
    data, headers = form({"answer": "7"})
    status, _ = await api.call("POST", f"/api/v1/executions/{created['id']}/resume", data=data, headers=headers)
    assert status == 204
    final = await api.wait(created["id"])
    status, _ = await api.call("POST", f"/api/v1/executions/{final['id']}/resume/validate")
    assert status == 409


async def test_resume_from_breakpoint_is_a_clear_4xx(api):
    await api.flow(HELLO)
    done = (await api.runs("company.team", "hello"))[0]
    status, body = await api.call("POST", f"/api/v1/executions/{done['id']}/actions/resume-from-breakpoint")
    assert status == 422 and "breakpoints" in body["message"]


async def test_csv_export_by_query(api):
    await api.flow(HELLO)
    await api.flow(SLEEP.replace("id: sleep", "id: other").replace("PT1H", "PT0S"))
    a = (await api.runs("company.team", "hello"))[0]
    await api.runs("company.team", "other")
    response = await api.client.get("/api/v1/executions/export/by-query/csv?" + flt("flowId", "EQUALS", "hello"))
    assert response.status_code == 200 and "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO((await response.get_data()).decode())))
    assert rows[0][:3] == ["id", "namespace", "flowId"] and [r[0] for r in rows[1:]] == [a["id"]]
    assert rows[1][4] == "SUCCESS" and "team:data" in rows[1][8]
    status, _ = await api.call("GET", "/api/v1/executions/export/by-query/csv?unknown=1")
    assert status == 400


async def test_2_0_pause_and_kill_answer_the_execution(api):
    await api.flow(SLEEP)
    created = await api.execute("company.team", "sleep")
    await api.wait_state(created["id"], "RUNNING")
    status, body = await api.call("POST", f"/api/v1/main/executions/{created['id']}/actions/pause")
    assert status == 200 and body["id"] == created["id"]
    status, body = await api.call("DELETE", f"/api/v1/main/executions/{created['id']}/actions/kill")
    assert status == 202 and body["id"] == created["id"]
    assert (await api.wait(created["id"]))["state"]["current"] == "KILLED"


TYPED = """id: typed
namespace: company.team
inputs:
  - id: name
    type: STRING
  - id: n
    type: INT
    defaults: 1
tasks:
  - id: echo
    type: io.kestra.plugin.core.debug.Return
    format: "{{ inputs.name }}-{{ inputs.n }}"
"""


async def test_replay_with_inputs(api, form):
    await api.flow(TYPED)
    data, headers = form({"name": "first", "n": "2"})
    original = await api.wait((await api.execute("company.team", "typed", data=data, headers=headers))["id"])
    data, headers = form({"name": "second"})
    status, replayed = await api.call("POST", f"/api/v1/main/executions/{original['id']}/actions/replay-with-inputs",
                                      data=data, headers=headers)
    assert status == 200 and replayed["id"] != original["id"] and replayed["parentId"] == original["id"]
    assert replayed["inputs"] == {"name": "second", "n": 1}
    final = await api.wait(replayed["id"])
    assert final["taskRunList"][0]["outputs"]["value"] == "second-1"
    data, headers = form({"name": "x", "n": "abc"})
    status, body = await api.call("POST", f"/api/v1/executions/{original['id']}/replay-with-inputs",
                                  data=data, headers=headers)
    assert status == 422 and "n" in body["message"]
    assert (await api.engine.get_execution(original["id"]))["inputs"] == {"name": "first", "n": 2}


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
  - id: wait
    type: io.kestra.plugin.core.flow.Pause
"""


def sse_events(raw: bytes) -> list[tuple[str, dict]]:
    out = []
    for block in raw.decode().split("\n\n"):
        if block.strip():
            fields = dict(line.split(": ", 1) for line in block.splitlines())
            out.append((fields["id"], json.loads(fields["data"])))
    return out


async def test_follow_dependencies(api, engine):
    await api.flow(CHILD)
    await api.flow(PARENT)
    parent = await api.execute("company.team", "parent")
    with trio.fail_after(10):
        while True:
            status, page = await api.call("GET", f"/api/v1/executions/search?triggerExecutionId={parent['id']}")
            if page["total"] and page["results"][0]["state"]["current"] == "PAUSED":
                child = page["results"][0]
                break
            await trio.sleep(0.01)
    result = {}

    async def follow():
        response = await api.client.get(f"/api/v1/executions/{parent['id']}/follow-dependencies")
        result["events"] = sse_events(await response.get_data())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(follow)
        await trio.testing.wait_all_tasks_blocked()
        status, _ = await api.call("POST", f"/api/v1/executions/{child['id']}/resume")
        assert status == 204
    events = result["events"]
    assert events[-1][0] == "end" and events[-1][1]["executionId"] == parent["id"]
    progress = [(e["executionId"], e["state"]) for kind, e in events if kind == "progress"]
    assert (child["id"], "PAUSED") in progress and (child["id"], "SUCCESS") in progress
    assert (parent["id"], "SUCCESS") in progress
    assert all(e["tenantId"] == "main" and e["flowId"] in ("parent", "child") for _, e in events)
    # from the child: its parent is upstream, unless destinationOnly
    response = await api.client.get(f"/api/v1/executions/{child['id']}/follow-dependencies")
    assert {e["executionId"] for _, e in sse_events(await response.get_data())} == {parent["id"], child["id"]}
    response = await api.client.get(f"/api/v1/executions/{child['id']}/follow-dependencies?destinationOnly=true")
    assert {e["executionId"] for _, e in sse_events(await response.get_data())} == {child["id"]}
