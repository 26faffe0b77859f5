"""flow.WorkingDirectory through the engine: one shared directory for its tasks, inputFiles/namespaceFiles in,
outputFiles out, cache, removal at the end and on kill, recovery after a restart; outputs of failed scripts."""
from __future__ import annotations

import os
import textwrap
import time
import zipfile
from pathlib import Path
from typing import Any

import trio

from falconet import open_engine
from falconet.sdk.files import walk_files
from falconet.sdk.plugin import STRING, Prop, RunnableTask, TaskFailed, register

NS = "tests.wd"
PROCESS = "taskRunner: {type: io.kestra.plugin.core.runner.Process}"

#### A task that shows what it sees ########################################################################

#: (execution id, task id) pairs that already blocked once
BLOCKED: set[tuple[str, str]] = set()


@register
class Probe(RunnableTask):
    """Test task: reports its ``open_temp_dir()`` (path, shared flag, files, ``file``'s content).
    ``mode: block`` never returns; ``block-once`` blocks on its first run in an execution only;
    ``fail-once`` fails its first run in an execution."""

    type = "io.falconet.tests.wd.Probe"
    props = {"mode": Prop(STRING, default="read"), "file": Prop(STRING)}

    async def run(self, ctx: Any) -> dict[str, Any] | None:
        d = Path(await ctx.open_temp_dir())
        mode = ctx.prop("mode")
        key = (ctx.execution_id, ctx.task_id)
        if mode == "block" or (mode == "block-once" and key not in BLOCKED):
            BLOCKED.add(key)
            await trio.sleep_forever()
        if mode == "fail-once" and key not in BLOCKED:
            BLOCKED.add(key)
            raise TaskFailed("failing once")
        name = ctx.prop("file")

        def look() -> dict[str, Any]:
            target = d / name if name else None
            return {"files": list(walk_files(d)),
                    "content": target.read_text() if target is not None and target.is_file() else None}

        return {"dir": str(d), "shared": ctx.shared_temp_dir, **await trio.to_thread.run_sync(look)}


