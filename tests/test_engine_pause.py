"""The pause API holds an execution (issue 11 §1) and state histories are complete (issue 11 §9)."""
from __future__ import annotations

from typing import Any

import trio

from falconet import open_engine

HOLD = """
id: hold
namespace: tests.pause
tasks:
  - id: s1
    type: io.kestra.plugin.core.flow.Sleep
    duration: PT2S
  - id: s2
    type: io.kestra.plugin.core.debug.Return
    format: two
  - id: s3
    type: io.kestra.plugin.core.debug.Return
    format: three
"""

TIMED = """
id: timed
namespace: tests.pause
tasks:
  - id: s1
    type: io.kestra.plugin.core.flow.Sleep
    duration: PT2S
  - id: wait
    type: io.kestra.plugin.core.flow.Pause
    delay: PT1M
  - id: last
    type: io.kestra.plugin.core.debug.Return
    format: done
"""


def states(doc: dict[str, Any]) -> list[str]:
    return [h["state"] for h in doc["state"]["histories"]]


def runs(doc: dict[str, Any]) -> dict[str, str]:
    return {t["taskId"]: t["state"]["current"] for t in doc.get("taskRunList", [])}


async def running(engine: Any, flow_id: str) -> str:
    created = await engine.execute("tests.pause", flow_id, wait=False)
    while (await engine.get_execution(created["id"]))["state"]["current"] != "RUNNING":
        await trio.sleep(0.01)
    return created["id"]


async def test_pause_lets_the_running_task_finish_and_starts_nothing_until_resume(autojump_clock):
    async with open_engine(store="memory") as engine:
        await engine.create_flow(HOLD)
        ex_id = await running(engine, "hold")
        await trio.sleep(0.5)
        await engine.pause(ex_id)
        assert (await engine.get_execution(ex_id))["state"]["current"] == "PAUSED"
        await trio.sleep(3600)  # s1 ended long ago; nothing else may have been created
        held = await engine.get_execution(ex_id)
        assert held["state"]["current"] == "PAUSED"
        assert runs(held) == {"s1": "SUCCESS"}
        await engine.resume(ex_id)
        final = await engine.wait_for_end(ex_id)
    assert final["state"]["current"] == "SUCCESS"
    assert runs(final) == {"s1": "SUCCESS", "s2": "SUCCESS", "s3": "SUCCESS"}
    assert states(final) == ["CREATED", "RUNNING", "PAUSED", "RUNNING", "SUCCESS"]


async def test_kill_of_a_paused_execution(autojump_clock):
    async with open_engine(store="memory") as engine:
        await engine.create_flow(HOLD)
        during = await running(engine, "hold")
        await engine.pause(during)
        await engine.kill(during)  # s1 still sleeps: it is cancelled
        killed_running = await engine.wait_for_end(during)
        after = await running(engine, "hold")
        await engine.pause(after)
        await trio.sleep(10)  # s1 ended while paused
        await engine.kill(after)
        killed_held = await engine.wait_for_end(after)
    assert states(killed_running) == ["CREATED", "RUNNING", "PAUSED", "KILLING", "KILLED"]
    assert runs(killed_running) == {"s1": "KILLED"}
    assert states(killed_held) == ["CREATED", "RUNNING", "PAUSED", "KILLING", "KILLED"]
    assert runs(killed_held) == {"s1": "SUCCESS"}


async def test_manual_pause_then_timed_pause_records_both(autojump_clock):
    async with open_engine(store="memory") as engine:
        await engine.create_flow(TIMED)
        ex_id = await running(engine, "timed")
        await engine.pause(ex_id)
        await trio.sleep(10)
        assert runs(await engine.get_execution(ex_id)) == {"s1": "SUCCESS"}
        await engine.resume(ex_id)
        final = await engine.wait_for_end(ex_id)
    assert final["state"]["current"] == "SUCCESS"
    assert states(final) == ["CREATED", "RUNNING", "PAUSED", "RUNNING", "PAUSED", "RESTARTED", "RUNNING",
                             "SUCCESS"]


ONE = """
id: one
namespace: tests.pause
tasks:
  - id: nap
    type: io.kestra.plugin.core.flow.Sleep
    duration: PT5S
"""


async def test_restart_goes_running_when_the_restarted_task_run_starts(autojump_clock):
    async with open_engine(store="memory") as engine:
        await engine.create_flow(ONE)
        ex_id = await running(engine, "one")
        await engine.kill(ex_id)
        await engine.wait_for_end(ex_id)
        with engine.bus.subscribe(execution_id=ex_id, kinds=("execution",)) as events:
            await engine.restart(ex_id)
            await trio.sleep(1)  # the restarted Sleep is running
            mid = await engine.get_execution(ex_id)
            final = await engine.wait_for_end(ex_id)
            published = []
            while True:
                try:
                    published.append(events.receive_nowait().state)
                except trio.WouldBlock:
                    break
    assert mid["state"]["current"] == "RUNNING" and runs(mid) == {"nap": "RUNNING"}
    assert states(final) == ["CREATED", "RUNNING", "KILLING", "KILLED", "RESTARTED", "RUNNING", "SUCCESS"]
    assert published == ["RESTARTED", "RUNNING", "SUCCESS"]


BRANCHES = """
id: branches
namespace: tests.pause
tasks:
  - id: both
    type: io.kestra.plugin.core.flow.Parallel
    tasks:
      - id: gate
        type: io.kestra.plugin.core.flow.Pause
        delay: PT1M
      - id: seq
        type: io.kestra.plugin.core.flow.Sequential
        tasks:
          - id: s1
            type: io.kestra.plugin.core.flow.Sleep
            duration: PT10S
          - id: s2
            type: io.kestra.plugin.core.debug.Return
            format: two
"""


async def test_a_pause_task_holds_the_other_branches_like_kestra(autojump_clock):
    """Kestra's Executor.canBeProcessed() is false for a PAUSED execution: the running task run of the
    other branch finishes, its next one is not created until the Pause task resumes."""
    async with open_engine(store="memory") as engine:
        await engine.create_flow(BRANCHES)
        ex_id = (await engine.execute("tests.pause", "branches", wait=False))["id"]
        await trio.sleep(30)
        held = await engine.get_execution(ex_id)
        assert held["state"]["current"] == "PAUSED"
        assert runs(held) == {"both": "RUNNING", "gate": "PAUSED", "seq": "RUNNING", "s1": "SUCCESS"}
        final = await engine.wait_for_end(ex_id)
    assert final["state"]["current"] == "SUCCESS"
    assert set(runs(final).values()) == {"SUCCESS"} and "s2" in runs(final)
    s2 = next(t for t in final["taskRunList"] if t["taskId"] == "s2")
    gate = next(t for t in final["taskRunList"] if t["taskId"] == "gate")
    assert s2["state"]["startDate"] >= gate["state"]["endDate"]  # created once the Pause resumed
