"""Document builders shared by the store tests (imported by file path, --import-mode=importlib)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from falconet.runtime.kernel.execution import Execution, StateHistory, format_instant
from falconet.runtime.kernel.state import State

UTC = timezone.utc
T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


def execution(eid: str, *, namespace: str = "company.team", flow_id: str = "hello", state: str = "SUCCESS",
              start: datetime | None = None, minutes: int = 0, labels: dict[str, str] | None = None,
              trigger_execution_id: str | None = None, parent_id: str | None = None) -> dict[str, Any]:
    """An execution document as the engine writes it (``to_dict(private=True)``)."""
    t = start or T0 + timedelta(minutes=minutes)
    hist = [(State.CREATED, t)]
    if state != "CREATED":
        hist.append((State.RUNNING, t + timedelta(seconds=1)))
        if state != "RUNNING":
            hist.append((State(state), t + timedelta(seconds=2)))
    ex = Execution(namespace=namespace, flow_id=flow_id, flow_revision=1, id=eid,
                   labels=[{"key": k, "value": v} for k, v in (labels or {}).items()],
                   state=StateHistory(State(state), hist), parent_id=parent_id)
    if trigger_execution_id is not None:
        ex.trigger = {"id": "subflow", "type": "io.kestra.plugin.core.flow.Subflow",
                      "variables": {"executionId": trigger_execution_id, "namespace": namespace, "flowId": "parent"}}
    return ex.to_dict(private=True)


def log(eid: str, message: str, *, level: str = "INFO", seconds: float = 0.0, task_id: str = "t1",
        task_run_id: str = "tr1", attempt: int = 1, namespace: str = "company.team", flow_id: str = "hello",
        trigger_id: str | None = None) -> dict[str, Any]:
    d: dict[str, Any] = {
        "namespace": namespace, "flowId": flow_id, "taskId": task_id, "executionId": eid,
        "taskRunId": task_run_id, "attemptNumber": attempt,
        "timestamp": format_instant(T0 + timedelta(seconds=seconds)), "level": level,
        "thread": "main", "message": message, "deleted": False,
    }
    if trigger_id is not None:
        d["triggerId"] = trigger_id
    return d


def metric(eid: str, name: str, value: float, *, seconds: float = 0.0, task_id: str = "t1",
           task_run_id: str = "tr1", type: str = "counter") -> dict[str, Any]:
    return {"namespace": "company.team", "flowId": "hello", "taskId": task_id, "executionId": eid,
            "taskRunId": task_run_id, "type": type, "name": name, "value": value,
            "timestamp": format_instant(T0 + timedelta(seconds=seconds)), "tags": {"format": "x"}}
