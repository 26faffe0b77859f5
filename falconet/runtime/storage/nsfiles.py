"""Namespace files: a folder tree per namespace in the internal storage, with revisions.

The current content of ``/dir/file.py`` of namespace ``company.team`` is the storage file
``/company/team/_files/dir/file.py`` — where script tasks' ``namespaceFiles`` and ``read()`` find it. Every
write also keeps that content as a revision under ``/_nsfile-revisions/company/team/<sha256 of the
path>/<n>`` (a namespace cannot start with ``_``, so this never collides with a namespace's folders; the
hash keeps a file ``a`` and a folder ``a/`` apart). A file written by a task, with no revision yet, is
revision 1.

Paths come from clients: :func:`clean_path` accepts ``/a/b.txt`` (leading slash optional, one trailing
slash allowed) and refuses — with :class:`InvalidStoragePath` (HTTP 422) — NUL and control characters,
backslashes, empty, ``.`` and ``..`` segments, segments over 255 characters and paths over 1024; the
storage layer then confines the result to the namespace's folder. ``/_flows`` is reserved (Kestra's export
holds the namespace's flows there; uploading ``/_flows/<id>.yml`` imports a flow).

Methods are blocking storage work: call them through ``trio.to_thread.run_sync``.
"""
from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path
from typing import IO, Any, Callable

from falconet.runtime.storage.base import InvalidStoragePath, Storage, StorageFileNotFound, namespace_path

__all__ = ["NamespaceFiles", "clean_path", "FLOWS_FOLDER", "MAX_ZIP_ENTRIES", "MAX_ZIP_BYTES"]

FLOWS_FOLDER = "_flows"
MAX_PATH = 1024
MAX_SEGMENT = 255
#: limits of an uploaded zip (entries, total uncompressed bytes)
MAX_ZIP_ENTRIES = 10_000
MAX_ZIP_BYTES = 2 * 1024 ** 3
_REVISIONS_ROOT = "_nsfile-revisions"


def clean_path(raw: str | None, *, allow_root: bool = True) -> str:
    """``"/a/b"`` for a client path (``""`` for the root); InvalidStoragePath when unsafe (see module doc)."""
    if raw is None or raw in ("", "/"):
        if not allow_root:
            raise InvalidStoragePath("a file path is required")
        return ""
    if not isinstance(raw, str) or len(raw) > MAX_PATH:
        raise InvalidStoragePath(f"a namespace file path is a string of at most {MAX_PATH} characters")
    if any(ord(c) < 32 or c == "\x7f" for c in raw):
        raise InvalidStoragePath("a namespace file path may not contain NUL or control characters")
    if "\\" in raw:
        raise InvalidStoragePath(f"a namespace file path may not contain '\\': {raw!r}")
    inner = raw[1:] if raw.startswith("/") else raw
    inner = inner[:-1] if inner.endswith("/") else inner
    segments = inner.split("/")
    for s in segments:
        if s in ("", ".", ".."):
            raise InvalidStoragePath(f"a namespace file path may not contain empty, '.' or '..' segments: {raw!r}")
        if len(s) > MAX_SEGMENT:
            raise InvalidStoragePath(f"a namespace file name is at most {MAX_SEGMENT} characters")
    return "/" + "/".join(segments)


def is_flows_path(path: str) -> bool:
    return path == "/" + FLOWS_FOLDER or path.startswith("/" + FLOWS_FOLDER + "/")


def guard(path: str) -> str:
    """Refuse the reserved ``/_flows`` folder (Kestra's ``forbiddenPathsGuard``)."""
    if is_flows_path(path):
        raise InvalidStoragePath(f"Forbidden path: {path}")
    return path


