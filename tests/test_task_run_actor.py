"""The task-run actor: started with ``nursery.start``, kept by its execution actor as a handle until its
last message (``TaskRunExited``); the engine's final shielded write of an execution is bounded, so a stalled
store cannot hang a kill forever — the execution is then left to the recovery of the next start."""
from __future__ import annotations

from typing import Any

import trio

from falconet import open_engine
from falconet.runtime.kernel.taskrun import FINAL_WRITE_TIMEOUT, TaskRunActor
from falconet.runtime.kernel.state import State
from falconet.runtime.store.memory import MemoryStore

NS = "tests.taskrunactor"

SLEEP_THEN_PAUSE = f"""
id: sleepy
namespace: {NS}
tasks:
  - id: nap
    type: io.kestra.plugin.core.flow.Sleep
    duration: PT10S
  - id: hold
    type: io.kestra.plugin.core.flow.Pause
  - id: long
    type: io.kestra.plugin.core.flow.Sleep
    duration: P100D
"""


def task_state(doc: dict[str, Any], task_id: str) -> str | None:
    return next((t["state"]["current"] for t in doc.get("taskRunList") or [] if t["taskId"] == task_id), None)


async def wait_until(engine, ex_id: str, check) -> dict[str, Any]:
    with trio.fail_after(3600):
        while True:
            doc = await engine.get_execution(ex_id)
            if doc is not None and check(doc):
                return doc
            await trio.sleep(0.01)


async def test_the_execution_actor_keeps_a_handle_per_running_task_run_until_it_exits(autojump_clock):
    async with open_engine(store="memory") as engine:
        await engine.create_flow(SLEEP_THEN_PAUSE)
        ex_id = (await engine.execute(NS, "sleepy", wait=False))["id"]
        await wait_until(engine, ex_id, lambda d: task_state(d, "nap") == "RUNNING")
        actor = engine.actors[ex_id]
        (handle,) = actor.task_runs.values()
        assert isinstance(handle, TaskRunActor) and handle.alive and handle.task.id == "nap"

        await wait_until(engine, ex_id, lambda d: d["state"]["current"] == "PAUSED")
        assert not handle.alive and actor.task_runs == {}  # its TaskRunExited dropped the handle

        await engine.resume(ex_id)
        await wait_until(engine, ex_id, lambda d: task_state(d, "long") == "RUNNING")
        (long_run,) = actor.task_runs.values()
        await engine.kill(ex_id)
        with trio.fail_after(60):
            final = await engine.wait_for_end(ex_id)
        assert not long_run.alive and actor.task_runs == {}
    assert final["state"]["current"] == "KILLED"
    assert task_state(final, "long") == "KILLED"


class StallingStore(MemoryStore):
    """A store whose write of a terminated execution does not complete until ``release`` (a hung disk)."""

    def __init__(self) -> None:
        super().__init__()
        self.release = trio.Event()

    async def save_execution(self, doc: dict[str, Any], *, doc_json: str | None = None) -> None:
        if not self.release.is_set() and State(doc["state"]["current"]).is_terminated:
            await self.release.wait()
        await super().save_execution(doc, doc_json=doc_json)


async def test_a_stalled_final_write_cannot_hang_a_kill_and_the_execution_is_recovered_at_the_next_start(
        autojump_clock):
    store = StallingStore()
    flow = SLEEP_THEN_PAUSE.replace("PT10S", "P100D")
    async with open_engine(store=store) as engine:
        await engine.create_flow(flow)
        ex_id = (await engine.execute(NS, "sleepy", wait=False))["id"]
        await wait_until(engine, ex_id, lambda d: task_state(d, "nap") == "RUNNING")
        actor = engine.actors[ex_id]
        start = trio.current_time()
        await engine.kill(ex_id)
        try:
            with trio.fail_after(FINAL_WRITE_TIMEOUT + 60):
                await actor.finished.wait()  # the actor is gone although its KILLED state was never written
        finally:
            store.release.set()  # an unbounded write would otherwise hang the engine's exit: fail instead
        assert FINAL_WRITE_TIMEOUT <= trio.current_time() - start < FINAL_WRITE_TIMEOUT + 60
        assert ex_id not in engine.actors
        stored = await store.get_execution(ex_id)
        assert stored["state"]["current"] == "KILLING"  # not lost: the kill was recorded before it ended
    async with open_engine(store=store) as engine:  # the next start finishes the kill
        with trio.fail_after(60):
            final = await engine.wait_for_end(ex_id)
    assert final["state"]["current"] == "KILLED"
    assert task_state(final, "nap") == "KILLED"
    assert (await _stored_state(store, ex_id)) == "KILLED"


async def _stored_state(store: MemoryStore, ex_id: str) -> str:
    await store.open()
    try:
        doc = await store.get_execution(ex_id)
    finally:
        await store.close()
    assert doc is not None
    return doc["state"]["current"]
