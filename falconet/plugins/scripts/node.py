"""``io.kestra.plugin.scripts.node.*``: Node.js commands and scripts with the Process task runner.

``node`` is the server's (found on PATH; a task fails with a clear message where it is missing).
``dependencies`` (npm package specs: ``lodash@4``, ``dayjs``, a local folder or tarball path) are installed by
the server's ``npm`` into a ``node_modules`` folder made visible to the task three ways: ``NODE_PATH``
(``require`` from anywhere), a ``node_modules`` link in the working directory (ES modules resolve from the
script's folder) and ``node_modules/.bin`` first on PATH. With ``dependencyCacheEnabled`` (default true) the
folder is cached per (dependency list, Node version) under ``<tmp>/falconet-node-deps/``, like Python's
environments (see :mod:`.deps`); otherwise it lives in the attempt's temporary directory.
"""
from __future__ import annotations

import json
import os
import shlex
import shutil
import tempfile
from pathlib import Path
from typing import Any, Mapping

import trio

from falconet.plugins.scripts.base import (
    COMMANDS_PROP, COMMON_PROPS, SCRIPT_OUTPUTS, CommandsTask, ScriptTask, render_list, write_script_prop,
)
from falconet.plugins.scripts.deps import cache_key, cached_environment, run_logged
from falconet.sdk import BOOLEAN, LIST, STRING, Example, Prop, RunContext, TaskFailed, register

NODE_PROPS: dict[str, Prop] = {
    **COMMON_PROPS,
    "containerImage": Prop(STRING, default="node", description="Container image (ignored by the Process runner)."),
    "dependencies": Prop(LIST, description="npm packages to install (npm install) before the commands run."),
    "dependencyCacheEnabled": Prop(BOOLEAN, default=True, description="Reuse node_modules folders with the same "
                                                                      "dependencies."),
}

#: where cached node_modules folders live (one folder per dependency-list hash)
DEPS_CACHE = Path(tempfile.gettempdir()) / "falconet-node-deps"


def find_node(env: Mapping[str, str]) -> str:
    """The ``node`` program on the task's PATH; TaskFailed naming what is missing otherwise."""
    node = shutil.which("node", path=env.get("PATH")) or shutil.which("nodejs", path=env.get("PATH"))
    if node is None:
        raise TaskFailed("Node.js is not installed on this server: no 'node' program on PATH "
                         "(install Node.js, e.g. the Debian packages nodejs and npm)")
    return node


async def _node_version(node: str) -> str:
    """``node --version`` (part of the cache key: native modules are built for one Node version)."""
    try:
        done = await trio.run_process([node, "--version"], capture_stdout=True, capture_stderr=True, check=False)
    except OSError as exc:
        raise TaskFailed(f"Unable to run {node}: {exc}") from exc
    if done.returncode != 0:
        raise TaskFailed(f"Unable to run {node} --version: exit code {done.returncode}")
    return done.stdout.decode("utf-8", "replace").strip()


async def _npm_install(ctx: RunContext, target: Path, deps: list[str], env: Mapping[str, str]) -> None:
    """``npm install deps`` into ``target`` (its own package.json, so npm never climbs to a parent)."""
    npm = shutil.which("npm", path=env.get("PATH"))
    if npm is None:
        raise TaskFailed("npm is not installed on this server: cannot install dependencies "
                         f"{', '.join(deps)}")
    def package_json() -> None:
        target.mkdir(parents=True, exist_ok=True)
        (target / "package.json").write_text(json.dumps({"private": True}), "utf-8")
    await trio.to_thread.run_sync(package_json)
    await run_logged(ctx, [npm, "install", "--no-audit", "--no-fund", "--no-update-notifier", "--prefix",
                           str(target), "--", *deps],
                     f"install dependencies {', '.join(deps)}", cwd=target, env=env)


def _link_modules(link: Path, modules: Path) -> None:
    """Link ``modules`` as the working directory's ``node_modules`` unless it already has one. Blocking."""
    if not link.exists() and not link.is_symlink():
        link.symlink_to(modules, target_is_directory=True)


class _NodeTask(ScriptTask):

    async def prepare_env(self, ctx: RunContext, root: Path, working_dir: Path, extra: Mapping[str, Any],
                          env: dict[str, str]) -> None:
        node = find_node(env)
        deps = render_list(ctx, ctx.raw("dependencies"), extra, "dependencies")
        if not deps:
            return
        if not ctx.prop("dependencyCacheEnabled"):
            ctx.logger.info(f"Installing dependencies: {', '.join(deps)}")
            folder = root / "npm"
            await _npm_install(ctx, folder, deps, env)
        else:
            key = cache_key(await _node_version(node), *sorted(deps))
            folder = await cached_environment(ctx, DEPS_CACHE, key, lambda t: _npm_install(ctx, t, deps, env),
                                              lambda t: (t / "node_modules").is_dir(), ", ".join(deps))
        modules = folder / "node_modules"
        env["NODE_PATH"] = os.pathsep.join(p for p in (str(modules), env.get("NODE_PATH", "")) if p)
        env["PATH"] = str(modules / ".bin") + os.pathsep + env.get("PATH", "")
        await trio.to_thread.run_sync(_link_modules, working_dir / "node_modules", modules)


@register
class Commands(CommandsTask, _NodeTask):
    """Run ``commands`` (shell lines, e.g. ``node main.js``) with the server's Node.js."""

    type = "io.kestra.plugin.scripts.node.Commands"
    title = "Execute Node.js commands."
    examples = (
        Example("Run a Node.js file of the working directory that sets an output.",
                "taskRunner:\n"
                "  type: io.kestra.plugin.core.runner.Process\n"
                "inputFiles:\n"
                "  main.js: |\n"
                "    console.log('::' + JSON.stringify({outputs: {answer: 42}}) + '::');\n"
                "commands:\n"
                "  - node main.js\n"),
    )
    outputs = SCRIPT_OUTPUTS
    props = {**NODE_PROPS, "commands": COMMANDS_PROP}


@register
class Script(_NodeTask):
    """Write the rendered ``script`` to a ``.js`` file of the working directory and run it with ``node``."""

    type = "io.kestra.plugin.scripts.node.Script"
    title = "Execute a Node.js script."
    examples = (
        Example("Run an inline Node.js script with an npm dependency.",
                "taskRunner:\n"
                "  type: io.kestra.plugin.core.runner.Process\n"
                "dependencies:\n"
                "  - lodash\n"
                "script: |\n"
                "  const _ = require('lodash');\n"
                "  console.log('::' + JSON.stringify({outputs: {total: _.sum([1, 2, 3])}}) + '::');\n"),
    )
    outputs = SCRIPT_OUTPUTS
    props = {**NODE_PROPS, "script": Prop(STRING, required=True, description="The Node.js script (rendered).")}

    async def commands(self, ctx: RunContext, working_dir: Path, extra: Mapping[str, Any],
                       python: str | None) -> list[str]:
        path = await write_script_prop(ctx, working_dir, extra, ".js")
        return [f"node {shlex.quote(str(path))}"]
