"""The actions on existing executions: kill, pause, resume, restart, replay, change-status, labels, the state
of a task run, unqueue, force-run, delete. Each acts on the execution's actor through the supervisor when
it runs, on the stored document otherwise. In a cluster each is carried out by the node that owns the
execution (:func:`_routed`, :meth:`~falconet.runtime.cluster.base.Cluster.route`)."""
from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Mapping, Sequence, TypeVar

import trio

from falconet.runtime.cluster.base import NOT_FORWARDED
from falconet.runtime.kernel.messages import KillRequested, PauseRequested, ResumeRequested
from falconet.runtime.kernel.admission import Admission
from falconet.runtime.kernel.errors import BadRequest, IllegalArgument, IllegalState, NotFound
from falconet.runtime.kernel.executions import ExecutionInputs
from falconet.runtime.flow.model import Flow
from falconet.runtime.kernel.flowrepo import FlowRepository
from falconet.runtime.kernel.execution import Execution, TaskRun
from falconet.runtime.kernel.state import State
from falconet.runtime.storage.base import Storage
from falconet.runtime.store.base import LogQuery, Store

if TYPE_CHECKING:  # pragma: no cover
    from falconet.runtime.kernel.actors import ExecutionActor
    from falconet.runtime.kernel.services import Supervisor


F = TypeVar("F", bound=Callable[..., Awaitable[Any]])


def _routed(method: F) -> F:
    """The action runs on the node that owns the execution: forwarded there (its answer returned, its
    error raised) when another node owns it; a single node carries out everything itself."""
    name = method.__name__

    @functools.wraps(method)
    async def routed(self: "ExecutionLifecycle", execution_id: str, *args: Any, **kwargs: Any) -> Any:
        cluster = self.supervisor.cluster
        if cluster.shared:
            answer = await cluster.route(execution_id, name, args, kwargs)
            if answer is not NOT_FORWARDED:
                return answer
        return await method(self, execution_id, *args, **kwargs)

    return routed  # type: ignore[return-value]


