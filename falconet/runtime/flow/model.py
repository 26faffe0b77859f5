"""The parsed flow: what ``falconet.runtime.flow.parsing.parse_flow`` produces and the executor consumes.

Pure data, immutable once parsed (one Flow object per stored revision, shared by all its executions).
Property values are kept as written (expressions unrendered); structural properties (sub-task lists)
are already turned into TaskSpec objects.
"""
from __future__ import annotations

import builtins
import dataclasses
from datetime import timedelta
from typing import Any, Iterator, Mapping

from falconet.sdk.plugin import Plugin


@dataclasses.dataclass(frozen=True)
class RetrySpec:
    """``retry:`` of a task or a flow (Kestra's ``AbstractRetry``). Durations are parsed; ``max_attempt``
    None = unbounded."""

    type: str  # "constant" | "exponential" | "random"
    max_attempt: int | None = None
    max_duration: timedelta | None = None
    warning_on_retry: bool = False
    behavior: str = "RETRY_FAILED_TASK"  # or "CREATE_NEW_EXECUTION"
    interval: timedelta | None = None
    max_interval: timedelta | None = None
    min_interval: timedelta | None = None
    delay_factor: float = 2.0


@dataclasses.dataclass(frozen=True)
class DagEntry:
    task: "TaskSpec"
    depends_on: tuple[str, ...] = ()


@dataclasses.dataclass(eq=False)
class TaskSpec:
    """One task as written in the flow (after pluginDefaults were applied)."""

    id: str
    type: str                   # the canonical type name (aliases resolved)
    cls: builtins.type[Plugin]  # the plugin class
    props: dict[str, Any]       # plugin properties, unrendered; TASKS -> list[TaskSpec], TASK_MAP ->
                                # dict[str, list[TaskSpec]], DAG_TASKS -> list[DagEntry]
    line: int | None = None     # 1-based line in the source
    written_type: str = ""      # the type exactly as written (may be an alias)
    description: str | None = None
    retry: RetrySpec | None = None
    timeout: str | None = None  # ISO duration or an expression rendering to one
    disabled: bool = False
    allow_failure: bool = False
    allow_warning: bool = False
    run_if: str | None = None   # expression; None = always
    log_level: str | None = None
    raw: dict[str, Any] = dataclasses.field(default_factory=dict)  # the task's mapping as written (JSON form)

    def child_lists(self) -> Iterator[tuple[str, list["TaskSpec"]]]:
        """Every (property name, sub-task list) of this task, in declaration order (Switch cases as
        ``cases.<key>``, Dag tasks as ``tasks``)."""
        from falconet.sdk.plugin import DAG_TASKS, TASK_MAP, TASKS

        for name, prop in self.cls.props.items():
            value = self.props.get(name)
            if value is None:
                continue
            if prop.kind == TASKS:
                yield name, value
            elif prop.kind == TASK_MAP:
                for key, tasks in value.items():
                    yield f"{name}.{key}", tasks
            elif prop.kind == DAG_TASKS:
                yield name, [entry.task for entry in value]

    def walk(self) -> Iterator["TaskSpec"]:
        """This task and all nested tasks, depth first."""
        yield self
        for _, tasks in self.child_lists():
            for t in tasks:
                yield from t.walk()


@dataclasses.dataclass(frozen=True)
class InputSpec:
    """One flow input (Kestra's ``Input``). ``props`` holds the type-specific fields as written
    (validator, min, max, after, before, values, options, itemType, expression, allowCustomValue, extension…)."""

    id: str
    type: str
    required: bool = True
    defaults: Any = None
    description: str | None = None
    display_name: str | None = None
    depends_on_inputs: tuple[str, ...] = ()
    depends_on_condition: str | None = None
    props: dict[str, Any] = dataclasses.field(default_factory=dict)
    line: int | None = None


@dataclasses.dataclass(frozen=True)
class OutputSpec:
    id: str
    type: str
    value: Any
    description: str | None = None
    display_name: str | None = None
    required: bool = True


