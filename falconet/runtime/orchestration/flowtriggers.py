"""Flow triggers (Kestra's ``Flow`` trigger): start an execution when an execution of another flow reaches a state.

For each execution state change (terminal ends through ``on_execution_end``; every non-terminal
transition — RUNNING, PAUSED, RUNNING again after a resume… — from the execution's state history, see
:meth:`FlowTriggers.notify`), every enabled trigger of kind ``EXECUTIONS`` (the core ``trigger.Flow``) of every other
enabled flow is checked:

1. the state is in the trigger's ``states`` (default: every terminal state);
2. every plain condition holds for the upstream execution (ExecutionStatus, ExecutionFlow, …, Not, Or);
3. every ``MultipleCondition`` and the ``preconditions`` are satisfied *within their window*: the names
   of the sub-conditions this execution satisfies are added to a window record persisted with
   ``store.state_put("multiple-condition", …)``; the trigger fires once all names are present, and the
   record is reset (``resetOnSuccess``, default true).

A firing creates an execution of the listening flow with ``trigger = {id, type, variables}``, variables
``executionId``, ``namespace``, ``flowId``, ``flowRevision``, ``state`` (and ``outputs`` when the
upstream had flow outputs), inputs rendered in the upstream execution's context, and the trigger's labels.
A flow never triggers itself.

In a cluster only the server that owns the upstream execution evaluates (see
:mod:`falconet.runtime.orchestration`); the window records are updated with one compare-and-set
(``store.swap_states``), and how far the non-terminal transitions of a running execution were evaluated is
stored (``flow-trigger-progress``) before they fire, so a server taking over the execution of one that died
does not fire them again.
"""
from __future__ import annotations

import logging
from datetime import datetime, time, timedelta, timezone
from typing import TYPE_CHECKING, Any

import trio

from falconet.runtime.expr import safe_regex
from falconet.runtime.expr.output import is_truthy
from falconet.runtime.flow.model import ConditionSpec, Flow, TriggerSpec
from falconet.runtime.kernel.execution import Execution, format_instant, now, parse_instant
from falconet.runtime.kernel.state import State
from falconet.runtime.orchestration.context import ConditionContext, upstream_variables
from falconet.sdk.plugin import EXECUTIONS, Condition, Trigger

if TYPE_CHECKING:  # pragma: no cover
    from falconet.runtime.kernel.actors import ExecutionActor
    from falconet.runtime.kernel.services import Kernel

log = logging.getLogger("falconet.orchestration.flowtriggers")

TERMINAL = tuple(s.value for s in State if s.is_terminated)
#: terminated executions whose evaluated history length is remembered (a notification arriving after the
#: end, or a restart, must not evaluate old transitions again)
ENDED_KEPT = 10_000
WINDOW_KIND = "multiple-condition"
#: on a shared store, the state-history entries of a running execution already evaluated (``{"evaluated": n}``
#: per execution id): the server that takes over the execution of a server that died goes on from there
PROGRESS_KIND = "flow-trigger-progress"
#: compare-and-set attempts of one window update
ATTEMPTS = 50


def is_flow_trigger(spec: TriggerSpec) -> bool:
    return issubclass(spec.cls, Trigger) and spec.cls.kind == EXECUTIONS


def _is_multiple(cond: ConditionSpec) -> bool:
    return issubclass(cond.cls, Condition) and cond.cls.multiple


def _multiple_condition(cond: ConditionSpec) -> Condition:
    """An instance of a condition :func:`_is_multiple` accepted."""
    if not issubclass(cond.cls, Condition):
        raise TypeError(f"{cond.type} is not a condition")
    return cond.cls()


#### Windows ################################################################################################

def window_bounds(kind: str, props: dict[str, Any], at: datetime) -> tuple[datetime, datetime] | None:
    """The [start, end) window containing ``at``; None when ``at`` is outside any window (DAILY_TIME_*).
    SLIDING_WINDOW returns (at - window, at)."""
    from falconet.runtime.expr.durations import parse_duration

    window = parse_duration(str(props.get("window") or "PT24H"))
    advance = parse_duration(str(props.get("windowAdvance") or "PT0S"))
    if kind == "SLIDING_WINDOW":
        return at - window, at
    day = datetime.combine(at.date(), time(0), tzinfo=timezone.utc)
    if kind == "DAILY_TIME_DEADLINE":
        deadline = datetime.combine(at.date(), time.fromisoformat(str(props.get("deadline"))), tzinfo=timezone.utc)
        return (day, deadline) if at <= deadline else None
    if kind == "DAILY_TIME_WINDOW":
        start = datetime.combine(at.date(), time.fromisoformat(str(props.get("startTime"))), tzinfo=timezone.utc)
        end = datetime.combine(at.date(), time.fromisoformat(str(props.get("endTime"))), tzinfo=timezone.utc)
        return (start, end) if start <= at <= end else None
    start = day + advance
    if start > at:
        start -= timedelta(days=1)
    if window <= timedelta(0):
        return start, start + timedelta(days=1)
    steps = (at - start) // window
    start = start + window * steps
    return start, start + window


