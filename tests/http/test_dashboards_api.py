"""Kestra 1.x dashboards: CRUD from YAML, validation (422), the built-in ``_default`` dashboard, chart
previews of every supported chart type and chart data of a stored dashboard, checked against a seeded store."""
from __future__ import annotations

import textwrap
from datetime import UTC, datetime
from typing import Any

from falconet.runtime.kernel.startup import open_engine

from .conftest import YAML, api_of

P = "io.kestra.plugin.core.dashboard"
OK = """id: ok
namespace: company.team
tasks:
  - id: hi
    type: io.kestra.plugin.core.log.Log
    message: hello
"""
KO = """id: ko
namespace: company.other
tasks:
  - id: boom
    type: io.kestra.plugin.core.execution.Fail
"""
DASHBOARD = f"""title: Team overview
description: mine
timeWindow:
  default: P1D
  max: P7D
charts:
  - id: by_state
    type: {P}.chart.Pie
    data:
      type: {P}.data.Executions
      columns:
        state: {{field: STATE}}
        total: {{agg: COUNT}}
  - id: success
    type: {P}.chart.KPI
    chartOptions: {{numberType: PERCENTAGE}}
    data:
      type: {P}.data.ExecutionsKPI
      columns: {{field: ID, agg: COUNT}}
      numerator: [{{type: IN, field: STATE, values: [SUCCESS]}}]
"""


async def seed(api: Any) -> dict[str, list[str]]:
    await api.flow(OK)
    await api.flow(KO)
    ids = {"ok": [ex["id"] for ex in await api.runs("company.team", "ok", 3)],
           "ko": [ex["id"] for ex in await api.runs("company.other", "ko")]}
    await api.engine.store.flush()
    return ids


def chart(chart_id: str, kind: str, data: str, body: str, options: str | None = None) -> str:
    """A chart's YAML: type ``{P}.chart.<kind>``, ``chartOptions`` when given, and ``data`` of type
    ``{P}.data.<data>`` with the YAML ``body`` (written from column 0)."""
    head = f"id: {chart_id}\ntype: {P}.chart.{kind}\n" + (f"chartOptions: {options}\n" if options else "")
    return head + f"data:\n  type: {P}.data.{data}\n" + textwrap.indent(body, "  ")


async def preview(api: Any, source: str, filters: list[dict[str, Any]] | None = None) -> tuple[int, Any]:
    body: dict[str, Any] = {"chart": source}
    if filters is not None:
        body["globalFilter"] = {"filters": filters}
    return await api.call("POST", "/api/v1/dashboards/charts/preview", json=body)


async def test_crud_from_yaml(api: Any) -> None:
    status, created = await api.call("POST", "/api/v1/dashboards", data=DASHBOARD, headers=YAML)
    assert status == 200, created
    did = created["id"]
    assert created["title"] == "Team overview" and created["sourceCode"] == DASHBOARD
    assert created["timeWindow"] == {"default": "P1D", "max": "P7D"}
    assert [c["id"] for c in created["charts"]] == ["by_state", "success"]
    assert (await api.call("GET", f"/api/v1/dashboards/{did}"))[1]["title"] == "Team overview"
    assert (await api.call("GET", f"/api/v1/main/dashboards/{did}"))[0] == 200

    status, listed = await api.call("GET", "/api/v1/dashboards?q=team")
    assert status == 200 and listed["total"] == 1 and listed["results"][0]["id"] == did
    assert (await api.call("GET", "/api/v1/dashboards?q=nothing"))[1] == {"results": [], "total": 0}

    updated_source = DASHBOARD.replace("Team overview", "Renamed")
    status, updated = await api.call("PUT", f"/api/v1/dashboards/{did}", data=updated_source, headers=YAML)
    assert status == 200 and updated["id"] == did and updated["title"] == "Renamed"
    assert updated["created"] == created["created"]
    assert (await api.call("GET", f"/api/v1/dashboards/{did}"))[1]["sourceCode"] == updated_source

    assert (await api.call("DELETE", f"/api/v1/dashboards/{did}"))[0] == 204
    assert (await api.call("GET", f"/api/v1/dashboards/{did}"))[0] == 404
    assert (await api.call("DELETE", f"/api/v1/dashboards/{did}"))[0] == 404
    assert (await api.call("PUT", f"/api/v1/dashboards/{did}", data=DASHBOARD, headers=YAML))[0] == 404


