"""Semantics of the core flowable and execution-updating tasks, driven by :class:`executor.Machine`.

Each flowable type answers three questions about one of its task runs:
``on_start`` (it just became RUNNING: compute what is computed once — If's condition, Switch's value,
ForEach's values, Pause's deadlines), ``nexts`` (which child task runs can be created now) and
``resolve_state`` (is it done, and in which state). Types are matched by their short class name, so
aliases and canonical names behave the same.
"""
from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from falconet.runtime.expr.durations import parse_duration
from falconet.runtime.kernel.machine import (
    Dispatch, FlowableError, Machine, Resolved, StartSubflow, StartTimer, _resolve, loop_values_to_strings,
    next_retry_delay,
)
from falconet.runtime.expr.output import to_output_string
from falconet.runtime.flow.model import TaskSpec
from falconet.runtime.kernel.execution import Attempt, StateHistory, TaskRun, now
from falconet.runtime.kernel.state import State
from falconet.runtime import workingdir

EACH_TYPES = {"ForEach", "EachSequential", "EachParallel"}
EXECUTABLE = {"Subflow", "Flow", "ForEachItem$ForEachItemExecutable"}  # ForEachItem runs its internal children
SUBFLOW_TYPES = {"Subflow", "Flow"}


def _short(task: TaskSpec) -> str:
    return task.type.rsplit(".", 1)[-1]


def _errors(task: TaskSpec, tr: TaskRun, iteration: int | None = None) -> tuple[list[Resolved] | None, list[Resolved] | None]:
    return (_resolve(task.props.get("errors"), tr.id, iteration=iteration),
            _resolve(task.props.get("finally"), tr.id, iteration=iteration))


def _duration(m: Machine, tr: TaskRun, task: TaskSpec, value: Any) -> timedelta | None:
    if value is None:
        return None
    if isinstance(value, (int, float)):
        return timedelta(seconds=value)
    rendered = m.render(tr, task, value)
    if rendered in (None, ""):
        return None
    return parse_duration(str(rendered))


#### children ###############################################################################################

def children(m: Machine, tr: TaskRun, task: TaskSpec) -> list[Resolved] | None:
    """The normal child list of a flowable task run (loop values applied)."""
    name = _short(task)
    if name in EACH_TYPES:
        values = tr.extra.get("values") or []
        tasks = task.props.get("tasks") or []
        return [Resolved(t, tr.id, value=v) for v in values for t in tasks] or None
    if name == "If":
        result = (tr.outputs or {}).get("evaluationResult")
        if result is None:
            return None
        return _resolve(task.props.get("then") if result else task.props.get("else"), tr.id)
    if name == "Switch":
        if tr.outputs is None:
            return None
        if tr.outputs.get("defaults"):
            return _resolve(task.props.get("defaults"), tr.id)
        cases = task.props.get("cases") or {}
        return _resolve(cases.get(str(tr.outputs.get("value"))), tr.id)
    if name == "Dag":
        return _resolve([e.task for e in task.props.get("tasks") or []], tr.id)
    if name == "ForEachItem":
        from falconet.runtime.orchestration.foreachitem import internal_tasks

        return _resolve(internal_tasks(task), tr.id)
    if name in ("WaitFor", "LoopUntil"):
        return _resolve(task.props.get("tasks"), tr.id, iteration=tr.iteration)
    return _resolve(task.props.get("tasks"), tr.id)


#### on_start ###############################################################################################

def on_start(m: Machine, tr: TaskRun, task: TaskSpec, dispatches: list[Dispatch]) -> None:
    name = _short(task)
    if name == "If":
        cond = m.render(tr, task, task.props.get("condition"))
        tr.outputs = {"evaluationResult": bool(m.truthy(cond))}
    elif name == "Switch":
        value = m.render(tr, task, task.props.get("value"))
        value = "" if value is None else str(value)
        cases = task.props.get("cases") or {}
        if value in cases:
            tr.outputs = {"value": value, "defaults": False}
        elif task.props.get("defaults"):
            tr.outputs = {"value": value, "defaults": True}
        else:
            tr.outputs = {"value": value, "defaults": False}
            raise FlowableError(f"Switch task '{task.id}' has no case matching the value '{value}' and no defaults")
    elif name in EACH_TYPES:
        raw = task.props.get("values") if name == "ForEach" else task.props.get("value")
        if isinstance(raw, str):
            raw = m.render(tr, task, raw)
        elif isinstance(raw, list):
            raw = [m.render(tr, task, v) if isinstance(v, str) else v for v in raw]
        elif isinstance(raw, dict):
            raw = m.render(tr, task, raw)
        tr.extra["values"] = loop_values_to_strings(raw)
    elif name == "Pause":
        _pause_start(m, tr, task, dispatches)
    elif name in ("WaitFor", "LoopUntil"):
        tr.iteration = 0
        tr.outputs = {"iterationCount": 0}
        tr.extra["loopStart"] = now().isoformat()
    elif name in workingdir.KINDS:
        workingdir.on_start(m, tr, task, dispatches)
    elif name in EXECUTABLE:
        if name != "ForEachItem":
            tr.attempts.append(Attempt(StateHistory(State.RUNNING)))
        dispatches.append(StartSubflow(tr, task))


