"""``io.kestra.plugin.jdbc.postgresql.Query`` / ``Queries`` / ``Trigger`` on psycopg 3, an optional extra:
``pip install 'falconet[postgres]'`` (see :mod:`falconet.plugins.jdbc.common` for fetch types, parameters and
kills).

``url`` is Kestra's ``jdbc:postgresql://host[:port]/database[?param=value…]``; ``username``/``password``
(or the URL's ``user``/``password``) authenticate. URL parameters understood: ``user``, ``password``,
``ssl``, ``sslmode``, ``sslrootcert``/``sslcert``/``sslkey`` (file paths), ``sslpassword``,
``connectTimeout`` (seconds, default 10), ``ApplicationName``, ``currentSchema``, ``options``; any other fails
the task. The ``ssl*`` properties give PEM contents, written to files of the attempt's working directory.
STORE streams the rows (psycopg's chunked ``stream()``, ``fetchSize`` rows per chunk), so an extract of any size
runs in bounded memory. A kill or timeout sends PostgreSQL a cancel request for the running statement
(libpq's ``PQcancel``, what ``pg_cancel_backend`` does) until the worker thread has finished.
"""
from __future__ import annotations

import importlib.util

# fail fast when the optional extra is missing, without importing psycopg before a query runs
if importlib.util.find_spec("psycopg") is None:
    raise ModuleNotFoundError("No module named 'psycopg'", name="psycopg")

import os  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import TYPE_CHECKING, Any  # noqa: E402
from urllib.parse import parse_qsl, unquote, urlsplit  # noqa: E402

import trio  # noqa: E402

from falconet.sdk import (  # noqa: E402
    BOOLEAN, ENUM, Example, PollingContext, Prop, RunContext, STRING, TaskFailed, register, write_ion_rows,
)
from falconet.plugins.jdbc.common import (  # noqa: E402
    AUTO_COMMIT, METRICS, QUERIES_OUTPUTS, QUERY_OUTPUTS, QUERY_PROPS, TRIGGER_PROPS, QueryTask, QueryTrigger, Result,
    Session,
    connection_props, consume, ion_value,
)

if TYPE_CHECKING:  # pragma: no cover
    import psycopg


def _psycopg() -> Any:
    """The ``psycopg`` module, imported on first use."""
    import psycopg

    return psycopg


SSL_MODES = ("DISABLE", "ALLOW", "PREFER", "REQUIRE", "VERIFY_CA", "VERIFY_FULL")
_SCHEME = "jdbc:postgresql:"
#: URL parameters (pgjdbc's names) → libpq's
_URL_PARAMS = {"user": "user", "password": "password", "sslmode": "sslmode", "sslrootcert": "sslrootcert",
               "sslcert": "sslcert", "sslkey": "sslkey", "sslpassword": "sslpassword",
               "connectTimeout": "connect_timeout", "ApplicationName": "application_name",
               "options": "options"}
CONNECT_TIMEOUT = 10


def connect_params(url: Any) -> dict[str, str]:
    """libpq connection parameters of a ``jdbc:postgresql:`` URL (TaskFailed when it is not one)."""
    text = str(url or "")
    if not text.startswith(_SCHEME):
        raise TaskFailed(f"Invalid url '{text}': expected jdbc:postgresql://host[:port]/database")
    rest = text[len(_SCHEME):]
    parts = urlsplit(rest if rest.startswith("//") else "//localhost/" + rest.lstrip("/"))
    params: dict[str, str] = {"connect_timeout": str(CONNECT_TIMEOUT)}
    try:
        if parts.hostname:
            params["host"] = parts.hostname
        if parts.port:
            params["port"] = str(parts.port)
    except ValueError as exc:
        raise TaskFailed(f"Invalid url '{text}': {exc}") from exc
    database = unquote(parts.path.lstrip("/"))
    if database:
        params["dbname"] = database
    if parts.username:
        params["user"] = unquote(parts.username)
    if parts.password:
        params["password"] = unquote(parts.password)
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key == "ssl":
            if value.lower() == "true":
                params.setdefault("sslmode", "require")
        elif key == "currentSchema":
            params["options"] = f"-c search_path={value}"
        elif key in _URL_PARAMS:
            params[_URL_PARAMS[key]] = value
        else:
            raise TaskFailed(f"Unsupported url parameter '{key}'")
    return params


