"""URL builders compiled on first use (falconet/http/routing.py): none at start-up, the same URLs as
werkzeug's own rules."""
from __future__ import annotations

import re
from typing import Any

import pytest
from quart.routing import QuartMap, QuartRule
from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import Map, RequestRedirect, WebsocketMismatch
from werkzeug.routing.matcher import StateMachineMatcher

from falconet.http.routing import KEPT_PATH_LENGTH, MATCHES_KEPT, LazyBuilderRule, TenantMap


def _values(rule: Any) -> dict[str, Any]:
    return {arg: "1" if rule._converters[arg].__class__.__name__ in ("IntegerConverter",) else "a b/é"
            for arg in rule.arguments}


async def test_no_url_builder_is_compiled_when_the_app_is_created(app):
    # all but Quart's own /static rule, added when the app object is made
    rules = [rule for rule in app.url_map.iter_rules() if rule.endpoint != "static"]
    assert len(rules) > 100
    assert all(type(rule) is LazyBuilderRule for rule in rules)
    assert all(rule._build.__name__ == "_build_on_first_use" for rule in rules)
    assert all(rule._build_unknown.__name__ == "_build_unknown_on_first_use" for rule in rules)


async def test_every_route_builds_the_url_werkzeug_builds(app):
    eager = Map()
    for rule in app.url_map.iter_rules():
        twin = QuartRule(rule.rule, methods=rule.methods, endpoint=rule.endpoint, defaults=rule.defaults,
                         websocket=rule.websocket)
        eager.add(twin)
        values = _values(rule)
        for append_unknown in (False, True):
            extra = {"page": "2", "q": "x y"} if append_unknown else {}
            assert rule.build({**values, **extra}, append_unknown) == twin.build({**values, **extra},
                                                                                  append_unknown), rule.rule
        # the compiled builder replaced the lazy one
        assert not rule._build.__name__.endswith("_on_first_use")


async def test_url_for_through_the_map(app):
    rule = next(r for r in app.url_map.iter_rules() if r.arguments == {"namespace", "flow_id", "metric"}
                and "GET" in r.methods)
    adapter = app.url_map.bind("localhost")
    url = adapter.build(rule.endpoint, {"namespace": "company.team", "flow_id": "hello", "metric": "a b", "x": "1"}, method="GET")
    assert url.startswith(rule.rule.split("<", 1)[0]) and "company.team" in url and url.endswith("/hello/a%20b?x=1")


#### the /api/v1/main copies (TenantMap) ####################################################################

def _outcome(adapter: Any, path: str, method: str, websocket: bool) -> tuple[Any, ...]:
    try:
        endpoint, values = adapter.match(path, method=method, websocket=websocket)
    except RequestRedirect as exc:
        return "redirect", exc.new_url
    except MethodNotAllowed as exc:
        return "405", sorted(exc.valid_methods or ())
    except WebsocketMismatch:
        return "websocket mismatch",
    except NotFound:
        return "404",
    return endpoint, values


def _paths(app: Any) -> list[str]:
    """Every route with sample values (among them segments named like static ones), with and without a
    trailing slash, under the other prefix, and odd paths around the tenant segment."""
    paths: set[str] = set()
    for rule in app.url_map.iter_rules():
        for fill in ("x", "main", "search", "a/b", "1"):
            path = re.sub(r"<[^>]+>", fill, rule.rule)
            for variant in (path, path.rstrip("/"), path + "/", path.replace("/api/v1/main", "/api/v1"),
                            path.replace("/api/v1", "/api/v1/main", 1), path.replace("/api/v1/", "/api/v1//", 1)):
                paths.add(variant or "/")
    for prefix in ("", "/api", "/api/v1", "/api/v1/main", "/api/v1/main/main", "/api/v1/mainx", "/api/v1//main"):
        for rest in ("", "/", "/configs", "/openapi.json", "/flows", "/flows/", "/flows/ns", "/flows/ns/id",
                     "//flows", "/main", "/main/flows", "/ui/x", "/ping", "/executions/webhook/ns/id/key",
                     "/executions/search", "/ws", "/nothing/here"):
            paths.add(prefix + rest or "/")
    return sorted(paths)


async def test_the_tenant_routes_match_as_separate_rules_would(app):
    """TenantMap grafts the /api/v1 states under /api/v1/main instead of parsing the copies: every path
    matches (endpoint and values, redirect, 405, 404) as in a map holding every rule on its own."""
    assert type(app.url_map) is TenantMap
    reference = QuartMap(converters=app.url_map.converters)
    for rule in app.url_map.iter_rules():
        reference.add(QuartRule(rule.rule, methods=rule.methods, endpoint=rule.endpoint, defaults=rule.defaults,
                                websocket=rule.websocket, strict_slashes=rule.strict_slashes))
    ours, theirs = app.url_map.bind("localhost"), reference.bind("localhost")
    paths = _paths(app)
    assert len(paths) > 1500
    differences = []
    for path in paths:
        for method in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"):
            for websocket in (False, True) if method == "GET" else (False,):
                expected = _outcome(theirs, path, method, websocket)
                for _ in range(2):   # walked, then (when it matched) answered from the kept matches
                    if _outcome(ours, path, method, websocket) != expected:
                        differences.append((method, path, websocket, expected))
    assert differences == []
    assert len(app.url_map._matcher.matches) == MATCHES_KEPT


