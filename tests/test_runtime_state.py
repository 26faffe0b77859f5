"""The engine's typed runtime state of executions and task runs (``TaskRunRuntime``, ``ExecutionRuntime``):
stored with the document under ``_extra`` in the camelCase form earlier versions wrote, so a data folder of
an earlier version loads and resumes; stripped from what the API shows in one place (``without_private``)."""
from __future__ import annotations

import copy
from datetime import datetime, timezone

import trio

from falconet import open_engine
from falconet.runtime.kernel.execution import Execution, TaskRun, without_private
from falconet.runtime.kernel.state import State

NS = "tests.runtime"
UTC = timezone.utc


def task_run_doc(task_id: str, state: str, extra: dict | None = None, **fields) -> dict:
    doc = {"id": f"tr-{task_id}", "executionId": "ex-old", "namespace": NS, "flowId": "old", "taskId": task_id,
           "outputs": None,
           "state": {"current": state, "histories": [{"state": "CREATED", "date": "2024-01-02T03:04:05.000Z"},
                                                     {"state": state, "date": "2024-01-02T03:04:06.000Z"}],
                     "duration": "PT1S", "startDate": "2024-01-02T03:04:05.000Z"}, **fields}
    if extra is not None:
        doc["_extra"] = extra
    return doc


# ``_extra`` as the version before the typed runtime state wrote it: ISO dates from ``datetime.isoformat``
# on task runs, Kestra instants on the execution, state names as strings, and the transient ``finalState``
# a document could carry between a step and the end of the execution
OLD_TASK_RUN_EXTRA = {
    "dispatched": True, "values": ["a", "{\"k\":1}"], "loopStart": "2024-01-02T03:04:05.123000+00:00",
    "waiting": True, "waitUntil": "2024-01-02T03:05:05.123456+00:00", "resumed": True,
    "pauseDeadline": "2024-01-02T04:04:05.123000+00:00", "pauseTimeout": "2024-01-02T05:04:05.123000+00:00",
    "retryAt": "2024-01-02T03:04:35.500000+00:00", "childExecutionId": "child-1", "subflowState": "FAILED",
    "subflowRetryDue": True, "itemsStarted": True, "wdState": "finishing", "wdResult": "WARNING",
}
OLD_EXECUTION_EXTRA = {
    "manualPause": True, "listeners": ["notify"], "exitState": "CANCELLED", "noKillCascade": True,
    "retryAt": "2024-01-02T03:10:00.000Z", "retryExecutionId": "ex-next", "finalState": "SUCCESS",
}


def old_execution_doc() -> dict:
    return {
        "id": "ex-old", "namespace": NS, "flowId": "old", "flowRevision": 1,
        "taskRunList": [task_run_doc("loop", "RUNNING", OLD_TASK_RUN_EXTRA), task_run_doc("plain", "SUCCESS")],
        "labels": [], "originalId": "ex-old", "deleted": False,
        "state": {"current": "RUNNING", "histories": [{"state": "CREATED", "date": "2024-01-02T03:04:05.000Z"},
                                                      {"state": "RUNNING", "date": "2024-01-02T03:04:05.000Z"}],
                  "duration": "PT1S", "startDate": "2024-01-02T03:04:05.000Z"},
        "metadata": {"attemptNumber": 1, "originalCreatedDate": "2024-01-02T03:04:05.000Z"},
        "_extra": OLD_EXECUTION_EXTRA,
    }


