"""Websocket frames encoded once for many subscribers (``falconet/http/wsframes.py``), written as they are
through a real hypercorn socket; permessage-deflate connections (server without context takeover) get one
compressed frame per message and window size."""
from __future__ import annotations

import json
import socket as stdsocket
import zlib
from typing import Any
from urllib.parse import urlsplit

import hypercorn
import pytest
import trio
import trio.testing
from hypercorn.protocol import h11 as hypercorn_h11
from hypercorn.protocol import ws_stream as hypercorn_ws_stream
from wsproto import ConnectionType, WSConnection
from wsproto.connection import Connection
from wsproto.events import AcceptConnection, CloseConnection, Request, TextMessage
from wsproto.extensions import PerMessageDeflate

from falconet.http import serve as serve_module
from falconet.http.api import live
from falconet.http.wsframes import SharedFrame, deflated_text_frame, text_frame

QUICK = """id: quick
namespace: company.team
tasks:
  - id: r
    type: io.kestra.plugin.core.debug.Return
    format: done
"""
PATH = "/api/v1/ws?namespace=company.team&state=SUCCESS&batch=true"


def frames_of(raw: bytes) -> list[tuple[int, bytes]]:
    """(first byte, payload) of each unmasked server frame in ``raw``."""
    out, pos = [], 0
    while pos < len(raw):
        first, size, pos = raw[pos], raw[pos + 1] & 0x7F, pos + 2
        if size >= 126:
            width = 2 if size == 126 else 8
            size, pos = int.from_bytes(raw[pos:pos + width], "big"), pos + width
        out.append((first, raw[pos:pos + size]))
        pos += size
    return out


def inflate(frame: tuple[int, bytes], window_bits: int = 15) -> str:
    """A compressed text message (FIN, RSV1, opcode text) decoded with zlib alone (RFC 7692 7.2.2)."""
    first, payload = frame
    assert first == 0xC1
    return zlib.decompressobj(-window_bits).decompress(payload + b"\x00\x00\xff\xff").decode("utf-8")


@pytest.mark.parametrize("bits", [9, 12, 15])
def test_a_deflated_frame_is_what_wsproto_sends_without_server_context_takeover(bits: int) -> None:
    """The shared compressed frame equals wsproto's frames of each message on a connection that accepted
    an offer with ``server_max_window_bits`` as hypercorn's handshake now answers it; zlib alone and a
    wsproto client decode it."""
    offer = f"permessage-deflate; server_max_window_bits={bits}; client_max_window_bits"
    kept = serve_module._SharedDeflate().accept(offer)  # a connection without shared frames keeps its context
    assert isinstance(kept, str) and "server_no_context_takeover" not in kept
    extension = PerMessageDeflate(server_no_context_takeover=True)  # what _SharedDeflate is where frames are shared
    accepted = extension.accept(offer)
    assert isinstance(accepted, str) and "server_no_context_takeover" in accepted
    server = Connection(ConnectionType.SERVER, [extension])
    client_extension = PerMessageDeflate()
    client_extension.finalize(f"permessage-deflate; {accepted}")
    client = Connection(ConnectionType.CLIENT, [client_extension])
    texts = [json.dumps([{"n": n, "text": "é" * n * 500, "same": "abc" * 2000}]) for n in range(4)] + ["", "x"]
    for text in texts:
        shared = SharedFrame(text)
        assert shared.deflated(bits) == server.send(TextMessage(data=text))
        assert shared.deflated(bits) is shared.deflated(bits)  # compressed once per window size
        assert inflate(frames_of(shared.deflated(bits))[0], bits) == text
        client.receive_data(shared.deflated(bits))
        received = list(client.events())
        assert [e.data for e in received] == [text]


@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65535, 65536, 200_000])
def test_a_text_frame_is_what_wsproto_sends_without_extension(size: int) -> None:
    text = ("é" * size)[:size] if size % 2 else "x" * size
    server = Connection(ConnectionType.SERVER)
    assert text_frame(text) == server.send(TextMessage(data=text))
    shared = SharedFrame(text)
    assert shared.frame is shared.frame  # encoded once


