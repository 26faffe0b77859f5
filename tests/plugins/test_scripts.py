"""Script tasks with the Process runner, against the RunContext double (real subprocesses)."""
from __future__ import annotations

import sys
import uuid

import pytest
import trio

from falconet.plugins.scripts import legacy, process, python, shell
from falconet.sdk.plugin import TaskFailed

from .e2e import live_processes


def read_uri(ctx, uri: str) -> str:
    return ctx.storage.local_path(uri).read_text()


def processes_with_marker(marker: str) -> list[int]:
    """Live (non-zombie) processes whose environment contains ``FALCONET_TEST_MARKER=<marker>``."""
    needle = f"FALCONET_TEST_MARKER={marker}".encode()
    return live_processes("environ", lambda env: needle in env.split(b"\0"))


#### shell.Commands #########################################################################################

async def test_commands_outputs_logs_metrics(run_task):
    out, ctx = await run_task(shell.Commands, {"commands": [
        "echo 'hello {{ flow.id }}'",
        """echo '::{"outputs":{"test":"value","int":2}}::'""",
        """echo '::{"outputs":{"int":3}}::'""",
        """echo '::{"metrics":[{"name":"count","type":"counter","value":1,"tags":{"tag1":"i"}}]}::'""",
        """echo '::{"logs":[{"level":"ERROR","message":"from script"}]}::'""",
    ]})
    assert out == {"vars": {"test": "value", "int": 3}, "exitCode": 0, "outputFiles": {}}
    assert ctx.logger.lines == [("INFO", "hello flow"), ("ERROR", "from script")]
    assert ctx.metrics == [("counter", "count", 1.0, {"tag1": "i"})]
    assert ctx.warning is False


async def test_stderr_is_warn_and_sets_warning(run_task):
    out, ctx = await run_task(shell.Commands, {"commands": ["echo out", "echo err >&2"]})
    assert ("INFO", "out") in ctx.logger.lines and ("WARN", "err") in ctx.logger.lines
    assert ctx.warning is True
    _, ctx = await run_task(shell.Commands, {"commands": ["echo err >&2"], "warningOnStdErr": False})
    assert ctx.warning is False


async def test_nonzero_exit_fails(make_ctx):
    ctx = make_ctx(shell.Commands, {"commands": ["echo before", "exit 3"]})
    with pytest.raises(TaskFailed, match="^Command failed with exit code 3$"):
        await shell.Commands().run(ctx)
    assert ("INFO", "before") in ctx.logger.lines


async def test_fail_fast(run_task):
    with pytest.raises(TaskFailed, match="exit code 1"):
        await run_task(shell.Commands, {"commands": ["false", "echo after"]})
    out, ctx = await run_task(shell.Commands, {"commands": ["false", "echo after"], "failFast": False})
    assert out["exitCode"] == 0 and ("INFO", "after") in ctx.logger.lines


async def test_working_dir_env_before_commands_interpreter(run_task):
    out, ctx = await run_task(shell.Commands, {
        "beforeCommands": ["export GREETING=hi"],
        "env": {"MY_VAR": "{{ flow.namespace }}", "NUM": 5},
        "commands": ['echo "$GREETING $MY_VAR $NUM"', 'test "$WORKING_DIR" = "{{ workingDir }}" && echo wd-ok',
                     'test "$(pwd)" = "$WORKING_DIR" && echo cwd-ok', 'test -d "{{ outputDir }}" && echo out-ok'],
    })
    assert [m for _, m in ctx.logger.lines] == ["hi company.team 5", "wd-ok", "cwd-ok", "out-ok"]
    out, ctx = await run_task(shell.Commands, {"interpreter": ["/bin/bash", "-c"],
                                               "commands": ['echo "${BASH_VERSION:+bash}"']})
    assert ctx.logger.lines == [("INFO", "bash")]


async def test_input_and_output_files(run_task, make_ctx):
    first = make_ctx(shell.Commands, {})
    uri = first.storage.put_bytes(b"a,b\n1,2\n", "/company/team/flow/executions/exec1/tasks/prev/tr0/data.csv")
    out, ctx = await run_task(shell.Commands, {
        "inputFiles": {"in.txt": "hello {{ flow.id }}", "sub/data.csv": uri},
        "outputFiles": ["*.out", "res/**"],
        "commands": ["cat in.txt > copy.out", "mkdir -p res/deep && cat sub/data.csv > res/deep/d.csv",
                     "echo skip > skip.txt", 'echo direct > "$OUTPUT_DIR/direct.txt"'],
    })
    files = out["outputFiles"]
    assert sorted(files) == ["copy.out", "direct.txt", "res/deep/d.csv"]
    assert read_uri(ctx, files["copy.out"]) == "hello flow"
    assert read_uri(ctx, files["res/deep/d.csv"]) == "a,b\n1,2\n"
    assert read_uri(ctx, files["direct.txt"]) == "direct\n"
    assert files["copy.out"].startswith("kestra:///company/team/flow/executions/exec1/tasks/t1/tr1/")


