"""ForEachItem: split a file into batches and run one subflow execution per batch.

A ForEachItem task run is a sequential flowable with three internal children, exactly as Kestra 0.21
builds them:

- ``<id>_split`` (runnable, :class:`ForEachItemSplit`): streams ``items`` into batch files under its own
  task storage folder (``bytes``, else round-robin ``partitions``, else ``rows``; rows re-joined with
  ``separator``) and outputs ``splits``, the URI of a file listing one batch URI per line. Memory does not
  depend on the file size: one line is held at a time.
- ``<id>_items`` (:class:`ForEachItemExecutable`): one subflow execution per batch, created and watched
  by the engine (``falconet.runtime.orchestration.foreachitem``). Outputs ``numberOfBatches``,
  ``iterations`` and ``uri`` (the folder holding each child's ``outputs.ion``).
- ``<id>_merge`` (runnable, :class:`ForEachItemMergeOutputs`): concatenates the children's
  ``outputs.ion`` files in iteration order into ``subflowOutputs`` (no output when no child had outputs).

The internal TaskSpecs are synthesised once per ForEachItem spec (:func:`internal_tasks`); the state
machine finds them through :meth:`ForEachItem.internal_tasks`.
"""
from __future__ import annotations

import io
import re
import threading
import weakref
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any, BinaryIO, ClassVar
from urllib.parse import unquote, urlparse


from falconet.sdk import (
    BOOLEAN, INTEGER, OBJECT, STRING, Attempt, Example, FlowableTask, Output, Prop, register, RunnableTask,
    StartSubflow, State, StateHistory, TaskFailed, TaskSpec,
)
from falconet.plugins.core.flowables.common import BRANCHES, OLD, PKG
from falconet.plugins.core.flowables.subflow import SUBFLOW_COMMON, ChildExecution

if TYPE_CHECKING:  # pragma: no cover
    from falconet.sdk import Dispatch, Machine, Resolved, RunContext, TaskRun

_OUTER = f"{PKG}.ForEachItem"
SPLIT_TYPE = f"{_OUTER}$ForEachItemSplit"
ITEMS_TYPE = f"{_OUTER}$ForEachItemExecutable"
MERGE_TYPE = f"{_OUTER}$ForEachItemMergeOutputs"


@register
class ForEachItem(FlowableTask):
    """Split ``items`` into batches and run one subflow execution per batch (internal children
    ``<id>_split``, ``<id>_items``, ``<id>_merge``)."""

    type = f"{PKG}.ForEachItem"
    aliases = (f"{OLD}.ForEachItem",)
    title = "Run a subflow for each batch of items of a file."
    examples = (
        Example("Start a subflow for each batch of 10 lines of a file.",
                "id: example\n"
                "namespace: company.team\n"
                "\n"
                "inputs:\n"
                "  - id: file\n"
                "    type: FILE\n"
                "\n"
                "tasks:\n"
                "  - id: each\n"
                "    type: io.kestra.plugin.core.flow.ForEachItem\n"
                "    items: \"{{ inputs.file }}\"\n"
                "    batch:\n"
                "      rows: 10\n"
                "    namespace: company.team\n"
                "    flowId: process_batch\n"
                "    inputs:\n"
                "      batch: \"{{ taskrun.items }}\"\n", full=True),
    )
    outputs = {
        "numberOfBatches": Output("integer", "How many batches (subflow executions) were made.", required=False),
        "iterations": Output("map", "Number of subflow executions per state.", required=False),
        "uri": Output("string", "Internal storage folder holding each subflow's outputs."),
        "subflowOutputs": Output("string",
                       "URI of the merged outputs of the subflows (ION, one line per subflow).", required=False),
    }
    executable: ClassVar[bool] = True
    props = {
        "items": Prop(STRING, required=True),
        "batch": Prop(OBJECT, dynamic=False, default={"rows": 1}, fields={
            "rows": Prop(INTEGER),
            "bytes": Prop(STRING),
            "partitions": Prop(INTEGER),
            "separator": Prop(STRING, default="\n"),
        }),
        **SUBFLOW_COMMON,
        **BRANCHES,
    }

    def internal_tasks(self, task: TaskSpec) -> list[TaskSpec]:
        return internal_tasks(task)

    def children(self, m: "Machine", tr: "TaskRun", task: TaskSpec) -> "list[Resolved] | None":
        return m.resolve_tasks(internal_tasks(task), tr.id)


