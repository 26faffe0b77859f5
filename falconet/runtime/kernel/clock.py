"""The engine's one clock: what time it is (``now``) and how to wait for a time (``sleep_until``).

Every date the engine writes (state histories, log and trigger dates, KV expiry) and every deadline it
waits for (retries, Pause delays, WaitFor intervals, SLAs, schedules, polling) come from one
:class:`Clock`, given to :class:`~falconet.runtime.kernel.engine.Engine` (``open_engine(clock=...)``). Waiting
is done on trio's clock: a deadline at date ``when`` is trio time ``current_time() + (when - now())``.

- :class:`SystemClock` (the default) reads the wall clock.
- :class:`VirtualClock` derives ``now()`` from trio's current time, so under trio's
  ``MockClock(autojump_threshold=0)`` a jump moves dates and deadlines together: an hour of schedules,
  retries and delays passes in milliseconds. While the engine waits on a worker thread (the SQLite writer,
  file work) it holds the mock clock still (:meth:`Clock.hold`): a thread job takes no virtual time, so a
  jump never fires a timer or a test's ``fail_after`` merely because a thread was busy.

The engine installs its clock for its trio run (:func:`installed`); the execution document, which holds
no engine reference, stamps its dates with :func:`current_now`. One trio run has one clock.
"""
from __future__ import annotations

import contextlib
import math
import sys
import time
from abc import ABC, abstractmethod
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterator, TypeVar

import trio

UTC = timezone.utc
T = TypeVar("T")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _millis(t: datetime) -> datetime:
    """Kestra prints instants with millisecond precision: dates are truncated to it."""
    return t.replace(microsecond=t.microsecond - t.microsecond % 1000)


def _mock_clock() -> Any:
    """The run's ``trio.testing.MockClock``, or None (without importing trio.testing, which is slow: no mock
    clock exists unless it was imported)."""
    testing = sys.modules.get("trio.testing")
    if testing is None:
        return None
    clock = trio.lowlevel.current_clock()
    return clock if isinstance(clock, testing.MockClock) else None


class _Held:
    """How many blocks hold the run's mock clock, and its autojump threshold before the first."""

    __slots__ = ("count", "threshold")

    def __init__(self) -> None:
        self.count = 0
        self.threshold = 0.0


_HELD: trio.lowlevel.RunVar[_Held | None] = trio.lowlevel.RunVar("falconet.clock.held")
_NOTHING = contextlib.nullcontext()


@contextlib.contextmanager
def _hold(mock: Any) -> Iterator[None]:
    held = _HELD.get(None)
    if held is None:
        held = _Held()
        _HELD.set(held)
    if held.count == 0:
        held.threshold = mock.autojump_threshold
        mock.autojump_threshold = math.inf
    held.count += 1
    try:
        yield
    finally:
        held.count -= 1
        if held.count == 0:
            mock.autojump_threshold = held.threshold


