"""The plugin API: how a task or trigger type declares itself and what it may reach while it runs.

A plugin is a class deriving from :class:`RunnableTask` (code that runs in a TaskRunActor),
:class:`FlowableTask` (control flow resolved by the ExecutionActor) or :class:`Trigger`, registered with
:func:`register`. Its :attr:`props` declaration is the single source for flow validation, the
``/api/v1/plugins`` JSON schema and the UI documentation.

Plugins reach the engine only through :class:`RunContext` (render, logger, metrics, outputs, storage,
kv) — never through engine internals.
"""
from __future__ import annotations

import abc
import dataclasses
from typing import TYPE_CHECKING, Any, ClassVar, ContextManager, Mapping, Protocol

from falconet.sdk.registry import Registry

if TYPE_CHECKING:
    from datetime import datetime
    from pathlib import Path
    from typing import Sequence

    from falconet.runtime.flow.model import TaskSpec
    from falconet.runtime.kernel.execution import TaskRun
    from falconet.runtime.kernel.flowstate import Resolved
    from falconet.runtime.kernel.machine import Dispatch, Machine
    from falconet.runtime.kernel.state import State


#### Property declarations ##################################################################################

# Property kinds. Scalars are checked/coerced by flow validation; the structural kinds hold sub-tasks that
# flow parsing turns into TaskSpec objects.
STRING = "string"
INTEGER = "integer"
NUMBER = "number"
BOOLEAN = "boolean"
DURATION = "duration"      # ISO-8601 duration string (may be an expression when dynamic)
ENUM = "enum"              # one of Prop.values
LIST = "list"              # list of anything (or a string expression rendering to a JSON list when dynamic)
MAP = "map"                # mapping (or a string expression rendering to a JSON object when dynamic)
OBJECT = "object"          # nested object; its fields are Prop.fields when given
ANY = "any"                # anything (string, number, list, map)
TASKS = "tasks"            # list of task definitions -> list[TaskSpec]
TASK_MAP = "task_map"      # mapping str -> list of task definitions (Switch `cases`) -> dict[str, list[TaskSpec]]
DAG_TASKS = "dag_tasks"    # list of {task: <task def>, dependsOn: [ids]} -> list[DagEntry]
CONDITIONS = "conditions"  # list of condition definitions (type + properties) -> list[ConditionSpec]
INPUTS = "inputs"          # list of flow-input definitions (Pause `onResume`) -> list[InputSpec]
# mapping str -> condition definition (MultipleCondition `conditions`) -> dict[str, ConditionSpec]
CONDITION_MAP = "condition_map"

STRUCTURAL = frozenset({TASKS, TASK_MAP, DAG_TASKS})


@dataclasses.dataclass(frozen=True)
class Prop:
    """One property of a plugin type.

    ``dynamic`` properties are rendered as expressions by :meth:`RunContext.prop`; others are used as
    written. ``default`` is used when the flow does not set the property (``None`` = no default).
    """

    kind: str = ANY
    required: bool = False
    default: Any = None
    dynamic: bool = True
    description: str = ""
    values: tuple[str, ...] = ()            # allowed values for ENUM
    fields: "Mapping[str, Prop] | None" = None   # sub-properties for OBJECT
    aliases: tuple[str, ...] = ()           # other accepted names (e.g. maxAttempt / maxAttempts)


@dataclasses.dataclass(frozen=True)
class Example:
    """A documented use of a plugin type (Kestra's ``@Example``): ``code`` is YAML; unless ``full``, it
    is the body of one task (or trigger, condition) and the docs put ``id``/``type`` lines before it."""

    title: str
    code: str
    full: bool = False
    lang: str = "yaml"


@dataclasses.dataclass(frozen=True)
class Output:
    """One output a type produces (``outputs.<task>.<name>``)."""

    kind: str = ANY
    description: str = ""
    required: bool = True                   # always present (False: only in some cases)


@dataclasses.dataclass(frozen=True)
class Metric:
    """A metric a type emits (Kestra's ``@Metric``): ``type`` is ``counter`` or ``timer``."""

    name: str
    type: str
    description: str = ""
    unit: str = ""


#### Plugin base classes ####################################################################################