def test_a_document_of_the_previous_version_loads_into_typed_fields_and_is_written_back_the_same():
    ex = Execution.from_dict(copy.deepcopy(old_execution_doc()))
    rt = ex.task_run_list[0].runtime
    assert rt.dispatched and rt.waiting and rt.resumed and rt.subflow_retry_due and rt.items_started
    assert rt.values == ["a", "{\"k\":1}"]
    assert rt.loop_start == datetime(2024, 1, 2, 3, 4, 5, 123000, UTC)
    assert rt.wait_until == datetime(2024, 1, 2, 3, 5, 5, 123456, UTC)
    assert rt.pause_deadline == datetime(2024, 1, 2, 4, 4, 5, 123000, UTC)
    assert rt.pause_timeout == datetime(2024, 1, 2, 5, 4, 5, 123000, UTC)
    assert rt.retry_at == datetime(2024, 1, 2, 3, 4, 35, 500000, UTC)
    assert rt.child_execution_id == "child-1"
    assert rt.subflow_state is State.FAILED and rt.wd_result is State.WARNING and rt.wd_state == "finishing"
    assert ex.task_run_list[1].runtime == type(rt)()  # nothing recorded: every field at its default
    ert = ex.runtime
    assert ert.manual_pause and ert.no_kill_cascade
    assert ert.listeners == ["notify"] and ert.exit_state is State.CANCELLED
    assert ert.retry_at == datetime(2024, 1, 2, 3, 10, tzinfo=UTC) and ert.retry_execution_id == "ex-next"

    # written back in the same form (the transient finalState is not state any more: the machine returns it)
    again = ex.to_dict(private=True)
    assert again["taskRunList"][0]["_extra"] == OLD_TASK_RUN_EXTRA
    assert "_extra" not in again["taskRunList"][1]
    assert again["_extra"] == {k: v for k, v in OLD_EXECUTION_EXTRA.items() if k != "finalState"}
    assert Execution.from_dict(again).to_dict(private=True) == again


def test_the_public_document_never_carries_the_runtime_state():
    ex = Execution.from_dict(old_execution_doc())
    public = ex.to_dict()
    assert "_extra" not in public and all("_extra" not in tr for tr in public["taskRunList"])
    stored = ex.to_dict(private=True)
    assert without_private(stored) == public
    assert "_extra" in stored  # not modified in place
    tr = TaskRun.from_dict(task_run_doc("loop", "RUNNING", OLD_TASK_RUN_EXTRA))
    assert without_private(tr.to_dict(private=True)) == tr.to_dict()
    clean = ex.to_dict()
    assert without_private(clean) is clean  # nothing to strip: no copy


PAUSED_FLOW = f"""
id: old
namespace: {NS}
tasks:
  - id: wait
    type: io.kestra.plugin.core.flow.Pause
    delay: PT1H
  - id: after
    type: io.kestra.plugin.core.debug.Return
    format: resumed
"""


async def test_a_paused_execution_stored_by_the_previous_version_resumes_at_its_recorded_deadline(tmp_path):
    """An upgrade with existing SQLite data: the Pause's deadline the previous version recorded in ``_extra``
    (an ISO string, passed while the server was down) resumes the execution at start-up."""
    doc = old_execution_doc()
    doc["state"]["current"] = "PAUSED"
    doc["state"]["histories"].append({"state": "PAUSED", "date": "2024-01-02T03:04:06.000Z"})
    doc["taskRunList"] = [task_run_doc("wait", "PAUSED", {"pauseDeadline": "2024-01-02T04:04:06.000000+00:00"})]
    doc["_extra"] = {}
    async with open_engine(tmp_path, store="sqlite") as engine:
        await engine.create_flow(PAUSED_FLOW)
        await engine.store.save_execution(doc)
    async with open_engine(tmp_path, store="sqlite") as engine:
        with trio.fail_after(30):
            final = await engine.wait_for_end("ex-old")
        stored = await engine.store.get_execution("ex-old")
    assert final["state"]["current"] == "SUCCESS"
    assert [(t["taskId"], t["state"]["current"]) for t in final["taskRunList"]] == [("wait", "SUCCESS"),
                                                                                   ("after", "SUCCESS")]
    assert final["taskRunList"][1]["outputs"] == {"value": "resumed"}
    assert stored["taskRunList"][0]["_extra"] == {"resumed": True, "pauseDeadline": "2024-01-02T04:04:06+00:00"}
