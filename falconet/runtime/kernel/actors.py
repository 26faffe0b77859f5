"""ExecutionActor (one per running execution); its TaskRunActor (one per runnable task run) is in
:mod:`.taskrun`.

The ExecutionActor owns the execution document. It runs :meth:`Machine.step`, starts a TaskRunActor per
runnable task run inside its own nursery (it keeps each one as a handle, cancel scope included, until the
actor's last message, :class:`TaskRunExited`), and applies the frozen-dataclass messages those actors (and
the engine: kill, resume, timers, subflow results) send on its bounded inbox. Several queued messages are
applied before the next step, so a burst of results costs one pass and one store write.

Kill: the document goes KILLING (persisted), every TaskRunActor is cancelled with a reason and reports its
exit, then KILLED is set and written by the engine (a shielded write bounded by :data:`.taskrun.FINAL_WRITE_TIMEOUT`).
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Awaitable, Callable

import trio

from falconet.runtime.expr.output import is_truthy
from falconet.runtime.kernel.machine import (
    Dispatch, Finished, Machine, RunTask, StartJob, StartSubflow, StartTimer, is_flowable,
)
from falconet.runtime.flow.model import TaskSpec
from falconet.sdk.plugin import FlowableTask
from falconet.runtime.kernel.execution import Execution, TaskRun
from falconet.runtime.kernel.recovery import task_run_directory
from falconet.runtime.kernel.progress import Due
from falconet.runtime.kernel.runcontext import EngineHooks, TaskLogger, TaskRunContext
from falconet.runtime.kernel.messages import (
    AttemptEnded, AttemptStarted, JobEnded, KillRequested, Message, PauseRequested, ResumeRequested, SlaDeadline,
    SubflowEnded, TaskRunExited, TimerFired,
)
from falconet.runtime.kernel.state import State
from falconet.runtime.kernel.taskrun import TaskRunActor
from falconet.runtime.expr.variables import OutputsCache, execution_variables, task_run_variables

if TYPE_CHECKING:  # pragma: no cover
    from falconet.runtime.kernel.services import Kernel
    from falconet.runtime.flow.model import Flow

INBOX_SIZE = 4096
_NO_SHARED_DIRECTORY = FlowableTask.shared_directory


#### SECRET inputs ##########################################################################################

def _decrypt_secret_inputs(engine: "Kernel[ExecutionActor]", flow: "Flow",
                           ex: Execution) -> tuple[dict[str, Any] | None, list[str]]:
    """The inputs as task runs see them (SECRET values decrypted) and the plaintexts to mask in logs."""
    if not ex.inputs or not any(i.type == "SECRET" for i in flow.inputs):
        return None, []
    import copy

    inputs = copy.deepcopy(ex.inputs)
    secrets: list[str] = []
    for spec in flow.inputs:
        if spec.type != "SECRET":
            continue
        node: Any = inputs
        parts = spec.id.split(".")
        for part in parts[:-1]:
            node = node.get(part) if isinstance(node, dict) else None
        if not isinstance(node, dict) or not isinstance(node.get(parts[-1]), str):
            continue
        try:
            plain = engine.secrets.decrypt(node[parts[-1]])
        except Exception:  # not encrypted with this key: leave the value as stored
            continue
        node[parts[-1]] = plain
        secrets.append(plain)
    return inputs, secrets


#### The execution actor ####################################################################################

class ExecutionActor:
    def __init__(self, engine: "Kernel[ExecutionActor]", execution: Execution, flow: "Flow"):
        self.engine = engine
        self.ex = execution
        self.flow = flow
        self.inbox_send, self.inbox_recv = trio.open_memory_channel[Message](INBOX_SIZE)
        self.error_logs: list[dict[str, Any]] = []
        self.hooks = EngineHooks(engine, execution, self.error_logs)
        self.machine = Machine(execution, flow, render=self.render, render_typed=self.render_typed,
                               truthy=is_truthy, log=self.log, on_change=self.on_change,
                               on_state=self._publish_state, on_task_run=self._task_run_changed,
                               on_state_set=self._state_set)
        self.cache = OutputsCache(self.machine.by_id)
        self.plain_inputs, self.secrets = _decrypt_secret_inputs(engine, flow, execution)
        self.task_runs: dict[str, TaskRunActor] = {}  # the running task-run actors, by task run id
        self._to_start: list[TaskRunActor] = []  # dispatched by the last step, started by the loop
        self.done = trio.Event()      # run() returned
        self.finished = trio.Event()  # the engine persisted the end and forgot this actor
        self.final_doc: dict[str, Any] | None = None  # the stored terminated document, when built whole
        self._nursery: trio.Nursery | None = None
        self._dirty = False
        self._persisted_state: State | None = None
        self._published = 0  # length of the execution's state history when its state was last published
        self._progress: Due | None = None  # the progress write scheduled, if any
        self._killing = False
        self._kill_target = State.KILLED
        self._acks: list[trio.Event] = []  # requests waiting for the next _advance to finish

    #### expression plumbing #############################################################################

    def base_variables(self) -> dict[str, Any]:
        v = execution_variables(self.ex, self.flow, self.cache, envs=self.engine.envs,
                                globals_=self.engine.config.globals, inputs=self.plain_inputs)
        v["__falconet__"] = self.hooks
        return v

    def variables_for(self, tr: TaskRun, task: TaskSpec) -> dict[str, Any]:
        return task_run_variables(self.base_variables(), self.ex, task, tr, self.cache)

    def _variables(self, tr: TaskRun | None, task: TaskSpec | None) -> dict[str, Any]:
        return self.variables_for(tr, task) if tr is not None and task is not None else self.base_variables()

    def render(self, tr: TaskRun | None, task: TaskSpec | None, value: Any) -> Any:
        return self.engine.renderer.render_value(value, self._variables(tr, task))

    def render_typed(self, tr: TaskRun | None, task: TaskSpec | None, value: Any) -> Any:
        return self.engine.renderer.render_value_typed(value, self._variables(tr, task))

    def log(self, tr: TaskRun | None, level: str, msg: str) -> None:
        TaskLogger(self.engine, self.ex, tr, tr.task_id if tr else None,
                   len(tr.attempts) if tr and tr.attempts else None, None, self.error_logs,
                   self.secrets).log(level, msg)

    def on_change(self, tr: TaskRun | None) -> None:
        self._dirty = True
        if tr is not None:
            self._task_run_changed(tr)
            self.engine.publish_task_run(self.ex, tr)

    def _state_set(self, tr: TaskRun) -> None:
        """The machine set the state of ``tr``: :meth:`_task_run_changed` ran already (the state's watch)."""
        self._dirty = True
        self.engine.publish_task_run(self.ex, tr)

    def _task_run_changed(self, tr: TaskRun) -> None:
        """``tr`` changed: its outputs and state in the expression variables, its stored text."""
        self.cache.changed(self.ex, tr)
        self.ex.text.forget(tr.id)

    def spawn(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> None:
        """Run ``fn(*args)`` in this actor's nursery (it ends with the execution)."""
        assert self._nursery is not None
        self._nursery.start_soon(fn, *args)

    def _publish_state(self) -> None:
        """Publish an execution state change as it happens, so subscribers see every state (RESTARTED,
        each PAUSED…). A terminal state is published by the engine once it is durable."""
        if not self.ex.state.current.is_terminated:
            self._published = self.ex.state.changes
            self.engine.publish_execution(self.ex)

    #### messages ##########################################################################################

    async def send(self, msg: Message, *, last: bool = False) -> None:
        """Queue ``msg`` on the inbox. ``last``: the sender's last message (it exits right after), sent without
        a schedule point when the inbox has room — still a cancellation point."""
        if last:
            await trio.lowlevel.checkpoint_if_cancelled()
            try:
                self.inbox_send.send_nowait(msg)
            except trio.WouldBlock:
                await self.inbox_send.send(msg)
        else:
            await self.inbox_send.send(msg)
        if self.done.is_set():  # nobody will apply it: release whoever waits for it
            self._release_unapplied()

    def _release_unapplied(self) -> None:
        """Set the ``applied`` event of every message left in the inbox once the actor has stopped."""
        while True:
            try:
                msg = self.inbox_recv.receive_nowait()
            except trio.WouldBlock:
                return
            applied = getattr(msg, "applied", None)
            if applied is not None:
                applied.set()

    def _drop_handle(self, task_run_id: str) -> None:
        handle = self.task_runs.get(task_run_id)
        if handle is not None and not handle.alive:
            del self.task_runs[task_run_id]

    def _apply(self, msg: Message) -> bool:
        """Apply one message to the document; False when it needs no step."""
        m = self.machine
        if isinstance(msg, TaskRunExited):
            self._drop_handle(msg.task_run_id)
            return self._killing  # a kill ends once no task-run actor is left
        applied = getattr(msg, "applied", None)
        if applied is not None:
            self._acks.append(applied)
        if isinstance(msg, AttemptEnded):
            if msg.exited:
                self._drop_handle(msg.task_run_id)
            tr = m.by_id.get(msg.task_run_id)
            if tr is not None and not tr.state.current.is_terminated:
                m.apply_attempt_end(tr, msg.state, msg.outputs, msg.final, m.task_of(tr))
                if msg.retry_at is not None:
                    tr.runtime.retry_at = msg.retry_at
        elif isinstance(msg, AttemptStarted):
            tr = m.by_id.get(msg.task_run_id)
            if tr is not None and not tr.state.current.is_terminated:
                m.apply_attempt_start(tr)
        elif isinstance(msg, TimerFired):
            self._timer(msg)
        elif isinstance(msg, SubflowEnded):
            tr = m.by_id.get(msg.task_run_id)
            if tr is not None and not tr.state.current.is_terminated:
                task = m.task_of(tr)
                m.flowable(task).on_child_end(m, tr, task, msg.state, msg.outputs)
                m.touched(tr)
        elif isinstance(msg, KillRequested):
            self._start_kill(msg.reason, cascade=msg.cascade)
        elif isinstance(msg, ResumeRequested):
            self._resume(msg.on_resume)
        elif isinstance(msg, SlaDeadline):
            for sla in self.flow.sla:
                if sla.id == msg.sla_id and sla.type == "MAX_DURATION":
                    self._sla_violated(sla, f"execution duration exceeded {sla.duration}")
        elif isinstance(msg, JobEnded):
            tr = m.by_id.get(msg.task_run_id)
            if tr is not None and not tr.state.current.is_terminated:
                task = m.task_of(tr)
                m.flowable(task).on_event(m, tr, task, msg.result)
                m.touched(tr)
        elif isinstance(msg, PauseRequested):
            if self.ex.state.current is State.RUNNING:
                self.ex.runtime.manual_pause = True
                m.set_execution_state(State.PAUSED)
        return True

    def _timer(self, msg: TimerFired) -> None:
        tr = self.machine.by_id.get(msg.task_run_id)
        if tr is not None and not tr.state.current.is_terminated:
            self.machine.on_timer(tr, msg.kind)

    def _resume(self, on_resume: dict[str, Any] | None) -> None:
        if self.ex.runtime.manual_pause:
            self.ex.runtime.manual_pause = False
            self.machine.set_execution_state(State.RUNNING)
            return
        self.machine.resume_paused(on_resume)

    def _start_kill(self, reason: str, target: State = State.KILLED, *, cascade: bool = True) -> None:
        """Stop every running task run; the execution ends in ``target`` (KILLED goes through KILLING)."""
        if self._killing or self.ex.state.current.is_terminated:
            return
        self._killing = True
        self._kill_target = target
        if not cascade:
            self.ex.runtime.no_kill_cascade = True  # a restart finishing this kill leaves the children alone
        if target is State.KILLED:
            self.machine.set_execution_state(State.KILLING)
            self.engine.persist(self.ex, publish=False)
        for handle in self.task_runs.values():
            handle.cancel(reason)
        if cascade:
            self.engine.kill_children(self.ex, "parent execution KILLING")

    #### SLA ###############################################################################################

    def _sla_violated(self, sla: Any, why: str) -> State | None:
        """Apply an SLA violation: labels, a log line, and FAIL/CANCEL behaviors. Returns the state it imposes."""
        if self.ex.state.current.is_terminated:
            return None
        self.log(None, "WARN", f"SLA '{sla.id}' violated: {why}")
        if sla.labels:
            merged = self.ex.label_map()
            merged.update(dict(sla.labels))
            self.ex.labels = [{"key": k, "value": v} for k, v in merged.items()]
            self.on_change(None)
        target = {"FAIL": State.FAILED, "CANCEL": State.CANCELLED}.get(sla.behavior)
        if target is not None and sla.type == "MAX_DURATION":
            self._start_kill(f"SLA '{sla.id}' violated", target)
        return target

    def _check_assertions(self, state: State) -> State:
        for sla in self.flow.sla:
            if sla.type != "EXECUTION_ASSERTION" or not sla.assert_:
                continue
            try:
                ok = is_truthy(self.render(None, None, sla.assert_))
            except Exception as exc:
                self.log(None, "ERROR", f"SLA '{sla.id}' assertion failed to render: {exc}")
                ok = False
            if not ok:
                target = self._sla_violated(sla, f"assertion {sla.assert_} is false")
                if target is not None:
                    state = target
        return state

    async def _sla_timer(self, sla: Any) -> None:
        await self.engine.clock.sleep_until(self.ex.state.start_date + sla.duration)
        await self.send(SlaDeadline(sla.id))

    #### the loop ##########################################################################################

    async def run(self) -> None:
        """Drive the execution to a terminal state. Returns when it is terminated (or the engine stops)."""
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                if self.ex.state.current is State.KILLING:  # found KILLING at start-up: finish the kill
                    self._start_kill("server restarted while the execution was KILLING",
                                     cascade=not self.ex.runtime.no_kill_cascade)
                else:
                    for sla in self.flow.sla if not self.ex.state.current.is_terminated else ():
                        if sla.type == "MAX_DURATION" and sla.duration is not None:
                            nursery.start_soon(self._sla_timer, sla)
                    for d in self.machine.restore():
                        self._carry_out(d)
                self._advance()
                await self._start_task_runs()
                while not (self.ex.state.current.is_terminated and self.machine.after_execution_done()):
                    msg = await self.inbox_recv.receive()
                    step = self._apply(msg)
                    while True:
                        try:
                            msg = self.inbox_recv.receive_nowait()
                        except trio.WouldBlock:
                            break
                        step = self._apply(msg) or step
                    if step:
                        self._advance()
                        await self._start_task_runs()
                if nursery.child_tasks:  # an SLA timer: nothing else is left to cancel
                    nursery.cancel_scope.cancel()
        finally:
            if self.ex.state.current.is_terminated:
                await self._release_flowables()
            if self._dirty:  # stopping (engine shutdown): leave the latest document to the store's final flush
                self._dirty = False
                self.engine.persist(self.ex)
            self._ack()
            if self._progress is not None:  # not kept alive until a write it no longer needs
                self._progress.cancel()
                self._progress = None
            self.done.set()
            self._release_unapplied()

    def release(self) -> None:
        """The engine is done with this actor (its end is durable and announced): break the reference
        cycles it is part of (:meth:`Machine.detach`, its nursery), so the execution's objects are freed when
        the last reader of :attr:`ex` or :attr:`final_doc` lets go."""
        self.machine.detach()
        self._nursery = None

    def _advance(self) -> None:
        if self._killing and not self.ex.state.current.is_terminated:
            if not self.task_runs:
                self._finish_kill()
            if not self.ex.state.current.is_terminated or self.machine.after_execution_done():
                self._flush()
                self._ack()
                return
        try:
            decisions = self.machine.step()
        except Exception as exc:  # an engine bug or a broken flow revision: fail the execution, keep the server
            self.log(None, "ERROR", f"Executor error: {exc!r}")
            self.machine.kill_all()
            self.machine.abandon_after_execution()  # the machine cannot step again: nothing left to wait for
            self._set_final(State.FAILED)
            self._flush()
            return
        finished: Finished | None = None
        for d in decisions:
            if isinstance(d, Finished):
                finished = d
            else:
                self._carry_out(d)
        if finished is not None and not self.ex.state.current.is_terminated:
            self._end(finished.state)
            if not self.machine.after_execution_done():
                self._advance()  # the execution just ended: start its afterExecution tasks
                return
        self._flush()
        self._ack()

    def _carry_out(self, d: Dispatch) -> None:
        """Start what a command of the state machine asks for, in the actor's nursery."""
        assert self._nursery is not None
        if isinstance(d, RunTask):
            self.machine.apply_attempt_start(d.task_run)
            handle = TaskRunActor(self, d.task_run, d.task)
            self.task_runs[d.task_run.id] = handle
            self._to_start.append(handle)  # started by the loop, after the step
        elif isinstance(d, StartTimer):
            self._nursery.start_soon(self._timer_task, d)
        elif isinstance(d, StartSubflow):
            self._nursery.start_soon(self.engine.start_subflow, self, d)
        elif isinstance(d, StartJob):
            self._nursery.start_soon(self._job, d)

    async def _job(self, d: StartJob) -> None:
        try:
            result: Any = await self.machine.flowable(d.task).run_job(self, d.task_run, d.task, d.job)
        except Exception as exc:  # plugin code failing is the job's result, never an engine crash
            self.log(d.task_run, "ERROR", str(exc) or type(exc).__name__)
            result = exc
        await self.send(JobEnded(d.task_run.id, result))

    #### what flowables reach (FlowableServices) ###########################################################

    @property
    def storage(self) -> Any:
        return self.engine.storage

    @property
    def clock(self) -> Any:
        return self.engine.clock

    def context(self, tr: TaskRun, task: TaskSpec) -> TaskRunContext:
        return TaskRunContext(self.engine, self.ex, tr, task, self.variables_for(tr, task), 0, self.error_logs,
                              self.secrets)

    def directory_for(self, task_run_id: str) -> Path:
        return task_run_directory(self.engine.temp_root(), task_run_id)

    def temp_root(self) -> Path:
        return self.engine.temp_root()

    def task_run(self, task_run_id: str) -> TaskRun | None:
        return self.machine.by_id.get(task_run_id)

    async def shared_directory(self, tr: TaskRun) -> Path | None:
        """The directory an enclosing flowable shares with ``tr`` (the nearest one), or None."""
        by_id = self.machine.by_id
        cur = by_id.get(tr.parent_task_run_id) if tr.parent_task_run_id else None
        while cur is not None:
            task = self.machine.task_of(cur)
            if is_flowable(task):
                path = await self.machine.flowable(task).shared_directory(self, cur)
                if path is not None:
                    return path
            cur = by_id.get(cur.parent_task_run_id) if cur.parent_task_run_id else None
        return None

    def shares_directory(self, tr: TaskRun) -> bool:
        """Whether an enclosing flowable of ``tr`` may share a directory with it (:meth:`shared_directory`
        would ask it)."""
        by_id = self.machine.by_id
        cur = by_id.get(tr.parent_task_run_id) if tr.parent_task_run_id else None
        while cur is not None:
            task = self.machine.task_of(cur)
            if is_flowable(task) and type(self.machine.flowable(task)).shared_directory is not _NO_SHARED_DIRECTORY:
                return True
            cur = by_id.get(cur.parent_task_run_id) if cur.parent_task_run_id else None
        return False

    async def _release_flowables(self) -> None:
        """The execution ended: each flowable type releases what its task runs hold."""
        by_class: dict[type, tuple[TaskSpec, list[TaskRun]]] = {}
        for tr in self.ex.task_run_list:
            try:
                task = self.machine.task_of(tr)
            except KeyError:
                continue
            if is_flowable(task):
                by_class.setdefault(task.cls, (task, []))[1].append(tr)
        for task, runs in by_class.values():
            await self.machine.flowable(task).cleanup(self, runs)
            for tr in runs:
                self.machine.touched(tr)

    def _ack(self) -> None:
        """Release the requests applied by this step; their change is queued to the store first (the engine
        then waits for the store's flush before it answers the caller)."""
        if self._acks and self._dirty and not self.ex.state.current.is_terminated:
            self._dirty = False
            self.engine.persist(self.ex, publish=False)
        for ev in self._acks:
            ev.set()
        self._acks.clear()

    def _flush(self) -> None:
        """Persist and publish the document after a step.

        An execution state change is published at once; PAUSED/KILLING/QUEUED are also written at once,
        a terminal state is written (awaited, durable) by the engine before anyone is told the execution
        ended. Task-run progress alone is written at most every :data:`~.progress.PERSIST_INTERVAL`: losing
        it in a crash only re-runs work (at-least-once), and it saves serialising the whole document per task
        run."""
        if not self._dirty:
            return
        state = self.ex.state.current
        if state is not self._persisted_state:
            self._persisted_state = state
            if state.is_terminated:  # published by the engine once the end is durable
                self._dirty = False
                if not self.machine.after_execution_done():
                    # the end is written before the afterExecution tasks run: a crash resumes them, never
                    # the execution's own tasks
                    self.engine.after_execution.add(self.ex.id)
                    self.engine.persist(self.ex, publish=False)
                return
            if self.ex.state.changes != self._published:
                self._publish_state()
            if state in (State.PAUSED, State.KILLING, State.QUEUED):
                self._dirty = False
                self.engine.persist(self.ex, publish=False)
                return
        if state.is_terminated:  # afterExecution progress: written at once (see TaskRunActor.run)
            self._dirty = False
            self.engine.persist(self.ex, publish=False)
            return
        if self._progress is None and self._nursery is not None:
            self._progress = self.engine.progress_writes.schedule(self)

    async def _start_task_runs(self) -> None:
        """Start the task-run actors the last step dispatched, all in one scheduler pass: ``start_soon``, not
        ``nursery.start``, which would wait one pass per actor (a ForEach of 100 runnable children took 100
        passes: +65% on bench_engine's ForEach-100). A handle's cancel scope exists before its task runs, so a
        kill or a sibling's failure reaches an actor that has not started yet: it exits at once, reporting
        TaskRunExited like any other. An attempt that :meth:`~.taskrun.TaskRunActor.can_run_inline` (a plugin
        that never suspends, no timeout, no retry) runs here instead, without a trio task: its last message is
        queued as its actor would have sent it, so the loop applies it the same way."""
        assert self._nursery is not None
        batch, self._to_start = self._to_start, []
        for handle in batch:
            if handle.can_run_inline():
                self._queue(handle.run_inline())
            else:
                self._nursery.start_soon(handle.run)

    def _queue(self, msg: Message) -> None:
        """Queue a message from the actor's own step (the loop applies it next)."""
        try:
            self.inbox_send.send_nowait(msg)
        except trio.WouldBlock:  # a full inbox: sent by a task of its own, as a task-run actor would
            assert self._nursery is not None
            self._nursery.start_soon(self.inbox_send.send, msg)

    def write_progress(self) -> None:
        """Called PERSIST_INTERVAL after :meth:`_flush` scheduled it (:class:`~.progress.ProgressWrites`):
        write the document if it still runs with progress not written."""
        self._progress = None
        if self._dirty and not self.ex.state.current.is_terminated and not self.done.is_set():
            self._dirty = False
            self.engine.persist(self.ex, publish=False)

    async def _timer_task(self, d: StartTimer) -> None:
        await self.engine.clock.sleep_until(d.deadline)
        await self.send(TimerFired(d.task_run_id, d.kind))

    #### end ###############################################################################################

    def _end(self, state: State) -> None:
        """The machine decided the execution ends in ``state``: apply SLA assertions, outputs and retries."""
        # a flowable may resolve FAILED while siblings still run (Parallel): stop them
        if self.machine.active:
            for handle in list(self.task_runs.values()):
                handle.cancel()
            self.machine.kill_all()
        state = self._check_assertions(state)
        if self.flow.outputs and state not in (State.KILLED,):
            try:
                self.ex.outputs = self.engine.inputs.flow_outputs(self.flow, self.base_variables())
            except Exception as exc:
                self.log(None, "ERROR", f"Failed to render flow outputs: {exc}")
                state = State.FAILED
        if self.engine.execution_hooks is not None:  # CREATE_NEW_EXECUTION retries
            state = self.engine.execution_hooks.retry_state(self, state)
        self._set_final(state)

    def _set_final(self, state: State) -> None:
        self.ex.state.set(state)
        self.on_change(None)

    def _finish_kill(self) -> None:
        self.machine.kill_all()
        self.ex.state.set(self._kill_target)
        self.on_change(None)
