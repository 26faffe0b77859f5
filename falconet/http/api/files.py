"""``/executions/{id}/file``: download, metas and preview of an execution's internal-storage files.

The prefix rule (Kestra's ``ExecutionController.validateFile``): the ``path`` URI must lie under the
execution's storage prefix ``/{ns}/{flowId}/executions/{id}/`` or the flow's state store
``/{ns}/{flowId}/states/``. A URI under *another* execution's prefix answers 302 to that execution's
file URL when that execution exists and 404 ``Unable to find execution id '…'`` when it does not;
anything else is 422 ``Invalid prefix path``. Malformed URIs and traversal attempts (``..``, encoded or
not, symlinks out of the folder) are refused by :class:`falconet.runtime.storage.base.Storage` (422)
before anything touches the disk or the bucket.
"""
from __future__ import annotations

import codecs
import json
from pathlib import PurePosixPath
from typing import Any, AsyncIterator
from urllib.parse import unquote, urlencode, urlsplit

import trio
from quart import Blueprint, Response, redirect, request
from werkzeug.wrappers import Response as WerkzeugResponse

from falconet.runtime.kernel.errors import IllegalArgument, NotFound
from falconet.runtime.storage.internal import namespace_path, slugify
from falconet.http.api import params
from falconet.http.api.common import content_disposition, engine, json_response
from falconet.http.api.executions import get_or_404

bp = Blueprint("files", __name__)

CHUNK = 256 * 1024
PREVIEW_INITIAL = 100
PREVIEW_MAX = 5000
PREVIEW_TEXT_LIMIT = 1024 * 1024  # characters of a TEXT preview, whatever the line lengths
_TEXT_EXTENSIONS = {"txt", "csv", "tsv", "log", "json", "yaml", "yml", "xml", "html", "sql", "py", "sh", "js",
                    "ts", "java", "md", "properties", "conf", "ini", "toml", "r", "go", "rs"}
_IMAGE_TYPES = {"png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg", "gif": "image/gif",
                "svg": "image/svg+xml", "webp": "image/webp", "bmp": "image/bmp"}


#### The prefix rule ########################################################################################

async def checked_uri(execution_id: str) -> tuple[dict[str, Any], str] | WerkzeugResponse:
    """(execution, uri) when ``?path=`` may be served for this execution, else a redirect response.

    Raises NotFound (execution or other execution missing), IllegalArgument (outside the prefixes,
    malformed URI)."""
    doc = await get_or_404(execution_id)
    uri = params.required(request.args, "path")
    storage = engine().storage
    namespace, flow_id = doc["namespace"], doc["flowId"]
    if storage.is_under(uri, storage.execution_prefix(namespace, flow_id, execution_id)):
        return doc, uri
    states = f"/{namespace_path(namespace)}/{slugify(flow_id)}/states"
    if storage.is_under(uri, states):
        return doc, uri
    other = _owning_execution(uri)
    if other is not None and other != execution_id:
        other_doc = await engine().get_execution(other)
        if other_doc is None:
            raise NotFound(f"Unable to find execution id '{other}'")
        if storage.is_under(uri, storage.execution_prefix(other_doc["namespace"], other_doc["flowId"], other)):
            target = request.path.replace(f"/executions/{execution_id}/", f"/executions/{other}/", 1)
            return redirect(f"{target}?{urlencode({'path': uri})}", code=302)
    raise IllegalArgument("Invalid prefix path")


def _owning_execution(uri: str) -> str | None:
    """The execution id in ``kestra:///…/executions/<id>/…`` (the last such segment pair), or None."""
    parts = [p for p in unquote(urlsplit(uri).path).split("/") if p]
    for i in range(len(parts) - 2, -1, -1):
        if parts[i] == "executions":
            return parts[i + 1]
    return None


async def _stream(fileobj: Any) -> AsyncIterator[bytes]:
    try:
        while True:
            chunk = await trio.to_thread.run_sync(fileobj.read, CHUNK)
            if not chunk:
                return
            yield chunk
    finally:
        fileobj.close()


#### Routes #################################################################################################

@bp.get("/executions/<execution_id>/file")
async def download(execution_id: str) -> Any:
    """The file, streamed as ``application/octet-stream`` with ``Content-Disposition: attachment``."""
    checked = await checked_uri(execution_id)
    if not isinstance(checked, tuple):  # a redirect
        return checked
    _, uri = checked
    storage = engine().storage
    size = await trio.to_thread.run_sync(storage.size, uri)
    fileobj = await trio.to_thread.run_sync(storage.open_read, uri)
    response = Response(_stream(fileobj), status=200, content_type="application/octet-stream")
    response.headers["Content-Disposition"] = content_disposition(PurePosixPath(unquote(urlsplit(uri).path)).name)
    response.headers["Content-Length"] = str(size)
    response.timeout = None
    return response


