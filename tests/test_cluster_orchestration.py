"""Orchestration across the servers of a cluster: two or three engines in one trio run, each with its own data
folder, on one PostgreSQL database (tests/pg.py; skipped with the reason where PostgreSQL is not installed),
on the real clock. Schedule ticks fire once cluster-wide, a schedule goes on after the server that fired it
stops, Flow triggers fire once per execution event and their condition windows lose no match when two
servers end executions together, concurrency limits (QUEUE, CANCEL, FAIL) count every server's executions,
webhooks answer on every server."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, AsyncIterator

import pytest
import trio

from falconet.runtime.config import Config
from falconet.runtime.kernel.engine import Engine
from falconet.runtime.kernel.startup import open_engine
from falconet.runtime.kernel.execution import format_instant
from falconet.runtime.store.base import ExecutionQuery

NS = "cluster.orch"


@pytest.fixture
def db_url(pg_server) -> str:
    name = pg_server.create_database(f"corch_{uuid.uuid4().hex[:12]}")
    return f"postgresql://{pg_server.user}:{pg_server.password}@{pg_server.host}:{pg_server.port}/{name}"


class Node:
    """One server of the cluster: an engine in a task of its own, started and stopped on demand."""

    def __init__(self, root: Path, url: str, name: str, lease: float = 10.0):
        self.root, self.url, self.name, self.lease = root, url, name, lease
        self.engine: Engine | None = None
        self._scope: trio.CancelScope | None = None
        self.stopped = trio.Event()

    async def _run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        cfg = Config(data_dir=self.root / self.name, storage_path=self.root / "storage", lease_duration=self.lease)
        with trio.CancelScope() as self._scope:
            async with open_engine(self.root / self.name, store=self.url, config=cfg) as engine:
                engine.admission.poll = 60.0  # freed slots of other servers arrive by NOTIFY
                self.engine = engine
                task_status.started()
                await trio.sleep_forever()
        self.stopped.set()

    async def start(self, nursery: trio.Nursery) -> Engine:
        await nursery.start(self._run)
        assert self.engine is not None
        return self.engine

    async def stop(self) -> None:
        assert self._scope is not None
        self._scope.cancel()
        await self.stopped.wait()


class Cluster:
    def __init__(self, root: Path, url: str, nursery: trio.Nursery):
        self.root, self.url, self.nursery = root, url, nursery
        self.nodes: list[Node] = []

    async def start(self, lease: float = 10.0) -> Engine:
        node = Node(self.root, self.url, f"node{len(self.nodes)}", lease)
        self.nodes.append(node)
        return await node.start(self.nursery)


@pytest.fixture
async def cluster(tmp_path, db_url) -> AsyncIterator[Cluster]:
    async with trio.open_nursery() as nursery:
        yield Cluster(tmp_path, db_url, nursery)
        nursery.cancel_scope.cancel()


async def executions(engine: Engine, flow_id: str) -> list[dict[str, Any]]:
    await engine.store.flush()
    rows, _ = await engine.store.search_executions(ExecutionQuery(namespace=NS, flow_id=flow_id, size=1000,
                                                                  sort=["state.startDate:asc"]))
    return rows


async def wait_for(predicate: Any, timeout: float = 20.0, step: float = 0.05) -> None:
    with trio.fail_after(timeout):
        while not await predicate():
            await trio.sleep(step)


def schedule(flow_id: str, recover: str = "ALL") -> str:
    return f"""
id: {flow_id}
namespace: {NS}
tasks:
  - id: log
    type: io.kestra.plugin.core.log.Log
    message: "{{{{ trigger.date }}}}"
triggers:
  - id: every2s
    type: io.kestra.plugin.core.trigger.Schedule
    cron: "*/2 * * * * *"
    withSeconds: true
    recoverMissedSchedules: {recover}