#### Preconditions ##########################################################################################

def _filter_ok(flt: dict[str, Any], ex: Execution, state: State, ctx: ConditionContext) -> bool:
    field = str(flt.get("field", "")).upper()
    kind = str(flt.get("type", "EQUAL_TO")).upper()
    value = flt.get("value")
    values = flt.get("values") or []
    if field == "FLOW_ID":
        actual: Any = ex.flow_id
    elif field == "NAMESPACE":
        actual = ex.namespace
    elif field == "STATE":
        actual = state.value
    elif field == "EXPRESSION":
        actual = ctx.render(value)
        value = None
    else:
        raise ValueError(f"Unknown precondition filter field '{field}'")
    text = "" if actual is None else str(actual)
    if kind == "EQUAL_TO":
        return text == str(value)
    if kind == "NOT_EQUAL_TO":
        return text != str(value)
    if kind == "IN":
        return text in [str(v) for v in values]
    if kind == "NOT_IN":
        return text not in [str(v) for v in values]
    if kind == "IS_TRUE":
        return is_truthy(actual)
    if kind == "IS_FALSE":
        return not is_truthy(actual)
    if kind == "IS_NULL":
        return actual is None or text == ""
    if kind == "IS_NOT_NULL":
        return not (actual is None or text == "")
    if kind == "STARTS_WITH":
        return text.startswith(str(value))
    if kind == "ENDS_WITH":
        return text.endswith(str(value))
    if kind == "CONTAINS":
        return str(value) in text
    if kind == "REGEX":
        return safe_regex.compile(str(value)).fullmatch(text) is not None
    raise ValueError(f"Unknown precondition filter type '{kind}'")


def _safe_filter(flt: dict[str, Any], ex: Execution, state: State, ctx: ConditionContext) -> bool:
    """A filter whose expression cannot be rendered for this execution (e.g. a missing label) is not met."""
    from falconet.runtime.expr.render import ExpressionError

    try:
        return _filter_ok(flt, ex, state, ctx)
    except (ExpressionError, safe_regex.RegexError):  # RegexError: a flow stored before validation refused it
        return False


def precondition_matches(pre: dict[str, Any], ex: Execution, state: State, ctx: ConditionContext) -> list[str]:
    """Names of the preconditions (``flows`` entries and ``where`` groups) this execution satisfies."""
    names: list[str] = []
    for i, up in enumerate(pre.get("flows") or []):
        states = up.get("states") or ["SUCCESS"]
        labels = up.get("labels") or {}
        pairs = labels.items() if isinstance(labels, dict) else [(x["key"], x["value"]) for x in labels]
        have = ex.label_map()
        if (ex.namespace == up.get("namespace") and (up.get("flowId") in (None, ex.flow_id))
                and state.value in states and all(have.get(str(k)) == str(v) for k, v in pairs)):
            names.append(f"flows[{i}]")
    for i, group in enumerate(pre.get("where") or []):
        filters = group.get("filters") or []
        results = (_safe_filter(f, ex, state, ctx) for f in filters)  # short-circuits like Kestra
        ok = any(results) if str(group.get("operand", "AND")).upper() == "OR" else all(results)
        if ok and filters:
            names.append(f"where.{group.get('id', i)}")
    return names


def precondition_names(pre: dict[str, Any]) -> list[str]:
    return ([f"flows[{i}]" for i in range(len(pre.get("flows") or []))]
            + [f"where.{g.get('id', i)}" for i, g in enumerate(pre.get("where") or [])])


#### Creating the triggered execution ######################################################################

