"""``io.kestra.plugin.core.storage.*``: split, concatenate, reverse, filter, deduplicate, size and delete
internal-storage files, and the deprecated ``LocalFiles``.

Line-oriented tasks read lines as Java's ``BufferedReader.readLine`` does (``\\n``, ``\\r`` and ``\\r\\n``
all end a line) and write each line followed by ``separator``. Files stream through worker threads (never
whole in memory); a kill or timeout stops the worker at the next line. ``FilterItems`` and
``DeduplicateItems`` read Ion files (one item per line) and render their expression with the item's fields
as variables.
"""
from __future__ import annotations

import io
import json
import re
import threading
from pathlib import Path, PurePosixPath
from typing import IO, Any, Callable, Iterator, TypeVar
from urllib.parse import unquote, urlsplit

import trio

from falconet.sdk import (
    ANY, BOOLEAN, ENUM, INTEGER, LIST, STRING, as_file_map, Example, ExpressionError, from_ion_value, glob_match,
    IllegalArgument, is_truthy, NotFound, Output, Prop, RunContext, safe_join, simpleion, walk_files,
    write_input_files,
)
from falconet.sdk.plugin import \
    RunnableTask, TaskFailed, register

T = TypeVar("T")


#### helpers ################################################################################################

class Stopped(Exception):
    """Raised inside a worker thread when its task was cancelled."""


async def run_in_worker(fn: Callable[[threading.Event], T]) -> T:
    """Run ``fn(stop)`` in a worker thread. On cancellation ``stop`` is set (``fn`` should check it per
    item and raise :class:`Stopped`), the thread is abandoned and ``trio.Cancelled`` propagates."""
    stop = threading.Event()
    try:
        return await trio.to_thread.run_sync(fn, stop, abandon_on_cancel=True)
    except BaseException:
        stop.set()
        raise


def read_lines(binary: IO[bytes], charset: str = "utf-8") -> Iterator[str]:
    """The lines of a binary stream, terminators (``\\n``, ``\\r``, ``\\r\\n``) stripped."""
    with io.TextIOWrapper(binary, encoding=charset, newline=None) as text:
        for line in text:
            yield line[:-1] if line.endswith("\n") else line


def open_uri(ctx: RunContext, uri: Any, what: str = "from") -> IO[bytes]:
    """Open an internal-storage file for reading; TaskFailed with a clear message on a bad/missing URI."""
    if not isinstance(uri, str) or not uri.startswith("kestra://"):
        raise TaskFailed(f"{what} must be a kestra:// URI, got {uri!r}")
    try:
        return ctx.storage.open_read(uri)
    except NotFound as exc:
        raise TaskFailed(f"Unable to find the file '{uri}'") from exc
    except IllegalArgument as exc:
        raise TaskFailed(f"Invalid {what} '{uri}': {exc}") from exc


async def open_uri_async(ctx: RunContext, uri: Any, what: str = "from") -> IO[bytes]:
    """:func:`open_uri` on a worker thread (opening a file of a remote storage is a request)."""
    return await trio.to_thread.run_sync(open_uri, ctx, uri, what)


def extension_of(uri: str, default: str = ".tmp") -> str:
    """The extension of a URI's file name (``.csv``), or ``default``."""
    name = PurePosixPath(unquote(urlsplit(uri).path)).name
    return name[name.rindex("."):] if "." in name else default