class Plugin:
    """Common declaration of every task, trigger and condition type."""

    #: canonical type name (the dotted Java class name Kestra uses)
    type: ClassVar[str] = ""
    #: older names that resolve to this type (Kestra's legacy aliases)
    aliases: ClassVar[tuple[str, ...]] = ()
    #: property declarations (common task properties such as id, retry, timeout are added by the engine)
    props: ClassVar[dict[str, Prop]] = {}
    #: one-line title for docs / UI
    title: ClassVar[str] = ""
    #: documented uses (the docs page and ``GET /api/v1/plugins/{type}`` show them)
    examples: ClassVar[tuple[Example, ...]] = ()
    #: the outputs a run produces, by name
    outputs: ClassVar[dict[str, Output]] = {}
    #: the metrics a run emits
    metrics: ClassVar[tuple[Metric, ...]] = ()


class RunnableTask(Plugin, abc.ABC):
    """A task whose code runs in its own TaskRunActor.

    ``run`` is called once per attempt. It returns the task's outputs (a JSON-able dict, or None) or
    raises :class:`TaskFailed` (attempt FAILED with that message logged at ERROR) or
    :class:`TaskWarning`-returning semantics via ``ctx.warn_state()``. Cancellation (kill, timeout) arrives
    as ``trio.Cancelled``; plugins must not swallow it and must clean up subprocesses/threads.
    """

    #: ``run`` never suspends (no ``await`` that reaches trio): without a ``timeout`` or a retry, the engine
    #: runs such an attempt inside its execution actor's step instead of starting a task-run actor for it
    synchronous: ClassVar[bool] = False

    @abc.abstractmethod
    async def run(self, ctx: "RunContext") -> dict[str, Any] | None:
        """Run one attempt; return the outputs."""


class FlowableTask(Plugin):
    """Control flow resolved inside the ExecutionActor (If, Switch, ForEach, Parallel, …).

    The state machine (``falconet.runtime.kernel.machine.Machine``) never looks at a flowable's type: it calls
    these methods on an instance of the class, passing itself (``m``), the task run and its ``TaskSpec``.
    The defaults describe ``Sequential``: the children are the ``tasks`` property, run one after the
    other, with the ``errors`` and ``finally`` branches. A flowable overrides what differs:

    - :meth:`children` — the normal child list (loop values, the chosen branch…), or None when none yet;
    - :meth:`on_start` — the task run just became RUNNING: compute what is computed once (If's condition,
      ForEach's values) and append the commands to carry out (``StartTimer``, ``StartSubflow``,
      ``StartJob``) to ``dispatches``; raising fails the task run;
    - :meth:`next_task_runs` — which children can be created now (Kestra's ``resolveNexts``);
    - :meth:`resolve_state` — the task run's final state once its children allow it, or None (not yet);
      ``State.RUNNING`` means it advanced internally (a new WaitFor iteration, a new subflow attempt);
    - :meth:`on_child_end` — the child execution started by ``StartSubflow`` ended;
    - :meth:`on_timer` — a ``StartTimer`` it returned fired; :meth:`on_resume` — the execution was resumed
      while this task run was PAUSED; :meth:`on_event` — a job it started with ``StartJob`` reported;
    - :meth:`restore` — the commands to carry out again when the execution is loaded at start-up;
    - :meth:`internal_tasks` — task specs it creates runs of without the flow declaring them.

    The actor side of ``StartJob`` is :meth:`run_job` (run in the execution actor's nursery with a
    :class:`FlowableServices`); :meth:`shared_directory` and :meth:`cleanup` serve the runnable tasks
    below the task run and the end of the execution.
    """

    #: this task creates executions of (namespace, flowId): flow validation refuses a call to its own
    #: flow, and the flow topology shows an edge to the called flow
    executable: ClassVar[bool] = False

    def children(self, m: "Machine", tr: "TaskRun", task: "TaskSpec") -> "list[Resolved] | None":
        """The normal child list of a task run (default: the ``tasks`` property)."""
        tasks = task.props.get("tasks")
        return m.kept_children(tr, "tasks", (tasks,), lambda: m.resolve_tasks(tasks, tr.id))

    def on_start(self, m: "Machine", tr: "TaskRun", task: "TaskSpec", dispatches: "list[Dispatch]") -> None:
        """The task run became RUNNING (default: nothing to compute)."""
        return None

    def next_task_runs(self, m: "Machine", tr: "TaskRun", task: "TaskSpec") -> "list[Resolved]":
        """The children that can be created now (default: one after the other)."""
        errors, finally_ = m.branches(tr, task)
        return m.sequential_nexts(self.children(m, tr, task), errors, finally_, tr.id)

    def resolve_state(self, m: "Machine", tr: "TaskRun", task: "TaskSpec",
                      dispatches: "list[Dispatch]") -> "State | None":
        """The final state once the children allow it, else None."""
        errors, finally_ = m.branches(tr, task)
        return m.resolve_state(self.children(m, tr, task), errors, finally_, tr, task.allow_failure,
                               task.allow_warning)

    def on_child_end(self, m: "Machine", tr: "TaskRun", task: "TaskSpec", state: "State",
                     outputs: "dict[str, Any] | None") -> None:
        """The child execution this task run started ended in ``state`` (default: ignored)."""
        return None

    def on_timer(self, m: "Machine", tr: "TaskRun", task: "TaskSpec", kind: str) -> None:
        """The timer ``kind`` this task run armed fired (default: ignored)."""
        return None

    def on_resume(self, m: "Machine", tr: "TaskRun", task: "TaskSpec",
                  on_resume: "dict[str, Any] | None") -> None:
        """The execution was resumed while this task run was PAUSED (default: ignored)."""
        return None

    def on_event(self, m: "Machine", tr: "TaskRun", task: "TaskSpec", event: Any) -> None:
        """A job started with ``StartJob`` reported ``event`` (default: ignored)."""
        return None

    def restore(self, m: "Machine", tr: "TaskRun", task: "TaskSpec") -> "list[Dispatch]":
        """Commands to carry out again for ``tr`` when its execution is loaded (default: none)."""
        return []

    def internal_tasks(self, task: "TaskSpec") -> "list[TaskSpec]":
        """Task specs this flowable creates runs of that the flow does not declare (default: none)."""
        return []

    async def run_job(self, services: "FlowableServices", tr: "TaskRun", task: "TaskSpec", job: str) -> Any:
        """Run the job a ``StartJob(tr, task, job)`` command asked for; what it returns reaches
        :meth:`on_event` (an exception it raises is logged at ERROR on the task run and reaches
        :meth:`on_event` instead). Only flowables that return ``StartJob`` commands override it."""
        raise NotImplementedError(f"{type(self).__name__} runs no job {job!r}")

    async def shared_directory(self, services: "FlowableServices", tr: "TaskRun") -> "Path | None":
        """The directory the runnable tasks below ``tr`` share, or None (default). Checkpoint."""
        return None

    async def cleanup(self, services: "FlowableServices", task_runs: "list[TaskRun]") -> None:
        """The execution ended: release what these task runs of this type hold (default: nothing)."""
        return None


