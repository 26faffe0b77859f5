"""``io.kestra.plugin.git.*`` against a local bare repository (and one served over HTTP with Basic auth):
Clone, SyncFlows, SyncNamespaceFiles, PushFlows through the engine."""
from __future__ import annotations

import base64
import io
import shutil
import socket
import textwrap
import uuid

import pytest
import trio

from falconet.sdk import read_ion_rows
from falconet.runtime.storage.nsfiles import NamespaceFiles

from .e2e import engine_at, live_processes, messages, task_runs
from .gitrepo import Remote, serve_http

pytestmark = pytest.mark.skipif(shutil.which("git") is None,
                                reason="git is not installed here: install the Debian package git")

FLOW_A = """id: hello
namespace: anything.here
tasks:
  - id: log
    type: io.kestra.plugin.core.log.Log
    message: hello from git
"""
FLOW_B = """id: nested
namespace: anything.here
tasks:
  - id: log
    type: io.kestra.plugin.core.log.Log
    message: nested
"""


@pytest.fixture
def remote(tmp_path):
    return Remote(tmp_path / "remote")


async def run_git(engine, flow_id: str, task_type: str, url: str, props: str,
                  namespace: str = "company.ops") -> dict:
    """Save the flow ``namespace.flow_id`` whose one task ``git`` is ``io.kestra.plugin.git.<task_type>``
    on ``url`` with the YAML ``props`` (written from column 0), and execute it to its end."""
    await engine.put_flow(f"id: {flow_id}\nnamespace: {namespace}\ntasks:\n  - id: git\n"
                          f"    type: io.kestra.plugin.git.{task_type}\n    url: {url}\n"
                          + textwrap.indent(props.strip("\n") + "\n", "    "))
    return await engine.execute(namespace, flow_id)


async def diff_rows(engine, uri):
    """The rows of a diff file the task stored."""
    with engine.storage.open_read(uri) as f:
        return list(read_ion_rows(io.TextIOWrapper(f, "utf-8")))


#### Clone ##################################################################################################

async def test_clone_into_a_working_directory_then_shell(tmp_path, remote):
    remote.commit({"README.md": "hello\n", "data/rows.csv": "a,b\n1,2\n"})
    remote.commit({"feature.txt": "only on feature\n"}, branch="feature")
    async with engine_at(tmp_path) as engine:
        await engine.create_flow(f"""
id: clone
namespace: company.team
tasks:
  - id: wdir
    type: io.kestra.plugin.core.flow.WorkingDirectory
    tasks:
      - id: clone
        type: io.kestra.plugin.git.Clone
        url: {remote.url}
        branch: feature
        directory: repo
      - id: ls
        type: io.kestra.plugin.scripts.shell.Commands
        commands:
          - cat repo/feature.txt repo/data/rows.csv
          - test "$(git -C repo rev-list --count HEAD)" = 1
""")
        ex = await engine.execute("company.team", "clone")
        assert ex["state"]["current"] == "SUCCESS", await messages(engine, ex)
        assert task_runs(ex)["clone"]["outputs"]["directory"].endswith("/repo")
        assert [m for _, m in await messages(engine, ex, "ls")] == ["only on feature", "a,b", "1,2"]


async def test_clone_into_a_folder_that_already_has_files(tmp_path, remote):
    remote.commit({"config.yml": "from: git\n", "run.sh": "echo ran\n"})
    remote.commit({"config.yml": "from: feature\n"}, branch="feature")
    async with engine_at(tmp_path) as engine:
        await engine.create_flow(f"""
id: filled
namespace: company.team
tasks:
  - id: wdir
    type: io.kestra.plugin.core.flow.WorkingDirectory
    inputFiles:
      local.txt: |
        mine
      config.yml: "from: local"
    tasks:
      - id: clone
        type: io.kestra.plugin.git.Clone
        url: {remote.url}
        branch: feature
      - id: check
        type: io.kestra.plugin.scripts.shell.Commands
        commands:
          - cat local.txt config.yml
          - sh run.sh
          - git rev-parse --abbrev-ref HEAD
""")
        ex = await engine.execute("company.team", "filled")
        assert ex["state"]["current"] == "SUCCESS", await messages(engine, ex)
        assert [m for _, m in await messages(engine, ex, "check")] == ["mine", "from: feature", "ran", "feature"]


