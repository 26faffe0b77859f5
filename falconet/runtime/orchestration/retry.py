"""Retry with ``behavior: CREATE_NEW_EXECUTION`` (Kestra's ``AbstractRetry.Behavior``).

A task run that FAILED under such a retry policy (the task's own ``retry``, else its nearest flowable
ancestor's, else the flow's) does not retry in place. When the execution would end FAILED:

- the policy is checked against the *execution*: ``metadata.attemptNumber >= maxAttempt`` or a next date
  after ``metadata.originalCreatedDate + maxDuration`` means no retry (the execution ends FAILED);
- otherwise the failed task run and its ancestors become RETRIED, the execution ends RETRIED, and a new
  execution of the same flow revision is created at once in state CREATED with ``scheduleDate`` = the
  retry date: same inputs, labels, trigger and ``originalId``, ``metadata.attemptNumber + 1`` and the
  same ``originalCreatedDate``. It is created by the end-of-execution hook right after the RETRIED
  document is stored, and the engine starts it at its schedule date (also after a restart: it is a
  stored CREATED execution). A crash between those two writes loses the retry.

:func:`retry_state` runs synchronously inside the ExecutionActor when it computes the final state;
:func:`create_retry_execution` runs from the engine's end-of-execution hook.
"""
from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from falconet.runtime.flow.model import Flow, RetrySpec, TaskSpec
from falconet.runtime.kernel.execution import Execution, TaskRun, format_instant, now, parse_instant
from falconet.runtime.kernel.state import State

if TYPE_CHECKING:  # pragma: no cover
    from falconet.runtime.kernel.actors import ExecutionActor
    from falconet.runtime.kernel.services import Kernel

NEW_EXECUTION = "CREATE_NEW_EXECUTION"


def retry_delay(retry: RetrySpec, attempt_number: int) -> timedelta:
    """The wait before attempt ``attempt_number + 1`` (constant, exponential capped by maxInterval, random)."""
    if retry.type == "exponential":
        base = retry.interval or timedelta(seconds=1)
        delay = base * (retry.delay_factor ** max(attempt_number - 1, 0))
        if retry.max_interval is not None and delay > retry.max_interval:
            delay = retry.max_interval
        return delay
    if retry.type == "random":
        lo = (retry.min_interval or timedelta(0)).total_seconds()
        hi = (retry.max_interval or retry.min_interval or timedelta(0)).total_seconds()
        return timedelta(seconds=random.uniform(lo, max(lo, hi)))
    return retry.interval or timedelta(0)


def next_execution_date(retry: RetrySpec, ex: Execution, at: datetime) -> datetime | None:
    """When the next execution should start, or None when the policy is exhausted."""
    attempt = int(ex.metadata.get("attemptNumber", 1))
    if retry.max_attempt is not None and attempt >= retry.max_attempt:
        return None
    when = at + retry_delay(retry, attempt)
    if retry.max_duration is not None:
        original = ex.metadata.get("originalCreatedDate")
        first = parse_instant(original) if original else ex.state.start_date
        if when > first + retry.max_duration:
            return None
    return when


def _is_failed_leaf(ex: Execution, tr: TaskRun) -> bool:
    return tr.state.current is State.FAILED and not any(
        c.parent_task_run_id == tr.id and c.state.current is State.FAILED for c in ex.task_run_list)


def retry_state(actor: "ExecutionActor", state: State) -> State:
    """Called with the final state about to be set; returns RETRIED (and marks the task runs) when a
    CREATE_NEW_EXECUTION retry applies, else ``state`` unchanged."""
    if state is not State.FAILED:
        return state
    ex, flow, machine = actor.ex, actor.flow, actor.machine

    def task_of(tr: TaskRun) -> TaskSpec | None:
        try:
            return machine.task_of(tr)
        except KeyError:
            return None

    for tr in ex.task_run_list:
        if not _is_failed_leaf(ex, tr):
            continue
        task = task_of(tr)
        retry = machine.retry_policy(tr, task) if task is not None else flow.retry
        if retry is None or retry.behavior != NEW_EXECUTION:
            continue
        when = next_execution_date(retry, ex, now())
        if when is None:
            return state
        by_id = {t.id: t for t in ex.task_run_list}
        cur: TaskRun | None = tr
        while cur is not None:
            if cur.state.current is State.FAILED or not cur.state.current.is_terminated:
                cur.state.set(State.RETRIED)
                actor.on_change(cur)
            cur = by_id.get(cur.parent_task_run_id) if cur.parent_task_run_id else None
        ex.runtime.retry_at = when
        actor.log(tr, "INFO", f"Retry with a new execution at {format_instant(when)}")
        return State.RETRIED
    return state


def needs_retry_execution(ex: Execution) -> bool:
    """Whether ``ex`` ended RETRIED with a successor still to create (:func:`create_retry_execution`)."""
    return ex.state.current is State.RETRIED and ex.runtime.retry_at is not None and not ex.runtime.retry_execution_id


async def create_retry_execution(engine: "Kernel[ExecutionActor]", ex: Execution, flow: Flow) -> dict[str, Any] | None:
    """For an execution that ended RETRIED: store and schedule its successor (once)."""
    when = ex.runtime.retry_at
    if not needs_retry_execution(ex) or when is None:
        return None
    new = Execution(namespace=ex.namespace, flow_id=ex.flow_id, flow_revision=ex.flow_revision,
                    inputs=ex.inputs, labels=[dict(lb) for lb in ex.labels], trigger=ex.trigger,
                    original_id=ex.original_id, schedule_date=when)
    new.metadata = {"attemptNumber": int(ex.metadata.get("attemptNumber", 1)) + 1,
                    "originalCreatedDate": ex.metadata.get("originalCreatedDate")
                    or format_instant(ex.state.start_date)}
    await engine.cluster.own(new.id)
    await engine.store.save_execution(new.to_dict(private=True))
    ex.runtime.retry_execution_id = new.id
    await engine.store.save_execution(ex.to_dict(private=True))
    engine.publish_execution(new)
    engine.admission.schedule(new, flow)
    return new.to_dict()


__all__ = ["retry_state", "needs_retry_execution", "create_retry_execution", "next_execution_date", "retry_delay"]
