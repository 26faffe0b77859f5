"""Declarations of the core ``io.kestra.plugin.core.flow.*`` types.

The flowable classes carry declarations only: their semantics live in the executor
(``falconet.runtime.kernel.machine``), which recognises them by class. Each class lists its ``props`` (the single
source for flow validation and the plugin docs), its canonical ``type`` and Kestra's legacy ``aliases``.
A class may define ``validate_spec(spec) -> list[str]``: type-specific checks that flow validation runs
after the properties were parsed (messages as Kestra words them).

``Sleep`` is the one runnable type here: it blocks its task run for ``duration``.
"""
from __future__ import annotations

from datetime import timedelta
from typing import Any, ClassVar

import trio

from falconet.sdk import (
    ANY, BOOLEAN, DAG_TASKS, DURATION, ENUM, INPUTS, INTEGER, LIST, MAP, OBJECT, STRING, TASK_MAP, TASKS, Example,
    FlowableTask, Output, parse_duration, Prop, register, RunContext, RunnableTask, TaskFailed, TaskSpec,
)


_PKG = "io.kestra.plugin.core.flow"
_OLD = "io.kestra.core.tasks.flows"

#: `errors` and `finally` branches every flowable accepts (local error handling, always-run tasks)
_BRANCHES: dict[str, Prop] = {
    "errors": Prop(TASKS, dynamic=False, description="Tasks run when a child task fails."),
    "finally": Prop(TASKS, dynamic=False, description="Tasks always run after the children, while still RUNNING."),
}

#### Sequential, Parallel, AllowFailure #####################################################################


@register
class Sequential(FlowableTask):
    """Run ``tasks`` one after the other."""

    type = f"{_PKG}.Sequential"
    aliases = (f"{_OLD}.Sequential",)
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
        **_BRANCHES,
    }


@register
class Parallel(FlowableTask):
    """Start up to ``concurrent`` children at once (0 = all); no new child after a failure."""

    type = f"{_PKG}.Parallel"
    aliases = (f"{_OLD}.Parallel",)
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
        **_BRANCHES,
    }


@register
class AllowFailure(FlowableTask):
    """Deprecated: sequential ``tasks`` whose failure only turns this task WARNING."""

    type = f"{_PKG}.AllowFailure"
    aliases = (f"{_OLD}.AllowFailure",)
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
        **_BRANCHES,
    }


#### If, Switch #############################################################################################


@register
class If(FlowableTask):
    """Run ``then`` when ``condition`` renders truthy (not ``false``/``0``/``-0``/empty), else ``else``."""

    type = f"{_PKG}.If"
    aliases = (f"{_OLD}.If",)
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
        **_BRANCHES,
    }


@register
class Switch(FlowableTask):
    """Run the ``cases`` entry whose key equals the rendered ``value``, else ``defaults`` (no match, no
    defaults: FAILED)."""

    type = f"{_PKG}.Switch"
    aliases = (f"{_OLD}.Switch",)
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
        **_BRANCHES,
    }

    @classmethod
    def validate_spec(cls, spec: "TaskSpec") -> list[str]:
        cases = spec.props.get("cases") or {}
        if not any(cases.values()) and not spec.props.get("defaults"):
            return ["No task defined, neither cases or default have any tasks"]
        return []


#### Loops: ForEach, EachSequential, EachParallel, WaitFor ##################################################


@register
class ForEach(FlowableTask):
    """Run ``tasks`` once per value; ``concurrencyLimit`` value groups at once (1 = sequential, 0 = all)."""

    type = f"{_PKG}.ForEach"
    title = "Loop over values."
    examples = (
        Example("Run tasks for each value, two at a time.",
                "id: example\n"
                "namespace: company.team\n"
                "\n"
                "tasks:\n"
                "  - id: for_each\n"
                "    type: io.kestra.plugin.core.flow.ForEach\n"
                "    values: [\"value 1\", \"value 2\", \"value 3\"]\n"
                "    concurrencyLimit: 2\n"
                "    tasks:\n"
                "      - id: show\n"
                "        type: io.kestra.plugin.core.log.Log\n"
                "        message: \"{{ taskrun.value }}\"\n", full=True),
    )
    props = {
        "values": Prop(ANY, required=True, description="A list, or a string rendered then parsed as a JSON list."),
        "concurrencyLimit": Prop(INTEGER, default=1, dynamic=False),
        "tasks": Prop(TASKS, required=True, dynamic=False),
        **_BRANCHES,
    }


