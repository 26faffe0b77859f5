"""``io.kestra.plugin.jdbc.duckdb.Query``: run SQL on an embedded DuckDB database.

One attempt: a working directory receives ``inputFiles`` (name → inline text or ``kestra://`` URI); the
``sql`` — rendered with ``{{ workingDir }}`` and ``{{ outputFiles.<name> }}`` (paths of files to create) —
runs on a fresh connection whose ``file_search_path`` is the working directory (relative file names resolve
there). Several statements may be given; the last one's result is fetched according to ``fetchType``:

* ``NONE`` (default): nothing; ``FETCH_ONE``: output ``row`` (first row as a map, or null);
* ``FETCH``: output ``rows`` (list of maps); ``STORE``: rows streamed to an Ion file (one struct per line),
  output ``uri``. The deprecated booleans ``store``/``fetchOne``/``fetch`` select the same modes.

Outputs also ``size`` (rows fetched or stored; counter metric ``size`` too) and ``outputFiles``
(name → URI of each file the SQL created). The query runs in a worker thread so the engine never blocks; a
kill or timeout calls ``conn.interrupt()`` and abandons the thread, which then closes the connection.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import decimal
import threading
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio

from falconet.sdk import (
    ANY, BOOLEAN, ENUM, LIST, STRING, as_file_map, decimal_number, Example, Metric, Output, Prop, register, RunContext,
    RunnableTask, safe_join, TaskFailed, write_input_files, write_ion_rows,
)

if TYPE_CHECKING:  # pragma: no cover
    import duckdb


def _duckdb() -> Any:
    """The ``duckdb`` module, imported on first use: it weighs ~20 MB that an idle server should not carry."""
    import duckdb

    return duckdb


FETCH_TYPES = ("NONE", "FETCH_ONE", "FETCH", "STORE")
_BATCH = 2048


def json_value(value: Any) -> Any:
    """A DuckDB result value as a JSON-able output value (dates/times ISO strings, decimals numbers)."""
    if isinstance(value, dict):
        return {str(k): json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_value(v) for v in value]
    if isinstance(value, decimal.Decimal):
        return decimal_number(value)
    if isinstance(value, _dt.datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, (_dt.date, _dt.time)):
        return value.isoformat()
    if isinstance(value, _dt.timedelta):
        return value.total_seconds()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", errors="replace")
    return value


def ion_value(value: Any) -> Any:
    """A DuckDB result value for an Ion file: timestamps and decimals keep their Ion types."""
    if isinstance(value, dict):
        return {str(k): ion_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [ion_value(v) for v in value]
    if isinstance(value, (_dt.datetime, _dt.date, decimal.Decimal)) or value is None:
        return value
    return json_value(value)


def _interrupt_until_done(conn: "duckdb.DuckDBPyConnection", done: threading.Event) -> None:
    """Interrupt ``conn`` until its abandoned worker has finished (an interrupt that lands before the
    query starts would be lost, so it is repeated every 50 ms)."""
    while not done.is_set():
        with contextlib.suppress(_duckdb().Error):   # closed meanwhile: the worker is finishing
            conn.interrupt()
        done.wait(0.05)


def database_path(url: Any) -> str:
    """``jdbc:duckdb:`` (in memory) or ``jdbc:duckdb:/path/db.duckdb`` → a duckdb.connect() database."""
    text = "jdbc:duckdb:" if url is None else str(url)
    if not text.startswith("jdbc:duckdb:"):
        raise TaskFailed(f"Invalid url '{text}': expected jdbc:duckdb: or jdbc:duckdb:<path>")
    path = text[len("jdbc:duckdb:"):]
    return path if path and path != ":memory:" else ":memory:"


@register
class Query(RunnableTask):
    """Query an embedded DuckDB database (see the module documentation)."""

    type = "io.kestra.plugin.jdbc.duckdb.Query"
    title = "Query a DuckDB database."
    examples = (
        Example("Query a CSV file with DuckDB and store the rows.",
                "inputFiles:\n"
                "  data.csv: \"a,b\\n1,2\\n3,4\"\n"
                "sql: SELECT a + b AS total FROM read_csv_auto('{{ workingDir }}/data.csv')\n"
                "fetchType: STORE\n"),
    )
    outputs = {
        "row": Output("map", "The first row (fetchType FETCH_ONE).", required=False),
        "rows": Output("list", "The rows (fetchType FETCH).", required=False),
        "uri": Output("string", "URI of the ION file of the rows (fetchType STORE).", required=False),
        "size": Output("integer", "Number of rows fetched or stored.", required=False),
        "outputFiles": Output("map", "URIs of the files matching outputFiles.", required=False),
    }
    metrics = (
        Metric("size", "counter", "Number of rows fetched or stored.", unit="rows"),
    )
    props = {
        "sql": Prop(STRING, required=True, dynamic=False,
                    description="The SQL (rendered; may hold several statements)."),
        "url": Prop(STRING, default="jdbc:duckdb:", description="jdbc:duckdb: (in memory) or jdbc:duckdb:<file path>."),
        "inputFiles": Prop(ANY, description="Files to create in the working directory: name → content or URI."),
        "outputFiles": Prop(LIST, description="Names of files the SQL creates ({{ outputFiles.<name> }})."),
        "fetchType": Prop(ENUM, default="NONE", values=FETCH_TYPES, description="What to do with the result."),
        "store": Prop(BOOLEAN, description="Deprecated: fetchType STORE."),
        "fetchOne": Prop(BOOLEAN, description="Deprecated: fetchType FETCH_ONE."),
        "fetch": Prop(BOOLEAN, description="Deprecated: fetchType FETCH."),
        "timeZoneId": Prop(STRING, description="Time zone of the session (SET TimeZone)."),
    }

    def fetch_type(self, ctx: RunContext) -> str:
        if ctx.prop("store"):
            return "STORE"
        if ctx.prop("fetchOne"):
            return "FETCH_ONE"
        if ctx.prop("fetch"):
            return "FETCH"
        return str(ctx.prop("fetchType"))

    async def run(self, ctx: RunContext) -> dict[str, Any] | None:
        fetch_type = self.fetch_type(ctx)
        working_dir = Path(await ctx.open_temp_dir())
        names = [str(n) for n in (ctx.prop("outputFiles") or [])]
        output_paths = {n: str(safe_join(working_dir, n)) for n in names}
        extra = {"workingDir": str(working_dir), "outputFiles": output_paths}
        await write_input_files(ctx, working_dir, as_file_map(ctx.render(ctx.raw("inputFiles"), extra), "inputFiles"))
        sql = ctx.render(ctx.raw("sql"), extra)
        if not isinstance(sql, str) or not sql.strip():
            raise TaskFailed("sql must be a non-empty string")
        time_zone = ctx.prop("timeZoneId")
        store_path = working_dir / f"{ctx.task_id}_result.ion"
        try:
            conn = _duckdb().connect(database_path(ctx.prop("url")))
        except _duckdb().Error as exc:
            raise TaskFailed(f"Unable to open DuckDB database: {exc}") from exc

        done = threading.Event()

        def execute() -> tuple[dict[str, Any], int]:
            try:
                conn.execute("SET file_search_path = ?", [str(working_dir)])
                if time_zone:
                    conn.execute("SET TimeZone = ?", [str(time_zone)])
                cursor = conn.execute(sql)
                if fetch_type == "NONE" or cursor.description is None:
                    return {}, 0
                columns = [d[0] for d in cursor.description]
                if fetch_type == "FETCH_ONE":
                    row = cursor.fetchone()
                    if row is None:
                        return {"row": None}, 0
                    return {"row": json_value(dict(zip(columns, row, strict=True)))}, 1
                if fetch_type == "FETCH":
                    rows = [json_value(dict(zip(columns, r, strict=True))) for r in cursor.fetchall()]
                    return {"rows": rows}, len(rows)
                size = 0
                with open(store_path, "w", encoding="utf-8") as out:
                    while batch := cursor.fetchmany(_BATCH):
                        size += write_ion_rows(out, (ion_value(dict(zip(columns, r, strict=True))) for r in batch))
                return {}, size
            finally:
                conn.close()
                done.set()

        try:
            try:
                outputs, size = await trio.to_thread.run_sync(execute, abandon_on_cancel=True)
            except BaseException:
                threading.Thread(target=_interrupt_until_done, args=(conn, done), daemon=True,
                                 name="duckdb-interrupt").start()
                raise
        except _duckdb().Error as exc:
            raise TaskFailed(f"DuckDB query failed: {exc}") from exc
        if fetch_type == "STORE":
            outputs["uri"] = await ctx.put_file(store_path)
        if fetch_type != "NONE":
            outputs["size"] = size
            ctx.metric("counter", "size", size)
        files = {}
        for name, path in output_paths.items():
            if await trio.Path(path).is_file():
                files[name] = await ctx.put_file(Path(path), name)
        if files:
            outputs["outputFiles"] = files
        return outputs
