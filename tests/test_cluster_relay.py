"""Live updates across the nodes of a cluster (falconet/runtime/cluster/relay.py): two engines in one trio run,
each with its own data folder, on one real PostgreSQL database (tests/pg.py). Node A runs the executions;
clients of node B see them (websocket, SSE), B's ``wait_for_end`` returns when they end, and B's orchestration
never acts on them."""
from __future__ import annotations

import contextlib
import json
import uuid
from typing import Any, AsyncIterator

import pytest
import trio
import trio.testing
from quart.testing.connections import WebsocketDisconnectError

from falconet.http.app import create_app
from falconet.runtime.cluster.relay import CHANNEL
from falconet.runtime.kernel.bus import Overflow
from falconet.runtime.kernel.engine import Engine
from falconet.runtime.kernel.startup import open_engine
from falconet.runtime.store.postgres import PostgresStore

GATED = """id: relay
namespace: company.team
tasks:
  - id: gate
    type: io.kestra.plugin.core.flow.Pause
  - id: one
    type: io.kestra.plugin.core.log.Log
    message: "line one"
  - id: two
    type: io.kestra.plugin.core.debug.Return
    format: done
"""

WATCHER = """id: watcher
namespace: company.team
tasks:
  - id: seen
    type: io.kestra.plugin.core.log.Log
    message: "relay ended"
triggers:
  - id: on-relay
    type: io.kestra.plugin.core.trigger.Flow
    conditions:
      - type: io.kestra.plugin.core.condition.ExecutionFlow
        namespace: company.team
        flowId: relay
      - type: io.kestra.plugin.core.condition.ExecutionStatus
        in: [SUCCESS]
"""


@pytest.fixture
def db_url(pg_server) -> str:
    name = pg_server.create_database(f"rly_{uuid.uuid4().hex[:12]}")
    return f"postgresql://{pg_server.user}:{pg_server.password}@{pg_server.host}:{pg_server.port}/{name}"


@contextlib.asynccontextmanager
async def two_nodes(db_url: str, tmp_path: Any, *flows: str) -> AsyncIterator[tuple[Engine, Engine]]:
    """Nodes A and B on one database; ``flows`` are stored before B starts (B loads them at start-up)."""
    async with open_engine(tmp_path / "a", store=db_url) as a:
        for source in flows:
            await a.create_flow(source)
        async with open_engine(tmp_path / "b", store=db_url) as b:
            assert a.relay is not None and b.relay is not None
            yield a, b


async def stored_state(engine: Engine, execution_id: str, state: str) -> dict[str, Any]:
    """Poll ``engine``'s store (another node writes it) until the execution is in ``state``."""
    with trio.fail_after(15):
        while True:
            doc = await engine.get_execution(execution_id)
            if doc is not None and doc["state"]["current"] == state:
                return doc
            await trio.sleep(0.02)


async def paused_on_a(a: Engine, b: Engine) -> str:
    created = await a.create_execution("company.team", "relay")
    await stored_state(b, created["id"], "PAUSED")
    return created["id"]


async def test_a_websocket_on_b_follows_an_execution_running_on_a(db_url, tmp_path):
    async with two_nodes(db_url, tmp_path, GATED) as (a, b):
        execution_id = await paused_on_a(a, b)
        client = create_app(b, config=b.config).test_client()
        messages = []
        with trio.fail_after(20):
            async with client.websocket(f"/api/v1/executions/{execution_id}/ws") as ws:
                messages.append(json.loads(await ws.receive()))
                assert messages[0]["execution"]["state"]["current"] == "PAUSED"
                await a.resume(execution_id)
                with pytest.raises(WebsocketDisconnectError):   # closed (1000) after "end"
                    while True:
                        messages.append(json.loads(await ws.receive()))
        assert not b.actors   # B ran nothing: everything it sent was read from the store
        types = [m["type"] for m in messages]
        assert types[-1] == "end" and messages[-1]["execution"]["state"]["current"] == "SUCCESS"
        states_of: dict[str, list[str]] = {}
        for m in messages:
            if m["type"] == "taskrun":
                assert m["executionId"] == execution_id
                states_of.setdefault(m["taskRun"]["taskId"], []).append(m["taskRun"]["state"]["current"])
        assert states_of["one"][-1] == "SUCCESS" and states_of["two"][-1] == "SUCCESS"
        assert "line one" in [m["log"]["message"] for m in messages if m["type"] == "log"]
        assert "RUNNING" in [m["execution"]["state"]["current"] for m in messages if m["type"] == "execution"]
        assert b.relay.received and a.relay.sent


