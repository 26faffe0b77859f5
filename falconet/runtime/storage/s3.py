"""Internal storage in an S3 bucket (AWS or any S3-compatible server: MinIO, Ceph, moto…), on boto3.

``kestra:///<path>`` is the object ``<prefix>/<path>`` of the configured bucket. Keys are built only
from the segments :meth:`Storage._parts` validated, so no client string reaches outside the prefix.
S3 has no folders: a folder exists when an object lies under it, and :meth:`S3Storage.make_dir` writes an
empty ``<folder>/`` marker object (as Kestra's storage-s3 does).

Memory stays bounded: writes spool to a temporary file (in memory up to 1 MiB) and are uploaded on close
by boto3's transfer manager (multipart above 8 MiB, two parts in flight); reads stream the object body (a
seek re-opens it at an offset with a ranged GET); listings paginate. An object appears atomically when its
upload completes, so a reader never sees half a file. Every method is blocking network I/O: trio callers
run them on worker threads (``trio.to_thread.run_sync``); boto3's client is thread-safe.
"""
from __future__ import annotations

import builtins
import contextlib
import io
import os
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterator, cast

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError

from falconet.runtime.storage.base import InvalidStoragePath, Storage, StorageFileNotFound, file_name

__all__ = ["S3Storage"]

#: S3's longest object key (bytes)
KEY_MAX = 1024
#: a write is kept in memory up to this size, then spills to a temporary file
SPOOL_BYTES = 1024 * 1024
#: objects above this size are uploaded in parts of this size (boto3's transfer manager)
PART_BYTES = 8 * 1024 * 1024
#: parts of one transfer in flight at once: an upload holds at most this many parts in memory
PARTS_IN_FLIGHT = 2
#: most keys one DeleteObjects request takes
_DELETE_BATCH = 1000
_NOT_FOUND = ("404", "NoSuchKey", "NotFound")


