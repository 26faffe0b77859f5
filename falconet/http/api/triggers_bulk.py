"""Kestra's trigger actions beyond ``PUT /triggers``: unlock, restart and delete (one, by triggers, by query),
backfill pause/unpause/delete by triggers and by query, set-disabled by query, CSV export.

A trigger is addressed by ``{namespace, flowId, triggerId}`` (path or body items). A query selects with the
legacy ``q``/``namespace``/``flowId``/``workerId`` and Kestra's ``filters[…]`` (``TRIGGER`` fields; the
2.0 ``DELETE /triggers/delete/by-query`` also takes them as a JSON body ``{"filters": [{field, operation,
value}]}``). Bulk routes answer ``{"count": n}`` of the triggers actually changed; an unknown parameter or
filter is a 400 before anything changes.

Unlock clears the context's ``executionId`` and ``evaluateRunningDate`` (409 when neither is set: "not
locked"); restart clears ``evaluateRunningDate``, ``workerId`` and ``date`` so the trigger is evaluated
afresh; delete removes the stored context (the scheduler creates a fresh one from the flow).
"""
from __future__ import annotations

import csv
import io
from typing import Any, Awaitable, Callable

from quart import Blueprint, Response, request

from falconet.runtime.kernel.errors import IllegalArgument, IllegalState, InvalidEntity, NotFound, Violation
from falconet.http import filters
from falconet.http.api import params
from falconet.http.api.common import empty, engine, json_response, with_tenant
from falconet.http.api.triggers import ACCESSORS, _json_body, _scheduler, _trigger_key, select_triggers
from falconet.runtime.orchestration.scheduler import update_context

bp = Blueprint("triggers_bulk", __name__)

Key = tuple[str, str, str]


async def _keys_body() -> list[Key]:
    body = await _json_body()
    if not isinstance(body, list):
        raise InvalidEntity([Violation("body", "expected a list of {namespace, flowId, triggerId}")])
    return [_trigger_key(item) for item in body]


async def _keys_query(allowed: tuple[str, ...] = ()) -> list[Key]:
    rows = await select_triggers(request.args, allowed)
    return [(r["triggerContext"]["namespace"], r["triggerContext"]["flowId"], r["triggerContext"]["triggerId"])
            for r in rows]


async def _count(keys: list[Key], action: Callable[[Key], Awaitable[Any]]) -> Any:
    """Apply ``action`` to each key; one that cannot take it (not locked, no backfill, gone) is skipped."""
    count = 0
    for key in keys:
        try:
            await action(key)
        except (NotFound, IllegalState, IllegalArgument):
            continue
        count += 1
    return json_response({"count": count})


#### Unlock, restart, delete ################################################################################

def _dropping(*fields: str, locked: bool = False) -> Callable[[dict[str, Any]], None]:
    """A change of a stored context (see :func:`update_context`) removing ``fields``; with ``locked``,
    IllegalState unless the trigger is locked (a running execution or evaluation)."""
    def change(ctx: dict[str, Any]) -> None:
        if locked and not ctx.get("executionId") and not ctx.get("evaluateRunningDate"):
            raise IllegalState("Trigger is not locked")
        for field in fields:
            ctx.pop(field, None)
    return change


async def _unlock(key: Key) -> dict[str, Any]:
    return await update_context(engine(), key, _dropping("executionId", "evaluateRunningDate", locked=True))


async def _restart(key: Key) -> dict[str, Any]:
    ctx = await update_context(engine(), key, _dropping("evaluateRunningDate", "workerId", "date"))
    _wake()
    return ctx


async def _delete(key: Key) -> None:
    if not await engine().store.delete_trigger(*key):
        raise NotFound(f"Trigger '{'.'.join(key)}' not found")
    _wake()


def _wake() -> None:
    orchestration = engine().orchestration
    if orchestration is not None:
        orchestration.scheduler.wake()


@bp.post("/triggers/<namespace>/<flow_id>/<trigger_id>/unlock")
async def unlock(namespace: str, flow_id: str, trigger_id: str) -> Any:
    filters.check_params(request.args, ())
    return json_response(with_tenant(await _unlock((namespace, flow_id, trigger_id))))


