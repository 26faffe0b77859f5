"""The engine end to end in-process: state histories, retries, timeouts, pause, kill, restart from disk."""
from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing

from falconet import open_engine
from falconet.sdk.plugin import INTEGER, Prop, RunnableTask, register
from falconet.runtime.store.base import ExecutionQuery

#### A task that records what it saw ########################################################################

SEEN: dict[str, list[str]] = {}


@register
class Recorder(RunnableTask):
    """Test task: waits ``seconds`` (fake clock) and records whether it finished or was cancelled."""

    type = "io.falconet.tests.Recorder"
    props = {"seconds": Prop(INTEGER, default=3600)}

    async def run(self, ctx: Any) -> dict[str, Any] | None:
        log = SEEN.setdefault(ctx.execution_id, [])
        try:
            await trio.sleep(ctx.prop("seconds"))
        except trio.Cancelled:
            log.append(f"cancelled:{ctx.task_run_id}")
            raise
        log.append(f"done:{ctx.task_run_id}")
        return {"slept": ctx.prop("seconds")}


def states(tr: dict[str, Any]) -> list[str]:
    return [h["state"] for h in tr["state"]["histories"]]


async def wait_state(engine, execution_id: str, state: str) -> dict[str, Any]:
    while True:
        doc = await engine.get_execution(execution_id)
        if doc["state"]["current"] == state:
            return doc
        await trio.sleep(0.01)


#### Golden histories ######################################################################################

SEQ = """
id: seq
namespace: tests.engine
tasks:
  - id: a
    type: io.kestra.plugin.core.debug.Return
    format: "{{ task.id }}"
  - id: box
    type: io.kestra.plugin.core.flow.Sequential
    tasks:
      - id: b
        type: io.kestra.plugin.core.debug.Return
        format: "{{ outputs.a.value }}-b"
"""


async def test_sequential_golden_history():
    async with open_engine(store="memory") as engine:
        await engine.create_flow(SEQ)
        ex = await engine.execute("tests.engine", "seq")
    assert ex["state"]["current"] == "SUCCESS"
    assert states(ex) == ["CREATED", "RUNNING", "SUCCESS"]
    assert [t["taskId"] for t in ex["taskRunList"]] == ["a", "box", "b"]
    assert all(states(t) == ["CREATED", "RUNNING", "SUCCESS"] for t in ex["taskRunList"])
    box = ex["taskRunList"][1]
    assert ex["taskRunList"][2]["parentTaskRunId"] == box["id"]
    assert ex["taskRunList"][2]["outputs"] == {"value": "a-b"}
    assert ex["labels"] == [{"key": "system.correlationId", "value": ex["id"]}]


ERRORS = """
id: errs
namespace: tests.engine
tasks:
  - id: ok
    type: io.kestra.plugin.core.debug.Return
    format: one
  - id: boom
    type: io.kestra.plugin.core.execution.Fail
  - id: never
    type: io.kestra.plugin.core.debug.Return
    format: never
errors:
  - id: handler
    type: io.kestra.plugin.core.log.Log
    message: "failed: {{ errorLogs()[0].message }}"
"""


async def test_errors_branch_runs_and_execution_fails():
    async with open_engine(store="memory") as engine:
        await engine.create_flow(ERRORS)
        ex = await engine.execute("tests.engine", "errs")
        logs = await engine.get_logs(ex["id"])
    assert ex["state"]["current"] == "FAILED"
    assert [(t["taskId"], t["state"]["current"]) for t in ex["taskRunList"]] == [
        ("ok", "SUCCESS"), ("boom", "FAILED"), ("handler", "SUCCESS")]
    assert any(entry["message"] == "failed: Task failure" for entry in logs)


RETRY = """
id: retry
namespace: tests.engine
tasks:
  - id: flaky
    type: io.kestra.plugin.core.execution.Fail
    condition: "{{ taskrun.attemptsCount < 2 }}"
    retry:
      type: constant
      interval: PT30S
      maxAttempt: 5
"""