@register
class EachSequential(FlowableTask):
    """Deprecated: ForEach with concurrencyLimit 1."""

    type = f"{_PKG}.EachSequential"
    aliases = (f"{_OLD}.EachSequential",)
    title = "Loop over values sequentially (deprecated, use ForEach)."
    examples = (
        Example("Run tasks for each value, one after another (deprecated: use ForEach).",
                "id: example\n"
                "namespace: company.team\n"
                "\n"
                "tasks:\n"
                "  - id: each\n"
                "    type: io.kestra.plugin.core.flow.EachSequential\n"
                "    value: [\"a\", \"b\", \"c\"]\n"
                "    tasks:\n"
                "      - id: show\n"
                "        type: io.kestra.plugin.core.log.Log\n"
                "        message: \"{{ taskrun.value }}\"\n", full=True),
    )
    props = {
        "value": Prop(ANY, required=True),
        "tasks": Prop(TASKS, required=True, dynamic=False),
        **_BRANCHES,
    }


@register
class EachParallel(FlowableTask):
    """Deprecated: loop over values in parallel, up to ``concurrent`` task runs at once (0 = unlimited)."""

    type = f"{_PKG}.EachParallel"
    aliases = (f"{_OLD}.EachParallel",)
    title = "Loop over values in parallel (deprecated, use ForEach)."
    examples = (
        Example("Run tasks for each value, in parallel (deprecated: use ForEach).",
                "id: example\n"
                "namespace: company.team\n"
                "\n"
                "tasks:\n"
                "  - id: each\n"
                "    type: io.kestra.plugin.core.flow.EachParallel\n"
                "    value: [\"a\", \"b\", \"c\"]\n"
                "    tasks:\n"
                "      - id: show\n"
                "        type: io.kestra.plugin.core.log.Log\n"
                "        message: \"{{ taskrun.value }}\"\n", full=True),
    )
    props = {
        "value": Prop(ANY, required=True),
        "concurrent": Prop(INTEGER, default=0, dynamic=False),
        "tasks": Prop(TASKS, required=True, dynamic=False),
        **_BRANCHES,
    }


@register
class WaitFor(FlowableTask):
    """Re-run ``tasks`` until ``condition`` renders truthy (an exit condition), bounded by ``checkFrequency``;
    output ``iterationCount``. Later Kestra versions call it ``LoopUntil``."""

    type = f"{_PKG}.WaitFor"
    aliases = (f"{_PKG}.LoopUntil",)
    title = "Loop until a condition is met."
    examples = (
        Example("Repeat tasks until a condition holds, every 10 seconds, at most 5 times.",
                "id: example\n"
                "namespace: company.team\n"
                "\n"
                "tasks:\n"
                "  - id: wait\n"
                "    type: io.kestra.plugin.core.flow.WaitFor\n"
                "    condition: \"{{ outputs.check.value == '3' }}\"\n"
                "    checkFrequency:\n"
                "      interval: PT10S\n"
                "      maxIterations: 5\n"
                "    tasks:\n"
                "      - id: check\n"
                "        type: io.kestra.plugin.core.debug.Return\n"
                "        format: \"{{ outputs.wait.iterationCount ?? 0 }}\"\n", full=True),
    )
    outputs = {
        "iterationCount": Output("integer", "How many times the tasks ran."),
    }
    props = {
        "tasks": Prop(TASKS, required=True, dynamic=False),
        "condition": Prop(STRING, required=True),
        "checkFrequency": Prop(OBJECT, dynamic=False, fields={
            "maxIterations": Prop(INTEGER, default=100),
            "maxDuration": Prop(DURATION, default="PT1H"),
            "interval": Prop(DURATION, default="PT1S"),
        }),
        "failOnMaxReached": Prop(BOOLEAN, default=False),
        **_BRANCHES,
    }


#### Dag ####################################################################################################


@register
class Dag(FlowableTask):
    """Run ``tasks`` (``{task, dependsOn}``) in dependency order, up to ``concurrent`` at once (0 = all)."""

    type = f"{_PKG}.Dag"
    aliases = (f"{_OLD}.Dag",)
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
        **_BRANCHES,
    }

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


#### Pause, Sleep ###########################################################################################


