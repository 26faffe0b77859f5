"""Live updates: Kestra's SSE follows, and Falconet's websockets.

SSE (Kestra's protocol; the event kind is in the SSE ``id:`` field, the JSON in ``data:``)

- ``GET /executions/{id}/follow``: ``id: start`` (the execution), ``id: progress`` per change, ``id: end``
  with the final execution, then the stream closes. Already terminated (and not paused): one ``end``.
- ``GET /logs/{id}/follow?minLevel=``: the stored log lines, then live ones, each ``id: progress``
  (data = LogEntry); it never ends by itself.

Websockets (Falconet's own protocol, one JSON text message per frame)

- ``/executions/{id}/ws``::

      {"type": "execution", "execution": {...}}                 first: a snapshot
      {"type": "taskrun", "executionId": id, "taskRun": {...}}  per task-run change, in order
      {"type": "execution", "execution": {...}}                 per execution state change, and at most
                                                                every 250 ms while task runs change
      {"type": "log", "log": {...}}                             per log line
      {"type": "end", "execution": {...}}                       last; then close code 1000

- ``/ws?namespace=&flowId=&state=``: ``{"type": "execution", "execution": {...}}`` per execution state
  change of the matching executions (``namespace`` is a prefix, ``state`` filters on the new state and
  may repeat); it never ends by itself. Each change is serialised and encoded once, whatever the number
  of subscribers (:meth:`Event.shared <falconet.runtime.kernel.bus.Event.shared>`, :class:`SharedFrame`:
  the same frame bytes go to every connection without a websocket extension, and the same compressed
  frame to every permessage-deflate connection with the same window size).

Back-pressure: each subscriber reads the engine's bus through a bounded buffer (``BUFFER`` events). The
bus never waits for a subscriber; when a buffer overflows, its oldest events are dropped and the
subscriber is told once (``Overflow``): the pending deltas are then replaced by one fresh snapshot
(per-execution feeds) or, on ``/ws``, by fresh snapshots of the running matching executions and of those
that ended since the last event the subscriber received — so every subscriber sees every terminal
state, even one whose change was dropped. A websocket
client that does not take a message within ``SEND_DEADLINE`` seconds is given up on: its subscription
is closed at once (nothing more is buffered for it) and the close frame 1013 ``subscriber too slow``
is queued behind the one message its socket is stuck on (see :class:`Outbox` for why a socket write
cannot be abandoned): a client that reads again gets it; one that never reads holds a socket and one
message until it goes away.
"""
from __future__ import annotations

import math
import weakref
from contextlib import aclosing
from datetime import datetime, timezone
from typing import Any, AsyncGenerator, AsyncIterator

import trio
from quart import Blueprint, Response, request, websocket

from falconet.runtime.kernel.bus import Overflow
from falconet.runtime.kernel.errors import InvalidEntity, NotFound
from falconet.runtime.kernel.execution import parse_instant
from falconet.runtime.kernel.state import State
from falconet.sdk.logs import LogLevel
from falconet.runtime.store.base import ExecutionQuery, LogQuery
from falconet.http.api import params
from falconet.http.api.common import dumps, engine, public_execution, public_task_run, with_tenant
from falconet.http.wsframes import WS_FRAMES, SharedFrame

bp = Blueprint("live", __name__)

BUFFER = 1000
SNAPSHOT_INTERVAL = 0.25
SEND_DEADLINE = 10.0
CLOSE_DEADLINE = 1.0
FOLLOW_LOOKUP = 10.0          # Kestra retries the execution lookup for up to 10 s …
FOLLOW_LOOKUP_INTERVAL = 0.5  # … every 500 ms
TOO_SLOW = (1013, "subscriber too slow")


def is_final(doc: dict[str, Any]) -> bool:
    """Terminated and not paused (Kestra's stop condition for follow and ``wait``)."""
    current = State(doc["state"]["current"])
    return current.is_terminated and current is not State.PAUSED


#### The per-execution feed #################################################################################

