"""The event bus: every execution / task-run change and log line, published to live subscribers.

Publishing never blocks and never allocates for nobody: :meth:`Bus.wants` tells the engine whether any
subscriber could match, so payloads are built only when someone listens. Each subscriber has a bounded
buffer; when it is full the oldest events are dropped and the next :meth:`Subscription.receive` raises
:class:`Overflow` once, so a slow websocket gets a fresh snapshot instead of growing memory without bound.

One event reaches every subscriber as the same object: :meth:`Event.shared` builds a rendering of it (a
websocket message) once and hands the same result to every subscriber, so fan-out costs one
serialisation per event, not one per subscriber.

The bus is for observers (websockets, SSE, embedders, ``wait``): orchestration (flow triggers, retries,
afterExecution, concurrency slots) never reads it — the engine drives it through its execution hooks, on the
node that runs the execution. In a cluster, events of executions that run on other nodes are published here
too (``remote=True``, see falconet/runtime/cluster/relay.py) and nowhere else.
"""
from __future__ import annotations

import collections
import dataclasses
from typing import Any, Callable, Iterable, Iterator

import trio

from falconet.runtime.kernel.clock import SYSTEM, Clock


@dataclasses.dataclass(frozen=True, slots=True)
class Event:
    kind: str            # "execution" | "taskrun" | "log"
    execution_id: str
    namespace: str
    flow_id: str
    state: str           # the execution's current state
    terminal: bool       # the execution is terminated (and not paused)
    data: dict[str, Any]  # execution JSON / TaskRun JSON / LogEntry JSON
    remote: bool = False  # relayed from the node that runs the execution (read back from the store)
    renderings: dict[str, Any] = dataclasses.field(default_factory=dict, compare=False, repr=False)

    def shared(self, key: str, render: Callable[["Event"], Any]) -> Any:
        """``render(self)``, computed once per event and ``key`` and shared by every subscriber."""
        try:
            return self.renderings[key]
        except KeyError:
            value = self.renderings[key] = render(self)
            return value


class Overflow(Exception):
    """Events were dropped because this subscriber did not keep up; re-snapshot and continue.

    ``since`` (epoch seconds, the engine clock's) is when the last event this subscriber received was published
    (when it subscribed if it received none): every dropped event was published after it.
    """

    def __init__(self, dropped: int, since: float):
        super().__init__(f"{dropped} events dropped: subscriber too slow")
        self.dropped = dropped
        self.since = since


class Subscription:
    """A bounded buffer of matching events. Use as a context manager (``with bus.subscribe(...) as sub``)."""

    def __init__(self, bus: "Bus", *, execution_id: str | None, namespace: str | None, flow_id: str | None,
                 kinds: frozenset[str], states: frozenset[str], max_buffer: int):
        self._bus = bus
        self.execution_id = execution_id
        self.namespace = namespace
        self.flow_id = flow_id
        self.kinds = kinds
        self.states = states
        self._buffer: collections.deque[tuple[float, Event]] = collections.deque()
        self._max = max_buffer
        self._dropped = 0
        self._received_until = bus.clock.timestamp()   # publish time of the last event handed out
        self._wakeup = trio.Event()
        self._closed = False

    def matches(self, kind: str, execution_id: str, namespace: str, flow_id: str) -> bool:
        if kind not in self.kinds:
            return False
        if self.execution_id is not None and self.execution_id != execution_id:
            return False
        if self.namespace is not None and not (namespace == self.namespace
                                               or namespace.startswith(self.namespace + ".")):
            return False
        if self.flow_id is not None and self.flow_id != flow_id:
            return False
        return True

    def push(self, published: float, event: Event) -> None:
        """Buffer an event (the :class:`Bus` calls this); the oldest is dropped when the buffer is full."""
        if len(self._buffer) >= self._max:
            self._buffer.popleft()
            self._dropped += 1
        self._buffer.append((published, event))
        self._wakeup.set()

    def lose(self) -> None:
        """Events may have been lost before reaching the bus: the next :meth:`receive` raises Overflow."""
        self._dropped += 1
        self._wakeup.set()

    def _next(self) -> Event | None:
        if self._dropped:
            dropped, self._dropped = self._dropped, 0
            raise Overflow(dropped, self._received_until)
        if self._buffer:
            self._received_until, event = self._buffer.popleft()
            return event
        return None

    async def receive(self) -> Event:
        """Next event (a checkpoint). Raises :class:`Overflow` once after events were dropped."""
        while True:
            event = self._next()
            if event is not None:
                return event
            if self._closed:
                raise trio.EndOfChannel
            self._wakeup = trio.Event()
            await self._wakeup.wait()

    def receive_nowait(self) -> Event:
        event = self._next()
        if event is None:
            raise trio.WouldBlock
        return event

    def pending(self) -> int:
        return len(self._buffer)

    @property
    def overflowed(self) -> bool:
        """Events were dropped since the last receive (the next one raises :class:`Overflow`)."""
        return self._dropped > 0

    def close(self) -> None:
        self._closed = True
        self._bus.unsubscribe(self)
        self._wakeup.set()

    def __enter__(self) -> "Subscription":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __aiter__(self) -> "Subscription":
        return self

    async def __anext__(self) -> Event:
        try:
            return await self.receive()
        except trio.EndOfChannel:
            raise StopAsyncIteration from None


