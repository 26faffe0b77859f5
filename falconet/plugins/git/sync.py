"""``io.kestra.plugin.git.SyncFlows`` and ``SyncNamespaceFiles``: make Falconet match a folder of a branch.

Both clone ``branch`` (depth 1) into a private temporary folder, read ``gitDirectory`` and apply each file
through the same paths as the API — flows are validated and saved as a new revision only when their source
changed; namespace files get a new revision only when their content changed. With ``delete`` what Falconet
holds and the folder does not is deleted (never the flow running the sync). With ``dryRun`` nothing is
changed and the diff says what would be.

The diff is an Ion file in internal storage (output ``flows`` / ``files``), one row per resource, sorted by
``gitPath`` (deleted resources, which have none, first) — rows ``{gitPath, syncState, flowId, namespace,
revision}`` or ``{gitPath, syncState, kestraPath}``, ``syncState`` one of ADDED, UPDATED (flows),
OVERWRITTEN (files), UNCHANGED, DELETED.
"""
from __future__ import annotations

import abc
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import trio

from falconet.plugins.git.repo import (
    API_PROPS, BRANCH_PROP, CONNECTION_PROPS, DRY_RUN_PROP, Git, open_scratch, relative_dir, remove_scratch,
    repository_files,
)
from falconet.sdk import (
    BOOLEAN, STRING, Example, FlowSource, Output, Prop, RunContext, RunnableTask, TaskFailed, register,
    write_ion_rows,
)

#: a flow file read from git is at most this long (as a flow uploaded through the API)
MAX_FLOW_FILE = 1024 * 1024
_NAMESPACE_LINE = re.compile(r"(?m)^namespace: (.*)$")
_FLOW_SUFFIXES = (".yml", ".yaml")


@dataclass
class _Row:
    git_path: str | None
    state: str
    fields: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {"gitPath": self.git_path, "syncState": self.state, **self.fields}


class _SyncTask(RunnableTask, abc.ABC):
    """Clone, read ``gitDirectory``, let the subclass apply it, store the diff."""

    output_name = ""

    @abc.abstractmethod
    async def apply(self, ctx: RunContext, folder: Path, git_dir: str, dry_run: bool, delete: bool) -> list[_Row]:
        """Apply (or simulate) the files of ``folder`` (``git_dir`` as written in the flow)."""

    async def run(self, ctx: RunContext) -> dict[str, Any]:
        url = ctx.prop("url")
        if not url:
            raise TaskFailed("url is required")
        branch = ctx.prop("branch") or "main"
        git_dir = ctx.prop("gitDirectory") or "."
        rel = relative_dir(git_dir, "gitDirectory")
        dry_run, delete = bool(ctx.prop("dryRun")), bool(ctx.prop("delete"))
        scratch = await open_scratch("falconet-git-")
        try:
            git = await Git.open(ctx, scratch)
            clone = scratch / "repo"
            await git.clone(url, clone, branch=branch, depth=1, submodules=bool(ctx.prop("cloneSubmodules")))
            folder = clone.joinpath(*rel.parts)
            present = await trio.to_thread.run_sync(lambda: _inside(clone, folder))
            if not present:
                if ctx.prop("failOnMissingDirectory"):
                    raise TaskFailed(f"The directory '{git_dir}' was not found in the git repository. Verify if "
                                     f"the path exists in the specified branch '{branch}'.")
                folder = scratch / "empty"
                await trio.to_thread.run_sync(folder.mkdir)
            rows = await self.apply(ctx, folder, git_dir.strip().rstrip("/"), dry_run, delete)
            rows.sort(key=lambda r: (r.git_path is not None, r.git_path or ""))
            diff = scratch / f"{self.output_name}.ion"

            def write() -> None:
                with open(diff, "w", encoding="utf-8") as f:
                    write_ion_rows(f, (r.as_dict() for r in rows))
            await trio.to_thread.run_sync(write)
            counts = {state: sum(r.state == state for r in rows) for state in {r.state for r in rows}}
            ctx.logger.info(("Dry run: " if dry_run else "") + ", ".join(
                f"{n} {state.lower()}" for state, n in sorted(counts.items())) if rows else "Nothing to sync")
            return {self.output_name: await ctx.put_file(diff, diff.name)}
        finally:
            await remove_scratch(scratch)