def test_hypercorn_builds_websocket_streams_from_the_frame_stream() -> None:
    """``_FrameStream`` relies on hypercorn 0.18's internals (pinned in pyproject.toml): the module-level
    name its HTTP/1.1 protocol builds websocket streams from, and the stream's attributes; the socket
    test below fails too if they change."""
    assert hypercorn_h11.WSStream is serve_module._FrameStream
    assert hypercorn_ws_stream.PerMessageDeflate is serve_module._SharedDeflate
    assert hypercorn.__name__ == "hypercorn"
    from importlib.metadata import version
    assert version("hypercorn").startswith("0.18.")


class RawClient:
    """A websocket client on a plain socket: wsproto parses what arrives, and the raw bytes are kept."""

    def __init__(self, stream: trio.SocketStream, deflate: bool):
        self.stream = stream
        self.conn = WSConnection(ConnectionType.CLIENT)
        self.deflate = deflate
        self.raw = bytearray()
        self.texts: list[str] = []
        self.accepted: AcceptConnection | None = None
        self.closed: CloseConnection | None = None
        self._partial = ""

    @classmethod
    async def open(cls, base: str, path: str, *, deflate: bool | PerMessageDeflate,
                   receive_buffer: int = 0) -> "RawClient":
        parts = urlsplit(base)
        sock = trio.socket.socket(stdsocket.AF_INET, stdsocket.SOCK_STREAM)
        if receive_buffer:
            sock.setsockopt(stdsocket.SOL_SOCKET, stdsocket.SO_RCVBUF, receive_buffer)
        await sock.connect((parts.hostname, parts.port))
        client = cls(trio.SocketStream(sock), deflate)
        extensions = ([deflate] if isinstance(deflate, PerMessageDeflate) else [PerMessageDeflate()]) if deflate else []
        await client.stream.send_all(client.conn.send(Request(host=parts.netloc, target=path, extensions=extensions)))
        while client.accepted is None:
            await client.pump()
        return client

    async def pump(self, *, closing: bool = False) -> None:
        """Read once and parse; a close from the server fails the test unless ``closing`` (then it is kept
        in :attr:`closed`)."""
        data = await self.stream.receive_some(1 << 16)
        assert data, "the server closed the connection"
        if self.accepted is not None:
            self.raw += data
        self.conn.receive_data(data)
        for event in self.conn.events():
            if isinstance(event, AcceptConnection):
                self.accepted = event
                # bytes after the handshake in the same read are frames
                head_end = bytes(data).find(b"\r\n\r\n") + 4
                self.raw += data[head_end:]
            elif isinstance(event, TextMessage):
                self._partial += event.data
                if event.message_finished:
                    self.texts.append(self._partial)
                    self._partial = ""
            elif isinstance(event, CloseConnection):
                if not closing:
                    raise AssertionError(f"closed: {event.code} {event.reason}")
                self.closed = event

    def ended(self) -> set[str]:
        return {m["execution"]["id"] for text in self.texts for m in json.loads(text)}


def record_frames(monkeypatch: Any) -> list[tuple[SharedFrame, bool]]:
    """Each shared frame the websocket streams are asked to write, with whether they wrote it."""
    calls: list[tuple[SharedFrame, bool]] = []
    send_frame = serve_module._FrameStream.send_frame

    async def spy(self: Any, message: SharedFrame) -> bool:
        result = await send_frame(self, message)
        calls.append((message, result))
        return result

    monkeypatch.setattr(serve_module._FrameStream, "send_frame", spy)
    return calls


