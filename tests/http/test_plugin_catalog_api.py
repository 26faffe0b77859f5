"""The plugin catalogue routes Kestra's UI and SDK read: subgroups, icons, schemas, inputs, properties,
versions — and that their static segments win over ``/plugins/{cls}``."""
from __future__ import annotations

import base64
from typing import Any

import pytest

LOG = "io.kestra.plugin.core.log.Log"


async def test_plugins_have_title_description_and_subgroups(api: Any) -> None:
    status, groups = await api.call("GET", "/api/v1/plugins")
    core = next(g for g in groups if g["group"] == "io.kestra.plugin.core")
    assert core["title"] == "Core" and core["description"] and core["subGroup"] is None
    assert "io.kestra.plugin.core.runner.Process" in core["taskRunners"]
    status, entries = await api.call("GET", "/api/v1/plugins/groups/subgroups")
    assert status == 200
    flow = next(e for e in entries if e["subGroup"] == "io.kestra.plugin.core.flow")
    assert flow["group"] == "io.kestra.plugin.core" and flow["title"] == "Flow"
    assert "io.kestra.plugin.core.flow.Parallel" in flow["tasks"] and LOG not in flow["tasks"]
    assert {e["subGroup"] for e in entries} >= {None, "io.kestra.plugin.core.log", "io.kestra.plugin.scripts.shell"}


async def test_icons(api: Any) -> None:
    status, icons = await api.call("GET", "/api/v1/plugins/icons")
    assert status == 200
    assert set(icons) >= {t.type for t in api.engine.plugins()}
    assert icons["io.kestra.core.tasks.log.Log"]["name"] == "Log"   # aliases too
    assert icons["io.kestra.plugin.core.flow.Parallel"]["flowable"] is True and icons[LOG]["flowable"] is False
    assert base64.b64decode(icons[LOG]["icon"]).startswith(b"<svg")
    status, one = await api.call("GET", f"/api/v1/plugins/icons/{LOG}")
    assert status == 200 and one == icons[LOG]
    status, groups = await api.call("GET", "/api/v1/plugins/icons/groups")
    assert status == 200 and groups["io.kestra.plugin.core"]["name"] == "plugin-icon"
    assert "io.kestra.plugin.core.flow" in groups
    assert (await api.call("GET", "/api/v1/plugins/icons/com.example.Nope"))[0] == 404


def _resolve(schema: dict[str, Any], ref: str) -> dict[str, Any]:
    return schema["definitions"][ref.rpartition("/")[2]]


async def test_flow_schema_describes_a_whole_flow(api: Any) -> None:
    status, schema = await api.call("GET", "/api/v1/plugins/schemas/flow")
    assert status == 200 and schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    flow = _resolve(schema, schema["$ref"])
    assert flow["required"] == ["id", "namespace", "tasks"]
    assert {"inputs", "tasks", "errors", "triggers", "pluginDefaults", "concurrency"} <= set(flow["properties"])
    tasks = _resolve(schema, flow["properties"]["tasks"]["items"]["$ref"])
    refs = {r["$ref"].rpartition("/")[2] for r in tasks["anyOf"]}
    assert LOG in refs and "io.kestra.plugin.core.trigger.Schedule" not in refs
    log = schema["definitions"][LOG]
    assert "message" in log["required"]
    # every $ref of the document resolves
    def refs_in(node: Any) -> list[str]:
        if isinstance(node, dict):
            return ([node["$ref"]] if "$ref" in node else []) + [r for v in node.values() for r in refs_in(v)]
        if isinstance(node, list):
            return [r for v in node for r in refs_in(v)]
        return []
    assert all(r.rpartition("/")[2] in schema["definitions"] for r in refs_in(schema))
    triggers = _resolve(schema, flow["properties"]["triggers"]["items"]["$ref"])
    assert {"$ref": "#/definitions/io.kestra.plugin.core.trigger.Schedule"} in triggers["anyOf"]
    inputs = _resolve(schema, flow["properties"]["inputs"]["items"]["$ref"])
    assert len(inputs["anyOf"]) >= 19


async def test_flow_schema_validates_flows(api: Any) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    status, schema = await api.call("GET", "/api/v1/plugins/schemas/flow")
    good = {"id": "f", "namespace": "company.team", "tasks": [{"id": "t", "type": LOG, "message": "hi"}]}
    jsonschema.validate(good, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"id": "f", "namespace": "company.team", "tasks": [], "nope": 1}, schema)


@pytest.mark.parametrize("kind,root", [("task", "io.kestra.core.models.tasks.Task"),
                                       ("trigger", "io.kestra.core.models.triggers.AbstractTrigger"),
                                       ("plugindefault", "io.kestra.core.models.flows.PluginDefault")])
async def test_other_schema_types_and_array_of(api: Any, kind: str, root: str) -> None:
    status, schema = await api.call("GET", f"/api/v1/plugins/schemas/{kind}")
    assert status == 200 and schema["$ref"] == f"#/definitions/{root}"
    status, schema = await api.call("GET", f"/api/v1/plugins/schemas/{kind}?arrayOf=true")
    assert schema["type"] == "array" and schema["items"] == {"$ref": f"#/definitions/{root}"}


