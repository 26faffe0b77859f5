"""A flowable defined outside the core reaches the kernel only through its hooks: a ``StartJob`` runs its
``run_job`` in the execution actor and the result (or the exception it raised) comes back to
``on_event``; a ``StartTimer`` comes back to ``on_timer``; children wait until the flowable lets them."""
from __future__ import annotations

from typing import Any

from falconet.sdk import (
    BOOLEAN, TASKS, FlowableTask, Prop, StartJob, StartTimer, State, now, register,
)
from falconet.sdk.plugin import load_plugins

from .e2e import engine_at, messages, task_runs


@register
class Gate(FlowableTask):
    """Children run once a job opened the gate and a timer ticked; ``stuck`` makes the job raise."""

    type = "tests.flowables.Gate"
    props = {
        "stuck": Prop(BOOLEAN, default=False, dynamic=False),
        "tasks": Prop(TASKS, required=True, dynamic=False),
    }

    def on_start(self, m, tr, task, dispatches):
        tr.outputs = {"gate": "closed", "ticked": False}
        dispatches.append(StartJob(tr, task, "open"))
        dispatches.append(StartTimer(tr.id, "tick", now()))

    async def run_job(self, services, tr, task, job) -> Any:
        if task.props.get("stuck"):
            raise ValueError("the gate is stuck")
        return f"{job} in {services.ex.namespace}"

    def on_event(self, m, tr, task, event):
        tr.outputs = {**tr.outputs, "gate": "failed" if isinstance(event, Exception) else event}
        m.on_change(tr)

    def on_timer(self, m, tr, task, kind):
        tr.outputs = {**tr.outputs, "ticked": kind == "tick"}
        m.on_change(tr)

    def _open(self, tr) -> bool:
        return tr.outputs["ticked"] and tr.outputs["gate"] not in ("closed", "failed")

    def next_task_runs(self, m, tr, task):
        return super().next_task_runs(m, tr, task) if self._open(tr) else []

    def resolve_state(self, m, tr, task, dispatches):
        if tr.outputs["gate"] == "failed":
            return State.FAILED
        return super().resolve_state(m, tr, task, dispatches) if self._open(tr) else None


FLOW = """
id: gates
namespace: company.team
tasks:
  - id: gate
    type: tests.flowables.Gate
    tasks:
      - id: inside
        type: io.kestra.plugin.core.log.Log
        message: "{{ outputs.gate.gate }}"
  - id: stuck
    type: tests.flowables.Gate
    stuck: true
    tasks:
      - id: never
        type: io.kestra.plugin.core.log.Log
        message: never
"""


async def test_jobs_timers_and_job_failures_reach_the_flowable(tmp_path):
    load_plugins()
    async with engine_at(tmp_path) as engine:
        await engine.create_flow(FLOW)
        ex = await engine.execute("company.team", "gates")
        runs = task_runs(ex)
        assert runs["gate"]["state"]["current"] == "SUCCESS"
        assert runs["gate"]["outputs"] == {"gate": "open in company.team", "ticked": True}
        assert await messages(engine, ex, "inside") == [("INFO", "open in company.team")]
        assert runs["stuck"]["state"]["current"] == "FAILED"
        assert runs["stuck"]["outputs"]["gate"] == "failed"
        assert ("ERROR", "the gate is stuck") in await messages(engine, ex, "stuck")
        assert "never" not in runs
        assert ex["state"]["current"] == "FAILED"
