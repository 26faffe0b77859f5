"""Kestra 1.x dashboards: the YAML model (``Dashboard``, its charts and their data sources) and the
computation of a chart's rows from documents of the store.

A dashboard is ``{id, title, description, timeWindow: {default, max}, charts: [...]}``; a chart is
``{id, type, chartOptions, data}`` with ``type`` one of :data:`CHART_TYPES`. A data chart's ``data`` is
``{type, columns: {name: {field, agg?, displayName?, labelKey?}}, where: [filter], orderBy: [{column,
order}]}`` over executions, logs, metrics, triggers or flows (:data:`DATA_FIELDS`); a KPI's ``data`` is
``{type: ExecutionsKPI|LogsKPI|MetricsKPI|FlowsKPI, columns: {field, agg}, numerator: [filter], where: [filter]}``.
A Markdown chart has ``content`` or a ``source`` (``Text`` or ``FlowDescription``).

Rows follow Kestra's JDBC query builders: the columns without ``agg`` are the group key, the ones with
``agg`` (COUNT, SUM, AVG, MIN, MAX) are aggregated per group; when a chart aggregates, a date column is
grouped by Kestra's time buckets (minute up to 6 h, hour up to 1 day, day, week beyond 180 days, month
beyond 365, as :func:`falconet.runtime.reports.stats.group_type`). A KPI is ``[{"value": v}]``: the aggregate over
the rows matching ``numerator`` (all rows without one); with ``numberType: PERCENTAGE`` it is that value in
percent of the aggregate over every row (0.0 when that is 0), rounded to 2 decimals.
"""
from __future__ import annotations

import functools
import re
from datetime import datetime, timedelta
from typing import Any, Callable, Collection, Iterable

from falconet.runtime.expr import safe_regex
from falconet.runtime.reports import stats
from falconet.runtime.kernel.errors import InvalidEntity, Violation
from falconet.runtime.kernel.execution import parse_instant

PLUGIN = "io.kestra.plugin.core.dashboard"
CHART_TYPES = ("TimeSeries", "Bar", "Pie", "Table", "KPI", "Markdown")
AGGS = ("COUNT", "SUM", "AVG", "MIN", "MAX")
ORDERS = ("ASC", "DESC")
DEFAULT_ID = "_default"
MAX_CHARTS = 100
MAX_COLUMNS = 50
MAX_FILTERS = 50
#: a pattern is compiled once per request, not once per row (RE2: linear time, see safe_regex)
_regex = functools.lru_cache(maxsize=64)(safe_regex.compile)


def _exec_duration(doc: dict[str, Any]) -> float | None:
    start, end = parse_date(_dig(doc, "state.startDate")), parse_date(_dig(doc, "state.endDate"))
    return (end - start).total_seconds() if start and end else None


def _labels(doc: dict[str, Any]) -> Any:
    return doc.get("labels") or []


