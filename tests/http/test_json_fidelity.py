"""Kestra's JSON conventions: ``tenantId: "main"`` on executions, task runs, logs, flows and triggers; the
``system.from`` label of Kestra 1.x; null fields omitted (a task run's ``outputs`` excepted, as Kestra)."""
from __future__ import annotations

PARENT = """id: parent
namespace: company.team
tasks:
  - id: say
    type: io.kestra.plugin.core.log.Log
    message: hi
  - id: call
    type: io.kestra.plugin.core.flow.Subflow
    namespace: company.team
    flowId: child
triggers:
  - id: hook
    type: io.kestra.plugin.core.trigger.Webhook
    key: k
"""

CHILD = """id: child
namespace: company.team
tasks:
  - id: hello
    type: io.kestra.plugin.core.log.Log
    message: child
"""


def nulls(value, path=""):
    if isinstance(value, dict):
        for key, item in value.items():
            if item is None:
                yield f"{path}.{key}"
            yield from nulls(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from nulls(item, f"{path}[{index}]")


def labels(doc) -> dict:
    return {lb["key"]: lb["value"] for lb in doc["labels"]}


async def test_tenant_id_everywhere(api, engine):
    flow = await api.flow(CHILD)
    assert flow["tenantId"] == "main"
    await api.flow(PARENT)
    created = await api.execute("company.team", "parent", "?wait=true")
    assert created["tenantId"] == "main" and created["state"]["current"] == "SUCCESS"
    assert all(tr["tenantId"] == "main" for tr in created["taskRunList"])
    for path in (f"/api/v1/executions/{created['id']}", f"/api/v1/main/executions/{created['id']}"):
        status, doc = await api.call("GET", path)
        assert doc["tenantId"] == "main" and all(tr["tenantId"] == "main" for tr in doc["taskRunList"])
    status, logs = await api.call("GET", f"/api/v1/logs/{created['id']}")
    assert logs and all(entry["tenantId"] == "main" for entry in logs)
    status, page = await api.call("GET", "/api/v1/logs/search?namespace=company.team")
    assert page["results"] and all(entry["tenantId"] == "main" for entry in page["results"])
    status, page = await api.call("GET", "/api/v1/flows/search")
    assert all(f["tenantId"] == "main" for f in page["results"])
    await engine.store.save_trigger({"namespace": "company.team", "flowId": "parent", "triggerId": "hook"})
    status, page = await api.call("GET", "/api/v1/triggers/search")
    assert page["results"][0]["triggerContext"]["tenantId"] == "main"


async def test_system_from_label(api, engine):
    await api.flow(CHILD)
    await api.flow(PARENT)
    legacy = await api.execute("company.team", "child")
    assert "system.from" not in labels(legacy)                   # 0.21 path: 0.21's labels, unchanged
    status, tenant = await api.call("POST", "/api/v1/main/executions/company.team/child")
    assert status == 200 and labels(tenant)["system.from"] == "api"
    status, ui = await api.call("POST", "/api/v1/main/executions/company.team/child?labels=system.from:ui")
    assert status == 200 and labels(ui)["system.from"] == "ui"
    status, hooked = await api.call("POST", "/api/v1/executions/webhook/company.team/parent/k")
    assert status == 200 and labels(hooked)["system.from"] == "trigger"
    final = await api.wait(hooked["id"])
    status, page = await api.call("GET", f"/api/v1/executions/search?triggerExecutionId={final['id']}")
    child = page["results"][0]
    assert "system.from" not in labels(child)                     # started by a Subflow task, not a trigger
    status, body = await api.call("POST", "/api/v1/main/executions/company.team/child?labels=system.other:x")
    assert status == 422


async def test_no_null_fields_but_task_run_outputs(api):
    await api.flow(CHILD)
    created = await api.execute("company.team", "child", "?wait=true")
    status, doc = await api.call("GET", f"/api/v1/executions/{created['id']}")
    assert [p for p in nulls(doc) if not p.endswith(".outputs")] == []
    assert all("outputs" in tr for tr in doc["taskRunList"])     # always serialised, as Kestra
    status, flow = await api.call("GET", "/api/v1/flows/company.team/child?source=true")
    assert list(nulls(flow)) == []
    status, logs = await api.call("GET", f"/api/v1/logs/{created['id']}")
    assert list(nulls(logs)) == []