class FlowableServices(Protocol):
    """What a flowable's job reaches (implemented by the execution actor)."""

    ex: Any  # the execution document (falconet.runtime.kernel.execution.Execution)

    @property
    def storage(self) -> Any: ...  # falconet.runtime.storage.base.Storage
    @property
    def clock(self) -> Any: ...  # falconet.runtime.kernel.clock.Clock (blocking file work: clock.run_sync_in_thread)

    def context(self, tr: "TaskRun", task: "TaskSpec") -> "RunContext":
        """A run context for ``task`` in the variables of ``tr`` (render, prop, logger, files)."""

    def directory_for(self, task_run_id: str) -> "Path":
        """The private directory of a task run under the engine's temporary root (kept across a restart
        while the execution is unfinished)."""

    def temp_root(self) -> "Path":
        """The engine's temporary root (for scratch files)."""

    def task_run(self, task_run_id: str) -> "TaskRun | None":
        """A task run of this execution by id."""


class ExecutionUpdatingTask(Plugin, abc.ABC):
    """A task evaluated inside the ExecutionActor that changes the execution itself (``execution.Labels``,
    ``execution.Exit``). The state machine gives it one attempt: SUCCESS when :meth:`apply` returns,
    FAILED (WARNING with ``allowFailure``) with the message logged when it raises."""

    @abc.abstractmethod
    def apply(self, m: "Machine", tr: "TaskRun", task: "TaskSpec") -> None:
        """Change the execution document (``m.ex``) for task run ``tr``."""


#: trigger kinds: what the engine does with a trigger of the class (:attr:`Trigger.kind`)
CRON = "cron"              # the scheduler starts an execution at each date of the ``cron`` property
DATES = "dates"            # the scheduler starts an execution at each of the ``dates``
EXECUTIONS = "executions"  # the end (or a state) of other executions starts one (conditions, preconditions)
WEBHOOK = "webhook"        # ``/api/v1/executions/webhook/{ns}/{flowId}/{key}`` starts one


