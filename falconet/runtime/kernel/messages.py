"""The messages an :class:`~falconet.runtime.kernel.actors.ExecutionActor` applies from its inbox: what its
task-run actors report (attempts, their exit), what the engine asks (kill, pause, resume) and what timers,
subflows and SLAs signal. Frozen dataclasses: a message is never changed once sent."""
from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

import trio

from falconet.runtime.kernel.state import State


@dataclasses.dataclass(frozen=True, slots=True)
class AttemptStarted:
    task_run_id: str


@dataclasses.dataclass(frozen=True, slots=True)
class AttemptEnded:
    task_run_id: str
    state: State
    outputs: dict[str, Any] | None
    final: bool
    retry_at: datetime | None = None  # not final: when the next attempt starts
    exited: bool = False  # the actor's last message (a normal end): it stands for TaskRunExited


@dataclasses.dataclass(frozen=True, slots=True)
class TimerFired:
    task_run_id: str
    kind: str


@dataclasses.dataclass(frozen=True, slots=True)
class SubflowEnded:
    task_run_id: str
    state: State
    outputs: dict[str, Any] | None


@dataclasses.dataclass(frozen=True, slots=True)
class KillRequested:
    reason: str
    cascade: bool = True  # also kill the subflow executions this one started
    applied: trio.Event | None = None  # set once applied (KILLING queued to the store) or the actor ended


@dataclasses.dataclass(frozen=True, slots=True)
class ResumeRequested:
    on_resume: dict[str, Any] | None
    applied: trio.Event | None = None  # set once applied and the execution advanced (or the actor ended)


@dataclasses.dataclass(frozen=True, slots=True)
class PauseRequested:
    applied: trio.Event | None = None  # set once applied (PAUSED queued to the store) or the actor ended


@dataclasses.dataclass(frozen=True, slots=True)
class SlaDeadline:
    sla_id: str


@dataclasses.dataclass(frozen=True, slots=True)
class JobEnded:
    """A flowable's job (``StartJob``) returned ``result``; the flowable gets it in ``on_event``."""

    task_run_id: str
    result: Any


@dataclasses.dataclass(frozen=True, slots=True)
class TaskRunExited:
    """The last message of a TaskRunActor that did not end normally (cancelled, or its final report could not
    be sent): its handle is dropped. A normal end folds it into the final :class:`AttemptEnded`
    (``exited=True``), one message instead of two per task run."""

    task_run_id: str


Message = (AttemptStarted | AttemptEnded | TimerFired | SubflowEnded | KillRequested | ResumeRequested | PauseRequested
           | SlaDeadline | JobEnded | TaskRunExited)