class ExecutionLifecycle:
    def __init__(self, supervisor: "Supervisor[ExecutionActor]", store: Store, storage: Storage,
                 flows: FlowRepository, admission: Admission, inputs: ExecutionInputs):
        self.supervisor = supervisor
        self.store = store
        self.storage = storage
        self.flows = flows
        self.admission = admission
        self.inputs = inputs

    #### kill, pause, resume ##############################################################################

    @_routed
    async def kill(self, execution_id: str, *, cascade: bool = True) -> None:
        """Kill a non-terminated execution (KILLING, then KILLED). With ``cascade`` its subflow executions
        are killed too — also when the execution itself already ended, as Kestra does (202); without
        ``cascade`` killing a terminated execution is an :class:`IllegalState` (409)."""
        ex = await self.supervisor.load_execution(execution_id)
        if ex.state.current.is_terminated:
            if not cascade:
                raise IllegalState("Execution is already terminated")
            self.supervisor.kill_children(ex, "parent execution killed")
            return
        actor = self.supervisor.actors.get(execution_id)
        if actor is None:
            await self._kill_idle(ex)
            return
        await self._request(actor, KillRequested("killed by API", cascade=cascade, applied=trio.Event()))

    async def _kill_idle(self, ex: Execution) -> None:
        """Kill an execution that has no actor (CREATED with a schedule date, QUEUED)."""
        ex = self.admission.take(ex.id) or ex
        ex.state.set(State.KILLING)
        for tr in ex.task_run_list:
            if not tr.state.current.is_terminated:
                tr.state.set(State.KILLED)
        ex.state.set(State.KILLED)
        await self.store.save_execution(ex.to_dict(private=True))
        self.supervisor.publish_execution(ex)
        self.supervisor.mark_ended(ex.id)

    @_routed
    async def pause(self, execution_id: str) -> None:
        ex = await self.supervisor.load_execution(execution_id)
        actor = self.supervisor.actors.get(execution_id)
        if actor is None or ex.state.current is not State.RUNNING:
            raise IllegalArgument("The execution is not running")
        await self._request(actor, PauseRequested(trio.Event()))

    @_routed
    async def resume(self, execution_id: str, *, inputs: Mapping[str, Any] | None = None,
                     files: Mapping[str, tuple[str, Path]] | None = None) -> dict[str, Any]:
        ex = await self.supervisor.load_execution(execution_id)
        if ex.state.current is not State.PAUSED:
            raise IllegalState("The execution is not paused")
        actor = self.supervisor.actors.get(execution_id)
        if actor is None:
            raise IllegalState("The execution is not running in this server")
        on_resume = self.inputs.on_resume(actor, inputs or {}, files or {})
        await self._request(actor, ResumeRequested(on_resume, trio.Event()))
        return actor.ex.to_dict()

    async def _request(self, actor: "ExecutionActor", msg: KillRequested | PauseRequested | ResumeRequested) -> None:
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

    #### restart / replay #################################################################################

    @_routed
    async def restart(self, execution_id: str, revision: int | None) -> dict[str, Any]:
        await self.supervisor.settle(execution_id)
        running = self.supervisor.actors.get(execution_id)
        if running is not None and running.ex.state.current is not State.PAUSED:
            raise IllegalState("Execution must be terminated to be restarted")
        ex = await self.supervisor.load_execution(execution_id)
        if not (ex.state.current.is_terminated or ex.state.current is State.PAUSED):
            raise IllegalState("Execution must be terminated to be restarted")
        flow = await self.flows.get(ex.namespace, ex.flow_id,
                                    revision if revision is not None else ex.flow_revision, allow_deleted=True)
        if flow is None:
            raise NotFound("Flow not found")
        targets = [tr for tr in ex.task_run_list if tr.state.current in (State.FAILED, State.PAUSED, State.KILLED)
                   and not any(c.parent_task_run_id == tr.id for c in ex.task_run_list
                               if c.state.current in (State.FAILED, State.PAUSED, State.KILLED))]
        if not targets:
            raise IllegalArgument("No task found to restart execution from!")
        errors_ids = _errors_task_ids(flow)
        remove = {tr.id for tr in ex.task_run_list if tr.task_id in errors_ids}
        remove = _descendants(ex, remove)
        ancestor_ids: set[str] = set()
        for tr in targets:
            ancestor_ids.update(a.id for a in _ancestors(ex, tr))
        # children of restarted flowables are recreated
        leaf_ids = {tr.id for tr in targets}
        ex.task_run_list = [tr for tr in ex.task_run_list if tr.id not in remove]
        for tr in ex.task_run_list:
            if tr.id in leaf_ids:
                tr.runtime.dispatched = False
                tr.runtime.resumed = False
                tr.runtime.subflow_state = None
                tr.state.set(State.RESTARTED)
            elif tr.id in ancestor_ids:
                tr.state.set(State.RUNNING)
        if revision is not None:
            ex.flow_revision = flow.revision
        ex.runtime.manual_pause = False
        old_actor = self.supervisor.actors.get(execution_id)
        if old_actor is not None:
            await old_actor.send(KillRequested("restart"))
            await old_actor.done.wait()
        ex.state.set(State.RESTARTED)
        ex.metadata = dict(ex.metadata, attemptNumber=int(ex.metadata.get("attemptNumber", 1)) + 1)
        labels = [lb for lb in ex.labels if lb["key"] != "system.restarted"]
        ex.labels = labels + [{"key": "system.restarted", "value": "true"}]
        await self.supervisor.cluster.own(ex.id)
        await self.store.save_execution(ex.to_dict(private=True))
        self.supervisor.publish_execution(ex)
        self.supervisor.start_actor(ex, flow)
        return ex.to_dict()

    @_routed
    async def replay(self, execution_id: str, task_run_id: str | None, revision: int | None,
                     inputs: Mapping[str, Any] | None = None,
                     files: Mapping[str, tuple[str, Path]] | None = None) -> dict[str, Any]:
        """A new execution replaying ``execution_id`` (from ``task_run_id`` when given); with ``inputs``
        (Kestra's ``replay-with-inputs``) its inputs are typed afresh from those instead of copied."""
        await self.supervisor.settle(execution_id)
        src = await self.supervisor.load_execution(execution_id)
        if execution_id in self.supervisor.actors:
            raise IllegalState("Execution must be terminated to be replayed")
        flow = await self.flows.get(src.namespace, src.flow_id,
                                    revision if revision is not None else src.flow_revision, allow_deleted=True)
        if flow is None:
            raise NotFound("Flow not found")
        new = Execution(namespace=src.namespace, flow_id=src.flow_id, flow_revision=flow.revision, inputs=src.inputs,
                        labels=[dict(lb) for lb in src.labels], trigger=src.trigger, parent_id=src.id,
                        original_id=src.original_id)
        new.metadata = {"attemptNumber": int(src.metadata.get("attemptNumber", 1)) + 1,
                        "originalCreatedDate": src.metadata.get("originalCreatedDate")}
        if inputs is not None:
            new.inputs = self.inputs.resolve(flow, new, inputs, files or {})
        if task_run_id is not None:
            target = src.find_task_run(task_run_id)
            if target is None:
                raise IllegalArgument(f"No task found to restart execution from! (taskRunId {task_run_id})")
            from falconet.runtime.kernel.ids import new_id

            # keep what ran before the target, reset the target (RESTARTED), drop what came after it
            ancestors = {a.id for a in _ancestors(src, target)}
            idx = src.task_run_list.index(target)
            drop = _descendants(src, {target.id}) - {target.id}
            drop |= _descendants(src, {t.id for t in src.task_run_list[idx + 1:] if t.id not in ancestors})
            ids = {tr.id: new_id() for tr in src.task_run_list}
            for tr in src.task_run_list:
                if tr.id in drop:
                    continue
                copy = TaskRun.from_dict(tr.to_dict(private=True))
                copy.id = ids[tr.id]
                copy.execution_id = new.id
                copy.parent_task_run_id = ids.get(tr.parent_task_run_id) if tr.parent_task_run_id else None
                if tr.id in ancestors:
                    copy.state.set(State.RUNNING)
                    copy.runtime.subflow_state = None
                elif tr.id == target.id:
                    copy.state.set(State.RESTARTED)
                    copy.runtime.dispatched = copy.runtime.resumed = copy.runtime.waiting = False
                    copy.runtime.subflow_state = copy.runtime.values = None
                new.task_run_list.append(copy)
            new.state = src.state.copy()
            new.state.set(State.RESTARTED)
        await self.supervisor.cluster.own(new.id)
        await self.store.save_execution(new.to_dict(private=True))
        self.supervisor.publish_execution(new)
        self.supervisor.start_actor(new, flow)
        return new.to_dict()

    #### status, labels, task-run state ##################################################################

    @_routed
    async def change_status(self, execution_id: str, state: str) -> dict[str, Any]:
        await self.supervisor.settle(execution_id)
        ex = await self.supervisor.load_execution(execution_id)
        try:
            target = State(state)
        except ValueError as exc:
            raise IllegalArgument(f"Invalid state '{state}'") from exc
        if not ex.state.current.is_terminated or execution_id in self.supervisor.actors:
            raise IllegalArgument("You can only change the status of a terminated execution")
        if not target.is_terminated:
            raise IllegalArgument(f"Cannot change the status to a non-terminal state '{state}'")
        if target is ex.state.current:
            raise IllegalArgument(f"The execution is already in state '{state}'")
        ex.state.set(target)
        await self.store.save_execution(ex.to_dict(private=True))
        self.supervisor.publish_execution(ex)
        return ex.to_dict()

    @_routed
    async def set_labels(self, execution_id: str, labels: Sequence[tuple[str, str]]) -> dict[str, Any]:
        await self.supervisor.settle(execution_id)
        ex = await self.supervisor.load_execution(execution_id)
        if not ex.state.current.is_terminated or execution_id in self.supervisor.actors:
            raise BadRequest("The execution is not terminated")
        for key, _ in labels:
            if key.startswith("system."):
                raise IllegalArgument(f"System labels can only be set by Kestra itself, offending label: {key}")
        merged = {lb["key"]: lb["value"] for lb in ex.labels}
        for key, value in labels:
            merged[key] = value
        ex.labels = [{"key": k, "value": v} for k, v in merged.items()]
        await self.store.save_execution(ex.to_dict(private=True))
        return ex.to_dict()

    @_routed
    async def set_task_run_state(self, execution_id: str, task_run_id: str, state: str) -> dict[str, Any]:
        await self.supervisor.settle(execution_id)
        ex = await self.supervisor.load_execution(execution_id)
        if execution_id in self.supervisor.actors and ex.state.current is not State.PAUSED:
            raise IllegalState("Execution must be terminated or paused")
        tr = ex.find_task_run(task_run_id)
        if tr is None:
            raise IllegalArgument(f"No task run '{task_run_id}' in execution '{execution_id}'")
        try:
            target = State(state)
        except ValueError as exc:
            raise IllegalArgument(f"Invalid state '{state}'") from exc
        actor = self.supervisor.actors.get(execution_id)
        if actor is not None and tr.state.current is State.PAUSED:
            await self._request(actor, ResumeRequested(None, trio.Event()))
            return ex.to_dict()
        tr.state.set(target)
        for a in _ancestors(ex, tr):
            a.state.set(State.RUNNING)
        ex.state.set(State.RESTARTED)
        flow = await self.flows.get(ex.namespace, ex.flow_id, ex.flow_revision, allow_deleted=True)
        if flow is None:
            raise NotFound("Flow not found")
        await self.supervisor.cluster.own(ex.id)
        await self.store.save_execution(ex.to_dict(private=True))
        self.supervisor.publish_execution(ex)
        self.supervisor.start_actor(ex, flow)
        return ex.to_dict()

    @_routed
    async def unqueue(self, execution_id: str, state: str | None = None) -> dict[str, Any]:
        ex = await self.supervisor.load_execution(execution_id)
        if ex.state.current is not State.QUEUED:
            raise IllegalArgument("The execution is not queued")
        flow = await self.flows.get(ex.namespace, ex.flow_id, ex.flow_revision, allow_deleted=True)
        assert flow is not None
        ex = self.admission.take(ex.id) or ex
        target = State(state) if state else State.RUNNING
        if target is State.RUNNING:
            self.admission.admit(ex, flow, force=True)
        else:
            ex.state.set(target)
            await self.store.save_execution(ex.to_dict(private=True))
        return ex.to_dict()

    @_routed
    async def force_run(self, execution_id: str) -> dict[str, Any]:
        ex = await self.supervisor.load_execution(execution_id)
        if ex.state.current is State.QUEUED:
            return await self.unqueue(execution_id, None)
        actor = self.supervisor.actors.get(execution_id)
        if ex.state.current is State.PAUSED and actor is not None:
            await self._request(actor, ResumeRequested(None, trio.Event()))
            return ex.to_dict()
        if ex.state.current is State.CREATED and actor is None:
            flow = await self.flows.get(ex.namespace, ex.flow_id, ex.flow_revision, allow_deleted=True)
            assert flow is not None
            ex.schedule_date = None
            self.admission.admit(ex, flow, force=True)
            return ex.to_dict()
        raise IllegalArgument("Only a CREATED, QUEUED or PAUSED execution can be forced to run")

    #### delete ###########################################################################################

    @_routed
    async def delete(self, execution_id: str, *, delete_logs: bool = True, delete_metrics: bool = True,
                     delete_storage: bool = True) -> None:
        await self.supervisor.settle(execution_id)
        ex = await self.supervisor.load_execution(execution_id)
        if execution_id in self.supervisor.actors:
            raise IllegalState("Cannot delete a running execution; kill it first")
        if delete_logs:
            await self.store.delete_logs(LogQuery(execution_id=execution_id))
        if delete_metrics:
            await self.store.delete_metrics(execution_id)
        if delete_storage:
            await self.supervisor.clock.run_sync_in_thread(
                self.storage.delete_prefix, self.storage.execution_prefix(ex.namespace, ex.flow_id, ex.id))
        await self.store.delete_execution(execution_id)


#### task-run trees #########################################################################################

def _ancestors(ex: Execution, tr: TaskRun) -> list[TaskRun]:
    by_id = {t.id: t for t in ex.task_run_list}
    out = []
    cur = by_id.get(tr.parent_task_run_id) if tr.parent_task_run_id else None
    while cur is not None:
        out.append(cur)
        cur = by_id.get(cur.parent_task_run_id) if cur.parent_task_run_id else None
    return out


def _descendants(ex: Execution, ids: set[str]) -> set[str]:
    out = set(ids)
    changed = True
    while changed:
        changed = False
        for t in ex.task_run_list:
            if t.parent_task_run_id in out and t.id not in out:
                out.add(t.id)
                changed = True
    return out


def _errors_task_ids(flow: Flow) -> set[str]:
    ids: set[str] = set()
    for t in flow.errors:
        ids.update(x.id for x in t.walk())
    for t in flow.all_tasks():
        for name, tasks in t.child_lists():
            if name in ("errors",):
                for c in tasks:
                    ids.update(x.id for x in c.walk())
    return ids
