"""Polling triggers (reference §5.4): ``io.kestra.plugin.core.http.Trigger`` (alias ``fs.http.Trigger``).

One trio task per enabled polling trigger of the latest revision of every enabled flow. It evaluates the
trigger every ``interval`` (default PT60S; the first evaluation one interval after the trigger is first
seen, as Kestra computes ``nextEvaluationDate``), strictly one evaluation at a time. The persisted
trigger context carries ``nextExecutionDate`` (so a restart keeps the rhythm), ``evaluateRunningDate``
while an evaluation runs, ``date`` (last evaluation) and ``executionId`` (last execution created).

An http.Trigger evaluation: the trigger's ``conditions`` are checked first; then the request described
by its properties (rendered against ``flow``, ``envs``, ``globals``, ``vars``; ``secret()``/``kv()``
work) is sent — a status ≥ 400 is not an error, ``responseCondition`` (default
``{{ response.statusCode < 400 }}``, rendered with ``response = {statusCode, body, headers}``) decides.
When it is truthy an execution is created with ``trigger = {id, type, variables: {uri, code, headers,
body}}`` and the trigger's labels. A failing request or render is logged (WARNING) and the trigger keeps
polling.

The poller re-reads the flows every ``poll`` seconds (or at :meth:`Poller.wake`): a new revision restarts
the trigger's task, a deleted or disabled flow or trigger stops it; a trigger disabled through the
Triggers API (``disabled`` in its context) is skipped at each due date.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import trio

from ..durations import parse_duration
from ..flowmodel import Flow, TriggerSpec
from ..model import format_instant, parse_instant
from .context import ConditionContext

if TYPE_CHECKING:  # pragma: no cover
    from ..engine import Engine

log = logging.getLogger("falconet.orchestration.polling")

HTTP_TRIGGER_TYPES = frozenset({"io.kestra.plugin.core.http.Trigger", "io.kestra.plugin.fs.http.Trigger"})
DEFAULT_INTERVAL = "PT60S"
DEFAULT_CONDITION = "{{ response.statusCode < 400 }}"
#: a response body larger than this (or ``options.maxContentLength``) fails the evaluation
MAX_BODY = 10 * 1024 * 1024

#: defaults of new pollers: seconds between re-reads of the flows; None = the scheduler's ``poll`` (both
#: notice new and changed flows at the same pace; tests that slow the scheduler down slow this down too)
DEFAULTS: dict[str, Any] = {"poll": None}


def is_polling(spec: TriggerSpec) -> bool:
    return spec.type in HTTP_TRIGGER_TYPES or getattr(spec.cls, "type", "") in HTTP_TRIGGER_TYPES


class TriggerEvaluationError(Exception):
    """An evaluation could not complete (bad property, request error, render error): logged, no execution."""


#### Property access for the HTTP helpers ###################################################################

class TriggerProps:
    """The trigger's properties as ``falconet.plugins.core.http`` reads a task's: ``prop(name)`` renders a
    dynamic property, applies its default and coerces it to its declared kind; ``storage`` for file parts."""

    def __init__(self, engine: Engine, spec: TriggerSpec, variables: dict[str, Any]):
        self._engine = engine
        self._spec = spec
        self.variables = variables
        self.storage = engine.storage

    def prop(self, name: str) -> Any:
        from ..runcontext import coerce

        declared = self._spec.cls.props.get(name)
        if declared is None:  # a request property the trigger does not declare (e.g. allowFailed)
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


#### One evaluation #########################################################################################

def _variables(engine: Engine, flow: Flow, spec: TriggerSpec) -> dict[str, Any]:
    from .. import executions as ex_ops
    from ..runcontext import EngineHooks

    candidate = ex_ops.new_execution(engine, flow, trigger={"id": spec.id, "type": spec.type})
    return {"flow": {"id": flow.id, "namespace": flow.namespace, "revision": flow.revision},
            "envs": engine.envs, "globals": engine.config.globals, "vars": flow.variables or {},
            "__falconet__": EngineHooks(engine, candidate)}


async def evaluate_http(engine: Engine, flow: Flow, spec: TriggerSpec) -> dict[str, Any] | None:
    """Send the trigger's request; its ``trigger.variables`` when ``responseCondition`` holds, else None.
    Raises :class:`TriggerEvaluationError`. Checkpoint; cancellation interrupts the request."""
    import httpx

    from ...plugins.core.http import build_request, open_client, response_headers
    from ..expressions import ExpressionError
    from ..plugin import TaskFailed

    variables = _variables(engine, flow, spec)
    props = TriggerProps(engine, spec, variables)
    try:
        if props.prop("encryptBody"):
            raise TriggerEvaluationError("encryptBody is not supported by Falconet")
        options = props.prop("options") or {}
        limit = options.get("maxContentLength") if isinstance(options, dict) else None
        limit = MAX_BODY if limit is None else int(limit)
        async with open_client(props) as client:  # type: ignore[arg-type]
            request = await build_request(props, client)  # type: ignore[arg-type]
            response = await client.send(request, stream=True)
            try:
                chunks, size = [], 0
                async for chunk in response.aiter_bytes(1 << 16):
                    size += len(chunk)
                    if size > limit:
                        raise TriggerEvaluationError(f"Response body larger than {limit} bytes")
                    chunks.append(chunk)
            finally:
                await response.aclose()
        content = b"".join(chunks)
        body = content.decode(response.encoding or "utf-8", errors="replace") if content else None
        headers = response_headers(response)
        condition = spec.props.get("responseCondition") or DEFAULT_CONDITION
        rendered = engine.renderer.render_value(
            condition, {**variables, "response": {"statusCode": response.status_code, "body": body,
                                                  "headers": headers}})
    except (TaskFailed, ExpressionError, ValueError) as exc:
        raise TriggerEvaluationError(str(exc)) from exc
    except httpx.HTTPError as exc:
        raise TriggerEvaluationError(f"HTTP request failed: {type(exc).__name__}: {exc}") from exc
    if not engine.renderer.is_truthy(rendered):
        return None
    return {"uri": str(request.url), "code": response.status_code, "headers": headers, "body": body}


#### The poller #############################################################################################

class Poller:
    """Runs the polling triggers of one engine (``engine.orchestration.polling``)."""

    def __init__(self, engine: Engine, *, clock: Callable[[], datetime] | None = None,
                 poll: float | None = None):
        from . import scheduler

        self.engine = engine
        self.clock = clock if clock is not None else scheduler.DEFAULTS["clock"]
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
        for (namespace, flow_id), revision in list(self.engine._latest.items()):
            flow = await self.engine.get_flow(namespace, flow_id, revision)
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
        from .scheduler import load_context

        with scope:
            try:
                interval = parse_duration(str(spec.props.get("interval") or DEFAULT_INTERVAL))
            except ValueError as exc:
                log.warning("trigger %s.%s.%s: invalid interval: %s", flow.namespace, flow.id, spec.id, exc)
                return
            if interval <= timedelta(0):
                log.warning("trigger %s.%s.%s: interval must be positive", flow.namespace, flow.id, spec.id)
                return
            while True:
                try:
                    ctx = await load_context(self.engine, flow, spec)
                    now = self.clock()
                    if not ctx.get("nextExecutionDate") or ctx.get("evaluateRunningDate"):
                        # first sight, or an evaluation interrupted by a stop: due one interval from now
                        await self._save(flow, spec, nextExecutionDate=format_instant(now + interval),
                                         evaluateRunningDate=None, updatedDate=format_instant(now))
                        continue
                    due = parse_instant(ctx["nextExecutionDate"])
                    if due > now:
                        await trio.sleep((due - now).total_seconds())
                        continue
                    fields: dict[str, Any] = {}
                    if not ctx.get("disabled"):
                        fields = await self._evaluate(flow, spec, now)
                    await self._save(flow, spec, nextExecutionDate=format_instant(now + interval),
                                     updatedDate=format_instant(self.clock()), **fields)
                except Exception:  # a store failure: retry after one interval, never kill the poller
                    log.exception("trigger %s.%s.%s: evaluation loop failed", flow.namespace, flow.id, spec.id)
                    await trio.sleep(interval.total_seconds())

    async def _save(self, flow: Flow, spec: TriggerSpec, **fields: Any) -> None:
        """Update only ``fields`` of the stored context (a concurrent ``disabled`` change is kept)."""
        from .scheduler import load_context

        ctx = await load_context(self.engine, flow, spec)
        ctx.update(fields)
        await self.engine.store.save_trigger(ctx)

    async def _evaluate(self, flow: Flow, spec: TriggerSpec, now: datetime) -> dict[str, Any]:
        """One evaluation (conditions, request, responseCondition, execution); returns the context fields
        it changed (``date``, ``evaluateRunningDate``, ``executionId``)."""
        await self._save(flow, spec, evaluateRunningDate=format_instant(now))
        self.evaluations += 1
        fields: dict[str, Any] = {"evaluateRunningDate": None, "date": format_instant(now)}
        variables: dict[str, Any] | None = None
        try:
            cctx = ConditionContext(self.engine, flow, _variables(self.engine, flow, spec), date=now)
            if all(cctx.test(c) for c in spec.conditions):
                variables = await evaluate_http(self.engine, flow, spec)
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


__all__ = ["DEFAULTS", "Poller", "TriggerEvaluationError", "TriggerProps", "evaluate_http", "is_polling"]