async def test_clone_commit_and_errors(tmp_path, remote):
    first = remote.commit({"v.txt": "1\n"})
    remote.commit({"v.txt": "2\n"})
    async with engine_at(tmp_path) as engine:
        await engine.create_flow(f"""
id: pinned
namespace: company.team
tasks:
  - id: wdir
    type: io.kestra.plugin.core.flow.WorkingDirectory
    tasks:
      - id: clone
        type: io.kestra.plugin.git.Clone
        url: {remote.url}
        commit: {first}
      - id: cat
        type: io.kestra.plugin.scripts.shell.Commands
        commands:
          - cat v.txt
""")
        ex = await engine.execute("company.team", "pinned")
        assert ex["state"]["current"] == "SUCCESS", await messages(engine, ex)
        assert await messages(engine, ex, "cat") == [("INFO", "1")]

        await engine.create_flow(f"""
id: bad
namespace: company.team
tasks:
  - id: missing
    type: io.kestra.plugin.git.Clone
    url: {remote.url}-missing
  - id: never
    type: io.kestra.plugin.core.log.Log
    message: never
""")
        ex = await engine.execute("company.team", "bad")
        assert ex["state"]["current"] == "FAILED"
        errors = [m for lv, m in await messages(engine, ex, "missing") if lv == "ERROR"]
        assert any("Unable to clone" in m and "the repository exists" in m for m in errors), errors

        # an option smuggled in as the URL is a (missing) path after "--", never an option
        marker = tmp_path / "pwned"
        await engine.create_flow(f"""
id: inject
namespace: company.team
tasks:
  - id: clone
    type: io.kestra.plugin.git.Clone
    url: "--upload-pack=touch {marker}"
  - id: escape
    type: io.kestra.plugin.git.Clone
    url: {remote.url}
    directory: ../../outside
""")
        ex = await engine.execute("company.team", "inject")
        assert ex["state"]["current"] == "FAILED" and not marker.exists()


async def test_clone_over_http_with_username_and_password(tmp_path, remote):
    remote.commit({"secret.txt": "classified\n"})
    with serve_http(remote, "robot", "s3cr3t-token") as (url, seen):
        async with engine_at(tmp_path) as engine:
            await engine.create_flow(f"""
id: private
namespace: company.team
tasks:
  - id: wdir
    type: io.kestra.plugin.core.flow.WorkingDirectory
    tasks:
      - id: clone
        type: io.kestra.plugin.git.Clone
        url: {url}
        username: robot
        password: s3cr3t-token
      - id: cat
        type: io.kestra.plugin.scripts.shell.Commands
        commands:
          - cat secret.txt
          - "! grep -r s3cr3t-token .git"
  - id: wrong
    type: io.kestra.plugin.git.Clone
    url: {url}
    username: robot
    password: wrong-password
""")
            ex = await engine.execute("company.team", "private")
            logs = await messages(engine, ex)
            assert "cat" in task_runs(ex), logs
            assert task_runs(ex)["cat"]["state"]["current"] == "SUCCESS", logs
            assert await messages(engine, ex, "cat") == [("INFO", "classified")]
            assert task_runs(ex)["wrong"]["state"]["current"] == "FAILED"
    assert "Basic " + base64.b64encode(b"robot:s3cr3t-token").decode() in seen
    logged = " ".join(m for _, m in logs)
    assert "s3cr3t-token" not in logged and "wrong-password" not in logged


#### SyncFlows ##############################################################################################

SYNC = """
id: sync
namespace: company.team
tasks:
  - id: git
    type: io.kestra.plugin.git.SyncFlows
    url: {url}
    branch: main
    gitDirectory: flows
    targetNamespace: company.team
    includeChildNamespaces: true
    delete: {delete}
    dryRun: {dry}
"""


