"""More of Kestra's ``/flows`` routes: topology graph (of a stored flow or of a YAML body), dependencies
between flows, single-task update, task/trigger validation, import (YAML or zip), export (zip) by ids and
by query, delete/enable/disable by ids and by query.

Bulk routes answer ``{"count": n}``; ids bodies are ``[{"namespace", "id"}]``. Query routes take the
legacy ``q``/``namespace``/``labels``/``scope`` and Kestra's ``filters[…]`` (``FLOW`` fields); an unknown
parameter or filter is a 400 before anything is changed.
"""
from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path
from typing import Any, Iterable

import trio
import yaml
from quart import Blueprint, Response, request

from falconet.runtime.flow import topology
from falconet.runtime.kernel.errors import FlowValidationError, IllegalArgument, InvalidEntity, NotFound, Violation
from falconet.runtime.flow.parse.yamlload import safe_load as safe_load_yaml
from falconet.runtime.kernel.limits import json_loads
from falconet.http import filters
from falconet.http.multipart import read_body, read_form
from falconet.http.api import params
from falconet.http.api.common import engine, json_response, state
from falconet.http.api.flows import SOURCE_LIMIT, flow_json, select_flows, source_body, split_documents

bp = Blueprint("flows_more", __name__)

ZIP_ENTRIES = 10_000          # entries read from an imported archive
ZIP_TOTAL = 64 * 1024 * 1024  # bytes inflated from an imported archive, all entries together


#### Helpers ################################################################################################

async def _json(default: Any = None) -> Any:
    raw = await read_body(request, SOURCE_LIMIT)
    if not raw.strip():
        return default
    try:
        return json_loads(raw)
    except ValueError as exc:
        raise InvalidEntity([Violation("body", f"Unable to parse the JSON body: {exc}")]) from None


async def _ids_body() -> list[tuple[str, str]]:
    body = await _json(None)
    if not isinstance(body, list) or not all(isinstance(i, dict) and isinstance(i.get("namespace"), str)
                                             and isinstance(i.get("id"), str) for i in body):
        raise InvalidEntity([Violation("body", "expected a list of {\"namespace\", \"id\"}")])
    return [(i["namespace"], i["id"]) for i in body]


async def _flows_by_ids(ids: Iterable[tuple[str, str]]) -> list[Any]:
    out = []
    for namespace, flow_id in ids:
        flow = await engine().get_flow(namespace, flow_id)
        if flow is None:
            raise NotFound(f"Unable to find flow '{namespace}.{flow_id}'")
        out.append(flow)
    return out


_DISABLED = re.compile(r"^disabled\s*:.*$", re.MULTILINE)


def inject_disabled(source: str, disabled: bool) -> str:
    """The source with its top-level ``disabled:`` set (replaced, or appended), as Kestra's
    ``FlowService.injectDisabled`` does: the rest of the text, comments included, is kept."""
    line = f"disabled: {'true' if disabled else 'false'}"
    if _DISABLED.search(source):
        return _DISABLED.sub(line, source, count=1)
    return source.rstrip("\n") + "\n" + line + "\n"


async def _set_disabled(flows: list[Any], disabled: bool) -> int:
    count = 0
    for flow in flows:
        if flow.disabled == disabled:
            continue
        await engine().update_flow(flow.namespace, flow.id, inject_disabled(flow.source, disabled))
        count += 1
    return count


def _zip(flows: list[Any]) -> Response:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for flow in flows:
            archive.writestr(f"{flow.namespace}.{flow.id}.yml", flow.source)
    response = Response(buffer.getvalue(), status=200, content_type="application/octet-stream")
    response.headers["Content-Disposition"] = 'attachment; filename="flows.zip"'
    return response


#### Graph and dependencies #################################################################################

@bp.get("/flows/<namespace>/<flow_id>/graph")
async def graph(namespace: str, flow_id: str) -> Any:
    """``FlowGraph`` of the latest (or ``revision``) revision."""
    from falconet.http.api.graph import flow_graph
    filters.check_params(request.args, ("revision", "subflows"))
    revision = params.opt_int(request.args, "revision", None, minimum=1)
    flow = await engine().get_flow(namespace, flow_id, revision)
    if flow is None:
        raise NotFound(f"Unable to find flow '{namespace}.{flow_id}'")
    return json_response(flow_graph(flow))


@bp.post("/flows/graph")
async def graph_of_source() -> Any:
    """``FlowGraph`` of the YAML body (nothing is saved); 422 when the flow is invalid."""
    from falconet.http.api.graph import flow_graph
    source = await source_body()
    return json_response(flow_graph(await engine().flows.parse(source)))


