"""The plugin documentation built from the one declaration (``falconet.runtime.catalog.docs``)."""
from __future__ import annotations

import json
from typing import Any, ClassVar

import pytest

from falconet.sdk import plugin as P
from falconet.runtime.flow.parse.tasks import COMMON_TRIGGER_PROPS
from falconet.runtime.flow.parsing import validate_flow_source
from falconet.runtime.catalog.docs import (
    CONDITION_REF, DRAFT_07, INPUT_REF, TASK_REF, example_code, plugin_doc, plugin_group, plugin_kind,
    plugin_markdown, plugin_schema, prop_schema,
)

REGISTRY = P.load_plugins()
ALL_TYPES = sorted(REGISTRY.canonical())
JSON_TYPES = {"string", "integer", "number", "boolean", "array", "object"}


def _check_prop_schema(name: str, schema: dict[str, Any]) -> None:
    """A property schema: a known JSON type (or none for ANY), consistent keywords, resolvable $refs."""
    if "type" in schema:
        assert schema["type"] in JSON_TYPES, (name, schema)
    if "enum" in schema:
        assert schema["type"] == "string" and schema["enum"] and all(isinstance(v, str) for v in schema["enum"])
    if schema.get("type") == "array" and "items" in schema:
        items = schema["items"]
        assert "$ref" in items or items.get("type") in JSON_TYPES, (name, items)
    for sub_name, sub in schema.get("properties", {}).items():
        _check_prop_schema(f"{name}.{sub_name}", sub)
    if isinstance(schema.get("additionalProperties"), dict):
        _check_prop_schema(f"{name}.*", schema["additionalProperties"])


@pytest.mark.parametrize("type_name", ALL_TYPES)
def test_every_registered_type_has_a_draft_07_document(type_name: str) -> None:
    cls = REGISTRY.get(type_name)
    doc = plugin_doc(cls)
    json.dumps(doc)  # JSON-able as a whole
    assert doc["type"] == type_name and doc["kind"] in ("tasks", "triggers", "conditions")
    assert doc["markdown"].startswith(f"# {type_name}\n")
    outputs = doc["schema"]["outputs"]
    assert outputs == {} if not cls.outputs else set(outputs["properties"]) == set(cls.outputs)
    schema = doc["schema"]["properties"]
    assert schema["$schema"] == DRAFT_07 and schema["type"] == "object"
    assert schema["title"] and isinstance(schema["properties"], dict)
    declared_required = {n for n, p in cls.props.items() if p.required}
    assert declared_required <= set(schema["required"]) and {"type"} <= set(schema["required"])
    assert set(schema["required"]) <= set(schema["properties"])
    assert set(cls.props) <= set(schema["properties"])
    assert schema["properties"]["type"]["enum"][0] == type_name
    for name, prop in schema["properties"].items():
        assert isinstance(prop["$dynamic"], bool), name
        _check_prop_schema(name, prop)
    definitions = doc["schema"]["definitions"]
    refs = json.dumps(schema)
    for ref in (TASK_REF, CONDITION_REF, INPUT_REF):
        if ref in refs:
            assert ref.rpartition("/")[2] in definitions


@pytest.mark.parametrize("type_name", [t for t in ALL_TYPES if plugin_kind(REGISTRY.get(t)) == "tasks"])
def test_every_task_keeps_the_common_task_properties(type_name: str) -> None:
    props = plugin_schema(REGISTRY.get(type_name))["properties"]
    for name in ("id", "type", "description", "retry", "timeout", "disabled", "allowFailure", "allowWarning",
                 "runIf", "logLevel"):
        assert name in props, name
    assert props["timeout"]["format"] == "duration"
    assert props["logLevel"]["enum"] == ["TRACE", "DEBUG", "INFO", "WARN", "ERROR"]
    assert props["allowFailure"] == {"type": "boolean", "default": False, "$dynamic": False}


