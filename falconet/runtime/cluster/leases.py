"""Execution leases on PostgreSQL: each execution runs on exactly one node at a time.

Table ``execution_leases`` (store/postgres.py, migration 2): execution id, node id, a token naming one
acquisition, expiry (the database's clock, so nodes' clocks do not matter).

- **Own**: the node that creates an execution (or restarts one) writes its lease *before* the document, so a
  stored unfinished execution always has a lease unless its owner ended it.
- **Heartbeat**: every ``lease_duration / 4`` the node pushes the expiry of its leases ``lease_duration``
  ahead — only leases still unexpired, so an expired one is never silently revived.
- **Self-fencing**: if no renewal succeeded within ``FENCE_RATIO`` of the lease duration (the database is
  unreachable, the process stalled) or a lease it holds was not renewed (taken over), the node stops writing
  execution documents (:meth:`~falconet.runtime.store._writer.WriterStore.stop_execution_writes`) and raises
  :class:`~falconet.runtime.cluster.NodeFenced`, which stops the engine: its executions are claimed by the
  other nodes once the leases expire, and never run twice at once. The store's writer thread itself drops
  execution documents past that point (``execution_writes_until``), so a process that stalled and wakes up
  after its leases expired writes none before its heartbeat fences it.
- **Claim**: every ``lease_duration / 2`` (and at start-up) a node takes expired leases (``SELECT … FOR UPDATE
  SKIP LOCKED``: two claimers never take the same one) and unfinished executions without a lease, reads their
  documents and resumes them with the restart-after-crash rules (``Engine.resume_executions``).
- **Release**: once an execution's end is durable (the store is flushed first), its lease is deleted; when
  the node stops, its leases expire at once so others claim its unfinished executions without waiting.
"""
from __future__ import annotations

import contextlib
import logging
import time
import uuid
from typing import Any, Callable, Iterator, Sequence, NoReturn

import trio

from falconet.runtime.cluster.base import NOT_FORWARDED, Cluster, NodeFenced, Resumer
from falconet.runtime.kernel.errors import IllegalState, Unavailable
from falconet.runtime.store._common import TERMINAL_STATES

log = logging.getLogger("falconet.cluster")

#: a node fences itself when no renewal succeeded for this part of the lease duration
FENCE_RATIO = 0.8
#: leases claimed per statement
CLAIM_BATCH = 500

_EXPIRY = "clock_timestamp() + make_interval(secs => %s)"
_UNFINISHED = "e.state NOT IN (" + ",".join(f"'{s}'" for s in sorted(TERMINAL_STATES)) + ")"


class _Abandoned(Exception):
    """Rolls back the transaction of a call its caller abandoned."""


