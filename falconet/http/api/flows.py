"""``/flows``: create/update from YAML, read (``source``, ``revision``), revisions, delete, search, validate,
namespace update, bulk, distinct namespaces, delete by ids.

Flow bodies are YAML (``application/x-yaml``); Kestra's deprecated JSON body works too, JSON being YAML.
A multi-document body (``---`` lines) is split into one source per document, each kept exactly as sent.
"""
from __future__ import annotations

import re
from typing import Any

import yaml
from quart import Blueprint, request

from falconet.runtime.kernel.errors import InvalidEntity, NotFound, Violation
from falconet.runtime.flow.parse.yamlload import safe_load as safe_load_yaml
from falconet.runtime.kernel.limits import json_loads
from falconet.http import filters
from falconet.http.multipart import read_body
from falconet.http.api import params
from falconet.http.api.common import empty, engine, json_response, page_slice, paged, public_flow

bp = Blueprint("flows", __name__)

SOURCE_LIMIT = 8 * 1024 * 1024
_DOC_SEPARATOR = re.compile(r"^---[ \t]*(?:#.*)?$", re.MULTILINE)


#### Helpers ################################################################################################

async def source_body() -> str:
    raw = await read_body(request, SOURCE_LIMIT)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidEntity([Violation("source", "the flow source is not UTF-8 text")]) from None


def split_documents(text: str) -> list[str]:
    """The non-empty YAML documents of a multi-document body, each as written."""
    parts = _DOC_SEPARATOR.split(text)
    return [p.strip("\n") + "\n" for p in parts if p.strip() and not _only_comments(p)]


def _only_comments(text: str) -> bool:
    return all(not line.strip() or line.lstrip().startswith("#") for line in text.splitlines())


def flow_key(source: str) -> tuple[str, str] | None:
    """(namespace, id) of a source, or None when it does not say (validation will report it)."""
    try:
        doc = safe_load_yaml(source)
    except yaml.YAMLError:
        return None
    if isinstance(doc, dict) and isinstance(doc.get("namespace"), str) and isinstance(doc.get("id"), str):
        return doc["namespace"], doc["id"]
    return None


def flow_json(flow: Any, source: bool = True) -> dict[str, Any]:
    return public_flow(flow, source)


def _matches_q(flow: Any, q: str) -> bool:
    q = q.lower()
    return q in flow.id.lower() or q in flow.namespace.lower() or q in (flow.description or "").lower()


def _has_labels(flow: Any, wanted: list[tuple[str, str]]) -> bool:
    have = {(lb.get("key"), lb.get("value")) for lb in flow.labels}
    return all(pair in have for pair in wanted)


#### Create, update, read, delete ###########################################################################

@bp.post("/flows")
async def create_flow() -> Any:
    """200 ``FlowWithSource``; 422 when invalid or when the id already exists."""
    flow = await engine().create_flow(await source_body())
    return json_response(flow_json(flow))


@bp.put("/flows/<namespace>/<flow_id>")
async def update_flow(namespace: str, flow_id: str) -> Any:
    """200 ``FlowWithSource`` (same revision when the source is unchanged); 404 missing; 422 invalid or id mismatch."""
    flow = await engine().update_flow(namespace, flow_id, await source_body())
    return json_response(flow_json(flow))


@bp.get("/flows/<namespace>/<flow_id>")
async def get_flow(namespace: str, flow_id: str) -> Any:
    args = request.args
    revision = params.opt_int(args, "revision", None, minimum=1)
    allow_deleted = params.opt_bool(args, "allowDeleted", False)
    flow = await engine().get_flow(namespace, flow_id, revision, allow_deleted=allow_deleted)
    if flow is None:
        raise NotFound(f"Unable to find flow '{namespace}.{flow_id}'" + (f" revision {revision}" if revision else ""))
    return json_response(flow_json(flow, source=params.opt_bool(args, "source", False)))


