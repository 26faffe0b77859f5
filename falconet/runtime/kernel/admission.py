"""Admission: when an execution starts. Owns the queues of the flows' concurrency limits (QUEUE, CANCEL,
FAIL behaviours) and the wait for a ``scheduleDate``; starts admitted executions through the supervisor."""
from __future__ import annotations

import collections
from typing import TYPE_CHECKING

from falconet.runtime.flow.model import Flow
from falconet.runtime.kernel.execution import Execution, now
from falconet.runtime.kernel.state import State

if TYPE_CHECKING:  # pragma: no cover
    from falconet.runtime.kernel.actors import ExecutionActor
    from falconet.runtime.kernel.services import Supervisor


class Admission:
    def __init__(self, supervisor: "Supervisor[ExecutionActor]"):
        self.supervisor = supervisor
        self._queues: dict[tuple[str, str], collections.deque[Execution]] = {}

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
        if conc is not None and not force and self._active_count(flow) >= conc.limit:
            if conc.behavior == "QUEUE":
                if ex.state.current is not State.QUEUED:
                    ex.state.set(State.QUEUED)
                    self.supervisor.persist(ex)
                self._queue(flow).append(ex)
                return
            ex.state.set(State.CANCELLED if conc.behavior == "CANCEL" else State.FAILED)
            self.supervisor.persist(ex)
            self.supervisor.publish_execution(ex)
            self.supervisor.mark_ended(ex.id)
            return
        if ex.state.current is State.QUEUED:
            ex.state.set(State.RUNNING)
        self.supervisor.start_actor(ex, flow)

    def release_slot(self, flow: Flow) -> None:
        """An execution of ``flow`` ended: admit the queued ones its limit now allows."""
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
        return found
