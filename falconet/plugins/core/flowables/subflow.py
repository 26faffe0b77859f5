"""Subflow (and its deprecated name ``Flow``): one execution of another flow per attempt; with ``wait``,
the task run ends with it, and a retry policy starts a new child after a failure."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from falconet.sdk import (
    ANY, BOOLEAN, INTEGER, MAP, STRING, Attempt, Example, FlowableTask, next_retry_delay, now, Output, Prop,
    register, StartSubflow, StartTimer, State, StateHistory,
)
from falconet.plugins.core.flowables.common import OLD, PKG

if TYPE_CHECKING:
    from falconet.sdk import Dispatch, Machine, Resolved, TaskRun, TaskSpec

_RETRY = "subflow-retry"

#: the properties Subflow and ForEachItem share
SUBFLOW_COMMON: dict[str, Prop] = {
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


class ChildExecution(FlowableTask):
    """A task run whose result is that of child executions (created by the engine for its
    ``StartSubflow`` command): no child task runs; the end of the child is recorded in the document."""

    def children(self, m: "Machine", tr: "TaskRun", task: "TaskSpec") -> "list[Resolved] | None":
        return None

    def next_task_runs(self, m: "Machine", tr: "TaskRun", task: "TaskSpec") -> "list[Resolved]":
        return []

    def on_child_end(self, m: "Machine", tr: "TaskRun", task: "TaskSpec", state: "State",
                     outputs: "dict[str, Any] | None") -> None:
        if outputs is not None:
            tr.outputs = outputs
        tr.runtime.subflow_state = state
        m.on_change(tr)

    @staticmethod
    def child_state(tr: "TaskRun") -> "State | None":
        """The state the child execution(s) ended in (also the last attempt's), or None while running."""
        state = tr.runtime.subflow_state
        if state is None:
            return None
        if tr.attempts and not tr.attempts[-1].state.current.is_terminated:
            tr.attempts[-1].state.set(state)
        return state


@register
class Subflow(ChildExecution):
    """Create an execution of another flow; with ``wait`` this task run ends with it (outputs
    ``executionId``, ``state``, ``outputs``)."""

    type = f"{PKG}.Subflow"
    aliases = (f"{OLD}.Subflow", f"{OLD}.Flow")
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
    executable: ClassVar[bool] = True
    props = {
        **SUBFLOW_COMMON,
        "outputs": Prop(MAP, description="Deprecated: rendered in the subflow's context."),
    }

    def on_start(self, m: "Machine", tr: "TaskRun", task: "TaskSpec", dispatches: "list[Dispatch]") -> None:
        tr.attempts.append(Attempt(StateHistory(State.RUNNING)))
        dispatches.append(StartSubflow(tr, task))

    def resolve_state(self, m: "Machine", tr: "TaskRun", task: "TaskSpec",
                      dispatches: "list[Dispatch]") -> "State | None":
        if tr.runtime.subflow_retry_due:  # the retry delay elapsed: a new attempt, a new child
            tr.runtime.subflow_retry_due = False
            tr.runtime.retry_at = None
            tr.attempts.append(Attempt(StateHistory(State.RUNNING)))
            m.on_change(tr)
            dispatches.append(StartSubflow(tr, task))
            return State.RUNNING
        state = self.child_state(tr)
        if state is None:
            return None
        if state is State.FAILED and self._retry(m, tr, task, dispatches):
            return State.RUNNING
        if state is State.FAILED and task.allow_failure:
            state = State.WARNING
        if state is State.WARNING and task.allow_warning:
            state = State.SUCCESS
        return state

    def _retry(self, m: "Machine", tr: "TaskRun", task: "TaskSpec", dispatches: "list[Dispatch]") -> bool:
        """A FAILED task run under an in-place retry policy (its own, an enclosing task's or the flow's):
        RETRYING until the delay elapses, then a new attempt starts a new child execution (Kestra's
        RESTART_FAILED_TASK). False when no retry applies or the policy is exhausted."""
        retry = m.retry_policy(tr, task)
        if retry is None or retry.behavior == "CREATE_NEW_EXECUTION" or not tr.attempts:
            return False
        delay = next_retry_delay(retry, len(tr.attempts), tr.attempts[0].state.start_date, now())
        if delay is None:
            return False
        tr.runtime.subflow_state = None
        tr.runtime.retry_at = now() + delay
        m.set_state(tr, State.RETRYING)
        dispatches.append(StartTimer(tr.id, _RETRY, now() + delay))
        return True

    def on_timer(self, m: "Machine", tr: "TaskRun", task: "TaskSpec", kind: str) -> None:
        """The retry delay elapsed: the next step starts a new attempt."""
        if kind == _RETRY and tr.state.current is State.RETRYING:
            tr.runtime.subflow_retry_due = True
            m.set_state(tr, State.RUNNING)

    def restore(self, m: "Machine", tr: "TaskRun", task: "TaskSpec") -> "list[Dispatch]":
        if tr.state.current is State.RETRYING:
            return [StartTimer(tr.id, _RETRY, tr.runtime.retry_at or now())]
        if tr.state.current is State.RUNNING and tr.runtime.subflow_state is None \
                and not tr.runtime.subflow_retry_due:
            return [StartSubflow(tr, task, resume=True)]  # wait again for the child it started
        return []
