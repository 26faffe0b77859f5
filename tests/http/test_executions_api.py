"""/api/v1/executions: create (inputs, files both ways, labels, wait, revision, scheduleDate), read,
search (and its 4xx), lifecycle actions and their 4xx, bulk actions, 2.0 aliases, tenant prefix."""
from __future__ import annotations

import pytest
import trio

from ..instruments import spawned_tasks
from .conftest import SLEEP

TWO = """id: two
namespace: company.team
tasks:
  - id: out
    type: io.kestra.plugin.core.output.OutputValues
    values:
      v: "{{ inputs.name }}"
  - id: log
    type: io.kestra.plugin.core.log.Log
    message: "got {{ outputs.out.values.v }}"
inputs:
  - id: name
    type: STRING
    defaults: world
"""

TYPED = """id: typed
namespace: company.team
inputs:
  - id: s
    type: STRING
  - id: n
    type: INT
  - id: b
    type: BOOLEAN
  - id: f
    type: FILE
tasks:
  - id: read
    type: io.kestra.plugin.core.debug.Return
    format: "{{ inputs.s }}-{{ inputs.n }}-{{ inputs.b }}-{{ read(inputs.f) }}"
"""

FAIL = """id: fail
namespace: company.team
tasks:
  - id: ok
    type: io.kestra.plugin.core.debug.Return
    format: ok
  - id: boom
    type: io.kestra.plugin.core.execution.Fail
"""


def ret_output(doc, task_id):
    return next(tr for tr in doc["taskRunList"] if tr["taskId"] == task_id)["outputs"]["value"]


#### Create ################################################################################################

@pytest.mark.parametrize("prefix", ["/api/v1", "/api/v1/main"])
async def test_create_empty_body_and_wait(api, prefix):
    await api.flow(TWO)
    status, created = await api.call("POST", f"{prefix}/executions/company.team/two")
    assert status == 200 and created["state"]["current"] == "CREATED"
    assert created["url"] == f"http://localhost/ui/executions/company.team/two/{created['id']}"
    status, done = await api.call("POST", f"{prefix}/executions/company.team/two?wait=true")
    assert status == 200 and done["state"]["current"] == "SUCCESS"
    assert [tr["taskId"] for tr in done["taskRunList"]] == ["out", "log"]
    assert done["url"].endswith(f"/ui/executions/company.team/two/{done['id']}")
    status, got = await api.call("GET", f"{prefix}/executions/{done['id']}")
    assert status == 200 and got["id"] == done["id"] and "url" not in got


async def test_create_url_uses_configured_base(engine, client, api):
    engine.config.url = "https://kestra.example.com/"
    await api.flow(TWO)
    created = await api.execute("company.team", "two")
    assert created["url"] == f"https://kestra.example.com/ui/executions/company.team/two/{created['id']}"


async def test_create_typed_inputs_file_by_part_name(api, form):
    await api.flow(TYPED)
    body, headers = form({"s": "hi", "n": "3", "b": "True"}, [("f", "data.txt", b"filedata")])
    created = await api.execute("company.team", "typed", "?wait=true", data=body, headers=headers)
    assert created["inputs"]["n"] == 3 and created["inputs"]["b"] is True
    assert created["inputs"]["f"].startswith("kestra:///company/team/typed/executions/")
    assert created["state"]["current"] == "SUCCESS"
    assert ret_output(created, "read") == "hi-3-true-filedata"


async def test_create_file_legacy_files_part(api, form):
    await api.flow(TYPED)
    body, headers = form({"s": "x", "n": "1", "b": "false"}, [("files", "f", b"legacy")])
    done = await api.execute("company.team", "typed", "?wait=true", data=body, headers=headers)
    assert ret_output(done, "read") == "x-1-false-legacy"


async def test_create_reads_the_flow_from_the_store_once(api, engine, monkeypatch):
    """The view's flow lookup (404, FILE input ids) and the engine's share one store read: the engine gets
    the revision the view read, which its flow cache holds. A store this server alone writes (not shared) is
    not read at all: the server keeps each flow's latest revision."""
    await api.flow(TWO)
    await api.execute("company.team", "two")
    reads = []
    real = engine.store.get_flow

    async def counted(*args, **kwargs):
        reads.append(args)
        return await real(*args, **kwargs)

    monkeypatch.setattr(engine.store, "get_flow", counted)
    created = await api.execute("company.team", "two")
    assert created["flowRevision"] == 1 and len(reads) == (1 if engine.store.shared else 0), reads