@bp.get("/flows/<namespace>/<flow_id>/dependencies")
async def dependencies(namespace: str, flow_id: str) -> Any:
    """Kestra's ``FlowTopologyGraph`` ``{nodes: [{uid, namespace, id}], edges: [{source, target,
    relation}]}`` of the flows this one runs or is run by (``destinationOnly``: only those it runs;
    ``expandAll``: transitively)."""
    args = request.args
    filters.check_params(args, ("destinationOnly", "expandAll"))
    destination_only = params.opt_bool(args, "destinationOnly", False)
    expand = params.opt_bool(args, "expandAll", False)
    if await engine().get_flow(namespace, flow_id) is None:
        raise NotFound(f"Unable to find flow '{namespace}.{flow_id}'")
    edges = topology.edges(await engine().list_flows(None))
    seen, frontier, kept = {(namespace, flow_id)}, [(namespace, flow_id)], set()
    while frontier:
        current = frontier.pop()
        for edge in edges:
            source, target, _ = edge
            if source == current or (not destination_only and target == current):
                kept.add(edge)
                other = target if source == current else source
                if expand and other not in seen:
                    seen.add(other)
                    frontier.append(other)
    nodes = sorted({n for s, t, _ in kept for n in (s, t)} | {(namespace, flow_id)})
    uid = lambda n: f"main_{n[0]}_{n[1]}"  # noqa: E731 - Kestra's tenant_namespace_id
    return json_response({
        "nodes": [{"uid": uid(n), "namespace": n[0], "id": n[1], "tenantId": "main"} for n in nodes],
        "edges": [{"source": uid(s), "target": uid(t), "relation": r} for s, t, r in sorted(kept)],
    })


#### Single task update, task/trigger validation ############################################################

def _replace_task(node: Any, task_id: str, task: dict[str, Any]) -> bool:
    """Replace, in place, the task ``task_id`` anywhere in the parsed flow mapping."""
    if isinstance(node, list):
        for index, item in enumerate(node):
            if isinstance(item, dict) and item.get("id") == task_id and "type" in item:
                node[index] = task
                return True
            if _replace_task(item, task_id, task):
                return True
    elif isinstance(node, dict):
        return any(_replace_task(v, task_id, task) for k, v in node.items() if k != "triggers")
    return False


@bp.patch("/flows/<namespace>/<flow_id>/<task_id>")
async def update_task(namespace: str, flow_id: str, task_id: str) -> Any:
    """Replace one task with the JSON body (its ``id`` must be ``task_id``): a new revision whose source is
    regenerated from the flow (comments are lost, as in Kestra). 404 unknown flow or task."""
    task = await _json(None)
    if not isinstance(task, dict) or not isinstance(task.get("type"), str):
        raise InvalidEntity([Violation("task", "expected a task object with a type")])
    if task.get("id") != task_id:
        raise IllegalArgument(f"Invalid taskId, previous '{task_id}' & current '{task.get('id')}'")
    flow = await engine().get_flow(namespace, flow_id)
    if flow is None:
        raise NotFound(f"Unable to find flow '{namespace}.{flow_id}'")
    raw = safe_load_yaml(flow.source)
    if not _replace_task(raw, task_id, task):
        raise NotFound(f"Unable to find task '{task_id}' in flow '{namespace}.{flow_id}'")
    source = yaml.safe_dump(raw, sort_keys=False, allow_unicode=True)
    return json_response(flow_json(await engine().update_flow(namespace, flow_id, source), source=False))


async def _constraints(source: str) -> dict[str, Any]:
    results = await engine().flows.validate_source(source)
    problems = [r["constraints"] for r in results if r.get("constraints")]
    return {"constraints": "\n".join(problems)} if problems else {}


def _wrap(kind: str, item: Any) -> str:
    doc: dict[str, Any] = {"id": "validate", "namespace": "validate"}
    if kind == "task":
        doc["tasks"] = [item]
    else:
        doc["tasks"] = [{"id": "validate", "type": "io.kestra.plugin.core.log.Log", "message": "validate"}]
        doc["triggers"] = [item]
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)


async def _validate(kind: str) -> Any:
    content_type = (request.headers.get("Content-Type") or "").split(";")[0].strip().lower()
    filters.check_params(request.args, ("section",))
    if content_type in ("application/x-yaml", "application/yaml", "text/yaml"):
        section = (params.opt_str(request.args, "section") or "TASKS").upper()
        if section not in ("TASKS", "TRIGGERS"):
            raise params.convert_error("section", section, "not one of TASKS, TRIGGERS")
        kind = "task" if section == "TASKS" else "trigger"
        try:
            item = safe_load_yaml(await source_body())
        except yaml.YAMLError as exc:
            return json_response({"constraints": f"Unable to parse the {kind}: {exc}"})
    else:
        item = await _json(None)
    if not isinstance(item, dict) or not isinstance(item.get("type"), str):
        return json_response({"constraints": f"Invalid {kind}: expected an object with a type"})
    return json_response(await _constraints(_wrap(kind, item)))


