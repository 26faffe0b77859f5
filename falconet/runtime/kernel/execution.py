"""The execution document: Execution, TaskRun, attempts and state histories, in Kestra's JSON shape.

These objects are mutable and owned by exactly one ExecutionActor while the execution runs; everybody
else (HTTP, store writer, subscribers) sees snapshots produced by :meth:`Execution.to_dict`.
Pure data, no I/O; dates come from the trio run's engine clock (:mod:`falconet.runtime.kernel.clock`).
"""
from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timedelta, timezone
from typing import Any, Self

from falconet.runtime.kernel.clock import current_now
from falconet.runtime.kernel.ids import new_id
from falconet.runtime.kernel.state import State

UTC = timezone.utc


#### Time helpers ###########################################################################################

def now() -> datetime:
    """The engine clock's current UTC time, truncated to milliseconds (Kestra prints instants so)."""
    return current_now()


def format_instant(t: datetime) -> str:
    """``2024-09-24T13:35:32.983Z`` (always three fractional digits, UTC). A hot path: the texts of recent
    UTC instants are kept (:data:`_FORMATTED`), so an instant of a state history is formatted once, not once
    per document that holds it."""
    if t.tzinfo is not UTC:
        return _format_utc(t.astimezone(UTC))
    text = _FORMATTED.get(t)
    if text is None:
        if len(_FORMATTED) >= _FORMATTED_MAX:
            _FORMATTED.clear()
        text = _FORMATTED[t] = _format_utc(t)
    return text


def _format_utc(t: datetime) -> str:
    return t.isoformat(timespec="milliseconds")[:-6] + "Z"  # datetime's own C code, without "+00:00"


#: recent UTC instants and their text (dates are truncated to milliseconds, so a busy engine's instants repeat)
_FORMATTED: dict[datetime, str] = {}
_FORMATTED_MAX = 2048
_DURATIONS: dict[timedelta, str] = {}  # recent durations (between instants in milliseconds: they repeat), their text


def parse_instant(s: str) -> datetime:
    """Parse an ISO-8601 instant (``Z`` or offset); naive values are taken as UTC."""
    if s.endswith("Z"):
        s = s[:-1] + "+00:00"
    t = datetime.fromisoformat(s)
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return t.astimezone(UTC)


def format_duration(d: timedelta) -> str:
    """ISO-8601 duration as Java prints it: ``PT1.234S``, ``PT2M3S``, ``PT0S``. A hot path (each state of
    each document): the texts of recent durations are kept (:data:`_DURATIONS`)."""
    text = _DURATIONS.get(d)
    if text is None:
        if len(_DURATIONS) >= _FORMATTED_MAX:
            _DURATIONS.clear()
        text = _DURATIONS[d] = _format_duration(d)
    return text


def _format_duration(d: timedelta) -> str:
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

_TEXT = {s: s.value for s in State}  # a state's text without the enum's ``value`` descriptor (a hot path)

class StateHistory:
    """A state and its history of transitions; ``withState(same)`` is a no-op as in Kestra."""

    __slots__ = ("current", "_entries", "watch", "owner")

    def __init__(self, current: State = State.CREATED, histories: "list[tuple[State, datetime]] | None" = None):
        self.current = current
        # invariant: never empty, its last entry is `current`. Kept as (state name, date): a tuple of a string
        # and a date is not tracked by the garbage collector (a tuple holding an enum member is), which keeps
        # full collections of a 10,000-task execution short
        self._entries: list[tuple[str, datetime]] = (
            [(_TEXT[s], t) for s, t in histories] if histories is not None else [(_TEXT[current], now())])
        #: told ``watch.state_changed(owner, old, new)`` after each change (the machine keeps its indexes of
        #: task runs so; two plain references, not a closure per task run: fewer objects for the collector)
        self.watch: Any = None
        self.owner: Any = None

    @property
    def histories(self) -> list[tuple[State, datetime]]:
        """The transitions, oldest first (a copy)."""
        return [(State(s), t) for s, t in self._entries]

    @property
    def changes(self) -> int:
        """The number of transitions recorded (the length of :attr:`histories`)."""
        return len(self._entries)

    def set(self, state: State, when: datetime | None = None) -> bool:
        """Move to ``state``; returns False (and records nothing) when already in it."""
        old = self.current
        if state is old:
            return False
        self.current = state
        self._entries.append((_TEXT[state], when or now()))
        if self.watch is not None:
            self.watch.state_changed(self.owner, old, state)
        return True

    @property
    def start_date(self) -> datetime:
        return self._entries[0][1]

    @property
    def end_date(self) -> datetime | None:
        if self.current.is_terminated or self.current is State.PAUSED:
            return self._entries[-1][1]
        return None

    def duration(self) -> timedelta:
        end = self._entries[-1][1] if len(self._entries) > 1 else now()
        return end - self._entries[0][1]

    def to_dict(self) -> dict[str, Any]:
        entries, current = self._entries, self.current
        histories = [{"state": s, "date": format_instant(t)} for s, t in entries]
        d: dict[str, Any] = {
            "current": _TEXT[current],
            "histories": histories,
            "duration": format_duration(self.duration()),
            "startDate": histories[0]["date"],  # each instant formatted once: start and end are in histories
        }
        if current.is_terminated or current is State.PAUSED:  # as end_date
            d["endDate"] = histories[-1]["date"]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "StateHistory":
        hist = [(State(h["state"]), parse_instant(h["date"])) for h in d.get("histories") or []]
        cur = State(d["current"])
        if not hist:
            hist = [(cur, now())]
        return cls(cur, hist)

    def copy(self) -> "StateHistory":
        return StateHistory(self.current, self.histories)


