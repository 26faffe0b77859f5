"""``/api/v1/plugins``: the listing by group and each type's documentation (Kestra's body shape)."""
from __future__ import annotations

from typing import Any

import pytest


async def test_listing_groups_every_type_once(api: Any) -> None:
    status, groups = await api.call("GET", "/api/v1/plugins")
    assert status == 200 and isinstance(groups, list)
    names = [t for g in groups for kind in ("tasks", "triggers", "conditions", "taskRunners") for t in g[kind]]
    assert len(names) == len(set(names)) == len(api.engine.plugins())
    core = next(g for g in groups if g["group"] == "io.kestra.plugin.core")
    assert core["name"] == "core"
    assert "io.kestra.plugin.core.log.Log" in core["tasks"]
    assert "io.kestra.plugin.core.trigger.Schedule" in core["triggers"]
    assert "io.kestra.plugin.core.condition.ExecutionStatus" in core["conditions"]
    assert "io.kestra.core.tasks.log.Log" in core["aliases"]


@pytest.mark.parametrize("prefix", ["/api/v1", "/api/v1/main"])
async def test_documentation_of_a_type_by_name_or_alias(api: Any, prefix: str) -> None:
    status, by_name = await api.call("GET", f"{prefix}/plugins/io.kestra.plugin.core.log.Log")
    assert status == 200
    status, by_alias = await api.call("GET", f"{prefix}/plugins/io.kestra.core.tasks.log.Log")
    assert status == 200 and by_alias == by_name
    assert set(by_name) >= {"markdown", "schema"}
    assert by_name["markdown"].startswith("# io.kestra.plugin.core.log.Log")
    assert by_name["kind"] == "tasks" and by_name["aliases"] == ["io.kestra.core.tasks.log.Log"]
    schema = by_name["schema"]["properties"]
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#" and schema["type"] == "object"
    assert "message" in schema["required"] and schema["properties"]["level"]["enum"][2] == "INFO"
    assert schema["properties"]["timeout"]["format"] == "duration"
    assert by_name["schema"]["outputs"] == {}


async def test_flowable_and_trigger_documentation(api: Any) -> None:
    status, body = await api.call("GET", "/api/v1/plugins/io.kestra.plugin.core.flow.Parallel")
    assert status == 200
    tasks = body["schema"]["properties"]["properties"]["tasks"]
    assert tasks["type"] == "array" and tasks["items"]["$ref"].endswith("io.kestra.core.models.tasks.Task")
    assert "io.kestra.core.models.tasks.Task" in body["schema"]["definitions"]
    status, body = await api.call("GET", "/api/v1/plugins/io.kestra.plugin.core.trigger.Schedule")
    assert status == 200 and body["kind"] == "triggers"
    assert "cron" in body["schema"]["properties"]["required"]


async def test_unknown_type_is_a_kestra_404(api: Any) -> None:
    status, body = await api.call("GET", "/api/v1/plugins/com.example.Nope")
    assert status == 404
    assert body["message"] == "Not Found: Unknown plugin type 'com.example.Nope'"
    assert body["_links"]["self"]["href"] == "/api/v1/plugins/com.example.Nope"
