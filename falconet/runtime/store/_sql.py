"""SQL shared by the SQLite and PostgreSQL stores: statements, the WHERE/ORDER clauses of the searches, and
the job functions the writer thread runs (``fn(conn, *args)``). Both schemas have the same tables and columns
and the SQL functions ``fc_lower`` (Unicode lower-case) and ``instr``."""
from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Mapping

from falconet.runtime.store._common import (
    TERMINAL_STATES, StoreError, check_child_filter, check_paging, check_states, dt_ms, dt_us, level_value,
    parse_sort,
)
from falconet.runtime.kernel.errors import IllegalState
from falconet.runtime.store.base import ExecutionQuery, FlowRecord, LogQuery

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


SQLITE_LABEL_MATCH = ("EXISTS (SELECT 1 FROM json_each(executions.labels) j "
                      "WHERE json_extract(j.value, '$.key') = ? AND json_extract(j.value, '$.value') = ?)")


def execution_search(query: ExecutionQuery, label_match: str = SQLITE_LABEL_MATCH) -> tuple[str, str, list[Any]]:
    """``(where_sql, order_sql, params)`` of a search; IllegalArgument for invalid queries. ``label_match`` is
    the dialect's condition on one label (key, value)."""
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
        w.add(label_match, str(key), str(value))
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
    # NULLs (a running execution's end date) sort as SQLite sorts them by default, on PostgreSQL too
    terms = [f"{_COLUMNS[col]} {'DESC NULLS LAST' if desc else 'ASC NULLS FIRST'}" for col, desc in order]
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

