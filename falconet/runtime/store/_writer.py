"""The durable stores' engine: one database connection on one dedicated thread, with group commit.

:class:`WriterStore` is the queue and the thread; :class:`~falconet.runtime.store.sqlstore.SQLStore` the
Store contract in SQL that SQLite and PostgreSQL both accept; a backend (:mod:`.sqlite`, :mod:`.postgres`)
only opens the connection and creates the schema. A blocking
driver on a thread of its own is how trio talks to ``sqlite3`` and ``psycopg`` alike (aiosqlite is bound to
asyncio).

Threading model
    One writer thread owns the only connection. Everything — writes and
    reads — goes through one FIFO queue, so a read sees every write enqueued before it
    (read-your-writes) and there is never a second connection to contend with.

Group commit
    The thread drains everything queued (up to ``max_batch`` rows) and writes it in one transaction. Log
    and metric rows alone do not hurry it: woken by the first of them, it waits up to ``row_delay``
    seconds for more (anything else queued, or ``max_batch`` rows, ends the wait), so the rows of many
    task runs cost one wake-up of the thread and one transaction, not one each.
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

import abc
import threading
import time
from collections import deque
from typing import Any, Callable, Protocol

import outcome
import trio

from falconet.runtime.kernel.clock import SYSTEM, Clock
from falconet.runtime.kernel.errors import FalconetError
from falconet.runtime.store import _sql as sql
from falconet.runtime.store._common import (
    ExecRow, StoreError,
)
from falconet.runtime.store.base import Store

__all__ = ["BARRIER", "Connection", "WriterStore"]


class Connection(Protocol):
    """What the writer needs of a database connection (``sqlite3.Connection`` has it; PostgreSQL's adapter
    provides it): statements with ``?`` placeholders, in autocommit mode with explicit ``BEGIN``."""

    def execute(self, sql: str, params: Any = ..., /) -> Any: ...

    def executemany(self, sql: str, params: Any, /) -> Any: ...

    def interrupt(self) -> None: ...

    def close(self) -> None: ...


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


BARRIER = "barrier"    # completes when everything before it is committed
_STOP = "stop"         # commit, close the connection, end the thread


class _Job:
    """A call awaited by a trio task. ``fn(conn, *args)`` runs on the writer thread."""

    __slots__ = ("fn", "args", "read", "alone", "token", "task", "aborted")

    def __init__(self, fn: Callable[..., Any] | str, args: tuple[Any, ...], read: bool, alone: bool = False) -> None:
        self.fn, self.args, self.read, self.alone = fn, args, read, alone
        self.token = trio.lowlevel.current_trio_token()
        self.task = trio.lowlevel.current_task()
        # set (under the store lock) when the caller was cancelled: the writer skips it / drops its result
        self.aborted = False


#### The store ##############################################################################################

#: seconds log and metric rows may wait for more before the writer takes them (see Group commit)
ROW_DELAY = 0.01


class WriterStore(Store, abc.ABC):
    """A store on one connection owned by a writer thread. ``clock`` tells the current date (KV expiry) and
    holds trio's mock clock still while a caller waits on the writer thread; ``max_batch`` bounds the rows
    written per transaction; ``name`` names the database in errors."""

    #: the driver's exception classes (turned into StoreError)
    db_errors: tuple[type[BaseException], ...] = ()

    def __init__(self, name: str, *, clock: Clock = SYSTEM, max_batch: int = 20_000,
                 row_delay: float = ROW_DELAY) -> None:
        self.name = name
        self._clock = clock
        self._max_batch = max_batch
        self._row_delay = row_delay
        self._cond = threading.Condition()
        # all of the following are guarded by _cond
        self._queue: deque[Any] = deque()
        self._urgent = False                        # something other than log/metric rows is queued
        self._pending: dict[str, _ExecWrite] = {}   # id -> its queued upsert not yet taken by the writer
        self._backlog = 0                           # rows queued (execution docs + log + metric rows)
        self._state = "new"                         # new | opening | open | closing | closed
        self._broken: BaseException | None = None
        self._running_read: _Job | None = None      # the read job running now (the only interruptible one)
        self._conn: Connection | None = None
        self._thread: threading.Thread | None = None
        self._close_waiters: list[_Job] = []        # close() calls made while another close is under way
        self._executions_stopped = False            # fenced: execution upserts are dropped
        #: ``time.monotonic()`` after which execution upserts are dropped when written (set by a cluster node
        #: after each lease renewal: a node that stalled past it writes nothing another node may own)
        self.execution_writes_until: float | None = None
        #: counters kept by the writer thread (read them after a flush): batches, commits, rows written
        self.stats = {"batches": 0, "commits": 0, "execution_rows": 0, "log_rows": 0, "metric_rows": 0}

    @abc.abstractmethod
    def connect(self) -> Connection:
        """Open the connection and create/upgrade the schema (on the writer thread); StoreError when the
        database cannot be used."""

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

    def _enqueue_rows(self, item: "_Rows", weight: int) -> None:
        with self._cond:
            self._check_locked()
            first = not self._queue
            self._queue.append(item)
            self._backlog += weight
            if first or self._backlog >= self._max_batch:  # otherwise the writer is awake or will be
                self._cond.notify()

    def stop_execution_writes(self) -> None:
        """Fencing (falconet/runtime/cluster/leases.py): drop the execution upserts still queued and ignore
        later ones; other nodes now own these executions. Logs, metrics and other calls go on."""
        with self._cond:
            self._executions_stopped = True
            kept = deque(item for item in self._queue if not isinstance(item, _ExecWrite))
            self._backlog -= len(self._queue) - len(kept)  # one row per queued upsert
            self._queue = kept
            self._pending.clear()

    def _executions_expired(self) -> bool:
        """Past :attr:`execution_writes_until` (the writer thread drops the execution upserts of a batch)."""
        until = self.execution_writes_until
        return until is not None and time.monotonic() >= until

    def _queue_execution(self, row: ExecRow) -> None:
        """Queue an upsert, replacing in place the one of the same id still waiting (coalescing)."""
        with self._cond:
            self._check_locked()
            if self._executions_stopped:
                return
            queued = self._pending.get(row.id)
            if queued is not None:
                queued.row = row
                return
            queued = self._pending[row.id] = _ExecWrite(row)
            self._queue.append(queued)
            self._backlog += 1
            self._urgent = True
            self._cond.notify()

    def _queue_rows(self, kind: str, rows: list[Any]) -> None:
        """Queue log ("L") or metric ("M") rows."""
        if rows:
            self._enqueue_rows(_Rows(kind, rows), len(rows))
        else:
            with self._cond:
                self._check_locked()

    async def _call(self, fn: Callable[..., Any] | str, *args: Any, read: bool = False, alone: bool = False) -> Any:
        """Queue a job and wait for its outcome (see the module doc for cancellation). An ``alone`` write runs
        in a transaction of its own, committed at once: the row and advisory locks it takes (compare-and-set,
        concurrency slots) are held for that job only, never for the rest of a batch."""
        await trio.lowlevel.checkpoint_if_cancelled()
        job = _Job(fn, args, read, alone)
        with self._cond:
            self._check_locked()
            self._queue.append(job)
            if not read:
                self._pending.clear()  # later upserts must be queued after this write, not coalesced before it
            self._urgent = True
            self._cond.notify()
        return await self._wait(job)

    async def _wait(self, job: _Job) -> Any:
        def abort(_: Any) -> trio.lowlevel.Abort:
            with self._cond:
                job.aborted = True
                if self._running_read is job and self._conn is not None:
                    self._conn.interrupt()
            return trio.lowlevel.Abort.SUCCEEDED

        with self._clock.hold():
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
        ready = _Job("ready", (), False)
        self._thread = threading.Thread(target=self._run, args=(ready,), name=f"falconet-store:{self.name}",
                                        daemon=True)

        def abort(_: Any) -> trio.lowlevel.Abort:
            return trio.lowlevel.Abort.FAILED  # opening is short; let it finish so the state is consistent

        self._thread.start()
        with self._clock.hold():
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
                self._urgent = True
                self._cond.notify()
        await self._wait(job)

    async def flush(self) -> None:
        await self._call(BARRIER)

    #### the writer thread ###############################################################################

    def _run(self, ready: _Job) -> None:
        try:
            conn = self.connect()
        except BaseException as exc:  # report to open(); the thread ends
            with self._cond:
                self._state = "closed"
            err = exc if isinstance(exc, FalconetError) else StoreError(f"cannot open {self.name}: {exc}")
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
                if not self._urgent and self._backlog < self._max_batch:  # rows alone: let more join them
                    deadline = time.monotonic() + self._row_delay
                    while not self._urgent and self._backlog < self._max_batch:
                        left = deadline - time.monotonic()
                        if left <= 0:
                            break
                        self._cond.wait(left)
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
                self._urgent = any(not isinstance(item, _Rows) for item in self._queue)  # beyond max_batch
            stop = self._process(conn, batch)
        try:
            conn.close()
        finally:
            with self._cond:
                self._conn = None
                self._state = "closed"
                waiters, self._close_waiters = self._close_waiters, []
            self._send([(job, outcome.Value(None)) for job in (stop, *waiters)])

    def _process(self, conn: Connection, batch: list[Any]) -> _Job | None:
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
            if execs and self._executions_expired():
                execs.clear()
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
                elif job.fn is BARRIER:
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
                    if job.alone:
                        commit()
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
                    if job.alone:
                        commit()
            write_buffers()
            commit()
        except Exception as exc:  # the batch could not be committed: acknowledged nowait writes are lost
            if in_tx:
                try:
                    conn.execute("ROLLBACK")
                except self.db_errors:
                    pass  # the transaction may already be gone; the store is broken either way
            err = exc if isinstance(exc, StoreError) else StoreError(f"write to {self.name} failed: {exc!r}")
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

    def _run_job(self, conn: Connection, job: _Job) -> outcome.Outcome:
        try:
            return outcome.Value(job.fn(conn, *job.args))  # type: ignore[operator]
        except self.db_errors as exc:
            return outcome.Error(StoreError(f"database error: {exc}"))
        except Exception as exc:  # FalconetError on purpose, or a bug: the caller gets it, the batch goes on
            return outcome.Error(exc)
