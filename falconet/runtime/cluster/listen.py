"""The node's LISTEN connection: PostgreSQL notifications handed to trio.

One dedicated psycopg connection per node (autocommit) waits in ``Connection.notifies(timeout=…)`` on a worker
thread; every notification is handed to the trio loop (``TrioToken.run_sync_soon``, never blocking the
thread) and buffered for the subscribers of its channel. A second, small connection sends notifications
(``pg_notify``) and wakes the waiting thread when the set of channels changes or the listener stops, so
subscribing and shutting down do not wait for the poll timeout.

When the connection drops, the listener reconnects with a capped exponential backoff, listens to every
subscribed channel again and then raises :class:`NotificationsMissed` once in every subscription: whatever
was notified while it was disconnected is lost, so subscribers re-read the state they follow from the store.
A subscription whose bounded buffer overflows gets the same signal.

Usage::

    async with open_listener(url) as listener:
        async with listener.subscribe("falconet_events") as sub:
            async for payload in sub:          # NotificationsMissed: resync from the store
                ...
        await listener.notify("falconet_events", "…")
"""
from __future__ import annotations

import collections
import contextlib
import logging
import re
import threading
import uuid
from typing import Any, AsyncIterator

import trio

__all__ = ["Listener", "NotificationsMissed", "ChannelSubscription", "open_listener", "MAX_PAYLOAD"]

log = logging.getLogger(__name__)

#: PostgreSQL refuses NOTIFY payloads of 8000 bytes or more
MAX_PAYLOAD = 7999
#: channels are plain lower-case identifiers (LISTEN takes an identifier, not a string)
_CHANNEL = re.compile(r"[a-z_][a-z0-9_]{0,62}")


class NotificationsMissed(Exception):
    """Notifications of this channel may have been lost (the connection dropped, or this subscriber did not
    keep up); re-read what you follow from the store, then continue receiving."""


class ChannelSubscription:
    """A bounded buffer of one channel's payloads; :meth:`receive` raises :class:`NotificationsMissed` once
    after payloads were lost. Created by :meth:`Listener.subscribe`."""

    def __init__(self, channel: str, max_buffer: int) -> None:
        self.channel = channel
        self._buffer: collections.deque[str] = collections.deque()
        self._max = max_buffer
        self._missed = False
        self._wakeup = trio.Event()
        self._closed = False

    def push(self, payload: str) -> None:
        """Buffer a payload (the :class:`Listener` calls this); a full buffer is replaced by the missed signal."""
        if len(self._buffer) >= self._max:
            self._buffer.clear()    # a resync from the store replaces them all
            self._missed = True
        else:
            self._buffer.append(payload)
        self._wakeup.set()

    def signal_missed(self) -> None:
        """Drop what is buffered; the next :meth:`receive` raises NotificationsMissed."""
        self._buffer.clear()
        self._missed = True
        self._wakeup.set()

    def receive_nowait(self) -> str:
        """The next payload; trio.WouldBlock when there is none yet, NotificationsMissed once after a loss."""
        if self._missed:
            self._missed = False
            raise NotificationsMissed(self.channel)
        if self._buffer:
            return self._buffer.popleft()
        if self._closed:
            raise trio.EndOfChannel
        raise trio.WouldBlock

    async def receive(self) -> str:
        """The next payload (a checkpoint); NotificationsMissed once after payloads were lost."""
        await trio.lowlevel.checkpoint_if_cancelled()
        while True:
            try:
                return self.receive_nowait()
            except trio.WouldBlock:
                self._wakeup = trio.Event()
                await self._wakeup.wait()

    def pending(self) -> int:
        return len(self._buffer)

    @property
    def missed(self) -> bool:
        """The next receive raises NotificationsMissed."""
        return self._missed

    def close(self) -> None:
        """No more payloads: receive raises trio.EndOfChannel once the buffer is drained."""
        self._closed = True
        self._wakeup.set()

    def __aiter__(self) -> "ChannelSubscription":
        return self

    async def __anext__(self) -> str:
        try:
            return await self.receive()
        except trio.EndOfChannel:
            raise StopAsyncIteration from None


