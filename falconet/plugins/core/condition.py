"""Declarations of the core condition types used by triggers and listeners
(``io.kestra.plugin.core.condition``).

One class per type; each carries its evaluation, ``test(props, ctx) -> bool``, where ``ctx`` is a
:class:`falconet.runtime.orchestration.context.ConditionContext` (the upstream execution and its state
for Flow triggers, the schedule date for Schedule triggers, the render variables for both). A condition
that cannot be evaluated in a context (an execution condition on a schedule) raises
:class:`~falconet.runtime.kernel.errors.IllegalArgument`. Aliases:
``io.kestra.core.models.conditions.types.<X>Condition`` and ``io.kestra.plugin.core.condition.<X>Condition``
resolve to ``io.kestra.plugin.core.condition.<X>`` (``VariableCondition``/``ExpressionCondition`` to
``Expression``).
"""
from __future__ import annotations

import re
import textwrap
from datetime import datetime, time, timedelta
from typing import Any

from falconet.plugins.core.trigger import example_flow
from falconet.sdk import (
    ANY, BOOLEAN, CONDITION_MAP, CONDITIONS, DURATION, ENUM, LIST, STRING, Condition, Example, IllegalArgument, Prop,
    register,
)

_PKG = "io.kestra.plugin.core.condition"
_OLD = "io.kestra.core.models.conditions.types"

_STATES = ("CREATED", "RUNNING", "PAUSED", "RESTARTED", "KILLING", "SUCCESS", "WARNING", "FAILED", "KILLED",
           "CANCELLED", "QUEUED", "RETRYING", "RETRIED", "SKIPPED", "BREAKPOINT")
_DAYS = ("MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY")
_DATE = "{{ trigger.date }}"


#: the properties of DateTimeBetween and TimeBetween
_BETWEEN_PROPS = {
    "date": Prop(STRING, default=_DATE),
    "after": Prop(STRING),
    "before": Prop(STRING),
}


#: the flow every condition example starts with; each example adds its ``triggers:`` items
_FLOW = example_flow("{{ trigger.executionId ?? 'scheduled' }}")


def _example(title: str, trigger: str, conditions: str, cron: str | None = None) -> Example:
    """A full example: ``_FLOW`` with the trigger ``trigger`` (a Flow trigger, or a Schedule on ``cron``)
    whose ``conditions:`` list is the YAML ``conditions``, written from column 0."""
    code = _FLOW + f"  - id: {trigger}\n"
    if cron is None:
        code += "    type: io.kestra.plugin.core.trigger.Flow\n"
    else:
        code += f"    type: io.kestra.plugin.core.trigger.Schedule\n    cron: \"{cron}\"\n"
    return Example(title, code + "    conditions:\n" + textwrap.indent(conditions, "      "), full=True)


def _state_in(props: dict[str, Any], state: str) -> bool:
    """``state`` is in the ``in`` property (when set) and not in ``notIn``."""
    allowed, denied = props.get("in"), props.get("notIn") or []
    return (not allowed or state in allowed) and state not in denied


def _upstream(ctx: Any, kind: str) -> Any:
    if ctx.execution is None:
        raise IllegalArgument(f"Condition {kind} needs an execution (Flow trigger or webhook)")
    return ctx.execution


def _date(props: dict[str, Any], ctx: Any) -> datetime:
    """The condition's ``date`` property rendered and parsed (a zoned date-time)."""
    raw = ctx.render(props.get("date") or _DATE)
    try:
        value = datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
    except ValueError:
        raise IllegalArgument(f"Invalid date '{raw}': expected an ISO date-time") from None
    return value


def _day(value: Any) -> int:
    return _DAYS.index(str(value).upper())


def _aliases(name: str, *old_names: str) -> tuple[str, ...]:
    names = (name, *old_names)
    canonical = f"{_PKG}.{name}"
    found = [f"{_OLD}.{n}Condition" for n in names] + [f"{_PKG}.{n}Condition" for n in names]
    return tuple(a for a in dict.fromkeys(found) if a != canonical)


