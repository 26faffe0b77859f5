"""``/namespaces``: Kestra's namespace and namespace-file API.

Namespaces (there is no namespace entity in Kestra OSS: a namespace exists through its flows):

- ``GET namespaces/search?q=&page=&size=&sort=&existing=`` → ``{results: [{id, disabled, deleted}], total}``:
  the namespaces of the flows and their parents, plus ``system``; ``filters[q][EQUALS|CONTAINS]=`` too
- ``GET namespaces/{id}`` → ``{id, deleted: false}``
- ``POST namespaces/autocomplete`` ``{q, ids, existingOnly}`` → ``[id]``
- ``GET namespaces/{ns}/dependencies`` → ``{nodes, edges}`` (:func:`falconet.runtime.flow.topology.namespace_graph`)

Namespace files (:mod:`falconet.runtime.storage.nsfiles`; every ``path`` is checked, a bad one is a 422):

- ``GET …/files?path=[&revision=]`` content; ``POST …/files?path=`` multipart ``fileContent`` creates or
  replaces a file (a ``.zip`` file name unpacks it; ``/_flows/<id>.yml`` imports a flow); ``PUT …/files``
  with ``from`` and ``to`` moves, with ``path`` and a multipart body replaces; ``DELETE …/files?path=``
- ``GET …/files/directory?path=`` lists (``[FileAttributes]``), ``POST …/files/directory?path=`` creates
- ``GET …/files/stats?path=`` attributes, ``GET …/files/revisions?path=`` → ``[{revision}]``
- ``GET …/files/search?q=`` → ``["/path"]``; ``GET …/files/export`` → zip of the files and ``_flows/*.yml``
"""
from __future__ import annotations

import io
import re
import zipfile
from typing import Any

import trio
from quart import Blueprint, Response, request

from falconet.runtime.kernel.errors import BadRequest, IllegalArgument, NotFound
from falconet.runtime.kernel.limits import json_loads
from falconet.runtime.storage.nsfiles import MAX_FLOW_BYTES, NamespaceFiles, clean_path, guard, is_flows_path
from falconet.runtime.storage.internal import InvalidStoragePath, namespace_path
from falconet.runtime.flow.topology import namespace_graph
from falconet.http.multipart import is_multipart, read_body, read_form
from falconet.http.api.common import content_disposition, empty, engine, json_response, paged, state
from falconet.http.api.params import opt_bool, opt_int, paging, required

bp = Blueprint("namespaces", __name__)

SYSTEM_NAMESPACE = "system"
BODY_LIMIT = 1024 * 1024
_FILTER = re.compile(r"^filters\[(\w+)\]\[(\w+)\]$")


def _files() -> NamespaceFiles:
    return NamespaceFiles(engine().storage)


def _namespace(namespace: str) -> str:
    """The namespace as a storage location (InvalidStoragePath → 422 for an unusable name)."""
    namespace_path(namespace)
    return namespace


async def _thread(fn: Any, *args: Any) -> Any:
    return await trio.to_thread.run_sync(fn, *args)


#### Namespaces #############################################################################################

async def _all_namespaces() -> list[str]:
    found = {SYSTEM_NAMESPACE}
    for flow in await engine().list_flows():
        parts = flow.namespace.split(".")
        found.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
    return sorted(found)


def _query_filter() -> str | None:
    """``q`` or Kestra's ``filters[q][EQUALS|CONTAINS]`` (the namespace search's only field); any other
    parameter is a 400 naming it."""
    q = request.args.get("q")
    for name, value in request.args.items(multi=True):
        m = _FILTER.match(name)
        if name in ("q", "page", "size", "sort", "existing"):
            continue
        if m and m.group(1) in ("q", "query") and m.group(2) in ("EQUALS", "CONTAINS"):
            q = value
            continue
        raise BadRequest(f"Unknown query parameter '{name}' for namespaces search "
                         "(expected q, page, size, sort, existing, filters[q][EQUALS|CONTAINS])")
    return q or None


@bp.get("/namespaces/search")
async def search() -> Any:
    q = _query_filter()
    page, size, sort = paging(request.args)
    opt_bool(request.args, "existing", False)
    names = await _all_namespaces()
    if q:
        names = [n for n in names if q.lower() in n.lower()]
    if sort and sort[0].partition(":")[2].lower() == "desc":
        names.reverse()
    start = (page - 1) * size
    results = [{"id": n, "disabled": True, "deleted": False} for n in names[start:start + size]]
    return paged(results, len(names))


