"""The plugin catalogue Kestra's UI and SDK read: plugin groups and subgroups, icons, input types and the JSON
Schemas of a whole flow, a task, a trigger — all derived from the registered plugin classes' declarations.

Kestra groups classes into *plugins* (one artifact, e.g. the core one or the scripts one) and *subgroups*
(the Java package of a class, e.g. the core ``flow`` package). Falconet uses the same rule on type names: the
group is :func:`falconet.runtime.catalog.docs.plugin_group`, the subgroup is everything before the class name
when it differs from the group; their titles and descriptions are what the plugin packages declared with
:func:`falconet.sdk.plugin.describe_group`. Kestra ships an SVG icon per class; Falconet has none, so
:func:`icon_svg` draws one (the class's initials on a colour derived from its group) and every class of a
subgroup shares its colour.

Pure functions of the classes passed in: no I/O, no engine.
"""
from __future__ import annotations

import base64
import hashlib
from typing import Any, Iterable, Mapping

from falconet.sdk import plugin as P
from falconet.runtime.flow.parse.inputdefs import INPUT_TYPES
from falconet.runtime.flow.parse.tasks import COMMON_TASK_PROPS
from falconet.runtime.catalog.docs import (
    CONDITION_REF, DRAFT_07, INPUT_REF, TASK_REF, plugin_group, plugin_kind, plugin_schema, prop_schema,
)

__all__ = ["SCHEMA_TYPES", "plugin_entries", "subgroup_entries", "icons", "group_icons", "icon_svg",
           "input_types", "input_schema", "type_schema", "subgroup_of", "kind_key"]

#: ``GET /plugins/schemas/{type}`` types Falconet can describe (Kestra's SchemaType, minus templates)
SCHEMA_TYPES = ("flow", "task", "trigger", "plugindefault")

_TASK_DEF = TASK_REF.rpartition("/")[2]
_CONDITION_DEF = CONDITION_REF.rpartition("/")[2]
_INPUT_DEF = INPUT_REF.rpartition("/")[2]
_TRIGGER_DEF = "io.kestra.core.models.triggers.AbstractTrigger"
_FLOW_DEF = "io.kestra.core.models.flows.Flow"
_PLUGIN_DEFAULT_DEF = "io.kestra.core.models.flows.PluginDefault"

_KIND_KEYS = ("tasks", "triggers", "conditions", "taskRunners")


#### Classification #########################################################################################

def subgroup_of(type_name: str) -> str | None:
    """The package of a class when it is below its plugin group (the core ``flow`` package), else None."""
    package = type_name.rpartition(".")[0]
    return package if package != plugin_group(type_name) else None


def kind_key(cls: type[P.Plugin]) -> str:
    """The key a class is listed under in a plugin entry: tasks, triggers, conditions or taskRunners."""
    if "runner" in cls.type.split(".")[:-1]:   # Kestra's task runners live in ….runner packages
        return "taskRunners"
    return plugin_kind(cls)


def _texts(name: str) -> tuple[str, str]:
    title, description = P.registry.group_texts(name)
    return title or name.rpartition(".")[2].capitalize(), description


#### Plugins and subgroups ##################################################################################

def _entry(group: str, subgroup: str | None, classes: list[type[P.Plugin]], version: str) -> dict[str, Any]:
    title, description = _texts(subgroup or group)
    entry: dict[str, Any] = {
        "name": group.rpartition(".")[2],
        "title": title,
        "description": description,
        "group": group,
        "version": version,
        "manifest": {"X-Kestra-Group": group, "X-Kestra-Title": _texts(group)[0]},
        **{k: [] for k in _KIND_KEYS},
        "aliases": [],
        "guides": [],
        "categories": [],
        "subGroup": subgroup,
    }
    for cls in classes:
        entry[kind_key(cls)].append(cls.type)
        entry["aliases"].extend(cls.aliases)
    return entry


def _by_group(classes: Iterable[type[P.Plugin]]) -> dict[str, list[type[P.Plugin]]]:
    groups: dict[str, list[type[P.Plugin]]] = {}
    for cls in sorted(classes, key=lambda c: c.type):
        groups.setdefault(plugin_group(cls.type), []).append(cls)
    return groups


def plugin_entries(classes: Iterable[type[P.Plugin]], version: str) -> list[dict[str, Any]]:
    """Kestra's ``GET /plugins``: one entry per group with its classes by kind, title and description."""
    return [_entry(group, None, members, version) for group, members in _by_group(classes).items()]