"""


def tick_dates(rows: list[dict[str, Any]]) -> list[datetime]:
    return sorted(datetime.fromisoformat(r["trigger"]["variables"]["date"].replace("Z", "+00:00")) for r in rows)


def assert_every_tick_once(dates: list[datetime]) -> None:
    assert len(dates) == len(set(dates)), f"a tick fired twice: {dates}"
    gaps = [b - a for a, b in zip(dates, dates[1:], strict=False)]
    assert all(g == timedelta(seconds=2) for g in gaps), f"a tick is missing: {dates}"


#### Schedules ##############################################################################################

async def test_a_two_second_schedule_fires_once_per_tick_across_three_servers_for_20_seconds(cluster):
    nodes = [await cluster.start() for _ in range(3)]
    await nodes[0].create_flow(schedule("tick"))
    for engine in nodes:
        engine.orchestration.scheduler.wake()
    await trio.sleep(20)
    rows = await executions(nodes[0], "tick")
    dates = tick_dates(rows)
    assert len(dates) >= 9, dates
    assert_every_tick_once(dates)
    created = [engine.orchestration.scheduler.created for engine in nodes]
    assert sum(created) == len(rows)  # no server created one that is not stored, none twice
    await wait_for(lambda: _all_ended(nodes[0], "tick", len(rows)))


async def _all_ended(engine: Engine, flow_id: str, count: int) -> bool:
    rows = await executions(engine, flow_id)
    return len(rows) >= count and all(r["state"]["current"] == "SUCCESS" for r in rows[:count])


async def test_a_schedule_goes_on_after_the_server_that_fired_it_stops(cluster, monkeypatch):
    from falconet.runtime.orchestration import scheduler

    monkeypatch.setitem(scheduler.DEFAULTS, "missed", 1.0)
    first = await cluster.start()
    await first.create_flow(schedule("all", "ALL"))
    await first.create_flow(schedule("none", "NONE"))
    await first.create_flow(schedule("last", "LAST"))
    first.orchestration.scheduler.wake()

    async def fired_by_first() -> bool:
        return all([await executions(first, f) for f in ("all", "none", "last")])

    await wait_for(fired_by_first, timeout=10)
    await cluster.nodes[0].stop()
    stopped_at = datetime.now(timezone.utc)
    await trio.sleep(5)  # nobody runs the schedules: two or three ticks are missed
    started_at = datetime.now(timezone.utc)
    second = await cluster.start()

    async def caught_up() -> bool:
        dates = tick_dates(await executions(second, "none"))
        return bool(dates) and dates[-1] > stopped_at + timedelta(seconds=6)

    await wait_for(caught_up, timeout=15)
    await trio.sleep(2.5)  # one more tick for ALL too
    recovered = tick_dates(await executions(second, "all"))
    assert recovered[-1] > stopped_at + timedelta(seconds=6)
    assert_every_tick_once(recovered)  # ALL: the missed ticks were fired by the second server, none twice
    assert len([d for d in recovered if stopped_at < d < started_at]) >= 2
    for flow_id, most in (("none", 0), ("last", 1)):  # NONE skips the missed ticks, LAST fires the latest
        dates = tick_dates(await executions(second, flow_id))
        assert len(dates) == len(set(dates)), dates
        assert len([d for d in dates if stopped_at < d < started_at]) <= most, (flow_id, dates)
        gaps = [b - a for a, b in zip(dates, dates[1:], strict=False)]
        assert max(gaps) >= timedelta(seconds=4), (flow_id, dates)


async def test_a_date_claimed_by_a_server_that_died_is_fired_once_its_claim_is_old(cluster, monkeypatch):
    from falconet.runtime.orchestration import scheduler

    monkeypatch.setitem(scheduler.DEFAULTS, "claim", 3.0)
    engine = await cluster.start()
    await engine.create_flow(schedule("orphan").replace('"*/2 * * * * *"', '"0 0 1 1 * *"'))
    due = (datetime.now(timezone.utc) - timedelta(seconds=1)).replace(microsecond=0)
    # the context a server leaves when it dies between its claim of ``due`` and the execution's creation
    await engine.store.save_trigger({
        "namespace": NS, "flowId": "orphan", "triggerId": "every2s", "flowRevision": 1, "date": None,
        "nextExecutionDate": format_instant(due), "pendingDate": format_instant(due),
        "evaluateRunningDate": format_instant(datetime.now(timezone.utc)), "backfill": None, "stopAfter": None,
        "disabled": False, "executionId": None, "updatedDate": None, "workerId": None})
    engine.orchestration.scheduler.wake()
    await trio.sleep(1.5)
    assert await executions(engine, "orphan") == []  # the claim is live: another server may be creating it

    async def fired() -> bool:
        return len(await executions(engine, "orphan")) == 1

    await wait_for(fired, timeout=10)
    ctx = await engine.store.get_trigger(NS, "orphan", "every2s")
    assert "pendingDate" not in ctx and ctx["date"] == format_instant(due)
    assert ctx["nextExecutionDate"] > format_instant(datetime.now(timezone.utc))


async def test_disabling_a_trigger_through_any_server_stops_it_everywhere(cluster):
    first, second = await cluster.start(), await cluster.start()
    await first.create_flow(schedule("pausable"))
    first.orchestration.scheduler.wake()
    await wait_for(lambda: _count_at_least(first, "pausable", 1), timeout=10)
    await second.orchestration.scheduler.set_disabled(NS, "pausable", "every2s", True)
    await trio.sleep(0.5)  # an execution being created when it was disabled
    before = len(await executions(first, "pausable"))
    await trio.sleep(4.5)
    assert len(await executions(first, "pausable")) == before
    ctx = await first.store.get_trigger(NS, "pausable", "every2s")
    assert ctx["disabled"] is True and "pendingDate" not in ctx


async def _count_at_least(engine: Engine, flow_id: str, n: int) -> bool:
    return len(await executions(engine, flow_id)) >= n


#### Flow triggers ##########################################################################################

UPSTREAM = """
id: {id}
namespace: cluster.orch
tasks:
  - id: wait
    type: io.kestra.plugin.core.flow.Sleep
    duration: PT0.3S
