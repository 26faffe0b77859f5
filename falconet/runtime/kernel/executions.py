"""Operations on executions that the Engine exposes: creation details, admission (concurrency limits),
restart, replay, change-status, labels, subflows, flow outputs, webhooks. Split out of engine.py to keep
each module readable; every function takes the engine as its first argument.
"""
from __future__ import annotations

import collections
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import trio

from falconet.runtime.kernel.errors import IllegalArgument, IllegalState, NotFound
from falconet.runtime.flow.model import Flow, TaskSpec
from falconet.runtime.kernel.execution import Execution, TaskRun, format_instant, now
from falconet.runtime.kernel.runcontext import to_bool
from falconet.runtime.kernel.state import State

if TYPE_CHECKING:  # pragma: no cover
    from falconet.runtime.kernel.actors import ExecutionActor
    from falconet.runtime.kernel.engine import Engine
    from falconet.runtime.flow.fileinputs import FileSources

CORRELATION = "system.correlationId"
FROM = "system.from"          # Kestra 1.x: where an execution came from (``api``, ``trigger``, ``ui``…)
#: trigger types of executions started by a flowable task: no ``system.from`` (Kestra sets none on them)
_TASK_TRIGGERS = (".flow.Subflow", ".flow.ForEachItem", ".flow.Flow")


#### creation ###############################################################################################

def check_labels(labels: Sequence[tuple[str, str]]) -> None:
    for key, _ in labels:
        if key.startswith("system.") and key not in (CORRELATION, FROM):
            raise IllegalArgument(f"System labels can only be set by Kestra itself, offending label: {key}")


def new_execution(engine: "Engine", flow: Flow, *, labels: Sequence[tuple[str, str]] = (),
                  trigger: dict[str, Any] | None = None, schedule_date: datetime | None = None,
                  parent_labels: Sequence[tuple[str, str]] = ()) -> Execution:
    check_labels(labels)
    ex = Execution(namespace=flow.namespace, flow_id=flow.id, flow_revision=flow.revision, trigger=trigger,
                   schedule_date=schedule_date)
    merged: dict[str, str] = {}
    for lb in flow.labels:
        if not str(lb.get("key", "")).startswith("system."):
            merged[lb["key"]] = lb["value"]
    for key, value in list(parent_labels) + list(labels):
        merged[key] = value
    if trigger is not None and not str(trigger.get("type", "")).endswith(_TASK_TRIGGERS):
        merged.setdefault(FROM, "trigger")
    merged.setdefault(CORRELATION, ex.id)
    ex.labels = [{"key": k, "value": v} for k, v in merged.items()]
    return ex


def file_sources(engine: "Engine", namespace: str, trigger: Mapping[str, Any] | None) -> "FileSources":
    """What a FILE input of an execution in ``namespace`` (started by ``trigger``) may name."""
    from falconet.runtime.flow.fileinputs import FileSources, trigger_namespaces

    return FileSources(engine.storage, trigger_namespaces(namespace, trigger), engine.local_files_roots)


def _provided(inputs: Mapping[str, Any], files: Mapping[str, tuple[str, Path]]) -> tuple[dict[str, Any], dict[str, str]]:
    """Inputs with the uploaded files (created by the caller for this call) as :class:`Path` values, and
    the client's file name of each."""
    provided: dict[str, Any] = dict(inputs)
    names: dict[str, str] = {}
    for input_id, (filename, path) in files.items():
        provided[input_id] = Path(path)
        names[input_id] = filename
    return provided, names


def _file_store(engine: "Engine", prefix: Any, names: Mapping[str, str], *, dry_run: bool = False) -> Any:
    """``store_file`` of the input typer: moves an upload (copies an allowed local file) to
    ``prefix(input_id)/<file name>``; with ``dry_run`` only names the URI it would get."""
    def store_file(input_id: str, filename: str, local: Path, move: bool) -> str:
        dest = prefix(input_id) + "/" + Path(names.get(input_id) or filename or local.name).name
        if dry_run:
            return engine.storage.uri(dest)
        return engine.storage.put_file(local, dest, move=move)
    return store_file


