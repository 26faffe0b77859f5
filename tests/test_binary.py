"""The one-file server binary (``scripts/build-binary``, PyInstaller): it builds, starts without a Python
next to it and runs a hello-world flow. The build takes minutes, so it is cached in the system temp folder
under a hash of the sources: later runs of the suite reuse it until the code changes."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HELLO = b"""id: hello_world
namespace: company.team
tasks:
  - id: say
    type: io.kestra.plugin.core.log.Log
    message: Hello from the binary
"""


def sources_hash() -> str:
    digest = hashlib.sha256()
    for path in sorted([*ROOT.joinpath("falconet").rglob("*"), ROOT / "pyproject.toml", ROOT / "scripts" / "build-binary"]):
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(str(path.relative_to(ROOT)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


@pytest.fixture(scope="session")
def binary() -> Path:
    pytest.importorskip("PyInstaller", reason="PyInstaller is not installed (pip install -e '.[binary]')")
    if shutil.which("bash") is None:
        pytest.skip("scripts/build-binary needs bash")
    out = Path(tempfile.gettempdir()) / f"falconet-binary-{sources_hash()}"
    exe = out / "falconet"
    if not exe.exists():
        building = Path(tempfile.mkdtemp(prefix="falconet-binary-build-"))
        proc = subprocess.run(["bash", str(ROOT / "scripts" / "build-binary"), str(building)], capture_output=True,
                              text=True, timeout=1200, env=dict(os.environ, PYTHON=sys.executable))
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
        if out.exists():    # another session built it meanwhile
            shutil.rmtree(building)
        else:
            os.replace(building, out)
    return exe


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(url: str, data: bytes | None = None, headers: dict[str, str] | None = None) -> dict:
    req = urllib.request.Request(url, data=data, headers=headers or {}, method="POST" if data is not None else "GET")
    with urllib.request.urlopen(req, timeout=60) as response:
        return json.loads(response.read())


def test_the_binary_serves_and_runs_hello_world(binary, tmp_path):
    port = free_port()
    base = f"http://127.0.0.1:{port}/api/v1"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env["PATH"] = "/usr/bin:/bin"  # no Python of this environment on the way
    server = subprocess.Popen([str(binary), "server", "local", "--port", str(port), "--data-dir", str(tmp_path / "data")],
                              env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                request(f"{base}/configs")
                break
            except OSError:
                assert server.poll() is None, server.stdout.read().decode(errors="replace")
                assert time.monotonic() < deadline, "the binary did not answer within 120 s"
                time.sleep(0.1)
        request(f"{base}/flows", HELLO, {"Content-Type": "application/x-yaml"})
        execution = request(f"{base}/executions/company.team/hello_world?wait=true", b"")
        assert execution["state"]["current"] == "SUCCESS", execution
    finally:
        server.terminate()
        assert server.wait(30) == 0
