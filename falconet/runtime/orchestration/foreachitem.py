"""ForEachItem (Kestra's ``ForEachItem``): split a file into batches and run one subflow execution per batch.

A ForEachItem task run is a sequential flowable with three internal children, exactly as Kestra 0.21
builds them:

- ``<id>_split`` (runnable, :class:`ForEachItemSplit`): streams ``items`` into batch files under its own
  task storage folder (``bytes``, else round-robin ``partitions``, else ``rows``; rows re-joined with
  ``separator``) and outputs ``splits``, the URI of a file listing one batch URI per line. Memory does not
  depend on the file size: one line is held at a time.
- ``<id>_items`` (executable, :class:`ForEachItemExecutable`): one subflow execution per batch, inputs
  rendered with ``taskrun.items`` (the batch URI) and ``taskrun.iteration`` (1-based). At most
  ``max_live`` children are alive at once (a million batches never means a million actors). Outputs
  ``numberOfBatches``, ``iterations`` (a count per state, moved along each child's state history the way
  Kestra's ``manageIterations`` does) and ``uri`` (the folder holding each child's ``outputs.ion``).
- ``<id>_merge`` (runnable, :class:`ForEachItemMergeOutputs`): concatenates the children's
  ``outputs.ion`` files in iteration order into ``subflowOutputs`` (no output when no child had outputs).

The internal TaskSpecs are synthesised once per ForEachItem spec (:func:`internal_tasks`) and found by
task id through :func:`internal_task`, which the executor consults for ids the flow does not declare.
"""
from __future__ import annotations

import io
import itertools
import re
import threading
import weakref
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any, BinaryIO
from urllib.parse import unquote, urlparse

import trio

from falconet.runtime.flow.model import Flow, TaskSpec
from falconet.sdk.plugin import BOOLEAN, OBJECT, STRING, FlowableTask, Prop, RunnableTask, TaskFailed
from falconet.runtime.kernel.runcontext import to_bool
from falconet.runtime.kernel.state import State

if TYPE_CHECKING:  # pragma: no cover
    from falconet.runtime.kernel.actors import ExecutionActor
    from falconet.runtime.kernel.engine import Engine
    from falconet.runtime.kernel.execution import TaskRun
    from falconet.runtime.kernel.runcontext import TaskRunContext

_OUTER = "io.kestra.plugin.core.flow.ForEachItem"
SPLIT_TYPE = f"{_OUTER}$ForEachItemSplit"
ITEMS_TYPE = f"{_OUTER}$ForEachItemExecutable"
MERGE_TYPE = f"{_OUTER}$ForEachItemMergeOutputs"
SUFFIXES = ("_split", "_items", "_merge")

#: default bound on live subflow executions started by one ``_items`` task run
MAX_LIVE_CHILDREN = 64
#: lines of the splits file read per thread hop
_READ_CHUNK = 512
_TERMINAL_COUNTED = ("SUCCESS", "FAILED", "KILLED", "WARNING", "CANCELLED")


#### Internal task types ####################################################################################

class ForEachItemSplit(RunnableTask):
    """Split ``items`` into batch files (internal child ``<id>_split``)."""

    type = SPLIT_TYPE
    props = {
        "items": Prop(STRING, required=True),
        "batch": Prop(OBJECT, dynamic=False, default={"rows": 1}),
    }

    async def run(self, ctx: "TaskRunContext") -> dict[str, Any] | None:  # type: ignore[override]
        items = ctx.prop("items")
        if not isinstance(items, str) or not items.startswith("kestra://"):
            raise TaskFailed(f"Unable to split '{items}': items must be a kestra:// URI")
        batch = ctx.render(ctx.raw("batch") or {"rows": 1})
        plan = batch_plan(batch)
        prefix = ctx.task_storage_prefix()
        stop = threading.Event()
        try:
            uri = await trio.to_thread.run_sync(split_file, ctx.storage, items, prefix, plan, stop,
                                                abandon_on_cancel=True)
        except BaseException:
            stop.set()
            raise
        return {"splits": uri}


