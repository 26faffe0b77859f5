"""``flow.WorkingDirectory``: runnable children run one after the other in ONE shared temporary directory.

Lifecycle of one WorkingDirectory task run (``tr.extra["wdState"]`` records the phase in the document):

``preparing``
    set by :func:`on_start` in the state machine, which returns a :class:`PrepareWorkingDirectory`
    command. The actor runs :func:`prepare` in its nursery: the directory ``<temp root>/wd-<taskRunId>``
    is created, the ``cache`` zip restored (when present and younger than ``ttl``), ``namespaceFiles``
    and ``inputFiles`` written (rendered in the task run's context; ``kestra:///`` URIs copied).
    No child is created meanwhile.
``ready``
    children run sequentially (Sequential's rules, ``errors``/``finally`` included); every descendant
    runnable task gets the shared directory from ``ctx.open_temp_dir()`` and does not delete it.
``finishing``
    the children resolved to a state S: :func:`finish` uploads the files matching ``outputFiles`` (output
    ``outputFiles``: name → ``kestra:///`` URI, as scripts do) and stores the ``cache`` zip at
    ``/{ns}/{flowId}/{taskId}/cache/cache.zip`` — both only when S is SUCCESS or WARNING, as Kestra runs
    its post-execution step only after successful children — then removes the directory.
``done``
    the task run takes S (FAILED when preparing or finishing failed).

A kill, or any other end of the execution, removes the directories left (:func:`cleanup`). At start-up an
unfinished WorkingDirectory (``preparing``/``ready``, or ``done`` but RUNNING again after an execution
restart or replay) prepares its directory again (:func:`recover`): the
files the earlier children wrote are lost if the directory did not survive, and a child that was running
is re-attempted once the directory is back (``ctx.open_temp_dir`` waits for it).

Blocking file work runs in ``trio.to_thread.run_sync``; the state machine only flips ``wdState``.
"""
from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
import time
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import trio

from falconet.runtime.expr.durations import parse_duration
from falconet.sdk.files import (
    as_file_map, copy_namespace_files, glob_match, upload_output_files, walk_files, write_input_files,
)
from falconet.runtime.kernel.execution import TaskRun
from falconet.runtime.kernel.state import State
from falconet.runtime.storage.base import StorageFileNotFound

if TYPE_CHECKING:  # pragma: no cover
    from falconet.runtime.kernel.actors import ExecutionActor
    from falconet.runtime.kernel.engine import Engine
    from falconet.runtime.kernel.machine import Machine
    from falconet.runtime.flow.model import TaskSpec

PREPARING, READY, FINISHING, DONE = "preparing", "ready", "finishing", "done"
KINDS = frozenset({"WorkingDirectory", "Worker"})


#### Commands and messages ##################################################################################

@dataclasses.dataclass(frozen=True)
class PrepareWorkingDirectory:
    """Create and fill the shared directory of a WorkingDirectory task run, then report ``WorkingDirectoryEvent``."""

    task_run: TaskRun
    task: TaskSpec


@dataclasses.dataclass(frozen=True)
class FinishWorkingDirectory:
    """Upload ``outputFiles``, store the cache, remove the directory; ``state`` is the children's result."""

    task_run: TaskRun
    task: TaskSpec
    state: State


@dataclasses.dataclass(frozen=True, slots=True)
class WorkingDirectoryEvent:
    """A prepare/finish step ended: ``error`` is None on success; ``outputs`` are the finish outputs."""

    task_run_id: str
    phase: str  # PREPARING | FINISHING
    error: str | None = None
    outputs: dict[str, Any] | None = None


def is_working_directory(task: TaskSpec) -> bool:
    return task.type.rsplit(".", 1)[-1] in KINDS


def directory_for(engine: Engine, task_run_id: str) -> Path:
    """The shared directory of a WorkingDirectory task run (deterministic, so a restart finds it)."""
    return engine.temp_root() / f"wd-{task_run_id}"


def cache_path(namespace: str, flow_id: str, task_id: str) -> str:
    """``/{ns}/{flowId}/{taskId}/cache/cache.zip`` (namespace dots as folders, ids slugified)."""
    from falconet.runtime.storage.internal import namespace_path, slugify

    return f"/{namespace_path(namespace)}/{slugify(flow_id)}/{slugify(task_id)}/cache/cache.zip"


#### State machine side (synchronous) #######################################################################