@bp.post("/namespaces/autocomplete")
async def autocomplete() -> Any:
    raw = await read_body(request, BODY_LIMIT)
    try:
        body = json_loads(raw) if raw.strip() else {}
    except ValueError as exc:
        raise BadRequest(f"The request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict) or set(body) - {"q", "ids", "existingOnly"}:
        raise BadRequest("The body is {q, ids, existingOnly}")
    q, ids = body.get("q"), body.get("ids") or []
    if (q is not None and not isinstance(q, str)) or not isinstance(ids, list) \
            or not all(isinstance(i, str) for i in ids):
        raise BadRequest("'q' is a string and 'ids' a list of strings")
    names = await _all_namespaces()
    out = [n for n in ids if n in names] + [n for n in names if (not q or q.lower() in n.lower()) and n not in ids]
    return json_response(out)


@bp.get("/namespaces/<namespace>")
async def get_namespace(namespace: str) -> Any:
    return json_response({"id": namespace, "deleted": False})


@bp.get("/namespaces/<namespace>/dependencies")
async def dependencies(namespace: str) -> Any:
    opt_bool(request.args, "destinationOnly", False)
    return json_response(namespace_graph(await engine().list_flows(), namespace))


#### Namespace files ########################################################################################

def _path(name: str = "path", *, allow_root: bool = True) -> str:
    return clean_path(request.args.get(name), allow_root=allow_root)


@bp.get("/namespaces/<namespace>/files/search")
async def search_files(namespace: str) -> Any:
    q = required(request.args, "q")
    paths = await _thread(_files().all_files, _namespace(namespace))
    return json_response([p for p in paths if q in p])


@bp.get("/namespaces/<namespace>/files/stats")
async def file_stats(namespace: str) -> Any:
    path = guard(_path())
    return json_response(await _thread(_files().attributes, _namespace(namespace), path))


@bp.get("/namespaces/<namespace>/files/revisions")
async def file_revisions(namespace: str) -> Any:
    path = guard(_path(allow_root=False))
    numbers = await _thread(_files().revisions, _namespace(namespace), path)
    return json_response([{"revision": n} for n in numbers])


@bp.get("/namespaces/<namespace>/files/directory")
async def list_directory(namespace: str) -> Any:
    path = guard(_path())
    return json_response(await _thread(_files().list_dir, _namespace(namespace), path))


@bp.post("/namespaces/<namespace>/files/directory")
async def create_directory(namespace: str) -> Any:
    path = guard(_path(allow_root=False))
    await _thread(_files().make_dir, _namespace(namespace), path)
    return empty(200)


@bp.get("/namespaces/<namespace>/files")
async def download(namespace: str) -> Any:
    path = guard(_path(allow_root=False))
    revision = opt_int(request.args, "revision", minimum=1)

    handle = await _thread(_files().open, _namespace(namespace), path, revision)

    async def chunks() -> Any:
        try:
            while chunk := await _thread(handle.read, 1 << 16):
                yield chunk
        finally:
            handle.close()
    return Response(chunks(), status=200, content_type="application/octet-stream")


async def _import_flow(namespace: str, name: str, data: bytes) -> None:
    if len(data) > MAX_FLOW_BYTES:
        raise IllegalArgument(f"flow file {name} is larger than {MAX_FLOW_BYTES} bytes")
    source = data.decode("utf-8", "replace")
    source = re.sub(r"(?m)^namespace: .*$", f"namespace: {namespace}", source, count=1)
    await engine().put_flow(source)


async def _upload(namespace: str, path: str) -> None:
    if not is_multipart(request.headers.get("Content-Type")):
        raise BadRequest("A namespace file is uploaded as multipart/form-data with a 'fileContent' part")
    async with read_form(request, state().upload_dir) as form:
        part = next((f for f in form.files if f.name == "fileContent"), None)
        if part is None:
            raise BadRequest("Missing the 'fileContent' file part")
        files = _files()
        if part.filename.lower().endswith(".zip"):
            flows: list[tuple[str, bytes]] = []
            await _thread(lambda: files.put_zip(namespace, part.path, lambda n, d: flows.append((n, d)),
                                                part.path.parent))
            for name, data in flows:
                await _import_flow(namespace, name, data)
            return
        if not path:
            raise InvalidStoragePath("a file path is required")
        if is_flows_path(path):
            if path.count("/") != 2:
                raise InvalidStoragePath(f"Invalid flow file path: {path}")
            if part.size > MAX_FLOW_BYTES:
                raise IllegalArgument(f"flow file {path} is larger than {MAX_FLOW_BYTES} bytes")
            await _import_flow(namespace, path, await _thread(part.path.read_bytes))
            return
        await _thread(files.put, namespace, path, part.path)


@bp.post("/namespaces/<namespace>/files")
async def upload(namespace: str) -> Any:
    await _upload(_namespace(namespace), _path())
    return empty(200)


@bp.put("/namespaces/<namespace>/files")
async def move_or_replace(namespace: str) -> Any:
    """``from`` + ``to``: move (Kestra); ``path`` + a multipart body: replace the file (Kestra 1.x)."""
    namespace = _namespace(namespace)
    if "from" in request.args or "to" in request.args:
        src = guard(clean_path(required(request.args, "from"), allow_root=False))
        dest = guard(clean_path(required(request.args, "to"), allow_root=False))
        await _thread(_files().move, namespace, src, dest)
        return empty(200)
    await _upload(namespace, guard(_path(allow_root=False)))
    return empty(200)


@bp.delete("/namespaces/<namespace>/files")
async def delete(namespace: str) -> Any:
    path = guard(_path(allow_root=False))
    if not await _thread(_files().delete, _namespace(namespace), path):
        raise NotFound(f"namespace file not found: {path}")
    return empty(200)


@bp.get("/namespaces/<namespace>/files/export")
async def export(namespace: str) -> Any:
    namespace = _namespace(namespace)
    flows = [f for f in await engine().list_flows(namespace) if f.namespace == namespace]
    files = _files()

    def build() -> bytes:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in files.all_files(namespace):
                with files.open(namespace, path) as src, archive.open(path.lstrip("/"), "w") as dst:
                    while chunk := src.read(1 << 20):
                        dst.write(chunk)
            for flow in sorted(flows, key=lambda f: f.id):
                archive.writestr(f"_flows/{flow.id}.yml", flow.source)
        return buffer.getvalue()
    data = await _thread(build)
    response = Response(data, status=200, content_type="application/octet-stream")
    response.headers["Content-Disposition"] = content_disposition(f"{namespace}_files.zip")
    return response