def _inside(clone: Path, folder: Path) -> bool:
    """True when ``folder`` is a directory whose real path stays inside the clone (no symlink escape)."""
    if not folder.is_dir():
        if folder.exists():
            raise TaskFailed(f"The path '{folder.relative_to(clone)}' exists but is a file, not a directory")
        return False
    real, root = folder.resolve(), clone.resolve()
    if real != root and root not in real.parents:
        raise TaskFailed(f"The directory '{folder.relative_to(clone)}' points outside the repository")
    return True


_SYNC_PROPS: dict[str, Prop] = {
    **CONNECTION_PROPS,
    **API_PROPS,
    "branch": BRANCH_PROP,
    "dryRun": DRY_RUN_PROP,
    "failOnMissingDirectory": Prop(BOOLEAN, default=True, description="Fail when gitDirectory does not exist "
                                                                      "in the branch (else: nothing in git)."),
}


#### flows ##################################################################################################

@register
class SyncFlows(_SyncTask):
    """Create or update the flows of ``targetNamespace`` from the ``.yml``/``.yaml`` files of ``gitDirectory``
    (sub-folders map to child namespaces with ``includeChildNamespaces``); each file's ``namespace:`` line is
    rewritten to the namespace it is synced to."""

    type = "io.kestra.plugin.git.SyncFlows"
    title = "Sync flows from Git to Falconet."
    output_name = "flows"
    examples = (
        Example("Sync the flows of a branch's `flows` folder every hour, deleting those removed from git.",
                "id: sync_flows_from_git\n"
                "namespace: company.ops\n"
                "\n"
                "tasks:\n"
                "  - id: git\n"
                "    type: io.kestra.plugin.git.SyncFlows\n"
                "    url: https://github.com/my-org/flows\n"
                "    branch: main\n"
                "    username: git_username\n"
                "    password: \"{{ secret('GITHUB_ACCESS_TOKEN') }}\"\n"
                "    gitDirectory: flows\n"
                "    targetNamespace: company.team\n"
                "    includeChildNamespaces: true\n"
                "    delete: true\n"
                "\n"
                "triggers:\n"
                "  - id: every_full_hour\n"
                "    type: io.kestra.plugin.core.trigger.Schedule\n"
                "    cron: \"0 * * * *\"\n", full=True),
    )
    outputs = {"flows": Output("string", "kestra:// URI of an Ion file: one row per flow and its sync state.")}
    props = {
        **_SYNC_PROPS,
        "targetNamespace": Prop(STRING, required=True, description="The namespace the flows are synced to."),
        "gitDirectory": Prop(STRING, default="_flows", description="The folder of the branch holding the flows."),
        "includeChildNamespaces": Prop(BOOLEAN, default=False, description="Sync sub-folders to child namespaces "
                                                                           "(and consider them for delete)."),
        "delete": Prop(BOOLEAN, default=False, description="Delete the flows of the namespace(s) missing in git."),
        "ignoreInvalidFlows": Prop(BOOLEAN, default=False, description="Skip invalid flows (WARN) instead of "
                                                                       "failing."),
    }

    async def apply(self, ctx: RunContext, folder: Path, git_dir: str, dry_run: bool, delete: bool) -> list[_Row]:
        target = ctx.prop("targetNamespace")
        children = bool(ctx.prop("includeChildNamespaces"))
        ignore_invalid = bool(ctx.prop("ignoreInvalidFlows"))
        before = {(f.namespace, f.id): f for f in await ctx.list_flow_sources(target, children=children)}
        files = [p for p in await trio.to_thread.run_sync(lambda: repository_files(folder, recursive=children))
                 if p.endswith(_FLOW_SUFFIXES)]
        rows: list[_Row] = []
        synced: set[tuple[str, str]] = set()
        for rel in sorted(files, key=lambda p: (p.count("/"), p)):
            parent = PurePosixPath(rel).parent
            namespace = ".".join([target, *parent.parts]) if parent.parts else target
            source = await _read_flow_file(folder / rel, rel)
            source = _with_namespace(source, namespace).rstrip()
            git_path = f"{git_dir}/{rel}"
            try:
                checked = await ctx.check_flow(source)
            except TaskFailed as exc:
                if ignore_invalid:
                    ctx.logger.warn(f"Invalid flow imported from Git ({rel}): {exc}")
                    continue
                raise TaskFailed(f"Invalid flow imported from Git ({rel}): {exc}") from exc
            old = before.get((checked.namespace, checked.id))
            if dry_run:
                unchanged = old is not None and old.source == source     # as save_flow decides
                after = FlowSource(checked.namespace, checked.id,
                                   1 if old is None else old.revision if unchanged else old.revision + 1, source)
            else:
                after = await ctx.save_flow(source)
            synced.add((after.namespace, after.id))
            state = "ADDED" if old is None else "UNCHANGED" if old.revision == after.revision else "UPDATED"
            rows.append(_Row(git_path, state, _flow_fields(after)))
        if delete:
            for key, old in before.items():
                if key in synced or key == (ctx.namespace, ctx.flow_id):
                    continue
                if not dry_run:
                    await ctx.delete_flow(old.namespace, old.id)
                rows.append(_Row(None, "DELETED", _flow_fields(old)))
        return rows


