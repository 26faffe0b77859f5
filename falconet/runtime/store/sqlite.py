"""SQLiteStore: the durable store — standard ``sqlite3`` on one dedicated thread, with group commit.

Why not aiosqlite: it is bound to asyncio; see the README's "Dependencies, and why".

Threading model
    One writer thread owns the only connection (WAL, ``synchronous=NORMAL``). Everything — writes and
    reads — goes through one FIFO queue, so a read sees every write enqueued before it
    (read-your-writes) and there is never a second connection to contend with.

Group commit
    The thread drains everything queued (up to ``max_batch`` rows) and writes it in one transaction.
    Execution upserts are coalesced by id — only the newest document per id is written — both while
    queued (a ``save_execution_nowait`` of an id whose previous upsert is still queued replaces it in
    place) and within a batch. Jobs keep their queue order: buffered rows are written before any job
    runs, and a read first commits what precedes it.

``*_nowait`` and backpressure
    ``save_execution_nowait`` / ``append_logs_nowait`` / ``append_metrics_nowait`` serialise the document
    on the calling (trio) thread — so later mutation of the engine's live objects cannot leak in — and
    append to the queue under a lock that the writer holds only to pop a batch: they never block.
    Memory stays bounded for executions (at most one queued document per live execution id). Log and
    metric rows accumulate until written; :attr:`backlog` reports the queued rows. Every ``async`` call
    (``flush()``, a write, a read) is queued behind the backlog and therefore waits until it is written:
    an engine that awaits any store call is throttled to the writer's pace.

Cancellation
    An ``async`` call cancelled before the writer starts its job skips the job entirely; one cancelled
    while its job runs does not wait for it: a read is interrupted (``conn.interrupt()``, only while that
    read runs, never a write), a write completes atomically (each job runs in its own savepoint, so it is
    committed whole or not at all). ``save_execution`` enqueues the upsert before waiting, so a cancelled
    one still commits whole. Cancelled before the call, nothing happens.

Failure
    A job's own error (IllegalState on a duplicate flow revision, IllegalArgument…) is raised to its
    caller and rolled back to its savepoint; the batch goes on. If a batch cannot be committed, its
    ``*_nowait`` writes are lost: the store becomes *broken* and every later call raises StoreError.
"""
from __future__ import annotations

import json
import sqlite3
import threading
from collections import deque
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Iterable

import outcome
import trio

from falconet.runtime.kernel.errors import FalconetError, IllegalArgument
from falconet.runtime.store import _sqlite_sql as sql
from falconet.runtime.store._common import (
    ExecRow, StoreError, check_flow, check_paging, dt_ms, dt_us, dumps, execution_row, kv_expiration_ms, log_row,
    metric_row, trigger_key, utcnow,
)
from falconet.runtime.store.base import ExecutionQuery, FlowRecord, LogQuery, Store

__all__ = ["SQLiteStore"]


#### Queue items ############################################################################################

class _ExecWrite:
    """A queued execution upsert; ``row`` is replaced in place while it waits (coalescing)."""

    __slots__ = ("row",)

    def __init__(self, row: ExecRow) -> None:
        self.row = row


class _Rows:
    """Queued log (``kind`` "L") or metric ("M") rows."""

    __slots__ = ("kind", "rows")

    def __init__(self, kind: str, rows: list[Any]) -> None:
        self.kind, self.rows = kind, rows


_BARRIER = "barrier"   # completes when everything before it is committed
_STOP = "stop"         # commit, close the connection, end the thread


class _Job:
    """A call awaited by a trio task. ``fn(conn, *args)`` runs on the writer thread."""

    __slots__ = ("fn", "args", "read", "token", "task", "aborted")

    def __init__(self, fn: Callable[..., Any] | str, args: tuple[Any, ...], read: bool) -> None:
        self.fn, self.args, self.read = fn, args, read
        self.token = trio.lowlevel.current_trio_token()
        self.task = trio.lowlevel.current_task()
        # set (under the store lock) when the caller was cancelled: the writer skips it / drops its result
        self.aborted = False


#### The store ##############################################################################################

