"""``/api/v1/dashboards``: Kestra 1.x dashboards (``DashboardController``) over
:mod:`falconet.runtime.reports.dashboards`.

- ``GET dashboards`` ``?page&size&q&sort`` → ``PagedResults<Dashboard>`` (``q``: in the id or title)
- ``POST dashboards`` (YAML, no ``id``: Kestra generates it) → the dashboard; ``PUT dashboards/{id}`` (YAML)
  replaces it (404 when missing); ``GET``/``DELETE dashboards/{id}`` (204). ``_default`` is Kestra's
  built-in overview dashboard (:data:`DEFAULT_SOURCE`), never stored.
- ``POST dashboards/{id}/charts/{chartId}/export/to-csv`` (a GlobalFilter) and ``POST
  dashboards/charts/export/to-csv`` (a preview request): a Table chart's rows as a CSV attachment.
- ``POST dashboards/validate`` and ``POST dashboards/validate/chart`` (YAML) → ``{index: 0, constraints?}``
- ``POST dashboards/{id}/charts/{chartId}`` ``{filters: [QueryFilter], pageNumber, pageSize}`` and
  ``POST dashboards/charts/preview`` ``{chart: "<YAML>", globalFilter: {filters, …}}`` →
  ``PagedResults<row>``. ``startDate``/``endDate``/``timeRange`` filters set the window (a dashboard's
  defaults to its ``timeWindow.default`` and may not exceed its ``max``; a preview's to the last 8 days);
  the other filters are Kestra's ``QueryFilter`` on the chart's source (executions, logs, triggers: every
  field of their search routes; metrics: namespace and flowId; flows: namespace) and replace the chart's own
  ``where`` on namespace, flowId, state and labels (flows: namespace), as Kestra's ``whereWithGlobalFilters``. A
  Markdown chart's data is its ``FlowDescription`` source's ``[{description}]``; other Markdown charts have
  no data (422, as Kestra).

Dashboards are stored in the store's generic state (kind ``dashboard``), so both backends keep them.
At most :data:`SCAN_LIMIT` executions, log lines, metrics or triggers are read per chart. The model is
imported by the functions that use it: a server that serves no dashboard does not load it.
"""
from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from quart import Blueprint, Response, request

from falconet.runtime.kernel.errors import BadRequest, IllegalArgument, InvalidEntity, NotFound, Violation
from falconet.runtime.flow.parse.yamlload import YamlError, load_documents
from falconet.runtime.store.base import ExecutionQuery, LogQuery
from falconet.http import filters
from falconet.http.multipart import read_body
from falconet.http.api import executions as executions_api, logs as logs_api, triggers as triggers_api
from falconet.http.api.common import (
    TENANT, content_disposition, empty, engine, json_object_body, json_response, page_slice, paged, scan_pages,
)

bp = Blueprint("dashboards", __name__)

KIND = "dashboard"
BODY_LIMIT = 1024 * 1024
SCAN_LIMIT = 200_000
_PAGE = 1000
PREVIEW_WINDOW = timedelta(days=8)
#: Kestra QueryFilter field → the dashboard field it overrides, per source
_OVERRIDES = {"Executions": {"namespace": "NAMESPACE", "flowId": "FLOW_ID", "state": "STATE", "labels": "LABELS"},
              "Logs": {"namespace": "NAMESPACE", "flowId": "FLOW_ID"},
              "Triggers": {"namespace": "NAMESPACE", "flowId": "FLOW_ID"}}
_ACCESSORS = {"Executions": executions_api.ACCESSORS, "Logs": logs_api.ACCESSORS, "Triggers": triggers_api.ACCESSORS}
#: the sources whose GlobalFilter is Kestra's QueryFilter on the search routes → its resource
_FILTER_RESOURCES = {"Executions": "EXECUTION", "Logs": "LOG", "Triggers": "TRIGGER"}
_WINDOW_FIELDS = ("startDate", "endDate", "timeRange")

