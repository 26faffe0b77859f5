"""The engine's implementation of the plugin-facing :class:`~falconet.sdk.plugin.RunContext`, the
per-task-run logger, and the hooks that context-bound expression functions (``read``, ``kv``,
``secret``, ``errorLogs``…) call.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import threading
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ContextManager, Mapping, Sequence

import trio

from falconet.runtime.expr.output import to_output_string
from falconet.runtime.kernel.errors import FalconetError
from falconet.runtime.kernel.execution import format_instant, now
from falconet.runtime.kernel.state import State
from falconet.runtime.storage.internal import InvalidStoragePath, namespace_path
from falconet.runtime.storage.nsfiles import NamespaceFiles, clean_path, guard
from falconet.sdk.logs import LogLevel
from falconet.sdk.plugin import (
    ANY, BOOLEAN, DURATION, INTEGER, LIST, MAP, NUMBER, OBJECT, STRING, STRUCTURAL, FlowSource, Logger, Prop,
    TaskFailed,
)

if TYPE_CHECKING:  # pragma: no cover
    from datetime import datetime

    from falconet.runtime.kernel.services import Kernel
    from falconet.runtime.flow.model import TaskSpec
    from falconet.runtime.kernel.execution import Execution, TaskRun

_SEARCH_PAGE = 500  # executions read per store query by search_executions
_THREAD = threading.current_thread().name


#### Logs ###################################################################################################

class TaskLogger:
    """Builds LogEntry dicts and hands them to the engine (store + bus) without blocking.

    Lines below the task's ``logLevel`` are dropped; ERROR lines are also kept in memory for ``errorLogs()``.
    """

    __slots__ = ("_engine", "_base", "_min", "_errors", "_mask")

    def __init__(self, engine: "Kernel[Any]", execution: "Execution", tr: "TaskRun | None", task_id: str | None,
                 attempt: int | None, min_level: str | None, errors: list[dict[str, Any]] | None = None,
                 mask: "Sequence[str]" = ()):
        self._engine = engine
        # decrypted SECRET input values: replaced by ******** in every line, as Kestra masks them
        self._mask = [m for m in mask if m]
        self._base = {
            "namespace": execution.namespace,
            "flowId": execution.flow_id,
            "taskId": task_id,
            "executionId": execution.id,
            "taskRunId": tr.id if tr is not None else None,
            "attemptNumber": attempt,
        }
        self._min = LogLevel.parse(min_level) or LogLevel.TRACE
        self._errors = errors

    def log(self, level: str, msg: str) -> None:
        parsed = LogLevel.parse(level)
        level = level.upper() if parsed is None else parsed.name
        if (LogLevel.INFO if parsed is None else parsed) < self._min:
            return
        text = str(msg)
        for secret in self._mask:
            if secret in text:
                text = text.replace(secret, "********")
        entry = dict(self._base)
        entry.update(timestamp=format_instant(now()), level=level, thread=_THREAD, message=text, deleted=False)
        if level == "ERROR" and self._errors is not None:
            self._errors.append(entry)
        self._engine.emit_log(entry)

    def trace(self, msg: str) -> None:
        self.log("TRACE", msg)

    def debug(self, msg: str) -> None:
        self.log("DEBUG", msg)

    def info(self, msg: str) -> None:
        self.log("INFO", msg)

    def warn(self, msg: str) -> None:
        self.log("WARN", msg)

    warning = warn

    def error(self, msg: str) -> None:
        self.log("ERROR", msg)


#### Expression hooks #######################################################################################

class EngineHooks:
    """What context-bound expression functions reach: storage (``read``), KV, secrets, error logs."""

    def __init__(self, engine: "Kernel[Any]", execution: "Execution", error_logs: list[dict[str, Any]] | None = None):
        self._engine = engine
        self._ex = execution
        self._errors = error_logs if error_logs is not None else []

    def _allowed_prefixes(self) -> list[str]:
        st = self._engine.storage
        prefixes = [st.execution_prefix(self._ex.namespace, self._ex.flow_id, self._ex.id)]
        trig = (self._ex.trigger or {}).get("variables") or {}
        if trig.get("executionId") and trig.get("namespace") and trig.get("flowId"):
            prefixes.append(st.execution_prefix(trig["namespace"], trig["flowId"], trig["executionId"]))
        return prefixes

    def _check(self, path: str) -> str:
        from falconet.runtime.expr.render import ExpressionError

        st = self._engine.storage
        if path.startswith("kestra://"):
            if not any(st.is_under(path, p) for p in self._allowed_prefixes()):
                raise ExpressionError(
                    f"Unable to read the file '{path}' as it didn't belong to the current execution")
            return path
        namespace = self._ex.namespace
        if path.startswith("nsfile://"):
            # nsfile:///path (this namespace) or nsfile://other.namespace/path, as Kestra's read()
            rest = path[len("nsfile://"):]
            authority, _, path = rest.partition("/")
            namespace = authority or namespace
        # a namespace file
        return st.uri(st.namespace_files_prefix(namespace) + "/" + path.lstrip("/"))

    def read(self, path: str) -> str:
        from falconet.runtime.expr.render import ExpressionError

        uri = self._check(str(path))
        try:
            return self._engine.storage.read_text(uri)
        except Exception as exc:
            raise ExpressionError(f"Unable to read the file '{path}': {exc}") from exc

    def file_size(self, path: str) -> int:
        return self._engine.storage.size(self._check(str(path)))

    def file_uri(self, path: str) -> str:
        return self._check(str(path))

    def kv(self, key: str, namespace: str | None, error_on_missing: bool) -> Any:
        from falconet.runtime.expr.render import ExpressionError

        ns = namespace or self._ex.namespace
        entry = self._engine.kv.cached(ns, key)
        if entry is None:
            if error_on_missing:
                raise ExpressionError(f"The key '{key}' does not exist in the namespace '{ns}'.")
            return None
        return entry.get("value")

    def secret(self, key: str) -> str:
        return self._engine.secrets.secret(key)

    def error_logs(self) -> list[dict[str, Any]]:
        return list(self._errors)

    def encrypt(self, key: str, plaintext: str) -> str:
        return self._engine.secrets.encrypt(plaintext, key)

    def decrypt(self, key: str, ciphertext: str) -> str:
        return self._engine.secrets.decrypt(ciphertext, key)


#### Property coercion ######################################################################################

def to_bool(value: Any) -> bool:
    """A rendered BOOLEAN property: ``true`` in any case, trimmed (conditions use
    :func:`falconet.runtime.expr.render.is_truthy` instead)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return bool(value)


