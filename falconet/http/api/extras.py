"""Kestra endpoints around the UI that have little or no Falconet state behind them:

- ``GET usages/all`` — Kestra's usage report (instance, flows, executions, plugins) computed from the store
- ``GET basicAuthValidationErrors`` (Kestra 1.x) → ``[]``; ``POST basicAuth`` → 422: basic auth is set in the
  server configuration (``kestra.server.basic-auth``), not through the API
- ``GET concurrency-limit/search`` → ``{results: [{tenantId, namespace, flowId, running}], total}`` for every
  flow declaring ``concurrency``; ``running`` is its count of active executions
- ``GET outputs/executions/{id}``, ``outputs/tasks/{id}``, ``outputs/tasks/{id}/{taskRunId}`` (Kestra 2.0)
- community blueprints (no internet: an empty, well-formed catalogue; one blueprint is a 404)
- templates (0.x, deprecated and not supported): searches answer empty results, creating one is a 422
"""
from __future__ import annotations

from datetime import timedelta
from typing import Any

from quart import Blueprint, request

from falconet import __version__
from falconet.runtime.kernel.errors import IllegalArgument, NotFound
from falconet.runtime.store.base import ExecutionQuery
from falconet.http.api.common import engine, json_response, paged, state
from falconet.http.api.params import paging

bp = Blueprint("extras", __name__)

TENANT = "main"
BLUEPRINT_KINDS = ("flow", "dashboard", "app")
TEMPLATES_UNSUPPORTED = ("Templates are deprecated in Kestra and not supported by Falconet: "
                         "use subflows (io.kestra.plugin.core.flow.Subflow) instead")


#### Usage and basic auth ###################################################################################

@bp.get("/usages/all")
async def usages() -> Any:
    eng = engine()
    flows = await eng.list_flows()
    since = eng.clock.now() - timedelta(days=1)
    _, daily = await eng.store.search_executions(ExecutionQuery(start_date=since, size=1))
    task_types = {t.type for f in flows for t in f.all_tasks()}
    trigger_types = {t.type for f in flows for t in f.triggers}
    from falconet.runtime.catalog.docs import plugin_kind
    kinds: dict[str, int] = {}
    for cls in eng.plugins():
        kinds[plugin_kind(cls)] = kinds.get(plugin_kind(cls), 0) + 1
    config = state().config
    return json_response({
        "uuid": None,
        "version": __version__,
        "serverType": "STANDALONE",
        "host": {"javaVersion": None},
        "configurations": {"repositoryType": "sqlite", "queueType": "memory",
                           "storageType": "local", "basicAuthEnabled": bool(getattr(config, "basic_auth", None))},
        "plugins": [{"type": kind, "count": n} for kind, n in sorted(kinds.items())],
        "flows": {"count": len(flows), "namespacesCount": len({f.namespace for f in flows}),
                  "taskTypeCount": len(task_types), "triggerTypeCount": len(trigger_types)},
        "executions": {"dailyExecutionsCount": daily},
    })


@bp.get("/basicAuthValidationErrors")
async def basic_auth_validation_errors() -> Any:
    """Falconet validates the basic-auth configuration at start-up (a bad one stops the server)."""
    return json_response([])


@bp.post("/basicAuth")
async def add_basic_auth() -> Any:
    raise IllegalArgument("Basic auth is configured in the server configuration (kestra.server.basic-auth or "
                          "--basic-auth), not through the API")


#### Concurrency limits and outputs #########################################################################

@bp.get("/concurrency-limit/search")
async def concurrency_limits() -> Any:
    page, size, _ = paging(request.args)
    eng = engine()
    limited = [f for f in await eng.list_flows() if f.concurrency is not None]
    results = []
    for flow in sorted(limited, key=lambda f: (f.namespace, f.id)):
        _, running = await eng.store.search_executions(ExecutionQuery(
            namespace=flow.namespace, flow_id=flow.id, states=["RUNNING", "PAUSED", "KILLING", "RESTARTED"],
            size=1))
        results.append({"tenantId": TENANT, "namespace": flow.namespace, "flowId": flow.id, "running": running})
    start = (page - 1) * size
    return paged(results[start:start + size], len(results))


