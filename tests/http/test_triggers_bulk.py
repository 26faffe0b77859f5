"""Trigger actions: unlock, restart, delete (one, by triggers, by query incl. the 2.0 JSON body), backfill
pause/unpause/delete by triggers and by query, set-disabled by query, CSV export."""
from __future__ import annotations

import csv
import io
import json

from .conftest import flt

JSON = {"Content-Type": "application/json"}


def scheduled(flow_id: str, namespace: str = "company.team") -> str:
    return f"""id: {flow_id}
namespace: {namespace}
triggers:
  - id: daily
    type: io.kestra.plugin.core.trigger.Schedule
    cron: "0 6 * * *"
tasks:
  - id: log
    type: io.kestra.plugin.core.log.Log
    message: hi
"""


def fresh(ctx: dict | None) -> bool:
    """A deleted context is gone, or already re-created by the scheduler from the flow (not disabled)."""
    return ctx is None or not ctx.get("disabled")


def key(flow_id: str, namespace: str = "company.team") -> dict:
    return {"namespace": namespace, "flowId": flow_id, "triggerId": "daily"}


async def _setup(api, engine) -> None:
    await api.flow(scheduled("a"))
    await api.flow(scheduled("b"))
    await api.flow(scheduled("c", "other"))
    for k in (key("a"), key("b"), key("c", "other")):     # disabled: the scheduler leaves them alone
        status, _ = await api.call("PUT", "/api/v1/triggers", data=json.dumps({**k, "disabled": True}), headers=JSON)
        assert status == 200


async def test_unlock_one_by_triggers_and_by_query(api, engine):
    await _setup(api, engine)
    for flow_id, ns in (("a", "company.team"), ("b", "company.team")):
        ctx = await engine.store.get_trigger(ns, flow_id, "daily")
        await engine.store.save_trigger({**ctx, "executionId": "locked-by-" + flow_id})
    status, body = await api.call("POST", "/api/v1/triggers/company.team/a/daily/unlock")
    assert status == 200 and "executionId" not in body
    assert "executionId" not in await engine.store.get_trigger("company.team", "a", "daily")
    status, body = await api.call("POST", "/api/v1/triggers/company.team/a/daily/unlock")
    assert status == 409 and "not locked" in body["message"]
    status, body = await api.call("POST", "/api/v1/triggers/unlock/by-triggers", json=[key("a"), key("b")])
    assert status == 200 and body == {"count": 1}                       # only b was locked
    await engine.store.save_trigger({**await engine.store.get_trigger("other", "c", "daily"), "executionId": "x"})
    status, body = await api.call("POST", "/api/v1/triggers/unlock/by-query?" + flt("namespace", "EQUALS", "company.team"))
    assert body == {"count": 0}
    status, body = await api.call("POST", "/api/v1/triggers/unlock/by-query?" + flt("namespace", "EQUALS", "other"))
    assert body == {"count": 1}
    status, _ = await api.call("POST", "/api/v1/triggers/company.team/nope/daily/unlock")
    assert status == 404


async def test_restart_and_delete(api, engine):
    await _setup(api, engine)
    ctx = await engine.store.get_trigger("company.team", "a", "daily")
    await engine.store.save_trigger({**ctx, "evaluateRunningDate": "2024-01-01T00:00:00Z", "workerId": "w"})
    status, body = await api.call("POST", "/api/v1/triggers/company.team/a/daily/restart")
    assert status == 200 and "evaluateRunningDate" not in body and "workerId" not in body
    status, _ = await api.call("DELETE", "/api/v1/triggers/company.team/a/daily")
    assert status == 204
    assert fresh(await engine.store.get_trigger("company.team", "a", "daily"))
    status, _ = await api.call("DELETE", "/api/v1/triggers/company.team/nope/daily")
    assert status == 404
    status, body = await api.call("DELETE", "/api/v1/triggers/delete/by-triggers", json=[key("b"), key("zzz")])
    assert status == 200 and body == {"count": 1}
    status, body = await api.call("DELETE", "/api/v1/triggers/delete/by-query?" + flt("flowId", "EQUALS", "none"))
    assert body == {"count": 0}
    assert not fresh(await engine.store.get_trigger("other", "c", "daily"))
    status, body = await api.call("DELETE", "/api/v1/triggers/delete/by-query",
                                  json={"filters": [{"field": "namespace", "operation": "EQUALS", "value": "nope"}]})
    assert status == 200 and body == {"count": 0}
    status, body = await api.call("DELETE", "/api/v1/triggers/delete/by-query",
                                  json={"filters": [{"field": "namespace", "operation": "BOGUS", "value": "other"}]})
    assert status == 400 and "BOGUS" in body["message"]
    status, body = await api.call("DELETE", "/api/v1/triggers/delete/by-query",
                                  json={"filters": [{"field": "namespace", "operation": "EQUALS", "value": "other"}]})
    assert status == 200 and body == {"count": 1}
    assert fresh(await engine.store.get_trigger("other", "c", "daily"))