#### Execution conditions (Flow trigger, listeners) #########################################################


@register
class ExecutionStatus(Condition):
    """The upstream execution's state is in ``in`` and not in ``notIn``."""

    type = f"{_PKG}.ExecutionStatus"
    examples = (
        _example("Start when an execution fails or is killed.", "on_failure",
                 "- type: io.kestra.plugin.core.condition.ExecutionStatus\n"
                 "  in:\n"
                 "    - FAILED\n"
                 "    - KILLED\n"),
    )
    aliases = _aliases("ExecutionStatus")
    props = {
        "in": Prop(LIST, dynamic=False, description=f"States among {', '.join(_STATES)}."),
        "notIn": Prop(LIST, dynamic=False),
    }

    def test(self, props: dict[str, Any], ctx: Any) -> bool:
        _upstream(ctx, "ExecutionStatus")
        return _state_in(props, ctx.state.value)


@register
class ExecutionFlow(Condition):
    """The upstream execution belongs to flow ``namespace``/``flowId``."""

    type = f"{_PKG}.ExecutionFlow"
    names_flow = True
    examples = (
        _example("Start when an execution of company.team.upstream ends.", "upstream_done",
                 "- type: io.kestra.plugin.core.condition.ExecutionFlow\n"
                 "  namespace: company.team\n"
                 "  flowId: upstream\n"),
    )
    aliases = _aliases("ExecutionFlow")
    props = {
        "namespace": Prop(STRING, required=True),
        "flowId": Prop(STRING, required=True),
    }

    def test(self, props: dict[str, Any], ctx: Any) -> bool:
        ex = _upstream(ctx, "ExecutionFlow")
        return ex.namespace == ctx.render(props.get("namespace")) and ex.flow_id == ctx.render(props.get("flowId"))


@register
class ExecutionNamespace(Condition):
    """The upstream execution's namespace equals / starts with / ends with ``namespace``."""

    type = f"{_PKG}.ExecutionNamespace"
    examples = (
        _example("Start when any execution of the company namespace (or below) ends.", "company_done",
                 "- type: io.kestra.plugin.core.condition.ExecutionNamespace\n"
                 "  namespace: company\n"
                 "  comparison: PREFIX\n"),
    )
    aliases = _aliases("ExecutionNamespace")
    props = {
        "namespace": Prop(STRING, required=True),
        "comparison": Prop(ENUM, values=("EQUALS", "PREFIX", "SUFFIX"), dynamic=False),
        "prefix": Prop(BOOLEAN, default=False, dynamic=False, description="Deprecated: comparison PREFIX."),
    }

    def test(self, props: dict[str, Any], ctx: Any) -> bool:
        ex = _upstream(ctx, "ExecutionNamespace")
        ns = str(ctx.render(props.get("namespace") or ""))
        comparison = str(props.get("comparison") or ("PREFIX" if props.get("prefix") else "EQUALS")).upper()
        if comparison == "PREFIX":
            return bool(ex.namespace.startswith(ns))
        if comparison == "SUFFIX":
            return bool(ex.namespace.endswith(ns))
        return bool(ex.namespace == ns)


@register
class ExecutionLabels(Condition):
    """The upstream execution carries every label of ``labels``."""

    type = f"{_PKG}.ExecutionLabels"
    examples = (
        _example("Start when an execution labelled env: prod ends.", "prod_done",
                 "- type: io.kestra.plugin.core.condition.ExecutionLabels\n"
                 "  labels:\n"
                 "    env: prod\n"),
    )
    aliases = _aliases("ExecutionLabels")
    props = {
        "labels": Prop(ANY, required=True, description="A map or a list of {key, value}."),
    }

    def test(self, props: dict[str, Any], ctx: Any) -> bool:
        ex = _upstream(ctx, "ExecutionLabels")
        wanted = props.get("labels") or {}
        if isinstance(wanted, dict):
            pairs = list(wanted.items())
        elif isinstance(wanted, list):
            pairs = [(x.get("key"), x.get("value")) for x in wanted if isinstance(x, dict)]
        else:
            raise IllegalArgument("ExecutionLabels: labels must be a map or a list of {key, value}")
        have = {lb["key"]: lb["value"] for lb in ex.labels}
        return all(have.get(str(k)) == str(ctx.render(v)) for k, v in pairs)


