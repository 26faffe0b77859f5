"""The engine's one clock (falconet/runtime/clock.py): dates and deadlines move together under trio's
autojump clock, a wait on a worker thread takes no virtual time, and an hour of schedules, retries and
Pause delays passes in well under two seconds of real time."""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import pytest
import trio
import trio.testing

from falconet import open_engine
from falconet.runtime.kernel import clock as clock_mod
from falconet.runtime.kernel.clock import SYSTEM, SystemClock, VirtualClock
from falconet.runtime.kernel.execution import parse_instant
from falconet.runtime.store.base import ExecutionQuery
from falconet.runtime.store.sqlite import SQLiteStore

UTC = timezone.utc
START = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


#### the clocks ##############################################################################################

async def test_a_virtual_clock_follows_trio_time(autojump_clock):
    clock = VirtualClock(START)
    assert clock.now() == START
    await trio.sleep(90.5)
    assert clock.now() == START + timedelta(seconds=90.5)
    assert clock.timestamp() == (START + timedelta(seconds=90.5)).timestamp()


async def test_sleep_until_wakes_at_the_date(autojump_clock):
    clock = VirtualClock(START)
    await clock.sleep_until(START + timedelta(hours=2))
    assert clock.now() == START + timedelta(hours=2)
    before = trio.current_time()
    await clock.sleep_until(START)  # past: at once
    assert trio.current_time() == before


async def test_the_system_clock_reads_the_wall_clock_in_milliseconds():
    now = SystemClock().now()
    assert now.tzinfo is not None and now.microsecond % 1000 == 0
    assert abs((datetime.now(UTC) - now).total_seconds()) < 5
    assert abs(SYSTEM.deadline_for(now + timedelta(seconds=60)) - trio.current_time() - 60) < 5


def test_a_virtual_clock_continues_in_a_later_run():
    clock = VirtualClock(START)

    async def an_hour() -> None:
        clock.now()
        await trio.sleep(3600)
        clock.now()

    for _ in range(2):
        trio.run(an_hour, clock=trio.testing.MockClock(autojump_threshold=0))
    assert clock.now() == START + timedelta(hours=2)


def test_a_virtual_clock_needs_an_aware_start():
    with pytest.raises(ValueError):
        VirtualClock(datetime(2025, 1, 1))


async def test_engines_of_one_run_share_one_clock(tmp_path):
    clock = VirtualClock(START)
    async with open_engine(tmp_path / "a", store="memory", clock=clock) as engine:
        assert engine.clock is clock and clock_mod.current() is clock
        async with open_engine(tmp_path / "b", store="memory", clock=clock):
            pass
        assert clock_mod.current() is clock  # still installed while the first engine runs
        with pytest.raises(ValueError):
            async with open_engine(tmp_path / "c", store="memory", clock=VirtualClock(START)):
                pass
    assert clock_mod.current() is SYSTEM


#### threads hold the mock clock ##############################################################################

def _log_rows(count: int) -> list[dict]:
    return [{"namespace": "tests.clock", "flowId": "f", "taskId": "t", "executionId": "e", "taskRunId": "tr",
             "attemptNumber": 1, "timestamp": "2025-03-01T12:00:00.000Z", "level": "INFO", "thread": "main",
             "message": f"line {i}", "deleted": False} for i in range(count)]


async def test_time_stands_still_while_the_sqlite_thread_works(tmp_path, autojump_clock):
    """A flush waits for the writer thread to commit 5,000 log rows. Without the hold, autojump sees every
    task blocked meanwhile and leaps to the pending deadline an hour away."""
    clock = VirtualClock(START)
    store = SQLiteStore(tmp_path / "falconet.db", clock=clock)
    await store.open()
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(trio.sleep, 3600)
            assert clock.now() == START
            store.append_logs_nowait(_log_rows(5_000))
            await store.flush()
            assert clock.now() == START
            nursery.cancel_scope.cancel()
    finally:
        await store.close()


async def test_time_stands_still_while_a_thread_job_runs(autojump_clock):
    clock = VirtualClock(START)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(trio.sleep, 3600)
        assert clock.now() == START
        await clock.run_sync_in_thread(time.sleep, 0.05)
        assert clock.now() == START
        nursery.cancel_scope.cancel()
    assert autojump_clock.autojump_threshold == 0  # restored after the hold


#### an hour of virtual time ###################################################################################

SCHEDULED = """
id: hourly
namespace: tests.clock
tasks:
  - id: flaky
    type: io.kestra.plugin.core.execution.Fail
    allowFailure: true
    retry:
      type: constant
      interval: PT10M
      maxAttempt: 3
  - id: wait
    type: io.kestra.plugin.core.flow.Pause
    delay: PT15M
  - id: done
    type: io.kestra.plugin.core.debug.Return
    format: "{{ now() }}"
triggers:
  - id: every-quarter
    type: io.kestra.plugin.core.trigger.Schedule
    cron: "*/15 * * * *"
"""


def _histories(doc):
    return [(h["state"], parse_instant(h["date"])) for h in doc["state"]["histories"]]


async def test_an_hour_of_schedules_retries_and_delays_in_virtual_time(tmp_path, autojump_clock, monkeypatch):
    """Schedules every 15 min from 12:00, each run retries a task twice 10 min apart and pauses 15 min: every stored
    date is where virtual time says, and the hour passes in well under two real seconds. (The scheduler
    wakes at due dates and on flow changes only: its once-a-second look for new flows would otherwise be
    3600 evaluations.)"""
    from falconet.runtime.orchestration import scheduler

    monkeypatch.setitem(scheduler.DEFAULTS, "poll", 10 * 86400.0)
    clock = VirtualClock(START)
    real = time.perf_counter()
    async with open_engine(tmp_path, store="sqlite", clock=clock) as engine:
        await engine.create_flow(SCHEDULED)
        engine.orchestration.scheduler.wake()
        await trio.sleep(3600 + 60)
        await engine.store.flush()
        rows, _ = await engine.store.search_executions(
            ExecutionQuery(namespace="tests.clock", flow_id="hourly", page=1, size=50, sort=["state.startDate:asc"]))
    elapsed = time.perf_counter() - real
    assert elapsed < 2, f"an hour of virtual time took {elapsed:.2f} s"
    assert [r["trigger"]["variables"]["date"] for r in rows] == [
        "2025-03-01T12:00:00Z", "2025-03-01T12:15:00Z", "2025-03-01T12:30:00Z", "2025-03-01T12:45:00Z", "2025-03-01T13:00:00Z"]
    first = rows[0]
    assert first["state"]["current"] == "WARNING"
    fired = parse_instant(first["state"]["startDate"])
    assert fired == START  # created at its schedule date, to the millisecond
    flaky, wait, done = first["taskRunList"]
    attempts = [parse_instant(a["state"]["startDate"]) for a in flaky["attempts"]]
    assert [a - fired for a in attempts] == [timedelta(0), timedelta(minutes=10), timedelta(minutes=20)]
    paused = dict(_histories(wait))  # the last date of each state: RUNNING is the resume
    assert paused["RUNNING"] - paused["PAUSED"] == timedelta(minutes=15)
    assert parse_instant(done["outputs"]["value"]) == START + timedelta(minutes=20 + 15)  # {{ now() }}
    assert parse_instant(first["state"]["endDate"]) == START + timedelta(minutes=20 + 15)
    # each run takes 35 min: at 13:01 those of 12:00 and 12:15 are over, the others still wait
    assert [r["state"]["current"] for r in rows] == ["WARNING", "WARNING", "PAUSED", "RUNNING", "RUNNING"]