def subgroup_entries(classes: Iterable[type[P.Plugin]], version: str) -> list[dict[str, Any]]:
    """Kestra's ``GET /plugins/groups/subgroups``: every group entry, then one entry per subgroup."""
    groups = _by_group(classes)
    out = [_entry(group, None, members, version) for group, members in groups.items()]
    for group, members in groups.items():
        subgroups: dict[str, list[type[P.Plugin]]] = {}
        for cls in members:
            sub = subgroup_of(cls.type)
            if sub is not None:
                subgroups.setdefault(sub, []).append(cls)
        out.extend(_entry(group, sub, subs, version) for sub, subs in sorted(subgroups.items()))
    return out


#### Icons ##################################################################################################

def icon_svg(label: str, colour_key: str) -> str:
    """A 32×32 SVG: up to two capital letters of ``label`` on a rounded square coloured from ``colour_key``."""
    hue = int(hashlib.sha256(colour_key.encode()).hexdigest()[:4], 16) % 360
    letters = "".join(c for c in label if c.isupper())[:2] or label[:2].upper()
    letters = "".join(c for c in letters if c.isalnum())
    return ('<svg xmlns="http://www.w3.org/2000/svg" width="32" height="32" viewBox="0 0 32 32">'
            f'<rect width="32" height="32" rx="6" fill="hsl({hue},55%,45%)"/>'
            '<text x="16" y="21" font-family="sans-serif" font-size="13" font-weight="bold" fill="#fff" '
            f'text-anchor="middle">{letters}</text></svg>')


def _b64(svg: str) -> str:
    return base64.b64encode(svg.encode()).decode()


def _icon(type_name: str, cls: type[P.Plugin]) -> dict[str, Any]:
    name = type_name.rpartition(".")[2]
    return {"name": name, "icon": _b64(icon_svg(name, subgroup_of(cls.type) or plugin_group(cls.type))),
            "flowable": issubclass(cls, P.FlowableTask)}


def icons(classes: Iterable[type[P.Plugin]]) -> dict[str, dict[str, Any]]:
    """Kestra's ``GET /plugins/icons``: ``{type: {name, icon (base64 SVG), flowable}}``, aliases included."""
    out: dict[str, dict[str, Any]] = {}
    for cls in sorted(classes, key=lambda c: c.type):
        out[cls.type] = _icon(cls.type, cls)
        for alias in cls.aliases:
            out.setdefault(alias, _icon(alias, cls))
    return out


def group_icons(classes: Iterable[type[P.Plugin]]) -> dict[str, dict[str, Any]]:
    """Kestra's ``GET /plugins/icons/groups``: ``{group or subgroup: {name: "plugin-icon", icon, flowable}}``."""
    out: dict[str, dict[str, Any]] = {}
    for cls in classes:
        for key in (plugin_group(cls.type), subgroup_of(cls.type)):
            if key and key not in out:
                title = _texts(key)[0]
                out[key] = {"name": "plugin-icon", "icon": _b64(icon_svg(title, key)), "flowable": False}
    return dict(sorted(out.items()))


#### Inputs #################################################################################################

_INPUT_FIELD_KINDS: dict[str, P.Prop] = {
    "validator": P.Prop(P.STRING, description="A regular expression the value must match."),
    "values": P.Prop(P.LIST, description="The allowed values."),
    "options": P.Prop(P.LIST, description="The allowed values (deprecated, use values)."),
    "expression": P.Prop(P.STRING, description="An expression rendering the allowed values."),
    "allowCustomValue": P.Prop(P.BOOLEAN, default=False, description="Whether a value outside values is accepted."),
    "isRadio": P.Prop(P.BOOLEAN, default=False, description="Show the values as radio buttons."),
    "autoSelectFirst": P.Prop(P.BOOLEAN, default=False, description="Select the first value by default."),
    "itemType": P.Prop(P.ENUM, values=tuple(INPUT_TYPES), description="The type of each item."),
    "min": P.Prop(P.ANY, description="The smallest value accepted."),
    "max": P.Prop(P.ANY, description="The largest value accepted."),
    "after": P.Prop(P.STRING, description="The value must be after this instant."),
    "before": P.Prop(P.STRING, description="The value must be before this instant."),
    "extension": P.Prop(P.STRING, description="The accepted file extension (deprecated)."),
    "allowedFileExtensions": P.Prop(P.LIST, description="The accepted file extensions."),
}