async def test_retry_constant_on_fake_clock(autojump_clock):
    async with open_engine(store="memory") as engine:
        await engine.create_flow(RETRY)
        start = trio.current_time()
        ex = await engine.execute("tests.engine", "retry")
        elapsed = trio.current_time() - start
    tr = ex["taskRunList"][0]
    assert ex["state"]["current"] == "SUCCESS"
    assert [a["state"]["current"] for a in tr["attempts"]] == ["FAILED", "FAILED", "SUCCESS"]
    assert "RETRYING" in states(tr)
    assert 60 <= elapsed < 61


TIMEOUT = """
id: timeout
namespace: tests.engine
tasks:
  - id: slow
    type: io.falconet.tests.Recorder
    seconds: 600
    timeout: PT10S
"""


async def test_timeout_fails_the_attempt(autojump_clock):
    async with open_engine(store="memory") as engine:
        await engine.create_flow(TIMEOUT)
        start = trio.current_time()
        ex = await engine.execute("tests.engine", "timeout")
        logs = await engine.get_logs(ex["id"])
    assert ex["state"]["current"] == "FAILED"
    assert trio.current_time() - start == pytest.approx(10, abs=0.5)
    assert SEEN[ex["id"]] == [f"cancelled:{ex['taskRunList'][0]['id']}"]
    assert any("Timeout" in entry["message"] for entry in logs)


PAUSE = """
id: pause
namespace: tests.engine
tasks:
  - id: wait
    type: io.kestra.plugin.core.flow.Pause
    delay: PT1H
  - id: after
    type: io.kestra.plugin.core.debug.Return
    format: done
"""


async def test_pause_delay_resumes_on_fake_clock(autojump_clock):
    async with open_engine(store="memory") as engine:
        await engine.create_flow(PAUSE)
        start = trio.current_time()
        ex = await engine.execute("tests.engine", "pause")
    assert ex["state"]["current"] == "SUCCESS"
    assert trio.current_time() - start == pytest.approx(3600, abs=1)
    assert states(ex) == ["CREATED", "RUNNING", "PAUSED", "RESTARTED", "RUNNING", "SUCCESS"]
    assert states(ex["taskRunList"][0]) == ["CREATED", "RUNNING", "PAUSED", "RUNNING", "SUCCESS"]


#### Kill ##################################################################################################

PARALLEL_50 = "id: many\nnamespace: tests.engine\ntasks:\n  - id: par\n    type: io.kestra.plugin.core.flow.Parallel\n    tasks:\n" + "".join(
    f"      - id: t{i}\n        type: io.falconet.tests.Recorder\n" for i in range(50))


async def test_kill_reaches_every_task_run_and_is_persisted(tmp_path):
    async with open_engine(tmp_path, store="sqlite") as engine:
        await engine.create_flow(PARALLEL_50)
        created = await engine.execute("tests.engine", "many", wait=False)
        doc = created
        while len([t for t in doc.get("taskRunList", []) if t["state"]["current"] == "RUNNING"]) < 51:
            await trio.sleep(0.01)
            doc = await engine.get_execution(created["id"])
        await trio.testing.wait_all_tasks_blocked()
        await engine.kill(created["id"])
        final = await engine.wait_for_end(created["id"])
        stored = await engine.store.get_execution(created["id"])
    leaves = [t for t in final["taskRunList"] if t["taskId"] != "par"]
    assert len(leaves) == 50
    assert sorted(SEEN[created["id"]]) == sorted(f"cancelled:{t['id']}" for t in leaves)
    assert final["state"]["current"] == "KILLED"
    assert states(final)[-2:] == ["KILLING", "KILLED"]
    assert {t["state"]["current"] for t in final["taskRunList"]} == {"KILLED"}
    assert stored["state"]["current"] == "KILLED"
    assert {t["state"]["current"] for t in stored["taskRunList"]} == {"KILLED"}


#### Restart from disk #####################################################################################