async def test_batch_frames_are_written_once_encoded_and_once_compressed_for_deflate_clients(
        server: str, api: Any, engine: Any, monkeypatch: Any) -> None:
    monkeypatch.setattr(live, "BATCH_WINDOW", 0.2)
    calls = record_frames(monkeypatch)
    tcp_connections: list[Any] = []
    tcp = serve_module._FrameStream.tcp_connection
    monkeypatch.setattr(serve_module._FrameStream, "tcp_connection",
                        lambda self: tcp_connections.append(tcp(self)) or tcp_connections[-1])
    await api.flow(QUICK)
    plain = await RawClient.open(server, PATH, deflate=False)
    deflated = await RawClient.open(server, PATH, deflate=True)
    assert not plain.accepted.extensions  # type: ignore[union-attr]
    assert [e.name for e in deflated.accepted.extensions] == ["permessage-deflate"]  # type: ignore[union-attr]
    assert deflated.accepted.extensions[0].server_no_context_takeover  # type: ignore[union-attr]
    with trio.fail_after(30):
        while sum(len(g.members) for g in live._GROUPS.get(engine, {}).values()) < 2:  # noqa: ASYNC110
            await trio.sleep(0.01)

    ids = set()
    for _ in range(6):
        created = await api.execute("company.team", "quick")
        await api.wait(created["id"])
        ids.add(created["id"])
    with trio.fail_after(30):
        while plain.ended() != ids:
            await plain.pump()
        while deflated.ended() != ids:
            await deflated.pump()

    # the same frames, in the same order, whatever the connection negotiated
    assert [json.loads(t) for t in plain.texts] == [json.loads(t) for t in deflated.texts]
    assert all(isinstance(frame, list) and frame for frame in map(json.loads, plain.texts))
    # without extension: exactly the bytes wsproto would have sent, written from the shared encoding
    assert bytes(plain.raw) == b"".join(text_frame(t) for t in plain.texts)
    # with permessage-deflate: the shared frame compressed once (default window), each message on its own
    assert bytes(deflated.raw) == b"".join(deflated_text_frame(t, 15) for t in deflated.texts)
    assert [inflate(frame) for frame in frames_of(bytes(deflated.raw))] == deflated.texts
    written = [ok for _, ok in calls]
    assert written == [True] * (len(plain.texts) + len(deflated.texts))
    # each frame written at once to hypercorn's connection (under its send lock)
    assert len(tcp_connections) == len(written) and all(tcp_connections)
    await plain.stream.aclose()
    await deflated.stream.aclose()


async def test_a_frame_goes_straight_to_an_idle_writer() -> None:
    """With the feed waiting on an empty queue and the writer waiting for a message, a frame is handed to
    the writer at once, not through the member's queue and its feed; a busy writer's frames queue."""
    send, receive = trio.open_memory_channel[str | SharedFrame](0)
    member = live._Member(live.Outbox(send))
    queued: list[SharedFrame] = []
    written: list[Any] = []

    async def idle_feed() -> None:
        async for frame in member.frames:
            queued.append(frame)

    async def writer() -> None:
        written.append(await receive.receive())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(idle_feed)
        nursery.start_soon(writer)
        await trio.testing.wait_all_tasks_blocked()
        first, second = SharedFrame("[1]"), SharedFrame("[2]")
        member.offer(first, 1, 42.0)
        await trio.testing.wait_all_tasks_blocked()
        assert written == [first] and not queued and member.received_until == 42.0
        member.offer(second, 1, 43.0)  # the writer took its one message and is gone: busy
        await trio.testing.wait_all_tasks_blocked()
        assert written == [first] and queued == [second] and member.received_until == 43.0
        nursery.cancel_scope.cancel()


async def test_a_frame_the_socket_cannot_take_at_once_is_completed_before_anything_else(
        server: str, engine: Any, monkeypatch: Any) -> None:
    """A client that reads slowly through a tiny receive buffer: the kernel takes a part of each large
    frame, the rest follows under the connection's send lock; the client gets whole, valid frames."""
    client = await RawClient.open(server, PATH, deflate=False, receive_buffer=4096)
    with trio.fail_after(30):
        while not live._GROUPS.get(engine):  # noqa: ASYNC110
            await trio.sleep(0.01)
    group = next(iter(live._GROUPS[engine].values()))
    frames = [SharedFrame(json.dumps([{"n": n, "filler": "é" * 1_000_000}], ensure_ascii=False)) for n in range(2)]
    for frame in frames:
        for member in group.members:
            member.offer(frame, 1, 0.0)
    with trio.fail_after(60):
        while len(client.texts) < 2:
            await client.pump()
    assert client.texts == [f.text for f in frames]
    assert bytes(client.raw) == frames[0].frame + frames[1].frame
    await client.stream.aclose()


