"""/api/v1/flows: create, update, read, revisions, delete, search, validate, namespace update, bulk."""
from __future__ import annotations

import pytest

YAML = {"Content-Type": "application/x-yaml"}

HELLO = """id: hello
namespace: company.team
labels:
  team: data
tasks:
  - id: say
    type: io.kestra.plugin.core.log.Log
    message: hello
"""

OTHER = """id: other
namespace: company.team.sub
description: a described flow
tasks:
  - id: ret
    type: io.kestra.plugin.core.debug.Return
    format: "x"
"""


@pytest.mark.parametrize("prefix", ["/api/v1", "/api/v1/main"])
async def test_create_get_update_revisions_delete(api, prefix):
    status, flow = await api.call("POST", f"{prefix}/flows", data=HELLO, headers=YAML)
    assert status == 200
    assert (flow["id"], flow["namespace"], flow["revision"], flow["source"]) == ("hello", "company.team", 1, HELLO)
    assert flow["labels"] == [{"key": "team", "value": "data"}]

    status, body = await api.call("POST", f"{prefix}/flows", data=HELLO, headers=YAML)
    assert status == 422 and "already exists" in body["message"]

    status, got = await api.call("GET", f"{prefix}/flows/company.team/hello")
    assert status == 200 and got["revision"] == 1 and "source" not in got
    status, got = await api.call("GET", f"{prefix}/flows/company.team/hello?source=true")
    assert got["source"] == HELLO

    same = await api.call("PUT", f"{prefix}/flows/company.team/hello", data=HELLO, headers=YAML)
    assert same[0] == 200 and same[1]["revision"] == 1
    changed = HELLO.replace("message: hello", "message: bye")
    status, v2 = await api.call("PUT", f"{prefix}/flows/company.team/hello", data=changed, headers=YAML)
    assert status == 200 and v2["revision"] == 2

    status, old = await api.call("GET", f"{prefix}/flows/company.team/hello?revision=1&source=true")
    assert status == 200 and old["source"] == HELLO
    status, revs = await api.call("GET", f"{prefix}/flows/company.team/hello/revisions")
    assert status == 200 and [r["revision"] for r in revs] == [1, 2]

    status, task = await api.call("GET", f"{prefix}/flows/company.team/hello/tasks/say")
    assert status == 200 and task["id"] == "say"

    status, _ = await api.call("DELETE", f"{prefix}/flows/company.team/hello")
    assert status == 204
    status, body = await api.call("GET", f"{prefix}/flows/company.team/hello")
    assert status == 404 and body["message"].startswith("Not Found")
    status, deleted = await api.call("GET", f"{prefix}/flows/company.team/hello?allowDeleted=true")
    assert status == 200 and deleted["deleted"] is True
    status, _ = await api.call("DELETE", f"{prefix}/flows/company.team/hello")
    assert status == 404


async def test_flow_errors(api):
    status, body = await api.call("PUT", "/api/v1/flows/company.team/missing", data=HELLO, headers=YAML)
    assert status == 404
    await api.flow(HELLO)
    status, body = await api.call("PUT", "/api/v1/flows/company.team/hello", data=HELLO.replace("id: hello", "id: renamed"),
                                  headers=YAML)
    assert status == 422
    status, body = await api.call("POST", "/api/v1/flows", data="id: x\nnamespace: a\ntasks: []\n", headers=YAML)
    assert status == 422 and body["message"].startswith("Invalid entity")
    assert body["_links"]["self"] == {"href": "/api/v1/flows", "templated": False}
    assert body["_embedded"]["errors"] and "message" in body["_embedded"]["errors"][0]
    status, body = await api.call("POST", "/api/v1/flows", data="{not yaml: [", headers=YAML)
    assert status == 422
    status, body = await api.call("POST", "/api/v1/flows", data=b"\xff\xfe", headers=YAML)
    assert status == 422
    status, body = await api.call("GET", "/api/v1/flows/company.team/hello?revision=0")
    assert status == 422
    status, body = await api.call("GET", "/api/v1/flows/company.team/hello?revision=abc")
    assert status == 422 and "Failed to convert argument [revision]" in body["message"]
    status, body = await api.call("GET", "/api/v1/flows/company.team/hello?revision=9")
    assert status == 404
    status, body = await api.call("GET", "/api/v1/flows/company.team/nope/revisions")
    assert status == 404
    status, body = await api.call("GET", "/api/v1/flows/company.team/hello/tasks/nope")
    assert status == 404


