"""Bulk execution actions by ids (a JSON list of ids in the body) and by query (Kestra's ``filters[…]`` and
the legacy search parameters): pause, resume, replay, labels, change-status, unqueue, force-run.

As for the bulk kill/delete/restart of :mod:`executions`: by ids, an id that is missing or not eligible
makes the whole request a 400 ``{"message": "invalid bulk <action>", "invalids": [...]}`` and nothing is
done; by query, executions not eligible are skipped. Both answer ``{"count": n}``. A query that matches
nothing does nothing; an unknown parameter or filter is a 400 before anything runs.
"""
from __future__ import annotations

from typing import Any, Awaitable, Callable

from quart import Blueprint, request

from falconet.runtime.kernel.errors import InvalidEntity, Violation
from falconet.runtime.kernel.state import State
from falconet.http import filters
from falconet.http.api import params
from falconet.http.api.common import engine
from falconet.http.api.executions import _bulk, _current, _ids_body, ids_by_query, json_body, parse_label_body

bp = Blueprint("executions_bulk", __name__)

Check = Callable[[dict[str, Any]], "str | None"]
Apply = Callable[[str], Awaitable[Any]]


async def _run(action: str, by: str, check: Check, apply: Apply, *, allowed: tuple[str, ...] = (),
               ids: list[str] | None = None) -> Any:
    if by == "by-ids":
        filters.check_params(request.args, allowed)
        return await _bulk(action, ids if ids is not None else await _ids_body(), check, apply)
    return await _bulk(action, await ids_by_query(allowed), check, apply, strict=False)


def _running(doc: dict[str, Any]) -> str | None:
    return None if _current(doc) is State.RUNNING else "execution is not running"


def _paused(doc: dict[str, Any]) -> str | None:
    return None if _current(doc) is State.PAUSED else "execution is not paused"


def _terminated(doc: dict[str, Any]) -> str | None:
    return None if _current(doc).is_terminated else "execution is not terminated"


def _queued(doc: dict[str, Any]) -> str | None:
    return None if _current(doc) is State.QUEUED else "execution is not queued"


def _not_terminated(doc: dict[str, Any]) -> str | None:
    return "execution already finished" if _current(doc).is_terminated else None


@bp.post("/executions/pause/by-ids")
@bp.post("/executions/pause/by-query")
async def pause() -> Any:
    return await _run("pause", request.path.rsplit("/", 1)[1], _running, lambda i: engine().pause(i))


@bp.post("/executions/resume/by-ids")
@bp.post("/executions/resume/by-query")
async def resume() -> Any:
    return await _run("resume", request.path.rsplit("/", 1)[1], _paused, lambda i: engine().resume(i))


@bp.post("/executions/replay/by-ids")
@bp.post("/executions/replay/by-query")
async def replay() -> Any:
    """``latestRevision=true`` replays on the flow's latest revision instead of the execution's."""
    latest = params.opt_bool(request.args, "latestRevision", False)

    async def apply(execution_id: str) -> Any:
        revision = None
        if latest:
            doc = await engine().get_execution(execution_id)
            flow = await engine().get_flow(doc["namespace"], doc["flowId"]) if doc else None
            revision = flow.revision if flow is not None else None
        return await engine().replay(execution_id, revision=revision)

    return await _run("replay", request.path.rsplit("/", 1)[1], _terminated, apply, allowed=("latestRevision",))


@bp.post("/executions/labels/by-ids")
async def labels_by_ids() -> Any:
    """Body ``{"executionsId": [...], "executionLabels": [{key, value}]}``."""
    body = await json_body(None)
    ids = body.get("executionsId") if isinstance(body, dict) else None
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise InvalidEntity([Violation("executionsId", "expected a list of execution ids")])
    labels = parse_label_body(body.get("executionLabels"))
    return await _run("labels", "by-ids", _terminated, lambda i: engine().set_labels(i, labels), ids=ids)


@bp.post("/executions/labels/by-query")
async def labels_by_query() -> Any:
    """Body ``[{key, value}]``: merged into every terminated execution the query selects."""
    labels = parse_label_body(await json_body(None))
    return await _run("labels", "by-query", _terminated, lambda i: engine().set_labels(i, labels))


@bp.post("/executions/change-status/by-ids")
@bp.post("/executions/change-status/by-query")
async def change_status() -> Any:
    """``newStatus`` (required): a terminal state for terminated executions."""
    status = params.parse_state("newStatus", params.required(request.args, "newStatus"))
    return await _run("change-status", request.path.rsplit("/", 1)[1], _terminated,
                      lambda i: engine().change_status(i, status), allowed=("newStatus",))


@bp.post("/executions/unqueue/by-ids")
@bp.post("/executions/unqueue/by-query")
async def unqueue() -> Any:
    """QUEUED executions start now (``state``, or ``newState`` by query: the state they move to)."""
    by = request.path.rsplit("/", 1)[1]
    name = "state" if by == "by-ids" else "newState"
    raw = params.opt_str(request.args, name)
    new_state = params.parse_state(name, raw) if raw else None
    return await _run("unqueue", by, _queued, lambda i: engine().lifecycle.unqueue(i, new_state), allowed=(name,))


@bp.post("/executions/force-run/by-ids")
@bp.post("/executions/force-run/by-query")
async def force_run() -> Any:
    return await _run("force-run", request.path.rsplit("/", 1)[1], _not_terminated,
                      lambda i: engine().lifecycle.force_run(i))
