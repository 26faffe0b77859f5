"""ForEachItem: internal task runs, counters, split modes, merged outputs, fan-out bound."""
from __future__ import annotations

import threading
from pathlib import Path

import pytest
import trio

from falconet.plugins.core.flowables import foreachitem
from falconet.sdk.plugin import TaskFailed
from falconet.runtime.storage.internal import InternalStorage

from .conftest import executions_of

CHILD = """
id: child
namespace: orch.fei
inputs:
  - id: items
    type: STRING
tasks:
  - id: read
    type: io.kestra.plugin.core.debug.Return
    format: "{{ read(inputs.items) | trim }}"
outputs:
  - id: value
    type: STRING
    value: "{{ outputs.read.value }}"
"""


def parent(batch: str, *, wait: bool = True, extra: str = "", child: str = "child") -> str:
    return f"""
id: parent
namespace: orch.fei
inputs:
  - id: file
    type: FILE
tasks:
  - id: each
    type: io.kestra.plugin.core.flow.ForEachItem
    items: "{{{{ inputs.file }}}}"
    batch:
      {batch}
    namespace: orch.fei
    flowId: {child}
    wait: {str(wait).lower()}
    inputs:
      items: "{{{{ taskrun.items }}}}"
    labels:
      iteration: "{{{{ taskrun.iteration }}}}"
{extra}
"""


def items_file(tmp_path: Path, n: int, name: str = "items.txt") -> Path:
    path = tmp_path / name
    path.write_text("".join(f"line{i}\n" for i in range(1, n + 1)))
    return path


async def run_parent(engine, tmp_path, n: int, batch: str, **kw) -> dict:
    await engine.create_flow(CHILD)
    await engine.create_flow(parent(batch, **kw))
    return await engine.execute("orch.fei", "parent", files={"file": ("items.txt", items_file(tmp_path, n))})


async def test_task_runs_counters_and_merged_outputs(engine, tmp_path):
    ex = await run_parent(engine, tmp_path, 10, "rows: 4")
    assert ex["state"]["current"] == "SUCCESS"
    runs = ex["taskRunList"]
    assert [tr["taskId"] for tr in runs] == ["each", "each_split", "each_items", "each_merge"]
    assert all(tr["parentTaskRunId"] == runs[0]["id"] for tr in runs[1:])
    items = runs[2]
    assert items["outputs"]["numberOfBatches"] == 3
    assert items["outputs"]["iterations"] == {"CREATED": 0, "RUNNING": 0, "SUCCESS": 3}
    assert [a["state"]["current"] for a in items["attempts"]] == ["SUCCESS"]
    merged = engine.storage.read_text(runs[3]["outputs"]["subflowOutputs"]).splitlines()
    assert merged == ['{value:"line1\\nline2\\nline3\\nline4"}', '{value:"line5\\nline6\\nline7\\nline8"}',
                      '{value:"line9\\nline10"}']
    children = await executions_of(engine, "orch.fei", "child")
    assert sorted(dict((lb["key"], lb["value"]) for lb in c["labels"])["iteration"] for c in children) == ["1", "2", "3"]
    for c in children:
        assert c["trigger"]["id"] == "each_items" and c["trigger"]["variables"]["executionId"] == ex["id"]
        assert "/tasks/each-split/" in c["inputs"]["items"]
        assert {"key": "system.correlationId", "value": ex["id"]} in c["labels"]


async def test_no_wait_counts_running_then_success(engine, tmp_path):
    ex = await run_parent(engine, tmp_path, 8, "rows: 2", wait=False)
    items = ex["taskRunList"][2]
    assert items["outputs"]["iterations"] == {"RUNNING": 0, "SUCCESS": 4}
    assert ex["state"]["current"] == "SUCCESS"


async def test_failed_children_fail_the_items_and_skip_the_merge(engine, tmp_path):
    await engine.create_flow("""
id: failing
namespace: orch.fei
inputs:
  - id: items
    type: STRING
tasks:
  - id: fail
    type: io.kestra.plugin.core.execution.Fail
""")
    ex = await run_parent(engine, tmp_path, 5, "rows: 2", child="failing")
    assert ex["state"]["current"] == "FAILED"
    assert [(tr["taskId"], tr["state"]["current"]) for tr in ex["taskRunList"]] == [
        ("each", "FAILED"), ("each_split", "SUCCESS"), ("each_items", "FAILED")]
    assert ex["taskRunList"][2]["outputs"]["iterations"]["FAILED"] == 3


async def test_unknown_subflow_fails_the_items_task_run(engine, tmp_path):
    ex = await run_parent(engine, tmp_path, 3, "rows: 1", child="missing")
    assert ex["state"]["current"] == "FAILED"
    logs = await engine.get_logs(ex["id"])
    assert any("not found" in line["message"].lower() for line in logs)


async def test_fan_out_is_bounded(engine, tmp_path):
    """Never more than ``foreach_max_live`` child executions alive at once."""
    engine.orchestration.foreach_max_live = 3
    await engine.create_flow(CHILD.replace("id: read", "id: nap\n    type: io.kestra.plugin.core.flow.Sleep\n"
                                           "    duration: PT0.05S\n  - id: read"))
    await engine.create_flow(parent("rows: 1"))
    peak = 0

    async def watch(stop: trio.Event) -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, sum(1 for a in engine.actors.values() if a.ex.flow_id == "child"))
            await trio.sleep(0.005)

    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(watch, stop)
        ex = await engine.execute("orch.fei", "parent", files={"file": ("items.txt", items_file(tmp_path, 12))})
        stop.set()
    assert ex["state"]["current"] == "SUCCESS"
    assert ex["taskRunList"][2]["outputs"]["iterations"]["SUCCESS"] == 12
    assert 1 <= peak <= 3


