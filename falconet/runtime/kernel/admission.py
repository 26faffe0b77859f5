"""Admission: when an execution starts. Owns the queues of the flows' concurrency limits (QUEUE, CANCEL,
FAIL behaviours) and the wait for a ``scheduleDate``; starts admitted executions through the supervisor.

One server (memory, SQLite) counts its own running executions, in memory: no store round trip per
execution. On a shared store (a cluster on PostgreSQL) the limit counts the running executions of every
server: each execution of a limited flow claims a slot through the store (``Store.claim_concurrency_slot``,
one claim per flow at a time cluster-wide; a slot is free again once its execution is terminated), one task
per flow with work claims in order, and a QUEUED execution waits on the server that owns it, which claims
again whenever an execution of the flow ends — its own, or another server's: the server where it ended
sends a ``NOTIFY`` on :data:`SLOTS_CHANNEL` (see :meth:`Admission.follow`) — and every ``poll`` seconds
(a lost notification), so a slot freed anywhere admits the oldest QUEUED execution of the flow (the store
orders the claims of queued executions).
"""
from __future__ import annotations

import collections
import json
import logging
from typing import TYPE_CHECKING, Any

import trio

from falconet.runtime.flow.model import Flow
from falconet.runtime.kernel.execution import Execution, now
from falconet.runtime.kernel.state import State

if TYPE_CHECKING:  # pragma: no cover
    from falconet.runtime.kernel.actors import ExecutionActor
    from falconet.runtime.kernel.services import Supervisor
    from falconet.runtime.store.base import Store

log = logging.getLogger("falconet.engine")

#: defaults of new admissions: on a shared store, the longest wait in seconds before the QUEUED executions of
#: a flow claim a slot again (a slot freed on another server)
DEFAULTS: dict[str, Any] = {"poll": 1.0}

Key = tuple[str, str]

#: the NOTIFY channel of freed concurrency slots (payload: the JSON ``[namespace, flowId]``)
SLOTS_CHANNEL = "falconet_slots"


