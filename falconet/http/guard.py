"""Request bodies and keep-alive connections no client can abuse.

Two guards, both about the request body a view did not (fully) read:

- :class:`BoundedRequest` (the app's request class). Quart copies the body from the socket into a buffer
  while the view runs, whether the view reads it or not. That buffer is capped at
  ``MAX_CONTENT_LENGTH`` (:data:`BUFFER_LIMIT`): past it the rest of the body is discarded and a view
  awaiting the whole body gets a 413. The cap applies to what is *buffered*, not to the declared size:
  views that want the whole body read it with ``read_body(request, limit)`` (their own, smaller limit, a
  413 with Kestra's body), and uploads consume it chunk by chunk so the buffer stays small whatever
  their size.
- :class:`ConnectionGuard` (ASGI middleware in front of the app under hypercorn). When a response starts
  before the request body was fully received — a request refused early (401, 404, 413…) — either the
  rest of the body is drained before the response ends (at most :data:`DRAIN_LIMIT` bytes, within
  :data:`DRAIN_TIMEOUT`), so the connection serves the next request, or, for a larger or unknown
  remainder, the response says ``Connection: close`` and the connection is closed after it. Left alone,
  hypercorn (0.18) either drops such a connection without a word (the client's next request on it
  fails) or, once the app stopped reading, wedges it: its per-request queue fills with body chunks
  nobody reads and the next request is never answered.
  A ``Content-Length`` above :data:`MAX_REQUEST_SIZE` (Kestra's ``max-request-size``) is refused at
  once with a 413.
"""
from __future__ import annotations

import json
import math
from typing import Any, Awaitable, Callable

import trio
from quart_trio.wrappers.request import TrioBody, TrioRequest

from falconet.runtime.kernel.errors import PayloadTooLarge
from falconet.http.errors import error_body

#: request-body bytes Quart may hold for a view that has not consumed them yet
BUFFER_LIMIT = 16 * 1024 * 1024
#: a body still unread when the response starts is drained (keep-alive kept) up to this many bytes …
DRAIN_LIMIT = 1024 * 1024
#: … arriving within this many seconds; beyond either, the connection is closed
DRAIN_TIMEOUT = 5.0
#: the largest request the server accepts at all (uploads included), as Kestra's default
MAX_REQUEST_SIZE = 10 * 1024 ** 3

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


#### The buffered body ######################################################################################

class _BufferCappedBody(TrioBody):
    """Quart's body buffer, capped in buffered bytes only: a declared ``Content-Length`` above the cap is
    the view's business (uploads stream far more than the cap through it)."""

    def __init__(self, expected_content_length: int | None, max_content_length: int | None) -> None:
        super().__init__(None, max_content_length)


class BoundedRequest(TrioRequest):
    body_class = _BufferCappedBody


#### The connection guard ###################################################################################

class _BodyProgress:
    """What the app has received of the request body so far."""

    def __init__(self, declared: int | None):
        self.declared = declared
        self.received = 0
        self.complete = trio.Event()   # set once the whole body (or a disconnect) arrived
        if declared == 0:              # no body to wait for (h11 reads none)
            self.complete.set()

    @property
    def done(self) -> bool:
        return self.complete.is_set()

    def see(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            if not message.get("more_body", False):
                self.complete.set()
        elif message["type"] == "http.disconnect":
            self.complete.set()

    def drainable(self) -> bool:
        return self.declared is not None and self.declared - self.received <= DRAIN_LIMIT


def _content_length(scope: dict[str, Any]) -> int | None:
    """The declared body size: ``Content-Length``, 0 without one, None for a chunked body (h11 refuses
    malformed framing before the app sees the request)."""
    length = 0
    for name, value in scope.get("headers", ()):
        name = name.lower()
        if name == b"transfer-encoding":
            return None
        if name == b"content-length":
            try:
                length = int(value)
            except ValueError:
                return None
    return length


class ConnectionGuard:
    """ASGI middleware: see the module docstring. ``nursery`` hosts the short-lived tasks that discard
    what is left of a refused body while hypercorn closes the connection."""

    def __init__(self, app: Any, nursery: trio.Nursery):
        self.app = app
        self.nursery = nursery

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body = _BodyProgress(_content_length(scope))
        if body.declared is not None and body.declared > MAX_REQUEST_SIZE:
            await self._refuse_too_large(scope, send, body.declared)
            self.nursery.start_soon(_discard_until_disconnect, receive)
            return
        draining = False

        async def tracked_receive() -> dict[str, Any]:
            message = await receive()
            body.see(message)
            return message

        async def guarded_send(message: dict[str, Any]) -> None:
            nonlocal draining
            if message["type"] == "http.response.start" and not body.done:
                # a 408 answers a client that went silent: waiting for the rest of its body is pointless
                draining = body.drainable() and message.get("status") != 408
                if not draining:
                    message = dict(message, headers=[*message.get("headers", ()), (b"connection", b"close")])
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                if draining and not body.done:
                    # hypercorn closes the connection at the end of a response whose request body is
                    # not all in: let the app's body reader take the rest first (it discards beyond
                    # its buffer)
                    with trio.move_on_after(DRAIN_TIMEOUT):
                        await body.complete.wait()
                # The last send runs hypercorn's end of request: recycle or close the connection. It
                # hands the app a disconnect, on which quart-trio cancels this very task: unshielded,
                # the close (or the keep-alive timer's restart) would be cancelled half-way and the
                # connection left open with nobody reading it. Handing over the disconnect waits while
                # the app's queue is full of body it did not read: bounded then; with the whole body
                # received the queue is empty and nothing in the send waits (no deadline to register).
                deadline = math.inf if body.done else trio.current_time() + DRAIN_TIMEOUT
                with trio.CancelScope(shield=True, deadline=deadline):
                    await send(message)
                return
            await send(message)

        await self.app(scope, tracked_receive, guarded_send)
        if not body.done:
            # an app that ended without completing its response: hypercorn answers for it and closes the
            # connection; keep its per-request queue moving until then so that never blocks
            self.nursery.start_soon(_discard_until_disconnect, receive)

    async def _refuse_too_large(self, scope: dict[str, Any], send: Send, declared: int) -> None:
        error = PayloadTooLarge(MAX_REQUEST_SIZE, declared)
        payload = json.dumps(error_body(f"Request Entity Too Large: {error}", scope.get("path", ""))).encode()
        await send({"type": "http.response.start", "status": 413, "headers": [
            (b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()),
            (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": payload, "more_body": False})


async def _discard_until_disconnect(receive: Receive) -> None:
    with trio.move_on_after(2 * DRAIN_TIMEOUT):
        while (await receive())["type"] != "http.disconnect":
            pass