#: data type → field → accessor of a stored document (executions: Kestra's IExecutions.Fields; logs:
#: ILogs.Fields; DURATION is in seconds as Kestra's ``state_duration`` column)
DATA_FIELDS: dict[str, dict[str, Callable[[dict[str, Any]], Any]]] = {
    "Executions": {
        "ID": lambda d: d.get("id"),
        "NAMESPACE": lambda d: d.get("namespace"),
        "FLOW_ID": lambda d: d.get("flowId"),
        "FLOW_REVISION": lambda d: d.get("flowRevision"),
        "STATE": lambda d: _dig(d, "state.current"),
        "DURATION": _exec_duration,
        "LABELS": _labels,
        "START_DATE": lambda d: _dig(d, "state.startDate"),
        "END_DATE": lambda d: _dig(d, "state.endDate"),
        "TRIGGER_EXECUTION_ID": lambda d: _dig(d, "trigger.variables.executionId"),
    },
    "Logs": {
        "NAMESPACE": lambda d: d.get("namespace"),
        "FLOW_ID": lambda d: d.get("flowId"),
        "EXECUTION_ID": lambda d: d.get("executionId"),
        "TASK_ID": lambda d: d.get("taskId"),
        "DATE": lambda d: d.get("timestamp"),
        "TASK_RUN_ID": lambda d: d.get("taskRunId"),
        "ATTEMPT_NUMBER": lambda d: d.get("attemptNumber"),
        "TRIGGER_ID": lambda d: d.get("triggerId"),
        "LEVEL": lambda d: d.get("level"),
        "MESSAGE": lambda d: d.get("message"),
    },
    "Metrics": {
        "NAMESPACE": lambda d: d.get("namespace"),
        "FLOW_ID": lambda d: d.get("flowId"),
        "TASK_ID": lambda d: d.get("taskId"),
        "EXECUTION_ID": lambda d: d.get("executionId"),
        "TASK_RUN_ID": lambda d: d.get("taskRunId"),
        "TYPE": lambda d: d.get("type"),
        "NAME": lambda d: d.get("name"),
        "VALUE": lambda d: d.get("value"),
        "DATE": lambda d: d.get("timestamp"),
    },
    "Flows": {
        "ID": lambda d: d.get("id"),
        "NAMESPACE": lambda d: d.get("namespace"),
        "REVISION": lambda d: d.get("revision"),
    },
    "Triggers": {
        "ID": lambda d: "_".join(str(p) for p in ("main", d.get("namespace"), d.get("flowId"), d.get("triggerId"))),
        "NAMESPACE": lambda d: d.get("namespace"),
        "FLOW_ID": lambda d: d.get("flowId"),
        "TRIGGER_ID": lambda d: d.get("triggerId"),
        "EXECUTION_ID": lambda d: d.get("executionId"),
        "NEXT_EXECUTION_DATE": lambda d: d.get("nextExecutionDate"),
        "WORKER_ID": lambda d: d.get("workerId"),
        "DISABLED": lambda d: bool(d.get("disabled")),
    },
}
#: the date field a data type is windowed and bucketed on
DATE_FIELDS = {"Executions": ("START_DATE", "END_DATE"), "Logs": ("DATE",), "Metrics": ("DATE",),
               "Triggers": ("NEXT_EXECUTION_DATE",), "Flows": ()}
#: the sources a KPI can read (``ExecutionsKPI``…)
KPI_SOURCES = ("Executions", "Logs", "Metrics", "Flows")

FILTER_TYPES = ("EQUAL_TO", "NOT_EQUAL_TO", "IN", "NOT_IN", "CONTAINS", "NOT_CONTAINS", "STARTS_WITH",
                "ENDS_WITH", "PREFIX", "REGEX", "GREATER_THAN", "GREATER_THAN_OR_EQUAL_TO", "LESS_THAN",
                "LESS_THAN_OR_EQUAL_TO", "IS_NULL", "IS_NOT_NULL", "IS_TRUE", "IS_FALSE")

_DURATION = re.compile(r"^P(?:(\d{1,6})D)?(?:T(?:(\d{1,7})H)?(?:(\d{1,9})M)?(?:(\d{1,10})S)?)?$")


def _dig(doc: Any, path: str) -> Any:
    for part in path.split("."):
        doc = doc.get(part) if isinstance(doc, dict) else None
    return doc