async def test_search_and_listing(api):
    await api.flow(HELLO)
    await api.flow(OTHER)
    await api.flow(HELLO.replace("id: hello", "id: zeta").replace("team: data", "team: ops"))

    status, page = await api.call("GET", "/api/v1/flows/search?namespace=company.team")
    assert status == 200 and page["total"] == 3
    assert [f["id"] for f in page["results"]] == ["hello", "zeta", "other"]
    assert all("source" not in f for f in page["results"])

    status, page = await api.call("GET", "/api/v1/flows/search?q=described")
    assert [f["id"] for f in page["results"]] == ["other"]
    status, page = await api.call("GET", "/api/v1/flows/search?labels=team:ops")
    assert [f["id"] for f in page["results"]] == ["zeta"]
    status, page = await api.call("GET", "/api/v1/flows/search?size=1&page=2&sort=id:desc")
    assert page["total"] == 3 and [f["id"] for f in page["results"]] == ["other"]
    for bad in ("page=0", "size=0", "labels=novalue", "sort=id:sideways"):
        status, body = await api.call("GET", f"/api/v1/flows/search?{bad}")
        assert status == 422, bad

    status, flows = await api.call("GET", "/api/v1/flows/company.team")
    assert status == 200 and [f["id"] for f in flows] == ["hello", "zeta"]
    status, names = await api.call("GET", "/api/v1/flows/distinct-namespaces")
    assert names == ["company.team", "company.team.sub"]
    status, names = await api.call("GET", "/api/v1/flows/distinct-namespaces?q=sub")
    assert names == ["company.team.sub"]


async def test_validate_multi_document_never_4xx(api):
    body = HELLO + "---\n" + "id: bad\nnamespace: company.team\ntasks: []\n"
    status, results = await api.call("POST", "/api/v1/flows/validate", data=body, headers=YAML)
    assert status == 200 and len(results) == 2
    assert not results[0].get("constraints")
    assert results[1]["constraints"]


async def test_namespace_update_and_bulk(api):
    await api.flow(HELLO)
    await api.flow(HELLO.replace("id: hello", "id: old"))
    new = HELLO.replace("id: hello", "id: fresh")
    body = HELLO.replace("message: hello", "message: v2") + "---\n" + new
    status, flows = await api.call("POST", "/api/v1/flows/company.team", data=body, headers=YAML)
    assert status == 200 and [(f["id"], f["revision"]) for f in flows] == [("hello", 2), ("fresh", 1)]
    status, listed = await api.call("GET", "/api/v1/flows/company.team")
    assert sorted(f["id"] for f in listed) == ["fresh", "hello"]  # "old" deleted

    status, body = await api.call("POST", "/api/v1/flows/elsewhere", data=new, headers=YAML)
    assert status == 422
    status, body = await api.call("POST", "/api/v1/flows/company.team",
                                  data=new + "---\nid: broken\nnamespace: company.team\ntasks: []\n", headers=YAML)
    assert status == 422
    status, listed = await api.call("GET", "/api/v1/flows/company.team")
    assert sorted(f["id"] for f in listed) == ["fresh", "hello"]  # nothing applied

    status, flows = await api.call("POST", "/api/v1/flows/bulk?delete=false", data=OTHER, headers=YAML)
    assert status == 200 and [f["id"] for f in flows] == ["other"]
    status, listed = await api.call("GET", "/api/v1/flows/company.team")
    assert len(listed) == 2

    status, res = await api.call("DELETE", "/api/v1/flows/delete/by-ids",
                                 json=[{"namespace": "company.team", "id": "fresh"}, {"namespace": "x", "id": "y"}])
    assert status == 200 and res == {"count": 1}
    status, res = await api.call("DELETE", "/api/v1/flows/delete/by-ids", json={"not": "a list"})
    assert status == 422


async def test_source_search(api):
    await api.flow(HELLO)
    await api.flow(OTHER)
    status, page = await api.call("GET", "/api/v1/flows/source?q=debug.Return")
    assert status == 200 and page["total"] == 1
    row = page["results"][0]
    assert row["model"]["id"] == "other" and row["fragments"] == ["type: io.kestra.plugin.core.debug.Return"]
    status, page = await api.call("GET", "/api/v1/flows/source?namespace=company.team.sub")
    assert [r["model"]["id"] for r in page["results"]] == ["other"]
    status, _ = await api.call("GET", "/api/v1/flows/source?page=0")
    assert status == 422
