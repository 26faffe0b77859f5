"""Internal storage: ``kestra:///<path>`` URIs backed by files under one local folder.

Layout (Kestra's ``StorageContext``; namespace dots become folders, flowId and taskId are slugified):

- execution root  ``/{ns}/{flowId}/executions/{executionId}``
- task files      ``/{ns}/{flowId}/executions/{executionId}/tasks/{taskId}/{taskRunId}/{file}``
- inputs          ``/{ns}/{flowId}/executions/{executionId}/inputs/{inputId}/{file}``
- trigger files   ``/{ns}/{flowId}/executions/{executionId}/trigger/{triggerId}/{file}``
- namespace files ``/{ns}/_files/{path}``

Safety: every URI or path is checked before it touches the disk — scheme ``kestra`` with an empty
authority, no NUL, no ``.``/``..`` segment (also when percent-encoded: URIs are percent-decoded once,
plain paths are taken literally), and the resolved file (symlinks followed) must stay under
``base_dir``. Violations raise :class:`InvalidStoragePath`; a missing file raises
:class:`StorageFileNotFound`. Writes are atomic: data goes to a hidden temporary sibling that is renamed
into place when complete, so a reader never sees half a file.

The methods are synchronous and fast; trio callers move big copies off the event loop with the
``*_async`` wrappers (``trio.to_thread.run_sync``, cancellable only before the thread starts).
"""
from __future__ import annotations

import builtins
import io
import os
import re
import secrets
import shutil
import unicodedata
from pathlib import Path
from types import TracebackType
from typing import BinaryIO
from urllib.parse import quote, unquote, urlsplit

import trio

from falconet.runtime.kernel.errors import FalconetError, IllegalArgument, NotFound

__all__ = [
    "InternalStorage", "StorageError", "InvalidStoragePath", "StorageFileNotFound", "slugify", "namespace_path",
]

SCHEME = "kestra"
#: name prefix of the hidden sibling a file is written to before its rename (left behind only by a crash)
TMP_PREFIX = ".falconet-tmp-"


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
    if (not isinstance(value, str) or not value or value in (".", "..")
            or "/" in value or "\\" in value or "\x00" in value):
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


#### Storage ################################################################################################

