"""Pure helpers shared by the store backends: row extraction, validation, filter semantics.

Both backends derive the same indexed columns from a document here, so the memory and SQLite stores
filter and sort identically. No trio, no I/O.
"""
from __future__ import annotations

import dataclasses
from json.encoder import encode_basestring as _json_string  # as compact_json writes a string
from datetime import datetime, timezone
from typing import Any, Iterable, Sequence

from falconet.runtime.kernel.errors import FalconetError, IllegalArgument
from falconet.sdk.logs import LogLevel
from falconet.runtime.store.base import FlowRecord
from falconet.runtime.kernel.execution import compact_json
from falconet.runtime.kernel.state import TERMINATED, State

UTC = timezone.utc

#### Errors #################################################################################################


class StoreError(FalconetError):
    """The store cannot do its job: used before ``open()``/after ``close()``, or the database failed
    (I/O error, schema from a newer version). Once a batch of ``*_nowait`` writes fails to commit, the
    store is *broken*: every later call raises StoreError, because acknowledged writes were lost."""


#### Levels, dates, JSON ####################################################################################

TERMINAL_STATES: frozenset[str] = frozenset(s.value for s in TERMINATED)


def level_value(level: Any) -> int:
    """The rank of a level name (``WARNING`` is accepted for ``WARN``); IllegalArgument otherwise."""
    parsed = LogLevel.parse(level)
    if parsed is None:
        raise IllegalArgument(f"unknown log level {level!r} (expected one of {', '.join(LogLevel.names())})")
    return int(parsed)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _epoch(t: datetime, scale: int) -> int:
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    delta = t - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * scale + delta.microseconds * scale // 1_000_000


def dt_ms(t: datetime) -> int:
    """Epoch milliseconds of a datetime (naive = UTC)."""
    return _epoch(t, 1000)


def dt_us(t: datetime) -> int:
    """Epoch microseconds of a datetime (naive = UTC)."""
    return _epoch(t, 1_000_000)


def instant_us(value: Any, what: str) -> int:
    """Epoch microseconds of an ISO-8601 instant string (or datetime); IllegalArgument when unparseable. A hot
    path (each execution document and log line stored): the values of recent texts are kept
    (:data:`_PARSED`) — an execution's start date is read from each of its documents, and the instants of
    a busy engine, in milliseconds, repeat."""
    if isinstance(value, datetime):
        return dt_us(value)
    if not isinstance(value, str):
        raise IllegalArgument(f"{what}: expected an ISO-8601 instant, got {value!r}")
    us = _PARSED.get(value)
    if us is None:
        try:  # parse_instant (kernel/execution.py) without its conversion to UTC: the same instant
            us = dt_us(datetime.fromisoformat(value[:-1] + "+00:00" if value.endswith("Z") else value))
        except ValueError:
            raise IllegalArgument(f"{what}: invalid ISO-8601 instant {value!r}") from None
        if len(_PARSED) >= _PARSED_MAX:
            _PARSED.clear()
        _PARSED[value] = us
    return us


#: recent instant texts and their epoch microseconds (as execution.py keeps the texts of recent instants); an
#: execution's documents are stored milliseconds apart, so a few hundred texts hold its start date (~60 kB)
_PARSED: dict[str, int] = {}
_PARSED_MAX = 512


def dumps(value: Any, what: str) -> str:
    """Compact JSON; IllegalArgument when the value is not JSON-serialisable."""
    try:
        return compact_json(value)
    except (TypeError, ValueError) as exc:
        raise IllegalArgument(f"{what} is not JSON-serialisable: {exc}") from None