def resolve_execution_inputs(engine: "Engine", flow: Flow, ex: Execution, inputs: Mapping[str, Any],
                             files: Mapping[str, tuple[str, Path]]) -> dict[str, Any]:
    from falconet.runtime.flow.inputs import resolve_inputs

    provided, names = _provided(inputs, files)
    store_file = _file_store(engine, lambda input_id: engine.storage.input_prefix(
        ex.namespace, ex.flow_id, ex.id, input_id), names)
    variables = {"flow": {"id": flow.id, "namespace": flow.namespace, "revision": flow.revision},
                 "execution": {"id": ex.id}, "envs": engine.envs, "globals": engine.config.globals}
    return resolve_inputs(flow.inputs, provided, renderer=engine.renderer, variables=variables,
                          store_file=store_file, secret_key=engine.config.secret_key,
                          file_sources=file_sources(engine, ex.namespace, ex.trigger))


def validate_inputs_report(engine: "Engine", flow: Flow, inputs: Mapping[str, Any],
                           files: Mapping[str, tuple[str, Path]]) -> dict[str, Any]:
    """Kestra's validation report; nothing is stored: an upload is reported with the URI it would get
    in a new execution."""
    from falconet.runtime.kernel.ids import new_id
    from falconet.runtime.flow.inputs import validate_inputs_report as report

    provided, names = _provided(inputs, files)
    execution_id = new_id()
    store_file = _file_store(engine, lambda input_id: engine.storage.input_prefix(
        flow.namespace, flow.id, execution_id, input_id), names, dry_run=True)
    variables = {"flow": {"id": flow.id, "namespace": flow.namespace, "revision": flow.revision},
                 "envs": engine.envs, "globals": engine.config.globals}
    rows = report(flow.inputs, provided, renderer=engine.renderer, variables=variables, store_file=store_file,
                  secret_key=engine.config.secret_key, file_sources=file_sources(engine, flow.namespace, None))
    return {"id": flow.id, "namespace": flow.namespace, "inputs": rows}


#### admission: concurrency limits #########################################################################

def _queue(engine: "Engine", flow: Flow) -> collections.deque[Execution]:
    queues = engine.__dict__.setdefault("_queues", {})
    return queues.setdefault((flow.namespace, flow.id), collections.deque())


def _active_count(engine: "Engine", flow: Flow) -> int:
    return sum(1 for a in engine.actors.values()
               if a.ex.namespace == flow.namespace and a.ex.flow_id == flow.id
               and a.ex.state.current not in (State.QUEUED,) and not a.ex.state.current.is_terminated)


def admit(engine: "Engine", ex: Execution, flow: Flow, *, force: bool = False) -> None:
    """Start the execution now, or apply the flow's concurrency behavior (QUEUE, CANCEL, FAIL)."""
    conc = flow.concurrency
    if conc is not None and not force and _active_count(engine, flow) >= conc.limit:
        if conc.behavior == "QUEUE":
            if ex.state.current is not State.QUEUED:
                ex.state.set(State.QUEUED)
                engine.persist(ex)
            _queue(engine, flow).append(ex)
            return
        ex.state.set(State.CANCELLED if conc.behavior == "CANCEL" else State.FAILED)
        engine.persist(ex)
        engine.publish_execution(ex)
        ev = engine._ended.pop(ex.id, None)
        if ev is not None:
            ev.set()
        return
    if ex.state.current is State.QUEUED:
        ex.state.set(State.RUNNING)
    engine._start_actor(ex, flow)


def release_slot(engine: "Engine", flow: Flow) -> None:
    q = _queue(engine, flow)
    conc = flow.concurrency
    while q and (conc is None or _active_count(engine, flow) < conc.limit):
        nxt = q.popleft()
        if nxt.state.current is State.QUEUED:
            admit(engine, nxt, flow)