async def test_sync_flows_add_update_delete_and_dry_run(tmp_path, remote):
    remote.commit({"flows/hello.yml": FLOW_A, "flows/sub/nested.yaml": FLOW_B, "flows/README.md": "docs\n"})
    async with engine_at(tmp_path) as engine:
        await engine.create_flow("id: local_only\nnamespace: company.team.sub\ntasks:\n"
                                 "  - id: l\n    type: io.kestra.plugin.core.log.Log\n    message: x\n")
        await engine.create_flow(SYNC.format(url=remote.url, delete="false", dry="false"))
        ex = await engine.execute("company.team", "sync")
        assert ex["state"]["current"] == "SUCCESS", await messages(engine, ex)
        rows = await diff_rows(engine, task_runs(ex)["git"]["outputs"]["flows"])
        assert rows == [
            {"gitPath": "flows/hello.yml", "syncState": "ADDED", "flowId": "hello", "namespace": "company.team",
             "revision": 1},
            {"gitPath": "flows/sub/nested.yaml", "syncState": "ADDED", "flowId": "nested",
             "namespace": "company.team.sub", "revision": 1}]
        hello = await engine.get_flow("company.team", "hello")
        assert "namespace: company.team\n" in hello.source
        assert (await engine.execute("company.team.sub", "nested"))["state"]["current"] == "SUCCESS"

        # git changes one flow and drops the other; a dry run with delete reports without touching anything
        remote.commit({"flows/hello.yml": FLOW_A.replace("hello from git", "changed"),
                       "flows/sub/nested.yaml": None})
        await engine.update_flow("company.team", "sync", SYNC.format(url=remote.url, delete="true", dry="true"))
        ex = await engine.execute("company.team", "sync")
        rows = await diff_rows(engine, task_runs(ex)["git"]["outputs"]["flows"])
        assert [(r["gitPath"], r["syncState"], r["flowId"], r["revision"]) for r in rows] == [
            (None, "DELETED", "local_only", 1), (None, "DELETED", "nested", 1),
            ("flows/hello.yml", "UPDATED", "hello", 2)]
        assert (await engine.get_flow("company.team", "hello")).revision == 1
        assert await engine.get_flow("company.team.sub", "nested") is not None

        await engine.update_flow("company.team", "sync", SYNC.format(url=remote.url, delete="true", dry="false"))
        ex = await engine.execute("company.team", "sync")
        rows = await diff_rows(engine, task_runs(ex)["git"]["outputs"]["flows"])
        assert [(r["gitPath"], r["syncState"]) for r in rows] == [
            (None, "DELETED"), (None, "DELETED"), ("flows/hello.yml", "UPDATED")]
        assert "changed" in (await engine.get_flow("company.team", "hello")).source
        assert await engine.get_flow("company.team.sub", "nested") is None
        assert await engine.get_flow("company.team", "sync") is not None     # never deletes itself

        ex = await engine.execute("company.team", "sync")                        # nothing changed since
        rows = await diff_rows(engine, task_runs(ex)["git"]["outputs"]["flows"])
        assert [(r["syncState"], r["revision"]) for r in rows] == [("UNCHANGED", 2)]


async def test_sync_flows_invalid_flow_fails_or_is_skipped(tmp_path, remote):
    remote.commit({"_flows/good.yml": FLOW_A,
                   "_flows/broken.yml": "id: broken\nnamespace: x\ntasks:\n  - id: t\n    type: no.such.Type\n"})
    async with engine_at(tmp_path) as engine:
        ex = await run_git(engine, "sync_false", "SyncFlows", remote.url,
                           "targetNamespace: prod\nignoreInvalidFlows: false\n")
        assert ex["state"]["current"] == "FAILED"
        assert any("Invalid flow imported from Git (broken.yml)" in m for _, m in await messages(engine, ex))
        ex = await run_git(engine, "sync_true", "SyncFlows", remote.url,
                           "targetNamespace: prod\nignoreInvalidFlows: true\n")
        assert ex["state"]["current"] == "SUCCESS", await messages(engine, ex)
        assert any(lv == "WARN" and "broken.yml" in m for lv, m in await messages(engine, ex))
        assert [f.id for f in await engine.list_flows("prod")] == ["hello"]


async def test_sync_rejects_paths_leaving_the_repository(tmp_path, remote):
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "evil.yml").write_text(FLOW_A)
    (remote.work / "flows").symlink_to(tmp_path / "outside")
    remote.commit({"keep.txt": "x\n"})
    async with engine_at(tmp_path) as engine:
        for i, directory in enumerate(("../outside", "flows")):
            ex = await run_git(engine, f"sync{i}", "SyncFlows", remote.url,
                               f'gitDirectory: "{directory}"\ntargetNamespace: prod\n')
            assert ex["state"]["current"] == "FAILED"
        assert await engine.list_flows("prod") == []


#### SyncNamespaceFiles #####################################################################################

