"""``/metrics``: metrics of an execution (paged), metric and task names of a flow, aggregates over time.

MetricEntry JSON: ``{namespace, flowId, taskId, executionId, taskRunId, type, name, value, timestamp, tags}``.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any, Callable

from quart import Blueprint, request

from falconet.runtime.kernel.errors import IllegalArgument
from falconet.runtime.kernel.execution import format_instant, now, parse_instant
from falconet.http import filters
from falconet.http.api import params
from falconet.http.api.common import engine, json_response, page_slice, paged

bp = Blueprint("metrics", __name__)

AGGREGATIONS = ("sum", "avg", "min", "max")


def _average(values: list[float]) -> float:
    return sum(values) / len(values)


_AGGREGATIONS: dict[str, Callable[[list[float]], float]] = {"sum": sum, "min": min, "max": max}


@bp.get("/metrics/<execution_id>")
async def execution_metrics(execution_id: str) -> Any:
    """``PagedResults<MetricEntry>`` of an execution (``taskRunId``, ``taskId`` filters)."""
    args = request.args
    filters.check_params(args, filters.PAGING | {"taskRunId", "taskId"})
    page, size, sort = params.paging(args)
    entries = await engine().store.get_metrics(execution_id, task_id=params.opt_str(args, "taskId"),
                                               task_run_id=params.opt_str(args, "taskRunId"))
    entries = params.sort_items(entries, sort, ["timestamp:asc"])
    return paged(page_slice(entries, page, size), len(entries))


@bp.get("/metrics/names/<namespace>/<flow_id>")
@bp.get("/metrics/names/<namespace>/<flow_id>/<task_id>")
async def metric_names(namespace: str, flow_id: str, task_id: str | None = None) -> Any:
    filters.check_params(request.args, ())
    entries = await engine().store.get_metrics(None, namespace=namespace, flow_id=flow_id, task_id=task_id)
    return json_response(sorted({e["name"] for e in entries if e.get("name")}))


@bp.get("/metrics/tasks/<namespace>/<flow_id>")
async def metric_tasks(namespace: str, flow_id: str) -> Any:
    filters.check_params(request.args, ())
    entries = await engine().store.get_metrics(None, namespace=namespace, flow_id=flow_id)
    return json_response(sorted({e["taskId"] for e in entries if e.get("taskId")}))


def _bucket(when: datetime, group_by: str) -> datetime:
    if group_by == "hour":
        return when.replace(minute=0, second=0, microsecond=0)
    day = when.replace(hour=0, minute=0, second=0, microsecond=0)
    if group_by == "day":
        return day
    if group_by == "week":
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


def _group_by(span: timedelta) -> str:
    if span <= timedelta(days=1):
        return "hour"
    if span <= timedelta(days=31):
        return "day"
    if span <= timedelta(days=366):
        return "week"
    return "month"


@bp.get("/metrics/aggregates/<namespace>/<flow_id>/<metric>")
@bp.get("/metrics/aggregates/<namespace>/<flow_id>/<task_id>/<metric>")
async def aggregates(namespace: str, flow_id: str, metric: str, task_id: str | None = None) -> Any:
    """``{"aggregations": [{"name", "date", "value"}], "groupBy": hour|day|week|month}`` over
    ``startDate``..``endDate`` (default: the last 30 days), ``aggregation`` = sum (default), avg, min, max."""
    args = request.args
    filters.check_params(args, ("startDate", "endDate", "aggregation"))
    aggregation = (params.opt_str(args, "aggregation") or "sum").lower()
    if aggregation not in AGGREGATIONS:
        raise IllegalArgument(f"Invalid aggregation '{aggregation}': expected one of {', '.join(AGGREGATIONS)}")
    end = params.opt_datetime(args, "endDate") or now()
    start = params.opt_datetime(args, "startDate") or end - timedelta(days=30)
    if start > end:
        raise IllegalArgument("Start date must be before End Date")
    entries = await engine().store.get_metrics(None, namespace=namespace, flow_id=flow_id, task_id=task_id,
                                               name=metric, start_date=start, end_date=end)
    group_by = _group_by(end - start)
    buckets: dict[datetime, list[float]] = {}
    for e in entries:
        stamp = e.get("timestamp")
        if not isinstance(stamp, str) or not isinstance(e.get("value"), (int, float)):
            continue
        bucket = _bucket(parse_instant(stamp).astimezone(timezone.utc), group_by)
        buckets.setdefault(bucket, []).append(float(e["value"]))
    out = []
    for when in sorted(buckets):
        values = buckets[when]
        value = _AGGREGATIONS.get(aggregation, _average)(values)
        out.append({"name": metric, "date": format_instant(when), "value": value})
    return json_response({"aggregations": out, "groupBy": group_by})