def require_dict(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise IllegalArgument(f"{what} must be a JSON object, got {type(value).__name__}")
    return value


def require_str(d: dict[str, Any], key: str, what: str) -> str:
    v = d.get(key)
    if not isinstance(v, str) or not v:
        raise IllegalArgument(f"{what}: field {key!r} must be a non-empty string")
    return v


def opt_str(d: dict[str, Any], key: str) -> str | None:
    v = d.get(key)
    return v if isinstance(v, str) else None


#### Executions #############################################################################################

@dataclasses.dataclass(slots=True)
class ExecRow:
    """The indexed columns of one execution document, plus the document as JSON."""

    id: str
    namespace: str
    flow_id: str
    state: str
    start_ms: int
    end_ms: int | None
    labels: list[tuple[str, str]]
    labels_json: str
    parent_id: str | None
    trigger_execution_id: str | None
    deleted: bool
    doc_json: str

    def sql_params(self) -> tuple[Any, ...]:
        return (self.id, self.namespace, self.flow_id, self.state, self.start_ms, self.end_ms,
                self.labels_json, self.parent_id, self.trigger_execution_id, int(self.deleted), self.doc_json)


def _labels_json(labels: list[tuple[str, str]]) -> str:
    """``dumps`` of the labels as ``[{"key": …, "value": …}]``, written directly (every execution has its
    ``system.correlationId``: each of its documents stored would build and encode that list again)."""
    if not labels:
        return "[]"
    return "[" + ",".join(f'{{"key":{_json_string(k)},"value":{_json_string(v)}}}' for k, v in labels) + "]"


def execution_row(doc: Any, doc_json: str | None = None) -> ExecRow:
    """Validate an execution document and extract its columns. The JSON is taken *now*, so later
    mutations of ``doc`` (the engine's live objects) never leak into the stored snapshot. ``doc_json``: the
    document's JSON text already serialised by the caller (then ``doc`` need only hold the top-level fields
    the columns come from, e.g. without ``taskRunList``)."""
    doc = require_dict(doc, "execution")
    what = "execution"
    eid = require_str(doc, "id", what)
    state = require_dict(doc.get("state"), f"execution {eid}: state")
    try:
        current = State(state.get("current")).value
    except ValueError:
        raise IllegalArgument(f"execution {eid}: unknown state {state.get('current')!r}") from None
    start = state.get("startDate")
    if start is None:
        hist = state.get("histories") or []
        start = hist[0].get("date") if hist and isinstance(hist[0], dict) else None
    if start is None:
        raise IllegalArgument(f"execution {eid}: state.startDate is missing")
    start_ms = instant_us(start, f"execution {eid}: state.startDate") // 1000
    end = state.get("endDate")
    end_ms = instant_us(end, f"execution {eid}: state.endDate") // 1000 if end is not None else None
    raw_labels = doc.get("labels") or []
    if not isinstance(raw_labels, list):
        raise IllegalArgument(f"execution {eid}: labels must be a list of {{key, value}}")
    labels: list[tuple[str, str]] = []
    for lb in raw_labels:
        if not isinstance(lb, dict) or not isinstance(lb.get("key"), str):
            raise IllegalArgument(f"execution {eid}: invalid label {lb!r}")
        labels.append((lb["key"], str(lb.get("value"))))
    trigger = doc.get("trigger")
    trig_exec = None
    if isinstance(trigger, dict) and isinstance(trigger.get("variables"), dict):
        v = trigger["variables"].get("executionId")
        trig_exec = v if isinstance(v, str) else None
    return ExecRow(
        id=eid,
        namespace=require_str(doc, "namespace", f"execution {eid}"),
        flow_id=require_str(doc, "flowId", f"execution {eid}"),
        state=current,
        start_ms=start_ms,
        end_ms=end_ms,
        labels=labels,
        labels_json=_labels_json(labels),
        parent_id=opt_str(doc, "parentId"),
        trigger_execution_id=trig_exec,
        deleted=bool(doc.get("deleted", False)),
        doc_json=doc_json if doc_json is not None else dumps(doc, f"execution {eid}"),
    )


def namespace_matches(namespace: str, prefix: str) -> bool:
    """Kestra's namespace filter: ``a.b`` matches ``a.b`` and ``a.b.c``, not ``a.bc``."""
    return namespace == prefix or namespace.startswith(prefix + ".")


#: sort field (as the API spells it) -> ExecRow attribute == SQL column
SORT_FIELDS: dict[str, str] = {
    "state.startDate": "start_ms",
    "state.endDate": "end_ms",
    "id": "id",
    "namespace": "namespace",
    "flowId": "flow_id",
    "state.current": "state",
}


def parse_sort(sort: Sequence[str]) -> list[tuple[str, bool]]:
    """``["field:asc|desc", …]`` -> ``[(column, descending)]``; default newest first. IllegalArgument
    on an unknown field or direction."""
    out: list[tuple[str, bool]] = []
    for item in sort:
        field, _, direction = str(item).partition(":")
        col = SORT_FIELDS.get(field.strip())
        if col is None:
            raise IllegalArgument(f"cannot sort executions by {field!r} (allowed: {', '.join(SORT_FIELDS)})")
        direction = direction.strip().lower() or "asc"
        if direction not in ("asc", "desc"):
            raise IllegalArgument(f"invalid sort direction {direction!r} (expected asc or desc)")
        out.append((col, direction == "desc"))
    return out or [("start_ms", True)]


def check_paging(page: int | None, size: int | None) -> None:
    if page is not None and (not isinstance(page, int) or page < 1):
        raise IllegalArgument(f"page must be >= 1, got {page!r}")
    if size is not None and (not isinstance(size, int) or size < 1):
        raise IllegalArgument(f"size must be >= 1, got {size!r}")


def check_states(states: Iterable[Any]) -> list[str]:
    out = []
    for s in states:
        try:
            out.append(State(str(s)).value)
        except ValueError:
            raise IllegalArgument(f"unknown execution state {s!r}") from None
    return out


def check_child_filter(child_filter: str | None) -> str | None:
    if child_filter is None:
        return None
    cf = child_filter.upper()
    if cf not in ("CHILD", "MAIN"):
        raise IllegalArgument(f"childFilter must be CHILD or MAIN, got {child_filter!r}")
    return cf


#### Logs and metrics #######################################################################################

@dataclasses.dataclass(slots=True)
class LogRow:
    execution_id: str | None
    namespace: str | None
    flow_id: str | None
    task_id: str | None
    task_run_id: str | None
    attempt: int | None
    trigger_id: str | None
    level: int
    ts_us: int
    message: str
    entry_json: str

    def sql_params(self) -> tuple[Any, ...]:
        return (self.execution_id, self.namespace, self.flow_id, self.task_id, self.task_run_id, self.attempt,
                self.trigger_id, self.level, self.ts_us, self.message, self.entry_json)


def log_row(entry: Any) -> LogRow:
    """Validate a LogEntry dict (``level`` and ``timestamp`` are required) and extract its columns."""
    entry = require_dict(entry, "log entry")
    attempt = entry.get("attemptNumber")
    if attempt is not None and not isinstance(attempt, int):
        raise IllegalArgument(f"log entry: attemptNumber must be an integer, got {attempt!r}")
    msg = entry.get("message")
    return LogRow(
        execution_id=opt_str(entry, "executionId"),
        namespace=opt_str(entry, "namespace"),
        flow_id=opt_str(entry, "flowId"),
        task_id=opt_str(entry, "taskId"),
        task_run_id=opt_str(entry, "taskRunId"),
        attempt=attempt,
        trigger_id=opt_str(entry, "triggerId"),
        level=level_value(entry.get("level")),
        ts_us=instant_us(entry.get("timestamp"), "log entry: timestamp"),
        message=msg if isinstance(msg, str) else "" if msg is None else str(msg),
        entry_json=dumps(entry, "log entry"),
    )


@dataclasses.dataclass(slots=True)
class MetricRow:
    execution_id: str | None
    namespace: str | None
    flow_id: str | None
    task_id: str | None
    task_run_id: str | None
    name: str
    ts_us: int
    entry_json: str

    def sql_params(self) -> tuple[Any, ...]:
        return (self.execution_id, self.namespace, self.flow_id, self.task_id, self.task_run_id, self.name,
                self.ts_us, self.entry_json)


def metric_row(entry: Any) -> MetricRow:
    """Validate a MetricEntry dict (``name``, ``type``, numeric ``value``, ``timestamp``)."""
    entry = require_dict(entry, "metric entry")
    name = require_str(entry, "name", "metric entry")
    if entry.get("type") not in ("counter", "timer"):
        raise IllegalArgument(f"metric {name}: type must be 'counter' or 'timer', got {entry.get('type')!r}")
    value = entry.get("value")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise IllegalArgument(f"metric {name}: value must be a number, got {value!r}")
    return MetricRow(
        execution_id=opt_str(entry, "executionId"),
        namespace=opt_str(entry, "namespace"),
        flow_id=opt_str(entry, "flowId"),
        task_id=opt_str(entry, "taskId"),
        task_run_id=opt_str(entry, "taskRunId"),
        name=name,
        ts_us=instant_us(entry.get("timestamp"), f"metric {name}: timestamp"),
        entry_json=dumps(entry, f"metric {name}"),
    )


#### KV and triggers ########################################################################################

def kv_expiration_ms(namespace: str, key: str, entry: Any) -> int | None:
    """Validate a KV entry; its expiration as epoch ms (None = never expires)."""
    entry = require_dict(entry, f"kv {namespace}/{key}")
    if not namespace or not key:
        raise IllegalArgument("kv namespace and key must be non-empty")
    if "type" not in entry or "value" not in entry:
        raise IllegalArgument(f"kv {namespace}/{key}: entry needs 'type' and 'value'")
    exp = entry.get("expirationDate")
    return None if exp is None else instant_us(exp, f"kv {namespace}/{key}: expirationDate") // 1000


def trigger_key(doc: Any) -> tuple[str, str, str]:
    doc = require_dict(doc, "trigger")
    return (require_str(doc, "namespace", "trigger"), require_str(doc, "flowId", "trigger"),
            require_str(doc, "triggerId", "trigger"))


#### Flows ##################################################################################################

def check_flow(record: Any) -> None:
    if not isinstance(record, FlowRecord):
        raise IllegalArgument(f"expected a FlowRecord, got {type(record).__name__}")
    if not record.namespace or not record.id:
        raise IllegalArgument("flow namespace and id must be non-empty")
    if not isinstance(record.revision, int) or isinstance(record.revision, bool) or record.revision < 1:
        raise IllegalArgument(f"flow revision must be an integer >= 1, got {record.revision!r}")
    if not isinstance(record.source, str):
        raise IllegalArgument("flow source must be a string")


def copy_flow(record: FlowRecord) -> FlowRecord:
    return FlowRecord(record.namespace, record.id, record.revision, record.source, bool(record.deleted),
                      bool(record.disabled), record.updated)
