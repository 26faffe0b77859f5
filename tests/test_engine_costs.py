"""What an execution costs the engine's thread beyond its own work: objects the garbage collector traverses,
cancel scopes, tasks spawned. Counted, not timed (benchmarks/bench_engine.py times them)."""
from __future__ import annotations

import gc

import trio

from falconet import open_engine
from falconet.runtime.kernel.progress import PERSIST_INTERVAL


async def test_objects_alive_when_the_first_engine_opens_are_left_out_of_full_collections(tmp_path):
    async with open_engine(tmp_path, store="memory"):
        assert gc.get_freeze_count() > 0
        frozen = gc.get_freeze_count()
    async with open_engine(tmp_path / "again", store="memory"):
        assert gc.get_freeze_count() <= frozen  # once per process: later objects are collected as usual


class _Spawns(trio.abc.Instrument):
    def __init__(self) -> None:
        self.names: list[str] = []

    def task_spawned(self, task: trio.lowlevel.Task) -> None:
        self.names.append(task.name)


SLOW = """id: slow
namespace: t
tasks:
  - id: first
    type: io.kestra.plugin.core.debug.Return
    format: x
  - id: wait
    type: io.kestra.plugin.core.flow.Sleep
    duration: PT10S
"""


async def test_progress_is_written_after_the_persist_interval_without_a_task_per_execution(tmp_path, autojump_clock):
    async with open_engine(tmp_path, store="sqlite") as engine:
        await engine.create_flow(SLOW)
        spawns = _Spawns()
        trio.lowlevel.add_instrument(spawns)
        created = await engine.execute("t", "slow", wait=False)
        await trio.sleep(PERSIST_INTERVAL * 3)
        trio.lowlevel.remove_instrument(spawns)
        await engine.store.flush()
        stored = await engine.store.get_execution(created["id"])
        assert [(tr["taskId"], tr["state"]["current"]) for tr in stored["taskRunList"]] == [
            ("first", "SUCCESS"), ("wait", "RUNNING")]
        # the execution's actor and one task per task run: its progress is written by the engine's one task
        assert len(spawns.names) == 3, spawns.names
        ended = await engine.wait_for_end(created["id"])
        assert ended["state"]["current"] == "SUCCESS"
