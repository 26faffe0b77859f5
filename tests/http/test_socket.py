"""Through a real hypercorn socket: HTTP round trip, a 128 MB streamed upload with bounded memory, and
websockets with one fast and one stalled client on a 200-task execution."""
from __future__ import annotations

import base64
import json
import os
import socket as stdsocket
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import trio
import trio.testing
from trio_websocket import ConnectionClosed, open_websocket_url

from falconet.http.api import live

YAML = {"Content-Type": "application/x-yaml"}


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


async def test_round_trip_over_socket(server):
    flow = "id: hi\nnamespace: sock.test\ntasks:\n  - id: r\n    type: io.kestra.plugin.core.debug.Return\n    format: ok\n"
    async with httpx.AsyncClient(base_url=server) as http:
        assert (await http.get("/ping")).text == "pong"
        assert (await http.post("/api/v1/flows", content=flow, headers=YAML)).status_code == 200
        created = await http.post("/api/v1/main/executions/sock.test/hi?wait=true")
        assert created.status_code == 200
        doc = created.json()
        host = urlsplit(server).netloc
        assert doc["state"]["current"] == "SUCCESS" and doc["url"] == f"http://{host}/ui/executions/sock.test/hi/{doc['id']}"
        missing = await http.get("/api/v1/executions/nope")
        assert missing.status_code == 404 and missing.json()["message"].startswith("Not Found")


UPLOAD = """id: upload
namespace: sock.test
inputs:
  - id: big
    type: FILE
tasks:
  - id: r
    type: io.kestra.plugin.core.debug.Return
    format: "{{ inputs.big }}"
"""


async def test_128mb_upload_streams_with_bounded_memory(server, engine):
    size = 128 * 1024 * 1024
    chunk = b"x" * (1024 * 1024)
    boundary = "bigboundary0123456789"
    head = (f'--{boundary}\r\nContent-Disposition: form-data; name="big"; filename="big.bin"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n").encode()
    tail = f"\r\n--{boundary}--\r\n".encode()

    async def body():
        yield head
        for _ in range(size // len(chunk)):
            yield chunk
        yield tail

    peak = [rss_mb()]

    async def sample(cancel: trio.CancelScope):
        with cancel:
            while True:
                peak.append(rss_mb())
                await trio.sleep(0.01)

    async with httpx.AsyncClient(base_url=server, timeout=120) as http:
        await http.post("/api/v1/flows", content=UPLOAD, headers=YAML)
        before = rss_mb()
        scope = trio.CancelScope()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(sample, scope)
            response = await http.post("/api/v1/executions/sock.test/upload", content=body(),
                                       headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
            scope.cancel()
    assert response.status_code == 200, response.text
    uri = response.json()["inputs"]["big"]
    assert engine.storage.size(uri) == size
    growth = max(peak) - before
    assert growth < 20, f"RSS grew by {growth:.1f} MB during a 128 MB upload"
    leftovers = list((engine.config.data_dir / "tmp" / "uploads").glob("*/*"))
    assert leftovers == []


#### Websockets: one fast client, one stalled client ########################################################

def many_tasks_flow(n: int, message_size: int) -> str:
    """``n`` Log tasks of ``message_size`` characters each; the filler is written once (a flow source holds
    at most 3 MiB, as in Kestra)."""
    lines = ["id: many", "namespace: sock.test", "variables:", f"  filler: {'m' * message_size}", "tasks:",
             "  - id: gate", "    type: io.kestra.plugin.core.flow.Pause"]
    for i in range(n):
        lines += [f"  - id: t{i:03d}", "    type: io.kestra.plugin.core.log.Log",
                  f"    message: \"{i} {{{{ vars.filler }}}}\""]
    return "\n".join(lines) + "\n"


async def stalled_client(url: str) -> trio.SocketStream:
    """Open a websocket with a tiny receive buffer, then never read: the server's sends block."""
    parts = urlsplit(url)
    sock = trio.socket.socket(stdsocket.AF_INET, stdsocket.SOCK_STREAM)
    sock.setsockopt(stdsocket.SOL_SOCKET, stdsocket.SO_RCVBUF, 4096)
    await sock.connect((parts.hostname, parts.port))
    stream = trio.SocketStream(sock)
    key = base64.b64encode(os.urandom(16)).decode()
    request = (f"GET {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n")
    await stream.send_all(request.encode())
    response = b""
    while b"\r\n\r\n" not in response:
        response += await stream.receive_some(1)  # byte by byte: read nothing past the handshake
    assert response.startswith(b"HTTP/1.1 101"), response
    return stream


async def test_fast_and_stalled_websocket_clients(server, engine, api, monkeypatch):
    monkeypatch.setattr(live, "SEND_DEADLINE", 6.0)
    status, _ = await api.call("POST", "/api/v1/flows", data=many_tasks_flow(200, 32 * 1024), headers=YAML)
    assert status == 200
    created = await api.execute("sock.test", "many")
    await api.wait_state(created["id"], "PAUSED")
    ws_url = server.replace("http://", "ws://") + f"/api/v1/executions/{created['id']}/ws"
    before = rss_mb()

    stalled = await stalled_client(ws_url)
    received: list[dict] = []
    close_code = []
    async with open_websocket_url(ws_url, max_message_size=16 * 1024 * 1024) as fast:
        received.append(json.loads(await fast.get_message()))
        with trio.fail_after(10):
            while len(engine.bus) < 2:  # both subscriptions are open (every task of this run idles until then)
                await trio.testing.wait_all_tasks_blocked()
        status, _ = await api.call("POST", f"/api/v1/executions/{created['id']}/resume")
        assert status == 204
        final = await engine.wait_for_end(created["id"])
        assert len(engine.bus) >= 1  # the engine finished while the stalled client was still subscribed
        try:
            while True:
                received.append(json.loads(await fast.get_message()))
        except ConnectionClosed as closed:
            close_code.append(closed.reason.code)

    assert final["state"]["current"] == "SUCCESS"
    assert close_code == [1000] and received[-1]["type"] == "end"
    assert received[-1]["execution"]["state"]["current"] == "SUCCESS"
    # every state change of every task run, in order, as the final document records it
    got: dict[str, list[str]] = {}
    for m in received:
        if m["type"] == "taskrun":
            states = got.setdefault(m["taskRun"]["id"], [])
            if not states or states[-1] != m["taskRun"]["state"]["current"]:
                states.append(m["taskRun"]["state"]["current"])
    for tr in final["taskRunList"]:
        if tr["taskId"] != "gate":
            assert got[tr["id"]] == [h["state"] for h in tr["state"]["histories"]], tr["taskId"]
    assert sum(1 for m in received if m["type"] == "log" and m["log"]["taskId"].startswith("t")) == 200

    # the stalled subscriber is dropped after SEND_DEADLINE; its buffer never outgrows the bus bound
    with trio.fail_after(live.SEND_DEADLINE + live.CLOSE_DEADLINE + 5):
        while len(engine.bus) > 0:  # noqa: ASYNC110 - waits out the server's real-time SEND_DEADLINE
            await trio.sleep(0.05)
    assert rss_mb() - before < 150
    await stalled.aclose()