"""

ON_UPSTREAM = """
id: downstream
namespace: cluster.orch
tasks:
  - id: log
    type: io.kestra.plugin.core.log.Log
    message: "{{ trigger.executionId }}"
triggers:
  - id: on-up
    type: io.kestra.plugin.core.trigger.Flow
    conditions:
      - type: io.kestra.plugin.core.condition.ExecutionFlow
        namespace: cluster.orch
        flowId: up
"""

JOINED = """
id: joined
namespace: cluster.orch
tasks:
  - id: log
    type: io.kestra.plugin.core.log.Log
    message: joined
triggers:
  - id: both
    type: io.kestra.plugin.core.trigger.Flow
    preconditions:
      id: both
      flows:
        - namespace: cluster.orch
          flowId: left
          states: [SUCCESS]
        - namespace: cluster.orch
          flowId: right
          states: [SUCCESS]
"""


async def test_a_flow_trigger_fires_once_per_execution_with_two_servers(cluster):
    first, second = await cluster.start(), await cluster.start()
    await first.create_flow(UPSTREAM.format(id="up"))
    await first.create_flow(ON_UPSTREAM)
    await second.orchestration.scheduler.tick()  # the second server reads the flows created on the first
    with second.bus.subscribe(namespace=NS, kinds=("execution",)) as seen_on_second:
        # every server sees every execution's events (the relay), each one's own evaluates its triggers
        ups = [await first.execute(NS, "up"), await second.execute(NS, "up")]

        async def triggered() -> bool:
            return len(await executions(first, "downstream")) >= 2

        await wait_for(triggered)
        await trio.sleep(0.5)
        relayed = []
        while True:
            try:
                relayed.append(seen_on_second.receive_nowait())
            except trio.WouldBlock:
                break
    assert any(e.remote and e.execution_id == ups[0]["id"] and e.terminal for e in relayed)
    rows = await executions(first, "downstream")
    assert sorted(r["trigger"]["variables"]["executionId"] for r in rows) == sorted(u["id"] for u in ups)


async def test_preconditions_met_on_two_servers_at_once_fire_once_per_round(cluster):
    first, second = await cluster.start(), await cluster.start()
    await first.create_flow(UPSTREAM.format(id="left"))
    await first.create_flow(UPSTREAM.format(id="right"))
    await first.create_flow(JOINED)
    await second.orchestration.scheduler.tick()
    rounds = 5
    for _ in range(rounds):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(first.execute, NS, "left")
            nursery.start_soon(second.execute, NS, "right")

    async def all_rounds() -> bool:
        return len(await executions(first, "joined")) >= rounds

    await wait_for(all_rounds)
    await trio.sleep(0.5)
    assert len(await executions(first, "joined")) == rounds  # no match lost, no round fired twice
    assert await first.store.state_list("multiple-condition") == []


#### Concurrency limits #####################################################################################

def limited(flow_id: str, behavior: str, sleep: str = "PT1S") -> str:
    return f"""
