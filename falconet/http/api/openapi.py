"""The OpenAPI 3 document of the API, generated from the app's routes: ``GET /api/v1/openapi.yml`` (YAML),
``/api/v1/openapi.json`` and Kestra's own address ``/swagger/kestra.yml``.

Every HTTP route of ``/api/v1`` (both the plain and the ``/api/v1/main`` tenant form) and of ``/ping`` and
``/health`` is a path; each method an operation with an ``operationId`` (``<endpoint>_<method>``), the first
line of the view's docstring as ``summary``, its path parameters, and, for search and by-query routes, the
query parameters they accept (``filters`` as Kestra's ``deepObject``). Websocket routes are not HTTP
operations and are left out; the UI's static files are not API. Built once per app, on first request.
"""
from __future__ import annotations

import json
import re
from typing import Any

import yaml
from quart import Blueprint, Response, current_app

from falconet import __version__

root_bp = Blueprint("openapi", __name__)

_PARAM = re.compile(r"<(?:[a-z]+:)?([A-Za-z_][A-Za-z0-9_]*)>")
_CACHE = "falconet_openapi"
API_PREFIXES = ("/api/v1", "/ping", "/health")

def _query_parameters() -> dict[str, tuple[str, ...]]:
    """Query parameters of the routes that take filters, by ``blueprint.view``."""
    from falconet.http import filters
    from falconet.http.api import executions, flows, logs, triggers

    return {
        "executions.search_executions": tuple(sorted(executions.SEARCH_PARAMS)),
        "executions.list_flow_executions": tuple(sorted(executions.SEARCH_PARAMS)),
        "executions.bulk_delete_by_query": tuple(sorted(executions.SEARCH_PARAMS | executions.DELETE_FLAGS)),
        "flows.search_flows": tuple(sorted(flows.SEARCH_PARAMS)),
        "logs.search_logs": tuple(sorted(logs.SEARCH_PARAMS)),
        "triggers.search_triggers": tuple(sorted(triggers.SEARCH_PARAMS)),
        "kv.list_all_keys": tuple(sorted(filters.PAGING)),
    }


def _is_api(rule: Any) -> bool:
    return not getattr(rule, "websocket", False) and rule.rule.startswith(API_PREFIXES)


def build(app: Any) -> dict[str, Any]:
    """The OpenAPI document of ``app``'s HTTP API routes."""
    queries = _query_parameters()
    paths: dict[str, dict[str, Any]] = {}
    seen: dict[str, int] = {}
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if not _is_api(rule):
            continue
        path = _PARAM.sub(r"{\1}", rule.rule)
        view = app.view_functions.get(rule.endpoint)
        doc = (getattr(view, "__doc__", None) or "").strip()
        base = rule.endpoint.split(".", 1)[-1]
        blueprint = rule.endpoint.split(".", 1)[0].removeprefix("main_")
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            operation_id = f"{rule.endpoint.replace('.', '_')}_{method.lower()}"
            seen[operation_id] = seen.get(operation_id, 0) + 1
            if seen[operation_id] > 1:  # one view serving several paths (aliases): unique ids
                operation_id += f"_{seen[operation_id]}"
            operation: dict[str, Any] = {
                "operationId": operation_id,
                "tags": [blueprint],
                "summary": doc.splitlines()[0] if doc else base.replace("_", " "),
                "responses": {"default": {"description": "Kestra's JSON (errors: {message, _links, _embedded})"}},
            }
            if doc:
                operation["description"] = doc
            parameters = [{"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
                          for name in _PARAM.findall(rule.rule)]
            for name in queries.get(f"{blueprint}.{base}", ()):
                parameters.append({"name": name, "in": "query", "required": False,
                                   "schema": {"type": "array", "items": {"type": "string"}}
                                   if name in ("sort", "state", "labels", "scope") else {"type": "string"}})
            if f"{blueprint}.{base}" in queries:
                parameters.append({"name": "filters", "in": "query", "required": False, "style": "deepObject",
                                   "explode": True, "schema": {"type": "object", "additionalProperties": True},
                                   "description": "filters[FIELD][OPERATION]=VALUE"})
            if parameters:
                operation["parameters"] = parameters
            paths.setdefault(path, {})[method.lower()] = operation
    return {
        "openapi": "3.0.3",
        "info": {"title": "Falconet (Kestra API)", "version": __version__},
        "paths": paths,
    }


def _document() -> dict[str, Any]:
    cached = current_app.extensions.get(_CACHE)
    if cached is None:
        cached = current_app.extensions[_CACHE] = build(current_app)
    return cached


@root_bp.get("/api/v1/openapi.yml")
@root_bp.get("/swagger/kestra.yml")
async def openapi_yaml() -> Any:
    return Response(yaml.safe_dump(_document(), sort_keys=False, allow_unicode=True), status=200,
                    content_type="application/yaml")


@root_bp.get("/api/v1/openapi.json")
async def openapi_json() -> Any:
    return Response(json.dumps(_document()), status=200, content_type="application/json")