def parse_date(value: Any) -> datetime | None:
    """An instant (datetime or ISO-8601 text), or None when it is not one."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return parse_instant(value)
        except ValueError:
            return None
    return None


def parse_duration(path: str, value: Any) -> timedelta:
    """A ``java.time.Duration`` (``PT24H``, ``P30D``) as a timedelta; 422 otherwise."""
    match = _DURATION.match(value) if isinstance(value, str) else None
    if not match or value in ("P", "PT"):
        raise InvalidEntity([Violation(path, f"invalid duration '{value}' (expected e.g. PT24H or P30D)")])
    days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)


def _short_type(path: str, value: Any, kinds: Collection[str], package: str) -> str:
    prefix = f"{PLUGIN}.{package}."
    name = value[len(prefix):] if isinstance(value, str) and value.startswith(prefix) else None
    if name is None or name not in kinds:
        raise InvalidEntity([Violation(path, f"unknown type '{value}' (expected one of "
                                             f"{', '.join(prefix + k for k in kinds)})")])
    return name


#### validation #############################################################################################

def validate_dashboard(doc: Any) -> dict[str, Any]:
    """The dashboard document, checked (422 with the offending path otherwise); ``timeWindow`` completed
    with Kestra's defaults (P30D, max P366D)."""
    if not isinstance(doc, dict):
        raise InvalidEntity([Violation("dashboard", "a dashboard must be a YAML mapping")])
    unknown = set(doc) - {"id", "title", "description", "timeWindow", "charts"}
    if unknown:
        raise InvalidEntity([Violation(sorted(unknown)[0], "unknown property")])
    title = doc.get("title")
    if not isinstance(title, str) or not title.strip():
        raise InvalidEntity([Violation("title", "must not be blank")])
    if doc.get("description") is not None and not isinstance(doc["description"], str):
        raise InvalidEntity([Violation("description", "must be a string")])
    window = doc.get("timeWindow") or {}
    if not isinstance(window, dict) or set(window) - {"default", "max"}:
        raise InvalidEntity([Violation("timeWindow", "expected {default, max} durations")])
    default = parse_duration("timeWindow.default", window.get("default", "P30D"))
    maximum = parse_duration("timeWindow.max", window.get("max", "P366D"))
    for name, value in (("default", default), ("max", maximum)):
        if value > timedelta(days=366):
            raise InvalidEntity([Violation(f"timeWindow.{name}", "Time window can't be more than 1 year (366 days).")])
    if default > maximum:
        raise InvalidEntity([Violation("timeWindow", "the default duration exceeds the max duration")])
    charts = doc.get("charts") or []
    if not isinstance(charts, list) or len(charts) > MAX_CHARTS:
        raise InvalidEntity([Violation("charts", f"expected a list of at most {MAX_CHARTS} charts")])
    ids: set[str] = set()
    for i, chart in enumerate(charts):
        validate_chart(chart, f"charts[{i}]")
        if chart["id"] in ids:
            raise InvalidEntity([Violation(f"charts[{i}].id", f"duplicate chart id '{chart['id']}'")])
        ids.add(chart["id"])
    out = {k: v for k, v in doc.items() if k != "timeWindow"}
    out["timeWindow"] = {"default": window.get("default", "P30D"), "max": window.get("max", "P366D")}
    out["charts"] = charts
    return out