def prepare_resume(ex: Execution) -> None:
    """An execution found unfinished at start-up: a RUNNING runnable task run is re-attempted; one waiting
    for its retry delay (RETRYING) stays so until its recorded time (the actor restores its timer)."""
    for tr in ex.task_run_list:
        if tr.state.current is State.RETRYING and tr.extra.get("retryAt"):
            tr.extra.pop("dispatched", None)  # re-dispatched when the retry timer fires
            continue
        if tr.extra.get("dispatched") and not tr.state.current.is_terminated:
            tr.extra.pop("dispatched", None)
            if tr.attempts and not tr.attempts[-1].state.current.is_terminated:
                tr.attempts[-1].state.set(State.FAILED)
            tr.state.set(State.RESTARTED)


def parent_execution_id(ex: Execution) -> str | None:
    """The execution that started ``ex`` with a Subflow/ForEachItem task (Flow triggers and replays make
    related executions, not children)."""
    trigger = ex.trigger or {}
    if ".trigger." in str(trigger.get("type", "")):
        return None
    return (trigger.get("variables") or {}).get("executionId")


def propagate_killing(unfinished: Sequence[Execution]) -> None:
    """At start-up: an execution found KILLING finishes its kill, and so do (unless it was killed without
    cascade) the unfinished executions it started, transitively — they are moved to KILLING here, before
    any of them resumes a task run."""
    children: dict[str, list[Execution]] = {}
    for ex in unfinished:
        parent = parent_execution_id(ex)
        if parent:
            children.setdefault(parent, []).append(ex)
    todo = [ex for ex in unfinished if ex.state.current is State.KILLING]
    while todo:
        ex = todo.pop()
        if ex.extra.get("noKillCascade"):
            continue
        for child in children.get(ex.id, ()):
            if child.state.set(State.KILLING):
                todo.append(child)


async def after_end(engine: "Engine", ex: Execution, flow: Flow) -> None:
    """Bookkeeping once an execution terminated: free its concurrency slot, notify triggers."""
    release_slot(engine, flow)
    hook = getattr(engine, "on_execution_end", None)
    if hook is not None:
        await hook(ex, flow)


async def kill_idle(engine: "Engine", ex: Execution) -> None:
    """Kill an execution that has no actor (CREATED with a schedule date, QUEUED)."""
    for q in engine.__dict__.get("_queues", {}).values():
        for queued in list(q):
            if queued.id == ex.id:
                q.remove(queued)
                ex = queued
    ex.state.set(State.KILLING)
    for tr in ex.task_run_list:
        if not tr.state.current.is_terminated:
            tr.state.set(State.KILLED)
    ex.state.set(State.KILLED)
    await engine.store.save_execution(ex.to_dict(private=True))
    engine.publish_execution(ex)
    ev = engine._ended.pop(ex.id, None)
    if ev is not None:
        ev.set()


#### resume #################################################################################################

def resolve_on_resume(engine: "Engine", actor: "ExecutionActor", inputs: Mapping[str, Any],
                      files: Mapping[str, tuple[str, Path]]) -> dict[str, Any] | None:
    from falconet.runtime.flow.inputs import resolve_inputs

    paused = [tr for tr in actor.ex.task_run_list if tr.state.current is State.PAUSED]
    if not paused:
        return None
    tr = paused[0]
    task = actor.machine.task_of(tr)
    specs = task.props.get("onResume") or []
    if not specs:
        return None
    provided, names = _provided(inputs, files)
    ex = actor.ex
    store_file = _file_store(engine, lambda _input_id: engine.storage.task_prefix(
        ex.namespace, ex.flow_id, ex.id, tr.task_id, tr.id), names)
    return resolve_inputs(specs, provided, renderer=engine.renderer, variables=actor.variables_for(tr, task),
                          store_file=store_file, secret_key=engine.config.secret_key,
                          file_sources=file_sources(engine, ex.namespace, ex.trigger))