async def session_for(ctx: Any, work_dir: Path) -> PostgresSession:
    """The session the task's (or trigger's) properties describe; PEM properties become files of ``work_dir``."""
    params = connect_params(ctx.prop("url"))
    for prop, key in (("username", "user"), ("password", "password")):
        value = ctx.prop(prop)
        if value is not None:
            params[key] = str(value)
    if ctx.prop("ssl"):
        params.setdefault("sslmode", "require")
    mode = ctx.prop("sslMode")
    if mode:
        params["sslmode"] = str(mode).lower().replace("_", "-")
    for prop, key in (("sslRootCert", "sslrootcert"), ("sslCert", "sslcert"), ("sslKey", "sslkey")):
        pem = ctx.prop(prop)
        if pem:
            path = work_dir / f"{key}.pem"

            def write(path: Path = path, pem: str = str(pem)) -> None:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "w", encoding="utf-8") as f:
                    f.write(pem)

            await trio.to_thread.run_sync(write)
            params[key] = str(path)
    if ctx.prop("sslKeyPassword") is not None:
        params["sslpassword"] = str(ctx.prop("sslKeyPassword"))
    return PostgresSession(params, ctx.prop("timeZoneId"))


class PostgresSession(Session):
    """One psycopg connection in autocommit mode; ``interrupt()`` sends a cancel request for the running
    statement (``Connection.cancel_safe``, safe from any thread)."""

    def __init__(self, params: dict[str, str], time_zone: str | None):
        self.params = params
        self.time_zone = time_zone
        self.conn: psycopg.Connection[Any] | None = None
        self.error = _psycopg().Error

    def connect(self) -> None:
        self.conn = _psycopg().connect(autocommit=True, **self.params)
        if self.time_zone:
            self.conn.execute("SELECT set_config('TimeZone', %s, false)", [self.time_zone])

    def run(self, sql: str, args: list[Any] | None, kind: str, fetch_size: int, store_path: Path) -> Result | None:
        assert self.conn is not None
        with self.conn.cursor() as cursor:
            if kind != "STORE":
                cursor.execute(sql, args)
                if kind == "NONE" or cursor.description is None:
                    return None
                return consume(cursor, kind, store_path, fetch_size)
            rows = cursor.stream(sql, args, size=max(1, fetch_size))
            def named(row: Any) -> Any:
                # the description is known once the first row has arrived
                return ion_value(dict(zip([d.name for d in cursor.description or ()], row, strict=True)))

            with open(store_path, "w", encoding="utf-8") as out:
                size = write_ion_rows(out, (named(r) for r in rows))
            if cursor.description is None:
                store_path.unlink()
                return None
            return Result({"size": size}, size, store_path)

    def begin(self) -> None:
        assert self.conn is not None
        self.conn.autocommit = False

    def commit(self) -> None:
        assert self.conn is not None
        self.conn.commit()

    def rollback(self) -> None:
        if self.conn is not None and not self.conn.closed:
            self.conn.rollback()

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()

    def interrupt(self) -> None:
        conn = self.conn
        if conn is not None and not conn.closed:
            conn.cancel_safe(timeout=5.0)


SSL_PROPS = {
    "ssl": Prop(BOOLEAN, default=False, description="Connect with SSL (sslmode require unless sslMode says)."),
    "sslMode": Prop(ENUM, values=SSL_MODES, description="The SSL mode."),
    "sslRootCert": Prop(STRING, description="The SSL root certificate (PEM)."),
    "sslCert": Prop(STRING, description="The SSL client certificate (PEM)."),
    "sslKey": Prop(STRING, description="The SSL client key (PEM)."),
    "sslKeyPassword": Prop(STRING, description="The SSL client key's password."),
}
_URL = "jdbc:postgresql://host:port/database"