async def test_unknown_schema_type_is_a_400(api: Any) -> None:
    status, body = await api.call("GET", "/api/v1/plugins/schemas/bogus")
    assert status == 400 and "bogus" in body["message"]
    assert (await api.call("GET", "/api/v1/plugins/properties/bogus"))[0] == 400


async def test_properties_of_a_type(api: Any) -> None:
    status, body = await api.call("GET", "/api/v1/plugins/properties/flow")
    assert status == 200 and body["title"] == "Flow" and "tasks" in body["properties"]
    assert LOG in body["definitions"]


async def test_inputs(api: Any) -> None:
    status, types = await api.call("GET", "/api/v1/plugins/inputs")
    assert status == 200
    assert {"type": "STRING", "cls": "io.kestra.core.models.flows.input.StringInput"} in types
    assert len(types) == 19
    status, doc = await api.call("GET", "/api/v1/plugins/inputs/INT")
    props = doc["schema"]["properties"]
    assert status == 200 and {"min", "max", "id", "defaults"} <= set(props["properties"])
    assert props["properties"]["type"]["const"] == "INT" and "validator" not in props["properties"]
    assert (await api.call("GET", "/api/v1/plugins/inputs/NOPE"))[0] == 404


async def test_versions(api: Any) -> None:
    from falconet import __version__

    status, body = await api.call("GET", "/api/v1/plugins/io.kestra.core.tasks.log.Log/versions")
    assert status == 200 and body == {"type": LOG, "versions": [__version__]}
    status, doc = await api.call("GET", f"/api/v1/plugins/{LOG}/versions/{__version__}")
    assert status == 200 and doc["markdown"].startswith(f"# {LOG}")
    assert (await api.call("GET", f"/api/v1/plugins/{LOG}/versions/0.0.0-nope"))[0] == 404


#### Route precedence #######################################################################################

ROUTES = [
    ("GET", "/plugins/icons", "plugins.icons"),
    ("GET", "/plugins/icons/groups", "plugins.group_icons"),
    ("GET", "/plugins/icons/io.kestra.plugin.core.log.Log", "plugins.icon"),
    ("GET", "/plugins/groups/subgroups", "plugins.subgroups"),
    ("GET", "/plugins/schemas/flow", "plugins.schemas"),
    ("GET", "/plugins/properties/flow", "plugins.properties"),
    ("GET", "/plugins/inputs", "plugins.inputs"),
    ("GET", "/plugins/inputs/STRING", "plugins.input_schema"),
    ("GET", "/plugins/io.kestra.plugin.core.log.Log", "plugins.plugin_documentation"),
    ("GET", "/plugins/io.kestra.plugin.core.log.Log/versions", "plugins.versions"),
    ("GET", "/namespaces/search", "namespaces.search"),
    ("POST", "/namespaces/autocomplete", "namespaces.autocomplete"),
    ("GET", "/namespaces/company.team", "namespaces.get_namespace"),
    ("GET", "/namespaces/company.team/dependencies", "namespaces.dependencies"),
    ("GET", "/namespaces/company.team/files", "namespaces.download"),
    ("GET", "/namespaces/company.team/files/search", "namespaces.search_files"),
    ("GET", "/namespaces/company.team/files/stats", "namespaces.file_stats"),
    ("GET", "/namespaces/company.team/files/revisions", "namespaces.file_revisions"),
    ("GET", "/namespaces/company.team/files/directory", "namespaces.list_directory"),
    ("POST", "/namespaces/company.team/files/directory", "namespaces.create_directory"),
    ("GET", "/namespaces/company.team/files/export", "namespaces.export"),
    ("GET", "/namespaces/company.team/kv", "kv.list_keys"),
    ("POST", "/stats/executions/daily", "stats.executions_daily"),
    ("POST", "/stats/executions/daily/group-by-flow", "stats.executions_by_flow"),
    ("GET", "/blueprints/community/tags", "extras.blueprint_tags"),
    ("GET", "/blueprints/community/flow/tags", "extras.blueprint_kind_tags"),
    ("GET", "/templates/search", "extras.search_templates"),
    ("GET", "/templates/distinct-namespaces", "extras.template_namespaces"),
    ("GET", "/concurrency-limit/search", "extras.concurrency_limits"),
]


@pytest.mark.parametrize("prefix", ["/api/v1", "/api/v1/main"])
@pytest.mark.parametrize("method,path,endpoint", ROUTES)
async def test_static_segments_reach_their_own_handler(app: Any, prefix: str, method: str, path: str, endpoint: str) -> None:
    adapter = app.url_map.bind("localhost")
    matched, _ = adapter.match(prefix + path, method=method)
    assert matched == (endpoint if prefix == "/api/v1" else f"main_{endpoint}")