class Attempt:
    __slots__ = ("state",)

    def __init__(self, state: StateHistory | None = None):
        self.state = state or StateHistory(State.CREATED)

    def to_dict(self) -> dict[str, Any]:
        return {"state": self.state.to_dict()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Attempt":
        return cls(StateHistory.from_dict(d["state"]))


#### Engine-private runtime state ###########################################################################

#: the key under which a stored execution or task-run document keeps the engine's runtime state
PRIVATE_KEY = "_extra"

_INSTANT = (datetime.isoformat, parse_instant)
_KESTRA_INSTANT = (format_instant, parse_instant)
_STATE = (lambda s: s.value, State)


def _persisted(key: str, codec: Any = None, default: Any = None) -> Any:
    """A runtime field stored under ``key`` (the camelCase name earlier versions wrote), encoded by ``codec``
    (an ``(encode, decode)`` pair) when it is not plain JSON. None and False are not written."""
    return dataclasses.field(default=default, metadata={"key": key, "codec": codec})


#: per runtime class: (attribute, stored key, codec, is a flag) of each field — computed once (a hot path)
_SPECS: dict[type, tuple[tuple[str, str, Any, bool], ...]] = {}


def _specs(cls: type) -> tuple[tuple[str, str, Any, bool], ...]:
    specs = _SPECS.get(cls)
    if specs is None:
        specs = _SPECS[cls] = tuple((f.name, f.metadata["key"], f.metadata["codec"], f.default is False)
                                    for f in dataclasses.fields(cls))
    return specs


class _Runtime:
    """JSON (de)serialisation shared by the runtime records below."""

    __slots__ = ()

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, key, codec, _flag in _specs(type(self)):
            value = getattr(self, name)
            if value is None or value is False:
                continue
            out[key] = codec[0](value) if codec is not None else value
        return out

    @classmethod
    def from_json(cls, d: dict[str, Any] | None) -> Self:
        """Read the stored form; keys this version does not know (e.g. a transient ``finalState``) are ignored."""
        if not d:
            return cls()
        values: dict[str, Any] = {}
        for name, key, codec, flag in _specs(cls):
            raw = d.get(key)
            if raw is None:
                continue
            values[name] = codec[1](raw) if codec is not None else (bool(raw) if flag else raw)
        return cls(**values)


@dataclasses.dataclass(slots=True)
class TaskRunRuntime(_Runtime):
    """What the engine records about a task run besides Kestra's fields: persisted with the document (so a
    restarted server resumes timers, loops and children where they were), never shown in the API."""

    #: handed to a task-run actor; cleared when a restart must run it again
    dispatched: bool = _persisted("dispatched", default=False)
    #: ForEach / EachSequential / EachParallel: the loop values, rendered once when the task run starts
    values: list[str] | None = _persisted("values")
    #: WaitFor / LoopUntil: when the first iteration started (``checkFrequency.maxDuration`` counts from it)
    loop_start: datetime | None = _persisted("loopStart", _INSTANT)
    #: WaitFor / LoopUntil: between two iterations, until ``wait_until``
    waiting: bool = _persisted("waiting", default=False)
    wait_until: datetime | None = _persisted("waitUntil", _INSTANT)
    #: Pause: resumed (API, delay, timeout) — it never pauses again
    resumed: bool = _persisted("resumed", default=False)
    #: Pause: when the ``delay`` elapses (it resumes) and when the ``timeout`` elapses (it fails)
    pause_deadline: datetime | None = _persisted("pauseDeadline", _INSTANT)
    pause_timeout: datetime | None = _persisted("pauseTimeout", _INSTANT)
    #: RETRYING: when the next attempt starts
    retry_at: datetime | None = _persisted("retryAt", _INSTANT)
    #: Subflow / ForEachItem: the child execution started, its end state once reported, and a retry whose
    #: delay elapsed (the next step starts a new attempt with a new child)
    child_execution_id: str | None = _persisted("childExecutionId")
    subflow_state: State | None = _persisted("subflowState", _STATE)
    subflow_retry_due: bool = _persisted("subflowRetryDue", default=False)
    #: ForEachItem: its batches were split and children may exist
    items_started: bool = _persisted("itemsStarted", default=False)
    #: WorkingDirectory: its phase (``preparing``, ``ready``, ``finishing``, ``done``) and
    #: the state the children resolved to
    wd_state: str | None = _persisted("wdState")
    wd_result: State | None = _persisted("wdResult", _STATE)


@dataclasses.dataclass(slots=True)
class ExecutionRuntime(_Runtime):
    """The engine's bookkeeping of an execution, persisted with the document, never shown in the API."""

    #: paused through the API (not by a Pause task): held until the API resumes it
    manual_pause: bool = _persisted("manualPause", default=False)
    #: the ids of the deprecated ``listeners`` tasks chosen for the final state (decided once)
    listeners: list[str] | None = _persisted("listeners")
    #: the state an ``Exit`` task imposes on the execution
    exit_state: State | None = _persisted("exitState", _STATE)
    #: killed without cascade: finishing the kill after a restart leaves its subflow executions alone
    no_kill_cascade: bool = _persisted("noKillCascade", default=False)
    #: ended RETRIED (CREATE_NEW_EXECUTION): when its successor starts, and the successor once created
    retry_at: datetime | None = _persisted("retryAt", _KESTRA_INSTANT)
    retry_execution_id: str | None = _persisted("retryExecutionId")


def without_private(doc: dict[str, Any]) -> dict[str, Any]:
    """A stored execution or task-run document as the API shows it: the engine's runtime state dropped
    (from the execution and each of its task runs). The one place that strips it; copies only what it changes."""
    if PRIVATE_KEY not in doc and not any(PRIVATE_KEY in tr for tr in doc.get("taskRunList") or ()):
        return doc
    out = {k: v for k, v in doc.items() if k != PRIVATE_KEY}
    runs = doc.get("taskRunList")
    if runs:
        out["taskRunList"] = [{k: v for k, v in tr.items() if k != PRIVATE_KEY} for tr in runs]
    return out


#### TaskRun ################################################################################################

class TaskRun:
    __slots__ = (
        "id", "execution_id", "namespace", "flow_id", "task_id", "parent_task_run_id", "value",
        "attempts", "outputs", "state", "iteration", "dynamic", "runtime",
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
        self.runtime = TaskRunRuntime()

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
        if private:
            runtime = self.runtime.to_json()
            if runtime:
                d[PRIVATE_KEY] = runtime
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
        tr.runtime = TaskRunRuntime.from_json(d.get(PRIVATE_KEY))
        return tr


#### Execution ##############################################################################################

class Execution:
    __slots__ = (
        "id", "namespace", "flow_id", "flow_revision", "task_run_list", "inputs", "outputs", "labels",
        "state", "parent_id", "original_id", "trigger", "deleted", "metadata", "schedule_date", "variables",
        "runtime", "text",
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
        self.runtime = ExecutionRuntime()
        #: the stored text's pieces of its terminated task runs (see :meth:`stored_text`)
        self.text = StoredText()

    # -- lookups --------------------------------------------------------------------------------------

    def find_task_run(self, task_run_id: str) -> TaskRun | None:
        for tr in self.task_run_list:
            if tr.id == task_run_id:
                return tr
        return None

    def label_map(self) -> dict[str, str]:
        return {lb["key"]: lb["value"] for lb in self.labels}

    # -- serialisation --------------------------------------------------------------------------------

    def to_dict(self, private: bool = False, *, task_runs: bool = True) -> dict[str, Any]:
        """Kestra's Execution JSON (null fields omitted). ``private=True`` adds engine bookkeeping for the store;
        ``task_runs=False`` leaves out ``taskRunList``."""
        d: dict[str, Any] = {
            "id": self.id,
            "namespace": self.namespace,
            "flowId": self.flow_id,
            "flowRevision": self.flow_revision,
        }
        if self.task_run_list and task_runs:
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
        if private:
            runtime = self.runtime.to_json()
            if runtime:
                d[PRIVATE_KEY] = runtime
        return d

    def stored_text(self) -> tuple[dict[str, Any], str]:
        """The stored document (``to_dict(private=True)``) as JSON text, and its top-level fields as a dict
        (with or without ``taskRunList``). The text of a terminated task run is kept between calls (:attr:`text`),
        so a large execution costs a join, not a serialisation of every task run. Raises ValueError or
        TypeError when the document is not JSON (as ``json.dumps``)."""
        if len(self.task_run_list) < StoredText.BLOCK:  # small: one serialisation is cheaper than pieces
            doc = self.to_dict(True)
            return doc, compact_json(doc)
        head = self.to_dict(True, task_runs=False)
        first = {k: head[k] for k in ("id", "namespace", "flowId", "flowRevision")}
        rest = {k: v for k, v in head.items() if k not in first}
        runs = self.text.join(self.task_run_list)
        return head, f'{compact_json(first)[:-1]},"taskRunList":[{runs}],{compact_json(rest)[1:]}'

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
        ex.runtime = ExecutionRuntime.from_json(d.get(PRIVATE_KEY))
        return ex


#### Stored text ############################################################################################

#: one encoder for every call (``json.dumps`` with options builds a JSONEncoder per call); it skips the
#: check for circular references, which costs ~15 % of an execution document's encoding
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False, check_circular=False)
_CHECKED = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def compact_json(value: Any) -> str:
    """JSON as the store writes it (compact, UTF-8 kept, no NaN): ``json.dumps`` with those options. Raises
    ValueError or TypeError when ``value`` is not JSON."""
    try:
        return _ENCODER.encode(value)
    except RecursionError:  # a cycle (then ValueError, as json.dumps says) or a value nested too deep: checked
        return _CHECKED.encode(value)


class StoredText:
    """The JSON text of an execution's terminated task runs, kept while they do not change.

    A piece is kept with a stamp (state, number of state changes and attempts, the outputs object) and
    served only while the stamp holds; :meth:`forget` drops one whose other fields changed (the actor
    calls it on every state change and every reported change of a task run, and after a flowable hook).
    A running task run is serialised on each call: it is the one that changes."""

    __slots__ = ("_pieces", "_blocks", "_block_of", "_runs")

    #: task runs per block: a block whose task runs are all terminated is kept joined
    BLOCK = 256

    def __init__(self) -> None:
        self._pieces: dict[str, tuple[tuple[Any, ...], str]] = {}
        self._blocks: dict[int, str] = {}
        self._block_of: dict[str, int] = {}
        self._runs: list[TaskRun] | None = None

    def join(self, runs: list[TaskRun]) -> str:
        """The pieces of ``runs`` joined with commas: a persist costs the blocks with a running or changed
        task run, not a pass over every task run."""
        if runs is not self._runs:  # another list (a restart rebuilt it)
            self._runs = runs
            self._blocks.clear()
            self._block_of.clear()
        size = self.BLOCK
        out: list[str] = []
        for index, start in enumerate(range(0, len(runs), size)):
            text = self._blocks.get(index)
            if text is None:
                block = runs[start:start + size]
                text = ",".join([self.piece(tr) for tr in block])
                if len(block) == size and all(tr.state.current.is_terminated for tr in block):
                    self._blocks[index] = text
                    for tr in block:
                        self._block_of[tr.id] = index
                        self._pieces.pop(tr.id, None)  # the block holds its text
            out.append(text)
        return ",".join(out)

    def piece(self, tr: TaskRun) -> str:
        state = tr.state.current
        if not state.is_terminated:
            return compact_json(tr.to_dict(True))
        stamp = (state, tr.state.changes, len(tr.attempts), id(tr.outputs))
        kept = self._pieces.get(tr.id)
        if kept is not None and kept[0] == stamp:
            return kept[1]
        text = compact_json(tr.to_dict(True))
        self._pieces[tr.id] = (stamp, text)
        return text

    def forget(self, task_run_id: str | None = None) -> None:
        """Drop the piece of one task run, or every piece."""
        if task_run_id is None:
            self._pieces.clear()
            self._blocks.clear()
        else:
            self._pieces.pop(task_run_id, None)
            index = self._block_of.pop(task_run_id, None)
            if index is not None:
                self._blocks.pop(index, None)