def _pause_start(m: Machine, tr: TaskRun, task: TaskSpec, dispatches: list[Dispatch]) -> None:
    if tr.extra.get("resumed"):
        return
    start = now()
    delay = _duration(m, tr, task, task.props.get("delay") or task.props.get("pauseDuration"))
    timeout = _duration(m, tr, task, task.timeout)
    m.set_state(tr, State.PAUSED)
    if delay is not None:
        tr.extra["pauseDeadline"] = (start + delay).isoformat()
        dispatches.append(StartTimer(tr.id, "pause-delay", start + delay))
    if timeout is not None:
        tr.extra["pauseTimeout"] = (start + timeout).isoformat()
        dispatches.append(StartTimer(tr.id, "pause-timeout", start + timeout))


def resume_pause(m: Machine, tr: TaskRun, task: TaskSpec, on_resume: dict[str, Any] | None) -> None:
    """Resume a PAUSED Pause task run (API resume or elapsed delay): RUNNING, or SUCCESS without sub-tasks."""
    tr.extra["resumed"] = True
    if on_resume is not None:
        tr.outputs = {"onResume": on_resume}
    m.set_state(tr, State.RUNNING)
    if not task.props.get("tasks"):
        m.set_state(tr, State.SUCCESS)


#### nexts ##################################################################################################

def nexts(m: Machine, tr: TaskRun, task: TaskSpec) -> list[Resolved]:
    name = _short(task)
    errors, finally_ = _errors(task, tr)
    kids = children(m, tr, task)
    if name == "Pause":
        if not tr.extra.get("resumed"):
            return []
        return m.sequential_nexts(kids, errors, finally_, tr.id)
    if name in EXECUTABLE:
        return []
    if name in workingdir.KINDS and not workingdir.ready(tr):
        return []
    if name in ("WaitFor", "LoopUntil"):
        if tr.extra.get("waiting"):
            return []
        errors, finally_ = _errors(task, tr, tr.iteration)
        return m.sequential_nexts(kids, errors, finally_, tr.id, iteration=tr.iteration)
    if name == "Parallel":
        return m.parallel_nexts(kids, errors, finally_, tr.id, int(task.props.get("concurrent") or 0))
    if name == "EachParallel":
        return m.parallel_nexts(kids, errors, finally_, tr.id, int(task.props.get("concurrent") or 0))
    if name == "Dag":
        deps = {e.task.id: list(e.depends_on) for e in task.props.get("tasks") or []}

        def ready(r: Resolved, runs: list[TaskRun]) -> bool:
            done = {x.task_id for x in runs if x.state.current.is_terminated}
            return all(d in done for d in deps.get(r.task.id, ()))

        return m.parallel_nexts(kids, errors, finally_, tr.id, int(task.props.get("concurrent") or 0), ready)
    if name == "ForEach":
        limit = task.props.get("concurrencyLimit", 1)
        limit = 1 if limit is None else int(limit)
        if limit == 1:
            return m.sequential_nexts(kids, errors, finally_, tr.id)
        return _grouped_nexts(m, tr, task, kids, errors, finally_, limit)
    return m.sequential_nexts(kids, errors, finally_, tr.id)


def _grouped_nexts(m: Machine, tr: TaskRun, task: TaskSpec, kids, errors, finally_, limit: int) -> list[Resolved]:
    """ForEach with concurrencyLimit != 1: up to ``limit`` values run at once, tasks of one value in order."""
    current = m.current_tasks(kids, errors, finally_, tr.id)
    enabled = [r for r in kids or [] if not r.task.disabled]
    if len(current) != len(enabled) or [id(r.task) for r in current] != [id(r.task) for r in enabled]:
        return m.inner_sequential(current, tr.id)
    if m.ex.state.current is State.KILLING:
        return []
    out: list[Resolved] = []
    active = 0
    groups: dict[str, list[Resolved]] = {}
    for r in enabled:
        groups.setdefault(r.value or "", []).append(r)
    pending_new: list[list[Resolved]] = []
    for _value, group in groups.items():
        runs = m.runs_for(group, tr.id)
        if not runs:
            pending_new.append(group)
            continue
        done = sum(1 for x in runs if x.state.current.is_terminated)
        if done < len(group):
            active += 1
            out.extend(m.inner_sequential(group, tr.id))
    for group in pending_new:
        if limit > 0 and active >= limit:
            break
        out.append(group[0])
        active += 1
    return out