@pytest.mark.skipif(not hasattr(stdsocket, "TCP_NOTSENT_LOWAT"), reason="the platform has no TCP_NOTSENT_LOWAT")
async def test_a_large_frame_is_taken_whole_by_the_kernel_while_the_client_does_not_read(
        server: str, engine: Any) -> None:
    """trio lets the kernel keep only 16 KiB unsent per socket (``TCP_NOTSENT_LOWAT``): a frame of a few
    hundred KB to a client that is not reading at that moment was written 16 KiB at a time, the
    subscriber's writer parked in between. A connection written a shared frame above that keeps up to
    ``FRAME_UNSENT_LIMIT``: the frame is written at once and the writer is free again before the client
    reads a byte."""
    assert serve_module.TRIO_UNSENT_LIMIT < 700_000 < serve_module.FRAME_UNSENT_LIMIT
    client = await RawClient.open(server, PATH, deflate=False)
    with trio.fail_after(30):
        while not live._GROUPS.get(engine):  # noqa: ASYNC110
            await trio.sleep(0.01)
    group = next(iter(live._GROUPS[engine].values()))
    (member,) = group.members
    big = SharedFrame(json.dumps(["x" * 700_000]))
    try:
        member.offer(big, 1, 0.0)
        await trio.testing.wait_all_tasks_blocked(cushion=0.05)
        assert member.out._channel.statistics().tasks_waiting_receive == 1  # the writer waits for the next frame
        with trio.fail_after(30):
            while not client.texts:
                await client.pump()
        assert client.texts == [big.text] and bytes(client.raw) == big.frame
    finally:
        await client.stream.aclose()  # (a writer parked on the socket waits for it)


async def test_a_client_that_goes_away_in_the_middle_of_a_frame_leaves_the_group(server: str, engine: Any) -> None:
    client = await RawClient.open(server, PATH, deflate=False, receive_buffer=4096)
    with trio.fail_after(30):
        while not live._GROUPS.get(engine):  # noqa: ASYNC110
            await trio.sleep(0.01)
    group = next(iter(live._GROUPS[engine].values()))
    frame = SharedFrame(json.dumps(["x" * 4_000_000]))
    for member in group.members:
        member.offer(frame, 1, 0.0)
    await client.pump()   # the frame started
    await client.stream.aclose()
    with trio.fail_after(30):
        while live._GROUPS.get(engine):  # noqa: ASYNC110 - the server notices the closed socket
            await trio.sleep(0.01)


async def test_one_message_per_frame_subscribers_get_the_same_encoded_frame(server: str, api: Any, engine: Any,
                                                                            monkeypatch: Any) -> None:
    path = "/api/v1/ws?namespace=company.team&state=SUCCESS"
    calls = record_frames(monkeypatch)
    await api.flow(QUICK)
    clients = [await RawClient.open(server, path, deflate=False) for _ in range(2)]
    with trio.fail_after(30):
        while len(engine.bus) < 2:  # noqa: ASYNC110 - both subscriptions are open
            await trio.sleep(0.01)
    created = await api.execute("company.team", "quick")
    await api.wait(created["id"])
    with trio.fail_after(30):
        for client in clients:
            while not client.texts:
                await client.pump()
    assert clients[0].texts == clients[1].texts
    message = json.loads(clients[0].texts[0])
    assert message["type"] == "execution" and message["execution"]["id"] == created["id"]
    assert bytes(clients[0].raw) == bytes(clients[1].raw) == text_frame(clients[0].texts[0])
    frames = [shared for shared, _ in calls]
    assert len(frames) == 2 and frames[0] is frames[1]  # encoded once, written to both sockets
    for client in clients:
        await client.stream.aclose()


async def test_a_message_for_a_waiting_writer_is_handed_over_without_a_deadline(autojump_clock: Any) -> None:
    """``Outbox.send`` to a writer that waits: handed over at once (no cancel scope armed, no schedule
    point); to a busy writer: the deadline applies as before."""
    send, receive = trio.open_memory_channel[str | SharedFrame](0)
    out = live.Outbox(send)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(receive.receive)
        await trio.testing.wait_all_tasks_blocked()
        with trio.testing.assert_no_checkpoints():
            await out.send("one")
        await trio.testing.wait_all_tasks_blocked()
        start = trio.current_time()
        with pytest.raises(live.SubscriberTooSlow):
            await out.send("two")  # nobody takes it
        assert trio.current_time() - start == pytest.approx(live.SEND_DEADLINE)