class Trigger(Plugin):
    """A trigger type (Schedule, Flow, Webhook, polling triggers).

    :attr:`kind` tells the engine how executions are started for it; polling triggers derive from
    :class:`PollingTrigger` instead."""

    kind: ClassVar[str] = ""

    @classmethod
    def upstream_flows(cls, spec: Any) -> "list[Mapping[str, Any]]":
        """The flows (``{namespace, flowId}`` mappings) whose executions this trigger (a ``TriggerSpec``)
        reacts to, for the flow topology (default: none)."""
        return []


class PollingTrigger(Trigger, abc.ABC):
    """A trigger the engine evaluates periodically (Kestra's ``PollingTriggerInterface``), e.g. ``http.Trigger``.

    For every enabled trigger of this kind in the latest revision of an enabled flow, the engine calls
    :meth:`evaluate` every ``interval`` (the trigger's ``interval`` property when the flow sets it, else
    the class's :attr:`interval`), one evaluation at a time, after the trigger's ``conditions`` hold.
    """

    #: ISO-8601 duration between two evaluations when the flow sets no ``interval`` property
    interval: ClassVar[str] = "PT60S"

    @abc.abstractmethod
    async def evaluate(self, ctx: "PollingContext") -> dict[str, Any] | None:
        """One evaluation: the ``trigger.variables`` of the execution to create, or None for no execution.

        Raises :class:`TriggerEvaluationError` when the evaluation cannot complete (logged at WARNING by
        the engine, which keeps polling). Cancellation may arrive at any checkpoint (flow update, stop).
        """


class Condition(Plugin):
    """A condition type used by triggers (ExecutionStatus, Expression, …)."""

    #: true for a condition over a window of executions (MultipleCondition): flow triggers keep its
    #: state between executions; a webhook trigger refuses it
    multiple: ClassVar[bool] = False
    #: true when its ``namespace`` and ``flowId`` properties name the flow whose executions it matches
    names_flow: ClassVar[bool] = False

    def matched(self, props: dict[str, Any], ctx: Any) -> list[str]:
        """A :attr:`multiple` condition's sub-conditions (names) that hold for the execution in ``ctx``;
        the flow-trigger listener keeps them over the window."""
        raise NotImplementedError(f"{type(self).__name__} is not a multiple condition")


#### Errors plugins raise ###################################################################################

class TaskFailed(Exception):
    """The attempt failed; the message is logged at ERROR on the task run.

    ``outputs`` (optional) are kept on the failed task run, as Kestra keeps a script's ``vars``,
    ``exitCode`` and ``outputFiles`` when it exits non-zero.
    """

    def __init__(self, message: str = "", outputs: "dict[str, Any] | None" = None):
        super().__init__(message)
        self.outputs = outputs


class TriggerEvaluationError(Exception):
    """A polling trigger's evaluation could not complete (bad property, request error, render error): the
    engine logs the message at WARNING, creates no execution and keeps polling."""


#### The run context facade #################################################################################

@dataclasses.dataclass(frozen=True)
class FlowSource:
    """A stored flow's latest revision as a plugin sees it (``git.PushFlows``, ``git.SyncFlows``)."""

    namespace: str
    id: str
    revision: int
    source: str


class Logger(Protocol):
    """Per-task-run logger: buffered, non-blocking; lines are stored and published as LogEntry."""

    def trace(self, msg: str) -> None: ...
    def debug(self, msg: str) -> None: ...
    def info(self, msg: str) -> None: ...
    def warn(self, msg: str) -> None: ...
    def error(self, msg: str) -> None: ...
    def log(self, level: str, msg: str) -> None: ...


