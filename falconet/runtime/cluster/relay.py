"""The event relay: live updates of executions that run on other nodes of a cluster.

**Announcing** (the node that runs an execution). The engine tells the relay which executions it wrote
(:meth:`EventRelay.announce_execution`: its document, so its state or task runs changed; ``ended`` once
its end is durable) and which got log lines (:meth:`EventRelay.announce_log`). That costs one dict update
on the hot path. A background task coalesces them: at most once every :data:`ANNOUNCE_INTERVAL` it waits
until the store committed what was queued (``store.flush()``), then sends ``NOTIFY falconet_events`` with
the ids and kinds only (execution id, namespace, flow id, what changed, how many log lines), split under
PostgreSQL's payload limit. A busy node sends a bounded number of notifications whatever its task runs
and log lines per second.

**Relaying** (every other node). The node's LISTEN connection (:mod:`.listen`) hands the announcements
over; for each execution some local subscriber of the bus follows (or whose end someone waits for), the
relay reads the content back from the store — the document, the log lines after the last one it relayed
— and publishes what changed on the local bus as ``remote`` events: task runs whose JSON changed, the
execution when its state history grew, log lines, and the end last. The bus's buffers and the
subscribers' own overflow handling apply unchanged. An end wakes :meth:`Engine.wait_for_end` waiters
(a Subflow parent resumes when its child ended on another node). When notifications may have been lost
(the LISTEN connection dropped, or the relay fell behind), every bus subscriber gets ``Overflow`` and
re-reads the store, and every waiter looks again.

Relayed events go to the bus and to the waiters, never to the engine's execution hooks: flow triggers,
retries, afterExecution and concurrency slots run on the node that owns the execution, once.
"""
from __future__ import annotations

import collections
import json
import logging
import uuid
from dataclasses import dataclass, field
from typing import Any, Protocol

import trio

from falconet.runtime.cluster.listen import MAX_PAYLOAD, Listener, NotificationsMissed
from falconet.runtime.kernel.bus import Bus, Event
from falconet.runtime.kernel.execution import without_private
from falconet.runtime.kernel.state import State

__all__ = ["EventRelay", "CHANNEL", "ANNOUNCE_INTERVAL", "start_relay"]

log = logging.getLogger("falconet.cluster")

CHANNEL = "falconet_events"
#: seconds between two announcements of a node (the coalescing window of a busy node)
ANNOUNCE_INTERVAL = 0.05
#: what an announcement says changed (bit flags)
DOC, LOGS, ENDED = 1, 2, 4
#: executions followed at once (their last relayed task runs and log position); the oldest are forgotten
MAX_FOLLOWED = 10_000
#: log lines read per store query
LOG_PAGE = 1_000
#: payload budget of one NOTIFY (bytes), under PostgreSQL's limit
_PAYLOAD_BUDGET = MAX_PAYLOAD - 100


class RelayedEngine(Protocol):
    """What the relay uses of the engine."""

    bus: Bus
    store: Any
    actors: dict[str, Any]

    def mark_ended(self, execution_id: str) -> None: ...

    def recheck_end_waiters(self) -> None: ...


@dataclass
class _Followed:
    """What was last relayed of one remote execution."""
    histories: int = -1                                   # length of its state history
    taskruns: dict[str, dict[str, Any]] = field(default_factory=dict)
    log_seq: int | None = None                            # store sequence of the last log line relayed


