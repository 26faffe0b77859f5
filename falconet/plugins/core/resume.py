"""``io.kestra.plugin.core.execution.Resume``: resume a PAUSED execution from a flow."""
from __future__ import annotations

from typing import Any

from falconet.sdk import MAP, STRING, Example, Prop, register, RunContext, RunnableTask, TaskFailed


@register
class Resume(RunnableTask):
    """Resume the paused execution ``executionId`` (default: the current one) with optional ``inputs``
    for its Pause task's ``onResume``. ``namespace``/``flowId`` restrict which flow it may belong to."""

    type = "io.kestra.plugin.core.execution.Resume"
    title = "Resume a paused execution."
    examples = (
        Example("Resume a paused execution with inputs.",
                "executionId: \"{{ inputs.executionId }}\"\n"
                "inputs:\n"
                "  approved: true\n"),
    )
    props = {
        "executionId": Prop(STRING, default="{{ execution.id }}", description="The execution to resume."),
        "namespace": Prop(STRING, description="Namespace the execution must belong to."),
        "flowId": Prop(STRING, description="Flow the execution must belong to."),
        "inputs": Prop(MAP, description="onResume inputs."),
    }

    async def run(self, ctx: RunContext) -> dict[str, Any] | None:
        execution_id = ctx.prop("executionId")
        resume = getattr(ctx, "resume_execution", None)
        if resume is None:
            raise TaskFailed("This run context cannot resume executions")
        await resume(execution_id, ctx.prop("inputs") or {}, namespace=ctx.prop("namespace"),
                     flow_id=ctx.prop("flowId"))
        return None
