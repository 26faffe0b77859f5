"""The git and Node.js blueprints (``tests/flows/blueprints/git-*.yaml``, ``node-*.yaml``) run end to end
through the engine against local resources: a bare repository (over ``file://`` or a local HTTP server
with Basic auth) and a local npm package folder — no network."""
from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

import pytest
import trio

from falconet.plugins.scripts import node
from falconet.runtime.storage.nsfiles import NamespaceFiles

from .e2e import engine_at, messages, task_runs
from .gitrepo import Remote, git, serve_http

BLUEPRINTS = Path(__file__).resolve().parents[1] / "flows" / "blueprints"
needs_git = pytest.mark.skipif(shutil.which("git") is None,
                               reason="git is not installed here: install the Debian package git")
needs_node = pytest.mark.skipif(shutil.which("node") is None or shutil.which("npm") is None,
                                reason="Node.js is not installed here (no 'node'/'npm' on PATH): "
                                       "install the Debian packages nodejs and npm to run these tests")


def blueprint(name: str) -> str:
    return (BLUEPRINTS / name).read_text(encoding="utf-8")


def flow_yaml(flow_id: str, namespace: str, message: str) -> str:
    return (f"id: {flow_id}\nnamespace: {namespace}\ntasks:\n"
            f"  - id: log\n    type: io.kestra.plugin.core.log.Log\n    message: {message}\n")


@pytest.fixture
def remote(tmp_path):
    return Remote(tmp_path / "remote")


def test_every_blueprint_of_this_family_is_listed_here():
    names = sorted(p.name for p in BLUEPRINTS.glob("*.yaml") if p.name.startswith(("git-", "node-")))
    assert names == sorted(["git-sync-flows-schedule.yaml", "git-sync-namespace-files-python.yaml",
                            "git-clone-shell.yaml", "git-push-flows.yaml", "git-clone-node-app.yaml",
                            "node-script-outputs.yaml", "node-commands-npm.yaml"])


@needs_git
async def test_git_sync_flows_on_a_schedule_over_authenticated_http(tmp_path, remote, monkeypatch):
    monkeypatch.setenv("SECRET_GITHUB_ACCESS_TOKEN", base64.b64encode(b"pat-123").decode())
    remote.commit({"flows/hello.yml": flow_yaml("hello", "whatever", "hello"),
                   "flows/analytics/daily.yml": flow_yaml("daily", "whatever", "daily")})
    with serve_http(remote, "git_username", "pat-123") as (url, seen):
        async with engine_at(tmp_path) as engine:
            flow = await engine.create_flow(blueprint("git-sync-flows-schedule.yaml"))
            assert [t.id for t in flow.triggers] == ["every_full_hour"]
            await engine.create_flow(flow_yaml("stale", "company.team", "removed from git"))

            ex = await engine.execute("system", "git-sync-flows", inputs={"repository": url, "dry_run": True})
            assert ex["state"]["current"] == "SUCCESS", await messages(engine, ex)
            assert await engine.get_flow("company.team", "hello") is None          # dry run: nothing applied

            ex = await engine.execute("system", "git-sync-flows", inputs={"repository": url})
            assert ex["state"]["current"] == "SUCCESS", await messages(engine, ex)
            assert sorted((f.namespace, f.id) for f in await engine.list_flows("company.team")) == [
                ("company.team", "hello"), ("company.team.analytics", "daily")]
            done = await engine.execute("company.team.analytics", "daily")
            assert done["state"]["current"] == "SUCCESS"
            assert any(m.startswith(f"Flows synced from {url}") for _, m in await messages(engine, ex, "report"))
    assert seen.count("Basic " + base64.b64encode(b"git_username:pat-123").decode()) >= 2


@needs_git
async def test_git_sync_namespace_files_then_python(tmp_path, remote):
    remote.commit({
        "scripts/etl.py": "import csv, json, sys\n"
                          "rows = list(csv.DictReader(open(sys.argv[1])))\n"
                          "total = sum(float(r['amount']) for r in rows)\n"
                          "print('::' + json.dumps({'outputs': {'rows': len(rows), 'total': total}}) + '::')\n",
        "scripts/data/sales.csv": "day,amount\nmon,10.5\ntue,4\nwed,5.5\n",
        "README.md": "not synced\n"})
    async with engine_at(tmp_path) as engine:
        await engine.create_flow(blueprint("git-sync-namespace-files-python.yaml"))
        ex = await engine.execute("company.team", "git-sync-scripts-then-run", inputs={"repository": remote.url})
        assert ex["state"]["current"] == "SUCCESS", await messages(engine, ex)
        assert await messages(engine, ex, "log") == [("INFO", "3 rows, total 20.0")]
        assert NamespaceFiles(engine.storage).all_files("company.team") == ["/data/sales.csv", "/etl.py"]


