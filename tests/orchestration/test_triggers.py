"""Flow triggers (conditions, windows, preconditions, inputs) and the Webhook trigger."""
from __future__ import annotations

import base64
import json
import textwrap

import pytest
import trio

from falconet.runtime.kernel.errors import NotFound

from .conftest import executions_of

UPSTREAM = """
id: up
namespace: orch.trig
labels:
  team: data
inputs:
  - id: fail
    type: BOOLEAN
    defaults: false
tasks:
  - id: only
    type: io.kestra.plugin.core.debug.Return
    format: "hello {{ execution.id }}"
  - id: maybe-fail
    type: io.kestra.plugin.core.execution.Fail
    runIf: "{{ inputs.fail }}"
outputs:
  - id: greeting
    type: STRING
    value: "{{ outputs.only.value }}"
"""

ALERT = """
id: alert
namespace: orch.trig
inputs:
  - id: upstream
    type: STRING
tasks:
  - id: log
    type: io.kestra.plugin.core.log.Log
    message: "{{ trigger.executionId }} {{ trigger.state }}"
triggers:
  - id: on-failure
    type: io.kestra.plugin.core.trigger.Flow
    inputs:
      upstream: "{{ outputs.only.value }}"
    conditions:
      - type: io.kestra.plugin.core.condition.ExecutionStatus
        in: [FAILED]
      - type: io.kestra.plugin.core.condition.ExecutionNamespace
        namespace: orch.trig
      - type: io.kestra.plugin.core.condition.ExecutionLabels
        labels:
          team: data
"""


def simple(flow_id: str, namespace: str = "orch.multi", message: str | None = None) -> str:
    """A flow logging ``message`` (default: its id)."""
    return f"""
id: {flow_id}
namespace: {namespace}
tasks:
  - id: log
    type: io.kestra.plugin.core.log.Log
    message: {flow_id if message is None else message}
"""


def listener(flow_id: str, namespace: str, trigger: str, message: str | None = None) -> str:
    """:func:`simple` with one Flow trigger ``t`` whose properties are the YAML ``trigger`` (from column 0)."""
    return (simple(flow_id, namespace, message) + "triggers:\n  - id: t\n    type: io.kestra.plugin.core.trigger.Flow\n"
            + textwrap.indent(trigger, "    "))


async def settle(engine, n: int = 20) -> None:
    """Let end-of-execution hooks and the executions they create run (memory store, fake clock)."""
    for _ in range(n):
        await trio.sleep(1)


async def test_alert_on_failed_executions_of_a_namespace(engine, autojump_clock):
    await engine.create_flow(UPSTREAM)
    await engine.create_flow(ALERT)
    ok = await engine.execute("orch.trig", "up")
    bad = await engine.execute("orch.trig", "up", {"fail": "true"})
    assert (ok["state"]["current"], bad["state"]["current"]) == ("SUCCESS", "FAILED")
    await settle(engine)
    alerts = await executions_of(engine, "orch.trig", "alert")
    assert len(alerts) == 1
    alert = alerts[0]
    assert alert["state"]["current"] == "SUCCESS"
    assert alert["inputs"] == {"upstream": f"hello {bad['id']}"}
    assert alert["trigger"]["id"] == "on-failure"
    assert alert["trigger"]["variables"] == {"executionId": bad["id"], "namespace": "orch.trig", "flowId": "up",
                                             "flowRevision": 1, "state": "FAILED",
                                             "outputs": {"greeting": f"hello {bad['id']}"}}


async def test_not_or_expression_and_outputs_conditions(engine, autojump_clock):
    await engine.create_flow(UPSTREAM)
    await engine.create_flow(listener("combo", "orch.other", """\
conditions:
  - type: io.kestra.plugin.core.condition.Or
    conditions:
      - type: io.kestra.plugin.core.condition.ExecutionStatus
        in: [FAILED]
      - type: io.kestra.plugin.core.condition.Expression
        expression: "{{ trigger.flowId == 'nope' }}"
  - type: io.kestra.plugin.core.condition.Not
    conditions:
      - type: io.kestra.plugin.core.condition.ExecutionFlow
        namespace: orch.trig
        flowId: other
  - type: io.kestra.plugin.core.condition.ExecutionOutputs
    expression: "{{ trigger.outputs.greeting is defined }}"
"""))
    await engine.execute("orch.trig", "up")
    await engine.execute("orch.trig", "up", {"fail": "true"})
    await settle(engine)
    rows = await executions_of(engine, "orch.other", "combo")
    assert [r["trigger"]["variables"]["state"] for r in rows] == ["FAILED"]


