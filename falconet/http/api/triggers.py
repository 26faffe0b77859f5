"""The webhook endpoint and the triggers listing.

``GET|POST|PUT /executions/webhook/{namespace}/{flowId}/{key}`` hands the raw request to
``engine.webhook`` (which resolves the flow, compares the key in constant time, evaluates the trigger's
conditions): 200 with the execution (+ ``url``), 204 when the conditions are not met, 404 for an unknown
flow or key, 409 for a disabled flow. The route stays open when basic auth is on (``open_route``, as in Kestra).
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from quart import Blueprint, request

from falconet.runtime.kernel.errors import BadRequest, IllegalArgument, IllegalState, InvalidEntity, Violation
from falconet.runtime.kernel.limits import json_loads
from falconet.http import filters
from falconet.http.multipart import read_body
from falconet.http.api import params
from falconet.http.api.common import empty, engine, json_response, open_route, page_slice, paged, with_tenant
from falconet.http.api.executions import with_url

bp = Blueprint("triggers", __name__)

WEBHOOK_BODY_LIMIT = 16 * 1024 * 1024


@bp.route("/executions/webhook/<namespace>/<flow_id>/<key>", methods=["GET", "POST", "PUT"])
@open_route
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
        row: dict[str, Any] = {"triggerContext": with_tenant(ctx)}
        if definition is not None:
            row["abstractTrigger"] = definition
        rows.append(row)
    return rows


#: legacy parameters of GET /triggers/search and the trigger by-query routes
SEARCH_PARAMS = filters.PAGING | {"q", "namespace", "flowId", "workerId"}

#: how each Kestra filter field reads a ``{abstractTrigger, triggerContext}`` row
ACCESSORS: dict[str, Any] = {
    "q": lambda r: tuple(r["triggerContext"].get(f) for f in ("namespace", "flowId", "triggerId")),
    "scope": lambda r: filters.scope_of(r["triggerContext"].get("namespace")),
    "namespace": lambda r: r["triggerContext"].get("namespace"),
    "flowId": lambda r: r["triggerContext"].get("flowId"),
    "triggerId": lambda r: r["triggerContext"].get("triggerId"),
    "workerId": lambda r: r["triggerContext"].get("workerId"),
    "startDate": lambda r: r["triggerContext"].get("date"),
    "endDate": lambda r: r["triggerContext"].get("date"),
    "triggerState": lambda r: "DISABLED" if r["triggerContext"].get("disabled") else "ENABLED",
}


async def select_triggers(args: Any, allowed: Any = ()) -> list[dict[str, Any]]:
    """The trigger rows the legacy parameters and ``filters[…]`` select (400 for unknown ones)."""
    where = filters.parse(args, "TRIGGER", SEARCH_PARAMS | set(allowed))
    namespace = params.opt_str(args, "namespace")
    worker = params.opt_str(args, "workerId")
    rows = await _trigger_rows(None, params.opt_str(args, "flowId"), params.opt_str(args, "q"))
    if namespace:
        rows = [r for r in rows if (r["triggerContext"].get("namespace") or "") == namespace
                or (r["triggerContext"].get("namespace") or "").startswith(namespace + ".")]
    if worker:
        rows = [r for r in rows if r["triggerContext"].get("workerId") == worker]
    return [r for r in rows if where.matches(r, ACCESSORS)]


@bp.get("/triggers/search")
async def search_triggers() -> Any:
    """``PagedResults<{abstractTrigger, triggerContext}>``: Kestra's ``filters[…]`` and the legacy ``q``,
    ``namespace`` (prefix), ``flowId``, ``workerId``."""
    page, size, sort = params.paging(request.args)
    rows = await select_triggers(request.args)
    rows = params.sort_items(rows, [f"triggerContext.{s}" for s in sort],
                             ["triggerContext.namespace:asc", "triggerContext.flowId:asc",
                              "triggerContext.triggerId:asc"])
    return paged(page_slice(rows, page, size), len(rows))


@bp.get("/triggers/<namespace>/<flow_id>")
async def flow_triggers(namespace: str, flow_id: str) -> Any:
    """The trigger contexts of one flow, paged. ``namespace`` and ``flowId`` query parameters (Kestra's UI
    repeats the path in them) must agree with the path (400 otherwise)."""
    args = request.args
    filters.check_params(args, filters.PAGING | {"q", "namespace", "flowId"})
    for name, value in (("namespace", namespace), ("flowId", flow_id)):
        if any(given != value for given in args.getlist(name)):
            raise BadRequest(f"Query parameter '{name}' contradicts the path ('{value}')")
    page, size, _ = params.paging(request.args)
    rows = await _trigger_rows(namespace, flow_id, params.opt_str(request.args, "q"))
    return paged(page_slice(rows, page, size), len(rows))


#### Trigger updates: disable, backfill #####################################################################

JSON_LIMIT = 1024 * 1024


async def _json_body() -> Any:
    raw = await read_body(request, JSON_LIMIT)
    try:
        return json_loads(raw or b"null")
    except ValueError as exc:
        raise IllegalArgument(f"Invalid JSON body: {exc}") from None


def _scheduler() -> Any:
    orchestration = engine().orchestration
    if orchestration is None:
        raise IllegalState("Triggers are not running in this server")
    return orchestration.scheduler


def _trigger_key(body: Any) -> tuple[str, str, str]:
    if not isinstance(body, dict):
        raise IllegalArgument("The body must be a trigger object {namespace, flowId, triggerId, …}")
    try:
        return str(body["namespace"]), str(body["flowId"]), str(body["triggerId"])
    except KeyError as exc:
        raise InvalidEntity([Violation(str(exc.args[0]), "must not be null")]) from None


def _instant(name: str, value: Any) -> datetime | None:
    if value in (None, ""):
        return None
    return params.parse_datetime(name, str(value))


@bp.put("/triggers")
async def update_trigger() -> Any:
    """Kestra's ``PUT /triggers``: the body is a trigger context; ``disabled`` enables or disables the
    trigger, a ``backfill`` ``{start, end, inputs, labels}`` starts a backfill. Answers the new context."""
    body = await _json_body()
    namespace, flow_id, trigger_id = _trigger_key(body)
    scheduler = _scheduler()
    ctx = None
    if "disabled" in body and body["disabled"] is not None:
        ctx = await scheduler.set_disabled(namespace, flow_id, trigger_id, bool(body["disabled"]))
    backfill = body.get("backfill")
    if isinstance(backfill, dict):
        start = _instant("backfill.start", backfill.get("start"))
        if start is None:
            raise InvalidEntity([Violation("backfill.start", "must not be null")])
        ctx = await scheduler.set_backfill(namespace, flow_id, trigger_id, start=start,
                                           end=_instant("backfill.end", backfill.get("end")),
                                           inputs=backfill.get("inputs"), labels=backfill.get("labels"))
    if ctx is None:
        raise IllegalArgument("Nothing to update: set `disabled` or `backfill`")
    return json_response(with_tenant(ctx))


@bp.put("/triggers/backfill/pause")
async def pause_backfill() -> Any:
    namespace, flow_id, trigger_id = _trigger_key(await _json_body())
    return json_response(with_tenant(await _scheduler().pause_backfill(namespace, flow_id, trigger_id, True)))


@bp.put("/triggers/backfill/unpause")
async def unpause_backfill() -> Any:
    namespace, flow_id, trigger_id = _trigger_key(await _json_body())
    return json_response(with_tenant(await _scheduler().pause_backfill(namespace, flow_id, trigger_id, False)))


@bp.post("/triggers/backfill/delete")
async def delete_backfill() -> Any:
    namespace, flow_id, trigger_id = _trigger_key(await _json_body())
    return json_response(with_tenant(await _scheduler().delete_backfill(namespace, flow_id, trigger_id)))


@bp.post("/triggers/set-disabled/by-triggers")
async def set_disabled_by_triggers() -> Any:
    """Body ``[{namespace, flowId, triggerId}]``, query ``disabled`` (bool) → ``{"count": n}``."""
    disabled = params.opt_bool(request.args, "disabled", True)
    body = await _json_body()
    if not isinstance(body, list):
        raise IllegalArgument("The body must be a list of triggers")
    keys = [_trigger_key(item) for item in body]
    for namespace, flow_id, trigger_id in keys:
        await _scheduler().set_disabled(namespace, flow_id, trigger_id, disabled)
    return json_response({"count": len(keys)})
