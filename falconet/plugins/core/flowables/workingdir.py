"""WorkingDirectory: runnable children run one after the other in ONE shared temporary directory.

Lifecycle of one WorkingDirectory task run (``tr.runtime.wd_state`` records the phase in the document):

``preparing``
    set by ``on_start``, which returns a ``StartJob`` command. The execution actor runs the job: the
    task run's directory (``FlowableServices.directory_for``) is created, the ``cache`` zip restored (when
    present and younger than ``ttl``), ``namespaceFiles`` and ``inputFiles`` written (rendered in the task
    run's context; ``kestra:///`` URIs copied). No child is created meanwhile.
``ready``
    children run sequentially (Sequential's rules, ``errors``/``finally`` included); every descendant
    runnable task gets the shared directory from ``ctx.open_temp_dir()`` and does not delete it.
``finishing``
    the children resolved to a state S: a job uploads the files matching ``outputFiles`` (output
    ``outputFiles``: name → ``kestra:///`` URI, as scripts do) and stores the ``cache`` zip at
    ``/{ns}/{flowId}/{taskId}/cache/cache.zip`` — both only when S is SUCCESS or WARNING, as Kestra runs
    its post-execution step only after successful children — then removes the directory.
``done``
    the task run takes S (FAILED when preparing or finishing failed).

Any end of the execution removes the directories left (``cleanup``). At start-up an unfinished
WorkingDirectory (``preparing``/``ready``, or ``done`` but RUNNING again after an execution restart or
replay) prepares its directory again (``restore``): the files the earlier children wrote are lost if the
directory did not survive, and a child that was running is re-attempted once the directory is back
(``ctx.open_temp_dir`` waits for it).

Blocking file work runs on a thread (``services.clock.run_sync_in_thread``); the state machine side only
flips ``wdState``.
"""
from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
import time
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio

from falconet.sdk import (
    ANY, BOOLEAN, DURATION, LIST, OBJECT, TASKS, as_file_map, copy_namespace_files, Example, FlowableTask,
    glob_match, IllegalArgument, namespace_path, NotFound, parse_duration, Prop, register, RunnableTask, slugify,
    StartJob, State, upload_output_files, walk_files, write_input_files,
)
from falconet.plugins.core.flowables.common import BRANCHES, OLD, PKG

if TYPE_CHECKING:
    from falconet.sdk import Dispatch, FlowableServices, Machine, Resolved, TaskRun, TaskSpec

PREPARING, READY, FINISHING, DONE = "preparing", "ready", "finishing", "done"


@dataclasses.dataclass(frozen=True, slots=True)
class WorkingDirectoryEvent:
    """A prepare/finish job ended: ``error`` is None on success; ``outputs`` are the finish outputs."""

    phase: str  # PREPARING | FINISHING
    error: str | None = None
    outputs: dict[str, Any] | None = None


def cache_path(namespace: str, flow_id: str, task_id: str) -> str:
    """``/{ns}/{flowId}/{taskId}/cache/cache.zip`` (namespace dots as folders, ids slugified)."""
    return f"/{namespace_path(namespace)}/{slugify(flow_id)}/{slugify(task_id)}/cache/cache.zip"


async def _restore_cache(services: "FlowableServices", task: "TaskSpec", ctx: Any, path: Path,
                         cache: Any) -> None:
    if not isinstance(cache, dict):
        raise IllegalArgument("cache must be an object {patterns, ttl}")
    storage = services.storage
    uri = storage.uri(cache_path(services.ex.namespace, services.ex.flow_id, task.id))
    ttl = cache.get("ttl")
    max_age = parse_duration(str(ctx.render(ttl))).total_seconds() if ttl else None

    temp_root = services.temp_root()

    def restore() -> bool:
        try:
            attributes = storage.attributes(storage.path(uri))
        except NotFound:
            return False
        if attributes["type"] != "File":
            return False
        if max_age is not None and time.time() - attributes["lastModifiedTime"] / 1000 > max_age:
            return False
        with storage.local_file(uri, temp_root) as local, zipfile.ZipFile(local) as archive:
            root = path.resolve()
            for info in archive.infolist():
                target = (root / info.filename).resolve()
                if not target.is_relative_to(root):
                    raise IllegalArgument(f"cache entry '{info.filename}' escapes the working directory")
            archive.extractall(root)
        return True

    if await services.clock.run_sync_in_thread(restore):
        ctx.logger.debug(f"Cache restored from {uri}")


