"""Serving the app with hypercorn's trio worker, inside the caller's trio run (no extra process).

``await nursery.start(serve, app, host, port)`` returns the bound base URLs once the socket listens
(port 0 picks a free port: the URL tells which). The app is served behind
:class:`~.guard.ConnectionGuard` (a request refused before its body was read never wedges its
keep-alive connection).

Connections: an idle keep-alive connection (or one that never completes its request head) is closed
after ``keep_alive_timeout`` seconds. Graceful shutdown: set ``shutdown`` (a :class:`trio.Event`);
hypercorn stops accepting, closes idle connections, gives requests in flight ``graceful_timeout``
seconds to finish, then cancels them and returns. Cancelling the surrounding scope is a hard stop.

Per request, hypercorn (0.18) as Falconet drives it (each a counting test in
``tests/http/test_connection_costs.py``):

- keep-alive timer: hypercorn starts a new trio task for it each time a connection becomes idle and
  cancels that task when the next request arrives, two task switches and a cancellation per request
  (about a quarter of the server's CPU time for a small request). :class:`_IdleTimer` keeps one timer
  task per connection and only notes each request's deadline, with the same rules: an idle connection
  closes ``keep_alive_timeout`` seconds after its last response, or at once when the server stops;
- writes: the head of a response with a ``Content-Length`` is written with its body, one write instead of
  two (:class:`_H11Protocol`), no empty write for the end of such a body, and a write whose connection's
  send lock is free is tried on the socket at once, before any schedule point (:class:`_Connection`);
- the app's messages (its ``receive``) go through a queue with the bound of hypercorn's memory channel
  that yields to the scheduler only when it must wait (:class:`_AppQueue`).

Websockets: :class:`_FrameStream` (hypercorn's websocket stream) announces the ASGI scope extension
:data:`~falconet.http.wsframes.WS_FRAMES`, through which the app writes a frame it encoded once for many
subscribers straight to the connection (see ``falconet/http/wsframes.py``), instead of having wsproto encode
and copy the same message again for each socket. Where the app says it will send such frames (``"shared"``
in the extension, before it accepts), permessage-deflate is answered with ``server_no_context_takeover``
(:class:`_SharedDeflate`), so those connections take one compressed frame per message and window size too,
instead of a compression per connection (and keep no compressor between messages).
"""
from __future__ import annotations

import collections
import contextlib
import logging
import socket as _socket
from contextvars import ContextVar
from typing import Any, Awaitable, Callable

import math
import os
import time

import h11
import trio
import hypercorn.protocol as hypercorn_protocol
from hypercorn.config import Config
from hypercorn.events import Closed, Event, RawData
from hypercorn.protocol import h11 as hypercorn_h11
from hypercorn.protocol import ws_stream as hypercorn_ws_stream
from hypercorn.protocol.events import Body, Data, EndBody, Event as StreamEvent
from hypercorn.protocol.ws_stream import ASGIWebsocketState, WSStream
from hypercorn.trio import run as hypercorn_run
from hypercorn.trio import serve as hypercorn_serve
from hypercorn.trio import tcp_server as hypercorn_tcp
from hypercorn.trio.task_group import TaskGroup, _handle as run_app
from hypercorn.trio.tcp_server import MAX_RECV, TCPServer
from hypercorn.typing import H11SendableEvent
from wsproto.connection import ConnectionState
from wsproto.extensions import PerMessageDeflate

from falconet.http.guard import ConnectionGuard
from falconet.http.wsframes import WS_FRAMES, SharedFrame

GRACEFUL_TIMEOUT = 5.0
KEEP_ALIVE = 75.0
#: a response's head is written with its first body part when that part is at most this many bytes
COALESCE_LIMIT = 64 * 1024
#: unsent bytes the kernel keeps for a connection once it is written a shared websocket frame larger than
#: trio's limit (``TCP_NOTSENT_LOWAT``, which trio's ``SocketStream`` sets to 16 KiB; see
#: :meth:`_Connection.hold_frames`)
FRAME_UNSENT_LIMIT = 1 << 20
TRIO_UNSENT_LIMIT = 1 << 14