DEFAULT_SOURCE = """title: Overview
description: Default overview of executions and logs
timeWindow:
  default: PT24H
  max: P365D
charts:
  - id: kpi_success_ratio
    type: io.kestra.plugin.core.dashboard.chart.KPI
    chartOptions: {displayName: Success Ratio, numberType: PERCENTAGE, width: 3}
    data:
      type: io.kestra.plugin.core.dashboard.data.ExecutionsKPI
      columns: {field: ID, agg: COUNT}
      numerator: [{type: IN, field: STATE, values: [SUCCESS]}]
  - id: kpi_failed_ratio
    type: io.kestra.plugin.core.dashboard.chart.KPI
    chartOptions: {displayName: Failed Ratio, numberType: PERCENTAGE, width: 3}
    data:
      type: io.kestra.plugin.core.dashboard.data.ExecutionsKPI
      columns: {field: ID, agg: COUNT}
      numerator: [{type: IN, field: STATE, values: [FAILED]}]
  - id: kpi_in_progress
    type: io.kestra.plugin.core.dashboard.chart.KPI
    chartOptions: {displayName: In Progress, numberType: FLAT, width: 3}
    data:
      type: io.kestra.plugin.core.dashboard.data.ExecutionsKPI
      columns: {field: ID, agg: COUNT}
      numerator: [{type: IN, field: STATE, values: [RUNNING, PAUSED, KILLING, RETRYING, RESTARTED]}]
  - id: kpi_pending
    type: io.kestra.plugin.core.dashboard.chart.KPI
    chartOptions: {displayName: Pending, numberType: FLAT, width: 3}
    data:
      type: io.kestra.plugin.core.dashboard.data.ExecutionsKPI
      columns: {field: ID, agg: COUNT}
      numerator: [{type: IN, field: STATE, values: [CREATED, QUEUED]}]
  - id: total_executions_timeseries
    type: io.kestra.plugin.core.dashboard.chart.TimeSeries
    chartOptions: {displayName: Executions over time, column: date, colorByColumn: state, width: 8,
                   legend: {enabled: true}}
    data:
      type: io.kestra.plugin.core.dashboard.data.Executions
      columns:
        date: {field: START_DATE, displayName: Date}
        state: {field: STATE}
        total: {displayName: Executions, agg: COUNT, graphStyle: BARS}
        duration: {field: DURATION, displayName: Duration, agg: SUM, graphStyle: LINES}
  - id: total_executions_pie
    type: io.kestra.plugin.core.dashboard.chart.Pie
    chartOptions: {displayName: Executions by status, graphStyle: DONUT, width: 4}
    data:
      type: io.kestra.plugin.core.dashboard.data.Executions
      columns:
        id: {field: ID, displayName: Execution Id, agg: COUNT}
        state: {field: STATE, displayName: State}
  - id: recent_executions
    type: io.kestra.plugin.core.dashboard.chart.Table
    chartOptions: {displayName: Executions, width: 6, pagination: {enabled: true}}
    data:
      type: io.kestra.plugin.core.dashboard.data.Executions
      columns:
        id: {field: ID, displayName: Execution ID}
        namespace: {field: NAMESPACE, displayName: Namespace}
        flow: {field: FLOW_ID, displayName: Flow}
        start_date: {field: START_DATE, displayName: Start Date}
        state: {field: STATE, displayName: State}
      orderBy: [{column: start_date, order: DESC}]
  - id: next_executions
    type: io.kestra.plugin.core.dashboard.chart.Table
    chartOptions: {displayName: Next Executions, width: 6, pagination: {enabled: true}}
    data:
      type: io.kestra.plugin.core.dashboard.data.Triggers
      where: [{field: DISABLED, type: EQUAL_TO, value: false}]
      columns:
        namespace: {field: NAMESPACE, displayName: Namespace}
        flowId: {field: FLOW_ID, displayName: Flow}
        nextExec: {field: NEXT_EXECUTION_DATE, displayName: Next Execution Date}
  - id: executions_per_namespace_bars
    type: io.kestra.plugin.core.dashboard.chart.Bar
    chartOptions: {displayName: Executions (per namespace), column: namespace, width: 12, legend: {enabled: true}}
    data:
      type: io.kestra.plugin.core.dashboard.data.Executions
      columns:
        namespace: {field: NAMESPACE}
        state: {field: STATE}
        total: {displayName: Executions, agg: COUNT}
  - id: logs_timeseries
    type: io.kestra.plugin.core.dashboard.chart.TimeSeries
    chartOptions: {displayName: Logs, column: date, colorByColumn: level, width: 12, legend: {enabled: true}}
    data:
      type: io.kestra.plugin.core.dashboard.data.Logs
      columns:
        date: {field: DATE, displayName: Execution Date}
        level: {field: LEVEL}
        total: {displayName: Total Logs, agg: COUNT, graphStyle: BARS}
"""


