"""PostgresStore: the Store on a PostgreSQL database, for several Falconet servers sharing one database.

The same engine as SQLite (:class:`~falconet.runtime.store.sqlstore.SQLStore` on the writer thread of
:class:`~falconet.runtime.store._writer.WriterStore`): one ``psycopg`` 3 connection in autocommit mode with
explicit transactions, group commit, execution upserts coalesced by id, reads behind the writes queued before
them. psycopg is blocking here on purpose: its async API is bound to asyncio, and a connection on a thread
of its own is how trio uses the standard ``sqlite3`` too. ``psycopg`` is the optional ``postgres`` extra.

Schema: the SQLite store's tables and columns with PostgreSQL types, created and upgraded at
:meth:`~WriterStore.open` by versioned migrations under a transaction-scoped advisory lock, so several nodes
starting at once migrate once; a database written by a newer Falconet is refused. Several servers (the nodes
of a cluster) share one database: migration 2 adds the tables of falconet/runtime/cluster/ (execution leases,
forwarded commands), which decide which node runs which execution; migration 3 the concurrency slots, which
with compare-and-set writes coordinate orchestration (:meth:`claim_concurrency_slot` serialises the claims of
one flow with a transaction-scoped advisory lock).
``fc_lower`` and ``instr`` are SQL functions of the schema (``lower``/``strpos``); note that PostgreSQL's
``lower`` follows the database's ``LC_CTYPE`` (a ``C`` database lower-cases ASCII only).
"""
from __future__ import annotations

import hashlib
import re
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from falconet.runtime.kernel.errors import IllegalArgument
from falconet.runtime.kernel.clock import SYSTEM, Clock
from falconet.runtime.store import sqlite
from falconet.runtime.store._common import StoreError
from falconet.runtime.store._sql import apply_migrations
from falconet.runtime.store._writer import ROW_DELAY
from falconet.runtime.store.sqlstore import SQLStore

__all__ = ["PostgresStore", "SCHEMA_VERSION", "redact_url"]

SCHEMA_VERSION = 3

#: pg_advisory_xact_lock key of the migrations ("falconet" in ASCII, as a bigint)
_MIGRATION_LOCK = 0x66616C636F6E6574

def _postgres_ddl(sqlite_ddl: str) -> str:
    """The SQLite store's DDL with PostgreSQL's types: the ``seq`` insertion-order keys become identity
    columns and integers 64-bit (epoch milliseconds and microseconds do not fit PostgreSQL's INTEGER)."""
    return (sqlite_ddl.replace("INTEGER PRIMARY KEY", "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY")
            .replace("INTEGER", "BIGINT"))


# the same tables, columns and indexes as SQLite's migrations 1 and 2, and the two SQL functions the shared
# queries use (SQLite's are registered on the connection)
_SCHEMA_V1 = "".join(_postgres_ddl(sqlite.MIGRATIONS[v]) for v in (1, 2)) + """
CREATE FUNCTION fc_lower(TEXT) RETURNS TEXT LANGUAGE SQL IMMUTABLE STRICT AS 'SELECT lower($1)';
CREATE FUNCTION instr(TEXT, TEXT) RETURNS INTEGER LANGUAGE SQL IMMUTABLE STRICT AS 'SELECT strpos($1, $2)';
"""

# the cluster (falconet/runtime/cluster/leases.py and commands.py): which node runs an execution until when,
# and the commands sent to it by other nodes
_SCHEMA_V2 = """
CREATE TABLE execution_leases (
    execution_id TEXT PRIMARY KEY,
    node_id TEXT NOT NULL,
    token TEXT NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX ix_execution_leases_node ON execution_leases (node_id);
CREATE INDEX ix_execution_leases_expiry ON execution_leases (expires_at);
CREATE TABLE cluster_commands (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    node_id TEXT NOT NULL,
    caller_node_id TEXT NOT NULL,
    execution_id TEXT NOT NULL,
    action TEXT NOT NULL,
    args TEXT NOT NULL,
    status TEXT NOT NULL,
    answer TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX ix_cluster_commands_node ON cluster_commands (node_id, status);
"""

#: version -> script that upgrades from version-1 (3: SQLite's 3, the concurrency slots)
MIGRATIONS: dict[int, str] = {1: _SCHEMA_V1, 2: _SCHEMA_V2, 3: _postgres_ddl(sqlite.MIGRATIONS[3])}

_PLACEHOLDER = re.compile(r"\?")


def redact_url(url: str) -> str:
    """``url`` without its password (for messages and thread names)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit((parts.scheme, f"{parts.username or ''}:***@{host}", parts.path, parts.query, parts.fragment))


class _Connection:
    """A psycopg connection speaking the writer's dialect: ``?`` placeholders, ``interrupt()``."""

    __slots__ = ("conn",)

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    @staticmethod
    def _sql(query: str) -> str:
        return _PLACEHOLDER.sub("%s", query.replace("%", "%%"))

    def execute(self, query: str, params: Any = ()) -> Any:
        if not params:
            return self.conn.execute(query)
        return self.conn.execute(self._sql(query), tuple(params))

    def executemany(self, query: str, params: Any) -> Any:
        with self.conn.cursor() as cur:
            cur.executemany(self._sql(query), list(params))
            return cur

    def interrupt(self) -> None:
        self.conn.cancel_safe(timeout=5.0)

    def close(self) -> None:
        self.conn.close()


def migrate(conn: _Connection) -> int:
    """Create or upgrade the schema in one transaction under the advisory lock (several nodes may start at
    once); returns the version. StoreError when the database was written by a newer version."""
    return apply_migrations(conn, MIGRATIONS, begin="BEGIN", version_table="falconet_schema_version",
                            separator=";\n", lock=("SELECT pg_advisory_xact_lock(?)", (_MIGRATION_LOCK,)))


class PostgresStore(SQLStore):
    """Durable store in a PostgreSQL database (``postgresql://USER[:PASSWORD]@HOST:PORT/DB``)."""

    shared = True
    label_match = ("EXISTS (SELECT 1 FROM jsonb_array_elements(executions.labels::jsonb) j "
                   "WHERE j->>'key' = ? AND j->>'value' = ?)")

    def __init__(self, url: str, *, clock: Clock = SYSTEM, max_batch: int = 20_000,
                 row_delay: float = ROW_DELAY) -> None:
        if not url.startswith(("postgresql://", "postgres://")):
            raise IllegalArgument(f"not a PostgreSQL URL: {redact_url(url)!r}")
        try:
            import psycopg
        except ImportError as exc:
            raise StoreError("the PostgreSQL store needs psycopg: pip install 'falconet[postgres]'") from exc
        self.url = url
        self.db_errors = (psycopg.Error,)
        super().__init__(redact_url(url), clock=clock, max_batch=max_batch, row_delay=row_delay)

    def flow_lock(self, namespace: str, flow_id: str) -> tuple[str, int]:
        digest = hashlib.blake2b(f"{namespace}\0{flow_id}".encode(), digest_size=8).digest()
        return "SELECT pg_advisory_xact_lock(?)", int.from_bytes(digest, "big", signed=True)

    def connect(self) -> _Connection:
        import psycopg

        try:
            raw = psycopg.connect(self.url, autocommit=True, connect_timeout=10)
        except psycopg.Error as exc:
            raise StoreError(f"cannot connect to {self.name}: {str(exc).strip().splitlines()[0]}") from None
        conn = _Connection(raw)
        try:
            migrate(conn)
        except BaseException:
            conn.close()
            raise
        return conn
