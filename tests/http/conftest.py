"""Fixtures of the HTTP tests: a real engine (memory store), the app, its in-process test client.

Every response any test app produces is recorded (an ``after_request`` hook); the autouse fixture
``no_server_errors`` fails a test whose requests produced a 5xx, and ``test_zz_no_500.py`` checks the
whole run's record — no request of the suite may end in a 500.
"""
from __future__ import annotations

import json
from typing import Any, AsyncIterator, Sequence
from urllib.parse import quote

import pytest
import trio

from falconet.http.app import create_app
from falconet.http.serve import serve
from falconet.runtime.kernel.startup import open_engine

#: (status, method, path) of every response of every test app in this session
RESPONSES: list[tuple[int, str, str]] = []
#: paths allowed to answer 500 (the test of the 500 handler itself)
ALLOWED_500 = {"/__test__/boom"}


def record_responses(app: Any) -> Any:
    from quart import request

    @app.after_request
    async def _record(response: Any) -> Any:
        RESPONSES.append((response.status_code, request.method, request.path))
        return response

    return app


@pytest.fixture(autouse=True)
def no_server_errors() -> Any:
    start = len(RESPONSES)
    yield
    bad = [r for r in RESPONSES[start:] if r[0] >= 500 and r[2] not in ALLOWED_500]
    assert not bad, f"server errors: {bad}"


@pytest.fixture
async def engine(tmp_path: Any) -> AsyncIterator[Any]:
    async with open_engine(data_dir=tmp_path, store="memory") as eng:
        yield eng


def recorded_app(engine: Any) -> Any:
    """The app of ``engine``, its responses recorded (see RESPONSES)."""
    return record_responses(create_app(engine, config=engine.config))


@pytest.fixture
def app(engine: Any) -> Any:
    return recorded_app(engine)


@pytest.fixture
def client(app: Any) -> Any:
    return app.test_client()


@pytest.fixture
async def server(app: Any, nursery: Any) -> str:
    """Base URL of the app served by hypercorn on a free port (cancelled with the test)."""
    urls = await nursery.start(serve, app, "127.0.0.1", 0)
    return urls[0]


YAML = {"Content-Type": "application/x-yaml"}

#: a flow whose execution stays RUNNING (an hour's Sleep)
SLEEP = """id: sleep
namespace: company.team
tasks:
  - id: sleep
    type: io.kestra.plugin.core.flow.Sleep
    duration: PT1H
"""


def flt(field: str, op: str, value: str) -> str:
    """One ``filters[field][op]=value`` query parameter (Kestra's QueryFilter), URL-encoded."""
    return f"{quote(f'filters[{field}][{op}]')}={quote(value)}"


class Api:
    """Small helpers over the test client (JSON decoding, flow loading, waiting)."""

    def __init__(self, client: Any, engine: Any):
        self.client, self.engine = client, engine

    async def call(self, method: str, path: str, **kw: Any) -> tuple[int, Any]:
        response = await self.client.open(path, method=method, **kw)
        raw = await response.get_data()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        return response.status_code, body

    async def flow(self, source: str) -> dict[str, Any]:
        status, body = await self.call("POST", "/api/v1/flows", data=source, headers=YAML)
        assert status == 200, body
        return body

    async def execute(self, namespace: str, flow_id: str, query: str = "", **kw: Any) -> dict[str, Any]:
        status, body = await self.call("POST", f"/api/v1/executions/{namespace}/{flow_id}{query}", **kw)
        assert status == 200, body
        return body

    async def wait(self, execution_id: str) -> dict[str, Any]:
        return await self.engine.wait_for_end(execution_id)

    async def runs(self, namespace: str, flow_id: str, n: int = 1) -> list[dict[str, Any]]:
        """Execute the flow ``n`` times, one after the other, each to its end; the ended executions."""
        return [await self.wait((await self.execute(namespace, flow_id))["id"]) for _ in range(n)]

    async def paused_execution(self, answer_type: str) -> dict[str, Any]:
        """An execution of the flow ``pausing`` (created now), PAUSED until resumed with an ``answer`` input
        of ``answer_type``, which its task ``after`` returns."""
        await self.flow(f"""id: pausing
namespace: company.team
tasks:
  - id: pause
    type: io.kestra.plugin.core.flow.Pause
    onResume:
      - id: answer
        type: {answer_type}
  - id: after
    type: io.kestra.plugin.core.debug.Return
    format: "{{{{ outputs.pause.onResume.answer }}}}"
""")
        created = await self.execute("company.team", "pausing")
        await self.wait_state(created["id"], "PAUSED")
        return created

    async def wait_state(self, execution_id: str, state: str, within: float = 10) -> dict[str, Any]:
        """Wait for a live state through the bus (no polling sleeps)."""
        with self.engine.bus.subscribe(execution_id=execution_id, kinds=("execution",)) as sub:
            with trio.fail_after(within):
                while True:
                    doc = await self.engine.get_execution(execution_id)
                    if doc["state"]["current"] == state:
                        return doc
                    await sub.receive()


@pytest.fixture
def api(client: Any, engine: Any) -> Api:
    return Api(client, engine)


def api_of(engine: Any) -> Api:
    """An :class:`Api` over a new recorded app of ``engine`` (for tests that open their own engines)."""
    return Api(recorded_app(engine).test_client(), engine)


def multipart_body(fields: dict[str, str] | None = None,
                   files: Sequence[tuple[str, str, bytes]] = ()) -> tuple[bytes, dict[str, str]]:
    """Encode text fields and (part name, filename, data) file parts as multipart/form-data."""
    boundary = "falconettestboundary1234"
    out = bytearray()
    for name, value in (fields or {}).items():
        out += f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
    for name, filename, data in files:
        out += (f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
                "Content-Type: application/octet-stream\r\n\r\n").encode() + data + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return bytes(out), {"Content-Type": f"multipart/form-data; boundary={boundary}"}


@pytest.fixture
def form() -> Any:
    return multipart_body


@pytest.fixture
def all_responses() -> list[tuple[int, str, str]]:
    """Every response recorded so far in this session (see RESPONSES)."""
    return RESPONSES