@bp.get("/flows/<namespace>/<flow_id>/revisions")
async def list_revisions(namespace: str, flow_id: str) -> Any:
    flows = await engine().flows.list_revisions(namespace, flow_id)
    if not flows:
        raise NotFound(f"Unable to find flow '{namespace}.{flow_id}'")
    return json_response([flow_json(f) for f in flows])


@bp.get("/flows/<namespace>/<flow_id>/tasks/<task_id>")
async def get_task(namespace: str, flow_id: str, task_id: str) -> Any:
    revision = params.opt_int(request.args, "revision", None, minimum=1)
    flow = await engine().get_flow(namespace, flow_id, revision)
    task = flow.find_task(task_id) if flow is not None else None
    if task is None:
        raise NotFound(f"Unable to find task '{task_id}' in flow '{namespace}.{flow_id}'")
    return json_response(task.raw)


@bp.delete("/flows/<namespace>/<flow_id>")
async def delete_flow(namespace: str, flow_id: str) -> Any:
    """204; 404 when missing. A soft delete: a ``deleted: true`` revision is written."""
    await engine().delete_flow(namespace, flow_id)
    return empty(204)


#### Listing and search #####################################################################################

#: legacy parameters of GET /flows/search and the flow by-query routes
SEARCH_PARAMS = filters.PAGING | {"q", "scope", "namespace", "labels"}

#: how each Kestra filter field reads a flow (a ``Flow`` model object)
ACCESSORS: dict[str, Any] = {
    "q": lambda f: (f.id, f.namespace, f.description or ""),
    "scope": lambda f: filters.scope_of(f.namespace),
    "namespace": lambda f: f.namespace,
    "flowId": lambda f: f.id,
    "labels": lambda f: f.labels,
}


async def select_flows(args: Any, allowed: Any = ()) -> list[Any]:
    """The flows the legacy parameters and ``filters[…]`` of the request select (400 for unknown ones)."""
    where = filters.parse(args, "FLOW", SEARCH_PARAMS | set(allowed))
    labels = params.parse_labels(args.getlist("labels"))
    q = params.opt_str(args, "q")
    scopes = [v for raw in args.getlist("scope") for v in raw.split(",") if v]
    if scopes:
        where = filters.Group("and", (*where.children, filters.typed_leaf("scope", "IN", "scope", tuple(scopes))))
    flows = await engine().list_flows(params.opt_str(args, "namespace"))
    return [f for f in flows if (q is None or _matches_q(f, q)) and _has_labels(f, labels)
            and where.matches(f, ACCESSORS)]


@bp.get("/flows/search")
async def search_flows() -> Any:
    """``PagedResults<Flow>``: Kestra's ``filters[…]`` and the legacy ``q`` (id, namespace, description),
    ``namespace`` prefix, ``labels``, ``scope``."""
    page, size, sort = params.paging(request.args)
    flows = await select_flows(request.args)
    docs = params.sort_items([flow_json(f, source=False) for f in flows], sort, ["namespace:asc", "id:asc"])
    return paged(page_slice(docs, page, size), len(docs))


@bp.get("/flows/source")
async def search_sources() -> Any:
    """Full-text search over sources: ``PagedResults<{"model": Flow, "fragments": [matching lines]}>``."""
    args = request.args
    filters.check_params(args, filters.PAGING | {"q", "namespace"})
    page, size, sort = params.paging(args)
    q = (params.opt_str(args, "q") or "").lower()
    rows = []
    for flow in await engine().list_flows(params.opt_str(args, "namespace")):
        lines = [line.strip() for line in flow.source.splitlines() if q in line.lower()] if q else []
        if q and not lines:
            continue
        rows.append({"model": flow_json(flow, source=False), "fragments": lines[:5]})
    rows = params.sort_items(rows, [f"model.{s}" for s in sort], ["model.namespace:asc", "model.id:asc"])
    return paged(page_slice(rows, page, size), len(rows))


@bp.get("/flows/distinct-namespaces")
async def distinct_namespaces() -> Any:
    filters.check_params(request.args, ("q",))
    q = (params.opt_str(request.args, "q") or "").lower()
    names = sorted({f.namespace for f in await engine().list_flows(None) if q in f.namespace.lower()})
    return json_response(names)


