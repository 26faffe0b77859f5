"""``io.kestra.plugin.core.execution.*``: fail or assert from a flow; declarations of the execution-updating
tasks (``Labels``, ``Exit``), which the state machine applies to the execution document.

Conditions use the engine's one truthiness rule (:func:`falconet.runtime.expr.render.is_truthy`).
"""
from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from falconet.sdk import (
    ANY, ENUM, LIST, STRING, Example, ExecutionUpdatingTask, ExpressionError, FlowableError, is_truthy, Metric, Prop,
    register, RunContext, RunnableTask, State, TaskFailed, to_output_string,
)

if TYPE_CHECKING:
    from falconet.sdk import Machine, TaskRun, TaskSpec


def _render_error_type() -> type[BaseException]:
    return ExpressionError


#### execution.Fail #########################################################################################

@register
class Fail(RunnableTask):
    """Fail the task run.

    Without ``condition``: always fails with the rendered ``errorMessage``. With ``condition``: when it
    renders truthy, logs ``errorMessage`` at ERROR and fails with "Fail on a condition" (as Kestra does);
    when falsy, succeeds with no outputs.
    """

    type = "io.kestra.plugin.core.execution.Fail"
    aliases = ("io.kestra.core.tasks.executions.Fail",)
    title = "Fail the execution, optionally on a condition."
    examples = (
        Example("Fail the execution when a condition holds.",
                "condition: \"{{ inputs.country == 'bad' }}\"\n"
                "errorMessage: \"Unsupported country {{ inputs.country }}\"\n"),
    )
    props = {
        "condition": Prop(STRING, description="Fail only when this renders truthy."),
        "errorMessage": Prop(STRING, default="Task failure", description="The error message."),
    }

    async def run(self, ctx: RunContext) -> dict[str, Any] | None:
        if ctx.raw("condition") is None:
            raise TaskFailed(str(ctx.prop("errorMessage")))
        if is_truthy(ctx.prop("condition")):
            ctx.logger.error(str(ctx.prop("errorMessage")))
            raise TaskFailed("Fail on a condition")
        return None


#### execution.Assert #######################################################################################

@register
class Assert(RunnableTask):
    """Evaluate each condition; each falsy one (or one that fails to render) is logged at ERROR
    ("Assertion `<expr>` failed!"). Counters ``success`` and ``failed`` are recorded; the task fails with
    "N assertion(s) failed!" (plus a line with ``errorMessage`` when set) if any failed."""

    type = "io.kestra.plugin.core.execution.Assert"
    title = "Assert some conditions."
    examples = (
        Example("Fail the execution unless every condition holds.",
                "conditions:\n"
                "  - \"{{ inputs.customerId is defined }}\"\n"
                "  - \"{{ inputs.amount > 0 }}\"\n"
                "errorMessage: Invalid order\n"),
    )
    metrics = (
        Metric("success", "counter", "Number of conditions that held."),
        Metric("failed", "counter", "Number of conditions that did not hold."),
    )
    props = {
        "conditions": Prop(LIST, required=True, dynamic=False,
                           description="Pebble expressions that must each render truthy."),
        "errorMessage": Prop(STRING, description="Extra context appended to the failure message."),
    }

    async def run(self, ctx: RunContext) -> dict[str, Any] | None:
        conditions = ctx.raw("conditions")
        if isinstance(conditions, str):
            conditions = [conditions]
        if not isinstance(conditions, list):
            raise TaskFailed("conditions must be a list of expressions")
        failed = success = 0
        for cond in conditions:
            try:
                rendered = ctx.render(cond)
            except Exception as exc:
                if not isinstance(exc, _render_error_type()):
                    raise
                ctx.logger.error(f"Assertion `{cond}` failed, failed to render `{exc}`")
                failed += 1
                continue
            if is_truthy(rendered):
                success += 1
            else:
                ctx.logger.error(f"Assertion `{cond}` failed!")
                failed += 1
        ctx.metric("counter", "success", success)
        ctx.metric("counter", "failed", failed)
        if failed:
            message = f"{failed} assertion{'s' if failed > 1 else ''} failed!"
            extra = ctx.prop("errorMessage")
            raise TaskFailed(message + (f"\n{extra}" if extra is not None else ""))
        return None


