"""The execution state machine: Kestra's ExecutorService as a synchronous function of the document.

:meth:`Machine.step` looks at the execution document and its flow, creates the task runs that can be
created now (Kestra's order: a parent before its children, Sequential one at a time, Parallel all at
once up to ``concurrent``, errors and finally branches…), resolves flowable task runs whose children are
done, and returns what it decided: the :class:`Dispatch` commands the actor must carry out (start a
runnable task run, start a subflow, arm a timer) and, when the execution's tasks are all done,
:class:`Finished` with the state it ends in. It never awaits and never does I/O, so it is unit-tested without trio.

The semantics follow ``io.kestra.core.runners.FlowableUtils`` and ``Execution``.
"""
from __future__ import annotations

import dataclasses
import json
import random
from datetime import datetime, timedelta
from typing import Any, Callable, Sequence

from falconet.runtime.expr.output import to_json
from falconet.runtime.flow.model import Flow, RetrySpec, TaskSpec
from falconet.runtime.kernel.flowstate import FlowState, Resolved
from falconet.runtime.kernel.execution import Attempt, Execution, StateHistory, TaskRun, now
from falconet.sdk.plugin import ExecutionUpdatingTask, FlowableTask
from falconet.runtime.kernel.state import State

#### Commands for the actor #################################################################################


@dataclasses.dataclass(frozen=True)
class RunTask:
    """Start a TaskRunActor for a runnable task run (its state is already RUNNING)."""

    task_run: TaskRun
    task: TaskSpec


@dataclasses.dataclass(frozen=True)
class StartTimer:
    """Send ``TimerFired(task_run_id, kind)`` to the actor at ``deadline``; the flowable that armed it
    gets ``on_timer(kind)`` (``task-retry`` is the state machine's own: the next attempt of a runnable)."""

    task_run_id: str
    kind: str
    deadline: datetime


@dataclasses.dataclass(frozen=True)
class StartSubflow:
    """Create the child execution of an executable task run and report its end (``on_child_end``).

    ``resume``: the task run was found RUNNING at start-up — wait again for the child it started (or
    start it). ``batches``: one child execution per batch of items (the task run's outputs count them)."""

    task_run: TaskRun
    task: TaskSpec
    resume: bool = False
    batches: bool = False


@dataclasses.dataclass(frozen=True)
class StartJob:
    """Run the flowable's ``run_job(services, task_run, task, job)`` in the actor's nursery; its result
    comes back to the flowable's ``on_event``."""

    task_run: TaskRun
    task: TaskSpec
    job: str


Dispatch = RunTask | StartTimer | StartSubflow | StartJob


@dataclasses.dataclass(frozen=True)
class Finished:
    """The execution's tasks are all done: it ends in ``state`` (its task runs' state, or the one an ``Exit``
    task imposed). Always the last decision of a step; the actor then checks SLA assertions, renders the
    flow outputs and applies CREATE_NEW_EXECUTION retries before setting the final state."""

    state: State


Decision = Dispatch | Finished


class FlowableError(Exception):
    """A flowable could not resolve its children (bad values, no matching case…): the task run FAILS."""


#: the timer kind of the next attempt of a RETRYING runnable task run (restored after a restart)
TASK_RETRY = "task-retry"

#### Helpers ################################################################################################

def is_flowable(task: TaskSpec) -> bool:
    return issubclass(task.cls, FlowableTask)


def is_execution_updating(task: TaskSpec) -> bool:
    return issubclass(task.cls, ExecutionUpdatingTask)


def _resolve(tasks: Sequence[TaskSpec] | None, parent_id: str | None, value: str | None = None,
             iteration: int | None = None) -> list[Resolved] | None:
    if not tasks:
        return None
    return [Resolved(t, parent_id, value, iteration) for t in tasks]


#### Retry policy ###########################################################################################

