"""The Quart-Trio application: Kestra's ``/api/v1`` (and ``/api/v1/main``), SSE, websockets, the UI.

``create_app(engine, config=engine.config)`` returns an app bound to one running engine. Every
``/api/v1`` blueprint is registered twice — under ``/api/v1`` and under the tenant form
``/api/v1/main`` (Kestra ≥ 0.23 OSS has the single tenant ``main``); ``/api/v1/configs``, ``/ping`` and
``/health`` exist once, as in Kestra.

Errors: every exception escaping a view becomes Kestra's JSON error body (:mod:`falconet.http.errors`);
an unexpected one is logged with its traceback and answered 500 — never a bare HTML page.

Auth: when ``config.basic_auth`` is ``(user, password)``, every request needs ``Authorization: Basic …``
(otherwise 401 with ``WWW-Authenticate: Basic``) unless the *route it matched* is an open one — views
marked :func:`~.api.common.open_route`: ``/ping``, ``/health``, ``/api/v1/configs`` and the webhook route
``/api/v1[/main]/executions/webhook/{namespace}/{id}/{key}``, as in Kestra. Paths are never compared as
strings, so ``/api/v1/executions/webhook/{flowId}`` (an execution of a flow in a namespace called
``webhook``) or an unmatched path (404/405) asks for credentials too. The credentials are compared with
:func:`hmac.compare_digest`.
"""
from __future__ import annotations

import base64
import binascii
import hmac
import importlib
from pathlib import Path
from typing import Any

from quart import Response, request, websocket
from quart.sessions import NullSession, SessionInterface
from quart_trio import QuartTrio

from falconet.http.api import (
    dashboards, executions, executions_bulk, executions_views, extras, files, flows, flows_more, kv, live, logs,
    metrics, misc, namespaces, openapi, plugins, stats, triggers, triggers_bulk,
)
from falconet.http.api.common import EXTENSION, AppState, is_open_view
from falconet.http.errors import error_response, response_for_exception
from falconet.http.guard import BUFFER_LIMIT, BoundedRequest
from falconet.http.routing import LazyBuilderRule, TenantMap

API_PREFIXES = ("/api/v1", "/api/v1/main")
API_BLUEPRINTS = (flows.bp, executions.bp, files.bp, logs.bp, metrics.bp, kv.bp, triggers.bp, plugins.bp, namespaces.bp,
                  stats.bp, extras.bp, live.bp, executions_bulk.bp, executions_views.bp, flows_more.bp,
                  triggers_bulk.bp, dashboards.bp)
REALM = 'Basic realm="Falconet"'


class FalconetRequest(BoundedRequest):
    """The app's request. Quart splits the matched endpoint into its blueprints' names again each time it
    looks for hook functions (before and after the view, at teardown, for an error handler); here they are
    split once per matched rule."""

    _blueprints: tuple[Any, list[str]] = (None, [])   # (url_rule, its blueprints); no rule: none

    @property
    def blueprints(self) -> list[str]:
        rule, names = self._blueprints
        if rule is not self.url_rule:
            names = BoundedRequest.blueprints.fget(self)  # type: ignore[attr-defined]
            self._blueprints = (self.url_rule, names)
        return names


class NoSessions(SessionInterface):
    """Falconet keeps no sessions (no ``SECRET_KEY``, no cookie): each request gets Quart's null session at
    once, without looking for a signing key first (Quart's cookie sessions find none, then make one)."""

    async def open_session(self, app: Any, request: Any) -> NullSession:
        return self.null_session_class()   # Quart never saves a null session (save_session stays abstract)


class FalconetApp(QuartTrio):
    """QuartTrio whose URL builders compile on first use and whose ``/api/v1/main`` routes share the states
    of the ``/api/v1`` routes they copy (``falconet/http/routing.py``)."""

    url_map_class = TenantMap
    url_rule_class = LazyBuilderRule  # type: ignore[assignment]  # Quart's own is typed as werkzeug's Rule
    request_class = FalconetRequest
    session_interface = NoSessions()  # type: ignore[assignment]  # Quart types it as its cookie interface


def create_app(engine: Any, *, config: Any) -> QuartTrio:
    """A new app serving ``engine``. ``config`` supplies ``url`` (base of the ``url`` fields; None = the
    request's host), ``basic_auth`` (``(user, password)`` or None) and ``data_dir`` (upload temp files go
    to ``<data_dir>/tmp/uploads``, next to the storage, so handing a file to the engine is a rename)."""
    app = FalconetApp("falconet")
    app.config.update(
        MAX_CONTENT_LENGTH=BUFFER_LIMIT,   # body bytes buffered for a view (guard.py); views set their own caps
        BODY_TIMEOUT=3600,         # a big upload on a slow link
        RESPONSE_TIMEOUT=None,     # SSE, log downloads and ?wait=true answers are long-lived
        JSON_SORT_KEYS=False,
    )
    app.json.sort_keys = False  # type: ignore[attr-defined]
    data_dir = Path(getattr(config, "data_dir", None) or ".")
    app.extensions[EXTENSION] = AppState(engine=engine, config=config, upload_dir=data_dir / "tmp" / "uploads")

    for bp in API_BLUEPRINTS:
        for prefix in API_PREFIXES:
            name = bp.name if prefix == "/api/v1" else f"{prefix.rsplit('/', 1)[1]}_{bp.name}"
            app.register_blueprint(bp, url_prefix=prefix, name=name)
    app.register_blueprint(misc.root_bp)
    app.register_blueprint(openapi.root_bp)
    ui = _ui_blueprint()
    if ui is not None:
        app.register_blueprint(ui)

    app.register_error_handler(Exception, _on_error)
    basic_auth = getattr(config, "basic_auth", None)
    if basic_auth:
        expected = _credentials(*basic_auth)

        @app.before_request
        async def _auth_request() -> Response | None:
            return _check_auth(app, request.endpoint, request.headers.get("Authorization"), expected)

        @app.before_websocket
        async def _auth_websocket() -> Response | None:
            return _check_auth(app, websocket.endpoint, websocket.headers.get("Authorization"), expected)
    return app


def _ui_blueprint() -> Any:
    """The UI engineer's ``falconet.http.ui.ui_blueprint`` when that module exists."""
    try:
        module = importlib.import_module("falconet.http.ui")
    except ModuleNotFoundError as exc:
        if exc.name in ("falconet.http.ui",):
            return None
        raise
    return getattr(module, "ui_blueprint", None)


async def _on_error(exc: Exception) -> Response:
    return response_for_exception(exc)


#### Basic auth #############################################################################################

def _credentials(user: str, password: str) -> bytes:
    return f"{user}:{password}".encode("utf-8")


def is_open(app: QuartTrio, endpoint: str | None) -> bool:
    """True when the matched route (``endpoint``; None when nothing matched) is an open one."""
    return endpoint is not None and is_open_view(app.view_functions.get(endpoint))


def _check_auth(app: QuartTrio, endpoint: str | None, header: str | None, expected: bytes) -> Response | None:
    """None when the request may go on; a 401 response otherwise."""
    if is_open(app, endpoint):
        return None
    given = b""
    if header and header[:6].lower() == "basic ":
        try:
            given = base64.b64decode(header[6:].strip(), validate=True)
        except (binascii.Error, ValueError):
            given = b""
    # compare_digest on the whole "user:password" is constant-time for equal lengths and does not
    # short-circuit between user and password
    if given and hmac.compare_digest(given, expected):
        return None
    return error_response(401, "Unauthorized", headers={"WWW-Authenticate": REALM})