async def test_dashboards_survive_a_restart_in_sqlite(tmp_path: Any) -> None:
    async with open_engine(data_dir=tmp_path, store="sqlite") as engine:
        status, created = await api_of(engine).call("POST", "/api/v1/dashboards", data=DASHBOARD, headers=YAML)
        assert status == 200
    async with open_engine(data_dir=tmp_path, store="sqlite") as engine:
        status, stored = await api_of(engine).call("GET", f"/api/v1/dashboards/{created['id']}")
        assert status == 200 and stored["sourceCode"] == DASHBOARD


async def test_invalid_dashboards_are_422_and_nothing_is_stored(api: Any) -> None:
    bad = {
        "broken YAML": "title: [unclosed",
        "a list": "- a\n- b",
        "no title": "description: x",
        "an id": "id: mine\ntitle: t",
        "unknown chart type": f"title: t\ncharts:\n  - id: c\n    type: {P}.chart.Gauge\n",
        "unknown field": (f"title: t\ncharts:\n  - id: c\n    type: {P}.chart.Table\n    data:\n"
                          f"      type: {P}.data.Executions\n      columns:\n        x: {{field: COLOR}}\n"),
        "unknown agg": (f"title: t\ncharts:\n  - id: c\n    type: {P}.chart.Pie\n    data:\n"
                        f"      type: {P}.data.Executions\n      columns:\n        x: {{field: ID, agg: MEDIAN}}\n"),
        "window over a year": "title: t\ntimeWindow:\n  max: P400D\n",
        "bad duration": "title: t\ntimeWindow:\n  default: tomorrow\n",
        "alias bomb": "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
            f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join('*' + chr(97 + i) for _ in range(9))}]\n" for i in range(9)),
    }
    for what, source in bad.items():
        status, body = await api.call("POST", "/api/v1/dashboards", data=source, headers=YAML)
        assert status == 422, (what, status, body)
        assert "message" in body, (what, body)
    assert (await api.call("GET", "/api/v1/dashboards"))[1]["total"] == 0
    status, body = await api.call("POST", "/api/v1/dashboards/validate", data="title: t\ntimeWindow: {max: P400D}",
                                  headers=YAML)
    assert status == 200 and "366 days" in body["constraints"]
    assert (await api.call("POST", "/api/v1/dashboards/validate", data=DASHBOARD, headers=YAML))[1] == {"index": 0}


