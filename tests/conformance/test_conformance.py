"""Runs the conformance harness (optional: see conftest.py) against a real `falconet server local` process.

The cases listed in ``passing.txt`` must keep passing (the regression guard of the conformance score);
``.ci/run`` runs the whole ``cases.yaml`` as its own step (``.ci/conformance.py``).
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

PASSING = Path(__file__).with_name("passing.txt")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tmp_path):
    port = _free_port()
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "falconet", "server", "local", "--port", str(port), "--data-dir", str(tmp_path / "data")],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=tmp_path)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(url + "/api/v1/configs", timeout=1) as r:
                if r.status == 200:
                    break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                out = proc.stdout.read().decode() if proc.stdout else ""
                proc.kill()
                pytest.fail(f"server did not start:\n{out}")
            time.sleep(0.1)
    yield url
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


def test_conformance_cases_keep_passing(server, tmp_path, conformance_suite):
    expected = [line.strip() for line in PASSING.read_text().splitlines() if line.strip() and not line.startswith("#")]
    assert expected, "passing.txt lists no case"
    report = tmp_path / "report.json"
    cmd = [sys.executable, str(conformance_suite / "run.py"), "--url", server, "--json", str(report),
           "--timeout", "30", str(conformance_suite / "cases.yaml")]
    for name in expected:
        cmd += ["--only", name]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=540)
    results = json.loads(report.read_text())
    failed = [f"{r['name']}: {r['reason']}" for r in results if r["status"] != "PASS"]
    print(proc.stdout[-3000:])
    assert not failed, "conformance regressions:\n" + "\n".join(failed)
    assert len(results) == len(expected)