async def create_triggered_execution(engine: "Kernel[ExecutionActor]", flow: Flow, inputs: dict[str, Any],
                                     labels: list[tuple[str, str]], trigger: dict[str, Any]) -> dict[str, Any]:
    """Create (and start) an execution for a trigger. Inputs are typed like an API call's; when they do not
    validate (e.g. a required input the trigger does not provide) the execution is still created with the
    rendered inputs as given, as Kestra 0.21 does for trigger-created executions, and a warning is logged."""
    from falconet.runtime.kernel import executions as ex_ops
    from falconet.runtime.kernel.errors import InvalidEntity

    try:
        return await engine.create_execution(flow.namespace, flow.id, inputs=inputs, labels=labels, trigger=trigger)
    except InvalidEntity as exc:
        log.warning("flow %s.%s: trigger %s inputs do not validate (%s); creating the execution with them as given",
                    flow.namespace, flow.id, trigger.get("id"), exc)
    ex = ex_ops.new_execution(flow, labels=labels, trigger=trigger)
    ex.inputs = dict(inputs)
    await engine.cluster.own(ex.id)
    await engine.store.save_execution(ex.to_dict(private=True))
    engine.publish_execution(ex)
    engine.admission.schedule(ex, flow)
    return ex.to_dict()


#### The evaluator ##########################################################################################