class _Config(Config):
    """hypercorn's configuration, whose headers added to every response (``Date``, ``Server``) are built
    once per second of the clock, not for each response (``Date`` has a resolution of one second)."""

    _built: tuple[int, str, list[tuple[bytes, bytes]]] = (-1, "", [])

    def response_headers(self, protocol: str) -> list[tuple[bytes, bytes]]:
        second = int(time.time())
        built = self._built
        if built[0] != second or built[1] != protocol:
            built = self._built = (second, protocol, super().response_headers(protocol))
        return list(built[2])


def hypercorn_config(host: str, port: int, *, access_log: bool = False, keep_alive_timeout: float = KEEP_ALIVE,
                     graceful_timeout: float = GRACEFUL_TIMEOUT) -> Config:
    config = _Config()
    config.bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    config.graceful_timeout = graceful_timeout
    config.keep_alive_timeout = keep_alive_timeout
    config.accesslog = logging.getLogger("falconet.http.access") if access_log else None
    config.errorlog = logging.getLogger("falconet.http.server")
    config.websocket_ping_interval = None
    # hypercorn caps bodies of WSGI apps only; ASGI bodies are bounded by guard.py and the views' limits
    return config


class _IdleTimer:
    """The keep-alive timer of one connection, with the interface hypercorn's ``TCPServer`` uses for it
    (``restart`` when the connection turns idle, ``stop`` when a request arrives): one task per
    connection, never a new task per request. ``restart`` and ``stop`` only note the connection's
    deadline; the task's cancel scope keeps the deadline it was armed with, and when that passes the task
    closes the connection if its noted deadline passed too, or re-arms with it (a keep-alive connection
    moves no deadline of trio's per request). ``close`` closes the connection; ``terminated`` is set when
    the server stops."""

    def __init__(self, timeout: float, terminated: Any, close: Callable[[], Awaitable[None]]):
        self.timeout = timeout
        self.terminated = terminated
        self.close = close
        self.deadline = math.inf          # inf while a request is in flight
        self.watching = False

    async def restart(self, task_group: Any, action: Any) -> None:
        self.deadline = trio.current_time() + self.timeout
        if not self.watching:
            self.watching = True
            task_group.spawn(self._watch)

    async def stop(self) -> None:
        self.deadline = math.inf

    async def _watch(self) -> None:
        armed = self.deadline
        while True:
            with trio.CancelScope(deadline=armed):
                await self.terminated.wait()
                if self.deadline == math.inf:   # stopping while busy: hypercorn closes after the response
                    return
                break                           # stopping while idle: close now
            now = trio.current_time()
            if self.deadline <= now:
                break
            # busy, or a request came since the scope was armed: wait for the noted deadline (while busy,
            # look again a timeout later)
            armed = self.deadline if self.deadline != math.inf else now + self.timeout
        with trio.CancelScope(shield=True):
            await self.close()


#: h11 states of a client that sent no part of its next request: none yet, or its last one whole
_BETWEEN_REQUESTS = (h11.IDLE, h11.DONE)