async def _save_cache(services: "FlowableServices", task: "TaskSpec", path: Path, cache: Any) -> None:
    patterns = cache.get("patterns") if isinstance(cache, dict) else None
    if not isinstance(patterns, list) or not patterns:
        raise IllegalArgument("cache.patterns must be a non-empty list of globs")
    storage = services.storage
    dest = cache_path(services.ex.namespace, services.ex.flow_id, task.id)
    temp_root = services.temp_root()

    def save() -> None:
        fd, tmp = tempfile.mkstemp(suffix=".zip", dir=temp_root)
        os.close(fd)
        try:
            with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as archive:
                for rel in walk_files(path):
                    if any(glob_match(str(p), rel) for p in patterns):
                        archive.write(path / rel, rel)
            storage.put_file(tmp, dest, move=True)
        finally:
            Path(tmp).unlink(missing_ok=True)

    await services.clock.run_sync_in_thread(save)


@register
class WorkingDirectory(FlowableTask):
    """Run runnable ``tasks`` one after the other in one shared temporary directory."""

    type = f"{PKG}.WorkingDirectory"
    aliases = (f"{OLD}.WorkingDirectory", f"{OLD}.Worker")
    title = "Run tasks in a shared working directory."
    examples = (
        Example("Share a directory between tasks.",
                "id: example\n"
                "namespace: company.team\n"
                "\n"
                "tasks:\n"
                "  - id: wdir\n"
                "    type: io.kestra.plugin.core.flow.WorkingDirectory\n"
                "    tasks:\n"
                "      - id: write\n"
                "        type: io.kestra.plugin.scripts.shell.Commands\n"
                "        taskRunner:\n"
                "          type: io.kestra.plugin.core.runner.Process\n"
                "        commands:\n"
                "          - echo hello > hello.txt\n"
                "      - id: read\n"
                "        type: io.kestra.plugin.scripts.shell.Commands\n"
                "        taskRunner:\n"
                "          type: io.kestra.plugin.core.runner.Process\n"
                "        commands:\n"
                "          - cat hello.txt\n", full=True),
    )
    props = {
        "tasks": Prop(TASKS, dynamic=False, description="Runnable tasks only; must not be empty."),
        "cache": Prop(OBJECT, dynamic=False, fields={
            "patterns": Prop(LIST, required=True),
            "ttl": Prop(DURATION),
        }),
        "namespaceFiles": Prop(OBJECT, fields={
            "enabled": Prop(BOOLEAN, default=True),
            "include": Prop(LIST),
            "exclude": Prop(LIST),
        }),
        "inputFiles": Prop(ANY, description="A map of file name -> content, or an expression."),
        "outputFiles": Prop(LIST),
        **BRANCHES,
    }

    def __init__(self) -> None:
        #: task run id -> set once its directory exists (a restart prepares it again while children wait)
        self._ready: dict[str, trio.Event] = {}

    #### state machine side (synchronous) ##################################################################

    def on_start(self, m: "Machine", tr: "TaskRun", task: "TaskSpec", dispatches: "list[Dispatch]") -> None:
        tr.runtime.wd_state = PREPARING
        tr.runtime.wd_result = None
        dispatches.append(StartJob(tr, task, PREPARING))

    def next_task_runs(self, m: "Machine", tr: "TaskRun", task: "TaskSpec") -> "list[Resolved]":
        if tr.runtime.wd_state != READY:  # children wait for the directory
            return []
        return super().next_task_runs(m, tr, task)

    def resolve_state(self, m: "Machine", tr: "TaskRun", task: "TaskSpec",
                      dispatches: "list[Dispatch]") -> "State | None":
        phase = tr.runtime.wd_state
        if phase == DONE:
            return tr.runtime.wd_result
        if phase != READY:
            return None
        children_state = super().resolve_state(m, tr, task, dispatches)
        if children_state is None:
            return None
        tr.runtime.wd_state = FINISHING
        tr.runtime.wd_result = children_state
        m.on_change(tr)
        dispatches.append(StartJob(tr, task, FINISHING))
        return None

    def on_event(self, m: "Machine", tr: "TaskRun", task: "TaskSpec", event: Any) -> None:
        """Record a prepare/finish result (a :class:`WorkingDirectoryEvent`, or the exception the job raised)."""
        error = f"Working directory job failed: {event}" if isinstance(event, Exception) else event.error
        if error is not None:
            m.log(tr, "ERROR", error)
            tr.runtime.wd_state = DONE
            tr.runtime.wd_result = State.WARNING if task.allow_failure else State.FAILED
        elif event.phase == PREPARING:
            tr.runtime.wd_state = READY
        else:
            if event.outputs:
                tr.outputs = event.outputs
            tr.runtime.wd_state = DONE
        m.on_change(tr)

    def restore(self, m: "Machine", tr: "TaskRun", task: "TaskSpec") -> "list[Dispatch]":
        """An unfinished task run found at start-up (or re-opened by a restart/replay) prepares its
        directory again; one that was finishing finishes again."""
        phase = tr.runtime.wd_state
        if phase is None or tr.state.current is not State.RUNNING:
            return []
        if phase in (PREPARING, READY, DONE):
            # DONE while RUNNING: a restart or replay re-opened it to re-run a child — prepare it again
            tr.runtime.wd_result = None
            tr.runtime.wd_state = PREPARING
            self._pending(tr.id)
            return [StartJob(tr, task, PREPARING)]
        return [StartJob(tr, task, FINISHING)]

    #### actor side (async) ################################################################################

    def _pending(self, task_run_id: str) -> trio.Event:
        return self._ready.setdefault(task_run_id, trio.Event())

    async def run_job(self, services: "FlowableServices", tr: "TaskRun", task: "TaskSpec",
                      job: str) -> "WorkingDirectoryEvent":
        if job == PREPARING:
            return await self._prepare(services, tr, task)
        assert tr.runtime.wd_result is not None, "resolve_state records the children's state before finishing"
        return await self._finish(services, tr, task, tr.runtime.wd_result)

    async def _prepare(self, services: "FlowableServices", tr: "TaskRun", task: "TaskSpec") -> "WorkingDirectoryEvent":
        """Create the shared directory and fill it."""
        event = self._pending(tr.id)
        path = services.directory_for(tr.id)
        error = None
        try:
            ctx = services.context(tr, task)
            await services.clock.run_sync_in_thread(lambda: path.mkdir(parents=True, exist_ok=True))
            cache = task.props.get("cache")
            if cache:
                await _restore_cache(services, task, ctx, path, cache)
            await copy_namespace_files(ctx, path, ctx.prop("namespaceFiles"))
            await write_input_files(ctx, path, as_file_map(ctx.prop("inputFiles"), "inputFiles"))
        except trio.Cancelled:
            raise
        except Exception as exc:  # a render error, a missing kestra:// file, a bad cache: the task run FAILS
            error = f"Unable to prepare the working directory: {exc}"
            await services.clock.run_sync_in_thread(shutil.rmtree, path, True)
        finally:
            event.set()
        return WorkingDirectoryEvent(PREPARING, error)

    async def _finish(self, services: "FlowableServices", tr: "TaskRun", task: "TaskSpec",
                      state: State) -> "WorkingDirectoryEvent":
        """Upload ``outputFiles`` and store the cache (after SUCCESS/WARNING children), remove the directory."""
        path = services.directory_for(tr.id)
        error = None
        outputs: dict[str, Any] | None = None
        try:
            if state in (State.SUCCESS, State.WARNING) and path.is_dir():
                ctx = services.context(tr, task)
                globs = ctx.prop("outputFiles")
                if globs:
                    if not isinstance(globs, list):
                        globs = [globs]
                    uploaded = await upload_output_files(ctx, path, [str(g) for g in globs], None)
                    outputs = {"outputFiles": uploaded}
                cache = task.props.get("cache")
                if cache:
                    await _save_cache(services, task, path, cache)
        except trio.Cancelled:
            raise
        except Exception as exc:
            error = f"Unable to collect the working directory's files: {exc}"
        finally:
            with trio.CancelScope(shield=True):
                await services.clock.run_sync_in_thread(shutil.rmtree, path, True)
        return WorkingDirectoryEvent(FINISHING, error, outputs)

    async def shared_directory(self, services: "FlowableServices", tr: "TaskRun") -> "Path | None":
        """The directory of ``tr`` (waiting while it is being prepared again after a restart)."""
        if tr.runtime.wd_state is None:
            return None
        event = self._ready.get(tr.id)
        if event is not None:
            await event.wait()
        return services.directory_for(tr.id)

    async def cleanup(self, services: "FlowableServices", task_runs: "list[TaskRun]") -> None:
        """Remove the directories left (the execution ended: done, killed or failed). Shielded."""
        paths = [services.directory_for(tr.id) for tr in task_runs if tr.runtime.wd_state is not None]
        if not paths:
            return

        def remove() -> None:
            for p in paths:
                shutil.rmtree(p, ignore_errors=True)

        with trio.CancelScope(shield=True):
            await services.clock.run_sync_in_thread(remove)

    @classmethod
    def validate_spec(cls, spec: "TaskSpec") -> list[str]:
        tasks = spec.props.get("tasks") or []
        if not tasks:
            return ["The 'tasks' property cannot be empty"]
        if any(not issubclass(t.cls, RunnableTask) for t in tasks):
            return ["Only runnable tasks are allowed as children of a WorkingDirectory task"]
        if any("workerGroup" in t.raw for t in tasks):
            return ["Cannot set a Worker Group in any WorkingDirectory sub-tasks, it is only supported at the "
                    "WorkingDirectory level"]
        return []