id: {flow_id}
namespace: {NS}
concurrency:
  limit: 1
  behavior: {behavior}
tasks:
  - id: wait
    type: io.kestra.plugin.core.flow.Sleep
    duration: {sleep}
"""


async def test_queue_counts_every_servers_executions_and_admits_first_in_first_out(cluster):
    first, second = await cluster.start(), await cluster.start()
    await first.create_flow(limited("queued", "QUEUE", "PT0.5S"))
    ids = []
    for engine in (first, second, first, second):
        ids.append((await engine.create_execution(NS, "queued"))["id"])
        await trio.sleep(0.05)  # creation order = queue order
    running_seen: set[int] = set()

    async def ended() -> bool:
        rows = await executions(first, "queued")
        running_seen.add(sum(1 for r in rows if r["state"]["current"] == "RUNNING"))
        return len(rows) == 4 and all(r["state"]["current"] == "SUCCESS" for r in rows)

    await wait_for(ended, step=0.02)
    assert max(running_seen) == 1  # never two at once, though two servers each had one to run
    rows = {r["id"]: r for r in await executions(first, "queued")}

    def started(eid: str) -> str:
        return next(d for s, d in ((h["state"], h["date"]) for h in rows[eid]["state"]["histories"]) if s == "RUNNING")

    assert sorted(ids, key=started) == ids  # a slot freed on one server admitted the other's queue head
    assert all(any(h["state"] == "QUEUED" for h in rows[eid]["state"]["histories"]) for eid in ids[1:])


@pytest.mark.parametrize("behavior, final", [("CANCEL", "CANCELLED"), ("FAIL", "FAILED")])
async def test_cancel_and_fail_count_every_servers_executions(cluster, behavior, final):
    first, second = await cluster.start(), await cluster.start()
    await first.create_flow(limited("refused", behavior, "PT2S"))
    running = await first.create_execution(NS, "refused")

    async def is_running() -> bool:
        doc = await first.store.get_execution(running["id"])
        return doc is not None and doc["state"]["current"] == "RUNNING"

    await wait_for(is_running)
    refused = await second.create_execution(NS, "refused")

    async def decided() -> bool:
        doc = await second.store.get_execution(refused["id"])
        return doc is not None and doc["state"]["current"] == final

    await wait_for(decided, timeout=5)
    assert (await first.wait_for_end(running["id"]))["state"]["current"] == "SUCCESS"
    again = await second.execute(NS, "refused", wait=True)  # the slot is free again
    assert again["state"]["current"] == "SUCCESS"


#### Webhooks ###############################################################################################

WEBHOOK = """
id: hook
namespace: cluster.orch
triggers:
  - id: webhook
    type: io.kestra.plugin.core.trigger.Webhook
    key: a-secret-key
    wait: true
