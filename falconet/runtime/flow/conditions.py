"""Conditions of the deprecated flow ``listeners``, evaluated on the execution that just ended.

Each condition is evaluated by its own plugin class (``Condition.test(props, ctx)``, the same code Flow
triggers use); :class:`ListenerContext` is the ``ctx`` they get here.
"""
from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any, Callable

from falconet.runtime.kernel.errors import IllegalArgument
from falconet.runtime.flow.model import ConditionSpec, Flow, ListenerSpec
from falconet.runtime.kernel.execution import Execution
from falconet.runtime.kernel.state import State


@dataclasses.dataclass
class ListenerContext:
    """The ``ctx`` of ``Condition.test`` for a listener: the execution itself and its final state."""

    flow: Flow
    execution: Execution
    state: State
    renderer: Callable[[Any], Any]
    is_truthy: Callable[[Any], bool]
    date: datetime | None = None

    def render(self, value: Any) -> Any:
        return None if value is None else self.renderer(value)

    def truthy(self, expression: Any) -> bool:
        return bool(self.is_truthy(self.render(expression)))

    def test(self, cond: ConditionSpec) -> bool:
        fn = getattr(cond.cls, "test", None)
        if fn is None:
            raise IllegalArgument(f"Condition type {cond.type} cannot be evaluated here")
        return bool(fn(cond.cls(), cond.props, self))


def listener_matches(listener: ListenerSpec, ctx: ListenerContext) -> bool:
    return all(ctx.test(c) for c in listener.conditions)
