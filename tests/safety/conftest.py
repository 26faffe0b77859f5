"""Fixtures of the safety tests: a real engine served by hypercorn on a real socket."""
from __future__ import annotations

import contextlib
import functools
from typing import Any, AsyncIterator, Awaitable, Callable

import httpx
import pytest
import trio

from falconet.http.app import create_app
from falconet.http.serve import serve
from falconet.runtime.kernel.startup import open_engine


@pytest.fixture
async def engine(tmp_path: Any) -> Any:
    async with open_engine(data_dir=tmp_path / "data", store="memory") as eng:
        yield eng


@contextlib.asynccontextmanager
async def served(engine: Any, nursery: Any) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client of the engine's app served by hypercorn on a free port (stopped with the nursery)."""
    base = (await nursery.start(serve, create_app(engine, config=engine.config), "127.0.0.1", 0))[0]
    async with httpx.AsyncClient(base_url=base, timeout=120) as http:
        yield http


@pytest.fixture
async def client(engine: Any, nursery: Any) -> Any:
    async with served(engine, nursery) as http:
        yield http


async def call(http: httpx.AsyncClient, method: str, path: str, *, data: str | None = None,
               form: dict[str, str] | None = None, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    """(status, decoded JSON or text) of a request through the real server (``data``: the raw body,
    ``form``: url-encoded fields)."""
    response = await http.request(method, path, content=data, data=form, headers=headers)
    try:
        return response.status_code, response.json() if response.content else None
    except ValueError:
        return response.status_code, response.text


@pytest.fixture
def start_server(engine: Any, nursery: Any) -> Callable[..., Awaitable[str]]:
    """``await start_server(serve_options={...}, **config)``: set engine config attributes (e.g.
    ``basic_auth``), serve a new app on a free port (``serve_options``: keyword arguments of ``serve``);
    returns its base URL. The server stops with the test."""
    async def start(serve_options: dict[str, Any] | None = None, **config: Any) -> str:
        for key, value in config.items():
            setattr(engine.config, key, value)
        app = create_app(engine, config=engine.config)
        urls = await nursery.start(functools.partial(serve, app, "127.0.0.1", 0, **(serve_options or {})))
        return urls[0]
    return start


#### Raw HTTP/1.1 over one connection ######################################################################

class RawResult:
    """What one connection saw: parsed ``responses`` [(status, headers, body)], ``closed`` (EOF or reset
    seen), ``sent`` (body bytes the client managed to send)."""

    def __init__(self) -> None:
        self.responses: list[tuple[int, dict[str, str], bytes]] = []
        self.closed = False
        self.sent = 0


def _parse(buffer: bytearray, out: list[tuple[int, dict[str, str], bytes]]) -> None:
    while True:
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        lines = bytes(buffer[:end]).decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        length = int(headers.get("content-length", "0"))
        if len(buffer) < end + 4 + length:
            return
        out.append((int(lines[0].split()[1]), headers, bytes(buffer[end + 4:end + 4 + length])))
        del buffer[:end + 4 + length]


async def raw_exchange(url: str, head: bytes, body: Any = (), then: bytes = b"", *, within: float = 5.0,
                       responses: int = 2) -> RawResult:
    """Send ``head``, the ``body`` chunks and ``then`` on one connection while reading responses; stop at
    ``responses`` complete responses, at EOF, or after ``within`` seconds."""
    host, port = url.split("//", 1)[1].rsplit(":", 1)
    stream = await trio.open_tcp_stream(host, int(port))
    result, buffer = RawResult(), bytearray()

    async def sender() -> None:
        try:
            await stream.send_all(head)
            for chunk in body:
                await stream.send_all(chunk)
                result.sent += len(chunk)
            if then:
                await stream.send_all(then)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass

    async with trio.open_nursery() as nursery:
        nursery.start_soon(sender)
        with trio.move_on_after(within):
            while len(result.responses) < responses:
                try:
                    data = await stream.receive_some(65536)
                except trio.BrokenResourceError:
                    data = b""
                if not data:
                    result.closed = True
                    break
                buffer += data
                _parse(buffer, result.responses)
        nursery.cancel_scope.cancel()
    await stream.aclose()
    return result


@pytest.fixture
def raw_http() -> Callable[..., Awaitable[RawResult]]:
    """:func:`raw_exchange` (test modules cannot import conftest under ``--import-mode=importlib``)."""
    return raw_exchange
