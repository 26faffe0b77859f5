"""Issue 9 point 3: YAML cannot explode.

Alias expansion and nesting are bounded while a document is composed (runtime/limits.py), every refusal is
a 422 naming the line, long sources are parsed on a worker thread (``/ping`` answers meanwhile), and a
hostile flow already stored neither stalls start-up nor hides the other flows. Requests go through
hypercorn on a real socket.
"""
from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
import trio

from falconet.cli import main
from falconet.http.app import create_app
from falconet.http.serve import serve
from falconet.runtime.kernel.startup import open_engine
from falconet.runtime.kernel.flowrepo import PARSE_IN_THREAD
from falconet.runtime.flow.parse.yamlload import YamlError, load_documents
from falconet.runtime.kernel.limits import MAX_ALIAS_NODES, MAX_DEPTH
from falconet.runtime.store.base import FlowRecord
from falconet.runtime.kernel.execution import now

from .conftest import call, served

YAML = {"Content-Type": "application/x-yaml"}

FLOW_HEAD = """id: {id}
namespace: safety.yaml
tasks:
  - id: t
    type: io.kestra.plugin.core.debug.Return
    format: hello
variables:
"""


def laughs(levels: int = 7, width: int = 9) -> str:
    """The "billion laughs" mapping: ``width ** levels`` strings from a few hundred bytes."""
    names = "abcdefghij"
    out = f"  a: &a [{', '.join(['lol'] * width)}]\n"
    for prev, name in zip(names, names[1:levels + 1]):
        out += f"  {name}: &{name} [{', '.join([f'*{prev}'] * width)}]\n"
    return out


BOMB = FLOW_HEAD.format(id="bomb") + laughs()
BOMB_LINE = BOMB.splitlines().index(next(line for line in BOMB.splitlines() if "&f" in line)) + 1




#### Alias expansion ########################################################################################

async def test_billion_laughs_is_refused_with_422_naming_the_line(client):
    assert len(BOMB) < 700
    with trio.fail_after(10):
        status, body = await call(client, "POST", "/api/v1/flows", data=BOMB, headers=YAML)
    assert status == 422, body
    assert f"aliases expand to more than {MAX_ALIAS_NODES} nodes (line {BOMB_LINE})" in body["message"]
    status, body = await call(client, "POST", "/api/v1/flows/validate", data=BOMB, headers=YAML)
    assert status == 200 and "aliases expand" in body[0]["constraints"]
    status, body = await call(client, "POST", "/api/v1/flows/safety.yaml", data=BOMB, headers=YAML)
    assert status == 422 and "aliases expand" in body["message"]
    status, _ = await call(client, "GET", "/api/v1/flows/safety.yaml/bomb")
    assert status == 404


async def test_small_aliases_still_expand(client):
    source = FLOW_HEAD.format(id="anchors") + laughs(levels=2, width=3)
    status, body = await call(client, "POST", "/api/v1/flows", data=source, headers=YAML)
    assert status == 200, body
    assert body["variables"]["c"] == [[["lol"] * 3] * 3] * 3


async def test_recursive_alias_is_refused(client):
    source = FLOW_HEAD.format(id="loop") + "  a: &a [1, *a]\n"
    status, body = await call(client, "POST", "/api/v1/flows", data=source, headers=YAML)
    assert status == 422, body
    assert "found recursive alias *a" in body["message"] and "(line 8)" in body["message"]


#### Nesting ################################################################################################

@pytest.mark.parametrize("nested", [
    "  deep: " + "[" * 1200 + "]" * 1200 + "\n",                               # flow style
    "  deep:\n" + "".join("  " * (i + 2) + "-\n" for i in range(1200)) + "  " * 1202 + "x\n",  # block style
])
async def test_deep_nesting_is_refused(client, nested):
    source = FLOW_HEAD.format(id="deep") + nested
    status, body = await call(client, "POST", "/api/v1/flows", data=source, headers=YAML)
    assert status == 422, body
    assert f"nested deeper than {MAX_DEPTH} levels" in body["message"]


def test_deep_flow_nesting_costs_linear_time():
    """PyYAML's scanner re-checks every open bracket at each token (quadratic within its 1,024-character
    lookahead: ~0.5 s for 2 KB of `[`); the bound stops it at the 101st bracket."""
    started = time.perf_counter()
    for _ in range(5):
        with pytest.raises(YamlError, match=f"nested deeper than {MAX_DEPTH} levels"):
            load_documents("x: " + "[" * 4000 + "]" * 4000)
    assert time.perf_counter() - started < 0.5


async def test_nesting_through_aliases_is_counted(client):
    half = "[" * 60 + "]" * 60
    source = FLOW_HEAD.format(id="deep") + f"  a: &a {half}\n  b: &b [{half.replace('[]', '[*a]', 1)}]\n"
    status, body = await call(client, "POST", "/api/v1/flows", data=source, headers=YAML)
    assert status == 422, body
    assert f"nested deeper than {MAX_DEPTH} levels (through *a)" in body["message"]


async def test_nesting_at_the_limit_is_accepted(client):
    inner = "[" * (MAX_DEPTH - 2) + "]" * (MAX_DEPTH - 2)  # the flow mapping and `variables` are two levels
    source = FLOW_HEAD.format(id="limit") + f"  ok: {inner}\n"
    status, body = await call(client, "POST", "/api/v1/flows", data=source, headers=YAML)
    assert status == 200, body


