"""Writing the task-run progress of running executions: at most every PERSIST_INTERVAL per execution, by one
task of the engine (see :meth:`~.actors.ExecutionActor._flush`)."""
from __future__ import annotations

from collections import deque
from typing import Any, Protocol

import trio

__all__ = ["PERSIST_INTERVAL", "Due", "ProgressWrites"]

PERSIST_INTERVAL = 0.05  # seconds between writes of task-run-only progress


class HasProgress(Protocol):
    def write_progress(self) -> None:
        """Write the progress made since the write was scheduled, if it is still to be written."""


class Due:
    """A scheduled write; :meth:`cancel` forgets the actor at once (an ended execution is not kept alive
    until its deadline)."""

    __slots__ = ("deadline", "actor")

    def __init__(self, deadline: float, actor: HasProgress) -> None:
        self.deadline = deadline
        self.actor: HasProgress | None = actor

    def cancel(self) -> None:
        self.actor = None


class ProgressWrites:
    """The engine's one task that calls ``write_progress()`` of an execution actor PERSIST_INTERVAL after the
    actor scheduled it: a queue in deadline order (every deadline is "now + PERSIST_INTERVAL") instead of a
    task and a timer per execution."""

    def __init__(self) -> None:
        self._due: deque[Due] = deque()
        self._wake = trio.Event()

    def schedule(self, actor: HasProgress) -> Due:
        due = Due(trio.current_time() + PERSIST_INTERVAL, actor)
        self._due.append(due)
        self._wake.set()
        return due

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        queue = self._due
        while True:
            if not queue:
                self._wake = trio.Event()
                await self._wake.wait()
                continue
            due = queue[0]
            if due.actor is not None and trio.current_time() < due.deadline:
                await trio.sleep_until(due.deadline)
                continue
            queue.popleft()
            if due.actor is not None:
                due.actor.write_progress()
