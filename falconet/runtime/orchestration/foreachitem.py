"""The ``_items`` child of a ForEachItem task run: one subflow execution per batch of items.

The ForEachItem flowable (``falconet.plugins.core.flowables.foreachitem``) splits the items into batch
files (its ``_split`` child, whose ``splits`` output lists one batch URI per line) and returns
``StartSubflow(batches=True)`` for its ``_items`` child; :func:`run_items` carries it out: subflow
inputs rendered with ``taskrun.items`` (the batch URI) and ``taskrun.iteration`` (1-based), at most
``max_live`` children alive at once (a million batches never means a million actors). It outputs
``numberOfBatches``, ``iterations`` (a count per state, moved along each child's state history the way
Kestra's ``manageIterations`` does) and ``uri`` (the folder holding each child's ``outputs.ion``).
"""
from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any

import trio

from falconet.runtime.flow.model import TaskSpec
from falconet.sdk.plugin import TaskFailed
from falconet.runtime.kernel.runcontext import to_bool
from falconet.runtime.kernel.state import State

if TYPE_CHECKING:  # pragma: no cover
    from falconet.runtime.kernel.actors import ExecutionActor
    from falconet.runtime.kernel.services import Kernel
    from falconet.runtime.kernel.execution import TaskRun

#: default bound on live subflow executions started by one ``_items`` task run
MAX_LIVE_CHILDREN = 64
#: lines of the splits file read per thread hop
_READ_CHUNK = 512
_TERMINAL_COUNTED = ("SUCCESS", "FAILED", "KILLED", "WARNING", "CANCELLED")


#### The ``_items`` task run ################################################################################

def _count_lines(storage: Any, uri: str) -> int:
    with storage.open_read(uri) as f:
        return sum(1 for line in f if line.strip())


class _Iterations:
    """Kestra's ``iterations`` map: a count per state, moved along each child's state history."""

    def __init__(self, wait: bool):
        self.wait = wait
        self.counts: dict[str, int] = {}

    def _move(self, prev: str | None, cur: str) -> None:
        self.counts[cur] = self.counts.get(cur, 0) + 1
        if prev is not None and prev != cur:
            self.counts[prev] = self.counts.get(prev, 0) - 1

    def created(self) -> None:
        if self.wait:
            self._move(None, "CREATED")
        else:  # no wait: Kestra reports RUNNING then SUCCESS for each started child
            self._move(None, "RUNNING")
            self._move("RUNNING", "SUCCESS")

    def ended(self, history: list[str]) -> None:
        for prev, cur in itertools.pairwise(history):
            self._move(prev, cur)

    def terminated(self) -> int:
        return sum(self.counts.get(s, 0) for s in _TERMINAL_COUNTED)

    def final_state(self, transmit_failed: bool, allow_failure: bool, allow_warning: bool) -> State:
        if not transmit_failed:
            return State.SUCCESS
        if self.counts.get("FAILED", 0) > 0:
            return (State.SUCCESS if allow_warning else State.WARNING) if allow_failure else State.FAILED
        if self.counts.get("KILLED", 0) > 0:
            return State.KILLED
        if self.counts.get("WARNING", 0) > 0:
            return State.SUCCESS if allow_warning else State.WARNING
        return State.SUCCESS


def _bool_prop(engine: "Kernel[ExecutionActor]", parent: "ExecutionActor", tr: "TaskRun", task: TaskSpec, name: str,
            default: bool) -> bool:
    value = task.props.get(name, default)
    if isinstance(value, str):
        return to_bool(parent.render(tr, task, value))
    return bool(value)


