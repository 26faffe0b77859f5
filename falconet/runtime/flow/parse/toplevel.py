"""The flow mapping itself (Kestra's ``Flow``): id, namespace, labels, inputs, tasks, triggers, … and the
whole-flow checks Kestra's ``FlowValidator`` makes (duplicate task/trigger ids, recursive subflow calls,
system labels)."""
from __future__ import annotations

import functools
import re
from typing import Any

from falconet.runtime.expr.durations import parse_duration
from falconet.runtime.flow.model import ConcurrencySpec, Flow, ListenerSpec, SlaSpec
from falconet.runtime.flow.parse.context import ParseContext
from falconet.runtime.flow.parse.inputdefs import check_input_graph, parse_input_defs, parse_output_defs
from falconet.runtime.flow.parse.props import parse_labels, parse_retry
from falconet.runtime.flow.parse.tasks import parse_conditions, parse_tasks, parse_trigger
from falconet.sdk.plugin import FlowableTask

__all__ = ["parse_flow_mapping", "check_templates", "FLOW_ID_RE", "NAMESPACE_RE"]

FLOW_ID_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9._-]*$")
NAMESPACE_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*$")

_TOP_LEVEL = frozenset({
    "id", "namespace", "revision", "description", "labels", "inputs", "outputs", "variables", "tasks", "errors",
    "finally", "afterExecution", "listeners", "triggers", "pluginDefaults", "taskDefaults", "concurrency", "retry",
    "sla", "disabled", "deleted", "tenantId", "checks", "workerGroup",
})


def _bool(ctx: ParseContext, value: Any, path: str) -> bool:
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    ctx.error(path, f"Invalid value `{value}`: expected a boolean")
    return False


#### The flow ###############################################################################################

def parse_flow_mapping(ctx: ParseContext, value: dict[str, Any], source: str, revision: int) -> Flow:
    """Build the Flow; every problem is recorded on ``ctx`` (the caller raises when there are any)."""
    for key in value:
        if key not in _TOP_LEVEL:
            ctx.error(key, f'Unrecognized field "{key}"')
    flow_id = value.get("id")
    namespace = value.get("namespace")
    if flow_id is None or flow_id == "":
        ctx.error("id", "must not be empty" if flow_id == "" else "must not be null")
    elif not isinstance(flow_id, str) or not FLOW_ID_RE.match(flow_id):
        ctx.error("id", f'must match "{FLOW_ID_RE.pattern[:-1]}"')
    elif len(flow_id) > 100:
        ctx.error("id", "size must be between 1 and 100")
    if namespace is None or namespace == "":
        ctx.error("namespace", "must not be empty" if namespace == "" else "must not be null")
    elif not isinstance(namespace, str) or not NAMESPACE_RE.match(namespace):
        ctx.error("namespace", f'must match "{NAMESPACE_RE.pattern[:-1]}"')
    elif len(namespace) > 150:
        ctx.error("namespace", "size must be between 1 and 150")
    if value.get("workerGroup") is not None:
        ctx.error("workerGroup", "Worker Group is an Enterprise Edition functionality")

    defaults = value.get("pluginDefaults", value.get("taskDefaults"))
    if defaults is not None:
        key = "pluginDefaults" if "pluginDefaults" in value else "taskDefaults"
        if not isinstance(defaults, list):
            ctx.error(key, "Invalid value: expected a list of {type, forced, values}")
            defaults = []
        for i, d in enumerate(defaults):
            if (not isinstance(d, dict) or not isinstance(d.get("type"), str)
                    or not isinstance(d.get("values", {}), dict)):
                ctx.error(f"{key}[{i}]", "Invalid plugin default: expected {type, forced, values}")
            else:
                for k in d:
                    if k not in ("type", "forced", "values"):
                        ctx.error(f"{key}[{i}].{k}", f'Unrecognized field "{k}"')
        ctx.plugin_defaults = [d for d in defaults if isinstance(d, dict)] + ctx.plugin_defaults

    labels = parse_labels(ctx, value.get("labels"), "labels")
    for lb in labels:
        if lb["key"].startswith("system.") and lb["key"] != "system.readOnly":
            ctx.error("labels", "System labels can only be set by Kestra itself, offending label: "
                                f"{lb['key']}={lb['value']}")

    inputs = parse_input_defs(ctx, value.get("inputs"), "inputs")
    check_input_graph(ctx, inputs, "inputs")
    outputs = parse_output_defs(ctx, value.get("outputs"), "outputs")

    variables = value.get("variables")
    if variables is not None and not isinstance(variables, dict):
        ctx.error("variables", "Invalid value: expected a map")
        variables = None

    if not value.get("tasks"):
        ctx.error("tasks", "must not be empty")
    tasks = parse_tasks(ctx, value.get("tasks"), "tasks")
    errors = parse_tasks(ctx, value.get("errors"), "errors")
    finally_ = parse_tasks(ctx, value.get("finally"), "finally")
    after = parse_tasks(ctx, value.get("afterExecution"), "afterExecution")
    listeners = _parse_listeners(ctx, value.get("listeners"))

    triggers = []
    raw_triggers = value.get("triggers")
    if raw_triggers is not None and not isinstance(raw_triggers, list):
        ctx.error("triggers", "Invalid value: expected a list of triggers")
    else:
        for i, item in enumerate(raw_triggers or []):
            trig = parse_trigger(ctx, item, f"triggers[{i}]")
            if trig is not None:
                triggers.append(trig)

    flow = Flow(
        id=str(flow_id or ""),
        namespace=str(namespace or ""),
        revision=revision,
        source=source,
        tasks=tasks,
        description=value.get("description"),
        labels=labels,
        inputs=inputs,
        outputs=outputs,
        variables=dict(variables or {}),
        errors=errors,
        finally_=finally_,
        after_execution=after,
        listeners=listeners,
        triggers=triggers,
        plugin_defaults=list(ctx.plugin_defaults),
        concurrency=_parse_concurrency(ctx, value.get("concurrency")),
        retry=parse_retry(ctx, value.get("retry"), "retry"),
        sla=_parse_sla(ctx, value.get("sla")),
        disabled=_bool(ctx, value.get("disabled"), "disabled"),
        deleted=_bool(ctx, value.get("deleted"), "deleted"),
        raw=value,
    )
    _whole_flow_checks(ctx, flow, triggers)
    check_templates(ctx, value, "")
    return flow


