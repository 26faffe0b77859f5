"""Sequential, Parallel, AllowFailure and Template: the ``tasks`` children one after the other (the
:class:`~falconet.sdk.plugin.FlowableTask` defaults) or all at once (Parallel)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from falconet.sdk import INTEGER, MAP, STRING, TASKS, Example, FlowableTask, Prop, register
from falconet.plugins.core.flowables.common import BRANCHES, OLD, PKG

if TYPE_CHECKING:
    from falconet.sdk import Dispatch, Machine, Resolved, State, TaskRun, TaskSpec

@register
class Sequential(FlowableTask):
    """Run ``tasks`` one after the other."""

    type = f"{PKG}.Sequential"
    aliases = (f"{OLD}.Sequential",)
    title = "Run tasks sequentially."
    examples = (
        Example("Group tasks that run one after another.",
                "id: example\n"
                "namespace: company.team\n"
                "\n"
                "tasks:\n"
                "  - id: group\n"
                "    type: io.kestra.plugin.core.flow.Sequential\n"
                "    tasks:\n"
                "      - id: first\n"
                "        type: io.kestra.plugin.core.log.Log\n"
                "        message: first\n"
                "      - id: second\n"
                "        type: io.kestra.plugin.core.log.Log\n"
                "        message: second\n", full=True),
    )
    props = {
        "tasks": Prop(TASKS, required=True, dynamic=False),
        **BRANCHES,
    }


@register
class Parallel(FlowableTask):
    """Start up to ``concurrent`` children at once (0 = all); no new child after a failure."""

    type = f"{PKG}.Parallel"
    aliases = (f"{OLD}.Parallel",)
    title = "Run tasks in parallel."
    examples = (
        Example("Run tasks in parallel, at most two at once.",
                "id: example\n"
                "namespace: company.team\n"
                "\n"
                "tasks:\n"
                "  - id: parallel\n"
                "    type: io.kestra.plugin.core.flow.Parallel\n"
                "    concurrent: 2\n"
                "    tasks:\n"
                "      - id: first\n"
                "        type: io.kestra.plugin.core.flow.Sleep\n"
                "        duration: PT1S\n"
                "      - id: second\n"
                "        type: io.kestra.plugin.core.log.Log\n"
                "        message: second\n", full=True),
    )
    props = {
        "tasks": Prop(TASKS, required=True, dynamic=False),
        "concurrent": Prop(INTEGER, default=0, dynamic=False,
                           description="Maximum children running at once; 0 = unlimited."),
        **BRANCHES,
    }

    def next_task_runs(self, m: "Machine", tr: "TaskRun", task: "TaskSpec") -> "list[Resolved]":
        errors, finally_ = m.branches(tr, task)
        return m.parallel_nexts(self.children(m, tr, task), errors, finally_, tr.id,
                                int(task.props.get("concurrent") or 0))


@register
class AllowFailure(FlowableTask):
    """Deprecated: sequential ``tasks`` whose failure only turns this task WARNING."""

    type = f"{PKG}.AllowFailure"
    aliases = (f"{OLD}.AllowFailure",)
    title = "Run tasks sequentially; a failure gives a WARNING (deprecated, use allowFailure)."
    examples = (
        Example("Keep going when a task fails: the execution ends in WARNING.",
                "id: example\n"
                "namespace: company.team\n"
                "\n"
                "tasks:\n"
                "  - id: allow\n"
                "    type: io.kestra.plugin.core.flow.AllowFailure\n"
                "    tasks:\n"
                "      - id: fails\n"
                "        type: io.kestra.plugin.core.execution.Fail\n"
                "  - id: next\n"
                "    type: io.kestra.plugin.core.log.Log\n"
                "    message: still running\n", full=True),
    )
    props = {
        "tasks": Prop(TASKS, required=True, dynamic=False),
        **BRANCHES,
    }

    def resolve_state(self, m: "Machine", tr: "TaskRun", task: "TaskSpec",
                      dispatches: "list[Dispatch]") -> "State | None":
        errors, finally_ = m.branches(tr, task)
        return m.resolve_state(self.children(m, tr, task), errors, finally_, tr, True, task.allow_warning)


@register
class Template(FlowableTask):
    """Deprecated: inline the tasks of a stored template."""

    type = f"{PKG}.Template"
    aliases = (f"{OLD}.Template",)
    title = "Include a template (deprecated)."
    examples = (
        Example("Include the tasks of a template (deprecated in Kestra: use subflows).",
                "namespace: company.team\n"
                "templateId: shared_steps\n"),
    )
    props = {
        "namespace": Prop(STRING, required=True, dynamic=False),
        "templateId": Prop(STRING, required=True, dynamic=False),
        "tenantId": Prop(STRING, dynamic=False),
        "args": Prop(MAP),
        **BRANCHES,
    }