#### restart / replay #######################################################################################

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


async def restart(engine: "Engine", execution_id: str, revision: int | None) -> dict[str, Any]:
    await engine.settle(execution_id)
    if execution_id in engine.actors and engine.actors[execution_id].ex.state.current is not State.PAUSED:
        raise IllegalState("Execution must be terminated to be restarted")
    ex = await engine._require(execution_id)
    if not (ex.state.current.is_terminated or ex.state.current is State.PAUSED):
        raise IllegalState("Execution must be terminated to be restarted")
    flow = await engine.get_flow(ex.namespace, ex.flow_id, revision if revision is not None else ex.flow_revision,
                                 allow_deleted=True)
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
            tr.extra.pop("dispatched", None)
            tr.extra.pop("resumed", None)
            tr.extra.pop("subflowState", None)
            tr.state.set(State.RESTARTED)
        elif tr.id in ancestor_ids:
            tr.state.set(State.RUNNING)
    if revision is not None:
        ex.flow_revision = flow.revision
    ex.extra.pop("finalState", None)
    ex.extra.pop("manualPause", None)
    old_actor = engine.actors.get(execution_id)
    if old_actor is not None:
        from falconet.runtime.kernel.actors import KillRequested

        await old_actor.send(KillRequested("restart"))
        await old_actor.done.wait()
    ex.state.set(State.RESTARTED)
    ex.metadata = dict(ex.metadata, attemptNumber=int(ex.metadata.get("attemptNumber", 1)) + 1)
    labels = [lb for lb in ex.labels if lb["key"] != "system.restarted"]
    ex.labels = labels + [{"key": "system.restarted", "value": "true"}]
    await engine.store.save_execution(ex.to_dict(private=True))
    engine.publish_execution(ex)
    engine._start_actor(ex, flow)
    return ex.to_dict()


async def replay(engine: "Engine", execution_id: str, task_run_id: str | None, revision: int | None,
                 inputs: Mapping[str, Any] | None = None,
                 files: Mapping[str, tuple[str, Path]] | None = None) -> dict[str, Any]:
    """A new execution replaying ``execution_id`` (from ``task_run_id`` when given); with ``inputs``
    (Kestra's ``replay-with-inputs``) its inputs are typed afresh from those instead of copied."""
    await engine.settle(execution_id)
    src = await engine._require(execution_id)
    if execution_id in engine.actors:
        raise IllegalState("Execution must be terminated to be replayed")
    flow = await engine.get_flow(src.namespace, src.flow_id, revision if revision is not None else src.flow_revision,
                                 allow_deleted=True)
    if flow is None:
        raise NotFound("Flow not found")
    new = Execution(namespace=src.namespace, flow_id=src.flow_id, flow_revision=flow.revision, inputs=src.inputs,
                    labels=[dict(lb) for lb in src.labels], trigger=src.trigger, parent_id=src.id,
                    original_id=src.original_id)
    new.metadata = {"attemptNumber": int(src.metadata.get("attemptNumber", 1)) + 1,
                    "originalCreatedDate": src.metadata.get("originalCreatedDate")}
    if inputs is not None:
        new.inputs = resolve_execution_inputs(engine, flow, new, inputs, files or {})
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
                copy.extra.pop("subflowState", None)
            elif tr.id == target.id:
                copy.state.set(State.RESTARTED)
                for key in ("dispatched", "resumed", "subflowState", "values", "waiting"):
                    copy.extra.pop(key, None)
            new.task_run_list.append(copy)
        new.state = src.state.copy()
        new.state.set(State.RESTARTED)
    await engine.store.save_execution(new.to_dict(private=True))
    engine.publish_execution(new)
    engine._start_actor(new, flow)
    return new.to_dict()


#### status, labels, task-run state #######################################################################

