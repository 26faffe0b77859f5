"""Issue 9.7 — keep-alive connections never wedge, through a real socket and a real server process.

A request refused before its body was read either keeps its connection usable (the body is drained)
or is answered with ``Connection: close`` and the connection closed; idle connections time out;
SIGTERM lets requests in flight finish before the engine stops.
"""
from __future__ import annotations

import base64
import functools
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from falconet.http import multipart
from ..asgi import answered_lifespan
from ..instruments import spawned_tasks

AUTH = ("admin", "pass")
GOOD = "Basic " + base64.b64encode(b"admin:pass").decode()
PING = b"GET /ping HTTP/1.1\r\nHost: t\r\n\r\n"


def post(path: str, length: int | None, content_type: str = "application/json", auth: str | None = None) -> bytes:
    framing = f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked"
    extra = f"Authorization: {auth}\r\n" if auth else ""
    return f"POST {path} HTTP/1.1\r\nHost: t\r\nContent-Type: {content_type}\r\n{framing}\r\n{extra}\r\n".encode()


def chunks(total: int, size: int = 64 * 1024) -> list[bytes]:
    return [b"x" * min(size, total - i) for i in range(0, total, size)]


@pytest.mark.parametrize("size", [10, 300_000, 1_000_000])
async def test_a_refused_body_is_drained_and_the_connection_serves_the_next_request(start_server: Any, raw_http: Any,
                                                                                   size: int) -> None:
    """401 answered before the body was read: the next request on the same connection is answered
    (today: never answered, the connection wedges)."""
    url = await start_server(basic_auth=AUTH)
    result = await raw_http(url, post("/api/v1/flows", size, "application/x-yaml"), chunks(size), PING)
    assert [r[0] for r in result.responses] == [401, 200], (result.responses, result.closed)
    assert result.responses[1][2] == b"pong"
    assert "close" not in result.responses[0][1].get("connection", "")


@pytest.mark.parametrize("path, length, body_size", [
    ("/api/v1/flows", 20_000_000, 3_000_000),                     # 401 before reading 20 MB
    ("/api/v1/executions/x/labels", 6 * 1024 * 1024, 6 * 1024 * 1024),  # 413 from the JSON limit
    ("/api/v1/executions/x/labels", None, 6 * 1024 * 1024),       # chunked: 413 once past the limit
])
async def test_a_refused_large_body_gets_connection_close(start_server: Any, raw_http: Any, path: str, length: int | None,
                                                          body_size: int) -> None:
    url = await start_server(basic_auth=AUTH if path == "/api/v1/flows" else None)
    body = chunks(body_size)
    if length is None:
        body = [f"{len(c):x}\r\n".encode() + c + b"\r\n" for c in body]
    started = time.monotonic()
    result = await raw_http(url, post(path, length), body, PING)
    assert len(result.responses) == 1 and result.closed, (result.responses, result.closed)
    status, headers, payload = result.responses[0]
    assert status in (401, 404, 413) and headers["connection"] == "close"
    assert json.loads(payload)["message"]
    assert time.monotonic() - started < 4


async def test_the_server_keeps_answering_after_refused_bodies(start_server: Any, raw_http: Any) -> None:
    url = await start_server(basic_auth=AUTH)
    for size in (2_000_000, 50_000):
        await raw_http(url, post("/api/v1/flows", size, "application/x-yaml"), chunks(size), PING)
    async with httpx.AsyncClient(base_url=url) as http:
        for _ in range(3):
            assert (await http.get("/api/v1/flows/search", headers={"Authorization": GOOD})).status_code == 200


@pytest.mark.parametrize("path, content_type", [
    ("/api/v1/flows", "application/x-yaml"),
    ("/api/v1/executions/safety.keepalive/any", "multipart/form-data; boundary=b"),
])
async def test_a_silent_body_times_out(start_server: Any, raw_http: Any, engine: Any, monkeypatch: Any, path: str,
                                       content_type: str) -> None:
    """Headers promise 100 bytes, 10 arrive, then nothing: 408 and the connection closed (today the
    request waits forever and holds its connection)."""
    monkeypatch.setattr(multipart, "BODY_IDLE_TIMEOUT", 0.3)
    await engine.create_flow("id: any\nnamespace: safety.keepalive\ntasks:\n  - id: r\n"
                             "    type: io.kestra.plugin.core.debug.Return\n    format: x\n")
    url = await start_server()
    started = time.monotonic()
    result = await raw_http(url, post(path, 100, content_type), [b"--b\r\nxxxxx"], within=5, responses=1)
    assert time.monotonic() - started < 4
    assert [r[0] for r in result.responses] == [408], result.responses
    assert result.responses[0][1]["connection"] == "close"
    assert json.loads(result.responses[0][2])["message"] == "Request Timeout"


@pytest.mark.parametrize("opening", [b"", b"GET /ping HTTP/1.1\r\nHo", PING])
async def test_idle_connections_time_out(start_server: Any, raw_http: Any, opening: bytes) -> None:
    """A connection that sends nothing, an incomplete request head, or stays idle after a response is
    closed after the keep-alive timeout."""
    url = await start_server(serve_options={"keep_alive_timeout": 0.3})
    started = time.monotonic()
    result = await raw_http(url, opening, within=5, responses=2)
    assert result.closed
    assert 0.25 < time.monotonic() - started < 4
    assert [r[0] for r in result.responses] == ([200] if opening == PING else [])