class SQLiteStore(Store):
    """Durable store in one SQLite file. ``clock`` returns the current aware datetime (KV expiry);
    ``max_batch`` bounds the rows written per transaction."""

    def __init__(self, path: Path | str, *, clock: Callable[[], datetime] = utcnow, max_batch: int = 20_000) -> None:
        self.path = Path(path)
        self._clock = clock
        self._max_batch = max_batch
        self._cond = threading.Condition()
        # all of the following are guarded by _cond
        self._queue: deque[Any] = deque()
        self._pending: dict[str, _ExecWrite] = {}   # id -> its queued upsert not yet taken by the writer
        self._backlog = 0                           # rows queued (execution docs + log + metric rows)
        self._state = "new"                         # new | opening | open | closing | closed
        self._broken: BaseException | None = None
        self._running_read: _Job | None = None      # the read job running now (the only interruptible one)
        self._conn: sqlite3.Connection | None = None
        self._thread: threading.Thread | None = None
        self._close_waiters: list[_Job] = []        # close() calls made while another close is under way
        #: counters kept by the writer thread (read them after a flush): batches, commits, rows written
        self.stats = {"batches": 0, "commits": 0, "execution_rows": 0, "log_rows": 0, "metric_rows": 0}

    @property
    def backlog(self) -> int:
        """Rows queued and not yet taken by the writer."""
        return self._backlog

    #### plumbing ########################################################################################

    def _check_locked(self) -> None:
        if self._broken is not None:
            raise StoreError(f"the store is broken by an earlier write failure: {self._broken}")
        if self._state != "open":
            raise StoreError("the store is closed" if self._state in ("closing", "closed")
                             else "the store is not open (call open() first)")

    def _enqueue(self, item: Any, weight: int) -> None:
        with self._cond:
            self._check_locked()
            self._queue.append(item)
            self._backlog += weight
            self._cond.notify()

    async def _call(self, fn: Callable[..., Any] | str, *args: Any, read: bool = False) -> Any:
        """Queue a job and wait for its outcome (see the module doc for cancellation)."""
        await trio.lowlevel.checkpoint_if_cancelled()
        job = _Job(fn, args, read)
        with self._cond:
            self._check_locked()
            self._queue.append(job)
            if not read:
                self._pending.clear()  # later upserts must be queued after this write, not coalesced before it
            self._cond.notify()
        return await self._wait(job)

    async def _wait(self, job: _Job) -> Any:
        def abort(_: Any) -> trio.lowlevel.Abort:
            with self._cond:
                job.aborted = True
                if self._running_read is job and self._conn is not None:
                    self._conn.interrupt()
            return trio.lowlevel.Abort.SUCCEEDED

        return await trio.lowlevel.wait_task_rescheduled(abort)

    @staticmethod
    def _deliver(done: list[tuple[_Job, outcome.Outcome]]) -> None:
        # runs in the trio thread, like abort(): no race on job.aborted
        for job, result in done:
            if not job.aborted:
                trio.lowlevel.reschedule(job.task, result)

    def _send(self, done: list[tuple[_Job, outcome.Outcome]]) -> None:
        by_token: dict[Any, list[tuple[_Job, outcome.Outcome]]] = {}
        for item in done:
            by_token.setdefault(item[0].token, []).append(item)
        for token, items in by_token.items():
            try:
                token.run_sync_soon(self._deliver, items)
            except trio.RunFinishedError:
                pass  # the caller's trio run is over: nobody is waiting any more

    #### lifecycle ########################################################################################

    async def open(self) -> None:
        """Create/upgrade the schema and start the writer thread. Reopening a closed store is allowed."""
        with self._cond:
            if self._state not in ("new", "closed"):
                raise StoreError(f"cannot open a store that is {self._state}")
            self._state = "opening"
            self._broken = None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        ready = _Job("ready", (), False)
        self._thread = threading.Thread(target=self._run, args=(ready,), name=f"falconet-sqlite:{self.path.name}",
                                        daemon=True)

        def abort(_: Any) -> trio.lowlevel.Abort:
            return trio.lowlevel.Abort.FAILED  # opening is short; let it finish so the state is consistent

        self._thread.start()
        await trio.lowlevel.wait_task_rescheduled(abort)

    async def close(self) -> None:
        """Commit everything queued, close the connection and stop the thread; returns once closed (also
        when another close is already under way). Idempotent. If the caller is cancelled, the writer
        still finishes and closes on its own."""
        await trio.lowlevel.checkpoint_if_cancelled()
        with self._cond:
            if self._state in ("new", "closed"):
                return
            job = _Job(_STOP, (), False)
            if self._state == "closing":
                self._close_waiters.append(job)
            else:
                self._state = "closing"
                self._queue.append(job)
                self._cond.notify()
        await self._wait(job)

    async def flush(self) -> None:
        await self._call(_BARRIER)

    #### the writer thread ###############################################################################

    def _run(self, ready: _Job) -> None:
        try:
            conn = sqlite3.connect(self.path, isolation_level=None, timeout=5.0)
            try:
                sql.setup_connection(conn)
                sql.migrate(conn)
            except BaseException:
                conn.close()
                raise
        except BaseException as exc:  # report to open(); the thread ends
            with self._cond:
                self._state = "closed"
            err = exc if isinstance(exc, FalconetError) else StoreError(f"cannot open {self.path}: {exc}")
            self._send([(ready, outcome.Error(err))])
            return
        with self._cond:
            self._conn = conn
            self._state = "open"
        self._send([(ready, outcome.Value(None))])
        stop: _Job | None = None
        while stop is None:
            with self._cond:
                while not self._queue:
                    self._cond.wait()
                batch: list[Any] = []
                rows = 0
                while self._queue and rows < self._max_batch:
                    item = self._queue.popleft()
                    batch.append(item)
                    if isinstance(item, _ExecWrite):
                        rows += 1
                        if self._pending.get(item.row.id) is item:
                            del self._pending[item.row.id]
                    elif isinstance(item, _Rows):
                        rows += len(item.rows)
                self._backlog -= rows
            stop = self._process(conn, batch)
        try:
            conn.close()
        finally:
            with self._cond:
                self._conn = None
                self._state = "closed"
                waiters, self._close_waiters = self._close_waiters, []
            self._send([(job, outcome.Value(None)) for job in (stop, *waiters)])

    def _process(self, conn: sqlite3.Connection, batch: list[Any]) -> _Job | None:
        """Write one batch (see the module doc); returns the STOP job if it was in the batch."""
        execs: dict[str, ExecRow] = {}
        logs: list[Any] = []
        metrics: list[Any] = []
        done: list[tuple[_Job, outcome.Outcome]] = []
        uncommitted: list[tuple[_Job, outcome.Outcome]] = []
        in_tx = False
        stop: _Job | None = None
        stats = self.stats
        stats["batches"] += 1

        def begin() -> None:
            nonlocal in_tx
            if not in_tx:
                conn.execute("BEGIN")
                in_tx = True

        def write_buffers() -> None:
            if execs:
                begin()
                conn.executemany(sql.UPSERT_EXECUTION, [r.sql_params() for r in execs.values()])
                stats["execution_rows"] += len(execs)
                execs.clear()
            if logs:
                begin()
                conn.executemany(sql.INSERT_LOG, [r.sql_params() for r in logs])
                stats["log_rows"] += len(logs)
                logs.clear()
            if metrics:
                begin()
                conn.executemany(sql.INSERT_METRIC, [r.sql_params() for r in metrics])
                stats["metric_rows"] += len(metrics)
                metrics.clear()

        def commit() -> None:
            nonlocal in_tx
            if in_tx:
                in_tx = False
                conn.execute("COMMIT")
                stats["commits"] += 1
            done.extend(uncommitted)
            uncommitted.clear()

        try:
            if self._broken is not None:
                raise self._broken
            for item in batch:
                if isinstance(item, _ExecWrite):
                    execs[item.row.id] = item.row
                    continue
                if isinstance(item, _Rows):
                    (logs if item.kind == "L" else metrics).extend(item.rows)
                    continue
                job: _Job = item
                if job.aborted and job.fn is not _STOP:
                    continue  # cancelled before it started: it never happens
                write_buffers()
                if job.fn is _STOP:
                    stop = job
                elif job.fn is _BARRIER:
                    uncommitted.append((job, outcome.Value(None)))
                elif job.read:
                    commit()  # a read runs outside any transaction: interrupting it can never roll back a write
                    with self._cond:
                        if job.aborted:
                            continue
                        self._running_read = job
                    try:
                        done.append((job, self._run_job(conn, job)))
                    finally:
                        with self._cond:
                            self._running_read = None
                else:
                    begin()
                    conn.execute("SAVEPOINT job")
                    result = self._run_job(conn, job)
                    if isinstance(result, outcome.Error):
                        conn.execute("ROLLBACK TO job")
                        conn.execute("RELEASE job")
                        done.append((job, result))
                    else:
                        conn.execute("RELEASE job")
                        uncommitted.append((job, result))
            write_buffers()
            commit()
        except Exception as exc:  # the batch could not be committed: acknowledged nowait writes are lost
            if in_tx:
                try:
                    conn.execute("ROLLBACK")
                except sqlite3.Error:
                    pass  # the transaction may already be gone; the store is broken either way
            err = exc if isinstance(exc, StoreError) else StoreError(f"write to {self.path} failed: {exc!r}")
            with self._cond:
                if self._broken is None:
                    self._broken = err
            failed = outcome.Error(err)
            seen = {id(j) for j, _ in done}
            for item in batch:
                if isinstance(item, _Job) and id(item) not in seen and item.fn is not _STOP:
                    done.append((item, failed))
                elif isinstance(item, _Job) and item.fn is _STOP:
                    stop = item
        self._send(done)
        return stop

    @staticmethod
    def _run_job(conn: sqlite3.Connection, job: _Job) -> outcome.Outcome:
        try:
            return outcome.Value(job.fn(conn, *job.args))  # type: ignore[operator]
        except sqlite3.Error as exc:
            return outcome.Error(StoreError(f"database error: {exc}"))
        except Exception as exc:  # FalconetError on purpose, or a bug: the caller gets it, the batch goes on
            return outcome.Error(exc)

    #### flows ############################################################################################

    async def save_flow(self, record: FlowRecord) -> None:
        check_flow(record)
        await self._call(sql.save_flow, record.namespace, record.id, record.revision, record.source,
                         int(bool(record.deleted)), int(bool(record.disabled)),
                         record.updated.isoformat() if record.updated is not None else None)

    async def get_flow(self, namespace: str, flow_id: str, revision: int | None = None,
                       allow_deleted: bool = False) -> FlowRecord | None:
        if revision is None:
            rows = await self._call(sql.select, "SELECT * FROM flows WHERE namespace = ? AND id = ? "
                                    "ORDER BY revision DESC LIMIT 1", (namespace, flow_id), read=True)
        else:
            rows = await self._call(sql.select, "SELECT * FROM flows WHERE namespace = ? AND id = ? AND revision = ?",
                                    (namespace, flow_id, revision), read=True)
        if not rows:
            return None
        rec = sql.flow_record(rows[0])
        return None if rec.deleted and not allow_deleted else rec

    async def list_flow_revisions(self, namespace: str, flow_id: str) -> list[FlowRecord]:
        rows = await self._call(sql.select, "SELECT * FROM flows WHERE namespace = ? AND id = ? ORDER BY revision",
                                (namespace, flow_id), read=True)
        return [sql.flow_record(r) for r in rows]

    async def list_flows(self, namespace: str | None = None, include_deleted: bool = False) -> list[FlowRecord]:
        w = sql.Where()
        if namespace is not None:
            w.namespace("f.namespace", namespace)
        if not include_deleted:
            w.add("f.deleted = 0")
        rows = await self._call(
            sql.select, "SELECT f.* FROM flows f JOIN (SELECT namespace, id, max(revision) AS revision FROM flows "
            "GROUP BY namespace, id) m USING (namespace, id, revision)" + w.sql() + " ORDER BY f.namespace, f.id",
            tuple(w.params), read=True)
        return [sql.flow_record(r) for r in rows]

    #### executions #######################################################################################

    def save_execution_nowait(self, doc: dict[str, Any]) -> None:
        row = execution_row(doc)
        with self._cond:
            self._check_locked()
            queued = self._pending.get(row.id)
            if queued is not None:
                queued.row = row
                return
            queued = self._pending[row.id] = _ExecWrite(row)
            self._queue.append(queued)
            self._backlog += 1
            self._cond.notify()

    async def save_execution(self, doc: dict[str, Any]) -> None:
        execution_row(doc)  # validate before the checkpoint
        await trio.lowlevel.checkpoint_if_cancelled()
        self.save_execution_nowait(doc)
        await self._call(_BARRIER)

    async def get_execution(self, execution_id: str) -> dict[str, Any] | None:
        rows = await self._call(sql.select, "SELECT doc FROM executions WHERE id = ? AND deleted = 0",
                                (execution_id,), read=True)
        return json.loads(rows[0][0]) if rows else None

    async def search_executions(self, query: ExecutionQuery) -> tuple[list[dict[str, Any]], int]:
        where, order, params = sql.execution_search(query)
        docs, total = await self._call(sql.search_executions, where, order, params, query.size,
                                       (query.page - 1) * query.size, read=True)
        return [json.loads(d) for d in docs], total

    async def list_unfinished_executions(self) -> list[dict[str, Any]]:
        rows = await self._call(sql.select, sql.UNFINISHED, (), read=True)
        return [json.loads(r[0]) for r in rows]

    async def delete_execution(self, execution_id: str) -> bool:
        return await self._call(sql.modify, "DELETE FROM executions WHERE id = ?", (execution_id,)) > 0

    #### logs and metrics #################################################################################

    def append_logs_nowait(self, entries: Iterable[dict[str, Any]]) -> None:
        rows = [log_row(e) for e in entries]
        if rows:
            self._enqueue(_Rows("L", rows), len(rows))
        else:
            with self._cond:
                self._check_locked()

    async def get_logs(self, query: LogQuery) -> tuple[list[dict[str, Any]], int]:
        check_paging(query.page, query.size)
        w = sql.log_where(query)
        limit = offset = None
        if query.page is not None or query.size is not None:
            limit = query.size or 10
            offset = ((query.page or 1) - 1) * limit
        entries, total = await self._call(sql.search_logs, w.sql(), w.params, limit, offset, read=True)
        return [json.loads(e) for e in entries], total

    async def count_logs_by_task_run(self, query: LogQuery) -> dict[str | None, int]:
        w = sql.log_where(query)
        rows = await self._call(sql.select, "SELECT task_run_id, count(*) FROM logs" + w.sql()
                                + " GROUP BY task_run_id", tuple(w.params), read=True)
        return {r[0]: r[1] for r in rows}

    async def delete_logs(self, query: LogQuery) -> int:
        w = sql.log_where(query)
        return await self._call(sql.modify, "DELETE FROM logs" + w.sql(), tuple(w.params))

    def append_metrics_nowait(self, entries: Iterable[dict[str, Any]]) -> None:
        rows = [metric_row(e) for e in entries]
        if rows:
            self._enqueue(_Rows("M", rows), len(rows))
        else:
            with self._cond:
                self._check_locked()

    async def get_metrics(self, execution_id: str | None = None, *, namespace: str | None = None,
                          flow_id: str | None = None, task_id: str | None = None,
                          task_run_id: str | None = None, name: str | None = None,
                          start_date: datetime | None = None, end_date: datetime | None = None
                          ) -> list[dict[str, Any]]:
        w = sql.Where()
        for col, v in (("execution_id", execution_id), ("flow_id", flow_id), ("task_id", task_id),
                       ("task_run_id", task_run_id), ("name", name)):
            if v is not None:
                w.add(f"{col} = ?", v)
        if namespace is not None:
            w.namespace("namespace", namespace)
        if start_date is not None:
            w.add("timestamp >= ?", dt_us(start_date))
        if end_date is not None:
            w.add("timestamp <= ?", dt_us(end_date))
        rows = await self._call(sql.select, "SELECT entry FROM metrics" + w.sql() + " ORDER BY timestamp, seq",
                                tuple(w.params), read=True)
        return [json.loads(r[0]) for r in rows]

    async def delete_metrics(self, execution_id: str) -> int:
        return await self._call(sql.modify, "DELETE FROM metrics WHERE execution_id = ?", (execution_id,))

    #### key-value store ##################################################################################

    async def kv_put(self, namespace: str, key: str, entry: dict[str, Any]) -> None:
        exp = kv_expiration_ms(namespace, key, entry)
        await self._call(sql.modify, "INSERT INTO kv (namespace, key, expiration, entry) VALUES (?, ?, ?, ?) "
                         "ON CONFLICT (namespace, key) DO UPDATE SET expiration = excluded.expiration, "
                         "entry = excluded.entry", (namespace, key, exp, dumps(entry, f"kv {namespace}/{key}")))

    async def kv_get(self, namespace: str, key: str) -> dict[str, Any] | None:
        rows = await self._call(sql.select, "SELECT entry FROM kv WHERE namespace = ? AND key = ? AND "
                                "(expiration IS NULL OR expiration > ?)", (namespace, key, dt_ms(self._clock())),
                                read=True)
        return json.loads(rows[0][0]) if rows else None

    async def kv_delete(self, namespace: str, key: str) -> bool:
        return await self._call(sql.kv_delete, namespace, key, dt_ms(self._clock()))

    async def kv_list(self, namespace: str) -> list[dict[str, Any]]:
        rows = await self._call(sql.select, "SELECT key, entry FROM kv WHERE namespace = ? AND "
                                "(expiration IS NULL OR expiration > ?) ORDER BY key",
                                (namespace, dt_ms(self._clock())), read=True)
        return [{"key": k, **json.loads(e)} for k, e in rows]

    async def kv_list_all(self) -> list[dict[str, Any]]:
        rows = await self._call(sql.select, "SELECT namespace, key, entry FROM kv WHERE "
                                "(expiration IS NULL OR expiration > ?) ORDER BY namespace, key",
                                (dt_ms(self._clock()),), read=True)
        return [{"namespace": ns, "key": k, **json.loads(e)} for ns, k, e in rows]

    #### triggers #########################################################################################

    async def save_trigger(self, doc: dict[str, Any]) -> None:
        ns, fid, tid = trigger_key(doc)
        await self._call(sql.modify, "INSERT INTO triggers (namespace, flow_id, trigger_id, doc) VALUES (?, ?, ?, ?) "
                         "ON CONFLICT (namespace, flow_id, trigger_id) DO UPDATE SET doc = excluded.doc",
                         (ns, fid, tid, dumps(doc, "trigger")))

    async def get_trigger(self, namespace: str, flow_id: str, trigger_id: str) -> dict[str, Any] | None:
        rows = await self._call(sql.select, "SELECT doc FROM triggers WHERE namespace = ? AND flow_id = ? AND "
                                "trigger_id = ?", (namespace, flow_id, trigger_id), read=True)
        return json.loads(rows[0][0]) if rows else None

    async def list_triggers(self, namespace: str | None = None, flow_id: str | None = None) -> list[dict[str, Any]]:
        w = sql.Where()
        if namespace is not None:
            w.namespace("namespace", namespace)
        if flow_id is not None:
            w.add("flow_id = ?", flow_id)
        rows = await self._call(sql.select, "SELECT doc FROM triggers" + w.sql() + " ORDER BY namespace, flow_id, "
                                "trigger_id", tuple(w.params), read=True)
        return [json.loads(r[0]) for r in rows]

    async def delete_trigger(self, namespace: str, flow_id: str, trigger_id: str) -> bool:
        return await self._call(sql.modify,
                                "DELETE FROM triggers WHERE namespace = ? AND flow_id = ? AND trigger_id = ?",
                                (namespace, flow_id, trigger_id)) > 0

    #### generic small state ##############################################################################

    async def state_put(self, kind: str, key: str, value: dict[str, Any]) -> None:
        if not kind or not key:
            raise IllegalArgument("state kind and key must be non-empty")
        await self._call(sql.modify, "INSERT INTO state (kind, key, value) VALUES (?, ?, ?) ON CONFLICT (kind, key) "
                         "DO UPDATE SET value = excluded.value", (kind, key, dumps(value, f"state {kind}/{key}")))

    async def state_get(self, kind: str, key: str) -> dict[str, Any] | None:
        rows = await self._call(sql.select, "SELECT value FROM state WHERE kind = ? AND key = ?", (kind, key),
                                read=True)
        return json.loads(rows[0][0]) if rows else None

    async def state_delete(self, kind: str, key: str) -> bool:
        return await self._call(sql.modify, "DELETE FROM state WHERE kind = ? AND key = ?", (kind, key)) > 0

    async def state_list(self, kind: str) -> list[tuple[str, dict[str, Any]]]:
        rows = await self._call(sql.select, "SELECT key, value FROM state WHERE kind = ? ORDER BY key", (kind,),
                                read=True)
        return [(k, json.loads(v)) for k, v in rows]
