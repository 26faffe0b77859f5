"""Schedule / ScheduleOnDates triggers on trio's fake clock."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import trio
import trio.testing

from falconet.runtime.kernel.clock import VirtualClock
from falconet.runtime.kernel.startup import open_engine
from falconet.runtime.kernel.errors import IllegalArgument
from falconet.runtime.orchestration.scheduler import Cron, format_zoned

from .conftest import EPOCH, executions_of


def schedule_flow(cron: str, *, extra: str = "", flow_id: str = "sched", inputs: str = "") -> str:
    return f"""
id: {flow_id}
namespace: orch.sched
{inputs}
tasks:
  - id: log
    type: io.kestra.plugin.core.log.Log
    message: "{{{{ trigger.date }}}}"
triggers:
  - id: every
    type: io.kestra.plugin.core.trigger.Schedule
    cron: "{cron}"
{extra}
"""


async def _start(engine, source: str) -> None:
    await engine.create_flow(source)
    engine.orchestration.scheduler.wake()


async def test_a_created_flows_schedule_is_evaluated_at_once(engine, mock_clock):
    """Creating a flow (any change of the flows) wakes the scheduler: its trigger context (nextExecutionDate, what the
    triggers API lists) is stored before any time passes, not at the next poll."""
    start = trio.current_time()
    await engine.create_flow(schedule_flow("0 3 * * *"))
    await trio.testing.wait_all_tasks_blocked()
    ctx = await engine.store.get_trigger("orch.sched", "sched", "every")
    assert ctx is not None and ctx["nextExecutionDate"] == "2024-01-01T03:00:00.000Z"
    assert trio.current_time() == start


#### counting ################################################################################################

async def test_a_day_of_five_minute_schedules_creates_exactly_288_executions(engine, autojump_clock):
    await _start(engine, schedule_flow("*/5 * * * *"))
    await trio.sleep(86400 - 1)
    rows = await executions_of(engine, "orch.sched", "sched")
    assert len(rows) == 288
    dates = sorted(r["trigger"]["variables"]["date"] for r in rows)
    assert dates[0] == "2024-01-01T00:00:00Z" and dates[-1] == "2024-01-01T23:55:00Z"
    assert len(set(dates)) == 288
    assert all(r["state"]["current"] == "SUCCESS" for r in rows)
    ctx = await engine.store.get_trigger("orch.sched", "sched", "every")
    assert ctx["nextExecutionDate"] == "2024-01-02T00:00:00.000Z"


async def test_trigger_variables_date_next_previous(engine, autojump_clock):
    await _start(engine, schedule_flow("0 * * * *"))
    await trio.sleep(3600 + 10)
    rows = await executions_of(engine, "orch.sched", "sched")
    second = next(r for r in rows if r["trigger"]["variables"]["date"] == "2024-01-01T01:00:00Z")
    assert second["trigger"]["variables"] == {"date": "2024-01-01T01:00:00Z", "next": "2024-01-01T02:00:00Z",
                                              "previous": "2024-01-01T00:00:00Z"}
    assert second["trigger"]["id"] == "every"
    assert second["trigger"]["type"] == "io.kestra.plugin.core.trigger.Schedule"


async def test_with_seconds_and_nicknames(engine, autojump_clock):
    await engine.create_flow(schedule_flow("*/10 * * * * *", extra="    withSeconds: true", flow_id="secs"))
    await _start(engine, schedule_flow("@hourly", flow_id="hourly"))
    await trio.sleep(2 * 3600 - 1)
    assert len(await executions_of(engine, "orch.sched", "secs")) == 720
    hourly = await executions_of(engine, "orch.sched", "hourly")
    assert sorted(r["trigger"]["variables"]["date"] for r in hourly) == ["2024-01-01T00:00:00Z",
                                                                         "2024-01-01T01:00:00Z"]


async def test_inputs_labels_and_conditions(engine, autojump_clock):
    source = schedule_flow("0 0 * * *", inputs="inputs:\n  - id: day\n    type: STRING", extra="""
    inputs:
      day: "{{ trigger.date | date('EEEE') }}"
    labels:
      origin: cron
    conditions:
      - type: io.kestra.plugin.core.condition.Weekend