_INPUT_COMMON: dict[str, P.Prop] = {
    "id": P.Prop(P.STRING, required=True, dynamic=False, description="The input id."),
    "type": P.Prop(P.STRING, required=True, dynamic=False, description="The input type."),
    "displayName": P.Prop(P.STRING, dynamic=False, description="The name shown in the execute form."),
    "description": P.Prop(P.STRING, dynamic=False, description="A description of the input."),
    "required": P.Prop(P.BOOLEAN, default=True, dynamic=False, description="Whether a value is required."),
    "defaults": P.Prop(P.ANY, description="The value used when none is given."),
    "prefill": P.Prop(P.ANY, description="A value shown in the form but not used when none is given."),
    "dependsOn": P.Prop(P.OBJECT, dynamic=False, description="Inputs this one depends on: {inputs, condition}."),
}

_INPUT_CLASS = "io.kestra.core.models.flows.input.{}Input"


def _input_class(itype: str) -> str:
    name = {"INT": "Int", "BOOL": "Bool", "MULTISELECT": "MultiselectInput"}.get(itype, itype.capitalize())
    return _INPUT_CLASS.format(name.removesuffix("Input"))


def input_types() -> list[dict[str, str]]:
    """Kestra's ``GET /plugins/inputs``: ``[{type, cls}]`` for every input type flows may declare."""
    return [{"type": t, "cls": _input_class(t)} for t in INPUT_TYPES]


def _object(props: Mapping[str, P.Prop], title: str, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "object", "title": title,
                           "properties": {n: prop_schema(p) for n, p in props.items()}}
    required = [n for n, p in props.items() if p.required]
    if required:
        out["required"] = required
    out.update(extra)
    return out


def _input_props(itype: str) -> dict[str, P.Prop]:
    return {**_INPUT_COMMON, **{f: _INPUT_FIELD_KINDS[f] for f in sorted(INPUT_TYPES[itype])}}


def input_schema(itype: str) -> dict[str, Any] | None:
    """Kestra's ``GET /plugins/inputs/{type}`` body ``{markdown, schema: {properties, definitions}}``;
    None for an unknown type."""
    if itype not in INPUT_TYPES:
        return None
    props = _input_props(itype)
    schema = _object(props, itype, **{"$schema": DRAFT_07})
    schema["properties"]["type"] = {"type": "string", "const": itype, "$dynamic": False}
    markdown = f"# {itype} input\n\nAccepted properties: " + ", ".join(f"`{n}`" for n in props) + ".\n"
    return {"markdown": markdown, "schema": {"properties": schema, "outputs": None, "definitions": {}}}


#### Whole-type schemas #####################################################################################

def _def_name(cls: type[P.Plugin]) -> str:
    return cls.type


def _union(classes: list[type[P.Plugin]]) -> dict[str, Any]:
    return {"anyOf": [{"$ref": f"#/definitions/{_def_name(c)}"} for c in classes]}


def _definitions(classes: Iterable[type[P.Plugin]]) -> dict[str, Any]:
    """Every class's schema plus the unions the structural properties reference (task, trigger, condition,
    input) and the flow and plugin-default objects."""
    ordered = sorted(classes, key=lambda c: c.type)
    defs: dict[str, Any] = {}
    by_kind: dict[str, list[type[P.Plugin]]] = {k: [] for k in _KIND_KEYS}
    for cls in ordered:
        schema = plugin_schema(cls)
        schema.pop("$schema", None)
        defs[_def_name(cls)] = schema
        by_kind[kind_key(cls)].append(cls)
    defs[_TASK_DEF] = _union(by_kind["tasks"])
    defs[_TRIGGER_DEF] = _union(by_kind["triggers"])
    defs[_CONDITION_DEF] = _union(by_kind["conditions"])
    inputs = []
    for itype in INPUT_TYPES:
        name = _input_class(itype)
        schema = _object(_input_props(itype), itype)
        schema["properties"]["type"] = {"type": "string", "const": itype, "$dynamic": False}
        defs[name] = schema
        inputs.append({"$ref": f"#/definitions/{name}"})
    defs[_INPUT_DEF] = {"anyOf": inputs}
    defs[_PLUGIN_DEFAULT_DEF] = _object(_PLUGIN_DEFAULT_PROPS, "PluginDefault")
    defs[_FLOW_DEF] = _flow_object()
    return defs