@bp.post("/triggers/unlock/by-triggers")
async def unlock_by_triggers() -> Any:
    return await _count(await _keys_body(), _unlock)


@bp.post("/triggers/unlock/by-query")
async def unlock_by_query() -> Any:
    return await _count(await _keys_query(), _unlock)


@bp.post("/triggers/<namespace>/<flow_id>/<trigger_id>/restart")
async def restart(namespace: str, flow_id: str, trigger_id: str) -> Any:
    filters.check_params(request.args, ())
    return json_response(with_tenant(await _restart((namespace, flow_id, trigger_id))))


@bp.delete("/triggers/<namespace>/<flow_id>/<trigger_id>")
async def delete(namespace: str, flow_id: str, trigger_id: str) -> Any:
    filters.check_params(request.args, ())
    await _delete((namespace, flow_id, trigger_id))
    return empty(204)


@bp.delete("/triggers/delete/by-triggers")
async def delete_by_triggers() -> Any:
    return await _count(await _keys_body(), _delete)


@bp.delete("/triggers/delete/by-query")
async def delete_by_query() -> Any:
    """Query-string filters, or (Kestra 2.0) a JSON body ``{"filters": [...]}``; both hold when both given."""
    keys = await _keys_query()
    body = await _json_body()
    if body is not None:
        if not isinstance(body, dict) or set(body) - {"filters"}:
            raise InvalidEntity([Violation("body", "expected {\"filters\": [{field, operation, value}]}")])
        where = filters.parse_json(body.get("filters"), "TRIGGER")
        rows = {(r["triggerContext"]["namespace"], r["triggerContext"]["flowId"], r["triggerContext"]["triggerId"]): r
                for r in await select_triggers(request.args)}
        keys = [k for k in keys if where.matches(rows[k], ACCESSORS)]
    return await _count(keys, _delete)


#### Backfills and set-disabled by triggers / by query ######################################################

def _backfill(action: str) -> Callable[[Key], Awaitable[Any]]:
    async def apply(key: Key) -> Any:
        scheduler = _scheduler()
        if action == "delete":
            return await scheduler.delete_backfill(*key)
        return await scheduler.pause_backfill(*key, action == "pause")
    return apply


@bp.post("/triggers/backfill/pause/by-triggers")
@bp.post("/triggers/backfill/unpause/by-triggers")
@bp.post("/triggers/backfill/delete/by-triggers")
async def backfill_by_triggers() -> Any:
    return await _count(await _keys_body(), _backfill(request.path.split("/")[-2]))


@bp.post("/triggers/backfill/pause/by-query")
@bp.post("/triggers/backfill/unpause/by-query")
@bp.post("/triggers/backfill/delete/by-query")
async def backfill_by_query() -> Any:
    return await _count(await _keys_query(), _backfill(request.path.split("/")[-2]))


@bp.post("/triggers/set-disabled/by-query")
async def set_disabled_by_query() -> Any:
    """``disabled`` (bool, default true) for every trigger the query selects → ``{"count": n}``."""
    disabled = params.opt_bool(request.args, "disabled", True)
    keys = await _keys_query(("disabled",))
    scheduler = _scheduler()
    return await _count(keys, lambda key: scheduler.set_disabled(*key, disabled))


#### CSV export #############################################################################################

CSV_COLUMNS = ("namespace", "flowId", "triggerId", "type", "disabled", "date", "nextExecutionDate", "executionId",
               "workerId")


@bp.get("/triggers/export/by-query/csv")
async def export_csv() -> Any:
    """``text/csv`` attachment ``triggers.csv``, one row per trigger the query selects."""
    rows = await select_triggers(request.args)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        ctx = row["triggerContext"]
        writer.writerow([ctx.get("namespace"), ctx.get("flowId"), ctx.get("triggerId"),
                         (row.get("abstractTrigger") or {}).get("type", ""), bool(ctx.get("disabled")),
                         ctx.get("date") or "", ctx.get("nextExecutionDate") or "", ctx.get("executionId") or "",
                         ctx.get("workerId") or ""])
    response = Response(buffer.getvalue(), status=200, content_type="text/csv; charset=utf-8")
    response.headers["Content-Disposition"] = 'attachment; filename="triggers.csv"'
    return response
