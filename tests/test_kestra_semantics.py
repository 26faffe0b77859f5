"""Kestra semantics end to end in-process (memory store): one truthiness rule, JSON rendering of maps and
lists, expression errors in flowables, afterExecution, flow-level retry."""
from __future__ import annotations

from typing import Any

import pytest
import trio

from falconet import open_engine
from falconet.runtime.store.base import ExecutionQuery


def by_task(ex: dict[str, Any], task_id: str) -> list[dict[str, Any]]:
    return [tr for tr in ex["taskRunList"] if tr["taskId"] == task_id]


def states(obj: dict[str, Any]) -> list[str]:
    return [h["state"] for h in obj["state"]["histories"]]


async def run(tmp_path, source: str, inputs: dict[str, Any] | None = None) -> tuple[dict[str, Any], list[dict]]:
    async with open_engine(tmp_path, store="memory") as engine:
        flow = await engine.create_flow(source)
        ex = await engine.execute(flow.namespace, flow.id, inputs)
        return ex, await engine.get_logs(ex["id"])


#### One truthiness rule ####################################################################################

TRUTHINESS = """
id: truthiness
namespace: tests.semantics
tasks:
  - id: each
    type: io.kestra.plugin.core.flow.ForEach
    values: ["False", " false", "0.0", "0", " -0 ", "no"]
    tasks:
      - id: if
        type: io.kestra.plugin.core.flow.If
        condition: "{{ taskrun.value }}"
        then:
          - id: then
            type: io.kestra.plugin.core.debug.Return
            format: then
      - id: runif
        type: io.kestra.plugin.core.debug.Return
        runIf: "{{ taskrun.value }}"
        format: ran
      - id: fail
        type: io.kestra.plugin.core.execution.Fail
        condition: "{{ taskrun.value }}"
        allowFailure: true
      - id: assert
        type: io.kestra.plugin.core.execution.Assert
        conditions: ["{{ taskrun.value }}"]
        allowFailure: true
"""


async def test_one_truthiness_rule_for_if_runif_fail_and_assert(tmp_path):
    ex, _ = await run(tmp_path, TRUTHINESS)
    expected = {"False": True, " false": False, "0.0": True, "0": False, " -0 ": False, "no": True}
    seen = {}
    for value in expected:
        def one(task_id: str) -> dict[str, Any]:
            return next(tr for tr in by_task(ex, task_id) if tr["value"] == value)
        seen[value] = {
            "if": one("if")["outputs"]["evaluationResult"],
            "runIf": one("runif")["state"]["current"] == "SUCCESS",
            "fail": one("fail")["state"]["current"] == "WARNING",
            "assert": one("assert")["state"]["current"] == "SUCCESS",
        }
    assert seen == {v: {"if": t, "runIf": t, "fail": t, "assert": t} for v, t in expected.items()}


#### Maps and lists render as JSON ##########################################################################

JSON_RENDERING = """
id: json-rendering
namespace: tests.semantics
inputs:
  - id: j
    type: JSON
    defaults: '{"a":1,"b":[true,null]}'
tasks:
  - id: map
    type: io.kestra.plugin.core.log.Log
    message: "{{ inputs.j }}"
  - id: list
    type: io.kestra.plugin.core.log.Log
    message: "{{ [1, true, 'x'] }}"
  - id: several
    type: io.kestra.plugin.core.log.Log
    message: ["{{ inputs.j.b }}", "{{ inputs.j.a }}"]
  - id: switch
    type: io.kestra.plugin.core.flow.Switch
    value: "{{ inputs.j.b }}"
    cases:
      '[true,null]':
        - id: matched
          type: io.kestra.plugin.core.debug.Return
          format: "{{ inputs.j }}"
"""


async def test_maps_and_lists_render_as_json(tmp_path):
    ex, logs = await run(tmp_path, JSON_RENDERING)
    assert ex["state"]["current"] == "SUCCESS"
    messages = {task: [line["message"] for line in logs if line["taskId"] == task]
                for task in ("map", "list", "several")}
    assert messages == {"map": ['{"a":1,"b":[true,null]}'], "list": ['[1,true,"x"]'],
                        "several": ["[true,null]", "1"]}
    assert by_task(ex, "switch")[0]["outputs"]["value"] == "[true,null]"
    assert by_task(ex, "matched")[0]["outputs"]["value"] == '{"a":1,"b":[true,null]}'


#### Expression errors in a flowable's own properties #######################################################

INVALID_VARIABLES = """
id: variables-invalid
namespace: tests.semantics
tasks:
  - id: date
    type: io.kestra.plugin.core.debug.Return
    format: "{{taskrun.startDate}}"
  - id: parent-seq
    type: io.kestra.plugin.core.flow.Switch
    value: "{{inputs.invalid}}"
    cases:
      FIRST:
        - id: t1
          type: io.kestra.plugin.core.debug.Return
          format: "{{task.id}}"
"""