class Link:
    """One psycopg connection (autocommit, explicit transactions) used from trio on worker threads, one call
    at a time; reconnects after a connection error."""

    def __init__(self, url: str, clock: Any) -> None:
        self.url = url
        self.clock = clock  # the engine's: a mock clock does not jump while a statement runs
        self._conn: Any = None
        self._lock = trio.Lock()

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(conn, *args)`` in one transaction on a worker thread. Cancelled while it runs, the call is
        abandoned: its transaction is rolled back and its connection closed when the statement returns,
        and the next call opens a new connection."""
        async with self._lock:
            try:
                with self.clock.hold():
                    return await trio.to_thread.run_sync(self._run, fn, args, abandon_on_cancel=True)
            except trio.Cancelled:
                self._conn = None
                raise

    def _run(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
        import psycopg

        conn = self._conn
        if conn is None or conn.closed:
            conn = self._conn = psycopg.connect(self.url, autocommit=True, connect_timeout=5)
        try:
            with conn.transaction():
                result = fn(conn, *args)
                if self._conn is not conn:  # its caller gave up (a fenced node): nothing is committed
                    raise _Abandoned
            return result
        except _Abandoned:
            return None
        except psycopg.OperationalError:
            conn.close()
            raise
        finally:
            if self._conn is not conn:  # abandoned by a cancelled caller
                conn.close()

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


#### SQL (each runs in one transaction on a Link) ###########################################################

def _own(conn: Any, execution_id: str, node: str, token: str, duration: float) -> str | None:
    """Take the lease unless another node holds it unexpired; returns the holder when refused."""
    row = conn.execute(
        "INSERT INTO execution_leases (execution_id, node_id, token, expires_at) VALUES (%s, %s, %s, "
        f"{_EXPIRY}) ON CONFLICT (execution_id) DO UPDATE SET node_id = EXCLUDED.node_id, token = EXCLUDED.token, "
        "expires_at = EXCLUDED.expires_at WHERE execution_leases.node_id = EXCLUDED.node_id "
        "OR execution_leases.expires_at < clock_timestamp() RETURNING execution_id",
        (execution_id, node, token, duration)).fetchone()
    if row is not None:
        return None
    holder = conn.execute("SELECT node_id FROM execution_leases WHERE execution_id = %s", (execution_id,)).fetchone()
    return holder[0] if holder else "?"


def _renew(conn: Any, node: str, duration: float) -> dict[str, str]:
    rows = conn.execute(f"UPDATE execution_leases SET expires_at = {_EXPIRY} WHERE node_id = %s "
                        "AND expires_at > clock_timestamp() RETURNING execution_id, token", (duration, node))
    return dict(rows.fetchall())


def _release(conn: Any, node: str, pairs: list[tuple[str, str]]) -> None:
    conn.execute("DELETE FROM execution_leases l USING unnest(%s::text[], %s::text[]) AS r(id, token) "
                 "WHERE l.execution_id = r.id AND l.token = r.token AND l.node_id = %s",
                 ([p[0] for p in pairs], [p[1] for p in pairs], node))


def _expire_all(conn: Any, node: str) -> None:
    conn.execute("UPDATE execution_leases SET expires_at = clock_timestamp() WHERE node_id = %s", (node,))


def _claim(conn: Any, node: str, token: str, duration: float, only: str | None = None) -> list[str]:
    """Take expired leases (SKIP LOCKED: leases another claimer is taking are skipped) and unfinished
    executions without a lease (all, or only the execution ``only``)."""
    one = " AND execution_id = %s" if only else ""
    claimed = [r[0] for r in conn.execute(
        "WITH c AS (SELECT execution_id FROM execution_leases WHERE expires_at < clock_timestamp()"
        f"{one} ORDER BY expires_at LIMIT %s FOR UPDATE SKIP LOCKED) "
        f"UPDATE execution_leases l SET node_id = %s, token = %s, expires_at = {_EXPIRY} "
        "FROM c WHERE l.execution_id = c.execution_id RETURNING l.execution_id",
        (*((only,) if only else ()), CLAIM_BATCH, node, token, duration))]
    one = " AND e.id = %s" if only else ""
    claimed += [r[0] for r in conn.execute(
        "INSERT INTO execution_leases (execution_id, node_id, token, expires_at) "
        f"SELECT e.id, %s, %s, {_EXPIRY} FROM executions e WHERE e.deleted = 0 AND {_UNFINISHED}{one} "
        "AND NOT EXISTS (SELECT 1 FROM execution_leases l WHERE l.execution_id = e.id) "
        "ORDER BY e.start_date LIMIT %s ON CONFLICT DO NOTHING RETURNING execution_id",
        (node, token, duration, *((only,) if only else ()), CLAIM_BATCH))]
    return claimed


def _forget_stale_commands(conn: Any) -> None:
    """Commands whose caller died before removing them (a caller waits at most a minute)."""
    conn.execute("DELETE FROM cluster_commands WHERE created_at < clock_timestamp() - interval '10 minutes'")


def _lease_of(conn: Any, execution_id: str) -> tuple[str, bool] | None:
    """(holder, unexpired) of the execution's lease, or None."""
    row = conn.execute("SELECT node_id, expires_at > clock_timestamp() FROM execution_leases "
                       "WHERE execution_id = %s", (execution_id,)).fetchone()
    return (row[0], bool(row[1])) if row else None


@contextlib.contextmanager
def _unavailable(database: str) -> Iterator[None]:
    """A database error of a call made for an API caller: 503 with one line, not a 500."""
    import psycopg

    try:
        yield
    except psycopg.Error as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise Unavailable(f"the cluster database {database} did not answer: {first}") from None