#### templates ##############################################################################################

_TEXT_ONLY_KEYS = frozenset({"description"})  # documentation, never rendered
_MAX_TEMPLATE_DEPTH = 64


@functools.lru_cache(maxsize=1)
def _template_checker() -> Any:
    """One shared renderer, for its cache of compiled templates (imported late: expressions is heavy)."""
    from falconet.runtime.expr.render import Renderer

    return Renderer()


def check_templates(ctx: ParseContext, value: Any, path: str, depth: int = 0) -> None:
    """Parse every Pebble template of the flow (each string holding ``{{``, ``{%`` or ``{#``, whatever the
    property) so that a broken one is a validation error at its property and line, not a run-time failure."""
    if depth > _MAX_TEMPLATE_DEPTH:
        return
    if isinstance(value, str):
        if "{{" in value or "{%" in value or "{#" in value:
            from falconet.runtime.expr.render import ExpressionError

            try:
                _template_checker().validate(value)
            except ExpressionError as exc:  # with the line of the flow source, as YAML errors give it
                ctx.error(path, f"{exc} (line {ctx.doc.line_of(path)})")
    elif isinstance(value, dict):
        for key, item in value.items():
            if key not in _TEXT_ONLY_KEYS:
                check_templates(ctx, item, f"{path}.{key}" if path else str(key), depth + 1)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            check_templates(ctx, item, f"{path}[{i}]", depth + 1)


def _whole_flow_checks(ctx: ParseContext, flow: Flow, triggers: list) -> None:
    ids = [t.id for t in flow.all_tasks()]
    dups = [i for i in dict.fromkeys(ids) if ids.count(i) > 1]
    if dups:
        ctx.error("tasks", f"Duplicate task id with name [{', '.join(dups)}]")
    trigger_ids = [t.id for t in triggers]
    dups = [i for i in dict.fromkeys(trigger_ids) if trigger_ids.count(i) > 1]
    if dups:
        ctx.error("triggers", f"Duplicate trigger id with name [{', '.join(dups)}]")
    preconditions = [t.props["preconditions"].get("id") for t in triggers
                     if isinstance(t.props.get("preconditions"), dict) and t.props["preconditions"].get("id")]
    dups = [i for i in dict.fromkeys(preconditions) if preconditions.count(i) > 1]
    if dups:
        ctx.error("triggers", f"Duplicate preconditions with id [{', '.join(dups)}]")
    for task in flow.all_tasks():
        if issubclass(task.cls, FlowableTask) and task.cls.executable and task.props.get("flowId") == flow.id \
                and task.props.get("namespace") == flow.namespace:
            ctx.error("tasks", f"Recursive call to flow [{flow.namespace}.{flow.id}]")


