"""The scheduler (Kestra's ``AbstractScheduler``): Schedule and ScheduleOnDates triggers, recovery after
downtime, backfills.

Each schedulable trigger has a persisted context (``store.save_trigger``, Kestra's ``Trigger`` record):
``date`` (last schedule date handled), ``nextExecutionDate``, ``disabled``, ``backfill``, ``executionId``…
The loop wakes at the earliest ``nextExecutionDate`` (or every ``poll`` seconds to notice new flows) and,
for each due date, evaluates the trigger's conditions on ``trigger.date`` and creates an execution with
variables ``trigger.date``, ``trigger.next`` and ``trigger.previous`` (ISO offset date-times in the
trigger's time zone) and the trigger's rendered ``inputs`` and ``labels``.

Exactly once across restarts: before creating the execution of a date the context is saved with
``pendingDate``; after, with the date done and the next one. A context found with a ``pendingDate`` at
start-up is settled by looking for an execution of that trigger and date in the store, so a crash at any
point neither skips nor doubles a run.

Recovery (``recoverMissedSchedules``, server default ALL) applies to the dates missed while the server
was down, i.e. dates due at the first evaluation after start: ALL runs each of them, LAST only the most
recent, NONE none (the next date after now is kept).

Time: the engine's clock (``engine.clock``, see falconet/runtime/kernel/clock.py) gives the current date
and the trio deadline of a due date, so under a ``VirtualClock`` trio's ``autojump_clock`` moves schedules
too.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone, tzinfo
from typing import TYPE_CHECKING, Any, Sequence
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import trio

from falconet.runtime.kernel.errors import IllegalArgument, NotFound
from falconet.runtime.flow.model import Flow, TriggerSpec
from falconet.runtime.kernel.execution import format_instant, parse_instant
from falconet.runtime.store.base import ExecutionQuery
from falconet.runtime.orchestration.context import ConditionContext
from falconet.sdk.plugin import CRON, DATES, Trigger

if TYPE_CHECKING:  # pragma: no cover
    from falconet.runtime.kernel.actors import ExecutionActor
    from falconet.runtime.kernel.services import Kernel

log = logging.getLogger("falconet.orchestration.scheduler")

NICKNAMES = {"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
             "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *"}
#: at most this many executions are created per trigger per wake-up (backfills and ALL recovery continue
#: at the next wake-up, which is immediate)
BURST = 100


#: defaults of new schedulers: the longest sleep between evaluations in seconds (tests lengthen it)
DEFAULTS: dict[str, Any] = {"poll": 1.0}


def is_schedulable(spec: TriggerSpec) -> bool:
    return issubclass(spec.cls, Trigger) and spec.cls.kind in (CRON, DATES)


#### Dates ##################################################################################################

def zone_of(spec: TriggerSpec, default: tzinfo = timezone.utc) -> tzinfo:
    name = spec.props.get("timezone")
    if not name:
        return default
    try:
        return ZoneInfo(str(name))
    except (ZoneInfoNotFoundError, ValueError):
        raise IllegalArgument(f"Invalid timezone '{name}'") from None


def format_zoned(t: datetime) -> str:
    """``2025-01-01T10:00:00+01:00`` (``Z`` for UTC), seconds precision."""
    s = t.replace(microsecond=0).isoformat()
    return s[:-6] + "Z" if s.endswith("+00:00") else s


class Cron:
    """A cron expression of a Schedule trigger: 5 fields, 6 with ``withSeconds`` (seconds first), or a
    nickname; dates computed in ``zone``."""

    def __init__(self, expression: str, zone: tzinfo, with_seconds: bool = False):
        expr = NICKNAMES.get(expression.strip().lower(), expression.strip())
        fields = expr.split()
        if len(fields) != (6 if with_seconds else 5):
            raise IllegalArgument(f"Invalid cron expression '{expression}': expected "
                                  f"{6 if with_seconds else 5} fields")
        from croniter import croniter  # imported on the first Schedule trigger: a plain server skips it

        if not croniter.is_valid(expr, second_at_beginning=with_seconds):
            raise IllegalArgument(f"Invalid cron expression '{expression}'")
        self.expr, self.zone, self.with_seconds = expr, zone, with_seconds

    def next_after(self, t: datetime) -> datetime:
        from croniter import croniter

        it = croniter(self.expr, t.astimezone(self.zone), second_at_beginning=self.with_seconds)
        return it.get_next(datetime).astimezone(timezone.utc)

    def previous_before(self, t: datetime) -> datetime:
        from croniter import croniter

        it = croniter(self.expr, t.astimezone(self.zone), second_at_beginning=self.with_seconds)
        return it.get_prev(datetime).astimezone(timezone.utc)


class OnDates:
    """The sorted ``dates`` of a ScheduleOnDates trigger (naive dates are in the trigger's zone)."""

    def __init__(self, dates: list[datetime]):
        self.dates = sorted(dates)

    def next_after(self, t: datetime) -> datetime | None:
        return next((d for d in self.dates if d > t), None)

    def previous_before(self, t: datetime) -> datetime | None:
        return next((d for d in reversed(self.dates) if d < t), None)


def schedule_of(engine: "Kernel[ExecutionActor]", flow: Flow, spec: TriggerSpec) -> Cron | OnDates:
    zone = zone_of(spec)
    if issubclass(spec.cls, Trigger) and spec.cls.kind == CRON:
        return Cron(str(spec.props.get("cron") or ""), zone, bool(spec.props.get("withSeconds")))
    raw = spec.props.get("dates") or []
    if isinstance(raw, str):
        raw = engine.renderer.render_value_typed(raw, _flow_vars(engine, flow))
    dates = []
    for d in raw if isinstance(raw, list) else [raw]:
        text = str(engine.renderer.render_value(d, _flow_vars(engine, flow)) if isinstance(d, str) else d)
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise IllegalArgument(f"Invalid date '{text}' in ScheduleOnDates") from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=zone)
        dates.append(parsed.astimezone(timezone.utc).replace(microsecond=0))
    return OnDates(dates)


