"""SQL for the SQLite store: schema (with its version), the WHERE/ORDER clauses of the searches, and the
job functions the writer thread runs (``fn(conn, *args)``).
"""
from __future__ import annotations

import sqlite3
from datetime import datetime
from typing import Any

from falconet.runtime.store._common import (
    TERMINAL_STATES, StoreError, check_child_filter, check_paging, check_states, dt_ms, dt_us, level_value,
    parse_sort,
)
from falconet.runtime.kernel.errors import IllegalState
from falconet.runtime.store.base import ExecutionQuery, FlowRecord, LogQuery

#### Schema #################################################################################################

SCHEMA_VERSION = 2

_SCHEMA_V1 = """
CREATE TABLE executions (
    seq                  INTEGER PRIMARY KEY,          -- insertion order (tie-break), kept by upserts
    id                   TEXT NOT NULL UNIQUE,
    namespace            TEXT NOT NULL,
    flow_id              TEXT NOT NULL,
    state                TEXT NOT NULL,
    start_date           INTEGER NOT NULL,             -- epoch ms of state.startDate
    end_date             INTEGER,                      -- epoch ms of state.endDate
    labels               TEXT NOT NULL,                -- JSON [{"key","value"}]
    parent_id            TEXT,
    trigger_execution_id TEXT,                         -- trigger.variables.executionId (subflow/flow trigger)
    deleted              INTEGER NOT NULL DEFAULT 0,
    doc                  TEXT NOT NULL                 -- the whole document, JSON
);
CREATE INDEX ix_executions_start ON executions (start_date);
CREATE INDEX ix_executions_flow ON executions (namespace, flow_id, start_date);
CREATE INDEX ix_executions_state ON executions (state, start_date);
CREATE INDEX ix_executions_trigger ON executions (trigger_execution_id) WHERE trigger_execution_id IS NOT NULL;

CREATE TABLE flows (
    namespace TEXT NOT NULL,
    id        TEXT NOT NULL,
    revision  INTEGER NOT NULL,
    source    TEXT NOT NULL,
    deleted   INTEGER NOT NULL DEFAULT 0,
    disabled  INTEGER NOT NULL DEFAULT 0,
    updated   TEXT,                                    -- ISO-8601 with offset, or NULL
    PRIMARY KEY (namespace, id, revision)
);

CREATE TABLE logs (
    seq          INTEGER PRIMARY KEY,                  -- insertion order: the tie-break of equal timestamps
    execution_id TEXT,
    namespace    TEXT,
    flow_id      TEXT,
    task_id      TEXT,
    task_run_id  TEXT,
    attempt      INTEGER,
    trigger_id   TEXT,
    level        INTEGER NOT NULL,                     -- TRACE 0 < DEBUG 1 < INFO 2 < WARN 3 < ERROR 4
    timestamp    INTEGER NOT NULL,                     -- epoch µs
    message      TEXT NOT NULL,
    entry        TEXT NOT NULL                         -- the LogEntry, JSON
);
CREATE INDEX ix_logs_execution ON logs (execution_id, timestamp, seq);
CREATE INDEX ix_logs_flow ON logs (namespace, flow_id, timestamp);

CREATE TABLE metrics (
    seq          INTEGER PRIMARY KEY,
    execution_id TEXT,
    namespace    TEXT,
    flow_id      TEXT,
    task_id      TEXT,
    task_run_id  TEXT,
    name         TEXT NOT NULL,
    timestamp    INTEGER NOT NULL,                     -- epoch µs
    entry        TEXT NOT NULL                         -- the MetricEntry, JSON
);
CREATE INDEX ix_metrics_execution ON metrics (execution_id, timestamp, seq);
CREATE INDEX ix_metrics_flow ON metrics (namespace, flow_id, name, timestamp);

CREATE TABLE kv (
    namespace  TEXT NOT NULL,
    key        TEXT NOT NULL,
    expiration INTEGER,                                -- epoch ms, NULL = never
    entry      TEXT NOT NULL,
    PRIMARY KEY (namespace, key)
);

CREATE TABLE triggers (
    namespace  TEXT NOT NULL,
    flow_id    TEXT NOT NULL,
    trigger_id TEXT NOT NULL,
    doc        TEXT NOT NULL,
    PRIMARY KEY (namespace, flow_id, trigger_id)
);

CREATE TABLE state (
    kind  TEXT NOT NULL,
    key   TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (kind, key)
);
"""