async def run_items(engine: "Kernel[ExecutionActor]", parent: "ExecutionActor", tr: "TaskRun", task: TaskSpec, *,
                    max_live: int = MAX_LIVE_CHILDREN) -> None:
    """Drive one ``<id>_items`` task run; ends by sending ``SubflowEnded`` to the parent actor.

    Cancellation (parent killed, engine stopping) stops the creation of children; children still alive
    are killed only when the parent execution is being killed.
    """
    from falconet.runtime.kernel.messages import SubflowEnded

    ex = parent.ex
    wait = _bool_prop(engine, parent, tr, task, "wait", True)
    transmit = _bool_prop(engine, parent, tr, task, "transmitFailed", True)
    base_prefix = engine.storage.task_prefix(ex.namespace, ex.flow_id, ex.id, task.id, tr.id)
    outputs: dict[str, Any] = {"uri": engine.storage.uri(base_prefix)}
    iterations = _Iterations(wait)
    live: set[str] = set()
    try:
        split_id = task.id[: -len("_items")] + "_split"
        split_tr = next((t for t in ex.task_run_list
                         if t.task_id == split_id and t.parent_task_run_id == tr.parent_task_run_id), None)
        splits = (split_tr.outputs or {}).get("splits") if split_tr is not None else None
        if not splits:
            raise TaskFailed(f"No splits found for task '{task.id}'")
        total = await engine.clock.run_sync_in_thread(_count_lines, engine.storage, splits)
        outputs["numberOfBatches"] = total
        outputs["iterations"] = iterations.counts
        tr.outputs = dict(outputs)
        parent.on_change(tr)
        limiter = trio.CapacityLimiter(max(1, max_live))
        failure: list[str] = []
        # resumed after a server restart: the children created before it are watched, not created again
        existing = await _existing_children(engine, ex.id, tr.id) if tr.runtime.items_started else {}
        tr.runtime.items_started = True
        parent.on_change(tr)
        engine.persist(ex, publish=False)  # before any child exists: a restart must not create them twice
        async with trio.open_nursery() as nursery:
            async for iteration, batch_uri in _batches(engine, splits):
                if failure:
                    break
                token = object()
                await limiter.acquire_on_behalf_of(token)
                try:
                    child = existing.get(iteration) or await _create_child(engine, parent, tr, task, batch_uri,
                                                                           iteration)
                except trio.Cancelled:
                    limiter.release_on_behalf_of(token)
                    raise
                except Exception as exc:
                    limiter.release_on_behalf_of(token)
                    failure.append(str(exc) or type(exc).__name__)
                    break
                iterations.created()
                live.add(child)
                start = nursery.start_soon if wait else engine.spawn
                start(_watch_child, engine, parent, tr, child, iteration, base_prefix, iterations, wait, limiter,
                      token, live)
        if failure:
            parent.log(tr, "ERROR", failure[0])
            state = State.FAILED
        else:
            # allowFailure / allowWarning apply on the ForEachItem task run itself (Kestra 0.21: a failed
            # ``_items`` stops the sequence, so no ``_merge``)
            state = iterations.final_state(transmit, False, False)
        outputs["iterations"] = dict(iterations.counts)
        await parent.send(SubflowEnded(tr.id, state, outputs))
    except TaskFailed as exc:
        parent.log(tr, "ERROR", str(exc))
        await parent.send(SubflowEnded(tr.id, State.FAILED, outputs))
    finally:
        if live and ex.state.current in (State.KILLING, State.KILLED):
            from falconet.runtime.kernel.messages import KillRequested

            for child_id in list(live):
                actor = engine.actors.get(child_id)
                if actor is not None:
                    engine.spawn(actor.send, KillRequested("parent execution KILLING"))


async def _batches(engine: "Kernel[ExecutionActor]", splits_uri: str) -> Any:
    """(iteration, batch URI) pairs streamed from the splits file, a chunk of lines per thread hop."""
    f = await engine.clock.run_sync_in_thread(engine.storage.open_read, splits_uri)
    try:
        iteration = 0
        while True:
            chunk = await engine.clock.run_sync_in_thread(lambda: list(itertools.islice(f, _READ_CHUNK)))
            if not chunk:
                return
            for line in chunk:
                uri = line.decode().strip()
                if uri:
                    iteration += 1
                    yield iteration, uri
    finally:
        f.close()