def _now() -> str:
    return engine().clock.now().strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def load_yaml(source: str) -> Any:
    """One YAML document read as flow sources are (bounded, YAML 1.2 scalars, string keys, duplicate keys
    refused — Kestra's Jackson parser); 422 otherwise."""
    try:
        docs = load_documents(source)
    except YamlError as exc:
        raise InvalidEntity(exc.violations) from None
    if len(docs) != 1:
        raise InvalidEntity([Violation("", "expected a single YAML document")])
    if docs[0].violations:
        raise InvalidEntity(docs[0].violations)
    return docs[0].value


def parse_source(source: str) -> dict[str, Any]:
    """A dashboard YAML source, loaded and validated (422 otherwise)."""
    from falconet.runtime.reports import dashboards as model
    return model.validate_dashboard(load_yaml(source))


def default_dashboard() -> dict[str, Any]:
    from falconet.runtime.reports import dashboards as model
    doc = parse_source(DEFAULT_SOURCE)
    return {"tenantId": TENANT, "id": model.DEFAULT_ID, **doc, "deleted": False,
            "sourceCode": f"id: {model.DEFAULT_ID}\n{DEFAULT_SOURCE}"}


async def _yaml_body() -> str:
    raw = await read_body(request, BODY_LIMIT)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("The dashboard source is not UTF-8") from None


async def _get(dashboard_id: str) -> dict[str, Any] | None:
    from falconet.runtime.reports import dashboards as model
    if dashboard_id == model.DEFAULT_ID:
        return default_dashboard()
    return await engine().store.state_get(KIND, dashboard_id)


@bp.get("/dashboards")
async def search_dashboards() -> Any:
    filters.check_params(request.args, ("page", "size", "q", "sort"))
    page, size = _int("page", 1), _int("size", 10)
    q = (request.args.get("q") or "").lower()
    items = [d for _, d in await engine().store.state_list(KIND)
             if not q or q in d["id"].lower() or q in d["title"].lower()]
    sort = request.args.get("sort") or "title:asc"
    name, _, order = sort.partition(":")
    if name not in ("id", "title", "created", "updated"):
        raise BadRequest(f"Invalid sort field '{name}': expected one of id, title, created, updated")
    items.sort(key=lambda d: str(d.get(name) or ""), reverse=order == "desc")
    return paged(page_slice(items, page, size), len(items))


def _int(name: str, default: int) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"'{name}' must be an integer") from None
    if value < 1 or value > 100_000:
        raise BadRequest(f"'{name}' must be between 1 and 100000")
    return value


@bp.get("/dashboards/<dashboard_id>")
async def get_dashboard(dashboard_id: str) -> Any:
    doc = await _get(dashboard_id)
    if doc is None:
        raise NotFound(f"Dashboard '{dashboard_id}' not found")
    return json_response(doc)