async def test_default_dashboard_and_its_charts(api: Any) -> None:
    ids = await seed(api)
    status, default = await api.call("GET", "/api/v1/dashboards/_default")
    assert status == 200 and default["id"] == "_default" and default["title"] == "Overview"
    data = {}
    for chart in default["charts"]:
        status, body = await api.call("POST", f"/api/v1/dashboards/_default/charts/{chart['id']}", json={})
        assert status == 200, (chart["id"], body)
        data[chart["id"]] = body
    assert data["kpi_success_ratio"] == {"results": [{"value": 75.0}], "total": 1}
    assert data["kpi_failed_ratio"] == {"results": [{"value": 25.0}], "total": 1}
    assert data["kpi_pending"]["results"] == [{"value": 0.0}]
    pie = {r["state"]: r["id"] for r in data["total_executions_pie"]["results"]}
    assert pie == {"SUCCESS": 3, "FAILED": 1}
    table = data["recent_executions"]
    assert table["total"] == 4 and {r["id"] for r in table["results"]} == set(ids["ok"] + ids["ko"])
    starts = [r["start_date"] for r in table["results"]]
    assert starts == sorted(starts, reverse=True)
    bars = {(r["namespace"], r["state"]): r["total"] for r in data["executions_per_namespace_bars"]["results"]}
    assert bars == {("company.team", "SUCCESS"): 3, ("company.other", "FAILED"): 1}
    logs = data["logs_timeseries"]["results"]
    assert sum(r["total"] for r in logs if r["level"] == "INFO") >= 3
    response = await api.client.post("/api/v1/dashboards/_default/charts/recent_executions/export/to-csv", json={})
    assert response.status_code == 200
    assert response.headers["Content-Disposition"] == 'attachment; filename="_default_recent_executions_export.csv"'
    lines = (await response.get_data()).decode().splitlines()
    assert lines[0] == "id,namespace,flow,start_date,state" and len(lines) == 5
    assert sorted(line.split(",")[0] for line in lines[1:]) == sorted(ids["ok"] + ids["ko"])
    status, body = await api.call("POST", "/api/v1/dashboards/_default/charts/total_executions_pie/export/to-csv",
                                  json={})
    assert status == 422 and "Only Table" in body["message"]
    assert (await api.call("POST", "/api/v1/dashboards/_default/charts/nope", json={}))[0] == 404
    assert (await api.call("POST", "/api/v1/dashboards/missing/charts/x", json={}))[0] == 404
    # the window may not exceed the dashboard's max
    status, body = await api.call("POST", "/api/v1/dashboards/_default/charts/kpi_pending", json={"filters": [
        {"field": "startDate", "operation": "GREATER_THAN_OR_EQUAL_TO", "value": "2020-01-01T00:00:00Z"},
        {"field": "endDate", "operation": "LESS_THAN_OR_EQUAL_TO", "value": "2026-12-31T00:00:00Z"}]})
    assert status == 422 and "max" in body["message"]