async def test_an_execution_does_not_keep_its_request_context(api):
    """The actor of an execution created by a request starts with no context variables: a trio task copies
    its spawner's, and quart's request context would stay alive (request, headers, form) until the
    execution ends."""
    await api.flow(TWO)
    with spawned_tasks() as spawned:
        await api.wait((await api.execute("company.team", "two"))["id"])
    actors = [t for t in spawned.tasks if t.name.endswith("Engine._run_actor")]
    assert actors, [t.name for t in spawned.tasks]
    assert all(not list(t.context) for t in actors), [[v.name for v in t.context] for t in actors]


async def test_create_labels_revision_schedule(api):
    await api.flow(TWO)
    await api.call("PUT", "/api/v1/flows/company.team/two", data=TWO.replace("got ", "now "),
                   headers={"Content-Type": "application/x-yaml"})
    created = await api.execute("company.team", "two", "?labels=a:b&labels=url:http://x:1&revision=1")
    assert created["flowRevision"] == 1
    labels = [(lb["key"], lb["value"]) for lb in created["labels"]]
    assert ("a", "b") in labels and ("url", "http://x:1") in labels
    created = await api.execute("company.team", "two", "?scheduleDate=2099-01-01T00:00:00Z")
    assert created["state"]["current"] == "CREATED" and created["scheduleDate"].startswith("2099-01-01T00:00:00")


@pytest.mark.parametrize("query,status", [
    ("?labels=system.label:x", 422),
    ("?labels=:value", 422),
    ("?labels=key:", 422),
    ("?labels=novalue", 422),
    ("?wait=maybe", 422),
    ("?revision=0", 422),
    ("?revision=7", 404),
    ("?scheduleDate=tomorrow", 422),
])
async def test_create_bad_parameters(api, query, status):
    await api.flow(TWO)
    got, body = await api.call("POST", f"/api/v1/executions/company.team/two{query}")
    assert got == status, body
    assert body["message"] and body["_links"]["self"]["href"].startswith("/api/v1/executions/company.team/two")


async def test_create_errors(api, form):
    status, body = await api.call("POST", "/api/v1/executions/foo/bar")
    assert status == 404 and body["message"] == "Not Found: Requested Flow is not found."
    await api.flow(TYPED)
    body_, headers = form({"s": "x", "n": "notanint", "b": "true"}, [("f", "a.txt", b"x")])
    status, body = await api.call("POST", "/api/v1/executions/company.team/typed", data=body_, headers=headers)
    assert status == 422 and "Invalid entity" in body["message"] and "`n`" in body["message"]
    status, body = await api.call("POST", "/api/v1/executions/company.team/typed", data=b"junk",
                                  headers={"Content-Type": "multipart/form-data; boundary=zzz"})
    assert status == 400 and body["message"].startswith("Bad Request")
    status, body = await api.call("POST", "/api/v1/executions/company.team/typed", data=b"{}",
                                  headers={"Content-Type": "application/json"})
    assert status == 400
    await api.flow(TWO.replace("id: two", "id: off") + "disabled: true\n")
    status, body = await api.call("POST", "/api/v1/executions/company.team/off")
    assert status == 409


async def test_validate_inputs(api, form):
    await api.flow(TYPED)
    body, headers = form({"s": "x", "n": "zz"})
    status, result = await api.call("POST", "/api/v1/executions/company.team/typed/validate", data=body, headers=headers)
    assert status == 200 and result["id"] == "typed" and result["namespace"] == "company.team"
    by_id = {i["input"]["id"]: i for i in result["inputs"]}
    assert not by_id["s"].get("errors") and by_id["n"]["errors"]
    status, _ = await api.call("POST", "/api/v1/executions/company.team/none/validate")
    assert status == 404


#### Read and search #######################################################################################