def runs(ex: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {tr["taskId"]: tr for tr in ex["taskRunList"]}


def wd_dirs(engine) -> list[str]:
    return sorted(p.name for p in engine.temp_root().iterdir() if p.name.startswith("wd-"))


async def wait_for(engine, execution_id: str, pred) -> dict[str, Any]:
    """Poll the execution until ``pred(doc)``: waits for a condition, not for time to pass."""
    while True:
        doc = await engine.get_execution(execution_id)
        if pred(doc):
            return doc
        await trio.sleep(0.01)


def wd_flow(flow_id: str, wd: str) -> str:
    """A flow of NS whose one task ``wd`` is a WorkingDirectory with the YAML properties ``wd`` (from column 0)."""
    return (f"\nid: {flow_id}\nnamespace: {NS}\ntasks:\n  - id: wd\n"
            "    type: io.kestra.plugin.core.flow.WorkingDirectory\n" + textwrap.indent(wd, "    "))


def output_texts(engine, task_run: dict[str, Any]) -> dict[str, str]:
    """Name → content of a task run's ``outputFiles``."""
    return {name: engine.storage.read_text(uri) for name, uri in task_run["outputs"]["outputFiles"].items()}


async def ended(engine, execution_id: str) -> dict[str, Any]:
    """The execution once it ended and its end-of-execution work (removing directories) is done."""
    final = await engine.wait_for_end(execution_id)
    await engine.settle(execution_id)
    return final


def running(task_id: str):
    return lambda doc: any(t["taskId"] == task_id and t["state"]["current"] == "RUNNING"
                           for t in doc.get("taskRunList", []))


#### Shared directory, inputs, outputs ######################################################################

SHARED = f"""
id: shared
namespace: {NS}
inputs:
  - id: name
    type: STRING
    defaults: world
tasks:
  - id: make
    type: io.kestra.plugin.core.storage.LocalFiles
    inputs:
      seed.txt: "seeded by {{{{ task.id }}}}"
    outputs: ["seed.txt"]
  - id: wd
    type: io.kestra.plugin.core.flow.WorkingDirectory
    inputFiles:
      hello.txt: "hello {{{{ inputs.name }}}}"
      sub/seed.txt: "{{{{ outputs.make.uris['seed.txt'] }}}}"
    namespaceFiles:
      enabled: true
      exclude: ["ignore/**"]
    outputFiles:
      - "*.txt"
      - "sub/**"
    tasks:
      - id: first
        type: io.kestra.plugin.scripts.shell.Commands
        {PROCESS}
        commands:
          - cat hello.txt > first.txt
          - echo " + $(cat sub/seed.txt)" >> first.txt
          - cat lib/helper.sh > from-ns.txt
      - id: second
        type: io.kestra.plugin.scripts.shell.Commands
        {PROCESS}
        commands:
          - echo "::{{\\"outputs\\":{{\\"first\\":\\"$(cat first.txt)\\",\\"ignored\\":$(ls ignore 2>/dev/null | wc -l)}}}}::"
          - echo second > second.txt
      - id: probe
        type: io.falconet.tests.wd.Probe
        file: second.txt
"""


async def test_tasks_share_one_directory_with_input_namespace_and_output_files(tmp_path):
    async with open_engine(tmp_path, store="memory") as engine:
        st = engine.storage
        st.put_bytes(b"echo helper", st.namespace_files_prefix(NS) + "/lib/helper.sh")
        st.put_bytes(b"no", st.namespace_files_prefix(NS) + "/ignore/x.txt")
        await engine.create_flow(SHARED)
        ex = await engine.execute(NS, "shared")
        left = wd_dirs(engine)
        wd = runs(ex)["wd"]
        files = output_texts(engine, wd)
    assert ex["state"]["current"] == "SUCCESS", ex
    r = runs(ex)
    assert r["second"]["outputs"]["vars"] == {"first": "hello world + seeded by make", "ignored": 0}
    probe = r["probe"]["outputs"]
    assert probe["shared"] is True and probe["content"] == "second\n"
    assert Path(probe["dir"]).name == f"wd-{wd['id']}"
    assert sorted(probe["files"]) == ["first.txt", "from-ns.txt", "hello.txt", "lib/helper.sh", "second.txt",
                                      "sub/seed.txt"]
    assert files == {"first.txt": "hello world + seeded by make\n", "from-ns.txt": "echo helper",
                     "hello.txt": "hello world", "second.txt": "second\n", "sub/seed.txt": "seeded by make"}
    assert all(uri.startswith(f"kestra:///tests/wd/shared/executions/{ex['id']}/tasks/wd/{wd['id']}/")
               for uri in wd["outputs"]["outputFiles"].values())
    assert left == []                               # removed when the WorkingDirectory ended
    assert [h["state"] for h in wd["state"]["histories"]] == ["CREATED", "RUNNING", "SUCCESS"]


async def test_tasks_outside_get_their_own_directory(tmp_path):
    async with open_engine(tmp_path, store="memory") as engine:
        await engine.create_flow(f"""
id: outside
namespace: {NS}
tasks:
  - id: alone
    type: io.falconet.tests.wd.Probe
  - id: wd
    type: io.kestra.plugin.core.flow.WorkingDirectory
    tasks:
      - id: inside
        type: io.falconet.tests.wd.Probe
      - id: boom
        type: io.kestra.plugin.core.execution.Fail
    errors:
      - id: nested
        type: io.falconet.tests.wd.Probe
""")
        ex = await engine.execute(NS, "outside")
    r = runs(ex)
    assert ex["state"]["current"] == "FAILED"
    assert r["inside"]["outputs"]["shared"] is True
    assert r["alone"]["outputs"]["shared"] is False
    assert not Path(r["alone"]["outputs"]["dir"]).exists()       # a private attempt directory is removed
    assert r["nested"]["outputs"]["shared"] is True               # the errors branch shares it too
    assert Path(r["nested"]["outputs"]["dir"]).name == f"wd-{r['wd']['id']}"


#### Kestra's test flows (LocalFiles) #######################################################################

KESTRA_WD = f"""
id: working-directory
namespace: {NS}
inputs:
  - id: failed
    type: STRING
tasks:
  - id: worker
    type: io.kestra.plugin.core.flow.WorkingDirectory
    tasks:
      - id: first
        type: io.kestra.plugin.core.storage.LocalFiles
        inputs:
          out/stay.txt: "{{{{ inputs.failed == 'true' ? ko: taskrun.id }}}}"
      - id: second
        type: io.kestra.plugin.core.storage.LocalFiles
        outputs:
          - out/*
      - id: disabled
        type: io.kestra.plugin.core.debug.Return
        disabled: true
    errors:
      - id: error-t1
        type: io.kestra.plugin.core.debug.Return
        format: "Error Trigger ! {{{{task.id}}}}"
  - id: 2_end
    type: io.kestra.plugin.core.debug.Return
    format: "{{{{ outputs.second.uris['out/stay.txt'] }}}}"
"""


async def test_kestra_working_directory_flow_success_and_failure(tmp_path):
    async with open_engine(tmp_path, store="memory") as engine:
        await engine.create_flow(KESTRA_WD)
        ok = await engine.execute(NS, "working-directory", {"failed": "false"})
        content = engine.storage.read_text(runs(ok)["2_end"]["outputs"]["value"])
        ko = await engine.execute(NS, "working-directory", {"failed": "true"})
        left = wd_dirs(engine)
    assert ok["state"]["current"] == "SUCCESS"
    assert content == runs(ok)["first"]["id"]
    assert ko["state"]["current"] == "FAILED"
    r = runs(ko)
    assert {k: r[k]["state"]["current"] for k in ("worker", "first", "error-t1")} == {
        "worker": "FAILED", "first": "FAILED", "error-t1": "SUCCESS"}
    assert "second" not in r and "2_end" not in r
    assert r["error-t1"]["outputs"] == {"value": "Error Trigger ! error-t1"}
    assert left == []


async def test_kestra_working_directory_in_nested_foreach(tmp_path):
    async with open_engine(tmp_path, store="memory") as engine:
        await engine.create_flow(f"""
id: working-directory-each
namespace: {NS}
tasks:
  - id: 1_each
    type: io.kestra.plugin.core.flow.ForEach
    values: '["s1", "s2"]'
    concurrencyLimit: 0
    tasks:
      - id: worker
        type: io.kestra.plugin.core.flow.WorkingDirectory
        tasks:
        - id: first
          type: io.kestra.plugin.core.storage.LocalFiles
          inputs:
            out/stay.txt: "{{{{ parent.taskrun.value }}}}"
        - id: second
          type: io.kestra.plugin.core.storage.LocalFiles
          outputs:
            - out/*
  - id: 2_end
    type: io.kestra.plugin.core.debug.Return
    format: "{{{{ outputs.second.s2.uris['out/stay.txt'] }}}}"
""")
        ex = await engine.execute(NS, "working-directory-each")
        content = engine.storage.read_text(runs(ex)["2_end"]["outputs"]["value"])
        by_id = {tr["id"]: tr for tr in ex["taskRunList"]}
        seconds = {by_id[tr["parentTaskRunId"]]["value"]: engine.storage.read_text(tr["outputs"]["uris"]["out/stay.txt"])
                   for tr in ex["taskRunList"] if tr["taskId"] == "second"}
    assert ex["state"]["current"] == "SUCCESS"
    assert content == "s2"
    assert seconds == {"s1": "s1", "s2": "s2"}   # one directory per WorkingDirectory task run


#### Failures while preparing and finishing #################################################################

async def test_missing_input_file_fails_the_working_directory_before_its_tasks(tmp_path):
    async with open_engine(tmp_path, store="memory") as engine:
        await engine.create_flow(wd_flow("badinput", """\
inputFiles:
  data.csv: "kestra:///tests/wd/badinput/executions/nope/missing.csv"
tasks:
  - id: never
    type: io.falconet.tests.wd.Probe
"""))
        ex = await engine.execute(NS, "badinput")
        logs = [(row["level"], row["message"]) for row in await engine.get_logs(ex["id"])]
        left = wd_dirs(engine)
    assert ex["state"]["current"] == "FAILED"
    assert [tr["taskId"] for tr in ex["taskRunList"]] == ["wd"]
    assert any(level == "ERROR" and "Unable to prepare the working directory" in msg and "missing.csv" in msg
               for level, msg in logs), logs
    assert left == []


async def test_failed_children_upload_nothing_and_remove_the_directory(tmp_path):
    async with open_engine(tmp_path, store="memory") as engine:
        await engine.create_flow(wd_flow("failing", """\
outputFiles: ["*.txt"]
tasks:
  - id: write
    type: io.kestra.plugin.core.storage.LocalFiles
    inputs:
      a.txt: a
  - id: boom
    type: io.kestra.plugin.core.execution.Fail
"""))
        ex = await engine.execute(NS, "failing")
        left = wd_dirs(engine)
    wd = runs(ex)["wd"]
    assert ex["state"]["current"] == "FAILED"
    assert wd["state"]["current"] == "FAILED"
    assert wd.get("outputs") in (None, {})
    assert left == []


#### Cache ##################################################################################################

CACHED = wd_flow("cached", f"""\
cache:
  ttl: PT5M
  patterns: ["deps/**", "*.lock"]
tasks:
  - id: build
    type: io.kestra.plugin.scripts.shell.Commands
    {PROCESS}
    commands:
      - if [ -f deps/lib.txt ]; then echo '::{{"outputs":{{"cached":true}}}}::'; else echo '::{{"outputs":{{"cached":false}}}}::'; fi
      - mkdir -p deps && echo "built $(date +%N)" > deps/lib.txt && echo lock > app.lock && echo tmp > other.tmp
""")


async def test_cache_is_stored_restored_and_expires(tmp_path):
    async with open_engine(tmp_path, store="memory") as engine:
        await engine.create_flow(CACHED)
        first = await engine.execute(NS, "cached")
        cache = engine.storage.local_path("kestra:///tests/wd/cached/wd/cache/cache.zip")
        with zipfile.ZipFile(cache) as z:
            names = sorted(z.namelist())
        second = await engine.execute(NS, "cached")
        old = time.time() - 600                                  # older than the 5 minutes ttl
        os.utime(cache, (old, old))
        third = await engine.execute(NS, "cached")
    assert [e["state"]["current"] for e in (first, second, third)] == ["SUCCESS"] * 3
    assert names == ["app.lock", "deps/lib.txt"]
    assert runs(first)["build"]["outputs"]["vars"] == {"cached": False}
    assert runs(second)["build"]["outputs"]["vars"] == {"cached": True}
    assert runs(third)["build"]["outputs"]["vars"] == {"cached": False}


#### Kill and restart #######################################################################################

async def test_kill_removes_the_directory(tmp_path):
    async with open_engine(tmp_path, store="memory") as engine:
        await engine.create_flow(wd_flow("killme", """\
inputFiles:
  a.txt: a
tasks:
  - id: wait
    type: io.falconet.tests.wd.Probe
    mode: block
"""))
        created = await engine.execute(NS, "killme", wait=False)
        await wait_for(engine, created["id"], running("wait"))
        during = wd_dirs(engine)
        await engine.kill(created["id"])
        final = await ended(engine, created["id"])
        after = wd_dirs(engine)
    assert final["state"]["current"] == "KILLED"
    assert {t["state"]["current"] for t in final["taskRunList"]} == {"KILLED"}
    assert during == [f"wd-{runs(final)['wd']['id']}"]
    assert after == []


RESTART = wd_flow("restart", """\
inputFiles:
  input.txt: "from inputFiles"
outputFiles: ["*.txt"]
tasks:
  - id: write
    type: io.kestra.plugin.core.storage.LocalFiles
    inputs:
      written.txt: by an earlier task
  - id: wait
    type: io.falconet.tests.wd.Probe
    mode: block-once
    file: input.txt
""")


async def test_unfinished_working_directory_recreates_its_directory_after_a_restart(tmp_path):
    async with open_engine(tmp_path, store="sqlite") as engine:
        await engine.create_flow(RESTART)
        created = await engine.execute(NS, "restart", wait=False)
        await wait_for(engine, created["id"], running("wait"))
        while True:  # the stored document has caught up with the running task
            stored = await engine.store.get_execution(created["id"])
            if stored and running("wait")(stored):
                break
            await engine.store.flush()
            await trio.sleep(0.01)
        lost = wd_dirs(engine)
    # the directory was kept over the shutdown (the execution did not end); simulate losing it
    for name in lost:
        for f in sorted((tmp_path / "tmp" / name).rglob("*"), reverse=True):
            f.unlink() if f.is_file() else f.rmdir()
        (tmp_path / "tmp" / name).rmdir()
    async with open_engine(tmp_path, store="sqlite") as engine:
        final = await ended(engine, created["id"])
        left = wd_dirs(engine)
        out = output_texts(engine, runs(final)["wd"])
    assert len(lost) == 1
    assert final["state"]["current"] == "SUCCESS"
    wait = runs(final)["wait"]
    assert len(wait["attempts"]) == 2
    assert wait["outputs"]["content"] == "from inputFiles"      # inputFiles written again
    assert wait["outputs"]["files"] == ["input.txt"]            # the earlier task's file was lost with the dir
    assert out == {"input.txt": "from inputFiles"}
    assert left == []


async def test_restarted_execution_prepares_the_directory_again(tmp_path):
    async with open_engine(tmp_path, store="memory") as engine:
        await engine.create_flow(wd_flow("restartme", """\
inputFiles:
  input.txt: again
outputFiles: ["*.txt"]
tasks:
  - id: flaky
    type: io.falconet.tests.wd.Probe
    mode: fail-once
    file: input.txt
"""))
        first = await engine.execute(NS, "restartme")
        await engine.settle(first["id"])
        await engine.restart(first["id"])
        final = await ended(engine, first["id"])
        left = wd_dirs(engine)
        out = output_texts(engine, runs(final)["wd"])
    assert first["state"]["current"] == "FAILED"
    assert final["state"]["current"] == "SUCCESS"
    assert runs(final)["flaky"]["outputs"]["content"] == "again"
    assert out == {"input.txt": "again"}
    assert left == []


#### Outputs of a failed script #############################################################################

async def test_failed_script_keeps_vars_exit_code_and_output_files(tmp_path):
    async with open_engine(tmp_path, store="memory") as engine:
        await engine.create_flow(f"""
id: failedscript
namespace: {NS}
tasks:
  - id: script
    type: io.kestra.plugin.scripts.shell.Commands
    {PROCESS}
    outputFiles: ["*.txt"]
    commands:
      - echo '::{{"outputs":{{"step":"half"}}}}::'
      - echo partial > partial.txt
      - exit 3
    allowFailure: true
  - id: after
    type: io.kestra.plugin.core.debug.Return
    format: "{{{{ outputs.script.exitCode }}}} {{{{ outputs.script.vars.step }}}}"
""")
        ex = await engine.execute(NS, "failedscript")
        script = runs(ex)["script"]
        partial = engine.storage.read_text(script["outputs"]["outputFiles"]["partial.txt"])
    assert script["state"]["current"] == "WARNING"
    assert script["attempts"][-1]["state"]["current"] == "FAILED"
    assert script["outputs"]["vars"] == {"step": "half"}
    assert script["outputs"]["exitCode"] == 3
    assert partial == "partial\n"
    assert runs(ex)["after"]["outputs"] == {"value": "3 half"}


async def test_failed_legacy_bash_keeps_its_outputs(tmp_path):
    async with open_engine(tmp_path, store="memory") as engine:
        await engine.create_flow(f"""
id: legacy
namespace: {NS}
tasks:
  - id: bash
    type: io.kestra.core.tasks.scripts.Bash
    commands:
      - echo '::{{"outputs":{{"a":1}}}}::'
      - exit 1
""")
        ex = await engine.execute(NS, "legacy")
    bash = runs(ex)["bash"]
    assert ex["state"]["current"] == "FAILED"
    assert bash["outputs"]["vars"] == {"a": 1} and bash["outputs"]["exitCode"] == 1
    assert bash["outputs"]["files"] == {}
