"""Files around a task's working directory: ``inputFiles`` and namespace files going in, the
``outputFiles`` globs and output directory going out. Used by ``flow.WorkingDirectory`` and by the
script, storage and DuckDB plugins.

Glob patterns are Java ``PathMatcher`` globs (as Kestra matches them) applied to paths relative to the
working directory with ``/`` separators: ``*`` and ``?`` stay within one path segment, ``**`` crosses
segments, ``{a,b}`` is an alternation, ``[abc]`` a character class. They compile to RE2 patterns
(:mod:`falconet.runtime.expr.safe_regex`): a glob with many stars matches in linear time.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from collections.abc import Iterable, Mapping
from functools import lru_cache
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote

import trio

from falconet.runtime.expr import safe_regex
from falconet.runtime.kernel.errors import IllegalArgument, NotFound
from falconet.runtime.expr.output import to_output_string
from falconet.sdk.plugin import RunContext, TaskFailed

#### globs ##################################################################################################

@lru_cache(maxsize=256)
def glob_regex(pattern: str) -> Any:
    """Compile a Java-style glob into an anchored RE2 pattern (:class:`safe_regex.RegexError` if malformed)."""
    out, i, depth = [], 0, 0
    while i < len(pattern):
        c = pattern[i]
        if c == "*":
            if pattern.startswith("**", i):
                i += 2
                if pattern.startswith("/", i):      # "**/" also matches zero directories
                    out.append("(?:.*/)?")
                    i += 1
                else:
                    out.append(".*")
                continue
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "{":
            depth += 1
            out.append("(?:")
        elif c == "}" and depth:
            depth -= 1
            out.append(")")
        elif c == "," and depth:
            out.append("|")
        elif c == "[":
            end = pattern.find("]", i + 1)
            if end == -1:
                out.append(re.escape(c))
            else:
                body = pattern[i + 1:end].replace("\\", "\\\\")
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append(f"[{body}]")
                i = end
        elif c == "\\" and i + 1 < len(pattern):
            i += 1
            out.append(re.escape(pattern[i]))
        else:
            out.append(re.escape(c))
        i += 1
    return safe_regex.compile("".join(out) + r"\z")


def glob_match(pattern: str, rel_path: str) -> bool:
    return glob_regex(pattern).match(rel_path) is not None


def walk_files(root: Path) -> Iterable[str]:
    """Relative ``/``-separated paths of every regular file under ``root`` (sorted; blocking)."""
    found = []
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            full = Path(dirpath) / name
            if full.is_file():
                found.append(full.relative_to(root).as_posix())
    return sorted(found)


def safe_join(root: Path, rel: str) -> Path:
    """``root / rel``, refusing absolute paths and ``..`` escapes (TaskFailed)."""
    p = PurePosixPath(rel)
    if p.is_absolute() or ".." in p.parts or not rel.strip():
        raise TaskFailed(f"Invalid file name '{rel}': it must be a relative path inside the working directory")
    return root.joinpath(*p.parts)


#### input files ############################################################################################

def as_file_map(value: Any, what: str) -> dict[str, Any]:
    """A rendered ``inputFiles``-like value (map, or JSON string of a map) as a dict; TaskFailed otherwise."""
    if value is None:
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise TaskFailed(f"{what} must be a map or a JSON object string: {exc}") from exc
    if not isinstance(value, dict):
        raise TaskFailed(f"{what} must be a map of file name to content")
    return value


async def write_input_files(ctx: RunContext, root: Path, files: Mapping[str, Any]) -> list[str]:
    """Create each file of ``files`` (name → inline text, or a ``kestra://`` URI whose content is copied)
    under ``root``; returns the relative names written."""
    written = []
    for name, content in files.items():
        target = safe_join(root, str(name))
        text = to_output_string(content)
        if text.startswith("kestra://"):
            await copy_from_storage(ctx, text, target)
        else:
            def write(target: Path = target, text: str = text) -> None:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(text, encoding="utf-8")
            await trio.to_thread.run_sync(write)
        written.append(str(name))
    return written


async def copy_from_storage(ctx: RunContext, uri: str, target: Path) -> None:
    """Copy the internal-storage file ``uri`` to the local path ``target`` (streamed; TaskFailed if missing)."""
    def copy() -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            src = ctx.storage.open_read(uri)
        except NotFound as exc:
            raise TaskFailed(f"Unable to read the file '{uri}': not found in internal storage") from exc
        except IllegalArgument as exc:
            raise TaskFailed(f"Unable to read the file '{uri}': {exc}") from exc
        with src, open(target, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
    await trio.to_thread.run_sync(copy)


#: an internal-storage URI inside a command or script (Kestra's ``ScriptService.INTERNAL_STORAGE_PATTERN``)
STORAGE_URI_RE = re.compile(r"kestra://[-a-zA-Z0-9%._+~#=/]*")
_UNSAFE_NAME_CHARS = re.compile(r"[^A-Za-z0-9._-]")


async def localize_storage_uris(ctx: RunContext, text: str, root: Path) -> str:
    """Download every ``kestra://`` file named in ``text`` into ``root`` and return ``text`` with each URI
    replaced by the absolute local path (Kestra's ``ScriptService.replaceInternalStorage``). Each distinct
    URI is downloaded once per call to a new file whose name ends with the URI's last segment; a missing
    file is a TaskFailed."""
    local: dict[str, str] = {}
    for uri in dict.fromkeys(STORAGE_URI_RE.findall(text)):
        name = _UNSAFE_NAME_CHARS.sub("_", unquote(uri.rsplit("/", 1)[-1]))[-100:]
        target = root / f"kestra-{uuid.uuid4().hex[:12]}-{name}"
        await copy_from_storage(ctx, uri, target)
        local[uri] = str(target)
    if not local:
        return text
    return STORAGE_URI_RE.sub(lambda m: local[m.group(0)], text)


async def copy_namespace_files(ctx: RunContext, root: Path, spec: Any) -> list[str]:
    """Copy the namespace files selected by ``spec`` (``{enabled, include, exclude}``) into ``root``."""
    if spec is None or spec is False:
        return []
    if spec is True:
        spec = {"enabled": True}
    if not isinstance(spec, dict):
        raise TaskFailed("namespaceFiles must be an object {enabled, include, exclude}")
    enabled = spec.get("enabled", True)
    if enabled is False or str(enabled).lower() == "false":
        return []
    include = spec.get("include") or []
    exclude = spec.get("exclude") or []
    if not isinstance(include, list) or not isinstance(exclude, list):
        raise TaskFailed("namespaceFiles include/exclude must be lists of globs")
    storage = ctx.storage
    prefix = storage.namespace_files_prefix(ctx.namespace).strip("/") + "/"

    def copy() -> list[str]:
        copied = []
        for uri in storage.list(prefix):
            rel = unquote(uri[len("kestra:///"):])[len(prefix):]
            if include and not any(glob_match(g, rel) for g in include):
                continue
            if any(glob_match(g, rel) for g in exclude):
                continue
            target = safe_join(root, rel)
            target.parent.mkdir(parents=True, exist_ok=True)
            with storage.open_read(uri) as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
            copied.append(rel)
        return copied
    return await trio.to_thread.run_sync(copy)


#### output files ###########################################################################################

async def upload_output_files(ctx: RunContext, working_dir: Path, globs: list[str],
                              output_dir: Path | None) -> dict[str, str]:
    """Upload the files of ``working_dir`` matching ``globs`` and every file of ``output_dir``; returns the
    map relative name → ``kestra:///`` URI (Kestra's ``outputFiles`` output)."""
    def find() -> list[tuple[str, Path]]:
        found: dict[str, Path] = {}
        if globs:
            for rel in walk_files(working_dir):
                if any(glob_match(g, rel) for g in globs):
                    found[rel] = working_dir / rel
        if output_dir is not None and output_dir.is_dir():
            for rel in walk_files(output_dir):
                found[rel] = output_dir / rel
        return sorted(found.items())
    uploaded = {}
    for rel, path in await trio.to_thread.run_sync(find):
        uploaded[rel] = await ctx.put_file(path, rel)
    return uploaded