class ForEachItemExecutable(FlowableTask):
    """One subflow execution per batch (internal child ``<id>_items``); driven by :func:`run_items`."""

    type = ITEMS_TYPE
    props = {
        "namespace": Prop(STRING, required=True),
        "flowId": Prop(STRING, required=True),
        "wait": Prop(BOOLEAN, default=True, dynamic=False),
        "transmitFailed": Prop(BOOLEAN, default=True, dynamic=False),
    }


class ForEachItemMergeOutputs(RunnableTask):
    """Concatenate the subflows' ``outputs.ion`` files (internal child ``<id>_merge``)."""

    type = MERGE_TYPE
    props = {"itemsTaskId": Prop(STRING, dynamic=False)}

    async def run(self, ctx: "TaskRunContext") -> dict[str, Any] | None:  # type: ignore[override]
        items_id = ctx.raw("itemsTaskId")
        outputs = (ctx.variables.get("outputs") or {}).get(items_id) or {}
        base = outputs.get("uri")
        if not base:
            return None
        prefix = urlparse(base).path
        dest = ctx.task_storage_prefix() + "/subflowOutputs.ion"
        uri = await trio.to_thread.run_sync(merge_outputs, ctx.storage, prefix, dest)
        return {"subflowOutputs": uri} if uri else None


#### Synthesised specs ######################################################################################

_specs: "weakref.WeakKeyDictionary[TaskSpec, list[TaskSpec]]" = weakref.WeakKeyDictionary()


def is_for_each_item(task: TaskSpec) -> bool:
    return task.type.rsplit(".", 1)[-1] == "ForEachItem"


def internal_tasks(task: TaskSpec) -> list[TaskSpec]:
    """The ``_split``, ``_items`` and ``_merge`` specs of a ForEachItem spec (built once, then shared)."""
    specs = _specs.get(task)
    if specs is None:
        p = task.props
        split = TaskSpec(id=f"{task.id}_split", type=SPLIT_TYPE, cls=ForEachItemSplit,
                         props={"items": p.get("items"), "batch": p.get("batch") or {"rows": 1}},
                         line=task.line, written_type=SPLIT_TYPE)
        items_props = {k: v for k, v in p.items() if k not in ("items", "batch", "errors", "finally")}
        items = TaskSpec(id=f"{task.id}_items", type=ITEMS_TYPE, cls=ForEachItemExecutable, props=items_props,
                         line=task.line, written_type=ITEMS_TYPE)
        merge = TaskSpec(id=f"{task.id}_merge", type=MERGE_TYPE, cls=ForEachItemMergeOutputs,
                         props={"itemsTaskId": items.id}, line=task.line, written_type=MERGE_TYPE)
        specs = [split, items, merge]
        _specs[task] = specs
    return specs


def internal_task(flow: Flow, task_id: str) -> TaskSpec | None:
    """The internal spec named ``task_id`` (``<forEachItemId>_split|_items|_merge``), or None."""
    for i, suffix in enumerate(SUFFIXES):
        if task_id.endswith(suffix):
            parent = flow.find_task(task_id[: -len(suffix)])
            if parent is not None and is_for_each_item(parent):
                return internal_tasks(parent)[i]
    return None


#### Splitting (runs in a worker thread) ####################################################################

class SplitAborted(Exception):
    """The split was cancelled (its task run was killed) while the worker thread was writing."""


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?B?)\s*$", re.IGNORECASE)
_UNITS = {"": 1, "B": 1, "K": 1024, "KB": 1024, "M": 1024 ** 2, "MB": 1024 ** 2, "G": 1024 ** 3, "GB": 1024 ** 3,
          "T": 1024 ** 4, "TB": 1024 ** 4}