@bp.post("/dashboards")
async def create_dashboard() -> Any:
    source = await _yaml_body()
    doc = parse_source(source)
    if doc.get("id") is not None:
        raise IllegalArgument("Dashboard id is not editable")
    now = _now()
    saved = {"tenantId": TENANT, "id": uuid.uuid4().hex[:22], **doc, "deleted": False,
             "created": now, "updated": now, "sourceCode": source}
    await engine().store.state_put(KIND, saved["id"], saved)
    return json_response(saved)


@bp.post("/dashboards/validate")
async def validate_dashboard() -> Any:
    source = await _yaml_body()
    try:
        parse_source(source)
    except InvalidEntity as exc:
        return json_response({"index": 0, "constraints": str(exc)})
    return json_response({"index": 0})


@bp.post("/dashboards/validate/chart")
async def validate_chart() -> Any:
    source = await _yaml_body()
    try:
        _parse_chart(source)
    except InvalidEntity as exc:
        return json_response({"index": 0, "constraints": str(exc)})
    return json_response({"index": 0})


def _parse_chart(source: Any) -> dict[str, Any]:
    from falconet.runtime.reports import dashboards as model
    if not isinstance(source, str) or len(source) > BODY_LIMIT:
        raise InvalidEntity([Violation("chart", "must be the chart's YAML source")])
    chart = load_yaml(source)
    model.validate_chart(chart)
    return chart


@bp.put("/dashboards/<dashboard_id>")
async def update_dashboard(dashboard_id: str) -> Any:
    existing = await engine().store.state_get(KIND, dashboard_id)
    if existing is None:
        raise NotFound(f"Dashboard '{dashboard_id}' not found")
    source = await _yaml_body()
    doc = parse_source(source)
    doc.pop("id", None)
    saved = {"tenantId": TENANT, "id": dashboard_id, **doc, "deleted": False,
             "created": existing.get("created"), "updated": _now(), "sourceCode": source}
    await engine().store.state_put(KIND, dashboard_id, saved)
    return json_response(saved)


@bp.delete("/dashboards/<dashboard_id>")
async def delete_dashboard(dashboard_id: str) -> Any:
    if not await engine().store.state_delete(KIND, dashboard_id):
        raise NotFound(f"Dashboard '{dashboard_id}' not found")
    return empty(204)


