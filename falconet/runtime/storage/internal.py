"""Internal storage in one local folder: ``kestra:///<path>`` is the file ``base_dir/<path>``.

Names, layout and URI validation are :class:`falconet.runtime.storage.base.Storage`'s. On top, the resolved
file (symlinks followed) must stay under ``base_dir``. Writes are atomic: data goes to a hidden temporary
sibling that is renamed into place when complete, so a reader never sees half a file.
"""
from __future__ import annotations

import builtins
import contextlib
import io
import os
import secrets
import shutil
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Iterator

from falconet.runtime.storage.base import (
    InvalidStoragePath, Storage, StorageError, StorageFileNotFound, file_name, namespace_path, slugify,
)

__all__ = [
    "InternalStorage", "StorageError", "InvalidStoragePath", "StorageFileNotFound", "slugify", "namespace_path",
]

#: name prefix of the hidden sibling a file is written to before its rename (left behind only by a crash)
TMP_PREFIX = ".falconet-tmp-"


#### Storage ################################################################################################

class InternalStorage(Storage):
    """Files addressed by ``kestra:///<path>``, stored at ``base_dir/<path>``."""

    def __init__(self, base_dir: Path | str) -> None:
        self.base_dir = Path(base_dir).resolve()
        self.base_dir.mkdir(parents=True, exist_ok=True)

    # -- paths --------------------------------------------------------------------------------------

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

    def _dest(self, dest_path: str) -> Path:
        """A write target: a storage path or URI naming a file (not the root)."""
        target = self._resolve(dest_path, from_uri=None)
        if target == self.base_dir:
            raise InvalidStoragePath("cannot write to the storage root")
        if target.is_dir():
            raise InvalidStoragePath(f"{dest_path!r} is a folder")
        return target

    # -- writing --------------------------------------------------------------------------------------

    def open_write(self, dest_path: str) -> BinaryIO:
        """A binary file to stream into ``dest_path`` (parents created). The data becomes visible
        atomically when the file is closed; leaving a ``with`` block by an exception discards it."""
        target = self._dest(dest_path)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f"{TMP_PREFIX}{secrets.token_hex(6)}-{target.name}")
        return _AtomicWriter(tmp, target)

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

    def copy(self, uri: str, dest_path: str) -> str:
        return self.put_file(self._existing(uri), dest_path)

    # -- reading --------------------------------------------------------------------------------------

    def _existing(self, uri: str) -> Path:
        path = self.local_path(uri)
        if not path.is_file():
            raise StorageFileNotFound(f"file not found: {uri}")
        return path

    def open_read(self, uri: str) -> BinaryIO:
        """Open the file behind ``uri`` for binary reading."""
        return open(self._existing(uri), "rb")

    @contextlib.contextmanager
    def local_file(self, uri: str, scratch: Path | str | None = None) -> Iterator[Path]:
        yield self._existing(uri)

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

    def clean_partial(self) -> int:
        """Delete the hidden temporary files of writes a crash interrupted."""
        removed = 0
        for folder, _dirs, files in os.walk(self.base_dir):
            for name in files:
                if name.startswith(TMP_PREFIX):
                    Path(folder, name).unlink(missing_ok=True)
                    removed += 1
        return removed


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
        "fileName": file_name(name),
        "lastModifiedTime": int(st.st_mtime * 1000),
        "creationTime": int(getattr(st, "st_birthtime", st.st_ctime) * 1000),
        "type": "Directory" if is_dir else "File",
        "size": 0 if is_dir else st.st_size,
        "metadata": {},
    }
