"""Core runnable tasks in flows, through the engine."""
from __future__ import annotations

import re

from .e2e import engine_at, messages, states, task_runs


async def test_log_return_output_values_flow(tmp_path):
    async with engine_at(tmp_path) as engine:
        await engine.create_flow("""
id: core
namespace: company.team
inputs:
  - id: name
    type: STRING
    defaults: world
tasks:
  - id: log
    type: io.kestra.plugin.core.log.Log
    message:
      - "hello {{ inputs.name }}"
      - second
    level: WARN
  - id: ret
    type: io.kestra.core.tasks.debugs.Return
    format: "{{ inputs.name | upper }}"
  - id: out
    type: io.kestra.plugin.core.output.OutputValues
    values:
      n: "{{ 20 + 22 }}"
      s: "v={{ outputs.ret.value }}"
""")
        ex = await engine.execute("company.team", "core")
        assert ex["state"]["current"] == "SUCCESS"
        runs = task_runs(ex)
        assert runs["ret"]["outputs"] == {"value": "WORLD"}
        assert runs["out"]["outputs"] == {"values": {"n": "42", "s": "v=WORLD"}}   # strings, as Kestra 0.21
        assert ("WARN", "hello world") in await messages(engine, ex, "log")


async def test_fail_and_assert_flows(tmp_path):
    async with engine_at(tmp_path) as engine:
        await engine.create_flow("""
id: fail
namespace: company.team
tasks:
  - id: ok
    type: io.kestra.plugin.core.execution.Fail
    condition: "{{ 1 > 2 }}"
  - id: check
    type: io.kestra.plugin.core.execution.Assert
    conditions:
      - "{{ 1 == 1 }}"
      - "{{ 1 + 1 == 3 }}"
  - id: never
    type: io.kestra.plugin.core.log.Log
    message: unreachable
""")
        ex = await engine.execute("company.team", "fail")
        assert ex["state"]["current"] == "FAILED"
        assert states(ex) == {"ok": "SUCCESS", "check": "FAILED"}
        logs = await messages(engine, ex, "check")
        assert ("ERROR", "Assertion `{{ 1 + 1 == 3 }}` failed!") in logs
        assert any(level == "ERROR" and "1 assertion failed!" in m for level, m in logs)


async def test_kv_flow(tmp_path):
    async with engine_at(tmp_path) as engine:
        await engine.create_flow("""
id: kv
namespace: company.team
tasks:
  - id: set
    type: io.kestra.plugin.core.kv.Set
    key: counter
    value: "{{ 40 + 2 }}"
    kvType: NUMBER
  - id: get
    type: io.kestra.plugin.core.kv.Get
    key: counter
  - id: keys
    type: io.kestra.plugin.core.kv.GetKeys
  - id: delete
    type: io.kestra.plugin.core.kv.Delete
    key: counter
  - id: missing
    type: io.kestra.plugin.core.kv.Get
    key: counter
""")
        ex = await engine.execute("company.team", "kv")
        assert ex["state"]["current"] == "SUCCESS"
        runs = task_runs(ex)
        assert runs["get"]["outputs"] == {"value": 42}
        assert runs["keys"]["outputs"] == {"keys": ["counter"]}
        assert runs["delete"]["outputs"] == {"deleted": True}
        assert runs["missing"]["outputs"] == {"value": None}


async def test_log_fetch_flow(tmp_path):
    async with engine_at(tmp_path) as engine:
        await engine.create_flow("""
id: get-log-task
namespace: io.kestra.tests
tasks:
  - type: io.kestra.plugin.core.debug.Echo
    id: task-1
    format: task 1
  - type: io.kestra.plugin.core.debug.Echo
    id: task-2
    format: task 2
  - type: io.kestra.plugin.core.log.Fetch
    id: get-log-task
    tasksId:
      - task-1
  - type: io.kestra.plugin.core.log.Fetch
    id: get-log-all
  - id: read
    type: io.kestra.plugin.core.debug.Return
    format: "{{ read(outputs['get-log-task'].uri) }}"
""")
        ex = await engine.execute("io.kestra.tests", "get-log-task")
        assert ex["state"]["current"] == "SUCCESS"
        runs = task_runs(ex)
        assert runs["get-log-task"]["outputs"]["size"] == 1
        assert runs["get-log-all"]["outputs"]["size"] == 2
        content = runs["read"]["outputs"]["value"]
        assert 'message:"task 1"' in content and "taskId:\"task-1\"" in content
        assert re.search(r"timestamp:\d{4}-\d\d-\d\dT[0-9:.]+Z", content)      # an Ion timestamp, not a string
