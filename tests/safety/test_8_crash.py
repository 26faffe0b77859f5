"""Issue 9 §8 — a crash leaves nothing half-done.

Each test runs ``falconet server local`` as a child process on a free port with its own data folder,
``kill -9``s it at the moment that matters, starts it again on the same folder and checks what the new
server made of it. Waits poll the API (no blind sleeps).
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable

import pytest
import trio

from falconet.runtime.kernel.startup import open_engine
from falconet.runtime.kernel.recovery import DataDirInUse, group_has_live_members
from falconet.runtime.store.sqlite import SQLiteStore

DEADLINE = 30.0


def wait_for(check: Callable[[], Any], what: str, timeout: float = DEADLINE) -> Any:
    """Poll ``check`` every 10 ms until it returns a truthy value; fail after ``timeout`` seconds."""
    end = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(0.01)


class Server:
    """One ``falconet server local`` child process on ``data``; start it again after a crash."""

    def __init__(self, data: Path):
        self.data = data
        self.proc: subprocess.Popen[bytes] | None = None
        self.base = ""

    def start(self) -> "Server":
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.base = f"http://127.0.0.1:{port}"
        out = open(self.data.parent / "server.log", "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "falconet", "server", "local", "--host", "127.0.0.1",
                                      "--port", str(port), "--data-dir", str(self.data)],
                                     stdout=out, stderr=subprocess.STDOUT, cwd=self.data.parent)
        out.close()

        def up() -> bool:
            assert self.proc is not None and self.proc.poll() is None, "the server exited"
            try:
                return self.call("GET", "/api/v1/configs")[0] == 200
            except OSError:
                return False
        wait_for(up, "the server to answer")
        return self

    def crash(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def call(self, method: str, path: str, body: bytes | None = None,
             content_type: str = "application/json") -> tuple[int, Any]:
        req = urllib.request.Request(self.base + path, data=body, method=method,
                                     headers={"Content-Type": content_type} if body is not None else {})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                raw, status = r.read(), r.status
        except urllib.error.HTTPError as err:
            raw, status = err.read(), err.code
        return status, (json.loads(raw) if raw else None)

    def flow(self, source: str) -> None:
        status, body = self.call("POST", "/api/v1/flows", source.encode(), "application/x-yaml")
        assert status == 200, body

    def execute(self, flow_id: str) -> str:
        boundary = "crashtestboundary"
        status, body = self.call("POST", f"/api/v1/executions/tests.crash/{flow_id}", f"--{boundary}--\r\n".encode(),
                                 f"multipart/form-data; boundary={boundary}")
        assert status == 200, body
        return body["id"]

    def execution(self, execution_id: str) -> dict[str, Any]:
        status, body = self.call("GET", f"/api/v1/executions/{execution_id}")
        assert status == 200, body
        return body

    def state_is(self, execution_id: str, *states: str) -> dict[str, Any] | None:
        doc = self.execution(execution_id)
        return doc if doc["state"]["current"] in states else None

    def log_lines(self, execution_id: str) -> list[str]:
        status, body = self.call("GET", f"/api/v1/logs/{execution_id}")
        assert status == 200, body
        return [entry["message"] for entry in body]


def pids_in_logs(server: Server, execution_id: str) -> list[int]:
    return [int(line.split("=", 1)[1]) for line in server.log_lines(execution_id) if line.startswith("pid=")]


#### An execution KILLING when the process died ends KILLED ##################################################

STUBBORN = """
id: stubborn
namespace: tests.crash
tasks:
  - id: script
    type: io.kestra.plugin.scripts.shell.Commands
    taskRunner:
      type: io.kestra.plugin.core.runner.Process
    commands:
      - trap '' TERM
      - echo "pid=$$"
      - sleep 60 & wait $!; sleep 60