async def _execution(execution_id: str) -> dict[str, Any]:
    doc = await engine().get_execution(execution_id)
    if doc is None:
        raise NotFound(f"Execution '{execution_id}' not found")
    return doc


@bp.get("/outputs/executions/<execution_id>")
async def execution_outputs(execution_id: str) -> Any:
    return json_response((await _execution(execution_id)).get("outputs") or {})


@bp.get("/outputs/tasks/<execution_id>")
async def task_outputs(execution_id: str) -> Any:
    doc = await _execution(execution_id)
    out = []
    for tr in doc.get("taskRunList") or []:
        if tr.get("outputs"):
            entry = {"taskId": tr.get("taskId"), "taskRunId": tr.get("id"), "inline": True}
            if tr.get("value") is not None:
                entry["value"] = str(tr["value"])
            if tr.get("iteration") is not None:
                entry["iteration"] = tr["iteration"]
            out.append(entry)
    return json_response(out)


@bp.get("/outputs/tasks/<execution_id>/<task_run_id>")
async def task_run_outputs(execution_id: str, task_run_id: str) -> Any:
    doc = await _execution(execution_id)
    for tr in doc.get("taskRunList") or []:
        if tr.get("id") == task_run_id:
            return json_response(tr.get("outputs") or {})
    raise NotFound(f"Task run '{task_run_id}' not found in execution '{execution_id}'")


#### Community blueprints ###################################################################################

@bp.get("/blueprints/community")
async def blueprints() -> Any:
    paging(request.args)
    return paged([], 0)


@bp.get("/blueprints/community/tags")
async def blueprint_tags() -> Any:
    return json_response([])


@bp.get("/blueprints/community/<kind_or_id>")
async def blueprints_of_kind(kind_or_id: str) -> Any:
    """Kestra 1.x ``{kind}`` (an empty page) or 0.x ``{id}`` (no blueprint is known: 404)."""
    if kind_or_id in BLUEPRINT_KINDS:
        paging(request.args)
        return paged([], 0)
    raise NotFound(f"Blueprint '{kind_or_id}' not found (community blueprints need internet access)")


@bp.get("/blueprints/community/<kind>/tags")
async def blueprint_kind_tags(kind: str) -> Any:
    if kind not in BLUEPRINT_KINDS:
        raise NotFound(f"Blueprint '{kind}' not found")
    return json_response([])


@bp.get("/blueprints/community/<kind>/<blueprint_id>")
@bp.get("/blueprints/community/<kind>/<blueprint_id>/<part>")
async def blueprint(kind: str, blueprint_id: str, part: str | None = None) -> Any:
    raise NotFound(f"Blueprint '{blueprint_id}' not found (community blueprints need internet access)")


#### Templates (0.x) ########################################################################################

@bp.get("/templates/search")
async def search_templates() -> Any:
    paging(request.args)
    return paged([], 0)


@bp.get("/templates/distinct-namespaces")
async def template_namespaces() -> Any:
    return json_response([])


@bp.post("/templates")
@bp.post("/templates/<namespace>")
@bp.post("/templates/validate")
@bp.post("/templates/import")
@bp.put("/templates/<namespace>/<template_id>")
async def create_template(namespace: str | None = None, template_id: str | None = None) -> Any:
    raise IllegalArgument(TEMPLATES_UNSUPPORTED)


@bp.get("/templates/<namespace>/<template_id>")
@bp.delete("/templates/<namespace>/<template_id>")
async def get_template(namespace: str, template_id: str) -> Any:
    raise NotFound(f"Template '{namespace}.{template_id}' not found ({TEMPLATES_UNSUPPORTED})")