async def test_a_flow_does_not_trigger_itself(engine, autojump_clock):
    await engine.create_flow(listener("selfish", "orch.self", """\
conditions:
  - type: io.kestra.plugin.core.condition.ExecutionNamespace
    namespace: orch.self
""", message="me"))
    await engine.execute("orch.self", "selfish")
    await settle(engine)
    assert len(await executions_of(engine, "orch.self", "selfish")) == 1


MULTI = listener("multi", "orch.multi", """\
conditions:
  - id: both
    type: io.kestra.plugin.core.condition.MultipleCondition
    window: PT1H
    conditions:
      a:
        type: io.kestra.plugin.core.condition.ExecutionFlow
        namespace: orch.multi
        flowId: a
      b:
        type: io.kestra.plugin.core.condition.ExecutionFlow
        namespace: orch.multi
        flowId: b
""", message="both")


async def test_multiple_condition_window_persists_and_resets(engine, autojump_clock):
    for src in (MULTI, simple("a"), simple("b")):
        await engine.create_flow(src)
    await engine.execute("orch.multi", "a")
    await settle(engine, 3)
    assert await executions_of(engine, "orch.multi", "multi") == []
    stored = await engine.store.state_list("multiple-condition")
    assert len(stored) == 1 and set(stored[0][1]["results"]) == {"a"}
    await engine.execute("orch.multi", "b")
    await settle(engine, 3)
    assert len(await executions_of(engine, "orch.multi", "multi")) == 1
    assert await engine.store.state_list("multiple-condition") == []  # reset after success
    await engine.execute("orch.multi", "b")
    await settle(engine, 3)
    assert len(await executions_of(engine, "orch.multi", "multi")) == 1


async def test_preconditions_flows_and_where(engine, autojump_clock):
    await engine.create_flow(listener("pre", "orch.pre", """\
preconditions:
  id: both
  flows:
    - namespace: orch.pre
      flowId: a
    - namespace: orch.pre
      flowId: b
      states: [FAILED]
  where:
    - id: not-c
      filters:
        - field: FLOW_ID
          type: IN
          values: [a, b]
"""))
    await engine.create_flow(simple("a", "orch.pre"))
    await engine.create_flow(simple("b", "orch.pre").replace(
        "type: io.kestra.plugin.core.log.Log\n    message: b", "type: io.kestra.plugin.core.execution.Fail"))
    await engine.execute("orch.pre", "a")
    await settle(engine, 3)
    assert await executions_of(engine, "orch.pre", "pre") == []
    await engine.execute("orch.pre", "b")
    await settle(engine, 3)
    assert len(await executions_of(engine, "orch.pre", "pre")) == 1


async def test_non_terminal_states_fire_once_per_transition(engine, autojump_clock):
    """RUNNING, PAUSED, RUNNING again after the resume, then SUCCESS: one execution each, with trigger.state
    (from the upstream's state history, never from the droppable event bus)."""
    await engine.create_flow(listener("watch", "orch.bus", """\
states: [RUNNING, PAUSED, SUCCESS]
conditions:
  - type: io.kestra.plugin.core.condition.ExecutionFlow
    namespace: orch.bus
    flowId: slow
""", message='"{{ trigger.state }}"'))
    await engine.create_flow("""
id: slow
namespace: orch.bus
tasks:
  - id: wait
    type: io.kestra.plugin.core.flow.Pause
  - id: after
    type: io.kestra.plugin.core.log.Log
    message: resumed
""")
    created = await engine.create_execution("orch.bus", "slow")
    while (await engine.get_execution(created["id"]))["state"]["current"] != "PAUSED":
        await trio.sleep(0.1)
    await engine.resume(created["id"])
    assert (await engine.wait_for_end(created["id"]))["state"]["current"] == "SUCCESS"
    await settle(engine, 3)
    rows = await executions_of(engine, "orch.bus", "watch")
    # creation order (start order may interleave): the store lists the newest first, the later created first
    # among executions created at the same virtual instant
    rows.reverse()
    fired = [r["trigger"]["variables"]["state"] for r in rows]
    # the non-terminal transitions fire in their order; the terminal one may overtake the last RUNNING
    assert [s for s in fired if s != "SUCCESS"] == ["RUNNING", "PAUSED", "RUNNING"]
    assert sorted(r["trigger"]["variables"]["state"] for r in rows) == ["PAUSED", "RUNNING", "RUNNING", "SUCCESS"]
    assert {r["trigger"]["variables"]["executionId"] for r in rows} == {created["id"]}


