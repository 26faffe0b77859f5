"""Polling triggers (Kestra's ``PollingTriggerInterface``): every registered
:class:`~falconet.sdk.plugin.PollingTrigger` type (the core ``http.Trigger`` among the built-ins, third-party
ones alike).

One trio task per enabled polling trigger of the latest revision of every enabled flow. It evaluates the
trigger every ``interval`` (the trigger's ``interval`` property, else the class's default, PT60S for
http.Trigger; the first evaluation one interval after the trigger is first seen, as Kestra computes
``nextEvaluationDate``), strictly one evaluation at a time. The persisted trigger context carries
``nextExecutionDate`` (so a restart keeps the rhythm), ``evaluateRunningDate`` while an evaluation runs,
``date`` (last evaluation) and ``executionId`` (last execution created).

An evaluation: the trigger's ``conditions`` are checked first; then the trigger's
:meth:`~falconet.sdk.plugin.PollingTrigger.evaluate` runs with a :class:`TriggerProps` context (its
properties rendered against ``flow``, ``envs``, ``globals``, ``vars``; ``secret()``/``kv()`` work). When it
returns variables an execution is created with ``trigger = {id, type, variables}`` and the trigger's
labels. A failing evaluation (:class:`TriggerEvaluationError`, a failing condition or render) is logged
(WARNING) and the trigger keeps polling.

On a shared store (a cluster) every server runs the loop of every polling trigger, but an evaluation is
claimed first — ``evaluateRunningDate`` and the next due date written with a compare-and-set of the context
read (``store.swap_trigger``) —, so one server evaluates each due date; a claim older than the scheduler's
``claim`` seconds is one of a server that died, and is taken over.

The poller re-reads the flows every ``poll`` seconds (or at :meth:`Poller.wake`): a new revision restarts
the trigger's task, a deleted or disabled flow or trigger stops it; a trigger disabled through the
Triggers API (``disabled`` in its context) is skipped at each due date.
"""
from __future__ import annotations

import copy
import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import trio

from falconet.runtime.expr.durations import parse_duration
from falconet.runtime.flow.model import Flow, TriggerSpec
from falconet.runtime.kernel.execution import format_instant, parse_instant
from falconet.sdk.plugin import PollingTrigger, TriggerEvaluationError
from falconet.runtime.orchestration.context import ConditionContext

if TYPE_CHECKING:  # pragma: no cover
    from falconet.runtime.kernel.actors import ExecutionActor
    from falconet.runtime.kernel.services import Kernel

log = logging.getLogger("falconet.orchestration.polling")

#: defaults of new pollers: seconds between re-reads of the flows; None = the scheduler's ``poll`` (both
#: notice new and changed flows at the same pace; tests that slow the scheduler down slow this down too)
DEFAULTS: dict[str, Any] = {"poll": None}


def is_polling(spec: TriggerSpec) -> bool:
    """The trigger's type is a registered :class:`PollingTrigger`."""
    return isinstance(spec.cls, type) and issubclass(spec.cls, PollingTrigger)


def _polling_class(spec: TriggerSpec) -> type[PollingTrigger]:
    """The class of a trigger :func:`is_polling` accepted."""
    if not issubclass(spec.cls, PollingTrigger):
        raise TypeError(f"{spec.type} is not a polling trigger")
    return spec.cls


#### The evaluation context #################################################################################

class TriggerProps:
    """The :class:`~falconet.sdk.plugin.PollingContext` of one evaluation: ``prop(name)`` renders a
    dynamic property, applies its default and coerces it to its declared kind; ``storage`` for file parts."""

    def __init__(self, engine: Kernel[ExecutionActor], flow: Flow, spec: TriggerSpec, variables: dict[str, Any]):
        self._engine = engine
        self._spec = spec
        self.trigger_id = spec.id
        self.trigger_type = spec.type
        self.namespace = flow.namespace
        self.flow_id = flow.id
        self.flow_revision = flow.revision
        self.variables: Mapping[str, Any] = variables
        self.storage = engine.storage
        self.clock = engine.clock

    def prop(self, name: str) -> Any:
        from falconet.runtime.kernel.runcontext import coerce

        declared = self._spec.cls.props.get(name)
        if declared is None:  # a property the trigger does not declare (e.g. a request's allowFailed)
            return None
        value = self._spec.props.get(name)
        if value is None:
            value = declared.default
        if value is None:
            return None
        if declared.dynamic:
            renderer = self._engine.renderer
            if isinstance(value, str):
                value = renderer.render_value(value, self.variables) if declared.kind == "string" \
                    else renderer.render_value_typed(value, self.variables)
            else:
                value = renderer.render_value(value, self.variables)
        return coerce(name, declared, value)

    def raw(self, name: str, default: Any = None) -> Any:
        value = self._spec.props.get(name)
        return default if value is None else value

    def render(self, value: Any, extra: Mapping[str, Any] | None = None) -> Any:
        return self._engine.renderer.render_value(value, {**self.variables, **extra} if extra else self.variables)