def coerce(name: str, prop: Prop, value: Any) -> Any:
    """Convert a rendered property value to its declared kind (raises TaskFailed with the property name)."""
    if value is None:
        return None
    try:
        if prop.kind == STRING:
            return to_output_string(value)
        if prop.kind == INTEGER:
            if isinstance(value, bool):
                raise ValueError("a boolean is not an integer")
            return int(value) if not isinstance(value, str) else int(value.strip())
        if prop.kind == NUMBER:
            return float(value) if not isinstance(value, (int, float)) else value
        if prop.kind == BOOLEAN:
            return to_bool(value)
        if prop.kind == DURATION:
            if isinstance(value, timedelta):
                return value
            if isinstance(value, (int, float)):
                return timedelta(seconds=value)
            from falconet.runtime.expr.durations import parse_duration  # on first use (tests/test_lazy_imports.py)

            return parse_duration(str(value))
        if prop.kind in (LIST, MAP):
            if isinstance(value, str):
                text = value.strip()
                if not text:
                    return [] if prop.kind == LIST else {}
                value = json.loads(text)
            if prop.kind == LIST and not isinstance(value, list):
                if isinstance(value, tuple):
                    return list(value)
                raise ValueError("expected a list")
            if prop.kind == MAP and not isinstance(value, dict):
                raise ValueError("expected a map")
            return value
    except (ValueError, TypeError) as exc:
        raise TaskFailed(f"Invalid value for property '{name}': {value!r} ({exc})") from exc
    return value


#### The run context ########################################################################################

_NO_VARIABLES: Mapping[str, Any] = {}


