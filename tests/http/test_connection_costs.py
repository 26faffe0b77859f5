"""What a request costs the connection layer (``falconet/http/serve.py``) beyond its own work: socket
writes, schedule points, deadlines. Counted over real sockets, not timed (``benchmarks/bench_http.py``
times them)."""
from __future__ import annotations

import contextlib
import os
import socket as stdsocket
from typing import Any, AsyncIterator, Iterator

import pytest
import trio
import trio.testing

from falconet.http import serve as serve_module
from falconet.http.app import create_app
from falconet.http.serve import serve

from ..asgi import answered_lifespan

PING = b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n"


def asgi_app(*parts: bytes, sized: bool = True, between: trio.Event | None = None) -> Any:
    """An ASGI app answering every request 200 with ``parts`` as its body (``sized``: with a
    ``Content-Length``, else streamed); ``between``: awaited after the response's head. ``app.seen``
    lists each request's ``seconds_to_next_deadline`` of trio's run."""
    seen: list[float] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if await answered_lifespan(scope, receive, send):
            return
        seen.append(trio.lowlevel.current_statistics().seconds_to_next_deadline)
        headers = [(b"content-type", b"text/plain")]
        if sized:
            headers.append((b"content-length", str(sum(map(len, parts))).encode()))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        if between is not None:
            await between.wait()
        for i, part in enumerate(parts):
            await send({"type": "http.response.body", "body": part, "more_body": i < len(parts) - 1})
        if not parts:
            await send({"type": "http.response.body", "body": b"", "more_body": False})

    app.seen = seen  # type: ignore[attr-defined]
    return app


@contextlib.asynccontextmanager
async def connection(app: Any, **options: Any) -> AsyncIterator[tuple[trio.SocketStream, int]]:
    """A keep-alive client connection to ``app`` served on a free port, and that port."""
    async with trio.open_nursery() as nursery:
        url = (await nursery.start(lambda task_status: serve(app, "127.0.0.1", 0, task_status=task_status,
                                                             **options)))[0]
        port = int(url.rsplit(":", 1)[1])
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        try:
            yield stream, port
        finally:
            await stream.aclose()
            nursery.cancel_scope.cancel()


async def exchange(stream: trio.SocketStream, request: bytes, *, head_only: bool = False) -> bytes:
    """Send ``request``, read one whole response (head and ``Content-Length`` body, or up to the chunked
    body's end); ``head_only``: what arrived once the head is in."""
    await stream.send_all(request)
    buffer = b""
    while b"\r\n\r\n" not in buffer:
        buffer += await stream.receive_some(65536)
    head, _, body = buffer.partition(b"\r\n\r\n")
    if head_only:
        return buffer
    lines = head.decode("latin-1").lower().split("\r\n")
    length = next((int(line.split(":")[1]) for line in lines if line.startswith("content-length:")), None)
    while (len(body) < length) if length is not None else not body.endswith(b"0\r\n\r\n"):
        body += await stream.receive_some(65536)
    return head + b"\r\n\r\n" + body


@contextlib.contextmanager
def server_writes(monkeypatch: pytest.MonkeyPatch, port: int) -> Iterator[list[bytes]]:
    """The bytes of each write the server makes to a socket of ``port`` (what ``os.write`` on its descriptor
    wrote, what trio's ``send_all`` on its stream was given), in order."""
    writes: list[bytes] = []

    def local_port(fd: int) -> int | None:
        try:
            with stdsocket.fromfd(fd, stdsocket.AF_INET, stdsocket.SOCK_STREAM) as sock:
                return sock.getsockname()[1]
        except OSError:
            return None

    write, send_all = os.write, trio.SocketStream.send_all

    def counting_write(fd: int, data: Any) -> int:
        written = write(fd, data)
        if local_port(fd) == port:
            writes.append(bytes(data[:written]))
        return written

    async def counting_send_all(self: trio.SocketStream, data: Any) -> None:
        if self.socket.getsockname()[1] == port:
            writes.append(bytes(data))
        await send_all(self, data)

    monkeypatch.setattr(os, "write", counting_write)
    monkeypatch.setattr(trio.SocketStream, "send_all", counting_send_all)
    yield writes


#### Socket writes ##########################################################################################