@needs_git
async def test_git_clone_then_shell(tmp_path, remote):
    remote.commit({"data/a.csv": "x\n1\n2\n", "data/b.csv": "y\n3\n", "README.md": "demo\n"},
                  message="add two datasets")
    async with engine_at(tmp_path) as engine:
        await engine.create_flow(blueprint("git-clone-shell.yaml"))
        ex = await engine.execute("company.team", "git-clone-and-check", inputs={"repository": remote.url})
        assert ex["state"]["current"] == "SUCCESS", await messages(engine, ex)
        assert await messages(engine, ex, "log") == [("INFO", "2 CSV files at 'add two datasets'")]
        summary = task_runs(ex)["inspect"]["outputs"]["outputFiles"]["summary.txt"]
        lines = [line.split() for line in engine.storage.read_text(summary).splitlines()]
        assert lines == [["3", "./data/a.csv"], ["2", "./data/b.csv"], ["5", "total"]]


@needs_git
async def test_git_push_flows(tmp_path, remote, monkeypatch):
    monkeypatch.setenv("SECRET_GITHUB_ACCESS_TOKEN", base64.b64encode(b"unused-for-file-urls").decode())
    remote.commit({"README.md": "flows\n"})
    async with engine_at(tmp_path) as engine:
        await engine.create_flow(flow_yaml("ingest", "dev", "ingest"))
        await engine.create_flow(flow_yaml("score", "dev.ml", "score"))
        await engine.create_flow(blueprint("git-push-flows.yaml"))
        ex = await engine.execute("system", "git-push-flows", inputs={"repository": remote.url})
        assert ex["state"]["current"] == "SUCCESS", await messages(engine, ex)
        commit = task_runs(ex)["commit_and_push"]["outputs"]["commitId"]
        assert await messages(engine, ex, "log") == [("INFO", f"Pushed {commit}")]
        assert remote.files("develop") == ["README.md", "_flows/ingest.yml", "_flows/ml/score.yml"]
        assert "namespace: prod.ml\n" in remote.show("develop:_flows/ml/score.yml")
        assert f"Flows of {ex['state']['startDate'][:10]}" in git(remote.bare, "log", "-1", "--format=%s", "develop")


@needs_node
async def test_node_script_outputs(tmp_path):
    async with engine_at(tmp_path) as engine:
        await engine.create_flow(blueprint("node-script-outputs.yaml"))
        ex = await engine.execute("company.team", "node-order-stats")
        assert ex["state"]["current"] == "SUCCESS", await messages(engine, ex)
        assert await messages(engine, ex, "log") == [("INFO", "3 orders, total 229.75, biggest #1")]
        report = task_runs(ex)["stats"]["outputs"]["outputFiles"]["report.json"]
        assert json.loads(engine.storage.read_text(report)) == {"total": 229.75,
                                                                  "biggest": {"id": 1, "amount": 120.5}}
        await engine.store.flush()
        metrics = await engine.store.get_metrics(ex["id"], task_id="stats")
        assert [(m["name"], m["value"]) for m in metrics] == [("orders", 3)]


@needs_node
async def test_node_commands_with_an_npm_dependency(tmp_path, monkeypatch):
    monkeypatch.setattr(node, "DEPS_CACHE", tmp_path / "node-deps")
    package = tmp_path / "slugify"
    package.mkdir()
    (package / "package.json").write_text(json.dumps({"name": "slugify", "version": "1.6.6", "main": "index.js"}))
    (package / "index.js").write_text(
        "module.exports = (s, o) => { const r = s.replace(/&/g, 'and').replace(/[^A-Za-z0-9]+/g, '-');"
        " return o && o.lower ? r.toLowerCase() : r; };\n")
    async with engine_at(tmp_path) as engine:
        await engine.create_flow(blueprint("node-commands-npm.yaml"))
        for _ in range(2):
            with trio.fail_after(120):
                ex = await engine.execute("company.team", "node-npm-report", inputs={"slugify_package": str(package)})
            assert ex["state"]["current"] == "SUCCESS", await messages(engine, ex)
            assert await messages(engine, ex, "log") == [("INFO", "hello-world, kestra-and-falconet")]
        installs = [m for _, m in await messages(engine, ex, "slugs") if m.startswith("Installing dependencies")]
        assert installs == []                                   # the second run reused the cached install


@needs_git
@needs_node
async def test_git_clone_node_app(tmp_path, remote):
    remote.commit({"src/report.js": "const fs = require('fs');\n"
                                    "fs.mkdirSync('out', { recursive: true });\n"
                                    "const rows = ['id,value', '1,a', '2,b'];\n"
                                    "fs.writeFileSync('out/report.csv', rows.join('\\n') + '\\n');\n"
                                    "console.log(`::${JSON.stringify({ outputs: { lines: rows.length } })}::`);\n"})
    async with engine_at(tmp_path) as engine:
        await engine.create_flow(blueprint("git-clone-node-app.yaml"))
        ex = await engine.execute("company.team", "git-clone-node-app", inputs={"repository": remote.url})
        assert ex["state"]["current"] == "SUCCESS", await messages(engine, ex)
        uri = task_runs(ex)["report"]["outputs"]["outputFiles"]["out/report.csv"]
        assert await messages(engine, ex, "log") == [("INFO", f"3 lines written to {uri}")]
        assert engine.storage.read_text(uri) == "id,value\n1,a\n2,b\n"
