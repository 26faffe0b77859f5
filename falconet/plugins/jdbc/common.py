"""What every ``io.kestra.plugin.jdbc.*`` task shares: the ``fetchType`` modes, named ``parameters``, statement
splitting, result values, and running a blocking driver on a worker thread that a kill interrupts.

A query runs entirely in one worker thread (connect, statements, fetch, close) through a :class:`Session`,
a thin wrapper over the driver's DB-API connection. The trio side only waits: when the attempt is cancelled
(kill, timeout, a polling trigger stopped) the thread is abandoned and a helper thread calls
:meth:`Session.interrupt` (``pg_cancel_backend`` through libpq's cancel request, sqlite3's and DuckDB's
``interrupt()``) every 50 ms until the worker has finished and closed its connection.

Results follow Kestra's ``AbstractJdbcQuery``: ``NONE`` (default) outputs nothing; ``FETCH_ONE`` outputs
``row`` (first row as a map, or null); ``FETCH`` outputs ``rows``; ``STORE`` streams the rows to an Ion file
(one struct per line) in internal storage, output ``uri``. ``size`` is the number of rows fetched or stored,
and every run emits the counter ``fetch.size`` tagged ``fetch``/``store``, as Kestra does.
"""
from __future__ import annotations

import abc
import datetime as _dt
import decimal
import functools
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import trio

from falconet.plugins.threads import run_interruptible
from falconet.sdk import (
    BOOLEAN, DURATION, ENUM, INTEGER, MAP, ExpressionError, Metric, Output, PollingContext, PollingTrigger, Prop,
    RunContext, RunnableTask, STRING, TaskFailed, TriggerEvaluationError, decimal_number, write_ion_rows,
)

FETCH_TYPES = ("NONE", "FETCH_ONE", "FETCH", "STORE")
#: rows read per round trip when storing (``fetchSize`` overrides it)
DEFAULT_FETCH_SIZE = 10_000
#: a rendered ``sql`` longer than this fails the task (a runaway loop in a template, not a query)
MAX_SQL = 16 * 1024 * 1024


#### declarations shared by the query tasks ################################################################

def connection_props(url_description: str, *, url_default: str | None = None) -> dict[str, Prop]:
    """``url``, ``username``, ``password`` (Kestra's ``JdbcConnectionInterface``)."""
    return {
        "url": Prop(STRING, required=url_default is None, default=url_default, description=url_description),
        "username": Prop(STRING, description="The database user."),
        "password": Prop(STRING, description="The database user's password."),
    }


QUERY_PROPS: dict[str, Prop] = {
    "sql": Prop(STRING, required=True, description="The SQL to run (rendered)."),
    "fetchType": Prop(ENUM, default="NONE", values=FETCH_TYPES,
                      description="FETCH_ONE: output the first row; FETCH: all rows; STORE: rows to an Ion file "
                                  "in internal storage; NONE: nothing."),
    "fetchSize": Prop(INTEGER, default=DEFAULT_FETCH_SIZE, description="Rows read per round trip when storing."),
    "parameters": Prop(MAP, description="Values bound to the :name placeholders of the SQL."),
    "timeZoneId": Prop(STRING, description="Time zone of the session, for date/time values."),
    "store": Prop(BOOLEAN, default=False, dynamic=False, description="Deprecated: fetchType STORE."),
    "fetchOne": Prop(BOOLEAN, default=False, dynamic=False, description="Deprecated: fetchType FETCH_ONE."),
    "fetch": Prop(BOOLEAN, default=False, dynamic=False, description="Deprecated: fetchType FETCH."),
}

#: a polling trigger's: no STORE (an evaluation has no execution storage to write to yet)
TRIGGER_PROPS: dict[str, Prop] = {
    **{k: v for k, v in QUERY_PROPS.items() if k != "store"},
    "fetchType": Prop(ENUM, default="NONE", values=("NONE", "FETCH_ONE", "FETCH"),
                      description="FETCH_ONE: the first row as trigger.row; FETCH: all rows as trigger.rows."),
    "interval": Prop(DURATION, default="PT60S", dynamic=False, description="Time between two queries."),
}

#: the Query task's ``autoCommit`` (Queries always runs in one transaction)
AUTO_COMMIT = Prop(BOOLEAN, default=True, description="Commit each statement; false: all in one transaction.")

QUERY_OUTPUTS = {
    "row": Output("map", "The first row (fetchType FETCH_ONE).", required=False),
    "rows": Output("list", "The rows (fetchType FETCH).", required=False),
    "uri": Output("string", "URI of the Ion file of the rows (fetchType STORE).", required=False),
    "size": Output("integer", "Number of rows fetched or stored.", required=False),
}
QUERIES_OUTPUTS = {
    "outputs": Output("list", "One {row, rows, uri, size} per statement that returned rows."),
}
METRICS = (Metric("fetch.size", "counter", "The number of fetched rows.", unit="rows"),)