def on_start(m: Machine, tr: TaskRun, task: TaskSpec, dispatches: list[Any]) -> None:
    tr.extra["wdState"] = PREPARING
    tr.extra.pop("wdResult", None)
    dispatches.append(PrepareWorkingDirectory(tr, task))


def ready(tr: TaskRun) -> bool:
    """Children may be created: the directory is prepared and the children have not resolved yet."""
    return tr.extra.get("wdState") == READY


def resolve(m: Machine, tr: TaskRun, task: TaskSpec, children_state: State | None,
            dispatches: list[Any]) -> State | None:
    """The WorkingDirectory's state once its children resolved to ``children_state`` and finish ran."""
    phase = tr.extra.get("wdState")
    if phase == DONE:
        return State(tr.extra["wdResult"])
    if phase != READY or children_state is None:
        return None
    tr.extra["wdState"] = FINISHING
    tr.extra["wdResult"] = children_state.value
    m.on_change(tr)
    dispatches.append(FinishWorkingDirectory(tr, task, children_state))
    return None


def apply_event(m: Machine, tr: TaskRun, ev: WorkingDirectoryEvent, log: Any) -> None:
    """Record a prepare/finish result on the task run (called by the actor with its inbox message)."""
    if tr.state.current.is_terminated:
        return
    if ev.error is not None:
        log(tr, "ERROR", ev.error)
        tr.extra["wdState"] = DONE
        tr.extra["wdResult"] = (State.WARNING if m.task_of(tr).allow_failure else State.FAILED).value
    elif ev.phase == PREPARING:
        tr.extra["wdState"] = READY
    else:
        if ev.outputs:
            tr.outputs = ev.outputs
        tr.extra["wdState"] = DONE
    m.on_change(tr)


#### Actor side (async) #####################################################################################

def _context(actor: ExecutionActor, tr: TaskRun, task: TaskSpec) -> Any:
    from falconet.runtime.kernel.runcontext import TaskRunContext

    return TaskRunContext(actor.engine, actor.ex, tr, task, actor.variables_for(tr, task), 0,
                          actor.error_logs, actor.secrets)


def _pending(actor: ExecutionActor, task_run_id: str) -> trio.Event:
    return actor.wd_ready.setdefault(task_run_id, trio.Event())


async def prepare(actor: ExecutionActor, tr: TaskRun, task: TaskSpec) -> None:
    """Create the shared directory and fill it; report a :class:`WorkingDirectoryEvent` on the inbox."""
    event = _pending(actor, tr.id)
    path = directory_for(actor.engine, tr.id)
    error = None
    try:
        ctx = _context(actor, tr, task)
        await trio.to_thread.run_sync(lambda: path.mkdir(parents=True, exist_ok=True))
        cache = task.props.get("cache")
        if cache:
            await _restore_cache(actor, tr, task, ctx, path, cache)
        await copy_namespace_files(ctx, path, ctx.prop("namespaceFiles"))
        await write_input_files(ctx, path, as_file_map(ctx.prop("inputFiles"), "inputFiles"))
    except trio.Cancelled:
        raise
    except Exception as exc:  # a render error, a missing kestra:// file, a bad cache: the task run FAILS
        error = f"Unable to prepare the working directory: {exc}"
        await trio.to_thread.run_sync(shutil.rmtree, path, True)
    finally:
        event.set()
    await actor.send(WorkingDirectoryEvent(tr.id, PREPARING, error))


async def _restore_cache(actor: ExecutionActor, tr: TaskRun, task: TaskSpec, ctx: Any, path: Path,
                         cache: Any) -> None:
    from falconet.runtime.kernel.errors import IllegalArgument

    if not isinstance(cache, dict):
        raise IllegalArgument("cache must be an object {patterns, ttl}")
    storage = actor.engine.storage
    uri = storage.uri(cache_path(actor.ex.namespace, actor.ex.flow_id, task.id))
    ttl = cache.get("ttl")
    max_age = parse_duration(str(ctx.render(ttl))).total_seconds() if ttl else None

    def restore() -> bool:
        try:
            attributes = storage.attributes(storage.path(uri))
        except StorageFileNotFound:
            return False
        if attributes["type"] != "File":
            return False
        if max_age is not None and time.time() - cast(int, attributes["lastModifiedTime"]) / 1000 > max_age:
            return False
        with storage.local_file(uri, actor.engine.temp_root()) as local, zipfile.ZipFile(local) as archive:
            root = path.resolve()
            for info in archive.infolist():
                target = (root / info.filename).resolve()
                if not target.is_relative_to(root):
                    raise IllegalArgument(f"cache entry '{info.filename}' escapes the working directory")
            archive.extractall(root)
        return True

    if await trio.to_thread.run_sync(restore):
        ctx.logger.debug(f"Cache restored from {uri}")


