"""``/executions``: create (multipart inputs and files), read, search, lifecycle actions, bulk actions.

Paths are Kestra 0.21's; the 2.0 forms ``/executions/{id}/actions/<action>`` are aliases of the same
views (2.0's ``actions/resume`` answers the execution instead of 204). File downloads live in
``files.py``, the SSE follow and websockets in ``live.py``, the webhook route in ``triggers.py``.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, AsyncIterator, Iterable, Mapping

import trio
from quart import Blueprint, Response, request

from falconet.runtime.kernel.bus import Overflow
from falconet.runtime.kernel.errors import IllegalArgument, IllegalState, InvalidEntity, NotFound, Violation
from falconet.runtime.kernel.limits import json_loads
from falconet.runtime.kernel.state import State
from falconet.runtime.store.base import ExecutionQuery
from falconet.http import filters
from falconet.http.multipart import Form, read_body, read_form
from falconet.http.api import params
from falconet.http.api.common import dumps, empty, engine, json_response, paged, public_execution, public_flow, state

bp = Blueprint("executions", __name__)

JSON_BODY_LIMIT = 4 * 1024 * 1024
TENANT_PREFIX = "/api/v1/main/"
KILL_ANSWER_WAIT = 5.0       # seconds a kill answer waits for KILLING to be written


#### Helpers ################################################################################################

def execution_url(doc: Mapping[str, Any], app_state: Any = None) -> str:
    """``{kestra.url}/ui/executions/{namespace}/{flowId}/{id}``; the base defaults to the request's host."""
    base = (app_state or state()).config.url
    if not base:
        req = request._get_current_object()  # type: ignore[attr-defined]  # one context lookup, not two
        base = f"{req.scheme}://{req.host}"
    return f"{base.rstrip('/')}/ui/executions/{doc['namespace']}/{doc['flowId']}/{doc['id']}"


def with_url(doc: dict[str, Any], app_state: Any = None) -> dict[str, Any]:
    out = public_execution(doc)   # a new dict
    out["url"] = execution_url(doc, app_state)
    return out


async def get_or_404(execution_id: str) -> dict[str, Any]:
    doc = await engine().get_execution(execution_id)
    if doc is None:
        raise NotFound(f"Execution '{execution_id}' not found")
    return doc


def or_create(action: str) -> Any:
    """``POST /executions/{a}/{b}`` is both "create an execution of flow ``b`` in namespace ``a``" and
    "action ``b`` on execution ``a``" when ``b`` is an action name (a flow may well be called ``pause``).
    Like Kestra, a flow wins when no execution has that id and the flow exists."""
    import functools

    def wrap(view: Any) -> Any:
        @functools.wraps(view)
        async def inner(execution_id: str, **kwargs: Any) -> Any:
            eng = engine()
            if ("/actions/" not in request.path and await eng.get_execution(execution_id) is None
                    and await eng.get_flow(execution_id, action) is not None):
                return await create_execution(execution_id, action)
            return await view(execution_id, **kwargs)
        return inner
    return wrap


def split_form(form: Form, input_ids: set[str]) -> tuple[dict[str, Any], dict[str, tuple[str, Path]]]:
    """Inputs and FILE inputs of a create/resume form.

    Text parts are keyed by part name. A file part is keyed by its part name (Kestra ≥ 0.24), except a
    part named ``files`` when the flow has no input called ``files``: that is Kestra 0.21's form, keyed
    by the filename (``-F "files=@./a.csv;filename=<inputId>"``).
    """
    inputs: dict[str, Any] = dict(form.fields)
    files: dict[str, tuple[str, Path]] = {}
    for upload in form.files:
        if upload.name == "files" and "files" not in input_ids and upload.filename:
            files[upload.filename] = (upload.filename, upload.path)
        else:
            files[upload.name] = (upload.filename or upload.name, upload.path)
    return inputs, files


