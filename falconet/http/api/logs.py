"""``/logs``: logs of an execution (filters), text download, search, delete. The SSE follow is in ``live.py``.

Falconet extensions for the web UI's log viewer (Kestra's clients never send them): ``GET /logs/{id}``
also takes ``q`` (a case-insensitive substring of the message), ``outsideTaskRuns=true`` (only the lines
of no task run) and, with ``page``/``size``, answers one
page as ``PagedResults``; ``GET /logs/{id}/counts`` answers the number of matching lines per task run.

LogEntry JSON: ``{namespace, flowId, taskId, executionId, taskRunId, attemptNumber, triggerId, timestamp,
level, thread, message, deleted}`` as the store keeps it.
"""
from __future__ import annotations

from typing import Any, AsyncIterator

from quart import Blueprint, Response, request

from falconet.runtime.kernel.errors import IllegalArgument
from falconet.runtime.store.base import LogQuery
from falconet.http import filters
from falconet.http.api import params
from falconet.http.api.common import content_disposition, empty, engine, json_response, paged, primed, with_tenant

bp = Blueprint("logs", __name__)

DOWNLOAD_PAGE = 2000
MAX_PAGE_SIZE = 5000


#: parameters of GET/DELETE /logs/{executionId} and its download (Kestra takes no filters[…] there);
#: ``q`` and ``outsideTaskRuns`` are Falconet's (the UI's log viewer), as ``page``/``size`` of the GET
EXECUTION_LOG_PARAMS = ("minLevel", "taskRunId", "taskId", "attempt", "q", "outsideTaskRuns")
#: legacy parameters of GET /logs/search
SEARCH_PARAMS = filters.PAGING | {"q", "namespace", "flowId", "triggerId", "minLevel", "startDate", "endDate",
                                  "timeRange", "scope"}
SCAN_PAGE = 2000

#: how each Kestra filter field reads a LogEntry
ACCESSORS: dict[str, Any] = {
    "q": lambda e: (e.get("message"), e.get("namespace"), e.get("flowId"), e.get("executionId"), e.get("taskId")),
    "scope": lambda e: filters.scope_of(e.get("namespace")),
    "namespace": lambda e: e.get("namespace"),
    "flowId": lambda e: e.get("flowId"),
    "triggerId": lambda e: e.get("triggerId"),
    "executionId": lambda e: e.get("executionId"),
    "level": lambda e: e.get("level"),
    "startDate": lambda e: e.get("timestamp"),
    "endDate": lambda e: e.get("timestamp"),
}


def execution_log_query(execution_id: str, args: Any, allowed: tuple[str, ...] = EXECUTION_LOG_PARAMS) -> LogQuery:
    """Filters of ``GET/DELETE /logs/{executionId}``: ``minLevel``, ``taskRunId``, ``taskId``, ``attempt``,
    ``q``, ``outsideTaskRuns``; any other parameter is a 400 (a DELETE never widens because a filter was not
    understood)."""
    filters.check_params(args, allowed)
    return LogQuery(
        execution_id=execution_id,
        min_level=params.opt_level(args),
        task_run_id=params.opt_str(args, "taskRunId"),
        task_id=params.opt_str(args, "taskId"),
        attempt=params.opt_int(args, "attempt", None, minimum=0),
        q=params.opt_str(args, "q"),
        outside_task_runs=params.opt_bool(args, "outsideTaskRuns", False),
    )


def log_line(entry: dict[str, Any]) -> str:
    """``<Instant ISO-8601> <LEVEL> <message>`` (the download format the ``kestra`` client reads)."""
    return f"{entry.get('timestamp', '')} {entry.get('level', '')} {entry.get('message', '')}\n"


#: what Kestra's UI strips from the trigger it echoes (the rest of its keys arrive as query parameters)
_ECHO_SKIPPED = {"tenantId", "namespace", "flowId", "flowRevision", "triggerId", "description"}


async def _trigger_echo(args: Any) -> set[str]:
    """Kestra's UI (flow → Triggers → logs) sends the selected trigger's definition and context as query
    parameters next to ``namespace``, ``flowId`` and ``triggerId`` (``id``, ``type``, ``cron``,
    ``sourceDisabled``, ``nextExecutionDate``…). Those names — the keys of *that* trigger, which the
    ``triggerId`` filter already selects — are accepted; any other unknown parameter is still a 400."""
    trigger_id, namespace, flow_id = args.get("triggerId"), args.get("namespace"), args.get("flowId")
    if not (trigger_id and namespace and flow_id):
        return set()
    flow = await engine().get_flow(namespace, flow_id)
    definition = next((t for t in (flow.raw.get("triggers") or []) if isinstance(t, dict)
                       and t.get("id") == trigger_id), None) if flow is not None else None
    if definition is None:
        return set()
    names = set(definition) | {"sourceDisabled"}
    context = await engine().store.get_trigger(namespace, flow_id, trigger_id)
    names |= set(context or ())
    names -= _ECHO_SKIPPED
    return names | {key for key in args.keys() if key.partition("[")[0] in names}


