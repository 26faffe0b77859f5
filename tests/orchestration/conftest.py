"""Fixtures for the orchestration tests: an engine on the memory store with a VirtualClock starting at
``wall_start`` (dates follow trio's clock, so ``autojump_clock`` moves schedules too)."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, AsyncIterator, Callable

import pytest
import trio

from falconet.runtime.kernel.clock import VirtualClock
from falconet.runtime.kernel.engine import Engine
from falconet.runtime.kernel.startup import open_engine
from falconet.runtime.store.base import ExecutionQuery

EPOCH = datetime(2024, 1, 1, tzinfo=timezone.utc)


@pytest.fixture
def wall_start() -> datetime:
    return EPOCH


@pytest.fixture
def virtual_clock(monkeypatch, wall_start) -> VirtualClock:
    """The engine's clock: ``wall_start`` + trio's clock. Schedulers wake only at due dates (tests call
    wake())."""
    from falconet.runtime.orchestration import scheduler

    monkeypatch.setitem(scheduler.DEFAULTS, "poll", 10 * 86400.0)
    return VirtualClock(wall_start)


@pytest.fixture
async def engine(tmp_path, virtual_clock) -> AsyncIterator[Engine]:
    async with open_engine(tmp_path, store="memory", clock=virtual_clock) as eng:
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