async def test_input_files_as_json_string_and_bad_names(run_task):
    out, ctx = await run_task(shell.Commands, {"inputFiles": '{"a.txt": "A"}', "commands": ["cat a.txt"]})
    assert ctx.logger.lines == [("INFO", "A")]
    with pytest.raises(TaskFailed, match="Invalid file name '../x'"):
        await run_task(shell.Commands, {"inputFiles": {"../x": "A"}, "commands": ["true"]})
    with pytest.raises(TaskFailed, match="inputFiles must be a map"):
        await run_task(shell.Commands, {"inputFiles": "[1]", "commands": ["true"]})
    with pytest.raises(TaskFailed, match="not found"):
        await run_task(shell.Commands, {"inputFiles": {"x": "kestra:///nope/x"}, "commands": ["true"]})


async def test_namespace_files(run_task, make_ctx):
    seed = make_ctx(shell.Commands, {})
    seed.storage.put_bytes(b"echo from-a\n", "/company/team/_files/scripts/a.sh")
    seed.storage.put_bytes(b"print(1)\n", "/company/team/_files/scripts/b.py")
    out, ctx = await run_task(shell.Commands, {
        "namespaceFiles": {"enabled": True, "include": ["scripts/**"], "exclude": ["**.py"]},
        "commands": ["sh scripts/a.sh", "test ! -e scripts/b.py && echo no-b"]})
    assert [m for _, m in ctx.logger.lines] == ["from-a", "no-b"]


async def test_other_task_runner_runs_as_process_with_warning(run_task):
    out, ctx = await run_task(shell.Commands, {
        "taskRunner": {"type": "io.kestra.plugin.scripts.runner.docker.Docker"}, "commands": ["echo ran"]})
    assert ctx.logger.lines[0][0] == "WARN" and "io.kestra.plugin.scripts.runner.docker.Docker" in ctx.logger.lines[0][1]
    assert ("INFO", "ran") in ctx.logger.lines
    out, ctx = await run_task(shell.Commands, {
        "taskRunner": {"type": "io.kestra.plugin.core.runner.Process"}, "commands": ["echo ran"]})
    assert ctx.logger.lines == [("INFO", "ran")]


async def test_unstartable_interpreter_fails_cleanly(run_task):
    with pytest.raises(TaskFailed, match="Unable to start /nonexistent/sh"):
        await run_task(shell.Commands, {"interpreter": ["/nonexistent/sh", "-c"], "commands": ["true"]})


async def test_long_and_partial_lines(run_task):
    out, ctx = await run_task(shell.Commands, {"commands": [
        "head -c 200000 /dev/zero | tr '\\0' x; echo", "printf 'no-newline'"]})
    assert len(ctx.logger.lines[0][1]) == 200000 and ctx.logger.lines[1] == ("INFO", "no-newline")


#### shell.Script, python ###################################################################################

async def test_shell_script(run_task):
    out, ctx = await run_task(shell.Script, {"script": "X={{ 1 + 1 }}\necho \"x=$X\"\n"
                                             """echo '::{"outputs":{"x":"'$X'"}}::'"""})
    assert out["vars"] == {"x": "2"} and ctx.logger.lines == [("INFO", "x=2")]


async def test_python_script_uses_server_interpreter(run_task):
    out, ctx = await run_task(python.Script, {"script": (
        "import sys, json\n"
        "print(sys.executable)\n"
        "print('::' + json.dumps({'outputs': {'fib': 55}}) + '::')\n")})
    assert ctx.logger.lines == [("INFO", sys.executable)]
    assert out["vars"] == {"fib": 55}


async def test_python_commands_resolve_python(run_task):
    out, ctx = await run_task(python.Commands, {
        "inputFiles": {"main.py": "import sys; print(sys.version_info[:2] == (%d, %d))" % sys.version_info[:2]},
        "commands": ["python main.py", "python3 main.py"]})
    assert ctx.logger.lines == [("INFO", "True"), ("INFO", "True")]