@bp.post("/flows/validate/task")
async def validate_task() -> Any:
    """Kestra's ``ValidateConstraintViolation`` of one task (JSON body, or YAML with ``section``):
    ``{}`` when valid, ``{"constraints": "…"}`` otherwise — never a 4xx for an invalid task."""
    return await _validate("task")


@bp.post("/flows/validate/trigger")
async def validate_trigger() -> Any:
    return await _validate("trigger")


#### Import and export ######################################################################################

@bp.post("/flows/import")
async def import_flows() -> Any:
    """Multipart part ``fileUpload``: a (multi-document) YAML file or a zip of ``.yml``/``.yaml`` files.
    Each flow is created or updated; answers the list of what could not be imported (document indexes for
    YAML, entry names for a zip). Another file type is a 422."""
    failed: list[str] = []
    async with read_form(request, state().upload_dir) as form:
        upload = (next((f for f in form.files if f.name == "fileUpload"), None)
                  or (form.files[0] if form.files else None))
        if upload is None:
            raise InvalidEntity([Violation("fileUpload", "Required Part [fileUpload] not specified")])
        name = (upload.filename or "").lower()
        if name.endswith((".yaml", ".yml")):
            if upload.path.stat().st_size > SOURCE_LIMIT:
                raise InvalidEntity([Violation("fileUpload", "the file is too large")])
            text = await trio.to_thread.run_sync(upload.path.read_text, "utf-8", "replace")
            for index, source in enumerate(split_documents(text)):
                if not await _import(source):
                    failed.append(str(index))
        elif name.endswith(".zip"):
            for entry, content in await trio.to_thread.run_sync(_zip_sources, upload.path):
                if content is None or not await _import(content):
                    failed.append(entry)
        else:
            raise IllegalArgument(f"Cannot import file of type {Path(name).suffix or name!r}")
    return json_response(failed)


def _zip_sources(path: Path) -> list[tuple[str, str | None]]:
    """(entry name, text or None when unreadable) of the YAML entries, with bounded inflation (runs in a
    worker thread)."""
    return list(_iter_zip(path))


def _iter_zip(path: Path) -> Iterable[tuple[str, str | None]]:
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise IllegalArgument("The file is not a zip archive") from None
    total = 0
    with archive:
        for count, info in enumerate(archive.infolist()):
            if count >= ZIP_ENTRIES:
                raise IllegalArgument(f"The archive has more than {ZIP_ENTRIES} entries")
            if info.is_dir() or not info.filename.lower().endswith((".yml", ".yaml")):
                continue
            if info.file_size > SOURCE_LIMIT or total + info.file_size > ZIP_TOTAL:
                yield info.filename, None
                continue
            with archive.open(info) as stream:
                data = stream.read(SOURCE_LIMIT + 1)
            total += len(data)
            if len(data) > SOURCE_LIMIT or total > ZIP_TOTAL:
                yield info.filename, None
                continue
            try:
                yield info.filename, data.decode("utf-8")
            except UnicodeDecodeError:
                yield info.filename, None


async def _import(source: str) -> bool:
    try:
        await engine().put_flow(source)
    except (FlowValidationError, InvalidEntity, IllegalArgument, NotFound):
        return False
    return True


@bp.post("/flows/export/by-ids")
async def export_by_ids() -> Any:
    """A zip of the sources (``{namespace}.{id}.yml``) of the flows of the body; 404 for a missing one."""
    return _zip(await _flows_by_ids(await _ids_body()))


@bp.get("/flows/export/by-query")
async def export_by_query() -> Any:
    return _zip(await select_flows(request.args))


#### Delete, enable, disable ################################################################################

@bp.delete("/flows/delete/by-query")
async def delete_by_query() -> Any:
    flows = await select_flows(request.args)
    for flow in flows:
        await engine().delete_flow(flow.namespace, flow.id)
    return json_response({"count": len(flows)})


@bp.post("/flows/disable/by-ids")
async def disable_by_ids() -> Any:
    return json_response({"count": await _set_disabled(await _flows_by_ids(await _ids_body()), True)})


@bp.post("/flows/enable/by-ids")
async def enable_by_ids() -> Any:
    return json_response({"count": await _set_disabled(await _flows_by_ids(await _ids_body()), False)})


@bp.post("/flows/disable/by-query")
async def disable_by_query() -> Any:
    return json_response({"count": await _set_disabled(await select_flows(request.args), True)})


@bp.post("/flows/enable/by-query")
async def enable_by_query() -> Any:
    return json_response({"count": await _set_disabled(await select_flows(request.args), False)})