#### resolve_state ##########################################################################################

def resolve_state(m: Machine, tr: TaskRun, task: TaskSpec, dispatches: list[Dispatch]) -> State | None:
    name = _short(task)
    allow_failure = task.allow_failure or name == "AllowFailure"
    allow_warning = task.allow_warning
    if name in EXECUTABLE:
        if tr.extra.pop("subflowRetryDue", None):  # the retry delay elapsed: a new attempt, a new child
            tr.extra.pop("retryAt", None)
            tr.attempts.append(Attempt(StateHistory(State.RUNNING)))
            m.on_change(tr)
            dispatches.append(StartSubflow(tr, task))
            return State.RUNNING
        result = tr.extra.get("subflowState")
        if not result:
            return None
        state = State(result)
        if tr.attempts and not tr.attempts[-1].state.current.is_terminated:
            tr.attempts[-1].state.set(state)
        if name in SUBFLOW_TYPES:
            if state is State.FAILED and _retry_subflow(m, tr, task, dispatches):
                return State.RUNNING
            if state is State.FAILED and allow_failure:
                state = State.WARNING
            if state is State.WARNING and allow_warning:
                state = State.SUCCESS
        return state
    if name == "Pause":
        if not tr.extra.get("resumed"):
            return None
        if not task.props.get("tasks"):
            return State.SUCCESS
    errors, finally_ = _errors(task, tr)
    kids = children(m, tr, task)
    if name in ("WaitFor", "LoopUntil"):
        return _waitfor_state(m, tr, task, dispatches, kids)
    if name in workingdir.KINDS:
        state = (m.resolve_state(kids, errors, finally_, tr, allow_failure, allow_warning)
                 if workingdir.ready(tr) else None)
        return workingdir.resolve(m, tr, task, state, dispatches)
    if name in EACH_TYPES and not tr.extra.get("values"):
        return State.SUCCESS
    if name == "If" and kids is None:
        return State.SUCCESS
    return m.resolve_state(kids, errors, finally_, tr, allow_failure, allow_warning)


def _retry_subflow(m: Machine, tr: TaskRun, task: TaskSpec, dispatches: list[Dispatch]) -> bool:
    """A FAILED Subflow task run under an in-place retry policy (its own, an enclosing task's or the
    flow's): RETRYING until the delay elapses, then a new attempt starts a new child execution (Kestra's
    RESTART_FAILED_TASK). False when no retry applies or the policy is exhausted."""
    retry = m.retry_policy(tr, task)
    if retry is None or retry.behavior == "CREATE_NEW_EXECUTION" or not tr.attempts:
        return False
    delay = next_retry_delay(retry, len(tr.attempts), tr.attempts[0].state.start_date, now())
    if delay is None:
        return False
    tr.extra.pop("subflowState", None)
    tr.extra["retryAt"] = (now() + delay).isoformat()
    m.set_state(tr, State.RETRYING)
    dispatches.append(StartTimer(tr.id, "subflow-retry", now() + delay))
    return True


def retry_subflow_due(m: Machine, tr: TaskRun) -> None:
    """The retry delay of a RETRYING Subflow task run elapsed: the next step starts a new attempt."""
    tr.extra["subflowRetryDue"] = True
    m.set_state(tr, State.RUNNING)


def _waitfor_state(m: Machine, tr: TaskRun, task: TaskSpec, dispatches: list[Dispatch], kids) -> State | None:
    if tr.extra.get("waiting"):
        return None
    errors, finally_ = _errors(task, tr, tr.iteration)
    state = m.resolve_state(kids, errors, finally_, tr, task.allow_failure, task.allow_warning, iteration=tr.iteration)
    if state is None:
        return None
    if state is not State.SUCCESS and state is not State.WARNING:
        return state
    freq = task.props.get("checkFrequency") or {}
    max_iterations = int(freq.get("maxIterations", 100))
    max_duration = parse_duration(str(freq.get("maxDuration", "PT1H")))
    interval = parse_duration(str(freq.get("interval", "PT1S")))
    cond = m.render(tr, task, task.props.get("condition"))
    count = int((tr.outputs or {}).get("iterationCount", 0)) + 1
    if m.truthy(cond):
        tr.outputs = {"iterationCount": count}
        return state
    from datetime import datetime

    started = datetime.fromisoformat(tr.extra["loopStart"])
    fail = bool(task.props.get("failOnMaxReached", False))
    if count >= max_iterations or now() + interval - started > max_duration:
        tr.outputs = {"iterationCount": count}
        if fail:
            m.log(tr, "ERROR", f"Max iterations or max duration reached for task '{task.id}'")
            return State.FAILED
        return state
    tr.outputs = {"iterationCount": count}
    tr.extra["waiting"] = True
    tr.extra["waitUntil"] = (now() + interval).isoformat()
    dispatches.append(StartTimer(tr.id, "waitfor-interval", now() + interval))
    return State.RUNNING