""")
    await _start(engine, source)
    await trio.sleep(7 * 86400 - 1)  # 2024-01-01 is a Monday: only the 6th and the 7th are a weekend
    rows = await executions_of(engine, "orch.sched", "sched")
    assert sorted(r["inputs"]["day"] for r in rows) == ["Saturday", "Sunday"]
    assert all({"key": "origin", "value": "cron"} in r["labels"] for r in rows)


async def test_stop_after_disables_the_trigger(engine, autojump_clock):
    source = schedule_flow("0 * * * *", extra="    stopAfter: [SUCCESS]")
    await _start(engine, source)
    await trio.sleep(5 * 3600)
    rows = await executions_of(engine, "orch.sched", "sched")
    assert len(rows) == 1
    ctx = await engine.store.get_trigger("orch.sched", "sched", "every")
    assert ctx["disabled"] is True


async def test_disabled_flow_and_trigger_do_not_fire(engine, autojump_clock):
    await _start(engine, schedule_flow("*/5 * * * *", extra="    disabled: true"))
    await _start(engine, schedule_flow("*/5 * * * *", flow_id="off").replace("namespace:", "disabled: true\nnamespace:"))
    await trio.sleep(3600)
    assert await executions_of(engine, "orch.sched", "sched") == []
    assert await executions_of(engine, "orch.sched", "off") == []


#### DST ######################################################################################################

@pytest.mark.parametrize("wall_start, expected", [
    (datetime(2024, 3, 30, 23, 0, tzinfo=timezone.utc), 23),  # Paris spring forward: a 23-hour day
    (datetime(2024, 10, 26, 22, 0, tzinfo=timezone.utc), 25),  # Paris fall back: a 25-hour day
])
async def test_hourly_schedule_across_a_dst_change(engine, autojump_clock, wall_start, expected):
    await _start(engine, schedule_flow("0 * * * *", extra="    timezone: Europe/Paris"))
    await trio.sleep(expected * 3600 - 1)  # one local day
    rows = await executions_of(engine, "orch.sched", "sched")
    dates = sorted(r["trigger"]["variables"]["date"] for r in rows)
    assert len(dates) == expected == len(set(dates))
    assert dates[0].endswith("T00:00:00+01:00") or dates[0].endswith("T00:00:00+02:00")
    offsets = {d[-6:] for d in dates}
    assert offsets == {"+01:00", "+02:00"}


def test_daily_at_2_30_in_paris_on_spring_forward_day_runs_at_3_00():
    cron = Cron("30 2 * * *", __import__("zoneinfo").ZoneInfo("Europe/Paris"))
    nxt = cron.next_after(datetime(2024, 3, 30, 12, tzinfo=timezone.utc))
    assert format_zoned(nxt.astimezone(cron.zone)) == "2024-03-31T03:00:00+02:00"


def test_invalid_cron_is_an_illegal_argument():
    with pytest.raises(IllegalArgument):
        Cron("61 * * * *", timezone.utc)
    with pytest.raises(IllegalArgument):
        Cron("* * * * *", timezone.utc, with_seconds=True)


#### recovery after downtime ##################################################################################

@pytest.mark.parametrize("mode, expected", [("ALL", 12 + 1), ("LAST", 1 + 1), ("NONE", 0 + 1)])
async def test_missed_schedules_after_downtime(tmp_path, autojump_clock, monkeypatch, mode, expected):
    """Two engines on the same store: the first runs 1 h, the server is down 1 h (12 missed dates), the
    second engine recovers per recoverMissedSchedules and then keeps scheduling."""
    from falconet.runtime.store.memory import MemoryStore

    store = MemoryStore()
    await store.open()
    source = schedule_flow("*/5 * * * *", extra=f"    recoverMissedSchedules: {mode}")

    from falconet.runtime.orchestration import scheduler

    monkeypatch.setitem(scheduler.DEFAULTS, "poll", 10 * 86400.0)

    async def run_for(seconds: float, base: datetime, first: bool) -> None:
        async with open_engine(tmp_path, store=store, clock=VirtualClock(base)) as engine:
            sched = engine.orchestration.scheduler
            if first:
                await engine.create_flow(source)
            sched.wake()
            await trio.sleep(seconds)

    await run_for(3600 - 1, EPOCH, True)  # 00:00 … 00:55: 12 executions
    before = len(await executions_of_store(store))
    assert before == 12
    # down from 00:59:59 to 01:59:30: dates 01:00 … 01:55 (12) were missed; 02:00 comes while running
    await run_for(60, EPOCH + timedelta(hours=1, minutes=59, seconds=30), False)
    rows = await executions_of_store(store)
    assert len(rows) - before == expected
    dates = [r["trigger"]["variables"]["date"] for r in rows]
    assert len(dates) == len(set(dates))  # nothing doubled
    assert "2024-01-01T02:00:00Z" in dates
    if mode == "LAST":
        assert "2024-01-01T01:55:00Z" in dates and "2024-01-01T01:50:00Z" not in dates
    await store.close()


async def executions_of_store(store):
    from falconet.runtime.store.base import ExecutionQuery

    await store.open()  # reopening a closed MemoryStore finds its data again
    await store.flush()
    rows, _ = await store.search_executions(ExecutionQuery(namespace="orch.sched", flow_id="sched", size=1000))
    return rows


#### backfill #################################################################################################

async def test_backfill_creates_past_dates_then_resumes(engine, autojump_clock):
    await _start(engine, schedule_flow("0 * * * *"))
    await trio.sleep(10)
    sched = engine.orchestration.scheduler
    ctx = await sched.set_backfill("orch.sched", "sched", "every", start=EPOCH - timedelta(hours=5),
                                   end=EPOCH - timedelta(hours=1), labels=[{"key": "bf", "value": "yes"}])
    assert ctx["backfill"]["currentDate"] == "2023-12-31T19:00:00.000Z"
    await trio.sleep(3600)
    rows = await executions_of(engine, "orch.sched", "sched")
    backfilled = [r for r in rows if {"key": "system.backfill", "value": "true"} in r["labels"]]
    assert sorted(r["trigger"]["variables"]["date"] for r in backfilled) == [
        "2023-12-31T19:00:00Z", "2023-12-31T20:00:00Z", "2023-12-31T21:00:00Z", "2023-12-31T22:00:00Z",
        "2023-12-31T23:00:00Z"]
    assert all({"key": "bf", "value": "yes"} in r["labels"] for r in backfilled)
    regular = sorted(r["trigger"]["variables"]["date"] for r in rows if r not in backfilled)
    assert regular == ["2024-01-01T00:00:00Z", "2024-01-01T01:00:00Z"]
    assert (await engine.store.get_trigger("orch.sched", "sched", "every"))["backfill"] is None


async def test_schedule_on_dates(engine, autojump_clock):
    source = """