def select(conn: Any, query: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    return conn.execute(query, params).fetchall()


def modify(conn: Any, query: str, params: tuple[Any, ...]) -> int:
    """Any single modifying statement; returns the number of rows changed."""
    return conn.execute(query, params).rowcount


def search_executions(conn: Any, where: str, order: str, params: list[Any], limit: int,
            offset: int) -> tuple[list[str], int]:
    total = conn.execute("SELECT count(*) FROM executions" + where, params).fetchone()[0]
    rows = conn.execute("SELECT doc FROM executions" + where + order + " LIMIT ? OFFSET ?",
                        [*params, limit, offset]).fetchall()
    return [r[0] for r in rows], total


def search_logs(conn: Any, where: str, params: list[Any], limit: int | None,
                 offset: int | None) -> tuple[list[str], int]:
    total = conn.execute("SELECT count(*) FROM logs" + where, params).fetchone()[0]
    tail = " ORDER BY timestamp, seq"
    if limit is not None:
        tail += " LIMIT ? OFFSET ?"
        params = [*params, limit, offset]
    rows = conn.execute("SELECT entry FROM logs" + where + tail, params).fetchall()
    return [r[0] for r in rows], total


def save_flow(conn: Any, namespace: str, flow_id: str, revision: int, source: str,
               deleted: int, disabled: int, updated: str | None) -> None:
    if conn.execute("SELECT 1 FROM flows WHERE namespace = ? AND id = ? AND revision = ?",
                    (namespace, flow_id, revision)).fetchone():
        raise IllegalState(f"flow {namespace}.{flow_id} revision {revision} already exists")
    conn.execute("INSERT INTO flows (namespace, id, revision, source, deleted, disabled, updated) "
                 "VALUES (?, ?, ?, ?, ?, ?, ?)", (namespace, flow_id, revision, source, deleted, disabled, updated))


def kv_delete(conn: Any, namespace: str, key: str, now: int) -> bool:
    row = conn.execute("SELECT expiration FROM kv WHERE namespace = ? AND key = ?", (namespace, key)).fetchone()
    if row is None:
        return False
    conn.execute("DELETE FROM kv WHERE namespace = ? AND key = ?", (namespace, key))
    return row[0] is None or row[0] > now


def flow_record(row: tuple[Any, ...]) -> FlowRecord:
    namespace, flow_id, revision, source, deleted, disabled, updated = row
    return FlowRecord(namespace, flow_id, revision, source, bool(deleted), bool(disabled),
                      datetime.fromisoformat(updated) if updated else None)


#### Compare-and-set and concurrency slots (run as ``alone`` jobs: a short transaction of their own) ##########

class SwapConflict(Exception):
    """A compare-and-set found another value: the job rolls back to its savepoint, the caller gets False."""


def _same(stored: str | None, expected: Any) -> bool:
    """The stored JSON holds ``expected`` (compared as values: key order and spacing do not matter)."""
    return stored is None if expected is None else stored is not None and json.loads(stored) == expected


def swap_trigger(conn: Any, namespace: str, flow_id: str, trigger_id: str, expected: Any, doc: str) -> bool:
    where = " WHERE namespace = ? AND flow_id = ? AND trigger_id = ?"
    key = (namespace, flow_id, trigger_id)
    row = conn.execute("SELECT doc FROM triggers" + where, key).fetchone()
    if not _same(row[0] if row else None, expected):
        return False
    if row is None:
        return conn.execute("INSERT INTO triggers (namespace, flow_id, trigger_id, doc) VALUES (?, ?, ?, ?) "
                            "ON CONFLICT (namespace, flow_id, trigger_id) DO NOTHING", (*key, doc)).rowcount > 0
    # the text just read: a concurrent writer's change in between makes this update nothing
    return conn.execute("UPDATE triggers SET doc = ?" + where + " AND doc = ?", (doc, *key, row[0])).rowcount > 0


def swap_states(conn: Any, kind: str, changes: list[tuple[str, Any, str | None]]) -> None:
    """Apply every (key, expected value, new value JSON or None) or raise SwapConflict (the savepoint undoes
    the others)."""
    for key, expected, value in changes:
        row = conn.execute("SELECT value FROM state WHERE kind = ? AND key = ?", (kind, key)).fetchone()
        if not _same(row[0] if row else None, expected):
            raise SwapConflict(key)
        if row is None and value is None:
            continue
        if row is None:
            done = conn.execute("INSERT INTO state (kind, key, value) VALUES (?, ?, ?) ON CONFLICT (kind, key) "
                                "DO NOTHING", (kind, key, value)).rowcount > 0
        elif value is None:
            done = conn.execute("DELETE FROM state WHERE kind = ? AND key = ? AND value = ?",
                                (kind, key, row[0])).rowcount > 0
        else:
            done = conn.execute("UPDATE state SET value = ? WHERE kind = ? AND key = ? AND value = ?",
                                (value, kind, key, row[0])).rowcount > 0
        if not done:
            raise SwapConflict(key)


_NOT_TERMINAL = "state NOT IN (" + ",".join(f"'{s}'" for s in sorted(TERMINAL_STATES)) + ")"


def claim_concurrency_slot(conn: Any, lock: tuple[str, int] | None, namespace: str, flow_id: str,
                           execution_id: str, limit: int) -> bool:
    """See :meth:`Store.claim_concurrency_slot`; ``lock`` is the dialect's statement serialising the claims of
    one flow and its key (None: the connection is the only writer, as SQLite's is)."""
    if lock is not None:
        conn.execute(lock[0], (lock[1],))
    conn.execute("DELETE FROM concurrency_slots WHERE namespace = ? AND flow_id = ? AND NOT EXISTS (SELECT 1 FROM "
                 "executions e WHERE e.id = concurrency_slots.execution_id AND e.deleted = 0 AND e."
                 + _NOT_TERMINAL + ")", (namespace, flow_id))
    if conn.execute("SELECT 1 FROM concurrency_slots WHERE execution_id = ?", (execution_id,)).fetchone():
        return True
    running = conn.execute("SELECT count(*) FROM concurrency_slots WHERE namespace = ? AND flow_id = ?",
                           (namespace, flow_id)).fetchone()[0]
    ahead = 0
    row = conn.execute("SELECT start_date, seq FROM executions WHERE id = ?", (execution_id,)).fetchone()
    if row is not None:
        ahead = conn.execute("SELECT count(*) FROM executions WHERE namespace = ? AND flow_id = ? AND deleted = 0 "
                             "AND state = 'QUEUED' AND id <> ? AND (start_date < ? OR (start_date = ? AND seq < ?)) "
                             "AND NOT EXISTS (SELECT 1 FROM concurrency_slots s WHERE s.execution_id = executions.id)",
                             (namespace, flow_id, execution_id, row[0], row[0], row[1])).fetchone()[0]
    if running + ahead >= limit:
        return False
    conn.execute("INSERT INTO concurrency_slots (execution_id, namespace, flow_id) VALUES (?, ?, ?)",
                 (execution_id, namespace, flow_id))
    return True


def apply_migrations(conn: Any, migrations: Mapping[int, str], *, begin: str, version_table: str,
                     separator: str, lock: tuple[str, tuple[Any, ...]] | None = None) -> int:
    """Create or upgrade a schema to the last of ``migrations`` (version -> statements joined by
    ``separator``) in one transaction opened by ``begin``, after ``lock`` (a statement and its parameters)
    when given; each version applied is recorded in ``version_table``. Returns the version reached;
    :class:`StoreError` when the database was written by a newer version."""
    latest = max(migrations)
    conn.execute(begin)
    try:
        if lock is not None:
            conn.execute(*lock)
        conn.execute(f"CREATE TABLE IF NOT EXISTS {version_table} (version INTEGER NOT NULL)")
        version = conn.execute(f"SELECT max(version) FROM {version_table}").fetchone()[0] or 0
        if version > latest:
            raise StoreError(f"database schema version {version} is newer than this Falconet ({latest})")
        for v in range(version + 1, latest + 1):
            for stmt in migrations[v].split(separator):
                if stmt.strip():
                    conn.execute(stmt)
            conn.execute(f"INSERT INTO {version_table} (version) VALUES (?)", (v,))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return latest