class _Connection(TCPServer):
    """hypercorn's HTTP connection with :class:`_IdleTimer` as its keep-alive timer, which sends no empty
    writes: the end of a response with a ``Content-Length`` is no bytes in HTTP/1.1, and hypercorn would
    take its send lock and yield to the scheduler for it.

    A write on a plain socket whose send lock is free is made at once (:meth:`write_now`), without the
    two schedule points of taking the lock and of trio's ``send_all``; what the kernel did not take is
    sent with ``send_all`` before the lock is released, so nothing comes between the parts of a write."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.idle_task = _IdleTimer(self.config.keep_alive_timeout,  # type: ignore[assignment]
                                    self.context.terminated, self._initiate_server_close)
        self.plain = isinstance(self.stream, trio.SocketStream)
        self.holds_frames = False

    def hold_frames(self) -> None:
        """Let the kernel keep up to :data:`FRAME_UNSENT_LIMIT` unsent bytes of this socket (once). trio caps
        them at 16 KiB to keep an interactive stream's latency low; a large frame written to a client that
        reads slower than loopback speed is then taken 16 KiB at a time, each part a wake-up of the
        connection's task and a write by the server's one thread (bench_ws.py: half the frames of 200
        ``batch=true`` subscribers, three more writes each). With the limit raised the kernel takes the whole
        frame and sends it as the client's window opens, with no work in the server's thread. Its cost is
        kernel memory: at most the limit (and the socket's send buffer) per subscriber that stops reading,
        until the subscriber is dropped (``SEND_DEADLINE``)."""
        self.holds_frames = True
        with contextlib.suppress(OSError, AttributeError):  # no such option (not Linux), or the socket closed
            self.stream.socket.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_NOTSENT_LOWAT, FRAME_UNSENT_LIMIT)

    async def protocol_send(self, event: Event) -> None:
        if isinstance(event, RawData):
            if not event.data:
                return
            if self.plain and not self.send_lock.locked():
                await self.write_now(event.data)
                return
        await super().protocol_send(event)

    async def _read_data(self) -> None:
        # hypercorn's loop, with no timeout's cancel scope per read when there is no read timeout
        timeout = self.config.read_timeout
        while True:
            try:
                if timeout:
                    with trio.fail_after(timeout):
                        data = await self._receive()
                else:
                    data = await self._receive()
            except (trio.ClosedResourceError, trio.BrokenResourceError, trio.TooSlowError, OSError):
                break
            await self.protocol.handle(RawData(data=data))
            if not data:
                break
        await self.protocol.handle(Closed())

    async def _receive(self) -> bytes:
        if self.plain and self._between_requests():
            return await self._receive_next()
        return bytes(await self.stream.receive_some(MAX_RECV))

    async def _receive_next(self) -> bytes:
        """The first bytes of the client's next request (b"" when it closed): the socket waited for, then
        read at once (trio's ``receive_some`` would try a receive that finds nothing first, and yield to
        the scheduler again after one that finds something). A reset connection raises ``OSError``."""
        socket = self.stream.socket
        await trio.lowlevel.wait_readable(socket)
        try:
            return os.read(socket.fileno(), MAX_RECV)
        except BlockingIOError:  # readable, yet nothing to read (spurious wake-up)
            return bytes(await self.stream.receive_some(MAX_RECV))

    def _between_requests(self) -> bool:
        """Whether the connection waits for the client's next request (HTTP/1.1, the client's last one
        received whole, nothing of the next one): a client rarely sends it before the reader is back, so
        the reader waits for the socket to be readable instead of first trying a receive that finds
        nothing."""
        connection = getattr(self.protocol.protocol, "connection", None)
        return (type(connection) is h11.Connection and connection.their_state in _BETWEEN_REQUESTS
                and self.stream.socket.fileno() >= 0)

    async def write_now(self, data: bytes) -> None:
        """Write ``data`` as hypercorn does (under the send lock, shielded, a broken or closed connection
        reported to the protocol), trying the socket once before any schedule point."""
        self.send_lock.acquire_nowait()
        try:
            socket = self.stream.socket
            try:
                sent = os.write(socket.fileno(), data) if socket.fileno() >= 0 else 0
            except OSError:  # would block, or broken: send_all waits, or reports it
                sent = 0
            if sent < len(data):
                try:
                    with trio.CancelScope(shield=True):
                        await self.stream.send_all(memoryview(data)[sent:])
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    await self.protocol.handle(Closed())
        finally:
            self.send_lock.release()


class _H11Protocol(hypercorn_h11.H11Protocol):
    """hypercorn's HTTP/1.1 protocol, which writes the head of a response that has a ``Content-Length``
    together with its body: one socket write instead of two. The head is held until the response's next
    event (its body, or its end for an empty or HEAD response), which an app sends right after it (ASGI
    lets a server hold the head until the first body message); a streamed response (no
    ``Content-Length``) is written as it comes, and so is a body part above :data:`COALESCE_LIMIT` bytes."""

    _held = b""

    async def stream_send(self, event: StreamEvent) -> None:
        if self._held and not isinstance(event, (Body, EndBody)):
            await self._flush()
        await super().stream_send(event)

    async def _send_h11_event(self, event: H11SendableEvent) -> None:
        try:
            data = self.connection.send(event) or b""
        except h11.LocalProtocolError:
            if self._held:
                await self._flush()
            if self.connection.their_state != h11.ERROR:
                raise
            return
        if type(event) is h11.Response and any(name == b"content-length" for name, _ in event.headers):
            self._held = data
            return
        if self._held:
            if len(data) > COALESCE_LIMIT:   # a large body is not copied to join it: two writes
                await self._flush()
            else:
                data, self._held = self._held + data, b""
        await self.send(RawData(data=data))

    async def _flush(self) -> None:
        held, self._held = self._held, b""
        await self.send(RawData(data=held))


class _AppQueue:
    """The messages hypercorn hands one request's app (``receive``), at most ``size`` waiting, as
    hypercorn's memory channel: ``put`` waits while it is full, ``receive`` while it is empty; neither
    yields to the scheduler when it need not wait."""

    def __init__(self, size: int):
        self.size = size
        self.items: collections.deque[Any] = collections.deque()
        self.readable = trio.lowlevel.ParkingLot()
        self.writable = trio.lowlevel.ParkingLot()

    async def put(self, message: Any) -> None:
        while len(self.items) >= self.size:
            await self.writable.park()
        self.items.append(message)
        self.readable.unpark()

    async def receive(self) -> Any:
        while not self.items:
            await self.readable.park()
        self.writable.unpark()
        return self.items.popleft()


class _TaskGroup(TaskGroup):
    """A connection's task group, whose apps receive through an :class:`_AppQueue`."""

    async def spawn_app(self, app: Any, config: Config, scope: Any, send: Any) -> Any:
        queue = _AppQueue(config.max_app_queue_size)
        self.spawn(run_app, app, config, scope, queue.receive, send, trio.to_thread.run_sync, trio.from_thread.run)
        return queue.put


