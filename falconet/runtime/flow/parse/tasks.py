"""Tasks, triggers and conditions: type resolution through the registry, pluginDefaults, property checks.

Every task mapping becomes a :class:`~falconet.runtime.flow.model.TaskSpec` whose ``props`` hold the declared
plugin properties under their canonical names (sub-task lists already parsed). Problems become violations
on the parse context; a task whose type is unknown is reported ("Invalid type: x") and left out.
"""
from __future__ import annotations

import re
from typing import Any

from falconet.sdk import plugin as P
from falconet.sdk.logs import LogLevel
from falconet.runtime.flow.model import ConditionSpec, DagEntry, TaskSpec, TriggerSpec
from falconet.runtime.flow.parse.context import ParseContext
from falconet.runtime.flow.parse.props import _names, check_scalar, parse_labels, parse_retry

__all__ = ["parse_tasks", "parse_task", "parse_conditions", "parse_trigger", "TASK_ID_RE", "COMMON_TASK_PROPS"]

TASK_ID_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_-]*$")

#: properties every task accepts (handled here, not declared by plugins)
COMMON_TASK_PROPS: dict[str, P.Prop] = {
    "id": P.Prop(P.STRING, required=True, dynamic=False),
    "type": P.Prop(P.STRING, required=True, dynamic=False),
    "description": P.Prop(P.STRING, dynamic=False),
    "retry": P.Prop(P.OBJECT, dynamic=False),
    "timeout": P.Prop(P.DURATION),
    "disabled": P.Prop(P.BOOLEAN, default=False, dynamic=False),
    "allowFailure": P.Prop(P.BOOLEAN, default=False, dynamic=False),
    "allowWarning": P.Prop(P.BOOLEAN, default=False, dynamic=False),
    "runIf": P.Prop(P.STRING, default="true"),
    "logLevel": P.Prop(P.ENUM, values=LogLevel.names(), dynamic=False),
    "logToFile": P.Prop(P.BOOLEAN, default=False, dynamic=False),
    "workerGroup": P.Prop(P.OBJECT, dynamic=False),
    "taskCache": P.Prop(P.OBJECT, dynamic=False, fields={
        "enabled": P.Prop(P.BOOLEAN, default=False, dynamic=False),
        "ttl": P.Prop(P.DURATION, dynamic=False),
    }),
}

#: properties every trigger accepts
COMMON_TRIGGER_PROPS: dict[str, P.Prop] = {
    "id": P.Prop(P.STRING, required=True, dynamic=False),
    "type": P.Prop(P.STRING, required=True, dynamic=False),
    "description": P.Prop(P.STRING, dynamic=False),
    "conditions": P.Prop(P.CONDITIONS, dynamic=False),
    "disabled": P.Prop(P.BOOLEAN, default=False, dynamic=False),
    "labels": P.Prop(P.ANY, dynamic=False),
    "stopAfter": P.Prop(P.LIST, dynamic=False),
    "workerGroup": P.Prop(P.OBJECT, dynamic=False),
    "logLevel": P.Prop(P.ENUM, values=LogLevel.names(), dynamic=False),
    "logToFile": P.Prop(P.BOOLEAN, default=False, dynamic=False),
    "minLogLevel": P.Prop(P.ENUM, values=LogLevel.names(), dynamic=False),
}

_TASK_BASES = (P.RunnableTask, P.FlowableTask, P.ExecutionUpdatingTask)


