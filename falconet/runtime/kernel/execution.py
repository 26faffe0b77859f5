"""The execution document: Execution, TaskRun, attempts and state histories, in Kestra's JSON shape.

These objects are mutable and owned by exactly one ExecutionActor while the execution runs; everybody
else (HTTP, store writer, subscribers) sees snapshots produced by :meth:`Execution.to_dict`.
Pure data, no I/O; dates come from the trio run's engine clock (:mod:`falconet.runtime.kernel.clock`).
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from falconet.runtime.kernel.clock import current_now
from falconet.runtime.kernel.ids import new_id
from falconet.runtime.kernel.state import State

UTC = timezone.utc


#### Time helpers ###########################################################################################

def now() -> datetime:
    """The engine clock's current UTC time, truncated to milliseconds (Kestra prints instants so)."""
    return current_now()


def format_instant(t: datetime) -> str:
    """``2024-09-24T13:35:32.983Z`` (always three fractional digits, UTC). A hot path: no strftime."""
    if t.tzinfo is not UTC:
        t = t.astimezone(UTC)
    return (f"{t.year:04d}-{t.month:02d}-{t.day:02d}T{t.hour:02d}:{t.minute:02d}:{t.second:02d}."
            f"{t.microsecond // 1000:03d}Z")


def parse_instant(s: str) -> datetime:
    """Parse an ISO-8601 instant (``Z`` or offset); naive values are taken as UTC."""
    if s.endswith("Z"):
        s = s[:-1] + "+00:00"
    t = datetime.fromisoformat(s)
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return t.astimezone(UTC)


def format_duration(d: timedelta) -> str:
    """ISO-8601 duration as Java prints it: ``PT1.234S``, ``PT2M3S``, ``PT0S``."""
    total = d.total_seconds()
    neg = total < 0
    total = abs(total)
    hours, rem = divmod(total, 3600)
    minutes, seconds = divmod(rem, 60)
    out = "PT" + ("-" if neg and False else "")
    if hours >= 1:
        out += f"{int(hours)}H"
    if minutes >= 1:
        out += f"{int(minutes)}M"
    if seconds or out == "PT":
        sec = round(seconds, 6)
        if sec == int(sec):
            out += f"{int(sec)}S"
        else:
            out += f"{sec:.6f}".rstrip("0") + "S"
    return ("-" if neg else "") + out


#### State with history #####################################################################################

class StateHistory:
    """A state and its history of transitions; ``withState(same)`` is a no-op as in Kestra."""

    __slots__ = ("current", "histories")

    def __init__(self, current: State = State.CREATED, histories: "list[tuple[State, datetime]] | None" = None):
        self.current = current
        # invariant: histories is never empty and its last entry is `current`
        self.histories: list[tuple[State, datetime]] = histories if histories is not None else [(current, now())]

    def set(self, state: State, when: datetime | None = None) -> bool:
        """Move to ``state``; returns False (and records nothing) when already in it."""
        if state is self.current:
            return False
        self.current = state
        self.histories.append((state, when or now()))
        return True

    @property
    def start_date(self) -> datetime:
        return self.histories[0][1]

    @property
    def end_date(self) -> datetime | None:
        if self.current.is_terminated or self.current is State.PAUSED:
            return self.histories[-1][1]
        return None

    def duration(self) -> timedelta:
        end = self.histories[-1][1] if len(self.histories) > 1 else now()
        return end - self.histories[0][1]

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "current": self.current.value,
            "histories": [{"state": s.value, "date": format_instant(t)} for s, t in self.histories],
            "duration": format_duration(self.duration()),
            "startDate": format_instant(self.start_date),
        }
        end = self.end_date
        if end is not None:
            d["endDate"] = format_instant(end)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "StateHistory":
        hist = [(State(h["state"]), parse_instant(h["date"])) for h in d.get("histories") or []]
        cur = State(d["current"])
        if not hist:
            hist = [(cur, now())]
        return cls(cur, hist)

    def copy(self) -> "StateHistory":
        return StateHistory(self.current, list(self.histories))