async def test_sync_namespace_files(tmp_path, remote):
    remote.commit({"scripts/etl.py": "print('v1')\n", "scripts/sql/q.sql": "select 1\n", "scripts/.gitkeep": ""})
    async with engine_at(tmp_path) as engine:
        flow = f"""
id: files
namespace: company.team
tasks:
  - id: git
    type: io.kestra.plugin.git.SyncNamespaceFiles
    url: {remote.url}
    gitDirectory: scripts
    delete: {{delete}}
    dryRun: {{dry}}
"""
        await engine.create_flow(flow.format(delete="false", dry="false"))
        ex = await engine.execute("company.team", "files")
        assert ex["state"]["current"] == "SUCCESS", await messages(engine, ex)
        rows = await diff_rows(engine, task_runs(ex)["git"]["outputs"]["files"])
        assert rows == [{"gitPath": "scripts/etl.py", "syncState": "ADDED", "kestraPath": "/etl.py"},
                        {"gitPath": "scripts/sql/q.sql", "syncState": "ADDED", "kestraPath": "/sql/q.sql"}]
        ns = NamespaceFiles(engine.storage)
        with ns.open("company.team", "/etl.py") as f:
            assert f.read() == b"print('v1')\n"

        remote.commit({"scripts/etl.py": "print('v2')\n", "scripts/sql/q.sql": None})
        ns.put("company.team", "/local.txt", _tmp_file(tmp_path, "local"))
        await engine.update_flow("company.team", "files", flow.format(delete="true", dry="true"))
        ex = await engine.execute("company.team", "files")
        rows = await diff_rows(engine, task_runs(ex)["git"]["outputs"]["files"])
        assert [(r["gitPath"], r["syncState"], r["kestraPath"]) for r in rows] == [
            (None, "DELETED", "/local.txt"), (None, "DELETED", "/sql/q.sql"),
            ("scripts/etl.py", "OVERWRITTEN", "/etl.py")]
        assert ns.all_files("company.team") == ["/etl.py", "/local.txt", "/sql/q.sql"]

        await engine.update_flow("company.team", "files", flow.format(delete="true", dry="false"))
        ex = await engine.execute("company.team", "files")
        assert ex["state"]["current"] == "SUCCESS", await messages(engine, ex)
        assert ns.all_files("company.team") == ["/etl.py"]
        assert ns.revisions("company.team", "/etl.py") == [1, 2]
        ex = await engine.execute("company.team", "files")
        rows = await diff_rows(engine, task_runs(ex)["git"]["outputs"]["files"])
        assert [r["syncState"] for r in rows] == ["UNCHANGED"]
        assert ns.revisions("company.team", "/etl.py") == [1, 2]


def _tmp_file(tmp_path, text):
    path = tmp_path / "local-file"
    path.write_text(text)
    return path


#### PushFlows ##############################################################################################

async def test_push_flows_to_a_new_branch_then_update_and_delete(tmp_path, remote):
    remote.commit({"README.md": "flows\n"})
    async with engine_at(tmp_path) as engine:
        await engine.create_flow(FLOW_A.replace("anything.here", "dev"))
        await engine.create_flow(FLOW_B.replace("anything.here", "dev.sub"))
        ex = await run_git(engine, "push", "PushFlows", remote.url, """
branch: develop
sourceNamespace: dev
targetNamespace: prod
includeChildNamespaces: true
authorName: Falconet Bot
authorEmail: bot@example.com
commitMessage: "sync {{ execution.id }}"
""", namespace="system")
        assert ex["state"]["current"] == "SUCCESS", await messages(engine, ex)
        out = task_runs(ex)["git"]["outputs"]
        assert remote.show("develop").startswith(f"commit {out['commitId']}")
        assert "Author: Falconet Bot <bot@example.com>" in remote.show("develop")
        assert f"sync {ex['id']}" in remote.show("develop")
        assert remote.files("develop") == ["README.md", "_flows/hello.yml", "_flows/sub/nested.yml"]
        assert "namespace: prod.sub\n" in remote.show("develop:_flows/sub/nested.yml")
        assert "revision" not in remote.show("develop:_flows/hello.yml")
        rows = await diff_rows(engine, out["flows"])
        assert rows == [{"file": "_flows/hello.yml", "additions": 6, "deletions": 0, "changes": 0},
                        {"file": "_flows/sub/nested.yml", "additions": 6, "deletions": 0, "changes": 0}]

        ex = await engine.execute("system", "push")                     # nothing changed: no commit
        assert "commitId" not in task_runs(ex)["git"]["outputs"]
        assert any("No changes to commit" in m for _, m in await messages(engine, ex))

        await engine.update_flow("dev", "hello", FLOW_A.replace("anything.here", "dev").replace("hello from git", "v2"))
        await engine.delete_flow("dev.sub", "nested")
        ex = await engine.execute("system", "push")
        rows = await diff_rows(engine, task_runs(ex)["git"]["outputs"]["flows"])
        assert rows == [{"file": "_flows/hello.yml", "additions": 0, "deletions": 0, "changes": 1},
                        {"file": "_flows/sub/nested.yml", "additions": 0, "deletions": 6, "changes": 0}]
        assert remote.files("develop") == ["README.md", "_flows/hello.yml"]
        assert remote.files("main") == ["README.md"]