class EventRelay:
    """Announces this node's execution events and relays the other nodes' to the local bus (see the module
    docstring). :meth:`run` in the engine's nursery."""

    def __init__(self, engine: RelayedEngine, listener: Listener, *,
                 interval: float = ANNOUNCE_INTERVAL) -> None:
        self.engine = engine
        self.listener = listener
        self.interval = interval
        #: this node's announcements carry it; the relay skips its own
        self.origin = uuid.uuid4().hex
        #: execution id -> [namespace, flow id, flags, log lines, first state-history index that changed (-1:
        #: none)], not announced yet
        self._pending: dict[str, list[Any]] = {}
        self._has_pending = trio.Event()
        self._followed: collections.OrderedDict[str, _Followed] = collections.OrderedDict()
        #: figures: notifications sent, announcements received from other nodes, store reads made
        self.sent = self.received = self.reads = 0

    #### announcing ########################################################################################

    def announce_execution(self, execution_id: str, namespace: str, flow_id: str, histories: int, *,
                           ended: bool = False) -> None:
        """The document of an execution this node runs was written (queued to the store); ``histories`` is
        the length of its state history then; ``ended``: its end is durable. Never blocks."""
        entry = self._pending.get(execution_id)
        flags = DOC | ENDED if ended else DOC
        since = max(histories - 1, 0)
        if entry is None:
            self._pending[execution_id] = [namespace, flow_id, flags, 0, since]
            self._has_pending.set()
        else:
            entry[2] |= flags
            entry[4] = since if entry[4] < 0 else min(entry[4], since)

    def announce_log(self, entry: dict[str, Any]) -> None:
        """A log line of an execution this node runs was queued to the store. Never blocks."""
        execution_id = entry.get("executionId")
        if not execution_id:
            return
        pending = self._pending.get(execution_id)
        if pending is None:
            self._pending[execution_id] = [entry.get("namespace") or "", entry.get("flowId") or "", LOGS, 1, -1]
            self._has_pending.set()
        else:
            pending[2] |= LOGS
            pending[3] += 1

    async def _announce(self) -> None:
        while True:
            await self._has_pending.wait()
            self._has_pending = trio.Event()
            batch, self._pending = self._pending, {}
            try:
                await self.engine.store.flush()   # the content is readable when the other nodes are told
                for payload in self.encode(batch):
                    await self.listener.notify(CHANNEL, payload)
                    self.sent += 1
            except Exception as exc:   # the database is away: the engine's own writes fail too; not fatal here
                log.warning("execution events not announced (other nodes' clients see them at their next "
                            "snapshot): %s", exc)
            await trio.sleep(self.interval)

    def encode(self, batch: dict[str, list[Any]]) -> list[str]:
        """Payloads (each under the NOTIFY limit) announcing ``batch``."""
        head = '{"n":"%s","e":[' % self.origin
        payloads: list[str] = []
        parts: list[str] = []
        size = len(head) + 2
        for execution_id, entry in batch.items():
            item = json.dumps([execution_id, *entry], separators=(",", ":"))
            n = len(item.encode()) + 1
            if size + n > _PAYLOAD_BUDGET and parts:
                payloads.append(head + ",".join(parts) + "]}")
                parts, size = [], len(head) + 2
            if size + n > _PAYLOAD_BUDGET:
                log.warning("execution %r: announcement too long, not sent", execution_id[:100])
                continue
            parts.append(item)
            size += n
        if parts:
            payloads.append(head + ",".join(parts) + "]}")
        return payloads

    #### relaying ##########################################################################################

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Listen to the other nodes' announcements and send this node's, until cancelled."""
        async with self.listener.subscribe(CHANNEL) as sub, trio.open_nursery() as nursery:
            nursery.start_soon(self._announce)
            task_status.started()
            while True:
                batch: dict[str, list[Any]] = {}
                try:
                    self._merge(batch, await sub.receive())
                    while True:   # what else arrived meanwhile: one store read per execution per round
                        try:
                            self._merge(batch, sub.receive_nowait())
                        except trio.WouldBlock:
                            break
                except NotificationsMissed:
                    self.resync()
                    continue
                try:
                    await self._relay(batch)
                except Exception as exc:   # the store failed: what was not relayed is re-read by the subscribers
                    log.warning("execution events not relayed: %s", exc)
                    self.resync()

    def _merge(self, batch: dict[str, list[Any]], payload: str) -> None:
        try:
            message = json.loads(payload)
            if message["n"] == self.origin:
                return
            entries = message["e"]
            for execution_id, namespace, flow_id, flags, lines, since in entries:
                self.received += 1
                known = batch.get(execution_id)
                if known is None:
                    batch[execution_id] = [str(namespace), str(flow_id), int(flags), int(lines), int(since)]
                else:
                    known[2] |= int(flags)
                    known[3] += int(lines)
                    if since >= 0:
                        known[4] = since if known[4] < 0 else min(known[4], since)
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("ignored a malformed %s notification: %s", CHANNEL, exc)

    def resync(self) -> None:
        """Notifications may have been lost: subscribers and waiters re-read the store."""
        self._followed.clear()
        self.engine.bus.signal_lost()
        self.engine.recheck_end_waiters()

    async def _relay(self, batch: dict[str, list[Any]]) -> None:
        bus = self.engine.bus
        for execution_id, (namespace, flow_id, flags, lines, since) in batch.items():
            if execution_id in self.engine.actors:   # runs here after all (taken over): published locally
                continue
            want_doc = bool(flags & (DOC | ENDED)) and (bus.wants("execution", execution_id, namespace, flow_id)
                                                          or bus.wants("taskrun", execution_id, namespace, flow_id))
            want_logs = bool(flags & LOGS) and bus.wants("log", execution_id, namespace, flow_id)
            if want_doc or want_logs:
                followed = self._followed.pop(execution_id, None) or _Followed()
                self._followed[execution_id] = followed     # most recent last
                while len(self._followed) > MAX_FOLLOWED:
                    self._followed.popitem(last=False)
                if want_logs:
                    await self._relay_logs(execution_id, namespace, flow_id, lines, followed)
                if want_doc:
                    await self._relay_document(execution_id, flags, since, followed)
            else:
                self._followed.pop(execution_id, None)
            if flags & ENDED:
                self._followed.pop(execution_id, None)
                self.engine.mark_ended(execution_id)

    async def _relay_logs(self, execution_id: str, namespace: str, flow_id: str, lines: int,
                          followed: _Followed) -> None:
        store, bus = self.engine.store, self.engine.bus
        while True:
            self.reads += 1
            if followed.log_seq is None:   # first seen: the lines this announcement is about
                rows = await store.logs_after(execution_id, None, max(1, min(lines, LOG_PAGE)))
            else:
                rows = await store.logs_after(execution_id, followed.log_seq, LOG_PAGE)
            for seq, entry in rows:
                followed.log_seq = seq
                bus.publish(Event("log", execution_id, namespace, flow_id, "", False, entry, remote=True))
            if len(rows) < LOG_PAGE:
                return

    async def _relay_document(self, execution_id: str, flags: int, since: int, followed: _Followed) -> None:
        """Publish the task runs that changed, then each state the execution went through since the last one
        relayed (``since``, the announced one, when it is seen for the first time: its subscribers took a
        snapshot when they subscribed): earlier states with the document's state as it was then, the
        current one with the document."""
        self.reads += 1
        stored = await self.engine.store.get_execution(execution_id)
        if stored is None:
            return
        doc = without_private(stored)
        namespace, flow_id = doc["namespace"], doc["flowId"]
        state = State(doc["state"]["current"])
        bus = self.engine.bus
        for tr in doc.get("taskRunList") or ():
            if followed.taskruns.get(tr["id"]) != tr:
                followed.taskruns[tr["id"]] = tr
                bus.publish(Event("taskrun", execution_id, namespace, flow_id, state.value, False, tr, remote=True))
        histories = doc["state"].get("histories") or []
        start = followed.histories if followed.histories >= 0 else max(since, 0)
        for i in range(start, len(histories) - 1):
            past = histories[i]
            then = {**doc, "state": {"current": past["state"], "histories": histories[:i + 1],
                                     "startDate": doc["state"].get("startDate")}}
            bus.publish(Event("execution", execution_id, namespace, flow_id, past["state"], False, then, remote=True))
        ended = bool(flags & ENDED) and state.is_terminated
        if ended or len(histories) > start:
            bus.publish(Event("execution", execution_id, namespace, flow_id, state.value, ended, doc, remote=True))
        followed.histories = max(start, len(histories))


async def start_relay(engine: Any, nursery: trio.Nursery) -> EventRelay:
    """Start the node's LISTEN connection and event relay in ``nursery``; the engine's store is a
    :class:`~falconet.runtime.store.postgres.PostgresStore`. StoreError when the connection cannot open."""
    import psycopg

    from falconet.runtime.store import StoreError
    from falconet.runtime.store.postgres import redact_url

    listener = Listener(engine.store.url)
    try:
        await nursery.start(listener.run)
    except psycopg.Error as exc:
        message = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise StoreError(f"cannot listen on {redact_url(engine.store.url)}: {message}") from None
    relay = EventRelay(engine, listener)
    await nursery.start(relay.run)
    return relay
