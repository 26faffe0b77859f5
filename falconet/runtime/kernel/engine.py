"""The Engine: the root actor. Owns the store, the internal storage, the flow registry, the event bus and
one ExecutionActor per running execution; everything the HTTP layer, the CLI and embedders call.

Open one with :func:`open_engine` (an async context manager); its actors live in the engine's nursery,
callers never see it.
"""
from __future__ import annotations

import base64
import contextlib
import functools
import logging
import os
import shutil
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, AsyncIterator, Mapping, Sequence

import trio

from falconet.runtime.kernel import executions as _ex_ops
from falconet.runtime import workingdir
from falconet.runtime.kernel.actors import ExecutionActor, KillRequested, PauseRequested, ResumeRequested
from falconet.runtime.kernel.bus import Bus, Event
from falconet.runtime.config import Config
from falconet.runtime.kernel.errors import (
    FlowValidationError, IllegalArgument, IllegalState, InvalidEntity, NotFound, Violation,
)
from falconet.runtime.expr.render import Renderer
from falconet.runtime.flow.model import Flow, TaskSpec
from falconet.runtime.flow.parsing import parse_flow, validate_flow_source
from falconet.runtime.kernel.execution import Execution, TaskRun, format_instant, now
from falconet.sdk.plugin import Plugin, load_plugins
from falconet.runtime.kernel.recovery import (
    DataDirInUse, DataDirLock, Marks, ProcessRegistry, clean_partial_storage, clean_temp,
)
from falconet.runtime.kernel.state import State
from falconet.runtime.storage.internal import InternalStorage
from falconet.runtime.store.base import FlowRecord, Store
from falconet.runtime.expr.variables import kestra_envs

log = logging.getLogger("falconet.engine")

#: flow sources at least this long (characters), or with this many characters inside ``{{ }}``, are parsed on
#: a worker thread: pure-Python YAML parsing takes about 3 µs per character, compiling a template (flow
#: validation compiles every one) up to 300 µs per character, and the trio thread must keep answering
PARSE_IN_THREAD = 8 * 1024
TEMPLATE_IN_THREAD = 512


def _parse_in_thread(source: str) -> bool:
    if len(source) >= PARSE_IN_THREAD:
        return True
    inside, pos = 0, 0
    while inside < TEMPLATE_IN_THREAD:
        start = source.find("{{", pos)
        if start < 0:
            return False
        end = source.find("}}", start + 2)
        if end < 0:
            return len(source) - start >= TEMPLATE_IN_THREAD - inside
        inside += end - start
        pos = end + 2
    return True