async def test_kill_of_the_parent_kills_live_children(engine, tmp_path):
    await engine.create_flow(CHILD.replace("id: read", "id: nap\n    type: io.kestra.plugin.core.flow.Sleep\n"
                                           "    duration: PT60S\n  - id: read"))
    await engine.create_flow(parent("rows: 1"))
    ex = await engine.execute("orch.fei", "parent", wait=False,
                              files={"file": ("items.txt", items_file(tmp_path, 4))})
    with trio.fail_after(10):
        while len([a for a in engine.actors.values() if a.ex.flow_id == "child"]) < 4:
            await trio.sleep(0.01)
    await engine.kill(ex["id"])
    final = await engine.wait_for_end(ex["id"])
    assert final["state"]["current"] == "KILLED"
    with trio.fail_after(10):
        while any(a.ex.flow_id == "child" for a in engine.actors.values()):
            await trio.sleep(0.01)
    children = await executions_of(engine, "orch.fei", "child")
    assert len(children) == 4 and {c["state"]["current"] for c in children} == {"KILLED"}


#### splitting ################################################################################################

def _split(tmp_path: Path, text: str, batch: dict, name: str = "in.csv") -> list[str]:
    storage = InternalStorage(tmp_path / "storage")
    uri = storage.put_bytes(text.encode(), f"/ns/f/executions/e/inputs/file/{name}")
    listing = foreachitem.split_file(storage, uri, "/ns/f/executions/e/tasks/x/1", foreachitem.batch_plan(batch),
                                     threading.Event())
    uris = storage.read_text(listing).split()
    assert all(u.endswith(Path(name).suffix) for u in uris)
    return [storage.read_text(u) for u in uris]


def test_split_by_rows_bytes_partitions_and_separator(tmp_path):
    text = "a\nbb\r\nccc\nd\n"
    assert _split(tmp_path, text, {"rows": 3}) == ["a\nbb\nccc\n", "d\n"]
    assert _split(tmp_path, text, {"bytes": "4B"}) == ["a\nbb\n", "ccc\n", "d\n"]
    assert _split(tmp_path, text, {"partitions": 3}) == ["a\nd\n", "bb\n", "ccc\n"]
    assert _split(tmp_path, text, {"partitions": 8}) == ["a\n", "bb\n", "ccc\n", "d\n"]  # empty ones dropped
    assert _split(tmp_path, text, {"rows": 2, "separator": ";"}) == ["a;bb;", "ccc;d;"]


def test_partitions_stream_into_storage_without_the_system_temp_dir(tmp_path, monkeypatch):
    """A crash mid-split leaves only hidden partial storage files (removed at start-up), never a folder in
    the system temp dir; an aborted split leaves nothing."""
    import tempfile

    def refused(*args, **kwargs):
        raise AssertionError("the system temp dir was used")

    monkeypatch.setattr(tempfile, "TemporaryDirectory", refused)
    monkeypatch.setattr(tempfile, "mkdtemp", refused)
    assert _split(tmp_path, "a\nb\nc\n", {"partitions": 2}) == ["a\nc\n", "b\n"]
    storage = InternalStorage(tmp_path / "aborted")
    uri = storage.put_bytes(b"a\nb\nc\n", "/ns/f/executions/e/inputs/file/in.csv")
    stop = threading.Event()
    stop.set()
    with pytest.raises(foreachitem.SplitAborted):
        foreachitem.split_file(storage, uri, "/ns/f/executions/e/tasks/x/1", foreachitem.batch_plan({"partitions": 2}),
                               stop)
    assert [p.name for p in (tmp_path / "aborted").rglob("*") if p.is_file()] == ["in.csv"]


def test_batch_precedence_is_bytes_then_partitions_then_rows(tmp_path):
    """Kestra's StorageService.split (and storage.Split) check bytes, then partitions, then rows."""
    text = "a\nbb\nccc\nd\n"
    by_bytes, by_partitions = ["a\nbb\n", "ccc\n", "d\n"], ["a\nccc\n", "bb\nd\n"]
    assert _split(tmp_path, text, {"rows": 3, "bytes": "4B", "partitions": 2}) == by_bytes
    assert _split(tmp_path, text, {"bytes": "4B", "partitions": 2}) == by_bytes
    assert _split(tmp_path, text, {"rows": 3, "partitions": 2}) == by_partitions
    assert _split(tmp_path, text, {"rows": 3, "bytes": "4B"}) == by_bytes
    assert foreachitem.batch_plan({"rows": 3, "bytes": "4B", "partitions": 2})[0] == "bytes"


@pytest.mark.parametrize("batch", [{"rows": 0}, {"rows": "x"}, {"bytes": "lots"}, {"partitions": -1}, "rows"])
def test_bad_batch_is_a_clear_task_failure(batch):
    with pytest.raises(TaskFailed):
        foreachitem.batch_plan(batch)


def test_parse_size():
    assert foreachitem.parse_size("10MB") == 10 * 1024 * 1024
    assert foreachitem.parse_size("512") == 512
    assert foreachitem.parse_size("1.5KB") == 1536