# hypercorn.trio.run builds each connection from this module-level name, the connection its task group,
# the protocol wrapper its HTTP/1.1 protocol
hypercorn_run.TCPServer = _Connection  # type: ignore[misc, assignment]
hypercorn_tcp.TaskGroup = _TaskGroup  # type: ignore[misc]
hypercorn_protocol.H11Protocol = _H11Protocol  # type: ignore[misc]


#### Websockets: frames encoded once for many subscribers ##################################################

#: the websocket stream whose handshake hypercorn is answering (see ``_FrameStream.app_send``)
_ACCEPTING: ContextVar["_FrameStream | None"] = ContextVar("falconet_ws_accepting", default=None)


class _SharedDeflate(PerMessageDeflate):
    """permessage-deflate whose server side keeps no context between messages on a connection that takes
    shared frames: the answer to an offer carries ``server_no_context_takeover`` (a server may add it,
    RFC 7692 7.1.1.1), and wsproto compresses each message it sends with a fresh compressor. A compressed
    message then depends only on its text and the window size, so one compressed frame serves every such
    connection (``SharedFrame.deflated``), and no connection holds a compressor (about 256 KB of zlib state
    at the default window) between messages. Other connections keep their context: a per-connection feed
    of small messages compresses each far better, and about 20 times faster, with its compressor kept."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        stream = _ACCEPTING.get()
        if stream is not None:
            stream.deflate = self
            if stream.frames["shared"]:
                self.server_no_context_takeover = True


# hypercorn's websocket handshake builds each connection's extension from this module-level name
hypercorn_ws_stream.PerMessageDeflate = _SharedDeflate  # type: ignore[misc]


class _FrameStream(WSStream):
    """hypercorn's websocket stream, whose app may write complete text frames encoded once for many
    connections (the scope extension ``WS_FRAMES``): a server's frame is the same bytes for every client
    that negotiated no extension, and its compressed frame the same for every client that negotiated
    permessage-deflate without server context takeover and the same window size.

    A frame is written as hypercorn writes (``TCPServer.protocol_send``: under the connection's send lock,
    shielded, a broken or closed connection reported to the protocol), except that when the lock is free
    the first write is made at once, without the two schedule points of taking the lock and of trio's
    ``send_all``: most frames are taken whole by the kernel, and what it did not take is sent with
    ``send_all`` before the lock is released, so nothing can come between the parts of a frame."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        # the stream builds the app's scope and spawns the app through its task group
        self.frames: dict[str, Any] = {"send": self.send_frame, "shared": False}
        self.task_group = _Announcing(self.task_group, self.frames)  # type: ignore[assignment]
        self._tcp: _Connection | None | bool = False   # False: not looked up yet
        self.deflate: PerMessageDeflate | None = None  # the extension its handshake built (enabled or not)

    async def send_frame(self, message: SharedFrame) -> bool:
        """Write the message's shared frame (``SharedFrame.frame``, or ``SharedFrame.deflated``); False,
        nothing written, when this connection is not open or negotiated an extension whose frames are its
        own: then send the message through ASGI."""
        if (self.closed or self.state is not ASGIWebsocketState.CONNECTED
                or self.connection.state is not ConnectionState.OPEN):
            return False
        bits = self.window_bits()
        if bits is False:
            return False
        frame = message.frame if bits is None else message.deflated(bits)
        tcp = self.tcp_connection()
        if tcp is not None and not tcp.holds_frames and len(frame) > TRIO_UNSENT_LIMIT:
            tcp.hold_frames()
        if tcp is None or tcp.send_lock.locked():
            await self.send(Data(stream_id=self.stream_id, data=frame))
            return True
        await tcp.write_now(frame)
        return True

    async def app_send(self, message: Any) -> None:
        if message is None or message.get("type") != "websocket.accept":
            await super().app_send(message)
            return
        # hypercorn's handshake builds the connection's extension (``_SharedDeflate``) before its first await
        token = _ACCEPTING.set(self)
        try:
            await super().app_send(message)
        finally:
            _ACCEPTING.reset(token)

    def window_bits(self) -> int | None | bool:
        """What the accepted connection's extension makes of a shared frame: None (no extension: the plain
        frame), the window size of permessage-deflate without server context takeover (the compressed
        frame), or False (context takeover: none). hypercorn's handshake supports permessage-deflate only."""
        if self.deflate is None or not self.deflate.enabled():
            return None
        if self.deflate.server_no_context_takeover:
            return self.deflate.server_max_window_bits
        return False

    def tcp_connection(self) -> _Connection | None:
        """The plain-socket connection this stream writes to (its HTTP/1.1 protocol's ``send`` is the
        connection's ``protocol_send``), or None (TLS, or another protocol)."""
        if self._tcp is False:
            protocol = getattr(self.send, "__self__", None)
            tcp = getattr(getattr(protocol, "send", None), "__self__", None)
            plain = isinstance(tcp, _Connection) and tcp.plain
            self._tcp = tcp if plain else None
        return self._tcp  # type: ignore[return-value]