async def test_get_and_search(api):
    await api.flow(TWO)
    await api.flow(FAIL)
    ok = await api.wait((await api.execute("company.team", "two", "?labels=k:v"))["id"])
    ko = await api.wait((await api.execute("company.team", "fail"))["id"])

    status, body = await api.call("GET", "/api/v1/executions/exec_id_not_found")
    assert status == 404 and body["message"].startswith("Not Found")

    status, page = await api.call("GET", "/api/v1/executions/search?namespace=company")
    assert status == 200 and page["total"] == 2
    status, page = await api.call("GET", "/api/v1/executions/search?flowId=fail")
    assert [e["id"] for e in page["results"]] == [ko["id"]]
    status, page = await api.call("GET", "/api/v1/executions/search?state=SUCCESS")
    assert [e["id"] for e in page["results"]] == [ok["id"]]
    status, page = await api.call("GET", "/api/v1/executions/search?labels=k:v")
    assert [e["id"] for e in page["results"]] == [ok["id"]]
    status, page = await api.call("GET", "/api/v1/executions/search?timeRange=PT1H&size=1")
    assert page["total"] == 2 and len(page["results"]) == 1
    status, page = await api.call("GET", "/api/v1/executions/search?startDate=2000-01-01T00:00:00Z&endDate=2000-01-02T00:00")
    assert page["total"] == 0
    status, page = await api.call("GET", "/api/v1/executions?namespace=company.team&flowId=two")
    assert status == 200 and [e["id"] for e in page["results"]] == [ok["id"]]
    status, flow = await api.call("GET", f"/api/v1/executions/{ok['id']}/flow")
    assert status == 200 and flow["id"] == "two" and flow["revision"] == 1


@pytest.mark.parametrize("query,status,text", [
    ("startDate=2024-01-07T18:43:11.248%2B01:00&timeRange=PT12H", 422, "are mutually exclusive"),
    ("timeRange=P1Y", 422, "timeRange"),
    ("timeRange=PT0S", 422, "positive"),
    ("page=1&size=-1", 422, "size"),
    ("page=0", 422, "page"),
    ("page=x", 422, "page"),
    ("startDate=yesterday", 422, "startDate"),
    ("startDate=2024-02-01T00:00:00Z&endDate=2024-01-01T00:00:00Z", 422, "before"),
    ("state=NOPE", 422, "state"),
    ("childFilter=SOME", 422, "childFilter"),
])
async def test_search_parameter_errors(api, query, status, text):
    got, body = await api.call("GET", f"/api/v1/executions/search?{query}")
    assert got == status and text in body["message"], body


async def test_list_by_flow_requires_parameters(api):
    status, body = await api.call("GET", "/api/v1/executions?namespace=company.team")
    assert status == 400 and "flowId" in body["message"]


#### Lifecycle #############################################################################################

async def test_kill_running(api):
    await api.flow(SLEEP)
    created = await api.execute("company.team", "sleep")
    await api.wait_state(created["id"], "RUNNING")
    status, body = await api.call("DELETE", f"/api/v1/executions/{created['id']}/kill")
    assert status == 202 and body["id"] == created["id"]   # Kestra 2.0 clients read the execution
    assert body["state"]["current"] in ("KILLING", "KILLED")
    final = await api.wait(created["id"])
    assert final["state"]["current"] == "KILLED"
    assert "KILLING" in [h["state"] for h in final["state"]["histories"]]
    status, _ = await api.call("DELETE", f"/api/v1/executions/{created['id']}/kill?isOnKillCascade=false")
    assert status == 409
    status, _ = await api.call("DELETE", "/api/v1/executions/notfound/kill")
    assert status == 404


