"""Timers survive a restart: a Pause's ``delay`` and ``timeout``, a WaitFor's next iteration and the next
attempt of a RETRYING task run (runnable or Subflow) happen at the time they were due, not at once and not
never. The server stops while the execution waits (SQLite, the same data folder) and starts again at once;
tests/safety/test_8_crash.py does the same through a kill -9 of a real server.

They run on trio's autojump clock with one VirtualClock shared by both engines: an hour of virtual time per
timer, no real wait. The dates the engine stores and the deadlines it sleeps to both follow trio's clock,
and the clock does not jump while the engine or the test waits on the SQLite thread."""
from __future__ import annotations

from typing import Any, Awaitable, Callable

import pytest
import trio

from falconet import open_engine
from falconet.runtime.kernel.clock import VirtualClock
from falconet.runtime.store.base import ExecutionQuery

NS = "tests.timers"
WAIT = 3600  # virtual seconds every timer of these flows waits: far longer than a stop and a start


@pytest.fixture
def clock() -> VirtualClock:
    """The clock of both engines of a test: dates stay consistent across the restart."""
    return VirtualClock()


def runs(doc: dict[str, Any], task_id: str) -> dict[str, Any]:
    return next(t for t in doc["taskRunList"] if t["taskId"] == task_id)


async def stopped_while(tmp_path, clock: VirtualClock, sources: list[str], flow_id: str,
                        waiting: Callable[[dict[str, Any]], bool]) -> str:
    """Start ``flow_id`` on a server that stops as soon as ``waiting(execution)`` holds; returns its id."""
    async with open_engine(tmp_path, store="sqlite", clock=clock) as engine:
        for source in sources:
            await engine.create_flow(source)
        ex_id = (await engine.execute(NS, flow_id, wait=False))["id"]
        with trio.fail_after(30):
            while not waiting(await engine.get_execution(ex_id)):
                await trio.sleep(0.01)
    return ex_id


async def after_restart(tmp_path, clock: VirtualClock, ex_id: str, check: Callable[[Any, dict[str, Any]], Awaitable[None]],
                        ) -> dict[str, Any]:
    """Start the server again: ``check`` sees the execution still waiting; returns its end."""
    async with open_engine(tmp_path, store="sqlite", clock=clock) as engine:
        await check(engine, await engine.get_execution(ex_id))
        with trio.fail_after(6 * WAIT):
            return await engine.wait_for_end(ex_id)


PAUSE = f"""
id: pause
namespace: {NS}
tasks:
  - id: wait
    type: io.kestra.plugin.core.flow.Pause
    delay: PT{WAIT}S
  - id: after
    type: io.kestra.plugin.core.debug.Return
    format: done
"""


async def test_a_pause_delay_resumes_at_its_time_after_a_restart(tmp_path, autojump_clock, clock):
    start = trio.current_time()
    ex_id = await stopped_while(tmp_path, clock, [PAUSE], "pause", lambda d: d["state"]["current"] == "PAUSED")

    async def still_paused(engine, doc):
        assert doc["state"]["current"] == "PAUSED"

    final = await after_restart(tmp_path, clock, ex_id, still_paused)
    assert final["state"]["current"] == "SUCCESS"
    assert runs(final, "after")["state"]["current"] == "SUCCESS"
    assert WAIT <= trio.current_time() - start < 4 * WAIT  # at its time: not at once, not late


TIMEOUT = f"""
id: timeout
namespace: {NS}
tasks:
  - id: wait
    type: io.kestra.plugin.core.flow.Pause
    timeout: PT{WAIT}S
  - id: after
    type: io.kestra.plugin.core.debug.Return
    format: done
"""


async def test_a_pause_timeout_fires_after_a_restart(tmp_path, autojump_clock, clock):
    ex_id = await stopped_while(tmp_path, clock, [TIMEOUT], "timeout", lambda d: d["state"]["current"] == "PAUSED")

    async def still_paused(engine, doc):
        assert doc["state"]["current"] == "PAUSED"

    final = await after_restart(tmp_path, clock, ex_id, still_paused)
    assert final["state"]["current"] == "FAILED"
    assert runs(final, "wait")["state"]["current"] == "FAILED"
    assert [t["taskId"] for t in final["taskRunList"]] == ["wait"]


