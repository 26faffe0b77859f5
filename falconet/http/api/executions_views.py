"""More of Kestra's ``/executions`` routes: the flow as the Execute dialog needs it, executable namespaces
and flows, the latest execution of flows, an execution's graph, expression evaluation on a task run,
onResume input validation, CSV export, and Kestra 2.0's ``/{id}/actions/eval``.

Not served: ``resume-from-breakpoint`` answers 422 because Falconet has no breakpoints (an execution never
stops at one).
"""
from __future__ import annotations

import csv
import io
import re
from typing import Any, AsyncIterator

from quart import Blueprint, Response, request

from falconet.runtime.kernel.errors import IllegalArgument, IllegalState, InvalidEntity, NotFound, Violation
from falconet.runtime.expr.render import ExpressionError
from falconet.runtime.kernel.bus import Overflow
from falconet.runtime.kernel.execution import Execution
from falconet.runtime.kernel.state import State
from falconet.runtime.store.base import ExecutionQuery
from falconet.runtime.expr.variables import OutputsCache, execution_variables, task_run_variables
from falconet.http import filters
from falconet.http.multipart import read_body, read_form
from falconet.http.api import params
from falconet.http.api.common import TENANT, engine, json_response, primed, public_execution, public_flow, state
from falconet.http.api.executions import Selection, get_or_404, json_body, split_form
from falconet.http.api.live import sse, sse_response

bp = Blueprint("executions_views", __name__)

EXPRESSION_LIMIT = 64 * 1024
_SECRET = re.compile(r"\bsecret\b")


def flow_for_execution(flow: Any) -> dict[str, Any]:
    """Kestra's ``FlowForExecution``: what the Execute dialog reads (id, namespace, revision, inputs,
    outputs, labels, tasks and triggers as ``{id, type}``…), without the source."""
    raw = public_flow(flow)
    out = {k: raw[k] for k in ("tenantId", "id", "namespace", "revision", "description", "inputs", "outputs", "labels",
                               "disabled", "deleted") if raw.get(k) is not None}
    out["tasks"] = [_task_for_execution(t) for t in raw.get("tasks") or []]
    if raw.get("triggers"):
        out["triggers"] = [{k: t[k] for k in ("id", "type", "disabled") if k in t}
                           for t in raw["triggers"] if isinstance(t, dict)]
    return out


def _task_for_execution(task: Any) -> Any:
    if not isinstance(task, dict):
        return task
    out = {k: task[k] for k in ("id", "type", "inputs") if k in task}
    children = [c for key in ("tasks", "then", "else", "errors") for c in (task.get(key) or [])]
    if isinstance(task.get("cases"), dict):
        children += [c for tasks in task["cases"].values() for c in (tasks or [])]
    if children:
        out["tasks"] = [_task_for_execution(c) for c in children]
    return out


@bp.get("/executions/flows/<namespace>/<flow_id>")
async def execution_flow(namespace: str, flow_id: str) -> Any:
    """``FlowForExecution`` of a flow (``revision``: a given revision, default the latest)."""
    filters.check_params(request.args, ("revision",))
    revision = params.opt_int(request.args, "revision", None, minimum=1)
    flow = await engine().get_flow(namespace, flow_id, revision)
    if flow is None:
        raise NotFound(f"Unable to find flow '{namespace}.{flow_id}'")
    return json_response(flow_for_execution(flow))


@bp.get("/executions/namespaces")
async def executable_namespaces() -> Any:
    """The namespaces that have at least one flow (``[string]``, sorted)."""
    filters.check_params(request.args, ())
    return json_response(sorted({f.namespace for f in await engine().list_flows(None)}))


@bp.get("/executions/namespaces/<namespace>/flows")
async def executable_flows(namespace: str) -> Any:
    """``[FlowForExecution]`` of the flows of exactly this namespace."""
    filters.check_params(request.args, ())
    flows = [f for f in await engine().list_flows(namespace) if f.namespace == namespace]
    return json_response([flow_for_execution(f) for f in sorted(flows, key=lambda f: f.id)])