async def test_python_dependencies_installed_in_cached_venv(run_task, tmp_path, monkeypatch, tiny_wheel):
    monkeypatch.setattr(python, "DEPS_CACHE", tmp_path / "deps-cache")
    props = {"dependencies": [str(tiny_wheel)], "warningOnStdErr": False,
             "script": "import sys, falconet_tinydep\nprint(falconet_tinydep.VALUE)\nprint(sys.prefix != sys.base_prefix)"}
    with trio.fail_after(120):
        out, ctx = await run_task(python.Script, props)
    assert ("INFO", "tiny 1.0") in ctx.logger.lines and ("INFO", "True") in ctx.logger.lines
    assert any(m.startswith("Installing dependencies") for _, m in ctx.logger.lines)
    with trio.fail_after(60):
        out, ctx = await run_task(python.Commands, {**props, "script": None,
                                                    "inputFiles": {"m.py": "import falconet_tinydep as t; print(t.VALUE)"},
                                                    "commands": ["python m.py"]})
    assert ctx.logger.lines == [("INFO", "tiny 1.0")]          # reused: nothing installed this time


async def test_python_dependency_install_failure(run_task, tmp_path, monkeypatch):
    monkeypatch.setattr(python, "DEPS_CACHE", tmp_path / "deps-cache")
    with trio.fail_after(120), pytest.raises(TaskFailed, match="Unable to install dependencies"):
        await run_task(python.Script, {"script": "print(1)", "dependencyCacheEnabled": False,
                                       "dependencies": [str(tmp_path / "missing-1.0-py3-none-any.whl")]})


#### legacy #################################################################################################

async def test_legacy_bash(run_task):
    out, ctx = await run_task(legacy.Bash, {
        "outputFiles": ["first"], "outputDirs": ["dir"],
        "commands": ["echo 1 >> {{ outputFiles.first }}", "echo 2 > {{ outputDirs.dir }}/x.txt",
                     "echo e >&2", """echo '::{"outputs":{"k":"v"}}::'"""]})
    assert out["vars"] == {"k": "v"} and out["exitCode"] == 0
    assert (out["stdOutLineCount"], out["stdErrLineCount"]) == (1, 1)
    assert sorted(out["outputFiles"]) == ["dir/x.txt", "first"] and out["files"] == out["outputFiles"]
    assert read_uri(ctx, out["outputFiles"]["first"]) == "1\n"
    with pytest.raises(TaskFailed, match="exit code 1"):
        await run_task(legacy.Bash, {"commands": ["false", "echo x"]})


async def test_legacy_python(run_task):
    out, ctx = await run_task(legacy.Python, {
        "inputFiles": {"main.py": "import sys\nprint(' '.join(sys.argv[1:]))"}, "args": ["a", "{{ 1 + 2 }}"]})
    assert ctx.logger.lines == [("INFO", "a 3")]
    with pytest.raises(TaskFailed, match="main.py"):
        await run_task(legacy.Python, {"inputFiles": {"other.py": "print(1)"}})


#### kill, timeout, orphans #################################################################################

async def test_cancel_kills_the_whole_process_group(make_ctx):
    marker = uuid.uuid4().hex
    ctx = make_ctx(shell.Commands, {"env": {"FALCONET_TEST_MARKER": marker},
                                    "commands": ["sleep 300 &", "echo started", "sleep 300"]})
    started = ctx.logger.expect("started")
    cancelled = False
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            async def run():
                nonlocal cancelled
                try:
                    await shell.Commands().run(ctx)
                except trio.Cancelled:
                    cancelled = True
                    raise
            nursery.start_soon(run)
            await started.wait()
            assert len(processes_with_marker(marker)) >= 2
            nursery.cancel_scope.cancel()
    assert cancelled
    assert processes_with_marker(marker) == []


async def test_cancel_escalates_to_sigkill_after_grace(make_ctx, monkeypatch):
    monkeypatch.setattr(process, "KILL_GRACE_SECONDS", 0.3)
    marker = uuid.uuid4().hex
    ctx = make_ctx(shell.Commands, {"env": {"FALCONET_TEST_MARKER": marker},
                                    "commands": ["trap '' TERM", "echo started", "sleep 300"]})
    started = ctx.logger.expect("started")
    with trio.fail_after(10):
        with trio.move_on_after(30) as scope:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(shell.Commands().run, ctx)
                await started.wait()
                scope.cancel()
    assert scope.cancelled_caught
    assert processes_with_marker(marker) == []


async def test_background_children_do_not_survive_a_normal_exit(run_task):
    marker = uuid.uuid4().hex
    with trio.fail_after(10):
        out, _ = await run_task(shell.Commands, {"env": {"FALCONET_TEST_MARKER": marker},
                                                 "commands": ["sleep 300 &", "echo done"]})
    assert out["exitCode"] == 0
    assert processes_with_marker(marker) == []