@bp.get("/executions/<execution_id>/file/metas")
async def metas(execution_id: str) -> Any:
    checked = await checked_uri(execution_id)
    if not isinstance(checked, tuple):  # a redirect
        return checked
    size = await trio.to_thread.run_sync(engine().storage.size, checked[1])
    return json_response({"size": size})


@bp.get("/executions/<execution_id>/file/preview")
async def preview(execution_id: str) -> Any:
    """``{extension, type, content, maxLine, truncated}``: ION and JSONL as LIST of rows, images as IMAGE
    (base64), markdown as MARKDOWN, other text as TEXT (first ``maxRows`` lines)."""
    checked = await checked_uri(execution_id)
    if not isinstance(checked, tuple):  # a redirect
        return checked
    uri = checked[1]
    max_rows = params.opt_int(request.args, "maxRows", PREVIEW_INITIAL, minimum=1) or PREVIEW_INITIAL
    max_rows = min(max_rows, PREVIEW_MAX)
    encoding = text_codec(params.opt_str(request.args, "encoding") or "utf-8")
    name = PurePosixPath(unquote(urlsplit(uri).path)).name
    extension = name.rpartition(".")[2].lower() if "." in name else ""
    storage = engine().storage
    result = await trio.to_thread.run_sync(_render_preview, storage, uri, extension, max_rows, encoding)
    return json_response(result)


#: text codecs that are no character set (Kestra takes Java charset names)
_NOT_CHARSETS = {"idna", "punycode", "undefined", "unicode-escape", "raw-unicode-escape"}


def text_codec(name: str) -> str:
    """The Python codec for a charset name; only text encodings (``rot13``, ``zlib_codec``, ``base64`` are
    bytes-to-bytes or str-to-str transforms): anything else is 422 with Kestra's message."""
    try:
        info = codecs.lookup(name)
    except LookupError:
        info = None
    if info is None or not info._is_text_encoding or info.name in _NOT_CHARSETS:
        raise IllegalArgument(f"Unable to preview using encoding '{name}'")
    return info.name


def _without_bom(encoding: str, raw: Any) -> str:
    """Java reads ``UTF-16``/``UTF-32`` without a byte-order mark as big-endian; Python refuses such a file."""
    if encoding not in ("utf-16", "utf-32"):
        return encoding
    head = raw.read(4)
    raw.seek(0)
    boms = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE) if encoding == "utf-16" else \
        (codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)
    return encoding if head.startswith(boms) else f"{encoding}-be"


def _render_preview(storage: Any, uri: str, extension: str, max_rows: int, encoding: str) -> dict[str, Any]:
    """Blocking: read at most ``max_rows`` rows (or lines) of the file."""
    out: dict[str, Any] = {"extension": extension}
    if extension in _IMAGE_TYPES:
        import base64

        size = storage.size(uri)
        if size > 10 * 1024 * 1024:
            raise IllegalArgument("The image is too large to preview")
        out.update(type="IMAGE", content=base64.b64encode(storage.read_bytes(uri)).decode("ascii"),
                   maxLine=max_rows, truncated=False)
        return out
    if extension == "pdf":
        out.update(type="PDF", content=None, maxLine=max_rows, truncated=False)
        return out
    rows: list[Any] = []
    truncated = False
    with storage.open_read(uri) as raw:
        text = codecs.getreader(_without_bom(encoding, raw))(raw, "replace")
        if extension == "ion":
            from falconet.runtime.storage.ionfiles import read_ion_rows

            for row in read_ion_rows(text):
                if len(rows) == max_rows:
                    truncated = True
                    break
                rows.append(row)
            out.update(type="LIST", content=rows)
        elif extension in ("jsonl", "ndjson"):
            for line in text:
                if not line.strip():
                    continue
                if len(rows) == max_rows:
                    truncated = True
                    break
                try:
                    rows.append(json.loads(line))
                except ValueError:
                    rows.append(line.rstrip("\r\n"))
            out.update(type="LIST", content=rows)
        else:
            budget = PREVIEW_TEXT_LIMIT
            while len(rows) < max_rows:
                line = text.readline(min(budget, 64 * 1024))
                if not line:
                    break
                rows.append(line)
                budget -= len(line)
                if budget <= 0:
                    break
            truncated = bool(text.read(1))
            out.update(type="MARKDOWN" if extension == "md" else "TEXT", content="".join(rows))
    out.update(maxLine=max_rows, truncated=truncated)
    return out
