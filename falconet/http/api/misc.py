"""Small endpoints: ``/ping``, ``/health``, ``/api/v1/configs`` (open, never tenant-aliased — ``root_bp``)
and the plugin catalogue ``/api/v1/plugins`` (``bp``, under both prefixes)."""
from __future__ import annotations

import uuid
from typing import Any

from quart import Blueprint, Response

from ... import __version__
from ...runtime.errors import NotFound
from ...runtime.plugindocs import plugin_doc, plugin_group, plugin_kind
from .common import engine, json_response, open_route, state

bp = Blueprint("misc", __name__)
root_bp = Blueprint("root", __name__)

PREVIEW = {"initial": 100, "max": 5000}


#### Open endpoints #########################################################################################

@root_bp.get("/ping")
@open_route
async def ping() -> Any:
    return Response("pong", status=200, content_type="text/plain")


@root_bp.get("/health")
@root_bp.get("/health/liveness")
@root_bp.get("/health/readiness")
@open_route
async def health() -> Any:
    return json_response({"name": "falconet", "status": "UP"})


@root_bp.get("/api/v1/configs")
@open_route
async def configs() -> Any:
    """What Kestra's UI reads at start-up (``isBasicAuthEnabled``, ``preview``, …)."""
    config = state().config
    data_dir = str(getattr(config, "data_dir", ""))
    return json_response({
        "uuid": str(uuid.uuid5(uuid.NAMESPACE_URL, "falconet:" + data_dir)),
        "version": __version__,
        "commitId": None,
        "commitDate": None,
        "isCustomDashboardsEnabled": False,
        "isTaskRunEnabled": False,
        "isAnonymousUsageEnabled": False,
        "isTemplateEnabled": False,
        "isBasicAuthEnabled": bool(getattr(config, "basic_auth", None)),
        "isBasicAuthInitialized": bool(getattr(config, "basic_auth", None)),
        "preview": PREVIEW,
        "systemNamespace": "system",
        "hiddenLabelsPrefixes": ["system."],
        "url": getattr(config, "url", None),
    })


#### Plugins ################################################################################################

@bp.get("/plugins")
async def list_plugins() -> Any:
    """``[{name, group, tasks, triggers, conditions, aliases}]``, one entry per type group."""
    groups: dict[str, dict[str, Any]] = {}
    for cls in sorted(engine().plugins(), key=lambda c: c.type):
        group = plugin_group(cls.type)
        entry = groups.setdefault(group, {"name": group.rpartition(".")[2], "group": group,
                                          "tasks": [], "triggers": [], "conditions": [], "aliases": []})
        entry[plugin_kind(cls)].append(cls.type)
        entry["aliases"].extend(cls.aliases)
    return json_response(list(groups.values()))


@bp.get("/plugins/<type_name>")
async def plugin_documentation(type_name: str) -> Any:
    """One type (canonical name or alias): Kestra's ``{markdown, schema: {properties, outputs,
    definitions}}`` (see :func:`falconet.runtime.plugindocs.plugin_doc`); 404 when unknown."""
    for cls in engine().plugins():
        if type_name == cls.type or type_name in cls.aliases:
            return json_response(plugin_doc(cls))
    raise NotFound(f"Unknown plugin type '{type_name}'")