async def json_body(default: Any = None) -> Any:
    raw = await read_body(request, JSON_BODY_LIMIT)
    if not raw.strip():
        return default
    try:
        return json_loads(raw)
    except ValueError as exc:
        raise InvalidEntity([Violation("body", f"Unable to parse the JSON body: {exc}")]) from None


async def _flow_or_404(namespace: str, flow_id: str, revision: int | None) -> Any:
    flow = await engine().get_flow(namespace, flow_id, revision)
    if flow is None:
        if revision is not None and await engine().get_flow(namespace, flow_id) is not None:
            raise NotFound(f"Flow '{namespace}.{flow_id}' has no revision {revision}")
        raise NotFound("Requested Flow is not found.")
    return flow


#### Create #################################################################################################

@bp.post("/executions/<namespace>/<flow_id>")
@bp.post("/executions/trigger/<namespace>/<flow_id>")
async def create_execution(namespace: str, flow_id: str) -> Any:
    """Create an execution: 200 with the execution (state CREATED, or terminated with ``wait=true``) + ``url``."""
    req = request._get_current_object()  # type: ignore[attr-defined]  # the request, not its context proxy
    args = req.args
    labels = params.parse_labels(args.getlist("labels"))
    if req.path.startswith(TENANT_PREFIX) and not any(key == "system.from" for key, _ in labels):
        labels.append(("system.from", "api"))     # Kestra 1.x; the 0.21 paths keep 0.21's labels
    wait = params.opt_bool(args, "wait", False)
    revision = params.opt_int(args, "revision", None, minimum=1)
    schedule_date = params.opt_datetime(args, "scheduleDate")
    app_state = state()
    eng = app_state.engine
    flow = await _flow_or_404(namespace, flow_id, revision)
    async with read_form(req, app_state.upload_dir) as form:
        inputs, files = split_form(form, {i.id for i in flow.inputs})
        # the revision just read: the engine finds it in its cache instead of reading the store again
        doc = await eng.create_execution(namespace, flow_id, inputs=inputs, files=files, labels=labels,
                                         revision=flow.revision, schedule_date=schedule_date)
    if wait:
        doc = await eng.wait_for_end(doc["id"])
    return json_response(with_url(doc, app_state))


@bp.post("/executions/<namespace>/<flow_id>/validate")
async def validate_inputs(namespace: str, flow_id: str) -> Any:
    """Type and validate inputs without creating anything:
    ``{id, namespace, inputs: [{input, value, enabled, errors}]}``."""
    flow = await _flow_or_404(namespace, flow_id, None)
    async with read_form(request, state().upload_dir) as form:
        inputs, files = split_form(form, {i.id for i in flow.inputs})
        result = await engine().validate_inputs(namespace, flow_id, inputs=inputs, files=files)
    return json_response(result)


#### Read and search ########################################################################################

#: legacy search parameters (Kestra 0.x) of GET /executions/search and the by-query routes
SEARCH_PARAMS = filters.PAGING | {"q", "scope", "namespace", "flowId", "startDate", "endDate", "timeRange", "state",
                                  "labels", "triggerExecutionId", "childFilter"}
SCAN_PAGE = 500

#: how each Kestra filter field reads an execution document
ACCESSORS: dict[str, Any] = {
    "q": lambda d: (d.get("id"), d.get("namespace"), d.get("flowId")),
    "scope": lambda d: filters.scope_of(d.get("namespace")),
    "namespace": lambda d: d.get("namespace"),
    "flowId": lambda d: d.get("flowId"),
    "state": lambda d: filters.dig(d, "state.current"),
    "labels": lambda d: d.get("labels"),
    "startDate": lambda d: filters.dig(d, "state.startDate"),
    "endDate": lambda d: filters.dig(d, "state.endDate"),
    "triggerExecutionId": lambda d: filters.dig(d, "trigger.variables.executionId"),
    "childFilter": lambda d: "CHILD" if filters.dig(d, "trigger.variables.executionId") else "MAIN",
    "kind": lambda d: d.get("kind") or "NORMAL",
}


