"""Streaming ``multipart/form-data`` parsing: text parts in memory (bounded), file parts to temp files.

Why ``python-multipart`` (``python_multipart.MultipartParser``) and not Quart's ``request.files``: Quart
(werkzeug's form parser) reads the whole request body before parsing it and keeps small files in
memory; ``MultipartParser`` is a push parser whose callbacks see each slice of part data as it
arrives, so a file part goes straight from the socket to disk and memory stays bounded by one network
chunk (about 64 KB) whatever the upload size. It is the parser Starlette and FastAPI use, it enforces
header count/size limits, and it has no dependencies. It is imported by the first multipart body parsed: a
server that receives none does not load it.

File data is written with plain blocking ``write`` calls from inside the parser's callbacks, on the trio
thread, on purpose: a write of one network chunk to a freshly created file lands in the page cache in
microseconds, and doing it inline is what keeps memory bounded — the request body reader and this
parser alternate chunk by chunk, so the body buffer never runs ahead (a thread hop per chunk would let
it). A 128 MB upload grows the server's RSS by a few MB (``tests/http/test_uploads.py`` measures it).

Usage::

    async with read_form(request, tmp_root) as form:
        form.fields   # [(name, text)] in body order
        form.files    # [UploadedFile(name, filename, path, content_type, size)] in body order
    # the temp files (and their folder) are gone here, unless the engine moved them away
"""
from __future__ import annotations

import contextlib
import dataclasses
import shutil
import tempfile
import urllib.parse
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, AsyncIterator

import trio
from werkzeug.exceptions import RequestTimeout

from falconet.runtime.kernel.errors import BadRequest, PayloadTooLarge

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks

#: a text part larger than this is refused (413): text parts are input values, kept in memory
MAX_FIELD_SIZE = 8 * 1024 * 1024
#: parts (or ``application/x-www-form-urlencoded`` fields) per request
MAX_PARTS = 1000
#: a whole ``application/x-www-form-urlencoded`` body (read into memory, then parsed)
MAX_URLENCODED_SIZE = 8 * 1024 * 1024
#: seconds a request body may stay silent before the request is answered 408 (a trickling client
#: cannot hold a connection and a task forever)
BODY_IDLE_TIMEOUT = 30.0


@dataclasses.dataclass
class UploadedFile:
    """One file part, fully written to ``path`` (a temp file owned by the :func:`read_form` block)."""

    name: str                 # the part name
    filename: str             # the filename the client sent ("" when it sent an empty one)
    path: Path
    content_type: str | None
    size: int


@dataclasses.dataclass
class Form:
    fields: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    files: list[UploadedFile] = dataclasses.field(default_factory=list)


#### The push parser ########################################################################################

class _PartCollector:
    """The callbacks of one :class:`MultipartParser`: assemble headers, route data to memory or disk."""

    def __init__(self, tmp_root: Path):
        self.tmp_root = tmp_root
        self.tmp_dir: Path | None = None   # created on the first file part
        self.form = Form()
        self.ended = False
        self._header_field = bytearray()
        self._header_value = bytearray()
        self._headers: dict[str, str] = {}
        self._name: str | None = None
        self._filename: str | None = None
        self._text: bytearray | None = None
        self._file: IO[bytes] | None = None
        self._upload: UploadedFile | None = None
        self._parts = 0

    def callbacks(self) -> MultipartCallbacks:
        return {
            "on_part_begin": self._part_begin,
            "on_header_field": lambda d, s, e: self._header_field.extend(d[s:e]),
            "on_header_value": lambda d, s, e: self._header_value.extend(d[s:e]),
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
            "on_part_end": self._part_end,
            "on_end": self._end,
        }

    def _part_begin(self) -> None:
        self._parts += 1
        if self._parts > MAX_PARTS:
            raise BadRequest(f"Too many parts in the multipart body (at most {MAX_PARTS})")
        self._headers = {}

    def _header_end(self) -> None:
        # latin-1 maps bytes to characters one to one: parse_options_header encodes back to the raw bytes,
        # and the UTF-8 part names and file names browsers send decode as UTF-8 in _headers_finished
        self._headers[self._header_field.decode("latin-1").strip().lower()] = self._header_value.decode(
            "latin-1").strip()
        self._header_field.clear()
        self._header_value.clear()

    def _headers_finished(self) -> None:
        disposition = self._headers.get("content-disposition")
        if disposition is None:
            raise BadRequest("A multipart part has no Content-Disposition header")
        from python_multipart.multipart import parse_options_header

        _, options = parse_options_header(disposition)
        name = options.get(b"name")
        if name is None:
            raise BadRequest("A multipart part has no name")
        self._name = name.decode("utf-8", "replace")
        filename = options.get(b"filename")
        self._filename = None if filename is None else filename.decode("utf-8", "replace")
        if self._filename is None:
            self._text = bytearray()
            return
        if self.tmp_dir is None:
            self.tmp_root.mkdir(parents=True, exist_ok=True)
            self.tmp_dir = Path(tempfile.mkdtemp(prefix="upload-", dir=self.tmp_root))
        path = self.tmp_dir / f"part-{self._parts}"
        self._file = open(path, "wb")  # noqa: ASYNC230 - see the module docstring
        self._upload = UploadedFile(self._name, self._filename, path, self._headers.get("content-type"), 0)

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._file is not None and self._upload is not None:
            self._file.write(data[start:end])
            self._upload.size += end - start
        elif self._text is not None:
            if len(self._text) + end - start > MAX_FIELD_SIZE:
                raise PayloadTooLarge(MAX_FIELD_SIZE, what=f"size of the text part '{self._name}'")
            self._text.extend(data[start:end])

    def _part_end(self) -> None:
        if self._file is not None and self._upload is not None:
            self._file.close()
            self._file = None
            self.form.files.append(self._upload)
            self._upload = None
        elif self._text is not None and self._name is not None:
            self.form.fields.append((self._name, self._text.decode("utf-8", "replace")))
            self._text = None

    def _end(self) -> None:
        self.ended = True

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def _boundary(content_type: str) -> bytes:
    from python_multipart.multipart import parse_options_header

    ctype, options = parse_options_header(content_type)
    if ctype != b"multipart/form-data":
        raise BadRequest(f"Expected a multipart/form-data body, got '{ctype.decode('latin-1')}'")
    boundary = options.get(b"boundary")
    if not boundary:
        raise BadRequest("The multipart/form-data Content-Type has no boundary")
    return boundary


