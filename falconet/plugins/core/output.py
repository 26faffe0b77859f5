"""``io.kestra.plugin.core.output.OutputValues``: expose rendered values as task outputs."""
from __future__ import annotations

from typing import Any

from falconet.sdk import MAP, Example, Output, Prop, register, RunContext, RunnableTask, TaskFailed


@register
class OutputValues(RunnableTask):
    """Output ``values`` rendered recursively as Kestra 0.21 does (``runContext.render(Map)``): string
    leaves render to strings (``{{ 1 + 1 }}`` gives ``"2"``), other values are kept as written. The result is
    available as ``outputs.<id>.values.<key>``."""

    type = "io.kestra.plugin.core.output.OutputValues"
    title = "Output one or more values."
    examples = (
        Example("Publish values for later tasks (outputs.<id>.values.<name>).",
                "values:\n"
                "  customer: \"{{ inputs.customer ?? 'acme' }}\"\n"
                "  total: 42\n"),
    )
    outputs = {
        "values": Output("map", "The rendered values."),
    }
    synchronous = True
    # not rendered by ctx.prop: run() renders it key by key
    props = {"values": Prop(MAP, dynamic=False, description="The values to output (rendered).")}

    async def run(self, ctx: RunContext) -> dict[str, Any] | None:
        raw = ctx.raw("values")
        if raw is None:
            return {"values": {}}
        if not isinstance(raw, dict):
            raise TaskFailed(f"values must be a map, got {type(raw).__name__}")
        return {"values": {str(k): ctx.render(v) for k, v in raw.items()}}
