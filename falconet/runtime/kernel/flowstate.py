"""Kestra's flow-state rules over the task runs of one execution (``FlowableUtils`` and
``Execution.findTaskDependingFlowState``): which list of a flowable (tasks, errors, finally) is current,
the state its task runs resolve to, and the next task runs of a sequential or parallel list.

:class:`~.machine.Machine` is a :class:`FlowState`: flowables reach these rules through the machine their
hooks receive (``m.resolve_state``, ``m.sequential_nexts``, ``m.parallel_nexts``…).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Iterable, Sequence

from falconet.runtime.flow.model import TaskSpec
from falconet.runtime.kernel.execution import Execution, TaskRun
from falconet.runtime.kernel.state import State


@dataclasses.dataclass(slots=True)
class Resolved:
    """A task that may get a task run under ``parent_id`` (with loop ``value`` / ``iteration``)."""

    task: TaskSpec
    parent_id: str | None
    value: str | None = None
    iteration: int | None = None


def _enabled(tasks: Iterable[Resolved] | None) -> list[Resolved] | None:
    if tasks is None:
        return None
    return [r for r in tasks if not r.task.disabled]


class Runs(list):
    """:meth:`FlowState.runs_for`'s answer for a list of Resolved the state keeps (:meth:`FlowState.keep`):
    the task runs, kept up to date as runs are created and change state, with counts by kind of state.
    Shared: callers must not modify it."""

    __slots__ = ("failed", "terminated", "busy")

    def __init__(self) -> None:
        super().__init__()
        self.failed = self.terminated = self.busy = 0

    def tally(self, state: State, sign: int) -> None:
        if state is State.FAILED:
            self.failed += sign
        if state.is_terminated:
            self.terminated += sign
        elif state.is_created or state.is_running or state is State.RETRYING or state is State.PAUSED:
            self.busy += sign


class _Kept:
    """A list of Resolved the state keeps, with what the rules ask of it, computed once."""

    __slots__ = ("resolved", "enabled", "any_value", "valued", "first")

    def __init__(self, resolved: list[Resolved]) -> None:
        self.resolved = resolved
        self.enabled: list[Resolved] | None = None
        self.any_value = {r.task.id for r in resolved if r.value is None}
        self.valued = {(r.task.id, r.value) for r in resolved if r.value is not None}
        self.first: dict[tuple[str, str | None], int] = {}
        for i, r in enumerate(resolved):
            self.first.setdefault((r.task.id, r.value), i)

    def matches(self, tr: TaskRun) -> bool:
        return tr.task_id in self.any_value or (tr.task_id, tr.value) in self.valued


class FlowState:
    """The flow-state rules over :attr:`ex`'s task runs, indexed by parent task run in :attr:`by_parent`
    (both kept by :class:`~.machine.Machine`).

    Lists of Resolved that stay the same from step to step (the flow's top-level lists, a flowable's
    children) are *kept* (:meth:`keep`): their task runs under a parent are then indexed (:class:`Runs`,
    updated by :meth:`_runs_created` and :meth:`_runs_moved`) instead of found by a scan, so a step costs
    the same with 10 or 10,000 task runs."""

    ex: Execution
    by_parent: dict[str | None, list[TaskRun]]
    by_id: dict[str, TaskRun]
    active: dict[str, TaskRun]
    _pos: dict[str, int]
    _children: dict[tuple[str, str], tuple[tuple[Any, ...], list[Resolved] | None]]
    on_task_run: Callable[[TaskRun], None] | None

    def _init_kept(self) -> None:
        #: bumped by every task run indexed and every state change: what :meth:`current_tasks` reads
        self.revision = 0
        self._kept: dict[int, _Kept] = {}
        self._groups: dict[tuple[int, str | None], Runs] = {}
        self._groups_by_parent: dict[str | None, list[tuple[_Kept, Runs]]] = {}
        self._groups_of: dict[str, list[Runs]] = {}

    def keep(self, resolved: list[Resolved] | None) -> list[Resolved] | None:
        """Index the task runs of ``resolved`` from now on (the caller passes the same list object again)."""
        if resolved is not None and id(resolved) not in self._kept:
            self._kept[id(resolved)] = _Kept(resolved)
        return resolved

    def forget(self, resolved: list[Resolved] | None) -> None:
        """Stop indexing a kept list (its owner replaced it)."""
        kept = self._kept.pop(id(resolved), None) if resolved is not None else None
        for info in (kept, self._kept.pop(id(kept.enabled), None) if kept and kept.enabled is not None
                     and kept.enabled is not resolved else None):
            if info is None:
                continue
            for key in [k for k in self._groups if k[0] == id(info.resolved)]:
                group = self._groups.pop(key)
                entries = self._groups_by_parent.get(key[1], [])
                entries[:] = [e for e in entries if e[1] is not group]
                for tr in group:
                    of = self._groups_of.get(tr.id)
                    if of is not None:
                        of[:] = [g for g in of if g is not group]

    def _enabled(self, tasks: list[Resolved] | None) -> list[Resolved] | None:
        kept = self._kept.get(id(tasks)) if tasks is not None else None
        if kept is None:
            return _enabled(tasks)
        if kept.enabled is None:
            enabled = [r for r in kept.resolved if not r.task.disabled]
            kept.enabled = kept.resolved if len(enabled) == len(kept.resolved) else enabled
            self.keep(kept.enabled)
        return kept.enabled

    def _runs_created(self, tr: TaskRun) -> None:
        """A task run was created (appended to the list): add it to the groups of its parent it belongs to."""
        for kept, group in self._groups_by_parent.get(tr.parent_task_run_id, ()):
            if kept.matches(tr):
                group.append(tr)
                group.tally(tr.state.current, 1)
                self._groups_of.setdefault(tr.id, []).append(group)

    def _runs_moved(self, tr: TaskRun, old: State, new: State) -> None:
        for group in self._groups_of.get(tr.id, ()):
            group.tally(old, -1)
            group.tally(new, 1)

    def runs_for(self, resolved: Sequence[Resolved] | None, parent_id: str | None,
                 iteration: int | None = None) -> list[TaskRun]:
        """Task runs under ``parent_id`` that belong to ``resolved`` (FlowableUtils.isTaskRunFor)."""
        if not resolved:
            return []
        kept = self._kept.get(id(resolved)) if iteration is None else None
        if kept is not None:
            group = self._groups.get((id(resolved), parent_id))
            if group is None:
                group = self._groups[(id(resolved), parent_id)] = Runs()
                for tr in self.by_parent.get(parent_id, ()):
                    if kept.matches(tr):
                        group.append(tr)
                        group.tally(tr.state.current, 1)
                        self._groups_of.setdefault(tr.id, []).append(group)
                self._groups_by_parent.setdefault(parent_id, []).append((kept, group))
            return group
        any_value = {r.task.id for r in resolved if r.value is None}
        valued = {(r.task.id, r.value) for r in resolved if r.value is not None}
        out = []
        for tr in self.by_parent.get(parent_id, ()):
            if tr.task_id in any_value or (tr.task_id, tr.value) in valued:
                if iteration is None or tr.iteration == iteration:
                    out.append(tr)
        return out

    #### indexes of the task runs ########################################################################

    def _index(self, tr: TaskRun) -> None:
        self.revision += 1
        self.by_id[tr.id] = tr
        self.by_parent.setdefault(tr.parent_task_run_id, []).append(tr)
        self._pos[tr.id] = len(self._pos)
        if not tr.state.current.is_terminated:
            self.active[tr.id] = tr
        tr.state.watch, tr.state.owner = self, tr
        self._runs_created(tr)

    def reindex(self) -> None:
        self.revision += 1
        self.by_parent.clear()
        self.by_id.clear()
        self.active.clear()
        self._pos.clear()
        self._groups.clear()
        self._groups_by_parent.clear()
        self._groups_of.clear()
        for tr in self.ex.task_run_list:
            self._index(tr)

    def state_changed(self, tr: TaskRun, old: State, new: State) -> None:
        """Every state change of a task run (whoever sets it) keeps the indexes."""
        self.revision += 1
        if new.is_terminated:
            self.active.pop(tr.id, None)
        else:
            self.active[tr.id] = tr
        self._runs_moved(tr, old, new)
        if self.on_task_run is not None:
            self.on_task_run(tr)

    def touched(self, tr: TaskRun) -> None:
        """A flowable hook ran on ``tr``: it may have changed its outputs or runtime state."""
        if self.on_task_run is not None:
            self.on_task_run(tr)

    def active_runs(self) -> list[TaskRun]:
        """The task runs not terminated, in the list's order."""
        if len(self.active) < 2:  # a sequence runs one task run at a time: nothing to order
            return list(self.active.values())
        pos = self._pos
        return sorted(self.active.values(), key=lambda tr: pos[tr.id])

    def kept_children(self, tr: TaskRun, slot: str, deps: tuple[Any, ...],
                     build: Callable[[], list[Resolved] | None]) -> list[Resolved] | None:
        """``build()``, a list of Resolved under ``tr``, computed once and kept (:meth:`keep`) while every
        object of ``deps`` (what it is computed from) stays the same."""
        key = (tr.id, slot)
        cached = self._children.get(key)
        if (cached is not None and len(cached[0]) == len(deps)
                and all(a is b for a, b in zip(cached[0], deps, strict=True))):
            return cached[1]
        if cached is not None:
            self.forget(cached[1])
        resolved = self.keep(build())
        self._children[key] = (deps, resolved)
        return resolved

    #### Kestra's flow-state helpers (Execution.java) ######################################################

    def _has_failed(self, runs: list[TaskRun]) -> bool:
        if isinstance(runs, Runs):
            return runs.failed > 0
        return any(tr.state.current is State.FAILED for tr in runs)

    def _has_failed_no_retry(self, runs: list[TaskRun]) -> bool:
        # a FAILED task run is final here: retries happen inside the TaskRunActor (RETRYING state)
        return self._has_failed(runs)

    def _is_terminated(self, resolved: Sequence[Resolved], parent_id: str | None, iteration: int | None = None) -> bool:
        runs = self.runs_for(resolved, parent_id, iteration)
        if isinstance(runs, Runs):
            return runs.terminated == len(resolved)
        return sum(1 for tr in runs if tr.state.current.is_terminated) == len(resolved)

    def current_tasks(self, tasks: list[Resolved] | None, errors: list[Resolved] | None,
                      finally_: list[Resolved] | None, parent_id: str | None, terminal: State | None = None,
                      iteration: int | None = None) -> list[Resolved]:
        """Execution.findTaskDependingFlowState: which list (tasks, errors or finally) is current."""
        tasks = self._enabled(tasks) or []
        errors = self._enabled(errors)
        finally_ = self._enabled(finally_)
        errors_runs = self.runs_for(errors, parent_id, iteration)
        finally_runs = self.runs_for(finally_, parent_id, iteration)
        if finally_runs:
            return finally_ or []
        if not errors_runs and terminal is State.FAILED:
            return errors if errors is not None else (finally_ or [])
        task_runs = self.runs_for(tasks, parent_id, iteration)
        if errors_runs or self._has_failed(task_runs):
            if not self._has_failed_no_retry(task_runs) and terminal is not State.FAILED:
                return []
            if finally_ is not None and errors is not None and not self._is_terminated(errors, parent_id, iteration):
                return errors
            if finally_ is None:
                return errors or []
        if finally_ is not None and (self._is_terminated(tasks, parent_id, iteration)
                                     or self._has_failed_no_retry(task_runs)):
            return finally_
        return tasks

    def guess_final_state(self, resolved: Sequence[Resolved] | None, parent_id: str | None,
                          allow_failure: bool = False, allow_warning: bool = False,
                          terminal: State = State.SUCCESS, iteration: int | None = None) -> State:
        runs = self.runs_for(resolved, parent_id, iteration)
        states = {tr.state.current for tr in runs}
        if State.KILLED in states:
            state = State.KILLED
        elif State.FAILED in states:
            state = State.FAILED
        elif State.WARNING in states:
            state = State.WARNING
        elif State.PAUSED in states:
            state = State.PAUSED
        else:
            state = terminal
        if state is State.FAILED and allow_failure:
            return State.SUCCESS if allow_warning else State.WARNING
        if state is State.WARNING and allow_warning:
            return State.SUCCESS
        return state

    def resolve_state(self, tasks: list[Resolved] | None, errors: list[Resolved] | None,
                      finally_: list[Resolved] | None, parent: TaskRun, allow_failure: bool, allow_warning: bool,
                      terminal: State = State.SUCCESS, iteration: int | None = None) -> State | None:
        """FlowableUtils.resolveState (+ resolveSequentialState's all-disabled rule)."""
        if not self._enabled(tasks):
            return State.SUCCESS
        current = self.current_tasks(tasks, errors, finally_, parent.id, terminal, iteration)
        if current:
            if all(r.task.disabled for r in current):
                return terminal
            if self._is_terminated(current, parent.id, iteration):
                return self.guess_final_state(tasks, parent.id, allow_failure, allow_warning, terminal, iteration)
        else:
            if self._has_failed_no_retry(self.runs_for(tasks, parent.id, iteration)) or terminal is State.FAILED:
                return self.guess_final_state(tasks, parent.id, allow_failure, allow_warning, terminal, iteration)
        return None

    #### next task runs ####################################################################################

    def sequential_nexts(self, tasks, errors, finally_, parent_id, terminal=None, iteration=None) -> list[Resolved]:
        current = self.current_tasks(tasks, errors, finally_, parent_id, terminal, iteration)
        return self.inner_sequential(current, parent_id, iteration)

    def inner_sequential(self, current: list[Resolved], parent_id: str | None,
                          iteration: int | None = None) -> list[Resolved]:
        if not current or self.ex.state.current is State.KILLING:
            return []
        runs = self.runs_for(current, parent_id, iteration)
        if not runs:
            return [current[0]]
        if isinstance(runs, Runs):
            if runs.busy:
                return []
        elif any(tr.state.current.is_created or tr.state.current.is_running
                 or tr.state.current in (State.RETRYING, State.PAUSED) for tr in runs):
            return []
        last = next((tr for tr in reversed(runs) if tr.state.current.is_terminated), None)
        kept = self._kept.get(id(current))
        if last is not None and kept is not None:
            found = [i for i in (kept.first.get((last.task_id, None)), kept.first.get((last.task_id, last.value)))
                     if i is not None]
            if found and min(found) + 1 < len(current):
                return [current[min(found) + 1]]
            return []
        if last is not None:
            for i, r in enumerate(current):
                if r.task.id == last.task_id and (r.value is None or r.value == last.value):
                    if i + 1 < len(current):
                        return [current[i + 1]]
                    break
        return []

    def parallel_nexts(self, tasks, errors, finally_, parent_id, concurrency: int,
                       ready: Callable[[Resolved, list[TaskRun]], bool] | None = None) -> list[Resolved]:
        if self.ex.state.current is State.KILLING:
            return []
        current = self.current_tasks(tasks, errors, finally_, parent_id)
        enabled = _enabled(tasks) or []
        if [r.task.id for r in current] != [r.task.id for r in enabled] or len(current) != len(enabled):
            return self.inner_sequential(current, parent_id)  # errors & finally run sequentially
        runs = self.runs_for(current, parent_id)
        running = sum(1 for tr in runs if tr.state.current.is_running or tr.state.current is State.RETRYING)
        if concurrency > 0 and running >= concurrency:
            return []
        created_any = {tr.task_id for tr in runs}
        created = {(tr.task_id, tr.value) for tr in runs}
        not_found = [r for r in current
                     if (r.value is None and r.task.id not in created_any)
                     or (r.value is not None and (r.task.id, r.value) not in created)]
        if not not_found or any(tr.state.current.is_created for tr in runs):
            return []
        if ready is not None:
            not_found = [r for r in not_found if ready(r, runs)]
        if concurrency > 0:
            not_found = not_found[: max(concurrency - running, 0)]
        return not_found
