"""Where the value of a FILE input may come from: never a path on the server that a client names.

A FILE input (execution inputs, Pause ``onResume`` inputs, Subflow/ForEachItem and trigger inputs) takes:

- an **uploaded file**: a :class:`~pathlib.Path` handed over by the code that created it for this call
  (the HTTP layer's streamed upload part, the CLI's copy) — moved into the execution's input storage.
  Only Python callers can pass a ``Path``; every client value arrives as a string.
- ``kestra:///…``: a file that exists in internal storage, within the storage of one of the
  :attr:`FileSources.namespaces` — the execution's namespace and, for an execution started by another
  one (Subflow, ForEachItem, Flow trigger), the namespace of that execution. Kept as is.
- ``nsfile:///path`` or ``nsfile://<namespace>/path``: a namespace file of one of those namespaces (the
  first one when the URI names none) — its ``kestra:///`` URI, as Kestra's ``URIFetcher`` reads it.
- ``file:///path``: a local file under one of ``kestra.local-files.allowed-paths`` (none by default, as in
  Kestra), symlinks resolved — copied (never moved) into the execution's input storage.

Anything else — a plain path included — is refused before the file system is touched, and a ``file:``
URI outside the allowed paths is refused with the same message whether the file exists or not.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence
from urllib.parse import unquote, urlsplit

from falconet.runtime.storage.internal import StorageError

if TYPE_CHECKING:  # pragma: no cover
    from falconet.runtime.storage.base import Storage

__all__ = ["FileSources", "ACCEPTED", "trigger_namespaces"]

#: how the error messages describe what a FILE input accepts
ACCEPTED = "an uploaded file, or a `kestra:///`, `nsfile:///` or allowed `file:///` URI"


@dataclasses.dataclass(frozen=True)
class FileSources:
    """The rules of one resolution: ``storage``, the namespaces whose files may be named (the
    execution's first) and the resolved ``allowed_paths`` of ``file:`` URIs."""

    storage: "Storage"
    namespaces: tuple[str, ...]
    allowed_paths: tuple[Path, ...] = ()

    def resolve(self, value: str) -> str | Path:
        """A ``kestra:///`` URI to keep, or a checked local file to copy; ValueError with the reason."""
        scheme = value.split(":", 1)[0].lower() if ":" in value else ""
        if scheme == "kestra":
            return self._kestra(value)
        if scheme == "nsfile":
            return self._nsfile(value)
        if scheme == "file":
            return self._local(value)
        raise ValueError(f"Expected {ACCEPTED}, got `{_shown(value)}`")

    def _exists(self, uri: str, shown: str) -> str:
        try:
            if self.storage.exists(uri):
                return uri
        except StorageError:
            raise ValueError(f"Invalid file URI `{shown}`") from None
        raise ValueError(f"File `{shown}` not found in the internal storage")

    def _kestra(self, value: str) -> str:
        try:
            allowed = any(self.storage.in_namespace(value, ns) for ns in self.namespaces)
        except StorageError:
            raise ValueError(f"Invalid file URI `{_shown(value)}`") from None
        if not allowed:
            raise ValueError(f"File `{_shown(value)}` does not belong to the namespace of the execution")
        return self._exists(value, _shown(value))

    def _nsfile(self, value: str) -> str:
        try:
            split = urlsplit(value)
        except ValueError:
            raise ValueError(f"Invalid file URI `{_shown(value)}`") from None
        namespace = split.netloc or self.namespaces[0]
        if namespace not in self.namespaces or split.query or split.fragment:
            raise ValueError(f"Namespace file `{_shown(value)}` is not in the namespace of the execution")
        try:
            uri = self.storage.uri(self.storage.namespace_files_prefix(namespace) + "/"
                                   + unquote(split.path, errors="strict"))
        except (StorageError, UnicodeDecodeError):
            raise ValueError(f"Invalid file URI `{_shown(value)}`") from None
        return self._exists(uri, _shown(value))

    def _local(self, value: str) -> Path:
        refused = ValueError(f"Local file `{_shown(value)}` is not under `kestra.local-files.allowed-paths`")
        try:
            split = urlsplit(value)
            path = unquote(split.path, errors="strict")
        except (ValueError, UnicodeDecodeError):
            raise refused from None
        if split.netloc not in ("", "localhost") or split.query or split.fragment or "\x00" in path \
                or not path.startswith("/") or not self.allowed_paths:
            raise refused
        real = Path(path).resolve()
        if not any(real == root or real.is_relative_to(root) for root in self.allowed_paths):
            raise refused
        if not real.is_file():
            raise ValueError(f"Local file `{_shown(value)}` not found")
        return real


def _shown(value: str, limit: int = 200) -> str:
    return value if len(value) <= limit else value[:limit] + "…"


def trigger_namespaces(namespace: str, trigger: Mapping[str, Any] | None) -> tuple[str, ...]:
    """The execution's namespace, then the namespace of the execution that started it (a Subflow's or
    ForEachItem's parent, a Flow trigger's source), whose files it may receive as FILE inputs."""
    variables = (trigger or {}).get("variables") or {}
    parent = variables.get("namespace") if variables.get("executionId") else None
    return (namespace,) if not isinstance(parent, str) or parent == namespace else (namespace, parent)


def allowed_roots(paths: Sequence[str | Path]) -> tuple[Path, ...]:
    """``kestra.local-files.allowed-paths`` resolved once (symlinks followed), like the files checked."""
    return tuple(Path(p).resolve() for p in paths)