async def test_global_websocket_on_b_sees_a_s_state_changes(db_url, tmp_path):
    async with two_nodes(db_url, tmp_path, GATED) as (a, b):
        client = create_app(b, config=b.config).test_client()
        with trio.fail_after(20):
            async with client.websocket("/api/v1/ws?namespace=company&flowId=relay") as ws:
                while not len(b.bus):   # the feed subscribed
                    await trio.sleep(0.01)
                created = await a.create_execution("company.team", "relay")
                states = []
                while "PAUSED" not in states:
                    message = json.loads(await ws.receive())
                    assert message["execution"]["id"] == created["id"]
                    states.append(message["execution"]["state"]["current"])
                await a.resume(created["id"])
                while states[-1] != "SUCCESS":
                    states.append(json.loads(await ws.receive())["execution"]["state"]["current"])
        assert states[0] in ("CREATED", "RUNNING") and "PAUSED" in states


async def test_sse_follows_on_b(db_url, tmp_path):
    async with two_nodes(db_url, tmp_path, GATED) as (a, b):
        execution_id = await paused_on_a(a, b)
        client = create_app(b, config=b.config).test_client()
        result: dict[str, Any] = {}
        log_lines: list[str] = []

        async def follow_execution() -> None:
            response = await client.get(f"/api/v1/executions/{execution_id}/follow")
            result["events"] = [(block.split("\n")[0], json.loads(block.split("data: ", 1)[1]))
                                for block in (await response.get_data()).decode().split("\n\n") if block.strip()]

        async def follow_logs() -> None:
            # the stream never ends by itself: left by cancelling (see tests/http/test_live.py)
            with trio.CancelScope() as scope:
                async with client.request(f"/api/v1/logs/{execution_id}/follow", method="GET") as connection:
                    await connection.send_complete()
                    buffer = b""
                    while b"line one" not in buffer:
                        buffer += await connection.receive()
                    for block in buffer.decode().split("\n\n"):
                        if "data: " in block:
                            log_lines.append(json.loads(block.split("data: ", 1)[1])["message"])
                    scope.cancel()

        with trio.fail_after(20):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(follow_execution)
                nursery.start_soon(follow_logs)
                while len(b.bus) < 2:   # both streams subscribed
                    await trio.sleep(0.01)
                await a.resume(execution_id)
        kinds = [k for k, _ in result["events"]]
        assert kinds[0] == "id: start" and kinds[-1] == "id: end", kinds
        assert result["events"][-1][1]["state"]["current"] == "SUCCESS"
        assert "line one" in log_lines


async def test_wait_for_end_on_b_returns_when_a_ends_the_execution(db_url, tmp_path):
    async with two_nodes(db_url, tmp_path, GATED) as (a, b):
        execution_id = await paused_on_a(a, b)
        done: dict[str, Any] = {}

        async def wait() -> None:
            done["doc"] = await b.wait_for_end(execution_id)

        with trio.fail_after(20):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(wait)
                await trio.sleep(0.2)
                assert not done   # still paused: B keeps waiting
                await a.resume(execution_id)
        assert done["doc"]["state"]["current"] == "SUCCESS"
        assert [tr["taskId"] for tr in done["doc"]["taskRunList"]] == ["gate", "one", "two"]


