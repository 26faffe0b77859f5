"""``/namespaces/{namespace}/kv``: Kestra's key-value store API.

- ``GET …/kv`` → ``[{key, description?, creationDate, updateDate, expirationDate?}]``
- ``GET …/kv/{key}`` → ``{"type": STRING|NUMBER|BOOLEAN|DATETIME|DATE|DURATION|JSON, "value": …}``; 404 when missing
- ``PUT …/kv/{key}`` → body JSON (``application/json``) or text (a text that parses as JSON is JSON);
  header ``ttl`` = ISO-8601 duration; the engine infers the type
- ``DELETE …/kv/{key}`` → ``true``/``false``; ``DELETE …/kv`` with ``{"keys": [...]}`` → ``{"keys": [deleted]}``
"""
from __future__ import annotations

from typing import Any

from quart import Blueprint, request

from falconet.runtime.kernel.errors import InvalidEntity, NotFound, Violation
from falconet.runtime.kernel.limits import json_loads
from falconet.http import filters
from falconet.http.multipart import read_body
from falconet.http.api import params
from falconet.http.api.common import empty, engine, json_response, page_slice, paged

bp = Blueprint("kv", __name__)

VALUE_LIMIT = 8 * 1024 * 1024


def _public(entry: dict[str, Any]) -> dict[str, Any]:
    keep = ("key", "description", "creationDate", "updateDate", "expirationDate")
    return {k: entry[k] for k in keep if entry.get(k) is not None}


#: how each Kestra filter field reads a KV entry (``GET /kv``)
ACCESSORS: dict[str, Any] = {
    "q": lambda e: (e.get("key"), e.get("description")),
    "namespace": lambda e: e.get("namespace"),
    "updated": lambda e: e.get("updateDate"),
}


@bp.get("/namespaces/<namespace>/kv")
async def list_keys(namespace: str) -> Any:
    filters.check_params(request.args, ())
    entries = await engine().store.kv_list(namespace)
    return json_response(sorted((_public(e) for e in entries), key=lambda e: e.get("key", "")))


@bp.get("/kv")
async def list_all_keys() -> Any:
    """Every key of every namespace: ``PagedResults<{namespace, key, description?, creationDate,
    updateDate, expirationDate?}>``, filtered by ``filters[q|namespace|updated][…]``."""
    args = request.args
    where = filters.parse(args, "KV_METADATA", filters.PAGING)
    page, size, sort = params.paging(args)
    rows = [{"namespace": e["namespace"], **_public(e)} for e in await engine().store.kv_list_all()]
    rows = [r for r in rows if where.matches(r, ACCESSORS)]
    rows = params.sort_items(rows, sort, ["namespace:asc", "key:asc"])
    return paged(page_slice(rows, page, size), len(rows))


@bp.get("/namespaces/<namespace>/kv/inheritance")
async def list_keys_with_inheritance(namespace: str) -> Any:
    """``[{namespace, kv: [entries]}]`` for the namespace and each parent, nearest first (Kestra's
    ``KVController.listKeysWithInheritence``)."""
    filters.check_params(request.args, ())
    out: list[dict[str, Any]] = []
    current = namespace
    while current:
        entries = await engine().store.kv_list(current)
        out.append({"namespace": current, "kv": sorted((_public(e) for e in entries), key=lambda e: e.get("key", ""))})
        current = current.rpartition(".")[0]
    return json_response(out)


@bp.get("/namespaces/<namespace>/kv/<key>")
async def get_value(namespace: str, key: str) -> Any:
    value = await engine().kv_get(namespace, key)
    if value is None:
        raise NotFound(f"No value found for key '{key}' in namespace '{namespace}'")
    return json_response({"type": value.get("type"), "value": value.get("value")})


@bp.put("/namespaces/<namespace>/kv/<key>")
async def put_value(namespace: str, key: str) -> Any:
    raw = (await read_body(request, VALUE_LIMIT)).decode("utf-8", "replace")
    content_type = (request.headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()
    try:
        value: Any = json_loads(raw)
    except ValueError as exc:
        if content_type == "application/json":
            raise InvalidEntity([Violation("value", f"the body is not valid JSON: {exc}")]) from None
        value = raw
    ttl = request.headers.get("ttl") or None
    await engine().kv_put(namespace, key, value, ttl=ttl)
    return empty(200)


@bp.delete("/namespaces/<namespace>/kv/<key>")
async def delete_value(namespace: str, key: str) -> Any:
    return json_response(bool(await engine().kv_delete(namespace, key)))


@bp.delete("/namespaces/<namespace>/kv")
async def delete_values(namespace: str) -> Any:
    try:
        body = json_loads(await read_body(request, VALUE_LIMIT) or b"{}")
    except ValueError:
        raise InvalidEntity([Violation("keys", "the body is not valid JSON")]) from None
    keys = body.get("keys") if isinstance(body, dict) else None
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise InvalidEntity([Violation("keys", "expected {\"keys\": [string, ...]}")])
    deleted = [k for k in keys if await engine().kv_delete(namespace, k)]
    return json_response({"keys": deleted})
