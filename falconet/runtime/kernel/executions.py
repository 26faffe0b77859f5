"""Executions before and beside their actor: a new execution's labels, the typing of inputs and uploads
(:class:`ExecutionInputs`), what start-up resumes, subflow executions, flow outputs.
"""
from __future__ import annotations

import functools
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from falconet.runtime.config import Config
from falconet.runtime.kernel.errors import IllegalArgument, NotFound
from falconet.runtime.expr.render import Renderer
from falconet.runtime.flow.model import Flow, TaskSpec
from falconet.runtime.kernel.execution import Execution, TaskRun
from falconet.runtime.kernel.runcontext import to_bool
from falconet.runtime.kernel.state import State
from falconet.sdk.plugin import FlowableTask, registry
from falconet.runtime.storage.base import Storage

if TYPE_CHECKING:  # pragma: no cover
    from falconet.runtime.kernel.actors import ExecutionActor
    from falconet.runtime.kernel.services import Kernel
    from falconet.runtime.kernel.machine import StartSubflow
    from falconet.runtime.flow.fileinputs import FileSources

CORRELATION = "system.correlationId"
FROM = "system.from"          # Kestra 1.x: where an execution came from (``api``, ``trigger``, ``ui``…)


#### creation ###############################################################################################

def check_labels(labels: Sequence[tuple[str, str]]) -> None:
    for key, _ in labels:
        if key.startswith("system.") and key not in (CORRELATION, FROM):
            raise IllegalArgument(f"System labels can only be set by Kestra itself, offending label: {key}")


def _started_by_task(trigger: Mapping[str, Any]) -> bool:
    """An execution a flowable task started (Subflow): Kestra sets no ``system.from`` on it."""
    cls = registry.get(str(trigger.get("type", "")))
    return cls is not None and issubclass(cls, FlowableTask)


