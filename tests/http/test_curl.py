"""The curl commands users copy from Kestra's docs, run verbatim (only ``localhost:8080`` is replaced by
the test server's address) through a shell against a live server."""
from __future__ import annotations

import json
import shutil

import pytest
import trio


pytestmark = pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")

HELLO = """id: hello
namespace: company.team
inputs:
  - id: name
    type: STRING
    defaults: World
  - id: myfile
    type: FILE
    required: false
tasks:
  - id: say
    type: io.kestra.plugin.core.log.Log
    message: "Hello {{ inputs.name }} {{ inputs.myfile is defined and inputs.myfile != null }}"
triggers:
  - id: hook
    type: io.kestra.plugin.core.trigger.Webhook
    key: my-key
"""

COMMANDS = [
    # create the flow from a YAML file
    """curl -s -X POST http://localhost:8080/api/v1/flows -H "Content-Type:application/x-yaml" --data-binary @hello.yml""",
    # execute with a text input and a FILE input (Kestra 0.21 form: part "files", filename = input id)
    """curl -s -X POST http://localhost:8080/api/v1/executions/company.team/hello -F name=Falconet -F "files=@./data.csv;filename=myfile\"""",  # noqa: E501
    # execute and wait for the end, with labels
    """curl -s -X POST 'http://localhost:8080/api/v1/executions/company.team/hello?wait=true&labels=team:data'""",
    # the tenant form, with the newer FILE form (part named after the input)
    """curl -s -X POST http://localhost:8080/api/v1/main/executions/company.team/hello -F myfile=@data.csv""",
    # a webhook
    """curl -s -X POST http://localhost:8080/api/v1/executions/webhook/company.team/hello/my-key -H 'Content-Type: application/json' -d '{"user": "x"}'""",  # noqa: E501
]


async def sh(command: str, cwd, base: str) -> bytes:
    command = command.replace("http://localhost:8080", base)
    with trio.fail_after(60):
        done = await trio.run_process(["sh", "-c", command], cwd=cwd, capture_stdout=True, capture_stderr=True,
                                      check=False)
    assert done.returncode == 0, (command, done.stderr)
    return done.stdout


async def test_documented_curl_commands(server, engine, tmp_path):
    (tmp_path / "hello.yml").write_text(HELLO)
    (tmp_path / "data.csv").write_text("a,b\n1,2\n")
    outputs = [json.loads(await sh(c, tmp_path, server)) for c in COMMANDS]
    flow, created, waited, tenant, hook = outputs
    assert flow["id"] == "hello" and flow["revision"] == 1
    assert created["state"]["current"] == "CREATED" and created["inputs"]["name"] == "Falconet"
    assert created["inputs"]["myfile"].startswith("kestra:///company/team/hello/executions/")
    assert waited["state"]["current"] == "SUCCESS" and {"key": "team", "value": "data"} in waited["labels"]
    assert tenant["inputs"]["myfile"].endswith(".csv") or "myfile" in tenant["inputs"]["myfile"]
    assert hook["trigger"]["variables"]["body"] == {"user": "x"}

    final = await engine.wait_for_end(created["id"])
    execution = json.loads(await sh(f"curl -s http://localhost:8080/api/v1/executions/{created['id']}", tmp_path, server))
    assert execution["state"]["current"] == final["state"]["current"] == "SUCCESS"
    log = (await sh(f"curl -s http://localhost:8080/api/v1/logs/{created['id']}/download", tmp_path, server)).decode()
    assert log.rstrip().endswith("INFO Hello Falconet true")
    uri = final["inputs"]["myfile"]
    data = await sh(f"curl -s -G http://localhost:8080/api/v1/executions/{created['id']}/file --data-urlencode 'path={uri}'",
                    tmp_path, server)
    assert data == b"a,b\n1,2\n"
    follow = (await sh(f"curl -s -N http://localhost:8080/api/v1/executions/{created['id']}/follow", tmp_path, server)).decode()
    assert follow.startswith("id: end\ndata: {")
    status = await sh("curl -s -o /dev/null -w '%{http_code}' http://localhost:8080/api/v1/executions/nope", tmp_path, server)
    assert status == b"404"
