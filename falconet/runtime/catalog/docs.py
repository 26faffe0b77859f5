"""Plugin documentation from the one declaration: a plugin class -> Kestra's ``/api/v1/plugins/{type}`` body.

Kestra answers ``GET /api/v1/plugins/{cls}`` with ``{"markdown": ..., "schema": {"properties": <JSON
Schema draft-07 of the type>, "outputs": {...}, "definitions": {...}}}``. :func:`plugin_doc` builds that
body from a :class:`~falconet.sdk.plugin.Plugin` class alone — its ``type``, ``aliases``, ``title``,
docstring and :attr:`~falconet.sdk.plugin.Plugin.props` — plus the common properties every task
(``id``, ``type``, ``retry``, ``timeout``, ``runIf``…) or trigger accepts, taken from the same tables flow
validation uses. Pure functions: no I/O, no HTTP, no engine.

Mapping of a :class:`~falconet.sdk.plugin.Prop` to JSON Schema: scalars keep their JSON type,
``DURATION`` is a string with ``format: duration``, ``ENUM`` a string with ``enum``, ``LIST`` an array,
``MAP`` an object, ``OBJECT`` an object with its declared ``fields`` as nested ``properties``, ``ANY`` has
no ``type`` (anything), and the structural kinds reference the definitions of a task, a condition or an
input (``TASKS`` is an array of ``#/definitions/io.kestra.core.models.tasks.Task``). Kestra's extension
keywords carry the rest: ``$dynamic`` (rendered as an expression or used as written) and ``$aliases``
(other accepted names).

The declaration's ``examples`` and ``metrics`` go where Kestra's generator puts its ``@Example`` and
``@Metric`` annotations: ``$examples`` (``[{full, code, lang, title}]``) and ``$metrics`` (``[{name, type,
unit, description}]``) on the properties schema; its ``outputs`` become ``schema.outputs``, a JSON Schema
object of the output names. The markdown gains Kestra's "Examples", "Outputs" and "Metrics" sections.
"""
from __future__ import annotations

import inspect
import re
from typing import Any, Mapping

from falconet.sdk import plugin as P
from falconet.runtime.flow.parse.tasks import COMMON_TASK_PROPS, COMMON_TRIGGER_PROPS

__all__ = ["plugin_doc", "plugin_schema", "prop_schema", "plugin_kind", "plugin_group", "plugin_markdown",
           "outputs_schema", "example_code", "common_props", "DRAFT_07", "TASK_REF", "CONDITION_REF", "INPUT_REF"]

DRAFT_07 = "http://json-schema.org/draft-07/schema#"

_TASK_DEF = "io.kestra.core.models.tasks.Task"
_CONDITION_DEF = "io.kestra.core.models.conditions.Condition"
_INPUT_DEF = "io.kestra.core.models.flows.Input"
TASK_REF = f"#/definitions/{_TASK_DEF}"
CONDITION_REF = f"#/definitions/{_CONDITION_DEF}"
INPUT_REF = f"#/definitions/{_INPUT_DEF}"

#: what a condition accepts besides its declared properties
_COMMON_CONDITION_PROPS: dict[str, P.Prop] = {
    "type": P.Prop(P.STRING, required=True, dynamic=False),
}

_SCALAR_TYPES = {P.STRING: "string", P.INTEGER: "integer", P.NUMBER: "number", P.BOOLEAN: "boolean"}


#### Classification #########################################################################################

def plugin_kind(cls: type[P.Plugin]) -> str:
    """``"triggers"``, ``"conditions"`` or ``"tasks"`` (runnable, flowable and execution-updating tasks)."""
    if issubclass(cls, P.Trigger):
        return "triggers"
    if issubclass(cls, P.Condition):
        return "conditions"
    return "tasks"


def plugin_group(type_name: str) -> str:
    """The package a type is listed under: its first four segments (Kestra's plugin artifact, e.g. the
    core one) when it has more than four, else everything before the class name."""
    parts = type_name.split(".")
    return ".".join(parts[:4]) if len(parts) > 4 else ".".join(parts[:-1])


