"""Helpers for Subflow task runs (Kestra's ``Subflow``, ``ExecutableUtils``) that need a child execution's
context."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

from falconet.runtime.kernel.execution import Execution
from falconet.runtime.orchestration.context import upstream_variables

if TYPE_CHECKING:  # pragma: no cover
    from falconet.runtime.kernel.actors import ExecutionActor
    from falconet.runtime.kernel.services import Kernel


async def render_in_child(engine: "Kernel[ExecutionActor]", child_doc: Mapping[str, Any], value: Any) -> Any:
    """Render ``value`` (the deprecated Subflow ``outputs`` map) in the context of the ended child
    execution: its ``outputs`` (task outputs), inputs, labels, flow, execution. Raises the renderer's
    ExpressionError when an expression cannot be rendered."""
    child = Execution.from_dict(dict(child_doc))
    flow = await engine.get_flow(child.namespace, child.flow_id, child.flow_revision, allow_deleted=True)
    variables = upstream_variables(engine, child, flow)
    return engine.renderer.render_value_typed(value, variables)


__all__ = ["render_in_child"]
