"""Declarations of the core condition types used by triggers and listeners (reference §5.1, §5.2, §4.6).

One class per type, so the evaluation another engineer adds lives next to the declaration. Aliases:
``io.kestra.core.models.conditions.types.<X>Condition`` and ``io.kestra.plugin.core.condition.<X>Condition``
resolve to ``io.kestra.plugin.core.condition.<X>`` (``VariableCondition``/``ExpressionCondition`` to
``Expression``).
"""
from __future__ import annotations

from ...runtime.plugin import (
    ANY, BOOLEAN, CONDITION_MAP, CONDITIONS, DURATION, ENUM, LIST, STRING, Condition, Prop, register,
)

_PKG = "io.kestra.plugin.core.condition"
_OLD = "io.kestra.core.models.conditions.types"

_STATES = ("CREATED", "RUNNING", "PAUSED", "RESTARTED", "KILLING", "SUCCESS", "WARNING", "FAILED", "KILLED",
           "CANCELLED", "QUEUED", "RETRYING", "RETRIED", "SKIPPED", "BREAKPOINT")
_DAYS = ("MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY")
_DATE = "{{ trigger.date }}"


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
    aliases = _aliases("ExecutionStatus")
    props = {
        "in": Prop(LIST, dynamic=False, description=f"States among {', '.join(_STATES)}."),
        "notIn": Prop(LIST, dynamic=False),
    }


@register
class ExecutionFlow(Condition):
    """The upstream execution belongs to flow ``namespace``/``flowId``."""

    type = f"{_PKG}.ExecutionFlow"
    aliases = _aliases("ExecutionFlow")
    props = {
        "namespace": Prop(STRING, required=True),
        "flowId": Prop(STRING, required=True),
    }


@register
class ExecutionNamespace(Condition):
    """The upstream execution's namespace equals / starts with / ends with ``namespace``."""

    type = f"{_PKG}.ExecutionNamespace"
    aliases = _aliases("ExecutionNamespace")
    props = {
        "namespace": Prop(STRING, required=True),
        "comparison": Prop(ENUM, values=("EQUALS", "PREFIX", "SUFFIX"), dynamic=False),
        "prefix": Prop(BOOLEAN, default=False, dynamic=False, description="Deprecated: comparison PREFIX."),
    }


@register
class ExecutionLabels(Condition):
    """The upstream execution carries every label of ``labels``."""

    type = f"{_PKG}.ExecutionLabels"
    aliases = _aliases("ExecutionLabels")
    props = {
        "labels": Prop(ANY, required=True, description="A map or a list of {key, value}."),
    }


@register
class ExecutionOutputs(Condition):
    """``expression`` renders truthy against the upstream execution's outputs."""

    type = f"{_PKG}.ExecutionOutputs"
    aliases = _aliases("ExecutionOutputs")
    props = {
        "expression": Prop(STRING, required=True),
    }


@register
class Expression(Condition):
    """``expression`` renders truthy."""

    type = f"{_PKG}.Expression"
    aliases = _aliases("Expression", "Variable")
    props = {
        "expression": Prop(STRING, required=True),
    }


@register
class HasRetryAttempt(Condition):
    """The upstream execution has a task run that was retried (in the given states)."""

    type = f"{_PKG}.HasRetryAttempt"
    aliases = _aliases("HasRetryAttempt")
    props = {
        "in": Prop(LIST, dynamic=False),
        "notIn": Prop(LIST, dynamic=False),
    }


#### Combinators ############################################################################################


@register
class Not(Condition):
    """None of ``conditions`` holds."""

    type = f"{_PKG}.Not"
    aliases = _aliases("Not")
    props = {
        "conditions": Prop(CONDITIONS, required=True, dynamic=False),
    }


@register
class Or(Condition):
    """At least one of ``conditions`` holds."""

    type = f"{_PKG}.Or"
    aliases = _aliases("Or")
    props = {
        "conditions": Prop(CONDITIONS, required=True, dynamic=False),
    }


@register
class MultipleCondition(Condition):
    """Every named sub-condition was met by some execution within ``window`` (deprecated for preconditions)."""

    type = f"{_PKG}.MultipleCondition"
    aliases = _aliases("Multiple")
    props = {
        "id": Prop(STRING, required=True, dynamic=False),
        "window": Prop(DURATION, default="P1D", dynamic=False),
        "windowAdvance": Prop(DURATION, default="P0D", dynamic=False),
        "conditions": Prop(CONDITION_MAP, required=True, dynamic=False),
        "resetOnSuccess": Prop(BOOLEAN, default=True, dynamic=False),
    }


#### Schedule conditions (evaluated on the schedule date) ###################################################


@register
class DayWeek(Condition):
    """``date`` falls on ``dayOfWeek``."""

    type = f"{_PKG}.DayWeek"
    aliases = _aliases("DayWeek")
    props = {
        "date": Prop(STRING, default=_DATE),
        "dayOfWeek": Prop(ENUM, required=True, values=_DAYS, dynamic=False),
    }


@register
class DayWeekInMonth(Condition):
    """``date`` is the ``dayInMonth`` (FIRST…FOURTH, LAST) ``dayOfWeek`` of its month."""

    type = f"{_PKG}.DayWeekInMonth"
    aliases = _aliases("DayWeekInMonth")
    props = {
        "date": Prop(STRING, default=_DATE),
        "dayOfWeek": Prop(ENUM, required=True, values=_DAYS, dynamic=False),
        "dayInMonth": Prop(ENUM, required=True, values=("FIRST", "SECOND", "THIRD", "FOURTH", "LAST"),
                           dynamic=False),
    }


@register
class DateTimeBetween(Condition):
    """``date`` is after ``after`` and before ``before`` (zoned date-times; either may be absent)."""

    type = f"{_PKG}.DateTimeBetween"
    aliases = _aliases("DateTimeBetween")
    props = {
        "date": Prop(STRING, default=_DATE),
        "after": Prop(STRING),
        "before": Prop(STRING),
    }


@register
class TimeBetween(Condition):
    """The time of ``date`` is after ``after`` and before ``before`` (offset times)."""

    type = f"{_PKG}.TimeBetween"
    aliases = _aliases("TimeBetween")
    props = {
        "date": Prop(STRING, default=_DATE),
        "after": Prop(STRING),
        "before": Prop(STRING),
    }


@register
class Weekend(Condition):
    """``date`` is a Saturday or a Sunday."""

    type = f"{_PKG}.Weekend"
    aliases = _aliases("Weekend")
    props = {
        "date": Prop(STRING, default=_DATE),
    }
