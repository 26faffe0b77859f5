"""The event bus: every execution / task-run change and log line, published to live subscribers.

Publishing never blocks and never allocates for nobody: :meth:`Bus.wants` tells the engine whether any
subscriber could match, so payloads are built only when someone listens. Each subscriber has a bounded
buffer; when it is full the oldest events are dropped and the next :meth:`Subscription.receive` raises
:class:`Overflow` once, so a slow websocket gets a fresh snapshot instead of growing memory without bound.
"""
from __future__ import annotations

import collections
import dataclasses
from typing import Any, Iterator

import trio


@dataclasses.dataclass(frozen=True, slots=True)
class Event:
    kind: str            # "execution" | "taskrun" | "log"
    execution_id: str
    namespace: str
    flow_id: str
    state: str           # the execution's current state
    terminal: bool       # the execution is terminated (and not paused)
    data: dict[str, Any]  # execution JSON / TaskRun JSON / LogEntry JSON


class Overflow(Exception):
    """Events were dropped because this subscriber did not keep up; re-snapshot and continue."""

    def __init__(self, dropped: int):
        super().__init__(f"{dropped} events dropped: subscriber too slow")
        self.dropped = dropped


class Subscription:
    """A bounded buffer of matching events. Use as a context manager (``with bus.subscribe(...) as sub``)."""

    def __init__(self, bus: "Bus", *, execution_id: str | None, namespace: str | None, flow_id: str | None,
                 kinds: frozenset[str], max_buffer: int):
        self._bus = bus
        self.execution_id = execution_id
        self.namespace = namespace
        self.flow_id = flow_id
        self.kinds = kinds
        self._buffer: collections.deque[Event] = collections.deque()
        self._max = max_buffer
        self._dropped = 0
        self._wakeup = trio.Event()
        self._closed = False

    def matches(self, kind: str, execution_id: str, namespace: str, flow_id: str) -> bool:
        if kind not in self.kinds:
            return False
        if self.execution_id is not None and self.execution_id != execution_id:
            return False
        if self.namespace is not None and not (namespace == self.namespace or namespace.startswith(self.namespace + ".")):
            return False
        if self.flow_id is not None and self.flow_id != flow_id:
            return False
        return True

    def _push(self, event: Event) -> None:
        if len(self._buffer) >= self._max:
            self._buffer.popleft()
            self._dropped += 1
        self._buffer.append(event)
        self._wakeup.set()

    async def receive(self) -> Event:
        """Next event (a checkpoint). Raises :class:`Overflow` once after events were dropped."""
        while True:
            if self._dropped:
                dropped, self._dropped = self._dropped, 0
                raise Overflow(dropped)
            if self._buffer:
                return self._buffer.popleft()
            if self._closed:
                raise trio.EndOfChannel
            self._wakeup = trio.Event()
            await self._wakeup.wait()

    def receive_nowait(self) -> Event:
        if self._dropped:
            dropped, self._dropped = self._dropped, 0
            raise Overflow(dropped)
        if self._buffer:
            return self._buffer.popleft()
        raise trio.WouldBlock

    def pending(self) -> int:
        return len(self._buffer)

    def close(self) -> None:
        self._closed = True
        self._bus._subs.discard(self)
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
    def __init__(self) -> None:
        self._subs: set[Subscription] = set()

    def subscribe(self, *, execution_id: str | None = None, namespace: str | None = None,
                  flow_id: str | None = None, kinds: tuple[str, ...] = ("execution", "taskrun", "log"),
                  max_buffer: int = 1000) -> Subscription:
        sub = Subscription(self, execution_id=execution_id, namespace=namespace, flow_id=flow_id,
                           kinds=frozenset(kinds), max_buffer=max_buffer)
        self._subs.add(sub)
        return sub

    def wants(self, kind: str, execution_id: str, namespace: str, flow_id: str) -> bool:
        """Whether any subscriber matches (cheap; lets publishers skip building payloads)."""
        if not self._subs:
            return False
        return any(s.matches(kind, execution_id, namespace, flow_id) for s in self._subs)

    def publish(self, event: Event) -> None:
        """Deliver to every matching subscriber without blocking."""
        for s in list(self._subs):
            if s.matches(event.kind, event.execution_id, event.namespace, event.flow_id):
                s._push(event)

    def subscribers(self) -> Iterator[Subscription]:
        return iter(list(self._subs))

    def __len__(self) -> int:
        return len(self._subs)
