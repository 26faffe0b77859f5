"""`falconet flow run` (logs on stderr, the execution JSON alone on stdout, pauses, --flows, progress on a
terminal, Ctrl-C) and the server's start-up banner."""
from __future__ import annotations

import json
import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from falconet.cli import _only_interrupts, main

PAUSE = """id: approve
namespace: company.team
tasks:
  - id: before
    type: io.kestra.plugin.core.log.Log
    message: before the pause
  - id: approval
    type: io.kestra.plugin.core.flow.Pause
    onResume:
      - id: approver
        type: STRING
        description: who approves
  - id: after
    type: io.kestra.plugin.core.debug.Return
    format: "approved by {{ outputs.approval.onResume.approver }}"
"""

PARENT = """id: parent
namespace: company.team
tasks:
  - id: call
    type: io.kestra.plugin.core.flow.Subflow
    namespace: company.team
    flowId: child
    inputs:
      who: parent
"""

CHILD = """id: child
namespace: company.team
inputs:
  - id: who
    type: STRING
tasks:
  - id: greet
    type: io.kestra.plugin.core.log.Log
    message: "hello from the child, called by {{ inputs.who }}"
"""

SLOW = """id: slow
namespace: company.team
tasks:
  - id: started
    type: io.kestra.plugin.core.log.Log
    message: started
  - id: wait
    type: io.kestra.plugin.scripts.shell.Commands
    commands:
      - sleep 60
"""


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text)
    return path


def final_of(capsys) -> tuple[dict, str]:
    captured = capsys.readouterr()
    return json.loads(captured.out), captured.err


def run_of(execution: dict, task_id: str) -> dict:
    return next(tr for tr in execution["taskRunList"] if tr["taskId"] == task_id)


#### stdout, stderr, pauses, --flows ########################################################################

def test_pause_without_a_terminal_says_how_to_resume_instead_of_hanging(tmp_path, capsys):
    flow = write(tmp_path, "approve.yaml", PAUSE)
    assert main(["flow", "run", str(flow)]) == 1
    final, err = final_of(capsys)
    assert final["state"]["current"] == "PAUSED"
    assert "INFO  [before] before the pause" in err
    assert f"task approval paused execution {final['id']}" in err
    assert "--resume-inputs approver=VALUE" in err


def test_resume_inputs_resume_the_pause(tmp_path, capsys):
    flow = write(tmp_path, "approve.yaml", PAUSE)
    assert main(["flow", "run", str(flow), "--resume-inputs", "approver=ann"]) == 0
    final, err = final_of(capsys)
    assert final["state"]["current"] == "SUCCESS"
    assert run_of(final, "after")["outputs"]["value"] == "approved by ann"
    assert "resuming it with --resume-inputs" in err


def test_invalid_resume_inputs_leave_the_execution_paused(tmp_path, capsys):
    flow = write(tmp_path, "approve.yaml", PAUSE)
    assert main(["flow", "run", str(flow), "--resume-inputs"]) == 1      # approver is required
    final, err = final_of(capsys)
    assert final["state"]["current"] == "PAUSED"
    assert "cannot resume" in err and "approver" in err


def test_flows_option_loads_the_subflows(tmp_path, capsys):
    flows = tmp_path / "flows"
    flows.mkdir()
    parent = write(flows, "parent.yaml", PARENT)
    write(flows, "child.yaml", CHILD)
    assert main(["flow", "run", str(parent), "--flows", str(flows)]) == 0
    final, err = final_of(capsys)
    assert final["state"]["current"] == "SUCCESS"
    assert "INFO  [child/greet] hello from the child, called by parent" in err
    assert main(["flow", "run", str(parent)]) == 1                       # without it, the child is unknown
    final, _ = final_of(capsys)
    assert final["state"]["current"] == "FAILED"


def test_flows_option_names_a_missing_path(tmp_path, capsys):
    parent = write(tmp_path, "parent.yaml", PARENT)
    assert main(["flow", "run", str(parent), "--flows", str(tmp_path / "nope")]) == 2
    assert "no such file or folder" in capsys.readouterr().err


def test_only_interrupts():
    assert _only_interrupts(KeyboardInterrupt())
    nested = BaseExceptionGroup("g", [KeyboardInterrupt(), BaseExceptionGroup("h", [KeyboardInterrupt()])])
    assert _only_interrupts(nested)
    assert not _only_interrupts(BaseExceptionGroup("g", [KeyboardInterrupt(), ValueError()]))
    assert not _only_interrupts(ValueError())


