"""What Quart's per-request machinery costs a request beyond its view, as the app configures it
(``falconet/http/app.py``). Counted, not timed (``benchmarks/bench_http.py`` times them)."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from quart import session
from quart.ctx import RequestContext
from quart.sessions import NullSession, SecureCookieSessionInterface
from quart.wrappers.base import BaseRequestWebsocket
from werkzeug.datastructures import ImmutableMultiDict
from werkzeug.exceptions import BadRequestKeyError

import falconet
from falconet.http.api import params
from falconet.http.app import FalconetRequest, NoSessions

from .conftest import YAML

FLOW = """id: two
namespace: company.team
tasks:
  - id: out
    type: io.kestra.plugin.core.output.OutputValues
    values:
      v: hello
"""


PACKAGE = Path(falconet.__file__).parent


@pytest.fixture
def split_blueprints(monkeypatch: Any) -> list[str | None]:
    """Each time Quart splits a request's endpoint into its blueprints, the endpoint."""
    calls: list[str | None] = []
    quarts = BaseRequestWebsocket.blueprints

    def counted(request: Any) -> list[str]:
        calls.append(request.endpoint)
        return quarts.fget(request)

    monkeypatch.setattr(BaseRequestWebsocket, "blueprints", property(counted))
    return calls


async def test_a_request_splits_its_blueprints_once(client, split_blueprints):
    # Quart reads them before the view, after it and at teardown (three splits per request before)
    response = await client.get("/api/v1/flows/search")
    assert response.status_code == 200
    assert split_blueprints == ["flows.search_flows"]
    split_blueprints.clear()
    response = await client.get("/api/v1/main/executions/nope")   # the tenant copy, an error handler
    assert response.status_code == 404
    assert split_blueprints == ["main_executions.get_execution"]


async def test_the_blueprints_follow_the_matched_rule(app):
    async with app.test_request_context("/api/v1/flows/search"):
        from quart import request
        assert isinstance(request, FalconetRequest)
        assert request.blueprints == ["flows"]
        request.url_rule = None
        assert request.blueprints == []


async def test_a_request_gets_the_null_session_without_a_signing_key_lookup(app, client, monkeypatch):
    looked_up: list[Any] = []
    monkeypatch.setattr(SecureCookieSessionInterface, "get_signing_serializer",
                        lambda self, app: looked_up.append(app))
    seen: list[Any] = []

    @app.get("/__test__/session")
    async def read_session() -> Any:
        seen.append(session._get_current_object())  # type: ignore[attr-defined]
        with pytest.raises(RuntimeError):   # a null session refuses writes, as Quart's without a key
            session["x"] = 1
        return "ok"

    assert isinstance(app.session_interface, NoSessions)
    response = await client.get("/__test__/session", headers={"Cookie": "session=abc"})
    assert response.status_code == 200
    assert "Set-Cookie" not in response.headers
    assert looked_up == [] and type(seen[0]) is NullSession


async def test_missing_query_parameters_build_no_exception(client, monkeypatch):
    built: list[Any] = []
    werkzeugs = BadRequestKeyError.__init__

    def counted(self: Any, *args: Any, **kwargs: Any) -> None:
        built.append(args)
        werkzeugs(self, *args, **kwargs)

    monkeypatch.setattr(BadRequestKeyError, "__init__", counted)
    none = ImmutableMultiDict()
    assert params.opt_bool(none, "wait", False) is False
    assert params.opt_int(none, "revision", None, minimum=1) is None
    assert params.opt_datetime(none, "scheduleDate") is None
    assert params.opt_str(none, "q") is None
    with pytest.raises(Exception, match=r"Required QueryValue \[id\]"):
        params.required(none, "id")
    assert built == []
    given = ImmutableMultiDict([("wait", "true"), ("revision", "2"), ("q", ""), ("q", "x")])
    assert params.opt_bool(given, "wait", False) is True
    assert params.opt_int(given, "revision") == 2
    assert params.opt_str(given, "q") is None        # the first value counts, as MultiDict.get's
    assert built == []


async def test_creating_an_execution_answers_as_before(client):
    assert (await client.post("/api/v1/flows", data=FLOW, headers=YAML)).status_code == 200
    response = await client.post("/api/v1/executions/company.team/two?wait=true&revision=1")
    assert response.status_code == 200
    doc = await response.get_json()
    assert doc["state"]["current"] == "SUCCESS" and doc["flowRevision"] == 1
    assert doc["url"].endswith(f"/ui/executions/company.team/two/{doc['id']}")
    response = await client.post("/api/v1/executions/company.team/two?revision=abc")
    assert response.status_code == 422


async def test_creating_an_execution_looks_its_request_up_twice(client, monkeypatch):
    """The create view reads the request through Quart's context proxy once, and once more for the ``url``
    (each read of ``request.x`` is a context lookup: there were six)."""
    assert (await client.post("/api/v1/flows", data=FLOW, headers=YAML)).status_code == 200
    lookups: list[str] = []
    quarts = RequestContext.request

    def counted(context: Any) -> Any:
        frame = sys._getframe(1)
        while frame is not None and ("werkzeug" in frame.f_code.co_filename or "quart" in frame.f_code.co_filename):
            frame = frame.f_back
        if frame is not None and Path(frame.f_code.co_filename).is_relative_to(PACKAGE):
            lookups.append(frame.f_code.co_name)
        return quarts.fget(context)

    monkeypatch.setattr(RequestContext, "request", property(counted))
    response = await client.post("/api/v1/executions/company.team/two")
    assert response.status_code == 200
    assert lookups == ["create_execution", "execution_url"]