class RunContext(Protocol):
    """What a runnable task sees while one attempt runs. Implemented by the engine.

    Attributes (read-only):
      task_id, task_type, execution_id, namespace, flow_id, flow_revision, task_run_id, attempt_number,
      value (loop value or None), variables (the full expression context as a mapping),
      logger (:class:`Logger`), storage (:class:`falconet.runtime.storage.base.Storage`), clock (the
      engine's :class:`falconet.runtime.kernel.clock.Clock`: ``now()``, ``sleep_until(date)``,
      ``run_sync_in_thread(fn, …)``).
    """

    task_id: str
    task_type: str
    execution_id: str
    namespace: str
    flow_id: str
    flow_revision: int
    task_run_id: str
    attempt_number: int
    value: str | None
    variables: Mapping[str, Any]
    logger: Logger
    storage: Any  # falconet.runtime.storage.base.Storage (open_read(uri), local_file(uri), put_bytes(…), …)
    clock: Any  # falconet.runtime.kernel.clock.Clock

    # -- properties -----------------------------------------------------------------------------------
    def prop(self, name: str) -> Any:
        """The property ``name``: rendered if declared dynamic, default applied, coerced to its kind.

        Raises :class:`falconet.runtime.expr.render.ExpressionError` on a render error (the attempt FAILS).
        """

    def raw(self, name: str, default: Any = None) -> Any:
        """The property as written in the flow (pluginDefaults applied), not rendered."""

    def render(self, value: Any, extra: Mapping[str, Any] | None = None) -> Any:
        """Render a string/list/dict recursively against the task-run variables (+ ``extra``)."""

    def render_typed(self, value: Any, extra: Mapping[str, Any] | None = None) -> Any:
        """Like :meth:`render` but a string that is one single ``{{ expr }}`` keeps its native type."""

    # -- results --------------------------------------------------------------------------------------
    def metric(self, type: str, name: str, value: float, tags: Mapping[str, str] | None = None) -> None:
        """Record a metric: ``type`` is ``"counter"`` or ``"timer"`` (value in seconds for timers)."""

    def set_warning(self) -> None:
        """End this attempt in WARNING instead of SUCCESS (e.g. stderr output with warningOnStdErr)."""

    # -- files ----------------------------------------------------------------------------------------
    def task_storage_prefix(self) -> str:
        """``/{ns as path}/{flowId}/executions/{executionId}/tasks/{taskId}/{taskRunId}`` (no scheme)."""

    async def put_file(self, source: "Path", name: str | None = None) -> str:
        """Copy a local file into this task run's storage folder; returns its ``kestra:///`` URI."""

    #: True when :meth:`open_temp_dir` returns the directory shared by an enclosing WorkingDirectory
    shared_temp_dir: bool

    async def open_temp_dir(self) -> "Path":
        """A fresh temporary working directory for this attempt, removed when the attempt ends; inside a
        ``WorkingDirectory`` the directory shared by all its tasks (kept: the WorkingDirectory removes it)."""

    # -- processes ------------------------------------------------------------------------------------
    def track_process(self, pgid: int) -> ContextManager[None]:
        """Record the process group led by ``pgid`` (started with ``start_new_session=True``) while the
        block runs; end the group before leaving it. A server restarting after a crash kills the recorded
        groups still alive before it attempts their task runs again."""

    # -- key-value store ------------------------------------------------------------------------------
    async def kv_get(self, namespace: str, key: str) -> Any:
        """The typed value of ``key`` in ``namespace``, or None when missing or expired."""

    async def kv_set(self, namespace: str, key: str, value: Any, *, kv_type: str | None = None,
                     ttl: str | None = None, overwrite: bool = True) -> None:
        """Store ``value``; ``overwrite=False`` raises TaskFailed when the key exists."""

    async def kv_delete(self, namespace: str, key: str) -> bool:
        """Delete ``key``; True when it existed."""

    async def kv_keys(self, namespace: str) -> list[str]:
        """The keys of ``namespace`` (expired ones excluded)."""

    # -- other executions -----------------------------------------------------------------------------
    async def search_executions(self, *, namespace: str | None = None, flow_id: str | None = None,
                                states: "Sequence[str]" = (), start_date: "datetime | None" = None,
                                end_date: "datetime | None" = None) -> list[dict[str, Any]]:
        """Stored executions (Kestra JSON) matching the filters, oldest first: ``namespace`` matches itself
        and its sub-namespaces, ``start_date``/``end_date`` bound ``state.startDate``. Used by
        ``execution.Count`` and ``execution.PurgeExecutions``."""

    async def purge_execution(self, execution_id: str, *, execution: bool = True, logs: bool = True,
                              metrics: bool = True, storage: bool = True) -> dict[str, int]:
        """Delete a terminated execution's document, logs, metrics and/or storage files; returns the counts
        ``{"executions", "logs", "metrics", "storages"}``. Raises IllegalState while it runs."""

    # -- logs -----------------------------------------------------------------------------------------
    async def fetch_logs(self, execution_id: str, *, task_ids: list[str] | None = None,
                         min_level: str = "INFO") -> list[dict[str, Any]]:
        """LogEntry dicts of an execution in timestamp order, optionally only of ``task_ids``, at least
        ``min_level`` (TRACE < DEBUG < INFO < WARN < ERROR). Used by ``log.Fetch``."""

    # -- flows and namespace files (the API's validation and revision paths) ------------------------
    async def list_flow_sources(self, namespace: str, *, children: bool = False) -> list[FlowSource]:
        """The latest revision of every flow of ``namespace`` (and of its sub-namespaces with
        ``children``), sorted by namespace and id."""

    async def check_flow(self, source: str) -> FlowSource:
        """Validate a flow source without saving it (``revision`` 0); TaskFailed listing the violations, one
        per line, when it is invalid or holds more than one flow."""

    async def save_flow(self, source: str) -> FlowSource:
        """Create or update a flow like ``PUT /api/v1/flows`` (a new revision only when the source changed);
        TaskFailed listing the violations when it is invalid."""

    async def delete_flow(self, namespace: str, flow_id: str) -> None:
        """Delete a flow (a deleted revision is kept, as the API does)."""

    async def list_namespace_files(self, namespace: str) -> list[str]:
        """Every namespace file's path (``/a/b.txt``), sorted."""

    async def namespace_file_sha256(self, namespace: str, path: str) -> str:
        """The SHA-256 (hex) of a namespace file's content, read in constant memory."""

    async def put_namespace_file(self, namespace: str, path: str, source: "Path") -> int:
        """Store the local file ``source`` as namespace file ``path`` (a new revision); returns the revision."""

    async def delete_namespace_file(self, namespace: str, path: str) -> bool:
        """Delete a namespace file with its revisions; False when it did not exist."""