# the log viewer reads one task run's lines page by page and counts lines per task run
_SCHEMA_V2 = """
CREATE INDEX ix_logs_task_run ON logs (execution_id, task_run_id, timestamp, seq);
"""

#: version -> script that upgrades from version-1 (index 1 creates everything)
MIGRATIONS: dict[int, str] = {1: _SCHEMA_V1, 2: _SCHEMA_V2}


def _py_lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def setup_connection(conn: sqlite3.Connection) -> None:
    """Pragmas (WAL, synchronous=NORMAL) and the SQL function ``fc_lower`` (Unicode lower-case)."""
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=5000")
    conn.execute("PRAGMA temp_store=MEMORY")
    conn.create_function("fc_lower", 1, _py_lower, deterministic=True)


def migrate(conn: sqlite3.Connection) -> int:
    """Create or upgrade the schema in one transaction; returns the version. StoreError when the file
    was written by a newer version."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        row = conn.execute("SELECT max(version) FROM schema_version").fetchone()
        version = row[0] or 0
        if version > SCHEMA_VERSION:
            raise StoreError(f"database schema version {version} is newer than this Falconet ({SCHEMA_VERSION})")
        for v in range(version + 1, SCHEMA_VERSION + 1):
            for stmt in MIGRATIONS[v].split(";"):
                if stmt.strip():
                    conn.execute(stmt)
            conn.execute("INSERT INTO schema_version (version) VALUES (?)", (v,))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return SCHEMA_VERSION


#### Statements #############################################################################################

UPSERT_EXECUTION = """
INSERT INTO executions (id, namespace, flow_id, state, start_date, end_date, labels, parent_id,
                        trigger_execution_id, deleted, doc)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET
    namespace = excluded.namespace, flow_id = excluded.flow_id, state = excluded.state,
    start_date = excluded.start_date, end_date = excluded.end_date, labels = excluded.labels,
    parent_id = excluded.parent_id, trigger_execution_id = excluded.trigger_execution_id,
    deleted = excluded.deleted, doc = excluded.doc
"""

INSERT_LOG = """
INSERT INTO logs (execution_id, namespace, flow_id, task_id, task_run_id, attempt, trigger_id, level,
                  timestamp, message, entry)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""

INSERT_METRIC = """
INSERT INTO metrics (execution_id, namespace, flow_id, task_id, task_run_id, name, timestamp, entry)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
"""

_COLUMNS = {"start_ms": "start_date", "end_ms": "end_date", "id": "id", "namespace": "namespace",
            "flow_id": "flow_id", "state": "state"}