@dataclasses.dataclass(frozen=True)
class ConditionSpec:
    type: str
    cls: builtins.type[Plugin]
    props: dict[str, Any]


@dataclasses.dataclass(frozen=True)
class TriggerSpec:
    id: str
    type: str
    cls: builtins.type[Plugin]
    props: dict[str, Any]
    conditions: tuple[ConditionSpec, ...] = ()
    disabled: bool = False
    stop_after: tuple[str, ...] = ()
    labels: tuple[tuple[str, str], ...] = ()
    line: int | None = None


@dataclasses.dataclass(frozen=True)
class ListenerSpec:
    conditions: tuple[ConditionSpec, ...]
    tasks: tuple[TaskSpec, ...]


@dataclasses.dataclass(frozen=True)
class ConcurrencySpec:
    limit: int
    behavior: str = "QUEUE"  # QUEUE | CANCEL | FAIL


@dataclasses.dataclass(frozen=True)
class SlaSpec:
    id: str
    type: str  # MAX_DURATION | EXECUTION_ASSERTION
    behavior: str = "FAIL"  # FAIL | CANCEL | NONE
    duration: timedelta | None = None
    assert_: str | None = None
    labels: tuple[tuple[str, str], ...] = ()


@dataclasses.dataclass(eq=False)
class Flow:
    """A parsed, validated flow revision."""

    id: str
    namespace: str
    revision: int
    source: str                                  # the YAML exactly as submitted
    tasks: list[TaskSpec]
    description: str | None = None
    labels: list[dict[str, str]] = dataclasses.field(default_factory=list)   # [{key, value}]
    inputs: list[InputSpec] = dataclasses.field(default_factory=list)
    outputs: list[OutputSpec] = dataclasses.field(default_factory=list)
    variables: dict[str, Any] = dataclasses.field(default_factory=dict)
    errors: list[TaskSpec] = dataclasses.field(default_factory=list)
    finally_: list[TaskSpec] = dataclasses.field(default_factory=list)
    after_execution: list[TaskSpec] = dataclasses.field(default_factory=list)
    listeners: list[ListenerSpec] = dataclasses.field(default_factory=list)
    triggers: list[TriggerSpec] = dataclasses.field(default_factory=list)
    plugin_defaults: list[Mapping[str, Any]] = dataclasses.field(default_factory=list)
    concurrency: ConcurrencySpec | None = None
    retry: RetrySpec | None = None
    sla: list[SlaSpec] = dataclasses.field(default_factory=list)
    disabled: bool = False
    deleted: bool = False
    raw: dict[str, Any] = dataclasses.field(default_factory=dict)  # the parsed YAML mapping (JSON form)

    def __post_init__(self) -> None:
        self._index: dict[str, TaskSpec] | None = None

    def all_tasks(self) -> Iterator[TaskSpec]:
        """Every task of the flow (tasks, errors, finally, afterExecution, listeners), nested included."""
        for group in (self.tasks, self.errors, self.finally_, self.after_execution):
            for t in group:
                yield from t.walk()
        for listener in self.listeners:
            for t in listener.tasks:
                yield from t.walk()

    def find_task(self, task_id: str) -> TaskSpec | None:
        if self._index is None:
            self._index = {t.id: t for t in self.all_tasks()}
        return self._index.get(task_id)

    def uid(self) -> str:
        return f"{self.namespace}/{self.id}"

    def to_dict(self, source: bool = False) -> dict[str, Any]:
        """Kestra's Flow JSON (``FlowWithSource`` when ``source``)."""
        d = dict(self.raw)
        d["id"] = self.id
        d["namespace"] = self.namespace
        d["revision"] = self.revision
        if self.labels:
            d["labels"] = self.labels
        d["disabled"] = self.disabled
        d["deleted"] = self.deleted
        if source:
            d["source"] = self.source
        return d
