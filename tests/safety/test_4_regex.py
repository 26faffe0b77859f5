"""Issue 9 point 4: user regular expressions run on RE2 (linear time), never on a backtracking engine.

``^(a+)+$`` against thirty ``a`` and a ``!`` takes Python's ``re`` minutes; every place a flow, an input,
an expression or a trigger condition supplies a pattern goes through ``falconet.runtime.expr.safe_regex``.
Patterns RE2 cannot run in linear time are refused with a 422 when the flow is validated. Requests go
through hypercorn on a real socket.
"""
from __future__ import annotations

import time

import pytest
import trio

from falconet.runtime.expr import safe_regex
from falconet.runtime.kernel.errors import IllegalArgument
from falconet.sdk.files import glob_match
from falconet.runtime.store.base import ExecutionQuery

from .conftest import call

YAML = {"Content-Type": "application/x-yaml"}
EVIL = "^(a+)+$"
VICTIM = "a" * 30 + "!"




def flow(flow_id: str, body: str) -> str:
    return f"id: {flow_id}\nnamespace: safety.regex\n{body}"


#### The helper #############################################################################################

def test_safe_regex_compiles_and_matches_in_linear_time():
    started = time.perf_counter()
    assert safe_regex.compile(EVIL).fullmatch("a" * 100_000 + "!") is None
    assert safe_regex.compile(EVIL).fullmatch("a" * 100_000) is not None
    assert time.perf_counter() - started < 1
    assert safe_regex.compile(r"(?P<x>\d+)-(?<y>\w+)").fullmatch("12-ab").group("y") == "ab"


@pytest.mark.parametrize("pattern, words", [
    (r"(a)\1", ["Unsupported regular expression `(a)\\1`", "backreferences, lookaround"]),
    ("(?=a)a", ["Unsupported regular expression", "lookaround"]),
    ("(?<!a)b", ["Unsupported regular expression"]),
    ("a++", ["Unsupported regular expression"]),
    ("[a", ["Invalid regular expression `[a`: missing ]"]),
    ("x" * (safe_regex.MAX_PATTERN_CHARS + 1), ["longer than"]),
    ("((a{100}){100}){100}", ["Invalid regular expression"]),
])
def test_safe_regex_errors_say_why(pattern, words):
    with pytest.raises(safe_regex.RegexError) as info:
        safe_regex.compile(pattern)
    assert isinstance(info.value, IllegalArgument)  # the HTTP layer answers 422
    for word in words:
        assert word in str(info.value)


#### Input validators #######################################################################################

VALIDATED = flow("validated", f"""inputs:
  - id: name
    type: STRING
    validator: "{EVIL}"
tasks:
  - id: t
    type: io.kestra.plugin.core.debug.Return
    format: "{{{{ inputs.name }}}}"
""")


async def test_input_validator_runs_in_linear_time(client):
    status, body = await call(client, "POST", "/api/v1/flows", data=VALIDATED, headers=YAML)
    assert status == 200, body
    started = time.perf_counter()
    status, body = await call(client, "POST", "/api/v1/executions/safety.regex/validated", form={"name": VICTIM})
    assert time.perf_counter() - started < 5
    assert status == 422 and f"it must match the pattern `{EVIL}`" in body["message"], body
    status, body = await call(client, "POST", "/api/v1/executions/safety.regex/validated", form={"name": "aaa"})
    assert status == 200, body


@pytest.mark.parametrize("validator", [r"(a)\\1", "(?=a)a"])
async def test_unsupported_validator_is_refused_at_validation(client, validator):
    source = VALIDATED.replace(EVIL, validator).replace("id: validated", "id: unsupported")
    status, body = await call(client, "POST", "/api/v1/flows", data=source, headers=YAML)
    assert status == 422, body
    assert "inputs[0].validator: Invalid regex" in body["message"]
    assert "not supported (patterns run on RE2, a linear-time engine)" in body["message"]


#### Expressions: replace(regexp=true), split, jq test() ####################################################