class Bus:
    def __init__(self, clock: Clock = SYSTEM) -> None:
        self.clock = clock  # stamps publish times (see Overflow.since)
        self._subs: set[Subscription] = set()
        #: subscriptions by event kind: a kind nobody listens to costs nothing, however many subscribers
        self._by_kind: dict[str, set[Subscription]] = collections.defaultdict(set)

    def subscribe(self, *, execution_id: str | None = None, namespace: str | None = None,
                  flow_id: str | None = None, kinds: tuple[str, ...] = ("execution", "taskrun", "log"),
                  states: Iterable[str] = (), max_buffer: int = 1000) -> Subscription:
        """A subscription to the events of these kinds matching every filter given (``namespace`` is a
        prefix; ``states``, when given, keeps only the events whose execution is in one of them)."""
        sub = Subscription(self, execution_id=execution_id, namespace=namespace, flow_id=flow_id,
                           kinds=frozenset(kinds), states=frozenset(states), max_buffer=max_buffer)
        self._subs.add(sub)
        for kind in sub.kinds:
            self._by_kind[kind].add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        """Forget ``sub`` (:meth:`Subscription.close` calls this)."""
        self._subs.discard(sub)
        for kind in sub.kinds:
            self._by_kind[kind].discard(sub)

    def wants(self, kind: str, execution_id: str, namespace: str, flow_id: str, state: str | None = None) -> bool:
        """Whether any subscriber matches (cheap; lets publishers skip building payloads); with ``state``,
        whether one matches an event in that state (a subscriber to terminal states only does not make the
        engine build the documents of the states before)."""
        subs = self._by_kind.get(kind)
        if not subs:
            return False
        return any(s.matches(kind, execution_id, namespace, flow_id) and (state is None or not s.states
                                                                           or state in s.states) for s in subs)

    def publish(self, event: Event) -> None:
        """Deliver to every matching subscriber without blocking."""
        subs = self._by_kind.get(event.kind)
        if not subs:
            return
        published = self.clock.timestamp()
        for s in list(subs):
            if s.matches(event.kind, event.execution_id, event.namespace, event.flow_id) and (
                    not s.states or event.state in s.states):
                s.push(published, event)

    def signal_lost(self) -> None:
        """Events may have been lost upstream (a cluster node's notifications): every subscriber gets
        :class:`Overflow` once and re-reads what it follows from the store, as after its own overflow."""
        for s in list(self._subs):
            s.lose()

    def subscribers(self) -> Iterator[Subscription]:
        return iter(list(self._subs))

    def __len__(self) -> int:
        return len(self._subs)
