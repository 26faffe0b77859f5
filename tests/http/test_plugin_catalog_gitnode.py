"""The git and Node.js script types in the plugin catalogue: their group, subgroup and documentation."""
from __future__ import annotations

from typing import Any

GIT_TASKS = {"io.kestra.plugin.git.Clone", "io.kestra.plugin.git.SyncFlows",
             "io.kestra.plugin.git.SyncNamespaceFiles", "io.kestra.plugin.git.PushFlows"}


async def test_git_and_node_groups_are_listed(api: Any) -> None:
    status, groups = await api.call("GET", "/api/v1/plugins")
    assert status == 200
    git = next(g for g in groups if g["group"] == "io.kestra.plugin.git")
    assert git["title"] == "Git" and git["description"] and set(git["tasks"]) == GIT_TASKS
    status, entries = await api.call("GET", "/api/v1/plugins/groups/subgroups")
    node = next(e for e in entries if e["subGroup"] == "io.kestra.plugin.scripts.node")
    assert node["title"] == "Node.js" and set(node["tasks"]) == {"io.kestra.plugin.scripts.node.Commands",
                                                                 "io.kestra.plugin.scripts.node.Script"}


async def test_sync_flows_documentation_has_example_and_outputs(api: Any) -> None:
    status, doc = await api.call("GET", "/api/v1/plugins/io.kestra.plugin.git.SyncFlows")
    assert status == 200
    assert "targetNamespace" in doc["schema"]["properties"]["required"]
    assert set(doc["schema"]["outputs"]["properties"]) == {"flows"}
    assert "type: io.kestra.plugin.git.SyncFlows" in doc["markdown"]