class PollingContext(Protocol):
    """What a :class:`PollingTrigger` sees during one evaluation. Implemented by the engine.

    Attributes (read-only): trigger_id, trigger_type, namespace, flow_id, flow_revision, variables (the
    expression context: ``flow``, ``envs``, ``globals``, ``vars``; ``secret()`` and ``kv()`` work),
    storage (:class:`falconet.runtime.storage.base.Storage`), clock (the engine's
    :class:`falconet.runtime.kernel.clock.Clock`).
    """

    trigger_id: str
    trigger_type: str
    namespace: str
    flow_id: str
    flow_revision: int
    variables: Mapping[str, Any]
    storage: Any
    clock: Any  # falconet.runtime.kernel.clock.Clock

    def prop(self, name: str) -> Any:
        """The property ``name``: rendered if declared dynamic, default applied, coerced to its kind; None
        for a property the trigger does not declare."""

    def raw(self, name: str, default: Any = None) -> Any:
        """The property as written in the flow, not rendered."""

    def render(self, value: Any, extra: Mapping[str, Any] | None = None) -> Any:
        """Render a string/list/dict recursively against :attr:`variables` (+ ``extra``)."""


#### Registry ###############################################################################################

#: the process-wide registry (:class:`falconet.sdk.registry.Registry`); the catalogue of ``falconet.plugins`` and
#: entry points fill it (see ``load_plugins``)
registry = Registry()


def register(cls: type[Plugin]) -> type[Plugin]:
    """Class decorator: add a plugin type to the process-wide registry."""
    return registry.register(cls)


def describe_group(name: str, title: str, description: str) -> None:
    """Give a plugin group (the package prefix its types share) or subgroup a title and a description for
    the plugin catalogue (Kestra's ``@PluginSubGroup`` texts)."""
    registry.describe_group(name, title, description)


_loaded = False

#: the package listing the built-in plugin modules (``BUILTIN_MODULES``, ``OPTIONAL_DEPENDENCIES``) and the
#: catalogue of the types each registers (``catalogue.MODULES``); found by name, as entry points are, so the
#: runtime holds no import of ``falconet.plugins``
BUILTIN_PLUGINS_PACKAGE = "falconet.plugins"
BUILTIN_CATALOGUE = "falconet.plugins.catalogue"


def load_plugins() -> Registry:
    """Register the built-in plugin types from their catalogue — each module imported when one of its types
    is first used — and import the ``falconet.plugins`` entry-point group (once)."""
    global _loaded
    if not _loaded:
        _loaded = True
        import importlib
        from importlib.metadata import entry_points

        builtin = importlib.import_module(BUILTIN_PLUGINS_PACKAGE)
        catalogue = importlib.import_module(BUILTIN_CATALOGUE)
        registry.defer(catalogue.MODULES, optional=builtin.OPTIONAL_DEPENDENCIES)
        for ep in entry_points(group="falconet.plugins"):
            ep.load()
    return registry