async def test_a_stalled_batch_subscriber_is_dropped_and_gets_1013_after_its_frame(server: str, engine: Any,
                                                                                   monkeypatch: Any) -> None:
    """A client that stops reading in the middle of a shared frame: its feed gives up after SEND_DEADLINE
    (its membership ends at once), and once it reads again it gets the whole frame, then close 1013."""
    monkeypatch.setattr(live, "SEND_DEADLINE", 0.5)
    client = await RawClient.open(server, PATH, deflate=False, receive_buffer=4096)
    with trio.fail_after(30):
        while not live._GROUPS.get(engine):  # noqa: ASYNC110
            await trio.sleep(0.01)
    group = next(iter(live._GROUPS[engine].values()))
    first = SharedFrame(json.dumps(["x" * 8_000_000]))
    for n in range(3):  # the first is stuck in the socket, the second waits for the writer, the third queues
        for member in list(group.members):
            member.offer(first if n == 0 else SharedFrame(f"[{n}]"), 1, 0.0)
    with trio.fail_after(30):
        while live._GROUPS.get(engine):  # noqa: ASYNC110 - the feed gives up after SEND_DEADLINE
            await trio.sleep(0.05)
    with trio.fail_after(30):
        while client.closed is None:
            await client.pump(closing=True)
    assert client.texts == [first.text]
    assert (client.closed.code, client.closed.reason) == live.TOO_SLOW
    await client.stream.aclose()


async def test_deflate_subscribers_get_one_compressed_frame_per_window_size(server: str, api: Any, engine: Any,
                                                                           monkeypatch: Any) -> None:
    """One message per frame to two permessage-deflate clients that allowed different window sizes and a
    plain one: each gets the frame for its connection, all from one SharedFrame; then a per-execution feed,
    which sends no shared frames, keeps its compression context (wsproto compresses each message with the
    connection's compressor, far cheaper for small messages) and decodes too."""
    path = "/api/v1/ws?namespace=company.team&state=SUCCESS"
    calls = record_frames(monkeypatch)
    await api.flow(QUICK)
    small = await RawClient.open(server, path, deflate=PerMessageDeflate(server_max_window_bits=10))
    default = await RawClient.open(server, path, deflate=True)
    plain = await RawClient.open(server, path, deflate=False)
    assert small.accepted.extensions[0].server_max_window_bits == 10  # type: ignore[union-attr]
    with trio.fail_after(30):
        while len(engine.bus) < 3:  # noqa: ASYNC110 - the three subscriptions are open
            await trio.sleep(0.01)
    created = await api.execute("company.team", "quick")
    await api.wait(created["id"])
    clients = (small, default, plain)
    with trio.fail_after(30):
        for client in clients:
            while not client.texts:
                await client.pump()
    assert small.texts == default.texts == plain.texts
    assert json.loads(plain.texts[0])["execution"]["id"] == created["id"]
    messages = [shared for shared, _ in calls]
    assert len(messages) == 3 and messages[0] is messages[1] is messages[2]
    assert bytes(small.raw) == messages[0].deflated(10) and inflate(frames_of(bytes(small.raw))[0], 10) == small.texts[0]
    assert bytes(default.raw) == messages[0].deflated(15)
    assert bytes(plain.raw) == messages[0].frame
    for client in clients:
        await client.stream.aclose()

    running = await api.execute("company.team", "quick")
    follower = await RawClient.open(server, f"/api/v1/executions/{running['id']}/ws", deflate=True)
    assert not follower.accepted.extensions[0].server_no_context_takeover  # type: ignore[union-attr]
    ended: list[Any] = []
    with trio.fail_after(30):
        while not ended:
            try:
                await follower.pump()
            except AssertionError as closed:  # the feed ends with close 1000 after "end"
                assert "1000" in str(closed)
                break
            ended = [m for m in map(json.loads, follower.texts) if m["type"] == "end"]
    assert follower.texts and all(first == 0xC1 for first, _ in frames_of(bytes(follower.raw))[:len(follower.texts)])
    assert json.loads(follower.texts[-1])["type"] == "end"
    await follower.stream.aclose()