class _Announcing:
    """A connection's task group that adds the ``WS_FRAMES`` extension to the scope of the app it spawns."""

    def __init__(self, group: Any, frames: dict[str, Any]):
        self._group = group
        self._frames = frames

    async def spawn_app(self, app: Any, config: Config, scope: Any, send: Any) -> Any:
        scope["extensions"][WS_FRAMES] = self._frames
        return await self._group.spawn_app(app, config, scope, send)

    def spawn(self, func: Callable[..., Any], *args: Any) -> None:
        self._group.spawn(func, *args)


# hypercorn's HTTP/1.1 protocol builds each websocket stream from this module-level name
hypercorn_h11.WSStream = _FrameStream  # type: ignore[misc, assignment]


async def serve(app: Any, host: str, port: int, *, shutdown: trio.Event | None = None,
                access_log: bool = False, keep_alive_timeout: float = KEEP_ALIVE,
                graceful_timeout: float = GRACEFUL_TIMEOUT,
                task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED) -> None:
    """Serve ``app`` on ``host:port`` until ``shutdown`` is set (graceful) or the caller cancels (hard).

    ``task_status.started`` receives the bound URLs (e.g. ``["http://127.0.0.1:40123"]``).
    """
    config = hypercorn_config(host, port, access_log=access_log, keep_alive_timeout=keep_alive_timeout,
                              graceful_timeout=graceful_timeout)
    trigger = shutdown.wait if shutdown is not None else None
    async with trio.open_nursery() as guard_tasks:
        # the guard is an ASGI app over plain dict messages; hypercorn types them as a union of TypedDicts
        guard = ConnectionGuard(app, guard_tasks)
        await hypercorn_serve(guard, config, shutdown_trigger=trigger,  # type: ignore[arg-type]
                              task_status=task_status)
        guard_tasks.cancel_scope.cancel(reason="server stopped")