#### Public API #############################################################################################

def is_multipart(content_type: str | None) -> bool:
    return content_type is not None and content_type.split(";", 1)[0].strip().lower() == "multipart/form-data"


@contextlib.asynccontextmanager
async def read_form(request: Any, tmp_root: Path) -> AsyncIterator[Form]:
    """Parse the body of ``request`` (a Quart request) as it streams in.

    - ``multipart/form-data``: text parts become ``form.fields``, parts with a ``filename`` become
      ``form.files`` written under a fresh folder in ``tmp_root``;
    - ``application/x-www-form-urlencoded``: the body (at most ``MAX_URLENCODED_SIZE`` bytes and
      ``MAX_PARTS`` fields) becomes ``form.fields``;
    - no body, or no Content-Type: an empty form.

    Raises :class:`BadRequest` for a malformed or truncated body or another content type with a body;
    :class:`PayloadTooLarge` for a text part over ``MAX_FIELD_SIZE`` or an oversized urlencoded body. On exit
    (normal, error or cancel) every temp file left in the folder is deleted; callers that keep a file must move
    it away inside the block.
    """
    content_type = request.headers.get("Content-Type")
    collector: _PartCollector | None = None
    try:
        if is_multipart(content_type):
            from python_multipart.exceptions import MultipartParseError
            from python_multipart.multipart import MultipartParser

            collector = _PartCollector(tmp_root)
            parser = MultipartParser(_boundary(content_type), collector.callbacks())
            try:
                async for chunk in body_chunks(request):
                    parser.write(chunk)
                parser.finalize()
            except MultipartParseError as exc:
                raise BadRequest(f"Malformed multipart body: {exc}") from None
            if not collector.ended:
                raise BadRequest("Truncated multipart body: the closing boundary is missing")
            yield collector.form
        elif content_type and content_type.split(";", 1)[0].strip().lower() == "application/x-www-form-urlencoded":
            yield Form(fields=parse_urlencoded(await read_body(request, MAX_URLENCODED_SIZE)))
        else:
            if not _no_body(request.headers):
                async for chunk in body_chunks(request):
                    if chunk:
                        raise BadRequest(f"Expected a multipart/form-data body, got '{content_type}'")
            yield Form()
    finally:
        if collector is not None:
            collector.close()
            if collector.tmp_dir is not None:
                with trio.CancelScope(shield=True):
                    await trio.to_thread.run_sync(shutil.rmtree, collector.tmp_dir, True)


def _no_body(headers: Any) -> bool:
    """A request declaring an empty body (``Content-Length: 0``, not chunked): nothing to read or wait for. Without
    the header a body may still come (HTTP/2, an ASGI client), so it is read."""
    length = headers.get("Content-Length")
    return length is not None and length.strip() == "0" and headers.get("Transfer-Encoding") is None


async def body_chunks(request: Any) -> AsyncIterator[bytes]:
    """The request body as it arrives; :class:`~werkzeug.exceptions.RequestTimeout` (408) when no data
    came for ``BODY_IDLE_TIMEOUT`` seconds."""
    chunks = request.body.__aiter__()
    while True:
        with trio.move_on_after(BODY_IDLE_TIMEOUT) as silent:
            try:
                chunk = await chunks.__anext__()
            except StopAsyncIteration:
                return
        if silent.cancelled_caught:
            raise RequestTimeout(f"No request body data for {BODY_IDLE_TIMEOUT:g} seconds")
        yield chunk


def parse_urlencoded(raw: bytes) -> list[tuple[str, str]]:
    """``a=1&b=x%20y`` -> ``[("a", "1"), ("b", "x y")]``; at most ``MAX_PARTS`` fields (400 beyond)."""
    try:
        return urllib.parse.parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True,
                                      max_num_fields=MAX_PARTS, errors="replace")
    except ValueError:
        raise BadRequest(f"Too many fields in the form body (at most {MAX_PARTS})") from None


async def read_body(request: Any, limit: int) -> bytes:
    """The whole request body, refused with :class:`PayloadTooLarge` (413) beyond ``limit`` bytes: at once
    when the ``Content-Length`` says so, otherwise as soon as more than ``limit`` bytes arrived. Memory
    stays bounded by ``limit`` plus one network chunk."""
    declared = request.content_length
    if declared is not None and declared > limit:
        raise PayloadTooLarge(limit, declared)
    out = bytearray()
    async for chunk in body_chunks(request):
        out += chunk
        if len(out) > limit:
            raise PayloadTooLarge(limit, declared)
    return bytes(out)
