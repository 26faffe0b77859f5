"""``io.kestra.plugin.scripts.node.*``: Node.js commands and scripts with the Process task runner, npm
dependencies installed once and cached (from a local package folder: no network)."""
from __future__ import annotations

import json
import shutil

import pytest
import trio

from falconet.plugins.scripts import node
from falconet.sdk import TaskFailed

from .e2e import engine_at, messages, task_runs

needs_node = pytest.mark.skipif(shutil.which("node") is None or shutil.which("npm") is None,
                                reason="Node.js is not installed here (no 'node'/'npm' on PATH): "
                                       "install the Debian packages nodejs and npm to run these tests")


@pytest.fixture
def greet_package(tmp_path):
    """A local npm package (a folder) exporting ``greet(name)``."""
    pkg = tmp_path / "falconet-greet"
    pkg.mkdir()
    (pkg / "package.json").write_text(json.dumps({"name": "falconet-greet", "version": "1.0.0", "main": "index.js"}))
    (pkg / "index.js").write_text("module.exports = (name) => 'hello ' + name;\n")
    return pkg


@needs_node
async def test_node_commands_outputs_and_files_in_a_flow(tmp_path):
    async with engine_at(tmp_path) as engine:
        await engine.create_flow("""
id: node_commands
namespace: company.team
tasks:
  - id: produce
    type: io.kestra.plugin.scripts.node.Commands
    taskRunner:
      type: io.kestra.plugin.core.runner.Process
    inputFiles:
      main.js: |
        const fs = require('fs');
        const rows = [1, 2, 3].map(n => ({n, square: n * n}));
        fs.writeFileSync('squares.json', JSON.stringify(rows));
        console.log('rows: ' + rows.length);
        console.log('::' + JSON.stringify({outputs: {count: rows.length, last: rows[2]}}) + '::');
    outputFiles:
      - squares.json
    commands:
      - node main.js
  - id: read
    type: io.kestra.plugin.core.debug.Return
    format: "{{ outputs.produce.vars.count }} {{ read(outputs.produce.outputFiles['squares.json']) }}"
""")
        ex = await engine.execute("company.team", "node_commands")
        assert ex["state"]["current"] == "SUCCESS", await messages(engine, ex)
        runs = task_runs(ex)
        assert runs["produce"]["outputs"]["vars"] == {"count": 3, "last": {"n": 3, "square": 9}}
        assert runs["read"]["outputs"]["value"] == '3 [{"n":1,"square":1},{"n":2,"square":4},{"n":3,"square":9}]'
        assert ("INFO", "rows: 3") in await messages(engine, ex, "produce")


@needs_node
async def test_node_script_dependencies_installed_once_and_cached(run_task, tmp_path, monkeypatch, greet_package):
    monkeypatch.setattr(node, "DEPS_CACHE", tmp_path / "node-deps")
    props = {"dependencies": [str(greet_package)], "warningOnStdErr": False,
             "script": "const greet = require('falconet-greet');\n"
                       "console.log('::' + JSON.stringify({outputs: {msg: greet('{{ flow.id }}')}}) + '::');\n"}
    with trio.fail_after(120):
        out, ctx = await run_task(node.Script, props)
    assert out["vars"] == {"msg": "hello flow"}
    assert any(m.startswith("Installing dependencies") for _, m in ctx.logger.lines)
    assert len(list((tmp_path / "node-deps").iterdir())) == 1
    # again, as an ES module run by Commands: resolved through the working directory's node_modules link
    with trio.fail_after(60):
        out, ctx = await run_task(node.Commands, {
            **props, "script": None,
            "inputFiles": {"main.mjs": "import greet from 'falconet-greet';\nconsole.log(greet('esm'));\n"},
            "commands": ["node main.mjs"]})
    assert ctx.logger.lines == [("INFO", "hello esm")]          # reused: nothing installed this time


@needs_node
async def test_node_dependencies_without_cache_live_in_the_attempt(run_task, tmp_path, monkeypatch, greet_package):
    monkeypatch.setattr(node, "DEPS_CACHE", tmp_path / "node-deps")
    with trio.fail_after(120):
        out, ctx = await run_task(node.Script, {
            "dependencies": [str(greet_package)], "dependencyCacheEnabled": False, "warningOnStdErr": False,
            "script": "console.log(require('falconet-greet')('x'))"})
    assert ("INFO", "hello x") in ctx.logger.lines
    assert not (tmp_path / "node-deps").exists()


@needs_node
async def test_node_dependency_install_failure(run_task, tmp_path, monkeypatch):
    monkeypatch.setattr(node, "DEPS_CACHE", tmp_path / "node-deps")
    with trio.fail_after(120), pytest.raises(TaskFailed, match="Unable to install dependencies"):
        await run_task(node.Script, {"script": "console.log(1)",
                                     "dependencies": [str(tmp_path / "no-such-package")]})
    assert [p.name for p in (tmp_path / "node-deps").iterdir()] == []     # the failed build left nothing


@needs_node
async def test_node_script_failure_keeps_exit_code(run_task):
    with pytest.raises(TaskFailed, match="exit code 3") as info:
        await run_task(node.Script, {"script": "console.error('boom'); process.exit(3)"})
    assert info.value.outputs["exitCode"] == 3


async def test_missing_node_fails_with_a_clear_reason(run_task, tmp_path, monkeypatch):
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    with pytest.raises(TaskFailed, match="Node.js is not installed on this server"):
        await run_task(node.Script, {"script": "console.log(1)"})