@pytest.mark.parametrize("parts", [(b"pong",), (b"po", b"ng"), ()])
async def test_a_sized_response_is_one_socket_write(monkeypatch: pytest.MonkeyPatch, parts: tuple[bytes, ...]) -> None:
    """The head of a response with a ``Content-Length`` is written with its first body part (hypercorn
    wrote the head, the body and an empty end of body separately); the bytes are the same."""
    async with connection(asgi_app(*parts)) as (stream, port):
        await exchange(stream, PING)   # warm
        with server_writes(monkeypatch, port) as writes:
            response = await exchange(stream, PING)
    assert writes[0] == response if len(parts) < 2 else writes[0] + writes[1] == response
    assert len(writes) == max(1, len(parts))
    assert writes[0].startswith(b"HTTP/1.1 200 \r\n") and writes[0].endswith(b"\r\n\r\n" + (parts or (b"",))[0])


async def test_the_head_of_a_large_body_is_written_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    """A body part above ``COALESCE_LIMIT`` is not copied to join it to the head."""
    body = b"x" * (serve_module.COALESCE_LIMIT + 1)
    async with connection(asgi_app(body)) as (stream, port):
        with server_writes(monkeypatch, port) as writes:
            response = await exchange(stream, PING)
    assert writes[0].endswith(b"\r\n\r\n") and b"".join(writes) == response


async def test_the_head_of_a_head_request_is_one_write(monkeypatch: pytest.MonkeyPatch) -> None:
    async with connection(asgi_app(b"pong")) as (stream, port):
        with server_writes(monkeypatch, port) as writes:
            head = await exchange(stream, b"HEAD /ping HTTP/1.1\r\nHost: x\r\n\r\n", head_only=True)
            await exchange(stream, PING)   # the HEAD response had no body: the next one follows it
    assert len(writes) == 2 and writes[0] == head
    assert b"content-length: 4\r\n" in writes[0]


async def test_the_head_of_a_streamed_response_is_not_held(monkeypatch: pytest.MonkeyPatch) -> None:
    """A response without ``Content-Length`` (server-sent events…) is written as it comes: its head
    reaches the client before the app sends its first body part."""
    between = trio.Event()
    async with connection(asgi_app(b"a", b"b", sized=False, between=between)) as (stream, port):
        with trio.fail_after(5):
            head = await exchange(stream, PING, head_only=True)
            assert head.startswith(b"HTTP/1.1 200") and b"transfer-encoding: chunked" in head.lower()
            between.set()
            rest = b""
            while not rest.endswith(b"0\r\n\r\n"):
                rest += await stream.receive_some(65536)
    assert head.endswith(b"\r\n\r\n") and rest == b"1\r\na\r\n1\r\nb\r\n0\r\n\r\n"


async def test_the_date_header_is_formatted_once_per_second(monkeypatch: pytest.MonkeyPatch) -> None:
    import email.utils
    import time

    import hypercorn.config

    formatted: list[float] = []
    format_date_time = hypercorn.config.format_date_time

    def counting(timestamp: float) -> str:
        formatted.append(timestamp)
        return format_date_time(timestamp)

    monkeypatch.setattr(hypercorn.config, "format_date_time", counting)
    async with connection(asgi_app(b"pong")) as (stream, _):
        responses = [await exchange(stream, PING) for _ in range(20)]
    assert 1 <= len(formatted) <= 2   # two when the requests straddle a second
    for response in responses:
        date = next(line for line in response.decode("latin-1").split("\r\n") if line.startswith("date: "))
        assert abs(email.utils.parsedate_to_datetime(date[6:]).timestamp() - time.time()) < 5


#### Schedule points and deadlines ##########################################################################

class _Steps(trio.abc.Instrument):
    def __init__(self) -> None:
        self.steps = 0

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        self.steps += 1


async def test_a_request_costs_few_schedule_points(tmp_path: Any) -> None:
    """``GET /ping`` through the app on a keep-alive connection, the client's steps included: hypercorn's
    own way took ~16.5 task steps per request (a schedule point for taking the connection's send lock, for
    each socket write, for each message put in or taken from the app's queue); now ~7.5."""
    from falconet.runtime.kernel.startup import open_engine

    async with open_engine(data_dir=tmp_path, store="memory") as engine:
        async with connection(create_app(engine, config=engine.config)) as (stream, _):
            for _ in range(5):
                await exchange(stream, PING)
            steps = _Steps()
            trio.lowlevel.add_instrument(steps)
            try:
                for _ in range(50):
                    await exchange(stream, PING)
            finally:
                trio.lowlevel.remove_instrument(steps)
    assert steps.steps / 50 <= 9, steps.steps / 50