class Clock(ABC):
    """The current date and waits for dates, on trio's clock."""

    @abstractmethod
    def now(self) -> datetime:
        """The current aware UTC date, truncated to milliseconds."""

    def timestamp(self) -> float:
        """Epoch seconds of the current date."""
        return self.now().timestamp()

    def deadline_for(self, when: datetime) -> float:
        """The trio time (``trio.current_time()`` scale) at which the date ``when`` is reached. Both dates
        are in milliseconds: a deadline computed as ``now() + delay`` is ``delay`` away, never less."""
        return trio.current_time() + (when - self.now()).total_seconds()

    async def sleep_until(self, when: datetime) -> None:
        """Wait until the date ``when`` (returns at once when it is past)."""
        await trio.sleep_until(self.deadline_for(when))

    async def sleep(self, seconds: float) -> None:
        await trio.sleep(seconds)

    def hold(self) -> contextlib.AbstractContextManager[None]:
        """Keep trio's mock clock from jumping while the block waits on work outside trio (a thread): its
        autojump sees every task blocked and would leap to the next deadline. A no-op on a real clock."""
        mock = _mock_clock()
        return _NOTHING if mock is None else _hold(mock)

    async def run_sync_in_thread(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``trio.to_thread.run_sync`` under :meth:`hold`."""
        with self.hold():
            return await trio.to_thread.run_sync(fn, *args, **kwargs)


class SystemClock(Clock):
    """The wall clock (the default)."""

    def __init__(self) -> None:
        #: the last millisecond read and its date: an engine reads the clock ~15 times per execution, so
        #: readings within one millisecond share one date (equal to ``_millis(datetime.now(UTC))``) instead of
        #: building and truncating a new one each
        self._last: tuple[int, datetime] = (-1, _EPOCH)

    def now(self) -> datetime:
        ms = time.time_ns() // 1_000_000  # the system clock datetime.now reads, floored as it does
        last = self._last
        if last[0] == ms:
            return last[1]
        t = _EPOCH + timedelta(milliseconds=ms)
        self._last = (ms, t)  # one tuple: a thread reading concurrently sees a consistent pair
        return t

    def timestamp(self) -> float:
        return time.time()

    def __repr__(self) -> str:
        return "SystemClock()"


class VirtualClock(Clock):
    """``start`` + the trio time elapsed while the clock is read: dates follow trio's (mock) clock. Time
    starts at the first reading; a later trio run continues from the last date read."""

    def __init__(self, start: datetime | None = None) -> None:
        start = start if start is not None else datetime.now(UTC)
        if start.tzinfo is None:
            raise ValueError("VirtualClock needs an aware start date")
        self.start = start.astimezone(UTC)
        self._last = self.start      # the last date read
        self._base = self.start      # the date at trio time _origin of run _run
        self._origin = 0.0
        self._run: object = None     # the trio token of the run being read

    def _read(self) -> datetime:
        try:
            t = trio.current_time()
            run = trio.lowlevel.current_trio_token()
        except RuntimeError:  # outside a trio run
            return self._last
        if run is not self._run:
            self._run, self._base, self._origin = run, self._last, t
        self._last = self._base + timedelta(seconds=t - self._origin)
        return self._last

    def now(self) -> datetime:
        return _millis(self._read())

    def timestamp(self) -> float:
        return self._read().timestamp()

    def __repr__(self) -> str:
        return f"VirtualClock(start={self.start.isoformat()})"


#: the default clock of engines
SYSTEM = SystemClock()


class _Installed:
    """The clock of a trio run and how many engines (or blocks) use it."""

    __slots__ = ("clock", "users")

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.users = 0


_RUN_CLOCK: trio.lowlevel.RunVar[_Installed | None] = trio.lowlevel.RunVar("falconet.clock")


def current() -> Clock:
    """The clock installed in this trio run (:data:`SYSTEM` when none is, or outside a run)."""
    try:
        installed_ = _RUN_CLOCK.get(None)
    except RuntimeError:
        return SYSTEM
    return SYSTEM if installed_ is None else installed_.clock


def current_now() -> datetime:
    """``current().now()``: the date the execution document stamps transitions with."""
    return current().now()


@contextlib.contextmanager
def installed(clock: Clock) -> Iterator[None]:
    """Make ``clock`` this trio run's clock for the block. Engines sharing a run must share their clock."""
    record = _RUN_CLOCK.get(None)
    if record is None:
        record = _Installed(clock)
        _RUN_CLOCK.set(record)
    elif record.clock is not clock:
        raise ValueError(f"this trio run already uses {record.clock!r}; engines of one run share one clock")
    record.users += 1
    try:
        yield
    finally:
        record.users -= 1
        if record.users == 0:
            _RUN_CLOCK.set(None)


__all__ = ["Clock", "SystemClock", "VirtualClock", "SYSTEM", "current", "current_now", "installed"]