async def execution_feed(eng: Any, execution_id: str, sub: Any, *, taskruns: bool,
                         logs: bool) -> AsyncGenerator[tuple[str, Any], None]:
    """Messages for one execution, from a subscription opened *before* this is iterated (so nothing
    between the snapshot and the first event is lost; duplicates are harmless):

    ``("snapshot", execution)`` first; then ``("taskrun", taskRun)``, ``("log", entry)``,
    ``("execution", execution)``; last ``("end", execution)``. An execution deleted meanwhile ends the
    feed without ``end``. Every ``yield`` is outside any cancel scope (async-generator safe).
    """
    doc = await eng.get_execution(execution_id)
    if doc is None:
        return
    yield "snapshot", public_execution(doc)
    if is_final(doc):
        yield "end", public_execution(doc)
        return
    dirty = False
    last_snapshot = trio.current_time()
    while True:
        wait = last_snapshot + SNAPSHOT_INTERVAL - trio.current_time() if dirty else math.inf
        event, lost = None, False
        with trio.move_on_after(max(wait, 0)):
            try:
                event = await sub.receive()
            except Overflow:
                lost = True
        if event is None:  # a tick with pending task-run changes, or buffer overflow: a fresh snapshot
            if not (dirty or lost):
                continue
            doc = await eng.get_execution(execution_id)
            if doc is None:
                return
            dirty, last_snapshot = False, trio.current_time()
            if is_final(doc):
                yield "end", public_execution(doc)
                return
            yield "execution", public_execution(doc)
            continue
        if event.kind == "execution":
            if event.terminal:
                yield "end", public_execution(event.data)
                return
            dirty, last_snapshot = False, trio.current_time()
            yield "execution", public_execution(event.data)
        elif event.kind == "taskrun":
            dirty = True
            if taskruns:
                yield "taskrun", public_task_run(event.data)
        elif event.kind == "log" and logs:
            yield "log", with_tenant(event.data)


#### SSE ####################################################################################################

def sse(event_id: str, data: Any) -> bytes:
    return f"id: {event_id}\ndata: {dumps(data)}\n\n".encode("utf-8")


def sse_response(body: AsyncIterator[bytes]) -> Response:
    response = Response(body, status=200, content_type="text/event-stream")
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Accel-Buffering"] = "no"
    response.timeout = None
    return response


async def _lookup(execution_id: str) -> dict[str, Any]:
    """The execution, retried for up to ``FOLLOW_LOOKUP`` seconds as Kestra does; NotFound after."""
    eng = engine()
    with trio.move_on_after(FOLLOW_LOOKUP):
        while True:
            doc = await eng.get_execution(execution_id)
            if doc is not None:
                return doc
            await trio.sleep(FOLLOW_LOOKUP_INTERVAL)
    raise NotFound(f"Unable to find execution '{execution_id}'")


@bp.get("/executions/<execution_id>/follow")
async def follow_execution(execution_id: str) -> Any:
    await _lookup(execution_id)
    eng = engine()

    async def events() -> AsyncIterator[bytes]:
        with eng.bus.subscribe(execution_id=execution_id, max_buffer=BUFFER) as sub:
            feed = execution_feed(eng, execution_id, sub, taskruns=False, logs=False)
            async with aclosing(feed):
                async for kind, data in feed:
                    if kind == "snapshot":
                        if is_final(data):
                            continue  # already over: the single `end` follows
                        yield sse("start", data)
                    elif kind == "end":
                        yield sse("end", data)
                        return
                    else:
                        yield sse("progress", data)

    return sse_response(events())


def _log_key(entry: dict[str, Any]) -> tuple[Any, ...]:
    return (entry.get("timestamp"), entry.get("taskRunId"), entry.get("attemptNumber"), entry.get("level"),
            entry.get("message"))


@bp.get("/logs/<execution_id>/follow")
async def follow_logs(execution_id: str) -> Any:
    """Stored lines, then live ones; a live line already sent from the store is skipped."""
    min_level = params.opt_level(request.args)
    floor = LogLevel[min_level] if min_level else LogLevel.TRACE
    eng = engine()

    async def stored(since: str | None) -> list[dict[str, Any]]:
        query = LogQuery(execution_id=execution_id, min_level=min_level)
        entries, _ = await eng.store.get_logs(query)
        return [e for e in entries if since is None or (e.get("timestamp") or "") >= since]

    async def events() -> AsyncIterator[bytes]:
        sent: set[tuple[Any, ...]] = set()
        last_ts: str | None = None
        with eng.bus.subscribe(execution_id=execution_id, max_buffer=BUFFER) as sub:
            pending = await stored(None)
            while True:
                for entry in pending:
                    key = _log_key(entry)
                    if key in sent:
                        continue
                    ts = entry.get("timestamp") or ""
                    if last_ts is None or ts > last_ts:
                        sent = {k for k in sent if (k[0] or "") >= ts}  # only keys at the newest instant matter
                        last_ts = ts
                    sent.add(key)
                    yield sse("progress", with_tenant(entry))
                try:
                    event = await sub.receive()
                except Overflow:
                    pending = await stored(last_ts)  # what the dropped events carried is in the store
                    continue
                if event.kind == "log" and (LogLevel.parse(event.data.get("level")) or LogLevel.TRACE) >= floor:
                    pending = [event.data]
                else:
                    pending = []

    return sse_response(events())