_SIZE_RE = re.compile(r"^\s*(\d+)\s*(B|KB|MB|GB|TB)?\s*$", re.I)
_UNITS = {None: 1, "B": 1, "KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30, "TB": 1 << 40}


def parse_size(value: Any) -> int:
    """A readable byte size (``10MB``, ``512KB``, ``1024``) in bytes (1 KB = 1024 B, as Micronaut reads it)."""
    m = _SIZE_RE.match(str(value))
    if m is None or int(m.group(1)) <= 0:
        raise TaskFailed(f"Invalid size with value '{value}'")
    return int(m.group(1)) * _UNITS[m.group(2).upper() if m.group(2) else None]


def _check(stop: threading.Event) -> None:
    if stop.is_set():
        raise Stopped()


#### Split ##################################################################################################

@register
class Split(RunnableTask):
    """Split a file by ``bytes`` (a new file once one reaches the size), ``rows`` (lines per file) or
    ``partitions`` (that many files, lines dealt round-robin). Output ``uris``: the files, in order."""

    type = "io.kestra.plugin.core.storage.Split"
    aliases = ("io.kestra.core.tasks.storages.Split",)
    title = "Split a file into multiple files."
    examples = (
        Example("Split a file into files of 1,000 lines.",
                "from: \"{{ outputs.download.uri }}\"\n"
                "rows: 1000\n"),
    )
    outputs = {
        "uris": Output("list", "URIs of the parts, in order."),
    }
    props = {
        "from": Prop(STRING, required=True, description="The file to split (kestra:// URI)."),
        "bytes": Prop(STRING, description="Maximum size of each file, e.g. 10MB."),
        "partitions": Prop(INTEGER, description="Number of files to create."),
        "rows": Prop(INTEGER, description="Number of lines per file."),
        "separator": Prop(STRING, default="\n", description="Written after each line."),
    }

    async def run(self, ctx: RunContext) -> dict[str, Any] | None:
        uri = ctx.prop("from")
        size, partitions, rows = ctx.prop("bytes"), ctx.prop("partitions"), ctx.prop("rows")
        separator = str(ctx.prop("separator"))
        limit = parse_size(size) if size is not None else None
        if limit is None and partitions is None and rows is None:
            raise TaskFailed("Invalid configuration with no size, count, nor rows")
        for name, v in (("partitions", partitions), ("rows", rows)):
            if v is not None and int(v) <= 0:
                raise TaskFailed(f"{name} must be a positive number, got {v}")
        ext = extension_of(str(uri))
        tmp = Path(await ctx.open_temp_dir())
        source = await open_uri_async(ctx, uri)

        def split(stop: threading.Event) -> list[Path]:
            files: list[Path] = []
            with source:
                if limit is None and partitions is not None:
                    files = [tmp / f"split_{i}{ext}" for i in range(int(partitions))]
                    outs = [open(p, "wb") for p in files]
                    try:
                        for i, line in enumerate(read_lines(source)):
                            _check(stop)
                            outs[i % len(outs)].write((line + separator).encode("utf-8"))
                    finally:
                        for o in outs:
                            o.close()
                    return files
                out = None
                n_bytes = n_rows = 0
                try:
                    for line in read_lines(source):
                        _check(stop)
                        if out is None or (n_bytes >= limit if limit is not None else n_rows >= int(rows)):
                            if out is not None:
                                out.close()
                            files.append(tmp / f"split_{len(files)}{ext}")
                            out = open(files[-1], "wb")
                            n_bytes = n_rows = 0
                        data = (line + separator).encode("utf-8")
                        out.write(data)
                        n_bytes += len(data)
                        n_rows += 1
                finally:
                    if out is not None:
                        out.close()
            return files

        files = await run_in_worker(split)
        return {"uris": [await ctx.put_file(p) for p in files]}


#### Concat #################################################################################################

@register
class Concat(RunnableTask):
    """Concatenate ``files`` (a list of URIs, or a JSON list string) into one file; ``separator`` is written
    after each file's content. Output ``uri`` (extension ``extension``, default ``.tmp``)."""

    type = "io.kestra.plugin.core.storage.Concat"
    aliases = ("io.kestra.core.tasks.storages.Concat",)
    title = "Concat files from the internal storage."
    examples = (
        Example("Concatenate files of the internal storage.",
                "files:\n"
                "  - \"{{ outputs.first.uri }}\"\n"
                "  - \"{{ outputs.second.uri }}\"\n"
                "separator: \"\\n\"\n"),
    )
    outputs = {
        "uri": Output("string", "URI of the concatenated file."),
    }
    props = {
        "files": Prop(LIST, required=True, description="The files to concatenate (URIs)."),
        "separator": Prop(STRING, description="Written after each file."),
        "extension": Prop(STRING, default=".tmp", description="Extension of the created file."),
    }

    async def run(self, ctx: RunContext) -> dict[str, Any] | None:
        files = ctx.prop("files")
        if isinstance(files, str):
            try:
                files = json.loads(files)
            except json.JSONDecodeError as exc:
                raise TaskFailed(f"files must be a list or a JSON list string: {exc}") from exc
        if not isinstance(files, list):
            raise TaskFailed("files must be a list of kestra:// URIs")
        separator = ctx.prop("separator")
        sep = None if separator is None else str(separator).encode("utf-8")
        path = Path(await ctx.open_temp_dir()) / f"concat{ctx.prop('extension')}"

        def concat(stop: threading.Event) -> None:
            with open(path, "wb") as out:
                for uri in files:
                    _check(stop)
                    with open_uri(ctx, uri, "files") as src:
                        while chunk := src.read(1 << 20):
                            _check(stop)
                            out.write(chunk)
                    if sep is not None:
                        out.write(sep)

        await run_in_worker(concat)
        return {"uri": await ctx.put_file(path)}


#### Size, Delete ###########################################################################################

@register
class Size(RunnableTask):
    """Output ``size``: the size in bytes of the file ``uri``."""

    type = "io.kestra.plugin.core.storage.Size"
    aliases = ("io.kestra.core.tasks.storages.Size",)
    title = "Get the size of a file from the internal storage."
    examples = (
        Example("Size of a file of the internal storage.",
                "uri: \"{{ outputs.download.uri }}\"\n"),
    )
    outputs = {
        "size": Output("integer", "Size in bytes."),
    }
    props = {"uri": Prop(STRING, required=True, description="The file (kestra:// URI).")}

    async def run(self, ctx: RunContext) -> dict[str, Any] | None:
        uri = ctx.prop("uri")
        with await open_uri_async(ctx, uri, "uri") as f:
            f.seek(0, io.SEEK_END)
            return {"size": f.tell()}


@register
class Delete(RunnableTask):
    """Delete the file ``uri``. Outputs ``uri`` and ``deleted``; ``errorOnMissing`` fails on a missing file."""

    type = "io.kestra.plugin.core.storage.Delete"
    aliases = ("io.kestra.core.tasks.storages.Delete",)
    title = "Delete a file from the internal storage."
    examples = (
        Example("Delete a file of the internal storage.",
                "uri: \"{{ outputs.download.uri }}\"\n"),
    )
    outputs = {
        "uri": Output("string", "The URI given."),
        "deleted": Output("boolean", "Whether a file was deleted."),
    }
    props = {
        "uri": Prop(STRING, required=True, description="The file (kestra:// URI)."),
        "errorOnMissing": Prop(BOOLEAN, default=False, description="Fail when the file does not exist."),
    }

    async def run(self, ctx: RunContext) -> dict[str, Any] | None:
        uri = ctx.prop("uri")
        if not isinstance(uri, str) or not uri.startswith("kestra://"):
            raise TaskFailed(f"uri must be a kestra:// URI, got {uri!r}")
        try:
            deleted = await trio.to_thread.run_sync(ctx.storage.delete, uri)
        except IllegalArgument as exc:
            raise TaskFailed(f"Invalid uri '{uri}': {exc}") from exc
        if not deleted and ctx.prop("errorOnMissing"):
            raise TaskFailed(f"Unable to find file '{uri}'")
        return {"uri": uri, "deleted": deleted}


#### Reverse ################################################################################################

@register
class Reverse(RunnableTask):
    """Write the lines of ``from`` in reverse order, each followed by ``separator``. Output ``uri``.
    (Reads the file once to index line offsets, then seeks backwards: memory is one offset per line.)"""

    type = "io.kestra.plugin.core.storage.Reverse"
    aliases = ("io.kestra.core.tasks.storages.Reverse",)
    title = "Reverse the lines of a file."
    examples = (
        Example("Reverse the lines of a file.",
                "from: \"{{ outputs.download.uri }}\"\n"),
    )
    outputs = {
        "uri": Output("string", "URI of the reversed file."),
    }
    props = {
        "from": Prop(STRING, required=True, description="The file (kestra:// URI)."),
        "separator": Prop(STRING, default="\n", description="Written after each line."),
        "charset": Prop(STRING, default="UTF-8", description="Charset of the file."),
    }

    async def run(self, ctx: RunContext) -> dict[str, Any] | None:
        uri = ctx.prop("from")
        separator, charset = str(ctx.prop("separator")), str(ctx.prop("charset"))
        try:
            "".encode(charset)
        except LookupError as exc:
            raise TaskFailed(f"Unknown charset '{charset}'") from exc
        path = Path(await ctx.open_temp_dir()) / f"reverse{extension_of(str(uri))}"
        source = await open_uri_async(ctx, uri)

        def reverse(stop: threading.Event) -> None:
            with source:
                offsets = [0]
                for raw in source:
                    _check(stop)
                    offsets.append(offsets[-1] + len(raw))
                with open(path, "wb") as out:
                    for start, end in zip(reversed(offsets[:-1]), reversed(offsets[1:]), strict=True):
                        _check(stop)
                        source.seek(start)
                        line = source.read(end - start).decode(charset)
                        out.write((line.rstrip("\r\n") + separator).encode(charset))

        await run_in_worker(reverse)
        return {"uri": await ctx.put_file(path)}


#### FilterItems, DeduplicateItems ##########################################################################

def _item_vars(line: str) -> dict[str, Any]:
    value = from_ion_value(simpleion().loads(line))
    return value if isinstance(value, dict) else {"value": value}


def _render_error() -> type[Exception]:
    return ExpressionError


@register
class FilterItems(RunnableTask):
    """Keep (``filterType: INCLUDE``) or drop (``EXCLUDE``) the items of an Ion file for which
    ``filterCondition`` — rendered with the item's fields as variables — is truthy. An item whose expression
    fails or renders null follows ``errorOrNullBehavior`` (FAIL, INCLUDE, EXCLUDE). Outputs ``uri``,
    ``processedItemsTotal``, ``droppedItemsTotal``."""

    type = "io.kestra.plugin.core.storage.FilterItems"
    aliases = ("io.kestra.core.tasks.storages.FilterItems",)
    title = "Filter the items of an Ion file with an expression."
    examples = (
        Example("Keep the items of an ION file with a positive amount.",
                "from: \"{{ outputs.fetch.uri }}\"\n"
                "filterCondition: \"{{ amount > 0 }}\"\n"),
    )
    outputs = {
        "uri": Output("string", "URI of the filtered file."),
        "processedItemsTotal": Output("integer", "Number of items read."),
        "droppedItemsTotal": Output("integer", "Number of items dropped."),
    }
    props = {
        "from": Prop(STRING, required=True, description="The Ion file (kestra:// URI)."),
        "filterCondition": Prop(STRING, required=True, dynamic=False,
                                description="Expression rendered per item (its fields are variables)."),
        "filterType": Prop(ENUM, default="INCLUDE", values=("INCLUDE", "EXCLUDE"), description="Action on a match."),
        "errorOrNullBehavior": Prop(ENUM, default="FAIL", values=("FAIL", "INCLUDE", "EXCLUDE"),
                                    description="Action when the expression fails or is null."),
    }

    async def run(self, ctx: RunContext) -> dict[str, Any] | None:
        uri, condition = ctx.prop("from"), str(ctx.raw("filterCondition"))
        action_on_match, on_error = ctx.prop("filterType"), ctx.prop("errorOrNullBehavior")
        path = Path(await ctx.open_temp_dir()) / "filtered.ion"
        source = await open_uri_async(ctx, uri)
        render_error = _render_error()

        def filter_items(stop: threading.Event) -> tuple[int, int]:
            processed = dropped = 0
            with source, open(path, "w", encoding="utf-8") as out:
                for line in read_lines(source):
                    _check(stop)
                    if not line.strip():
                        continue
                    try:
                        rendered = ctx.render(condition, _item_vars(line))
                        error = None
                    except render_error as exc:
                        rendered, error = None, exc
                    if rendered is None:
                        if on_error == "FAIL":
                            raise TaskFailed(str(error) if error else
                                             f"Expression `{condition}` return `null` on item `{line}`")
                        include = on_error == "INCLUDE"
                    else:
                        match = is_truthy(rendered)
                        include = (action_on_match == "INCLUDE") == match
                    if include:
                        out.write(line + "\n")
                    else:
                        dropped += 1
                    processed += 1
            return processed, dropped

        processed, dropped = await run_in_worker(filter_items)
        return {"uri": await ctx.put_file(path), "processedItemsTotal": processed, "droppedItemsTotal": dropped}


@register
class DeduplicateItems(RunnableTask):
    """Remove duplicate items of an Ion file: items whose ``expr`` (rendered with the item's fields) gives
    the same key keep only the **last** occurrence, in the original order. Outputs ``uri``, ``numKeys``,
    ``processedItemsTotal``, ``droppedItemsTotal``. Memory: one entry per distinct key."""

    type = "io.kestra.plugin.core.storage.DeduplicateItems"
    aliases = ("io.kestra.core.tasks.storages.DeduplicateItems",)
    title = "Deduplicate the items of an Ion file by a key expression."
    examples = (
        Example("Keep the last item of each id in an ION file.",
                "from: \"{{ outputs.fetch.uri }}\"\n"
                "expr: \"{{ id }}\"\n"),
    )
    outputs = {
        "uri": Output("string", "URI of the deduplicated file."),
        "numKeys": Output("integer", "Number of distinct keys."),
        "processedItemsTotal": Output("integer", "Number of items read."),
        "droppedItemsTotal": Output("integer", "Number of items dropped."),
    }
    props = {
        "from": Prop(STRING, required=True, description="The Ion file (kestra:// URI)."),
        "expr": Prop(STRING, required=True, dynamic=False,
                     description="Expression rendered per item (its fields are variables): the key."),
    }

    async def run(self, ctx: RunContext) -> dict[str, Any] | None:
        uri, expr = ctx.prop("from"), str(ctx.raw("expr"))
        path = Path(await ctx.open_temp_dir()) / "deduplicated.ion"
        first, second = await open_uri_async(ctx, uri), await open_uri_async(ctx, uri)

        def keys_of(stop: threading.Event, source: IO[bytes]) -> Iterator[tuple[str, str]]:
            for line in read_lines(source):
                _check(stop)
                if line.strip():
                    yield line, str(ctx.render(expr, _item_vars(line)))

        def dedup(stop: threading.Event) -> tuple[int, int, int]:
            last: dict[str, int] = {}
            with first:
                for index, (_line, key) in enumerate(keys_of(stop, first)):
                    last[key] = index
            processed = 0
            with second, open(path, "w", encoding="utf-8") as out:
                for index, (line, key) in enumerate(keys_of(stop, second)):
                    if last[key] == index:
                        out.write(line + "\n")
                    processed += 1
            return len(last), processed, processed - len(last)

        num_keys, processed, dropped = await run_in_worker(dedup)
        return {"uri": await ctx.put_file(path), "numKeys": num_keys,
                "processedItemsTotal": processed, "droppedItemsTotal": dropped}


#### LocalFiles (deprecated), PurgeCurrentExecutionFiles ####################################################

@register
class LocalFiles(RunnableTask):
    """Deprecated (use ``inputFiles``/``outputFiles`` of scripts or WorkingDirectory): create ``inputs``
    (name → inline content or ``kestra://`` URI) in the task's working directory and upload the files
    matching ``outputs`` globs. Output ``uris``: name → URI. Inside a WorkingDirectory the engine gives
    consecutive tasks the same directory."""

    type = "io.kestra.plugin.core.storage.LocalFiles"
    aliases = ("io.kestra.core.tasks.storages.LocalFiles",)
    title = "Create and upload files in the local working directory (deprecated)."
    examples = (
        Example("Create files and send some to the internal storage (deprecated: use WorkingDirectory files).",
                "inputs:\n"
                "  data.csv: \"a,b\\n1,2\"\n"
                "outputs:\n"
                "  - \"*.csv\"\n"),
    )
    outputs = {
        "uris": Output("map", "URIs of the output files, by relative path."),
    }
    props = {
        "inputs": Prop(ANY, description="Files to create: map of name to content or kestra:// URI (or JSON)."),
        "outputs": Prop(LIST, description="Globs of files to upload."),
    }

    async def run(self, ctx: RunContext) -> dict[str, Any] | None:

        root = Path(await ctx.open_temp_dir())
        await write_input_files(ctx, root, as_file_map(ctx.prop("inputs"), "inputs"))
        globs = ctx.prop("outputs") or []
        if not isinstance(globs, list):
            raise TaskFailed("outputs must be a list of globs")
        found = await trio.to_thread.run_sync(
            lambda: [rel for rel in walk_files(root) if any(glob_match(str(g), rel) for g in globs)])
        return {"uris": {rel: await ctx.put_file(safe_join(root, rel), rel) for rel in found}}


@register
class PurgeCurrentExecutionFiles(RunnableTask):
    """Delete every internal-storage file of the current execution. Output ``uris``: the deleted files."""

    type = "io.kestra.plugin.core.storage.PurgeCurrentExecutionFiles"
    aliases = ("io.kestra.core.tasks.storages.PurgeExecution", "io.kestra.plugin.core.storage.PurgeExecution")
    title = "Delete all the files of the current execution from the internal storage."
    examples = (
        Example("Delete the files this execution stored.", ""),
    )
    outputs = {
        "uris": Output("list", "URIs of the deleted files."),
    }
    props = {}

    async def run(self, ctx: RunContext) -> dict[str, Any] | None:
        storage = ctx.storage
        prefix = storage.execution_prefix(ctx.namespace, ctx.flow_id, ctx.execution_id)

        def purge(stop: threading.Event) -> list[str]:
            uris = storage.list(prefix)
            for uri in uris:
                _check(stop)
                storage.delete(uri)
            return uris

        return {"uris": await run_in_worker(purge)}
