"""The execution state machine as a pure function: no trio, no store — a flow, a document, and the
dispatches that :meth:`Machine.step` returns, with task results applied by hand."""
from __future__ import annotations

from typing import Any

import pytest

from falconet.runtime.kernel.machine import Finished, Machine, RunTask, StartTimer
from falconet.runtime.expr.render import Renderer, is_truthy
from falconet.runtime.flow.parsing import parse_flow
from falconet.runtime.kernel.execution import Execution
from falconet.sdk.plugin import load_plugins
from falconet.runtime.kernel.state import State, worst

RENDERER = Renderer()


def machine(source: str, inputs: dict[str, Any] | None = None) -> tuple[Machine, list[tuple[str, str]]]:
    flow = parse_flow(source, registry=load_plugins())
    ex = Execution(namespace=flow.namespace, flow_id=flow.id, flow_revision=1, inputs=inputs or {})
    logs: list[tuple[str, str]] = []

    def variables(tr, task):
        return {"inputs": ex.inputs, "taskrun": {"value": tr.value if tr else None}}

    m = Machine(ex, flow,
                render=lambda tr, task, v: RENDERER.render_value(v, variables(tr, task)),
                render_typed=lambda tr, task, v: RENDERER.render_value_typed(v, variables(tr, task)),
                truthy=is_truthy,
                log=lambda tr, level, msg: logs.append((level, msg)),
                on_change=lambda tr: None)
    return m, logs


def run(m: Machine, results: dict[str, State] | None = None, max_rounds: int = 100,
        pending: list | None = None) -> list[str]:
    """Step until the execution ends, finishing every dispatched task (``pending`` first) with
    ``results`` (default SUCCESS); returns the task ids in dispatch order."""
    order: list[str] = []
    for _ in range(max_rounds):
        dispatches, pending = (pending, None) if pending is not None else (m.step(), None)
        finished = [d for d in dispatches if isinstance(d, Finished)]
        if finished:
            m.ex.state.set(finished[0].state)
            return order
        runs = [d for d in dispatches if isinstance(d, RunTask)]
        if not runs:
            return order
        for d in runs:
            order.append(d.task.id)
            m.apply_attempt_start(d.task_run)
            m.apply_attempt_end(d.task_run, (results or {}).get(d.task.id, State.SUCCESS), None, True, d.task)
    raise AssertionError("the machine did not settle")


def created(m: Machine) -> list[str]:
    return [tr.task_id for tr in m.ex.task_run_list]


#### pure helpers ##########################################################################################

@pytest.mark.parametrize("states,expected", [
    ([], State.SUCCESS),
    ([State.SUCCESS, State.WARNING], State.WARNING),
    ([State.WARNING, State.FAILED, State.SUCCESS], State.FAILED),
    ([State.FAILED, State.KILLED], State.KILLED),
    ([State.PAUSED, State.SUCCESS], State.PAUSED),
    ([State.SKIPPED], State.SUCCESS),
])
def test_worst_state(states, expected):
    assert worst(states) is expected


def test_state_predicates():
    assert State.RETRIED.is_terminated and not State.RETRYING.is_terminated
    assert State.RESTARTED.is_created and State.KILLING.is_running
    assert State.PAUSED.is_restartable and not State.SUCCESS.is_restartable


#### ordering ##############################################################################################

PARALLEL = """
id: p
namespace: t
tasks:
  - id: par
    type: io.kestra.plugin.core.flow.Parallel
    concurrent: 2
    tasks:
      - {id: a, type: io.kestra.plugin.core.debug.Return, format: a}
      - {id: b, type: io.kestra.plugin.core.debug.Return, format: b}
      - {id: c, type: io.kestra.plugin.core.debug.Return, format: c}
  - {id: last, type: io.kestra.plugin.core.debug.Return, format: last}
"""


def test_parallel_respects_concurrent_and_parent_comes_first():
    m, _ = machine(PARALLEL)
    dispatches = m.step()
    assert [d.task.id for d in dispatches if isinstance(d, RunTask)] == ["a", "b"]  # concurrent: 2
    assert created(m) == ["par", "a", "b"]
    assert run(m, pending=dispatches) == ["a", "b", "c", "last"]


def test_parallel_end_to_end_order_and_state():
    m, _ = machine(PARALLEL)
    run(m)
    assert created(m) == ["par", "a", "b", "c", "last"]
    assert m.ex.state.current is State.SUCCESS


SWITCH = """
id: s
namespace: t
inputs:
  - {id: v, type: STRING}
tasks:
  - id: sw
    type: io.kestra.plugin.core.flow.Switch
    value: "{{ inputs.v }}"
    cases:
      A:
        - {id: in_a, type: io.kestra.plugin.core.debug.Return, format: a}
    defaults:
      - {id: other, type: io.kestra.plugin.core.debug.Return, format: other}
"""


@pytest.mark.parametrize("value,branch,defaults", [("A", "in_a", False), ("Z", "other", True)])
def test_switch_picks_case_or_defaults(value, branch, defaults):
    m, _ = machine(SWITCH, {"v": value})
    assert run(m) == [branch]
    sw = m.ex.task_run_list[0]
    assert sw.outputs == {"value": value, "defaults": defaults}
    assert m.ex.state.current is State.SUCCESS


FOREACH = """
id: f
namespace: t
tasks:
  - id: loop
    type: io.kestra.plugin.core.flow.ForEach
    values: ["x", 1, {"k": "v"}, "x"]
    concurrencyLimit: 0
    tasks:
      - {id: one, type: io.kestra.plugin.core.debug.Return, format: "{{ taskrun.value }}"}
      - {id: two, type: io.kestra.plugin.core.debug.Return, format: "{{ taskrun.value }}"}
"""