#### Websockets #############################################################################################

class SubscriberTooSlow(Exception):
    """The client did not take a message within SEND_DEADLINE."""


class Outbox:
    """The feed side of a websocket: hands messages one at a time to a writer task.

    hypercorn writes to the socket inside a *shielded* scope, so a send to a client that stopped
    reading can neither finish nor be cancelled. The writer task absorbs that wait; the feed only
    waits (at most SEND_DEADLINE) for the writer to take the next message. A feed that gives up leaves
    its ``with bus.subscribe(...)`` block at once — the subscription, its buffer and the feed are
    released — while the writer stays parked on its one message until the client reads or goes away,
    then sends the close frame (1013 ``subscriber too slow``; 1000 after a normal end).
    """

    def __init__(self, channel: trio.MemorySendChannel[str | SharedFrame]):
        self._channel = channel

    async def send(self, message: dict[str, Any] | str | SharedFrame) -> None:
        """Send one message: a JSON-able dict, its text already serialised, or a frame shared by
        subscribers."""
        text = message if isinstance(message, (str, SharedFrame)) else dumps(message)
        if self.send_nowait(text):  # the writer was waiting: no deadline to arm
            return
        with trio.move_on_after(SEND_DEADLINE):
            await self._channel.send(text)
            return
        raise SubscriberTooSlow()

    def send_nowait(self, message: str | SharedFrame) -> bool:
        """Hand a message to the writer if it is waiting for one (what :meth:`send` would do at once);
        False when it is busy."""
        try:
            self._channel.send_nowait(message)
        except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
            return False
        return True


async def serve_websocket(feed: Any, *, shared: bool = False) -> None:
    """Accept, then run ``await feed(outbox)`` with a writer task; close with 1000 when the feed
    returns, 1013 when it raised :class:`SubscriberTooSlow`, 4xxx codes it chose itself otherwise.

    A :class:`SharedFrame` is written as its frame, encoded once for every subscriber, where the server
    offers it (``WS_FRAMES``) and the connection takes it; otherwise as its text, like any message.
    ``shared``: the feed sends shared frames, so the server is told before the handshake (a
    permessage-deflate connection then takes them compressed once, see ``falconet/http/wsframes.py``)."""
    # the request's Websocket itself, for the writer task (quart types the context proxy as the object)
    ws = websocket._get_current_object()  # type: ignore[attr-defined]
    frames = (ws.scope.get("extensions") or {}).get(WS_FRAMES) or {}
    send_frame = frames.get("send")
    if shared and send_frame is not None:
        frames["shared"] = True
    send_channel, receive_channel = trio.open_memory_channel[str | SharedFrame](0)
    outcome: dict[str, tuple[int, str | None]] = {"close": (1000, None)}

    async def writer() -> None:
        async with receive_channel:
            async for message in receive_channel:
                if isinstance(message, SharedFrame):
                    if send_frame is None or not await send_frame(message):
                        await ws.send(message.text)
                else:
                    await ws.send(message)
        code, reason = outcome["close"]
        with trio.move_on_after(CLOSE_DEADLINE):
            await ws.close(code, reason)

    await ws.accept()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(writer)
        async with send_channel:
            try:
                result = await feed(Outbox(send_channel))
                if result is not None:
                    outcome["close"] = result
            except SubscriberTooSlow:
                outcome["close"] = TOO_SLOW


@bp.websocket("/executions/<execution_id>/ws")
async def execution_ws(execution_id: str) -> Any:
    eng = engine()

    async def feed(out: Outbox) -> tuple[int, str] | None:
        if await eng.get_execution(execution_id) is None:
            return 4404, f"execution '{execution_id}' not found"
        with eng.bus.subscribe(execution_id=execution_id, max_buffer=BUFFER) as sub:
            messages = execution_feed(eng, execution_id, sub, taskruns=True, logs=True)
            async with aclosing(messages):
                async for kind, data in messages:
                    if kind in ("snapshot", "execution"):
                        await out.send({"type": "execution", "execution": data})
                    elif kind == "taskrun":
                        await out.send({"type": "taskrun", "executionId": execution_id, "taskRun": data})
                    elif kind == "log":
                        await out.send({"type": "log", "log": data})
                    elif kind == "end":
                        await out.send({"type": "end", "execution": data})
        return None  # ended (or the execution was deleted while followed): close 1000

    await serve_websocket(feed)