#### execution-updating tasks (applied by the state machine) ###############################################

@register
class Labels(ExecutionUpdatingTask):
    """Add or override execution labels. ``labels`` is a map, a list of ``{key, value}``, or a string
    rendering to a JSON object; values are rendered to strings; ``system.*`` keys are refused. The task
    run gets a single attempt."""

    type = "io.kestra.plugin.core.execution.Labels"
    aliases = ("io.kestra.core.tasks.executions.Labels",)
    title = "Add or update labels of the current execution."
    examples = (
        Example("Add labels to the running execution.",
                "labels:\n"
                "  customer: \"{{ inputs.customer ?? 'unknown' }}\"\n"
                "  stage: loaded\n"),
    )
    props = {"labels": Prop(ANY, required=True, description="Labels: a map, a list of {key, value}, or JSON.")}

    def apply(self, m: "Machine", tr: "TaskRun", task: "TaskSpec") -> None:
        raw = task.props.get("labels")
        if isinstance(raw, str):
            rendered = m.render(tr, task, raw)
            try:
                raw = json.loads(rendered)
            except ValueError as exc:
                raise FlowableError(f"Unable to parse labels as a JSON object: {rendered}") from exc
        pairs: list[tuple[str, str]] = []
        if isinstance(raw, dict):
            for k, v in raw.items():
                key = str(m.render(tr, task, k))
                value = m.render_typed(tr, task, v) if isinstance(v, str) else v
                pairs.append((key, to_output_string(value)))
        elif isinstance(raw, list):
            for item in raw:
                if not isinstance(item, dict) or "key" not in item:
                    raise FlowableError("labels must be a map or a list of {key, value}")
                value = item.get("value")
                value = m.render_typed(tr, task, value) if isinstance(value, str) else value
                pairs.append((str(m.render(tr, task, item["key"])), to_output_string(value)))
        else:
            raise FlowableError("labels must be a map, a list of {key, value} or a JSON string")
        for key, _ in pairs:
            if key.startswith("system."):
                raise FlowableError(f"Cannot update system label '{key}'")
        labels = list(m.ex.labels)
        for key, value in pairs:
            for lb in labels:
                if lb["key"] == key:
                    lb["value"] = value
                    break
            else:
                labels.append({"key": key, "value": value})
        m.ex.labels = labels
        m.on_change(None)


@register
class Exit(ExecutionUpdatingTask):
    """Terminate the execution in ``state``; only KILLED stops the other running tasks (the execution
    actor ends it once the state machine recorded the state)."""

    type = "io.kestra.plugin.core.execution.Exit"
    title = "Exit the execution: terminate it in the given state."
    examples = (
        Example("End the execution early in a given state.",
                "id: example\n"
                "namespace: company.team\n"
                "\n"
                "tasks:\n"
                "  - id: check\n"
                "    type: io.kestra.plugin.core.flow.If\n"
                "    condition: \"{{ inputs.skip ?? false }}\"\n"
                "    then:\n"
                "      - id: stop\n"
                "        type: io.kestra.plugin.core.execution.Exit\n"
                "        state: KILLED\n"
                "  - id: work\n"
                "    type: io.kestra.plugin.core.log.Log\n"
                "    message: working\n", full=True),
    )
    props = {
        "state": Prop(ENUM, default="SUCCESS", values=("SUCCESS", "WARNING", "KILLED", "FAILED", "CANCELED"),
                      description="The terminal state of the execution."),
    }

    def apply(self, m: "Machine", tr: "TaskRun", task: "TaskSpec") -> None:
        state = str(m.render(tr, task, task.props.get("state") or "SUCCESS")).upper()
        if state == "CANCELED":
            state = "CANCELLED"
        m.ex.runtime.exit_state = State(state)
