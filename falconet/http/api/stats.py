"""``/api/v1/stats/...``: the 0.x statistics Kestra's UI charts (home, flows, executions, logs, namespace
pages), computed from the store by :mod:`falconet.runtime.reports.stats`.

Every route is a ``POST`` with a JSON body (Kestra's request records). Other keys are ignored, as Kestra's
JSON binding ignores them — Kestra's UI sends whole trigger objects to ``logs/daily``:

- ``summary`` ``{namespace}`` → ``{flows, triggers}`` (namespace prefix; the triggers the flows declare)
- ``executions/daily`` and ``taskruns/daily`` ``{q, scope, namespace, flowId, startDate, endDate, state}``
  → ``[DailyExecutionStatistics]``
- ``executions/daily/group-by-flow`` ``{q, namespace, flowId, flows, startDate, endDate, namespaceOnly}``
- ``executions/daily/group-by-namespace`` ``{namespace, startDate, endDate}``
- ``executions/latest/group-by-flow`` ``{flows: [{namespace, id}]}`` → the latest ended execution per flow
- ``logs/daily`` ``{q, namespace, flowId, logLevel, startDate, endDate}`` → ``[LogStatistics]``

The window defaults to the last 30 days (Kestra's default); a start after the end is a 422. At most
:data:`SCAN_LIMIT` executions or log lines of the window are read per request.
"""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from quart import Blueprint

from falconet.runtime.kernel.errors import BadRequest, IllegalArgument
from falconet.runtime.store.base import ExecutionQuery, LogQuery
from falconet.sdk.logs import LogLevel
from falconet.http.api.common import engine, json_object_body, json_response, public_execution, scan_pages
from falconet.http.api.params import parse_datetime, parse_state

bp = Blueprint("stats", __name__)

BODY_LIMIT = 1024 * 1024
SCAN_LIMIT = 200_000
_PAGE = 1000
SYSTEM_NAMESPACE = "system"


def _str(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise BadRequest(f"'{name}' must be a string")
    return value


def _window(body: dict[str, Any]) -> tuple[datetime, datetime]:
    now = engine().clock.now()
    start = _str(body, "startDate")
    end = _str(body, "endDate")
    end_at = parse_datetime("endDate", end).astimezone(UTC) if end else now
    start_at = parse_datetime("startDate", start).astimezone(UTC) if start else now - timedelta(days=30)
    if start_at > end_at:
        raise IllegalArgument("Start date must be before End Date")
    return start_at, end_at


def _flows(body: dict[str, Any]) -> set[tuple[str, str]] | None:
    value = body.get("flows")
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(f, dict) for f in value):
        raise BadRequest("'flows' must be a list of {namespace, id}")
    pairs: set[tuple[str, str]] = set()
    for f in value:
        namespace, flow_id = f.get("namespace"), f.get("id")
        if not isinstance(namespace, str) or not isinstance(flow_id, str):
            return None   # Kestra ignores a flows filter without namespace and id
        pairs.add((namespace, flow_id))
    return pairs


def _scope_ok(doc: dict[str, Any], scope: list[str] | None) -> bool:
    if not scope:
        return True
    system = doc.get("namespace") == SYSTEM_NAMESPACE
    return ("SYSTEM" in scope and system) or ("USER" in scope and not system)


def _scopes(body: dict[str, Any]) -> list[str] | None:
    value = body.get("scope")
    if value is None:
        return None
    if not isinstance(value, list) or any(v not in ("USER", "SYSTEM") for v in value):
        raise BadRequest("'scope' must be a list of USER, SYSTEM")
    return value


def _states(body: dict[str, Any]) -> list[str]:
    value = body.get("state")
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BadRequest("'state' must be a list of states")
    return [parse_state("state", v) for v in value]