def fetch_type(ctx: Any) -> str:
    """The effective fetch type: the deprecated booleans win (``fetch``, then ``fetchOne``, then ``store``,
    Kestra's order), else ``fetchType``."""
    if ctx.prop("fetch"):
        return "FETCH"
    if ctx.prop("fetchOne"):
        return "FETCH_ONE"
    if ctx.prop("store"):
        return "STORE"
    return str(ctx.prop("fetchType"))


def emit_size(ctx: Any, kind: str, size: int) -> None:
    """The ``fetch.size`` counter with Kestra's tags."""
    ctx.metric("counter", "fetch.size", size, {"fetch": str(kind in ("FETCH", "FETCH_ONE")).lower(),
                                               "store": str(kind == "STORE").lower()})


def rendered_sql(ctx: Any) -> str:
    """The rendered ``sql`` property; TaskFailed when blank or too large."""
    sql = ctx.prop("sql")
    if not isinstance(sql, str) or not sql.strip():
        raise TaskFailed("sql must be a non-empty string")
    if len(sql) > MAX_SQL:
        raise TaskFailed(f"sql is larger than {MAX_SQL} characters once rendered")
    return sql


#### SQL text: statements and named parameters #############################################################

def _word(c: str) -> bool:
    return c.isalnum() or c == "_"


def _tokens(sql: str) -> Iterator[tuple[str, str]]:
    """``(kind, text)`` pieces of ``sql``: ``quoted`` (strings, quoted identifiers, comments, dollar-quoted
    bodies — copied verbatim), ``semicolon``, ``param`` (``:name``) and ``text``."""
    i, n, start = 0, len(sql), 0
    while i < n:
        c = sql[i]
        end = -1
        if c in "'\"`":
            # PostgreSQL's E'…' strings escape with backslashes
            escapes = c == "'" and i > 0 and sql[i - 1] in "eE" and (i < 2 or not _word(sql[i - 2]))
            end = i + 1
            while end < n:
                if escapes and sql[end] == "\\":
                    end += 2
                    continue
                if sql[end] == c:
                    if end + 1 < n and sql[end + 1] == c:   # doubled quote inside the literal
                        end += 2
                        continue
                    break
                end += 1
            end = min(end + 1, n)
        elif sql.startswith("--", i):
            nl = sql.find("\n", i)
            end = n if nl < 0 else nl
        elif sql.startswith("/*", i):
            close = sql.find("*/", i + 2)
            end = n if close < 0 else close + 2
        elif c == "$":
            tag_end = sql.find("$", i + 1)
            tag = sql[i:tag_end + 1] if tag_end > 0 else ""
            if tag and (tag == "$$" or tag[1:-1].replace("_", "a").isalnum() and not tag[1].isdigit()):
                close = sql.find(tag, tag_end + 1)
                end = n if close < 0 else close + len(tag)
        if end >= 0:
            if start < i:
                yield "text", sql[start:i]
            yield "quoted", sql[i:end]
            i = start = end
            continue
        if c == ";":
            if start < i:
                yield "text", sql[start:i]
            yield "semicolon", c
            i = start = i + 1
            continue
        if c == ":" and i + 1 < n and (sql[i + 1].isalpha() or sql[i + 1] == "_") and (i == 0 or sql[i - 1] != ":"):
            j = i + 1
            while j < n and (sql[j].isalnum() or sql[j] == "_"):
                j += 1
            if start < i:
                yield "text", sql[start:i]
            yield "param", sql[i:j]
            i = start = j
            continue
        i += 1
    if start < n:
        yield "text", sql[start:]


def split_statements(sql: str) -> list[str]:
    """The statements of ``sql``, split on the semicolons outside quotes, comments and dollar-quoted bodies
    (blank statements dropped)."""
    out: list[str] = []
    current: list[str] = []
    for kind, text in _tokens(sql):
        if kind == "semicolon":
            out.append("".join(current))
            current = []
        else:
            current.append(text)
    out.append("".join(current))
    return [s.strip() for s in out if s.strip()]


def bind_parameters(sql: str, parameters: Mapping[str, Any] | None, placeholder: str,
                    escape_percent: bool = False) -> tuple[str, list[Any] | None]:
    """Replace the ``:name`` placeholders of ``sql`` by the driver's positional ``placeholder`` and return
    the values in order (a name missing from ``parameters`` binds null, as Kestra binds it). Without
    parameters the SQL is returned as written, with no arguments. ``escape_percent`` doubles the ``%`` signs
    for drivers whose placeholder is ``%s``. ``::type`` casts are not placeholders."""
    if not parameters:
        return sql, None
    parts, args = [], []
    for kind, text in _tokens(sql):
        if kind == "param":
            parts.append(placeholder)
            args.append(parameters.get(text[1:]))
        else:
            parts.append(text.replace("%", "%%") if escape_percent else text)
    return "".join(parts), args