async def test_pause_resume_and_actions_alias(api, form):
    await api.flow(SLEEP)
    created = await api.execute("company.team", "sleep")
    await api.wait_state(created["id"], "RUNNING")
    status, _ = await api.call("POST", f"/api/v1/executions/{created['id']}/pause")
    assert status == 200
    await api.wait_state(created["id"], "PAUSED")
    status, _ = await api.call("POST", "/api/v1/executions/notfound/pause")
    assert status == 404
    status, _ = await api.call("DELETE", f"/api/v1/executions/{created['id']}/actions/kill")
    assert status == 202
    assert (await api.wait(created["id"]))["state"]["current"] == "KILLED"
    status, body = await api.call("POST", f"/api/v1/executions/{created['id']}/pause")
    assert status == 422, body

    paused = await api.paused_execution("STRING")
    body, headers = form({})
    status, err = await api.call("POST", f"/api/v1/executions/{paused['id']}/resume", data=body, headers=headers)
    assert status == 422, err  # the required onResume input is missing
    body, headers = form({"answer": "42"})
    status, empty = await api.call("POST", f"/api/v1/executions/{paused['id']}/resume", data=body, headers=headers)
    assert status == 204 and empty is None
    done = await api.wait(paused["id"])
    assert done["state"]["current"] == "SUCCESS" and ret_output(done, "after") == "42"
    status, _ = await api.call("POST", f"/api/v1/executions/{paused['id']}/resume")
    assert status == 409
    status, _ = await api.call("POST", "/api/v1/executions/notfound/resume")
    assert status == 404


async def test_restart_replay(api):
    await api.flow(FAIL)
    failed = await api.wait((await api.execute("company.team", "fail"))["id"])
    assert failed["state"]["current"] == "FAILED"
    status, restarted = await api.call("POST", f"/api/v1/executions/{failed['id']}/restart")
    assert status == 200 and restarted["id"] == failed["id"] and restarted["state"]["current"] == "RESTARTED"
    again = await api.wait(failed["id"])
    assert again["metadata"]["attemptNumber"] == 2

    status, replay = await api.call("POST", f"/api/v1/executions/{failed['id']}/replay")
    assert status == 200 and replay["id"] != failed["id"] and replay.get("parentId") == failed["id"]
    await api.wait(replay["id"])
    ok_run = next(tr for tr in again["taskRunList"] if tr["taskId"] == "ok")["id"]
    status, replay = await api.call("POST", f"/api/v1/executions/{failed['id']}/actions/replay?taskRunId={ok_run}")
    assert status == 200 and replay["state"]["current"] == "RESTARTED"
    await api.wait(replay["id"])
    status, body = await api.call("POST", f"/api/v1/executions/{failed['id']}/replay?taskRunId=unknownTaskId")
    assert status == 422 and "No task found" in body["message"]

    await api.flow(TWO)
    ok = await api.wait((await api.execute("company.team", "two"))["id"])
    status, body = await api.call("POST", f"/api/v1/executions/{ok['id']}/restart")
    assert status == 422 and "No task found to restart" in body["message"]
    status, _ = await api.call("POST", "/api/v1/executions/notfound/restart")
    assert status == 404
    status, _ = await api.call("POST", f"/api/v1/executions/{ok['id']}/restart?revision=zz")
    assert status == 422


async def test_change_status_labels_state_unqueue_force_run(api):
    await api.flow(TWO)
    ok = await api.wait((await api.execute("company.team", "two"))["id"])
    status, doc = await api.call("POST", f"/api/v1/executions/{ok['id']}/change-status?status=WARNING")
    assert status == 200 and doc["state"]["current"] == "WARNING"
    for query, expected in (("", 400), ("?status=BOGUS", 422), ("?status=RUNNING", 422)):
        status, _ = await api.call("POST", f"/api/v1/executions/{ok['id']}/change-status{query}")
        assert status == expected, query

    status, doc = await api.call("POST", f"/api/v1/executions/{ok['id']}/labels", json=[{"key": "k", "value": "v"}])
    assert status == 200 and {"key": "k", "value": "v"} in doc["labels"]
    status, doc = await api.call("POST", f"/api/v1/executions/{ok['id']}/actions/labels", json=[{"key": "k2", "value": "v2"}])
    assert status == 200 and {"key": "k2", "value": "v2"} in doc["labels"]
    for bad in ([{"key": None, "value": None}], {"key": "k"}, [{"key": "k", "value": ""}], [1]):
        status, _ = await api.call("POST", f"/api/v1/executions/{ok['id']}/labels", json=bad)
        assert status == 422, bad
    status, _ = await api.call("POST", f"/api/v1/executions/{ok['id']}/labels", json=[{"key": "system.x", "value": "v"}])
    assert status == 422
    status, _ = await api.call("POST", f"/api/v1/executions/{ok['id']}/labels", data=b"{bad json",
                               headers={"Content-Type": "application/json"})
    assert status == 422
    status, _ = await api.call("POST", "/api/v1/executions/notfound/labels", json=[{"key": "k", "value": "v"}])
    assert status == 404

    run_id = ok["taskRunList"][0]["id"]
    status, _ = await api.call("POST", f"/api/v1/executions/{ok['id']}/state", json={"taskRunId": run_id})
    assert status == 422
    status, _ = await api.call("POST", f"/api/v1/executions/{ok['id']}/state", json={"taskRunId": run_id, "state": "NOPE"})
    assert status == 422

    for action in ("unqueue", "force-run"):
        status, _ = await api.call("POST", f"/api/v1/executions/notfound/{action}")
        assert status == 404
        status, _ = await api.call("POST", f"/api/v1/executions/{ok['id']}/{action}")
        assert status == 422, action