def _variables(engine: Kernel[ExecutionActor], flow: Flow, spec: TriggerSpec) -> dict[str, Any]:
    from falconet.runtime.kernel import executions as ex_ops
    from falconet.runtime.kernel.runcontext import EngineHooks

    candidate = ex_ops.new_execution(flow, trigger={"id": spec.id, "type": spec.type})
    return {"flow": {"id": flow.id, "namespace": flow.namespace, "revision": flow.revision},
            "envs": engine.envs, "globals": engine.config.globals, "vars": flow.variables or {},
            "__falconet__": EngineHooks(engine, candidate)}


#### The poller #############################################################################################

class Poller:
    """Runs the polling triggers of one engine (``engine.orchestration.polling``)."""

    def __init__(self, engine: Kernel[ExecutionActor], *, poll: float | None = None):
        from falconet.runtime.orchestration import scheduler

        self.engine = engine
        self.clock = engine.clock
        self.poll = poll if poll is not None else (
            DEFAULTS["poll"] if DEFAULTS["poll"] is not None else scheduler.DEFAULTS["poll"])
        self._wake = trio.Event()
        # (namespace, flowId, triggerId) -> (flow revision, cancel scope of its task)
        self._tasks: dict[tuple[str, str, str], tuple[int, trio.CancelScope]] = {}
        self.evaluations = 0
        self.created = 0

    def wake(self) -> None:
        """Re-read the flows now (after a flow changed)."""
        self._wake.set()

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Keep one task per enabled polling trigger until cancelled."""
        async with trio.open_nursery() as nursery:
            task_status.started()
            while True:
                try:
                    await self._sync(nursery)
                except Exception:  # a store failure: try again at the next poll
                    log.exception("polling triggers: reading the flows failed")
                self._wake = trio.Event()
                with trio.move_on_after(self.poll):
                    await self._wake.wait()

    async def _sync(self, nursery: trio.Nursery) -> None:
        wanted: dict[tuple[str, str, str], tuple[Flow, TriggerSpec]] = {}
        for (namespace, flow_id), revision in list(self.engine.flows.latest().items()):
            flow = await self.engine.get_flow(namespace, flow_id, revision, skip_invalid=True)
            if flow is None or flow.disabled:
                continue
            for spec in flow.triggers:
                if is_polling(spec) and not spec.disabled:
                    wanted[(flow.namespace, flow.id, spec.id)] = (flow, spec)
        for key, (revision, scope) in list(self._tasks.items()):
            if key not in wanted or wanted[key][0].revision != revision:
                scope.cancel(reason="polling trigger removed or its flow changed")
                del self._tasks[key]
        for key, (flow, spec) in wanted.items():
            if key not in self._tasks:
                scope = trio.CancelScope()
                self._tasks[key] = (flow.revision, scope)
                nursery.start_soon(self._trigger_loop, flow, spec, scope)

    async def _trigger_loop(self, flow: Flow, spec: TriggerSpec, scope: trio.CancelScope) -> None:
        """Evaluate one trigger at each due date, one evaluation at a time, until cancelled."""
        from falconet.runtime.orchestration import scheduler

        key = (flow.namespace, flow.id, spec.id)
        with scope:
            try:
                interval = parse_duration(str(spec.props.get("interval") or _polling_class(spec).interval))
            except ValueError as exc:
                log.warning("trigger %s.%s.%s: invalid interval: %s", flow.namespace, flow.id, spec.id, exc)
                return
            if interval <= timedelta(0):
                log.warning("trigger %s.%s.%s: interval must be positive", flow.namespace, flow.id, spec.id)
                return
            while True:
                try:
                    stored = await self.engine.store.get_trigger(*key)
                    ctx = copy.deepcopy(stored) if stored is not None else scheduler.new_context(flow, spec)
                    now = self.clock.now()
                    running = ctx.get("evaluateRunningDate")
                    if running and self.engine.store.shared and \
                            now - parse_instant(running) < timedelta(seconds=scheduler.DEFAULTS["claim"]):
                        await trio.sleep(min(interval.total_seconds(), self.poll))  # another server evaluates
                        continue
                    if not ctx.get("nextExecutionDate") or running:
                        # first sight, or an evaluation interrupted by a stop: due one interval from now
                        ctx.update(nextExecutionDate=format_instant(now + interval), evaluateRunningDate=None,
                                   updatedDate=format_instant(now))
                        await self.engine.store.swap_trigger(stored, ctx)
                        continue
                    due = parse_instant(ctx["nextExecutionDate"])
                    if due > now:
                        await self.clock.sleep_until(due)
                        continue
                    fields: dict[str, Any] = {}
                    if not ctx.get("disabled"):
                        # the claim: lost when another server evaluates this date
                        ctx.update(evaluateRunningDate=format_instant(now),
                                   nextExecutionDate=format_instant(now + interval))
                        if not await self.engine.store.swap_trigger(stored, ctx):
                            continue
                        fields = await self._evaluate(flow, spec, now)
                    await self._save(flow, spec, nextExecutionDate=format_instant(now + interval),
                                     updatedDate=format_instant(self.clock.now()), **fields)
                except Exception:  # a store failure: retry after one interval, never kill the poller
                    log.exception("trigger %s.%s.%s: evaluation loop failed", flow.namespace, flow.id, spec.id)
                    await trio.sleep(interval.total_seconds())

    async def _save(self, flow: Flow, spec: TriggerSpec, **fields: Any) -> None:
        """Update only ``fields`` of the stored context (a concurrent ``disabled`` change is kept)."""
        from falconet.runtime.orchestration.scheduler import new_context, update_context

        await update_context(self.engine, (flow.namespace, flow.id, spec.id), lambda ctx: ctx.update(fields),
                             lambda: new_context(flow, spec))

    async def _evaluate(self, flow: Flow, spec: TriggerSpec, now: datetime) -> dict[str, Any]:
        """One evaluation (conditions, the trigger's ``evaluate``, execution); returns the context fields
        it changed (``date``, ``evaluateRunningDate``, ``executionId``); the caller claimed it."""
        self.evaluations += 1
        fields: dict[str, Any] = {"evaluateRunningDate": None, "date": format_instant(now)}
        variables: dict[str, Any] | None = None
        try:
            cctx = ConditionContext(self.engine, flow, _variables(self.engine, flow, spec), date=now)
            if all(cctx.test(c) for c in spec.conditions):
                props = TriggerProps(self.engine, flow, spec, _variables(self.engine, flow, spec))
                variables = await _polling_class(spec)().evaluate(props)
        except TriggerEvaluationError as exc:
            log.warning("trigger %s.%s.%s: %s", flow.namespace, flow.id, spec.id, exc)
        except Exception as exc:  # a condition failing to evaluate
            log.warning("trigger %s.%s.%s: evaluation failed: %s", flow.namespace, flow.id, spec.id, exc)
        if variables is None:
            return fields
        trigger = {"id": spec.id, "type": spec.type, "variables": variables}
        with trio.CancelScope(shield=True):  # a flow update must not cut an execution's creation in half
            try:
                created = await self.engine.create_execution(flow.namespace, flow.id, trigger=trigger,
                                                             labels=list(spec.labels))
            except Exception as exc:  # invalid inputs, disabled flow…: this evaluation is lost
                log.warning("trigger %s.%s.%s: cannot create the execution: %s", flow.namespace, flow.id,
                            spec.id, exc)
                return fields
        self.created += 1
        fields["executionId"] = created["id"]
        return fields


__all__ = ["DEFAULTS", "Poller", "TriggerEvaluationError", "TriggerProps", "is_polling"]