def new_execution(flow: Flow, *, labels: Sequence[tuple[str, str]] = (),
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
    if trigger is not None and not _started_by_task(trigger):
        merged.setdefault(FROM, "trigger")
    merged.setdefault(CORRELATION, ex.id)
    ex.labels = [{"key": k, "value": v} for k, v in merged.items()]
    return ex


#### inputs #################################################################################################

def _provided(inputs: Mapping[str, Any],
              files: Mapping[str, tuple[str, Path]]) -> tuple[dict[str, Any], dict[str, str]]:
    """Inputs with the uploaded files (created by the caller for this call) as :class:`Path` values, and
    the client's file name of each."""
    provided: dict[str, Any] = dict(inputs)
    names: dict[str, str] = {}
    for input_id, (filename, path) in files.items():
        provided[input_id] = Path(path)
        names[input_id] = filename
    return provided, names


class ExecutionInputs:
    """Types the inputs of executions (and the ``onResume`` inputs of a paused task run), storing their
    uploads in the internal storage, and the outputs of flows."""

    def __init__(self, config: Config, storage: Storage, renderer: Renderer, envs: dict[str, Any]):
        self.config = config
        self.storage = storage
        self.renderer = renderer
        self.envs = envs

    @functools.cached_property
    def local_files_roots(self) -> tuple[Path, ...]:
        """``kestra.local-files.allowed-paths``, resolved: the only places ``file:///`` FILE inputs may
        name (none by default)."""
        from falconet.runtime.flow.fileinputs import allowed_roots

        return allowed_roots(self.config.local_files_allowed_paths)

    def file_sources(self, namespace: str, trigger: Mapping[str, Any] | None) -> "FileSources":
        """What a FILE input of an execution in ``namespace`` (started by ``trigger``) may name."""
        from falconet.runtime.flow.fileinputs import FileSources, trigger_namespaces

        return FileSources(self.storage, trigger_namespaces(namespace, trigger), self.local_files_roots)

    def _file_store(self, prefix: Any, names: Mapping[str, str], *, dry_run: bool = False) -> Any:
        """``store_file`` of the input typer: moves an upload (copies an allowed local file) to
        ``prefix(input_id)/<file name>``; with ``dry_run`` only names the URI it would get."""
        def store_file(input_id: str, filename: str, local: Path, move: bool) -> str:
            dest = prefix(input_id) + "/" + Path(names.get(input_id) or filename or local.name).name
            if dry_run:
                return self.storage.uri(dest)
            return self.storage.put_file(local, dest, move=move)
        return store_file

    def resolve(self, flow: Flow, ex: Execution, inputs: Mapping[str, Any],
                files: Mapping[str, tuple[str, Path]]) -> dict[str, Any]:
        """The typed inputs of the new execution ``ex`` of ``flow``."""
        if not flow.inputs:  # what resolve_inputs answers: values of undeclared inputs are ignored
            return {}
        from falconet.runtime.flow.inputs import resolve_inputs

        provided, names = _provided(inputs, files)
        store_file = self._file_store(lambda input_id: self.storage.input_prefix(
            ex.namespace, ex.flow_id, ex.id, input_id), names)
        variables = {"flow": {"id": flow.id, "namespace": flow.namespace, "revision": flow.revision},
                     "execution": {"id": ex.id}, "envs": self.envs, "globals": self.config.globals}
        return resolve_inputs(flow.inputs, provided, renderer=self.renderer, variables=variables,
                              store_file=store_file, secret_key=self.config.secret_key,
                              file_sources=self.file_sources(ex.namespace, ex.trigger))

    def validate_report(self, flow: Flow, inputs: Mapping[str, Any],
                        files: Mapping[str, tuple[str, Path]]) -> dict[str, Any]:
        """Kestra's validation report; nothing is stored: an upload is reported with the URI it would get
        in a new execution."""
        from falconet.runtime.kernel.ids import new_id
        from falconet.runtime.flow.inputs import validate_inputs_report as report

        provided, names = _provided(inputs, files)
        execution_id = new_id()
        store_file = self._file_store(lambda input_id: self.storage.input_prefix(
            flow.namespace, flow.id, execution_id, input_id), names, dry_run=True)
        variables = {"flow": {"id": flow.id, "namespace": flow.namespace, "revision": flow.revision},
                     "envs": self.envs, "globals": self.config.globals}
        rows = report(flow.inputs, provided, renderer=self.renderer, variables=variables, store_file=store_file,
                      secret_key=self.config.secret_key, file_sources=self.file_sources(flow.namespace, None))
        return {"id": flow.id, "namespace": flow.namespace, "inputs": rows}

    def flow_outputs(self, flow: Flow, variables: dict[str, Any]) -> dict[str, Any]:
        """The flow's ``outputs``, rendered with an ended execution's ``variables`` and typed."""
        from falconet.runtime.flow.inputs import type_outputs

        rendered = {out.id: self.renderer.render_value(out.value, variables) if out.type == "STRING"
                    else self.renderer.render_value_typed(out.value, variables) for out in flow.outputs}
        return type_outputs(flow.outputs, rendered)

    def on_resume(self, actor: "ExecutionActor", inputs: Mapping[str, Any],
                  files: Mapping[str, tuple[str, Path]]) -> dict[str, Any] | None:
        """The typed ``onResume`` inputs of the paused task run of ``actor`` (None when it declares none)."""
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
        store_file = self._file_store(lambda _input_id: self.storage.task_prefix(
            ex.namespace, ex.flow_id, ex.id, tr.task_id, tr.id), names)
        return resolve_inputs(specs, provided, renderer=self.renderer, variables=actor.variables_for(tr, task),
                              store_file=store_file, secret_key=self.config.secret_key,
                              file_sources=self.file_sources(ex.namespace, ex.trigger))


#### start-up ###############################################################################################

def prepare_resume(ex: Execution) -> None:
    """An execution found unfinished at start-up: a RUNNING runnable task run is re-attempted; one waiting
    for its retry delay (RETRYING) stays so until its recorded time (the actor restores its timer)."""
    for tr in ex.task_run_list:
        if tr.state.current is State.RETRYING and tr.runtime.retry_at is not None:
            tr.runtime.dispatched = False  # re-dispatched when the retry timer fires
            continue
        if tr.runtime.dispatched and not tr.state.current.is_terminated:
            tr.runtime.dispatched = False
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
        if ex.runtime.no_kill_cascade:
            continue
        for child in children.get(ex.id, ()):
            if child.state.set(State.KILLING):
                todo.append(child)


#### subflows ###############################################################################################

async def start_subflow(engine: "Kernel[ExecutionActor]", parent: "ExecutionActor", command: "StartSubflow") -> None:
    """Carry out a :class:`StartSubflow` command: one child execution (started, or waited for again when
    ``resume``), or one per batch of items."""
    from falconet.runtime.kernel.messages import SubflowEnded

    tr, task = command.task_run, command.task
    if command.batches:
        if engine.execution_hooks is None:
            parent.log(tr, "ERROR", "Item batches are not supported by this server")
            await parent.send(SubflowEnded(tr.id, State.FAILED, None))
            return
        await engine.execution_hooks.run_for_each_item(parent, tr, task)
    elif command.resume:
        await resume_subflow(engine, parent, tr, task)
    else:
        await run_subflow(engine, parent, tr, task)


async def run_subflow(engine: "Kernel[ExecutionActor]", parent: "ExecutionActor", tr: TaskRun, task: TaskSpec) -> None:
    """Start the child execution of a Subflow task run; report its end to the parent actor."""
    from falconet.runtime.kernel.messages import SubflowEnded

    try:
        namespace = str(parent.render(tr, task, task.props.get("namespace")))
        flow_id = str(parent.render(tr, task, task.props.get("flowId")))
        revision = task.props.get("revision")
        inputs = parent.render_typed(tr, task, task.props.get("inputs") or {})
        raw_labels = task.props.get("labels") or {}
        labels: list[tuple[str, str]] = []
        if isinstance(raw_labels, dict):
            labels = [(str(k), str(parent.render(tr, task, v))) for k, v in raw_labels.items()]
        elif isinstance(raw_labels, list):
            labels = [(str(x["key"]), str(parent.render(tr, task, x["value"]))) for x in raw_labels]
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
        parent.log(tr, "ERROR", msg)
        await parent.send(SubflowEnded(tr.id, State.FAILED, None))
        return
    tr.runtime.child_execution_id = child["id"]
    # written at once: a server restart must find the child again instead of starting a second one
    parent.on_change(tr)
    engine.persist(parent.ex, publish=False)
    await await_subflow(engine, parent, tr, task, child["id"])


async def resume_subflow(engine: "Kernel[ExecutionActor]", parent: "ExecutionActor", tr: TaskRun,
                         task: TaskSpec) -> None:
    """A RUNNING Subflow task run found when an execution is resumed at start-up: wait again for the
    child it started (or start it, when the server stopped before the child was created)."""
    child_id = tr.runtime.child_execution_id
    if child_id and await engine.get_execution(child_id) is not None:
        await await_subflow(engine, parent, tr, task, child_id)
    else:
        await run_subflow(engine, parent, tr, task)


async def await_subflow(engine: "Kernel[ExecutionActor]", parent: "ExecutionActor", tr: TaskRun, task: TaskSpec,
                        child_id: str) -> None:
    """Report the end of the child execution ``child_id`` to the parent (at once when ``wait: false``)."""
    from falconet.runtime.kernel.messages import SubflowEnded

    outputs: dict[str, Any] = {"executionId": child_id}
    wait = task.props.get("wait", True)
    if isinstance(wait, str):
        wait = to_bool(parent.render(tr, task, wait))
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
            parent.log(tr, "ERROR", f"Failed to render the subflow outputs: {exc}")
            await parent.send(SubflowEnded(tr.id, State.FAILED, outputs))
            return
    transmit = task.props.get("transmitFailed", True)
    state = State.SUCCESS
    if transmit and child_state in (State.FAILED, State.KILLED, State.WARNING, State.PAUSED, State.CANCELLED):
        state = State.FAILED if child_state is State.CANCELLED else child_state
    # allowFailure/allowWarning are applied by the executor, after any retry (flowables.resolve_state)
    await parent.send(SubflowEnded(tr.id, state, outputs))