def _parse_listeners(ctx: ParseContext, value: Any) -> list[ListenerSpec]:
    if value is None:
        return []
    if not isinstance(value, list):
        ctx.error("listeners", "Invalid value: expected a list of {conditions, tasks}")
        return []
    out = []
    for i, item in enumerate(value):
        p = f"listeners[{i}]"
        if not isinstance(item, dict):
            ctx.error(p, "Invalid listener: expected an object with `conditions` and `tasks`")
            continue
        for k in item:
            if k not in ("conditions", "tasks", "description"):
                ctx.error(f"{p}.{k}", f'Unrecognized field "{k}"')
        if not item.get("tasks"):
            ctx.error(f"{p}.tasks", "must not be empty")
        out.append(ListenerSpec(conditions=tuple(parse_conditions(ctx, item.get("conditions"), f"{p}.conditions")),
                                tasks=tuple(parse_tasks(ctx, item.get("tasks"), f"{p}.tasks"))))
    return out


def _parse_concurrency(ctx: ParseContext, value: Any) -> ConcurrencySpec | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        ctx.error("concurrency", "Invalid value: expected an object with `limit` and `behavior`")
        return None
    for k in value:
        if k not in ("limit", "behavior"):
            ctx.error(f"concurrency.{k}", f'Unrecognized field "{k}"')
    limit = value.get("limit")
    if limit is None:
        ctx.error("concurrency.limit", "must not be null")
        return None
    if isinstance(limit, bool) or not isinstance(limit, int):
        ctx.error("concurrency.limit", f"Invalid value `{limit}`: expected an integer")
        return None
    if limit < 1:
        ctx.error("concurrency.limit", "must be greater than or equal to 1")
        return None
    behavior = value.get("behavior") or "QUEUE"
    if behavior not in ("QUEUE", "CANCEL", "FAIL"):
        ctx.error("concurrency.behavior", f"Invalid value `{behavior}`: must be one of [QUEUE, CANCEL, FAIL]")
        return None
    return ConcurrencySpec(limit=limit, behavior=behavior)


def _parse_sla(ctx: ParseContext, value: Any) -> list[SlaSpec]:
    if value is None:
        return []
    if not isinstance(value, list):
        ctx.error("sla", "Invalid value: expected a list of SLAs")
        return []
    out = []
    for i, item in enumerate(value):
        p = f"sla[{i}]"
        if not isinstance(item, dict):
            ctx.error(p, "Invalid SLA: expected an object")
            continue
        before = len(ctx.violations)
        for k in item:
            if k not in ("id", "type", "behavior", "duration", "assert", "labels"):
                ctx.error(f"{p}.{k}", f'Unrecognized field "{k}"')
        if not item.get("id"):
            ctx.error(f"{p}.id", "must not be null")
        stype = item.get("type")
        if stype not in ("MAX_DURATION", "EXECUTION_ASSERTION"):
            ctx.error(f"{p}.type", f"Invalid type: {stype}")
        behavior = item.get("behavior") or "FAIL"
        if behavior not in ("FAIL", "CANCEL", "NONE"):
            ctx.error(f"{p}.behavior", f"Invalid value `{behavior}`: must be one of [FAIL, CANCEL, NONE]")
        duration = None
        if stype == "MAX_DURATION":
            try:
                duration = parse_duration(item.get("duration"))
            except ValueError as exc:
                ctx.error(f"{p}.duration", "must not be null" if item.get("duration") is None else str(exc))
        if stype == "EXECUTION_ASSERTION" and not item.get("assert"):
            ctx.error(f"{p}.assert", "must not be null")
        labels = parse_labels(ctx, item.get("labels"), f"{p}.labels")
        for lb in labels:
            if lb["key"].startswith("system."):
                ctx.error(f"{p}.labels", "System labels can only be set by Kestra itself, offending label: "
                                         f"{lb['key']}={lb['value']}")
        if len(ctx.violations) == before and isinstance(stype, str):
            out.append(SlaSpec(id=str(item["id"]), type=stype, behavior=behavior, duration=duration,
                               assert_=item.get("assert"),
                               labels=tuple((lb["key"], lb["value"]) for lb in labels)))
    return out