def validate_chart(chart: Any, path: str = "chart") -> str:
    """Check one chart; its short type (``TimeSeries``…)."""
    if not isinstance(chart, dict):
        raise InvalidEntity([Violation(path, "a chart must be a mapping")])
    if not isinstance(chart.get("id"), str) or not chart["id"].strip() or len(chart["id"]) > 200:
        raise InvalidEntity([Violation(f"{path}.id", "must not be blank")])
    kind = _short_type(f"{path}.type", chart.get("type"), CHART_TYPES, "chart")
    options = chart.get("chartOptions") or {}
    if not isinstance(options, dict):
        raise InvalidEntity([Violation(f"{path}.chartOptions", "must be a mapping")])
    if kind == "Markdown":
        _markdown(path, chart)
        return kind
    data = chart.get("data")
    if not isinstance(data, dict):
        raise InvalidEntity([Violation(f"{path}.data", "must not be null")])
    if kind == "KPI":
        source = _short_type(f"{path}.data.type", data.get("type"), tuple(f"{k}KPI" for k in KPI_SOURCES), "data")
        source = source[:-3]
        column = _column(f"{path}.data.columns", data.get("columns"), source)
        if column.get("agg") is None:
            raise InvalidEntity([Violation(f"{path}.data.columns.agg", "a KPI needs an aggregation")])
        validate_filters(f"{path}.data.numerator", data.get("numerator"), source)
        number = options.get("numberType", "FLAT")
        if number not in ("FLAT", "PERCENTAGE"):
            raise InvalidEntity([Violation(f"{path}.chartOptions.numberType", "expected FLAT or PERCENTAGE")])
    else:
        source = _short_type(f"{path}.data.type", data.get("type"), tuple(DATA_FIELDS), "data")
        columns = data.get("columns")
        if not isinstance(columns, dict) or not columns or len(columns) > MAX_COLUMNS:
            raise InvalidEntity([Violation(f"{path}.data.columns", f"expected 1 to {MAX_COLUMNS} named columns")])
        for name, column in columns.items():
            _column(f"{path}.data.columns.{name}", column, source)
        for key in ("column", "colorByColumn"):
            if options.get(key) is not None and options[key] not in columns:
                raise InvalidEntity([Violation(f"{path}.chartOptions.{key}", f"no column named '{options[key]}'")])
        if kind in ("TimeSeries", "Bar", "Pie") and not any(c.get("agg") for c in columns.values()):
            raise InvalidEntity([Violation(f"{path}.data.columns", f"a {kind} chart needs an aggregated column")])
        if kind == "TimeSeries" and options.get("column") is None:
            raise InvalidEntity([Violation(f"{path}.chartOptions.column", "must name the date column")])
        order = data.get("orderBy") or []
        if not isinstance(order, list) or len(order) > MAX_COLUMNS:
            raise InvalidEntity([Violation(f"{path}.data.orderBy", "expected a list of {column, order}")])
        for j, item in enumerate(order):
            if not isinstance(item, dict) or item.get("column") not in columns \
                    or item.get("order", "ASC") not in ORDERS:
                raise InvalidEntity([Violation(f"{path}.data.orderBy[{j}]",
                                               "expected {column: <a column name>, order: ASC|DESC}")])
    validate_filters(f"{path}.data.where", data.get("where"), source)
    return kind


def _markdown(path: str, chart: dict[str, Any]) -> None:
    content = chart.get("content")
    if content is not None and not isinstance(content, str):
        raise InvalidEntity([Violation(f"{path}.content", "must be a string")])
    source = chart.get("source")
    if source is None:
        return
    kind = source.get("type") if isinstance(source, dict) else None
    if kind == "Text":
        if source.get("content") is not None and not isinstance(source["content"], str):
            raise InvalidEntity([Violation(f"{path}.source.content", "must be a string")])
    elif kind == "FlowDescription":
        for key in ("namespace", "flowId"):
            if not isinstance(source.get(key), str) or not source[key]:
                raise InvalidEntity([Violation(f"{path}.source.{key}", "must not be null")])
    else:
        raise InvalidEntity([Violation(f"{path}.source.type", "expected Text or FlowDescription")])


def _column(path: str, column: Any, source: str) -> dict[str, Any]:
    """``column`` checked against ``source``'s fields, returned as the mapping it is."""
    if not isinstance(column, dict) or set(column) - {"field", "agg", "displayName", "labelKey", "graphStyle",
                                                      "columnAlignment"}:
        raise InvalidEntity([Violation(path, "expected {field, agg, displayName, labelKey}")])
    field, agg = column.get("field"), column.get("agg")
    if field is None and agg != "COUNT":
        raise InvalidEntity([Violation(f"{path}.field", "must not be null")])
    if field is not None and field not in DATA_FIELDS[source]:
        raise InvalidEntity([Violation(f"{path}.field", f"unknown field '{field}' (expected one of "
                                                        f"{', '.join(DATA_FIELDS[source])})")])
    if agg is not None and agg not in AGGS:
        raise InvalidEntity([Violation(f"{path}.agg", f"unknown aggregation '{agg}' (expected one of "
                                                      f"{', '.join(AGGS)})")])
    if column.get("labelKey") is not None and not isinstance(column["labelKey"], str):
        raise InvalidEntity([Violation(f"{path}.labelKey", "must be a string")])
    return column


