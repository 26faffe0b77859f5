"""CREATE_NEW_EXECUTION retries and flow concurrency limits on the fake clock."""
from __future__ import annotations

from datetime import timedelta

import pytest
import trio

from falconet.runtime.kernel.errors import IllegalArgument
from falconet.runtime.kernel.execution import parse_instant

from .conftest import executions_of

RETRY_TASK = """
id: retry-task
namespace: orch.retry
tasks:
  - id: fail
    type: io.kestra.plugin.core.execution.Fail
    retry:
      behavior: CREATE_NEW_EXECUTION
      type: constant
      maxAttempt: 3
      interval: PT10M
"""

RETRY_FLOW_DURATION = """
id: retry-flow
namespace: orch.retry
retry:
  behavior: CREATE_NEW_EXECUTION
  type: constant
  interval: PT2S
  maxDuration: PT5S
tasks:
  - id: fail
    type: io.kestra.plugin.core.execution.Fail
"""


async def test_task_retry_creates_new_executions_up_to_max_attempt(engine, autojump_clock):
    await engine.create_flow(RETRY_TASK)
    first = await engine.execute("orch.retry", "retry-task")
    assert first["state"]["current"] == "RETRIED"
    assert first["taskRunList"][0]["state"]["current"] == "RETRIED"
    await trio.sleep(3600)
    rows = sorted(await executions_of(engine, "orch.retry", "retry-task"),
                  key=lambda r: r["metadata"]["attemptNumber"])
    assert [r["state"]["current"] for r in rows] == ["RETRIED", "RETRIED", "FAILED"]
    assert [r["metadata"]["attemptNumber"] for r in rows] == [1, 2, 3]
    assert {r["originalId"] for r in rows} == {first["id"]}
    assert {r["metadata"]["originalCreatedDate"] for r in rows} == {first["metadata"]["originalCreatedDate"]}
    assert all("scheduleDate" in r for r in rows[1:])
    # each new execution waited for its schedule date (CREATED until then)
    assert rows[1]["state"]["histories"][0]["state"] == "CREATED"


async def test_retry_stops_after_max_duration(engine, autojump_clock):
    """Interval 2 s within 5 s -> 3 executions, each scheduled 2 s (of the engine clock) after the previous
    one's end: the dates the retries are computed from follow trio's clock."""
    await engine.create_flow(RETRY_FLOW_DURATION)
    await engine.execute("orch.retry", "retry-flow")
    await trio.sleep(60)
    rows = sorted(await executions_of(engine, "orch.retry", "retry-flow"),
                  key=lambda r: r["metadata"]["attemptNumber"])
    assert [r["state"]["current"] for r in rows] == ["RETRIED", "RETRIED", "FAILED"]
    for before, after in zip(rows, rows[1:]):
        gap = parse_instant(after["scheduleDate"]) - parse_instant(before["state"]["endDate"])
        assert gap == timedelta(seconds=2)


#### concurrency ################################################################################################

def limited(behavior: str, limit: int = 1) -> str:
    return f"""
id: limited-{behavior.lower()}
namespace: orch.conc
concurrency:
  limit: {limit}
  behavior: {behavior}
tasks:
  - id: sleep
    type: io.kestra.plugin.core.flow.Sleep
    duration: PT10S
"""


async def _states(engine, ids):
    return [(await engine.get_execution(i))["state"]["current"] for i in ids]


async def test_queue_is_fifo_with_histories(engine, autojump_clock):
    await engine.create_flow(limited("QUEUE"))
    ids = [(await engine.execute("orch.conc", "limited-queue", wait=False))["id"] for _ in range(4)]
    await trio.sleep(1)
    assert await _states(engine, ids) == ["RUNNING", "QUEUED", "QUEUED", "QUEUED"]
    finals = [await engine.wait_for_end(i) for i in ids]
    assert [f["state"]["current"] for f in finals] == ["SUCCESS"] * 4
    for f in finals[1:]:
        assert [h["state"] for h in f["state"]["histories"]][:3] == ["CREATED", "QUEUED", "RUNNING"]
    starts = [next(h["date"] for h in f["state"]["histories"] if h["state"] == "RUNNING") for f in finals]
    ends = [f["state"]["endDate"] for f in finals]
    assert starts == sorted(starts)
    assert all(starts[i + 1] >= ends[i] for i in range(3))  # never two at once


@pytest.mark.parametrize("behavior, state", [("CANCEL", "CANCELLED"), ("FAIL", "FAILED")])
async def test_cancel_and_fail_behaviors(engine, autojump_clock, behavior, state):
    await engine.create_flow(limited(behavior))
    first = await engine.execute("orch.conc", f"limited-{behavior.lower()}", wait=False)
    await trio.sleep(1)
    second = await engine.execute("orch.conc", f"limited-{behavior.lower()}", wait=False)
    second = await engine.wait_for_end(second["id"])
    assert [h["state"] for h in second["state"]["histories"]] == ["CREATED", state]
    assert (await engine.wait_for_end(first["id"]))["state"]["current"] == "SUCCESS"


async def test_unqueue_and_force_run_bypass_the_limit(engine, autojump_clock):
    await engine.create_flow(limited("QUEUE"))
    ids = [(await engine.execute("orch.conc", "limited-queue", wait=False))["id"] for _ in range(3)]
    await trio.sleep(1)
    await engine.lifecycle.unqueue(ids[1])
    await engine.lifecycle.force_run(ids[2])
    await trio.sleep(1)
    assert await _states(engine, ids) == ["RUNNING", "RUNNING", "RUNNING"]
    with pytest.raises(IllegalArgument):
        await engine.lifecycle.unqueue(ids[0])
    assert [(await engine.wait_for_end(i))["state"]["current"] for i in ids] == ["SUCCESS"] * 3


async def test_schedule_date_keeps_the_execution_created(engine, autojump_clock):
    from datetime import timedelta

    from falconet.runtime.kernel.execution import now

    await engine.create_flow(limited("QUEUE").replace("limited-queue", "later"))
    ex = await engine.create_execution("orch.conc", "later", schedule_date=now() + timedelta(hours=2))
    await trio.sleep(3600)
    assert (await engine.get_execution(ex["id"]))["state"]["current"] == "CREATED"
    final = await engine.wait_for_end(ex["id"])
    assert final["state"]["current"] == "SUCCESS"