@register
class Pause(FlowableTask):
    """PAUSE the execution until resumed through the API (with ``onResume`` inputs), or until ``delay``
    (``pauseDuration``) elapses; the common ``timeout`` fails the task run when it elapses first."""

    type = f"{_PKG}.Pause"
    aliases = (f"{_OLD}.Pause",)
    title = "Pause the execution."
    examples = (
        Example("Wait for a manual approval with a comment.",
                "id: example\n"
                "namespace: company.team\n"
                "\n"
                "tasks:\n"
                "  - id: approve\n"
                "    type: io.kestra.plugin.core.flow.Pause\n"
                "    onResume:\n"
                "      - id: comment\n"
                "        type: STRING\n"
                "        defaults: approved\n"
                "  - id: after\n"
                "    type: io.kestra.plugin.core.log.Log\n"
                "    message: \"{{ outputs.approve.onResume.comment }}\"\n", full=True),
    )
    outputs = {
        "onResume": Output("map", "The onResume inputs given when resuming.", required=False),
    }
    props = {
        "delay": Prop(DURATION, description="Resume automatically after this duration."),
        "pauseDuration": Prop(DURATION, description="Newer name of delay."),
        "behavior": Prop(ENUM, values=("RESUME", "WARN", "CANCEL", "FAIL"), default="RESUME", dynamic=False),
        "onResume": Prop(INPUTS, dynamic=False, description="Inputs asked when resuming."),
        "tasks": Prop(TASKS, dynamic=False, description="Deprecated: tasks run after the resume."),
        **_BRANCHES,
    }


@register
class Sleep(RunnableTask):
    """Block this task run for ``duration`` (a checkpoint; a kill or timeout cancels the wait)."""

    type = f"{_PKG}.Sleep"
    title = "Sleep for a duration."
    examples = (
        Example("Wait five seconds.",
                "duration: PT5S\n"),
    )
    props = {
        "duration": Prop(DURATION, required=True),
    }

    async def run(self, ctx: "RunContext") -> dict[str, Any] | None:
        value = ctx.prop("duration")
        if isinstance(value, timedelta):
            duration = value
        else:
            try:
                duration = parse_duration(str(value))
            except ValueError as exc:
                raise TaskFailed(str(exc)) from None
        if duration < timedelta(0):
            raise TaskFailed(f"Invalid duration `{value}`: must not be negative")
        await trio.sleep(duration.total_seconds())
        return None


#### Subflow, ForEachItem, Template #########################################################################

_SUBFLOW_COMMON: dict[str, Prop] = {
    "namespace": Prop(STRING, required=True),
    "flowId": Prop(STRING, required=True),
    "revision": Prop(INTEGER),
    "inputs": Prop(MAP),
    "labels": Prop(ANY, description="A map or a list of {key, value}."),
    "wait": Prop(BOOLEAN, default=True, dynamic=False),
    "transmitFailed": Prop(BOOLEAN, default=True, dynamic=False),
    "inheritLabels": Prop(BOOLEAN, default=False, dynamic=False),
    "scheduleDate": Prop(STRING),
}


@register
class Subflow(FlowableTask):
    """Create an execution of another flow; with ``wait`` this task run ends with it (outputs
    ``executionId``, ``state``, ``outputs``)."""

    type = f"{_PKG}.Subflow"
    aliases = (f"{_OLD}.Subflow", f"{_OLD}.Flow")
    title = "Execute another flow."
    examples = (
        Example("Start another flow and wait for its end.",
                "namespace: company.team\n"
                "flowId: child\n"
                "inputs:\n"
                "  greeting: hello\n"
                "wait: true\n"
                "transmitFailed: true\n"),
    )
    outputs = {
        "executionId": Output("string", "The id of the subflow's execution."),
        "state": Output("string", "The final state of the subflow's execution (when waited for).", required=False),
        "outputs": Output("map", "The flow outputs of the subflow's execution.", required=False),
    }
    #: this task creates an execution of (namespace, flowId): flow validation refuses a call to its own flow
    executable: ClassVar[bool] = True
    props = {
        **_SUBFLOW_COMMON,
        "outputs": Prop(MAP, description="Deprecated: rendered in the subflow's context."),
    }