def _query(args: Any) -> ExecutionQuery:
    page, size, sort = params.paging(args)
    start, end = params.time_window(args)
    child = params.opt_str(args, "childFilter")
    if child is not None and child.upper() not in ("CHILD", "MAIN"):
        raise params.convert_error("childFilter", child)
    return ExecutionQuery(
        q=params.opt_str(args, "q"),
        namespace=params.opt_str(args, "namespace"),
        flow_id=params.opt_str(args, "flowId"),
        states=params.parse_states(args.getlist("state")),
        labels=params.parse_labels(args.getlist("labels")),
        start_date=start,
        end_date=end,
        trigger_execution_id=params.opt_str(args, "triggerExecutionId"),
        child_filter=child.upper() if child else None,
        page=page,
        size=size,
        sort=sort,
    )


@dataclasses.dataclass
class Selection:
    """What a search or by-query request selects: the legacy parameters as a store query, plus the
    ``filters[…]`` (and legacy ``scope``) evaluated on each document."""

    query: ExecutionQuery
    where: filters.Group
    store: Any            # bound at request time: a streamed response scans outside the app context

    @classmethod
    def from_request(cls, args: Any, allowed: Iterable[str] = ()) -> "Selection":
        where = filters.parse(args, "EXECUTION", SEARCH_PARAMS | set(allowed))
        query = _query(args)
        scopes = [s for raw in args.getlist("scope") for s in raw.split(",") if s]
        if scopes:
            scope = filters.typed_leaf("scope", "IN", "scope", tuple(scopes))
            where = filters.Group("and", (*where.children, scope))
        for leaf in where.children:  # narrow the store scan with what the store can filter itself
            if isinstance(leaf, filters.Leaf) and leaf.op in ("EQUALS", "IN") and isinstance(leaf.value, tuple) \
                    and len(leaf.value) == 1:
                if leaf.field == "flowId" and query.flow_id is None:
                    query.flow_id = leaf.value[0]
                elif leaf.field == "namespace" and query.namespace is None:
                    query.namespace = leaf.value[0]
        return cls(query, where, engine().store)

    async def page(self) -> tuple[list[dict[str, Any]], int]:
        """(the requested page, total matching)."""
        if not self.where:
            return await self.store.search_executions(self.query)
        lo = (self.query.page - 1) * self.query.size
        hi = lo + self.query.size
        out, total = [], 0
        async for doc in self.scan():
            if lo <= total < hi:
                out.append(doc)
            total += 1
        return out, total

    async def scan(self) -> AsyncIterator[dict[str, Any]]:
        """Every matching execution, in the query's sort order."""
        query = dataclasses.replace(self.query, page=1, size=SCAN_PAGE)
        seen = 0
        while True:
            docs, total = await self.store.search_executions(query)
            for doc in docs:
                if self.where.matches(doc, ACCESSORS):
                    yield doc
            seen += len(docs)
            if not docs or seen >= total:
                return
            query.page += 1


@bp.get("/executions/search")
async def search_executions() -> Any:
    """``PagedResults<Execution>``: Kestra's ``filters[…]`` and the legacy parameters (see :mod:`params`
    for the 4xx of bad values); an unknown parameter, field or operation is a 400."""
    docs, total = await Selection.from_request(request.args).page()
    return paged([public_execution(d) for d in docs], total)


@bp.get("/executions")
async def list_flow_executions() -> Any:
    """Executions of one flow (``namespace`` and ``flowId`` required), paged."""
    params.required(request.args, "namespace")
    params.required(request.args, "flowId")
    docs, total = await Selection.from_request(request.args).page()
    return paged([public_execution(d) for d in docs], total)


@bp.get("/executions/<execution_id>")
async def get_execution(execution_id: str) -> Any:
    return json_response(public_execution(await get_or_404(execution_id)))