def validate_filters(path: str, items: Any, source: str) -> None:
    """Check a ``where``/``numerator`` list of filters on ``source``'s fields."""
    if items is None:
        return
    if not isinstance(items, list) or len(items) > MAX_FILTERS:
        raise InvalidEntity([Violation(path, f"expected a list of at most {MAX_FILTERS} filters")])
    for i, item in enumerate(items):
        where = f"{path}[{i}]"
        if not isinstance(item, dict) or item.get("field") not in DATA_FIELDS[source]:
            raise InvalidEntity([Violation(f"{where}.field", f"expected one of {', '.join(DATA_FIELDS[source])}")])
        if item.get("type") not in FILTER_TYPES:
            raise InvalidEntity([Violation(f"{where}.type", f"expected one of {', '.join(FILTER_TYPES)}")])
        if item["type"] in ("IN", "NOT_IN") and not isinstance(item.get("values"), list):
            raise InvalidEntity([Violation(f"{where}.values", "must be a list")])
        if item["type"] == "REGEX":
            if not isinstance(item.get("value"), str) or len(item["value"]) > 1000:
                raise InvalidEntity([Violation(f"{where}.value", "must be a regular expression")])
            try:
                _regex(item["value"])
            except safe_regex.RegexError as exc:
                raise InvalidEntity([Violation(f"{where}.value",
                                               f"invalid regular expression: {exc.reason}")]) from None


#### computation ############################################################################################

def _comparable(value: Any) -> Any:
    parsed = parse_date(value) if isinstance(value, str) and len(value) >= 10 and value[4:5] == "-" else None
    return parsed if parsed is not None else value


def _test(item: dict[str, Any], actual: Any) -> bool:
    kind, value = item["type"], item.get("value")
    if kind == "IS_NULL":
        return actual is None or actual == []
    if kind == "IS_NOT_NULL":
        return not (actual is None or actual == [])
    if kind in ("IS_TRUE", "IS_FALSE"):
        return actual is (kind == "IS_TRUE")
    if isinstance(actual, list):  # labels: [{key, value}]
        key = item.get("labelKey")
        pairs = [(lb.get("key"), lb.get("value")) for lb in actual if isinstance(lb, dict)]
        texts = [str(v) for k, v in pairs if key is None or k == key]
        if kind in ("EQUAL_TO", "CONTAINS"):
            return any(str(value) in t if kind == "CONTAINS" else str(value) == t for t in texts)
        if kind in ("NOT_EQUAL_TO", "NOT_CONTAINS"):
            return not any(str(value) in t if kind == "NOT_CONTAINS" else str(value) == t for t in texts)
        if kind in ("IN", "NOT_IN"):
            hit = any(t in {str(v) for v in item["values"]} for t in texts)
            return hit if kind == "IN" else not hit
        return False
    if kind == "IN":
        return actual in item["values"] or str(actual) in {str(v) for v in item["values"]}
    if kind == "NOT_IN":
        return not (actual in item["values"] or str(actual) in {str(v) for v in item["values"]})
    if kind == "EQUAL_TO":
        return actual == value or (actual is not None and str(actual) == str(value))
    if kind == "NOT_EQUAL_TO":
        return not (actual == value or (actual is not None and str(actual) == str(value)))
    if actual is None:
        return False
    text = str(actual)
    if kind == "CONTAINS":
        return str(value) in text
    if kind == "NOT_CONTAINS":
        return str(value) not in text
    if kind == "STARTS_WITH":
        return text.startswith(str(value))
    if kind == "ENDS_WITH":
        return text.endswith(str(value))
    if kind == "PREFIX":
        return text == str(value) or text.startswith(f"{value}.")
    if kind == "REGEX":
        return _regex(str(value)).search(text) is not None
    left, right = _comparable(actual), _comparable(value)
    try:
        if kind == "GREATER_THAN":
            return left > right
        if kind == "GREATER_THAN_OR_EQUAL_TO":
            return left >= right
        if kind == "LESS_THAN":
            return left < right
        return left <= right
    except TypeError:
        return False


def matches(doc: dict[str, Any], where: Iterable[dict[str, Any]], source: str) -> bool:
    fields = DATA_FIELDS[source]
    return all(_test(item, fields[item["field"]](doc)) for item in where)


