"""The real ``kestra`` PyPI client (2.0.0) against a live server: ``Flow().execute(...)`` with STRING,
INT, BOOLEAN and FILE inputs, in a subprocess of its own venv (cached across runs, see tests/venvs.py), from
a cwd without an ``exceptions.py`` (the client imports a top-level ``exceptions`` module). Skipped with the
reason when the venv is not built yet and PyPI cannot be reached."""
from __future__ import annotations

import json
import os
import textwrap

import trio


YAML = {"Content-Type": "application/x-yaml"}

FLOW = """id: client
namespace: company.team
inputs:
  - id: name
    type: STRING
  - id: n
    type: INT
  - id: ok
    type: BOOLEAN
  - id: myfile
    type: FILE
tasks:
  - id: echo
    type: io.kestra.plugin.core.debug.Return
    format: "{{ inputs.name }} {{ inputs.n + 1 }} {{ inputs.ok }} {{ read(inputs.myfile) | trim }}"
  - id: log
    type: io.kestra.plugin.core.log.Log
    message: "client says {{ outputs.echo.value }}"
"""

CLIENT = textwrap.dedent("""
    import json, sys
    from kestra import Flow

    flow = Flow(wait_for_completion=True, poll_interval=0.2)
    with open("data.csv", "rb") as fh:  # README style: part "files", filename = the input id
        legacy = flow.execute("company.team", "client",
                              {"name": "World", "n": 3, "ok": True, "files": ("myfile", fh, "text/csv")})
    with open("data.csv", "rb") as fh:  # part named after the input, real filename
        modern = flow.execute("company.team", "client",
                              {"name": "Again", "n": 41, "ok": False, "myfile": ("data.csv", fh, "text/csv")})
    out = []
    for result in (legacy, modern):
        doc = flow.check_status(result.execution_id).json()
        echo = [t for t in doc["taskRunList"] if t["taskId"] == "echo"][0]
        out.append({"id": result.execution_id, "status": result.status, "log": result.log,
                    "echo": echo["outputs"]["value"], "inputs": doc["inputs"]})
    print(json.dumps(out))
""")


async def test_kestra_client_executes_a_flow(server, api, tmp_path, kestra_python):
    await api.flow(FLOW)
    work = tmp_path / "client-cwd"
    work.mkdir()
    (work / "data.csv").write_text("a,b\n1,2\n")
    (work / "run.py").write_text(CLIENT)
    assert not (work / "exceptions.py").exists()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KESTRA_", "PYTHONPATH"))}
    env["KESTRA_HOSTNAME"] = server
    with trio.fail_after(120):
        done = await trio.run_process([kestra_python, "run.py"], cwd=work, env=env, capture_stdout=True,
                                      capture_stderr=True, check=False)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    legacy, modern = json.loads(done.stdout.decode().strip().splitlines()[-1])
    assert legacy["status"] == "SUCCESS" and modern["status"] == "SUCCESS"
    assert legacy["echo"] == "World 4 true a,b\n1,2"
    assert modern["echo"] == "Again 42 false a,b\n1,2"
    assert legacy["inputs"]["n"] == 3 and legacy["inputs"]["ok"] is True
    assert modern["inputs"]["myfile"].startswith("kestra:///company/team/client/executions/")
    assert "client says World 4 true" in legacy["log"]
