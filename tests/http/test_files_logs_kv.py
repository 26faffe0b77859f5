"""Files (download, metas, preview, the prefix rule, traversal), logs, metrics, KV, triggers listing."""
from __future__ import annotations

import json
from urllib.parse import quote

FILES = """id: files
namespace: company.team
inputs:
  - id: f
    type: FILE
tasks:
  - id: log
    type: io.kestra.plugin.core.log.Log
    message:
      - "first line"
      - "second line"
  - id: warn
    type: io.kestra.plugin.core.log.Log
    level: WARN
    message: "careful"
  - id: ret
    type: io.kestra.plugin.core.debug.Return
    format: "{{ read(inputs.f) }}"
"""


async def run_files(api, form, data=b"hello", filename="hello.txt"):
    status, _ = await api.call("GET", "/api/v1/flows/company.team/files")
    if status == 404:
        await api.flow(FILES)
    body, headers = form({}, [("f", filename, data)])
    created = await api.execute("company.team", "files", data=body, headers=headers)
    return await api.wait(created["id"])


def file_url(execution_id, uri, suffix=""):
    return f"/api/v1/executions/{execution_id}/file{suffix}?path={quote(uri, safe='')}"


#### Files #################################################################################################

async def test_download_metas_preview(api, form):
    done = await run_files(api, form, b"a,b\n1,2\n3,4\n", "data.csv")
    uri = done["inputs"]["f"]
    response = await api.client.get(file_url(done["id"], uri))
    assert response.status_code == 200
    assert await response.get_data() == b"a,b\n1,2\n3,4\n"
    assert response.headers["Content-Type"] == "application/octet-stream"
    assert response.headers["Content-Disposition"].startswith("attachment; filename=")
    status, metas = await api.call("GET", file_url(done["id"], uri, "/metas"))
    assert status == 200 and metas == {"size": 12}
    status, preview = await api.call("GET", file_url(done["id"], uri, "/preview") + "&maxRows=2")
    assert status == 200 and preview["type"] == "TEXT" and preview["content"] == "a,b\n1,2\n"
    assert preview["truncated"] is True and preview["extension"] in ("csv", "upl")
    status, body = await api.call("GET", file_url(done["id"], uri, "/preview") + "&encoding=klingon")
    assert status == 422


async def test_preview_ion_and_jsonl(api, form, engine):
    done = await run_files(api, form)
    prefix = engine.storage.execution_prefix("company.team", "files", done["id"])
    ion = engine.storage.put_bytes(b'{a:1,b:"x"}\n{a:2,b:"y"}\n', prefix + "/tasks/t/rows.ion")
    jsonl = engine.storage.put_bytes(b'{"a": 1}\n{"a": 2}\n{"a": 3}\n', prefix + "/tasks/t/rows.jsonl")
    status, preview = await api.call("GET", file_url(done["id"], ion, "/preview"))
    assert status == 200 and preview["type"] == "LIST" and preview["content"] == [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]
    status, preview = await api.call("GET", file_url(done["id"], jsonl, "/preview") + "&maxRows=2")
    assert preview["content"] == [{"a": 1}, {"a": 2}] and preview["truncated"] is True


async def test_prefix_rule_and_traversal(api, form, engine):
    first = await run_files(api, form)
    second = await run_files(api, form)
    other_uri = second["inputs"]["f"]
    response = await api.client.get(file_url(first["id"], other_uri))
    assert response.status_code == 302
    assert response.headers["Location"].startswith(f"/api/v1/executions/{second['id']}/file?path=")

    missing = "kestra:///company/team/files/executions/7bSnWmO8KhEbmGyO2NnEt1/inputs/f/hello.txt"
    status, body = await api.call("GET", file_url(first["id"], missing))
    assert status == 404 and "execution id '7bSnWmO8KhEbmGyO2NnEt1'" in body["message"]

    elsewhere = "kestra:///company/team/_files/secret.txt"
    status, body = await api.call("GET", file_url(first["id"], elsewhere))
    assert status == 422 and "Invalid prefix path" in body["message"]

    base = f"kestra:///company/team/files/executions/{first['id']}"
    for attack in (f"{base}/../../../../../../etc/passwd", f"{base}/%2e%2e/%2e%2e/x", f"{base}/inputs/%00",
                   "file:///etc/passwd", f"{base}/inputs/f/../../{second['id']}/x", "kestra://host/x"):
        status, body = await api.call("GET", file_url(first["id"], attack))
        assert status in (404, 422), (attack, status)
        assert "root:" not in json.dumps(body)
    status, body = await api.call("GET", file_url(first["id"], f"{base}/inputs/f/none.txt"))
    assert status == 404
    status, body = await api.call("GET", f"/api/v1/executions/{first['id']}/file")
    assert status == 400
    status, body = await api.call("GET", file_url("unknown", first["inputs"]["f"]))
    assert status == 404