async def finish(actor: ExecutionActor, tr: TaskRun, task: TaskSpec, state: State) -> None:
    """Upload ``outputFiles`` and store the cache (after SUCCESS/WARNING children), remove the directory;
    report a :class:`WorkingDirectoryEvent`."""
    path = directory_for(actor.engine, tr.id)
    error = None
    outputs: dict[str, Any] | None = None
    try:
        if state in (State.SUCCESS, State.WARNING) and path.is_dir():
            ctx = _context(actor, tr, task)
            globs = ctx.prop("outputFiles")
            if globs:
                if not isinstance(globs, list):
                    globs = [globs]
                uploaded = await upload_output_files(ctx, path, [str(g) for g in globs], None)
                outputs = {"outputFiles": uploaded}
            cache = task.props.get("cache")
            if cache:
                await _save_cache(actor, task, path, cache)
    except trio.Cancelled:
        raise
    except Exception as exc:
        error = f"Unable to collect the working directory's files: {exc}"
    finally:
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(shutil.rmtree, path, True)
    await actor.send(WorkingDirectoryEvent(tr.id, FINISHING, error, outputs))


async def _save_cache(actor: ExecutionActor, task: TaskSpec, path: Path, cache: Any) -> None:
    from falconet.runtime.kernel.errors import IllegalArgument

    patterns = cache.get("patterns") if isinstance(cache, dict) else None
    if not isinstance(patterns, list) or not patterns:
        raise IllegalArgument("cache.patterns must be a non-empty list of globs")
    storage = actor.engine.storage
    dest = cache_path(actor.ex.namespace, actor.ex.flow_id, task.id)

    def save() -> None:
        fd, tmp = tempfile.mkstemp(suffix=".zip", dir=actor.engine.temp_root())
        os.close(fd)
        try:
            with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as archive:
                for rel in walk_files(path):
                    if any(glob_match(str(p), rel) for p in patterns):
                        archive.write(path / rel, rel)
            storage.put_file(tmp, dest, move=True)
        finally:
            Path(tmp).unlink(missing_ok=True)

    await trio.to_thread.run_sync(save)


async def shared_directory(actor: ExecutionActor, tr: TaskRun) -> Path | None:
    """The directory of the nearest enclosing WorkingDirectory of ``tr`` (waiting while it is being
    prepared again after a restart), or None outside a WorkingDirectory. Checkpoint."""
    by_id = actor.machine.by_id
    cur = by_id.get(tr.parent_task_run_id) if tr.parent_task_run_id else None
    while cur is not None:
        if "wdState" in cur.extra:
            event = actor.wd_ready.get(cur.id)
            if event is not None:
                await event.wait()
            return directory_for(actor.engine, cur.id)
        cur = by_id.get(cur.parent_task_run_id) if cur.parent_task_run_id else None
    return None


def recover(actor: ExecutionActor) -> None:
    """At actor start: re-prepare the directory of every unfinished WorkingDirectory task run (found
    unfinished at start-up, or re-opened by a restart/replay), and finish again one that was finishing."""
    m = actor.machine
    for tr in actor.ex.task_run_list:
        phase = tr.extra.get("wdState")
        if phase is None or tr.state.current.is_terminated or tr.state.current is not State.RUNNING:
            continue
        task = m.task_of(tr)
        if phase in (PREPARING, READY, DONE):
            # DONE while RUNNING: a restart or replay re-opened it to re-run a child — prepare it again
            tr.extra.pop("wdResult", None)
            tr.extra["wdState"] = PREPARING
            _pending(actor, tr.id)
            actor.spawn(prepare, actor, tr, task)
        elif phase == FINISHING:
            actor.spawn(finish, actor, tr, task, State(tr.extra["wdResult"]))


async def cleanup(actor: ExecutionActor) -> None:
    """Remove the directories of this execution's WorkingDirectory task runs (the execution ended: done,
    killed or failed). Shielded."""
    paths = [directory_for(actor.engine, tr.id) for tr in actor.ex.task_run_list if "wdState" in tr.extra]
    if not paths:
        return

    def remove() -> None:
        for p in paths:
            shutil.rmtree(p, ignore_errors=True)

    with trio.CancelScope(shield=True):
        await trio.to_thread.run_sync(remove)
