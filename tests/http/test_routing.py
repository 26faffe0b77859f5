"""URL builders compiled on first use (falconet/http/routing.py): none at start-up, the same URLs as
werkzeug's own rules."""
from __future__ import annotations

from typing import Any

from quart.routing import QuartRule
from werkzeug.routing import Map

from falconet.http.routing import LazyBuilderRule


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
