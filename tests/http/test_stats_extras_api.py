"""The 0.x ``/stats`` routes computed from the store, and the small Kestra routes around the UI: usages,
basic auth, concurrency limits, outputs, community blueprints, templates."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from falconet.runtime.reports import stats
from falconet.sdk.logs import LogLevel

OK = """id: ok
namespace: company.team
tasks:
  - id: hi
    type: io.kestra.plugin.core.log.Log
    message: hello
  - id: out
    type: io.kestra.plugin.core.output.OutputValues
    values:
      answer: 42
outputs:
  - id: result
    type: STRING
    value: "{{ outputs.out.values.answer }}"
"""
KO = """id: ko
namespace: company.other
concurrency:
  limit: 2
tasks:
  - id: boom
    type: io.kestra.plugin.core.execution.Fail
triggers:
  - id: daily
    type: io.kestra.plugin.core.trigger.Schedule
    cron: "0 9 * * *"
"""


async def seed(api: Any) -> dict[str, list[str]]:
    await api.flow(OK)
    await api.flow(KO)
    ids = {"ok": [ex["id"] for ex in await api.runs("company.team", "ok", 2)],
           "ko": [ex["id"] for ex in await api.runs("company.other", "ko")]}
    await api.engine.store.flush()
    return ids


async def test_summary_counts_flows_and_triggers(api: Any) -> None:
    await seed(api)
    assert await api.call("POST", "/api/v1/stats/summary", json={}) == (200, {"flows": 2, "triggers": 1})
    assert (await api.call("POST", "/api/v1/stats/summary", json={"namespace": "company.team"}))[1] == \
        {"flows": 1, "triggers": 0}


async def test_executions_daily_counts_states_and_durations(api: Any) -> None:
    await seed(api)
    status, days = await api.call("POST", "/api/v1/stats/executions/daily", json={})
    assert status == 200 and len(days) == 31 and days[0]["groupBy"] == "day"   # 30 days back, both ends
    today = days[-1]
    assert today["executionCounts"]["SUCCESS"] == 2 and today["executionCounts"]["FAILED"] == 1
    assert set(today["executionCounts"]) == set(stats.STATES)
    assert today["duration"]["count"] == 3 and today["duration"]["sum"].startswith("PT")
    assert days[0]["duration"]["count"] == 0 and days[0]["executionCounts"]["SUCCESS"] == 0
    status, days = await api.call("POST", "/api/v1/stats/executions/daily",
                                  json={"namespace": "company.team", "state": ["FAILED"]})
    assert sum(d["executionCounts"]["FAILED"] + d["executionCounts"]["SUCCESS"] for d in days) == 0
    status, days = await api.call("POST", "/api/v1/stats/taskruns/daily", json={"flowId": "ko"})
    assert status == 200 and days[-1]["executionCounts"]["FAILED"] == 1
    # a short window is bucketed by minute, every bucket present
    now = datetime.now(UTC)
    status, minutes = await api.call("POST", "/api/v1/stats/executions/daily", json={
        "startDate": (now - timedelta(minutes=30)).isoformat(), "endDate": now.isoformat()})
    assert minutes[0]["groupBy"] == "minute" and len(minutes) == 31
    assert sum(m["executionCounts"]["SUCCESS"] for m in minutes) == 2


async def test_grouped_and_latest(api: Any) -> None:
    ids = await seed(api)
    status, by_ns = await api.call("POST", "/api/v1/stats/executions/daily/group-by-namespace", json={})
    assert status == 200 and by_ns["company.team"]["total"] == 2 and by_ns["company.other"]["counts"]["FAILED"] == 1
    status, by_flow = await api.call("POST", "/api/v1/stats/executions/daily/group-by-flow", json={})
    assert set(by_flow) == {"company.team", "company.other"} and set(by_flow["company.team"]) == {"ok"}
    assert by_flow["company.team"]["ok"][-1]["executionCounts"]["SUCCESS"] == 2
    status, by_ns_only = await api.call("POST", "/api/v1/stats/executions/daily/group-by-flow",
                                        json={"namespaceOnly": True, "flows": [{"namespace": "company.other", "id": "ko"}]})
    assert list(by_ns_only) == ["company.other"] and list(by_ns_only["company.other"]) == ["*"]
    status, latest = await api.call("POST", "/api/v1/stats/executions/latest/group-by-flow",
                                    json={"flows": [{"namespace": "company.team", "id": "ok"}]})
    assert status == 200 and [e["id"] for e in latest] == [ids["ok"][-1]]


async def test_logs_daily_and_bad_bodies(api: Any) -> None:
    await seed(api)
    status, days = await api.call("POST", "/api/v1/stats/logs/daily", json={"namespace": "company.team",
                                                                        "triggerId": "ignored like Kestra"})
    assert status == 200 and days[-1]["counts"]["INFO"] >= 2 and set(days[-1]["counts"]) == set(LogLevel.names())
    status, days = await api.call("POST", "/api/v1/stats/logs/daily", json={"logLevel": "ERROR"})
    assert days[-1]["counts"]["INFO"] == 0 and days[-1]["counts"]["ERROR"] >= 1
    assert (await api.call("POST", "/api/v1/stats/logs/daily", json={"logLevel": "LOUD"}))[0] == 400
    assert (await api.call("POST", "/api/v1/stats/executions/daily", data=b"{nope"))[0] == 400
    assert (await api.call("POST", "/api/v1/stats/executions/daily", json={"state": ["NOPE"]}))[0] == 422
    assert (await api.call("POST", "/api/v1/stats/executions/daily", json={"startDate": "yesterday"}))[0] == 422
    now = datetime.now(UTC)
    status, body = await api.call("POST", "/api/v1/stats/executions/daily", json={
        "startDate": now.isoformat(), "endDate": (now - timedelta(days=1)).isoformat()})
    assert status == 422 and "Start date must be before End Date" in body["message"]


@pytest.mark.parametrize("days,kind", [(400, "month"), (200, "week"), (10, "day"), (2, "day"), (1, "hour")])
def test_bucket_sizes_follow_kestra(days: int, kind: str) -> None:
    end = datetime(2024, 6, 1, tzinfo=UTC)
    group, grid = stats.buckets(end - timedelta(days=days), end)
    assert group == kind and grid[-1] <= end and len(grid) <= stats.MAX_BUCKETS


async def test_usages_basic_auth_concurrency_outputs(api: Any) -> None:
    ids = await seed(api)
    status, usage = await api.call("GET", "/api/v1/usages/all")
    assert status == 200 and usage["flows"]["count"] == 2 and usage["executions"]["dailyExecutionsCount"] == 3
    assert await api.call("GET", "/api/v1/basicAuthValidationErrors") == (200, [])
    status, body = await api.call("POST", "/api/v1/main/basicAuth", json={"username": "a", "password": "b"})
    assert status == 422 and "configuration" in body["message"]
    status, limits = await api.call("GET", "/api/v1/main/concurrency-limit/search")
    assert status == 200 and limits == {"results": [
        {"tenantId": "main", "namespace": "company.other", "flowId": "ko", "running": 0}], "total": 1}
    status, outputs = await api.call("GET", f"/api/v1/main/outputs/executions/{ids['ok'][0]}")
    assert status == 200 and outputs == {"result": "42"}
    status, infos = await api.call("GET", f"/api/v1/main/outputs/tasks/{ids['ok'][0]}")
    assert [i["taskId"] for i in infos] == ["out"]
    status, values = await api.call("GET", f"/api/v1/main/outputs/tasks/{ids['ok'][0]}/{infos[0]['taskRunId']}")
    assert values == {"values": {"answer": 42}}
    assert (await api.call("GET", "/api/v1/main/outputs/executions/nope"))[0] == 404
    assert (await api.call("GET", f"/api/v1/main/outputs/tasks/{ids['ok'][0]}/nope"))[0] == 404


async def test_blueprints_and_templates(api: Any) -> None:
    assert await api.call("GET", "/api/v1/blueprints/community?page=1&size=25") == (200, {"results": [], "total": 0})
    assert await api.call("GET", "/api/v1/blueprints/community/tags") == (200, [])
    assert await api.call("GET", "/api/v1/main/blueprints/community/flow") == (200, {"results": [], "total": 0})
    assert await api.call("GET", "/api/v1/main/blueprints/community/flow/tags") == (200, [])
    assert (await api.call("GET", "/api/v1/blueprints/community/some-id"))[0] == 404
    assert (await api.call("GET", "/api/v1/main/blueprints/community/flow/some-id"))[0] == 404
    assert await api.call("GET", "/api/v1/templates/search") == (200, {"results": [], "total": 0})
    status, body = await api.call("POST", "/api/v1/templates", data="id: t\nnamespace: n\ntasks: []\n",
                                  headers={"Content-Type": "application/x-yaml"})
    assert status == 422 and "Templates are deprecated" in body["message"]
    assert (await api.call("GET", "/api/v1/templates/company/t"))[0] == 404