SLOW = """
id: slow
namespace: tests.engine
tasks:
  - id: first
    type: io.kestra.plugin.core.debug.Return
    format: first
  - id: nap
    type: io.kestra.plugin.core.flow.Sleep
    duration: PT0.3S
  - id: last
    type: io.kestra.plugin.core.debug.Return
    format: "{{ outputs.first.value }} then last"
"""


async def test_unfinished_execution_resumes_after_reopening_the_store(tmp_path):
    async with open_engine(tmp_path, store="sqlite") as engine:
        await engine.create_flow(SLOW)
        created = await engine.execute("tests.engine", "slow", wait=False)
        doc = created
        while not any(t["taskId"] == "nap" and t["state"]["current"] == "RUNNING"
                      for t in doc.get("taskRunList", [])):
            await trio.sleep(0.01)
            doc = await engine.get_execution(created["id"])
        await engine.store.flush()
    # the engine stopped with the execution RUNNING; a new engine on the same folder finishes it
    async with open_engine(tmp_path, store="sqlite") as engine:
        final = await engine.wait_for_end(created["id"])
    assert final["state"]["current"] == "SUCCESS"
    nap = next(t for t in final["taskRunList"] if t["taskId"] == "nap")
    assert len(nap["attempts"]) == 2  # the interrupted attempt, then the new one
    assert final["taskRunList"][-1]["outputs"] == {"value": "first then last"}


#### Kill cascade ##########################################################################################

CHILD = """
id: child
namespace: tests.engine
tasks:
  - id: long
    type: io.falconet.tests.Recorder
"""

PARENT = """
id: parent
namespace: tests.engine
tasks:
  - id: call
    type: io.kestra.plugin.core.flow.Subflow
    namespace: tests.engine
    flowId: child
"""


async def _parent_with_running_child(engine):
    await engine.create_flow(CHILD)
    await engine.create_flow(PARENT)
    parent = await engine.execute("tests.engine", "parent", wait=False)
    while True:
        children = [a.ex for a in engine.actors.values() if a.ex.flow_id == "child"]
        if children and any(tr.state.current.value == "RUNNING" for tr in children[0].task_run_list):
            return parent, children[0].id
        await trio.sleep(0.01)


@pytest.mark.parametrize("cascade", [True, False])
async def test_kill_cascades_to_subflow_executions_unless_told_not_to(cascade):
    import falconet

    async with open_engine(store="memory") as engine:
        parent, child_id = await _parent_with_running_child(engine)
        await engine.kill(parent["id"], cascade=cascade)
        final = await engine.wait_for_end(parent["id"])
        assert final["state"]["current"] == "KILLED"
        if cascade:
            child = await engine.wait_for_end(child_id)
            assert child["state"]["current"] == "KILLED"
        else:
            child = await engine.get_execution(child_id)
            assert child["state"]["current"] == "RUNNING"
            with pytest.raises(falconet.IllegalState):
                await engine.kill(parent["id"], cascade=False)
            # Kestra's default (cascade) on a terminated execution still reaches its children
            await engine.kill(parent["id"])
            child = await engine.wait_for_end(child_id)
            assert child["state"]["current"] == "KILLED"


SLEEPY_CHILD = """
id: sleepy
namespace: tests.engine
tasks:
  - id: nap
    type: io.kestra.plugin.core.flow.Sleep
    duration: PT0.5S
outputs:
  - id: said
    type: STRING
    value: rested
"""

CALLER = """
id: caller
namespace: tests.engine
tasks:
  - id: call
    type: io.kestra.plugin.core.flow.Subflow
    namespace: tests.engine
    flowId: sleepy
  - id: after
    type: io.kestra.plugin.core.debug.Return
    format: "{{ outputs.call.outputs.said }}"
"""


