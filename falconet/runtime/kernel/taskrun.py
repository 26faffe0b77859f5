"""The task-run actor: one per runnable task run, started by its execution actor
(:class:`~.actors.ExecutionActor`), which it sees only as a :class:`TaskRunOwner`. It runs the task's
attempts (timeout, retries on the engine clock) in a :class:`~.runcontext.TaskRunContext` and reports each
end, then its exit, on the owner's inbox (:mod:`.messages`).
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import trio

from falconet.runtime.flow.model import TaskSpec
from falconet.runtime.kernel.execution import Execution, TaskRun, now
from falconet.runtime.kernel.machine import Machine, next_retry_delay
from falconet.runtime.kernel.messages import AttemptEnded, AttemptStarted, Message, TaskRunExited
from falconet.runtime.kernel.runcontext import TaskRunContext
from falconet.runtime.kernel.state import State
from falconet.sdk.plugin import TaskFailed

if TYPE_CHECKING:  # pragma: no cover
    from falconet.runtime.kernel.services import Kernel

#: seconds a cancelled actor's last shielded send or store write may take (a stalled store must not hang a
#: kill or a shutdown forever); past it the message is dropped, the write left to restart recovery
FINAL_WRITE_TIMEOUT = 30.0


class TaskRunOwner(Protocol):
    """The execution actor as its task-run actors see it: the document, the machine, the engine, the
    expression context of a task run, and the inbox."""

    @property
    def ex(self) -> Execution: ...

    @property
    def machine(self) -> Machine: ...

    @property
    def engine(self) -> "Kernel[Any]": ...

    @property
    def error_logs(self) -> list[dict[str, Any]]: ...

    @property
    def secrets(self) -> list[str]: ...

    def variables_for(self, tr: TaskRun, task: TaskSpec) -> dict[str, Any]: ...

    async def shared_directory(self, tr: TaskRun) -> Path | None: ...

    def shares_directory(self, tr: TaskRun) -> bool: ...

    async def send(self, msg: Message, *, last: bool = False) -> None: ...


class TaskRunActor:
    """Runs the attempts of one runnable task run and reports each end on its execution actor's inbox.

    The execution actor starts it in its nursery and keeps it as the task run's handle: ``cancel``
    stops it (a kill, a sibling's failure), ``alive`` says whether it still runs. Its last message is
    its final :class:`AttemptEnded` (``exited=True``) or, when it did not end normally, :class:`TaskRunExited`
    — sent even when cancelled, under a shield bounded by FINAL_WRITE_TIMEOUT."""

    def __init__(self, owner: TaskRunOwner, task_run: TaskRun, task: TaskSpec):
        self.owner = owner
        self.task_run = task_run
        self.task = task
        self._scope = trio.CancelScope()
        self._alive = True

    @property
    def alive(self) -> bool:  # False once run() returned
        return self._alive

    def cancel(self, reason: str | None = None) -> None:
        self._scope.cancel(reason=reason)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        owner, tr, task = self.owner, self.task_run, self.task
        exit_reported = False
        try:
            with self._scope:
                task_status.started()
                retry = owner.machine.retry_policy(tr, task)
                if retry is not None and retry.behavior == "CREATE_NEW_EXECUTION":
                    retry = None  # handled at the execution level by the engine
                first_start = tr.attempts[0].state.start_date if tr.attempts else now()  # earlier attempts: a restart
                if owner.ex.state.current.is_terminated:
                    # an afterExecution task starts once the end of the ones before is durable: a crash
                    # never runs a finished one again
                    await owner.engine.store.flush()
                while True:
                    attempt_number = len(tr.attempts)
                    state, outputs = await self._one_attempt(attempt_number)
                    if state is State.FAILED and retry is not None:
                        at = now()
                        delay = next_retry_delay(retry, attempt_number, first_start, at)
                        if delay is not None:
                            await owner.send(AttemptEnded(tr.id, state, outputs, final=False, retry_at=at + delay))
                            await owner.engine.clock.sleep(delay.total_seconds())
                            await owner.send(AttemptStarted(tr.id))
                            await trio.lowlevel.checkpoint()
                            continue
                    self._alive = False
                    await owner.send(AttemptEnded(tr.id, state, outputs, final=True, exited=True), last=True)
                    exit_reported = True
                    return
        finally:
            self._alive = False
            if not exit_reported:
                # shielded: a cancelled actor still reports its exit (a kill ends when every actor has)
                with trio.move_on_after(FINAL_WRITE_TIMEOUT, shield=True):
                    await owner.send(TaskRunExited(tr.id), last=True)

    def can_run_inline(self) -> bool:
        """The attempt may run inside the execution actor's step (:meth:`run_inline`): its plugin never
        suspends, nothing can stop it midway (no ``timeout``, not cancelled yet), no retry can follow, no
        enclosing flowable shares a directory with it and the execution has not ended (an afterExecution task
        first waits for the store)."""
        task, tr, owner = self.task, self.task_run, self.owner
        if not getattr(task.cls, "synchronous", False) or task.timeout or self._scope.cancel_called:
            return False
        if owner.ex.state.current.is_terminated or owner.shares_directory(tr):
            return False
        retry = owner.machine.retry_policy(tr, task)
        return retry is None or retry.behavior == "CREATE_NEW_EXECUTION"

    def run_inline(self) -> AttemptEnded:
        """Run the one attempt of a task that :meth:`can_run_inline` now, without a trio task of its own;
        returns the last message :meth:`run` would send (the caller queues it). Nothing changes the document
        between here and the attempt's end, so its variables are built only if it renders a template."""
        ctx = self._context(len(self.task_run.attempts), None, lazy=True)
        try:
            coro = self.task.cls().run(ctx)  # type: ignore[attr-defined]
            try:
                coro.send(None)
            except StopIteration as stop:
                state, outputs = self._ended(ctx, stop.value)
            else:  # a plugin declared synchronous awaited: an engine-side bug, reported as the attempt's failure
                coro.close()
                raise RuntimeError(f"{self.task.cls.__name__}.run suspended although declared synchronous")
        except Exception as exc:
            state, outputs = self._failed(ctx, exc)
        finally:
            ctx.cleanup()
        self._alive = False
        return AttemptEnded(self.task_run.id, state, outputs, final=True, exited=True)

    def _context(self, attempt_number: int, shared_dir: Path | None, *, lazy: bool = False) -> TaskRunContext:
        owner, tr, task = self.owner, self.task_run, self.task
        variables = (lambda: owner.variables_for(tr, task)) if lazy else owner.variables_for(tr, task)
        return TaskRunContext(owner.engine, owner.ex, tr, task, variables, attempt_number,
                              owner.error_logs, owner.secrets, shared_dir=shared_dir)

    @staticmethod
    def _ended(ctx: TaskRunContext, outputs: Any) -> tuple[State, dict[str, Any] | None]:
        if outputs is not None and not isinstance(outputs, dict):
            outputs = {"value": outputs}
        return (State.WARNING if ctx.warning else State.SUCCESS), outputs

    @staticmethod
    def _failed(ctx: TaskRunContext, exc: Exception) -> tuple[State, dict[str, Any] | None]:
        """An exception of plugin code is the attempt's failure, never an engine crash."""
        if isinstance(exc, TaskFailed):
            ctx.logger.error(str(exc))
            return State.FAILED, exc.outputs
        ctx.logger.error(str(exc) or type(exc).__name__)
        return State.FAILED, None

    async def _one_attempt(self, attempt_number: int) -> tuple[State, dict[str, Any] | None]:
        from falconet.runtime.expr.durations import parse_duration

        owner, task = self.owner, self.task
        ctx = self._context(attempt_number, await owner.shared_directory(self.task_run))
        try:
            instance = task.cls()
            timeout = None
            if task.timeout:
                t = owner.engine.renderer.render(task.timeout, ctx.variables) if "{" in task.timeout else task.timeout
                timeout = parse_duration(str(t)).total_seconds()
            if timeout is None:  # no cancel scope to enter and leave (most tasks)
                outputs = await instance.run(ctx)  # type: ignore[attr-defined]
            else:
                with trio.move_on_after(timeout) as tscope:
                    outputs = await instance.run(ctx)  # type: ignore[attr-defined]
                if tscope.cancelled_caught:
                    ctx.logger.error(f"Timeout after {task.timeout}")
                    return State.FAILED, None
            return self._ended(ctx, outputs)
        except trio.Cancelled:
            raise
        except Exception as exc:
            return self._failed(ctx, exc)
        finally:
            ctx.cleanup()