async def _executions(body: dict[str, Any], start: datetime, end: datetime, *,
                      exact_namespace: bool = False) -> list[dict[str, Any]]:
    namespace = _str(body, "namespace")
    query = ExecutionQuery(q=_str(body, "q"), namespace=namespace, flow_id=_str(body, "flowId"),
                           states=_states(body), start_date=start, end_date=end, size=_PAGE)
    out = await scan_pages(engine().store.search_executions, query, SCAN_LIMIT)
    if exact_namespace and namespace is not None:
        out = [d for d in out if d.get("namespace") == namespace]
    return out


@bp.post("/stats/summary")
async def summary() -> Any:
    body = await json_object_body(BODY_LIMIT)
    namespace = _str(body, "namespace")

    def under(ns: str) -> bool:
        return namespace is None or ns == namespace or ns.startswith(namespace + ".")

    flows = [f for f in await engine().list_flows() if under(f.namespace)]
    # Kestra counts its trigger records: one per trigger a flow declares
    return json_response({"flows": len(flows), "triggers": sum(len(f.triggers) for f in flows)})


@bp.post("/stats/executions/daily")
async def executions_daily() -> Any:
    from falconet.runtime.reports import stats
    body = await json_object_body(BODY_LIMIT)
    start, end = _window(body)
    scope = _scopes(body)
    docs = [d for d in await _executions(body, start, end) if _scope_ok(d, scope)]
    return json_response(stats.daily_executions(docs, start, end))


@bp.post("/stats/taskruns/daily")
async def taskruns_daily() -> Any:
    """Kestra answers this from task runs only with its task-run index (``isTaskRunEnabled``, off in OSS);
    like Kestra without it, the executions' statistics are returned."""
    return await executions_daily()


@bp.post("/stats/executions/daily/group-by-flow")
async def executions_by_flow() -> Any:
    from falconet.runtime.reports import stats
    body = await json_object_body(BODY_LIMIT)
    start, end = _window(body)
    flows = _flows(body)
    docs = await _executions(body, start, end)
    if flows is not None:
        docs = [d for d in docs if (d.get("namespace"), d.get("flowId")) in flows]
    return json_response(stats.daily_by_flow(docs, start, end, namespace_only=body.get("namespaceOnly") is True))


@bp.post("/stats/executions/daily/group-by-namespace")
async def executions_by_namespace() -> Any:
    from falconet.runtime.reports import stats
    body = await json_object_body(BODY_LIMIT)
    start, end = _window(body)
    return json_response(stats.counts_by_namespace(await _executions(body, start, end, exact_namespace=True)))


@bp.post("/stats/executions/latest/group-by-flow")
async def latest_by_flow() -> Any:
    from falconet.runtime.reports import stats
    body = await json_object_body(BODY_LIMIT)
    flows = _flows(body)
    docs: list[dict[str, Any]] = []
    selected: list[tuple[str | None, str | None]] = sorted(flows) if flows else [(None, None)]
    for namespace, flow_id in selected:
        query = ExecutionQuery(namespace=namespace, flow_id=flow_id, size=_PAGE, sort=["state.endDate:desc"])
        page, _ = await engine().store.search_executions(query)
        docs.extend(d for d in page if namespace is None or d.get("namespace") == namespace)
    return json_response([public_execution(d) for d in stats.latest_by_flow(docs, flows)])


@bp.post("/stats/logs/daily")
async def logs_daily() -> Any:
    from falconet.runtime.reports import stats
    body = await json_object_body(BODY_LIMIT)
    start, end = _window(body)
    level = _str(body, "logLevel")
    if level is not None and level not in LogLevel.names():
        raise BadRequest(f"Invalid logLevel '{level}': expected one of {', '.join(LogLevel.names())}")
    query = LogQuery(namespace=_str(body, "namespace"), flow_id=_str(body, "flowId"), min_level=level,
                     q=_str(body, "q"), start_date=start, end_date=end, page=1, size=10 * _PAGE)
    logs = await scan_pages(engine().store.get_logs, query, SCAN_LIMIT)
    return json_response(stats.daily_logs(logs, start, end))