def test_foreach_unlimited_starts_every_group_and_keeps_groups_sequential():
    m, _ = machine(FOREACH)
    dispatches = m.step()
    first = [(d.task.id, d.task_run.value) for d in dispatches if isinstance(d, RunTask)]
    # duplicates removed, non-strings as JSON; the first task of every value at once, not the second
    assert first == [("one", "x"), ("one", "1"), ("one", '{"k":"v"}')]
    run(m, pending=dispatches)
    assert len(m.ex.task_run_list) == 1 + 3 * 2
    assert m.ex.state.current is State.SUCCESS


#### failure handling ######################################################################################

ERRORS = """
id: e
namespace: t
tasks:
  - id: seq
    type: io.kestra.plugin.core.flow.Sequential
    tasks:
      - {id: bad, type: io.kestra.plugin.core.debug.Return, format: x}
      - {id: skipped, type: io.kestra.plugin.core.debug.Return, format: y}
    errors:
      - {id: local, type: io.kestra.plugin.core.debug.Return, format: handled}
  - {id: after, type: io.kestra.plugin.core.debug.Return, format: z}
errors:
  - {id: global, type: io.kestra.plugin.core.debug.Return, format: g}
"""


def test_local_errors_then_global_errors():
    m, _ = machine(ERRORS)
    order = run(m, {"bad": State.FAILED})
    assert order == ["bad", "local", "global"]
    assert {tr.task_id: tr.state.current for tr in m.ex.task_run_list} == {
        "seq": State.FAILED, "bad": State.FAILED, "local": State.SUCCESS, "global": State.SUCCESS}
    assert m.ex.state.current is State.FAILED


def test_allow_failure_turns_failed_into_warning():
    src = """
id: af
namespace: t
tasks:
  - {id: bad, type: io.kestra.plugin.core.debug.Return, format: x, allowFailure: true}
  - {id: next, type: io.kestra.plugin.core.debug.Return, format: y}
"""
    m, _ = machine(src)
    assert run(m, {"bad": State.FAILED}) == ["bad", "next"]
    assert m.ex.task_run_list[0].state.current is State.WARNING
    assert m.ex.state.current is State.WARNING


def test_run_if_false_skips():
    src = """
id: ri
namespace: t
tasks:
  - {id: maybe, type: io.kestra.plugin.core.debug.Return, format: x, runIf: "{{ 1 == 2 }}"}
  - {id: always, type: io.kestra.plugin.core.debug.Return, format: y}
"""
    m, _ = machine(src)
    assert run(m) == ["always"]
    assert m.ex.task_run_list[0].state.current is State.SKIPPED
    assert m.ex.state.current is State.SUCCESS


def test_switch_without_match_fails_with_a_message():
    src = SWITCH.replace("    defaults:\n      - {id: other, type: io.kestra.plugin.core.debug.Return, format: other}\n", "")
    m, logs = machine(src, {"v": "nope"})
    run(m)
    assert m.ex.state.current is State.FAILED
    assert any("nope" in msg for _, msg in logs)


def test_pause_arms_timers_and_pauses_the_execution():
    src = """
id: pz
namespace: t
tasks:
  - id: wait
    type: io.kestra.plugin.core.flow.Pause
    delay: PT5M
    timeout: PT1H
"""
    m, _ = machine(src)
    dispatches = m.step()
    timers = sorted((d.kind, round((d.deadline - m.ex.task_run_list[0].state.start_date).total_seconds()))
                    for d in dispatches if isinstance(d, StartTimer))
    assert timers == [("pause-delay", 300), ("pause-timeout", 3600)]
    assert m.ex.task_run_list[0].state.current is State.PAUSED
    assert m.ex.state.current is State.PAUSED


def test_kill_all_marks_children_before_parents():
    m, _ = machine(PARALLEL)
    m.step()
    killed = m.kill_all()
    assert [tr.task_id for tr in killed] == ["b", "a", "par"]
    assert all(tr.state.current is State.KILLED for tr in m.ex.task_run_list)


TWO = """
id: two
namespace: tests.exec
tasks:
  - id: a
    type: io.kestra.plugin.core.debug.Return
    format: x
  - id: b
    type: io.kestra.plugin.core.debug.Return
    format: y
"""
EXIT = """
id: exit
namespace: tests.exec
tasks:
  - id: a
    type: io.kestra.plugin.core.debug.Return
    format: x
  - id: stop
    type: io.kestra.plugin.core.execution.Exit
    state: KILLED
"""


def test_step_returns_finished_last_and_keeps_it_out_of_the_document():
    m, _ = machine(TWO)
    (first,) = m.step()
    assert isinstance(first, RunTask) and first.task.id == "a"
    m.apply_attempt_end(first.task_run, State.SUCCESS, None, True, first.task)
    (second,) = m.step()
    m.apply_attempt_end(second.task_run, State.SUCCESS, None, True, second.task)
    assert m.step() == [Finished(State.SUCCESS)]
    assert m.ex.state.current is State.RUNNING  # the actor sets the final state (after SLA, outputs, retries)
    assert "_extra" not in m.ex.to_dict(private=True)


def test_an_exit_task_decides_the_finished_state_once():
    m, _ = machine(EXIT)
    (first,) = m.step()
    m.apply_attempt_end(first.task_run, State.SUCCESS, None, True, first.task)
    decisions = m.step()  # Exit is execution-updating: applied in the step itself
    assert decisions == [Finished(State.KILLED)]
    assert m.ex.runtime.exit_state is None  # consumed: a restart of the execution decides again