async def test_delete_and_bulk(api):
    await api.flow(TWO)
    await api.flow(SLEEP)
    done = [await api.wait((await api.execute("company.team", "two"))["id"]) for _ in range(3)]
    running = await api.execute("company.team", "sleep")
    await api.wait_state(running["id"], "RUNNING")

    status, _ = await api.call("DELETE", f"/api/v1/executions/{done[0]['id']}")
    assert status == 204
    status, _ = await api.call("GET", f"/api/v1/executions/{done[0]['id']}")
    assert status == 404
    status, _ = await api.call("DELETE", "/api/v1/executions/notfound")
    assert status == 404

    status, body = await api.call("DELETE", "/api/v1/executions/by-ids", json=[done[1]["id"], running["id"], "nope"])
    assert status == 400 and body["message"] == "invalid bulk delete"
    assert {i["invalidValue"] for i in body["invalids"]} == {running["id"], "nope"}
    status, body = await api.call("DELETE", "/api/v1/executions/by-ids", json=[done[1]["id"]])
    assert status == 200 and body == {"count": 1}
    status, body = await api.call("DELETE", "/api/v1/executions/by-ids", json="not a list")
    assert status == 422

    status, body = await api.call("POST", "/api/v1/executions/restart/by-ids", json=[done[2]["id"]])
    assert status == 400 and body["invalids"][0]["invalidValue"] == done[2]["id"]
    status, body = await api.call("DELETE", "/api/v1/executions/kill/by-ids", json=[done[2]["id"]])
    assert status == 400
    status, body = await api.call("DELETE", "/api/v1/executions/kill/by-ids", json=[running["id"]])
    assert status == 200 and body == {"count": 1}
    assert (await api.wait(running["id"]))["state"]["current"] == "KILLED"


async def test_unknown_route_and_method(api):
    status, body = await api.call("GET", "/api/v1/nope")
    assert status == 404 and body["_links"]["self"]["href"] == "/api/v1/nope"
    status, body = await api.call("PATCH", "/api/v1/flows")
    assert status == 405 and body["message"].startswith("Method Not Allowed")
    status, _ = await api.call("GET", "/api/v1/other-tenant/executions/search")
    assert status == 404


async def test_bulk_by_query(api):
    await api.flow(TWO)
    await api.flow(SLEEP)
    await api.flow(FAIL)
    done = [await api.wait((await api.execute("company.team", "two"))["id"]) for _ in range(2)]
    failed = await api.wait((await api.execute("company.team", "fail"))["id"])
    running = await api.execute("company.team", "sleep")
    await api.wait_state(running["id"], "RUNNING")

    status, body = await api.call("DELETE", "/api/v1/executions/kill/by-query?namespace=company.team")
    assert status == 200 and body == {"count": 1}  # only the running one is eligible
    assert (await api.wait(running["id"]))["state"]["current"] == "KILLED"
    status, body = await api.call("POST", "/api/v1/executions/restart/by-query?flowId=fail")
    assert status == 200 and body == {"count": 1}
    await api.wait(failed["id"])
    status, body = await api.call("DELETE", "/api/v1/executions/by-query?flowId=two")
    assert status == 200 and body == {"count": 2}
    for doc in done:
        assert (await api.call("GET", f"/api/v1/executions/{doc['id']}"))[0] == 404
    status, _ = await api.call("DELETE", "/api/v1/executions/by-query?page=0")
    assert status == 422


