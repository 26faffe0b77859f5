"""Subflow: child trigger and labels, deprecated outputs, kill cascade, restart."""
from __future__ import annotations

import trio

from .conftest import executions_of

CHILD = """
id: child
namespace: orch.sub
inputs:
  - id: n
    type: INT
tasks:
  - id: gate
    type: io.kestra.plugin.core.execution.Fail
    runIf: "{{ kv('gate') != 'open' }}"
  - id: echo
    type: io.kestra.plugin.core.debug.Return
    format: "n={{ inputs.n }}"
"""

PARENT = """
id: parent
namespace: orch.sub
labels:
  team: core
tasks:
  - id: launch
    type: io.kestra.plugin.core.flow.Subflow
    namespace: orch.sub
    flowId: child
    inheritLabels: true
    inputs:
      n: 7
    labels:
      from: parent
    outputs:
      said: "{{ outputs.echo.value ?? 'nothing' }}"
"""


async def test_child_trigger_labels_outputs_and_restart(engine):
    await engine.create_flow(CHILD)
    await engine.create_flow(PARENT)
    await engine.kv_put("orch.sub", "gate", "closed")
    first = await engine.execute("orch.sub", "parent")
    assert first["state"]["current"] == "FAILED"
    launch = first["taskRunList"][0]
    assert launch["outputs"]["state"] == "FAILED" and launch["outputs"]["outputs"] == {"said": "nothing"}
    [child] = await executions_of(engine, "orch.sub", "child")
    assert child["trigger"] == {"id": "launch", "type": "io.kestra.plugin.core.flow.Subflow", "variables": {
        "executionId": first["id"], "namespace": "orch.sub", "flowId": "parent", "flowRevision": 1}}
    labels = {lb["key"]: lb["value"] for lb in child["labels"]}
    assert labels == {"system.correlationId": first["id"], "team": "core", "from": "parent"}
    await engine.kv_put("orch.sub", "gate", "open")
    await engine.restart(first["id"])
    again = await engine.wait_for_end(first["id"])
    assert again["state"]["current"] == "SUCCESS"
    assert again["taskRunList"][0]["outputs"]["outputs"] == {"said": "n=7"}
    children = await executions_of(engine, "orch.sub", "child")
    assert sorted(c["state"]["current"] for c in children) == ["FAILED", "SUCCESS"]


async def test_kill_of_the_parent_kills_the_child(engine):
    await engine.create_flow(CHILD.replace("  - id: gate", "  - id: nap\n    type: io.kestra.plugin.core.flow.Sleep\n"
                                           "    duration: PT60S\n  - id: gate"))
    await engine.create_flow(PARENT)
    ex = await engine.execute("orch.sub", "parent", wait=False)
    with trio.fail_after(10):
        while not any(a.ex.flow_id == "child" for a in engine.actors.values()):
            await trio.sleep(0.01)
    await engine.kill(ex["id"])
    assert (await engine.wait_for_end(ex["id"]))["state"]["current"] == "KILLED"
    [child] = await executions_of(engine, "orch.sub", "child")
    assert (await engine.wait_for_end(child["id"]))["state"]["current"] == "KILLED"
