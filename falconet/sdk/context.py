"""The run context facade: what a plugin sees of the engine while it runs — :class:`RunContext` (a task
attempt), :class:`PollingContext` (one polling-trigger evaluation), their :class:`Logger` and
:class:`LogLevel`, and :class:`FlowSource`. The engine implements these Protocols
(``falconet/runtime/kernel/runcontext.py``, ``falconet/runtime/orchestration/polling.py``)."""
from __future__ import annotations

import dataclasses
import enum
from typing import TYPE_CHECKING, Any, ContextManager, Mapping, Protocol

if TYPE_CHECKING:
    from datetime import datetime
    from pathlib import Path
    from typing import Sequence


@dataclasses.dataclass(frozen=True)
class FlowSource:
    """A stored flow's latest revision as a plugin sees it (``git.PushFlows``, ``git.SyncFlows``)."""

    namespace: str
    id: str
    revision: int
    source: str


class LogLevel(enum.IntEnum):
    """Kestra's log levels (slf4j's ``Level``), least to most severe: a line passes a minimum level when it
    is at or above it."""

    TRACE = 0
    DEBUG = 1
    INFO = 2
    WARN = 3
    ERROR = 4

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """``("TRACE", "DEBUG", "INFO", "WARN", "ERROR")``."""
        return tuple(level.name for level in cls)

    @classmethod
    def parse(cls, name: Any) -> LogLevel | None:
        """The level called ``name`` in any case (``WARNING`` is ``WARN``, as Python's logging says it), or
        None when ``name`` names no level."""
        if not isinstance(name, str):
            return None
        text = name.upper()
        return cls.__members__.get("WARN" if text == "WARNING" else text)


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
      logger (:class:`Logger`), storage (:class:`falconet.runtime.storage.internal.InternalStorage`), clock (the
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
    storage: Any  # falconet.runtime.storage.internal.InternalStorage (open_read(uri), local_path(uri), …)
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
    storage (:class:`falconet.runtime.storage.internal.InternalStorage`), clock (the engine's
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