async def test_switch_value_error_fails_the_task_run_with_kestras_message(tmp_path):
    ex, logs = await run(tmp_path, INVALID_VARIABLES)
    assert ex["state"]["current"] == "FAILED"
    assert [(tr["taskId"], tr["state"]["current"]) for tr in ex["taskRunList"]] == [
        ("date", "SUCCESS"), ("parent-seq", "FAILED")]
    switch = ex["taskRunList"][1]
    assert [(line["taskRunId"], line["level"], line["message"]) for line in logs if line["level"] == "ERROR"] == [
        (switch["id"], "ERROR", "Unable to find `inputs` used in the expression `{{inputs.invalid}}` at line 1")]


@pytest.mark.parametrize("task", [
    """
    type: io.kestra.plugin.core.flow.If
    condition: "{{ inputs.nope }}"
    then: [{id: t, type: io.kestra.plugin.core.debug.Return, format: x}]""",
    """
    type: io.kestra.plugin.core.flow.ForEach
    values: "{{ inputs.nope }}"
    tasks: [{id: t, type: io.kestra.plugin.core.debug.Return, format: x}]""",
    """
    type: io.kestra.plugin.core.flow.WaitFor
    condition: "{{ inputs.nope }}"
    tasks: [{id: t, type: io.kestra.plugin.core.debug.Return, format: x}]""",
    """
    type: io.kestra.plugin.core.flow.Pause
    delay: '{{ inputs.nope }}'""",
])
async def test_flowable_property_errors_fail_the_task_run(tmp_path, task):
    source = f"""
id: flowable-error
namespace: tests.semantics
tasks:
  - id: flowable{task}
"""
    ex, logs = await run(tmp_path, source)
    flowable = by_task(ex, "flowable")[0]
    assert (ex["state"]["current"], flowable["state"]["current"]) == ("FAILED", "FAILED")
    assert any(line["taskRunId"] == flowable["id"] and line["level"] == "ERROR"
               and "Unable to find `inputs` used in the expression `{{ inputs.nope }}`" in line["message"]
               for line in logs)


#### Flow-level retry #######################################################################################

RETRY_FLOWS = """
id: failing-child
namespace: tests.semantics
tasks:
  - id: boom
    type: io.kestra.plugin.core.execution.Fail
---
id: retried
namespace: tests.semantics
retry:
  type: constant
  interval: PT10S
  maxAttempt: 3
tasks:
  - id: sub
    type: io.kestra.plugin.core.flow.Subflow
    namespace: tests.semantics
    flowId: failing-child
    allowFailure: true
  - id: own
    type: io.kestra.plugin.core.execution.Fail
    allowFailure: true
    retry:
      type: constant
      interval: PT1S
      maxAttempt: 2
  - id: inherited
    type: io.kestra.plugin.core.execution.Fail
"""


async def test_flow_retry_applies_to_every_task_subflows_included(tmp_path, autojump_clock):
    async with open_engine(tmp_path, store="memory") as engine:
        for source in RETRY_FLOWS.split("---"):
            await engine.create_flow(source)
        ex = await engine.execute("tests.semantics", "retried")
        children, _ = await engine.store.search_executions(
            ExecutionQuery(namespace="tests.semantics", flow_id="failing-child", page=1, size=10))
    sub, own, inherited = (by_task(ex, t)[0] for t in ("sub", "own", "inherited"))
    assert ex["state"]["current"] == "FAILED"
    # three attempts of the Subflow task, each with its own child execution
    assert [a["state"]["current"] for a in sub["attempts"]] == ["FAILED"] * 3
    assert len(children) == 3 and {c["state"]["current"] for c in children} == {"FAILED"}
    assert sub["outputs"]["executionId"] in {c["id"] for c in children}
    assert states(sub) == ["CREATED", "RUNNING", "RETRYING", "RUNNING", "RETRYING", "RUNNING", "WARNING"]
    assert len(own["attempts"]) == 2 and own["state"]["current"] == "WARNING"
    assert len(inherited["attempts"]) == 3 and inherited["state"]["current"] == "FAILED"


#### afterExecution #########################################################################################

def after_execution_flow(main: str) -> str:
    return f"""
id: after
namespace: tests.semantics
tasks:
{main}
finally:
  - id: fin
    type: io.kestra.plugin.core.debug.Return
    format: "{{{{ execution.state }}}}"
afterExecution:
  - id: state
    type: io.kestra.plugin.core.debug.Return
    format: "{{{{ execution.state }}}}"
  - id: onSuccess
    type: io.kestra.plugin.core.log.Log
    runIf: "{{{{ execution.state == 'SUCCESS' }}}}"
    message: succeeded
  - id: onFailure
    type: io.kestra.plugin.core.log.Log
    runIf: "{{{{ execution.state == 'FAILED' }}}}"
    message: failed
"""


OK_MAIN = """
  - id: main
    type: io.kestra.plugin.core.debug.Return
    format: ok
"""
FAILING_MAIN = """
  - id: main
    type: io.kestra.plugin.core.execution.Fail
errors:
  - id: err
    type: io.kestra.plugin.core.debug.Return
    format: handled
"""


@pytest.mark.parametrize("main,final,ran", [(OK_MAIN, "SUCCESS", "onSuccess"), (FAILING_MAIN, "FAILED", "onFailure")],
                         ids=["success", "failed"])