#### The node ###############################################################################################

class PostgresCluster(Cluster):
    """A node of a cluster sharing one PostgreSQL database (see the module docstring)."""

    shared = True

    def __init__(self, engine: Any) -> None:
        super().__init__()
        self.engine = engine
        self.lease_duration = float(engine.config.lease_duration)
        self.fenced = False
        #: the leases this node holds: execution id -> (token, trio time once the lease was written)
        self.held: dict[str, tuple[str, float]] = {}
        self._releases: list[tuple[str, str]] = []
        self._release_wakeup = trio.Event()
        self._beat = Link(engine.store.url, engine.clock)  # the heartbeat's own: never behind other calls
        self.db = Link(engine.store.url, engine.clock)
        from falconet.runtime.cluster.listen import Listener

        #: the node's LISTEN connection (falconet/runtime/cluster/listen.py), running while the node runs
        self.listener = Listener(engine.store.url)
        self._listening = False
        self._resume: Resumer | None = None
        self._joined = False  # run() started: there may be leases to expire at close()
        from falconet.runtime.cluster.commands import Commands

        self.commands = Commands(self)

    #### running #########################################################################################

    async def run(self, resume: Resumer, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        self._resume = resume
        self._joined = True
        log.info("node %s joins the cluster on %s (lease duration %s s)", self.node_id, self.engine.store.name,
                 self.lease_duration)
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._heartbeat)
                await self.start_listener(nursery)
                await self.claim()
                nursery.start_soon(self._claimer)
                nursery.start_soon(self._releaser)
                await nursery.start(self.commands.serve)
                task_status.started()
        finally:
            self._beat.close()

    async def start_listener(self, nursery: trio.Nursery) -> Any:
        """Start the node's one LISTEN connection in ``nursery`` unless it runs already (the event relay
        starts it first); returns the :class:`~falconet.runtime.cluster.listen.Listener`. StoreError when the
        connection cannot open."""
        import psycopg

        from falconet.runtime.store import StoreError

        if not self._listening:
            self._listening = True
            try:
                await nursery.start(self.listener.run)
            except psycopg.Error as exc:
                self._listening = False
                message = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                raise StoreError(f"cannot listen on {self.engine.store.name}: {message}") from None
        return self.listener

    async def close(self) -> None:
        """The node stops (its store flushed and closed): the leases of ended executions go, the others
        expire now, so other nodes claim them at once."""
        try:
            if self._joined and not self.fenced:
                with trio.move_on_after(5, shield=True):
                    if self._releases:  # ended executions: their ends are stored (the store is closed)
                        await self.db.run(_release, self.node_id, self._releases)
                    await self.db.run(_expire_all, self.node_id)
        except Exception as exc:  # the database is gone: the leases expire by themselves
            log.warning("node %s: its leases could not be expired at stop: %s", self.node_id, exc)
        finally:
            self.db.close()

    async def _heartbeat(self) -> None:
        import psycopg

        interval = self.lease_duration / 4
        last_ok = trio.current_time()
        store = self.engine.store
        store.execution_writes_until = time.monotonic() + self.lease_duration * FENCE_RATIO
        while True:
            started, started_real = trio.current_time(), time.monotonic()
            deadline = last_ok + self.lease_duration * FENCE_RATIO
            renewed: dict[str, str] | None = None
            with trio.move_on_at(deadline):
                while renewed is None:
                    try:
                        renewed = await self._beat.run(_renew, self.node_id, self.lease_duration)
                    except psycopg.Error as exc:
                        log.warning("node %s: lease renewal failed: %s", self.node_id, str(exc).strip())
                        await trio.sleep(min(interval, 0.5))
            if renewed is None:
                self.fence(f"its leases could not be renewed for {self.lease_duration * FENCE_RATIO:.1f} s")
            lost = [i for i, (token, since) in list(self.held.items())
                    if since < started and renewed.get(i) != token and self.held.get(i) == (token, since)]
            if lost:
                self.fence(f"{len(lost)} of its leases were taken over (e.g. execution {lost[0]})")
            last_ok = started
            store.execution_writes_until = started_real + self.lease_duration * FENCE_RATIO
            await trio.sleep_until(started + interval)

    def fence(self, reason: str) -> NoReturn:
        """Stop writing execution documents and stop the engine (raises :class:`NodeFenced`)."""
        self.fenced = True
        self.engine.store.stop_execution_writes()
        log.error("node %s fences itself: %s; its executions go to other nodes", self.node_id, reason)
        raise NodeFenced(f"node {self.node_id} stopped: {reason}")

    #### leases ##########################################################################################

    async def own(self, execution_id: str) -> None:
        if self.fenced:
            raise NodeFenced(f"node {self.node_id} is fenced")
        token = uuid.uuid4().hex
        with _unavailable(self.engine.store.name):
            holder = await self.db.run(_own, execution_id, self.node_id, token, self.lease_duration)
        if holder is not None:
            raise IllegalState(f"Execution '{execution_id}' is running on node {holder}")
        self.held[execution_id] = (token, trio.current_time())

    def release(self, execution_id: str) -> None:
        held = self.held.pop(execution_id, None)
        if held is not None:
            self._releases.append((execution_id, held[0]))
            self._release_wakeup.set()

    async def _releaser(self) -> None:
        while True:
            await self._release_wakeup.wait()
            self._release_wakeup = trio.Event()
            pairs, self._releases = self._releases, []
            try:
                await self.engine.store.flush()  # the end is durable before the lease goes
                await self.db.run(_release, self.node_id, pairs)
            except Exception as exc:  # the database is unreachable: try again with the next release
                log.warning("node %s: releasing %d lease(s) failed: %s", self.node_id, len(pairs), exc)
                self._releases[:0] = pairs
                await trio.sleep(min(self.lease_duration / 4, 1.0))
                self._release_wakeup.set()

    async def _claimer(self) -> None:
        while True:
            await trio.sleep(self.lease_duration / 2)
            try:
                await self.claim()
                await self.db.run(_forget_stale_commands)
            except Exception as exc:  # the database is unreachable: the heartbeat decides about fencing
                log.warning("node %s: claiming executions failed: %s", self.node_id, exc)

    async def claim(self, only: str | None = None) -> list[str]:
        """Claim orphaned executions (or only ``only``) and resume them here; returns their ids."""
        token = uuid.uuid4().hex
        ids = await self.db.run(_claim, self.node_id, token, self.lease_duration, only)
        if not ids:
            return []
        since = trio.current_time()
        for i in ids:
            self.held[i] = (token, since)
        docs = []
        for i in ids:
            doc = await self.engine.store.get_execution(i)
            if doc is None:  # deleted: nothing to resume
                self.release(i)
            else:
                docs.append(doc)
        log.info("node %s claimed %d execution(s)", self.node_id, len(ids))
        assert self._resume is not None
        await self._resume(docs)
        return ids

    async def lease_of(self, execution_id: str) -> tuple[str, bool] | None:
        return await self.db.run(_lease_of, execution_id)

    #### commands ########################################################################################

    async def route(self, execution_id: str, action: str, args: Sequence[Any], kwargs: dict[str, Any]) -> Any:
        with _unavailable(self.engine.store.name):
            return await self._route(execution_id, action, args, kwargs)

    async def _route(self, execution_id: str, action: str, args: Sequence[Any], kwargs: dict[str, Any]) -> Any:
        for _ in range(20):
            lease = await self.lease_of(execution_id)
            if lease is None:
                # no owner: an ended execution (acted on here) or an orphan without a lease (claimed first)
                await self.claim(execution_id)
                return NOT_FORWARDED
            holder, live = lease
            if holder == self.node_id:
                return NOT_FORWARDED
            if not live:
                if await self.claim(execution_id):
                    return NOT_FORWARDED
                await trio.sleep(0.05)  # another node is claiming it: ask again
                continue
            answer = await self.commands.forward(holder, execution_id, action, args, kwargs)
            if answer is not NOT_FORWARDED:
                return answer
        raise IllegalState(f"Execution '{execution_id}' changes owner too often; try again")
