"""The polling http.Trigger on a fake clock against a local HTTP server.

The clock autojumps only after 0.1 s of real idleness, so an HTTP exchange with the server thread (real
I/O the fake clock cannot see) completes before trio time moves on.
"""
from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import trio
import trio.testing

from ..plugins.httpserver import Handler, Server
from .conftest import executions_of, wait_until

NS = "orch.http"


class Script:
    """What the server answers on ``/poll``: a list of (status, body) consumed in order (the last one
    repeats); every request is recorded. ``gate`` (when set) holds each answer until it is set."""

    def __init__(self) -> None:
        self.answers: list[tuple[int, str]] = [(200, "ok")]
        self.requests: list[dict[str, Any]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.gate: threading.Event | None = None
        self.lock = threading.Lock()


SCRIPT = Script()


class PollHandler(Handler):
    def do_GET(self) -> None:
        if not self.path.startswith("/poll"):
            return super().do_GET()
        with SCRIPT.lock:
            SCRIPT.in_flight += 1
            SCRIPT.max_in_flight = max(SCRIPT.max_in_flight, SCRIPT.in_flight)
            SCRIPT.requests.append({"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}})
            status, body = SCRIPT.answers.pop(0) if len(SCRIPT.answers) > 1 else SCRIPT.answers[0]
        try:
            if SCRIPT.gate is not None:
                SCRIPT.gate.wait(10)
            self._send(status, body.encode(), {"Content-Type": "text/plain", "X-Poll": "yes"})
        finally:
            with SCRIPT.lock:
                SCRIPT.in_flight -= 1


@contextlib.contextmanager
def serve() -> Iterator[str]:
    server = Server(("127.0.0.1", 0), PollHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        if SCRIPT.gate is not None:
            SCRIPT.gate.set()
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture(autouse=True)
def _no_flow_polling(monkeypatch) -> None:
    """The poller re-reads the flows only when woken (each re-read would cost an autojump)."""
    from falconet.runtime.orchestration import polling

    monkeypatch.setitem(polling.DEFAULTS, "poll", 10 * 86400.0)


@pytest.fixture
def clock() -> trio.testing.MockClock:
    return trio.testing.MockClock(autojump_threshold=0.1)


@pytest.fixture
def script() -> Iterator[Script]:
    global SCRIPT
    SCRIPT = Script()
    yield SCRIPT


@pytest.fixture
def base_url(script) -> Iterator[str]:
    with serve() as url:
        yield url


def http_flow(uri: str, *, extra: str = "", flow_id: str = "poller", interval: str = "PT30S") -> str:
    return f"""
id: {flow_id}
namespace: {NS}
tasks:
  - id: log
    type: io.kestra.plugin.core.debug.Return
    format: "{{{{ trigger.code }}}} {{{{ trigger.body }}}}"
triggers:
  - id: http
    type: io.kestra.plugin.core.http.Trigger
    uri: "{uri}"
    interval: {interval}
{extra}
"""


async def start(engine, source: str) -> None:
    await engine.create_flow(source)
    engine.orchestration.polling.wake()


#### Polling ################################################################################################

async def all_ended(engine, flow_id: str = "poller") -> list[dict[str, Any]]:
    """The flow's executions once every one of them is terminated."""
    rows: list[dict[str, Any]] = []

    async def done() -> bool:
        rows[:] = await executions_of(engine, NS, flow_id)
        return all(r["state"]["current"] in ("SUCCESS", "FAILED", "WARNING") for r in rows)

    await wait_until(done)
    return rows


async def test_polls_every_interval_and_creates_executions_when_the_status_is_ok(engine, clock, script, base_url):
    script.answers = [(503, "down"), (500, "still down"), (200, "up"), (201, "up again")]
    await start(engine, http_flow(f"{base_url}/poll?x=1", extra="    headers:\n      X-Flow: '{{ flow.id }}'"))
    await trio.sleep(29)
    assert script.requests == []                       # the first evaluation is one interval after start
    await trio.sleep(30 * 3 + 5)                       # evaluations at +30, +60, +90, +120
    rows = await all_ended(engine)
    assert len(script.requests) == 4
    assert {r["path"] for r in script.requests} == {"/poll?x=1"}
    assert {r["headers"]["x-flow"] for r in script.requests} == {"poller"}
    assert len(rows) == 2 and {r["state"]["current"] for r in rows} == {"SUCCESS"}
    first = min(rows, key=lambda r: r["state"]["startDate"])
    trig = first["trigger"]
    assert trig["id"] == "http" and trig["type"] == "io.kestra.plugin.core.http.Trigger"
    assert trig["variables"]["uri"] == f"{base_url}/poll?x=1"
    assert trig["variables"]["code"] == 200 and trig["variables"]["body"] == "up"
    assert trig["variables"]["headers"]["X-Poll"] == ["yes"]
    assert sorted(r["taskRunList"][0]["outputs"]["value"] for r in rows) == ["200 up", "201 up again"]
    ctx = await engine.store.get_trigger(NS, "poller", "http")
    assert ctx["executionId"] in {r["id"] for r in rows} and ctx["evaluateRunningDate"] is None
    assert engine.orchestration.polling.evaluations == 4


async def test_response_condition_on_the_body_and_trigger_labels(engine, clock, script, base_url):
    script.answers = [(200, "wait"), (404, "go"), (200, "go"), (200, "wait")]
    await start(engine, http_flow(f"{base_url}/poll", interval="PT1M", extra="""    responseCondition: "{{ response.statusCode == 200 and response.body == 'go' }}"
    labels:
      source: poll"""))
    await trio.sleep(60 * 4 + 5)
    rows = await all_ended(engine)
    assert len(script.requests) == 4
    assert len(rows) == 1
    assert rows[0]["trigger"]["variables"]["body"] == "go"
    assert {"key": "source", "value": "poll"} in rows[0]["labels"]


async def test_one_evaluation_at_a_time(engine, clock, script, base_url):
    script.gate = threading.Event()
    await start(engine, http_flow(f"{base_url}/poll", interval="PT1S", extra="""    options:
      readTimeout: PT24H"""))
    await wait_until(lambda: len(script.requests) == 1, step=0.5)
    await trio.sleep(600)                              # 600 intervals pass while the answer is held
    held = len(script.requests)
    ctx = await engine.store.get_trigger(NS, "poller", "http")
    script.gate.set()
    await wait_until(lambda: len(script.requests) >= 3, step=0.5)
    await trio.sleep(2)
    assert held == 1 and script.max_in_flight == 1
    assert ctx["evaluateRunningDate"] is not None
    assert len(await all_ended(engine)) >= 2


async def test_unreachable_server_is_logged_and_polling_goes_on(engine, clock, script, base_url, caplog):
    import socket

    with socket.socket() as s:                          # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    await start(engine, http_flow(f"http://127.0.0.1:{port}/poll", flow_id="deadend"))
    await trio.sleep(30 * 3 + 5)
    poller = engine.orchestration.polling
    assert poller.evaluations == 3 and poller.created == 0
    assert await executions_of(engine, NS, "deadend") == []
    assert any("HTTP request failed" in r.getMessage() for r in caplog.records)


async def test_flow_update_and_delete_restart_or_stop_the_polling(engine, clock, script, base_url):
    await start(engine, http_flow(f"{base_url}/poll?v=1"))
    await trio.sleep(35)
    await engine.update_flow(NS, "poller", http_flow(f"{base_url}/poll?v=2"))
    engine.orchestration.polling.wake()
    await trio.sleep(30)
    await engine.delete_flow(NS, "poller")
    engine.orchestration.polling.wake()
    await trio.sleep(300)
    assert [r["path"] for r in script.requests] == ["/poll?v=1", "/poll?v=2"]


async def test_disabled_trigger_context_skips_evaluations(engine, clock, script, base_url):
    await start(engine, http_flow(f"{base_url}/poll"))
    await trio.sleep(35)
    await engine.orchestration.scheduler.set_disabled(NS, "poller", "http", True)
    await trio.sleep(300)
    assert len(script.requests) == 1
    await engine.orchestration.scheduler.set_disabled(NS, "poller", "http", False)
    await trio.sleep(31)
    assert len(script.requests) == 2


async def test_stop_after_disables_the_trigger_once_an_execution_succeeded(engine, clock, script, base_url):
    await start(engine, http_flow(f"{base_url}/poll", extra="    stopAfter: [SUCCESS]"))
    await trio.sleep(35)
    rows = await all_ended(engine)
    await trio.sleep(300)
    ctx = await engine.store.get_trigger(NS, "poller", "http")
    assert len(rows) == 1 and rows[0]["state"]["current"] == "SUCCESS"
    assert ctx["disabled"] is True
    assert len(script.requests) == 1