def _split(items: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(window filters, other filters) of a GlobalFilter's ``filters``."""
    if items is None:
        return [], []
    if not isinstance(items, list) or len(items) > filters.MAX_FILTERS:
        raise InvalidEntity([Violation("filters", f"expected a list of at most {filters.MAX_FILTERS} filters")])
    if not all(isinstance(i, dict) for i in items):
        raise InvalidEntity([Violation("filters", "expected {\"field\", \"operation\", \"value\"} items")])
    window = [i for i in items if i.get("field") in _WINDOW_FIELDS]
    return window, [i for i in items if i.get("field") not in _WINDOW_FIELDS]


def _window(items: list[dict[str, Any]]) -> tuple[datetime | None, datetime | None]:
    from falconet.runtime.reports import dashboards as model
    start = end = None
    for item in items:
        value = item.get("value")
        if item["field"] == "timeRange":
            start = engine().clock.now() - model.parse_duration("timeRange", value)
            end = engine().clock.now()
            continue
        when = model.parse_date(value)
        if when is None:
            raise InvalidEntity([Violation(item["field"], f"invalid date '{value}'")])
        if item["field"] == "startDate":
            start = when.astimezone(UTC)
        else:
            end = when.astimezone(UTC)
    if start and end and end < start:
        raise IllegalArgument("`endDate` must be after `startDate`.")
    return start, end


async def _docs(source: str, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """The documents of ``source`` in the window (triggers: every trigger context, as Kestra does not
    window them)."""
    store = engine().store
    if source == "Executions":
        return await scan_pages(store.search_executions, ExecutionQuery(start_date=start, end_date=end, size=_PAGE),
                                SCAN_LIMIT)
    if source == "Metrics":
        return (await store.get_metrics(start_date=start, end_date=end))[:SCAN_LIMIT]
    if source == "Triggers":
        return (await store.list_triggers())[:SCAN_LIMIT]
    if source == "Flows":
        return [{"id": f.id, "namespace": f.namespace, "revision": f.revision}
                for f in (await store.list_flows())[:SCAN_LIMIT]]
    return await scan_pages(store.get_logs, LogQuery(start_date=start, end_date=end, page=1, size=10 * _PAGE),
                            SCAN_LIMIT)


def _global_where(source: str, others: list[dict[str, Any]]) -> tuple[Any, set[str], list[dict[str, Any]]]:
    """(filter group over the source's documents or None, chart fields they override, extra ``where``
    items) of a GlobalFilter's non-window filters."""
    from falconet.runtime.reports import dashboards as model
    if source in _FILTER_RESOURCES:
        return (filters.parse_json(others, _FILTER_RESOURCES[source]), _overrides(source, others), [])
    extra = []   # metrics (namespace, flowId) and flows (namespace): Kestra's own translation to ``where``
    allowed = ("namespace", "flowId") if source == "Metrics" else ("namespace",)
    for i, item in enumerate(others):
        field, op = item.get("field"), item.get("operation")
        if field not in allowed:
            raise BadRequest(f"Filter field '{field}' is not supported on {source.lower()} "
                             f"(expected {', '.join(allowed)})")
        if op not in _METRIC_OPS:
            raise BadRequest(f"Operation '{op}' is not supported on field '{field}'")
        value = item.get("value")
        entry: dict[str, Any] = {"field": "NAMESPACE" if field == "namespace" else "FLOW_ID", "type": _METRIC_OPS[op]}
        if op in ("IN", "NOT_IN"):
            entry["values"] = value if isinstance(value, list) else str(value).split(",")
        else:
            entry["value"] = value
        model.validate_filters(f"filters[{i}]", [entry], source)
        extra.append(entry)
    return None, ({"NAMESPACE"} if source == "Flows" and extra else set()), extra


_METRIC_OPS = {"EQUALS": "EQUAL_TO", "NOT_EQUALS": "NOT_EQUAL_TO", "IN": "IN", "NOT_IN": "NOT_IN",
               "CONTAINS": "CONTAINS", "STARTS_WITH": "STARTS_WITH", "ENDS_WITH": "ENDS_WITH", "PREFIX": "PREFIX",
               "REGEX": "REGEX"}


def _overrides(source: str, others: list[dict[str, Any]]) -> set[str]:
    overrides = _OVERRIDES[source]
    return {overrides[f] for f in (i.get("field") for i in others) if isinstance(f, str) and f in overrides}


async def _markdown(chart: dict[str, Any]) -> list[dict[str, Any]]:
    source = chart.get("source")
    if isinstance(source, dict) and source.get("type") == "FlowDescription":
        flow = await engine().get_flow(source["namespace"], source["flowId"])
        if flow is None:
            raise IllegalArgument("Flow not found")
        return [{"description": flow.raw.get("description") or ""}]
    raise IllegalArgument("Only data charts can be generated.")


async def _chart_rows(chart: dict[str, Any], others: list[dict[str, Any]], start: datetime,
                      end: datetime) -> list[dict[str, Any]]:
    """The rows of ``chart`` (a KPI's ``[{value}]``, a Markdown chart's ``[{description}]``)."""
    from falconet.runtime.reports import dashboards as model
    kind = chart["type"].rsplit(".", 1)[-1]
    if kind == "Markdown":
        return await _markdown(chart)
    source = model.source_of(chart)
    where, overrides, extra = _global_where(source, others)
    data = dict(chart["data"])
    data["where"] = [w for w in data.get("where") or [] if w["field"] not in overrides] + extra
    chart = {**chart, "data": data}
    docs = await _docs(source, start, end)
    if where is not None:
        accessors = _ACCESSORS[source]
        wrap = (lambda d: {"triggerContext": d}) if source == "Triggers" else (lambda d: d)
        docs = [d for d in docs if where.matches(wrap(d), accessors)]
    if kind == "KPI":
        return model.kpi(chart, docs)
    return model.rows(chart, docs, start, end)


def _csv(chart: dict[str, Any], rows: list[dict[str, Any]], filename: str) -> Response:
    """Kestra's CSV export of a Table chart: a header of the columns, one line per row."""
    if not chart["type"].endswith(".Table"):
        raise IllegalArgument("Only Table data charts can be exported.")
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(chart["data"]["columns"]), extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    response = Response(buffer.getvalue().encode("utf-8"), status=200, content_type="application/octet-stream")
    response.headers["Content-Disposition"] = content_disposition(filename)
    return response


def _paging(body: dict[str, Any]) -> tuple[int, int] | None:
    number, size = body.get("pageNumber"), body.get("pageSize")
    if number is None or size is None:
        return None
    if not all(isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 100_000 for v in (number, size)):
        raise BadRequest("'pageNumber' and 'pageSize' must be integers between 1 and 100000")
    return number, size


async def _dashboard_chart(dashboard_id: str, chart_id: str, body: dict[str, Any]
                           ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    from falconet.runtime.reports import dashboards as model
    dashboard = await _get(dashboard_id)
    if dashboard is None:
        raise NotFound(f"Dashboard '{dashboard_id}' not found")
    window, others = _split(body.get("filters"))
    start, end = _window(window)
    if start is None or end is None:
        end = engine().clock.now()
        start = end - model.parse_duration("timeWindow.default", dashboard["timeWindow"]["default"])
    if end - start > model.parse_duration("timeWindow.max", dashboard["timeWindow"]["max"]):
        raise IllegalArgument("The queried window is larger than the max allowed one.")
    chart = next((c for c in dashboard.get("charts") or [] if c["id"] == chart_id), None)
    if chart is None:
        raise NotFound(f"Chart '{chart_id}' not found in dashboard '{dashboard_id}'")
    return chart, await _chart_rows(chart, others, start, end)


@bp.post("/dashboards/<dashboard_id>/charts/<chart_id>")
async def chart_data(dashboard_id: str, chart_id: str) -> Any:
    body = await json_object_body(BODY_LIMIT)
    page = _paging(body)
    _, rows = await _dashboard_chart(dashboard_id, chart_id, body)
    return paged(rows if page is None else page_slice(rows, *page), len(rows))


@bp.post("/dashboards/<dashboard_id>/charts/<chart_id>/export/to-csv")
async def export_chart_csv(dashboard_id: str, chart_id: str) -> Any:
    chart, rows = await _dashboard_chart(dashboard_id, chart_id, await json_object_body(BODY_LIMIT))
    return _csv(chart, rows, f"{dashboard_id}_{chart_id}_export.csv")


async def _preview(body: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    chart = _parse_chart(body.get("chart"))
    global_filter = body.get("globalFilter") or {}
    if not isinstance(global_filter, dict):
        raise InvalidEntity([Violation("globalFilter", "must be an object")])
    window, others = _split(global_filter.get("filters"))
    start, end = _window(window)
    end = end or engine().clock.now()
    start = start or end - PREVIEW_WINDOW
    return chart, await _chart_rows(chart, others, start, end)


@bp.post("/dashboards/charts/export/to-csv")
async def export_preview_csv() -> Any:
    chart, rows = await _preview(await json_object_body(BODY_LIMIT))
    return _csv(chart, rows, f"default-dashboard_{chart['id']}_export.csv")


@bp.post("/dashboards/charts/preview")
async def preview_chart() -> Any:
    _, rows = await _preview(await json_object_body(BODY_LIMIT))
    return paged(rows, len(rows))
