"""The OpenAPI document is generated from the routes: every HTTP route of the API is in it."""
from __future__ import annotations

import re

import yaml

from falconet.http.api.openapi import API_PREFIXES


async def test_every_route_is_in_the_openapi_document(api, app):
    response = await api.client.get("/api/v1/openapi.yml")
    assert response.status_code == 200
    document = yaml.safe_load(await response.get_data())
    assert document["openapi"].startswith("3.") and document["paths"]
    missing = []
    for rule in app.url_map.iter_rules():
        if getattr(rule, "websocket", False) or not rule.rule.startswith(API_PREFIXES):
            continue
        path = re.sub(r"<(?:[a-z]+:)?(\w+)>", r"{\1}", rule.rule)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            if method.lower() not in document["paths"].get(path, {}):
                missing.append(f"{method} {path}")
    assert missing == []
    search = document["paths"]["/api/v1/main/executions/search"]["get"]
    assert {p["name"] for p in search["parameters"]} >= {"filters", "namespace", "page", "state"}
    kill = document["paths"]["/api/v1/executions/{execution_id}/kill"]["delete"]
    assert kill["parameters"] == [{"name": "execution_id", "in": "path", "required": True, "schema": {"type": "string"}}]
    ids = [op["operationId"] for item in document["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids))


async def test_kestra_address_and_json_form(api):
    response = await api.client.get("/swagger/kestra.yml")
    assert response.status_code == 200
    status, document = await api.call("GET", "/api/v1/openapi.json")
    assert status == 200 and "/api/v1/flows/import" in document["paths"]