#### Logs ##################################################################################################

async def test_logs_filters_download_search_delete(api, form):
    done = await run_files(api, form)
    status, logs = await api.call("GET", f"/api/v1/logs/{done['id']}")
    assert status == 200 and [e["message"] for e in logs if e["taskId"] == "log"] == ["first line", "second line"]
    status, warn = await api.call("GET", f"/api/v1/logs/{done['id']}?minLevel=WARN")
    assert [e["message"] for e in warn] == ["careful"]
    status, by_task = await api.call("GET", f"/api/v1/logs/{done['id']}?taskId=log")
    assert {e["taskId"] for e in by_task} == {"log"}
    run_id = by_task[0]["taskRunId"]
    status, by_run = await api.call("GET", f"/api/v1/logs/{done['id']}?taskRunId={run_id}&attempt=1")
    assert len(by_run) == 2
    status, body = await api.call("GET", f"/api/v1/logs/{done['id']}?minLevel=LOUD")
    assert status == 422

    response = await api.client.get(f"/api/v1/logs/{done['id']}/download")
    text = (await response.get_data()).decode()
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/plain")
    assert response.headers["Content-Disposition"] == f'attachment; filename="{done["id"]}.log"'
    lines = text.splitlines()
    assert len(lines) == len(logs) and lines[0].split(" ", 2)[1] in ("INFO", "DEBUG", "WARN", "TRACE", "ERROR")
    assert any(line.endswith(" WARN careful") for line in lines)

    status, page = await api.call("GET", "/api/v1/logs/search?namespace=company.team&minLevel=WARN")
    assert status == 200 and page["total"] == 1 and page["results"][0]["message"] == "careful"
    status, page = await api.call("GET", "/api/v1/logs/search?page=0")
    assert status == 422

    status, _ = await api.call("DELETE", f"/api/v1/logs/{done['id']}?minLevel=WARN")
    assert status == 200
    status, left = await api.call("GET", f"/api/v1/logs/{done['id']}")
    assert len(left) == len(logs) - 1
    status, _ = await api.call("DELETE", "/api/v1/logs/company.team/files")
    assert status == 200
    status, left = await api.call("GET", f"/api/v1/logs/{done['id']}")
    assert left == []
    status, unknown = await api.call("GET", "/api/v1/logs/unknown")
    assert status == 200 and unknown == []


async def test_execution_log_pages_text_filter_and_counts(api, engine):
    """The UI's log viewer reads big executions page by page, filtered by text, with counts per task run."""
    base = {"namespace": "company.team", "flowId": "big", "executionId": "big1", "attemptNumber": 1}
    engine.store.append_logs_nowait(
        [{**base, "taskId": "t", "taskRunId": f"tr{i % 2}", "level": "DEBUG" if i % 3 else "INFO",
          "timestamp": f"2024-01-01T00:{i // 60:02d}:{i % 60:02d}Z", "message": f"line {i}"} for i in range(1200)]
        + [{**base, "taskId": None, "taskRunId": None, "level": "ERROR", "timestamp": "2024-01-01T01:00:00Z",
            "message": "Engine failure"}])
    status, page = await api.call("GET", "/api/v1/logs/big1?page=3&size=500")
    assert status == 200 and page["total"] == 1201
    assert [e["message"] for e in page["results"][:2]] == ["line 1000", "line 1001"] and len(page["results"]) == 201
    status, page = await api.call("GET", "/api/v1/logs/big1?page=1&size=5&minLevel=INFO&taskRunId=tr0")
    assert page["total"] == 200 and [e["message"] for e in page["results"]] == [f"line {i}" for i in range(0, 30, 6)]
    status, hits = await api.call("GET", "/api/v1/logs/big1?q=ENGINE")
    assert [e["message"] for e in hits] == ["Engine failure"]
    status, page = await api.call("GET", "/api/v1/logs/big1?outsideTaskRuns=true&page=1&size=10")
    assert page["total"] == 1 and page["results"][0]["message"] == "Engine failure"
    status, counts = await api.call("GET", "/api/v1/logs/big1/counts?minLevel=INFO")
    assert status == 200 and counts == {"counts": {"tr0": 200, "tr1": 200, "": 1}}
    status, counts = await api.call("GET", "/api/v1/logs/unknown/counts")
    assert counts == {"counts": {}}
    status, body = await api.call("GET", "/api/v1/logs/big1?page=1&size=5001")
    assert status == 422 and "at most 5000" in body["message"]
    status, body = await api.call("GET", "/api/v1/logs/big1?page=0&size=5")
    assert status == 422


#### Metrics ###############################################################################################

