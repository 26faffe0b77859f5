"""The internal storage interface: ``kestra:///<path>`` URIs, their validation and Kestra's layout.

Layout (Kestra's ``StorageContext``; namespace dots become folders, flowId and taskId are slugified):

- execution root  ``/{ns}/{flowId}/executions/{executionId}``
- task files      ``/{ns}/{flowId}/executions/{executionId}/tasks/{taskId}/{taskRunId}/{file}``
- inputs          ``/{ns}/{flowId}/executions/{executionId}/inputs/{inputId}/{file}``
- trigger files   ``/{ns}/{flowId}/executions/{executionId}/trigger/{triggerId}/{file}``
- namespace files ``/{ns}/_files/{path}``

Safety: every URI or path is checked before a backend sees it — scheme ``kestra`` with an empty
authority, no NUL, no ``.``/``..`` segment (also when percent-encoded: URIs are percent-decoded once,
plain paths are taken literally), bounded name and path lengths. Violations raise
:class:`InvalidStoragePath`; a missing file raises :class:`StorageFileNotFound`. A backend addresses
files only through :meth:`Storage._parts`, so no client string can leave its folder or bucket prefix.

Backends: :class:`falconet.runtime.storage.internal.InternalStorage` (a local folder, the default) and
:class:`falconet.runtime.storage.s3.S3Storage` (an S3 bucket; optional extra ``s3``). Their methods are
blocking; trio callers run them on worker threads (the ``*_async`` wrappers use ``trio.to_thread``).
"""
from __future__ import annotations

import abc
import builtins
import contextlib
import io
import re
import unicodedata
from pathlib import Path
from typing import BinaryIO
from urllib.parse import quote, unquote, urlsplit

import trio

from falconet.runtime.kernel.errors import FalconetError, IllegalArgument, NotFound

__all__ = [
    "Storage", "StorageError", "InvalidStoragePath", "StorageFileNotFound", "slugify", "namespace_path",
]

SCHEME = "kestra"


#### Errors #################################################################################################

class StorageError(FalconetError):
    """Base class: a bad URI/path, a traversal attempt, or a missing file."""


#: longest file name and storage path (bytes) accepted: the file system's limits, less room for the base folder
NAME_MAX = 255
PATH_MAX = 3072


class InvalidStoragePath(StorageError, IllegalArgument):
    """Not a valid ``kestra:///`` URI or storage path, or it would escape the storage folder (HTTP 422)."""


class StorageFileNotFound(StorageError, NotFound):
    """The URI is valid but no file exists there (HTTP 404)."""


#### Naming #################################################################################################

_NON_WORD = re.compile(r"[^\w-]", re.ASCII)
_WHITESPACE = re.compile(r"\s")
_DASHES = re.compile(r"-{2,}")


def slugify(value: str) -> str:
    """Kestra's ``Slugify.of``: whitespace and ``_`` -> ``-``, accents stripped, every other
    non-``[A-Za-z0-9-]`` character -> ``-``, repeated dashes collapsed, edge dashes removed, lower-cased
    (Kestra stores the ``each_split`` task's files under ``tasks/each-split/``)."""
    s = _WHITESPACE.sub("-", value).replace("_", "-")
    s = "".join(c for c in unicodedata.normalize("NFD", s) if not unicodedata.combining(c))
    s = _NON_WORD.sub("-", s)
    s = _DASHES.sub("-", s).strip("-")
    return s.lower()


def _segment(value: str, what: str) -> str:
    if (not isinstance(value, str) or not value or value in (".", "..") or "/" in value or "\\" in value
            or "\x00" in value):
        raise InvalidStoragePath(f"invalid {what} {value!r} for a storage path")
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidStoragePath(f"invalid {what} {value!r}: not valid Unicode") from None
    if size > NAME_MAX:
        raise InvalidStoragePath(f"invalid {what} {value[:40]!r}…: longer than {NAME_MAX} bytes")
    return value


def namespace_path(namespace: str) -> str:
    """``company.team`` -> ``company/team`` (each part must be a valid path segment)."""
    if not isinstance(namespace, str) or not namespace:
        raise InvalidStoragePath(f"invalid namespace {namespace!r}")
    return "/".join(_segment(p, "namespace") for p in namespace.split("."))


def _slug(value: str, what: str) -> str:
    s = slugify(value) if isinstance(value, str) else ""
    if not s:
        raise InvalidStoragePath(f"{what} {value!r} has an empty slug")
    return s


#### Interface ##############################################################################################