#### Internal task types ####################################################################################

class ForEachItemSplit(RunnableTask):
    """Split ``items`` into batch files (internal child ``<id>_split``)."""

    type = SPLIT_TYPE
    props = {
        "items": Prop(STRING, required=True),
        "batch": Prop(OBJECT, dynamic=False, default={"rows": 1}),
    }

    async def run(self, ctx: "RunContext") -> dict[str, Any] | None:
        items = ctx.prop("items")
        if not isinstance(items, str) or not items.startswith("kestra://"):
            raise TaskFailed(f"Unable to split '{items}': items must be a kestra:// URI")
        batch = ctx.render(ctx.raw("batch") or {"rows": 1})
        plan = batch_plan(batch)
        prefix = ctx.task_storage_prefix()
        stop = threading.Event()
        try:
            uri = await ctx.clock.run_sync_in_thread(split_file, ctx.storage, items, prefix, plan, stop,
                                                     abandon_on_cancel=True)
        except BaseException:
            stop.set()
            raise
        return {"splits": uri}


class ForEachItemExecutable(ChildExecution):
    """One subflow execution per batch (internal child ``<id>_items``): the engine creates them, at most a
    bounded number alive at once, and reports the end of the last one (``StartSubflow(batches=True)``)."""

    type = ITEMS_TYPE
    props = {
        "namespace": Prop(STRING, required=True),
        "flowId": Prop(STRING, required=True),
        "wait": Prop(BOOLEAN, default=True, dynamic=False),
        "transmitFailed": Prop(BOOLEAN, default=True, dynamic=False),
    }

    def on_start(self, m: "Machine", tr: "TaskRun", task: TaskSpec, dispatches: "list[Dispatch]") -> None:
        tr.attempts.append(Attempt(StateHistory(State.RUNNING)))
        dispatches.append(StartSubflow(tr, task, batches=True))

    def resolve_state(self, m: "Machine", tr: "TaskRun", task: TaskSpec,
                      dispatches: "list[Dispatch]") -> "State | None":
        return self.child_state(tr)  # allowFailure applies on the ForEachItem task run itself

    def restore(self, m: "Machine", tr: "TaskRun", task: TaskSpec) -> "list[Dispatch]":
        if tr.state.current is State.RUNNING and tr.runtime.subflow_state is None:
            # it watches the children it created and creates the missing ones
            return [StartSubflow(tr, task, batches=True)]
        return []


class ForEachItemMergeOutputs(RunnableTask):
    """Concatenate the subflows' ``outputs.ion`` files (internal child ``<id>_merge``)."""

    type = MERGE_TYPE
    props = {"itemsTaskId": Prop(STRING, dynamic=False)}

    async def run(self, ctx: "RunContext") -> dict[str, Any] | None:
        items_id = ctx.raw("itemsTaskId")
        outputs = (ctx.variables.get("outputs") or {}).get(items_id) or {}
        base = outputs.get("uri")
        if not base:
            return None
        prefix = urlparse(base).path
        dest = ctx.task_storage_prefix() + "/subflowOutputs.ion"
        uri = await ctx.clock.run_sync_in_thread(merge_outputs, ctx.storage, prefix, dest)
        return {"subflowOutputs": uri} if uri else None


#### Synthesised specs ######################################################################################

_specs: "weakref.WeakKeyDictionary[TaskSpec, list[TaskSpec]]" = weakref.WeakKeyDictionary()


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