tasks:
  - id: log
    type: io.kestra.plugin.core.debug.Return
    format: "{{ trigger.body.n }}"
"""


async def test_a_webhook_answers_on_every_server(cluster):
    from falconet.http.app import create_app

    first, second = await cluster.start(), await cluster.start()
    await first.create_flow(WEBHOOK)  # created through one server only
    for n, engine in enumerate((first, second, second)):
        client = create_app(engine, config=engine.config).test_client()
        response = await client.post(f"/api/v1/executions/webhook/{NS}/hook/a-secret-key", json={"n": n})
        assert response.status_code == 200
        doc = await response.get_json()
        assert doc["state"]["current"] == "SUCCESS" and doc["taskRunList"][0]["outputs"] == {"value": str(n)}
        response = await client.post(f"/api/v1/executions/webhook/{NS}/hook/wrong-key", json={})
        assert response.status_code == 404
    assert len(await executions(second, "hook")) == 3


#### Polling triggers #######################################################################################

async def test_a_polling_trigger_is_evaluated_by_one_server_per_interval(cluster):
    from typing import ClassVar

    from falconet.sdk.plugin import PollingContext, PollingTrigger, registry

    class Tick(PollingTrigger):
        type = "io.example.trigger.ClusterTick"
        interval = "PT1S"
        calls: ClassVar[list[str]] = []

        async def evaluate(self, ctx: PollingContext) -> dict[str, Any] | None:
            Tick.calls.append(ctx.trigger_id)
            return {"n": len(Tick.calls)}

    registry.register(Tick)
    try:
        first, second = await cluster.start(), await cluster.start()
        await first.create_flow(f"""
id: polled
namespace: {NS}
triggers:
  - id: tick
    type: io.example.trigger.ClusterTick
tasks:
  - id: log
    type: io.kestra.plugin.core.log.Log
    message: "{{{{ trigger.n }}}}"
""")
        await second.orchestration.scheduler.tick()
        first.orchestration.polling.wake()
        second.orchestration.polling.wake()
        await trio.sleep(6)
        calls = len(Tick.calls)
        assert 3 <= calls <= 7, calls  # one evaluation per second, not one per server and second
        rows = await executions(first, "polled")
        assert sorted(r["trigger"]["variables"]["n"] for r in rows) == list(range(1, calls + 1))
    finally:
        registry._types.pop(Tick.type, None)
        registry._canonical.pop(Tick.type, None)


ON_RUNNING = """
id: on-running
namespace: cluster.orch
tasks:
  - id: log
    type: io.kestra.plugin.core.log.Log
    message: "{{ trigger.executionId }}"
triggers:
  - id: running
    type: io.kestra.plugin.core.trigger.Flow
    states: [RUNNING]
    conditions:
      - type: io.kestra.plugin.core.condition.ExecutionFlow
        namespace: cluster.orch
        flowId: slow
"""


async def test_a_server_taking_an_execution_over_does_not_fire_its_evaluated_transitions_again(cluster):
    first, second = await cluster.start(lease=2.0), await cluster.start(lease=2.0)
    await first.create_flow(UPSTREAM.format(id="slow").replace("PT0.3S", "PT3S"))
    await first.create_flow(ON_RUNNING)
    await second.orchestration.scheduler.tick()
    slow = await first.create_execution(NS, "slow")

    async def fired() -> bool:
        return len(await executions(first, "on-running")) == 1

    await wait_for(fired)
    await cluster.nodes[0].stop()  # its execution stays RUNNING in the store, its Sleep unfinished
    # the second server claims the orphaned execution once its lease expired and resumes it
    assert (await second.wait_for_end(slow["id"]))["state"]["current"] == "SUCCESS"
    assert slow["id"] in {r["id"] for r in await executions(second, "slow")}
    await trio.sleep(1)
    assert len(await executions(second, "on-running")) == 1  # RUNNING was evaluated by the first server
    assert await second.store.state_list("flow-trigger-progress") == []
