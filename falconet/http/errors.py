"""Kestra's error bodies and the mapping from exceptions to HTTP statuses.

Every error the API returns has Micronaut's ``JsonError`` shape, as Kestra's ``ErrorController`` writes it::

    {"message": "Not Found: Flow not found",
     "_links": {"self": {"href": "/api/v1/executions/webhook/a/b/c", "templated": false}},
     "_embedded": {"errors": [{"message": "...", "path": "..."}]}}     # only for constraint violations

=====================================  ======  =======================================
exception                              status  message
=====================================  ======  =======================================
NotFound                               404     ``Not Found: <msg>``
IllegalState                           409     ``Illegal state: <msg>``
IllegalArgument                        422     ``Illegal argument: <msg>``
InvalidEntity / FlowValidationError    422     ``Invalid entity: <violations, joined>``
BadRequest                             400     ``Bad Request: <msg>``
PayloadTooLarge                        413     ``Request Entity Too Large: <msg>`` (Micronaut's wording)
Unavailable                            503     ``Service Unavailable: <msg>`` (a cluster node did not answer)
werkzeug HTTPException (404, 405 …)    its     its description
anything else                          500     ``Internal Server Error: <type>`` (traceback logged)
=====================================  ======  =======================================
"""
from __future__ import annotations

import json
import logging
from typing import Any, Mapping

from quart import Response, has_request_context, has_websocket_context, request, websocket
from werkzeug.exceptions import HTTPException

from falconet.runtime.kernel.errors import (
    BadRequest, IllegalArgument, IllegalState, InvalidEntity, NotFound, PayloadTooLarge, Unavailable,
)

log = logging.getLogger("falconet.http")

_PREFIX: list[tuple[type[Exception], int, str]] = [
    (NotFound, 404, "Not Found"),
    (IllegalState, 409, "Illegal state"),
    (IllegalArgument, 422, "Illegal argument"),
    (InvalidEntity, 422, "Invalid entity"),
    (BadRequest, 400, "Bad Request"),
    (PayloadTooLarge, 413, "Request Entity Too Large"),
    (Unavailable, 503, "Service Unavailable"),
]


#### Bodies #################################################################################################

def current_path() -> str:
    """The path of the request (or websocket) being handled, for ``_links.self.href``."""
    if has_request_context():
        return request.full_path.rstrip("?") if request.query_string else request.path
    if has_websocket_context():
        return websocket.path
    return ""


def error_body(message: str, href: str, errors: list[dict[str, str]] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"message": message, "_links": {"self": {"href": href, "templated": False}}}
    if errors:
        body["_embedded"] = {"errors": errors}
    return body


def error_response(status: int, message: str, *, errors: list[dict[str, str]] | None = None,
                   headers: Mapping[str, str] | None = None) -> Response:
    """A Kestra JSON error response for the current request."""
    body = json.dumps(error_body(message, current_path(), errors), ensure_ascii=False)
    response = Response(body, status=status, content_type="application/json")
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


#### Exception mapping ######################################################################################

def status_and_message(exc: BaseException) -> tuple[int, str, list[dict[str, str]] | None]:
    """(status, Kestra message, embedded errors) for an engine exception; (500, …) for anything unknown."""
    if isinstance(exc, InvalidEntity):
        violations = exc.violations
        text = ", ".join(str(v) for v in violations) or "invalid"
        errors = [{"message": v.message, "path": v.path} for v in violations]
        return 422, f"Invalid entity: {text}", errors
    for cls, status, prefix in _PREFIX:
        if isinstance(exc, cls):
            return status, f"{prefix}: {exc}", None
    return 500, f"Internal Server Error: {type(exc).__name__}", None


def unwrap_group(exc: BaseException) -> BaseException:
    """The single meaningful exception inside (nested) exception groups raised by trio nurseries."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


def response_for_exception(exc: BaseException) -> Response:
    """Turn any exception escaping a view into a Kestra error response (never re-raises)."""
    exc = unwrap_group(exc)
    if isinstance(exc, HTTPException):
        status = exc.code or 500
        name = exc.name if status != 404 else "Page Not Found"
        method = request.method if has_request_context() else ""
        message = name if status != 405 else f"Method Not Allowed: {method}".rstrip(": ")
        return error_response(status, message)
    status, message, errors = status_and_message(exc)
    if status == 500:
        log.error("Unhandled error on %s", current_path(), exc_info=exc)
    return error_response(status, message, errors=errors)