class Storage(abc.ABC):
    """Files addressed by ``kestra:///<path>``: names and validation here, I/O in each backend."""

    # -- names ----------------------------------------------------------------------------------------

    def execution_prefix(self, namespace: str, flow_id: str, execution_id: str) -> str:
        """``/company/team/hello/executions/<id>`` (a storage path, no scheme)."""
        return (f"/{namespace_path(namespace)}/{_slug(flow_id, 'flow id')}/executions/"
                f"{_segment(execution_id, 'execution id')}")

    def task_prefix(self, namespace: str, flow_id: str, execution_id: str, task_id: str, task_run_id: str) -> str:
        """``<execution prefix>/tasks/<taskId slug>/<taskRunId>``."""
        return (f"{self.execution_prefix(namespace, flow_id, execution_id)}/tasks/{_slug(task_id, 'task id')}/"
                f"{_segment(task_run_id, 'task run id')}")

    def input_prefix(self, namespace: str, flow_id: str, execution_id: str, input_id: str) -> str:
        """``<execution prefix>/inputs/<inputId>``."""
        return f"{self.execution_prefix(namespace, flow_id, execution_id)}/inputs/{_segment(input_id, 'input id')}"

    def trigger_prefix(self, namespace: str, flow_id: str, execution_id: str, trigger_id: str) -> str:
        """``<execution prefix>/trigger/<triggerId>``."""
        return f"{self.execution_prefix(namespace, flow_id, execution_id)}/trigger/{_segment(trigger_id, 'trigger id')}"

    def namespace_files_prefix(self, namespace: str) -> str:
        """``/company/team/_files``: the namespace files of a namespace."""
        return f"/{namespace_path(namespace)}/_files"

    def uri(self, path: str) -> str:
        """``kestra://`` + the path (a leading ``/`` is added; characters outside a URI path are
        percent-encoded). The path is validated like every other."""
        parts = self._parts(path, from_uri=False)
        return f"{SCHEME}:///" + quote("/".join(parts), safe="/!$&'()*+,;=:@-._~")

    def path(self, ref: str) -> str:
        """The storage path (``/a/b c.txt``, decoded) of a URI or path, validated."""
        return "/" + "/".join(self._parts(ref))

    # -- validation -----------------------------------------------------------------------------------

    def _parts(self, ref: str, *, from_uri: bool | None = None) -> list[str]:
        """The validated segments of a URI (``from_uri`` True/None-and-starts-with-scheme) or plain path."""
        if not isinstance(ref, str):
            raise InvalidStoragePath(f"expected a storage URI or path, got {type(ref).__name__}")
        if "\x00" in ref:
            raise InvalidStoragePath("storage path contains a NUL character")
        is_uri = ref.lower().startswith(SCHEME + ":") if from_uri is None else from_uri
        if is_uri:
            try:
                split = urlsplit(ref)
            except ValueError as exc:
                raise InvalidStoragePath(f"invalid storage URI {ref!r}: {exc}") from None
            if split.scheme.lower() != SCHEME:
                raise InvalidStoragePath(f"not a kestra:/// URI: {ref!r}")
            if split.netloc:
                raise InvalidStoragePath(f"a kestra URI has no authority (expected kestra:///…): {ref!r}")
            if split.query or split.fragment:
                raise InvalidStoragePath(f"a kestra URI has no query or fragment: {ref!r}")
            try:
                path = unquote(split.path, errors="strict")
            except UnicodeDecodeError:
                raise InvalidStoragePath(f"storage URI is not percent-encoded UTF-8: {ref!r}") from None
        else:
            path = ref
        if "\x00" in path:
            raise InvalidStoragePath("storage path contains a NUL character")
        parts = [p for p in path.split("/") if p]
        size = 0
        for p in parts:
            if p in (".", ".."):
                raise InvalidStoragePath(f"storage path may not contain '.' or '..' segments: {ref!r}")
            try:
                length = len(p.encode("utf-8"))
            except UnicodeEncodeError:
                raise InvalidStoragePath(f"storage path is not valid Unicode: {ref!r}") from None
            if length > NAME_MAX:
                raise InvalidStoragePath(f"storage path has a name longer than {NAME_MAX} bytes: {ref[:300]!r}")
            size += length + 1
        if size > PATH_MAX:
            raise InvalidStoragePath(f"storage path is longer than {PATH_MAX} bytes")
        return parts

    def _uri_of(self, ref: str) -> str:
        return self.uri("/".join(self._parts(ref)))

    def is_under(self, uri: str, prefix_path: str) -> bool:
        """True when ``uri`` names ``prefix_path`` itself or something inside it (segment-wise, so
        ``/a/b`` does not contain ``/a/bc``). Raises InvalidStoragePath for a malformed URI."""
        parts = self._parts(uri, from_uri=True)
        prefix = self._parts(prefix_path, from_uri=None)
        return parts[: len(prefix)] == prefix

    def in_namespace(self, uri: str, namespace: str) -> bool:
        """True when ``uri`` names something in ``namespace``'s own storage: an execution's files
        (``/{ns}/{flowId}/executions/…``) or its namespace files (``/{ns}/_files/…``) — not a child
        namespace's. Raises InvalidStoragePath for a malformed URI."""
        parts = self._parts(uri, from_uri=True)
        ns = namespace_path(namespace).split("/")
        n = len(ns)
        if parts[:n] != ns or len(parts) < n + 2:
            return False
        return parts[n] == "_files" or (len(parts) > n + 2 and parts[n + 1] == "executions")

    # -- writing --------------------------------------------------------------------------------------

    @abc.abstractmethod
    def open_write(self, dest_path: str) -> BinaryIO:
        """A binary file to stream into ``dest_path`` (a storage path or URI naming a file). The data
        becomes visible atomically when the file is closed; leaving a ``with`` block by an exception
        discards it."""

    def put_bytes(self, data: bytes, dest_path: str) -> str:
        """Write ``data`` to ``dest_path`` (replacing any file there); returns its URI."""
        with self.open_write(dest_path) as f:
            f.write(data)
        return self._uri_of(dest_path)

    @abc.abstractmethod
    def put_file(self, src: Path | str, dest_path: str, *, move: bool = False) -> str:
        """Copy (or move) a local file to ``dest_path``; returns its URI. StorageFileNotFound when
        ``src`` is missing."""

    @abc.abstractmethod
    def copy(self, uri: str, dest_path: str) -> str:
        """Copy the stored file ``uri`` to ``dest_path``; returns the new URI."""

    # -- reading --------------------------------------------------------------------------------------

    @abc.abstractmethod
    def open_read(self, uri: str) -> BinaryIO:
        """The file behind ``uri``, open for binary reading (seekable, streamed: memory stays bounded)."""

    def read_bytes(self, uri: str) -> bytes:
        with self.open_read(uri) as f:
            return f.read()

    def read_text(self, uri: str, encoding: str = "utf-8") -> str:
        """The whole file decoded; IllegalArgument-typed InvalidStoragePath for an unknown encoding."""
        try:
            with self.open_read(uri) as raw, io.TextIOWrapper(raw, encoding=encoding) as text:
                return text.read()
        except LookupError:
            raise InvalidStoragePath(f"unknown encoding {encoding!r}") from None

    @abc.abstractmethod
    def local_file(self, uri: str, scratch: Path | str | None = None) -> contextlib.AbstractContextManager[Path]:
        """A context manager giving a local file with the content of ``uri`` for code that needs a path
        (zip archives…): the file itself for a local folder, a download into the folder ``scratch``
        (deleted on exit) otherwise. StorageFileNotFound when there is no such file."""

    @abc.abstractmethod
    def exists(self, uri: str) -> bool:
        """True when ``uri`` names a file."""

    @abc.abstractmethod
    def size(self, uri: str) -> int:
        """The size in bytes of the file ``uri``."""

    # -- deleting and listing -------------------------------------------------------------------------

    @abc.abstractmethod
    def delete(self, uri: str) -> bool:
        """Delete one file; False when there was none. A folder is refused (use delete_prefix)."""

    @abc.abstractmethod
    def delete_prefix(self, path: str) -> int:
        """Delete a folder (e.g. an execution's whole prefix) and everything in it, or one file; returns
        the number of files removed (0 when absent). The storage root itself is refused."""

    @abc.abstractmethod
    def list(self, prefix_path: str) -> list[str]:
        """URIs of every file under ``prefix_path`` (recursive, sorted; in-progress writes excluded)."""

    # -- folders (Kestra's createDirectory, list, getAttributes, move) ---------------------------------

    @abc.abstractmethod
    def make_dir(self, path: str) -> None:
        """Create the folder ``path`` and its parents (nothing when it exists); a file there is refused."""

    @abc.abstractmethod
    def attributes(self, path: str) -> dict[str, object]:
        """Kestra's ``FileAttributes`` of ``path``: ``{fileName, lastModifiedTime, creationTime, type
        (File|Directory), size, metadata}`` (times in epoch milliseconds); StorageFileNotFound when absent."""

    @abc.abstractmethod
    def list_dir(self, path: str) -> builtins.list[dict[str, object]]:
        """The attributes of the direct children of the folder ``path`` (sorted by name, in-progress writes
        excluded); StorageFileNotFound when it is not a folder."""

    @abc.abstractmethod
    def is_dir(self, path: str) -> bool:
        """True when ``path`` is a folder (the root always is)."""

    @abc.abstractmethod
    def move(self, src_path: str, dest_path: str) -> None:
        """Rename a file or folder (parents of the destination created). StorageFileNotFound when the source
        is missing; InvalidStoragePath when the destination exists or lies inside the source."""

    @abc.abstractmethod
    def clean_partial(self) -> int:
        """Remove what writes interrupted by a crash left behind; returns the count. Blocking."""

    # -- async wrappers -------------------------------------------------------------------------------

    async def put_file_async(self, src: Path | str, dest_path: str, *, move: bool = False) -> str:
        return await trio.to_thread.run_sync(lambda: self.put_file(src, dest_path, move=move))

    async def put_bytes_async(self, data: bytes, dest_path: str) -> str:
        return await trio.to_thread.run_sync(self.put_bytes, data, dest_path)

    async def read_bytes_async(self, uri: str) -> bytes:
        return await trio.to_thread.run_sync(self.read_bytes, uri)

    async def read_text_async(self, uri: str, encoding: str = "utf-8") -> str:
        return await trio.to_thread.run_sync(self.read_text, uri, encoding)

    async def delete_prefix_async(self, path: str) -> int:
        return await trio.to_thread.run_sync(self.delete_prefix, path)


def file_name(name: str) -> str:
    """The last segment of a storage path (``""`` for the root)."""
    return Path(name).name if name.strip("/") else ""