@bp.post("/executions/latest")
async def latest_executions() -> Any:
    """Body ``[{namespace, id}]`` → the latest execution of each flow that has one:
    ``[{id, namespace, flowId, startDate, status}]``."""
    body = await json_body(None)
    if not isinstance(body, list) or not all(isinstance(i, dict) and isinstance(i.get("namespace"), str)
                                             and isinstance(i.get("id"), str) for i in body):
        raise InvalidEntity([Violation("body", "expected a list of {\"namespace\", \"id\"}")])
    out = []
    for item in body[:1000]:
        docs, _ = await engine().store.search_executions(ExecutionQuery(
            namespace=item["namespace"], flow_id=item["id"], size=50, sort=["state.startDate:desc"]))
        doc = next((d for d in docs if d["namespace"] == item["namespace"]), None)
        if doc is not None:
            out.append({"id": doc["id"], "namespace": doc["namespace"], "flowId": doc["flowId"],
                        "startDate": doc["state"].get("startDate"), "status": doc["state"]["current"]})
    return json_response(out)


@bp.get("/executions/<execution_id>/graph")
async def execution_graph(execution_id: str) -> Any:
    """The ``FlowGraph`` of the revision the execution runs, task nodes with their task run."""
    from falconet.http.api.graph import flow_graph
    filters.check_params(request.args, ("subflows",))
    doc = await get_or_404(execution_id)
    flow = await engine().get_flow(doc["namespace"], doc["flowId"], doc.get("flowRevision"), allow_deleted=True)
    if flow is None:
        raise NotFound(f"Unable to find flow '{doc['namespace']}.{doc['flowId']}'")
    return json_response(flow_graph(flow, doc))


#### Eval ###################################################################################################

@bp.post("/executions/<execution_id>/eval/<task_run_id>")
@bp.post("/executions/<execution_id>/actions/eval/<task_run_id>")
@bp.post("/executions/<execution_id>/actions/eval")
async def evaluate(execution_id: str, task_run_id: str | None = None) -> Any:
    """Render the ``text/plain`` body in the context of a task run (2.0's ``actions/eval``: of the
    execution): ``{"result"}``, or ``{"error", "stackTrace"}`` when the expression fails — as Kestra,
    ``secret()`` is not available here."""
    raw = await read_body(request, EXPRESSION_LIMIT)
    try:
        expression = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidEntity([Violation("expression", "the expression is not UTF-8 text")]) from None
    doc = await get_or_404(execution_id)
    eng = engine()
    flow = await eng.get_flow(doc["namespace"], doc["flowId"], doc.get("flowRevision"), allow_deleted=True)
    if flow is None:
        raise NotFound(f"Unable to find flow '{doc['namespace']}.{doc['flowId']}'")
    ex = Execution.from_dict(doc)
    cache = OutputsCache()
    variables = execution_variables(ex, flow, cache, envs=eng.envs, globals_=eng.config.globals)
    if task_run_id is not None:
        tr = ex.find_task_run(task_run_id)
        if tr is None:
            raise NotFound(f"Unable to find task run '{task_run_id}' in execution '{execution_id}'")
        task = flow.find_task(tr.task_id)
        if task is None:
            raise NotFound(f"Unable to find task '{tr.task_id}' in flow '{flow.namespace}.{flow.id}'")
        variables = task_run_variables(variables, ex, task, tr, cache)
    if _SECRET.search(expression):
        return json_response({"error": "Function or Macro [secret] does not exist.",
                              "stackTrace": "secret() is not available when evaluating an expression"})
    try:
        return json_response({"result": eng.renderer.render(expression, variables)})
    except ExpressionError as exc:
        return json_response({"error": str(exc), "stackTrace": f"{type(exc).__name__}: {exc}"})


#### Follow dependencies ###################################################################################

