"""``io.kestra.plugin.git.Clone``: clone a repository into the task's working directory."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import trio

from falconet.plugins.git.repo import CONNECTION_PROPS, Git, check_ref, open_scratch, remove_scratch
from falconet.sdk import (
    INTEGER, STRING, Example, Output, Prop, RunContext, RunnableTask, TaskFailed, register, safe_join,
)


@register
class Clone(RunnableTask):
    """Clone ``url`` into the working directory (or its ``directory`` sub-folder), shallow by default, then
    check out ``commit`` or ``tag`` when given. Inside a ``WorkingDirectory`` the next tasks see the files."""

    type = "io.kestra.plugin.git.Clone"
    title = "Clone a Git repository."
    examples = (
        Example("Clone a repository and list its files in the same working directory.",
                "id: git_clone\n"
                "namespace: company.team\n"
                "\n"
                "tasks:\n"
                "  - id: wdir\n"
                "    type: io.kestra.plugin.core.flow.WorkingDirectory\n"
                "    tasks:\n"
                "      - id: clone\n"
                "        type: io.kestra.plugin.git.Clone\n"
                "        url: https://github.com/kestra-io/examples\n"
                "        branch: main\n"
                "      - id: list\n"
                "        type: io.kestra.plugin.scripts.shell.Commands\n"
                "        commands:\n"
                "          - ls -R\n", full=True),
    )
    outputs = {"directory": Output("string", "The absolute path of the clone on the server.")}
    props = {
        **CONNECTION_PROPS,
        "directory": Prop(STRING, description="The folder of the working directory to clone into."),
        "branch": Prop(STRING, description="The branch to check out (the remote's default branch otherwise)."),
        "depth": Prop(INTEGER, default=1, description="Shallow clone depth (ignored with commit or tag)."),
        "commit": Prop(STRING, description="A commit SHA to check out (detached HEAD)."),
        "tag": Prop(STRING, description="A tag to check out (detached HEAD)."),
    }

    async def run(self, ctx: RunContext) -> dict[str, Any]:
        url = ctx.prop("url")
        if not url or url.startswith("-"):
            raise TaskFailed(f"Invalid url {str(url)[:200]!r}")
        working_dir = Path(await ctx.open_temp_dir())
        directory = ctx.prop("directory")
        target = safe_join(working_dir, directory) if directory else working_dir
        commit, tag, branch = ctx.prop("commit"), ctx.prop("tag"), ctx.prop("branch")
        depth = ctx.prop("depth")
        if depth is not None and depth < 1:
            raise TaskFailed("depth must be at least 1")
        depth = None if commit or tag else depth
        filled = await trio.to_thread.run_sync(lambda: target.is_dir() and any(target.iterdir()))
        scratch = await open_scratch("falconet-git-")
        try:
            git = await Git.open(ctx, scratch)
            if filled:
                # files already there (inputFiles, earlier tasks): fetch into them, as Kestra's init+fetch
                await _fetch_into(git, url, target, branch=branch, commit=commit, tag=tag, depth=depth)
                return {"directory": str(target)}
            await git.clone(url, target, branch=branch, depth=depth, submodules=bool(ctx.prop("cloneSubmodules")))
            if commit:
                await git.run(["checkout", "--quiet", "--detach", check_ref(commit, "commit"), "--"], cwd=target,
                              what=f"check out commit {commit}")
            elif tag:
                await git.run(["checkout", "--quiet", "--detach", f"refs/tags/{check_ref(tag, 'tag')}", "--"],
                              cwd=target, what=f"check out tag {tag}")
        finally:
            await remove_scratch(scratch)
        return {"directory": str(target)}


async def _fetch_into(git: Git, url: str, target: Path, *, branch: str | None, commit: str | None,
                      tag: str | None, depth: int | None) -> None:
    """``git init`` in a folder that already holds files, fetch one ref from ``url`` and check it out over
    them (files of the folder that the commit also has are replaced)."""
    if commit:
        ref = check_ref(commit, "commit")
    elif tag:
        ref = f"refs/tags/{check_ref(tag, 'tag')}"
    elif branch:
        ref = f"refs/heads/{check_ref(branch, 'branch')}"
    else:
        ref = "HEAD"
    git.ctx.logger.info(f"Fetching {git.mask(url)} ({ref}) into a folder that is not empty")
    await git.run(["init", "--quiet"], cwd=target, what="initialise the repository")
    await git.run(["config", "remote.origin.url", url], cwd=target, what="set the remote")
    await git.run(["config", "remote.origin.fetch", "+refs/heads/*:refs/remotes/origin/*"], cwd=target,
                  what="set the remote")
    await git.run(["fetch", "--quiet", *([f"--depth={depth}"] if depth else []), "origin", "--", ref],
                  cwd=target, what=f"fetch {git.mask(url)}")
    checkout = ["-B", branch] if branch and not (commit or tag) else ["--detach"]
    await git.run(["checkout", "--quiet", "--force", *checkout, "FETCH_HEAD"], cwd=target,
                  what=f"check out {ref}")