def test_log_document() -> None:
    doc = plugin_doc(REGISTRY.get("io.kestra.core.tasks.log.Log"))
    assert doc["type"] == "io.kestra.plugin.core.log.Log" and "io.kestra.core.tasks.log.Log" in doc["aliases"]
    schema = doc["schema"]["properties"]
    assert schema["title"] == "Log a message in the task logs."
    assert schema["description"] == "Log one line per message at the given level."
    assert schema["required"] == ["message", "id", "type"]  # its own properties first
    assert list(schema["properties"])[:2] == ["message", "level"]
    message = schema["properties"]["message"]
    assert "type" not in message and message["$dynamic"] is True  # ANY: a string or a list
    assert message["description"].startswith("A message or a list of messages")
    level = schema["properties"]["level"]
    assert level == {"type": "string", "enum": ["TRACE", "DEBUG", "INFO", "WARN", "ERROR"], "default": "INFO",
                     "description": "The log level.", "$dynamic": True}
    assert schema["properties"]["type"]["enum"] == ["io.kestra.plugin.core.log.Log", *doc["aliases"]]
    assert "Also accepted as: `io.kestra.core.tasks.log.Log`" in doc["markdown"]


def test_structural_properties_reference_the_task_definition() -> None:
    props = plugin_schema(REGISTRY.get("io.kestra.plugin.core.flow.Switch"))["properties"]
    assert props["defaults"]["type"] == "array" and props["defaults"]["items"] == {"$ref": TASK_REF}
    assert props["cases"]["type"] == "object"
    assert props["cases"]["additionalProperties"] == {"type": "array", "items": {"$ref": TASK_REF}}
    dag = plugin_schema(REGISTRY.get("io.kestra.plugin.core.flow.Dag"))["properties"]["tasks"]
    assert dag["type"] == "array" and dag["items"]["properties"]["task"] == {"$ref": TASK_REF}
    assert dag["items"]["required"] == ["task"]


def test_triggers_get_the_trigger_properties_and_conditions_only_a_type() -> None:
    schedule = plugin_schema(REGISTRY.get("io.kestra.plugin.core.trigger.Schedule"))
    assert set(COMMON_TRIGGER_PROPS) <= set(schedule["properties"])
    assert "retry" not in schedule["properties"] and "cron" in schedule["required"]
    assert schedule["properties"]["conditions"]["items"] == {"$ref": CONDITION_REF}
    conditions = [REGISTRY.get(t) for t in ALL_TYPES if plugin_kind(REGISTRY.get(t)) == "conditions"]
    assert conditions
    for cls in conditions:
        schema = plugin_schema(cls)
        assert "retry" not in schema["properties"] and "timeout" not in schema["properties"]
        assert "type" in schema["required"]


def test_prop_kinds_map_to_json_schema() -> None:
    assert prop_schema(P.Prop(P.DURATION, default="PT1S")) == {"type": "string", "format": "duration",
                                                                 "default": "PT1S", "$dynamic": True}
    assert prop_schema(P.Prop(P.INTEGER, required=True, dynamic=False)) == {"type": "integer", "$dynamic": False}
    assert prop_schema(P.Prop(P.NUMBER))["type"] == "number"
    assert prop_schema(P.Prop(P.LIST, default=("a", "b"))) == {"type": "array", "default": ["a", "b"], "$dynamic": True}
    assert prop_schema(P.Prop(P.MAP))["additionalProperties"] is True
    assert prop_schema(P.Prop(P.INPUTS))["items"] == {"$ref": INPUT_REF}
    assert prop_schema(P.Prop(P.CONDITION_MAP))["additionalProperties"] == {"$ref": CONDITION_REF}
    assert prop_schema(P.Prop(P.STRING, aliases=("old",)))["$aliases"] == ["old"]
    nested = prop_schema(P.Prop(P.OBJECT, fields={"a": P.Prop(P.BOOLEAN, required=True), "b": P.Prop(P.STRING)}))
    assert nested["type"] == "object" and nested["required"] == ["a"]
    assert nested["properties"]["a"] == {"type": "boolean", "$dynamic": True}
    with pytest.raises(ValueError, match="unknown property kind 'invented'"):
        prop_schema(P.Prop("invented"))


