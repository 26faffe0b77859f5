"""Script tasks in flows through the engine: Process runner, outputs/metrics, files, kill, timeout, and the
real ``kestra`` PyPI library inside a script."""
from __future__ import annotations

import subprocess
import time
import uuid

import trio

from .e2e import engine_at, messages, states, task_runs
from .test_scripts import processes_with_marker


async def test_shell_commands_process_runner_flow(tmp_path):
    async with engine_at(tmp_path) as engine:
        await engine.create_flow("""
id: shell
namespace: company.team
tasks:
  - id: produce
    type: io.kestra.plugin.scripts.shell.Commands
    taskRunner:
      type: io.kestra.plugin.core.runner.Process
    outputFiles:
      - "*.txt"
    commands:
      - echo "run {{ execution.id }}"
      - echo "a,b" > data.txt
      - echo '::{"outputs":{"count":3,"name":"x"}}::'
      - echo '::{"metrics":[{"name":"rows","type":"counter","value":3,"tags":{"t":"1"}}]}::'
  - id: consume
    type: io.kestra.plugin.scripts.shell.Script
    inputFiles:
      in.txt: "{{ outputs.produce.outputFiles['data.txt'] }}"
    script: |
      cat in.txt
      echo "count={{ outputs.produce.vars.count }}"
  - id: readback
    type: io.kestra.plugin.core.debug.Return
    format: "{{ read(outputs.produce.outputFiles['data.txt']) | trim }}"
""")
        ex = await engine.execute("company.team", "shell")
        assert ex["state"]["current"] == "SUCCESS", await messages(engine, ex)
        runs = task_runs(ex)
        assert runs["produce"]["outputs"]["vars"] == {"count": 3, "name": "x"}
        assert runs["produce"]["outputs"]["exitCode"] == 0
        assert runs["readback"]["outputs"]["value"] == "a,b"
        assert await messages(engine, ex, "consume") == [("INFO", "a,b"), ("INFO", "count=3")]
        assert ("INFO", f"run {ex['id']}") in await messages(engine, ex, "produce")


async def test_stderr_warning_and_exit_code_failure(tmp_path):
    async with engine_at(tmp_path) as engine:
        await engine.create_flow("""
id: states
namespace: company.team
tasks:
  - id: warn
    type: io.kestra.plugin.scripts.shell.Commands
    commands:
      - echo careful >&2
  - id: fail
    type: io.kestra.plugin.scripts.shell.Commands
    commands:
      - exit 4
""")
        ex = await engine.execute("company.team", "states")
        assert states(ex) == {"warn": "WARNING", "fail": "FAILED"}
        assert ex["state"]["current"] == "FAILED"
        assert ("WARN", "careful") in await messages(engine, ex, "warn")
        assert ("ERROR", "Command failed with exit code 4") in await messages(engine, ex, "fail")


async def test_docker_task_runner_runs_as_process(tmp_path):
    async with engine_at(tmp_path) as engine:
        await engine.create_flow("""
id: docker
namespace: company.team
tasks:
  - id: py
    type: io.kestra.plugin.scripts.python.Script
    containerImage: python:3.11-slim
    taskRunner:
      type: io.kestra.plugin.scripts.runner.docker.Docker
    script: |
      print("fib", {{ 5 * 2 }})
""")
        ex = await engine.execute("company.team", "docker")
        assert ex["state"]["current"] == "SUCCESS"
        logs = await messages(engine, ex, "py")
        assert logs[0][0] == "WARN" and "Process task runner" in logs[0][1]
        assert ("INFO", "fib 10") in logs


async def test_kill_through_the_engine_leaves_no_process(tmp_path):
    marker = uuid.uuid4().hex
    async with engine_at(tmp_path) as engine:
        await engine.create_flow(f"""
id: sleeper
namespace: company.team
tasks:
  - id: sleep
    type: io.kestra.plugin.scripts.shell.Commands
    env:
      FALCONET_TEST_MARKER: "{marker}"
    commands:
      - sleep 300 &
      - echo started
      - wait
""")
        with engine.bus.subscribe(namespace="company.team", kinds=("log",)) as logs:
            ex = await engine.execute("company.team", "sleeper", wait=False)
            with trio.fail_after(10):
                async for event in logs:
                    if event.data.get("message") == "started":
                        break
        pids = processes_with_marker(marker)
        assert len(pids) == 2          # the shell and its sleep (forked before `echo started`)
        started = time.monotonic()
        await engine.kill(ex["id"])
        with trio.fail_after(5):
            ex = await engine.wait_for_end(ex["id"])
        assert time.monotonic() - started < 2.0
        assert ex["state"]["current"] == "KILLED"
        assert states(ex) == {"sleep": "KILLED"}
        assert processes_with_marker(marker) == []
        ps = subprocess.run(["ps", "-o", "pid=,stat=", "-p", ",".join(map(str, pids))], capture_output=True, text=True)
        assert [line for line in ps.stdout.splitlines() if not line.split()[1].startswith("Z")] == []


async def test_timeout_fails_and_kills_the_script(tmp_path):
    marker = uuid.uuid4().hex
    async with engine_at(tmp_path) as engine:
        await engine.create_flow(f"""
id: slow
namespace: company.team
tasks:
  - id: slow
    type: io.kestra.plugin.scripts.shell.Commands
    timeout: PT0.5S
    env:
      FALCONET_TEST_MARKER: "{marker}"
    commands:
      - sleep 300
""")
        with trio.fail_after(10):
            ex = await engine.execute("company.team", "slow")
        assert ex["state"]["current"] == "FAILED"
        assert states(ex) == {"slow": "FAILED"}
        assert processes_with_marker(marker) == []


#### the real kestra library ################################################################################

async def test_real_kestra_library_outputs_and_metrics(tmp_path, kestra_python):
    async with engine_at(tmp_path) as engine:
        await engine.create_flow(f"""
id: kestra-lib
namespace: company.team
tasks:
  - id: py
    type: io.kestra.plugin.scripts.python.Commands
    inputFiles:
      main.py: |
        from kestra import Kestra
        Kestra.outputs({{"my_output": "my_value", "n": 42, "nested": {{"a": [1, 2]}}}})
        Kestra.outputs({{"n": 43}})
        Kestra.counter("rows", 10, {{"table": "users"}})
        Kestra.timer("dur", 1.5)
        Kestra.logger().info("Hello from the kestra logger")
    warningOnStdErr: false
    commands:
      - {kestra_python} main.py
  - id: use
    type: io.kestra.plugin.core.debug.Return
    format: "{{{{ outputs.py.vars.my_output }}}}-{{{{ outputs.py.vars.n }}}}"
""")
        ex = await engine.execute("company.team", "kestra-lib")
        assert ex["state"]["current"] == "SUCCESS", await messages(engine, ex)
        runs = task_runs(ex)
        assert runs["py"]["outputs"]["vars"] == {"my_output": "my_value", "n": 43, "nested": {"a": [1, 2]}}
        assert runs["use"]["outputs"]["value"] == "my_value-43"
        logs = await messages(engine, ex, "py")
        assert any(level == "INFO" and m.endswith(" - Hello from the kestra logger") for level, m in logs)
        metrics = await engine.store.get_metrics(ex["id"], task_id="py")
        by_name = {m["name"]: m for m in metrics}
        assert by_name["rows"]["type"] == "counter" and by_name["rows"]["value"] == 10
        assert by_name["rows"]["tags"] == {"table": "users"}
        assert by_name["dur"]["type"] == "timer" and by_name["dur"]["value"] == 1500.0
