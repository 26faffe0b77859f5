"""Writing the task-run progress of running executions: at most every PERSIST_INTERVAL per execution, by one
task of the engine (see :meth:`~.actors.ExecutionActor._flush`)."""
from __future__ import annotations

from collections import deque
from typing import Any, Protocol

import trio

__all__ = ["PERSIST_INTERVAL", "ProgressWrites"]

PERSIST_INTERVAL = 0.05  # seconds between writes of task-run-only progress


class HasProgress(Protocol):
    def write_progress(self) -> None:
        """Write the progress made since the write was scheduled, if it is still to be written."""


class ProgressWrites:
    """The engine's one task that calls ``write_progress()`` of an execution actor PERSIST_INTERVAL after the
    actor scheduled it: a queue in deadline order (every deadline is "now + PERSIST_INTERVAL") instead of a
    task and a timer per execution."""

    def __init__(self) -> None:
        self._due: deque[tuple[float, HasProgress]] = deque()
        self._wake = trio.Event()

    def schedule(self, actor: HasProgress) -> None:
        self._due.append((trio.current_time() + PERSIST_INTERVAL, actor))
        self._wake.set()

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        due = self._due
        while True:
            if not due:
                self._wake = trio.Event()
                await self._wake.wait()
                continue
            deadline, actor = due[0]
            if trio.current_time() < deadline:
                await trio.sleep_until(deadline)
                continue
            due.popleft()
            actor.write_progress()