async def change_status(engine: "Engine", execution_id: str, state: str) -> dict[str, Any]:
    await engine.settle(execution_id)
    ex = await engine._require(execution_id)
    try:
        target = State(state)
    except ValueError as exc:
        raise IllegalArgument(f"Invalid state '{state}'") from exc
    if not ex.state.current.is_terminated or execution_id in engine.actors:
        raise IllegalArgument("You can only change the status of a terminated execution")
    if not target.is_terminated:
        raise IllegalArgument(f"Cannot change the status to a non-terminal state '{state}'")
    if target is ex.state.current:
        raise IllegalArgument(f"The execution is already in state '{state}'")
    ex.state.set(target)
    await engine.store.save_execution(ex.to_dict(private=True))
    engine.publish_execution(ex)
    return ex.to_dict()


async def set_labels(engine: "Engine", execution_id: str, labels: Sequence[tuple[str, str]]) -> dict[str, Any]:
    await engine.settle(execution_id)
    ex = await engine._require(execution_id)
    if not ex.state.current.is_terminated or execution_id in engine.actors:
        from falconet.runtime.kernel.errors import BadRequest

        raise BadRequest("The execution is not terminated")
    for key, _ in labels:
        if key.startswith("system."):
            raise IllegalArgument(f"System labels can only be set by Kestra itself, offending label: {key}")
    merged = {lb["key"]: lb["value"] for lb in ex.labels}
    for key, value in labels:
        merged[key] = value
    ex.labels = [{"key": k, "value": v} for k, v in merged.items()]
    await engine.store.save_execution(ex.to_dict(private=True))
    return ex.to_dict()


async def set_task_run_state(engine: "Engine", execution_id: str, task_run_id: str, state: str) -> dict[str, Any]:
    await engine.settle(execution_id)
    ex = await engine._require(execution_id)
    if execution_id in engine.actors and ex.state.current is not State.PAUSED:
        raise IllegalState("Execution must be terminated or paused")
    tr = ex.find_task_run(task_run_id)
    if tr is None:
        raise IllegalArgument(f"No task run '{task_run_id}' in execution '{execution_id}'")
    try:
        target = State(state)
    except ValueError as exc:
        raise IllegalArgument(f"Invalid state '{state}'") from exc
    actor = engine.actors.get(execution_id)
    if actor is not None and tr.state.current is State.PAUSED:
        from falconet.runtime.kernel.actors import ResumeRequested

        await engine._request(actor, ResumeRequested(None, trio.Event()))
        return ex.to_dict()
    tr.state.set(target)
    for a in _ancestors(ex, tr):
        a.state.set(State.RUNNING)
    ex.state.set(State.RESTARTED)
    flow = await engine.get_flow(ex.namespace, ex.flow_id, ex.flow_revision, allow_deleted=True)
    if flow is None:
        raise NotFound("Flow not found")
    await engine.store.save_execution(ex.to_dict(private=True))
    engine.publish_execution(ex)
    engine._start_actor(ex, flow)
    return ex.to_dict()


async def unqueue(engine: "Engine", execution_id: str, state: str | None) -> dict[str, Any]:
    ex = await engine._require(execution_id)
    if ex.state.current is not State.QUEUED:
        raise IllegalArgument("The execution is not queued")
    flow = await engine.get_flow(ex.namespace, ex.flow_id, ex.flow_revision, allow_deleted=True)
    assert flow is not None
    for q in engine.__dict__.get("_queues", {}).values():
        for queued in list(q):
            if queued.id == ex.id:
                q.remove(queued)
                ex = queued
    target = State(state) if state else State.RUNNING
    if target is State.RUNNING:
        admit(engine, ex, flow, force=True)
    else:
        ex.state.set(target)
        await engine.store.save_execution(ex.to_dict(private=True))
    return ex.to_dict()


