"""Conditions of the deprecated flow ``listeners`` (evaluated on the execution that just ended).

Listeners accept the execution conditions Kestra documents for them: ExecutionStatus, ExecutionFlow,
ExecutionNamespace, ExecutionLabels and Expression. Any other condition type does not match (and is
reported in the task-less execution logs by the caller's renderer errors).
"""
from __future__ import annotations

from typing import Any, Callable

from .flowmodel import ListenerSpec
from .model import Execution
from .state import State


def _short(type_name: str) -> str:
    name = type_name.rsplit(".", 1)[-1]
    return name[: -len("Condition")] if name.endswith("Condition") and name != "Condition" else name


def condition_matches(cond_type: str, props: dict[str, Any], ex: Execution, state: State,
                      render: Callable[[Any], Any]) -> bool:
    kind = _short(cond_type)
    if kind == "ExecutionStatus":
        allowed = props.get("in")
        denied = props.get("notIn") or []
        return (not allowed or state.value in allowed) and state.value not in denied
    if kind == "ExecutionFlow":
        return ex.namespace == props.get("namespace") and ex.flow_id == props.get("flowId")
    if kind == "ExecutionNamespace":
        ns = str(props.get("namespace", ""))
        comparison = str(props.get("comparison") or ("PREFIX" if props.get("prefix") else "EQUALS")).upper()
        if comparison == "PREFIX":
            return ex.namespace.startswith(ns)
        if comparison == "SUFFIX":
            return ex.namespace.endswith(ns)
        return ex.namespace == ns
    if kind == "ExecutionLabels":
        wanted = props.get("labels") or {}
        pairs = wanted.items() if isinstance(wanted, dict) else [(x["key"], x["value"]) for x in wanted]
        have = ex.label_map()
        return all(have.get(str(k)) == str(v) for k, v in pairs)
    if kind in ("Expression", "Variable"):
        from .expressions import is_truthy

        return is_truthy(render(props.get("expression")))
    return False


def listener_matches(listener: ListenerSpec, ex: Execution, state: State, render: Callable[[Any], Any]) -> bool:
    return all(condition_matches(c.type, c.props, ex, state, render) for c in listener.conditions)