class FlowTriggers:
    """Evaluates Flow triggers; one per engine (``engine.orchestration.flow_triggers``)."""

    def __init__(self, engine: "Kernel[ExecutionActor]"):
        self.engine = engine
        self._lock = trio.Lock()              # window records: read-modify-write under this lock
        self._cache: dict[tuple[str, str], tuple[int, Flow | None]] = {}
        self._pending: dict[str, None] = {}   # executions whose state changed, not yet evaluated (insertion order)
        self._progress: dict[str, int] = {}   # execution id -> state-history entries already evaluated
        self._ended: dict[str, int] = {}      # the same for the latest ENDED_KEPT terminated executions
        self._recorded: set[str] = set()      # shared store: executions whose progress is stored (PROGRESS_KIND)
        self._kick = trio.Event()
        self._none_at = -1                    # flows.changes when none_listening() last found none
        self.fired = 0                        # executions created by flow triggers (for tests and stats)

    #### flows with Flow triggers ########################################################################

    async def listening_flows(self) -> list[Flow]:
        """Latest revision of every enabled flow that has an enabled Flow trigger (cached by revision)."""
        latest = self.engine.flows.latest()
        for key in [k for k in self._cache if k not in latest]:
            del self._cache[key]
        out: list[Flow] = []
        for key, revision in latest.items():
            cached = self._cache.get(key)
            if cached is None or cached[0] != revision:
                flow = await self.engine.get_flow(key[0], key[1], revision, skip_invalid=True)
                keep = flow if flow is not None and any(is_flow_trigger(t) for t in flow.triggers) else None
                self._cache[key] = (revision, keep)
                cached = self._cache[key]
            if cached[1] is not None and not cached[1].disabled:
                out.append(cached[1])
        return out

    def none_listening(self) -> bool:
        """Whether no flow listens: the latest revision of every flow is known and none has an enabled Flow
        trigger (then :meth:`on_state` and :meth:`run` would evaluate nothing and read no flow). Checked once
        per change of the flows."""
        flows = self.engine.flows
        if self._none_at == flows.changes:
            return True
        for key, revision in flows.latest().items():
            cached = self._cache.get(key)
            if cached is None or cached[0] != revision or (cached[1] is not None and not cached[1].disabled):
                return False
        self._none_at = flows.changes
        return True

    #### evaluation ######################################################################################

    async def on_state(self, ex: Execution, state: State) -> int:
        """Evaluate every Flow trigger for ``ex`` having reached ``state``; returns executions created.
        Never raises: a broken trigger is logged and skipped."""
        created = 0
        try:
            flows = await self.listening_flows()
        except Exception:
            log.exception("cannot list flows for flow triggers")
            return 0
        for flow in flows:
            if flow.namespace == ex.namespace and flow.id == ex.flow_id:
                continue
            for spec in flow.triggers:
                if not is_flow_trigger(spec) or spec.disabled:
                    continue
                try:
                    if await self._evaluate(flow, spec, ex, state):
                        created += 1
                except Exception:
                    log.exception("flow trigger %s.%s.%s failed on execution %s", flow.namespace, flow.id,
                                  spec.id, ex.id)
        return created

    def _trigger_vars(self, ex: Execution, state: State) -> dict[str, Any]:
        tv: dict[str, Any] = {"executionId": ex.id, "namespace": ex.namespace, "flowId": ex.flow_id,
                              "flowRevision": ex.flow_revision, "state": state.value}
        if ex.outputs:
            tv["outputs"] = ex.outputs
        return tv

    async def _evaluate(self, flow: Flow, spec: TriggerSpec, ex: Execution, state: State) -> bool:
        states = spec.props.get("states") or TERMINAL
        if state.value not in states:
            return False
        upstream_flow = await self.engine.get_flow(ex.namespace, ex.flow_id, ex.flow_revision, allow_deleted=True)
        tvars = self._trigger_vars(ex, state)
        variables = upstream_variables(self.engine, ex, upstream_flow, tvars)
        ctx = ConditionContext(self.engine, flow, variables, execution=ex, state=state)
        windowed: list[tuple[str, dict[str, Any], list[str], list[str]]] = []
        for cond in spec.conditions:
            if _is_multiple(cond):
                inst = _multiple_condition(cond)
                names = list((cond.props.get("conditions") or {}).keys())
                windowed.append((f"condition.{cond.props.get('id') or 'multiple'}", {
                    "type": "MULTIPLE", "window": cond.props.get("window"),
                    "windowAdvance": cond.props.get("windowAdvance"),
                    "resetOnSuccess": cond.props.get("resetOnSuccess", True)},
                    names, inst.matched(cond.props, ctx)))
            elif not ctx.test(cond):
                return False
        pre = spec.props.get("preconditions")
        if pre:
            tw = dict(pre.get("timeWindow") or {})
            tw.setdefault("type", "DURATION_WINDOW")
            tw["resetOnSuccess"] = pre.get("resetOnSuccess", True)
            windowed.append((f"preconditions.{pre.get('id') or spec.id}", tw, precondition_names(pre),
                             precondition_matches(pre, ex, state, ctx)))
        if windowed and not await self._windows_complete(flow, spec, windowed):
            return False
        if not await self._enabled(flow, spec):
            return False
        await self._fire(flow, spec, ex, variables, tvars)
        return True

    async def _windows_complete(self, flow: Flow, spec: TriggerSpec,
                                windowed: list[tuple[str, dict[str, Any], list[str], list[str]]]) -> bool:
        """Record matches in each window; True when every window has all its names (then reset them). The
        records are read, then written with one compare-and-set of them all, read again while another
        server changed one first: two executions ending at once on two servers both count, and only one
        of them completes the windows."""
        at = now()
        async with self._lock:
            for _ in range(ATTEMPTS):
                complete = True
                changes: list[tuple[str, dict[str, Any] | None, dict[str, Any] | None]] = []
                resets: list[bool] = []
                for suffix, props, names, matched in windowed:
                    key = f"{flow.namespace}_{flow.id}_{spec.id}_{suffix}"
                    kind = str(props.get("type") or "DURATION_WINDOW").upper()
                    bounds = window_bounds(kind, props, at)
                    old = await self.engine.store.state_get(WINDOW_KIND, key)
                    if bounds is None:
                        complete = False
                        continue
                    start, end = bounds
                    if kind == "SLIDING_WINDOW":
                        results = {n: d for n, d in ((old or {}).get("results") or {}).items()
                                   if parse_instant(d) >= start}
                    elif old is not None and old.get("start") == format_instant(start):
                        results = dict(old.get("results") or {})
                    else:
                        results = {}
                    for n in matched:
                        results[n] = format_instant(at)
                    rec = {"namespace": flow.namespace, "flowId": flow.id, "triggerId": spec.id,
                           "start": format_instant(start), "end": format_instant(end), "results": results}
                    if not all(n in results for n in names):
                        complete = False
                    changes.append((key, old, rec))
                    resets.append(props.get("resetOnSuccess", True) is not False)
                if complete:
                    changes = [(key, old, None if reset else rec)
                               for (key, old, rec), reset in zip(changes, resets, strict=True)]
                if await self.engine.store.swap_states(WINDOW_KIND, changes):
                    return complete
            log.warning("flow trigger %s.%s.%s: its condition windows kept changing; this event is not counted",
                        flow.namespace, flow.id, spec.id)
            return False

    async def _enabled(self, flow: Flow, spec: TriggerSpec) -> bool:
        ctx = await self.engine.store.get_trigger(flow.namespace, flow.id, spec.id)
        return not (ctx or {}).get("disabled")

    async def _fire(self, flow: Flow, spec: TriggerSpec, ex: Execution, variables: dict[str, Any],
                    tvars: dict[str, Any]) -> None:
        inputs = self.engine.renderer.render_value(spec.props.get("inputs") or {}, variables)
        trigger = {"id": spec.id, "type": spec.type, "variables": tvars}
        created = await create_triggered_execution(self.engine, flow, inputs, list(spec.labels), trigger)
        self.fired += 1
        from falconet.runtime.orchestration.scheduler import new_context, update_context

        at = format_instant(now())
        await update_context(self.engine, (flow.namespace, flow.id, spec.id),
                             lambda ctx: ctx.update(executionId=created["id"], date=at, updatedDate=at),
                             lambda: new_context(flow, spec))

    #### non-terminal states: every transition of the state history ###################################

    def notify(self, ex: Execution) -> None:
        """The engine published a state of ``ex`` (``engine.watch_execution_state``): queue the execution
        for :meth:`run`. Never drops: the queue holds execution ids (one entry per execution however many
        changes), and each is later evaluated from its state history, where every transition is recorded.
        When no flow listens, nothing is queued (as :meth:`run` would drop it: no wake-up per state change)."""
        if self.none_listening():
            self._progress.clear()
            self._ended.clear()
            return
        self._pending[ex.id] = None
        self._kick.set()

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Evaluate the Flow triggers listing non-terminal states (RUNNING, PAUSED…) once per matching
        transition of each watched execution, in the order of its state history, each with
        ``trigger.state``. Terminal states come from ``on_execution_end`` (after the end is durable)."""
        task_status.started()
        while True:
            if not self._pending:
                self._kick = trio.Event()
                await self._kick.wait()
            batch = list(self._pending)
            self._pending.clear()
            try:
                wanted = await self.non_terminal_states()
            except Exception:
                log.exception("cannot list flows for flow triggers")
                continue
            if not wanted:
                self._progress.clear()
                self._ended.clear()
                continue
            for execution_id in batch:
                try:
                    await self._transitions(execution_id, wanted)
                except Exception:
                    log.exception("flow triggers on the states of execution %s failed", execution_id)

    async def non_terminal_states(self) -> set[str]:
        """The non-terminal states some enabled Flow trigger lists."""
        out: set[str] = set()
        for flow in await self.listening_flows():
            for t in flow.triggers:
                if is_flow_trigger(t) and not t.disabled:
                    out.update(s for s in t.props.get("states") or () if s not in TERMINAL)
        return out

    async def wants_non_terminal(self) -> bool:
        return bool(await self.non_terminal_states())

    async def _transitions(self, execution_id: str, wanted: set[str]) -> None:
        actor = self.engine.actors.get(execution_id)
        ex = actor.ex if actor is not None else await self.engine.load_execution(execution_id)
        histories = list(ex.state.histories)
        start = self._progress.pop(execution_id, None)
        if start is None:
            start = self._ended.pop(execution_id, None)
        shared = self.engine.store.shared
        if start is None and shared:  # first seen here: a server that died may have evaluated some already
            done = await self.engine.store.state_get(PROGRESS_KIND, execution_id)
            if done is not None:
                self._recorded.add(execution_id)
                start = int(done.get("evaluated") or 0)
        if start is None:
            start = _after_last_end(histories)
        todo = [state for state, _when in histories[start:] if not state.is_terminated and state.value in wanted]
        if shared and todo:  # recorded before they fire: a server taking the execution over never fires them again
            await self.engine.store.state_put(PROGRESS_KIND, execution_id, {"evaluated": len(histories)})
            self._recorded.add(execution_id)
        for state in todo:
            await self.on_state(ex, state)
        if ex.state.current.is_terminated and execution_id in self._recorded:
            self._recorded.discard(execution_id)
            await self.engine.store.state_delete(PROGRESS_KIND, execution_id)
        if ex.state.current.is_terminated:  # kept a while for late notifications; a restart continues after
            self._ended[execution_id] = len(histories)
            while len(self._ended) > ENDED_KEPT:
                del self._ended[next(iter(self._ended))]
        else:
            self._progress[execution_id] = len(histories)

    def wake(self) -> None:
        """Kept for callers that changed flows: evaluation needs no wake-up (the flow list is read per batch)."""
        self._kick.set()


def _after_last_end(histories: list[Any]) -> int:
    """Where the transitions to evaluate start for an execution never evaluated here: after its last
    terminal entry other than a final one (a restarted execution), else at the beginning."""
    end = len(histories) - 1 if histories and histories[-1][0].is_terminated else len(histories)
    for i in range(end - 1, -1, -1):
        if histories[i][0].is_terminated:
            return i + 1
    return 0


__all__ = ["FlowTriggers", "window_bounds", "precondition_matches", "is_flow_trigger"]