_PLUGIN_DEFAULT_PROPS: dict[str, P.Prop] = {
    "type": P.Prop(P.STRING, required=True, dynamic=False, description="The type (or type prefix) to apply to."),
    "forced": P.Prop(P.BOOLEAN, default=False, dynamic=False, description="Override values set by tasks."),
    "values": P.Prop(P.MAP, required=True, dynamic=False, description="The default property values."),
}


def _array_of(ref: str, **extra: Any) -> dict[str, Any]:
    return {"type": "array", "items": {"$ref": ref}, **extra}


def _flow_object() -> dict[str, Any]:
    """A flow's top-level properties (the keys flow validation accepts, see ``flowparse.toplevel``)."""
    flow_props: dict[str, Any] = {
        "id": {"type": "string", "pattern": r"^[a-zA-Z0-9][a-zA-Z0-9._-]*$", "minLength": 1, "maxLength": 100},
        "namespace": {"type": "string", "pattern": r"^[a-z0-9][a-z0-9._-]*$", "minLength": 1, "maxLength": 150},
        "revision": {"type": "integer", "minimum": 1},
        "description": {"type": "string"},
        "labels": {"anyOf": [{"type": "object", "additionalProperties": {"type": "string"}},
                             {"type": "array", "items": {"type": "object", "properties": {
                                 "key": {"type": "string"}, "value": {"type": "string"}},
                                 "required": ["key", "value"]}}]},
        "inputs": _array_of(INPUT_REF),
        "outputs": {"type": "array", "items": {"type": "object", "properties": {
            "id": {"type": "string"}, "type": {"type": "string", "enum": list(INPUT_TYPES)},
            "value": {}, "description": {"type": "string"}}, "required": ["id", "type", "value"]}},
        "variables": {"type": "object", "additionalProperties": True},
        "tasks": _array_of(TASK_REF, minItems=1),
        "errors": _array_of(TASK_REF),
        "finally": _array_of(TASK_REF),
        "afterExecution": _array_of(TASK_REF),
        "listeners": {"type": "array", "items": {"type": "object", "properties": {
            "conditions": _array_of(CONDITION_REF), "tasks": _array_of(TASK_REF)}}},
        "triggers": _array_of(f"#/definitions/{_TRIGGER_DEF}"),
        "pluginDefaults": _array_of(f"#/definitions/{_PLUGIN_DEFAULT_DEF}"),
        "taskDefaults": _array_of(f"#/definitions/{_PLUGIN_DEFAULT_DEF}", deprecated=True),
        "concurrency": {"type": "object", "properties": {
            "limit": {"type": "integer", "minimum": 1},
            "behavior": {"type": "string", "enum": ["QUEUE", "CANCEL", "FAIL"], "default": "QUEUE"}},
            "required": ["limit"]},
        "retry": prop_schema(COMMON_TASK_PROPS["retry"]),
        "sla": {"type": "array", "items": {"type": "object"}},
        "disabled": {"type": "boolean", "default": False},
        "deleted": {"type": "boolean", "default": False},
        "tenantId": {"type": "string"},
        "workerGroup": {"type": "object"},
    }
    return {"type": "object", "title": "Flow", "properties": flow_props,
            "required": ["id", "namespace", "tasks"], "additionalProperties": False}


_ROOTS = {"flow": _FLOW_DEF, "task": _TASK_DEF, "trigger": _TRIGGER_DEF, "plugindefault": _PLUGIN_DEFAULT_DEF}


def type_schema(schema_type: str, classes: Iterable[type[P.Plugin]], *, array_of: bool = False) -> dict[str, Any]:
    """Kestra's ``GET /plugins/schemas/{type}``: draft-07, ``$ref`` to the root definition (or an array of it
    when ``array_of``), every definition it needs. ``schema_type`` must be one of :data:`SCHEMA_TYPES`."""
    ref = f"#/definitions/{_ROOTS[schema_type]}"
    out: dict[str, Any] = {"$schema": DRAFT_07}
    if array_of:
        out.update({"type": "array", "items": {"$ref": ref}})
    else:
        out["$ref"] = ref
    out["definitions"] = _definitions(classes)
    return out


def type_properties(schema_type: str, classes: Iterable[type[P.Plugin]]) -> dict[str, Any]:
    """Kestra's ``GET /plugins/properties/{type}``: the root definition alone (``type``, ``properties``,
    ``required``), with the definitions it references."""
    defs = _definitions(classes)
    root = dict(defs[_ROOTS[schema_type]])
    root["definitions"] = defs
    return root