def _matches(doc: dict[str, Any], namespace: str | None, flow_id: str | None, states: list[str]) -> bool:
    ns = doc.get("namespace") or ""
    if namespace and not (ns == namespace or ns.startswith(namespace + ".")):
        return False
    if flow_id and doc.get("flowId") != flow_id:
        return False
    return not states or doc["state"]["current"] in states


@bp.websocket("/ws")
async def executions_ws() -> Any:
    args = websocket.args
    eng = engine()

    async def feed(out: Outbox) -> tuple[int, str] | None:
        namespace = params.opt_str(args, "namespace")
        flow_id = params.opt_str(args, "flowId")
        try:
            states = params.parse_states(args.getlist("state"))
        except InvalidEntity as exc:
            return 4422, str(exc)[:120]
        try:
            batch = params.opt_bool(args, "batch", False)
        except InvalidEntity as exc:
            return 4422, str(exc)[:120]
        if batch:
            await _batched_feed(eng, out, namespace, flow_id, states)
            return None
        with eng.bus.subscribe(flow_id=flow_id, namespace=namespace, kinds=("execution",), states=states,
                               max_buffer=BUFFER) as sub:
            while True:
                for message in await _next_messages(eng, sub, namespace, flow_id, states, wait=True):
                    await out.send(message)

    await serve_websocket(feed, shared=True)


#### batch=true: one frame per window, built once for every subscriber with the same filters #############

#: seconds a ``batch=true`` subscriber of ``/api/v1/ws`` gathers messages before they go in one frame
BATCH_WINDOW = 0.25
#: frames queued for one ``batch=true`` subscriber; when its queue is full, it misses frames and gets a
#: resync (as after an overflow) once it reads again
MEMBER_FRAMES = 8


class _Member:
    """One ``batch=true`` websocket of a :class:`_Group`: its queue of frames, and what it missed.

    A frame goes straight to the websocket's writer when the writer and the member's feed are both idle
    (the feed waits on an empty queue, so nothing is ahead of it): what the feed would do at once, one
    task switch fewer per subscriber and frame."""

    def __init__(self, out: Outbox) -> None:
        self.out = out
        self.send, self.frames = trio.open_memory_channel[SharedFrame](MEMBER_FRAMES)
        self.missed = 0            # messages in the frames it missed
        self.received_until = 0.0  # drain time of the last frame queued for it (``Overflow.since``)

    def offer(self, frame: SharedFrame, messages: int, drained_at: float) -> None:
        if (not self.missed and self.frames.statistics().tasks_waiting_receive
                and self.out.send_nowait(frame)):
            self.received_until = drained_at
            return
        try:
            self.send.send_nowait(frame)
        except trio.WouldBlock:
            self.missed += messages
            return
        if not self.missed:
            self.received_until = drained_at


class _Group:
    """The ``batch=true`` subscribers of one filter: each window's messages are drained from one bus
    subscription and joined into one frame, built (and encoded, :class:`SharedFrame`) once for every
    member — what remains per subscriber is writing the frame's bytes to its socket."""

    def __init__(self, eng: Any, key: tuple[Any, ...], namespace: str | None, flow_id: str | None,
                 states: list[str]):
        self.eng, self.key = eng, key
        self.namespace, self.flow_id, self.states = namespace, flow_id, states
        self.members: set[_Member] = set()
        self.cancel = trio.CancelScope()
        # subscribed now, not when the task starts: the first member misses nothing
        self.sub = eng.bus.subscribe(flow_id=flow_id, namespace=namespace, kinds=("execution",), states=states,
                                     max_buffer=BUFFER)

    async def run(self) -> None:
        with self.sub, self.cancel:
            while True:
                messages = await _next_messages(self.eng, self.sub, self.namespace, self.flow_id, self.states,
                                                wait=True)
                await trio.sleep(BATCH_WINDOW)
                drained_at = self.eng.bus.clock.timestamp()
                while self.sub.pending() or self.sub.overflowed:
                    messages += await _next_messages(self.eng, self.sub, self.namespace, self.flow_id,
                                                     self.states, wait=False)
                if messages:
                    frame = SharedFrame("[" + ",".join(m.text for m in messages) + "]")
                    for member in list(self.members):
                        member.offer(frame, len(messages), drained_at)


