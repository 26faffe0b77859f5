"""``io.kestra.plugin.git.PushFlows``: commit the flows of a namespace to a branch and push it.

The branch is cloned (or created from the remote's default branch, or as the first branch of an empty
repository); each flow is written to ``gitDirectory/<child namespace path>/<id>.yml`` with its ``namespace``
rewritten to ``targetNamespace`` when given; with ``delete`` (default true) flow files of the folder that no
longer match a flow are removed. The staged changes are the diff (output ``flows``, an Ion file of rows
``{file, additions, deletions, changes}``); unless ``dryRun`` they are committed and pushed.
"""
from __future__ import annotations

import difflib
import re
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import trio

from falconet.plugins.git.repo import (
    API_PROPS, BRANCH_PROP, CONNECTION_PROPS, DRY_RUN_PROP, Git, check_ref, open_scratch, relative_dir, remove_scratch,
    repository_files,
)
from falconet.sdk import (
    ANY, BOOLEAN, STRING, Example, Output, Prop, RunContext, RunnableTask, TaskFailed, glob_match, register,
    write_ion_rows,
)

_REVISION_LINE = re.compile(r"(?m)^revision:\s*\d+\n?")
_FLOW_SUFFIXES = (".yml", ".yaml")


@register
class PushFlows(RunnableTask):
    """Commit and push the flows of ``sourceNamespace`` (and its children with ``includeChildNamespaces``)."""

    type = "io.kestra.plugin.git.PushFlows"
    title = "Push flows to Git."
    examples = (
        Example("Every evening, commit the flows of the dev namespace to the `develop` branch, as prod flows.",
                "id: push_to_git\n"
                "namespace: system\n"
                "\n"
                "tasks:\n"
                "  - id: commit_and_push\n"
                "    type: io.kestra.plugin.git.PushFlows\n"
                "    url: https://github.com/my-org/flows\n"
                "    username: git_username\n"
                "    password: \"{{ secret('GITHUB_ACCESS_TOKEN') }}\"\n"
                "    branch: develop\n"
                "    sourceNamespace: dev\n"
                "    targetNamespace: prod\n"
                "    includeChildNamespaces: true\n"
                "    gitDirectory: _flows\n"
                "    commitMessage: \"add flows {{ now() }}\"\n"
                "\n"
                "triggers:\n"
                "  - id: schedule_push\n"
                "    type: io.kestra.plugin.core.trigger.Schedule\n"
                "    cron: \"0 17 * * *\"\n", full=True),
    )
    outputs = {
        "commitId": Output("string", "The id of the commit pushed (absent when nothing was committed).",
                           required=False),
        "commitURL": Output("string", "A link to the commit on the hosting service (HTTP(S) URLs).",
                            required=False),
        "flows": Output("string", "kestra:// URI of an Ion file: one row per changed file."),
    }
    props = {
        **CONNECTION_PROPS,
        **API_PROPS,
        "branch": BRANCH_PROP,
        "dryRun": DRY_RUN_PROP,
        "gitDirectory": Prop(STRING, default="_flows", description="The folder of the branch to write the flows to."),
        "sourceNamespace": Prop(STRING, default="{{ flow.namespace }}", description="The namespace to push."),
        "targetNamespace": Prop(STRING, description="Rewrite the flows' namespace to this one in git."),
        "flows": Prop(ANY, description="A flow id glob or a list of them (all flows otherwise)."),
        "includeChildNamespaces": Prop(BOOLEAN, default=False, description="Also push the child namespaces."),
        "commitMessage": Prop(STRING, description="The commit message."),
        "authorName": Prop(STRING, description="The commit author's name (username otherwise)."),
        "authorEmail": Prop(STRING, description="The commit author's email."),
        "delete": Prop(BOOLEAN, default=True, description="Remove flow files of the folder that match no flow."),
    }

    async def run(self, ctx: RunContext) -> dict[str, Any]:
        url = ctx.prop("url")
        if not url:
            raise TaskFailed("url is required")
        branch = check_ref(ctx.prop("branch") or "main", "branch")
        rel = relative_dir(ctx.prop("gitDirectory") or "_flows", "gitDirectory")
        source_ns = ctx.prop("sourceNamespace") or ctx.namespace
        target_ns = ctx.prop("targetNamespace") or source_ns
        globs = _globs(ctx.prop("flows"))
        dry_run = bool(ctx.prop("dryRun"))
        scratch = await open_scratch("falconet-git-")
        try:
            git = await Git.open(ctx, scratch)
            clone = scratch / "repo"
            await _checkout_branch(ctx, git, url, clone, branch, bool(ctx.prop("cloneSubmodules")))
            folder = clone.joinpath(*rel.parts)
            children = bool(ctx.prop("includeChildNamespaces"))
            flows = [f for f in await ctx.list_flow_sources(source_ns, children=children)
                     if not globs or any(glob_match(g, f.id) for g in globs)]
            contents: dict[str, str] = {}
            for flow in flows:
                sub = flow.namespace[len(source_ns):].lstrip(".").split(".") if flow.namespace != source_ns else []
                path = PurePosixPath(*sub, f"{flow.id}.yml").as_posix()
                text = _REVISION_LINE.sub("", flow.source)
                text = re.sub(rf"(?m)^(\s*namespace:\s*){re.escape(source_ns)}", lambda m: m.group(1) + target_ns, text)
                contents[path] = text if text.endswith("\n") else text + "\n"
            delete = bool(ctx.prop("delete"))
            await trio.to_thread.run_sync(_write_flows, clone, folder, contents, delete, globs)
            await git.run(["add", "--all", "--", str(folder.relative_to(clone) if folder != clone else ".")],
                          cwd=clone, what="stage the flows")
            rows = await _staged_diff(git, clone)
            diff = scratch / "flows.ion"

            def write() -> None:
                with open(diff, "w", encoding="utf-8") as f:
                    write_ion_rows(f, rows)
            await trio.to_thread.run_sync(write)
            outputs: dict[str, Any] = {"flows": await ctx.put_file(diff, diff.name)}
            if dry_run:
                ctx.logger.info(f"Dry run: {len(rows)} file(s) would change on branch {branch}")
                return outputs
            if not rows:
                ctx.logger.info("No changes to commit. Skipping push.")
                return outputs
            author = ctx.prop("authorName") or ctx.prop("username") or "Falconet"
            email = ctx.prop("authorEmail") or ""
            message = ctx.prop("commitMessage") or f"Add flows from {source_ns} namespace"
            await git.run(["-c", f"user.name={author}", "-c", f"user.email={email}", "commit", "--quiet",
                           "--no-verify", "-m", message], cwd=clone, what="commit the flows")
            commit_id = (await git.run(["rev-parse", "HEAD"], cwd=clone, what="read the commit id"))[0].strip()
            await git.run(["push", "--quiet", "--", "origin", f"HEAD:refs/heads/{branch}"], cwd=clone,
                          what=f"push to branch {branch}")
            ctx.logger.info(f"Pushed commit {commit_id} ({len(rows)} file(s)) to branch {branch}")
            outputs["commitId"] = commit_id
            commit_url = _commit_url(url, commit_id)
            if commit_url is not None:
                outputs["commitURL"] = commit_url
            return outputs
        finally:
            await remove_scratch(scratch)