def next_retry_delay(retry: RetrySpec, attempts: int, first_start: datetime, last_end: datetime) -> timedelta | None:
    """Delay before the next attempt, or None when no retry remains (Kestra's ``AbstractRetry``)."""
    if retry.max_attempt is not None and attempts >= retry.max_attempt:
        return None
    if retry.type == "exponential":
        base = retry.interval or timedelta(seconds=1)
        delay = base * (retry.delay_factor ** max(attempts - 1, 0))
        if retry.max_interval is not None and delay > retry.max_interval:
            delay = retry.max_interval
    elif retry.type == "random":
        lo = (retry.min_interval or timedelta(0)).total_seconds()
        hi = (retry.max_interval or retry.min_interval or timedelta(0)).total_seconds()
        delay = timedelta(seconds=random.uniform(lo, max(lo, hi)))
    else:
        delay = retry.interval or timedelta(0)
    if retry.max_duration is not None and last_end + delay > first_start + retry.max_duration:
        return None
    return delay


#### The machine ############################################################################################

def _detached(*_args: Any) -> Any:
    raise RuntimeError("the execution's machine was detached when it ended")


class Machine(FlowState):
    """Owns nothing but indexes; the Execution document is the state.

    ``render(task_run, task, template)`` renders an expression in the context of a task run and
    ``render_condition`` returns its truthiness; both raise on render errors. ``log(task_run, level, msg)``
    records a log line. All three are provided by the actor.

    It never looks at a task's type: a flowable task run is driven by the ``FlowableTask`` hooks of its
    class (:meth:`flowable`), which get the machine and use its public helpers (``render``, ``truthy``,
    ``log``, ``on_change``, :meth:`resolve_tasks`, :meth:`branches`, :meth:`sequential_nexts`,
    :meth:`parallel_nexts`, :meth:`resolve_state`, :meth:`set_state`…).
    """

    def __init__(self, execution: Execution, flow: Flow, *,
                 render: Callable[[TaskRun, TaskSpec, Any], Any],
                 render_typed: Callable[[TaskRun, TaskSpec, Any], Any],
                 truthy: Callable[[Any], bool],
                 log: Callable[[TaskRun | None, str, str], None],
                 on_change: Callable[[TaskRun | None], None],
                 on_state: Callable[[], None] | None = None,
                 on_task_run: Callable[[TaskRun], None] | None = None,
                 on_state_set: Callable[[TaskRun], None] | None = None):
        self.ex = execution
        self.flow = flow
        self.render = render
        self.render_typed = render_typed
        self.truthy = truthy
        self.log = log
        self.on_change = on_change
        self._state_changed = on_state
        #: told about a task run that may have changed without ``on_change`` (a state change, a flowable hook)
        self.on_task_run = on_task_run
        #: told after :meth:`set_state` changed a task run's state (``on_task_run`` was told already by the
        #: state's watch); ``on_change`` when not given
        self._on_state_set = on_state_set or on_change
        self.by_parent: dict[str | None, list[TaskRun]] = {}
        self.by_id: dict[str, TaskRun] = {}
        #: the task runs not terminated, and each task run's position in the list (steps visit them in order)
        self.active: dict[str, TaskRun] = {}
        self._pos: dict[str, int] = {}
        self._init_kept()
        self._children: dict[tuple[str, str], tuple[tuple[Any, ...], list[Resolved] | None]] = {}
        self._after_execution_abandoned = False
        self._flowables: dict[type, FlowableTask] = {}
        self._internal: dict[str, TaskSpec] | None = None
        self._tasks = self.keep(_resolve(flow.tasks, None))
        self._errors = self.keep(_resolve(flow.errors, None))
        self._finally = self.keep(_resolve(flow.finally_, None))
        self._after = self.keep(_resolve(flow.after_execution, None))
        self._top: tuple[int, list[Resolved]] = (-1, [])  # the current top-level list at a revision
        for tr in execution.task_run_list:
            self._index(tr)

    def detach(self) -> None:
        """The execution ended for good: forget the callbacks into its actor and stop watching the states of
        its task runs. Reference cycles (actor → machine → the actor's bound methods; machine → task run →
        state → its watch, the machine) kept a whole ended execution alive until a collection of an older
        generation of CPython's garbage collector found it; without them it is freed as soon as nobody
        holds it. The machine cannot step again."""
        for tr in self.ex.task_run_list:
            if tr.state.watch is self:
                tr.state.watch = tr.state.owner = None
        self.render = self.render_typed = self.log = self.on_change = _detached
        self.on_task_run = self._on_state_set = self._state_changed = _detached

    #### indexes and creation ############################################################################

    def task_of(self, tr: TaskRun) -> TaskSpec:
        task = self.flow.find_task(tr.task_id)
        if task is None:  # a flowable's internal children are not declared in the flow
            task = self._internal_task(tr.task_id)
        if task is None:
            raise KeyError(f"task {tr.task_id!r} is not in flow {self.flow.uid()} revision {self.flow.revision}")
        return task

    def _internal_task(self, task_id: str) -> TaskSpec | None:
        if self._internal is None:
            self._internal = {t.id: t for spec in self.flow.all_tasks() if is_flowable(spec)
                              for t in self.flowable(spec).internal_tasks(spec)}
        return self._internal.get(task_id)

    def flowable(self, task: TaskSpec) -> FlowableTask:
        """The instance of a flowable task's class that answers for its task runs (one per class)."""
        impl = self._flowables.get(task.cls)
        if impl is None:
            impl = self._flowables[task.cls] = task.cls()  # type: ignore[assignment]
        return impl  # type: ignore[return-value]

    #### what flowables use ################################################################################

    @staticmethod
    def resolve_tasks(tasks: Sequence[TaskSpec] | None, parent_id: str | None, value: str | None = None,
                      iteration: int | None = None) -> list[Resolved] | None:
        """``tasks`` as children of ``parent_id`` (None when there are none)."""
        return _resolve(tasks, parent_id, value, iteration)

    def branches(self, tr: TaskRun, task: TaskSpec,
                 iteration: int | None = None) -> tuple[list[Resolved] | None, list[Resolved] | None]:
        """The ``errors`` and ``finally`` children of a flowable task run."""
        errors, finally_ = task.props.get("errors"), task.props.get("finally")
        if iteration is not None:
            return _resolve(errors, tr.id, iteration=iteration), _resolve(finally_, tr.id, iteration=iteration)
        return (self.kept_children(tr, "errors", (errors,), lambda: _resolve(errors, tr.id)),
                self.kept_children(tr, "finally", (finally_,), lambda: _resolve(finally_, tr.id)))

    def create(self, r: Resolved) -> TaskRun:
        tr = TaskRun(
            execution_id=self.ex.id,
            namespace=self.ex.namespace,
            flow_id=self.ex.flow_id,
            task_id=r.task.id,
            parent_task_run_id=r.parent_id,
            value=r.value,
            iteration=r.iteration,
        )
        self.ex.task_run_list.append(tr)
        self._index(tr)
        if self.ex.state.current in (State.CREATED, State.RESTARTED, State.QUEUED):
            self.set_execution_state(State.RUNNING)
        self.on_change(tr)
        return tr

    def retry_policy(self, tr: TaskRun, task: TaskSpec) -> RetrySpec | None:
        """The retry that applies to ``tr`` (Kestra's ExecutorService): the task's own ``retry``, else the
        nearest enclosing task's, else the flow's."""
        if task.retry is not None:
            return task.retry
        cur = self.by_id.get(tr.parent_task_run_id) if tr.parent_task_run_id else None
        while cur is not None:
            parent_task = self.flow.find_task(cur.task_id)
            if parent_task is not None and parent_task.retry is not None:
                return parent_task.retry
            cur = self.by_id.get(cur.parent_task_run_id) if cur.parent_task_run_id else None
        return self.flow.retry

    def set_state(self, tr: TaskRun, state: State) -> None:
        if tr.state.set(state):
            (self._on_state_set if tr.state.watch is self else self.on_change)(tr)

    def set_execution_state(self, state: State) -> None:
        """Move the execution to ``state``; each change is reported (``on_state``) as it happens."""
        if self.ex.state.set(state):
            self.on_change(None)
            if self._state_changed is not None:
                self._state_changed()

    #### the step ##########################################################################################

    def step(self) -> Sequence[Decision]:
        """Advance the document as far as possible without waiting; return what the actor must start (and
        :class:`Finished` last when the execution ends). Once the execution is terminated, only its
        ``afterExecution`` tasks advance."""
        dispatches: list[Dispatch] = []
        after = self.ex.state.current.is_terminated
        if after and self.after_execution_done():
            return dispatches
        if self.ex.state.current is State.PAUSED:
            # Kestra's Executor.canBeProcessed(): a PAUSED execution (pause API or a Pause task) is held —
            # running task runs finish, nothing new is created, resolved or started until it runs again
            if self.ex.runtime.manual_pause:
                return dispatches
            self._pause_state()  # a resumed Pause task (API, delay) makes it RUNNING again
            if self.ex.state.current is State.PAUSED:
                return dispatches
        if self.ex.state.current is State.RESTARTED:
            self.set_execution_state(State.RUNNING)  # Kestra's handleRestart: the restarted runs start now
        progressed = True
        while progressed:
            progressed = False
            if self.ex.state.current is State.KILLING:
                return dispatches
            # 1. flowables whose children are done resolve their own state (deepest first)
            for tr in reversed(self.active_runs()):
                if tr.state.current is State.RUNNING:
                    task = self.task_of(tr)
                    if is_flowable(task) and self._resolve_flowable(tr, task, dispatches):
                        progressed = True
            # 2. top-level next task runs (afterExecution ones once the execution is terminated)
            if after:
                top = self.sequential_nexts(self._after, None, None, None)
            else:
                self._top = (self.revision, self.current_tasks(self._tasks, self._errors, self._finally, None))
                top = self.inner_sequential(self._top[1], None)
            for r in top:
                self.create(r)
                progressed = True
            # 3. children of running flowables
            for tr in self.active_runs():
                if tr.state.current is State.RUNNING:
                    task = self.task_of(tr)
                    if is_flowable(task):
                        for r in self._flowable_nexts(tr, task, dispatches):
                            self.create(r)
                            progressed = True
            # 4. start what was created (or restarted)
            for tr in self.active_runs():
                if tr.state.current.is_created and not tr.runtime.dispatched:
                    if self._start(tr, dispatches):
                        progressed = True
            if after:
                continue
            # 5. end of the execution
            self._pause_state()
            end = self._end()
            if isinstance(end, Finished):
                return [*dispatches, end]
            if end == "progressed":
                progressed = True
        if not after:
            self._pause_state()
        return dispatches

    def after_execution_done(self) -> bool:
        """True when the ``afterExecution`` tasks (Kestra's ExecutorService.handleAfterExecution: run in
        sequence once the execution is terminated, a failure stops the rest) have nothing left to do."""
        after = self._after
        if not after or self._after_execution_abandoned:
            return True
        if any(not tr.state.current.is_terminated for tr in self.runs_for(after, None)):
            return False
        return not self.sequential_nexts(after, None, None, None)

    def _start(self, tr: TaskRun, dispatches: list[Dispatch]) -> bool:
        task = self.task_of(tr)
        if task.run_if is not None:
            try:
                ok = self.truthy(self.render(tr, task, task.run_if))
            except Exception as exc:  # render error -> FAILED
                self.log(tr, "ERROR", str(exc))
                self.set_state(tr, State.FAILED)
                return True
            if not ok:
                self.set_state(tr, State.SKIPPED)
                return True
        if is_flowable(task):
            self.set_state(tr, State.RUNNING)
            try:
                self.flowable(task).on_start(self, tr, task, dispatches)
            except Exception as exc:
                self.log(tr, "ERROR", str(exc))
                self.set_state(tr, State.FAILED)
            self.touched(tr)
            return True
        if is_execution_updating(task):
            self._apply_execution_update(tr, task)
            return True
        tr.runtime.dispatched = True
        dispatches.append(RunTask(tr, task))
        return True

    def _apply_execution_update(self, tr: TaskRun, task: TaskSpec) -> None:
        tr.attempts.append(Attempt(StateHistory(State.RUNNING)))
        self.set_state(tr, State.RUNNING)
        try:
            task.cls().apply(self, tr, task)  # type: ignore[attr-defined]
        except Exception as exc:
            self.log(tr, "ERROR", str(exc))
            tr.attempts[-1].state.set(State.FAILED)
            self.set_state(tr, State.WARNING if task.allow_failure else State.FAILED)
            return
        tr.attempts[-1].state.set(State.SUCCESS)
        self.set_state(tr, State.SUCCESS)

    def _flowable_nexts(self, tr: TaskRun, task: TaskSpec, dispatches: list[Dispatch]) -> list[Resolved]:
        try:
            return self.flowable(task).next_task_runs(self, tr, task)
        except Exception as exc:  # a FlowableError or a render error of the flowable's own properties
            self.log(tr, "ERROR", str(exc))
            self.set_state(tr, State.FAILED)
            return []

    def _resolve_flowable(self, tr: TaskRun, task: TaskSpec, dispatches: list[Dispatch]) -> bool:
        try:
            state = self.flowable(task).resolve_state(self, tr, task, dispatches)
        except Exception as exc:  # a FlowableError or a render error of the flowable's own properties
            self.log(tr, "ERROR", str(exc))
            state = State.FAILED
        self.touched(tr)
        if state is None:
            return False
        if state is State.RUNNING:
            return True  # the flowable advanced internally (e.g. a new WaitFor iteration)
        self.set_state(tr, state)
        return True

    def _pause_state(self) -> None:
        paused = any(tr.state.current is State.PAUSED for tr in self.active.values())
        if paused and self.ex.state.current is State.RUNNING:
            self.set_execution_state(State.PAUSED)
        elif not paused and self.ex.state.current is State.PAUSED and not self.ex.runtime.manual_pause:
            self.set_execution_state(State.RESTARTED)
            self.set_execution_state(State.RUNNING)

    def _end(self) -> Finished | str | None:
        """Kestra's handleEnd: all current top-level tasks terminated -> final state, then the deprecated
        ``listeners`` run (their failures do not change the state). Returns :class:`Finished`, "progressed"
        (listener task runs were created) or None."""
        if self.ex.state.current.is_terminated or self.ex.state.current is State.PAUSED:
            return None
        revision, current = self._top  # the step's, unless a task run changed since
        if revision != self.revision:
            current = self.current_tasks(self._tasks, self._errors, self._finally, None)
        if not self._is_terminated(current, None):
            return None
        listeners = self._listener_tasks()
        if listeners:
            nexts = self.inner_sequential(listeners, None)
            if nexts:
                for r in nexts:
                    self.create(r)
                return "progressed"
        if any(tr.parent_task_run_id is None for tr in self.active.values()):
            return None
        state = self.ex.runtime.exit_state or self.final_state()
        self.ex.runtime.exit_state = None
        return Finished(state)

    def final_state(self) -> State:
        """The execution's state from its top-level task runs (+ a failed ``finally`` branch)."""
        state = self.guess_final_state(self._tasks, None)
        fin = self._finally
        if fin and state not in (State.KILLED, State.FAILED):
            fstate = self.guess_final_state(fin, None)
            if fstate in (State.FAILED, State.KILLED) or (fstate is State.WARNING and state is State.SUCCESS):
                state = fstate
        return state

    def _listener_tasks(self) -> list[Resolved]:
        """Tasks of the listeners whose conditions match the final state (decided once, then kept)."""
        if not self.flow.listeners:
            return []
        chosen = self.ex.runtime.listeners
        if chosen is None:
            from falconet.runtime.flow.conditions import ListenerContext, listener_matches

            ctx = ListenerContext(self.flow, self.ex, self.final_state(), self._render_plain, self.truthy)
            chosen = [t.id for listener in self.flow.listeners if listener_matches(listener, ctx)
                      for t in listener.tasks if not t.disabled]
            self.ex.runtime.listeners = chosen
        tasks = [self.flow.find_task(tid) for tid in chosen]
        return [Resolved(task, None) for task in tasks if task is not None]

    def _render_plain(self, template: Any) -> Any:
        return self.render(None, None, template)  # type: ignore[arg-type]

    #### results from actors ###############################################################################

    def apply_attempt_start(self, tr: TaskRun) -> None:
        tr.runtime.retry_at = None
        tr.attempts.append(Attempt(StateHistory(State.RUNNING)))
        self.set_state(tr, State.RUNNING)

    def apply_attempt_end(self, tr: TaskRun, attempt_state: State, outputs: dict[str, Any] | None,
                          final: bool, task: TaskSpec) -> None:
        if tr.attempts:
            tr.attempts[-1].state.set(attempt_state)
        if outputs is not None:
            tr.outputs = outputs
        if not final:
            self.set_state(tr, State.RETRYING)
            return
        state = attempt_state
        retry = self.retry_policy(tr, task)
        if retry is not None and retry.warning_on_retry and len(tr.attempts) > 1 and state is State.SUCCESS:
            state = State.WARNING
        if state is State.FAILED and task.allow_failure:
            state = State.WARNING
        if state is State.WARNING and task.allow_warning:
            state = State.SUCCESS
        self.set_state(tr, state)

    def restore(self) -> list[Dispatch]:
        """What an execution loaded at start-up waits for, from what its task runs recorded: each
        flowable's own commands (timers, child executions, jobs) and the next attempt of a RETRYING
        runnable task run. A deadline passed while the server was down fires at once."""
        out: list[Dispatch] = []
        for tr in self.active_runs():
            task = self.task_of(tr)
            if is_flowable(task):
                out.extend(self.flowable(task).restore(self, tr, task))
            elif tr.state.current is State.RETRYING:
                out.append(StartTimer(tr.id, TASK_RETRY, tr.runtime.retry_at or now()))
        return out

    def on_timer(self, tr: TaskRun, kind: str) -> None:
        """A timer of ``tr`` fired."""
        if kind == TASK_RETRY:
            if tr.state.current is State.RETRYING and not tr.runtime.dispatched:
                tr.runtime.retry_at = None  # restored after a restart: the next step attempts it again
                self.set_state(tr, State.RESTARTED)
            return
        task = self.task_of(tr)
        if is_flowable(task):
            self.flowable(task).on_timer(self, tr, task, kind)
            self.touched(tr)

    def resume_paused(self, on_resume: dict[str, Any] | None) -> None:
        """The execution is resumed: every PAUSED flowable task run hears it."""
        for tr in self.active_runs():
            if tr.state.current is State.PAUSED:
                task = self.task_of(tr)
                if is_flowable(task):
                    self.flowable(task).on_resume(self, tr, task, on_resume)
                    self.touched(tr)

    def abandon_after_execution(self) -> None:
        """The machine failed (an executor error): no afterExecution task will be created."""
        self._after_execution_abandoned = True

    def kill_all(self) -> list[TaskRun]:
        """Mark every non-terminal task run KILLED (children before parents); returns them."""
        killed = []
        for tr in reversed(self.active_runs()):
            if not tr.state.current.is_terminated:
                if tr.attempts and not tr.attempts[-1].state.current.is_terminated:
                    tr.attempts[-1].state.set(State.KILLED)
                self.set_state(tr, State.KILLED)
                killed.append(tr)
        return killed


def loop_values_to_strings(values: Any) -> list[str]:
    """ForEach/Each value rules: a JSON string is parsed; non-string items become JSON; duplicates removed;
    a null item is an error."""
    if isinstance(values, str):
        try:
            values = json.loads(values)
        except ValueError as exc:
            raise FlowableError(f"Unable to parse the values as JSON: {values!r}") from exc
    if isinstance(values, dict):
        values = [to_json({k: v}) for k, v in values.items()]
    if not isinstance(values, list):
        raise FlowableError(f"Unknown value type: {type(values).__name__}")
    out: list[str] = []
    nulls = sum(1 for v in values if v is None)
    if nulls:
        raise FlowableError(
            f"Found '{nulls}' null values on Each, with values={json.dumps(values, separators=(',', ':'))}")
    for v in values:
        s = v if isinstance(v, str) else to_json(v)
        if s not in out:
            out.append(s)
    return out


def pause_deadline(start: datetime, duration: timedelta) -> datetime:
    return start + duration


__all__ = [
    "Machine", "RunTask", "StartTimer", "StartSubflow", "StartJob", "Dispatch", "Finished", "Decision", "TASK_RETRY",
    "FlowableError",
    "is_flowable", "is_execution_updating", "loop_values_to_strings", "now",
]