async def test_the_tenant_copies_are_not_parsed_into_the_tree(app):
    copies = [rule for rule in app.url_map.iter_rules() if rule.rule.startswith("/api/v1/main")]
    assert len(copies) > 150
    assert all(rule._parts == [] and rule.endpoint.startswith("main_") for rule in copies)
    # they still build their own URLs
    for rule in copies:
        twin = QuartRule(rule.rule, methods=rule.methods, endpoint=rule.endpoint, websocket=rule.websocket)
        Map([twin])
        assert rule.build(_values(rule), False) == twin.build(_values(rule), False), rule.rule


def test_a_tenant_rule_must_copy_an_api_rule():
    tenant_map = TenantMap()
    tenant_map.add(LazyBuilderRule("/api/v1/flows", endpoint="flows.search", methods=["GET"]))
    tenant_map.add(LazyBuilderRule("/api/v1/main/flows", endpoint="main_flows.search", methods=["GET"]))
    with pytest.raises(ValueError):
        tenant_map.add(LazyBuilderRule("/api/v1/main/flows", endpoint="main_flows.create", methods=["POST"]))
    with pytest.raises(ValueError):
        tenant_map.add(LazyBuilderRule("/api/v1/main/logs", endpoint="main_logs.search", methods=["GET"]))
    for rule, endpoint in (("/items/<name>", "items.name"), ("/items/<int:number>", "items.number")):
        # two dynamic transitions in one state: their order (by weight) is kept in the tenant copy
        tenant_map.add(LazyBuilderRule("/api/v1" + rule, endpoint=endpoint))
        tenant_map.add(LazyBuilderRule("/api/v1/main" + rule, endpoint="main_" + endpoint))
    adapter = tenant_map.bind("localhost")
    assert adapter.match("/api/v1/main/flows", method="GET") == ("main_flows.search", {})
    assert adapter.match("/api/v1/flows", method="GET") == ("flows.search", {})
    assert adapter.match("/api/v1/main/items/7") == ("main_items.number", {"number": 7})
    assert adapter.match("/api/v1/main/items/seven") == ("main_items.name", {"name": "seven"})
    with pytest.raises(NotFound):
        adapter.match("/api/v1/main/configs")


def test_a_path_matched_again_is_not_walked_again(monkeypatch):
    walks: list[str] = []
    werkzeugs = StateMachineMatcher.match

    def walked(self: Any, domain: str, path: str, method: str, websocket: bool) -> Any:
        walks.append(path)
        return werkzeugs(self, domain, path, method, websocket)

    monkeypatch.setattr(StateMachineMatcher, "match", walked)
    tenant_map = TenantMap()
    tenant_map.add(LazyBuilderRule("/api/v1/executions/<namespace>/<flow_id>", endpoint="create", methods=["POST"]))
    tenant_map.add(LazyBuilderRule("/api/v1/main/executions/<namespace>/<flow_id>", endpoint="main_create",
                                   methods=["POST"]))
    adapter = tenant_map.bind("localhost")
    first = adapter.match("/api/v1/main/executions/ns/f", method="POST")
    first[1]["namespace"] = "changed by the caller"
    assert adapter.match("/api/v1/main/executions/ns/f", method="POST") == ("main_create", {"namespace": "ns",
                                                                                           "flow_id": "f"})
    assert walks == ["/api/v1/main/executions/ns/f"]
    # another method, a path that does not match, a long path: walked each time
    for _ in range(2):
        with pytest.raises(MethodNotAllowed):
            adapter.match("/api/v1/main/executions/ns/f", method="GET")
        with pytest.raises(NotFound):
            adapter.match("/api/v1/nothing", method="POST")
        adapter.match(f"/api/v1/executions/ns/{'f' * KEPT_PATH_LENGTH}", method="POST")
    assert len(walks) == 7
    # a new rule forgets what was kept (it may take precedence)
    tenant_map.add(LazyBuilderRule("/api/v1/executions/ns/f", endpoint="static", methods=["POST"]))
    assert adapter.match("/api/v1/executions/ns/f", method="POST") == ("static", {})
    # at most MATCHES_KEPT, the oldest forgotten first
    for i in range(MATCHES_KEPT + 1):
        adapter.match(f"/api/v1/executions/ns/{i}", method="POST")
    kept = tenant_map._matcher.matches
    assert len(kept) == MATCHES_KEPT and ("", "/api/v1/executions/ns/0", "POST", False) not in kept