def _globs(value: Any) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    raise TaskFailed("flows must be a flow id glob or a list of them")


async def _checkout_branch(ctx: RunContext, git: Git, url: str, clone: Path, branch: str, submodules: bool) -> None:
    """Clone ``branch``; when the remote lacks it, clone the default branch and start ``branch`` from it."""
    if await git.remote_has_branch(url, branch):
        await git.clone(url, clone, branch=branch, depth=1, submodules=submodules)
        return
    ctx.logger.info(f"Branch {branch} does not exist on the remote: it will be created")
    await git.clone(url, clone, depth=1, submodules=submodules)
    await git.run(["checkout", "--quiet", "-b", branch], cwd=clone, what=f"create branch {branch}")


def _write_flows(clone: Path, folder: Path, contents: dict[str, str], delete: bool, globs: list[str]) -> None:
    """Write the flow files; with ``delete`` remove the folder's other flow files (only those whose id
    matches ``globs`` when given). Blocking."""
    real_clone = clone.resolve()

    def check_inside(path: Path) -> None:
        real = path.resolve()
        if real != real_clone and real_clone not in real.parents:
            raise TaskFailed(f"{path.relative_to(clone)} points outside the repository")
    check_inside(folder)
    if delete and folder.is_dir():
        for rel in repository_files(folder):
            stem = PurePosixPath(rel).name.rsplit(".", 1)[0]
            if rel.endswith(_FLOW_SUFFIXES) and rel not in contents and (not globs or any(glob_match(g, stem)
                                                                                          for g in globs)):
                (folder / rel).unlink()
    for rel, text in contents.items():
        path = folder / rel
        if path.is_symlink():
            path.unlink()
        path.parent.mkdir(parents=True, exist_ok=True)
        check_inside(path.parent)
        path.write_text(text, "utf-8")


async def _staged_diff(git: Git, clone: Path) -> list[dict[str, Any]]:
    """``{file, additions, deletions, changes}`` per staged file, sorted by path (Kestra's count: a
    replaced block of equal length counts as changes, else as additions or deletions)."""
    has_head = True
    try:
        await git.run(["rev-parse", "--verify", "--quiet", "HEAD"], cwd=clone, what="read HEAD", log_stdout=False)
    except TaskFailed:
        has_head = False
    raw = "".join(await git.run(["diff", "--cached", "--name-status", "--no-renames", "-z"], cwd=clone,
                                what="diff the staged flows", log_stdout=False))
    fields = [f for f in raw.split("\0") if f]
    rows = []
    for status, path in zip(fields[0::2], fields[1::2], strict=False):
        old = "" if status == "A" or not has_head else "\n".join(
            await git.run(["show", f"HEAD:{path}"], cwd=clone, what=f"read {path}", log_stdout=False))
        new = "" if status == "D" else await trio.to_thread.run_sync((clone / path).read_text, "utf-8")
        rows.append({"file": path, **_count(old.splitlines(), new.splitlines())})
    return sorted(rows, key=lambda r: r["file"])


def _count(old: list[str], new: list[str]) -> dict[str, int]:
    additions = deletions = changes = 0
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=old, b=new, autojunk=False).get_opcodes():
        if tag == "equal":
            continue
        mods = (j2 - j1) - (i2 - i1)
        if mods > 0:
            additions += mods
        elif mods < 0:
            deletions -= mods
        else:
            changes += j2 - j1
    return {"additions": additions, "deletions": deletions, "changes": changes}


def _commit_url(url: str, commit_id: str) -> str | None:
    """``<repository page>/commit/<id>`` for an HTTP(S) URL (credentials dropped), as Kestra links it."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    host = parts.hostname + (f":{parts.port}" if parts.port else "")
    base = f"{parts.scheme}://{host}{parts.path}".removesuffix("/").removesuffix(".git")
    return f"{base}/{'commits' if 'bitbucket.org' in host else 'commit'}/{commit_id}"