async def test_backfills_by_triggers_and_by_query(api, engine):
    await _setup(api, engine)
    for k in (key("a"), key("c", "other")):
        status, _ = await api.call("PUT", "/api/v1/triggers", headers=JSON, data=json.dumps(
            {**k, "backfill": {"start": "2024-01-01T00:00:00Z", "end": "2024-01-02T00:00:00Z"}}))
        assert status == 200
    status, body = await api.call("POST", "/api/v1/triggers/backfill/pause/by-triggers", json=[key("a"), key("b")])
    assert status == 200 and body == {"count": 1}                       # b has no backfill
    assert (await engine.store.get_trigger("company.team", "a", "daily"))["backfill"]["paused"] is True
    status, body = await api.call("POST", "/api/v1/triggers/backfill/pause/by-query?" + flt("flowId", "EQUALS", "c"))
    assert body == {"count": 1}
    status, body = await api.call("POST", "/api/v1/triggers/backfill/unpause/by-query?namespace=company")
    assert body == {"count": 1}
    assert (await engine.store.get_trigger("company.team", "a", "daily"))["backfill"]["paused"] is False
    assert (await engine.store.get_trigger("other", "c", "daily"))["backfill"]["paused"] is True
    status, body = await api.call("POST", "/api/v1/triggers/backfill/unpause/by-triggers", json=[key("c", "other")])
    assert body == {"count": 1}
    status, body = await api.call("POST", "/api/v1/triggers/backfill/delete/by-triggers", json=[key("a")])
    assert body == {"count": 1}
    status, body = await api.call("POST", "/api/v1/triggers/backfill/delete/by-query?" + flt("scope", "EQUALS", "USER"))
    assert body == {"count": 1}
    assert (await engine.store.get_trigger("other", "c", "daily"))["backfill"] is None


async def test_set_disabled_by_query_and_csv(api, engine):
    await _setup(api, engine)
    status, body = await api.call("POST", "/api/v1/triggers/set-disabled/by-query?disabled=false&"
                                  + flt("namespace", "PREFIX", "company"))
    assert status == 200 and body == {"count": 2}
    assert (await engine.store.get_trigger("company.team", "a", "daily"))["disabled"] is False
    assert (await engine.store.get_trigger("other", "c", "daily"))["disabled"] is True
    status, body = await api.call("POST", "/api/v1/triggers/set-disabled/by-query?disabled=true&workerid=x")
    assert status == 400 and "workerid" in body["message"]
    response = await api.client.get("/api/v1/triggers/export/by-query/csv?" + flt("triggerState", "EQUALS", "DISABLED"))
    assert response.status_code == 200
    rows = list(csv.reader(io.StringIO((await response.get_data()).decode())))
    assert rows[0][:3] == ["namespace", "flowId", "triggerId"]
    assert [(r[0], r[1], r[3], r[4]) for r in rows[1:]] == [("other", "c", "io.kestra.plugin.core.trigger.Schedule",
                                                             "True")]
    await api.call("POST", "/api/v1/triggers/set-disabled/by-query?disabled=true")