class Admission:
    def __init__(self, supervisor: "Supervisor[ExecutionActor]", store: "Store | None" = None):
        self.supervisor = supervisor
        self._queues: dict[Key, collections.deque[Execution]] = {}
        #: the shared store whose concurrency slots count every server's executions (None: one server)
        self.store = store if store is not None and store.shared else None
        self.poll = DEFAULTS["poll"]
        self._waiting: dict[Key, collections.deque[tuple[Execution, Flow]]] = {}  # cluster: not yet decided
        self._flows: dict[Key, Flow] = {}          # cluster: the flow of each key with queued executions
        self._workers: dict[Key, trio.Event] = {}  # cluster: the wake-up of the claiming task of each flow
        self._listener: Any = None                 # cluster: the server's Listener (falconet/runtime/cluster)

    def schedule(self, ex: Execution, flow: Flow) -> None:
        """Admit ``ex`` now, or at its ``scheduleDate``."""
        if ex.schedule_date is not None and ex.schedule_date > now():
            self.supervisor.spawn(self._start_later, ex, flow)
        else:
            self.admit(ex, flow)

    async def _start_later(self, ex: Execution, flow: Flow) -> None:
        assert ex.schedule_date is not None
        await self.supervisor.clock.sleep_until(ex.schedule_date)
        self.admit(ex, flow)

    def _queue(self, flow: Flow) -> collections.deque[Execution]:
        return self._queues.setdefault((flow.namespace, flow.id), collections.deque())

    def _active_count(self, flow: Flow) -> int:
        return sum(1 for a in self.supervisor.actors.values()
                   if a.ex.namespace == flow.namespace and a.ex.flow_id == flow.id
                   and a.ex.state.current not in (State.QUEUED,) and not a.ex.state.current.is_terminated)

    def admit(self, ex: Execution, flow: Flow, *, force: bool = False) -> None:
        """Start the execution now, or apply the flow's concurrency behavior (QUEUE, CANCEL, FAIL)."""
        conc = flow.concurrency
        if conc is not None and not force and self.store is not None:
            key = (flow.namespace, flow.id)
            self._waiting.setdefault(key, collections.deque()).append((ex, flow))
            self._kick(key)
            return
        if conc is not None and not force and self._active_count(flow) >= conc.limit:
            if conc.behavior == "QUEUE":
                if ex.state.current is not State.QUEUED:
                    ex.state.set(State.QUEUED)
                    self.supervisor.persist(ex)
                self._queue(flow).append(ex)
                return
            self._refuse(ex, conc.behavior)
            return
        self._start(ex, flow)

    def _start(self, ex: Execution, flow: Flow) -> None:
        if ex.state.current is State.QUEUED:
            ex.state.set(State.RUNNING)
        self.supervisor.start_actor(ex, flow)

    def _refuse(self, ex: Execution, behavior: str) -> None:
        ex.state.set(State.CANCELLED if behavior == "CANCEL" else State.FAILED)
        self.supervisor.persist(ex)
        self.supervisor.publish_execution(ex)
        self.supervisor.mark_ended(ex.id)

    def release_slot(self, flow: Flow) -> None:
        """An execution of ``flow`` ended: admit the queued ones its limit now allows."""
        if self.store is not None:
            if flow.concurrency is not None:
                if (flow.namespace, flow.id) in self._workers:
                    self._kick((flow.namespace, flow.id))
                if self._listener is not None:
                    self.supervisor.spawn(self._announce, (flow.namespace, flow.id))
            return
        q = self._queue(flow)
        conc = flow.concurrency
        while q and (conc is None or self._active_count(flow) < conc.limit):
            nxt = q.popleft()
            if nxt.state.current is State.QUEUED:
                self.admit(nxt, flow)

    def take(self, execution_id: str) -> Execution | None:
        """Remove a queued execution from its queue; returns the queued document (None when not queued)."""
        found = None
        for q in self._queues.values():
            for queued in list(q):
                if queued.id == execution_id:
                    q.remove(queued)
                    found = queued
        for w in self._waiting.values():
            for item in list(w):
                if item[0].id == execution_id:
                    w.remove(item)
                    found = found or item[0]
        return found

    #### a cluster's admission (shared store) ############################################################

    async def follow(self, listener: Any, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Wake the queues of the flows whose slots other servers free (the ``NOTIFY`` of
        :meth:`_announce` on :data:`SLOTS_CHANNEL` through ``listener``, a
        :class:`~falconet.runtime.cluster.listen.Listener`), and announce the slots freed here; runs until
        cancelled."""
        from falconet.runtime.cluster.listen import NotificationsMissed

        async with listener.subscribe(SLOTS_CHANNEL, max_buffer=1000) as sub:
            self._listener = listener
            task_status.started()
            try:
                while True:
                    try:
                        payload = await sub.receive()
                    except NotificationsMissed:  # any queue may have a free slot now
                        for key in [k for k, q in self._queues.items() if q]:
                            self._kick(key)
                        continue
                    try:
                        namespace, flow_id = json.loads(payload)
                    except ValueError:
                        continue
                    if self._queues.get((namespace, flow_id)):
                        self._kick((namespace, flow_id))
            finally:
                self._listener = None

    async def _announce(self, key: Key) -> None:
        try:
            await self._listener.notify(SLOTS_CHANNEL, json.dumps(list(key)))
        except Exception as exc:  # the poll admits them a little later
            log.warning("cannot announce a freed slot of flow %s.%s: %s", *key, exc)

    def _kick(self, key: Key) -> None:
        """Wake the claiming task of ``key`` (started when it has none)."""
        wake = self._workers.get(key)
        if wake is not None:
            wake.set()
            return
        self._workers[key] = trio.Event()
        self.supervisor.spawn(self._work, key)

    async def _work(self, key: Key) -> None:
        """Claim slots for the queued, then the new executions of one flow, in order, until none waits; the
        queued ones claim again at each kick and every ``poll`` seconds."""
        try:
            while True:
                wake = self._workers[key] = trio.Event()
                try:
                    await self._claim_queued(key)
                    await self._claim_waiting(key)
                except Exception:  # a store failure: the executions stay where they are, claimed again later
                    log.exception("admission of flow %s.%s failed", *key)
                if not self._queues.get(key) and not self._waiting.get(key):
                    return
                with trio.move_on_after(self.poll):
                    await wake.wait()
        finally:
            del self._workers[key]

    async def _claim(self, ex: Execution, flow: Flow) -> bool:
        assert self.store is not None and flow.concurrency is not None
        return await self.store.claim_concurrency_slot(flow.namespace, flow.id, ex.id, flow.concurrency.limit)

    async def _claim_queued(self, key: Key) -> None:
        q = self._queues.get(key)
        flow = self._flows.get(key)
        while q and flow is not None and flow.concurrency is not None:
            ex = q[0]
            if ex.state.current is not State.QUEUED:
                q.popleft()
                continue
            if not await self._claim(ex, flow):
                return
            if q and q[0] is ex:
                q.popleft()
            if ex.state.current is State.QUEUED:  # not killed meanwhile
                self._start(ex, flow)

    async def _claim_waiting(self, key: Key) -> None:
        w = self._waiting.get(key)
        while w:
            ex, flow = w[0]
            conc = flow.concurrency
            admitted = conc is None or await self._claim(ex, flow)
            if not w or w[0][0] is not ex:  # taken (killed) meanwhile
                continue
            w.popleft()
            if ex.state.current.is_terminated:
                continue
            if admitted:
                self._start(ex, flow)
            elif conc is not None and conc.behavior == "QUEUE":
                self._flows[key] = flow
                self._queue(flow).append(ex)  # first: a kill while the state is written finds it queued
                if ex.state.current is not State.QUEUED:
                    ex.state.set(State.QUEUED)
                    self.supervisor.persist(ex)
                    await self.store.flush()  # type: ignore[union-attr]  # its place in the queue, for every server
            else:
                self._refuse(ex, conc.behavior if conc is not None else "FAIL")
