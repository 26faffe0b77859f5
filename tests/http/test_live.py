"""SSE follows and websockets through the in-process test client."""
from __future__ import annotations

import json

import pytest
import trio
from quart.testing.connections import WebsocketDisconnectError

PAUSE_THEN_WORK = """id: live
namespace: company.team
tasks:
  - id: wait
    type: io.kestra.plugin.core.flow.Pause
  - id: one
    type: io.kestra.plugin.core.log.Log
    message: "line one"
  - id: two
    type: io.kestra.plugin.core.debug.Return
    format: done
"""


def sse_events(raw: bytes) -> list[tuple[str, dict]]:
    events = []
    for block in raw.decode().split("\n\n"):
        if not block.strip():
            continue
        fields = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((fields["id"], json.loads(fields["data"])))
    return events


async def paused_execution(api):
    await api.flow(PAUSE_THEN_WORK)
    created = await api.execute("company.team", "live")
    return await api.wait_state(created["id"], "PAUSED")


async def test_follow_execution_sse(api):
    paused = await paused_execution(api)
    result = {}

    async def follow():
        response = await api.client.get(f"/api/v1/executions/{paused['id']}/follow")
        result["status"] = response.status_code
        result["type"] = response.headers["Content-Type"]
        result["events"] = sse_events(await response.get_data())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(follow)
        await trio.testing.wait_all_tasks_blocked()
        status, _ = await api.call("POST", f"/api/v1/executions/{paused['id']}/resume")
        assert status == 204
    assert result["status"] == 200 and result["type"].startswith("text/event-stream")
    kinds = [k for k, _ in result["events"]]
    assert kinds[0] == "start" and kinds[-1] == "end" and set(kinds[1:-1]) <= {"progress"}
    assert result["events"][0][1]["state"]["current"] == "PAUSED"
    assert result["events"][-1][1]["state"]["current"] == "SUCCESS"

    response = await api.client.get(f"/api/v1/executions/{paused['id']}/follow")
    events = sse_events(await response.get_data())
    assert [k for k, _ in events] == ["end"] and events[0][1]["id"] == paused["id"]


async def test_follow_unknown_execution_is_404(api, autojump_clock):
    status, body = await api.call("GET", "/api/v1/executions/nope/follow")
    assert status == 404 and body["message"].startswith("Not Found")


async def test_follow_logs_sse(api):
    paused = await paused_execution(api)
    seen = []

    async def follow():
        # the stream never ends by itself: leave it by cancelling (the test client's __aexit__ would
        # otherwise wait for a response end that never comes)
        with trio.CancelScope() as scope:
            async with api.client.request(f"/api/v1/logs/{paused['id']}/follow", method="GET") as connection:
                await connection.send_complete()
                buffer = b""
                while "line one" not in buffer.decode():
                    buffer += await connection.receive()
                seen.extend(sse_events(buffer.rsplit(b"\n\n", 1)[0] + b"\n\n"))
                scope.cancel()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(follow)
        await trio.testing.wait_all_tasks_blocked()
        await api.call("POST", f"/api/v1/executions/{paused['id']}/resume")
    assert all(k == "progress" for k, _ in seen)
    assert [e["message"] for _, e in seen if e.get("taskId") == "one"] == ["line one"]


async def test_execution_websocket_protocol(api):
    paused = await paused_execution(api)
    messages = []
    async with api.client.websocket(f"/api/v1/executions/{paused['id']}/ws") as ws:
        messages.append(json.loads(await ws.receive()))
        assert messages[0]["type"] == "execution" and messages[0]["execution"]["state"]["current"] == "PAUSED"
        status, _ = await api.call("POST", f"/api/v1/executions/{paused['id']}/resume")
        assert status == 204
        with pytest.raises(WebsocketDisconnectError):  # the server closes (1000) after "end"
            while True:
                messages.append(json.loads(await ws.receive()))
    types = [m["type"] for m in messages]
    assert types[-1] == "end" and messages[-1]["execution"]["state"]["current"] == "SUCCESS"
    runs = [m["taskRun"] for m in messages if m["type"] == "taskrun"]
    assert all(m["executionId"] == paused["id"] for m in messages if m["type"] == "taskrun")
    states_of = {}
    for tr in runs:
        states_of.setdefault(tr["taskId"], []).append(tr["state"]["current"])
    assert states_of["two"][-1] == "SUCCESS" and states_of["one"][-1] == "SUCCESS"
    logs = [m["log"]["message"] for m in messages if m["type"] == "log"]
    assert "line one" in logs


