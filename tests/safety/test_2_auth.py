"""Issue 9.2 — auth has no side doors: with basic auth on, only the open *routes* (``/ping``, ``/health``,
``/api/v1/configs``, the webhook route) answer without credentials; every other route of the app's URL
map — walked here, so a route added later is covered automatically — answers 401, through a real socket.
"""
from __future__ import annotations

import base64
import re
from typing import Any

import httpx
import pytest
from trio_websocket import ConnectionRejected, open_websocket_url

from falconet.http.api import live
from falconet.http.api.common import is_open_view
from falconet.http.app import create_app

USER, PASSWORD = "admin@example.com", "s3cret:with-colon"
GOOD = {"Authorization": "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()}
BAD_HEADERS = [
    {},
    {"Authorization": "Basic " + base64.b64encode(f"{USER}:wrong".encode()).decode()},
    {"Authorization": "Basic " + base64.b64encode(f"other:{PASSWORD}".encode()).decode()},
    {"Authorization": "Basic !!!"},
    {"Authorization": "Bearer " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()},
]
#: the open routes, as Kestra leaves them open (its basic-auth filter's open URLs and management endpoints)
OPEN_RULES = {"/ping", "/health", "/health/liveness", "/health/readiness", "/api/v1/configs",
              "/api/v1/executions/webhook/<namespace>/<flow_id>/<key>",
              "/api/v1/main/executions/webhook/<namespace>/<flow_id>/<key>"}

WEBHOOK_NS_FLOW = """id: hello
namespace: webhook
tasks:
  - id: r
    type: io.kestra.plugin.core.debug.Return
    format: ran
"""
HOOK_FLOW = """id: hook
namespace: safety.auth
triggers:
  - id: w
    type: io.kestra.plugin.core.trigger.Webhook
    key: the-key
tasks:
  - id: r
    type: io.kestra.plugin.core.debug.Return
    format: ran
"""


def sample_path(rule: Any) -> str:
    """The rule's path with every variable filled (a ``path`` converter gets two segments)."""
    def fill(match: re.Match[str]) -> str:
        converter = match.group(1) or ""
        return "a/b.txt" if converter.startswith("path") else "safety-x"
    return re.sub(r"<(?:([^:>]+):)?[^>]+>", fill, rule.rule)


def table(app: Any) -> list[tuple[str, str, str, bool]]:
    """(rule, method, sample path, open) for every HTTP route and method of the app."""
    rows = []
    for rule in app.url_map.iter_rules():
        if rule.websocket:
            continue
        open_ = is_open_view(app.view_functions[rule.endpoint])
        for method in sorted(rule.methods or ()):
            rows.append((rule.rule, method, sample_path(rule), open_))
    return rows


@pytest.fixture
async def secured(start_server: Any, engine: Any) -> str:
    await engine.create_flow(WEBHOOK_NS_FLOW)
    await engine.create_flow(HOOK_FLOW)
    return await start_server(basic_auth=(USER, PASSWORD))


async def test_open_routes_are_exactly_kestras(engine: Any) -> None:
    app = create_app(engine, config=engine.config)
    assert {rule for rule, _, _, open_ in table(app) if open_} == OPEN_RULES
    assert not any(is_open_view(app.view_functions[r.endpoint]) for r in app.url_map.iter_rules() if r.websocket)


async def test_every_route_asks_for_credentials(secured: str, engine: Any, monkeypatch: Any) -> None:
    monkeypatch.setattr(live, "FOLLOW_LOOKUP", 0.0)   # SSE follows of an unknown id: 404 at once
    app = create_app(engine, config=engine.config)
    rows = table(app)
    assert len({r[0] for r in rows}) > 60          # the walk really covers the API
    async with httpx.AsyncClient(base_url=secured, timeout=20) as http:
        for rule, method, path, open_ in rows:
            refused = await http.request(method, path)
            if open_:
                assert refused.status_code != 401, (method, rule)
                continue
            assert refused.status_code == 401, (method, rule, refused.status_code)
            assert refused.headers["WWW-Authenticate"].startswith("Basic")
            if method != "HEAD":
                assert refused.json()["message"] == "Unauthorized"
            for headers in BAD_HEADERS[1:]:
                assert (await http.request(method, path, headers=headers)).status_code == 401, (method, rule)
            # streamed: only the status line matters (the log follow of any id is an endless SSE stream)
            async with http.stream(method, path, headers=GOOD) as allowed:
                assert allowed.status_code != 401, (method, rule)
                assert allowed.status_code < 500, (method, rule)


async def test_websocket_routes_ask_for_credentials(secured: str, engine: Any) -> None:
    app = create_app(engine, config=engine.config)
    ws_rules = [r for r in app.url_map.iter_rules() if r.websocket]
    assert ws_rules
    base = secured.replace("http", "ws", 1)
    for rule in ws_rules:
        url = base + sample_path(rule)
        with pytest.raises(ConnectionRejected) as rejected:
            async with open_websocket_url(url):
                pass
        assert rejected.value.status_code == 401, rule.rule
        try:
            async with open_websocket_url(url, extra_headers=[(b"Authorization", GOOD["Authorization"].encode())]):
                pass
        except ConnectionRejected as exc:
            assert exc.status_code != 401, rule.rule


@pytest.mark.parametrize("path", [
    "/api/v1/executions/webhook/hello",
    "/api/v1/main/executions/webhook/hello",
    "/api/v1/executions/trigger/webhook/hello",
    "/api/v1/executions/webhook/hello/validate",
    "/health/../api/v1/executions/webhook/hello",
])
async def test_webhook_lookalikes_need_credentials(secured: str, engine: Any, path: str) -> None:
    """``/executions/webhook/{flowId}`` creates an execution of flow ``hello`` in namespace ``webhook``:
    a protected route that only *looks* like the open webhook prefix."""
    async with httpx.AsyncClient(base_url=secured) as http:
        response = await http.post(path)
        assert response.status_code == 401
        executions, total = await engine.store.search_executions(_all())
        assert total == 0
        allowed = await http.post(path, headers=GOOD)
        assert allowed.status_code != 401


async def test_the_real_webhook_and_probes_stay_open(secured: str, engine: Any) -> None:
    async with httpx.AsyncClient(base_url=secured) as http:
        for path in ("/ping", "/health", "/health/liveness", "/api/v1/configs"):
            assert (await http.get(path)).status_code == 200, path
        assert (await http.get("/api/v1/main/configs")).status_code == 401
        for path in ("/api/v1/executions/webhook/safety.auth/hook/the-key",
                     "/api/v1/main/executions/webhook/safety.auth/hook/the-key"):
            response = await http.post(path, json={"a": 1})
            assert response.status_code == 200 and response.json()["flowId"] == "hook"
        assert (await http.post("/api/v1/executions/webhook/safety.auth/hook/wrong")).status_code == 404
        assert (await http.delete("/api/v1/executions/webhook/safety.auth/hook/the-key")).status_code == 401
        assert (await http.get("/no/such/route")).status_code == 401
        assert (await http.get("/no/such/route", headers=GOOD)).status_code == 404


def _all() -> Any:
    from falconet.runtime.store.base import ExecutionQuery

    return ExecutionQuery(page=1, size=100)