async def test_preview_of_each_chart_type(api: Any) -> None:
    ids = await seed(api)
    timeseries = chart("ts", "TimeSeries", "Executions", """\
columns:
  date: {field: START_DATE}
  ns: {field: NAMESPACE}
  total: {agg: COUNT}
  longest: {field: DURATION, agg: MAX}
""", options="{column: date}")
    status, body = await preview(api, timeseries, [{"field": "timeRange", "operation": "EQUALS", "value": "PT1H"}])
    assert status == 200, body
    per_ns = {}
    for row in body["results"]:
        assert row["date"].endswith(":00.000Z")   # minute buckets over one hour
        per_ns[row["ns"]] = per_ns.get(row["ns"], 0) + row["total"]
        assert isinstance(row["longest"], float) and row["longest"] >= 0
    assert per_ns == {"company.team": 3, "company.other": 1}

    table = chart("t", "Table", "Executions", """\
columns:
  id: {field: ID}
  flow: {field: FLOW_ID}
where:
  - {field: NAMESPACE, type: PREFIX, value: company.team}
orderBy: [{column: id, order: ASC}]
""")
    status, body = await preview(api, table)
    assert status == 200 and body["results"] == [{"id": i, "flow": "ok"} for i in sorted(ids["ok"])]
    # a global namespace filter replaces the chart's own namespace condition (Kestra's whereWithGlobalFilters)
    status, body = await preview(api, table, [{"field": "namespace", "operation": "EQUALS", "value": "company.other"}])
    assert status == 200 and body["results"] == [{"id": ids["ko"][0], "flow": "ko"}]

    bar = chart("b", "Bar", "Executions", """\
columns:
  flow: {field: FLOW_ID}
  n: {field: ID, agg: COUNT}
orderBy: [{column: n, order: DESC}]
""", options="{column: flow}")
    assert (await preview(api, bar))[1]["results"] == [{"flow": "ok", "n": 3}, {"flow": "ko", "n": 1}]

    kpi = chart("k", "KPI", "ExecutionsKPI", """\
columns: {field: ID, agg: COUNT}
where: [{field: STATE, type: EQUAL_TO, value: FAILED}]
""")
    assert (await preview(api, kpi))[1] == {"results": [{"value": 1.0}], "total": 1}

    logs_pie = chart("lp", "Pie", "Logs", """\
columns:
  flow: {field: FLOW_ID}
  lines: {agg: COUNT}
where: [{field: MESSAGE, type: CONTAINS, value: hello}]
""")
    status, body = await preview(api, logs_pie)
    assert status == 200 and body["results"] == [{"flow": "ok", "lines": 3}]

    logs_kpi = chart("lk", "KPI", "LogsKPI", """\
columns: {field: EXECUTION_ID, agg: COUNT}
numerator: [{field: FLOW_ID, type: EQUAL_TO, value: ok}]
where: [{field: MESSAGE, type: REGEX, value: "^hel+o$"}]
""", options="{numberType: PERCENTAGE}")
    assert (await preview(api, logs_kpi))[1]["results"] == [{"value": 100.0}]

    logs_table = chart("lt", "Table", "Logs", """\
columns:
  execution: {field: EXECUTION_ID}
  message: {field: MESSAGE}
where: [{field: MESSAGE, type: EQUAL_TO, value: hello}]
""")
    status, body = await preview(api, logs_table)
    assert status == 200 and sorted(r["execution"] for r in body["results"]) == sorted(ids["ok"])
    response = await api.client.post("/api/v1/dashboards/charts/export/to-csv", json={"chart": logs_table})
    assert response.status_code == 200
    assert sorted((await response.get_data()).decode().splitlines()) == \
        sorted(["execution,message"] + [f"{i},hello" for i in ids["ok"]])
    # a window before the executions holds nothing
    status, body = await preview(api, logs_table, [
        {"field": "startDate", "operation": "GREATER_THAN_OR_EQUAL_TO", "value": "2001-01-01T00:00:00Z"},
        {"field": "endDate", "operation": "LESS_THAN_OR_EQUAL_TO", "value": "2001-01-02T00:00:00Z"}])
    assert (status, body) == (200, {"results": [], "total": 0})


async def test_preview_rejects_bad_charts(api: Any) -> None:
    cases = [
        ({"chart": "type: [oops"}, 422),
        ({"chart": f"id: m\ntype: {P}.chart.Markdown\ncontent: hi\n"}, 422),
        ({"chart": f"id: k\ntype: {P}.chart.KPI\ndata:\n  type: {P}.data.ExecutionsKPI\n  columns: {{field: ID}}\n"}, 422),
        ({"chart": f"id: r\ntype: {P}.chart.Table\ndata:\n  type: {P}.data.Executions\n  columns: {{i: {{field: ID}}}}\n"
                   "  where: [{field: ID, type: REGEX, value: '(a'}]\n"}, 422),
        ({}, 422),
        ({"chart": f"id: t\ntype: {P}.chart.Table\ndata:\n  type: {P}.data.Executions\n  columns: {{i: {{field: ID}}}}\n",
          "globalFilter": {"filters": [{"field": "color", "operation": "EQUALS", "value": "red"}]}}, 400),
    ]
    for body, expected in cases:
        status, answer = await api.call("POST", "/api/v1/dashboards/charts/preview", json=body)
        assert status == expected, (body, status, answer)
    status, _ = await api.call("POST", "/api/v1/dashboards/charts/preview", data="{", headers={"Content-Type": "application/json"})
    assert status == 400