id: dates
namespace: orch.sched
tasks:
  - id: log
    type: io.kestra.plugin.core.log.Log
    message: hi
triggers:
  - id: on
    type: io.kestra.plugin.core.trigger.ScheduleOnDates
    timezone: Europe/Paris
    dates:
      - 2024-01-01T03:00:00
      - 2024-01-01T01:30:00
      - 2023-12-01T00:00:00
"""
    await _start(engine, source)
    await trio.sleep(86400)
    rows = await executions_of(engine, "orch.sched", "dates")
    assert sorted(r["trigger"]["variables"]["date"] for r in rows) == [
        "2024-01-01T01:30:00+01:00", "2024-01-01T03:00:00+01:00"]


async def test_an_api_change_while_a_date_is_being_fired_keeps_both(engine, autojump_clock, monkeypatch):
    """The trigger is disabled through the API between the claim of a date and the save of its execution:
    the scheduler's compare-and-set loses, reads the context again, and records its execution without
    undoing the change (nor firing the date again)."""
    await _start(engine, schedule_flow("0 * * * *"))
    scheduler = engine.orchestration.scheduler
    create = engine.create_execution
    disabled_during: list[str] = []

    async def create_then_disable(*args, **kwargs):
        created = await create(*args, **kwargs)
        if not disabled_during:
            disabled_during.append(created["id"])
            await scheduler.set_disabled("orch.sched", "sched", "every", True)
        return created

    monkeypatch.setattr(engine, "create_execution", create_then_disable)
    await trio.sleep(3 * 3600)
    rows = await executions_of(engine, "orch.sched", "sched")
    assert [r["id"] for r in rows] == disabled_during  # the 00:00 date once, nothing after the disabling
    ctx = await engine.store.get_trigger("orch.sched", "sched", "every")
    assert ctx["disabled"] is True and "pendingDate" not in ctx
    assert ctx["executionId"] == disabled_during[0] and ctx["date"] == "2024-01-01T00:00:00.000Z"
    assert ctx["nextExecutionDate"] == "2024-01-01T01:00:00.000Z"
    assert scheduler.conflicts >= 1


async def test_a_stored_claim_is_settled_at_once_by_a_single_server(engine, autojump_clock):
    """One server (not a shared store): a claim found in the store is one its own crash left; it is settled
    at the first evaluation, however recent."""
    await engine.store.save_trigger({
        "namespace": "orch.sched", "flowId": "sched", "triggerId": "every", "flowRevision": 1, "date": None,
        "nextExecutionDate": "2024-01-01T00:00:00.000Z", "pendingDate": "2024-01-01T00:00:00.000Z",
        "evaluateRunningDate": "2024-01-01T00:00:00.000Z", "backfill": None, "stopAfter": None,
        "disabled": False, "executionId": None, "updatedDate": None, "workerId": None})
    await _start(engine, schedule_flow("0 * * * *"))
    await trio.sleep(10)
    rows = await executions_of(engine, "orch.sched", "sched")
    assert [r["trigger"]["variables"]["date"] for r in rows] == ["2024-01-01T00:00:00Z"]