def _bool(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


#### Tasks ##################################################################################################

def parse_tasks(ctx: ParseContext, value: Any, path: str) -> list[TaskSpec]:
    """A list of task mappings at ``path`` -> the TaskSpecs of the valid ones."""
    if value is None:
        return []
    if not isinstance(value, list):
        ctx.error(path, "Invalid value: expected a list of tasks")
        return []
    out = []
    for i, item in enumerate(value):
        spec = parse_task(ctx, item, f"{path}[{i}]")
        if spec is not None:
            out.append(spec)
    return out


def _resolve(ctx: ParseContext, item: Any, path: str, bases: tuple[type, ...]) -> type[P.Plugin] | None:
    written = item.get("type")
    if written is None:
        ctx.error(f"{path}.type", "missing type id property 'type'")
        return None
    if not isinstance(written, str):
        ctx.error(f"{path}.type", f"Invalid type: {written}")
        return None
    cls = ctx.registry.get(written)
    if cls is None or not issubclass(cls, bases):
        ctx.error(f"{path}.type", f"Invalid type: {written}")
        return None
    return cls


def parse_task(ctx: ParseContext, item: Any, path: str) -> TaskSpec | None:
    """One task mapping -> TaskSpec (None when its type is unknown or it is not a mapping)."""
    if not isinstance(item, dict):
        ctx.error(path, "Invalid task: expected an object with `id` and `type`")
        return None
    cls = _resolve(ctx, item, path, _TASK_BASES)
    if cls is None:
        return None
    item = ctx.apply_defaults(item["type"], cls.type, item)
    task_id = item.get("id")
    if task_id is None:
        ctx.error(f"{path}.id", "must not be null")
        task_id = ""
    elif not isinstance(task_id, str) or not TASK_ID_RE.match(task_id):
        ctx.error(f"{path}.id", f'must match "{TASK_ID_RE.pattern[:-1]}"')
        task_id = str(task_id)
    elif len(task_id) > 100:
        ctx.error(f"{path}.id", "size must be between 1 and 100")

    before = len(ctx.violations)
    props = _plugin_props(ctx, cls, item, path, COMMON_TASK_PROPS)
    for name, prop in COMMON_TASK_PROPS.items():
        if name not in ("id", "type", "retry", "workerGroup"):
            check_scalar(ctx, prop, item.get(name), f"{path}.{name}")
    if item.get("workerGroup") is not None:
        ctx.error(f"{path}.workerGroup", "Worker Group is an Enterprise Edition functionality")
    run_if = item.get("runIf")
    spec = TaskSpec(
        id=task_id,
        type=cls.type,
        cls=cls,
        props=props,
        line=ctx.doc.line_of(path),
        written_type=item["type"],
        description=item.get("description"),
        retry=parse_retry(ctx, item.get("retry"), f"{path}.retry"),
        timeout=str(item["timeout"]) if item.get("timeout") is not None else None,
        disabled=_bool(item.get("disabled")),
        allow_failure=_bool(item.get("allowFailure")),
        allow_warning=_bool(item.get("allowWarning")),
        run_if=(str(run_if).lower() if isinstance(run_if, bool) else str(run_if)) if run_if is not None else None,
        log_level=item.get("logLevel"),
        raw=item,
    )
    validate = getattr(cls, "validate_spec", None)
    if callable(validate) and len(ctx.violations) == before:  # type checks only on well-formed children
        for message in validate(spec):
            ctx.error(path, message)
    return spec


def _plugin_props(ctx: ParseContext, cls: type[P.Plugin], item: dict[str, Any], path: str,
                  common: dict[str, P.Prop]) -> dict[str, Any]:
    """The declared properties of ``item`` under canonical names, structural ones parsed; unknown properties
    and missing required ones are violations."""
    names = _names(cls.props)
    props: dict[str, Any] = {}
    for key, value in item.items():
        canonical = names.get(key)
        if canonical is None:
            if key not in common:
                ctx.error(f"{path}.{key}", f'Unrecognized field "{key}"')
            continue
        props[canonical] = _parse_prop(ctx, cls.props[canonical], value, f"{path}.{key}")
    for name, prop in cls.props.items():
        value = props.get(name)
        if prop.required and prop.kind in (P.TASKS, P.DAG_TASKS):
            if not item.get(name):
                ctx.error(f"{path}.{name}", "must not be empty")
        elif prop.required and value is None:
            ctx.error(f"{path}.{name}", "must not be null")
    return props


def _parse_prop(ctx: ParseContext, prop: P.Prop, value: Any, path: str) -> Any:
    kind = prop.kind
    if value is None:
        return None
    if kind == P.TASKS:
        return parse_tasks(ctx, value, path)
    if kind == P.TASK_MAP:
        if not isinstance(value, dict):
            ctx.error(path, "Invalid value: expected a map of task lists")
            return {}
        return {str(k): parse_tasks(ctx, v, f"{path}.{k}") for k, v in value.items()}
    if kind == P.DAG_TASKS:
        return _parse_dag(ctx, value, path)
    if kind == P.CONDITIONS:
        return parse_conditions(ctx, value, path)
    if kind == getattr(P, "CONDITION_MAP", "condition_map"):
        if not isinstance(value, dict):
            ctx.error(path, "Invalid value: expected a map of conditions")
            return {}
        out = {}
        for k, v in value.items():
            cond = parse_condition(ctx, v, f"{path}.{k}")
            if cond is not None:
                out[str(k)] = cond
        return out
    if kind == P.INPUTS:
        from falconet.runtime.flow.parse.inputdefs import parse_input_defs
        return parse_input_defs(ctx, value, path)
    check_scalar(ctx, prop, value, path)
    return value


def _parse_dag(ctx: ParseContext, value: Any, path: str) -> list[DagEntry]:
    if not isinstance(value, list):
        ctx.error(path, "Invalid value: expected a list of {task, dependsOn}")
        return []
    out = []
    for i, entry in enumerate(value):
        p = f"{path}[{i}]"
        if not isinstance(entry, dict):
            ctx.error(p, "Invalid value: expected an object with `task` and `dependsOn`")
            continue
        for key in entry:
            if key not in ("task", "dependsOn"):
                ctx.error(f"{p}.{key}", f'Unrecognized field "{key}"')
        if entry.get("task") is None:
            ctx.error(f"{p}.task", "must not be null")
            continue
        task = parse_task(ctx, entry["task"], f"{p}.task")
        deps = entry.get("dependsOn") or []
        if not isinstance(deps, list) or not all(isinstance(d, str) for d in deps):
            ctx.error(f"{p}.dependsOn", "Invalid value: expected a list of task ids")
            deps = []
        if task is not None:
            out.append(DagEntry(task, tuple(deps)))
    return out


#### Conditions #############################################################################################

def parse_conditions(ctx: ParseContext, value: Any, path: str) -> list[ConditionSpec]:
    if value is None:
        return []
    if not isinstance(value, list):
        ctx.error(path, "Invalid value: expected a list of conditions")
        return []
    out = []
    for i, item in enumerate(value):
        cond = parse_condition(ctx, item, f"{path}[{i}]")
        if cond is not None:
            out.append(cond)
    return out


def parse_condition(ctx: ParseContext, item: Any, path: str) -> ConditionSpec | None:
    if not isinstance(item, dict):
        ctx.error(path, "Invalid condition: expected an object with `type`")
        return None
    cls = _resolve(ctx, item, path, (P.Condition,))
    if cls is None:
        return None
    props = _plugin_props(ctx, cls, item, path, {"type": P.Prop(P.STRING)})
    return ConditionSpec(type=cls.type, cls=cls, props=props)


#### Triggers ###############################################################################################

def parse_trigger(ctx: ParseContext, item: Any, path: str) -> TriggerSpec | None:
    if not isinstance(item, dict):
        ctx.error(path, "Invalid trigger: expected an object with `id` and `type`")
        return None
    cls = _resolve(ctx, item, path, (P.Trigger,))
    if cls is None:
        return None
    item = ctx.apply_defaults(item["type"], cls.type, item)
    trigger_id = item.get("id")
    if trigger_id is None:
        ctx.error(f"{path}.id", "must not be null")
    elif not isinstance(trigger_id, str) or not TASK_ID_RE.match(trigger_id):
        ctx.error(f"{path}.id", f'must match "{TASK_ID_RE.pattern[:-1]}"')
    props = _plugin_props(ctx, cls, item, path, COMMON_TRIGGER_PROPS)
    for name in ("description", "disabled", "logLevel", "logToFile", "minLogLevel"):
        check_scalar(ctx, COMMON_TRIGGER_PROPS[name], item.get(name), f"{path}.{name}")
    if item.get("workerGroup") is not None:
        ctx.error(f"{path}.workerGroup", "Worker Group is an Enterprise Edition functionality")
    stop_after = item.get("stopAfter") or []
    if not isinstance(stop_after, list):
        ctx.error(f"{path}.stopAfter", "Invalid value: expected a list of states")
        stop_after = []
    labels = parse_labels(ctx, item.get("labels"), f"{path}.labels")
    spec = TriggerSpec(
        id=str(trigger_id or ""),
        type=cls.type,
        cls=cls,
        props=props,
        conditions=tuple(parse_conditions(ctx, item.get("conditions"), f"{path}.conditions")),
        disabled=_bool(item.get("disabled")),
        stop_after=tuple(str(s) for s in stop_after),
        labels=tuple((lb["key"], lb["value"]) for lb in labels),
        line=ctx.doc.line_of(path),
    )
    validate = getattr(cls, "validate_spec", None)
    if callable(validate):
        for message in validate(spec):
            ctx.error(path, message)
    return spec
