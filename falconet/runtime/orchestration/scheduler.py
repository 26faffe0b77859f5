"""The scheduler (Kestra's ``AbstractScheduler``): Schedule and ScheduleOnDates triggers, recovery after
downtime, backfills.

Each schedulable trigger has a persisted context (``store.save_trigger``, Kestra's ``Trigger`` record):
``date`` (last schedule date handled), ``nextExecutionDate``, ``disabled``, ``backfill``, ``executionId``…
The loop wakes at the earliest ``nextExecutionDate`` (or every ``poll`` seconds to notice new flows) and,
for each due date, evaluates the trigger's conditions on ``trigger.date`` and creates an execution with
variables ``trigger.date``, ``trigger.next`` and ``trigger.previous`` (ISO offset date-times in the
trigger's time zone) and the trigger's rendered ``inputs`` and ``labels``.

Exactly once across restarts and servers: every write of a context is a compare-and-set against the
version read (``store.swap_trigger``). Before creating the execution of a date the context is claimed —
saved with ``pendingDate`` and ``evaluateRunningDate`` —, after, saved with the date done and the next one.
Every server of a cluster evaluates every trigger, but only the one whose claim is stored creates the
execution; the others read the context again. A ``pendingDate`` found by a single server, or by a cluster
server once its claim is older than ``claim`` seconds (the claiming server died; an unlock through the API
drops the claim at once), is settled by looking for an execution of that trigger and date in the store, so a
crash at any point neither skips nor doubles a run. Writes through the API (disable, backfills, unlock…) go
through :func:`update_context`, a compare-and-set loop too.

Recovery (``recoverMissedSchedules``, server default ALL) applies to the dates missed while the server
was down, i.e. dates due at the first evaluation after start: ALL runs each of them, LAST only the most
recent, NONE none (the next date after now is kept). On a shared store (a cluster) a date counts as missed
only once it is ``missed`` seconds overdue: a server starting next to live ones must not skip the tick they
are about to fire; a schedule whose firing server died goes on from the next server's evaluation.

Time: the engine's clock (``engine.clock``, see falconet/runtime/kernel/clock.py) gives the current date
and the trio deadline of a due date, so under a ``VirtualClock`` trio's ``autojump_clock`` moves schedules
too.
"""
from __future__ import annotations

import copy
import logging
from datetime import datetime, timedelta, timezone, tzinfo
from typing import TYPE_CHECKING, Any, Callable, Sequence
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import trio

from falconet.runtime.kernel.errors import IllegalArgument, IllegalState, NotFound
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


#: defaults of new schedulers, in seconds: the longest sleep between evaluations (tests lengthen it); the age
#: after which another cluster server's claim of a date counts as abandoned; how overdue a date must be at a
#: cluster server's first evaluation to count as missed
DEFAULTS: dict[str, Any] = {"poll": 1.0, "claim": 30.0, "missed": 10.0}
#: compare-and-set attempts of one evaluation or one context update before giving up until the next one
ATTEMPTS = 20


class Conflict(Exception):
    """Another writer (a server, an API call) changed a trigger context since it was read."""


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


async def update_context(engine: "Kernel[ExecutionActor]", key: tuple[str, str, str],
                         change: Callable[[dict[str, Any]], None],
                         default: Callable[[], dict[str, Any]] | None = None) -> dict[str, Any]:
    """Apply ``change`` to the stored context of ``key`` (``default()`` when none is stored; NotFound without
    a default) with a compare-and-set, read again and re-applied while another writer got there first;
    returns the context stored. ``change`` may raise (IllegalArgument…): nothing is written then."""
    for _ in range(ATTEMPTS):
        stored = await engine.store.get_trigger(*key)
        if stored is None and default is None:
            raise NotFound(f"Trigger '{'.'.join(key)}' not found")
        ctx = copy.deepcopy(stored) if stored is not None else default()  # type: ignore[misc]
        change(ctx)
        if await engine.store.swap_trigger(stored, ctx):
            return ctx
    raise IllegalState(f"Trigger '{'.'.join(key)}' is being changed by others; try again")


#### The scheduler ##########################################################################################

