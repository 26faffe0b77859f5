"""SQLiteStore: the durable store of ``server local`` — the standard ``sqlite3`` module on the writer thread
of :class:`~falconet.runtime.store._writer.WriterStore` (WAL, ``synchronous=NORMAL``), the Store contract of
:class:`~falconet.runtime.store.sqlstore.SQLStore`. This module adds the file, the pragmas and the schema."""
from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from falconet.runtime.kernel.clock import SYSTEM, Clock
from falconet.runtime.store._sql import apply_migrations
from falconet.runtime.store._writer import ROW_DELAY
from falconet.runtime.store.sqlstore import SQLStore

__all__ = ["SQLiteStore", "SCHEMA_VERSION"]

#### Schema #################################################################################################

SCHEMA_VERSION = 3

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

# the concurrency slots of a cluster's admission (Store.claim_concurrency_slot); one server keeps them in memory
_SCHEMA_V3 = """
CREATE TABLE concurrency_slots (
    execution_id TEXT NOT NULL PRIMARY KEY,
    namespace    TEXT NOT NULL,
    flow_id      TEXT NOT NULL
);
CREATE INDEX ix_concurrency_slots_flow ON concurrency_slots (namespace, flow_id);
"""

#: version -> script that upgrades from version-1 (index 1 creates everything)
MIGRATIONS: dict[int, str] = {1: _SCHEMA_V1, 2: _SCHEMA_V2, 3: _SCHEMA_V3}


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
    return apply_migrations(conn, MIGRATIONS, begin="BEGIN IMMEDIATE", version_table="schema_version",
                            separator=";")


class SQLiteStore(SQLStore):
    """Durable store in one SQLite file (created with its folder). ``clock`` tells the current date (KV
    expiry); ``max_batch`` bounds the rows written per transaction; log and metric rows alone wait up to
    ``row_delay`` seconds for more (:mod:`._writer`)."""

    db_errors = (sqlite3.Error,)

    def __init__(self, path: Path | str, *, clock: Clock = SYSTEM, max_batch: int = 20_000,
                 row_delay: float = ROW_DELAY) -> None:
        self.path = Path(path)
        super().__init__(str(self.path), clock=clock, max_batch=max_batch, row_delay=row_delay)

    def connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, isolation_level=None, timeout=5.0)
        try:
            setup_connection(conn)
            migrate(conn)
        except BaseException:
            conn.close()
            raise
        return conn