class Engine:
    def __init__(self, config: Config, store: Store, storage: InternalStorage):
        self.config = config
        self.store = store
        self.storage = storage
        self.bus = Bus()
        self.renderer = Renderer()
        self.registry = load_plugins()
        self.envs = kestra_envs(config.env_prefix)
        self.actors: dict[str, ExecutionActor] = {}
        self.processes = ProcessRegistry(config.data_dir / "run" / "processes")
        self.after_execution = Marks(config.data_dir / "run" / "after-execution")  # ended, afterExecution pending
        self._dir_lock = DataDirLock(config.data_dir)
        self._flows: dict[tuple[str, str, int], Flow] = {}
        self._broken: dict[tuple[str, str, int], FlowValidationError] = {}  # stored sources that no longer parse
        self.parse_limiter = trio.CapacityLimiter(2)  # parsing threads hold the GIL: leave the trio thread a share
        self._latest: dict[tuple[str, str], int] = {}
        self._kv: dict[tuple[str, str], dict[str, Any]] = {}
        self._ended: dict[str, trio.Event] = {}
        self._nursery: trio.Nursery | None = None
        self._flow_lock = trio.Lock()

    @functools.cached_property
    def local_files_roots(self) -> tuple[Path, ...]:
        """``kestra.local-files.allowed-paths``, resolved: the only places ``file:///`` FILE inputs may
        name (none by default)."""
        from falconet.runtime.flow.fileinputs import allowed_roots

        return allowed_roots(getattr(self.config, "local_files_allowed_paths", ()))

    #### lifecycle #######################################################################################

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Resume unfinished executions, then serve until cancelled. Raises :class:`DataDirInUse` when another
        live engine owns the data folder (two engines would resume the same executions twice)."""
        from falconet.runtime.orchestration import install, run_services

        self.lock_data_dir()
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                install(self)
                # scripts of a crashed server die before their task runs are attempted again
                await trio.to_thread.run_sync(self.processes.reap)
                await self._load()
                await nursery.start(run_services, self)
                task_status.started(self)
                await trio.sleep_forever()
        finally:
            self._dir_lock.release()

    def lock_data_dir(self) -> None:
        """Own the data folder (see :class:`DataDirLock`) or raise :class:`DataDirInUse`."""
        if not self._dir_lock.acquire():
            raise DataDirInUse(self.config.data_dir)

    async def _load(self) -> None:
        """Delete the temporary files of a previous run, then resume the executions found unfinished."""
        for rec in await self.store.list_flows(include_deleted=False):
            self._latest[(rec.namespace, rec.id)] = rec.revision
        for ns_key in {ns for ns, _ in self._latest}:
            for entry in await self.store.kv_list(ns_key):
                self._kv[(ns_key, entry["key"])] = entry
        waiting: list[tuple[Execution, Flow]] = []
        unfinished = [Execution.from_dict(doc) for doc in await self.store.list_unfinished_executions()]
        _ex_ops.propagate_killing(unfinished)
        keep = {workingdir.directory_for(self, tr.id).name for ex in unfinished for tr in ex.task_run_list
                if "wdState" in tr.extra and not tr.state.current.is_terminated}
        await trio.to_thread.run_sync(clean_temp, self.temp_root(), keep)
        await trio.to_thread.run_sync(clean_partial_storage, self.storage.base_dir)
        unfinished += await self._after_execution_pending({ex.id for ex in unfinished})
        for ex in unfinished:
            flow = await self.get_flow(ex.namespace, ex.flow_id, ex.flow_revision, allow_deleted=True,
                                       skip_invalid=True)
            if flow is None:
                continue
            if ex.state.current in (State.CREATED, State.QUEUED) and not ex.task_run_list:
                waiting.append((ex, flow))  # never started: scheduleDate and concurrency apply again
                continue
            if ex.state.current is not State.KILLING:  # a KILLING one finishes its kill (ExecutionActor.run)
                _ex_ops.prepare_resume(ex)
            self._start_actor(ex, flow)
        from falconet.runtime.orchestration import admission_order

        for ex, flow in sorted(waiting, key=lambda pair: admission_order(pair[0])):
            self._schedule_start(ex, flow)

    async def _after_execution_pending(self, unfinished: set[str]) -> list[Execution]:
        """Terminated executions whose ``afterExecution`` tasks had not finished when the server stopped."""
        out = []
        for execution_id in await trio.to_thread.run_sync(self.after_execution.ids):
            doc = None if execution_id in unfinished else await self.store.get_execution(execution_id)
            if doc is not None and State(doc["state"]["current"]).is_terminated:
                out.append(Execution.from_dict(doc))
            elif execution_id not in unfinished:
                self.after_execution.discard(execution_id)
        return out

    def temp_root(self) -> Path:
        path = self.config.data_dir / "tmp"
        path.mkdir(parents=True, exist_ok=True)
        return path

    #### flows ###########################################################################################

    async def _parse(self, source: str, revision: int) -> Flow:
        """Parse and validate a source; a long one on a worker thread (at most two at a time), so a big or
        hostile source never stalls the trio thread (the YAML bounds keep each parse short, see limits.py)."""
        if not _parse_in_thread(source):
            return parse_flow(source, registry=self.registry, revision=revision,
                              plugin_defaults=self.config.plugin_defaults)
        return await trio.to_thread.run_sync(
            lambda: parse_flow(source, registry=self.registry, revision=revision,
                               plugin_defaults=self.config.plugin_defaults),
            limiter=self.parse_limiter)

    async def create_flow(self, source: str) -> Flow:
        flow = await self._parse(source, 1)
        async with self._flow_lock:
            existing = await self.store.get_flow(flow.namespace, flow.id, allow_deleted=True)
            if existing is not None and not existing.deleted:
                raise IllegalArgument(f"Flow id already exists: {flow.namespace}.{flow.id}")
            revision = existing.revision + 1 if existing is not None else 1
            return await self._save_flow(flow, source, revision)

    async def update_flow(self, namespace: str, flow_id: str, source: str) -> Flow:
        if await self.store.get_flow(namespace, flow_id) is None:  # 404 before 422, as Kestra answers
            raise NotFound(f"Flow '{namespace}.{flow_id}' not found")
        flow = await self._parse(source, 1)  # outside the lock: a long parse never holds other flow changes
        async with self._flow_lock:
            existing = await self.store.get_flow(namespace, flow_id)
            if existing is None:
                raise NotFound(f"Flow '{namespace}.{flow_id}' not found")
            if flow.id != flow_id or flow.namespace != namespace:
                raise InvalidEntity([Violation("id", "Illegal flow id update")])
            if existing.source == source:
                flow.revision = existing.revision
                return flow
            return await self._save_flow(flow, source, existing.revision + 1)

    async def put_flow(self, source: str) -> Flow:
        """Create or update (used by the CLI and namespace/bulk updates)."""
        flow = await self._parse(source, 1)
        existing = await self.store.get_flow(flow.namespace, flow.id)
        if existing is None:
            return await self.create_flow(source)
        return await self.update_flow(flow.namespace, flow.id, source)

    async def _save_flow(self, flow: Flow, source: str, revision: int) -> Flow:
        flow.revision = revision
        await self.store.save_flow(FlowRecord(flow.namespace, flow.id, revision, source, deleted=False,
                                              disabled=flow.disabled, updated=now()))
        self._flows[(flow.namespace, flow.id, revision)] = flow
        self._latest[(flow.namespace, flow.id)] = revision
        return flow

    async def get_flow(self, namespace: str, flow_id: str, revision: int | None = None,
                       allow_deleted: bool = False, skip_invalid: bool = False) -> Flow | None:
        """A flow revision (the latest when ``revision`` is None), parsed once and cached.

        A stored source that no longer parses (a plugin removed, a bound tightened) raises its
        :class:`FlowValidationError` — or gives None with ``skip_invalid`` (background services, start-up);
        it is parsed once and logged once, never again."""
        if revision is not None and (namespace, flow_id, revision) in self._flows:
            cached = self._flows[(namespace, flow_id, revision)]
            return cached if (allow_deleted or not cached.deleted) else None
        rec = await self.store.get_flow(namespace, flow_id, revision, allow_deleted=allow_deleted)
        if rec is None:
            return None
        key = (rec.namespace, rec.id, rec.revision)
        flow = self._flows.get(key)
        if flow is None:
            broken = self._broken.get(key)
            if broken is None:
                source = rec.source
                if rec.deleted and not source:
                    prev = [r for r in await self.store.list_flow_revisions(namespace, flow_id) if r.source]
                    source = prev[-1].source if prev else ""
                try:
                    flow = await self._parse(source, rec.revision)
                except FlowValidationError as exc:
                    broken = self._broken[key] = exc
                    log.warning("stored flow %s.%s revision %d is invalid and is skipped: %s",
                                rec.namespace, rec.id, rec.revision, str(exc).replace("\n", "; ")[:1000])
            if broken is not None:
                if skip_invalid:
                    return None
                raise broken
            assert flow is not None
            flow.deleted = rec.deleted
            self._flows[key] = flow
        return flow

    async def list_flow_revisions(self, namespace: str, flow_id: str) -> list[Flow]:
        out = []
        for rec in await self.store.list_flow_revisions(namespace, flow_id):
            if rec.deleted:
                continue
            flow = await self.get_flow(namespace, flow_id, rec.revision, allow_deleted=True, skip_invalid=True)
            if flow is not None:
                out.append(flow)
        return out

    async def list_flows(self, namespace: str | None = None) -> list[Flow]:
        """The latest revision of every flow (in ``namespace``); stored flows that no longer parse are skipped."""
        out = []
        for rec in await self.store.list_flows(namespace):
            flow = await self.get_flow(rec.namespace, rec.id, rec.revision, skip_invalid=True)
            if flow is not None:
                out.append(flow)
        return out

    async def delete_flow(self, namespace: str, flow_id: str) -> None:
        async with self._flow_lock:
            rec = await self.store.get_flow(namespace, flow_id)
            if rec is None:
                raise NotFound(f"Flow '{namespace}.{flow_id}' not found")
            await self.store.save_flow(FlowRecord(namespace, flow_id, rec.revision + 1, rec.source, deleted=True,
                                                  updated=now()))
            self._latest.pop((namespace, flow_id), None)

    async def validate_source(self, source: str) -> list[dict[str, Any]]:
        """``POST /flows/validate``: one result per document (a long source on a worker thread)."""
        if not _parse_in_thread(source):
            return validate_flow_source(source, registry=self.registry)
        return await trio.to_thread.run_sync(lambda: validate_flow_source(source, registry=self.registry),
                                             limiter=self.parse_limiter)

    def plugins(self) -> list[type[Plugin]]:
        return list(self.registry.canonical().values())

    #### executions: creation and lookup ################################################################

    async def create_execution(self, namespace: str, flow_id: str, *, inputs: Mapping[str, Any] | None = None,
                               files: Mapping[str, tuple[str, Path]] | None = None,
                               labels: Sequence[tuple[str, str]] = (), revision: int | None = None,
                               schedule_date: datetime | None = None, trigger: dict[str, Any] | None = None,
                               parent_labels: Sequence[tuple[str, str]] = (), start: bool = True) -> dict[str, Any]:
        """Create an execution (state CREATED, inputs typed and stored) and start it. Durable on return.

        ``files`` maps FILE input ids to ``(file name, local path)`` of files the caller created for this
        call: they are *moved* into storage. Every other FILE value is a string checked by
        :mod:`.fileinputs` (``kestra:///`` of the namespace, ``nsfile:///``, allowed ``file:///``) —
        never a path."""
        flow = await self.get_flow(namespace, flow_id, revision)
        if flow is None:
            raise NotFound("Requested Flow is not found." if revision is None
                           else f"Flow '{namespace}.{flow_id}' revision {revision} not found")
        if flow.disabled:
            raise IllegalState("Cannot execute a disabled flow")
        ex = _ex_ops.new_execution(self, flow, labels=labels, trigger=trigger, schedule_date=schedule_date,
                                   parent_labels=parent_labels)
        ex.inputs = _ex_ops.resolve_execution_inputs(self, flow, ex, inputs or {}, files or {})
        await self.store.save_execution(ex.to_dict(private=True))
        self.publish_execution(ex)
        if start:
            self._schedule_start(ex, flow)
        return ex.to_dict()

    def _schedule_start(self, ex: Execution, flow: Flow) -> None:
        assert self._nursery is not None, "the engine is not running"
        if ex.schedule_date is not None and ex.schedule_date > now():
            self._nursery.start_soon(self._start_later, ex, flow)
        else:
            _ex_ops.admit(self, ex, flow)

    async def _start_later(self, ex: Execution, flow: Flow) -> None:
        assert ex.schedule_date is not None
        await trio.sleep(max((ex.schedule_date - now()).total_seconds(), 0))
        _ex_ops.admit(self, ex, flow)

    def _start_actor(self, ex: Execution, flow: Flow) -> ExecutionActor:
        actor = ExecutionActor(self, ex, flow)
        self.actors[ex.id] = actor
        self._ended.setdefault(ex.id, trio.Event())
        assert self._nursery is not None
        self._nursery.start_soon(self._run_actor, actor)
        return actor

    async def _run_actor(self, actor: ExecutionActor) -> None:
        try:
            await actor.run()
        finally:
            ex = actor.ex
            # stopped while afterExecution tasks run: they resume at the next start (not an end yet)
            ended = ex.state.current.is_terminated and actor.machine.after_execution_done()
            with trio.CancelScope(shield=True):
                if ex.state.current.is_terminated:
                    await self.store.save_execution(ex.to_dict(private=True))
            if ended and actor.flow.after_execution:
                self.after_execution.discard(ex.id)
            if self.actors.get(ex.id) is actor:
                del self.actors[ex.id]
            actor.finished.set()
            if ended:
                self.publish_execution(ex)
                ev = self._ended.pop(ex.id, None)
                if ev is not None:
                    ev.set()
                await _ex_ops.after_end(self, ex, actor.flow)

    async def settle(self, execution_id: str) -> None:
        """Wait until the actor of a terminated execution is gone (its final write is durable)."""
        actor = self.actors.get(execution_id)
        if actor is not None and actor.ex.state.current.is_terminated:
            await actor.finished.wait()

    async def get_execution(self, execution_id: str) -> dict[str, Any] | None:
        actor = self.actors.get(execution_id)
        if actor is not None:
            return actor.ex.to_dict()
        doc = await self.store.get_execution(execution_id)
        if doc is None:
            return None
        doc.pop("_extra", None)
        for tr in doc.get("taskRunList") or []:
            tr.pop("_extra", None)
        return doc

    async def _require(self, execution_id: str) -> Execution:
        actor = self.actors.get(execution_id)
        if actor is not None:
            return actor.ex
        doc = await self.store.get_execution(execution_id)
        if doc is None:
            raise NotFound(f"Execution '{execution_id}' not found")
        return Execution.from_dict(doc)

    async def wait_for_end(self, execution_id: str) -> dict[str, Any]:
        """Wait until the execution is terminated (not PAUSED); returns its final document."""
        while True:
            ex = await self._require(execution_id)
            if ex.state.current.is_terminated and execution_id not in self.actors:
                return (await self.get_execution(execution_id)) or ex.to_dict()
            ev = self._ended.setdefault(execution_id, trio.Event())
            await ev.wait()

    #### executions: lifecycle actions ##################################################################

    async def kill(self, execution_id: str, *, cascade: bool = True) -> None:
        """Kill a non-terminated execution (KILLING, then KILLED). With ``cascade`` its subflow executions
        are killed too — also when the execution itself already ended, as Kestra does (202); without
        ``cascade`` killing a terminated execution is an :class:`IllegalState` (409)."""
        ex = await self._require(execution_id)
        if ex.state.current.is_terminated:
            if not cascade:
                raise IllegalState("Execution is already terminated")
            self.kill_children(ex, "parent execution killed")
            return
        actor = self.actors.get(execution_id)
        if actor is None:
            await _ex_ops.kill_idle(self, ex)
            return
        await self._request(actor, KillRequested("killed by API", cascade=cascade, applied=trio.Event()))

    def kill_children(self, ex: Execution, reason: str) -> None:
        """Send a kill to every running execution started by ``ex`` (Subflow, ForEachItem)."""
        assert self._nursery is not None
        for actor in list(self.actors.values()):
            if _ex_ops.parent_execution_id(actor.ex) != ex.id:
                continue
            if not actor.ex.state.current.is_terminated:
                self._nursery.start_soon(actor.send, KillRequested(reason))

    async def pause(self, execution_id: str) -> None:
        ex = await self._require(execution_id)
        actor = self.actors.get(execution_id)
        if actor is None or ex.state.current is not State.RUNNING:
            raise IllegalArgument("The execution is not running")
        await self._request(actor, PauseRequested(trio.Event()))

    async def resume(self, execution_id: str, *, inputs: Mapping[str, Any] | None = None,
                     files: Mapping[str, tuple[str, Path]] | None = None) -> dict[str, Any]:
        ex = await self._require(execution_id)
        if ex.state.current is not State.PAUSED:
            raise IllegalState("The execution is not paused")
        actor = self.actors.get(execution_id)
        if actor is None:
            raise IllegalState("The execution is not running in this server")
        on_resume = _ex_ops.resolve_on_resume(self, actor, inputs or {}, files or {})
        await self._request(actor, ResumeRequested(on_resume, trio.Event()))
        return actor.ex.to_dict()

    async def _request(self, actor: ExecutionActor, msg: KillRequested | PauseRequested | ResumeRequested) -> None:
        """Send a request to an execution actor; return once it was applied and the resulting document is
        durable (committed by the store), so an acknowledged request survives a crash."""
        assert msg.applied is not None
        await actor.send(msg)
        await msg.applied.wait()
        if actor.ex.state.current.is_terminated and not isinstance(msg, KillRequested):
            # the engine writes the terminal document itself (a kill is durable once KILLING is: a restart
            # finishes it)
            await actor.finished.wait()
        await self.store.flush()

    async def restart(self, execution_id: str, *, revision: int | None = None) -> dict[str, Any]:
        return await _ex_ops.restart(self, execution_id, revision)

    async def replay(self, execution_id: str, *, task_run_id: str | None = None,
                     revision: int | None = None, inputs: Mapping[str, Any] | None = None,
                     files: Mapping[str, tuple[str, Path]] | None = None) -> dict[str, Any]:
        return await _ex_ops.replay(self, execution_id, task_run_id, revision, inputs, files)

    async def change_status(self, execution_id: str, state: str) -> dict[str, Any]:
        return await _ex_ops.change_status(self, execution_id, state)

    async def set_labels(self, execution_id: str, labels: Sequence[tuple[str, str]]) -> dict[str, Any]:
        return await _ex_ops.set_labels(self, execution_id, labels)

    async def set_task_run_state(self, execution_id: str, task_run_id: str, state: str) -> dict[str, Any]:
        return await _ex_ops.set_task_run_state(self, execution_id, task_run_id, state)

    async def unqueue(self, execution_id: str, state: str | None = None) -> dict[str, Any]:
        return await _ex_ops.unqueue(self, execution_id, state)

    async def force_run(self, execution_id: str) -> dict[str, Any]:
        return await _ex_ops.force_run(self, execution_id)

    async def delete_execution(self, execution_id: str, *, delete_logs: bool = True, delete_metrics: bool = True,
                               delete_storage: bool = True) -> None:
        await self.settle(execution_id)
        ex = await self._require(execution_id)
        if execution_id in self.actors:
            raise IllegalState("Cannot delete a running execution; kill it first")
        from falconet.runtime.store.base import LogQuery

        if delete_logs:
            await self.store.delete_logs(LogQuery(execution_id=execution_id))
        if delete_metrics:
            await self.store.delete_metrics(execution_id)
        if delete_storage:
            await trio.to_thread.run_sync(
                self.storage.delete_prefix, self.storage.execution_prefix(ex.namespace, ex.flow_id, ex.id))
        await self.store.delete_execution(execution_id)

    async def validate_inputs(self, namespace: str, flow_id: str, *, inputs: Mapping[str, Any] | None = None,
                              files: Mapping[str, tuple[str, Path]] | None = None) -> dict[str, Any]:
        flow = await self.get_flow(namespace, flow_id)
        if flow is None:
            raise NotFound("Requested Flow is not found.")
        return _ex_ops.validate_inputs_report(self, flow, inputs or {}, files or {})

    async def webhook(self, namespace: str, flow_id: str, key: str, *, method: str, body: bytes,
                      headers: Mapping[str, list[str]], parameters: Mapping[str, list[str]]) -> dict[str, Any] | None:
        return await _ex_ops.webhook(self, namespace, flow_id, key, method=method, body=body, headers=headers,
                                     parameters=parameters)

    #### subflows ########################################################################################

    async def run_subflow(self, parent: ExecutionActor, tr: TaskRun, task: TaskSpec) -> None:
        await _ex_ops.run_subflow(self, parent, tr, task)

    #### outputs #########################################################################################

    def render_flow_outputs(self, actor: ExecutionActor, flow: Flow) -> dict[str, Any]:
        return _ex_ops.render_flow_outputs(self, actor, flow)

    #### persistence and events #########################################################################

    def persist(self, ex: Execution, *, publish: bool = True) -> None:
        """Enqueue the document for the store writer (group commit); publish its state unless told not to."""
        self.store.save_execution_nowait(ex.to_dict(private=True))
        if publish:
            self.publish_execution(ex)

    def publish_execution(self, ex: Execution) -> None:
        """Tell the bus's subscribers (which may drop events when slow) and the state watcher (which does
        not: Flow triggers on non-terminal states) that the state of ``ex`` changed."""
        watcher = getattr(self, "watch_execution_state", None)
        if watcher is not None:
            watcher(ex)
        if self.bus.wants("execution", ex.id, ex.namespace, ex.flow_id):
            state = ex.state.current
            self.bus.publish(Event("execution", ex.id, ex.namespace, ex.flow_id, state.value,
                                   state.is_terminated and ex.id not in self.actors, ex.to_dict()))

    def publish_task_run(self, ex: Execution, tr: TaskRun) -> None:
        if self.bus.wants("taskrun", ex.id, ex.namespace, ex.flow_id):
            state = ex.state.current
            self.bus.publish(Event("taskrun", ex.id, ex.namespace, ex.flow_id, state.value, False, tr.to_dict()))

    def emit_log(self, entry: dict[str, Any]) -> None:
        self.store.append_logs_nowait((entry,))
        if self.bus.wants("log", entry["executionId"], entry["namespace"], entry["flowId"]):
            self.bus.publish(Event("log", entry["executionId"], entry["namespace"], entry["flowId"], "", False, entry))

    def emit_metric(self, entry: dict[str, Any]) -> None:
        self.store.append_metrics_nowait((entry,))

    #### key-value store ################################################################################

    def kv_cached(self, namespace: str, key: str) -> dict[str, Any] | None:
        entry = self._kv.get((namespace, key))
        if entry is None:
            return None
        exp = entry.get("expirationDate")
        if exp and exp < format_instant(now()):
            return None
        return entry

    async def kv_get(self, namespace: str, key: str) -> dict[str, Any] | None:
        entry = await self.store.kv_get(namespace, key)
        if entry is not None:
            self._kv[(namespace, key)] = entry
        return entry

    async def kv_put(self, namespace: str, key: str, value: Any, *, kv_type: str | None = None,
                     ttl: str | None = None, description: str | None = None) -> None:
        entry = _ex_ops.kv_entry(self._kv.get((namespace, key)), value, kv_type, ttl, description)
        await self.store.kv_put(namespace, key, entry)
        self._kv[(namespace, key)] = dict(entry, key=key)

    async def kv_delete(self, namespace: str, key: str) -> bool:
        self._kv.pop((namespace, key), None)
        return await self.store.kv_delete(namespace, key)

    #### secrets ########################################################################################

    def secret(self, key: str) -> str:
        from falconet.runtime.expr.render import ExpressionError

        name = "SECRET_" + key.upper()
        raw = os.environ.get(name)
        if raw is None:
            raise ExpressionError(f"Cannot find secret for key '{key}'.")
        try:
            return base64.b64decode(raw).decode("utf-8")
        except ValueError as exc:
            raise ExpressionError(f"Secret '{key}' is not valid base64") from exc

    def encrypt(self, plaintext: str, key: str | None = None) -> str:
        from falconet.runtime.flow.inputs import encrypt_secret

        return encrypt_secret(key or self._secret_key(), plaintext)

    def decrypt(self, ciphertext: str, key: str | None = None) -> str:
        from falconet.runtime.flow.inputs import decrypt_secret

        return decrypt_secret(key or self._secret_key(), ciphertext)

    def _secret_key(self) -> str:
        if not self.config.secret_key:
            raise IllegalArgument("Unable to use a SECRET input as encryption is not configured "
                                  "(kestra.encryption.secret-key)")
        return self.config.secret_key


    #### convenience for embedders and tests ############################################################

    async def execute(self, namespace: str, flow_id: str, inputs: Mapping[str, Any] | None = None, *,
                      labels: Sequence[tuple[str, str]] | Mapping[str, str] = (),
                      files: Mapping[str, tuple[str, Path]] | None = None, revision: int | None = None,
                      wait: bool = True) -> dict[str, Any]:
        """Create an execution and (by default) wait for its end; returns the Kestra execution JSON."""
        pairs = list(labels.items()) if isinstance(labels, Mapping) else list(labels)
        ex = await self.create_execution(namespace, flow_id, inputs=inputs or {}, files=files or {}, labels=pairs,
                                         revision=revision)
        return await self.wait_for_end(ex["id"]) if wait else ex

    async def get_logs(self, execution_id: str, *, min_level: str | None = None) -> list[dict[str, Any]]:
        """Stored log lines of an execution, in order."""
        from falconet.runtime.store.base import LogQuery

        await self.store.flush()
        rows, _ = await self.store.get_logs(LogQuery(execution_id=execution_id, min_level=min_level))
        return rows


#### Opening an engine #######################################################################################

@contextlib.asynccontextmanager
async def open_engine(data_dir: str | Path | None = None, *, store: str | Store | None = None,
                      config: Config | None = None) -> AsyncIterator[Engine]:
    """Open an engine inside the current trio run; cancelled and closed on exit.

    ``store`` is ``"sqlite"`` (durable, under ``data_dir``), ``"memory"`` or a :class:`Store` instance.
    With no ``data_dir`` a temporary folder is used and removed on exit.
    """
    import tempfile

    from falconet.runtime.kernel.recovery import TEMP_PREFIX, clean_abandoned_temp_dirs
    from falconet.runtime.store.memory import MemoryStore

    cfg = config or Config()
    tmp: Path | None = None
    if data_dir is not None:
        cfg.data_dir = Path(data_dir)
    elif config is None:  # in the system temp dir, locked below: those of crashed processes are deleted first
        await trio.to_thread.run_sync(clean_abandoned_temp_dirs)
        tmp = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX))
        cfg.data_dir = tmp
    cfg.data_dir.mkdir(parents=True, exist_ok=True)
    kind = store if store is not None else cfg.store
    if isinstance(kind, Store):
        st = kind
    elif kind == "memory":
        st = MemoryStore()
    elif kind == "sqlite":
        from falconet.runtime.store.sqlite import SQLiteStore

        st = SQLiteStore(cfg.data_dir / "falconet.db")
    else:
        raise ValueError(f"unknown store {kind!r}")
    storage = InternalStorage(cfg.storage_dir)
    if not cfg.secret_key:
        cfg.secret_key = _data_dir_secret(cfg.data_dir)
    engine = Engine(cfg, st, storage)
    try:
        engine.lock_data_dir()  # before anything opens: a clear DataDirInUse, not an exception group
    except BaseException:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        raise
    try:
        await st.open()
        async with trio.open_nursery() as nursery:
            await nursery.start(engine.run)
            try:
                yield engine
            finally:
                nursery.cancel_scope.cancel()
    finally:
        with trio.CancelScope(shield=True):
            await st.close()
        engine._dir_lock.release()
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def _data_dir_secret(data_dir: Path) -> str:
    """The key for SECRET inputs when ``kestra.encryption.secret-key`` is not configured: 32 random
    characters generated once per data folder and kept in ``<data-dir>/secret.key`` (mode 0600)."""
    import secrets

    path = data_dir / "secret.key"
    try:
        key = path.read_text(encoding="ascii").strip()
        if len(key) == 32:
            return key
    except FileNotFoundError:
        pass
    key = secrets.token_urlsafe(24)[:32]
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(key)
    return key


__all__ = ["Engine", "open_engine", "timedelta"]