def _templated(value: Any) -> bool:
    """Whether rendering ``value`` reads variables: one of its strings (dict keys too) holds a ``{``."""
    if isinstance(value, str):
        return "{" in value
    if isinstance(value, Mapping):
        return any(_templated(k) or _templated(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return any(_templated(v) for v in value)
    return False


class TaskRunContext:
    """One attempt of one runnable task run. See :class:`falconet.sdk.plugin.RunContext`.

    ``variables`` may be given as a function that builds them: they are then built on first use (an attempt
    that renders no template, e.g. an OutputValues of constants, builds none)."""

    def __init__(self, engine: "Kernel[Any]", execution: "Execution", tr: "TaskRun", task: "TaskSpec",
                 variables: Mapping[str, Any] | Callable[[], Mapping[str, Any]], attempt_number: int,
                 error_logs: list[dict[str, Any]], secrets: Sequence[str] = (), shared_dir: Path | None = None):
        self._engine = engine
        self._ex = execution
        self._tr = tr
        self._task = task
        self.task_id = task.id
        self.task_type = task.type
        self.execution_id = execution.id
        self.namespace = execution.namespace
        self.flow_id = execution.flow_id
        self.flow_revision = execution.flow_revision
        self.task_run_id = tr.id
        self.attempt_number = attempt_number
        self.value = tr.value
        self._variables = variables
        self.logger: Logger = TaskLogger(engine, execution, tr, task.id, attempt_number, task.log_level, error_logs,
                                         secrets)
        self.storage = engine.storage
        self.clock = engine.clock
        self.warning = False
        self.metrics: list[dict[str, Any]] = []
        self._temp_dirs: list[Path] = []
        # the directory of an enclosing WorkingDirectory: open_temp_dir returns it and cleanup keeps it
        self._shared_dir = shared_dir
        self.shared_temp_dir = shared_dir is not None

    @property
    def variables(self) -> Mapping[str, Any]:
        variables = self._variables
        if callable(variables):
            variables = self._variables = variables()
        return variables

    @variables.setter
    def variables(self, value: Mapping[str, Any]) -> None:
        self._variables = value

    # -- properties -----------------------------------------------------------------------------------
    def raw(self, name: str, default: Any = None) -> Any:
        return self._task.props.get(name, default)

    def prop(self, name: str) -> Any:
        prop = self._task.cls.props.get(name)
        if prop is None:
            raise KeyError(f"{self._task.type} declares no property {name!r}")
        value = self._task.props.get(name)
        if value is None:
            value = prop.default
        if value is None or prop.kind in STRUCTURAL:
            return value
        if prop.dynamic:
            if prop.kind in (ANY, OBJECT, MAP, LIST) and not isinstance(value, str):
                value = self.render(value)
            elif isinstance(value, str):
                value = self.render_typed(value) if prop.kind not in (STRING,) else self.render(value)
        return coerce(name, prop, value)

    def render(self, value: Any, extra: Mapping[str, Any] | None = None) -> Any:
        return self._engine.renderer.render_value(value, self._scope(value, extra))

    def render_typed(self, value: Any, extra: Mapping[str, Any] | None = None) -> Any:
        return self._engine.renderer.render_value_typed(value, self._scope(value, extra))

    def _scope(self, value: Any, extra: Mapping[str, Any] | None) -> Mapping[str, Any]:
        if callable(self._variables) and not _templated(value):  # the renderer reads no variable: none built
            return _NO_VARIABLES
        return self.variables if not extra else {**self.variables, **extra}

    # -- results --------------------------------------------------------------------------------------
    def metric(self, type: str, name: str, value: float, tags: Mapping[str, str] | None = None) -> None:
        kind = "timer" if type.lower() == "timer" else "counter"
        entry = {
            "namespace": self.namespace,
            "flowId": self.flow_id,
            "taskId": self.task_id,
            "executionId": self.execution_id,
            "taskRunId": self.task_run_id,
            "type": kind,
            "name": name,
            # timers are stored in milliseconds, as Kestra stores Durations
            "value": float(value) * 1000.0 if kind == "timer" else float(value),
            "timestamp": format_instant(now()),
            "tags": dict(tags or {}),
        }
        self.metrics.append(entry)
        self._engine.emit_metric(entry)

    def set_warning(self) -> None:
        self.warning = True

    # -- files ----------------------------------------------------------------------------------------
    def task_storage_prefix(self) -> str:
        return self.storage.task_prefix(self.namespace, self.flow_id, self.execution_id, self.task_id,
                                        self.task_run_id)

    async def put_file(self, source: Path, name: str | None = None) -> str:
        dest = self.task_storage_prefix() + "/" + (name or Path(source).name)
        return await self.clock.run_sync_in_thread(self.storage.put_file, source, dest)

    async def open_temp_dir(self) -> Path:
        """A fresh directory removed at attempt end — or, inside a WorkingDirectory, the directory it shares
        between its tasks (created by the WorkingDirectory, kept after the attempt)."""
        if self._shared_dir is not None:
            return self._shared_dir
        base = self._engine.temp_root()
        path = Path(await self.clock.run_sync_in_thread(lambda: tempfile.mkdtemp(prefix="task-", dir=base)))
        self._temp_dirs.append(path)
        return path

    def track_process(self, pgid: int) -> ContextManager[None]:
        return self._engine.processes.tracking(pgid, f"{self.execution_id}/{self.task_run_id}")

    def cleanup(self) -> None:
        """Remove the attempt's temporary directories (called by the TaskRunActor, also on cancel)."""
        for d in self._temp_dirs:
            shutil.rmtree(d, ignore_errors=True)
        self._temp_dirs.clear()

    # -- key-value store ------------------------------------------------------------------------------
    async def kv_get(self, namespace: str, key: str) -> Any:
        entry = await self._engine.kv_get(namespace, key)
        return None if entry is None else entry.get("value")

    async def kv_set(self, namespace: str, key: str, value: Any, *, kv_type: str | None = None,
                     ttl: str | None = None, overwrite: bool = True) -> None:
        if not overwrite and await self._engine.kv_get(namespace, key) is not None:
            raise TaskFailed(f"The key '{key}' already exists in the namespace '{namespace}' and overwrite is false")
        await self._engine.kv_put(namespace, key, value, kv_type=kv_type, ttl=ttl)

    async def kv_delete(self, namespace: str, key: str) -> bool:
        return await self._engine.kv_delete(namespace, key)

    async def kv_keys(self, namespace: str) -> list[str]:
        return [e["key"] for e in await self._engine.store.kv_list(namespace)]

    # -- other executions -----------------------------------------------------------------------------
    async def resume_execution(self, execution_id: str, inputs: Mapping[str, Any] | None = None, *,
                               namespace: str | None = None, flow_id: str | None = None) -> None:
        """Resume a PAUSED execution (``execution.Resume``); TaskFailed when it is not paused or not in the
        given namespace/flow."""
        from falconet.runtime.kernel.errors import FalconetError

        doc = await self._engine.get_execution(execution_id)
        if doc is None:
            raise TaskFailed(f"Execution '{execution_id}' not found")
        if (namespace and doc["namespace"] != namespace) or (flow_id and doc["flowId"] != flow_id):
            raise TaskFailed(f"Execution '{execution_id}' does not belong to {namespace}.{flow_id}")
        try:
            await self._engine.resume(execution_id, inputs=inputs or {})
        except FalconetError as exc:
            raise TaskFailed(f"Unable to resume execution '{execution_id}': {exc}") from exc

    async def search_executions(self, *, namespace: str | None = None, flow_id: str | None = None,
                                states: Sequence[str] = (), start_date: "datetime | None" = None,
                                end_date: "datetime | None" = None) -> list[dict[str, Any]]:
        """Stored executions matching the filters (``namespace`` matches itself and its sub-namespaces;
        dates bound ``state.startDate``), oldest first, read page by page. IllegalArgument for an unknown
        state. Executions still running are seen as last persisted."""
        from falconet.runtime.store.base import ExecutionQuery

        store = self._engine.store
        await store.flush()
        out: list[dict[str, Any]] = []
        page = 1
        while True:
            rows, total = await store.search_executions(ExecutionQuery(
                namespace=namespace, flow_id=flow_id, states=list(states), start_date=start_date,
                end_date=end_date, page=page, size=_SEARCH_PAGE, sort=["state.startDate:asc"]))
            out.extend(rows)
            if not rows or len(out) >= total:
                return out
            page += 1

    async def purge_execution(self, execution_id: str, *, execution: bool = True, logs: bool = True,
                              metrics: bool = True, storage: bool = True) -> dict[str, int]:
        """Delete what is asked of a terminated execution: its document, log lines, metrics and
        internal-storage files. Returns ``{"executions", "logs", "metrics", "storages"}`` counts (all 0
        when the execution is unknown). IllegalState when it is still running (this one included)."""
        from falconet.runtime.kernel.errors import IllegalState
        from falconet.runtime.store.base import LogQuery

        engine = self._engine
        counts = {"executions": 0, "logs": 0, "metrics": 0, "storages": 0}
        await engine.settle(execution_id)
        doc = await engine.get_execution(execution_id)
        if doc is None:
            return counts
        if execution_id in engine.actors or not State(doc["state"]["current"]).is_terminated:
            raise IllegalState(f"Execution '{execution_id}' is not terminated and cannot be purged")
        if logs:
            counts["logs"] = await engine.store.delete_logs(LogQuery(execution_id=execution_id))
        if metrics:
            counts["metrics"] = await engine.store.delete_metrics(execution_id)
        if storage:
            prefix = engine.storage.execution_prefix(doc["namespace"], doc["flowId"], execution_id)
            counts["storages"] = await engine.clock.run_sync_in_thread(engine.storage.delete_prefix, prefix)
        if execution and await engine.store.delete_execution(execution_id):
            counts["executions"] = 1
        return counts

    # -- logs -----------------------------------------------------------------------------------------
    async def fetch_logs(self, execution_id: str, *, task_ids: list[str] | None = None,
                         min_level: str = "INFO") -> list[dict[str, Any]]:
        from falconet.runtime.store.base import LogQuery

        await self._engine.store.flush()
        rows, _ = await self._engine.store.get_logs(LogQuery(execution_id=execution_id, min_level=min_level))
        if task_ids:
            rows = [r for r in rows if r.get("taskId") in task_ids]
        return rows

    # -- flows and namespace files --------------------------------------------------------------------
    async def list_flow_sources(self, namespace: str, *, children: bool = False) -> list[FlowSource]:
        flows = await self._engine.list_flows(namespace)
        return sorted((FlowSource(f.namespace, f.id, f.revision, f.source) for f in flows
                       if f.namespace == namespace or children), key=lambda f: (f.namespace, f.id))

    async def check_flow(self, source: str) -> FlowSource:
        results = await self._engine.flows.validate_source(source)
        problems = [r["constraints"] for r in results if r.get("constraints")]
        if problems:
            raise TaskFailed("\n".join(problems))
        if len(results) != 1:
            raise TaskFailed("a flow file holds exactly one flow")
        return FlowSource(results[0]["namespace"], results[0]["flow"], 0, source)

    async def save_flow(self, source: str) -> FlowSource:
        try:
            flow = await self._engine.put_flow(source)
        except FalconetError as exc:
            raise TaskFailed(str(exc)) from exc
        return FlowSource(flow.namespace, flow.id, flow.revision, flow.source)

    async def delete_flow(self, namespace: str, flow_id: str) -> None:
        try:
            await self._engine.delete_flow(namespace, flow_id)
        except FalconetError as exc:
            raise TaskFailed(str(exc)) from exc

    @staticmethod
    def _ns_path(namespace: str, path: str | None = None) -> str:
        """The clean namespace file ``path`` (TaskFailed for an unusable namespace or path, or ``/_flows``)."""
        try:
            namespace_path(namespace)
            return "" if path is None else guard(clean_path(path, allow_root=False))
        except InvalidStoragePath as exc:
            raise TaskFailed(f"Invalid namespace file {namespace[:200]!r} {str(path)[:200]!r}: {exc}") from exc

    async def list_namespace_files(self, namespace: str) -> list[str]:
        self._ns_path(namespace)
        return await trio.to_thread.run_sync(NamespaceFiles(self.storage).all_files, namespace)

    async def namespace_file_sha256(self, namespace: str, path: str) -> str:
        clean = self._ns_path(namespace, path)

        def digest() -> str:
            sha = hashlib.sha256()
            with NamespaceFiles(self.storage).open(namespace, clean) as f:
                while chunk := f.read(1 << 20):
                    sha.update(chunk)
            return sha.hexdigest()
        return await trio.to_thread.run_sync(digest)

    async def put_namespace_file(self, namespace: str, path: str, source: Path) -> int:
        return await trio.to_thread.run_sync(NamespaceFiles(self.storage).put, namespace,
                                             self._ns_path(namespace, path), source)

    async def delete_namespace_file(self, namespace: str, path: str) -> bool:
        return await trio.to_thread.run_sync(NamespaceFiles(self.storage).delete, namespace,
                                             self._ns_path(namespace, path))
