"""``io.kestra.plugin.jdbc.sqlite.Query`` / ``Queries``: SQL on a SQLite database file, with the standard
library's ``sqlite3`` (see :mod:`falconet.plugins.jdbc.common` for fetch types, parameters and kills).

``url`` is ``jdbc:sqlite:`` or ``jdbc:sqlite::memory:`` (a fresh in-memory database), ``jdbc:sqlite:<name>``
(a file in the task's working directory: the ``WorkingDirectory``'s when the task runs in one) or
``jdbc:sqlite:/absolute/path``. ``sqliteFile`` (a ``kestra://`` URI) is copied into the working directory as
the URL's file before the SQL runs; ``outputDbFile: true`` uploads the database file afterwards (output
``databaseUri``), so the next task can pass it as its ``sqliteFile``.
"""
from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path, PurePosixPath
from typing import Any

from falconet.sdk import (
    BOOLEAN, Example, Output, PollingContext, Prop, RunContext, STRING, TaskFailed, copy_from_storage, register,
    safe_join,
)
from falconet.plugins.jdbc.common import (
    AUTO_COMMIT, METRICS, QUERIES_OUTPUTS, QUERY_OUTPUTS, QUERY_PROPS, TRIGGER_PROPS, QueryTask, QueryTrigger, Result,
    Session,
    connection_props, consume,
)

_SCHEME = "jdbc:sqlite:"
_MEMORY = ("", ":memory:")
#: seconds a statement waits for another connection's lock before failing "database is locked"
BUSY_TIMEOUT = 5.0


class SqliteSession(Session):
    """One ``sqlite3`` connection in autocommit mode (``isolation_level=None``); ``interrupt()`` is
    ``sqlite3.Connection.interrupt``, safe from any thread."""

    error = sqlite3.Error

    def __init__(self, database: str):
        self.database = database
        self.conn: sqlite3.Connection | None = None

    def connect(self) -> None:
        self.conn = sqlite3.connect(self.database, isolation_level=None, timeout=BUSY_TIMEOUT,
                                    check_same_thread=False)

    def run(self, sql: str, args: list[Any] | None, kind: str, fetch_size: int, store_path: Path) -> Result | None:
        assert self.conn is not None
        cursor = self.conn.execute(sql, args or ())
        try:
            if kind == "NONE" or cursor.description is None:
                return None
            return consume(cursor, kind, store_path, fetch_size)
        finally:
            cursor.close()

    def begin(self) -> None:
        assert self.conn is not None
        self.conn.execute("BEGIN")

    def commit(self) -> None:
        if self.conn is not None and self.conn.in_transaction:
            self.conn.execute("COMMIT")

    def rollback(self) -> None:
        if self.conn is not None and self.conn.in_transaction:
            self.conn.execute("ROLLBACK")

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()

    def interrupt(self) -> None:
        conn = self.conn
        if conn is not None:
            with contextlib.suppress(sqlite3.ProgrammingError):   # closed meanwhile
                conn.interrupt()


def database_name(url: Any) -> str:
    """The database part of a ``jdbc:sqlite:`` URL (``""`` for in memory)."""
    text = str(url or _SCHEME)
    if not text.startswith(_SCHEME):
        raise TaskFailed(f"Invalid url '{text}': expected jdbc:sqlite:, jdbc:sqlite::memory: or jdbc:sqlite:<file>")
    name = text[len(_SCHEME):]
    return "" if name in _MEMORY else name


_URL_DOC = "jdbc:sqlite:<file> (relative to the working directory), jdbc:sqlite:/path or jdbc:sqlite: (in memory)."


class _SqliteTask(QueryTask):
    outputs_extra = {"databaseUri": Output("string", "URI of the database file (outputDbFile: true).",
                                           required=False)}
    props = {
        **connection_props(_URL_DOC, url_default=_SCHEME),
        **QUERY_PROPS,
        "sqliteFile": Prop(STRING, description="A kestra:// URI of a database file to query (copied into the "
                                               "working directory as the URL's file)."),
        "outputDbFile": Prop(BOOLEAN, default=False,
                             description="Upload the database file after the SQL ran (output databaseUri)."),
    }
    metrics = METRICS

    def _database(self, ctx: RunContext, work_dir: Path) -> Path | None:
        """The database file (None: in memory)."""
        name = database_name(ctx.prop("url"))
        needs_file = ctx.prop("sqliteFile") is not None or ctx.prop("outputDbFile")
        if not name:
            return work_dir / f"{ctx.task_id}.sqlite" if needs_file else None
        if PurePosixPath(name).is_absolute():
            # an uploaded or downloaded database lives in the working directory under the file's name
            return work_dir / PurePosixPath(name).name if needs_file else Path(name)
        return safe_join(work_dir, name)

    async def session(self, ctx: RunContext, work_dir: Path) -> Session:
        path = self._database(ctx, work_dir)
        source = ctx.prop("sqliteFile")
        if source is not None:
            assert path is not None
            if not str(source).startswith("kestra://"):
                raise TaskFailed(f"sqliteFile must be a kestra:// URI, not '{source}'")
            await copy_from_storage(ctx, str(source), path)
        return SqliteSession(":memory:" if path is None else str(path))

    async def finish(self, ctx: RunContext, work_dir: Path, outputs: dict[str, Any]) -> dict[str, Any]:
        if ctx.prop("outputDbFile"):
            path = self._database(ctx, work_dir)
            assert path is not None
            if path.is_file():
                outputs["databaseUri"] = await ctx.put_file(path)
        return outputs


