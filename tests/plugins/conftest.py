"""A test double of the RunContext protocol for unit-testing plugins without the engine.

It is a real, in-memory implementation: files go to a temp dir, storage is the real
:class:`~falconet.runtime.storage.internal.InternalStorage`, rendering is the engine's
:class:`~falconet.runtime.expr.render.Renderer` with the engine's property rules, KV and logs live in dicts/lists. The end-to-end tests (``test_e2e_*.py``) run the
plugins in flows through the engine itself.
"""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any, Mapping

import pytest
import trio

from falconet.sdk import plugin as P
from falconet.sdk.logs import LogLevel
from falconet.sdk.plugin import TaskFailed
from falconet.runtime.expr.render import Renderer
from falconet.runtime.kernel.recovery import ProcessRegistry
from falconet.runtime.kernel.runcontext import coerce
from falconet.runtime.storage.internal import InternalStorage



#### rendering: the engine's own Renderer ##################################################################

RENDERER = Renderer()


#### the run context ########################################################################################

class Logger:
    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []
        self._expected: list[tuple[str, trio.Event]] = []

    def log(self, level: str, msg: str) -> None:
        assert level in LogLevel.names(), level
        self.lines.append((level, msg))
        for text, event in self._expected:
            if text in msg:
                event.set()

    def expect(self, text: str) -> trio.Event:
        """An event set when a line containing ``text`` is logged."""
        event = trio.Event()
        self._expected.append((text, event))
        return event

    def trace(self, msg: str) -> None: self.log("TRACE", msg)
    def debug(self, msg: str) -> None: self.log("DEBUG", msg)
    def info(self, msg: str) -> None: self.log("INFO", msg)
    def warn(self, msg: str) -> None: self.log("WARN", msg)
    def error(self, msg: str) -> None: self.log("ERROR", msg)

    def at(self, level: str) -> list[str]:
        return [m for lv, m in self.lines if lv == level]


class TestRunContext:
    """Implements :class:`falconet.sdk.plugin.RunContext` for one attempt of one task."""

    __test__ = False

    def __init__(self, cls: type[P.Plugin], props: Mapping[str, Any], *, base: Path,
                 variables: Mapping[str, Any] | None = None, kv: dict | None = None,
                 logs: list[dict] | None = None, namespace: str = "company.team", flow_id: str = "flow",
                 execution_id: str = "exec1", task_id: str = "t1"):
        self.cls, self.props = cls, dict(props)
        self.base = base
        self.storage = InternalStorage(base / "storage")
        self.task_id, self.task_type = task_id, cls.type
        self.execution_id, self.namespace, self.flow_id = execution_id, namespace, flow_id
        self.flow_revision, self.task_run_id, self.attempt_number, self.value = 1, "tr1", 1, None
        self.variables = {"flow": {"id": flow_id, "namespace": namespace, "revision": 1},
                          "execution": {"id": execution_id}, "task": {"id": task_id, "type": cls.type},
                          "taskrun": {"id": "tr1", "attemptsCount": 0}, **(variables or {})}
        self.logger = Logger()
        self.metrics: list[tuple[str, str, float, dict]] = []
        self.warning = False
        self.kv = kv if kv is not None else {}
        self.logs = logs or []
        self.temp_dirs: list[Path] = []
        self.processes = ProcessRegistry(base / "processes")

    # -- properties (same rules as the engine's TaskRunContext)
    def raw(self, name: str, default: Any = None) -> Any:
        return self.props.get(name, default)

    def prop(self, name: str) -> Any:
        decl = self.cls.props.get(name)
        if decl is None:
            raise KeyError(f"{self.cls.type} declares no property {name!r}")
        value = self.props.get(name)
        if value is None:
            value = decl.default
        if value is None:
            return None
        if decl.dynamic:
            if decl.kind in (P.ANY, P.OBJECT, P.MAP, P.LIST) and not isinstance(value, str):
                value = self.render(value)
            elif isinstance(value, str):
                value = self.render_typed(value) if decl.kind != P.STRING else self.render(value)
        return coerce(name, decl, value)

    def render(self, value: Any, extra: Mapping[str, Any] | None = None) -> Any:
        return RENDERER.render_value(value, {**self.variables, **(extra or {})})

    def render_typed(self, value: Any, extra: Mapping[str, Any] | None = None) -> Any:
        return RENDERER.render_value_typed(value, {**self.variables, **(extra or {})})

    # -- results
    def metric(self, type: str, name: str, value: float, tags: Mapping[str, str] | None = None) -> None:
        assert type in ("counter", "timer"), type
        self.metrics.append((type, name, value, dict(tags or {})))

    def set_warning(self) -> None:
        self.warning = True

    # -- files
    def task_storage_prefix(self) -> str:
        return f"/{self.namespace.replace('.', '/')}/{self.flow_id}/executions/{self.execution_id}/tasks/{self.task_id}/{self.task_run_id}"

    async def put_file(self, source: Path, name: str | None = None) -> str:
        return self.storage.put_file(source, f"{self.task_storage_prefix()}/{name or Path(source).name}")

    async def open_temp_dir(self) -> Path:
        d = Path(tempfile.mkdtemp(dir=self.base))
        self.temp_dirs.append(d)
        return d

    def track_process(self, pgid: int) -> Any:
        return self.processes.tracking(pgid, self.task_run_id)

    def cleanup(self) -> None:
        for d in self.temp_dirs:
            shutil.rmtree(d, ignore_errors=True)

    # -- kv
    async def kv_get(self, namespace: str, key: str) -> Any:
        return self.kv.get((namespace, key), {}).get("value")

    async def kv_set(self, namespace: str, key: str, value: Any, *, kv_type: str | None = None,
                     ttl: str | None = None, overwrite: bool = True) -> None:
        if not overwrite and (namespace, key) in self.kv:
            raise TaskFailed(f"Cannot set value for key '{key}'. Key already exists and `overwrite` is set to `false`.")
        self.kv[(namespace, key)] = {"value": value, "type": kv_type, "ttl": ttl}

    async def kv_delete(self, namespace: str, key: str) -> bool:
        return self.kv.pop((namespace, key), None) is not None

    async def kv_keys(self, namespace: str) -> list[str]:
        return [k for ns, k in self.kv if ns == namespace]

    # -- logs
    async def fetch_logs(self, execution_id: str, *, task_ids: list[str] | None = None,
                         min_level: str = "INFO") -> list[dict[str, Any]]:
        floor = LogLevel[min_level]
        return [e for e in self.logs if e["executionId"] == execution_id
                and (task_ids is None or e.get("taskId") in task_ids) and LogLevel[e["level"]] >= floor]


@pytest.fixture
def make_ctx(tmp_path):
    """``make_ctx(PluginClass, props, **kw)`` → a TestRunContext rooted in ``tmp_path``."""
    made: list[TestRunContext] = []

    def make(cls, props, **kw) -> TestRunContext:
        ctx = TestRunContext(cls, props, base=tmp_path, **kw)
        made.append(ctx)
        return ctx

    yield make
    for c in made:
        c.cleanup()


@pytest.fixture
def run_task(make_ctx):
    """``await run_task(PluginClass, props, **kw)`` → (outputs, ctx)."""

    async def run(cls, props, **kw):
        ctx = make_ctx(cls, props, **kw)
        outputs = await cls().run(ctx)
        return outputs, ctx

    return run
