"""Small open endpoints: ``/ping``, ``/health``, ``/api/v1/configs`` (never tenant-aliased — ``root_bp``).
The plugin catalogue is :mod:`falconet.http.api.plugins`."""
from __future__ import annotations

import uuid
from typing import Any

from quart import Blueprint, Response

from falconet import __version__
from falconet.http.api.common import json_response, open_route, state

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