class RecordingHooks:
    """B's real execution hooks (its orchestration), recording the executions they are handed."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.executions: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def watch_execution_state(self, ex: Any) -> None:
        self.executions.append(ex.id)
        self.inner.watch_execution_state(ex)

    async def on_execution_end(self, ex: Any, flow: Any) -> None:
        self.executions.append(ex.id)
        await self.inner.on_execution_end(ex, flow)


async def test_orchestration_on_b_does_not_act_on_a_s_executions(db_url, tmp_path):
    async with two_nodes(db_url, tmp_path, GATED, WATCHER) as (a, b):
        hooks = b.execution_hooks = RecordingHooks(b.execution_hooks)
        execution_id = await paused_on_a(a, b)
        with b.bus.subscribe(namespace="company.team", kinds=("execution",)) as seen_on_b:
            await a.resume(execution_id)
            ended: list[str] = []
            with trio.fail_after(20):
                # A (the owner) fires the Flow trigger; B relays the end of both executions, in order
                while len(ended) < 2:
                    event = await seen_on_b.receive()
                    assert event.remote
                    if event.terminal:
                        ended.append(event.flow_id)
        assert ended == ["relay", "watcher"]
        # by the time B relayed the watcher's end, it had handled the relay's: its orchestration saw neither
        assert hooks.executions == [] and not b.actors
        rows, total = await b.store.search_executions(_query("watcher"))
        assert total == 1 and rows[0]["state"]["current"] == "SUCCESS"


def _query(flow_id: str) -> Any:
    from falconet.runtime.store.base import ExecutionQuery

    return ExecutionQuery(namespace="company.team", flow_id=flow_id, page=1, size=10)


async def test_after_missed_notifications_b_resyncs_from_the_store(db_url, tmp_path, pg_server):
    """An end B was never told about (written by a node that did not announce it) is found once B's LISTEN
    connection comes back: waiters read the store again and bus subscribers get Overflow."""
    async with two_nodes(db_url, tmp_path, GATED) as (a, b):
        execution_id = await paused_on_a(a, b)
        silent = PostgresStore(db_url)
        await silent.open()
        try:
            done: dict[str, Any] = {}

            async def wait() -> None:
                done["doc"] = await b.wait_for_end(execution_id)

            with b.bus.subscribe(execution_id=execution_id) as sub, trio.fail_after(20):
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(wait)
                    # the waiter read the execution (B's reads are answered in order) before it is changed
                    await trio.testing.wait_all_tasks_blocked(cushion=0.01)
                    await b.store.get_execution(execution_id)
                    doc = await silent.get_execution(execution_id)
                    doc["state"]["current"] = "KILLED"
                    await silent.save_execution(doc)   # no NOTIFY
                    await trio.sleep(0.2)
                    assert not done
                    with pg_server.connect(db_url.rsplit("/", 1)[1]) as conn:
                        conn.execute("SELECT pg_terminate_backend(%s)", (b.relay.listener.backend_pid,))
                with pytest.raises(Overflow):
                    sub.receive_nowait()
            assert done["doc"]["state"]["current"] == "KILLED"
        finally:
            await silent.close()
            await a.kill(execution_id)


async def test_a_busy_node_coalesces_its_announcements(db_url, tmp_path):
    """100 log lines and document writes of one execution within one announcement window: one NOTIFY."""
    async with two_nodes(db_url, tmp_path, GATED) as (a, b):
        relay = a.relay
        assert relay is not None
        with trio.fail_after(10):
            async with a.relay.listener.subscribe(CHANNEL) as sub:
                await trio.sleep(relay.interval * 2)   # the announcer is idle: its window opens with the burst
                before = relay.sent
                for i in range(100):
                    relay.announce_log({"executionId": "x1", "namespace": "company.team", "flowId": "f",
                                        "message": str(i)})
                    relay.announce_execution("x1", "company.team", "f", 2)
                payload = json.loads(await sub.receive())
                while relay.sent == before:
                    await trio.sleep(0.01)
                await trio.sleep(relay.interval * 2)
        assert payload["e"] == [["x1", "company.team", "f", 3, 100, 1]]
        assert relay.sent == before + 1
        # every announcement stays under PostgreSQL's NOTIFY limit, however many executions
        big = {f"{i:022d}": ["company.team", "flow", 1, 0, 3] for i in range(1000)}
        payloads = relay.encode(big)
        assert len(payloads) > 1 and all(len(p.encode()) < 8000 for p in payloads)
        assert sum(len(json.loads(p)["e"]) for p in payloads) == 1000