@register
class Query(_SqliteTask):
    """Run SQL on a SQLite database (see the module documentation)."""

    type = "io.kestra.plugin.jdbc.sqlite.Query"
    title = "Query a SQLite database."
    examples = (
        Example("Create a table, then read it back in the next task from the uploaded database file.",
                "id: sqlite_query\n"
                "namespace: company.team\n"
                "\n"
                "tasks:\n"
                "  - id: create\n"
                "    type: io.kestra.plugin.jdbc.sqlite.Query\n"
                "    url: jdbc:sqlite:orders.db\n"
                "    outputDbFile: true\n"
                "    sql: CREATE TABLE orders AS SELECT 1 AS id, 9.5 AS amount\n"
                "\n"
                "  - id: read\n"
                "    type: io.kestra.plugin.jdbc.sqlite.Query\n"
                "    url: jdbc:sqlite:orders.db\n"
                "    sqliteFile: \"{{ outputs.create.databaseUri }}\"\n"
                "    sql: SELECT * FROM orders WHERE amount > :minimum\n"
                "    parameters:\n"
                "      minimum: 5\n"
                "    fetchType: FETCH\n", full=True),
    )
    outputs = {**QUERY_OUTPUTS, **_SqliteTask.outputs_extra}
    props = {**_SqliteTask.props,
             "autoCommit": AUTO_COMMIT}


@register
class Queries(_SqliteTask):
    """Run several SQL statements on a SQLite database, one output per statement returning rows."""

    type = "io.kestra.plugin.jdbc.sqlite.Queries"
    title = "Run several queries on a SQLite database."
    multiple = True
    examples = (
        Example("Run several statements in one transaction and fetch two result sets.",
                "url: jdbc:sqlite:shop.db\n"
                "sql: |\n"
                "  CREATE TABLE IF NOT EXISTS employee (firstName TEXT, lastName TEXT);\n"
                "  INSERT INTO employee VALUES ('Ada', 'Lovelace');\n"
                "  SELECT firstName, lastName FROM employee;\n"
                "  SELECT count(*) AS n FROM employee;\n"
                "fetchType: FETCH\n"),
    )
    outputs = {**QUERIES_OUTPUTS, **_SqliteTask.outputs_extra}
    props = {**_SqliteTask.props,
             "transaction": Prop(BOOLEAN, default=True,
                                 description="Run all statements in one transaction, rolled back if one fails.")}


@register
class Trigger(QueryTrigger):
    """Run ``sql`` on a SQLite database file every ``interval``; an execution when it returns rows. The URL
    names the file by its absolute path (a trigger has no working directory)."""

    type = "io.kestra.plugin.jdbc.sqlite.Trigger"
    title = "Wait for a query on a SQLite database to return rows."
    examples = (
        Example("Start an execution when the queue table holds jobs, checked every minute.",
                "id: sqlite_trigger\n"
                "namespace: company.team\n"
                "\n"
                "tasks:\n"
                "  - id: log\n"
                "    type: io.kestra.plugin.core.log.Log\n"
                "    message: \"{{ trigger.size }} jobs waiting\"\n"
                "\n"
                "triggers:\n"
                "  - id: watch\n"
                "    type: io.kestra.plugin.jdbc.sqlite.Trigger\n"
                "    interval: PT1M\n"
                "    url: jdbc:sqlite:/var/lib/app/queue.db\n"
                "    sql: SELECT id FROM jobs WHERE done = 0\n"
                "    fetchType: FETCH\n", full=True),
    )
    props = {**connection_props("jdbc:sqlite:/absolute/path/to/file.db"), **TRIGGER_PROPS}

    async def session(self, ctx: PollingContext, work_dir: Path) -> Session:
        name = database_name(ctx.prop("url"))
        if not name or not PurePosixPath(name).is_absolute():
            raise TaskFailed(f"url must name a database file by its absolute path, not '{ctx.prop('url')}'")
        return SqliteSession(name)
