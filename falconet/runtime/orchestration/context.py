"""What a condition sees when it is evaluated (the ``ctx`` of ``Condition.test(props, ctx)``)."""
from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import TYPE_CHECKING, Any, Mapping

from falconet.runtime.kernel.errors import IllegalArgument
from falconet.runtime.expr.output import is_truthy
from falconet.runtime.flow.model import ConditionSpec, Flow
from falconet.runtime.kernel.execution import Execution
from falconet.runtime.kernel.state import State
from falconet.runtime.expr.variables import OutputsCache, execution_variables

if TYPE_CHECKING:  # pragma: no cover
    from falconet.runtime.kernel.actors import ExecutionActor
    from falconet.runtime.kernel.services import Kernel


@dataclasses.dataclass
class ConditionContext:
    """One evaluation: ``execution``/``state`` are the upstream execution and the state it reached (Flow
    trigger; the new execution for a webhook), ``date`` the schedule date (Schedule trigger), ``flow`` the
    flow owning the trigger, ``variables`` the render context."""

    engine: "Kernel[ExecutionActor]"
    flow: Flow
    variables: Mapping[str, Any]
    execution: Execution | None = None
    state: State | None = None
    date: datetime | None = None

    def render(self, value: Any) -> Any:
        """Render a property value (strings, lists, maps) against :attr:`variables`."""
        if value is None:
            return None
        return self.engine.renderer.render_value(value, dict(self.variables))

    def truthy(self, expression: Any) -> bool:
        """Render ``expression`` and apply Kestra's truthiness (``false``, ``0``, ``-0`` and empty are false)."""
        return bool(is_truthy(self.render(expression)))

    def test(self, cond: ConditionSpec) -> bool:
        """Evaluate one condition spec (used by Not / Or / MultipleCondition for their children)."""
        fn = getattr(cond.cls, "test", None)
        if fn is None:
            raise IllegalArgument(f"Condition type {cond.type} cannot be evaluated here")
        return bool(fn(cond.cls(), cond.props, self))


def upstream_variables(engine: "Kernel[ExecutionActor]", ex: Execution, flow: Flow | None,
                       trigger_vars: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The expression context of a finished (or running) execution, as Kestra renders Flow-trigger inputs:
    its flow, execution, inputs, outputs (task outputs), labels, vars, and ``trigger`` = ``trigger_vars``."""
    from falconet.runtime.kernel.runcontext import EngineHooks

    if flow is None:
        v: dict[str, Any] = {"flow": {"id": ex.flow_id, "namespace": ex.namespace, "revision": ex.flow_revision},
                             "execution": {"id": ex.id}, "envs": engine.envs, "globals": engine.config.globals}
    else:
        v = execution_variables(ex, flow, OutputsCache(), envs=engine.envs, globals_=engine.config.globals)
    v["__falconet__"] = EngineHooks(engine, ex)
    if trigger_vars is not None:
        v["trigger"] = dict(trigger_vars)
    return v


__all__ = ["ConditionContext", "upstream_variables"]