"""


def test_killing_execution_finishes_its_kill_after_a_crash(tmp_path: Path) -> None:
    server = Server(tmp_path / "data").start()
    try:
        server.flow(STUBBORN)
        ex_id = server.execute("stubborn")
        pgid = wait_for(lambda: pids_in_logs(server, ex_id), "the script to start")[0]
        status, _ = server.call("DELETE", f"/api/v1/executions/{ex_id}/kill")
        assert status == 202
        # the script ignores SIGTERM: the server waits for its grace period, the execution stays KILLING
        assert server.execution(ex_id)["state"]["current"] == "KILLING"
        server.crash()
        assert group_has_live_members(pgid)  # the crash left the script running
        server.start()
        final = wait_for(lambda: server.state_is(ex_id, "KILLED"), "the kill to finish")
        assert [h["state"] for h in final["state"]["histories"]][-2:] == ["KILLING", "KILLED"]
        assert [t["state"]["current"] for t in final["taskRunList"]] == ["KILLED"]
        assert len(final["taskRunList"][0]["attempts"]) == 1  # not attempted again
        assert not group_has_live_members(pgid)
    finally:
        server.stop()


def test_children_of_a_killing_execution_are_killed_at_start_up(tmp_path: Path) -> None:
    """The crash came after the parent's KILLING was written and before its kill reached the child."""
    child = "id: child\nnamespace: tests.crash\ntasks:\n  - id: nap\n    type: io.kestra.plugin.core.flow.Sleep\n    duration: PT1H\n"
    parent = ("id: parent\nnamespace: tests.crash\ntasks:\n  - id: call\n    type: io.kestra.plugin.core.flow.Subflow\n"
              "    namespace: tests.crash\n    flowId: child\n")

    async def scenario() -> tuple[dict[str, Any], dict[str, Any]]:
        async with open_engine(tmp_path, store="sqlite") as engine:
            await engine.create_flow(child)
            await engine.create_flow(parent)
            parent_id = (await engine.execute("tests.crash", "parent", wait=False))["id"]
            while not [a for a in engine.actors.values() if a.ex.flow_id == "child" and a.ex.task_run_list]:
                await trio.sleep(0.01)
            child_id = next(a.ex.id for a in engine.actors.values() if a.ex.flow_id == "child")
        store = SQLiteStore(tmp_path / "falconet.db")
        await store.open()
        doc = await store.get_execution(parent_id)
        assert doc is not None
        doc["state"]["current"] = "KILLING"
        doc["state"]["histories"].append({"state": "KILLING", "date": doc["state"]["histories"][-1]["date"]})
        await store.save_execution(doc)
        await store.close()
        async with open_engine(tmp_path, store="sqlite") as engine:
            with trio.fail_after(DEADLINE):
                return await engine.wait_for_end(parent_id), await engine.wait_for_end(child_id)

    parent_doc, child_doc = trio.run(scenario)
    assert parent_doc["state"]["current"] == "KILLED"
    assert child_doc["state"]["current"] == "KILLED"
    assert [t["state"]["current"] for t in child_doc["taskRunList"]] == ["KILLED"]
    assert len(child_doc["taskRunList"][0]["attempts"]) == 1  # the child's task was not attempted again


#### Scripts of a crashed server are killed before their task runs again ####################################

LONG_SCRIPT = """
id: long
namespace: tests.crash
tasks:
  - id: script
    type: io.kestra.plugin.scripts.shell.Commands
    taskRunner:
      type: io.kestra.plugin.core.runner.Process
    commands:
      - echo "pid=$$"
      - sleep 60
"""