def _flow_vars(engine: "Kernel[ExecutionActor]", flow: Flow) -> dict[str, Any]:
    return {"flow": {"id": flow.id, "namespace": flow.namespace, "revision": flow.revision},
            "envs": engine.envs, "globals": engine.config.globals}


#### Trigger contexts #######################################################################################

def new_context(flow: Flow, spec: TriggerSpec) -> dict[str, Any]:
    return {"namespace": flow.namespace, "flowId": flow.id, "triggerId": spec.id, "flowRevision": flow.revision,
            "date": None, "nextExecutionDate": None, "backfill": None, "stopAfter": list(spec.stop_after) or None,
            "disabled": False, "executionId": None, "updatedDate": None, "evaluateRunningDate": None,
            "workerId": None}


async def load_context(engine: "Kernel[ExecutionActor]", flow: Flow, spec: TriggerSpec) -> dict[str, Any]:
    """The stored context of a trigger, or a fresh one (not saved)."""
    ctx = await engine.store.get_trigger(flow.namespace, flow.id, spec.id)
    return dict(ctx) if ctx is not None else new_context(flow, spec)


#### The scheduler ##########################################################################################

class Scheduler:
    """Evaluates schedulable triggers; one per engine (``engine.orchestration.scheduler``)."""

    def __init__(self, engine: "Kernel[ExecutionActor]", *, poll: float | None = None):
        self.engine = engine
        self.clock = engine.clock
        self.poll = poll if poll is not None else DEFAULTS["poll"]
        self._wake = trio.Event()
        self._started: set[tuple[str, str, str]] = set()  # triggers evaluated since start (recovery done)
        self.created = 0

    def wake(self) -> None:
        """Re-evaluate now (after a flow or trigger context changed)."""
        self._wake.set()

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Evaluate due triggers, then sleep until the next due date, ``poll`` seconds or :meth:`wake`."""
        task_status.started()
        while True:
            try:
                due = await self.tick()
            except Exception:  # a store failure: try again at the next poll, never kill the engine
                log.exception("scheduler evaluation failed")
                due = None
            deadline = trio.current_time() + self.poll
            if due is not None:
                deadline = min(deadline, self.clock.deadline_for(due))
            if deadline > trio.current_time():
                self._wake = trio.Event()
                with trio.move_on_at(deadline):
                    await self._wake.wait()

    async def schedulable(self) -> list[tuple[Flow, TriggerSpec]]:
        out: list[tuple[Flow, TriggerSpec]] = []
        for (namespace, flow_id), revision in list(self.engine.flows.latest().items()):
            flow = await self.engine.get_flow(namespace, flow_id, revision, skip_invalid=True)
            if flow is None or flow.disabled:
                continue
            out.extend((flow, t) for t in flow.triggers if is_schedulable(t) and not t.disabled)
        return out

    async def tick(self) -> datetime | None:
        """One evaluation of every schedulable trigger; returns the earliest next date (None: none)."""
        earliest: datetime | None = None
        for flow, spec in await self.schedulable():
            try:
                nxt = await self.evaluate(flow, spec)
            except (IllegalArgument, NotFound) as exc:
                log.warning("trigger %s.%s.%s: %s", flow.namespace, flow.id, spec.id, exc)
                continue
            if nxt is not None and (earliest is None or nxt < earliest):
                earliest = nxt
        return earliest

    async def evaluate(self, flow: Flow, spec: TriggerSpec) -> datetime | None:
        """Handle the due dates of one trigger; returns its next date."""
        now = self.clock.now()
        sched = schedule_of(self.engine, flow, spec)
        key = (flow.namespace, flow.id, spec.id)
        ctx = await load_context(self.engine, flow, spec)
        if ctx.get("pendingDate"):
            await self._settle_pending(flow, spec, sched, ctx)
        if ctx.get("disabled"):
            self._started.add(key)
            return None
        backfill = ctx.get("backfill")
        if backfill and not backfill.get("paused"):
            return await self._run_backfill(flow, spec, sched, ctx, now)
        nxt = parse_instant(ctx["nextExecutionDate"]) if ctx.get("nextExecutionDate") else None
        if nxt is None:  # first evaluation of this trigger: nothing was missed
            nxt = sched.next_after(now - timedelta(seconds=1))
            ctx["nextExecutionDate"] = format_instant(nxt) if nxt else None
            ctx["updatedDate"] = format_instant(now)
            await self.engine.store.save_trigger(ctx)
            self._started.add(key)
        if key not in self._started:
            self._started.add(key)
            nxt = await self._recover(flow, spec, sched, ctx, nxt, now)
        late = spec.props.get("lateMaximumDelay")
        late_delta = None
        if late:
            from falconet.runtime.expr.durations import parse_duration

            late_delta = parse_duration(str(late))
        burst = 0
        while nxt is not None and nxt <= now and burst < BURST:
            burst += 1
            skip = late_delta is not None and now - nxt > late_delta
            if not skip:
                await self._fire(flow, spec, sched, ctx, nxt)
            nxt = sched.next_after(nxt)
            ctx["nextExecutionDate"] = format_instant(nxt) if nxt else None
            ctx["updatedDate"] = format_instant(now)
            await self.engine.store.save_trigger(ctx)
        return nxt

    async def _recover(self, flow: Flow, spec: TriggerSpec, sched: Cron | OnDates, ctx: dict[str, Any],
                       nxt: datetime | None, now: datetime) -> datetime | None:
        """Dates missed while the server was down: ALL keeps them, LAST keeps the latest, NONE skips them."""
        if nxt is None or nxt > now:
            return nxt
        mode = str(spec.props.get("recoverMissedSchedules") or "ALL").upper()
        if mode == "ALL":
            return nxt
        last = sched.previous_before(now + timedelta(seconds=1))
        target: datetime | None
        if mode == "LAST":
            target = last if last is not None and last >= nxt else nxt
        else:
            target = sched.next_after(now)
        if target is not None and target != nxt:
            log.info("trigger %s.%s.%s: skipping missed schedules before %s (%s)", flow.namespace, flow.id,
                     spec.id, format_instant(target), mode)
        ctx["nextExecutionDate"] = format_instant(target) if target else None
        ctx["updatedDate"] = format_instant(now)
        await self.engine.store.save_trigger(ctx)
        return target

    #### firing ##########################################################################################

    def trigger_variables(self, spec: TriggerSpec, sched: Cron | OnDates, date: datetime) -> dict[str, Any]:
        zone = zone_of(spec)
        out: dict[str, Any] = {"date": format_zoned(date.astimezone(zone))}
        nxt = sched.next_after(date)
        prev = sched.previous_before(date)
        if nxt is not None:
            out["next"] = format_zoned(nxt.astimezone(zone))
        if prev is not None:
            out["previous"] = format_zoned(prev.astimezone(zone))
        return out

    async def _fire(self, flow: Flow, spec: TriggerSpec, sched: Cron | OnDates, ctx: dict[str, Any],
                    date: datetime, *, extra_inputs: dict[str, Any] | None = None,
                    extra_labels: Sequence[tuple[str, str]] = ()) -> str | None:
        """Create the execution of one schedule date (conditions permitting); returns its id."""
        tvars = self.trigger_variables(spec, sched, date)
        variables = dict(_flow_vars(self.engine, flow), trigger=tvars)
        cctx = ConditionContext(self.engine, flow, variables, date=date)
        conditions = list(spec.conditions) + list(spec.props.get("scheduleConditions") or [])
        if not all(cctx.test(c) for c in conditions):
            ctx["date"] = format_instant(date)
            return None
        ctx["pendingDate"] = format_instant(date)
        await self.engine.store.save_trigger(ctx)
        inputs = self.engine.renderer.render_value_typed(spec.props.get("inputs") or {}, variables)
        inputs.update(extra_inputs or {})
        trigger = {"id": spec.id, "type": spec.type, "variables": tvars}
        try:
            # extra labels (backfill's system.backfill) are set by the engine itself, not checked as user labels
            created = await self.engine.create_execution(flow.namespace, flow.id, inputs=inputs, trigger=trigger,
                                                         labels=list(spec.labels), parent_labels=list(extra_labels))
        except Exception as exc:  # invalid inputs etc.: this date is lost, the schedule goes on
            log.warning("trigger %s.%s.%s: cannot create the execution of %s: %s", flow.namespace, flow.id,
                        spec.id, format_instant(date), exc)
            ctx.pop("pendingDate", None)
            ctx["date"] = format_instant(date)
            return None
        self.created += 1
        ctx.pop("pendingDate", None)
        ctx.update(date=format_instant(date), executionId=created["id"])
        return str(created["id"])

    async def _settle_pending(self, flow: Flow, spec: TriggerSpec, sched: Cron | OnDates,
                              ctx: dict[str, Any]) -> None:
        """A crash happened while creating the execution of ``pendingDate``: create it unless it exists."""
        pending = parse_instant(ctx["pendingDate"])
        wanted = self.trigger_variables(spec, sched, pending)["date"]
        page = 1
        while True:
            rows, total = await self.engine.store.search_executions(ExecutionQuery(
                namespace=flow.namespace, flow_id=flow.id, page=page, size=200))
            for doc in rows:
                trig = doc.get("trigger") or {}
                if trig.get("id") == spec.id and (trig.get("variables") or {}).get("date") == wanted:
                    ctx.pop("pendingDate", None)
                    ctx.update(date=format_instant(pending), executionId=doc["id"])
                    if not ctx.get("backfill"):
                        nxt = sched.next_after(pending)
                        ctx["nextExecutionDate"] = format_instant(nxt) if nxt else None
                    await self.engine.store.save_trigger(ctx)
                    return
            if page * 200 >= total:
                break
            page += 1
        ctx.pop("pendingDate", None)
        if not ctx.get("backfill"):
            ctx["nextExecutionDate"] = format_instant(pending)
        await self.engine.store.save_trigger(ctx)

    #### backfills #######################################################################################

    async def _run_backfill(self, flow: Flow, spec: TriggerSpec, sched: Cron | OnDates, ctx: dict[str, Any],
                            now: datetime) -> datetime | None:
        bf = ctx["backfill"]
        current = parse_instant(bf["currentDate"])
        end = parse_instant(bf["end"]) if bf.get("end") else now
        end = min(end, now)
        labels = [("system.backfill", "true")]
        raw_labels = bf.get("labels") or []
        labels += [(lb["key"], lb["value"]) for lb in raw_labels] if isinstance(raw_labels, list) \
            else [(str(k), str(v)) for k, v in raw_labels.items()]
        burst = 0
        date = current if _is_schedule_date(sched, current) else sched.next_after(current)
        while date is not None and date <= end and burst < BURST:
            burst += 1
            await self._fire(flow, spec, sched, ctx, date, extra_inputs=bf.get("inputs") or {}, extra_labels=labels)
            nxt = sched.next_after(date)
            bf["currentDate"] = format_instant(nxt) if nxt else format_instant(end + timedelta(seconds=1))
            date = nxt
            ctx["updatedDate"] = format_instant(now)
            await self.engine.store.save_trigger(ctx)
        if date is None or date > end:
            previous = bf.get("previousNextExecutionDate")
            ctx["backfill"] = None
            ctx["nextExecutionDate"] = previous or ctx.get("nextExecutionDate")
            await self.engine.store.save_trigger(ctx)
            return parse_instant(ctx["nextExecutionDate"]) if ctx.get("nextExecutionDate") else None
        return now  # more backfill dates: come back at once

    async def set_backfill(self, namespace: str, flow_id: str, trigger_id: str, *, start: datetime,
                           end: datetime | None = None, inputs: dict[str, Any] | None = None,
                           labels: Any = None) -> dict[str, Any]:
        """Start a backfill (Kestra's ``PUT /triggers`` with ``backfill``); returns the trigger context."""
        flow, spec = await self._spec(namespace, flow_id, trigger_id)
        if end is not None and end < start:
            raise IllegalArgument("Backfill end date must be after its start date")
        ctx = await load_context(self.engine, flow, spec)
        if ctx.get("backfill"):
            raise IllegalArgument("A backfill is already running for this trigger")
        ctx["backfill"] = {"start": format_instant(start), "end": format_instant(end) if end else None,
                           "currentDate": format_instant(start), "paused": False, "inputs": inputs or {},
                           "labels": labels or [], "previousNextExecutionDate": ctx.get("nextExecutionDate")}
        await self.engine.store.save_trigger(ctx)
        self.wake()
        return ctx

    async def pause_backfill(self, namespace: str, flow_id: str, trigger_id: str,
                             paused: bool = True) -> dict[str, Any]:
        flow, spec = await self._spec(namespace, flow_id, trigger_id)
        ctx = await load_context(self.engine, flow, spec)
        if not ctx.get("backfill"):
            raise IllegalArgument("No backfill for this trigger")
        ctx["backfill"]["paused"] = paused
        await self.engine.store.save_trigger(ctx)
        self.wake()
        return ctx

    async def delete_backfill(self, namespace: str, flow_id: str, trigger_id: str) -> dict[str, Any]:
        flow, spec = await self._spec(namespace, flow_id, trigger_id)
        ctx = await load_context(self.engine, flow, spec)
        bf = ctx.get("backfill")
        if not bf:
            raise IllegalArgument("No backfill for this trigger")
        ctx["backfill"] = None
        ctx["nextExecutionDate"] = bf.get("previousNextExecutionDate") or ctx.get("nextExecutionDate")
        await self.engine.store.save_trigger(ctx)
        self.wake()
        return ctx

    async def set_disabled(self, namespace: str, flow_id: str, trigger_id: str, disabled: bool) -> dict[str, Any]:
        """Disable or re-enable a trigger; re-enabling restarts from the next date after now."""
        flow, spec = await self._spec(namespace, flow_id, trigger_id)
        ctx = await load_context(self.engine, flow, spec)
        ctx["disabled"] = disabled
        if not disabled and is_schedulable(spec):
            nxt = schedule_of(self.engine, flow, spec).next_after(self.clock.now())
            ctx["nextExecutionDate"] = format_instant(nxt) if nxt else None
        await self.engine.store.save_trigger(ctx)
        self.wake()
        return ctx

    async def _spec(self, namespace: str, flow_id: str, trigger_id: str) -> tuple[Flow, TriggerSpec]:
        flow = await self.engine.get_flow(namespace, flow_id)
        if flow is None:
            raise NotFound(f"Flow '{namespace}.{flow_id}' not found")
        spec = next((t for t in flow.triggers if t.id == trigger_id), None)
        if spec is None:
            raise NotFound(f"Trigger '{trigger_id}' not found in flow '{namespace}.{flow_id}'")
        return flow, spec


def _is_schedule_date(sched: Cron | OnDates, t: datetime) -> bool:
    prev = sched.next_after(t - timedelta(seconds=1))
    return prev == t


__all__ = ["Scheduler", "Cron", "OnDates", "load_context", "new_context", "format_zoned"]