def source_of(chart: dict[str, Any]) -> str:
    """``Executions`` or ``Logs`` (KPI sources without their suffix)."""
    name = chart["data"]["type"].rsplit(".", 1)[-1]
    return name[:-3] if name.endswith("KPI") else name


def _aggregate(agg: str, values: list[Any]) -> Any:
    if agg == "COUNT":
        return len(values)
    numbers = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
    if not numbers:
        return None if agg != "SUM" else 0
    if agg == "SUM":
        return sum(numbers)
    if agg == "AVG":
        return sum(numbers) / len(numbers)
    return min(numbers) if agg == "MIN" else max(numbers)


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def rows(chart: dict[str, Any], docs: Iterable[dict[str, Any]], start: datetime, end: datetime) -> list[dict[str, Any]]:
    """The rows of a data chart (TimeSeries, Bar, Pie, Table) over ``docs`` already windowed."""
    data, source = chart["data"], source_of(chart)
    fields = DATA_FIELDS[source]
    columns: dict[str, dict[str, Any]] = data["columns"]
    where = data.get("where") or []
    selected = [d for d in docs if matches(d, where, source)]
    keys = [n for n, c in columns.items() if not c.get("agg")]
    aggs = [n for n, c in columns.items() if c.get("agg")]

    def value(name: str, doc: dict[str, Any]) -> Any:
        column = columns[name]
        if column.get("field") is None:
            return None
        raw = fields[column["field"]](doc)
        if column["field"] == "LABELS" and column.get("labelKey"):
            raw = next((lb.get("value") for lb in raw if isinstance(lb, dict)
                        and lb.get("key") == column["labelKey"]), None)
        return raw

    if not aggs:
        out = [{n: value(n, d) for n in columns} for d in selected]
    else:
        kind = stats.group_type(start, end)
        dates = {n for n in keys if columns[n]["field"] in DATE_FIELDS[source]}
        groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
        for doc in selected:
            key = []
            for n in keys:
                v = value(n, doc)
                if n in dates:
                    t = parse_date(v)
                    v = _iso(stats.floor_time(t, kind)) if t else None
                elif isinstance(v, list):
                    v = ",".join(f"{lb.get('key')}:{lb.get('value')}" for lb in v if isinstance(lb, dict))
                key.append(v)
            groups.setdefault(tuple(key), []).append(doc)
        out = []
        for group, members in groups.items():
            row = dict(zip(keys, group, strict=True))
            for n in aggs:
                vals = [value(n, d) for d in members] if columns[n].get("field") else members
                row[n] = _aggregate(columns[n]["agg"], vals)
            out.append(row)
    order = data.get("orderBy") or [{"column": n} for n in keys if n in dates_of(columns, source)]
    for item in reversed(order):
        column_name = item["column"]
        out.sort(key=lambda r: (r.get(column_name) is None, _sortable(r.get(column_name))),
                 reverse=item.get("order", "ASC") == "DESC")
    return out


def dates_of(columns: dict[str, dict[str, Any]], source: str) -> set[str]:
    return {n for n, c in columns.items() if c.get("field") in DATE_FIELDS[source]}


def _sortable(value: Any) -> Any:
    if isinstance(value, (int, float)):
        return (0, value, "")
    return (1, 0, "" if value is None else str(value))


def kpi(chart: dict[str, Any], docs: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """``[{"value": v}]`` of a KPI chart over ``docs`` already windowed."""
    data, source = chart["data"], source_of(chart)
    column = data["columns"]
    getter = DATA_FIELDS[source].get(column.get("field") or "", lambda d: d)
    base = [d for d in docs if matches(d, data.get("where") or [], source)]
    numerator = data.get("numerator")
    hits = [d for d in base if matches(d, numerator, source)] if numerator else base

    def total(items: list[dict[str, Any]]) -> float:
        result = _aggregate(column["agg"], [getter(d) for d in items])
        return float(result or 0)

    value = total(hits)
    if (chart.get("chartOptions") or {}).get("numberType") == "PERCENTAGE":
        whole = total(base)
        return [{"value": 0.0 if whole == 0 else round(value / whole * 100, 2)}]
    return [{"value": round(value, 2)}]