def parse_size(value: Any) -> int:
    """``"10MB"`` -> 10485760 (binary units, as Kestra's data-size converter)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return int(value)
    m = _SIZE.match(str(value))
    if not m:
        raise TaskFailed(f"Invalid batch size '{value}': expected a size such as 10MB")
    return int(float(m.group(1)) * _UNITS[m.group(2).upper()])


def _positive_int(name: str, value: Any) -> int:
    try:
        n = int(str(value).strip())
    except ValueError:
        raise TaskFailed(f"Invalid batch {name} '{value}': expected an integer") from None
    if n < 1:
        raise TaskFailed(f"Invalid batch {name} '{value}': must be at least 1")
    return n


def batch_plan(batch: Any) -> tuple[str, int, str]:
    """(mode, amount, separator) from a rendered ``batch`` map. The first key set wins in the order of
    ``storage.Split`` and Kestra's ``StorageService.split``: ``bytes``, then ``partitions``, then ``rows``
    (default 1 row, so ``rows`` only counts when neither of the others is set)."""
    if not isinstance(batch, dict):
        raise TaskFailed("batch must be an object with rows, bytes or partitions")
    separator = batch.get("separator")
    separator = "\n" if separator is None else str(separator)
    if batch.get("bytes") is not None:
        size = parse_size(batch["bytes"])
        if size < 1:
            raise TaskFailed(f"Invalid batch bytes '{batch['bytes']}': must be positive")
        return "bytes", size, separator
    if batch.get("partitions") is not None:
        return "partitions", _positive_int("partitions", batch["partitions"]), separator
    return "rows", _positive_int("rows", batch.get("rows", 1)), separator


def _extension(uri: str) -> str:
    return PurePosixPath(unquote(urlparse(uri).path)).suffix


def _lines(raw: BinaryIO) -> Any:
    """Rows as Java's ``BufferedReader.readLine`` sees them (``\\n``, ``\\r\\n`` or ``\\r`` ends a row)."""
    text = io.TextIOWrapper(raw, encoding="utf-8", errors="replace", newline=None)
    for line in text:
        yield line[:-1] if line.endswith("\n") else line


def split_file(storage: Any, items_uri: str, prefix: str, plan: tuple[str, int, str],
               stop: threading.Event) -> str:
    """Write the batch files and the splits list; returns the splits list's URI. Blocking; ``stop``
    aborts between rows."""
    mode, amount, separator = plan
    ext = _extension(items_uri)
    splits_path = f"{prefix}/splits"
    with storage.open_read(items_uri) as raw, storage.open_write(splits_path) as listing:
        def emit(uri: str) -> None:
            listing.write((uri + "\n").encode())

        if mode == "partitions":
            _split_partitions(storage, _lines(raw), prefix, ext, amount, separator, stop, emit)
        else:
            out = None
            n = rows = size = 0
            try:
                for line in _lines(raw):
                    if stop.is_set():
                        raise SplitAborted("split aborted")
                    data = (line + separator).encode("utf-8")
                    if out is None or (rows >= amount if mode == "rows" else size >= amount):
                        if out is not None:
                            out.close()
                            emit(storage.uri(f"{prefix}/{n}{ext}"))
                        n += 1
                        out = storage.open_write(f"{prefix}/{n}{ext}")
                        rows = size = 0
                    out.write(data)
                    rows += 1
                    size += len(data)
                if out is not None:
                    out.close()
                    emit(storage.uri(f"{prefix}/{n}{ext}"))
                    out = None
            finally:
                if out is not None:
                    out.__exit__(SplitAborted, SplitAborted("aborted"), None)
    return storage.uri(splits_path)


def _split_partitions(storage: Any, lines: Any, prefix: str, ext: str, partitions: int, separator: str,
                      stop: threading.Event, emit: Any) -> None:
    """Round-robin rows into ``partitions`` files; empty partitions are dropped (Kestra's behaviour). Row
    ``i`` goes to partition ``i % partitions``, so the non-empty ones are always the first: each is streamed
    straight into internal storage (a crash leaves only hidden partial files, removed at start-up)."""
    files: list[Any] = []
    try:
        for i, line in enumerate(lines):
            if stop.is_set():
                raise SplitAborted("split aborted")
            if i < partitions:
                files.append(storage.open_write(f"{prefix}/{i + 1}{ext}"))
            files[i % partitions].write((line + separator).encode("utf-8"))
        for n in range(1, len(files) + 1):
            files.pop(0).close()
            emit(storage.uri(f"{prefix}/{n}{ext}"))
    finally:
        for f in files:
            f.__exit__(SplitAborted, SplitAborted("aborted"), None)