def _with_namespace(source: str, namespace: str) -> str:
    """``source`` with its first top-level ``namespace: …`` line naming ``namespace`` (as Kestra rewrites it)."""
    return _NAMESPACE_LINE.sub(lambda _m: f"namespace: {namespace}", source, count=1)


def _flow_fields(flow: FlowSource) -> dict[str, Any]:
    return {"flowId": flow.id, "namespace": flow.namespace, "revision": flow.revision}


async def _read_flow_file(path: Path, rel: str) -> str:
    def read() -> bytes:
        with open(path, "rb") as f:
            return f.read(MAX_FLOW_FILE + 1)
    data = await trio.to_thread.run_sync(read)
    if len(data) > MAX_FLOW_FILE:
        raise TaskFailed(f"Flow file {rel} is larger than {MAX_FLOW_FILE} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise TaskFailed(f"Flow file {rel} is not UTF-8 text") from None


#### namespace files ########################################################################################

@register
class SyncNamespaceFiles(_SyncTask):
    """Copy every file of ``gitDirectory`` (recursively) to the namespace files of ``namespace``."""

    type = "io.kestra.plugin.git.SyncNamespaceFiles"
    title = "Sync namespace files from Git to Falconet."
    output_name = "files"
    examples = (
        Example("Sync the scripts of a branch's `scripts` folder into the namespace every hour.",
                "id: sync_files_from_git\n"
                "namespace: company.ops\n"
                "\n"
                "tasks:\n"
                "  - id: git\n"
                "    type: io.kestra.plugin.git.SyncNamespaceFiles\n"
                "    url: https://github.com/my-org/scripts\n"
                "    branch: main\n"
                "    namespace: company.team\n"
                "    gitDirectory: scripts\n"
                "    delete: true\n"
                "\n"
                "triggers:\n"
                "  - id: every_full_hour\n"
                "    type: io.kestra.plugin.core.trigger.Schedule\n"
                "    cron: \"0 * * * *\"\n", full=True),
    )
    outputs = {"files": Output("string", "kestra:// URI of an Ion file: one row per file and its sync state.")}
    props = {
        **_SYNC_PROPS,
        "namespace": Prop(STRING, default="{{ flow.namespace }}", description="The namespace of the files."),
        "gitDirectory": Prop(STRING, default="_files", description="The folder of the branch holding the files."),
        "delete": Prop(BOOLEAN, default=False, description="Delete the namespace files missing in git."),
    }

    async def apply(self, ctx: RunContext, folder: Path, git_dir: str, dry_run: bool, delete: bool) -> list[_Row]:
        namespace = ctx.prop("namespace") or ctx.namespace
        before = set(await ctx.list_namespace_files(namespace))
        rows: list[_Row] = []
        synced: set[str] = set()
        for rel in await trio.to_thread.run_sync(repository_files, folder):
            path = "/" + rel
            synced.add(path)
            if path not in before:
                state = "ADDED"
            elif await _sha256(folder / rel) == await ctx.namespace_file_sha256(namespace, path):
                state = "UNCHANGED"
            else:
                state = "OVERWRITTEN"
            if state != "UNCHANGED" and not dry_run:
                await ctx.put_namespace_file(namespace, path, folder / rel)
            rows.append(_Row(f"{git_dir}/{rel}", state, {"kestraPath": path}))
        if delete:
            for path in sorted(before - synced):
                if not dry_run:
                    await ctx.delete_namespace_file(namespace, path)
                rows.append(_Row(None, "DELETED", {"kestraPath": path}))
        return rows


async def _sha256(path: Path) -> str:
    def digest() -> str:
        with open(path, "rb") as f:
            return hashlib.file_digest(f, "sha256").hexdigest()
    return await trio.to_thread.run_sync(digest)
