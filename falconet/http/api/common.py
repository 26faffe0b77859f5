"""What every blueprint shares: the engine of the current app, fast JSON responses, public documents."""
from __future__ import annotations

import dataclasses
import json
from datetime import date, datetime
from enum import Enum
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable
from urllib.parse import quote

from quart import Response, current_app, request

from falconet.runtime.kernel.errors import BadRequest
from falconet.runtime.kernel.execution import format_instant, without_private
from falconet.runtime.kernel.limits import json_loads
from falconet.http.multipart import read_body

#: key of the :class:`AppState` in ``app.extensions``
EXTENSION = "falconet"


@dataclasses.dataclass
class AppState:
    engine: Any          # falconet.runtime.kernel.engine.Engine (the facade the API is written against)
    config: Any          # .url, .basic_auth, .data_dir
    upload_dir: Path     # temp folder of streamed uploads (same file system as the storage: moves are renames)


def open_route(view: Any) -> Any:
    """Mark a view as reachable without credentials when basic auth is on (``app.py`` checks the matched
    route's view, never the path): only ``/ping``, ``/health``, ``/api/v1/configs`` and the webhook."""
    view.falconet_open = True
    return view


def is_open_view(view: Any) -> bool:
    return getattr(view, "falconet_open", False) is True


def state() -> AppState:
    return current_app.extensions[EXTENSION]


def engine() -> Any:
    return current_app.extensions[EXTENSION].engine


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return format_instant(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


#: one encoder for every response (``json.dumps`` with options builds a JSONEncoder per call)
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=_default)


def dumps(obj: Any) -> str:
    return _ENCODER.encode(obj)


def json_response(obj: Any, status: int = 200) -> Response:
    """``obj`` as ``application/json`` (keys in insertion order, nulls kept as given)."""
    return Response(dumps(obj), status=status, content_type="application/json")


def content_disposition(filename: str) -> str:
    """``attachment; filename="…"`` for a client-influenced name: characters a quoted header value cannot hold
    (controls, quotes, backslashes, non-ASCII) become ``_`` there and the exact name goes in ``filename*``
    (RFC 6266), so no name can break or inject a header."""
    plain = "".join(c if " " <= c < "\x7f" and c not in '"\\' else "_" for c in filename)
    if plain == filename:
        return f'attachment; filename="{filename}"'
    return f"attachment; filename=\"{plain}\"; filename*=UTF-8''{quote(filename, safe='')}"


async def primed(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """``chunks`` with its first chunk already produced: an error before the first byte (a bad query the
    store refuses) raises in the view and gets its 4xx, instead of breaking a 200 response already begun."""
    try:
        first = await chunks.__anext__()
    except StopAsyncIteration:
        first = b""

    async def all_chunks() -> AsyncIterator[bytes]:
        yield first
        async for chunk in chunks:
            yield chunk
    return all_chunks()


def empty(status: int) -> Response:
    return Response(b"", status=status)


#: Kestra ≥ 0.23 OSS has one tenant, ``main``; its JSON names it on executions, task runs, logs, flows, triggers
TENANT = "main"


def with_tenant(doc: dict[str, Any]) -> dict[str, Any]:
    """A copy of a JSON document with ``tenantId`` first (as Kestra serialises it)."""
    out: dict[str, Any] = {"tenantId": TENANT}
    out.update(doc)
    return out


def public_task_run(tr: dict[str, Any]) -> dict[str, Any]:
    return with_tenant(without_private(tr))


def public_execution(doc: dict[str, Any]) -> dict[str, Any]:
    """The execution JSON as Kestra serialises it: ``tenantId`` on the execution and its task runs, without
    the engine's runtime state of stored documents."""
    doc = without_private(doc)
    out = with_tenant(doc)
    runs = doc.get("taskRunList")
    if runs:
        out["taskRunList"] = [public_task_run(tr) for tr in runs]
    return out


def public_flow(flow: Any, source: bool = False) -> dict[str, Any]:
    """Kestra's Flow JSON (``FlowWithSource`` with ``source``) with ``tenantId``."""
    return with_tenant(flow.to_dict(source=source))


def paged(results: list[Any], total: int) -> Response:
    """Kestra's ``PagedResults``."""
    return json_response({"results": results, "total": total})


def page_slice(items: list[Any], page: int, size: int) -> list[Any]:
    start = (page - 1) * size
    return items[start:start + size]


async def json_object_body(limit: int) -> dict[str, Any]:
    """The request's JSON object body (at most ``limit`` bytes; an empty body is ``{}``); 400 otherwise."""
    raw = await read_body(request, limit)
    if not raw.strip():
        return {}
    try:
        body = json_loads(raw)
    except ValueError as exc:
        raise BadRequest(f"The request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object")
    return body


async def scan_pages(search: Callable[[Any], Awaitable[tuple[list[dict[str, Any]], int]]], query: Any,
                     limit: int) -> list[dict[str, Any]]:
    """The documents of a paged store search (``search(query)`` → ``(page, total)``), page after page from
    ``query.page`` until all are read or at least ``limit`` are (advances ``query.page``)."""
    out: list[dict[str, Any]] = []
    while len(out) < limit:
        page, total = await search(query)
        out.extend(page)
        if not page or len(out) >= total:
            break
        query.page = (query.page or 1) + 1
    return out
