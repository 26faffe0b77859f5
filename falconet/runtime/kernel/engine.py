"""The Engine: the root actor. Supervises one ExecutionActor per running execution in its nursery and wires
the services that own the engine's state (see :mod:`.services`): the flow repository, admission, the
execution lifecycle, the KV cache, secrets and input typing. Its methods are what the HTTP layer, the CLI
and embedders call.

Open one with :func:`open_engine` (an async context manager); its actors live in the engine's nursery,
callers never see it.
"""
from __future__ import annotations

import contextvars
import logging
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Mapping, Sequence

import trio

from falconet.runtime.cluster import make_cluster
from falconet.runtime.kernel import executions as _executions
from falconet.runtime.kernel.actors import ExecutionActor
from falconet.runtime.kernel.messages import KillRequested
from falconet.runtime.kernel.admission import Admission
from falconet.runtime.kernel.bus import Bus, Event
from falconet.runtime.kernel.clock import SYSTEM, Clock
from falconet.runtime.config import Config
from falconet.runtime.kernel.errors import FalconetError, IllegalState, NotFound
from falconet.runtime.kernel.executions import ExecutionInputs
from falconet.runtime.expr.render import Renderer
from falconet.runtime.flow.model import Flow
from falconet.runtime.kernel.flowrepo import FlowRepository
from falconet.runtime.kernel.kvcache import KVCache
from falconet.runtime.kernel.lifecycle import ExecutionLifecycle
from falconet.runtime.kernel.progress import ProgressWrites
from falconet.runtime.kernel.execution import Execution, TaskRun, without_private
from falconet.runtime.kernel.machine import StartSubflow
from falconet.sdk.plugin import Plugin, load_plugins
from falconet.runtime.kernel.recovery import (
    DataDirInUse, DataDirLock, Marks, ProcessRegistry, clean_temp, task_run_directory,
)
from falconet.runtime.kernel.secretstore import Secrets
from falconet.runtime.kernel.state import State
from falconet.runtime.kernel.taskrun import FINAL_WRITE_TIMEOUT
from falconet.runtime.storage.base import Storage
from falconet.runtime.store.base import LogQuery, Store
from falconet.runtime.expr.variables import kestra_envs

if TYPE_CHECKING:  # pragma: no cover
    from falconet.runtime.orchestration import Orchestration
    from falconet.runtime.kernel.services import ExecutionHooks
    from falconet.runtime.cluster.relay import EventRelay

log = logging.getLogger("falconet.engine")



def detached(nursery: trio.Nursery, fn: Callable[..., Awaitable[Any]], *args: Any) -> None:
    """Start ``fn(*args)`` in ``nursery`` with no context variables: a trio task starts with a copy of its
    spawner's, and work the engine runs outlives the request that caused it — an execution's actor must
    not keep that request's context (quart's request, its headers and form data) alive until it ends."""
    contextvars.Context().run(nursery.start_soon, fn, *args)


