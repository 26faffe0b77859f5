"""Input and output *definitions* (Kestra's ``Input``, ``Output``): flow ``inputs``, flow ``outputs`` and
Pause ``onResume``.

Checks what Kestra checks when a flow is saved: the id pattern, a known type, the fields that type
accepts, a compilable ``validator``, no ``defaults`` on FILE, an ``itemType`` on ARRAY (never ARRAY),
``values`` on ENUM/SELECT/MULTISELECT, parseable bounds, duplicate ids and the ``dependsOn`` graph.
Values given at execution time are typed by :mod:`falconet.runtime.flow.inputs`.
"""
from __future__ import annotations

import re
from typing import Any

from falconet.runtime.expr import safe_regex
from falconet.runtime.flow.model import InputSpec, OutputSpec
from falconet.runtime.flow.parse.context import ParseContext

__all__ = ["INPUT_TYPES", "parse_input_defs", "parse_output_defs", "check_input_graph"]

INPUT_ID_RE = re.compile(r"^[a-zA-Z0-9][.a-zA-Z0-9_-]*$")

_COMMON = frozenset({"id", "name", "type", "description", "displayName", "required", "defaults", "dependsOn",
                     "prefill"})

#: type -> the type-specific fields it accepts
INPUT_TYPES: dict[str, frozenset[str]] = {
    "STRING": frozenset({"validator"}),
    "ENUM": frozenset({"values"}),
    "SELECT": frozenset({"values", "expression", "allowCustomValue", "isRadio", "autoSelectFirst"}),
    "MULTISELECT": frozenset({"values", "options", "expression", "itemType", "allowCustomValue",
                              "autoSelectFirst"}),
    "INT": frozenset({"min", "max"}),
    "FLOAT": frozenset({"min", "max"}),
    "BOOLEAN": frozenset(),
    "BOOL": frozenset(),
    "DATETIME": frozenset({"after", "before"}),
    "DATE": frozenset({"after", "before"}),
    "TIME": frozenset({"after", "before"}),
    "DURATION": frozenset({"min", "max"}),
    "FILE": frozenset({"extension", "allowedFileExtensions"}),
    "JSON": frozenset(),
    "YAML": frozenset(),
    "URI": frozenset(),
    "SECRET": frozenset({"validator"}),
    "ARRAY": frozenset({"itemType"}),
    "EMAIL": frozenset(),
}


def _bool(value: Any, default: bool) -> bool:
    if value is None:
        return default
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


def parse_input_defs(ctx: ParseContext, value: Any, path: str) -> list[InputSpec]:
    """A list of input definitions at ``path`` -> InputSpecs (invalid ones reported and left out)."""
    if value is None:
        return []
    if not isinstance(value, list):
        ctx.error(path, "Invalid value: expected a list of inputs")
        return []
    out = []
    for i, item in enumerate(value):
        spec = _parse_input(ctx, item, f"{path}[{i}]")
        if spec is not None:
            out.append(spec)
    ids = [s.id for s in out]
    dups = [i for i in dict.fromkeys(ids) if ids.count(i) > 1]
    if dups:
        ctx.error(path, f"Duplicate input with name [{', '.join(dups)}]")
    return out


def _parse_input(ctx: ParseContext, item: Any, path: str) -> InputSpec | None:
    if not isinstance(item, dict):
        ctx.error(path, "Invalid input: expected an object with `id` and `type`")
        return None
    before = len(ctx.violations)
    input_id = item.get("id", item.get("name"))
    if input_id is None:
        ctx.error(f"{path}.id", "must not be null")
    elif not isinstance(input_id, str) or not INPUT_ID_RE.match(input_id):
        ctx.error(f"{path}.id", f'must match "{INPUT_ID_RE.pattern[:-1]}"')
    itype = item.get("type")
    if itype is None:
        ctx.error(f"{path}.type", "missing type id property 'type'")
        return None
    if not isinstance(itype, str) or itype not in INPUT_TYPES:
        ctx.error(f"{path}.type", f"Invalid type: {itype}")
        return None
    allowed = _COMMON | INPUT_TYPES[itype]
    for key in item:
        if key not in allowed:
            ctx.error(f"{path}.{key}", f'Unrecognized field "{key}"')
    display = item.get("displayName")
    if display is not None and len(str(display)) > 64:
        ctx.error(f"{path}.displayName", "size must be between 0 and 64")
    _check_type_fields(ctx, itype, item, path)
    depends = item.get("dependsOn")
    dep_inputs: tuple[str, ...] = ()
    dep_condition = None
    if depends is not None:
        if not isinstance(depends, dict):
            ctx.error(f"{path}.dependsOn", "Invalid value: expected an object with `inputs` and `condition`")
        else:
            for key in depends:
                if key not in ("inputs", "condition"):
                    ctx.error(f"{path}.dependsOn.{key}", f'Unrecognized field "{key}"')
            raw_inputs = depends.get("inputs") or []
            if not isinstance(raw_inputs, list) or not all(isinstance(x, str) for x in raw_inputs):
                ctx.error(f"{path}.dependsOn.inputs", "Invalid value: expected a list of input ids")
            else:
                dep_inputs = tuple(raw_inputs)
            if depends.get("condition") is not None:
                dep_condition = str(depends["condition"])
    if len(ctx.violations) > before or not isinstance(input_id, str):
        return None
    props = {k: v for k, v in item.items() if k not in _COMMON}
    if itype == "MULTISELECT" and props.get("values") is None and props.get("options") is not None:
        props["values"] = props["options"]
    return InputSpec(
        id=input_id,
        type=itype,
        required=_bool(item.get("required"), True),
        defaults=item.get("defaults"),
        description=item.get("description"),
        display_name=display,
        depends_on_inputs=dep_inputs,
        depends_on_condition=dep_condition,
        props=props,
        line=ctx.doc.line_of(path),
    )