def next_iteration(m: Machine, tr: TaskRun) -> None:
    """The WaitFor interval elapsed: start the next iteration."""
    if not tr.extra.pop("waiting", None):
        return  # already started (a timer restored after a restart fired twice)
    tr.extra.pop("waitUntil", None)
    tr.iteration = (tr.iteration or 0) + 1
    m.on_change(tr)


#### timers after a restart ###############################################################################

def restore_timers(m: Machine) -> list[StartTimer]:
    """The timers an execution loaded at start-up waits for, re-armed from the deadlines its task runs
    recorded: a Pause's ``delay`` and ``timeout``, a WaitFor's next iteration, the next attempt of a
    RETRYING task run. A deadline passed while the server was down fires at once."""
    from datetime import datetime

    out: list[StartTimer] = []

    def arm(tr: TaskRun, kind: str, key: str) -> None:
        raw = tr.extra.get(key)
        out.append(StartTimer(tr.id, kind, datetime.fromisoformat(raw) if raw else now()))

    for tr in m.ex.task_run_list:
        state = tr.state.current
        if state is State.PAUSED and not tr.extra.get("resumed"):
            if "pauseDeadline" in tr.extra:
                arm(tr, "pause-delay", "pauseDeadline")
            if "pauseTimeout" in tr.extra:
                arm(tr, "pause-timeout", "pauseTimeout")
        elif state is State.RUNNING and tr.extra.get("waiting"):
            arm(tr, "waitfor-interval", "waitUntil")
        elif state is State.RETRYING:
            arm(tr, "subflow-retry" if _short(m.task_of(tr)) in EXECUTABLE else "task-retry", "retryAt")
    return out


#### execution-updating tasks ###############################################################################

def apply_execution_update(m: Machine, tr: TaskRun, task: TaskSpec) -> None:
    name = _short(task)
    tr.attempts.append(Attempt(StateHistory(State.RUNNING)))
    m.set_state(tr, State.RUNNING)
    try:
        if name == "Labels":
            _apply_labels(m, tr, task)
        elif name == "Exit":
            state = str(m.render(tr, task, task.props.get("state") or "SUCCESS")).upper()
            if state == "CANCELED":
                state = "CANCELLED"
            m.ex.extra["exitState"] = State(state).value
        else:
            raise FlowableError(f"Unknown execution-updating task type {task.type}")
    except Exception as exc:
        m.log(tr, "ERROR", str(exc))
        tr.attempts[-1].state.set(State.FAILED)
        final = State.WARNING if task.allow_failure else State.FAILED
        m.set_state(tr, final)
        return
    tr.attempts[-1].state.set(State.SUCCESS)
    m.set_state(tr, State.SUCCESS)


def _stringify(value: Any) -> str:
    return to_output_string(value)


def _apply_labels(m: Machine, tr: TaskRun, task: TaskSpec) -> None:
    raw = task.props.get("labels")
    if isinstance(raw, str):
        rendered = m.render(tr, task, raw)
        try:
            raw = json.loads(rendered)
        except ValueError as exc:
            raise FlowableError(f"Unable to parse labels as a JSON object: {rendered}") from exc
    pairs: list[tuple[str, str]] = []
    if isinstance(raw, dict):
        for k, v in raw.items():
            key = str(m.render(tr, task, k))
            value = m.render_typed(tr, task, v) if isinstance(v, str) else v
            pairs.append((key, _stringify(value)))
    elif isinstance(raw, list):
        for item in raw:
            if not isinstance(item, dict) or "key" not in item:
                raise FlowableError("labels must be a map or a list of {key, value}")
            value = item.get("value")
            value = m.render_typed(tr, task, value) if isinstance(value, str) else value
            pairs.append((str(m.render(tr, task, item["key"])), _stringify(value)))
    else:
        raise FlowableError("labels must be a map, a list of {key, value} or a JSON string")
    for key, _ in pairs:
        if key.startswith("system."):
            raise FlowableError(f"Cannot update system label '{key}'")
    labels = list(m.ex.labels)
    for key, value in pairs:
        for lb in labels:
            if lb["key"] == key:
                lb["value"] = value
                break
        else:
            labels.append({"key": key, "value": value})
    m.ex.labels = labels
    m.on_change(None)