class S3Storage(Storage):
    """Files addressed by ``kestra:///<path>``, stored as objects of ``bucket`` under ``prefix``."""

    def __init__(self, bucket: str, *, endpoint: str | None = None, region: str | None = None,
                 access_key: str | None = None, secret_key: str | None = None, prefix: str = "") -> None:
        if not bucket:
            raise InvalidStoragePath("the S3 storage needs a bucket")
        self.bucket = bucket
        parts = self._parts(prefix, from_uri=False)
        self.prefix = "/".join(parts) + "/" if parts else ""
        self.client = boto3.client(
            "s3", endpoint_url=endpoint or None, region_name=region or None,
            aws_access_key_id=access_key or None, aws_secret_access_key=secret_key or None,
            config=BotoConfig(max_pool_connections=32, connect_timeout=10, retries={"mode": "standard"}))
        self.transfer = TransferConfig(multipart_threshold=PART_BYTES, multipart_chunksize=PART_BYTES,
                                       max_concurrency=PARTS_IN_FLIGHT)

    def check(self) -> None:
        """Fail now when the bucket cannot be reached (endpoint, credentials, missing bucket): raises botocore's
        error."""
        self.client.head_bucket(Bucket=self.bucket)

    # -- keys -----------------------------------------------------------------------------------------

    def _key(self, parts: list[str]) -> str:
        key = self.prefix + "/".join(parts)
        if len(key.encode("utf-8")) + 1 > KEY_MAX:
            raise InvalidStoragePath(f"storage path is longer than S3's {KEY_MAX}-byte keys")
        return key

    def _file_key(self, ref: str, *, from_uri: bool | None) -> str:
        parts = self._parts(ref, from_uri=from_uri)
        if not parts:
            raise InvalidStoragePath("the storage root is a folder")
        return self._key(parts)

    def _folder_key(self, parts: list[str]) -> str:
        """The key prefix of the objects inside a folder (``""``/the prefix for the root)."""
        return self._key(parts) + "/" if parts else self.prefix

    def _path_of(self, key: str) -> str | None:
        """The storage path of an object key, or None when the key is not one this storage could write."""
        rel = key[len(self.prefix):]
        try:
            parts = self._parts(rel, from_uri=False)
        except InvalidStoragePath:
            return None
        return rel if "/".join(parts) == rel else None

    # -- S3 calls -------------------------------------------------------------------------------------

    def _head(self, key: str) -> dict[str, Any] | None:
        try:
            return self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _code(exc) in _NOT_FOUND:
                return None
            raise

    def _first_under(self, folder: str) -> dict[str, Any] | None:
        """One object under the key prefix ``folder`` (a folder exists when it has one), or None."""
        page = self.client.list_objects_v2(Bucket=self.bucket, Prefix=folder, MaxKeys=1)
        return page["Contents"][0] if page.get("Contents") else None

    def _objects(self, folder: str, delimiter: str = "") -> Iterator[dict[str, Any]]:
        """Every page of the listing of ``folder`` (paginated, 1000 keys a page)."""
        paginator = self.client.get_paginator("list_objects_v2")
        yield from paginator.paginate(Bucket=self.bucket, Prefix=folder, Delimiter=delimiter)

    def _delete_keys(self, keys: list[str]) -> None:
        for i in range(0, len(keys), _DELETE_BATCH):
            batch = [{"Key": k} for k in keys[i:i + _DELETE_BATCH]]
            result = self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})
            if result.get("Errors"):
                error = result["Errors"][0]
                raise OSError(f"S3 could not delete {error.get('Key')}: {error.get('Message')}")

    def _dest(self, dest_path: str) -> str:
        """A write target: a storage path or URI naming a file (not the root, not a folder)."""
        key = self._file_key(dest_path, from_uri=None)
        if self._first_under(key + "/") is not None:
            raise InvalidStoragePath(f"{dest_path!r} is a folder")
        return key

    # -- writing --------------------------------------------------------------------------------------

    def open_write(self, dest_path: str) -> BinaryIO:
        key = self._dest(dest_path)
        upload = _SpooledUpload(lambda f: self.client.upload_fileobj(f, self.bucket, key, Config=self.transfer))
        return cast(BinaryIO, upload)

    def put_file(self, src: Path | str, dest_path: str, *, move: bool = False) -> str:
        src = Path(src)
        if not src.is_file():
            raise StorageFileNotFound(f"source file not found: {src}")
        key = self._dest(dest_path)
        self.client.upload_file(os.fspath(src), self.bucket, key, Config=self.transfer)
        if move:
            src.unlink(missing_ok=True)
        return self._uri_of(dest_path)

    def copy(self, uri: str, dest_path: str) -> str:
        src = self._file_key(uri, from_uri=True)
        if self._head(src) is None:
            raise StorageFileNotFound(f"file not found: {uri}")
        self.client.copy({"Bucket": self.bucket, "Key": src}, self.bucket, self._dest(dest_path),
                         Config=self.transfer)
        return self._uri_of(dest_path)

    # -- reading --------------------------------------------------------------------------------------

    def _get(self, uri: str, key: str, **kwargs: Any) -> dict[str, Any]:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=key, **kwargs)
        except ClientError as exc:
            if _code(exc) in _NOT_FOUND:
                raise StorageFileNotFound(f"file not found: {uri}") from None
            raise

    def open_read(self, uri: str) -> BinaryIO:
        key = self._file_key(uri, from_uri=True)
        response = self._get(uri, key)
        reopen = lambda offset: self._get(uri, key, Range=f"bytes={offset}-", IfMatch=response["ETag"])  # noqa: E731
        return io.BufferedReader(_ObjectReader(response, reopen), buffer_size=1 << 16)

    def read_bytes(self, uri: str) -> bytes:
        body = self._get(uri, self._file_key(uri, from_uri=True))["Body"]
        with contextlib.closing(body):
            return body.read()

    @contextlib.contextmanager
    def local_file(self, uri: str, scratch: Path | str | None = None) -> Iterator[Path]:
        key = self._file_key(uri, from_uri=True)
        fd, name = tempfile.mkstemp(prefix="falconet-s3-", dir=scratch)
        os.close(fd)
        try:
            try:
                self.client.download_file(self.bucket, key, name, Config=self.transfer)
            except ClientError as exc:
                if _code(exc) in _NOT_FOUND:
                    raise StorageFileNotFound(f"file not found: {uri}") from None
                raise
            yield Path(name)
        finally:
            Path(name).unlink(missing_ok=True)

    def exists(self, uri: str) -> bool:
        parts = self._parts(uri, from_uri=True)
        return bool(parts) and self._head(self._key(parts)) is not None

    def size(self, uri: str) -> int:
        head = self._head(self._file_key(uri, from_uri=True))
        if head is None:
            raise StorageFileNotFound(f"file not found: {uri}")
        return int(head["ContentLength"])

    # -- deleting and listing -------------------------------------------------------------------------

    def delete(self, uri: str) -> bool:
        key = self._file_key(uri, from_uri=True)
        if self._head(key) is None:
            if self._first_under(key + "/") is not None:
                raise InvalidStoragePath(f"{uri!r} is a folder; use delete_prefix")
            return False
        self.client.delete_object(Bucket=self.bucket, Key=key)
        return True

    def delete_prefix(self, path: str) -> int:
        parts = self._parts(path, from_uri=None)
        if not parts:
            raise InvalidStoragePath("refusing to delete the whole storage")
        key = self._key(parts)
        if self._head(key) is not None:
            self.client.delete_object(Bucket=self.bucket, Key=key)
            return 1
        keys = [obj["Key"] for page in self._objects(key + "/") for obj in page.get("Contents", ())]
        self._delete_keys(keys)
        return sum(1 for k in keys if not k.endswith("/"))

    def list(self, prefix_path: str) -> list[str]:
        folder = self._folder_key(self._parts(prefix_path, from_uri=None))
        out = []
        for page in self._objects(folder):
            for obj in page.get("Contents", ()):
                path = None if obj["Key"].endswith("/") else self._path_of(obj["Key"])
                if path is not None:
                    out.append(self.uri(path))
        return sorted(out)

    # -- folders --------------------------------------------------------------------------------------

    def make_dir(self, path: str) -> None:
        parts = self._parts(path, from_uri=None)
        if not parts:
            return
        key = self._key(parts)
        if self._head(key) is not None:
            raise InvalidStoragePath(f"{path!r} is a file")
        if self._head(key + "/") is None:
            self.client.put_object(Bucket=self.bucket, Key=key + "/", Body=b"")

    def attributes(self, path: str) -> dict[str, object]:
        parts = self._parts(path, from_uri=None)
        if not parts:
            return _attributes(path, None, None)
        key = self._key(parts)
        head = self._head(key)
        if head is not None:
            return _attributes(path, head["LastModified"], int(head["ContentLength"]))
        first = self._first_under(key + "/")
        if first is None:
            raise StorageFileNotFound(f"file not found: {path}")
        return _attributes(path, first["LastModified"], None)

    def list_dir(self, path: str) -> builtins.list[dict[str, object]]:
        parts = self._parts(path, from_uri=None)
        folder = self._folder_key(parts)
        found, out = not parts, []
        for page in self._objects(folder, delimiter="/"):
            for sub in page.get("CommonPrefixes", ()):
                found = True
                name = sub["Prefix"][len(folder):-1]
                if self._path_of(sub["Prefix"][:-1]) is not None:
                    out.append(_attributes(name, None, None))
            for obj in page.get("Contents", ()):
                found = True
                name = obj["Key"][len(folder):]
                if obj["Key"] != folder and self._path_of(obj["Key"]) is not None:
                    out.append(_attributes(name, obj["LastModified"], int(obj["Size"])))
        if not found:
            raise StorageFileNotFound(f"folder not found: {path}")
        return sorted(out, key=lambda a: str(a["fileName"]))

    def is_dir(self, path: str) -> bool:
        parts = self._parts(path, from_uri=None)
        return not parts or self._first_under(self._key(parts) + "/") is not None

    def move(self, src_path: str, dest_path: str) -> None:
        """Copy then delete, object by object (S3 has no rename): not atomic for a folder."""
        src_parts, dest_parts = self._parts(src_path, from_uri=None), self._parts(dest_path, from_uri=None)
        if not src_parts or not dest_parts:
            raise InvalidStoragePath("cannot move the storage root")
        src, dest = self._key(src_parts), self._key(dest_parts)
        is_file = self._head(src) is not None
        if not is_file and self._first_under(src + "/") is None:
            raise StorageFileNotFound(f"file not found: {src_path}")
        if self._head(dest) is not None or self._first_under(dest + "/") is not None:
            raise InvalidStoragePath(f"{dest_path!r} already exists")
        if dest_parts[:len(src_parts)] == src_parts:
            raise InvalidStoragePath(f"cannot move {src_path!r} inside itself")
        if is_file:
            moves = [(src, dest)]
        else:
            moves = [(obj["Key"], dest + obj["Key"][len(src):])
                     for page in self._objects(src + "/") for obj in page.get("Contents", ())]
        if any(len(new.encode("utf-8")) > KEY_MAX for _, new in moves):
            raise InvalidStoragePath(f"moving {src_path!r} makes keys longer than S3's {KEY_MAX} bytes")
        for old, new in moves:
            self.client.copy({"Bucket": self.bucket, "Key": old}, self.bucket, new, Config=self.transfer)
        self._delete_keys([old for old, _ in moves])

    def clean_partial(self) -> int:
        """Nothing to do: an upload a crash interrupted never becomes an object (a bucket lifecycle rule
        ``AbortIncompleteMultipartUpload`` reclaims its parts)."""
        return 0


