"""If and Switch: one branch of children, chosen once when the task run starts (outputs
``evaluationResult``, resp. ``value`` and ``defaults``)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from falconet.sdk import (
    ANY, STRING, TASK_MAP, TASKS, Example, FlowableError, FlowableTask, Output, Prop, register, State,
)
from falconet.plugins.core.flowables.common import BRANCHES, OLD, PKG

if TYPE_CHECKING:
    from falconet.sdk import Dispatch, Machine, Resolved, TaskRun, TaskSpec

@register
class If(FlowableTask):
    """Run ``then`` when ``condition`` renders truthy (not ``false``/``0``/``-0``/empty), else ``else``."""

    type = f"{PKG}.If"
    aliases = (f"{OLD}.If",)
    title = "Branch on a condition."
    examples = (
        Example("Run tasks only when a condition holds, others otherwise.",
                "id: example\n"
                "namespace: company.team\n"
                "\n"
                "inputs:\n"
                "  - id: amount\n"
                "    type: INT\n"
                "\n"
                "tasks:\n"
                "  - id: big\n"
                "    type: io.kestra.plugin.core.flow.If\n"
                "    condition: \"{{ inputs.amount > 1000 }}\"\n"
                "    then:\n"
                "      - id: review\n"
                "        type: io.kestra.plugin.core.log.Log\n"
                "        message: needs a review\n"
                "    else:\n"
                "      - id: accept\n"
                "        type: io.kestra.plugin.core.log.Log\n"
                "        message: accepted\n", full=True),
    )
    outputs = {
        "evaluationResult": Output("boolean", "Whether the condition held."),
    }
    props = {
        "condition": Prop(ANY, required=True, description="Rendered; truthy unless false, 0, -0 or empty."),
        "then": Prop(TASKS, required=True, dynamic=False),
        "else": Prop(TASKS, dynamic=False),
        **BRANCHES,
    }

    def on_start(self, m: "Machine", tr: "TaskRun", task: "TaskSpec", dispatches: "list[Dispatch]") -> None:
        tr.outputs = {"evaluationResult": bool(m.truthy(m.render(tr, task, task.props.get("condition"))))}

    def children(self, m: "Machine", tr: "TaskRun", task: "TaskSpec") -> "list[Resolved] | None":
        result = (tr.outputs or {}).get("evaluationResult")
        if result is None:
            return None
        return m.resolve_tasks(task.props.get("then") if result else task.props.get("else"), tr.id)

    def resolve_state(self, m: "Machine", tr: "TaskRun", task: "TaskSpec",
                      dispatches: "list[Dispatch]") -> "State | None":
        if self.children(m, tr, task) is None:
            return State.SUCCESS  # the condition chose ``else`` and there is none
        return super().resolve_state(m, tr, task, dispatches)


@register
class Switch(FlowableTask):
    """Run the ``cases`` entry whose key equals the rendered ``value``, else ``defaults`` (no match, no
    defaults: FAILED)."""

    type = f"{PKG}.Switch"
    aliases = (f"{OLD}.Switch",)
    title = "Branch on a value."
    examples = (
        Example("Run the tasks of the case matching a value.",
                "id: example\n"
                "namespace: company.team\n"
                "\n"
                "inputs:\n"
                "  - id: format\n"
                "    type: STRING\n"
                "\n"
                "tasks:\n"
                "  - id: switch\n"
                "    type: io.kestra.plugin.core.flow.Switch\n"
                "    value: \"{{ inputs.format }}\"\n"
                "    cases:\n"
                "      csv:\n"
                "        - id: csv\n"
                "          type: io.kestra.plugin.core.log.Log\n"
                "          message: CSV\n"
                "    defaults:\n"
                "      - id: other\n"
                "        type: io.kestra.plugin.core.log.Log\n"
                "        message: another format\n", full=True),
    )
    outputs = {
        "value": Output("string", "The rendered value."),
        "defaults": Output("boolean", "Whether the defaults branch ran."),
    }
    props = {
        "value": Prop(STRING, required=True),
        "cases": Prop(TASK_MAP, dynamic=False),
        "defaults": Prop(TASKS, dynamic=False),
        **BRANCHES,
    }

    def on_start(self, m: "Machine", tr: "TaskRun", task: "TaskSpec", dispatches: "list[Dispatch]") -> None:
        value = m.render(tr, task, task.props.get("value"))
        value = "" if value is None else str(value)
        cases = task.props.get("cases") or {}
        if value in cases:
            tr.outputs = {"value": value, "defaults": False}
        elif task.props.get("defaults"):
            tr.outputs = {"value": value, "defaults": True}
        else:
            tr.outputs = {"value": value, "defaults": False}
            raise FlowableError(f"Switch task '{task.id}' has no case matching the value '{value}' and no defaults")

    def children(self, m: "Machine", tr: "TaskRun", task: "TaskSpec") -> "list[Resolved] | None":
        if tr.outputs is None:
            return None
        if tr.outputs.get("defaults"):
            return m.resolve_tasks(task.props.get("defaults"), tr.id)
        cases = task.props.get("cases") or {}
        return m.resolve_tasks(cases.get(str(tr.outputs.get("value"))), tr.id)

    @classmethod
    def validate_spec(cls, spec: "TaskSpec") -> list[str]:
        cases = spec.props.get("cases") or {}
        if not any(cases.values()) and not spec.props.get("defaults"):
            return ["No task defined, neither cases or default have any tasks"]
        return []
