"""Trigger updates through the API: disable/enable, backfill start/pause/unpause/delete, bulk disable."""
from __future__ import annotations

import json

import trio

SCHEDULED = """id: daily
namespace: company.team
triggers:
  - id: every_day
    type: io.kestra.plugin.core.trigger.Schedule
    cron: "0 6 * * *"
tasks:
  - id: log
    type: io.kestra.plugin.core.log.Log
    message: "{{ trigger.date }}"
"""

KEY = {"namespace": "company.team", "flowId": "daily", "triggerId": "every_day"}
JSON = {"Content-Type": "application/json"}


async def test_disable_and_backfill_lifecycle(api, engine):
    await api.flow(SCHEDULED)
    status, ctx = await api.call("PUT", "/api/v1/triggers", data=json.dumps({**KEY, "disabled": True}), headers=JSON)
    assert status == 200 and ctx["disabled"] is True
    stored = await engine.store.get_trigger(*KEY.values())
    assert stored["disabled"] is True

    # the trigger is disabled, so the backfill waits (and the next calls see it deterministically)
    status, ctx = await api.call("PUT", "/api/v1/triggers", headers=JSON, data=json.dumps(
        {**KEY, "backfill": {"start": "2024-01-01T00:00:00Z", "end": "2024-01-03T12:00:00Z", "inputs": {}}}))
    assert status == 200, ctx
    assert ctx["disabled"] is True and ctx["backfill"]["start"] == "2024-01-01T00:00:00.000Z"

    # a second backfill while one runs is refused; pause / unpause / delete answer the context
    status, body = await api.call("PUT", "/api/v1/triggers", headers=JSON, data=json.dumps(
        {**KEY, "backfill": {"start": "2024-02-01T00:00:00Z"}}))
    assert status == 422 and "already running" in body["message"]
    status, ctx = await api.call("PUT", "/api/v1/triggers/backfill/pause", data=json.dumps(KEY), headers=JSON)
    assert status == 200 and ctx["backfill"]["paused"] is True
    status, ctx = await api.call("PUT", "/api/v1/triggers/backfill/unpause", data=json.dumps(KEY), headers=JSON)
    assert status == 200 and ctx["backfill"]["paused"] is False
    status, ctx = await api.call("POST", "/api/v1/triggers/backfill/delete", data=json.dumps(KEY), headers=JSON)
    assert status == 200 and ctx["backfill"] is None


async def test_backfill_creates_the_missed_executions(api, engine):
    await api.flow(SCHEDULED)
    status, ctx = await api.call("PUT", "/api/v1/triggers", headers=JSON, data=json.dumps(
        {**KEY, "backfill": {"start": "2024-01-01T00:00:00Z", "end": "2024-01-03T12:00:00Z"}}))
    assert status == 200, ctx
    with trio.fail_after(20):
        while True:
            status, page = await api.call("GET", "/api/v1/executions/search?namespace=company.team&flowId=daily")
            if page["total"] >= 3:
                break
            await trio.sleep(0.05)
    dates = sorted(e["trigger"]["variables"]["date"] for e in page["results"])
    assert [d[:10] for d in dates] == ["2024-01-01", "2024-01-02", "2024-01-03"]


async def test_trigger_update_errors(api):
    await api.flow(SCHEDULED)
    status, body = await api.call("PUT", "/api/v1/triggers", data="{not json", headers=JSON)
    assert status == 422 and "Invalid JSON" in body["message"]
    status, body = await api.call("PUT", "/api/v1/triggers", data=json.dumps({"namespace": "company.team"}),
                                  headers=JSON)
    assert status == 422
    status, body = await api.call("PUT", "/api/v1/triggers", data=json.dumps(KEY), headers=JSON)
    assert status == 422 and "Nothing to update" in body["message"]
    status, body = await api.call("PUT", "/api/v1/triggers", headers=JSON, data=json.dumps(
        {**KEY, "triggerId": "nope", "disabled": True}))
    assert status == 404
    status, body = await api.call("PUT", "/api/v1/triggers", headers=JSON, data=json.dumps(
        {**KEY, "backfill": {"start": "2024-01-05T00:00:00Z", "end": "2024-01-01T00:00:00Z"}}))
    assert status == 422


async def test_bulk_disable(api, engine):
    await api.flow(SCHEDULED)
    status, body = await api.call("POST", "/api/v1/triggers/set-disabled/by-triggers?disabled=true",
                                  data=json.dumps([KEY]), headers=JSON)
    assert status == 200 and body == {"count": 1}
    assert (await engine.store.get_trigger(*KEY.values()))["disabled"] is True