@bp.get("/flows/<namespace>")
async def list_namespace(namespace: str) -> Any:
    """The flows of exactly this namespace (no sub-namespaces)."""
    flows = [f for f in await engine().list_flows(namespace) if f.namespace == namespace]
    return json_response([flow_json(f, source=False) for f in sorted(flows, key=lambda f: f.id)])


#### Validate, namespace update, bulk #######################################################################

@bp.post("/flows/validate")
async def validate() -> Any:
    """One result per YAML document; never a 4xx for an invalid flow (the problems are in ``constraints``)."""
    return json_response(await engine().flows.validate_source(await source_body()))


async def _apply_sources(sources: list[str], delete_scope: set[str] | None) -> list[dict[str, Any]]:
    """Validate every source first (422 listing all problems), then create or update each; then, when
    ``delete_scope`` is a set of namespaces, delete the flows of those namespaces absent from the body."""
    eng = engine()
    problems = []
    for index, source in enumerate(sources):
        for result in await eng.flows.validate_source(source):
            if result.get("constraints"):
                problems.append(Violation(f"flows[{index}]", str(result["constraints"])))
    if problems:
        raise InvalidEntity(problems)
    out, kept = [], set()
    for source in sources:
        key = flow_key(source)
        if key is None:
            raise InvalidEntity([Violation("source", "a flow must have an id and a namespace")])
        existing = await eng.store.get_flow(*key)  # the record: a stored flow that no longer parses is replaced
        flow = await (eng.update_flow(key[0], key[1], source) if existing is not None else eng.create_flow(source))
        kept.add(key)
        out.append(flow_json(flow))
    for namespace in sorted(delete_scope or ()):
        for flow in await eng.list_flows(namespace):
            if flow.namespace == namespace and (flow.namespace, flow.id) not in kept:
                await eng.delete_flow(flow.namespace, flow.id)
    return out


@bp.post("/flows/<namespace>")
async def update_namespace(namespace: str) -> Any:
    """Replace a namespace's flows with the documents of the body (``delete=true``: others are deleted)."""
    delete = params.opt_bool(request.args, "delete", True)
    sources = split_documents(await source_body())
    for index, source in enumerate(sources):
        key = flow_key(source)
        if key is not None and key[0] != namespace:
            raise InvalidEntity([Violation(
                f"flows[{index}].namespace",
                f"flow namespace '{key[0]}' is not the namespace '{namespace}' being updated")])
    return json_response(await _apply_sources(sources, {namespace} if delete else None))


@bp.post("/flows/bulk")
async def bulk_update() -> Any:
    """Create or update every document; with ``delete=true`` (the default, as Kestra) the flows absent from
    the body are deleted — but only in the namespaces the body names, never elsewhere."""
    delete = params.opt_bool(request.args, "delete", True)
    sources = split_documents(await source_body())
    scope = {k[0] for k in (flow_key(s) for s in sources) if k is not None} if delete else None
    return json_response(await _apply_sources(sources, scope))


@bp.delete("/flows/delete/by-ids")
async def delete_by_ids() -> Any:
    """Body ``[{"namespace", "id"}]``: ``{"count": n}`` of flows deleted (missing ones are skipped)."""
    raw = await read_body(request, SOURCE_LIMIT)
    try:
        body = json_loads(raw or b"[]")
    except ValueError as exc:
        raise InvalidEntity([Violation("body", f"Unable to parse the JSON body: {exc}")]) from None
    if not isinstance(body, list) or not all(isinstance(i, dict) and isinstance(i.get("namespace"), str)
                                             and isinstance(i.get("id"), str) for i in body):
        raise InvalidEntity([Violation("body", "expected a list of {\"namespace\", \"id\"}")])
    count = 0
    for item in body:
        try:
            await engine().delete_flow(item["namespace"], item["id"])
            count += 1
        except NotFound:
            continue
    return json_response({"count": count})