@bp.get("/executions/<execution_id>/flow")
async def get_execution_flow(execution_id: str) -> Any:
    """The flow revision the execution runs."""
    doc = await get_or_404(execution_id)
    flow = await engine().get_flow(doc["namespace"], doc["flowId"], doc.get("flowRevision"), allow_deleted=True)
    if flow is None:
        raise NotFound(f"Flow '{doc['namespace']}.{doc['flowId']}' revision {doc.get('flowRevision')} not found")
    return json_response(public_flow(flow, source=True))


#### Lifecycle actions ######################################################################################

@bp.delete("/executions/<execution_id>/kill")
@bp.delete("/executions/<execution_id>/actions/kill")
async def kill(execution_id: str) -> Any:
    """202 with the execution (Kestra 2.0's clients read it; usually KILLING, the kill completes
    asynchronously). 404 unknown; 409 when already terminated and ``isOnKillCascade=false`` (with cascade,
    the default, the subflow executions it started are killed and the answer is 202)."""
    cascade = params.opt_bool(request.args, "isOnKillCascade", True)
    eng = engine()
    with eng.bus.subscribe(execution_id=execution_id, kinds=("execution",)) as sub:
        await eng.kill(execution_id, cascade=cascade)
        doc = await get_or_404(execution_id)
        with trio.move_on_after(KILL_ANSWER_WAIT):  # the actor applies the kill: answer once KILLING is written
            while doc["state"]["current"] != "KILLING" and not _current(doc).is_terminated:
                try:
                    await sub.receive()
                except Overflow:
                    pass
                doc = await get_or_404(execution_id)
    return json_response(public_execution(doc), status=202)


@bp.post("/executions/<execution_id>/restart")
@bp.post("/executions/<execution_id>/actions/restart")
@or_create("restart")
async def restart(execution_id: str) -> Any:
    revision = params.opt_int(request.args, "revision", None, minimum=1)
    return json_response(public_execution(await engine().restart(execution_id, revision=revision)))


@bp.post("/executions/<execution_id>/replay")
@bp.post("/executions/<execution_id>/actions/replay")
@or_create("replay")
async def replay(execution_id: str) -> Any:
    revision = params.opt_int(request.args, "revision", None, minimum=1)
    task_run_id = params.opt_str(request.args, "taskRunId")
    doc = await engine().replay(execution_id, task_run_id=task_run_id, revision=revision)
    return json_response(public_execution(doc))


@bp.post("/executions/<execution_id>/pause")
@bp.post("/executions/<execution_id>/actions/pause")
@or_create("pause")
async def pause(execution_id: str) -> Any:
    """200, empty (0.21 path) or 200 + the execution (2.0's ``actions/pause``). 404 unknown; 422 when not
    running (as Kestra's ExecutionControllerTest checks; the 204/409 of its OpenAPI annotations are not what
    its server answers)."""
    await engine().pause(execution_id)
    if request.path.endswith("/actions/pause"):
        return json_response(public_execution(await get_or_404(execution_id)))
    return empty(200)


@bp.post("/executions/<execution_id>/resume")
@bp.post("/executions/<execution_id>/actions/resume")
@or_create("resume")
async def resume(execution_id: str) -> Any:
    """Resume a paused execution with multipart ``onResume`` inputs: 204 (0.21 path), 200 + execution (2.0 path)."""
    doc = await get_or_404(execution_id)
    flow = await engine().get_flow(doc["namespace"], doc["flowId"], doc.get("flowRevision"), allow_deleted=True)
    input_ids = {i.id for i in flow.inputs} if flow is not None else set()
    async with read_form(request, state().upload_dir) as form:
        inputs, files = split_form(form, input_ids)
        result = await engine().resume(execution_id, inputs=inputs, files=files)
    if request.path.endswith("/actions/resume"):
        return json_response(public_execution(result))
    return empty(204)