async def test_execution_websocket_unknown_and_terminated(api):
    async with api.client.websocket("/api/v1/executions/nope/ws") as ws:
        with pytest.raises(WebsocketDisconnectError) as closed:
            await ws.receive()
    assert "4404" in repr(closed.value)
    paused = await paused_execution(api)
    await api.call("DELETE", f"/api/v1/executions/{paused['id']}/kill")
    await api.wait(paused["id"])
    async with api.client.websocket(f"/api/v1/executions/{paused['id']}/ws") as ws:
        first = json.loads(await ws.receive())
        last = json.loads(await ws.receive())
    assert first["type"] == "execution" and last["type"] == "end"
    assert last["execution"]["state"]["current"] == "KILLED"


async def test_global_websocket_filters(api):
    await api.flow(PAUSE_THEN_WORK)
    await api.flow(PAUSE_THEN_WORK.replace("id: live", "id: other"))
    async with api.client.websocket("/api/v1/ws?namespace=company&flowId=live&state=PAUSED") as ws:
        await trio.testing.wait_all_tasks_blocked()
        await api.execute("company.team", "other")
        created = await api.execute("company.team", "live")
        message = json.loads(await ws.receive())
    assert message["type"] == "execution"
    assert message["execution"]["id"] == created["id"] and message["execution"]["state"]["current"] == "PAUSED"
    async with api.client.websocket("/api/v1/ws?state=BOGUS") as ws:
        with pytest.raises(WebsocketDisconnectError) as closed:
            await ws.receive()
    assert "4422" in repr(closed.value)


SLOW_STEPS = """id: steps
namespace: company.team
tasks:
  - id: gate
    type: io.kestra.plugin.core.flow.Pause
""" + "".join(f"""  - id: s{i}
    type: io.kestra.plugin.core.flow.Sleep
    duration: PT1S
""" for i in range(3))


async def test_websocket_coalesced_snapshots_while_task_runs_change(api, autojump_clock):
    await api.flow(SLOW_STEPS)
    created = await api.execute("company.team", "steps")
    await api.wait_state(created["id"], "PAUSED")
    stamped = []
    async with api.client.websocket(f"/api/v1/executions/{created['id']}/ws") as ws:
        stamped.append((trio.current_time(), json.loads(await ws.receive())))
        await api.call("POST", f"/api/v1/executions/{created['id']}/resume")
        with pytest.raises(WebsocketDisconnectError):
            while True:
                message = json.loads(await ws.receive())
                stamped.append((trio.current_time(), message))
    assert stamped[-1][1]["type"] == "end"
    # after each burst of task-run changes a full snapshot follows within 250 ms, carrying those changes
    for i, (when, message) in enumerate(stamped):
        if message["type"] != "taskrun" or message["taskRun"]["state"]["current"] != "RUNNING":
            continue
        later = [(t, m) for t, m in stamped[i + 1:] if m["type"] in ("execution", "end")]
        assert later, message
        t, snapshot = later[0]
        assert t - when <= 0.25 + 1e-6
        runs = {tr["id"]: tr["state"]["current"] for tr in snapshot["execution"].get("taskRunList", [])}
        assert runs[message["taskRun"]["id"]] in ("RUNNING", "SUCCESS")


MANY = "id: many\nnamespace: company.team\ntasks:\n  - id: gate\n    type: io.kestra.plugin.core.flow.Pause\n" + "".join(
    f"  - id: r{i}\n    type: io.kestra.plugin.core.debug.Return\n    format: '{i}'\n" for i in range(40))


async def test_websocket_overflow_is_replaced_by_a_fresh_snapshot(api, monkeypatch):
    from falconet.http.api import live

    monkeypatch.setattr(live, "BUFFER", 4)
    await api.flow(MANY)
    created = await api.execute("company.team", "many")
    await api.wait_state(created["id"], "PAUSED")
    messages = []
    async with api.client.websocket(f"/api/v1/executions/{created['id']}/ws") as ws:
        messages.append(json.loads(await ws.receive()))
        await api.call("POST", f"/api/v1/executions/{created['id']}/resume")
        final = await api.wait(created["id"])  # the engine finishes while this client reads nothing
        with pytest.raises(WebsocketDisconnectError):
            while True:
                messages.append(json.loads(await ws.receive()))
    changes = sum(len(tr["state"]["histories"]) for tr in final["taskRunList"] if tr["taskId"] != "gate")
    taskrun_messages = [m for m in messages if m["type"] == "taskrun"]
    assert len(taskrun_messages) < changes  # deltas were dropped …
    assert messages[-1]["type"] == "end" and messages[-1]["execution"]["state"]["current"] == "SUCCESS"
    assert len(messages[-1]["execution"]["taskRunList"]) == 41  # … and the end carries the whole truth