class NamespaceFiles:
    """The namespace files of every namespace, over one :class:`Storage`."""

    def __init__(self, storage: Storage):
        self.storage = storage

    # -- names ----------------------------------------------------------------------------------------

    def _root(self, namespace: str) -> str:
        return self.storage.namespace_files_prefix(namespace)

    def _file(self, namespace: str, path: str) -> str:
        return self._root(namespace) + path

    def _revisions(self, namespace: str, path: str) -> str:
        digest = hashlib.sha256(path.encode()).hexdigest()
        return f"/{_REVISIONS_ROOT}/{namespace_path(namespace)}/{digest}"

    # -- reading --------------------------------------------------------------------------------------

    def ensure_root(self, namespace: str) -> None:
        self.storage.make_dir(self._root(namespace))

    def attributes(self, namespace: str, path: str) -> dict[str, Any]:
        if not path:
            self.ensure_root(namespace)
        return self.storage.attributes(self._file(namespace, path))

    def list_dir(self, namespace: str, path: str) -> list[dict[str, Any]]:
        if not path:
            self.ensure_root(namespace)
        return self.storage.list_dir(self._file(namespace, path))

    def all_files(self, namespace: str) -> list[str]:
        """Every file's path (``/a/b``), sorted."""
        root = self.storage.path(self._root(namespace))
        return sorted(path[len(root):] for path in map(self.storage.path, self.storage.list(root)))

    def revisions(self, namespace: str, path: str) -> list[int]:
        """The revision numbers of a file, oldest first; StorageFileNotFound when there is no such file."""
        if not self.storage.exists(self.storage.uri(self._file(namespace, path))):
            raise StorageFileNotFound(f"namespace file not found: {path}")
        return self._revision_numbers(namespace, path) or [1]

    def _revision_numbers(self, namespace: str, path: str) -> list[int]:
        folder = self._revisions(namespace, path)
        if not self.storage.is_dir(folder):
            return []
        names = (str(e["fileName"]) for e in self.storage.list_dir(folder))
        return sorted(int(name) for name in names if name.isdigit())

    def open(self, namespace: str, path: str, revision: int | None = None) -> IO[bytes]:
        """The content of a file (its latest revision unless ``revision`` is given)."""
        if revision is not None:
            numbers = self._revision_numbers(namespace, path)
            if revision in numbers:
                return self.storage.open_read(self.storage.uri(f"{self._revisions(namespace, path)}/{revision}"))
            if numbers or revision != 1:
                raise StorageFileNotFound(f"namespace file {path} has no revision {revision}")
        try:
            return self.storage.open_read(self.storage.uri(self._file(namespace, path)))
        except StorageFileNotFound:
            raise StorageFileNotFound(f"namespace file not found: {path}") from None

    # -- writing --------------------------------------------------------------------------------------

    def make_dir(self, namespace: str, path: str) -> None:
        self.storage.make_dir(self._file(namespace, path))

    def put(self, namespace: str, path: str, src: Path) -> int:
        """Store the local file ``src`` as the new content of ``path``; returns the new revision number."""
        if not path:
            raise InvalidStoragePath("a file path is required")
        target = self._file(namespace, path)
        if self.storage.is_dir(target):
            raise InvalidStoragePath(f"{path} is a folder")
        numbers = self._revision_numbers(namespace, path)
        if not numbers and self.storage.exists(self.storage.uri(target)):
            # a file written by a task before any revision: keep it as revision 1
            self.storage.copy(self.storage.uri(target), f"{self._revisions(namespace, path)}/1")
            numbers = [1]
        revision = (numbers[-1] if numbers else 0) + 1
        self.storage.put_file(src, f"{self._revisions(namespace, path)}/{revision}")
        self.storage.put_file(src, target)
        return revision

    def put_zip(self, namespace: str, archive: Path, on_flow: Callable[[str, bytes], None],
                scratch: Path) -> list[str]:
        """Unpack a zip: each file entry becomes a namespace file (``_flows/<id>.yml`` entries go to
        ``on_flow(name, data)`` instead). Entry names are checked like client paths; more than
        :data:`MAX_ZIP_ENTRIES` entries or :data:`MAX_ZIP_BYTES` uncompressed bytes is refused before
        anything is written. Returns the stored paths."""
        try:
            zf = zipfile.ZipFile(archive)
        except zipfile.BadZipFile:
            raise InvalidStoragePath("the uploaded .zip file is not a valid zip archive") from None
        with zf:
            entries = [e for e in zf.infolist() if not e.is_dir()]
            if len(entries) > MAX_ZIP_ENTRIES or sum(e.file_size for e in entries) > MAX_ZIP_BYTES:
                raise InvalidStoragePath(f"a zip upload holds at most {MAX_ZIP_ENTRIES} files and "
                                         f"{MAX_ZIP_BYTES} bytes")
            paths = [clean_path("/" + e.filename, allow_root=False) for e in entries]
            stored = []
            for entry, path in zip(entries, paths, strict=True):
                if is_flows_path(path):
                    if path.count("/") != 2:
                        raise InvalidStoragePath(f"Invalid flow file path: {path}")
                    with zf.open(entry) as f:
                        on_flow(path, f.read(MAX_FLOW_BYTES + 1))
                    continue
                tmp = scratch / "entry"
                with zf.open(entry) as src, open(tmp, "wb") as dst:
                    _copy_bounded(src, dst, entry.file_size)
                self.put(namespace, path, tmp)
                stored.append(path)
        return stored

    def move(self, namespace: str, src: str, dest: str) -> None:
        """Rename a file or folder, its revisions with it."""
        if not src or not dest:
            raise InvalidStoragePath("cannot move the namespace root")
        files = [p for p in self.all_files(namespace) if p == src or p.startswith(src + "/")]
        self.storage.move(self._file(namespace, src), self._file(namespace, dest))
        for old in files:
            new = dest + old[len(src):]
            old_rev, new_rev = self._revisions(namespace, old), self._revisions(namespace, new)
            if self.storage.is_dir(old_rev):
                self.storage.delete_prefix(new_rev)
                self.storage.move(old_rev, new_rev)

    def delete(self, namespace: str, path: str) -> bool:
        """Delete a file or a folder (recursively) with their revisions; False when nothing was there."""
        if not path:
            raise InvalidStoragePath("cannot delete the namespace root")
        files = [p for p in self.all_files(namespace) if p == path or p.startswith(path + "/")]
        existed = self.storage.is_dir(self._file(namespace, path)) or bool(files)
        self.storage.delete_prefix(self._file(namespace, path))
        for p in files:
            self.storage.delete_prefix(self._revisions(namespace, p))
        return existed


#: a flow source inside an uploaded zip is at most this long
MAX_FLOW_BYTES = 1024 * 1024


def _copy_bounded(src: IO[bytes], dst: IO[bytes], declared: int) -> None:
    """Copy at most ``declared`` bytes (a zip entry whose data outgrows its declared size is refused)."""
    copied = 0
    while chunk := src.read(1 << 20):
        copied += len(chunk)
        if copied > declared:
            raise InvalidStoragePath("a zip entry is larger than its declared size")
        dst.write(chunk)