@bp.post("/executions/<execution_id>/change-status")
@bp.post("/executions/<execution_id>/actions/change-status")
@or_create("change-status")
async def change_status(execution_id: str) -> Any:
    """Move a terminated execution to another terminal state; 422 otherwise."""
    status = params.parse_state("status", params.required(request.args, "status"))
    return json_response(public_execution(await engine().change_status(execution_id, status)))


@bp.post("/executions/<execution_id>/state")
@bp.post("/executions/<execution_id>/actions/state")
@or_create("state")
async def set_task_run_state(execution_id: str) -> Any:
    """Body ``{"taskRunId": ..., "state": ...}``: force a task run's state (the execution is RESTARTED)."""
    body = await json_body({})
    if (not isinstance(body, dict) or not isinstance(body.get("taskRunId"), str)
            or not isinstance(body.get("state"), str)):
        raise InvalidEntity([Violation("body", "expected {\"taskRunId\": string, \"state\": string}")])
    new_state = params.parse_state("state", body["state"])
    doc = await engine().lifecycle.set_task_run_state(execution_id, body["taskRunId"], new_state)
    return json_response(public_execution(doc))


def parse_label_body(body: Any) -> list[tuple[str, str]]:
    """``[{"key", "value"}]`` with non-empty string keys and values (422 otherwise)."""
    if not isinstance(body, list):
        raise InvalidEntity([Violation("labels", "expected a list of {\"key\", \"value\"}")])
    out = []
    for i, item in enumerate(body):
        key = item.get("key") if isinstance(item, dict) else None
        value = item.get("value") if isinstance(item, dict) else None
        if not isinstance(key, str) or not key.strip():
            raise InvalidEntity([Violation(f"labels[{i}].key", "must not be null or empty")])
        if not isinstance(value, str) or not value.strip():
            raise InvalidEntity([Violation(f"labels[{i}].value", "must not be null or empty")])
        out.append((key, value))
    return out


@bp.post("/executions/<execution_id>/labels")
@bp.post("/executions/<execution_id>/actions/labels")
@or_create("labels")
async def set_labels(execution_id: str) -> Any:
    """Merge labels into a terminated execution; answers the execution."""
    labels = parse_label_body(await json_body(None))
    return json_response(public_execution(await engine().set_labels(execution_id, labels)))


@bp.post("/executions/<execution_id>/unqueue")
@bp.post("/executions/<execution_id>/actions/unqueue")
@or_create("unqueue")
async def unqueue(execution_id: str) -> Any:
    new_state = params.opt_str(request.args, "state")
    doc = await engine().lifecycle.unqueue(execution_id, params.parse_state("state", new_state) if new_state else None)
    return json_response(public_execution(doc))


@bp.post("/executions/<execution_id>/force-run")
@bp.post("/executions/<execution_id>/actions/force-run")
@or_create("force-run")
async def force_run(execution_id: str) -> Any:
    return json_response(public_execution(await engine().lifecycle.force_run(execution_id)))


def _delete_flags(args: Any) -> dict[str, bool]:
    """The ``deleteLogs``/``deleteMetrics``/``deleteStorage`` query flags (default true) as keyword arguments."""
    return {"delete_logs": params.opt_bool(args, "deleteLogs", True),
            "delete_metrics": params.opt_bool(args, "deleteMetrics", True),
            "delete_storage": params.opt_bool(args, "deleteStorage", True)}


@bp.delete("/executions/<execution_id>")
async def delete_execution(execution_id: str) -> Any:
    """204; the logs, metrics and storage of the execution go too unless told otherwise."""
    await engine().lifecycle.delete(execution_id, **_delete_flags(request.args))
    return empty(204)


#### Bulk actions by ids ####################################################################################

async def _ids_body() -> list[str]:
    body = await json_body(None)
    if not isinstance(body, list) or not all(isinstance(i, str) for i in body):
        raise InvalidEntity([Violation("executionsId", "expected a JSON list of execution ids")])
    return body


