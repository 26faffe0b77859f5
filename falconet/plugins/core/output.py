"""``io.kestra.plugin.core.output.OutputValues``: expose rendered values as task outputs."""
from __future__ import annotations

from typing import Any

from ...runtime.plugin import MAP, Prop, RunContext, RunnableTask, TaskFailed, register


@register
class OutputValues(RunnableTask):
    """Output ``values`` rendered recursively with typed rendering: a string that is a single ``{{ expr }}``
    keeps the expression's native type (number, list, map…); other strings render to strings. The result is
    available as ``outputs.<id>.values.<key>``."""

    type = "io.kestra.plugin.core.output.OutputValues"
    title = "Output one or more values."
    # not rendered by ctx.prop: run() renders it typed, key by key
    props = {"values": Prop(MAP, dynamic=False, description="The values to output (rendered, typed).")}

    async def run(self, ctx: RunContext) -> dict[str, Any] | None:
        raw = ctx.raw("values")
        if raw is None:
            return {"values": {}}
        if not isinstance(raw, dict):
            raise TaskFailed(f"values must be a map, got {type(raw).__name__}")
        return {"values": {str(k): ctx.render_typed(v) for k, v in raw.items()}}