@bp.get("/logs/search")
async def search_logs() -> Any:
    """``PagedResults<LogEntry>``: ``q, namespace, flowId, triggerId, minLevel, startDate, endDate``, paging."""
    args = request.args
    where = filters.parse(args, "LOG", SEARCH_PARAMS | await _trigger_echo(args))
    scopes = [v for raw in args.getlist("scope") for v in raw.split(",") if v]
    if scopes:
        where = filters.Group("and", (*where.children, filters.typed_leaf("scope", "IN", "scope", tuple(scopes))))
    page, size, _sort = params.paging(args)
    start, end = params.time_window(args)
    query = LogQuery(
        namespace=params.opt_str(args, "namespace"),
        flow_id=params.opt_str(args, "flowId"),
        trigger_id=params.opt_str(args, "triggerId"),
        min_level=params.opt_level(args),
        q=params.opt_str(args, "q"),
        start_date=start,
        end_date=end,
        page=page,
        size=size,
    )
    store = engine().store
    if not where:
        entries, total = await store.get_logs(query)
        return paged([with_tenant(e) for e in entries], total)
    lo, hi = (page - 1) * size, page * size
    out: list[dict[str, Any]] = []
    total, scan = 0, 1
    while True:
        batch, _ = await store.get_logs(LogQuery(**{**query.__dict__, "page": scan, "size": SCAN_PAGE}))
        for entry in batch:
            if where.matches(entry, ACCESSORS):
                if lo <= total < hi:
                    out.append(with_tenant(entry))
                total += 1
        if len(batch) < SCAN_PAGE:
            return paged(out, total)
        scan += 1


@bp.get("/logs/<execution_id>")
async def execution_logs(execution_id: str) -> Any:
    """Every matching log line of an execution, in timestamp order (an unknown id gives ``[]``, as Kestra);
    with ``page`` or ``size``, one page of them as ``PagedResults``."""
    args = request.args
    query = execution_log_query(execution_id, args, (*EXECUTION_LOG_PARAMS, "page", "size"))
    if "page" not in args and "size" not in args:
        entries, _ = await engine().store.get_logs(query)
        return json_response([with_tenant(e) for e in entries])
    page, size, _sort = params.paging(args, default_size=500)
    if size > MAX_PAGE_SIZE:
        raise IllegalArgument(f"size must be at most {MAX_PAGE_SIZE}, got {size}")
    entries, total = await engine().store.get_logs(LogQuery(**{**query.__dict__, "page": page, "size": size}))
    return paged([with_tenant(e) for e in entries], total)


@bp.get("/logs/<execution_id>/counts")
async def execution_log_counts(execution_id: str) -> Any:
    """``{"counts": {taskRunId: n}}`` of the matching lines (key ``""`` for lines outside any task run)."""
    counts = await engine().store.count_logs_by_task_run(execution_log_query(execution_id, request.args))
    return json_response({"counts": {k or "": n for k, n in counts.items()}})


@bp.get("/logs/<execution_id>/download")
async def download_logs(execution_id: str) -> Any:
    """``text/plain`` attachment ``<executionId>.log``, one line per entry, read from the store page by page."""
    base = execution_log_query(execution_id, request.args)
    store = engine().store

    async def lines() -> AsyncIterator[bytes]:
        page = 1
        while True:
            query = LogQuery(**{**base.__dict__, "page": page, "size": DOWNLOAD_PAGE})
            entries, _ = await store.get_logs(query)
            if entries:
                yield "".join(log_line(e) for e in entries).encode("utf-8")
            if len(entries) < DOWNLOAD_PAGE:
                return
            page += 1

    response = Response(await primed(lines()), status=200, content_type="text/plain; charset=utf-8")
    response.headers["Content-Disposition"] = content_disposition(f"{execution_id}.log")
    response.timeout = None
    return response


@bp.delete("/logs/<execution_id>")
async def delete_execution_logs(execution_id: str) -> Any:
    """Delete the matching log lines of an execution: 200, empty."""
    await engine().store.delete_logs(execution_log_query(execution_id, request.args))
    return empty(200)


@bp.delete("/logs/<namespace>/<flow_id>")
async def delete_flow_logs(namespace: str, flow_id: str) -> Any:
    """Delete the log lines of a flow (``triggerId`` narrows to one trigger's): 200, empty."""
    filters.check_params(request.args, ("triggerId",))
    query = LogQuery(namespace=namespace, flow_id=flow_id, trigger_id=params.opt_str(request.args, "triggerId"))
    await engine().store.delete_logs(query)
    return empty(200)