class Where:
    """Accumulates ``AND``-ed conditions and their parameters."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.params: list[Any] = []

    def add(self, sql: str, *params: Any) -> None:
        self.parts.append(sql)
        self.params.extend(params)

    def namespace(self, column: str, prefix: str) -> None:
        # "a.b" matches "a.b" and "a.b.*": the range ["a.b.", "a.b/") ('/' follows '.'), case-sensitive
        self.add(f"({column} = ? OR ({column} >= ? AND {column} < ?))", prefix, prefix + ".", prefix + "/")

    def sql(self) -> str:
        return (" WHERE " + " AND ".join(self.parts)) if self.parts else ""


def execution_search(query: ExecutionQuery) -> tuple[str, str, list[Any]]:
    """``(where_sql, order_sql, params)`` of a search; IllegalArgument for invalid queries."""
    check_paging(query.page, query.size)
    order = parse_sort(query.sort)
    states = check_states(query.states)
    child = check_child_filter(query.child_filter)
    w = Where()
    w.add("deleted = 0")
    if query.namespace is not None:
        w.namespace("namespace", query.namespace)
    if query.flow_id is not None:
        w.add("flow_id = ?", query.flow_id)
    if states:
        w.add(f"state IN ({','.join('?' * len(states))})", *states)
    for key, value in query.labels:
        w.add("EXISTS (SELECT 1 FROM json_each(executions.labels) j "
              "WHERE json_extract(j.value, '$.key') = ? AND json_extract(j.value, '$.value') = ?)",
              str(key), str(value))
    if query.start_date is not None:
        w.add("start_date >= ?", dt_ms(query.start_date))
    if query.end_date is not None:
        w.add("start_date <= ?", dt_ms(query.end_date))
    if query.trigger_execution_id is not None:
        w.add("trigger_execution_id = ?", query.trigger_execution_id)
    if child == "CHILD":
        w.add("trigger_execution_id IS NOT NULL")
    elif child == "MAIN":
        w.add("trigger_execution_id IS NULL")
    if query.q:
        q = query.q.lower()
        w.add("(instr(fc_lower(id), ?) > 0 OR instr(fc_lower(namespace), ?) > 0 OR instr(fc_lower(flow_id), ?) > 0)",
              q, q, q)
    terms = [f"{_COLUMNS[col]} {'DESC' if desc else 'ASC'}" for col, desc in order]
    terms.append(f"seq {'DESC' if order[0][1] else 'ASC'}")
    return w.sql(), " ORDER BY " + ", ".join(terms), w.params


UNFINISHED = ("SELECT doc FROM executions WHERE deleted = 0 AND state NOT IN ("
              + ",".join(f"'{s}'" for s in sorted(TERMINAL_STATES)) + ") ORDER BY start_date, seq")


def log_where(query: LogQuery) -> Where:
    w = Where()
    if query.execution_id is not None:
        w.add("execution_id = ?", query.execution_id)
    if query.namespace is not None:
        w.namespace("namespace", query.namespace)
    for attr, col in (("flow_id", "flow_id"), ("task_id", "task_id"), ("task_run_id", "task_run_id"),
                      ("attempt", "attempt"), ("trigger_id", "trigger_id")):
        v = getattr(query, attr)
        if v is not None:
            w.add(f"{col} = ?", v)
    if query.outside_task_runs:
        w.add("task_run_id IS NULL")
    if query.min_level is not None:
        w.add("level >= ?", level_value(query.min_level))
    if query.start_date is not None:
        w.add("timestamp >= ?", dt_us(query.start_date))
    if query.end_date is not None:
        w.add("timestamp <= ?", dt_us(query.end_date))
    if query.q:
        w.add("instr(fc_lower(message), ?) > 0", query.q.lower())
    return w


#### Job functions (run on the writer thread) ###############################################################

def select(conn: sqlite3.Connection, query: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    return conn.execute(query, params).fetchall()


def modify(conn: sqlite3.Connection, query: str, params: tuple[Any, ...]) -> int:
    """Any single modifying statement; returns the number of rows changed."""
    return conn.execute(query, params).rowcount


def search_executions(conn: sqlite3.Connection, where: str, order: str, params: list[Any], limit: int,
            offset: int) -> tuple[list[str], int]:
    total = conn.execute("SELECT count(*) FROM executions" + where, params).fetchone()[0]
    rows = conn.execute("SELECT doc FROM executions" + where + order + " LIMIT ? OFFSET ?",
                        [*params, limit, offset]).fetchall()
    return [r[0] for r in rows], total


def search_logs(conn: sqlite3.Connection, where: str, params: list[Any], limit: int | None,
                 offset: int | None) -> tuple[list[str], int]:
    total = conn.execute("SELECT count(*) FROM logs" + where, params).fetchone()[0]
    tail = " ORDER BY timestamp, seq"
    if limit is not None:
        tail += " LIMIT ? OFFSET ?"
        params = [*params, limit, offset]
    rows = conn.execute("SELECT entry FROM logs" + where + tail, params).fetchall()
    return [r[0] for r in rows], total


def save_flow(conn: sqlite3.Connection, namespace: str, flow_id: str, revision: int, source: str,
               deleted: int, disabled: int, updated: str | None) -> None:
    if conn.execute("SELECT 1 FROM flows WHERE namespace = ? AND id = ? AND revision = ?",
                    (namespace, flow_id, revision)).fetchone():
        raise IllegalState(f"flow {namespace}.{flow_id} revision {revision} already exists")
    conn.execute("INSERT INTO flows (namespace, id, revision, source, deleted, disabled, updated) "
                 "VALUES (?, ?, ?, ?, ?, ?, ?)", (namespace, flow_id, revision, source, deleted, disabled, updated))


def kv_delete(conn: sqlite3.Connection, namespace: str, key: str, now: int) -> bool:
    row = conn.execute("SELECT expiration FROM kv WHERE namespace = ? AND key = ?", (namespace, key)).fetchone()
    if row is None:
        return False
    conn.execute("DELETE FROM kv WHERE namespace = ? AND key = ?", (namespace, key))
    return row[0] is None or row[0] > now


def flow_record(row: tuple[Any, ...]) -> FlowRecord:
    namespace, flow_id, revision, source, deleted, disabled, updated = row
    return FlowRecord(namespace, flow_id, revision, source, bool(deleted), bool(disabled),
                      datetime.fromisoformat(updated) if updated else None)