@register
class ExecutionOutputs(Condition):
    """``expression`` renders truthy against the upstream execution's outputs."""

    type = f"{_PKG}.ExecutionOutputs"
    examples = (
        _example("Start when an ended execution has an output `status` equal to ready.", "ready",
                 "- type: io.kestra.plugin.core.condition.ExecutionOutputs\n"
                 "  expression: \"{{ trigger.outputs.status == 'ready' }}\"\n"),
    )
    aliases = _aliases("ExecutionOutputs")
    props = {
        "expression": Prop(STRING, required=True),
    }

    def test(self, props: dict[str, Any], ctx: Any) -> bool:
        ex = _upstream(ctx, "ExecutionOutputs")
        if not ex.outputs:
            return False
        return ctx.truthy(props.get("expression"))


@register
class Expression(Condition):
    """``expression`` renders truthy."""

    type = f"{_PKG}.Expression"
    examples = (
        _example("Start when an expression on the ended execution holds.", "big_flows",
                 "- type: io.kestra.plugin.core.condition.Expression\n"
                 "  expression: \"{{ trigger.flowId == 'big' }}\"\n"),
    )
    aliases = _aliases("Expression", "Variable")
    props = {
        "expression": Prop(STRING, required=True),
    }

    def test(self, props: dict[str, Any], ctx: Any) -> bool:
        return ctx.truthy(props.get("expression"))


@register
class HasRetryAttempt(Condition):
    """The upstream execution has a task run that was retried (in the given states)."""

    type = f"{_PKG}.HasRetryAttempt"
    examples = (
        _example("Start when an execution ended after retrying a task.", "retried",
                 "- type: io.kestra.plugin.core.condition.HasRetryAttempt\n"
                 "  in:\n"
                 "    - SUCCESS\n"),
    )
    aliases = _aliases("HasRetryAttempt")
    props = {
        "in": Prop(LIST, dynamic=False),
        "notIn": Prop(LIST, dynamic=False),
    }

    def test(self, props: dict[str, Any], ctx: Any) -> bool:
        ex = _upstream(ctx, "HasRetryAttempt")
        return any(len(tr.attempts) > 1 and any(_state_in(props, a.state.current.value) for a in tr.attempts)
                   for tr in ex.task_run_list)


#### Combinators ############################################################################################


@register
class Not(Condition):
    """None of ``conditions`` holds."""

    type = f"{_PKG}.Not"
    examples = (
        _example("Run every day except on weekends.", "schedule",
                 "- type: io.kestra.plugin.core.condition.Not\n"
                 "  conditions:\n"
                 "    - type: io.kestra.plugin.core.condition.Weekend\n", cron="0 9 * * *"),
    )
    aliases = _aliases("Not")
    props = {
        "conditions": Prop(CONDITIONS, required=True, dynamic=False),
    }

    def test(self, props: dict[str, Any], ctx: Any) -> bool:
        return not any(ctx.test(c) for c in props.get("conditions") or [])


@register
class Or(Condition):
    """At least one of ``conditions`` holds."""

    type = f"{_PKG}.Or"
    examples = (
        _example("Run on Mondays or Fridays.", "schedule",
                 "- type: io.kestra.plugin.core.condition.Or\n"
                 "  conditions:\n"
                 "    - type: io.kestra.plugin.core.condition.DayWeek\n"
                 "      dayOfWeek: MONDAY\n"
                 "    - type: io.kestra.plugin.core.condition.DayWeek\n"
                 "      dayOfWeek: FRIDAY\n", cron="0 9 * * *"),
    )
    aliases = _aliases("Or")
    props = {
        "conditions": Prop(CONDITIONS, required=True, dynamic=False),
    }

    def test(self, props: dict[str, Any], ctx: Any) -> bool:
        return any(ctx.test(c) for c in props.get("conditions") or [])