class _PostgresTask(QueryTask):
    placeholder = "%s"
    escape_percent = True
    metrics = METRICS
    props = {**connection_props(_URL), **QUERY_PROPS, **SSL_PROPS}

    async def session(self, ctx: RunContext, work_dir: Path) -> Session:
        return await session_for(ctx, work_dir)


@register
class Query(_PostgresTask):
    """Run SQL on a PostgreSQL server (several statements allowed; the last one returning rows is fetched)."""

    type = "io.kestra.plugin.jdbc.postgresql.Query"
    title = "Query a PostgreSQL server."
    examples = (
        Example("Fetch rows in one task and use them in the next.",
                "id: postgres_query\n"
                "namespace: company.team\n"
                "\n"
                "tasks:\n"
                "  - id: fetch\n"
                "    type: io.kestra.plugin.jdbc.postgresql.Query\n"
                "    url: jdbc:postgresql://127.0.0.1:5432/shop\n"
                "    username: pg_user\n"
                "    password: \"{{ secret('PG_PASSWORD') }}\"\n"
                "    sql: SELECT id, amount FROM orders WHERE status = :status\n"
                "    parameters:\n"
                "      status: paid\n"
                "    fetchType: FETCH\n"
                "\n"
                "  - id: log\n"
                "    type: io.kestra.plugin.core.log.Log\n"
                "    message: \"{{ outputs.fetch.size }} paid orders\"\n", full=True),
    )
    outputs = QUERY_OUTPUTS
    props = {**_PostgresTask.props,
             "autoCommit": AUTO_COMMIT}


@register
class Queries(_PostgresTask):
    """Run several SQL statements on a PostgreSQL server, one output per statement returning rows."""

    type = "io.kestra.plugin.jdbc.postgresql.Queries"
    title = "Run several queries on a PostgreSQL server."
    multiple = True
    examples = (
        Example("Fetch two result sets in one transaction.",
                "url: jdbc:postgresql://127.0.0.1:5432/shop\n"
                "username: pg_user\n"
                "password: \"{{ secret('PG_PASSWORD') }}\"\n"
                "sql: |\n"
                "  SELECT firstName, lastName FROM employee;\n"
                "  SELECT brand FROM laptop;\n"
                "fetchType: FETCH\n"),
    )
    outputs = QUERIES_OUTPUTS
    props = {**_PostgresTask.props,
             "transaction": Prop(BOOLEAN, default=True,
                                 description="Run all statements in one transaction, rolled back if one fails.")}


@register
class Trigger(QueryTrigger):
    """Run ``sql`` on a PostgreSQL server every ``interval``; an execution when it returns rows."""

    type = "io.kestra.plugin.jdbc.postgresql.Trigger"
    title = "Wait for a query on a PostgreSQL database to return rows."
    placeholder = "%s"
    escape_percent = True
    examples = (
        Example("Start an execution for the new rows of a table, checked every five minutes.",
                "id: jdbc_trigger\n"
                "namespace: company.team\n"
                "\n"
                "tasks:\n"
                "  - id: each\n"
                "    type: io.kestra.plugin.core.flow.ForEach\n"
                "    values: \"{{ trigger.rows }}\"\n"
                "    tasks:\n"
                "      - id: return\n"
                "        type: io.kestra.plugin.core.debug.Return\n"
                "        format: \"{{ json(taskrun.value) }}\"\n"
                "\n"
                "triggers:\n"
                "  - id: watch\n"
                "    type: io.kestra.plugin.jdbc.postgresql.Trigger\n"
                "    interval: PT5M\n"
                "    url: jdbc:postgresql://127.0.0.1:5432/shop\n"
                "    username: pg_user\n"
                "    password: \"{{ secret('PG_PASSWORD') }}\"\n"
                "    sql: SELECT * FROM orders WHERE processed = false\n"
                "    fetchType: FETCH\n", full=True),
    )
    props = {**connection_props(_URL), **TRIGGER_PROPS, **SSL_PROPS}

    async def session(self, ctx: PollingContext, work_dir: Path) -> Session:
        return await session_for(ctx, work_dir)