def common_props(cls: type[P.Plugin]) -> Mapping[str, P.Prop]:
    """The properties every plugin of ``cls``'s kind accepts without declaring them (the tables flow
    validation applies)."""
    kind = plugin_kind(cls)
    if kind == "triggers":
        return COMMON_TRIGGER_PROPS
    if kind == "conditions":
        return _COMMON_CONDITION_PROPS
    return COMMON_TASK_PROPS


#### Text ###################################################################################################

def _docstring(cls: type) -> str:
    """The class's own docstring, dedented, with reST ````code```` turned into markdown `code` (an
    undocumented class gets "", not its base class's docstring)."""
    raw = cls.__dict__.get("__doc__")
    if not isinstance(raw, str) or not raw.strip():
        return ""
    return re.sub(r"``(.+?)``", r"`\1`", inspect.cleandoc(raw), flags=re.S)


def _title(cls: type[P.Plugin]) -> str:
    return cls.title or cls.type.rpartition(".")[2]


def example_code(cls: type[P.Plugin], example: P.Example) -> str:
    """The YAML of an example as the docs show it: a task-level example gets ``id`` and ``type`` lines
    first (Kestra's ``id`` is the class name in snake case)."""
    if example.full:
        return example.code
    short = cls.type.rpartition(".")[2]
    snake = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", short).lower()
    return f'id: "{snake}"\ntype: "{cls.type}"\n{example.code}'


def plugin_markdown(cls: type[P.Plugin]) -> str:
    """Markdown documentation of a type: ``# <type>``, its title as a quote, its docstring, its aliases,
    then Kestra's "Examples", "Outputs" and "Metrics" sections."""
    parts = [f"# {cls.type}"]
    if cls.title:
        parts.append(f"> {cls.title}")
    text = _docstring(cls)
    if text:
        parts.append(text)
    if cls.aliases:
        parts.append("Also accepted as: " + ", ".join(f"`{a}`" for a in cls.aliases) + ".")
    if cls.examples:
        parts.append("## Examples")
        for ex in cls.examples:
            parts.append(f"> {ex.title}\n```{ex.lang}\n{example_code(cls, ex).rstrip()}\n```")
    if cls.outputs:
        parts.append("## Outputs")
        for name, out in cls.outputs.items():
            kind = _kind_schema(P.Prop(out.kind)).get("type", "any")
            parts.append(f"### `{name}`\n* **Type:** =={kind}==\n* **Required:** {'✔️' if out.required else '❌'}"
                         + (f"\n\n{out.description}" if out.description else ""))
    if cls.metrics:
        parts.append("## Metrics")
        for m in cls.metrics:
            parts.append(f"### `{m.name}`\n* **Type:** =={m.type}=={f' ({m.unit})' if m.unit else ''}"
                         + (f"\n\n{m.description}" if m.description else ""))
    return "\n\n".join(parts) + "\n"


#### JSON Schema ############################################################################################

