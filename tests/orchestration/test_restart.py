"""Stop an engine with queued, scheduled and cron work pending; reopen the same SQLite store; nothing is
lost or doubled. Virtual time: one VirtualClock for both engines on trio's autojump clock."""
from __future__ import annotations

from datetime import timedelta

import trio

from falconet.runtime.kernel.clock import VirtualClock
from falconet.runtime.kernel.startup import open_engine
from falconet.runtime.kernel.execution import parse_instant

from .conftest import executions_of, wait_until

QUEUED = """
id: queued
namespace: orch.restart
concurrency:
  limit: 1
  behavior: QUEUE
tasks:
  - id: sleep
    type: io.kestra.plugin.core.flow.Sleep
    duration: PT0.6S
"""

LATER = """
id: later
namespace: orch.restart
tasks:
  - id: log
    type: io.kestra.plugin.core.log.Log
    message: later
"""

CRON = """
id: cron
namespace: orch.restart
tasks:
  - id: log
    type: io.kestra.plugin.core.log.Log
    message: "{{ trigger.date }}"
triggers:
  - id: every-second
    type: io.kestra.plugin.core.trigger.Schedule
    cron: "* * * * * *"
    withSeconds: true
    recoverMissedSchedules: ALL
"""


async def test_queued_scheduled_and_cron_work_survive_a_restart(tmp_path, autojump_clock):
    clock = VirtualClock()
    async with open_engine(tmp_path, store="sqlite", clock=clock) as engine:
        for src in (QUEUED, LATER, CRON):
            await engine.create_flow(src)
        engine.orchestration.scheduler.wake()
        ids = [(await engine.execute("orch.restart", "queued", wait=False))["id"] for _ in range(3)]
        later = await engine.create_execution("orch.restart", "later", schedule_date=clock.now() + timedelta(seconds=2))
        await wait_until(lambda: engine.actors.get(ids[0]) is not None, timeout=5)
        await trio.sleep(1.2)
        await engine.store.flush()
    stopped_at = clock.now()

    await trio.sleep(1.0)  # the server is down: cron dates are missed, the scheduled date comes closer

    async with open_engine(tmp_path, store="sqlite", clock=clock) as engine:
        finals = [await engine.wait_for_end(i) for i in ids]
        final_later = await engine.wait_for_end(later["id"])
        await trio.sleep(1.5)
        cron_rows = await executions_of(engine, "orch.restart", "cron")
        queued_rows = await executions_of(engine, "orch.restart", "queued")

    assert [f["state"]["current"] for f in finals] == ["SUCCESS"] * 3
    assert len(queued_rows) == 3
    for f in finals:
        states = [h["state"] for h in f["state"]["histories"]]
        assert states.count("QUEUED") <= 1 and states.count("SUCCESS") == 1
    starts = [parse_instant(next(h["date"] for h in f["state"]["histories"] if h["state"] == "RUNNING"))
              for f in finals]
    assert starts == sorted(starts)  # FIFO kept across the restart
    for a, start_b in zip(finals, starts[1:]):  # the limit held: one ended before the next started
        assert start_b >= parse_instant(a["state"]["endDate"])

    assert final_later["state"]["current"] == "SUCCESS"
    running = next(h for h in final_later["state"]["histories"] if h["state"] == "RUNNING")
    assert parse_instant(running["date"]) >= parse_instant(final_later["scheduleDate"])

    dates = sorted(parse_instant(r["trigger"]["variables"]["date"]) for r in cron_rows)
    assert len(dates) == len(set(dates))  # nothing doubled
    assert all(b - a == timedelta(seconds=1) for a, b in zip(dates, dates[1:]))  # nothing skipped (ALL)
    assert dates[-1] > stopped_at  # it kept running after the restart