class Attempt:
    __slots__ = ("state",)

    def __init__(self, state: StateHistory | None = None):
        self.state = state or StateHistory(State.CREATED)

    def to_dict(self) -> dict[str, Any]:
        return {"state": self.state.to_dict()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Attempt":
        return cls(StateHistory.from_dict(d["state"]))


#### TaskRun ################################################################################################

class TaskRun:
    __slots__ = (
        "id", "execution_id", "namespace", "flow_id", "task_id", "parent_task_run_id", "value",
        "attempts", "outputs", "state", "iteration", "dynamic", "extra",
    )

    def __init__(
        self,
        *,
        execution_id: str,
        namespace: str,
        flow_id: str,
        task_id: str,
        parent_task_run_id: str | None = None,
        value: str | None = None,
        id: str | None = None,
        state: StateHistory | None = None,
        attempts: list[Attempt] | None = None,
        outputs: dict[str, Any] | None = None,
        iteration: int | None = None,
        dynamic: bool | None = None,
    ):
        self.id = id or new_id()
        self.execution_id = execution_id
        self.namespace = namespace
        self.flow_id = flow_id
        self.task_id = task_id
        self.parent_task_run_id = parent_task_run_id
        self.value = value
        self.attempts: list[Attempt] = attempts if attempts is not None else []
        self.outputs = outputs
        self.state = state or StateHistory(State.CREATED)
        self.iteration = iteration
        self.dynamic = dynamic
        # engine-private bookkeeping persisted with the document (never shown in the API)
        self.extra: dict[str, Any] = {}

    def to_dict(self, private: bool = False) -> dict[str, Any]:
        d: dict[str, Any] = {
            "id": self.id,
            "executionId": self.execution_id,
            "namespace": self.namespace,
            "flowId": self.flow_id,
            "taskId": self.task_id,
        }
        if self.parent_task_run_id is not None:
            d["parentTaskRunId"] = self.parent_task_run_id
        if self.value is not None:
            d["value"] = self.value
        if self.attempts:
            d["attempts"] = [a.to_dict() for a in self.attempts]
        d["outputs"] = self.outputs
        d["state"] = self.state.to_dict()
        if self.iteration is not None:
            d["iteration"] = self.iteration
        if self.dynamic is not None:
            d["dynamic"] = self.dynamic
        if private and self.extra:
            d["_extra"] = self.extra
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TaskRun":
        tr = cls(
            id=d["id"],
            execution_id=d["executionId"],
            namespace=d["namespace"],
            flow_id=d["flowId"],
            task_id=d["taskId"],
            parent_task_run_id=d.get("parentTaskRunId"),
            value=d.get("value"),
            state=StateHistory.from_dict(d["state"]),
            attempts=[Attempt.from_dict(a) for a in d.get("attempts") or []],
            outputs=d.get("outputs"),
            iteration=d.get("iteration"),
            dynamic=d.get("dynamic"),
        )
        tr.extra = dict(d.get("_extra") or {})
        return tr


#### Execution ##############################################################################################

class Execution:
    __slots__ = (
        "id", "namespace", "flow_id", "flow_revision", "task_run_list", "inputs", "outputs", "labels",
        "state", "parent_id", "original_id", "trigger", "deleted", "metadata", "schedule_date", "variables",
        "extra",
    )

    def __init__(
        self,
        *,
        namespace: str,
        flow_id: str,
        flow_revision: int,
        id: str | None = None,
        inputs: dict[str, Any] | None = None,
        labels: list[dict[str, str]] | None = None,
        state: StateHistory | None = None,
        trigger: dict[str, Any] | None = None,
        parent_id: str | None = None,
        original_id: str | None = None,
        schedule_date: datetime | None = None,
        metadata: dict[str, Any] | None = None,
    ):
        self.id = id or new_id()
        self.namespace = namespace
        self.flow_id = flow_id
        self.flow_revision = flow_revision
        self.task_run_list: list[TaskRun] = []
        self.inputs = inputs
        self.outputs: dict[str, Any] | None = None
        self.labels: list[dict[str, str]] = labels if labels is not None else []
        self.state = state or StateHistory(State.CREATED)
        self.parent_id = parent_id
        self.original_id = original_id or self.id
        self.trigger = trigger
        self.deleted = False
        self.metadata = metadata or {"attemptNumber": 1, "originalCreatedDate": format_instant(self.state.start_date)}
        self.schedule_date = schedule_date
        self.variables: dict[str, Any] | None = None
        # engine-private bookkeeping persisted with the document (never shown in the API)
        self.extra: dict[str, Any] = {}

    # -- lookups --------------------------------------------------------------------------------------

    def find_task_run(self, task_run_id: str) -> TaskRun | None:
        for tr in self.task_run_list:
            if tr.id == task_run_id:
                return tr
        return None

    def label_map(self) -> dict[str, str]:
        return {lb["key"]: lb["value"] for lb in self.labels}

    # -- serialisation --------------------------------------------------------------------------------

    def to_dict(self, private: bool = False) -> dict[str, Any]:
        """Kestra's Execution JSON (null fields omitted). ``private=True`` adds engine bookkeeping for the store."""
        d: dict[str, Any] = {
            "id": self.id,
            "namespace": self.namespace,
            "flowId": self.flow_id,
            "flowRevision": self.flow_revision,
        }
        if self.task_run_list:
            d["taskRunList"] = [tr.to_dict(private) for tr in self.task_run_list]
        if self.inputs:
            d["inputs"] = self.inputs
        if self.outputs:
            d["outputs"] = self.outputs
        d["labels"] = self.labels
        d["state"] = self.state.to_dict()
        if self.parent_id is not None:
            d["parentId"] = self.parent_id
        d["originalId"] = self.original_id
        if self.trigger is not None:
            d["trigger"] = self.trigger
        d["deleted"] = self.deleted
        d["metadata"] = self.metadata
        if self.schedule_date is not None:
            d["scheduleDate"] = format_instant(self.schedule_date)
        if self.variables:
            d["variables"] = self.variables
        if private and self.extra:
            d["_extra"] = self.extra
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Execution":
        ex = cls(
            id=d["id"],
            namespace=d["namespace"],
            flow_id=d["flowId"],
            flow_revision=d.get("flowRevision", 1),
            inputs=d.get("inputs"),
            labels=list(d.get("labels") or []),
            state=StateHistory.from_dict(d["state"]),
            trigger=d.get("trigger"),
            parent_id=d.get("parentId"),
            original_id=d.get("originalId"),
            schedule_date=parse_instant(d["scheduleDate"]) if d.get("scheduleDate") else None,
            metadata=d.get("metadata"),
        )
        ex.task_run_list = [TaskRun.from_dict(t) for t in d.get("taskRunList") or []]
        ex.outputs = d.get("outputs")
        ex.deleted = bool(d.get("deleted", False))
        ex.variables = d.get("variables")
        ex.extra = dict(d.get("_extra") or {})
        return ex
