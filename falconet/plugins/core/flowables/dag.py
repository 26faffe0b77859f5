"""Dag: ``tasks`` (``{task, dependsOn}``) start once their dependencies terminated, up to ``concurrent``."""
from __future__ import annotations

from typing import TYPE_CHECKING

from falconet.sdk import DAG_TASKS, INTEGER, Example, FlowableTask, Prop, register
from falconet.plugins.core.flowables.common import BRANCHES, OLD, PKG

if TYPE_CHECKING:
    from falconet.sdk import Machine, Resolved, TaskRun, TaskSpec


@register
class Dag(FlowableTask):
    """Run ``tasks`` (``{task, dependsOn}``) in dependency order, up to ``concurrent`` at once (0 = all)."""

    type = f"{PKG}.Dag"
    aliases = (f"{OLD}.Dag",)
    title = "Run tasks by their dependencies."
    examples = (
        Example("Run tasks as a graph of dependencies.",
                "id: example\n"
                "namespace: company.team\n"
                "\n"
                "tasks:\n"
                "  - id: dag\n"
                "    type: io.kestra.plugin.core.flow.Dag\n"
                "    tasks:\n"
                "      - task:\n"
                "          id: extract\n"
                "          type: io.kestra.plugin.core.log.Log\n"
                "          message: extract\n"
                "      - task:\n"
                "          id: transform\n"
                "          type: io.kestra.plugin.core.log.Log\n"
                "          message: transform\n"
                "        dependsOn:\n"
                "          - extract\n", full=True),
    )
    props = {
        "tasks": Prop(DAG_TASKS, required=True, dynamic=False),
        "concurrent": Prop(INTEGER, default=0, dynamic=False),
        **BRANCHES,
    }

    def children(self, m: "Machine", tr: "TaskRun", task: "TaskSpec") -> "list[Resolved] | None":
        return m.resolve_tasks([e.task for e in task.props.get("tasks") or []], tr.id)

    def next_task_runs(self, m: "Machine", tr: "TaskRun", task: "TaskSpec") -> "list[Resolved]":
        deps = {e.task.id: list(e.depends_on) for e in task.props.get("tasks") or []}

        def ready(r: "Resolved", runs: "list[TaskRun]") -> bool:
            done = {x.task_id for x in runs if x.state.current.is_terminated}
            return all(d in done for d in deps.get(r.task.id, ()))

        errors, finally_ = m.branches(tr, task)
        return m.parallel_nexts(self.children(m, tr, task), errors, finally_, tr.id,
                                int(task.props.get("concurrent") or 0), ready)

    @classmethod
    def validate_spec(cls, spec: "TaskSpec") -> list[str]:
        entries = spec.props.get("tasks") or []
        ids = [e.task.id for e in entries]
        missing = [dep for e in entries for dep in e.depends_on if dep not in ids]
        if missing:
            return ["Not existing task id in dependency: " + ", ".join(dict.fromkeys(missing))]
        graph = {e.task.id: list(e.depends_on) for e in entries}
        cyclic = [e.task.id for e in entries if e.depends_on and e.task.id in _reachable(e.task.id, graph)]
        if cyclic:
            return ["Cyclic dependency detected: " + ", ".join(cyclic)]
        return []


def _reachable(start: str, graph: dict[str, list[str]]) -> set[str]:
    """Every id reachable from ``start`` through ``dependsOn`` edges (``start`` itself only through a cycle)."""
    seen: set[str] = set()
    stack = list(graph.get(start, ()))
    while stack:
        node = stack.pop()
        if node not in seen:
            seen.add(node)
            stack.extend(graph.get(node, ()))
    return seen
