"""Fixtures for the orchestration tests: an engine on the memory store whose scheduler reads a fake wall
clock driven by trio's clock (so ``autojump_clock`` moves schedules too)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any, AsyncIterator, Callable

import pytest
import trio

from falconet.runtime.kernel.engine import Engine, open_engine
from falconet.runtime.store.base import ExecutionQuery

EPOCH = datetime(2024, 1, 1, tzinfo=timezone.utc)


class FakeWallClock:
    """``base`` + trio's current time: the wall clock of the scheduler under ``autojump_clock``."""

    def __init__(self, base: datetime):
        self.base = base
        self.origin: float | None = None  # trio time at the first reading

    def __call__(self) -> datetime:
        if self.origin is None:
            self.origin = trio.current_time()
        return self.base + timedelta(seconds=trio.current_time() - self.origin)


@pytest.fixture
def wall_start() -> datetime:
    return EPOCH


@pytest.fixture
def fake_wall(monkeypatch, wall_start) -> FakeWallClock:
    """New schedulers read ``wall_start`` + trio's clock and wake only at due dates (tests call wake())."""
    from falconet.runtime.orchestration import scheduler

    clock = FakeWallClock(wall_start)
    monkeypatch.setitem(scheduler.DEFAULTS, "clock", clock)
    monkeypatch.setitem(scheduler.DEFAULTS, "poll", 10 * 86400.0)
    return clock


@pytest.fixture
async def engine(tmp_path, fake_wall) -> AsyncIterator[Engine]:
    async with open_engine(tmp_path, store="memory") as eng:
        yield eng


async def executions_of(engine: Engine, namespace: str, flow_id: str) -> list[dict[str, Any]]:
    """Every stored execution of a flow (all pages)."""
    await engine.store.flush()
    out: list[dict[str, Any]] = []
    page = 1
    while True:
        rows, total = await engine.store.search_executions(ExecutionQuery(namespace=namespace, flow_id=flow_id,
                                                                          page=page, size=500))
        out.extend(rows)
        if page * 500 >= total:
            return out
        page += 1


async def wait_until(predicate: Callable[[], Any], *, step: float = 0.01, timeout: float = 60) -> None:
    """Poll an async or sync predicate (cooperatively) until truthy; fails after ``timeout`` seconds."""
    with trio.fail_after(timeout):
        while True:
            res = predicate()
            if hasattr(res, "__await__"):
                res = await res
            if res:
                return
            await trio.sleep(step)


@pytest.fixture
def helpers() -> Any:
    class H:
        executions_of = staticmethod(executions_of)
        wait_until = staticmethod(wait_until)

    return H