async def force_run(engine: "Engine", execution_id: str) -> dict[str, Any]:
    ex = await engine._require(execution_id)
    if ex.state.current is State.QUEUED:
        return await unqueue(engine, execution_id, None)
    actor = engine.actors.get(execution_id)
    if ex.state.current is State.PAUSED and actor is not None:
        from falconet.runtime.kernel.actors import ResumeRequested

        await engine._request(actor, ResumeRequested(None, trio.Event()))
        return ex.to_dict()
    if ex.state.current is State.CREATED and actor is None:
        flow = await engine.get_flow(ex.namespace, ex.flow_id, ex.flow_revision, allow_deleted=True)
        assert flow is not None
        ex.schedule_date = None
        admit(engine, ex, flow, force=True)
        return ex.to_dict()
    raise IllegalArgument("Only a CREATED, QUEUED or PAUSED execution can be forced to run")


#### subflows ###############################################################################################

async def run_subflow(engine: "Engine", parent: "ExecutionActor", tr: TaskRun, task: TaskSpec) -> None:
    """Start the child execution of a Subflow task run; report its end to the parent actor."""
    from falconet.runtime.kernel.actors import SubflowEnded

    name = task.type.rsplit(".", 1)[-1]
    if name.startswith("ForEachItem"):
        hook = getattr(engine, "run_for_each_item", None)
        if hook is None:
            parent._log(tr, "ERROR", "ForEachItem is not supported by this server")
            await parent.send(SubflowEnded(tr.id, State.FAILED, None))
            return
        await hook(parent, tr, task)
        return
    try:
        namespace = str(parent._render(tr, task, task.props.get("namespace")))
        flow_id = str(parent._render(tr, task, task.props.get("flowId")))
        revision = task.props.get("revision")
        inputs = parent._render_typed(tr, task, task.props.get("inputs") or {})
        raw_labels = task.props.get("labels") or {}
        labels: list[tuple[str, str]] = []
        if isinstance(raw_labels, dict):
            labels = [(str(k), str(parent._render(tr, task, v))) for k, v in raw_labels.items()]
        elif isinstance(raw_labels, list):
            labels = [(str(x["key"]), str(parent._render(tr, task, x["value"]))) for x in raw_labels]
        inherited = [(lb["key"], lb["value"]) for lb in parent.ex.labels
                     if task.props.get("inheritLabels") or lb["key"] == CORRELATION]
        trigger = {"id": task.id, "type": task.type, "variables": {
            "executionId": parent.ex.id, "namespace": parent.ex.namespace, "flowId": parent.ex.flow_id,
            "flowRevision": parent.ex.flow_revision}}
        child = await engine.create_execution(
            namespace, flow_id, inputs=inputs, revision=int(revision) if revision is not None else None,
            trigger=trigger, parent_labels=inherited, labels=[lb for lb in labels if not lb[0].startswith("system.")])
    except Exception as exc:
        msg = str(exc)
        if isinstance(exc, NotFound):
            msg = f"Unable to find flow '{task.props.get('namespace')}'.'{task.props.get('flowId')}'"
        parent._log(tr, "ERROR", msg)
        await parent.send(SubflowEnded(tr.id, State.FAILED, None))
        return
    tr.extra["childExecutionId"] = child["id"]
    # written at once: a server restart must find the child again instead of starting a second one
    parent._on_change(tr)
    engine.persist(parent.ex, publish=False)
    await await_subflow(engine, parent, tr, task, child["id"])


async def resume_subflow(engine: "Engine", parent: "ExecutionActor", tr: TaskRun, task: TaskSpec) -> None:
    """A RUNNING Subflow task run found when an execution is resumed at start-up: wait again for the
    child it started (or start it, when the server stopped before the child was created)."""
    child_id = tr.extra.get("childExecutionId")
    if child_id and await engine.get_execution(child_id) is not None:
        await await_subflow(engine, parent, tr, task, child_id)
    else:
        await run_subflow(engine, parent, tr, task)