async def test_the_apps_queue_keeps_hypercorns_bound_without_schedule_points() -> None:
    queue = serve_module._AppQueue(2)
    with trio.testing.assert_no_checkpoints():
        await queue.put({"n": 1})
        await queue.put({"n": 2})
        assert await queue.receive() == {"n": 1}
        await queue.put({"n": 3})
    async with trio.open_nursery() as nursery:
        nursery.start_soon(queue.put, {"n": 4})     # full: waits for a receive
        await trio.testing.wait_all_tasks_blocked()
        assert len(queue.items) == 2
        assert await queue.receive() == {"n": 2}
    assert [await queue.receive() for _ in range(2)] == [{"n": 3}, {"n": 4}]
    with trio.move_on_after(0.05) as waited:
        await queue.receive()                       # empty: waits
    assert waited.cancelled_caught


async def test_a_request_moves_no_deadline_of_its_connections_idle_timer() -> None:
    """The keep-alive timer keeps its armed deadline while a request runs (hypercorn moved it to infinity
    at each request and back after each response); the connection still closes on time
    (``tests/safety/test_7_keepalive.py``)."""
    app = asgi_app(b"pong")
    async with connection(app, keep_alive_timeout=30.0) as (stream, _):
        for _ in range(3):
            await exchange(stream, PING)
    assert all(0 < seen <= 30.0 for seen in app.seen), app.seen


async def test_between_requests_the_reader_waits_for_the_socket_then_reads_it_once(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """trio's ``receive_some`` first tries a receive, which finds nothing while a client waits for its
    answer (a failed system call and an exception per request), and yields to the scheduler again after
    one that finds something; the reader waits for the socket instead, then reads it once."""
    reads: list[int] = []
    receives: list[int] = []
    read, receive_some = os.read, trio.SocketStream.receive_some
    async with connection(asgi_app(b"pong")) as (stream, port):
        await exchange(stream, PING)

        def counting_read(fd: int, size: int) -> bytes:
            data = read(fd, size)
            with contextlib.suppress(OSError), stdsocket.fromfd(fd, stdsocket.AF_INET, stdsocket.SOCK_STREAM) as sock:
                if sock.getsockname()[1] == port:
                    reads.append(len(data))
            return data

        async def counting_receive_some(self: trio.SocketStream, max_bytes: int | None = None) -> Any:
            if self.socket.getsockname()[1] == port:
                receives.append(1)
            return await receive_some(self, max_bytes)

        monkeypatch.setattr(os, "read", counting_read)
        monkeypatch.setattr(trio.SocketStream, "receive_some", counting_receive_some)
        for _ in range(5):
            assert (await exchange(stream, PING)).endswith(b"pong")
        await stream.send_all(PING + PING)       # pipelined: both answered
        answers = b""
        while answers.count(b"pong") < 2:
            answers += await stream.receive_some(65536)
    assert reads[:6] == [len(PING)] * 5 + [2 * len(PING)] and receives == []
    assert reads[6:] in ([], [0])   # the client's close, when the server saw it before stopping


@pytest.mark.parametrize("reads_body", [True, False])
async def test_the_last_send_has_a_deadline_only_while_the_body_is_not_all_in(
        nursery: trio.Nursery, autojump_clock: Any, reads_body: bool) -> None:
    """The guard's shielded last send (``falconet/http/guard.py``) is bounded by ``DRAIN_TIMEOUT`` while the
    app's queue may be full of unread body; with the whole body received no deadline is registered."""
    from falconet.http.guard import DRAIN_TIMEOUT, ConnectionGuard

    deadlines: list[float] = []

    async def send(message: dict[str, Any]) -> None:
        deadlines.append(trio.current_effective_deadline() - trio.current_time())

    messages = [{"type": "http.request", "body": b"ok", "more_body": False}]

    async def receive() -> dict[str, Any]:
        await trio.lowlevel.checkpoint()
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if reads_body:
            await receive()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    scope = {"type": "http", "path": "/", "headers": [(b"content-length", b"2")]}
    await ConnectionGuard(app, nursery)(scope, receive, send)
    assert deadlines[0] == float("inf")
    assert deadlines[-1] == (float("inf") if reads_body else pytest.approx(DRAIN_TIMEOUT))
    nursery.cancel_scope.cancel()


async def test_without_a_read_timeout_the_reader_opens_no_timeout_scope(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[float] = []
    fail_after = trio.fail_after

    def counting(seconds: float, **kwargs: Any) -> Any:
        calls.append(seconds)
        return fail_after(seconds, **kwargs)

    async with connection(asgi_app(b"pong")) as (stream, _):
        monkeypatch.setattr(trio, "fail_after", counting)
        for _ in range(3):
            await exchange(stream, PING)
    assert calls == []