@register
class MultipleCondition(Condition):
    """Every named sub-condition was met by some execution within ``window`` (deprecated for preconditions)."""

    type = f"{_PKG}.MultipleCondition"
    multiple = True
    examples = (
        _example("Start once both upstream flows succeeded within a day.", "both_done",
                 "- type: io.kestra.plugin.core.condition.ExecutionStatus\n"
                 "  in:\n"
                 "    - SUCCESS\n"
                 "- id: both\n"
                 "  type: io.kestra.plugin.core.condition.MultipleCondition\n"
                 "  window: P1D\n"
                 "  conditions:\n"
                 "    first:\n"
                 "      type: io.kestra.plugin.core.condition.ExecutionFlow\n"
                 "      namespace: company.team\n"
                 "      flowId: first\n"
                 "    second:\n"
                 "      type: io.kestra.plugin.core.condition.ExecutionFlow\n"
                 "      namespace: company.team\n"
                 "      flowId: second\n"),
    )
    aliases = _aliases("Multiple")
    props = {
        "id": Prop(STRING, required=True, dynamic=False),
        "window": Prop(DURATION, default="P1D", dynamic=False),
        "windowAdvance": Prop(DURATION, default="P0D", dynamic=False),
        "conditions": Prop(CONDITION_MAP, required=True, dynamic=False),
        "resetOnSuccess": Prop(BOOLEAN, default=True, dynamic=False),
    }

    def matched(self, props: dict[str, Any], ctx: Any) -> list[str]:
        """Names of the sub-conditions this execution satisfies (the window is kept by the caller)."""
        return [name for name, cond in (props.get("conditions") or {}).items() if ctx.test(cond)]

    def test(self, props: dict[str, Any], ctx: Any) -> bool:
        """Without window storage: every sub-condition holds for this one execution."""
        conds = props.get("conditions") or {}
        return len(self.matched(props, ctx)) == len(conds)


#### Schedule conditions (evaluated on the schedule date) ###################################################


@register
class DayWeek(Condition):
    """``date`` falls on ``dayOfWeek``."""

    type = f"{_PKG}.DayWeek"
    examples = (
        _example("Run only on Mondays.", "schedule",
                 "- type: io.kestra.plugin.core.condition.DayWeek\n"
                 "  dayOfWeek: MONDAY\n", cron="0 9 * * *"),
    )
    aliases = _aliases("DayWeek")
    props = {
        "date": Prop(STRING, default=_DATE),
        "dayOfWeek": Prop(ENUM, required=True, values=_DAYS, dynamic=False),
    }

    def test(self, props: dict[str, Any], ctx: Any) -> bool:
        return _date(props, ctx).weekday() == _day(props.get("dayOfWeek"))


@register
class DayWeekInMonth(Condition):
    """``date`` is the ``dayInMonth`` (FIRST…FOURTH, LAST) ``dayOfWeek`` of its month."""

    type = f"{_PKG}.DayWeekInMonth"
    examples = (
        _example("Run only on the first Monday of each month.", "schedule",
                 "- type: io.kestra.plugin.core.condition.DayWeekInMonth\n"
                 "  dayOfWeek: MONDAY\n"
                 "  dayInMonth: FIRST\n", cron="0 9 * * *"),
    )
    aliases = _aliases("DayWeekInMonth")
    props = {
        "date": Prop(STRING, default=_DATE),
        "dayOfWeek": Prop(ENUM, required=True, values=_DAYS, dynamic=False),
        "dayInMonth": Prop(ENUM, required=True, values=("FIRST", "SECOND", "THIRD", "FOURTH", "LAST"),
                           dynamic=False),
    }

    def test(self, props: dict[str, Any], ctx: Any) -> bool:
        d = _date(props, ctx)
        if d.weekday() != _day(props.get("dayOfWeek")):
            return False
        which = str(props.get("dayInMonth")).upper()
        if which == "LAST":
            return (d + timedelta(days=7)).month != d.month
        return (d.day - 1) // 7 == ("FIRST", "SECOND", "THIRD", "FOURTH").index(which)