EXPRESSIONS = flow("expressions", """inputs:
  - id: s
    type: STRING
tasks:
  - id: replaced
    type: io.kestra.plugin.core.debug.Return
    format: "{{ inputs.s | replace({'^(a+)+$': 'matched', '(a+)+!': 'X'}, regexp=true) }}"
  - id: split
    type: io.kestra.plugin.core.debug.Return
    format: "{{ inputs.s | split('(a+)+b') | length }}"
  - id: jq
    type: io.kestra.plugin.core.debug.Return
    format: "{{ {'s': inputs.s} | jq('.s | test(\\"^(a+)+$\\")') | first }}"
""")


async def test_expression_regexes_run_in_linear_time(client):
    status, body = await call(client, "POST", "/api/v1/flows", data=EXPRESSIONS, headers=YAML)
    assert status == 200, body
    started = time.perf_counter()
    status, body = await call(client, "POST", "/api/v1/executions/safety.regex/expressions?wait=true",
                              form={"s": VICTIM})
    assert time.perf_counter() - started < 10
    assert status == 200 and body["state"]["current"] == "SUCCESS", body
    outputs = {tr["taskId"]: tr["outputs"]["value"] for tr in body["taskRunList"]}
    assert outputs == {"replaced": "X", "split": "1", "jq": "false"}


async def test_unsupported_expression_regex_fails_the_task_with_the_reason(client):
    source = flow("backref", """tasks:
  - id: t
    type: io.kestra.plugin.core.debug.Return
    format: "{{ 'aa' | replace({'(a)\\\\1': 'x'}, regexp=true) }}"
""")
    status, body = await call(client, "POST", "/api/v1/flows", data=source, headers=YAML)
    assert status == 200, body
    status, body = await call(client, "POST", "/api/v1/executions/safety.regex/backref?wait=true")
    assert status == 200 and body["state"]["current"] == "FAILED", body
    status, logs = await call(client, "GET", f"/api/v1/logs/{body['id']}")
    assert any("Unsupported regular expression" in entry["message"] for entry in logs), logs


#### Flow trigger preconditions #############################################################################

def listener(pattern: str) -> str:
    return flow("listener", f"""tasks:
  - id: t
    type: io.kestra.plugin.core.debug.Return
    format: "{{{{ trigger.flowId }}}}"
triggers:
  - id: on-upstream
    type: io.kestra.plugin.core.trigger.Flow
    preconditions:
      id: matching
      where:
        - id: by-id
          filters:
            - field: FLOW_ID
              type: REGEX
              value: "{pattern}"
""")


async def test_unsupported_precondition_regex_is_refused(client):
    status, body = await call(client, "POST", "/api/v1/flows", data=listener("(?!x).*"), headers=YAML)
    assert status == 422, body
    assert "preconditions.where[0].filters[0].value: Unsupported regular expression" in body["message"]


async def test_precondition_regex_runs_in_linear_time(engine, autojump_clock):
    await engine.create_flow(listener("^(u+)+$"))
    for flow_id in ("u" * 30 + "-x", "uuu"):
        await engine.create_flow(flow(flow_id, "tasks:\n  - id: t\n    type: io.kestra.plugin.core.log.Log\n"
                                               "    message: hi\n"))
    started = time.perf_counter()
    await engine.execute("safety.regex", "u" * 30 + "-x")
    await engine.execute("safety.regex", "uuu")
    for _ in range(10):
        await trio.sleep(1)  # fake clock: the end-of-execution hooks and the triggered execution run
    assert time.perf_counter() - started < 10
    await engine.store.flush()
    rows, _ = await engine.store.search_executions(ExecutionQuery(namespace="safety.regex", flow_id="listener"))
    assert [r["trigger"]["variables"]["flowId"] for r in rows] == ["uuu"]


#### Globs ##################################################################################################

def test_globs_match_in_linear_time():
    started = time.perf_counter()
    assert not glob_match("*a" * 12 + "b", "a" * 40)   # 76 s with Python's re
    assert glob_match("**/*.{csv,txt}", "out/2024/report.csv")
    assert glob_match("data/[!x]?.json", "data/ab.json") and not glob_match("data/[!x]?.json", "data/xb.json")
    assert time.perf_counter() - started < 1