async def test_running_subflow_is_reattached_after_reopening_the_store(tmp_path):
    async with open_engine(tmp_path, store="sqlite") as engine:
        await engine.create_flow(SLEEPY_CHILD)
        await engine.create_flow(CALLER)
        parent = await engine.execute("tests.engine", "caller", wait=False)
        while not any(a.ex.flow_id == "sleepy" for a in engine.actors.values()):
            await trio.sleep(0.01)
        child_id = next(a.ex.id for a in engine.actors.values() if a.ex.flow_id == "sleepy")
    # both executions were RUNNING when the engine stopped; the parent must find its child again
    async with open_engine(tmp_path, store="sqlite") as engine:
        final = await engine.wait_for_end(parent["id"])
        _, total = await engine.store.search_executions(ExecutionQuery(namespace="tests.engine", flow_id="sleepy"))
    assert final["state"]["current"] == "SUCCESS"
    call = final["taskRunList"][0]
    assert call["outputs"]["executionId"] == child_id and call["outputs"]["state"] == "SUCCESS"
    assert final["taskRunList"][1]["outputs"] == {"value": "rested"}
    assert total == 1  # no second child was started


ITEM_CHILD = """
id: item
namespace: tests.engine
inputs:
  - id: batch
    type: STRING
tasks:
  - id: nap
    type: io.kestra.plugin.core.flow.Sleep
    duration: PT0.4S
"""

ITEMS_PARENT = """
id: items
namespace: tests.engine
inputs:
  - id: file
    type: FILE
tasks:
  - id: each
    type: io.kestra.plugin.core.flow.ForEachItem
    items: "{{ inputs.file }}"
    batch:
      rows: 1
    namespace: tests.engine
    flowId: item
    inputs:
      batch: "{{ taskrun.items }}"
"""


async def test_running_for_each_item_resumes_without_duplicating_children(tmp_path):
    data = tmp_path / "rows.txt"
    data.write_text("".join(f"row {i}\n" for i in range(6)))
    async with open_engine(tmp_path / "d", store="sqlite") as engine:
        await engine.create_flow(ITEM_CHILD)
        await engine.create_flow(ITEMS_PARENT)
        upload = tmp_path / "upload.txt"
        upload.write_bytes(data.read_bytes())
        parent = await engine.execute("tests.engine", "items", files={"file": ("rows.txt", upload)}, wait=False)
        while sum(1 for a in engine.actors.values() if a.ex.flow_id == "item") < 6:
            await trio.sleep(0.01)
    async with open_engine(tmp_path / "d", store="sqlite") as engine:
        final = await engine.wait_for_end(parent["id"])
        _, total = await engine.store.search_executions(ExecutionQuery(namespace="tests.engine", flow_id="item"))
    assert final["state"]["current"] == "SUCCESS"
    items = next(t for t in final["taskRunList"] if t["taskId"] == "each_items")
    assert items["outputs"]["numberOfBatches"] == 6
    assert items["outputs"]["iterations"].get("SUCCESS") == 6, items["outputs"]
    assert total == 6


LISTENERS = """
id: lst
namespace: t
listeners:
  - conditions:
      - type: io.kestra.plugin.core.condition.ExecutionStatus
        in: [FAILED]
    tasks:
      - id: on_fail
        type: io.kestra.plugin.core.debug.Return
        format: f
  - conditions:
      - type: io.kestra.plugin.core.condition.ExecutionStatus
        in: [SUCCESS]
      - type: io.kestra.plugin.core.condition.Expression
        expression: "{{ execution.id != '' }}"
    tasks:
      - id: on_ok
        type: io.kestra.plugin.core.debug.Return
        format: ok
tasks:
  - id: first
    type: io.kestra.plugin.core.debug.Return
    format: x
"""


async def test_listener_conditions_are_evaluated_by_the_condition_classes():
    async with open_engine(store="memory") as engine:
        await engine.create_flow(LISTENERS)
        ex = await engine.execute("t", "lst")
    assert ex["state"]["current"] == "SUCCESS"
    assert [t["taskId"] for t in ex["taskRunList"]] == ["first", "on_ok"]
