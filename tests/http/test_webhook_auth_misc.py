"""Webhook route, basic auth, /ping, /health, /api/v1/configs, plugins, the 500 handler."""
from __future__ import annotations

import base64

import pytest
from quart.testing.connections import WebsocketResponseError

from falconet.http.app import create_app

WEBHOOK = """id: hook
namespace: company.team
labels:
  origin: hook
triggers:
  - id: webhook
    type: io.kestra.plugin.core.trigger.Webhook
    key: a-secret-key
    conditions:
      - type: io.kestra.plugin.core.condition.Expression
        expression: "{{ trigger.parameters.skip is not defined }}"
tasks:
  - id: log
    type: io.kestra.plugin.core.log.Log
    message: "{{ trigger.parameters }}"
"""


async def test_webhook_bodies_and_conditions(api):
    await api.flow(WEBHOOK)
    status, doc = await api.call("POST", "/api/v1/executions/webhook/company.team/hook/a-secret-key?name=john&age=12&age=13",
                                 json={"a": 1, "b": True})
    assert status == 200 and doc["state"]["current"] == "CREATED"
    variables = doc["trigger"]["variables"]
    assert variables["body"] == {"a": 1, "b": True}
    assert variables["parameters"] == {"name": ["john"], "age": ["12", "13"]}
    assert variables["headers"]["content-type"] == ["application/json"]
    assert doc["url"].endswith(f"/ui/executions/company.team/hook/{doc['id']}")
    assert {"key": "origin", "value": "hook"} in doc["labels"]

    status, doc = await api.call("PUT", "/api/v1/main/executions/webhook/company.team/hook/a-secret-key", json=[{"a": 1}])
    assert status == 200 and doc["trigger"]["variables"]["body"] == [{"a": 1}]
    status, doc = await api.call("POST", "/api/v1/executions/webhook/company.team/hook/a-secret-key", data="bla",
                                 headers={"Content-Type": "text/plain"})
    assert doc["trigger"]["variables"]["body"] == "bla"
    status, doc = await api.call("GET", "/api/v1/executions/webhook/company.team/hook/a-secret-key")
    assert status == 200 and doc["trigger"]["variables"].get("body") is None

    status, body = await api.call("POST", "/api/v1/executions/webhook/company.team/hook/a-secret-key?skip=1", json={})
    assert status == 204 and body is None
    status, body = await api.call("POST", "/api/v1/executions/webhook/company.team/hook/wrong-key", json={})
    assert status == 404
    status, body = await api.call("POST", "/api/v1/executions/webhook/not-found/webhook/k", json={})
    assert status == 404 and "Flow not found" in body["message"]
    status, body = await api.call("DELETE", "/api/v1/executions/webhook/company.team/hook/a-secret-key")
    assert status == 405


def basic(user, password):
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


async def test_basic_auth(engine, api):
    await api.flow(WEBHOOK)
    engine.config.basic_auth = ("admin@example.com", "s3cret")
    app = create_app(engine, config=engine.config)
    client = app.test_client()
    response = await client.get("/api/v1/flows/search")
    assert response.status_code == 401 and response.headers["WWW-Authenticate"].startswith("Basic")
    for headers in (basic("admin@example.com", "wrong"), basic("other", "s3cret"), {"Authorization": "Basic !!!"},
                    {"Authorization": "Bearer token"}):
        assert (await client.get("/api/v1/flows/search", headers=headers)).status_code == 401
    assert (await client.get("/api/v1/flows/search", headers=basic("admin@example.com", "s3cret"))).status_code == 200
    assert (await client.get("/api/v1/main/flows/search", headers=basic("admin@example.com", "s3cret"))).status_code == 200
    # open routes
    assert (await client.get("/ping")).status_code == 200
    assert (await client.get("/health")).status_code == 200
    configs = await client.get("/api/v1/configs")
    assert configs.status_code == 200 and (await configs.get_json())["isBasicAuthEnabled"] is True
    hook = await client.post("/api/v1/executions/webhook/company.team/hook/a-secret-key", json={})
    assert hook.status_code == 200
    async with client.websocket("/api/v1/ws") as ws:
        with pytest.raises(WebsocketResponseError) as denied:
            await ws.receive()
    assert denied.value.response.status_code == 401


async def test_ping_health_configs_plugins(api):
    response = await api.client.get("/ping")
    assert response.status_code == 200 and await response.get_data() == b"pong"
    status, health = await api.call("GET", "/health")
    assert status == 200 and health["status"] == "UP"
    status, configs = await api.call("GET", "/api/v1/configs")
    assert status == 200 and configs["isBasicAuthEnabled"] is False and configs["preview"] == {"initial": 100, "max": 5000}
    status, _ = await api.call("GET", "/api/v1/main/configs")
    assert status == 404
    status, plugins = await api.call("GET", "/api/v1/plugins")
    assert status == 200
    tasks = {t for group in plugins for t in group["tasks"]}
    assert "io.kestra.plugin.core.log.Log" in tasks
    status, schema = await api.call("GET", "/api/v1/plugins/io.kestra.plugin.core.log.Log")
    assert status == 200 and "message" in schema["schema"]["properties"]["properties"]  # Kestra's doc body
    status, schema = await api.call("GET", "/api/v1/main/plugins/io.kestra.core.tasks.log.Log")
    assert status == 200 and schema["type"] == "io.kestra.plugin.core.log.Log"
    status, _ = await api.call("GET", "/api/v1/plugins/com.example.Nope")
    assert status == 404


async def test_internal_error_is_a_kestra_500_body(app, client):
    @app.route("/__test__/boom")
    async def boom():
        raise RuntimeError("kaboom")

    response = await client.get("/__test__/boom")
    body = await response.get_json()
    assert response.status_code == 500
    assert body["message"] == "Internal Server Error: RuntimeError"
    assert body["_links"]["self"]["href"] == "/__test__/boom"


async def test_webhook_on_disabled_flow_is_409(api):
    await api.flow(WEBHOOK.replace("id: hook", "id: off") + "disabled: true\n")
    status, body = await api.call("POST", "/api/v1/executions/webhook/company.team/off/a-secret-key", json={})
    assert status == 409 and body["message"].startswith("Illegal state")