def merge_outputs(storage: Any, items_prefix: str, dest: str) -> str | None:
    """Concatenate ``<items_prefix>/<iteration>/outputs.ion`` in iteration order into ``dest``."""
    found: list[tuple[int, str]] = []
    for uri in storage.list(items_prefix):
        path = urlparse(uri).path
        parts = path.rstrip("/").split("/")
        if parts[-1] == "outputs.ion" and parts[-2].isdigit():
            found.append((int(parts[-2]), uri))
    if not found:
        return None
    found.sort()
    with storage.open_write(dest) as out:
        for _, uri in found:
            with storage.open_read(uri) as f:
                data = f.read()
            out.write(data if data.endswith(b"\n") else data + b"\n")
    return storage.uri(dest)


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


def _bool_prop(engine: "Engine", parent: "ExecutionActor", tr: "TaskRun", task: TaskSpec, name: str,
            default: bool) -> bool:
    value = task.props.get(name, default)
    if isinstance(value, str):
        return to_bool(parent.render(tr, task, value))
    return bool(value)


async def run_items(engine: "Engine", parent: "ExecutionActor", tr: "TaskRun", task: TaskSpec, *,
                    max_live: int = MAX_LIVE_CHILDREN) -> None:
    """Drive one ``<id>_items`` task run; ends by sending ``SubflowEnded`` to the parent actor.

    Cancellation (parent killed, engine stopping) stops the creation of children; children still alive
    are killed only when the parent execution is being killed.
    """
    from falconet.runtime.kernel.actors import SubflowEnded

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
        total = await trio.to_thread.run_sync(_count_lines, engine.storage, splits)
        outputs["numberOfBatches"] = total
        outputs["iterations"] = iterations.counts
        tr.outputs = dict(outputs)
        parent.on_change(tr)
        limiter = trio.CapacityLimiter(max(1, max_live))
        failure: list[str] = []
        # resumed after a server restart: the children created before it are watched, not created again
        existing = await _existing_children(engine, ex.id, tr.id) if tr.extra.get("itemsStarted") else {}
        tr.extra["itemsStarted"] = True
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
            from falconet.runtime.kernel.actors import KillRequested

            for child_id in list(live):
                actor = engine.actors.get(child_id)
                if actor is not None:
                    engine.spawn(actor.send, KillRequested("parent execution KILLING"))


async def _batches(engine: "Engine", splits_uri: str) -> Any:
    """(iteration, batch URI) pairs streamed from the splits file, a chunk of lines per thread hop."""
    f = await trio.to_thread.run_sync(engine.storage.open_read, splits_uri)
    try:
        iteration = 0
        while True:
            chunk = await trio.to_thread.run_sync(lambda: list(itertools.islice(f, _READ_CHUNK)))
            if not chunk:
                return
            for line in chunk:
                uri = line.decode().strip()
                if uri:
                    iteration += 1
                    yield iteration, uri
    finally:
        f.close()


async def _create_child(engine: "Engine", parent: "ExecutionActor", tr: "TaskRun", task: TaskSpec,
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


async def _existing_children(engine: "Engine", execution_id: str, task_run_id: str) -> dict[int, str]:
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


async def _watch_child(engine: "Engine", parent: "ExecutionActor", tr: "TaskRun", child_id: str, iteration: int,
                       base_prefix: str, iterations: _Iterations, wait: bool, limiter: trio.CapacityLimiter,
                       token: object, live: set[str]) -> None:
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
            await trio.to_thread.run_sync(engine.storage.put_bytes, line.encode(),
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


__all__ = [
    "ForEachItemSplit", "ForEachItemExecutable", "ForEachItemMergeOutputs", "internal_tasks", "internal_task",
    "run_items", "split_file", "merge_outputs", "batch_plan", "parse_size", "MAX_LIVE_CHILDREN",
]
