"""Pause: the task run (and so the execution) is PAUSED until resumed through the API, or until its
``delay`` elapses; its ``timeout`` fails it when it elapses first. Deadlines are recorded in the document
so a restart re-arms them."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from falconet.sdk import (
    DURATION, ENUM, INPUTS, TASKS, Example, FlowableTask, now, Output, Prop, register, StartTimer, State,
)
from falconet.plugins.core.flowables.common import BRANCHES, OLD, PKG, rendered_duration

if TYPE_CHECKING:
    from falconet.sdk import Dispatch, Machine, Resolved, TaskRun, TaskSpec

_DELAY, _TIMEOUT = "pause-delay", "pause-timeout"


@register
class Pause(FlowableTask):
    """PAUSE the execution until resumed through the API (with ``onResume`` inputs), or until ``delay``
    (``pauseDuration``) elapses; the common ``timeout`` fails the task run when it elapses first."""

    type = f"{PKG}.Pause"
    aliases = (f"{OLD}.Pause",)
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
        **BRANCHES,
    }

    def on_start(self, m: "Machine", tr: "TaskRun", task: "TaskSpec", dispatches: "list[Dispatch]") -> None:
        if tr.runtime.resumed:
            return
        start = now()
        delay = rendered_duration(m, tr, task, task.props.get("delay") or task.props.get("pauseDuration"))
        timeout = rendered_duration(m, tr, task, task.timeout)
        m.set_state(tr, State.PAUSED)
        if delay is not None:
            tr.runtime.pause_deadline = start + delay
            dispatches.append(StartTimer(tr.id, _DELAY, start + delay))
        if timeout is not None:
            tr.runtime.pause_timeout = start + timeout
            dispatches.append(StartTimer(tr.id, _TIMEOUT, start + timeout))

    def next_task_runs(self, m: "Machine", tr: "TaskRun", task: "TaskSpec") -> "list[Resolved]":
        if not tr.runtime.resumed:
            return []
        return super().next_task_runs(m, tr, task)

    def resolve_state(self, m: "Machine", tr: "TaskRun", task: "TaskSpec",
                      dispatches: "list[Dispatch]") -> "State | None":
        if not tr.runtime.resumed:
            return None
        if not task.props.get("tasks"):
            return State.SUCCESS
        return super().resolve_state(m, tr, task, dispatches)

    def on_resume(self, m: "Machine", tr: "TaskRun", task: "TaskSpec", on_resume: "dict[str, Any] | None") -> None:
        """Resumed (API or elapsed delay): RUNNING, or SUCCESS without sub-tasks."""
        tr.runtime.resumed = True
        if on_resume is not None:
            tr.outputs = {"onResume": on_resume}
        m.set_state(tr, State.RUNNING)
        if not task.props.get("tasks"):
            m.set_state(tr, State.SUCCESS)

    def on_timer(self, m: "Machine", tr: "TaskRun", task: "TaskSpec", kind: str) -> None:
        if tr.state.current is not State.PAUSED:
            return
        if kind == _DELAY:
            self.on_resume(m, tr, task, None)
        elif kind == _TIMEOUT:
            m.log(tr, "WARN", f"Pause timeout reached for task '{task.id}'")
            tr.runtime.resumed = True
            m.set_state(tr, State.FAILED)

    def restore(self, m: "Machine", tr: "TaskRun", task: "TaskSpec") -> "list[Dispatch]":
        if tr.state.current is not State.PAUSED or tr.runtime.resumed:
            return []
        return [StartTimer(tr.id, kind, deadline)
                for kind, deadline in ((_DELAY, tr.runtime.pause_deadline), (_TIMEOUT, tr.runtime.pause_timeout))
                if deadline is not None]