WAITFOR = f"""
id: waitfor
namespace: {NS}
tasks:
  - id: loop
    type: io.kestra.plugin.core.flow.WaitFor
    condition: "{{{{ false }}}}"
    checkFrequency:
      interval: PT{WAIT}S
      maxIterations: 3
      maxDuration: PT{6 * WAIT}S
    tasks:
      - id: probe
        type: io.kestra.plugin.core.debug.Return
        format: probe
"""


async def test_a_waitfor_interval_is_restored_after_a_restart(tmp_path, autojump_clock, clock):
    def waiting(doc: dict[str, Any]) -> bool:
        return any(t["taskId"] == "loop" and (t.get("outputs") or {}).get("iterationCount") == 1
                   for t in doc.get("taskRunList") or [])

    ex_id = await stopped_while(tmp_path, clock, [WAITFOR], "waitfor", waiting)

    async def one_iteration(engine, doc):
        assert runs(doc, "loop")["outputs"]["iterationCount"] == 1

    final = await after_restart(tmp_path, clock, ex_id, one_iteration)
    assert final["state"]["current"] == "SUCCESS"
    assert runs(final, "loop")["outputs"]["iterationCount"] == 3
    assert len([t for t in final["taskRunList"] if t["taskId"] == "probe"]) == 3


FAILING_CHILD = f"""
id: failing-child
namespace: {NS}
tasks:
  - id: boom
    type: io.kestra.plugin.core.execution.Fail
"""

SUBFLOW_RETRY = f"""
id: subflow-retry
namespace: {NS}
retry:
  type: constant
  interval: PT{WAIT}S
  maxAttempt: 2
tasks:
  - id: sub
    type: io.kestra.plugin.core.flow.Subflow
    namespace: {NS}
    flowId: failing-child
    allowFailure: true
"""


def retrying(task_id: str) -> Callable[[dict[str, Any]], bool]:
    return lambda doc: any(t["taskId"] == task_id and t["state"]["current"] == "RETRYING"
                           for t in doc.get("taskRunList") or [])


async def children(engine) -> int:
    return (await engine.store.search_executions(
        ExecutionQuery(namespace=NS, flow_id="failing-child", page=1, size=10)))[1]


async def test_a_subflow_retry_starts_at_its_time_after_a_restart(tmp_path, autojump_clock, clock):
    ex_id = await stopped_while(tmp_path, clock, [FAILING_CHILD, SUBFLOW_RETRY], "subflow-retry", retrying("sub"))

    async def still_retrying(engine, doc):
        assert runs(doc, "sub")["state"]["current"] == "RETRYING"
        assert await children(engine) == 1  # no second child yet

    final = await after_restart(tmp_path, clock, ex_id, still_retrying)
    sub = runs(final, "sub")
    assert [a["state"]["current"] for a in sub["attempts"]] == ["FAILED", "FAILED"]
    assert sub["state"]["current"] == "WARNING"
    async with open_engine(tmp_path, store="sqlite", clock=clock) as engine:
        assert await children(engine) == 2


TASK_RETRY = f"""
id: task-retry
namespace: {NS}
tasks:
  - id: flaky
    type: io.kestra.plugin.core.execution.Fail
    retry:
      type: constant
      interval: PT{WAIT}S
      maxAttempt: 2
"""


async def test_a_task_retry_starts_at_its_time_after_a_restart(tmp_path, autojump_clock, clock):
    ex_id = await stopped_while(tmp_path, clock, [TASK_RETRY], "task-retry", retrying("flaky"))

    async def still_retrying(engine, doc):
        flaky = runs(doc, "flaky")
        assert flaky["state"]["current"] == "RETRYING" and len(flaky["attempts"]) == 1

    final = await after_restart(tmp_path, clock, ex_id, still_retrying)
    flaky = runs(final, "flaky")
    assert final["state"]["current"] == "FAILED"
    assert [a["state"]["current"] for a in flaky["attempts"]] == ["FAILED", "FAILED"]
