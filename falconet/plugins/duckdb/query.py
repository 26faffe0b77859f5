"""``io.kestra.plugin.jdbc.duckdb.Query``: run SQL on an embedded DuckDB database.

One attempt: a working directory receives ``inputFiles`` (name → inline text or ``kestra://`` URI); the
``sql`` — rendered with ``{{ workingDir }}`` and ``{{ outputFiles.<name> }}`` (paths of files to create) —
runs on a fresh connection whose ``file_search_path`` is the working directory (relative file names resolve
there). Several statements may be given; the last one's result is fetched according to ``fetchType``:

* ``NONE`` (default): nothing; ``FETCH_ONE``: output ``row`` (first row as a map, or null);
* ``FETCH``: output ``rows`` (list of maps); ``STORE``: rows streamed to an Ion file (one struct per line),
  output ``uri``. The deprecated booleans ``store``/``fetchOne``/``fetch`` select the same modes.

Outputs also ``size`` (rows fetched or stored) and ``outputFiles`` (name → URI of each file the SQL
created); the counter ``fetch.size`` as every jdbc task (:mod:`falconet.plugins.jdbc.common`, which this module
shares). The query runs in a worker thread so the engine never blocks; a kill or timeout calls
``conn.interrupt()`` and abandons the thread, which then closes the connection.
"""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import trio

from falconet.plugins.jdbc.common import FETCH_TYPES, METRICS, QUERY_OUTPUTS, consume, emit_size, fetch_type
from falconet.plugins.threads import run_interruptible
from falconet.sdk import (
    ANY, BOOLEAN, ENUM, LIST, STRING, as_file_map, Example, Output, Prop, register, RunContext, RunnableTask,
    safe_join, TaskFailed, write_input_files,
)

_BATCH = 2048


def _duckdb() -> Any:
    """The ``duckdb`` module, imported on first use: it weighs ~20 MB that an idle server should not carry."""
    import duckdb

    return duckdb


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
        **QUERY_OUTPUTS,
        "outputFiles": Output("map", "URIs of the files matching outputFiles.", required=False),
    }
    metrics = METRICS
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

    async def run(self, ctx: RunContext) -> dict[str, Any] | None:
        kind = fetch_type(ctx)
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

        def execute() -> dict[str, Any]:
            try:
                conn.execute("SET file_search_path = ?", [str(working_dir)])
                if time_zone:
                    conn.execute("SET TimeZone = ?", [str(time_zone)])
                cursor = conn.execute(sql)
                if kind == "NONE" or cursor.description is None:
                    return {}
                return consume(cursor, kind, store_path, _BATCH).outputs
            finally:
                conn.close()

        def interrupt() -> None:
            with contextlib.suppress(_duckdb().Error):   # closed meanwhile: the worker is finishing
                conn.interrupt()

        try:
            outputs = await run_interruptible(execute, interrupt, name="duckdb-interrupt")
        except _duckdb().Error as exc:
            raise TaskFailed(f"DuckDB query failed: {exc}") from exc
        if kind == "STORE" and "size" in outputs:
            outputs["uri"] = await ctx.put_file(store_path)
        emit_size(ctx, kind, outputs.get("size", 0))
        files = {}
        for name, path in output_paths.items():
            if await trio.Path(path).is_file():
                files[name] = await ctx.put_file(Path(path), name)
        if files:
            outputs["outputFiles"] = files
        return outputs