QUICK = """id: quick
namespace: company.team
tasks:
  - id: r
    type: io.kestra.plugin.core.debug.Return
    format: done
"""


async def test_global_websocket_serialises_each_change_once_for_all_subscribers(api, monkeypatch):
    from falconet.http.api import live

    calls = []

    def counting_dumps(value):
        calls.append(value)
        return live_dumps(value)

    live_dumps = live.dumps
    monkeypatch.setattr(live, "dumps", counting_dumps)
    await api.flow(QUICK)
    async with api.client.websocket("/api/v1/ws?namespace=company") as a, \
            api.client.websocket("/api/v1/ws?namespace=company.team") as b, \
            api.client.websocket("/api/v1/ws?flowId=quick") as c:
        await trio.testing.wait_all_tasks_blocked()
        created = await api.execute("company.team", "quick")
        await api.wait(created["id"])
        received = []
        for ws in (a, b, c):
            messages = []
            while not messages or messages[-1]["execution"]["state"]["current"] != "SUCCESS":
                messages.append(json.loads(await ws.receive()))
            received.append(messages)
    assert received[0] == received[1] == received[2]
    assert len(received[0]) >= 2                      # several state changes …
    assert len(calls) == len(received[0])             # … each serialised once, not once per subscriber


async def test_global_websocket_resync_after_overflow_includes_executions_that_ended(api, monkeypatch):
    from falconet.http.api import live

    monkeypatch.setattr(live, "BUFFER", 2)
    monkeypatch.setattr(live, "SEND_DEADLINE", 120.0)
    await api.flow(QUICK)
    async with api.client.websocket("/api/v1/ws?namespace=company.team&state=SUCCESS&state=RUNNING") as ws:
        await trio.testing.wait_all_tasks_blocked()
        ids = set()
        for _ in range(30):  # the client reads nothing meanwhile: its buffer overflows
            created = await api.execute("company.team", "quick")
            await api.wait(created["id"])
            ids.add(created["id"])
        ended: set[str] = set()
        with trio.fail_after(60):
            while ended != ids:
                message = json.loads(await ws.receive())
                if message["execution"]["state"]["current"] == "SUCCESS":
                    ended.add(message["execution"]["id"])
    assert ended == ids  # every subscriber sees every terminal state, dropped or not


PAUSE_THEN_FAIL = """id: again
namespace: company.team
tasks:
  - id: gate
    type: io.kestra.plugin.core.flow.Pause
  - id: boom
    type: io.kestra.plugin.core.execution.Fail
"""


async def test_global_websocket_sends_every_execution_state_change(api):
    await api.flow(PAUSE_THEN_FAIL)
    seen: list[str] = []
    async with api.client.websocket("/api/v1/ws?flowId=again") as ws:
        await trio.testing.wait_all_tasks_blocked()
        created = await api.execute("company.team", "again")
        await api.wait_state(created["id"], "PAUSED")
        await api.call("POST", f"/api/v1/executions/{created['id']}/resume")
        await api.wait(created["id"])
        await api.call("POST", f"/api/v1/executions/{created['id']}/restart")
        final = await api.wait(created["id"])
        with trio.move_on_after(5):  # a state never published leaves ``seen`` short
            while len(seen) < len(final["state"]["histories"]):
                message = json.loads(await ws.receive())
                seen.append(message["execution"]["state"]["current"])
    expected = ["CREATED", "RUNNING", "PAUSED", "RESTARTED", "RUNNING", "FAILED", "RESTARTED", "RUNNING", "FAILED"]
    assert [h["state"] for h in final["state"]["histories"]] == expected
    assert seen == expected


async def test_global_websocket_batch_sends_arrays_of_messages(api, monkeypatch):
    from falconet.http.api import live

    monkeypatch.setattr(live, "BATCH_WINDOW", 0.5)
    await api.flow(QUICK)
    async with api.client.websocket("/api/v1/ws?namespace=company.team&state=SUCCESS&batch=true") as ws:
        await trio.testing.wait_all_tasks_blocked()
        ids = set()
        for _ in range(5):
            created = await api.execute("company.team", "quick")
            ids.add(created["id"])
        for execution_id in ids:
            await api.wait(execution_id)
        ended: set[str] = set()
        frames = 0
        with trio.fail_after(30):
            while ended != ids:
                frame = json.loads(await ws.receive())
                frames += 1
                assert isinstance(frame, list) and frame  # one frame, several messages, never an empty one
                for message in frame:
                    assert message["type"] == "execution"
                    assert message["execution"]["state"]["current"] == "SUCCESS"
                    ended.add(message["execution"]["id"])
    assert ended == ids
    assert frames < len(ids)  # the executions that ended within one window share a frame