@register
class DateTimeBetween(Condition):
    """``date`` is after ``after`` and before ``before`` (zoned date-times; either may be absent)."""

    type = f"{_PKG}.DateTimeBetween"
    examples = (
        _example("Run on schedule only within a date window.", "schedule",
                 "- type: io.kestra.plugin.core.condition.DateTimeBetween\n"
                 "  after: \"2024-01-01T00:00:00Z\"\n"
                 "  before: \"2024-12-31T23:59:59Z\"\n", cron="0 * * * *"),
    )
    aliases = _aliases("DateTimeBetween")
    props = _BETWEEN_PROPS

    def test(self, props: dict[str, Any], ctx: Any) -> bool:
        d = _date(props, ctx)
        for name, ok in (("after", lambda b: d > b), ("before", lambda b: d < b)):
            raw = props.get(name)
            if raw is not None:
                bound = datetime.fromisoformat(str(ctx.render(raw)).replace("Z", "+00:00"))
                if bound.tzinfo is None and d.tzinfo is not None:
                    bound = bound.replace(tzinfo=d.tzinfo)
                if not ok(bound):
                    return False
        return True


@register
class TimeBetween(Condition):
    """The time of ``date`` is after ``after`` and before ``before`` (offset times)."""

    type = f"{_PKG}.TimeBetween"
    examples = (
        _example("Run the hourly schedule only during office hours.", "schedule",
                 "- type: io.kestra.plugin.core.condition.TimeBetween\n"
                 "  after: \"09:00:00\"\n"
                 "  before: \"18:00:00\"\n", cron="0 * * * *"),
    )
    aliases = _aliases("TimeBetween")
    props = _BETWEEN_PROPS

    def test(self, props: dict[str, Any], ctx: Any) -> bool:
        d = _date(props, ctx)
        t = _utc_seconds(d.time(), d.utcoffset())
        for name in ("after", "before"):
            raw = props.get(name)
            if raw is None:
                continue
            bound = _parse_time(str(ctx.render(raw)), d)
            if (name == "after" and not t > bound) or (name == "before" and not t < bound):
                return False
        return True


@register
class Weekend(Condition):
    """``date`` is a Saturday or a Sunday."""

    type = f"{_PKG}.Weekend"
    examples = (
        _example("Run only on Saturdays and Sundays.", "schedule",
                 "- type: io.kestra.plugin.core.condition.Weekend\n", cron="0 10 * * *"),
    )
    aliases = _aliases("Weekend")
    props = {
        "date": Prop(STRING, default=_DATE),
    }

    def test(self, props: dict[str, Any], ctx: Any) -> bool:
        return _date(props, ctx).weekday() >= 5


_OFFSET_TIME = re.compile(r"^(\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)(Z|[+-]\d{2}:\d{2})?$")


def _utc_seconds(t: time, offset: timedelta | None) -> float:
    """Seconds after midnight UTC (modulo a day) of a wall time at ``offset``."""
    secs = t.hour * 3600 + t.minute * 60 + t.second + t.microsecond / 1e6
    return (secs - (offset.total_seconds() if offset else 0)) % 86400


def _parse_time(raw: str, ref: datetime) -> float:
    """``10:00:00+02:00`` / ``10:00Z`` / ``10:00`` (then at ``ref``'s offset) as UTC seconds of the day."""
    m = _OFFSET_TIME.match(raw.strip())
    if not m:
        raise IllegalArgument(f"Invalid time '{raw}': expected HH:mm[:ss][offset]")
    base = time.fromisoformat(m.group(1))
    offset = m.group(2)
    if offset is None:
        return _utc_seconds(base, ref.utcoffset())
    if offset == "Z":
        return _utc_seconds(base, None)
    sign = -1 if offset[0] == "-" else 1
    hours, minutes = offset[1:].split(":")
    return _utc_seconds(base, sign * timedelta(hours=int(hours), minutes=int(minutes)))