async def test_a_keep_alive_connection_keeps_one_timer_task(start_server: Any) -> None:
    """Requests spaced below the keep-alive timeout keep the connection open past it (the deadline moves
    with each response), and the timer is one task per connection, not a new task per request."""
    url = await start_server(serve_options={"keep_alive_timeout": 0.3})
    with spawned_tasks() as spawned:
        host, port = url.removeprefix("http://").split(":")
        stream = await trio.open_tcp_stream(host, int(port))
        buffer = b""
        for _ in range(6):
            await stream.send_all(PING)
            while not buffer.endswith(b"pong"):
                buffer += await stream.receive_some(65536)
            buffer = b""
            await trio.sleep(0.1)      # 6 × 0.1 s: past the 0.3 s timeout in total
        await stream.aclose()
    assert not [n for n in spawned.names if "_idle_timeout" in n]
    assert len([n for n in spawned.names if "_IdleTimer._watch" in n]) == 1, spawned.names


async def test_stopping_the_server_closes_idle_keep_alive_connections(engine: Any) -> None:
    from falconet.http.app import create_app
    from falconet.http.serve import serve

    shutdown = trio.Event()
    async with trio.open_nursery() as nursery:
        url = (await nursery.start(functools.partial(serve, create_app(engine, config=engine.config), "127.0.0.1", 0,
                                                     shutdown=shutdown)))[0]
        host, port = url.removeprefix("http://").split(":")
        stream = await trio.open_tcp_stream(host, int(port))
        await stream.send_all(PING)
        buffer = b""
        while not buffer.endswith(b"pong"):
            buffer += await stream.receive_some(65536)
        shutdown.set()
        with trio.fail_after(3):     # keep_alive_timeout is 75 s: the stop closes the connection
            assert await stream.receive_some(65536) == b""
    await stream.aclose()


#### A request without a body ############################################################################

async def test_a_response_to_a_bodiless_request_is_not_held_for_its_body(nursery: Any, raw_http: Any,
                                                                         monkeypatch: Any) -> None:
    """An app that answers a request without a body and never calls ``receive`` (ASGI allows it): its
    response ends at once (the guard waited ``DRAIN_TIMEOUT`` for a body that never comes)."""
    from falconet.http import guard
    from falconet.http.serve import serve

    monkeypatch.setattr(guard, "DRAIN_TIMEOUT", 3.0)

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if await answered_lifespan(scope, receive, send):
            return
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain"), (b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok", "more_body": False})

    url = (await nursery.start(serve, app, "127.0.0.1", 0))[0]
    started = time.monotonic()
    result = await raw_http(url, PING + PING, responses=2)
    assert [r[2] for r in result.responses] == [b"ok", b"ok"]
    assert "close" not in result.responses[0][1].get("connection", "")
    assert time.monotonic() - started < 2


#### SIGTERM on a real server process ######################################################################

SLOW = """id: slow
namespace: safety.sigterm
tasks:
  - id: nap
    type: io.kestra.plugin.core.flow.Sleep
    duration: PT0.8S
  - id: done
    type: io.kestra.plugin.core.debug.Return
    format: finished
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server_process(tmp_path: Path) -> Any:
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "falconet", "server", "local", "--port", str(port),
                             "--data-dir", str(tmp_path / "data")], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, cwd=tmp_path,
                            env=dict(os.environ, PYTHONUNBUFFERED="1"))
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(url + "/ping", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            assert proc.poll() is None and time.monotonic() < deadline, "the server did not start"
            time.sleep(0.05)
    yield proc, url
    if proc.poll() is None:
        proc.kill()
        proc.wait()


async def test_sigterm_lets_requests_in_flight_finish(server_process: Any) -> None:
    proc, url = server_process
    async with httpx.AsyncClient(base_url=url, timeout=20) as http:
        assert (await http.post("/api/v1/flows", content=SLOW,
                                headers={"Content-Type": "application/x-yaml"})).status_code == 200
        answer: list[httpx.Response] = []

        async def in_flight() -> None:
            answer.append(await http.post("/api/v1/executions/safety.sigterm/slow?wait=true"))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(in_flight)
            async with httpx.AsyncClient(base_url=url) as probe:
                with trio.fail_after(10):
                    while True:
                        found = (await probe.get("/api/v1/executions/search?namespace=safety.sigterm")).json()
                        if found["total"] and found["results"][0]["state"]["current"] == "RUNNING":
                            break
                        await trio.sleep(0.02)
            proc.send_signal(signal.SIGTERM)
    out, _ = await trio.to_thread.run_sync(lambda: proc.communicate(timeout=20))
    assert answer[0].status_code == 200, out
    doc = answer[0].json()
    assert doc["state"]["current"] == "SUCCESS"
    assert doc["taskRunList"][-1]["outputs"]["value"] == "finished"
    assert proc.returncode == 0 and "Traceback" not in out, out
    assert "stopping (SIGTERM)" in out