_GROUPS: "weakref.WeakKeyDictionary[Any, dict[tuple[Any, ...], _Group]]" = weakref.WeakKeyDictionary()


async def _batched_feed(eng: Any, out: Outbox, namespace: str | None, flow_id: str | None,
                        states: list[str]) -> None:
    groups = _GROUPS.setdefault(eng, {})
    key = (namespace, flow_id, tuple(sorted(states)))
    group = groups.get(key)
    if group is None:
        group = groups[key] = _Group(eng, key, namespace, flow_id, states)
        eng.spawn(group.run)
    member = _Member(out)
    member.received_until = eng.bus.clock.timestamp()
    group.members.add(member)
    try:
        async with member.frames:
            async for frame in member.frames:
                await out.send(frame)
                if member.missed and not member.frames.statistics().current_buffer_used:
                    missed, member.missed = member.missed, 0
                    docs = await _resync(eng, namespace, flow_id, states, member.received_until, missed)
                    if docs:
                        await out.send("[" + ",".join(dumps({"type": "execution", "execution": doc})
                                                      for doc in docs) + "]")
    finally:
        group.members.discard(member)
        if not group.members and groups.get(key) is group:
            del groups[key]
            group.cancel.cancel()


async def _next_messages(eng: Any, sub: Any, namespace: str | None, flow_id: str | None, states: list[str], *,
                         wait: bool) -> list[SharedFrame]:
    """The serialised messages of the subscription's next event (none when it does not match; the same
    :class:`SharedFrame` for every subscriber), or of the fresh documents replacing the events dropped
    after an overflow."""
    try:
        event = await sub.receive() if wait else sub.receive_nowait()
    except Overflow as lost:
        docs = await _resync(eng, namespace, flow_id, states, lost.since, lost.dropped)
        return [SharedFrame(dumps({"type": "execution", "execution": doc})) for doc in docs]
    if _matches(event.data, namespace, flow_id, states):
        return [event.shared("ws", _shared_message)]
    return []


def _shared_message(event: Any) -> SharedFrame:
    return SharedFrame(_execution_message(event))


def _execution_message(event: Any) -> str:
    return dumps({"type": "execution", "execution": public_execution(event.data)})


#: seconds before ``Overflow.since`` still searched for ended executions: an endDate is stamped just
#: before its event is published, so it may precede the publish time of an earlier event
RESYNC_MARGIN = 1.0


async def _resync(eng: Any, namespace: str | None, flow_id: str | None, states: list[str], since: float,
                  dropped: int) -> list[dict[str, Any]]:
    """After an overflow: fresh documents of the matching executions that are running, then of those
    that ended at or after ``since`` (oldest first). At most ``dropped + BUFFER`` ended ones are looked
    at: each execution that ended unseen cost this subscriber at least one dropped event."""
    terminal = [s.value for s in State if s.is_terminated]
    live = [s.value for s in State if not s.is_terminated]
    query = ExecutionQuery(namespace=namespace, flow_id=flow_id, states=[s for s in live if not states or s in states],
                           page=1, size=BUFFER)
    running, _ = await eng.store.search_executions(query)
    ended: list[dict[str, Any]] = []
    wanted = [s for s in terminal if not states or s in states]
    if wanted:
        cutoff = datetime.fromtimestamp(since - RESYNC_MARGIN, timezone.utc)
        limit, page = dropped + BUFFER, 1
        while len(ended) < limit:
            query = ExecutionQuery(namespace=namespace, flow_id=flow_id, states=wanted, page=page, size=BUFFER,
                                   sort=["state.endDate:desc"])
            docs, _ = await eng.store.search_executions(query)
            recent = [d for d in docs
                      if not d["state"].get("endDate") or parse_instant(d["state"]["endDate"]) >= cutoff]
            ended.extend(recent[:limit - len(ended)])
            if len(recent) < len(docs) or len(docs) < BUFFER:
                break
            page += 1
    out, seen = [], set()
    for doc in [*running, *reversed(ended)]:
        if doc["id"] in seen:
            continue
        seen.add(doc["id"])
        fresh = await eng.get_execution(doc["id"])
        if fresh is not None and _matches(fresh, namespace, flow_id, states):
            out.append(public_execution(fresh))
    return out
