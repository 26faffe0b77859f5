"""Kestra's 0.x statistics (``/api/v1/stats/...``) computed from stored executions and logs.

Pure functions over documents: the HTTP layer fetches the executions/logs of the window and passes them
here. Buckets follow Kestra's ``DateUtils.groupByType`` on the window length — more than 365 days: month,
more than 180 days: week, more than 1 day: day, more than 6 hours: hour, else minute — in UTC, and every
bucket of the window is present (zero counts included), as Kestra's ``fillDate`` does.
"""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Iterable

from falconet.runtime.kernel.execution import format_duration, format_instant, parse_instant
from falconet.sdk.logs import LogLevel

__all__ = ["STATES", "group_type", "buckets", "daily_executions", "counts_by_namespace",
           "daily_by_flow", "daily_logs", "latest_by_flow"]

STATES = ("CREATED", "RUNNING", "RESTARTED", "KILLING", "SUCCESS", "WARNING", "FAILED", "KILLED", "PAUSED",
          "QUEUED", "CANCELLED")


def group_type(start: datetime, end: datetime) -> str:
    span = end - start
    if span.days > 365:
        return "month"
    if span.days > 180:
        return "week"
    if span.days > 1:
        return "day"
    if span.total_seconds() // 3600 > 6:
        return "hour"
    return "minute"


def floor_time(t: datetime, kind: str) -> datetime:
    t = t.astimezone(UTC)
    if kind == "month":
        return t.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    if kind == "week":
        day = t.replace(hour=0, minute=0, second=0, microsecond=0)
        return day - timedelta(days=day.weekday())
    if kind == "day":
        return t.replace(hour=0, minute=0, second=0, microsecond=0)
    if kind == "hour":
        return t.replace(minute=0, second=0, microsecond=0)
    return t.replace(second=0, microsecond=0)


def _next(t: datetime, kind: str) -> datetime:
    if kind == "month":
        return t.replace(year=t.year + (t.month == 12), month=t.month % 12 + 1)
    step = {"week": timedelta(weeks=1), "day": timedelta(days=1), "hour": timedelta(hours=1)}
    return t + step.get(kind, timedelta(minutes=1))


#: at most this many buckets per answer (a minute grid over 6 hours is 361)
MAX_BUCKETS = 2000


def buckets(start: datetime, end: datetime) -> tuple[str, list[datetime]]:
    """(group type, bucket starts from the one holding ``start`` to the one holding ``end``)."""
    kind = group_type(start, end)
    out: list[datetime] = []
    t, last = floor_time(start, kind), floor_time(end, kind)
    while t <= last and len(out) < MAX_BUCKETS:
        out.append(t)
        t = _next(t, kind)
    return kind, out


def _start(doc: dict[str, Any]) -> datetime | None:
    raw = (doc.get("state") or {}).get("startDate")
    return parse_instant(raw) if isinstance(raw, str) else None


def _duration_ms(doc: dict[str, Any]) -> int | None:
    st = doc.get("state") or {}
    if not st.get("endDate") or not st.get("startDate"):
        return None
    return int((parse_instant(st["endDate"]) - parse_instant(st["startDate"])).total_seconds() * 1000)


def _ms(value: int) -> str:
    return format_duration(timedelta(milliseconds=value))


def _daily_entry(day: datetime, kind: str, docs: list[dict[str, Any]]) -> dict[str, Any]:
    counts = dict.fromkeys(STATES, 0)
    durations = []
    for doc in docs:
        state = (doc.get("state") or {}).get("current")
        if state in counts:
            counts[state] += 1
        ms = _duration_ms(doc)
        if ms is not None:
            durations.append(ms)
    duration: dict[str, Any] = {"min": None, "avg": None, "max": None, "sum": None, "count": 0}
    if docs:
        total = sum(durations)
        duration = {"min": _ms(min(durations)) if durations else None,
                    "avg": _ms(total // len(docs)),
                    "max": _ms(max(durations)) if durations else None,
                    "sum": _ms(total), "count": len(docs)}
    return {"startDate": format_instant(day), "duration": duration, "executionCounts": counts, "groupBy": kind}


def _bucketed(docs: Iterable[dict[str, Any]], start: datetime, end: datetime,
              when: Any) -> tuple[str, list[datetime], dict[datetime, list[dict[str, Any]]]]:
    kind, grid = buckets(start, end)
    slots: dict[datetime, list[dict[str, Any]]] = {t: [] for t in grid}
    for doc in docs:
        t = when(doc)
        if t is not None and start <= t <= end:
            slots.setdefault(floor_time(t, kind), []).append(doc)
    return kind, grid, slots


def daily_executions(docs: Iterable[dict[str, Any]], start: datetime, end: datetime) -> list[dict[str, Any]]:
    """Kestra's ``DailyExecutionStatistics`` list: per bucket, counts by state and duration min/avg/max/sum."""
    kind, grid, slots = _bucketed(docs, start, end, _start)
    return [_daily_entry(t, kind, slots.get(t, [])) for t in grid]


def counts_by_namespace(docs: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Kestra's ``{namespace: {counts: {STATE: n}, total}}``."""
    out: dict[str, dict[str, Any]] = {}
    for doc in docs:
        entry = out.setdefault(doc.get("namespace", ""), {"counts": dict.fromkeys(STATES, 0), "total": 0})
        state = (doc.get("state") or {}).get("current")
        if state in entry["counts"]:
            entry["counts"][state] += 1
        entry["total"] += 1
    return dict(sorted(out.items()))


def daily_by_flow(docs: Iterable[dict[str, Any]], start: datetime, end: datetime, *,
                  namespace_only: bool) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """Kestra's ``{namespace: {flowId: [daily…]}}`` (flow key ``*`` when ``namespace_only``); only flows
    with executions in the window appear."""
    groups: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for doc in docs:
        flow = "*" if namespace_only else doc.get("flowId", "")
        groups.setdefault(doc.get("namespace", ""), {}).setdefault(flow, []).append(doc)
    return {ns: {fid: daily_executions(group, start, end) for fid, group in sorted(flows.items())}
            for ns, flows in sorted(groups.items())}


def latest_by_flow(docs: Iterable[dict[str, Any]], flows: set[tuple[str, str]] | None) -> list[dict[str, Any]]:
    """The ended execution with the latest end date of each (namespace, flowId) in ``flows`` (all when None)."""
    best: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {}
    for doc in docs:
        end = (doc.get("state") or {}).get("endDate")
        key = (doc.get("namespace", ""), doc.get("flowId", ""))
        if not end or (flows is not None and key not in flows):
            continue
        when = format_instant(parse_instant(end))
        if key not in best or when > best[key][0]:
            best[key] = (when, doc)
    return [doc for _, doc in (best[k] for k in sorted(best))]


def daily_logs(logs: Iterable[dict[str, Any]], start: datetime, end: datetime) -> list[dict[str, Any]]:
    """Kestra's ``LogStatistics`` list: per bucket, ``{timestamp, counts: {LEVEL: n}, groupBy}``."""
    def when(entry: dict[str, Any]) -> datetime | None:
        raw = entry.get("timestamp")
        return parse_instant(raw) if isinstance(raw, str) else None

    kind, grid, slots = _bucketed(logs, start, end, when)
    out = []
    for t in grid:
        counts = dict.fromkeys(LogLevel.names(), 0)
        for entry in slots.get(t, []):
            if entry.get("level") in counts:
                counts[entry["level"]] += 1
        out.append({"timestamp": format_instant(t), "counts": counts, "groupBy": kind})
    return out