class Scheduler:
    """Evaluates schedulable triggers; one per engine (``engine.orchestration.scheduler``)."""

    def __init__(self, engine: "Kernel[ExecutionActor]", *, poll: float | None = None):
        self.engine = engine
        self.clock = engine.clock
        self.poll = poll if poll is not None else DEFAULTS["poll"]
        self._wake = trio.Event()
        self.claim = DEFAULTS["claim"]
        self.missed = DEFAULTS["missed"]
        self._started: set[tuple[str, str, str]] = set()  # triggers evaluated since start (recovery done)
        self._stored: dict[tuple[str, str, str], dict[str, Any] | None] = {}  # contexts as last read/written
        self._fired: dict[tuple[str, str, str], tuple[str, str]] = {}  # claimed date -> execution, not yet saved
        self.created = 0
        self.conflicts = 0  # evaluations that lost a compare-and-set (another server or an API call)

    def wake(self) -> None:
        """Re-evaluate now (after a flow or trigger context changed)."""
        self._wake.set()

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Evaluate due triggers, then sleep until the next due date, ``poll`` seconds or :meth:`wake`."""
        task_status.started()
        while True:
            self._wake = trio.Event()  # before the tick: a wake during it (a flow created meanwhile) is kept
            try:
                due = await self.tick()
            except Exception:  # a store failure: try again at the next poll, never kill the engine
                log.exception("scheduler evaluation failed")
                due = None
            deadline = trio.current_time() + self.poll
            if due is not None:
                deadline = min(deadline, self.clock.deadline_for(due))
            if deadline > trio.current_time():
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
        if self.engine.store.shared:  # flows created, changed or deleted through other servers
            await self.engine.flows.refresh()
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
        for _ in range(ATTEMPTS):
            try:
                return await self._evaluate(flow, spec)
            except Conflict:  # another server fired or changed it: read it again
                self.conflicts += 1
        return self.clock.now() + timedelta(seconds=self.poll)

    async def _load(self, flow: Flow, spec: TriggerSpec) -> dict[str, Any]:
        key = (flow.namespace, flow.id, spec.id)
        stored = await self.engine.store.get_trigger(*key)
        self._stored[key] = stored
        return copy.deepcopy(stored) if stored is not None else new_context(flow, spec)

    async def _save(self, ctx: dict[str, Any]) -> None:
        """Compare-and-set ``ctx`` against the version this scheduler read or wrote last; Conflict if changed."""
        key = (ctx["namespace"], ctx["flowId"], ctx["triggerId"])
        if not await self.engine.store.swap_trigger(self._stored.get(key), ctx):
            self._stored.pop(key, None)
            raise Conflict(key)
        self._stored[key] = copy.deepcopy(ctx)

    def _claimed_elsewhere(self, ctx: dict[str, Any]) -> bool:
        """The ``pendingDate`` of ``ctx`` is being fired by another cluster server right now."""
        if not self.engine.store.shared or not ctx.get("evaluateRunningDate"):
            return False
        age = self.clock.now() - parse_instant(ctx["evaluateRunningDate"])
        return age < timedelta(seconds=self.claim)

    async def _evaluate(self, flow: Flow, spec: TriggerSpec) -> datetime | None:
        now = self.clock.now()
        sched = schedule_of(self.engine, flow, spec)
        key = (flow.namespace, flow.id, spec.id)
        ctx = await self._load(flow, spec)
        if ctx.get("pendingDate"):
            if not await self._settle_pending(flow, spec, sched, ctx):
                return now + timedelta(seconds=self.poll)  # another server is firing it: look again soon
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
            await self._save(ctx)
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
            await self._save(ctx)
            self._fired.pop(key, None)
        return nxt

    async def _recover(self, flow: Flow, spec: TriggerSpec, sched: Cron | OnDates, ctx: dict[str, Any],
                       nxt: datetime | None, now: datetime) -> datetime | None:
        """Dates missed while the server was down: ALL keeps them, LAST keeps the latest, NONE skips them."""
        if nxt is None or nxt > now:
            return nxt
        if self.engine.store.shared and now - nxt < timedelta(seconds=self.missed):
            return nxt  # due just now: another live server fires it, it is not missed
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
        await self._save(ctx)
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
        ctx["evaluateRunningDate"] = format_instant(self.clock.now())
        await self._save(ctx)  # the claim: a Conflict here means another server fires this date
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
            ctx.update(date=format_instant(date), evaluateRunningDate=None)
            return None
        self.created += 1
        key = (flow.namespace, flow.id, spec.id)
        self._fired[key] = (format_instant(date), str(created["id"]))
        ctx.pop("pendingDate", None)
        ctx.update(date=format_instant(date), executionId=created["id"], evaluateRunningDate=None)
        return str(created["id"])

    async def _settle_pending(self, flow: Flow, spec: TriggerSpec, sched: Cron | OnDates,
                              ctx: dict[str, Any]) -> bool:
        """Settle the ``pendingDate`` of ``ctx``: a date this scheduler fired (its save lost a race with an API
        call), or one whose creation a crash interrupted — created unless an execution of it exists. False
        (nothing done) while another cluster server's claim is live."""
        key = (flow.namespace, flow.id, spec.id)
        pending = parse_instant(ctx["pendingDate"])
        fired = self._fired.get(key)
        execution_id = fired[1] if fired is not None and fired[0] == ctx["pendingDate"] else None
        if execution_id is None:
            if self._claimed_elsewhere(ctx):
                return False
            execution_id = await self._find_execution(flow, spec, sched, pending)
        ctx.pop("pendingDate", None)
        ctx["evaluateRunningDate"] = None
        bf = ctx.get("backfill")
        if execution_id is not None:
            ctx.update(date=format_instant(pending), executionId=execution_id)
            nxt = sched.next_after(pending)
            if not bf:
                ctx["nextExecutionDate"] = format_instant(nxt) if nxt else None
            elif bf.get("currentDate") == format_instant(pending):
                bf["currentDate"] = format_instant(nxt) if nxt else format_instant(pending + timedelta(seconds=1))
        elif not bf:
            ctx["nextExecutionDate"] = format_instant(pending)
        await self._save(ctx)
        self._fired.pop(key, None)
        return True

    async def _find_execution(self, flow: Flow, spec: TriggerSpec, sched: Cron | OnDates,
                              date: datetime) -> str | None:
        """The id of the stored execution of ``spec`` for schedule ``date``, if any."""
        wanted = self.trigger_variables(spec, sched, date)["date"]
        page = 1
        while True:
            rows, total = await self.engine.store.search_executions(ExecutionQuery(
                namespace=flow.namespace, flow_id=flow.id, page=page, size=200))
            for doc in rows:
                trig = doc.get("trigger") or {}
                if trig.get("id") == spec.id and (trig.get("variables") or {}).get("date") == wanted:
                    return str(doc["id"])
            if page * 200 >= total:
                return None
            page += 1

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
            await self._save(ctx)
            self._fired.pop((flow.namespace, flow.id, spec.id), None)
        if date is None or date > end:
            previous = bf.get("previousNextExecutionDate")
            ctx["backfill"] = None
            ctx["nextExecutionDate"] = previous or ctx.get("nextExecutionDate")
            await self._save(ctx)
            return parse_instant(ctx["nextExecutionDate"]) if ctx.get("nextExecutionDate") else None
        return now  # more backfill dates: come back at once

    async def _update(self, namespace: str, flow_id: str, trigger_id: str,
                      change: Callable[[Flow, TriggerSpec, dict[str, Any]], None]) -> dict[str, Any]:
        """Change a trigger's context through the API (compare-and-set, see :func:`update_context`)."""
        flow, spec = await self._spec(namespace, flow_id, trigger_id)
        ctx = await update_context(self.engine, (flow.namespace, flow.id, spec.id),
                                   lambda c: change(flow, spec, c), lambda: new_context(flow, spec))
        self.wake()
        return ctx

    async def set_backfill(self, namespace: str, flow_id: str, trigger_id: str, *, start: datetime,
                           end: datetime | None = None, inputs: dict[str, Any] | None = None,
                           labels: Any = None) -> dict[str, Any]:
        """Start a backfill (Kestra's ``PUT /triggers`` with ``backfill``); returns the trigger context."""
        if end is not None and end < start:
            raise IllegalArgument("Backfill end date must be after its start date")

        def change(flow: Flow, spec: TriggerSpec, ctx: dict[str, Any]) -> None:
            if ctx.get("backfill"):
                raise IllegalArgument("A backfill is already running for this trigger")
            ctx["backfill"] = {"start": format_instant(start), "end": format_instant(end) if end else None,
                               "currentDate": format_instant(start), "paused": False, "inputs": inputs or {},
                               "labels": labels or [], "previousNextExecutionDate": ctx.get("nextExecutionDate")}

        return await self._update(namespace, flow_id, trigger_id, change)

    async def pause_backfill(self, namespace: str, flow_id: str, trigger_id: str,
                             paused: bool = True) -> dict[str, Any]:
        def change(flow: Flow, spec: TriggerSpec, ctx: dict[str, Any]) -> None:
            if not ctx.get("backfill"):
                raise IllegalArgument("No backfill for this trigger")
            ctx["backfill"]["paused"] = paused

        return await self._update(namespace, flow_id, trigger_id, change)

    async def delete_backfill(self, namespace: str, flow_id: str, trigger_id: str) -> dict[str, Any]:
        def change(flow: Flow, spec: TriggerSpec, ctx: dict[str, Any]) -> None:
            bf = ctx.get("backfill")
            if not bf:
                raise IllegalArgument("No backfill for this trigger")
            ctx["backfill"] = None
            ctx["nextExecutionDate"] = bf.get("previousNextExecutionDate") or ctx.get("nextExecutionDate")

        return await self._update(namespace, flow_id, trigger_id, change)

    async def set_disabled(self, namespace: str, flow_id: str, trigger_id: str, disabled: bool) -> dict[str, Any]:
        """Disable or re-enable a trigger; re-enabling restarts from the next date after now."""
        def change(flow: Flow, spec: TriggerSpec, ctx: dict[str, Any]) -> None:
            ctx["disabled"] = disabled
            if not disabled and is_schedulable(spec):
                nxt = schedule_of(self.engine, flow, spec).next_after(self.clock.now())
                ctx["nextExecutionDate"] = format_instant(nxt) if nxt else None

        return await self._update(namespace, flow_id, trigger_id, change)

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


__all__ = ["Scheduler", "Cron", "OnDates", "update_context", "new_context", "format_zoned"]