async def test_json_flow_body_nested_100000_deep(client):
    status, body = await call(client, "POST", "/api/v1/flows", data="[" * 100_000 + "]" * 100_000,
                              headers={"Content-Type": "application/json"})
    assert status == 422 and "nested deeper than" in body["message"]


#### YAML values: inputs and the yaml() function ############################################################

async def test_yaml_input_and_yaml_function_are_bounded(client):
    flow = """id: values
namespace: safety.yaml
inputs:
  - id: doc
    type: YAML
    required: false
  - id: text
    type: STRING
    required: false
tasks:
  - id: parse
    type: io.kestra.plugin.core.debug.Return
    format: "{{ yaml(inputs.text) | length }}"
"""
    status, body = await call(client, "POST", "/api/v1/flows", data=flow, headers=YAML)
    assert status == 200, body
    bomb = laughs().replace("\n  ", "\n")[2:]
    status, body = await call(client, "POST", "/api/v1/executions/safety.yaml/values", form={"doc": bomb})
    assert status == 422, body
    assert "aliases expand to more than" in body["message"]
    status, body = await call(client, "POST", "/api/v1/executions/safety.yaml/values?wait=true",
                              form={"text": bomb})
    assert status == 200 and body["state"]["current"] == "FAILED", body
    status, logs = await call(client, "GET", f"/api/v1/logs/{body['id']}")
    assert any("aliases expand to more than" in entry["message"] for entry in logs), logs


#### The command line #######################################################################################

def test_cli_validate_names_file_and_line(tmp_path, capsys):
    path = tmp_path / "bomb.yaml"
    path.write_text(BOMB)
    assert main(["flow", "validate", str(path)]) == 1
    out = capsys.readouterr().out
    assert f"{path}:{BOMB_LINE}: Invalid YAML: aliases expand to more than {MAX_ALIAS_NODES} nodes" in out


#### Off the trio thread ####################################################################################

def big_flow(rows: int) -> str:
    return FLOW_HEAD.format(id="big") + "  rows:\n" + "".join(f"    - {{key: k{i}, value: row number {i}}}\n"
                                                               for i in range(rows))


def long_expression_flow(terms: int) -> str:
    """A flow under PARSE_IN_THREAD characters whose one template takes about a second to compile (flow
    validation compiles every template)."""
    return FLOW_HEAD.format(id="big").replace("format: hello", "format: \"{{ 1" + " + 1" * terms + " }}\"")


@pytest.mark.parametrize("source", [big_flow(6000), long_expression_flow(1900)], ids=["270KB-yaml", "8KB-template"])
async def test_ping_answers_while_a_big_flow_is_parsed(engine, source):
    """Parsing takes about a second either way; a real client's /ping is answered meanwhile."""
    assert len(source) > 250_000 or len(source) < PARSE_IN_THREAD
    app = create_app(engine, config=engine.config)
    done: dict[str, Any] = {}
    async with trio.open_nursery() as nursery:
        base = (await nursery.start(serve, app, "127.0.0.1", 0))[0]
        async with httpx.AsyncClient(base_url=base, timeout=120) as http:
            async def post() -> None:
                done["post"] = await http.post("/api/v1/flows", content=source, headers=YAML)

            async with trio.open_nursery() as requests:
                requests.start_soon(post)
                with trio.fail_after(60):
                    # until the source reaches the parser's thread (or, parsed inline, the POST is over)
                    while engine.flows.parse_limiter.borrowed_tokens == 0 and "post" not in done:
                        await trio.sleep(0.005)
                ping = await http.get("/ping")
                assert ping.status_code == 200
                assert engine.flows.parse_limiter.borrowed_tokens == 1 and "post" not in done  # still parsing
        assert done["post"].status_code == 200, done["post"].text
        nursery.cancel_scope.cancel()


#### A hostile flow already stored ##########################################################################

SCHEDULED = """id: scheduled
namespace: safety.yaml
triggers:
  - id: daily
    type: io.kestra.plugin.core.trigger.Schedule
    cron: "0 9 * * *"
tasks:
  - id: t
    type: io.kestra.plugin.core.debug.Return
    format: hello
"""


async def test_stored_bomb_neither_stalls_start_up_nor_hides_other_flows(tmp_path):
    """Flows are parsed again at start-up (scheduler, searches): a bomb stored by an older version is
    refused in milliseconds, reported on its own routes and skipped everywhere else."""
    async with open_engine(data_dir=tmp_path, store="sqlite") as eng:
        await eng.create_flow(SCHEDULED)
        await eng.store.save_flow(FlowRecord("safety.yaml", "bomb", 1, BOMB, deleted=False, updated=now()))
    with trio.fail_after(30):
        async with open_engine(data_dir=tmp_path, store="sqlite") as eng, trio.open_nursery() as nursery, \
                served(eng, nursery) as client:
            assert (await call(client, "GET", "/ping"))[0] == 200
            status, body = await call(client, "GET", "/api/v1/flows/safety.yaml/bomb")
            assert status == 422 and "aliases expand to more than" in body["message"]
            status, body = await call(client, "GET", "/api/v1/flows/search?namespace=safety.yaml")
            assert status == 200 and [f["id"] for f in body["results"]] == ["scheduled"]
            triggers = await eng.orchestration.scheduler.schedulable()
            assert [(flow.id, spec.id) for flow, spec in triggers] == [("scheduled", "daily")]
            fixed = BOMB.replace(laughs(), "  x: 1\n")
            status, body = await call(client, "PUT", "/api/v1/flows/safety.yaml/bomb", data=fixed, headers=YAML)
            assert status == 200 and body["revision"] == 2, body
            nursery.cancel_scope.cancel()