#### result values ##########################################################################################

def json_value(value: Any) -> Any:
    """A driver's result value as a JSON-able output value (dates/times ISO strings, decimals numbers,
    anything else unknown as its text)."""
    if isinstance(value, dict):
        return {str(k): json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_value(v) for v in value]
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
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
    return str(value)


def ion_value(value: Any) -> Any:
    """A result value for an Ion file: timestamps and decimals keep their Ion types."""
    if isinstance(value, dict):
        return {str(k): ion_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [ion_value(v) for v in value]
    if isinstance(value, (_dt.datetime, _dt.date, decimal.Decimal)) or value is None:
        return value
    return json_value(value)


@dataclass
class Result:
    """What one statement's rows gave: the outputs (``row``/``rows``/``size``) and, for STORE, the local
    Ion file to upload as ``uri``."""

    outputs: dict[str, Any] = field(default_factory=dict)
    size: int = 0
    store_path: Path | None = None


def consume(cursor: Any, kind: str, store_path: Path, fetch_size: int) -> Result:
    """Read the current result set of a DB-API ``cursor`` (one with a ``description``) as ``kind`` says.
    Runs on the worker thread; STORE streams ``fetch_size`` rows at a time to ``store_path``."""
    columns = [d[0] for d in cursor.description]
    if kind == "FETCH_ONE":
        row = cursor.fetchone()
        size = int(row is not None)
        first = None if row is None else json_value(dict(zip(columns, row, strict=True)))
        return Result({"row": first, "size": size}, size)
    if kind == "FETCH":
        rows = [json_value(dict(zip(columns, r, strict=True))) for r in cursor.fetchall()]
        return Result({"rows": rows, "size": len(rows)}, len(rows))
    size = 0
    with open(store_path, "w", encoding="utf-8") as out:
        while batch := cursor.fetchmany(max(1, fetch_size)):
            size += write_ion_rows(out, (ion_value(dict(zip(columns, r, strict=True))) for r in batch))
    return Result({"size": size}, size, store_path)


async def upload(ctx: Any, result: Result) -> dict[str, Any]:
    """The outputs of ``result``, its Ion file (if any) put in the task's storage as ``uri``."""
    outputs = dict(result.outputs)
    if result.store_path is not None:
        outputs["uri"] = await ctx.put_file(result.store_path)
    return outputs


#### running a blocking driver ##############################################################################

class Session(abc.ABC):
    """A database connection used from one worker thread. :meth:`interrupt` is the only method another
    thread calls: it must be safe at any moment (before the connection exists, after it is closed)."""

    #: the driver's error class: its errors fail the task with their message
    error: type[Exception] = Exception

    @abc.abstractmethod
    def connect(self) -> None:
        """Open the connection (autocommit: each statement commits unless :meth:`begin` was called)."""

    @abc.abstractmethod
    def run(self, sql: str, args: list[Any] | None, kind: str, fetch_size: int, store_path: Path) -> Result | None:
        """Execute one statement; its rows read as ``kind`` says (None when it returns no rows or ``kind``
        is NONE)."""

    @abc.abstractmethod
    def begin(self) -> None: ...

    @abc.abstractmethod
    def commit(self) -> None: ...

    @abc.abstractmethod
    def rollback(self) -> None: ...

    @abc.abstractmethod
    def close(self) -> None: ...

    @abc.abstractmethod
    def interrupt(self) -> None:
        """Ask the running statement to stop (it then raises the driver's error in the worker)."""


def run_statements(session: Session, statements: Sequence[tuple[str, list[Any] | None]], kind: str,
                   fetch_size: int, store_path: Callable[[int], Path], *, transaction: bool) -> list[Result]:
    """Connect, run ``statements`` in order (in one transaction when ``transaction``, rolled back on error),
    close; the results of the statements that returned rows. Blocking: runs on the worker thread."""
    session.connect()
    try:
        if transaction:
            session.begin()
        results = []
        try:
            for i, (sql, args) in enumerate(statements):
                result = session.run(sql, args, kind, fetch_size, store_path(i))
                if result is not None:
                    results.append(result)
            if transaction:
                session.commit()
        except BaseException:
            if transaction:
                try:
                    session.rollback()
                except Exception:  # the connection is broken (interrupted, server gone): closing ends it
                    pass
            raise
        return results
    finally:
        session.close()


async def execute(ctx: Any, session: Session, kind: str, store_path: Callable[[int], Path], *,
                  transaction: bool, placeholder: str, escape_percent: bool = False) -> list[Result]:
    """Run the task's ``sql`` (split into statements, ``parameters`` bound) through ``session`` on a worker
    thread that a cancellation interrupts. Driver errors fail with :class:`TaskFailed`."""
    sql = rendered_sql(ctx)
    params = ctx.prop("parameters")
    statements = [bind_parameters(s, params, placeholder, escape_percent) for s in split_statements(sql)]
    if not statements:
        raise TaskFailed("sql holds no statement")
    fetch_size = ctx.prop("fetchSize") or DEFAULT_FETCH_SIZE
    work = functools.partial(run_statements, session, statements, kind, fetch_size, store_path,
                             transaction=transaction)
    try:
        return await run_interruptible(work, session.interrupt, name=f"{type(session).__name__}-interrupt")
    except session.error as exc:
        raise TaskFailed(f"Query failed: {str(exc).strip()}") from exc


class QueryTask(RunnableTask):
    """A driver's ``Query`` (several statements allowed; the last one returning rows gives the outputs)
    or, with :attr:`multiple`, ``Queries`` (output ``outputs``: one entry per statement returning rows)."""

    multiple: ClassVar[bool] = False
    #: the driver's positional placeholder that ``:name`` parameters become
    placeholder: ClassVar[str] = "?"
    escape_percent: ClassVar[bool] = False

    @abc.abstractmethod
    async def session(self, ctx: RunContext, work_dir: Path) -> Session:
        """The (not yet connected) session for this attempt; files it needs go in ``work_dir``."""

    def transaction(self, ctx: RunContext) -> bool:
        """Queries: ``transaction`` (default true); Query: when ``autoCommit`` is false."""
        return bool(ctx.prop("transaction")) if self.multiple else not ctx.prop("autoCommit")

    async def finish(self, ctx: RunContext, work_dir: Path, outputs: dict[str, Any]) -> dict[str, Any]:
        """The outputs once the statements ran (a subclass adds its own)."""
        return outputs

    async def run(self, ctx: RunContext) -> dict[str, Any] | None:
        kind = fetch_type(ctx)
        work_dir = Path(await ctx.open_temp_dir())
        session = await self.session(ctx, work_dir)
        prefix = f"{ctx.task_id}_{uuid.uuid4().hex[:8]}"
        results = await execute(ctx, session, kind, lambda i: work_dir / f"{prefix}_{i}.ion",
                                transaction=self.transaction(ctx), placeholder=self.placeholder,
                                escape_percent=self.escape_percent)
        if self.multiple:
            outputs: dict[str, Any] = {"outputs": [await upload(ctx, r) for r in results]}
            size = sum(r.size for r in results)
        else:
            outputs = await upload(ctx, results[-1]) if results else {}
            size = results[-1].size if results else 0
        emit_size(ctx, kind, size)
        for r in results:    # inside a WorkingDirectory the files would outlive the task
            if r.store_path is not None:
                await trio.to_thread.run_sync(functools.partial(r.store_path.unlink, missing_ok=True))
        return await self.finish(ctx, work_dir, outputs)


class QueryTrigger(PollingTrigger):
    """A driver's polling ``Trigger`` (Kestra's ``AbstractJdbcTrigger``): run ``sql`` every ``interval`` and
    create an execution when it returns rows, with ``trigger.row`` (FETCH_ONE) or ``trigger.rows`` (FETCH)
    and ``trigger.size``. A failing query is logged by the poller, which keeps polling."""

    placeholder: ClassVar[str] = "?"
    escape_percent: ClassVar[bool] = False
    outputs = {k: v for k, v in QUERY_OUTPUTS.items() if k != "uri"}

    @abc.abstractmethod
    async def session(self, ctx: PollingContext, work_dir: Path) -> Session:
        """The (not yet connected) session of one evaluation; files it needs go in ``work_dir``."""

    async def evaluate(self, ctx: PollingContext) -> dict[str, Any] | None:
        work_dir = Path(await trio.to_thread.run_sync(functools.partial(tempfile.mkdtemp, prefix="jdbc-trigger-")))
        try:
            session = await self.session(ctx, work_dir)
            results = await execute(ctx, session, fetch_type(ctx), lambda i: work_dir / f"{i}.ion",
                                    transaction=False, placeholder=self.placeholder,
                                    escape_percent=self.escape_percent)
        except (TaskFailed, ExpressionError) as exc:
            raise TriggerEvaluationError(str(exc)) from exc
        finally:
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(functools.partial(shutil.rmtree, work_dir, ignore_errors=True))
        if not results or not results[-1].size:
            return None
        return dict(results[-1].outputs)