class InternalStorage:
    """Files addressed by ``kestra:///<path>``, stored at ``base_dir/<path>``."""

    def __init__(self, base_dir: Path | str) -> None:
        self.base_dir = Path(base_dir).resolve()
        self.base_dir.mkdir(parents=True, exist_ok=True)

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

    def _resolve(self, ref: str, *, from_uri: bool | None) -> Path:
        parts = self._parts(ref, from_uri=from_uri)
        target = self.base_dir.joinpath(*parts)
        real = target.resolve()
        if real != self.base_dir and not real.is_relative_to(self.base_dir):
            raise InvalidStoragePath(f"storage path escapes the storage folder: {ref!r}")
        return target

    def local_path(self, uri: str) -> Path:
        """The file behind a ``kestra:///`` URI (validated; the file need not exist)."""
        return self._resolve(uri, from_uri=True)

    def _uri_of(self, ref: str) -> str:
        return self.uri("/".join(self._parts(ref)))

    def _dest(self, dest_path: str) -> Path:
        """A write target: a storage path or URI naming a file (not the root)."""
        target = self._resolve(dest_path, from_uri=None)
        if target == self.base_dir:
            raise InvalidStoragePath("cannot write to the storage root")
        if target.is_dir():
            raise InvalidStoragePath(f"{dest_path!r} is a folder")
        return target

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

    def open_write(self, dest_path: str) -> BinaryIO:
        """A binary file to stream into ``dest_path`` (parents created). The data becomes visible
        atomically when the file is closed; leaving a ``with`` block by an exception discards it."""
        target = self._dest(dest_path)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f"{TMP_PREFIX}{secrets.token_hex(6)}-{target.name}")
        return _AtomicWriter(tmp, target)

    def put_bytes(self, data: bytes, dest_path: str) -> str:
        """Write ``data`` to ``dest_path`` (replacing any file there); returns its URI."""
        with self.open_write(dest_path) as f:
            f.write(data)
        return self._uri_of(dest_path)

    def put_file(self, src: Path | str, dest_path: str, *, move: bool = False) -> str:
        """Copy (or move) a local file to ``dest_path``; returns its URI. StorageFileNotFound when
        ``src`` is missing."""
        src = Path(src)
        if not src.is_file():
            raise StorageFileNotFound(f"source file not found: {src}")
        target = self._dest(dest_path)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f"{TMP_PREFIX}{secrets.token_hex(6)}-{target.name}")
        try:
            if move:
                shutil.move(os.fspath(src), os.fspath(tmp))
            else:
                shutil.copyfile(src, tmp)
            os.replace(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return self._uri_of(dest_path)

    # -- reading --------------------------------------------------------------------------------------

    def _existing(self, uri: str) -> Path:
        path = self.local_path(uri)
        if not path.is_file():
            raise StorageFileNotFound(f"file not found: {uri}")
        return path

    def open_read(self, uri: str) -> BinaryIO:
        """Open the file behind ``uri`` for binary reading."""
        return open(self._existing(uri), "rb")

    def read_bytes(self, uri: str) -> bytes:
        return self._existing(uri).read_bytes()

    def read_text(self, uri: str, encoding: str = "utf-8") -> str:
        """The whole file decoded; IllegalArgument-typed InvalidStoragePath for an unknown encoding."""
        try:
            return self._existing(uri).read_text(encoding=encoding)
        except LookupError:
            raise InvalidStoragePath(f"unknown encoding {encoding!r}") from None

    def exists(self, uri: str) -> bool:
        return self.local_path(uri).is_file()

    def size(self, uri: str) -> int:
        return self._existing(uri).stat().st_size

    # -- deleting and listing -------------------------------------------------------------------------

    def delete(self, uri: str) -> bool:
        """Delete one file; False when there was none. A folder is refused (use delete_prefix)."""
        path = self.local_path(uri)
        if path.is_dir() and not path.is_symlink():
            raise InvalidStoragePath(f"{uri!r} is a folder; use delete_prefix")
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        return True

    def delete_prefix(self, path: str) -> int:
        """Delete a folder (e.g. an execution's whole prefix) and everything in it; returns the number
        of files removed (0 when absent). Symlinks inside are removed, never followed. The storage root
        itself is refused."""
        target = self._resolve(path, from_uri=None)
        if target == self.base_dir:
            raise InvalidStoragePath("refusing to delete the whole storage")
        if target.is_symlink() or target.is_file():
            target.unlink()
            return 1
        if not target.is_dir():
            return 0
        count = sum(len(files) for _, _, files in os.walk(target))
        shutil.rmtree(target)
        return count

    def list(self, prefix_path: str) -> list[str]:
        """URIs of every file under ``prefix_path`` (recursive, sorted; in-progress writes excluded)."""
        target = self._resolve(prefix_path, from_uri=None)
        if not target.is_dir():
            return []
        out = []
        for root, dirs, files in os.walk(target):
            dirs.sort()
            for name in files:
                if not name.startswith(TMP_PREFIX):
                    rel = Path(root, name).relative_to(self.base_dir).as_posix()
                    out.append(self.uri(rel))
        return sorted(out)

    # -- folders (Kestra's createDirectory, list, getAttributes, move) ---------------------------------

    def make_dir(self, path: str) -> None:
        """Create the folder ``path`` and its parents (nothing when it exists); a file there is refused."""
        target = self._resolve(path, from_uri=None)
        if target.exists() and not target.is_dir():
            raise InvalidStoragePath(f"{path!r} is a file")
        target.mkdir(parents=True, exist_ok=True)

    def attributes(self, path: str) -> dict[str, object]:
        """Kestra's ``FileAttributes`` of ``path``: ``{fileName, lastModifiedTime, creationTime, type
        (File|Directory), size, metadata}`` (times in epoch milliseconds); StorageFileNotFound when absent."""
        target = self._resolve(path, from_uri=None)
        return _attributes(target, path)

    def list_dir(self, path: str) -> builtins.list[dict[str, object]]:
        """The attributes of the direct children of the folder ``path`` (sorted by name, in-progress writes
        excluded); StorageFileNotFound when it is not a folder."""
        target = self._resolve(path, from_uri=None)
        if not target.is_dir():
            raise StorageFileNotFound(f"folder not found: {path}")
        return [_attributes(child, child.name) for child in sorted(target.iterdir())
                if not child.name.startswith(TMP_PREFIX)]

    def is_dir(self, path: str) -> bool:
        return self._resolve(path, from_uri=None).is_dir()

    def move(self, src_path: str, dest_path: str) -> None:
        """Rename a file or folder (parents of the destination created). StorageFileNotFound when the source
        is missing; InvalidStoragePath when the destination exists or lies inside the source."""
        src = self._resolve(src_path, from_uri=None)
        dest = self._resolve(dest_path, from_uri=None)
        if src == self.base_dir or dest == self.base_dir:
            raise InvalidStoragePath("cannot move the storage root")
        if not src.exists():
            raise StorageFileNotFound(f"file not found: {src_path}")
        if dest.exists():
            raise InvalidStoragePath(f"{dest_path!r} already exists")
        if dest.is_relative_to(src):
            raise InvalidStoragePath(f"cannot move {src_path!r} inside itself")
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(src, dest)

    # -- async wrappers (for big files) ---------------------------------------------------------------

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


class _AtomicWriter(io.BufferedWriter):
    """Writes to ``tmp``; ``close()`` renames it to ``target``; an exception in ``with`` discards it."""

    def __init__(self, tmp: Path, target: Path) -> None:
        super().__init__(io.FileIO(tmp, "wb"))
        self._tmp, self._target, self._discard = tmp, target, False

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is not None:
            self._discard = True
        return super().__exit__(exc_type, exc, tb)

    def close(self) -> None:
        if self.closed:
            return
        try:
            super().close()
        except BaseException:
            self._tmp.unlink(missing_ok=True)
            raise
        if self._discard:
            self._tmp.unlink(missing_ok=True)
        else:
            os.replace(self._tmp, self._target)


def _attributes(target: Path, name: str) -> dict[str, object]:
    try:
        st = target.stat()
    except FileNotFoundError:
        raise StorageFileNotFound(f"file not found: {name}") from None
    is_dir = target.is_dir()
    return {
        "fileName": Path(name).name if name.strip("/") else "",
        "lastModifiedTime": int(st.st_mtime * 1000),
        "creationTime": int(getattr(st, "st_birthtime", st.st_ctime) * 1000),
        "type": "Directory" if is_dir else "File",
        "size": 0 if is_dir else st.st_size,
        "metadata": {},
    }