def test_leftover_script_group_is_killed_before_the_task_is_attempted_again(tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = Server(data).start()
    try:
        server.flow(LONG_SCRIPT)
        ex_id = server.execute("long")
        first = wait_for(lambda: pids_in_logs(server, ex_id), "the script to start")[0]
        task_dirs = {p.name for p in (data / "tmp").glob("task-*")}
        assert task_dirs and list((data / "run" / "processes").glob("*.json"))
        server.crash()
        assert group_has_live_members(first)
        # what else a crash leaves behind: a partial upload and a storage write cut short
        (data / "tmp" / "uploads" / "upload-x").mkdir(parents=True)
        (data / "tmp" / "uploads" / "upload-x" / "big.csv").write_bytes(b"half")
        partial = data / "storage" / "tests" / "crash" / ".falconet-tmp-0123456789ab-out.csv"
        partial.parent.mkdir(parents=True, exist_ok=True)
        partial.write_bytes(b"half")
        server.start()
        pids = wait_for(lambda: pids_in_logs(server, ex_id)[1:] and pids_in_logs(server, ex_id), "a new attempt")
        assert pids[0] == first and pids[1] != first
        assert not group_has_live_members(first)  # gone before the new attempt started (and still gone)
        assert server.execution(ex_id)["state"]["current"] == "RUNNING"
        assert not task_dirs & {p.name for p in (data / "tmp").glob("task-*")}
        assert not (data / "tmp" / "uploads" / "upload-x").exists() and not partial.exists()
        server.call("DELETE", f"/api/v1/executions/{ex_id}/kill")
        wait_for(lambda: server.state_is(ex_id, "KILLED"), "the kill")
        assert not group_has_live_members(pids[1])
        assert not list((data / "run" / "processes").glob("*.json"))
    finally:
        server.stop()


#### Acknowledged means durable ##############################################################################

GATED = """
id: gated
namespace: tests.crash
tasks:
  - id: gate
    type: io.kestra.plugin.core.flow.Pause
  - id: nap
    type: io.kestra.plugin.core.flow.Sleep
    duration: PT1H
"""

NAP = """
id: nap
namespace: tests.crash
tasks:
  - id: nap
    type: io.kestra.plugin.core.flow.Sleep
    duration: PT1H
"""

QUICK = """
id: quick
namespace: tests.crash
tasks:
  - id: ok
    type: io.kestra.plugin.core.debug.Return
    format: ok
"""


def test_acknowledged_changes_survive_a_crash_right_after_the_answer(tmp_path: Path) -> None:
    server = Server(tmp_path / "data").start()
    try:
        for source in (GATED, NAP, QUICK):
            server.flow(source)
        gated, napping, quick = server.execute("gated"), server.execute("nap"), server.execute("quick")
        wait_for(lambda: server.state_is(gated, "PAUSED"), "the Pause task")
        wait_for(lambda: server.state_is(napping, "RUNNING"), "the nap")
        wait_for(lambda: server.state_is(quick, "SUCCESS"), "the quick execution")
        assert server.call("POST", f"/api/v1/executions/{quick}/labels",
                           json.dumps([{"key": "kept", "value": "yes"}]).encode())[0] == 200
        assert server.call("POST", f"/api/v1/executions/{quick}/change-status?status=WARNING")[0] == 200
        assert server.call("POST", f"/api/v1/executions/{napping}/pause")[0] == 200
        assert server.call("POST", f"/api/v1/executions/{gated}/resume")[0] == 204
        server.crash()
        server.start()
        resumed = server.execution(gated)
        assert resumed["state"]["current"] == "RUNNING"
        assert [h["state"] for h in resumed["state"]["histories"]][-3:] == ["PAUSED", "RESTARTED", "RUNNING"]
        assert resumed["taskRunList"][0]["state"]["current"] == "SUCCESS"
        paused = server.execution(napping)
        assert paused["state"]["current"] == "PAUSED"
        done = server.execution(quick)
        assert done["state"]["current"] == "WARNING"
        assert {"key": "kept", "value": "yes"} in done["labels"]
        # the manual pause is still a manual pause: resume it, then kill (durable too)
        assert server.call("POST", f"/api/v1/executions/{napping}/resume")[0] == 204
        assert server.call("DELETE", f"/api/v1/executions/{napping}/kill")[0] == 202
        server.crash()
        server.start()
        killed = wait_for(lambda: server.state_is(napping, "KILLED"), "the kill")
        assert [h["state"] for h in killed["state"]["histories"]][-4:] == ["PAUSED", "RUNNING", "KILLING", "KILLED"]
    finally:
        server.stop()


#### One engine owns a data folder ###########################################################################

async def test_a_second_engine_on_the_same_folder_is_refused(tmp_path: Path) -> None:
    async with open_engine(tmp_path, store="memory") as first:
        leftover = first.temp_root() / "task-in-use"
        leftover.mkdir()
        with pytest.raises(DataDirInUse, match="in use by another Falconet process"):
            async with open_engine(tmp_path, store="memory"):
                pass
        assert leftover.exists()  # the first engine still uses the folder: nothing was cleaned
        await first.create_flow(QUICK)  # and it still works
    async with open_engine(tmp_path, store="memory"):
        assert not leftover.exists()  # nobody did: cleaned at start-up
    assert os.path.exists(tmp_path / "falconet.lock")


def test_a_second_server_on_a_locked_folder_exits_with_one_line(tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = Server(data).start()
    try:
        server.flow(NAP)
        ex_id = server.execute("nap")
        wait_for(lambda: server.state_is(ex_id, "RUNNING"), "the nap")
        second = subprocess.run([sys.executable, "-m", "falconet", "server", "local", "--host", "127.0.0.1",
                                 "--port", "0", "--data-dir", str(data)],
                                capture_output=True, timeout=60, cwd=tmp_path)
        assert second.returncode == 2
        lines = second.stderr.decode().strip().splitlines()
        assert len(lines) == 1 and "in use by another Falconet process" in lines[0], second.stderr
        assert second.stdout == b""  # no banner: it never served
        doc = server.execution(ex_id)  # the first server keeps running its execution, attempted once
        assert doc["state"]["current"] == "RUNNING" and len(doc["taskRunList"][0]["attempts"]) == 1
    finally:
        server.stop()


#### A recorded pid is only signalled while it is the recorded process #####################################

def test_reap_kills_recorded_groups_and_never_a_recycled_pid(tmp_path: Path) -> None:
    from falconet.runtime.kernel.recovery import ProcessRegistry, process_start_time

    registry = ProcessRegistry(tmp_path / "processes")
    recorded = subprocess.Popen(["sleep", "60"], start_new_session=True)
    stranger = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        with registry.tracking(recorded.pid, "ex/tr1"):
            pass  # leaving the block forgets the group
        assert not list(registry.folder.iterdir())
        crashed = registry.tracking(recorded.pid, "ex/tr1")
        crashed.__enter__()  # the server dies inside the block: the record stays
        # the stranger took a pid the registry knew, but it started at another time: not the recorded process
        start = process_start_time(stranger.pid)
        assert start is not None
        (registry.folder / f"{stranger.pid}.json").write_text(json.dumps(
            {"pgid": stranger.pid, "boot": json.loads((registry.folder / f"{recorded.pid}.json").read_text())["boot"],
             "start": start - 1, "owner": "ex/tr2"}))
        assert registry.reap() == ["ex/tr1"]
        assert recorded.wait(timeout=5) == -signal.SIGKILL
        assert stranger.poll() is None and not list(registry.folder.iterdir())
    finally:
        for proc in (recorded, stranger):
            if proc.poll() is None:
                proc.kill()
                proc.wait()


#### Timers are restored: a Pause delay that passed while the server was down resumes at once ################

SHORT_PAUSE = """
id: short-pause
namespace: tests.crash
tasks:
  - id: wait
    type: io.kestra.plugin.core.flow.Pause
    delay: PT2S
  - id: after
    type: io.kestra.plugin.core.debug.Return
    format: done
"""


def test_a_pause_delay_that_passed_during_the_crash_resumes_at_start_up(tmp_path: Path) -> None:
    server = Server(tmp_path / "data").start()
    try:
        server.flow(SHORT_PAUSE)
        ex_id = server.execute("short-pause")
        paused_at = time.monotonic()
        wait_for(lambda: server.state_is(ex_id, "PAUSED"), "the Pause task")
        server.crash()
        server.start()
        final = wait_for(lambda: server.state_is(ex_id, "SUCCESS", "FAILED"), "the delay to resume the execution")
        assert time.monotonic() - paused_at >= 2.0
        assert [t["state"]["current"] for t in final["taskRunList"]] == ["SUCCESS", "SUCCESS"]
    finally:
        server.stop()


#### afterExecution tasks running at the crash resume after it, once #######################################

def after_execution_flow(gate: Path) -> str:
    return f"""
id: after-crash
namespace: tests.crash
tasks:
  - id: main
    type: io.kestra.plugin.core.debug.Return
    format: main
afterExecution:
  - id: first
    type: io.kestra.plugin.core.debug.Return
    format: first
  - id: script
    type: io.kestra.plugin.scripts.shell.Commands
    taskRunner:
      type: io.kestra.plugin.core.runner.Process
    commands:
      - echo "pid=$$"
      - while [ ! -f '{gate}' ]; do sleep 0.02; done
"""


def test_after_execution_tasks_resume_after_a_crash(tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    server = Server(tmp_path / "data").start()
    try:
        server.flow(after_execution_flow(gate))
        ex_id = server.execute("after-crash")
        first = wait_for(lambda: pids_in_logs(server, ex_id), "the afterExecution script")[0]
        assert server.execution(ex_id)["state"]["current"] == "SUCCESS"
        server.crash()
        server.start()
        pids = wait_for(lambda: pids_in_logs(server, ex_id)[1:] and pids_in_logs(server, ex_id), "a new attempt")
        assert pids[0] == first and len(pids) == 2 and not group_has_live_members(first)
        assert server.execution(ex_id)["state"]["current"] == "SUCCESS"  # still ended: nothing of it runs again
        gate.touch()
        done = wait_for(lambda: (lambda d: d if d["taskRunList"][-1]["state"]["current"] == "SUCCESS" else None)(
            server.execution(ex_id)), "the afterExecution script to end")
        assert [(t["taskId"], len(t["attempts"]), t["state"]["current"]) for t in done["taskRunList"]] == [
            ("main", 1, "SUCCESS"), ("first", 1, "SUCCESS"), ("script", 2, "SUCCESS")]
        assert [h["state"] for h in done["state"]["histories"]] == ["CREATED", "RUNNING", "SUCCESS"]
        assert pids_in_logs(server, ex_id) == pids  # exactly once more: the restart did not start a third
        server.stop()
        server.start()  # a clean restart after the end resumes nothing
        assert not list((tmp_path / "data" / "run" / "after-execution").iterdir())
        assert pids_in_logs(server, ex_id) == pids
    finally:
        server.stop()


#### Temporary folders in the system temp dir: those of dead processes are deleted by the next one ##########

def test_abandoned_temp_folders_are_deleted_and_live_ones_kept(tmp_path: Path) -> None:
    from falconet.runtime.kernel.recovery import LOCK_GRACE, DataDirLock, clean_abandoned_temp_dirs

    old = time.time() - LOCK_GRACE - 10

    def folder(name: str, *, lock: bool = True, age: float = old) -> Path:
        path = tmp_path / name
        path.mkdir()
        (path / "payload").write_text("x")
        if lock:
            (path / "falconet.lock").touch()
            os.utime(path / "falconet.lock", (age, age))
        return path

    abandoned, held, young = folder("falconet-dead"), folder("falconet-live"), folder("falconet-new", age=time.time())
    unlocked, foreign = folder("falconet-nolock", lock=False), folder("other-dead")
    holder = DataDirLock(held)  # another open file description: as good as another process
    assert holder.acquire()
    try:
        assert clean_abandoned_temp_dirs(tmp_path) == 1
    finally:
        holder.release()
    assert not abandoned.exists()
    assert held.exists() and young.exists() and unlocked.exists() and foreign.exists()


def test_a_killed_flow_run_leaves_no_temp_folder_behind(tmp_path: Path) -> None:
    systmp = tmp_path / "systmp"
    systmp.mkdir()
    env = dict(os.environ, TMPDIR=str(systmp))
    napping = tmp_path / "nap.yaml"
    napping.write_text(NAP)
    (tmp_path / "input.txt").write_text("hello")
    quick = tmp_path / "quick.yaml"
    quick.write_text(QUICK)
    run = subprocess.Popen([sys.executable, "-m", "falconet", "flow", "run", str(napping), "--input",
                            f"f=@{tmp_path / 'input.txt'}"], env=env, cwd=tmp_path,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        left = wait_for(lambda: [p for p in systmp.iterdir() if (p / "falconet.lock").exists()] if len(
            list(systmp.glob("falconet-*/falconet.lock"))) == 2 else None, "the run's temporary folders")
    finally:
        run.send_signal(signal.SIGKILL)
        run.wait()
    assert len(left) == 2 and all(p.exists() for p in left)  # the crash left them
    for lock in systmp.glob("falconet-*/falconet.lock"):
        os.utime(lock, (time.time() - 3600, time.time() - 3600))  # long ago
    done = subprocess.run([sys.executable, "-m", "falconet", "flow", "run", str(quick)], env=env, cwd=tmp_path,
                          capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert not list(systmp.iterdir())  # the next run deleted them, and its own