async def test_labels_on_running_is_400_and_2_0_resume_answers_the_execution(api, form):
    paused = await api.paused_execution("STRING")
    status, body = await api.call("POST", f"/api/v1/executions/{paused['id']}/labels", json=[{"key": "k", "value": "v"}])
    assert status == 400 and body["message"].startswith("Bad Request")
    data, headers = form({"answer": "yes"})
    status, doc = await api.call("POST", f"/api/v1/main/executions/{paused['id']}/actions/resume", data=data,
                                 headers=headers)
    assert status == 200 and doc["id"] == paused["id"] and doc["state"]["current"] != "PAUSED"
    assert ret_output(await api.wait(paused["id"]), "after") == "yes"


async def test_legacy_trigger_path_restart_running_and_task_run_state(api):
    await api.flow(TWO)
    status, doc = await api.call("POST", "/api/v1/executions/trigger/company.team/two?wait=true")
    assert status == 200 and doc["state"]["current"] == "SUCCESS" and "url" in doc

    await api.flow(SLEEP)
    running = await api.execute("company.team", "sleep")
    await api.wait_state(running["id"], "RUNNING")
    status, body = await api.call("POST", f"/api/v1/executions/{running['id']}/restart")
    assert status == 409, body
    await api.call("DELETE", f"/api/v1/executions/{running['id']}/kill")
    await api.wait(running["id"])

    await api.flow(FAIL)
    failed = await api.wait((await api.execute("company.team", "fail"))["id"])
    boom = next(tr for tr in failed["taskRunList"] if tr["taskId"] == "boom")
    status, doc = await api.call("POST", f"/api/v1/executions/{failed['id']}/state",
                                 json={"taskRunId": boom["id"], "state": "SUCCESS"})
    assert status == 200 and doc["state"]["current"] == "RESTARTED"
    assert (await api.wait(failed["id"]))["state"]["current"] == "SUCCESS"


HOLD = """id: hold
namespace: company.team
tasks:
  - id: s1
    type: io.kestra.plugin.core.flow.Sleep
    duration: PT2S
  - id: s2
    type: io.kestra.plugin.core.debug.Return
    format: two
  - id: s3
    type: io.kestra.plugin.core.debug.Return
    format: three
"""


async def test_pause_api_holds_the_execution_until_resume_or_kill(api, autojump_clock):
    await api.flow(HOLD)
    ids = []
    for _ in range(2):
        created = await api.execute("company.team", "hold")
        await api.wait_state(created["id"], "RUNNING")
        await trio.sleep(0.5)
        status, _ = await api.call("POST", f"/api/v1/executions/{created['id']}/pause")
        assert status == 200
        ids.append(created["id"])
    await trio.sleep(60)  # both s1 ended while paused
    for ex_id in ids:
        status, held = await api.call("GET", f"/api/v1/executions/{ex_id}")
        assert held["state"]["current"] == "PAUSED"
        assert [(t["taskId"], t["state"]["current"]) for t in held["taskRunList"]] == [("s1", "SUCCESS")]
    status, _ = await api.call("POST", f"/api/v1/executions/{ids[0]}/resume")
    assert status == 204
    resumed = await api.wait(ids[0])
    status, _ = await api.call("DELETE", f"/api/v1/executions/{ids[1]}/kill")
    assert status == 202
    killed = await api.wait(ids[1])
    assert [t["taskId"] for t in resumed["taskRunList"]] == ["s1", "s2", "s3"]
    assert [h["state"] for h in resumed["state"]["histories"]] == ["CREATED", "RUNNING", "PAUSED", "RUNNING",
                                                                   "SUCCESS"]
    assert [t["taskId"] for t in killed["taskRunList"]] == ["s1"]
    assert [h["state"] for h in killed["state"]["histories"]][-3:] == ["PAUSED", "KILLING", "KILLED"]
