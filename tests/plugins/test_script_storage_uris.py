"""Script tasks download the ``kestra://`` files their commands and scripts name (Kestra's
``ScriptService.replaceInternalStorage``), including inside a ForEachItem child."""
from __future__ import annotations

from falconet.runtime.store.base import ExecutionQuery

from .e2e import engine_at, messages

FLOWS = """
id: child
namespace: company.uris
inputs:
  - id: f
    type: FILE
tasks:
  - id: cat
    type: io.kestra.plugin.scripts.shell.Commands
    commands:
      - cat "{{ inputs.f }}"
---
id: parent
namespace: company.uris
inputs:
  - id: f
    type: FILE
tasks:
  - id: commands
    type: io.kestra.plugin.scripts.shell.Commands
    beforeCommands:
      - test -f "{{ inputs.f }}" && echo "before ok"
    commands:
      - cat "{{ inputs.f }}"
      - cat {{ inputs.f }} {{ inputs.f }} | wc -l | tr -d ' '
      - case "{{ inputs.f }}" in "$WORKING_DIR"/*) echo "in working dir";; esac
  - id: shell
    type: io.kestra.plugin.scripts.shell.Script
    script: |
      head -n 1 "{{ inputs.f }}"
  - id: python
    type: io.kestra.plugin.scripts.python.Script
    script: |
      print(open("{{ inputs.f }}").read().splitlines()[-1])
  - id: each
    type: io.kestra.plugin.core.flow.ForEachItem
    items: "{{ inputs.f }}"
    batch:
      rows: 2
    namespace: company.uris
    flowId: child
    inputs:
      f: "{{ taskrun.items }}"
"""


async def test_scripts_download_the_storage_files_they_name(tmp_path):
    items = tmp_path / "items.txt"
    items.write_text("a\nb\nc\n")
    async with engine_at(tmp_path) as engine:
        for source in FLOWS.split("---"):
            await engine.create_flow(source)
        ex = await engine.execute("company.uris", "parent", files={"f": ("items.txt", items)})
        assert ex["state"]["current"] == "SUCCESS", await messages(engine, ex)
        assert await messages(engine, ex, "commands") == [
            ("INFO", "before ok"), ("INFO", "a"), ("INFO", "b"), ("INFO", "c"), ("INFO", "6"),
            ("INFO", "in working dir")]
        assert await messages(engine, ex, "shell") == [("INFO", "a")]
        assert await messages(engine, ex, "python") == [("INFO", "c")]
        await engine.store.flush()
        rows, total = await engine.store.search_executions(
            ExecutionQuery(namespace="company.uris", flow_id="child", page=1, size=10))
        assert total == 2 and {row["state"]["current"] for row in rows} == {"SUCCESS"}
        batches = sorted([[m for _, m in await messages(engine, row, "cat")] for row in rows])
        assert batches == [["a", "b"], ["c"]]


async def test_a_uri_outside_the_storage_or_missing_fails_the_task(tmp_path):
    async with engine_at(tmp_path) as engine:
        await engine.create_flow("""
id: bad
namespace: company.uris
tasks:
  - id: traversal
    type: io.kestra.plugin.scripts.shell.Commands
    allowFailure: true
    commands:
      - cat kestra:///../../../etc/passwd
  - id: missing
    type: io.kestra.plugin.scripts.shell.Commands
    allowFailure: true
    commands:
      - cat kestra:///company/uris/nope.txt
""")
        ex = await engine.execute("company.uris", "bad")
        for task in ("traversal", "missing"):
            logs = await messages(engine, ex, task)
            assert len(logs) == 1 and logs[0][0] == "ERROR" and logs[0][1].startswith("Unable to read the file")
        assert not any("root:" in m for _, m in await messages(engine, ex))