def _check_type_fields(ctx: ParseContext, itype: str, item: dict[str, Any], path: str) -> None:
    from falconet.runtime.flow.inputs import parse_bound  # the same parser types the values at execution time

    if itype in ("STRING", "SECRET") and item.get("validator") is not None:
        try:
            safe_regex.compile(str(item["validator"]))
        except safe_regex.RegexError as exc:
            ctx.error(f"{path}.validator", f"Invalid regex `{item['validator']}`: {exc.reason}")
    if itype == "FILE" and item.get("defaults") is not None:
        ctx.error(f"{path}.defaults", "no `defaults` can be set for inputs of type 'FILE'")
    if itype == "ARRAY":
        item_type = item.get("itemType")
        if item_type is None:
            ctx.error(f"{path}.itemType", "must not be null")
        elif item_type == "ARRAY":
            ctx.error(f"{path}.itemType", "`itemType` cannot be `ARRAY`")
        elif item_type not in INPUT_TYPES:
            ctx.error(f"{path}.itemType", f"Invalid type: {item_type}")
    if itype == "MULTISELECT" and item.get("itemType") not in (None, "STRING") and item["itemType"] not in INPUT_TYPES:
        ctx.error(f"{path}.itemType", f"Invalid type: {item['itemType']}")
    if itype == "ENUM":
        if not isinstance(item.get("values"), list) or not item["values"]:
            ctx.error(f"{path}.values", "must not be empty")
    if itype in ("SELECT", "MULTISELECT"):
        values = item.get("values", item.get("options"))
        if values is None and item.get("expression") is None:
            ctx.error(f"{path}.values", "at least one of `values` or `expression` must be set")
        elif values is not None and not isinstance(values, list):
            ctx.error(f"{path}.values", "Invalid value: expected a list")
    for bound in ("min", "max", "after", "before"):
        if bound in INPUT_TYPES[itype] and item.get(bound) is not None:
            try:
                parse_bound(itype, item[bound])
            except ValueError as exc:
                ctx.error(f"{path}.{bound}", str(exc))


def check_input_graph(ctx: ParseContext, inputs: list[InputSpec], path: str) -> None:
    """``dependsOn.inputs`` must name existing inputs and must not form a cycle (Kestra's messages)."""
    graph = {i.id: list(i.depends_on_inputs) for i in inputs}
    for key, deps in graph.items():
        for dep in deps:
            if dep not in graph:
                ctx.error(path, f"Input with id '{key}' depends on a non-existent input '{dep}'.")
        cycle = _find_cycle(key, graph, set(), set(), [])
        if cycle:
            ctx.error(path, f"Cycle dependency detected for input with id '{key}': [{', '.join(cycle)}]")


def _find_cycle(node: str, graph: dict[str, list[str]], visiting: set[str], visited: set[str],
                trail: list[str]) -> list[str] | None:
    if node in visiting:
        return trail[trail.index(node):]
    if node in visited:
        return None
    visiting.add(node)
    trail.append(node)
    for dep in graph.get(node, ()):
        found = _find_cycle(dep, graph, visiting, visited, trail)
        if found:
            return found
    visiting.discard(node)
    visited.add(node)
    trail.pop()
    return None


#### Outputs ################################################################################################

_OUTPUT_FIELDS = frozenset({"id", "type", "value", "description", "displayName", "required"})


def parse_output_defs(ctx: ParseContext, value: Any, path: str) -> list[OutputSpec]:
    """Flow ``outputs``: ``[{id, type, value, description, displayName, required}]``."""
    if value is None:
        return []
    if not isinstance(value, list):
        ctx.error(path, "Invalid value: expected a list of outputs")
        return []
    out = []
    for i, item in enumerate(value):
        p = f"{path}[{i}]"
        if not isinstance(item, dict):
            ctx.error(p, "Invalid output: expected an object with `id`, `type` and `value`")
            continue
        before = len(ctx.violations)
        for key in item:
            if key not in _OUTPUT_FIELDS:
                ctx.error(f"{p}.{key}", f'Unrecognized field "{key}"')
        oid = item.get("id")
        if oid is None:
            ctx.error(f"{p}.id", "must not be null")
        elif not isinstance(oid, str) or not INPUT_ID_RE.match(oid):
            ctx.error(f"{p}.id", f'must match "{INPUT_ID_RE.pattern[:-1]}"')
        otype = item.get("type")
        if otype is None:
            ctx.error(f"{p}.type", "must not be null")
        elif not isinstance(otype, str) or otype not in INPUT_TYPES:
            ctx.error(f"{p}.type", f"Invalid type: {otype}")
        if "value" not in item or item["value"] is None:
            ctx.error(f"{p}.value", "must not be null")
        if len(ctx.violations) == before and isinstance(oid, str) and isinstance(otype, str):
            out.append(OutputSpec(id=oid, type=otype, value=item["value"], description=item.get("description"),
                                  display_name=item.get("displayName"), required=_bool(item.get("required"), True)))
    ids = [o.id for o in out]
    dups = [i for i in dict.fromkeys(ids) if ids.count(i) > 1]
    if dups:
        ctx.error(path, f"Duplicate output with name [{', '.join(dups)}]")
    return out