async def _create_child(engine: "Kernel[ExecutionActor]", parent: "ExecutionActor", tr: "TaskRun", task: TaskSpec,
                        batch_uri: str, iteration: int) -> str:
    from falconet.runtime.kernel.executions import CORRELATION

    ex = parent.ex
    variables = parent.variables_for(tr, task)
    variables["taskrun"] = dict(variables["taskrun"], items=batch_uri, iteration=iteration)
    render = engine.renderer.render_value
    namespace = str(render(task.props.get("namespace"), variables))
    flow_id = str(render(task.props.get("flowId"), variables))
    revision = task.props.get("revision")
    inputs = engine.renderer.render_value_typed(task.props.get("inputs") or {}, variables)
    raw_labels = task.props.get("labels") or {}
    labels: list[tuple[str, str]] = []
    if isinstance(raw_labels, dict):
        labels = [(str(k), str(render(v, variables))) for k, v in raw_labels.items()]
    elif isinstance(raw_labels, list):
        labels = [(str(x["key"]), str(render(x["value"], variables))) for x in raw_labels]
    inherit = bool(task.props.get("inheritLabels"))
    inherited = [(lb["key"], lb["value"]) for lb in ex.labels if inherit or lb["key"] == CORRELATION]
    trigger = {"id": task.id, "type": task.type, "variables": {
        "executionId": ex.id, "namespace": ex.namespace, "flowId": ex.flow_id, "flowRevision": ex.flow_revision,
        "taskRunId": tr.id, "taskRunIteration": iteration}}
    child = await engine.create_execution(
        namespace, flow_id, inputs=inputs, revision=int(revision) if revision is not None else None,
        trigger=trigger, parent_labels=inherited, labels=[lb for lb in labels if not lb[0].startswith("system.")])
    return str(child["id"])


async def _existing_children(engine: "Kernel[ExecutionActor]", execution_id: str, task_run_id: str) -> dict[int, str]:
    """Iteration -> child execution id of the children an ``_items`` task run already created."""
    from falconet.runtime.store.base import ExecutionQuery

    found: dict[int, str] = {}
    page = 1
    while True:
        docs, total = await engine.store.search_executions(
            ExecutionQuery(trigger_execution_id=execution_id, page=page, size=500))
        for doc in docs:
            variables = (doc.get("trigger") or {}).get("variables") or {}
            if variables.get("taskRunId") == task_run_id and isinstance(variables.get("taskRunIteration"), int):
                found[variables["taskRunIteration"]] = doc["id"]
        if page * 500 >= total or not docs:
            return found
        page += 1


async def _watch_child(engine: "Kernel[ExecutionActor]", parent: "ExecutionActor", tr: "TaskRun", child_id: str,
                       iteration: int, base_prefix: str, iterations: _Iterations, wait: bool,
                       limiter: trio.CapacityLimiter, token: object, live: set[str]) -> None:
    """Wait for one child's end: count its states (wait mode), store its outputs, free its slot."""
    try:
        final = await engine.wait_for_end(child_id)
        live.discard(child_id)  # only once it ended: a cancelled watcher leaves it for the kill cascade
        if wait:
            iterations.ended([h["state"] for h in final["state"]["histories"]])
            if tr.outputs is not None:
                tr.outputs["iterations"] = dict(iterations.counts)
                parent.on_change(tr)
        child_outputs = final.get("outputs")
        if child_outputs:
            from falconet.runtime.storage.ionvalues import simpleion

            line = simpleion().dumps(_ion_ready(child_outputs), binary=False, omit_version_marker=True)
            line = line.replace("\n", "\\n") + "\n"
            await engine.clock.run_sync_in_thread(engine.storage.put_bytes, line.encode(),
                                                  f"{base_prefix}/{iteration}/outputs.ion")
    finally:
        limiter.release_on_behalf_of(token)


def _ion_ready(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _ion_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_ion_ready(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


__all__ = ["run_items", "MAX_LIVE_CHILDREN"]
