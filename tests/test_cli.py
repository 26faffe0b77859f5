"""The `falconet` command line: flow validate, flow run, configuration errors."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from falconet.cli import main

GOOD = """id: hello
namespace: company.team
inputs:
  - id: name
    type: STRING
tasks:
  - id: say
    type: io.kestra.plugin.core.log.Log
    message: "hello {{ inputs.name }}"
"""

BAD = """id: broken
namespace: company.team
tasks:
  - id: t
    type: io.kestra.plugin.core.log.Nope
"""


def test_validate_reports_file_and_line(tmp_path, capsys):
    (tmp_path / "good.yaml").write_text(GOOD)
    (tmp_path / "bad.yaml").write_text(BAD)
    assert main(["flow", "validate", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert f"{tmp_path / 'bad.yaml'}:5:" in out and "Nope" in out
    assert "good.yaml: OK (company.team.hello)" in out
    assert main(["flow", "validate", str(tmp_path / "good.yaml")]) == 0


def test_validate_missing_path(capsys):
    assert main(["flow", "validate", "/nonexistent/flow.yaml"]) == 2
    assert "no such file" in capsys.readouterr().err


def test_flow_run_streams_logs_and_exits_by_state(tmp_path):
    flow = tmp_path / "hello.yaml"
    flow.write_text(GOOD)
    proc = subprocess.run([sys.executable, "-m", "falconet", "flow", "run", str(flow), "--input", "name=cli"],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "INFO  [say] hello cli" in proc.stderr
    final = json.loads(proc.stdout)                 # the execution JSON alone: pipeable to jq
    assert final["state"]["current"] == "SUCCESS"
    failing = tmp_path / "fail.yaml"
    failing.write_text("id: f\nnamespace: t\ntasks:\n  - id: x\n    type: io.kestra.plugin.core.execution.Fail\n")
    proc = subprocess.run([sys.executable, "-m", "falconet", "flow", "run", str(failing)],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert proc.returncode == 1


def test_unknown_config_key_is_a_clear_error(tmp_path, capsys):
    cfg = tmp_path / "falconet.yaml"
    cfg.write_text("kestra:\n  url: http://x\n  nope: 1\n")
    assert main(["--config", str(cfg), "flow", "run", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert f"{cfg}:3" in err and "kestra.nope" in err


@pytest.mark.parametrize("text,needle", [("kestra: [1, 2\n", "invalid YAML"),
                                         ("kestra:\n  server:\n    basic-auth:\n      enabled: maybe\n",
                                          "true or false")])
def test_malformed_config(tmp_path, capsys, text, needle):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(text)
    flow = tmp_path / "f.yaml"
    flow.write_text(GOOD)
    assert main(["--config", str(cfg), "flow", "run", str(flow)]) == 2
    assert needle in capsys.readouterr().err


def test_server_starts_and_stops_cleanly_on_sigterm(tmp_path):
    import signal
    import socket
    import time
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "falconet", "server", "local", "--port", str(port),
                             "--data-dir", str(tmp_path / "data")], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/configs", timeout=1) as r:
                    assert r.status == 200
                    break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, "the server did not start"
                time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0
    assert f"Falconet is running at http://127.0.0.1:{port}/ui/" in out
    assert "stopping (SIGTERM)" in out and "Traceback" not in out
    assert (tmp_path / "data" / "falconet.db").exists()


@pytest.mark.parametrize("extra, needle", [
    ([], "server standalone needs a PostgreSQL store"),
    (["--store", "mysql://h/db"], "server standalone needs a PostgreSQL store"),
    (["--store", "postgresql://ann:s3cret@127.0.0.1:1/db"], "cannot connect to postgresql://ann:***@127.0.0.1:1/db"),
])
def test_standalone_store_errors_are_one_line_and_exit_2(tmp_path, extra, needle):
    pytest.importorskip("psycopg", reason="the PostgreSQL store needs psycopg (extra 'postgres')")
    proc = subprocess.run([sys.executable, "-m", "falconet", "server", "standalone", "--port", "0",
                           "--data-dir", str(tmp_path / "data"), *extra], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], proc.stderr
    assert "s3cret" not in proc.stderr and "Traceback" not in proc.stderr


def test_standalone_serves_on_postgresql_with_a_storage_folder(tmp_path, pg_server):
    import signal
    import socket
    import time
    import urllib.request

    db = pg_server.create_database("cli_standalone")
    url = f"postgresql://{pg_server.user}:{pg_server.password}@{pg_server.host}:{pg_server.port}/{db}"
    (tmp_path / "hello.yaml").write_text(GOOD)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "falconet", "server", "standalone", "--port", str(port),
                             "--store", url, "--storage-dir", str(tmp_path / "shared"), "--data-dir",
                             str(tmp_path / "node"), "--flows", str(tmp_path / "hello.yaml")],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                req = urllib.request.Request(
                    f"http://127.0.0.1:{port}/api/v1/executions/company.team/hello?wait=true",
                    data=b"--b\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nann\r\n--b--\r\n",
                    headers={"Content-Type": "multipart/form-data; boundary=b"}, method="POST")
                with urllib.request.urlopen(req, timeout=10) as r:
                    execution = json.load(r)
                    break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, "the server did not start"
                time.sleep(0.1)
        assert execution["state"]["current"] == "SUCCESS"
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out
    assert not (tmp_path / "node" / "falconet.db").exists()  # the store is the database
    with pg_server.connect(db) as conn:
        state = conn.execute("SELECT state FROM executions WHERE id = %s", (execution["id"],)).fetchone()[0]
    assert state == "SUCCESS"
    assert (tmp_path / "shared").is_dir()