async def await_subflow(engine: "Engine", parent: "ExecutionActor", tr: TaskRun, task: TaskSpec,
                        child_id: str) -> None:
    """Report the end of the child execution ``child_id`` to the parent (at once when ``wait: false``)."""
    from falconet.runtime.kernel.actors import SubflowEnded

    outputs: dict[str, Any] = {"executionId": child_id}
    wait = task.props.get("wait", True)
    if isinstance(wait, str):
        wait = to_bool(parent._render(tr, task, wait))
    if not wait:
        await parent.send(SubflowEnded(tr.id, State.SUCCESS, outputs))
        return
    final = await engine.wait_for_end(child_id)
    child_state = State(final["state"]["current"])
    outputs["state"] = child_state.value
    if final.get("outputs"):
        outputs["outputs"] = final["outputs"]
    elif task.props.get("outputs"):  # deprecated Subflow ``outputs``: rendered in the child's context
        from falconet.runtime.orchestration.subflows import render_in_child

        try:
            outputs["outputs"] = await render_in_child(engine, final, task.props["outputs"])
        except Exception as exc:
            parent._log(tr, "ERROR", f"Failed to render the subflow outputs: {exc}")
            await parent.send(SubflowEnded(tr.id, State.FAILED, outputs))
            return
    transmit = task.props.get("transmitFailed", True)
    state = State.SUCCESS
    if transmit and child_state in (State.FAILED, State.KILLED, State.WARNING, State.PAUSED, State.CANCELLED):
        state = State.FAILED if child_state is State.CANCELLED else child_state
    # allowFailure/allowWarning are applied by the executor, after any retry (flowables.resolve_state)
    await parent.send(SubflowEnded(tr.id, state, outputs))


#### flow outputs ###########################################################################################

def render_flow_outputs(engine: "Engine", actor: "ExecutionActor", flow: Flow) -> dict[str, Any]:
    from falconet.runtime.flow.inputs import type_outputs

    variables = actor._base_variables()
    rendered: dict[str, Any] = {}
    for out in flow.outputs:
        if out.type == "STRING":
            rendered[out.id] = engine.renderer.render_value(out.value, variables)
        else:
            rendered[out.id] = engine.renderer.render_value_typed(out.value, variables)
    return type_outputs(flow.outputs, rendered)


#### webhook ################################################################################################

async def webhook(engine: "Engine", namespace: str, flow_id: str, key: str, *, method: str, body: bytes,
                  headers: Mapping[str, list[str]], parameters: Mapping[str, list[str]]) -> dict[str, Any] | None:
    """See :func:`falconet.runtime.orchestration.webhook.handle` (key rendering with secrets, conditions,
    inputs, ``wait`` / ``returnOutputs``)."""
    from falconet.runtime.orchestration.webhook import handle

    return await handle(engine, namespace, flow_id, key, method=method, body=body, headers=headers,
                        parameters=parameters)


#### KV entries #############################################################################################

def kv_entry(previous: dict[str, Any] | None, value: Any, kv_type: str | None, ttl: str | None,
             description: str | None) -> dict[str, Any]:
    from falconet.runtime.expr.durations import parse_duration

    if kv_type is None:
        if isinstance(value, bool):
            kv_type = "BOOLEAN"
        elif isinstance(value, (int, float)):
            kv_type = "NUMBER"
        elif isinstance(value, (dict, list)):
            kv_type = "JSON"
        else:
            kv_type = "STRING"
    stamp = format_instant(now())
    entry: dict[str, Any] = {
        "type": kv_type,
        "value": value,
        "creationDate": (previous or {}).get("creationDate", stamp),
        "updateDate": stamp,
    }
    if description:
        entry["description"] = description
    if ttl:
        try:
            entry["expirationDate"] = format_instant(now() + parse_duration(ttl))
        except ValueError as exc:
            raise IllegalArgument(f"Invalid ttl: {exc}") from None
        except OverflowError:
            raise IllegalArgument(f"Invalid ttl `{ttl}`: the expiration date is beyond year 9999") from None
    return entry