async def test_push_flows_dry_run_and_globs(tmp_path, remote):
    remote.commit({"README.md": "x\n"})
    async with engine_at(tmp_path) as engine:
        await engine.create_flow(FLOW_A.replace("anything.here", "company.team"))
        await engine.create_flow(FLOW_B.replace("anything.here", "company.team"))
        ex = await run_git(engine, "push", "PushFlows", remote.url, "flows: hel*\ndryRun: true\n",
                           namespace="company.team")
        assert ex["state"]["current"] == "SUCCESS", await messages(engine, ex)
        out = task_runs(ex)["git"]["outputs"]
        assert [r["file"] for r in await diff_rows(engine, out["flows"])] == ["_flows/hello.yml"]
        assert "commitId" not in out and remote.files("main") == ["README.md"]


async def test_push_flows_never_writes_through_a_symlink_of_the_repository(tmp_path, remote):
    outside = tmp_path / "outside"
    outside.mkdir()
    (remote.work / "_flows").mkdir()
    (remote.work / "_flows" / "sub").symlink_to(outside)
    remote.commit({"README.md": "x\n"})
    async with engine_at(tmp_path) as engine:
        await engine.create_flow(FLOW_B.replace("anything.here", "dev.sub"))
        ex = await run_git(engine, "push", "PushFlows", remote.url, "includeChildNamespaces: true\n", namespace="dev")
        assert ex["state"]["current"] == "FAILED"
        assert any("points outside the repository" in m for _, m in await messages(engine, ex))
    assert list(outside.iterdir()) == []


def _processes_with_argument(marker: str) -> list[int]:
    """Live (non-zombie) processes with an argument containing ``marker``."""
    return live_processes("cmdline", lambda args: marker.encode() in args)


async def test_kill_ends_a_hanging_clone(tmp_path):
    marker = uuid.uuid4().hex
    with socket.socket() as server:            # accepts connections (backlog) and never answers
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        url = f"http://127.0.0.1:{server.getsockname()[1]}/{marker}.git"
        async with engine_at(tmp_path) as engine:
            await engine.create_flow(f"""
id: hang
namespace: company.team
tasks:
  - id: clone
    type: io.kestra.plugin.git.Clone
    url: {url}
""")
            ex = await engine.execute("company.team", "hang", wait=False)
            with trio.fail_after(10):
                while not _processes_with_argument(marker):
                    await trio.sleep(0.01)
            await engine.kill(ex["id"])
            with trio.fail_after(10):
                ex = await engine.wait_for_end(ex["id"])
            assert ex["state"]["current"] == "KILLED"
            assert _processes_with_argument(marker) == []


async def test_sync_namespace_files_refuses_bad_namespaces_and_reserved_paths(tmp_path, remote):
    remote.commit({"files/_flows/x.yml": FLOW_A, "files/ok.txt": "ok\n"})
    async with engine_at(tmp_path) as engine:
        for i, namespace in enumerate(("../../etc", "company.team")):
            ex = await run_git(engine, f"files{i}", "SyncNamespaceFiles", remote.url,
                               f'namespace: "{namespace}"\ngitDirectory: files\n')
            assert ex["state"]["current"] == "FAILED"
            assert any("Invalid namespace file" in m for _, m in await messages(engine, ex)), \
                await messages(engine, ex)
        assert not (tmp_path / "etc").exists()