async def test_after_execution_runs_after_the_end_with_the_final_state(tmp_path, main, final, ran):
    ex, logs = await run(tmp_path, after_execution_flow(main))
    assert ex["state"]["current"] == final
    runs = {tr["taskId"]: tr for tr in ex["taskRunList"]}
    assert runs["fin"]["outputs"]["value"] == "RUNNING"  # finally runs while the execution still runs
    assert runs["state"]["outputs"]["value"] == final
    skipped = "onFailure" if ran == "onSuccess" else "onSuccess"
    assert (runs[ran]["state"]["current"], runs[skipped]["state"]["current"]) == ("SUCCESS", "SKIPPED")
    ids = [tr["taskId"] for tr in ex["taskRunList"]]
    assert ids[-3:] == ["state", "onSuccess", "onFailure"]
    ended = ex["state"]["endDate"]
    assert all(runs[t]["state"]["startDate"] >= ended for t in ("state", "onSuccess", "onFailure"))
    assert [h["state"] for h in ex["state"]["histories"]][-1] == final


async def test_a_failing_after_execution_task_stops_the_rest_and_keeps_the_state(tmp_path):
    source = """
id: after-fails
namespace: tests.semantics
tasks:
  - id: main
    type: io.kestra.plugin.core.debug.Return
    format: ok
afterExecution:
  - id: boom
    type: io.kestra.plugin.core.execution.Fail
  - id: never
    type: io.kestra.plugin.core.debug.Return
    format: x
"""
    ex, logs = await run(tmp_path, source)
    assert ex["state"]["current"] == "SUCCESS"
    assert [(tr["taskId"], tr["state"]["current"]) for tr in ex["taskRunList"]] == [
        ("main", "SUCCESS"), ("boom", "FAILED")]
    assert any(line["taskId"] == "boom" and line["level"] == "ERROR" for line in logs)


async def test_after_execution_runs_after_a_kill(tmp_path, autojump_clock):
    source = """
id: after-kill
namespace: tests.semantics
tasks:
  - id: sleep
    type: io.kestra.plugin.core.flow.Sleep
    duration: PT1H
afterExecution:
  - id: state
    type: io.kestra.plugin.core.debug.Return
    format: "{{ execution.state }}"
"""
    async with open_engine(tmp_path, store="memory") as engine:
        flow = await engine.create_flow(source)
        created = await engine.create_execution(flow.namespace, flow.id)
        while not (await engine.get_execution(created["id"])).get("taskRunList"):
            await trio.sleep(1)
        await engine.kill(created["id"])
        ex = await engine.wait_for_end(created["id"])
    assert ex["state"]["current"] == "KILLED"
    assert [(tr["taskId"], tr["state"]["current"]) for tr in ex["taskRunList"]] == [
        ("sleep", "KILLED"), ("state", "SUCCESS")]
    assert ex["taskRunList"][1]["outputs"]["value"] == "KILLED"


async def test_boolean_properties_are_not_conditions(tmp_path):
    """A BOOLEAN property (Subflow ``wait``) reads ``False`` as false, while a condition finds it true."""
    async with open_engine(tmp_path, store="memory") as engine:
        await engine.create_flow("""
id: child
namespace: tests.semantics
tasks:
  - id: one
    type: io.kestra.plugin.core.debug.Return
    format: one
""")
        await engine.create_flow("""
id: parent
namespace: tests.semantics
tasks:
  - id: sub
    type: io.kestra.plugin.core.flow.Subflow
    namespace: tests.semantics
    flowId: child
    wait: "False"
  - id: cond
    type: io.kestra.plugin.core.debug.Return
    runIf: "{{ 'False' }}"
    format: ran
""")
        ex = await engine.execute("tests.semantics", "parent")
    sub, cond = by_task(ex, "sub")[0], by_task(ex, "cond")[0]
    assert "state" not in sub["outputs"]  # not waited for
    assert cond["state"]["current"] == "SUCCESS"


async def test_an_executor_error_ends_an_execution_that_has_after_execution_tasks(tmp_path, monkeypatch):
    """The machine raising (an engine bug, a broken revision) fails the execution; with afterExecution tasks
    declared, the actor must not wait for tasks that the broken machine can no longer create."""
    from falconet.runtime.kernel.machine import Machine

    step = Machine.step

    def broken_step(self):
        if any(tr.task_id == "main" and tr.state.current.is_terminated for tr in self.ex.task_run_list):
            raise RuntimeError("engine bug")
        return step(self)

    monkeypatch.setattr(Machine, "step", broken_step)
    source = """
id: after-executor-error
namespace: tests.semantics
tasks:
  - id: main
    type: io.kestra.plugin.core.debug.Return
    format: ok
afterExecution:
  - id: after
    type: io.kestra.plugin.core.debug.Return
    format: x
"""
    with trio.fail_after(10):
        ex, logs = await run(tmp_path, source)
    assert ex["state"]["current"] == "FAILED"
    assert any("Executor error" in line["message"] for line in logs)