async def test_metrics(api, form):
    done = await run_files(api, form)
    status, page = await api.call("GET", f"/api/v1/metrics/{done['id']}")
    assert status == 200 and page["total"] >= 2
    names = {m["name"] for m in page["results"]}
    assert {"length", "duration"} <= names
    status, page = await api.call("GET", f"/api/v1/metrics/{done['id']}?taskId=ret&size=1")
    assert page["total"] >= 2 and len(page["results"]) == 1
    status, names = await api.call("GET", "/api/v1/metrics/names/company.team/files")
    assert "length" in names
    status, names = await api.call("GET", "/api/v1/metrics/names/company.team/files/ret")
    assert "length" in names
    status, tasks = await api.call("GET", "/api/v1/metrics/tasks/company.team/files")
    assert tasks == ["ret"]
    status, agg = await api.call("GET", "/api/v1/metrics/aggregates/company.team/files/ret/length?aggregation=max")
    assert status == 200 and agg["groupBy"] == "day" and agg["aggregations"][0]["value"] == 5.0
    status, _ = await api.call("GET", "/api/v1/metrics/aggregates/company.team/files/length?aggregation=median")
    assert status == 422
    status, _ = await api.call("GET", "/api/v1/metrics/aggregates/company.team/files/length"
                                      "?startDate=2024-02-01T00:00:00Z&endDate=2024-01-01T00:00:00Z")
    assert status == 422


#### KV ####################################################################################################

async def test_kv_api(api):
    status, _ = await api.call("PUT", "/api/v1/namespaces/company.team/kv/obj", json={"field": "value"})
    assert status == 200
    status, value = await api.call("GET", "/api/v1/namespaces/company.team/kv/obj")
    assert status == 200 and value == {"type": "JSON", "value": {"field": "value"}}
    status, _ = await api.call("PUT", "/api/v1/namespaces/company.team/kv/num", data="42",
                               headers={"Content-Type": "text/plain"})
    status, value = await api.call("GET", "/api/v1/namespaces/company.team/kv/num")
    assert value == {"type": "NUMBER", "value": 42}
    status, _ = await api.call("PUT", "/api/v1/namespaces/company.team/kv/txt", data="plain words",
                               headers={"Content-Type": "text/plain", "ttl": "PT1H"})
    status, value = await api.call("GET", "/api/v1/namespaces/company.team/kv/txt")
    assert value == {"type": "STRING", "value": "plain words"}
    status, _ = await api.call("PUT", "/api/v1/namespaces/company.team/kv/bad", data="{nope",
                               headers={"Content-Type": "application/json"})
    assert status == 422

    status, keys = await api.call("GET", "/api/v1/namespaces/company.team/kv")
    assert [k["key"] for k in keys] == ["num", "obj", "txt"]
    assert keys[2].get("expirationDate") and keys[0]["creationDate"]

    status, gone = await api.call("DELETE", "/api/v1/namespaces/company.team/kv/num")
    assert status == 200 and gone is True
    status, gone = await api.call("DELETE", "/api/v1/namespaces/company.team/kv/num")
    assert gone is False
    status, body = await api.call("GET", "/api/v1/namespaces/company.team/kv/num")
    assert status == 404
    status, body = await api.call("DELETE", "/api/v1/namespaces/company.team/kv", json={"keys": ["obj", "zzz"]})
    assert status == 200 and body == {"keys": ["obj"]}
    status, body = await api.call("DELETE", "/api/v1/namespaces/company.team/kv", json={"keys": "obj"})
    assert status == 422


#### Triggers listing ######################################################################################

SCHEDULED = """id: scheduled
namespace: company.team
triggers:
  - id: hourly
    type: io.kestra.plugin.core.trigger.Schedule
    cron: "0 * * * *"
tasks:
  - id: log
    type: io.kestra.plugin.core.log.Log
    message: tick
"""


async def test_triggers_listing(api, engine):
    await api.flow(SCHEDULED)
    await engine.store.save_trigger({"namespace": "company.team", "flowId": "scheduled", "triggerId": "hourly",
                                     "date": "2024-01-01T00:00:00.000Z", "disabled": False})
    status, page = await api.call("GET", "/api/v1/triggers/search?namespace=company")
    assert status == 200 and page["total"] == 1
    row = page["results"][0]
    assert row["triggerContext"]["triggerId"] == "hourly" and row["abstractTrigger"]["cron"] == "0 * * * *"
    status, page = await api.call("GET", "/api/v1/triggers/search?q=nothing-matches")
    assert page["total"] == 0
    status, page = await api.call("GET", "/api/v1/triggers/company.team/scheduled")
    assert page["total"] == 1
    status, _ = await api.call("GET", "/api/v1/triggers/search?size=0")
    assert status == 422