def _status_event(doc: dict[str, Any]) -> dict[str, Any]:
    """Kestra's ``ExecutionStatusEvent``."""
    return {"executionId": doc["id"], "tenantId": TENANT, "namespace": doc["namespace"], "flowId": doc["flowId"],
            "state": doc["state"]["current"]}


def _finished(doc: dict[str, Any]) -> bool:
    return State(doc["state"]["current"]).is_terminated


def _trigger_execution(doc: dict[str, Any]) -> str | None:
    value = filters.dig(doc, "trigger.variables.executionId")
    return value if isinstance(value, str) else None


@bp.get("/executions/<execution_id>/follow-dependencies")
async def follow_dependencies(execution_id: str) -> Any:
    """SSE of the executions this one depends on and that depend on it: one ``id: progress`` event
    (Kestra's ``ExecutionStatusEvent`` ``{executionId, tenantId, namespace, flowId, state}``) per state
    of the execution, of the executions it started (subflows, flow triggers: their ``trigger`` names it)
    and, unless ``destinationOnly``, of the one that started it; ``expandAll`` follows those links
    transitively. When every followed execution is terminated: ``id: end`` and the stream closes."""
    args = request.args
    filters.check_params(args, ("destinationOnly", "expandAll"))
    destination_only = params.opt_bool(args, "destinationOnly", False)
    expand = params.opt_bool(args, "expandAll", False)
    root = await get_or_404(execution_id)
    eng = engine()
    store = eng.store

    async def snapshot() -> dict[str, dict[str, Any]]:
        known: dict[str, dict[str, Any]] = {root["id"]: await eng.get_execution(root["id"]) or root}
        frontier = [root["id"]]
        while frontier:
            current = frontier.pop()
            docs, _ = await store.search_executions(ExecutionQuery(trigger_execution_id=current, size=1000))
            for doc in docs:
                if doc["id"] not in known:
                    known[doc["id"]] = doc
                    if expand:
                        frontier.append(doc["id"])
        upstream = _trigger_execution(root) if not destination_only else None
        while upstream and upstream not in known:
            doc = await eng.get_execution(upstream)
            if doc is None:
                break
            known[upstream] = doc
            upstream = _trigger_execution(doc) if expand else None
        return known

    def follows(doc: dict[str, Any], known: dict[str, dict[str, Any]]) -> bool:
        parent = _trigger_execution(doc)
        return doc["id"] in known or (parent is not None and (parent == root["id"] or (expand and parent in known)))

    async def events() -> AsyncIterator[bytes]:
        with eng.bus.subscribe(kinds=("execution",), max_buffer=1000) as sub:
            known = await snapshot()
            sent: dict[str, str] = {}
            while True:
                for doc in list(known.values()):
                    if sent.get(doc["id"]) != doc["state"]["current"]:
                        sent[doc["id"]] = doc["state"]["current"]
                        yield sse("progress", _status_event(doc))
                if all(_finished(d) for d in known.values()):
                    yield sse("end", _status_event(known[root["id"]]))
                    return
                try:
                    event = await sub.receive()
                except Overflow:
                    known = await snapshot()
                    continue
                if follows(event.data, known):
                    known[event.data["id"]] = event.data

    return sse_response(events())


#### Replay with inputs ####################################################################################

@bp.post("/executions/<execution_id>/replay-with-inputs")
@bp.post("/executions/<execution_id>/actions/replay-with-inputs")
async def replay_with_inputs(execution_id: str) -> Any:
    """Replay (``taskRunId``, ``revision`` as ``/replay``) with the multipart body as the new execution's
    inputs, typed and validated afresh (422 for invalid ones); answers the new execution."""
    args = request.args
    filters.check_params(args, ("taskRunId", "revision", "breakpoints"))
    if params.opt_str(args, "breakpoints"):
        raise IllegalArgument("Falconet has no breakpoints")
    revision = params.opt_int(args, "revision", None, minimum=1)
    doc = await get_or_404(execution_id)
    flow = await engine().get_flow(doc["namespace"], doc["flowId"], revision or doc.get("flowRevision"),
                                   allow_deleted=True)
    input_ids = {i.id for i in flow.inputs} if flow is not None else set()
    async with read_form(request, state().upload_dir) as form:
        inputs, files = split_form(form, input_ids)
        new = await engine().replay(execution_id, task_run_id=params.opt_str(args, "taskRunId"), revision=revision,
                                    inputs=inputs, files=files)
    return json_response(public_execution(new))


