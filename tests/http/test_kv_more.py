"""``GET /kv`` (every namespace's keys) and ``GET /namespaces/{ns}/kv/inheritance``."""
from __future__ import annotations


async def test_all_keys_and_inheritance(api, engine):
    await engine.kv_put("company", "root_key", "r")
    await engine.kv_put("company.team", "team_key", 1, description="d")
    await engine.kv_put("company.team.sub", "leaf", True)
    await engine.kv_put("other", "x", "y")
    status, body = await api.call("GET", "/api/v1/kv?size=2&page=2")
    assert status == 200 and body["total"] == 4
    assert [(e["namespace"], e["key"]) for e in body["results"]] == [("company.team.sub", "leaf"), ("other", "x")]
    status, body = await api.call("GET", "/api/v1/main/namespaces/company.team.sub/kv/inheritance")
    assert status == 200
    assert [(n["namespace"], [e["key"] for e in n["kv"]]) for n in body] == [
        ("company.team.sub", ["leaf"]), ("company.team", ["team_key"]), ("company", ["root_key"])]
    assert body[1]["kv"][0]["description"] == "d" and "value" not in body[1]["kv"][0]
    status, body = await api.call("GET", "/api/v1/namespaces/company/kv?q=x")
    assert status == 400 and "q" in body["message"]
