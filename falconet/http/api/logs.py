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

from ...runtime.errors import IllegalArgument
from ...runtime.store.base import LogQuery
from . import params
from .common import empty, engine, json_response, paged

bp = Blueprint("logs", __name__)

DOWNLOAD_PAGE = 2000
MAX_PAGE_SIZE = 5000


def execution_log_query(execution_id: str, args: Any) -> LogQuery:
    """Filters of ``GET/DELETE /logs/{executionId}``: ``minLevel``, ``taskRunId``, ``taskId``, ``attempt``."""
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


@bp.get("/logs/search")
async def search_logs() -> Any:
    """``PagedResults<LogEntry>``: ``q, namespace, flowId, triggerId, minLevel, startDate, endDate``, paging."""
    args = request.args
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
    entries, total = await engine().store.get_logs(query)
    return paged(entries, total)


@bp.get("/logs/<execution_id>")
async def execution_logs(execution_id: str) -> Any:
    """Every matching log line of an execution, in timestamp order (an unknown id gives ``[]``, as Kestra);
    with ``page`` or ``size``, one page of them as ``PagedResults``."""
    args = request.args
    query = execution_log_query(execution_id, args)
    if "page" not in args and "size" not in args:
        entries, _ = await engine().store.get_logs(query)
        return json_response(entries)
    page, size, _sort = params.paging(args, default_size=500)
    if size > MAX_PAGE_SIZE:
        raise IllegalArgument(f"size must be at most {MAX_PAGE_SIZE}, got {size}")
    entries, total = await engine().store.get_logs(LogQuery(**{**query.__dict__, "page": page, "size": size}))
    return paged(entries, total)


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

    response = Response(lines(), status=200, content_type="text/plain; charset=utf-8")
    response.headers["Content-Disposition"] = f'attachment; filename="{execution_id}.log"'
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
    query = LogQuery(namespace=namespace, flow_id=flow_id, trigger_id=params.opt_str(request.args, "triggerId"))
    await engine().store.delete_logs(query)
    return empty(200)
