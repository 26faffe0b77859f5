"""Loops: ForEach (and the deprecated EachSequential, EachParallel) run their ``tasks`` once per value,
computed when the task run starts; WaitFor re-runs its ``tasks`` until a condition holds."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from falconet.sdk import (
    ANY, BOOLEAN, DURATION, INTEGER, OBJECT, STRING, TASKS, Example, FlowableTask, loop_values_to_strings, now,
    Output, parse_duration, Prop, register, Resolved, StartTimer, State,
)
from falconet.plugins.core.flowables.common import BRANCHES, OLD, PKG

if TYPE_CHECKING:
    from falconet.sdk import Dispatch, Machine, TaskRun, TaskSpec

_INTERVAL = "waitfor-interval"


class _Each(FlowableTask):
    """A loop over values: rendered once at start (``tr.runtime.values``), the ``tasks`` once per value."""

    #: the property holding the values
    values_prop = "value"

    def on_start(self, m: "Machine", tr: "TaskRun", task: "TaskSpec", dispatches: "list[Dispatch]") -> None:
        raw: Any = task.props.get(self.values_prop)
        if isinstance(raw, str):
            raw = m.render(tr, task, raw)
        elif isinstance(raw, list):
            raw = [m.render(tr, task, v) if isinstance(v, str) else v for v in raw]
        elif isinstance(raw, dict):
            raw = m.render(tr, task, raw)
        tr.runtime.values = loop_values_to_strings(raw)

    def children(self, m: "Machine", tr: "TaskRun", task: "TaskSpec") -> "list[Resolved] | None":
        values = tr.runtime.values
        tasks = task.props.get("tasks")
        return m.kept_children(tr, "each", (values, tasks),
                               lambda: [Resolved(t, tr.id, value=v) for v in values or () for t in tasks or ()] or None)

    def resolve_state(self, m: "Machine", tr: "TaskRun", task: "TaskSpec",
                      dispatches: "list[Dispatch]") -> "State | None":
        if not tr.runtime.values:
            return State.SUCCESS
        return super().resolve_state(m, tr, task, dispatches)


def _grouped_nexts(m: "Machine", tr: "TaskRun", kids: "list[Resolved] | None", errors: "list[Resolved] | None",
                   finally_: "list[Resolved] | None", limit: int) -> "list[Resolved]":
    """ForEach with concurrencyLimit != 1: up to ``limit`` values run at once, tasks of one value in order."""
    current = m.current_tasks(kids, errors, finally_, tr.id)
    enabled = [r for r in kids or [] if not r.task.disabled]
    if len(current) != len(enabled) or [id(r.task) for r in current] != [id(r.task) for r in enabled]:
        return m.inner_sequential(current, tr.id)
    if m.ex.state.current is State.KILLING:
        return []
    out: list[Resolved] = []
    active = 0
    groups: dict[str, list[Resolved]] = {}
    for r in enabled:
        groups.setdefault(r.value or "", []).append(r)
    pending_new: list[list[Resolved]] = []
    for group in groups.values():
        runs = m.runs_for(group, tr.id)
        if not runs:
            pending_new.append(group)
            continue
        done = sum(1 for x in runs if x.state.current.is_terminated)
        if done < len(group):
            active += 1
            out.extend(m.inner_sequential(group, tr.id))
    for group in pending_new:
        if limit > 0 and active >= limit:
            break
        out.append(group[0])
        active += 1
    return out


@register
class ForEach(_Each):
    """Run ``tasks`` once per value; ``concurrencyLimit`` value groups at once (1 = sequential, 0 = all)."""

    type = f"{PKG}.ForEach"
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
        **BRANCHES,
    }

    values_prop = "values"

    def next_task_runs(self, m: "Machine", tr: "TaskRun", task: "TaskSpec") -> "list[Resolved]":
        errors, finally_ = m.branches(tr, task)
        kids = self.children(m, tr, task)
        limit = task.props.get("concurrencyLimit", 1)
        limit = 1 if limit is None else int(limit)
        if limit == 1:
            return m.sequential_nexts(kids, errors, finally_, tr.id)
        return _grouped_nexts(m, tr, kids, errors, finally_, limit)


@register
class EachSequential(_Each):
    """Deprecated: ForEach with concurrencyLimit 1."""

    type = f"{PKG}.EachSequential"
    aliases = (f"{OLD}.EachSequential",)
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
        **BRANCHES,
    }


@register
class EachParallel(_Each):
    """Deprecated: loop over values in parallel, up to ``concurrent`` task runs at once (0 = unlimited)."""

    type = f"{PKG}.EachParallel"
    aliases = (f"{OLD}.EachParallel",)
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
        **BRANCHES,
    }

    def next_task_runs(self, m: "Machine", tr: "TaskRun", task: "TaskSpec") -> "list[Resolved]":
        errors, finally_ = m.branches(tr, task)
        return m.parallel_nexts(self.children(m, tr, task), errors, finally_, tr.id,
                                int(task.props.get("concurrent") or 0))


@register
class WaitFor(FlowableTask):
    """Re-run ``tasks`` until ``condition`` renders truthy (an exit condition), bounded by ``checkFrequency``;
    output ``iterationCount``. Later Kestra versions call it ``LoopUntil``."""

    type = f"{PKG}.WaitFor"
    aliases = (f"{PKG}.LoopUntil",)
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
        **BRANCHES,
    }

    def on_start(self, m: "Machine", tr: "TaskRun", task: "TaskSpec", dispatches: "list[Dispatch]") -> None:
        tr.iteration = 0
        tr.outputs = {"iterationCount": 0}
        tr.runtime.loop_start = now()

    def children(self, m: "Machine", tr: "TaskRun", task: "TaskSpec") -> "list[Resolved] | None":
        return m.resolve_tasks(task.props.get("tasks"), tr.id, iteration=tr.iteration)

    def next_task_runs(self, m: "Machine", tr: "TaskRun", task: "TaskSpec") -> "list[Resolved]":
        if tr.runtime.waiting:
            return []
        errors, finally_ = m.branches(tr, task, tr.iteration)
        return m.sequential_nexts(self.children(m, tr, task), errors, finally_, tr.id, iteration=tr.iteration)

    def resolve_state(self, m: "Machine", tr: "TaskRun", task: "TaskSpec",
                      dispatches: "list[Dispatch]") -> "State | None":
        if tr.runtime.waiting:
            return None
        errors, finally_ = m.branches(tr, task, tr.iteration)
        state = m.resolve_state(self.children(m, tr, task), errors, finally_, tr, task.allow_failure,
                                task.allow_warning, iteration=tr.iteration)
        if state is None:
            return None
        if state is not State.SUCCESS and state is not State.WARNING:
            return state
        freq = task.props.get("checkFrequency") or {}
        max_iterations = int(freq.get("maxIterations", 100))
        max_duration = parse_duration(str(freq.get("maxDuration", "PT1H")))
        interval = parse_duration(str(freq.get("interval", "PT1S")))
        cond = m.render(tr, task, task.props.get("condition"))
        count = int((tr.outputs or {}).get("iterationCount", 0)) + 1
        tr.outputs = {"iterationCount": count}
        if m.truthy(cond):
            return state
        started = tr.runtime.loop_start
        assert started is not None, "on_start records the start of the loop"
        if count >= max_iterations or now() + interval - started > max_duration:
            if task.props.get("failOnMaxReached", False):
                m.log(tr, "ERROR", f"Max iterations or max duration reached for task '{task.id}'")
                return State.FAILED
            return state
        tr.runtime.waiting = True
        tr.runtime.wait_until = now() + interval
        dispatches.append(StartTimer(tr.id, _INTERVAL, now() + interval))
        return State.RUNNING

    def on_timer(self, m: "Machine", tr: "TaskRun", task: "TaskSpec", kind: str) -> None:
        """The interval elapsed: start the next iteration."""
        if kind != _INTERVAL or not tr.runtime.waiting:
            return  # already started (a timer restored after a restart fired twice)
        tr.runtime.waiting = False
        tr.runtime.wait_until = None
        tr.iteration = (tr.iteration or 0) + 1
        m.on_change(tr)

    def restore(self, m: "Machine", tr: "TaskRun", task: "TaskSpec") -> "list[Dispatch]":
        if tr.state.current is not State.RUNNING or not tr.runtime.waiting:
            return []
        return [StartTimer(tr.id, _INTERVAL, tr.runtime.wait_until or now())]
