"""A trio Instrument for tests that count or inspect the tasks a piece of work spawns."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import trio


class SpawnedTasks(trio.abc.Instrument):
    """Every trio task spawned while installed, in order."""

    def __init__(self) -> None:
        self.tasks: list[trio.lowlevel.Task] = []

    def task_spawned(self, task: trio.lowlevel.Task) -> None:
        self.tasks.append(task)

    @property
    def names(self) -> list[str]:
        return [task.name for task in self.tasks]


@contextmanager
def spawned_tasks() -> Iterator[SpawnedTasks]:
    """``with spawned_tasks() as spawned:`` records the tasks spawned inside the block."""
    spawned = SpawnedTasks()
    trio.lowlevel.add_instrument(spawned)
    try:
        yield spawned
    finally:
        trio.lowlevel.remove_instrument(spawned)