async def test_global_websocket_batch_after_overflow_resyncs_in_the_frame(api, monkeypatch):
    from falconet.http.api import live

    monkeypatch.setattr(live, "BUFFER", 2)
    monkeypatch.setattr(live, "SEND_DEADLINE", 120.0)
    monkeypatch.setattr(live, "BATCH_WINDOW", 1.0)  # the 12 executions end within the first window
    await api.flow(QUICK)
    async with api.client.websocket("/api/v1/ws?namespace=company.team&state=SUCCESS&batch=1") as ws:
        await trio.testing.wait_all_tasks_blocked()
        ids = set()
        for _ in range(12):  # more than the buffer holds within a window: dropped, then resynced
            created = await api.execute("company.team", "quick")
            await api.wait(created["id"])
            ids.add(created["id"])
        ended: set[str] = set()
        with trio.fail_after(30):
            while ended != ids:
                for message in json.loads(await ws.receive()):
                    ended.add(message["execution"]["id"])
    assert ended == ids


async def test_global_websocket_batch_must_be_a_boolean(api):
    async with api.client.websocket("/api/v1/ws?batch=often") as ws:
        with pytest.raises(WebsocketDisconnectError) as closed:
            await ws.receive()
    assert "4422" in repr(closed.value)


async def test_global_websocket_batch_subscribers_with_one_filter_share_one_frame(api, monkeypatch):
    from falconet.http.api import live

    monkeypatch.setattr(live, "BATCH_WINDOW", 0.2)
    rendered: list[str] = []
    message = live._execution_message
    monkeypatch.setattr(live, "_execution_message", lambda event: rendered.append(event.execution_id) or message(event))
    await api.flow(QUICK)
    path = "/api/v1/ws?namespace=company.team&state=SUCCESS&batch=true"
    async with api.client.websocket(path) as first, api.client.websocket(path) as second:
        await trio.testing.wait_all_tasks_blocked()
        assert len(live._GROUPS[api.engine]) == 1  # one bus subscription for both
        created = await api.execute("company.team", "quick")
        await api.wait(created["id"])
        with trio.fail_after(30):
            frames = [await first.receive(), await second.receive()]
    assert frames[0] == frames[1]  # the same frame, built once
    assert [m["execution"]["id"] for m in json.loads(frames[0])] == [created["id"]]
    assert rendered == [created["id"]]
    await trio.testing.wait_all_tasks_blocked()
    assert not live._GROUPS[api.engine]  # the last one gone, the group and its subscription are gone


async def test_global_websocket_batch_subscriber_that_falls_behind_gets_a_resync(api, monkeypatch):
    from falconet.http.api import live

    monkeypatch.setattr(live, "BATCH_WINDOW", 0.05)
    monkeypatch.setattr(live, "MEMBER_FRAMES", 1)
    monkeypatch.setattr(live, "SEND_DEADLINE", 120.0)
    await api.flow(QUICK)
    # the feed of one subscriber whose socket takes nothing until every execution ended
    send, receive = trio.open_memory_channel[str | live.SharedFrame](0)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(live._batched_feed, api.engine, live.Outbox(send), "company.team", None, ["SUCCESS"])
        await trio.testing.wait_all_tasks_blocked()
        ids = set()
        for _ in range(6):  # one execution per window: the second frame fills its queue, later ones are missed
            created = await api.execute("company.team", "quick")
            await api.wait(created["id"])
            ids.add(created["id"])
            await trio.sleep(0.1)
        frames: list[list[dict]] = []
        ended: set[str] = set()
        with trio.fail_after(30):
            while ended != ids:
                message = await receive.receive()  # a frame shared with other subscribers, or the resync
                frames.append(json.loads(message.text if isinstance(message, live.SharedFrame) else message))
                ended.update(m["execution"]["id"] for m in frames[-1])
        nursery.cancel_scope.cancel()
    assert ended == ids
    assert len(frames) < len(ids)  # frames were missed: the last one is the resync