def _json_value(value: Any) -> Any:
    """A default made JSON-safe: tuples and sets become lists, mappings keep string keys, others
    that JSON cannot hold become their string form."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, Mapping):
        return {str(k): _json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_json_value(v) for v in value]
    return str(value)


def _object_schema(fields: Mapping[str, P.Prop]) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "object", "properties": {n: prop_schema(p) for n, p in fields.items()}}
    required = [n for n, p in fields.items() if p.required]
    if required:
        out["required"] = required
    return out


def _kind_schema(prop: P.Prop) -> dict[str, Any]:
    kind = prop.kind
    if kind in _SCALAR_TYPES:
        return {"type": _SCALAR_TYPES[kind]}
    if kind == P.DURATION:
        return {"type": "string", "format": "duration"}
    if kind == P.ENUM:
        return {"type": "string", "enum": list(prop.values)}
    if kind == P.LIST:
        return {"type": "array"}
    if kind == P.MAP:
        return {"type": "object", "additionalProperties": True}
    if kind == P.OBJECT:
        return _object_schema(prop.fields) if prop.fields else {"type": "object"}
    if kind == P.TASKS:
        return {"type": "array", "items": {"$ref": TASK_REF}}
    if kind == P.TASK_MAP:
        return {"type": "object", "additionalProperties": {"type": "array", "items": {"$ref": TASK_REF}}}
    if kind == P.DAG_TASKS:
        return {"type": "array", "items": {
            "type": "object",
            "properties": {"task": {"$ref": TASK_REF}, "dependsOn": {"type": "array", "items": {"type": "string"}}},
            "required": ["task"]}}
    if kind == P.CONDITIONS:
        return {"type": "array", "items": {"$ref": CONDITION_REF}}
    if kind == P.CONDITION_MAP:
        return {"type": "object", "additionalProperties": {"$ref": CONDITION_REF}}
    if kind == P.INPUTS:
        return {"type": "array", "items": {"$ref": INPUT_REF}}
    if kind == P.ANY:
        return {}
    raise ValueError(f"unknown property kind {kind!r}")


def prop_schema(prop: P.Prop) -> dict[str, Any]:
    """JSON Schema of one property (see the module docstring for the mapping); raises ValueError for a
    kind this module does not know (a plugin declaring an invented kind)."""
    out = _kind_schema(prop)
    if prop.default is not None:
        out["default"] = _json_value(prop.default)
    if prop.description:
        out["description"] = prop.description
    out["$dynamic"] = prop.dynamic
    if prop.aliases:
        out["$aliases"] = list(prop.aliases)
    return out


def _definitions() -> dict[str, Any]:
    """The definitions the structural kinds reference: any task, any condition, any flow input (each
    identified by its ``type``; its own schema is at ``/api/v1/plugins/{type}``)."""
    return {
        _TASK_DEF: _object_schema(COMMON_TASK_PROPS),
        _CONDITION_DEF: _object_schema(_COMMON_CONDITION_PROPS),
        _INPUT_DEF: {"type": "object", "properties": {
            "id": {"type": "string"}, "type": {"type": "string"}, "description": {"type": "string"},
            "required": {"type": "boolean", "default": True}, "defaults": {}}, "required": ["id", "type"]},
    }


def plugin_schema(cls: type[P.Plugin]) -> dict[str, Any]:
    """Draft-07 JSON Schema of a type: its own declarations first (what a reader looks for), then the
    common properties of its kind that it does not redeclare; ``required`` lists the required names in
    the same order. ``type`` is constrained to the canonical name and its aliases."""
    merged: dict[str, P.Prop] = {**cls.props}
    merged.update({n: p for n, p in common_props(cls).items() if n not in merged})
    properties = {name: prop_schema(p) for name, p in merged.items()}
    properties["type"] = {"type": "string", "enum": [cls.type, *cls.aliases], "$dynamic": False}
    out: dict[str, Any] = {
        "$schema": DRAFT_07,
        "type": "object",
        "title": _title(cls),
        "properties": properties,
        "required": [n for n, p in merged.items() if p.required],
    }
    description = _docstring(cls)
    if description:
        out["description"] = description
    if cls.examples:
        out["$examples"] = [{"full": e.full, "code": e.code, "lang": e.lang, "title": e.title} for e in cls.examples]
    if cls.metrics:
        out["$metrics"] = [{"name": m.name, "type": m.type, "unit": m.unit or None, "description": m.description}
                           for m in cls.metrics]
    return out


def outputs_schema(cls: type[P.Plugin]) -> dict[str, Any]:
    """JSON Schema of what a run produces (``{}`` for a type without outputs, as Kestra)."""
    if not cls.outputs:
        return {}
    properties = {}
    for name, out in cls.outputs.items():
        prop = _kind_schema(P.Prop(out.kind))
        if out.description:
            prop["title"] = out.description
        properties[name] = prop
    required = [n for n, o in cls.outputs.items() if o.required]
    return {"type": "object", "properties": properties, **({"required": required} if required else {})}


def plugin_doc(cls: type[P.Plugin]) -> dict[str, Any]:
    """Kestra's ``GET /api/v1/plugins/{type}`` body for ``cls``: ``{"markdown", "schema": {"properties",
    "outputs", "definitions"}}`` plus Falconet's ``type`` (canonical name), ``title``, ``kind`` (tasks,
    triggers, conditions) and ``aliases``."""
    return {
        "type": cls.type,
        "title": cls.title,
        "kind": plugin_kind(cls),
        "aliases": list(cls.aliases),
        "markdown": plugin_markdown(cls),
        "schema": {"properties": plugin_schema(cls), "outputs": outputs_schema(cls), "definitions": _definitions()},
    }