async def test_metrics_triggers_and_markdown_charts(api: Any) -> None:
    await api.flow(OK.replace("tasks:", "description: Says hello\ntasks:"))
    now = datetime.now(UTC)
    stamp = now.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    api.engine.store.append_metrics_nowait([
        {"namespace": ns, "flowId": flow, "taskId": "t", "executionId": "e", "taskRunId": "tr", "type": "counter",
         "name": name, "value": value, "timestamp": stamp, "tags": {}}
        for ns, flow, name, value in (("company.team", "ok", "rows", 3.0), ("company.team", "ok", "rows", 5.0),
                                      ("company.other", "ko", "rows", 100.0), ("company.team", "ok", "bytes", 7.0))])
    for flow, disabled in (("ok", False), ("ko", True)):
        await api.engine.store.save_trigger({"namespace": "company.team", "flowId": flow, "triggerId": "daily",
                                             "date": stamp, "nextExecutionDate": stamp, "disabled": disabled})
    await api.engine.store.flush()

    metrics = chart("m", "Bar", "Metrics", """\
columns:
  name: {field: NAME}
  total: {field: VALUE, agg: SUM}
  mean: {field: VALUE, agg: AVG}
orderBy: [{column: name}]
""", options="{column: name}")
    status, body = await preview(api, metrics, [{"field": "namespace", "operation": "EQUALS", "value": "company.team"}])
    assert status == 200, body
    assert body["results"] == [{"name": "bytes", "total": 7.0, "mean": 7.0}, {"name": "rows", "total": 8.0, "mean": 4.0}]
    metrics_kpi = chart("mk", "KPI", "MetricsKPI", """\
columns: {field: VALUE, agg: MAX}
where: [{field: NAME, type: EQUAL_TO, value: rows}]
""")
    assert (await preview(api, metrics_kpi))[1]["results"] == [{"value": 100.0}]
    assert (await preview(api, metrics_kpi, [{"field": "state", "operation": "EQUALS", "value": "FAILED"}]))[0] == 400

    status, default = await api.call("POST", "/api/v1/dashboards/_default/charts/next_executions", json={})
    assert status == 200 and default["results"] == [{"namespace": "company.team", "flowId": "ok", "nextExec": stamp}]
    triggers = chart("tr", "Table", "Triggers", """\
columns:
  id: {field: ID}
  off: {field: DISABLED}
orderBy: [{column: id}]
""")
    assert (await preview(api, triggers, [{"field": "flowId", "operation": "EQUALS", "value": "ko"}]))[1]["results"] == \
        [{"id": "main_company.team_ko_daily", "off": True}]

    await api.flow(KO)
    flows_kpi = chart("fk", "KPI", "FlowsKPI", """\
columns: {field: ID, agg: COUNT}
""")
    assert (await preview(api, flows_kpi))[1]["results"] == [{"value": 2.0}]
    flows_table = chart("ft", "Table", "Flows", """\
columns:
  id: {field: ID}
  revision: {field: REVISION}
where: [{field: NAMESPACE, type: EQUAL_TO, value: company.team}]
""")
    assert (await preview(api, flows_table))[1]["results"] == [{"id": "ok", "revision": 1}]
    status, body = await preview(api, flows_table, [{"field": "namespace", "operation": "PREFIX", "value": "company.other"}])
    assert (status, body["results"]) == (200, [{"id": "ko", "revision": 1}])
    assert (await preview(api, flows_table, [{"field": "flowId", "operation": "EQUALS", "value": "ok"}]))[0] == 400

    described = f"""id: md
type: {P}.chart.Markdown
source: {{type: FlowDescription, namespace: company.team, flowId: ok}}
"""
    assert (await preview(api, described))[1] == {"results": [{"description": "Says hello"}], "total": 1}
    missing = described.replace("flowId: ok", "flowId: nope")
    assert (await preview(api, missing))[0] == 422
    status, body = await api.call("POST", "/api/v1/dashboards/validate/chart", data=described, headers=YAML)
    assert (status, body) == (200, {"index": 0})
    status, body = await api.call("POST", "/api/v1/dashboards/validate/chart", data=described.replace(
        "FlowDescription", "Html"), headers=YAML)
    assert status == 200 and "Text or FlowDescription" in body["constraints"]