class Listener:
    """LISTEN/NOTIFY for one node on the database at ``url`` (a ``postgresql://`` URL). Run :meth:`run` in a
    nursery (or use :func:`open_listener`); cancelling it closes both connections and joins the thread."""

    def __init__(self, url: str, *, poll_timeout: float = 1.0, max_backoff: float = 5.0,
                 connect_timeout: int = 10) -> None:
        self.url = url
        self.poll_timeout = poll_timeout      # the thread's wait when no wake-up notification can be sent
        self.max_backoff = max_backoff
        self.connect_timeout = connect_timeout
        #: private channel that wakes this listener's own thread (channel set changed, stopping)
        self._wake_channel = f"falconet_wake_{uuid.uuid4().hex}"
        self._subs: dict[str, set[ChannelSubscription]] = collections.defaultdict(set)
        # channels the thread must listen to; guarded by _lock (read by the thread, written by trio)
        self._lock = threading.Lock()
        self._wanted: set[str] = set()
        self._stop = threading.Event()
        self._listening: set[str] = set()     # channels LISTENed on the current connection (trio side)
        self._changed = trio.Event()          # set whenever _listening changes or the connection state does
        self.connected = False
        self.reconnects = 0                   # connections made after the first one
        self._send_conn: Any = None
        self._send_lock = trio.Lock()
        self._lost: BaseException | None = None   # why the last connection ended (None: stopped)
        self._pumping = False                     # the worker thread is running
        self.backend_pid: int | None = None       # server process of the LISTEN connection

    #### trio API

    @contextlib.asynccontextmanager
    async def subscribe(self, channel: str, *, max_buffer: int = 10_000) -> AsyncIterator[ChannelSubscription]:
        """Subscribe to ``channel``; on entry the channel is being listened to (or, when the connection is
        down, the subscription will get NotificationsMissed once it is back)."""
        if not _CHANNEL.fullmatch(channel):
            raise ValueError(f"invalid channel name {channel!r}")
        sub = ChannelSubscription(channel, max_buffer)
        self._subs[channel].add(sub)
        try:
            if channel not in self._listening:
                with self._lock:
                    self._wanted.add(channel)
                await self._wake()
                while self.connected and channel not in self._listening:
                    await self._changed.wait()
            yield sub
        finally:
            sub.close()
            subs = self._subs.get(channel)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del self._subs[channel]
                    with self._lock:
                        self._wanted.discard(channel)

    async def notify(self, channel: str, payload: str) -> None:
        """``pg_notify(channel, payload)`` on the sending connection (delivered to every listener of the
        database, this one included). ValueError when the payload is too long; psycopg.Error when the
        database cannot be reached."""
        if len(payload.encode()) > MAX_PAYLOAD:
            raise ValueError(f"NOTIFY payload of {len(payload.encode())} bytes (at most {MAX_PAYLOAD})")
        if not _CHANNEL.fullmatch(channel):
            raise ValueError(f"invalid channel name {channel!r}")
        await self._send(channel, payload)

    async def _send(self, channel: str, payload: str) -> None:
        import psycopg

        async with self._send_lock:
            for attempt in (1, 2):   # a dropped sending connection is reopened once
                try:
                    if self._send_conn is None or self._send_conn.closed:
                        self._send_conn = await trio.to_thread.run_sync(self._connect)
                    conn = self._send_conn
                    await trio.to_thread.run_sync(conn.execute, "SELECT pg_notify(%s, %s)", (channel, payload))
                    return
                except psycopg.OperationalError:
                    if self._send_conn is not None:
                        self._send_conn.close()
                    self._send_conn = None
                    if attempt == 2:
                        raise

    async def _wake(self) -> None:
        """Interrupt the thread's wait (best effort: it also wakes up every ``poll_timeout``)."""
        import psycopg

        if not self.connected:
            return
        try:
            await self._send(self._wake_channel, "")
        except psycopg.Error as exc:
            log.debug("listener wake-up not sent: %s", exc)

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Keep the LISTEN connection up until cancelled (reconnecting with backoff); ``task_status.started()``
        once the first connection listens. On cancellation the thread is stopped and joined."""
        import psycopg

        token = trio.lowlevel.current_trio_token()
        started = False
        backoff = 0.1
        try:
            while True:
                try:
                    conn = await trio.to_thread.run_sync(self._connect)
                except psycopg.Error as exc:
                    if not started:
                        raise
                    log.warning("LISTEN connection failed (%s); retrying in %.1f s", _first_line(exc), backoff)
                    await trio.sleep(backoff)
                    backoff = min(backoff * 2, self.max_backoff)
                    continue
                self._stop.clear()
                self._lost = None
                try:
                    async with trio.open_nursery() as nursery:
                        ready = trio.Event()
                        nursery.start_soon(self._stop_on_cancel)
                        nursery.start_soon(self._pump_thread, conn, token, ready, nursery.cancel_scope)
                        await ready.wait()
                        backoff = 0.1
                        if started:
                            self.reconnects += 1
                            for subs in self._subs.values():
                                for sub in subs:
                                    sub.signal_missed()
                        else:
                            started = True
                            task_status.started()
                finally:
                    self.connected = False
                    self._set_listening(set())
                    with contextlib.suppress(psycopg.Error):
                        conn.close()
                if self._lost is not None:
                    log.warning("LISTEN connection lost (%s); reconnecting", _first_line(self._lost))
                    await trio.sleep(backoff)
                    backoff = min(backoff * 2, self.max_backoff)
        finally:
            if self._send_conn is not None:
                with contextlib.suppress(psycopg.Error):
                    self._send_conn.close()
                self._send_conn = None

    #### internals

    def _connect(self) -> Any:
        import psycopg

        return psycopg.connect(self.url, autocommit=True, connect_timeout=self.connect_timeout,
                               application_name="falconet-listen")

    async def _stop_on_cancel(self) -> None:
        """Sibling of the pump: when the nursery is cancelled, tell the thread to stop and wake it."""
        try:
            await trio.sleep_forever()
        finally:
            self._stop.set()
            if self._pumping:    # the thread still waits: wake it (it would also stop after poll_timeout)
                with trio.CancelScope(shield=True):
                    with trio.move_on_after(1):
                        await self._wake()

    async def _pump_thread(self, conn: Any, token: trio.lowlevel.TrioToken, ready: trio.Event,
                           scope: trio.CancelScope) -> None:
        self._pumping = True
        try:
            # a limiter of its own: the thread runs for the connection's life, not on trio's shared tokens
            await trio.to_thread.run_sync(self._pump, conn, token, ready, limiter=trio.CapacityLimiter(1))
        except Exception as exc:     # the connection dropped: reconnect
            self._lost = exc
        finally:
            self._pumping = False
        scope.cancel(reason="LISTEN connection ended")

    def _set_listening(self, channels: set[str]) -> None:
        self._listening = channels
        self._changed.set()
        self._changed = trio.Event()

    def _set_connected(self, ready: trio.Event) -> None:
        self.connected = True
        ready.set()

    def _deliver(self, channel: str, payload: str) -> None:
        for sub in self._subs.get(channel, ()):
            sub.push(payload)

    def _pump(self, conn: Any, token: trio.lowlevel.TrioToken, ready: trio.Event) -> None:
        """The worker thread: keep LISTEN in step with the wanted channels, wait, hand notifications over."""
        from psycopg import sql

        listening: set[str] = set()
        self.backend_pid = conn.info.backend_pid
        conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self._wake_channel)))
        first = True
        while not self._stop.is_set():
            with self._lock:
                wanted = set(self._wanted)
            if wanted != listening or first:
                for channel in wanted - listening:
                    conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
                for channel in listening - wanted:
                    conn.execute(sql.SQL("UNLISTEN {}").format(sql.Identifier(channel)))
                listening = wanted
                token.run_sync_soon(self._set_listening, set(wanted))
                if first:
                    token.run_sync_soon(self._set_connected, ready)
                    first = False
            # stop_after=1 returns after one whole batch (breaking out of the generator would drop the rest)
            for n in conn.notifies(timeout=self.poll_timeout, stop_after=1):
                if n.channel != self._wake_channel:
                    token.run_sync_soon(self._deliver, n.channel, n.payload)


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


@contextlib.asynccontextmanager
async def open_listener(url: str, **kw: Any) -> AsyncIterator[Listener]:
    """A running :class:`Listener` (connected and listening on entry; raises psycopg.Error when the first
    connection fails); stopped on exit."""
    listener = Listener(url, **kw)
    async with trio.open_nursery() as nursery:
        await nursery.start(listener.run)
        yield listener
        nursery.cancel_scope.cancel(reason="listener closed")
