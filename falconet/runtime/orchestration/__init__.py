"""Orchestration across executions: schedules, flow triggers, ForEachItem, retries as new executions.

The engine kernel knows nothing of these: :class:`Orchestration` implements the kernel's optional
:class:`~falconet.runtime.kernel.services.ExecutionHooks`, which :meth:`Engine.run` hands the engine
(``engine.execution_hooks``; the object itself is ``engine.orchestration``), and :func:`run_services` runs
the long-lived loops (the scheduler) in the engine's nursery:

- ``run_for_each_item(parent_actor, task_run, task)`` — the ``<id>_items`` child of a ForEachItem
  (:mod:`.foreachitem`);
- ``retry_state(actor, state)`` — called by an ExecutionActor with its final state; turns FAILED into
  RETRIED when a CREATE_NEW_EXECUTION retry applies (:mod:`.retry`);
- ``on_execution_end(execution, flow)`` — after an execution ended: its retry execution, the triggers'
  ``stopAfter``, and the Flow triggers of every flow (:mod:`.flowtriggers`);
- ``watch_execution_state(execution)`` — an execution's state changed: Flow triggers on non-terminal
  states (:meth:`.flowtriggers.FlowTriggers.notify`);
- and it holds the scheduler, flow triggers, polling triggers (:mod:`.polling`) and backfills.

Nothing here raises into the engine: a failing trigger evaluation is logged and skipped.

In a cluster the hooks run on the server that owns the execution, once: they are called by its actor and
its :meth:`Engine.publish_execution`, never for events relayed from other servers (those go to the bus
only), so Flow triggers, retries and ``stopAfter`` apply once per event cluster-wide.
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import trio

from falconet.runtime.flow.model import Flow
from falconet.runtime.kernel.execution import Execution
from falconet.runtime.kernel.state import State
from falconet.runtime.orchestration import foreachitem, retry

if TYPE_CHECKING:  # pragma: no cover
    from falconet.runtime.kernel.actors import ExecutionActor
    from falconet.runtime.kernel.services import Kernel
    from falconet.runtime.flow.model import TaskSpec
    from falconet.runtime.kernel.execution import TaskRun

log = logging.getLogger("falconet.orchestration")


class Orchestration:
    """Per-engine orchestration state and the kernel's :class:`ExecutionHooks`; reachable as
    ``engine.orchestration``."""

    def __init__(self, engine: "Kernel[ExecutionActor]", *, foreach_max_live: int = foreachitem.MAX_LIVE_CHILDREN):
        from falconet.runtime.orchestration.flowtriggers import FlowTriggers
        from falconet.runtime.orchestration.polling import Poller
        from falconet.runtime.orchestration.scheduler import Scheduler

        self.engine = engine
        self.foreach_max_live = foreach_max_live
        self.flow_triggers = FlowTriggers(engine)
        self.scheduler = Scheduler(engine)
        engine.flows.on_change.append(self.scheduler.wake)  # a new or changed flow's schedule, evaluated at once
        self.polling = Poller(engine)

    #### hooks ###########################################################################################

    async def run_for_each_item(self, parent: "ExecutionActor", tr: "TaskRun", task: "TaskSpec") -> None:
        await foreachitem.run_items(self.engine, parent, tr, task, max_live=self.foreach_max_live)

    def retry_state(self, actor: "ExecutionActor", state: State) -> State:
        return retry.retry_state(actor, state)

    async def on_execution_end(self, ex: Execution, flow: Flow) -> None:
        """Hand the end of ``ex`` to a task of its own (the ending actor is not held up): retry
        execution, ``stopAfter``, Flow triggers — none when it has none of them (no task per execution)."""
        if (retry.needs_retry_execution(ex) or (ex.trigger or {}).get("id")
                or not self.flow_triggers.none_listening()):
            self.engine.spawn(self.after_end, ex, flow)

    def watch_execution_state(self, ex: Execution) -> None:
        self.flow_triggers.notify(ex)

    async def after_end(self, ex: Execution, flow: Flow) -> None:
        """Retry execution, ``stopAfter``, Flow triggers. Never raises (errors are logged)."""
        try:
            await retry.create_retry_execution(self.engine, ex, flow)
        except Exception:  # a store failure must not take the engine down
            log.exception("retry of execution %s failed", ex.id)
        try:
            await self.stop_after(ex)
        except Exception:
            log.exception("stopAfter of execution %s failed", ex.id)
        await self.flow_triggers.on_state(ex, ex.state.current)

    async def stop_after(self, ex: Execution) -> None:
        """Disable the trigger that created ``ex`` when its ``stopAfter`` lists the final state."""
        trig = ex.trigger or {}
        if not trig.get("id"):
            return
        flow = await self.engine.get_flow(ex.namespace, ex.flow_id, skip_invalid=True)
        if flow is None:
            return
        spec = next((t for t in flow.triggers if t.id == trig["id"]), None)
        if spec is None or ex.state.current.value not in spec.stop_after:
            return
        from falconet.runtime.orchestration.scheduler import new_context, update_context

        await update_context(self.engine, (flow.namespace, flow.id, spec.id), lambda ctx: ctx.update(disabled=True),
                             lambda: new_context(flow, spec))


async def run_services(orch: Orchestration, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
    """Run the scheduler, the flow-trigger listener and the polling triggers until cancelled (started once the
    engine loaded)."""
    async with trio.open_nursery() as nursery:
        await nursery.start(orch.scheduler.run)
        await nursery.start(orch.flow_triggers.run)
        await nursery.start(orch.polling.run)
        task_status.started()


def admission_order(ex: Execution) -> tuple[Any, ...]:
    """Sort key for executions waiting for admission at start-up: the date each entered QUEUED (FIFO),
    else its creation date."""
    queued = [when for state, when in ex.state.histories if state is State.QUEUED]
    return (queued[-1] if queued else ex.state.start_date, ex.id)


__all__ = ["run_services", "Orchestration", "admission_order"]