#### Resume validation, breakpoints #########################################################################

@bp.post("/executions/<execution_id>/resume/validate")
@bp.post("/executions/<execution_id>/actions/resume/validate")
async def validate_resume(execution_id: str) -> Any:
    """Type and validate the ``onResume`` inputs of the paused task without resuming:
    ``{id, namespace, inputs: [{input, value, enabled, errors}]}``; 409 when not paused."""
    from falconet.runtime.flow.inputs import validate_inputs_report

    doc = await get_or_404(execution_id)
    if doc["state"]["current"] != "PAUSED":
        raise IllegalState("The execution is not paused")
    eng = engine()
    flow = await eng.get_flow(doc["namespace"], doc["flowId"], doc.get("flowRevision"), allow_deleted=True)
    paused = [tr for tr in doc.get("taskRunList") or [] if tr["state"]["current"] == "PAUSED"]
    task = flow.find_task(paused[0]["taskId"]) if flow is not None and paused else None
    specs = list(task.props.get("onResume") or []) if task is not None else []
    async with read_form(request, state().upload_dir) as form:
        inputs, files = split_form(form, {s.id for s in specs})
        provided: dict[str, Any] = dict(inputs)
        provided.update({k: path for k, (_name, path) in files.items()})
        variables = {"flow": {"id": flow.id, "namespace": flow.namespace, "revision": flow.revision} if flow else {},
                     "envs": eng.envs, "globals": eng.config.globals}
        rows = validate_inputs_report(specs, provided, renderer=eng.renderer, variables=variables,
                                      secret_key=eng.config.secret_key,
                                      file_sources=eng.inputs.file_sources(doc["namespace"], doc.get("trigger")))
    return json_response({"id": doc["flowId"], "namespace": doc["namespace"], "inputs": rows})


@bp.post("/executions/<execution_id>/resume-from-breakpoint")
@bp.post("/executions/<execution_id>/actions/resume-from-breakpoint")
async def resume_from_breakpoint(execution_id: str) -> Any:
    await get_or_404(execution_id)
    raise IllegalArgument("Falconet has no breakpoints: an execution never stops at one")


#### CSV export #############################################################################################

CSV_COLUMNS = ("id", "namespace", "flowId", "flowRevision", "state", "startDate", "endDate", "duration", "labels")


@bp.get("/executions/export/by-query/csv")
async def export_csv() -> Any:
    """``text/csv`` attachment ``executions.csv``: one row per execution the filters select."""
    selection = Selection.from_request(request.args)

    async def rows() -> AsyncIterator[bytes]:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(CSV_COLUMNS)
        async for doc in selection.scan():
            st = doc.get("state") or {}
            writer.writerow([doc.get("id"), doc.get("namespace"), doc.get("flowId"), doc.get("flowRevision"),
                             st.get("current"), st.get("startDate"), st.get("endDate") or "", st.get("duration") or "",
                             ",".join(f"{lb.get('key')}:{lb.get('value')}" for lb in doc.get("labels") or [])])
            if buffer.tell() > 64 * 1024:
                yield buffer.getvalue().encode("utf-8")
                buffer.seek(0)
                buffer.truncate()
        yield buffer.getvalue().encode("utf-8")

    response = Response(await primed(rows()), status=200, content_type="text/csv; charset=utf-8")
    response.headers["Content-Disposition"] = 'attachment; filename="executions.csv"'
    response.timeout = None
    return response