#### a terminal, Ctrl-C (real processes) ####################################################################

class Terminal:
    """A child process whose stdin and stderr are a pseudo-terminal; stdout stays a pipe."""

    def __init__(self, args: list[str], cwd: Path):
        self.master, slave = pty.openpty()
        self.proc = subprocess.Popen(args, stdin=slave, stdout=subprocess.PIPE, stderr=slave, cwd=cwd)
        os.close(slave)
        self.screen = ""

    def read(self, timeout: float) -> bool:
        """Add what the terminal shows within ``timeout`` to ``screen``; False once the child closed it."""
        ready, _, _ = select.select([self.master], [], [], timeout)
        if not ready:
            return True
        try:
            chunk = os.read(self.master, 4096)
        except OSError:             # EIO: the child exited and closed the terminal
            return False
        self.screen += chunk.decode(errors="replace")
        return bool(chunk)

    def wait_for(self, text: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.screen:
            assert time.monotonic() < deadline, f"{text!r} never shown; the terminal shows:\n{self.screen}"
            assert self.read(0.1), f"{text!r} never shown; the terminal shows:\n{self.screen}"

    def type(self, line: str) -> None:
        os.write(self.master, line.encode() + b"\n")

    def finish(self, timeout: float = 60) -> tuple[int, str]:
        """Wait for the end (reading the terminal meanwhile); the exit code and stdout."""
        deadline = time.monotonic() + timeout
        try:
            while self.read(0.1):
                assert time.monotonic() < deadline, f"the run did not end; the terminal shows:\n{self.screen}"
            out, _ = self.proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
            os.close(self.master)
        return self.proc.returncode, out.decode()


def test_on_a_terminal_a_pause_prompts_and_each_task_shows_progress(tmp_path):
    flow = write(tmp_path, "approve.yaml", PAUSE)
    term = Terminal([sys.executable, "-m", "falconet", "flow", "run", str(flow)], tmp_path)
    term.wait_for("approver (STRING, required) - who approves: ")
    assert "[1/3 tasks, " in term.screen and "] before SUCCESS" in term.screen
    term.type("bob")
    code, out = term.finish()
    assert code == 0, term.screen
    final = json.loads(out)
    assert run_of(final, "after")["outputs"]["value"] == "approved by bob"
    assert "] approval SUCCESS" in term.screen and "[3/3 tasks, " in term.screen and "] after SUCCESS" in term.screen


def test_ctrl_c_kills_the_execution_and_prints_one_line(tmp_path):
    flow = write(tmp_path, "slow.yaml", SLOW)
    proc = subprocess.Popen([sys.executable, "-m", "falconet", "flow", "run", str(flow)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        assert "[started] started" in proc.stderr.readline()      # the run is under way
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130
    assert out == ""
    assert err.splitlines() and err.splitlines()[-1].startswith("falconet: interrupted, execution ")
    assert len(err.splitlines()) == 1 and "Traceback" not in err


#### the start-up banner ####################################################################################

def test_banner_prints_the_address_listened_on_and_kestra_url_apart(tmp_path):
    config = write(tmp_path, "falconet.yaml", "kestra:\n  url: https://falconet.example.com/\n")
    proc = subprocess.Popen([sys.executable, "-m", "falconet", "--config", str(config), "server", "local",
                             "--port", "0", "--data-dir", str(tmp_path / "data")],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path)
    try:
        first = proc.stdout.readline()
        second = proc.stdout.readline()
        url = first.split(" at ", 1)[1].split("/ui/", 1)[0]
        assert url.startswith("http://127.0.0.1:") and not url.endswith(":0")
        import urllib.request

        with urllib.request.urlopen(url + "/api/v1/configs", timeout=10) as response:   # it listens there
            assert response.status == 200
        assert second.strip() == "Execution links use kestra.url https://falconet.example.com"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()


@pytest.mark.parametrize("url, expected", [(None, []), ("http://127.0.0.1:8080", [])])
def test_banner_omits_kestra_url_when_it_is_the_listened_address(url, expected):
    from falconet.cli import banner
    from falconet.runtime.config import load_config

    config = load_config(None, port=8080)
    config.url = url
    lines = banner(["http://127.0.0.1:8080"], config).splitlines()
    assert lines[0] == "Falconet is running at http://127.0.0.1:8080/ui/ (API http://127.0.0.1:8080/api/v1)"
    assert lines[1:] == expected