async def test_a_slow_evaluator_misses_no_non_terminal_transition(engine, autojump_clock, monkeypatch):
    """Executions change state much faster than the triggers are evaluated: every RUNNING transition still
    fires once (the watcher queues execution ids and reads their state histories; nothing is dropped)."""
    flow_triggers = engine.orchestration.flow_triggers
    fire = flow_triggers._fire

    async def slow_fire(*args):
        await trio.sleep(1)
        await fire(*args)

    monkeypatch.setattr(flow_triggers, "_fire", slow_fire)
    await engine.create_flow("""
id: count
namespace: orch.load
tasks:
  - id: log
    type: io.kestra.plugin.core.debug.Return
    format: "{{ trigger.executionId }}"
triggers:
  - id: t
    type: io.kestra.plugin.core.trigger.Flow
    states: [RUNNING]
    conditions:
      - type: io.kestra.plugin.core.condition.ExecutionFlow
        namespace: orch.load
        flowId: quick
""")
    await engine.create_flow(simple("quick", "orch.load"))
    ids = [(await engine.create_execution("orch.load", "quick"))["id"] for _ in range(60)]
    for execution_id in ids:
        await engine.wait_for_end(execution_id)
    await settle(engine, 70)
    rows = await executions_of(engine, "orch.load", "count")
    assert sorted(r["trigger"]["variables"]["executionId"] for r in rows) == sorted(ids)


#### webhook ##################################################################################################

WEBHOOK = """
id: hook
namespace: orch.hook
inputs:
  - id: name
    type: STRING
    defaults: nobody
tasks:
  - id: out
    type: io.kestra.plugin.core.debug.Return
    format: "hi {{ inputs.name }}"
outputs:
  - id: said
    type: STRING
    value: "{{ outputs.out.value }}"
triggers:
  - id: secret-key
    type: io.kestra.plugin.core.trigger.Webhook
    key: "{{ secret('HOOK_KEY') }}"
    inputs:
      name: "{{ trigger.body.name }}"
    conditions:
      - type: io.kestra.plugin.core.condition.Expression
        expression: "{{ trigger.body.go == true }}"
  - id: waiting
    type: io.kestra.plugin.core.trigger.Webhook
    key: "wait-{{ flow.id }}"
    wait: true
  - id: outputs
    type: io.kestra.plugin.core.trigger.Webhook
    key: outputs
    returnOutputs: true
"""


async def call(engine, key: str, body: dict | None = None):
    return await engine.webhook("orch.hook", "hook", key, method="POST",
                                body=json.dumps(body).encode() if body is not None else b"",
                                headers={"content-type": ["application/json"]}, parameters={})


async def test_webhook_key_from_secret_conditions_and_inputs(engine, monkeypatch):
    monkeypatch.setenv("SECRET_HOOK_KEY", base64.b64encode(b"s3cr3t").decode())
    await engine.create_flow(WEBHOOK)
    with pytest.raises(NotFound):
        await call(engine, "wrong", {"go": True})
    assert await call(engine, "s3cr3t", {"go": False, "name": "x"}) is None  # conditions unmet: 204
    doc = await call(engine, "s3cr3t", {"go": True, "name": "ada"})
    assert doc["state"]["current"] == "CREATED" and doc["inputs"] == {"name": "ada"}
    assert doc["trigger"]["variables"]["body"] == {"go": True, "name": "ada"}
    final = await engine.wait_for_end(doc["id"])
    assert final["outputs"] == {"said": "hi ada"}


async def test_webhook_wait_and_return_outputs(engine):
    await engine.create_flow(WEBHOOK)
    done = await call(engine, "wait-hook")
    assert done["state"]["current"] == "SUCCESS" and done["outputs"] == {"said": "hi nobody"}
    resp = await call(engine, "outputs")
    assert resp["outputs"] == {"said": "hi nobody"} and resp["state"]["current"] == "SUCCESS"
    assert "taskRunList" not in resp


async def test_webhook_refuses_multiple_condition(engine):
    from falconet.runtime.kernel.errors import IllegalArgument

    await engine.create_flow("""
id: hook2
namespace: orch.hook
tasks:
  - id: log
    type: io.kestra.plugin.core.log.Log
    message: x
triggers:
  - id: w
    type: io.kestra.plugin.core.trigger.Webhook
    key: k
    conditions:
      - id: m
        type: io.kestra.plugin.core.condition.MultipleCondition
        conditions:
          a:
            type: io.kestra.plugin.core.condition.ExecutionStatus
            in: [SUCCESS]
""")
    with pytest.raises(IllegalArgument):
        await engine.webhook("orch.hook", "hook2", "k", method="GET", body=b"", headers={}, parameters={})
