"""The webhook endpoint and the triggers listing.

``GET|POST|PUT /executions/webhook/{namespace}/{flowId}/{key}`` hands the raw request to
``engine.webhook`` (which resolves the flow, compares the key in constant time, evaluates the trigger's
conditions): 200 with the execution (+ ``url``), 204 when the conditions are not met, 404 for an unknown
flow or key, 409 for a disabled flow. The route stays open when basic auth is on (see ``app.py``).
"""
from __future__ import annotations

from typing import Any

from quart import Blueprint, request

from ..multipart import read_body
from . import params
from .common import empty, engine, json_response, page_slice, paged
from .executions import with_url

bp = Blueprint("triggers", __name__)

WEBHOOK_BODY_LIMIT = 16 * 1024 * 1024


@bp.route("/executions/webhook/<namespace>/<flow_id>/<key>", methods=["GET", "POST", "PUT"])
async def webhook(namespace: str, flow_id: str, key: str) -> Any:
    body = await read_body(request, WEBHOOK_BODY_LIMIT)
    headers: dict[str, list[str]] = {}
    for name, value in request.headers.items():
        headers.setdefault(name.lower(), []).append(value)
    parameters = {name: request.args.getlist(name) for name in request.args.keys()}
    doc = await engine().webhook(namespace, flow_id, key, method=request.method, body=body,
                                 headers=headers, parameters=parameters)
    if doc is None:
        return empty(204)
    return json_response(with_url(doc))


#### Triggers listing #######################################################################################

async def _trigger_rows(namespace: str | None, flow_id: str | None, q: str | None) -> list[dict[str, Any]]:
    """``{abstractTrigger, triggerContext}`` for every stored trigger context, the definition taken from
    the flow's latest revision (absent when the flow or the trigger no longer exists)."""
    eng = engine()
    contexts = await eng.store.list_triggers(namespace, flow_id)
    flows: dict[tuple[str, str], Any] = {}
    rows = []
    for ctx in contexts:
        key = (ctx.get("namespace"), ctx.get("flowId"))
        if key not in flows:
            flows[key] = await eng.get_flow(*key)
        flow = flows[key]
        definition = None
        if flow is not None:
            for raw in flow.raw.get("triggers") or []:
                if isinstance(raw, dict) and raw.get("id") == ctx.get("triggerId"):
                    definition = raw
        if q and not any(q.lower() in str(ctx.get(f) or "").lower() for f in ("namespace", "flowId", "triggerId")):
            continue
        row: dict[str, Any] = {"triggerContext": ctx}
        if definition is not None:
            row["abstractTrigger"] = definition
        rows.append(row)
    return rows


@bp.get("/triggers/search")
async def search_triggers() -> Any:
    """``PagedResults<{abstractTrigger, triggerContext}>`` filtered by ``q``, ``namespace`` (prefix), ``flowId``."""
    args = request.args
    page, size, sort = params.paging(args)
    namespace = params.opt_str(args, "namespace")
    rows = await _trigger_rows(None, params.opt_str(args, "flowId"), params.opt_str(args, "q"))
    if namespace:
        rows = [r for r in rows if (r["triggerContext"].get("namespace") or "") == namespace
                or (r["triggerContext"].get("namespace") or "").startswith(namespace + ".")]
    rows = params.sort_items(rows, [f"triggerContext.{s}" for s in sort],
                             ["triggerContext.namespace:asc", "triggerContext.flowId:asc", "triggerContext.triggerId:asc"])
    return paged(page_slice(rows, page, size), len(rows))


@bp.get("/triggers/<namespace>/<flow_id>")
async def flow_triggers(namespace: str, flow_id: str) -> Any:
    """The trigger contexts of one flow, paged."""
    page, size, _ = params.paging(request.args)
    rows = await _trigger_rows(namespace, flow_id, params.opt_str(request.args, "q"))
    return paged(page_slice(rows, page, size), len(rows))