class _Undocumented(P.RunnableTask):
    type: ClassVar[str] = "com.example.tasks.Undocumented"
    props: ClassVar[dict[str, P.Prop]] = {"timeout": P.Prop(P.STRING, required=True, description="own")}

    async def run(self, ctx: Any) -> None:
        return None


def test_declared_property_replaces_a_common_one_and_no_base_docstring_leaks() -> None:
    schema = plugin_schema(_Undocumented)
    assert schema["properties"]["timeout"] == {"type": "string", "description": "own", "$dynamic": True}
    assert schema["required"].count("timeout") == 1
    assert schema["title"] == "Undocumented" and "description" not in schema
    assert plugin_markdown(_Undocumented) == "# com.example.tasks.Undocumented\n"


def test_groups() -> None:
    assert plugin_group("io.kestra.plugin.core.log.Log") == "io.kestra.plugin.core"
    assert plugin_group("io.kestra.plugin.scripts.shell.Commands") == "io.kestra.plugin.scripts"
    assert plugin_group("com.example.Task") == "com.example"


#### examples, outputs and metrics (issue 14.10) ###########################################################

def _example_flow(cls: type[P.Plugin], example: P.Example) -> str:
    """A whole flow holding a task-level example (a full one is its own flow)."""
    if example.full:
        return example.code
    body = "\n".join("    " + line for line in example_code(cls, example).splitlines())
    body = body.replace('    id: "', '  - id: "', 1)
    kind = plugin_kind(cls)
    log = "  - id: log\n    type: io.kestra.plugin.core.log.Log\n    message: hi\n"
    if kind == "triggers":
        return f"id: example\nnamespace: company.team\ntasks:\n{log}triggers:\n{body}\n"
    if kind == "conditions":
        return (f"id: example\nnamespace: company.team\ntasks:\n{log}triggers:\n  - id: t\n"
                f"    type: io.kestra.plugin.core.trigger.Flow\n    conditions:\n" + body.replace("\n", "\n    ") + "\n")
    return f"id: example\nnamespace: company.team\ntasks:\n{body}\n"


BUILT_IN = [t for t in ALL_TYPES if REGISTRY.get(t).__module__.startswith("falconet.plugins.")]


@pytest.mark.parametrize("type_name", BUILT_IN)
def test_every_built_in_type_documents_examples_that_validate(type_name: str) -> None:
    cls = REGISTRY.get(type_name)
    assert cls.examples, f"{type_name} has no example"
    for example in cls.examples:
        source = _example_flow(cls, example)
        assert type_name in source
        results = validate_flow_source(source, registry=REGISTRY)
        assert "constraints" not in results[0], (example.title, source, results[0].get("constraints"))
    doc = plugin_doc(cls)
    assert [e["title"] for e in doc["schema"]["properties"]["$examples"]] == [e.title for e in cls.examples]
    assert "## Examples" in doc["markdown"] and f"> {cls.examples[0].title}" in doc["markdown"]


def test_outputs_and_metrics_read_like_kestra() -> None:
    doc = plugin_doc(REGISTRY.get("io.kestra.plugin.core.debug.Return"))
    assert doc["schema"]["outputs"] == {"type": "object", "required": ["value"],
                                        "properties": {"value": {"type": "string", "title": "The rendered format."}}}
    assert doc["schema"]["properties"]["$metrics"] == [
        {"name": "length", "type": "counter", "unit": None, "description": "Length of the rendered value."},
        {"name": "duration", "type": "timer", "unit": None, "description": "Time spent rendering the value."}]
    example = doc["schema"]["properties"]["$examples"][0]
    assert example["full"] is False and example["lang"] == "yaml" and example["code"].startswith("format:")
    markdown = doc["markdown"]
    assert 'id: "return"\ntype: "io.kestra.plugin.core.debug.Return"\nformat:' in markdown
    assert "## Outputs\n\n### `value`" in markdown and "## Metrics\n\n### `length`\n* **Type:** ==counter==" in markdown
    subflow = plugin_doc(REGISTRY.get("io.kestra.plugin.core.flow.Subflow"))["schema"]["outputs"]
    assert subflow["required"] == ["executionId"] and set(subflow["properties"]) == {"executionId", "state", "outputs"}