@register
class ForEachItem(FlowableTask):
    """Split ``items`` into batches and run one subflow execution per batch (internal children
    ``<id>_split``, ``<id>_items``, ``<id>_merge``)."""

    type = f"{_PKG}.ForEachItem"
    aliases = (f"{_OLD}.ForEachItem",)
    title = "Run a subflow for each batch of items of a file."
    examples = (
        Example("Start a subflow for each batch of 10 lines of a file.",
                "id: example\n"
                "namespace: company.team\n"
                "\n"
                "inputs:\n"
                "  - id: file\n"
                "    type: FILE\n"
                "\n"
                "tasks:\n"
                "  - id: each\n"
                "    type: io.kestra.plugin.core.flow.ForEachItem\n"
                "    items: \"{{ inputs.file }}\"\n"
                "    batch:\n"
                "      rows: 10\n"
                "    namespace: company.team\n"
                "    flowId: process_batch\n"
                "    inputs:\n"
                "      batch: \"{{ taskrun.items }}\"\n", full=True),
    )
    outputs = {
        "numberOfBatches": Output("integer", "How many batches (subflow executions) were made.", required=False),
        "iterations": Output("map", "Number of subflow executions per state.", required=False),
        "uri": Output("string", "Internal storage folder holding each subflow's outputs."),
        "subflowOutputs": Output("string",
                       "URI of the merged outputs of the subflows (ION, one line per subflow).", required=False),
    }
    executable: ClassVar[bool] = True
    props = {
        "items": Prop(STRING, required=True),
        "batch": Prop(OBJECT, dynamic=False, default={"rows": 1}, fields={
            "rows": Prop(INTEGER),
            "bytes": Prop(STRING),
            "partitions": Prop(INTEGER),
            "separator": Prop(STRING, default="\n"),
        }),
        **_SUBFLOW_COMMON,
        **_BRANCHES,
    }


@register
class Template(FlowableTask):
    """Deprecated: inline the tasks of a stored template."""

    type = f"{_PKG}.Template"
    aliases = (f"{_OLD}.Template",)
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
        **_BRANCHES,
    }


#### WorkingDirectory #######################################################################################


@register
class WorkingDirectory(FlowableTask):
    """Run runnable ``tasks`` one after the other in one shared temporary directory."""

    type = f"{_PKG}.WorkingDirectory"
    aliases = (f"{_OLD}.WorkingDirectory", f"{_OLD}.Worker")
    title = "Run tasks in a shared working directory."
    examples = (
        Example("Share a directory between tasks.",
                "id: example\n"
                "namespace: company.team\n"
                "\n"
                "tasks:\n"
                "  - id: wdir\n"
                "    type: io.kestra.plugin.core.flow.WorkingDirectory\n"
                "    tasks:\n"
                "      - id: write\n"
                "        type: io.kestra.plugin.scripts.shell.Commands\n"
                "        taskRunner:\n"
                "          type: io.kestra.plugin.core.runner.Process\n"
                "        commands:\n"
                "          - echo hello > hello.txt\n"
                "      - id: read\n"
                "        type: io.kestra.plugin.scripts.shell.Commands\n"
                "        taskRunner:\n"
                "          type: io.kestra.plugin.core.runner.Process\n"
                "        commands:\n"
                "          - cat hello.txt\n", full=True),
    )
    props = {
        "tasks": Prop(TASKS, dynamic=False, description="Runnable tasks only; must not be empty."),
        "cache": Prop(OBJECT, dynamic=False, fields={
            "patterns": Prop(LIST, required=True),
            "ttl": Prop(DURATION),
        }),
        "namespaceFiles": Prop(OBJECT, fields={
            "enabled": Prop(BOOLEAN, default=True),
            "include": Prop(LIST),
            "exclude": Prop(LIST),
        }),
        "inputFiles": Prop(ANY, description="A map of file name -> content, or an expression."),
        "outputFiles": Prop(LIST),
        **_BRANCHES,
    }

    @classmethod
    def validate_spec(cls, spec: "TaskSpec") -> list[str]:
        tasks = spec.props.get("tasks") or []
        if not tasks:
            return ["The 'tasks' property cannot be empty"]
        if any(not issubclass(t.cls, RunnableTask) for t in tasks):
            return ["Only runnable tasks are allowed as children of a WorkingDirectory task"]
        if any("workerGroup" in t.raw for t in tasks):
            return ["Cannot set a Worker Group in any WorkingDirectory sub-tasks, it is only supported at the "
                    "WorkingDirectory level"]
        return []