class Engine:
    def __init__(self, config: Config, store: Store, storage: Storage, *, clock: Clock = SYSTEM):
        self.config = config
        self.clock = clock  # every date and deadline of the engine (see clock.py)
        self.store = store
        self.storage = storage
        self.bus = Bus(clock)
        self.renderer = Renderer()
        self.registry = load_plugins()
        self.envs = kestra_envs(config.env_prefix)
        self.actors: dict[str, ExecutionActor] = {}
        #: writes the task-run progress of running executions (see ExecutionActor._flush); runs in run()
        self.progress_writes = ProgressWrites()
        self.processes = ProcessRegistry(config.data_dir / "run" / "processes")
        self.after_execution = Marks(config.data_dir / "run" / "after-execution")  # ended, afterExecution pending
        #: orchestration across executions (scheduler, triggers…), and the hooks it gives the kernel: both set
        #: by :meth:`run`
        self.orchestration: Orchestration | None = None
        self.execution_hooks: ExecutionHooks[ExecutionActor] | None = None
        # the services, each owning its state
        self.flows = FlowRepository(config, store, self.registry, clock)
        self.kv = KVCache(store)
        self.secrets = Secrets(config)
        self.inputs = ExecutionInputs(config, storage, self.renderer, self.envs)
        self.admission = Admission(self, store)
        self.lifecycle = ExecutionLifecycle(self, store, storage, self.flows, self.admission, self.inputs)
        #: this node of the cluster: owns every execution on memory/SQLite, leases them on PostgreSQL
        self.cluster = make_cluster(self)
        self.node_id = self.cluster.node_id
        self._dir_lock = DataDirLock(config.data_dir)
        self._ended: dict[str, trio.Event] = {}
        self._nursery: trio.Nursery | None = None
        #: live updates between the nodes sharing a PostgreSQL store (None with any other store): set by run
        self.relay: EventRelay | None = None

    #### lifecycle #######################################################################################

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Resume unfinished executions, then serve until cancelled (inside :func:`open_engine`, which installs
        the engine's clock in the trio run). Raises :class:`DataDirInUse` when another live engine owns the
        data folder (two engines would resume the same executions twice)."""
        from falconet.runtime.orchestration import Orchestration, run_services

        self.lock_data_dir()
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                await nursery.start(self.progress_writes.run)
                if self.orchestration is None:
                    self.orchestration = Orchestration(self)
                self.execution_hooks = self.orchestration
                # scripts of a crashed server die before their task runs are attempted again
                await self.clock.run_sync_in_thread(self.processes.reap)
                if self.cluster.shared:   # other nodes share the store (nothing loaded otherwise)
                    from falconet.runtime.cluster.relay import start_relay

                    self.relay = await start_relay(self, nursery)
                    # concurrency slots freed on other nodes wake this node's queues (NOTIFY on its listener)
                    await nursery.start(self.admission.follow, self.relay.listener)
                await self._load()
                await nursery.start(self.cluster.run, self.resume_executions)
                await nursery.start(run_services, self.orchestration)
                task_status.started(self)
                await trio.sleep_forever()
        finally:
            self._dir_lock.release()

    def lock_data_dir(self) -> None:
        """Own the data folder (see :class:`DataDirLock`) or raise :class:`DataDirInUse`."""
        if not self._dir_lock.acquire():
            raise DataDirInUse(self.config.data_dir)

    def unlock_data_dir(self) -> None:
        self._dir_lock.release()

    async def _load(self) -> None:
        """Delete the temporary files of a previous run, then resume the executions found unfinished (on a
        shared store, the cluster claims them instead: :meth:`resume_executions`)."""
        await self.flows.load()
        await self.kv.load({ns for ns, _ in self.flows.latest()})
        unfinished = [Execution.from_dict(doc) for doc in await self.store.list_unfinished_executions()]
        keep = {task_run_directory(self.temp_root(), tr.id).name for ex in unfinished for tr in ex.task_run_list
                if not tr.state.current.is_terminated}
        await self.clock.run_sync_in_thread(clean_temp, self.temp_root(), keep)
        await self.clock.run_sync_in_thread(self.storage.clean_partial)
        if not self.cluster.shared:
            unfinished += await self._after_execution_pending({ex.id for ex in unfinished})
            await self.resume_executions(unfinished)

    async def resume_executions(self, executions: Sequence[Execution | dict[str, Any]]) -> None:
        """Resume executions this engine now owns, found unfinished at start-up or claimed from a node that
        died, with the restart-after-crash rules: never started (CREATED, QUEUED) -> admission again;
        KILLING -> finishes its kill; others -> running task runs are attempted again; ended with
        ``afterExecution`` tasks pending -> those run."""
        from falconet.runtime.orchestration import admission_order

        resumed = [ex if isinstance(ex, Execution) else Execution.from_dict(ex) for ex in executions]
        _executions.propagate_killing(resumed)
        waiting: list[tuple[Execution, Flow]] = []
        for ex in resumed:
            flow = await self.get_flow(ex.namespace, ex.flow_id, ex.flow_revision, allow_deleted=True,
                                       skip_invalid=True)
            if flow is None:
                continue
            if ex.state.current.is_terminated and self.cluster.shared and not flow.after_execution:
                self.cluster.release(ex.id)  # its node died after storing the end, before dropping the lease
                continue
            if ex.state.current in (State.CREATED, State.QUEUED) and not ex.task_run_list:
                waiting.append((ex, flow))  # never started: scheduleDate and concurrency apply again
                continue
            if ex.state.current is not State.KILLING:  # a KILLING one finishes its kill (ExecutionActor.run)
                _executions.prepare_resume(ex)
            self.start_actor(ex, flow)
        for ex, flow in sorted(waiting, key=lambda pair: admission_order(pair[0])):
            self.admission.schedule(ex, flow)

    async def _after_execution_pending(self, unfinished: set[str]) -> list[Execution]:
        """Terminated executions whose ``afterExecution`` tasks had not finished when the server stopped."""
        out = []
        for execution_id in await self.clock.run_sync_in_thread(self.after_execution.ids):
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

    #### flows (the flow repository) ###################################################################

    async def create_flow(self, source: str) -> Flow:
        return await self.flows.create(source)

    async def update_flow(self, namespace: str, flow_id: str, source: str) -> Flow:
        return await self.flows.update(namespace, flow_id, source)

    async def put_flow(self, source: str) -> Flow:
        """Create or update (used by the CLI and namespace/bulk updates)."""
        return await self.flows.put(source)

    async def get_flow(self, namespace: str, flow_id: str, revision: int | None = None,
                       allow_deleted: bool = False, skip_invalid: bool = False) -> Flow | None:
        """See :meth:`FlowRepository.get`."""
        return await self.flows.get(namespace, flow_id, revision, allow_deleted, skip_invalid)

    async def list_flows(self, namespace: str | None = None) -> list[Flow]:
        """The latest revision of every flow (in ``namespace``); stored flows that no longer parse are skipped."""
        return await self.flows.list_latest(namespace)

    async def delete_flow(self, namespace: str, flow_id: str) -> None:
        await self.flows.delete(namespace, flow_id)

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
        ex = _executions.new_execution(flow, labels=labels, trigger=trigger, schedule_date=schedule_date,
                                       parent_labels=parent_labels)
        ex.inputs = self.inputs.resolve(flow, ex, inputs or {}, files or {})
        await self.cluster.own(ex.id)  # leased before it is stored: no other node claims it
        doc = ex.to_dict(private=True)
        await self.store.save_execution(doc)
        changes = ex.state.changes
        self.publish_execution(ex)
        if start:
            self.admission.schedule(ex, flow)
        # the stored document is the answer unless admission changed the state (QUEUED, CANCELLED…)
        return without_private(doc) if ex.state.changes == changes else ex.to_dict()

    #### supervision ###################################################################################

    def start_actor(self, ex: Execution, flow: Flow) -> ExecutionActor:
        """Start the actor of ``ex`` in the engine's nursery."""
        actor = ExecutionActor(self, ex, flow)
        self.actors[ex.id] = actor
        self._ended.setdefault(ex.id, trio.Event())
        assert self._nursery is not None
        detached(self._nursery, self._run_actor, actor)
        return actor

    async def _run_actor(self, actor: ExecutionActor) -> None:
        try:
            await actor.run()
        finally:
            ex = actor.ex
            # stopped while afterExecution tasks run: they resume at the next start (not an end yet)
            ended = ex.state.current.is_terminated and actor.machine.after_execution_done()
            if ex.state.current.is_terminated:
                # bounded: a stalled store must not hang a kill or a shutdown forever
                with trio.move_on_after(FINAL_WRITE_TIMEOUT, shield=True) as write:
                    actor.final_doc = await self._save_final(ex)
                if write.cancelled_caught:  # not durable: announced by nobody, resumed by the next start
                    log.error("execution %s: its %s state was not stored within %s s; the next start recovers it",
                              ex.id, ex.state.current.value, FINAL_WRITE_TIMEOUT)
                    ended = False
            if ended and actor.flow.after_execution:
                self.after_execution.discard(ex.id)
            if self.actors.get(ex.id) is actor:
                del self.actors[ex.id]
            actor.finished.set()
            if ended:
                self.publish_execution(ex)
                self.mark_ended(ex.id)
                self.admission.release_slot(actor.flow)
                if self.execution_hooks is not None:
                    await self.execution_hooks.on_execution_end(ex, actor.flow)
            actor.release()

    def spawn(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> None:
        """Run ``fn(*args)`` in the engine's nursery (background work that outlives its caller)."""
        assert self._nursery is not None, "the engine is not running"
        detached(self._nursery, fn, *args)

    def mark_ended(self, execution_id: str) -> None:
        """Wake the waiters of :meth:`wait_for_end` of an execution that ended (here, or on another node of
        the cluster: see :mod:`falconet.runtime.cluster.relay`); the lease of one ended here goes (once the
        writes queued before are committed)."""
        self.cluster.release(execution_id)
        ev = self._ended.pop(execution_id, None)
        if ev is not None:
            ev.set()

    def recheck_end_waiters(self) -> None:
        """Wake every :meth:`wait_for_end` waiter: each reads its execution again (ends may have been missed)."""
        for execution_id in [i for i in self._ended if i not in self.actors]:
            self._ended.pop(execution_id).set()

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
        return without_private(doc)

    async def load_execution(self, execution_id: str) -> Execution:
        """The execution (its actor's live document when it runs); :class:`NotFound` otherwise."""
        actor = self.actors.get(execution_id)
        if actor is not None:
            return actor.ex
        doc = await self.store.get_execution(execution_id)
        if doc is None:
            raise NotFound(f"Execution '{execution_id}' not found")
        return Execution.from_dict(doc)

    async def wait_for_end(self, execution_id: str) -> dict[str, Any]:
        """Wait until the execution is terminated (not PAUSED); returns its final document. An execution
        another node runs is read from the store again each time its node announces an end.

        An execution that ended here is answered from its actor's document (built a slice of task runs at a
        time when it was not built whole: the server keeps answering meanwhile)."""
        while True:
            # waiting starts before the read: an end announced while the store answers is not missed
            ev = self._ended.setdefault(execution_id, trio.Event())
            actor = self.actors.get(execution_id)
            if actor is None:
                try:
                    doc = await self.store.get_execution(execution_id)
                except BaseException:
                    self._forget_waiter(execution_id, ev)
                    raise
                if doc is None:
                    self._forget_waiter(execution_id, ev)
                    raise NotFound(f"Execution '{execution_id}' not found")
                if State(doc["state"]["current"]).is_terminated and execution_id not in self.actors:
                    self._forget_waiter(execution_id, ev)
                    return without_private(doc)
            await ev.wait()
            if (actor is not None and actor.finished.is_set() and actor.ex.state.current.is_terminated
                    and execution_id not in self.actors):
                if actor.final_doc is not None:
                    return without_private(actor.final_doc)
                return await _public_document(actor.ex)

    def _forget_waiter(self, execution_id: str, ev: trio.Event) -> None:
        if self._ended.get(execution_id) is ev and not ev.statistics().tasks_waiting \
                and execution_id not in self.actors:
            del self._ended[execution_id]

    def kill_children(self, ex: Execution, reason: str) -> None:
        """Send a kill to every running execution started by ``ex`` (Subflow, ForEachItem); in a cluster,
        those other nodes run get it through their owner too."""
        assert self._nursery is not None
        for actor in list(self.actors.values()):
            if _executions.parent_execution_id(actor.ex) != ex.id:
                continue
            if not actor.ex.state.current.is_terminated:
                self._nursery.start_soon(actor.send, KillRequested(reason))
        if self.cluster.shared:
            self._nursery.start_soon(self._kill_remote_children, ex.id)

    async def _kill_remote_children(self, parent_id: str) -> None:
        from falconet.runtime.store.base import ExecutionQuery

        query = ExecutionQuery(trigger_execution_id=parent_id, size=500,
                               states=[s.value for s in State if not s.is_terminated])
        while True:
            docs, _ = await self.store.search_executions(query)
            for doc in docs:
                if doc["id"] in self.actors or _executions.parent_execution_id(Execution.from_dict(doc)) != parent_id:
                    continue
                try:
                    await self.lifecycle.kill(doc["id"])  # carried out by the node that runs it
                except FalconetError as exc:
                    log.warning("execution %s: its child %s was not killed: %s", parent_id, doc["id"], exc)
            if len(docs) < query.size:
                return
            query.page += 1


    #### executions: lifecycle actions (the execution lifecycle) #######################################

    async def kill(self, execution_id: str, *, cascade: bool = True) -> None:
        """See :meth:`ExecutionLifecycle.kill`."""
        await self.lifecycle.kill(execution_id, cascade=cascade)

    async def pause(self, execution_id: str) -> None:
        await self.lifecycle.pause(execution_id)

    async def resume(self, execution_id: str, *, inputs: Mapping[str, Any] | None = None,
                     files: Mapping[str, tuple[str, Path]] | None = None) -> dict[str, Any]:
        return await self.lifecycle.resume(execution_id, inputs=inputs, files=files)

    async def restart(self, execution_id: str, *, revision: int | None = None) -> dict[str, Any]:
        return await self.lifecycle.restart(execution_id, revision)

    async def replay(self, execution_id: str, *, task_run_id: str | None = None,
                     revision: int | None = None, inputs: Mapping[str, Any] | None = None,
                     files: Mapping[str, tuple[str, Path]] | None = None) -> dict[str, Any]:
        return await self.lifecycle.replay(execution_id, task_run_id, revision, inputs, files)

    async def change_status(self, execution_id: str, state: str) -> dict[str, Any]:
        return await self.lifecycle.change_status(execution_id, state)

    async def set_labels(self, execution_id: str, labels: Sequence[tuple[str, str]]) -> dict[str, Any]:
        return await self.lifecycle.set_labels(execution_id, labels)

    async def validate_inputs(self, namespace: str, flow_id: str, *, inputs: Mapping[str, Any] | None = None,
                              files: Mapping[str, tuple[str, Path]] | None = None) -> dict[str, Any]:
        flow = await self.get_flow(namespace, flow_id)
        if flow is None:
            raise NotFound("Requested Flow is not found.")
        return self.inputs.validate_report(flow, inputs or {}, files or {})

    async def webhook(self, namespace: str, flow_id: str, key: str, *, method: str, body: bytes,
                      headers: Mapping[str, list[str]], parameters: Mapping[str, list[str]]) -> dict[str, Any] | None:
        """See :func:`falconet.runtime.orchestration.webhook.handle` (key rendering with secrets, conditions,
        inputs, ``wait`` / ``returnOutputs``)."""
        from falconet.runtime.orchestration.webhook import handle

        return await handle(self, namespace, flow_id, key, method=method, body=body, headers=headers,
                            parameters=parameters)

    async def start_subflow(self, parent: ExecutionActor, command: StartSubflow) -> None:
        """Carry out a :class:`StartSubflow` command of ``parent``: start (or wait again for) the child
        execution(s) of a task run; report the end."""
        await _executions.start_subflow(self, parent, command)

    #### persistence and events #########################################################################

    def persist(self, ex: Execution, *, publish: bool = True) -> None:
        """Enqueue the document for the store writer (group commit); publish its state unless told not to."""
        try:
            head, text = ex.stored_text()
        except (TypeError, ValueError):  # not JSON: the store says so in its own words
            self.store.save_execution_nowait(ex.to_dict(private=True))
        else:
            self.store.save_execution_nowait(head, doc_json=text)
        if self.relay is not None:
            self.relay.announce_execution(ex.id, ex.namespace, ex.flow_id, ex.state.changes)
        if publish:
            self.publish_execution(ex)

    async def _save_final(self, ex: Execution) -> dict[str, Any] | None:
        """Write the terminated document (durable on return); returns it when it was built whole."""
        try:
            head, text = ex.stored_text()
        except (TypeError, ValueError):
            await self.store.save_execution(ex.to_dict(private=True))
            return None
        await self.store.save_execution(head, doc_json=text)
        return head if "taskRunList" in head or not ex.task_run_list else None

    def publish_execution(self, ex: Execution) -> None:
        """Tell the bus's subscribers (which may drop events when slow) and the state watcher (which does
        not: Flow triggers on non-terminal states) that the state of ``ex`` changed."""
        if self.execution_hooks is not None:
            self.execution_hooks.watch_execution_state(ex)
        if self.relay is not None:   # the other nodes' subscribers read it from the store
            self.relay.announce_execution(ex.id, ex.namespace, ex.flow_id, ex.state.changes,
                                          ended=ex.state.current.is_terminated and ex.id not in self.actors)
        state = ex.state.current
        if self.bus.wants("execution", ex.id, ex.namespace, ex.flow_id, state.value):
            self.bus.publish(Event("execution", ex.id, ex.namespace, ex.flow_id, state.value,
                                   state.is_terminated and ex.id not in self.actors, ex.to_dict()))

    def publish_task_run(self, ex: Execution, tr: TaskRun) -> None:
        if self.bus.wants("taskrun", ex.id, ex.namespace, ex.flow_id):
            state = ex.state.current
            self.bus.publish(Event("taskrun", ex.id, ex.namespace, ex.flow_id, state.value, False, tr.to_dict()))

    def emit_log(self, entry: dict[str, Any]) -> None:
        self.store.append_logs_nowait((entry,))
        if self.relay is not None:
            self.relay.announce_log(entry)
        if self.bus.wants("log", entry["executionId"], entry["namespace"], entry["flowId"]):
            self.bus.publish(Event("log", entry["executionId"], entry["namespace"], entry["flowId"], "", False, entry))

    def emit_metric(self, entry: dict[str, Any]) -> None:
        self.store.append_metrics_nowait((entry,))

    #### key-value store (the KV cache) ###############################################################

    async def kv_get(self, namespace: str, key: str) -> dict[str, Any] | None:
        return await self.kv.get(namespace, key)

    async def kv_put(self, namespace: str, key: str, value: Any, *, kv_type: str | None = None,
                     ttl: str | None = None, description: str | None = None) -> None:
        await self.kv.put(namespace, key, value, kv_type=kv_type, ttl=ttl, description=description)

    async def kv_delete(self, namespace: str, key: str) -> bool:
        return await self.kv.delete(namespace, key)

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
        await self.store.flush()
        rows, _ = await self.store.get_logs(LogQuery(execution_id=execution_id, min_level=min_level))
        return rows


async def _public_document(ex: Execution, slice_size: int = 50) -> dict[str, Any]:
    """``ex.to_dict()``, yielding to other tasks between slices of task runs."""
    head = ex.to_dict(task_runs=False)
    if not ex.task_run_list:
        return head
    runs: list[dict[str, Any]] = []
    for start in range(0, len(ex.task_run_list), slice_size):
        runs.extend(tr.to_dict() for tr in ex.task_run_list[start:start + slice_size])
        await trio.lowlevel.checkpoint()
    first = ("id", "namespace", "flowId", "flowRevision")
    return {**{k: head[k] for k in first}, "taskRunList": runs, **{k: v for k, v in head.items() if k not in first}}


__all__ = ["Engine", "timedelta"]