def _bulk_invalid(action: str, invalids: list[dict[str, Any]]) -> Any:
    body = {"message": f"invalid bulk {action}", "invalids": invalids}
    return Response(dumps(body), status=400, content_type="application/json")


async def _bulk(action: str, ids: list[str], check: Any, apply: Any, *, strict: bool = True) -> Any:
    """Check every execution first — ``strict``: 400 with ``invalids`` if any is missing or not eligible;
    otherwise those are skipped — then apply the action to the others: ``{"count": n}``."""
    invalids, docs = [], []
    for execution_id in ids:
        doc = await engine().get_execution(execution_id)
        reason = "execution not found" if doc is None else check(doc)
        if reason:
            invalids.append({"message": reason, "invalidValue": execution_id})
        else:
            docs.append(doc)
    if invalids and strict:
        return _bulk_invalid(action, invalids)
    count = 0
    for doc in docs:
        try:
            await apply(doc["id"])
            count += 1
        except (NotFound, IllegalState, IllegalArgument):
            continue  # changed state between the check and the action (e.g. ended meanwhile)
    return json_response({"count": count})


def _current(doc: dict[str, Any]) -> State:
    return State(doc["state"]["current"])


@bp.delete("/executions/kill/by-ids")
async def bulk_kill() -> Any:
    ids = await _ids_body()
    return await _bulk("kill", ids,
                       lambda d: "execution already finished" if _current(d).is_terminated else None,
                       lambda i: engine().kill(i, cascade=True))


@bp.delete("/executions/by-ids")
async def bulk_delete() -> Any:
    ids = await _ids_body()
    include_running = params.opt_bool(request.args, "includeNonTerminated", False)
    args = request.args
    flags = _delete_flags(args)
    return await _bulk("delete", ids,
                       lambda d: None if include_running or _current(d).is_terminated
                       else "execution not terminated",
                       lambda i: engine().lifecycle.delete(i, **flags))


@bp.post("/executions/restart/by-ids")
async def bulk_restart() -> Any:
    ids = await _ids_body()
    return await _bulk("restart", ids,
                       lambda d: None if _current(d).is_restartable else "execution must be failed or paused",
                       lambda i: engine().restart(i))



#### Bulk actions by query ##################################################################################
# The search parameters of GET /executions/search select the executions; those not eligible for the
# action (e.g. already terminated for a kill) are skipped rather than reported: {"count": n applied}.
# A query that matches nothing does nothing; an unknown parameter or filter is a 400 before anything runs.

async def ids_by_query(allowed: Iterable[str] = ()) -> list[str]:
    """Ids of every execution the request's search parameters and filters match (all pages)."""
    selection = Selection.from_request(request.args, allowed)
    return [doc["id"] async for doc in selection.scan()]


DELETE_FLAGS = {"includeNonTerminated", "deleteLogs", "deleteMetrics", "deleteStorage"}


@bp.delete("/executions/kill/by-query")
async def bulk_kill_by_query() -> Any:
    return await _bulk("kill", await ids_by_query(),
                       lambda d: "execution already finished" if _current(d).is_terminated else None,
                       lambda i: engine().kill(i, cascade=True), strict=False)


@bp.delete("/executions/by-query")
async def bulk_delete_by_query() -> Any:
    ids = await ids_by_query(DELETE_FLAGS)
    args = request.args
    include_running = params.opt_bool(args, "includeNonTerminated", False)
    flags = _delete_flags(args)
    return await _bulk("delete", ids,
                       lambda d: None if include_running or _current(d).is_terminated else "execution not terminated",
                       lambda i: engine().lifecycle.delete(i, **flags), strict=False)


@bp.post("/executions/restart/by-query")
async def bulk_restart_by_query() -> Any:
    return await _bulk("restart", await ids_by_query(),
                       lambda d: None if _current(d).is_restartable else "execution must be failed or paused",
                       lambda i: engine().restart(i), strict=False)