class _SpooledUpload(io.BufferedIOBase):
    """A write-only file spooled to memory/disk; ``close()`` uploads it, an exception in ``with`` discards it."""

    def __init__(self, upload: Callable[[BinaryIO], None]) -> None:
        super().__init__()
        self._spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)
        self._upload, self._discard = upload, False

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        if self.closed:
            raise ValueError("write to a closed file")
        return self._spool.write(data)

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is not None:
            self._discard = True
        super().__exit__(exc_type, exc, tb)

    def close(self) -> None:
        if self.closed:
            return
        try:
            if not self._discard:
                self._spool.seek(0)
                self._upload(self._spool)  # type: ignore[arg-type]
        finally:
            self._spool.close()
            super().close()


class _ObjectReader(io.RawIOBase):
    """The body of a GetObject response as a seekable raw file; a seek re-opens it with a ranged GET."""

    def __init__(self, response: dict[str, Any], reopen: Callable[[int], dict[str, Any]]) -> None:
        super().__init__()
        self._body: Any = response["Body"]
        self._size = int(response["ContentLength"])
        self._reopen, self._pos = reopen, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._body is None:
            return 0
        data = self._body.read(len(buffer))
        buffer[:len(data)] = data
        self._pos += len(data)
        return len(data)

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        target = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence] + offset
        if target < 0:
            raise ValueError(f"negative seek position {target}")
        if target != self._pos:
            if self._body is not None:
                self._body.close()
            self._body = self._reopen(target)["Body"] if target < self._size else None
            self._pos = target
        return self._pos

    def close(self) -> None:
        if self._body is not None:
            self._body.close()
            self._body = None
        super().close()


def _attributes(name: str, modified: datetime | None, size: int | None) -> dict[str, object]:
    """Kestra's ``FileAttributes``; S3 keeps one time per object (a folder's is that of an object in it, 0
    when unknown), so ``creationTime`` is ``lastModifiedTime``."""
    millis = int(modified.timestamp() * 1000) if modified is not None else 0
    return {"fileName": file_name(name), "lastModifiedTime": millis, "creationTime": millis,
            "type": "Directory" if size is None else "File", "size": size or 0, "metadata": {}}


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))
