"""execution.Count and execution.PurgeExecutions through the engine (memory store)."""
from __future__ import annotations

from typing import Any

import trio

from falconet import open_engine

WORK = """
id: {id}
namespace: {ns}
inputs:
  - id: fail
    type: BOOLEAN
    defaults: false
tasks:
  - id: file
    type: io.kestra.plugin.core.storage.LocalFiles
    inputs:
      a.txt: "{{{{ execution.id }}}}"
    outputs: ["a.txt"]
  - id: ret
    type: io.kestra.plugin.core.debug.Return
    format: hello
  - id: log
    type: io.kestra.plugin.core.log.Log
    message: "hello from {{{{ execution.id }}}}"
  - id: maybe
    type: io.kestra.plugin.core.execution.Fail
    condition: "{{{{ inputs.fail }}}}"
"""

COUNT = """
id: counter
namespace: admin
tasks:
  - id: count
    type: {type}
{props}
"""

PURGE = """
id: purger
namespace: admin
tasks:
  - id: purge
    type: {type}
{props}
"""


def runs(ex: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {tr["taskId"]: tr for tr in ex["taskRunList"]}


async def seed(engine) -> dict[str, list[dict[str, Any]]]:
    """company.a.one: 2 SUCCESS + 1 FAILED; company.a.two: 1 SUCCESS; company.b.sub.three: 1 SUCCESS."""
    for ns, fid in (("company.a", "one"), ("company.a", "two"), ("company.b.sub", "three")):
        await engine.create_flow(WORK.format(id=fid, ns=ns))
    out: dict[str, list[dict[str, Any]]] = {"one": [], "two": [], "three": []}
    for fid, ns, fail in (("one", "company.a", False), ("one", "company.a", False), ("one", "company.a", True),
                          ("two", "company.a", False), ("three", "company.b.sub", False)):
        out[fid].append(await engine.execute(ns, fid, {"fail": fail}))
    return out


async def run_task(engine, template: str, type_: str, props: str) -> dict[str, Any]:
    source = template.format(type=type_, props=props)
    flow_id = "counter" if "counter" in source else "purger"
    if await engine.get_flow("admin", flow_id) is None:
        await engine.create_flow(source)
    else:
        await engine.update_flow("admin", flow_id, source)
    ex = await engine.execute("admin", flow_id)
    return ex


#### Count ##################################################################################################

async def test_count_listed_flows_with_expression(tmp_path):
    async with open_engine(tmp_path, store="memory") as engine:
        await seed(engine)
        kept = await run_task(engine, COUNT, "io.kestra.plugin.core.execution.Count", """
    startDate: "{{ now() | dateAdd(-1, 'HOURS') }}"
    expression: "{{ count >= 1 }}"
    flows:
      - {namespace: company.a, flowId: one}
      - {namespace: company.a, flowId: two}
      - {namespace: company.a, flowId: none}
""")
        zero = await run_task(engine, COUNT, "io.kestra.core.tasks.executions.Counts", """
    startDate: "{{ now() | dateAdd(-1, 'HOURS') }}"
    expression: "{{ count == 0 }}"
    flows:
      - {namespace: company.a, flowId: one}
      - {namespace: company.a, flowId: none}
""")
    assert kept["state"]["current"] == "SUCCESS", kept
    assert runs(kept)["count"]["outputs"] == {
        "results": [{"namespace": "company.a", "flowId": "one", "count": 3},
                    {"namespace": "company.a", "flowId": "two", "count": 1}],
        "total": 4}
    assert runs(zero)["count"]["outputs"] == {
        "results": [{"namespace": "company.a", "flowId": "none", "count": 0}], "total": 0}


async def test_count_by_namespace_states_and_dates(tmp_path):
    async with open_engine(tmp_path, store="memory") as engine:
        await seed(engine)
        failed = await run_task(engine, COUNT, "io.kestra.plugin.core.execution.Count", """
    startDate: "{{ now() | dateAdd(-1, 'DAYS') }}"
    expression: "{{ count > 0 }}"
    namespaces: [company]
    states: [FAILED]
""")
        per_flow = await run_task(engine, COUNT, "io.kestra.plugin.core.execution.Count", """
    startDate: "2000-01-01T00:00:00Z"
    expression: "true"
    namespaces: [company.b]
""")
        future = await run_task(engine, COUNT, "io.kestra.plugin.core.execution.Count", """
    startDate: "{{ now() | dateAdd(1, 'DAYS') }}"
    expression: "{{ count > 0 }}"
    namespaces: [company]
""")
    assert runs(failed)["count"]["outputs"] == {
        "results": [{"namespace": "company.a", "flowId": "one", "count": 1}], "total": 1}
    assert runs(per_flow)["count"]["outputs"] == {
        "results": [{"namespace": "company.b.sub", "flowId": "three", "count": 1}], "total": 1}
    assert runs(future)["count"]["outputs"] == {"results": [], "total": 0}


async def test_count_bad_input_fails_the_task(tmp_path):
    async with open_engine(tmp_path, store="memory") as engine:
        bad_date = await run_task(engine, COUNT, "io.kestra.plugin.core.execution.Count", """
    startDate: "yesterday"
    expression: "true"
""")
        logs_date = [r["message"] for r in await engine.get_logs(bad_date["id"]) if r["level"] == "ERROR"]
        bad_state = await run_task(engine, COUNT, "io.kestra.plugin.core.execution.Count", """
    startDate: "2000-01-01"
    expression: "true"
    states: [NOPE]
""")
        logs_state = [r["message"] for r in await engine.get_logs(bad_state["id"]) if r["level"] == "ERROR"]
    assert bad_date["state"]["current"] == "FAILED"
    assert any("Invalid startDate 'yesterday'" in m for m in logs_date), logs_date
    assert bad_state["state"]["current"] == "FAILED"
    assert any("NOPE" in m for m in logs_state), logs_state


#### PurgeExecutions ########################################################################################

async def test_purge_deletes_documents_logs_metrics_and_files(tmp_path):
    async with open_engine(tmp_path, store="memory") as engine:
        seeded = await seed(engine)
        st = engine.storage
        ok_ids = [e["id"] for e in seeded["one"] if e["state"]["current"] == "SUCCESS"]
        failed_id = next(e["id"] for e in seeded["one"] if e["state"]["current"] == "FAILED")
        await engine.store.flush()
        logs_before = sum([len(await engine.get_logs(i)) for i in ok_ids])
        metrics_before = sum([len(await engine.store.get_metrics(i)) for i in ok_ids])
        ex = await run_task(engine, PURGE, "io.kestra.plugin.core.execution.PurgeExecutions", """
    namespace: company.a
    flowId: one
    states: [SUCCESS]
    endDate: "{{ now() }}"
""")
        left_docs = [await engine.store.get_execution(i) for i in ok_ids]
        left_logs = sum([len(await engine.get_logs(i)) for i in ok_ids])
        left_files = [st.list(st.execution_prefix("company.a", "one", i)) for i in ok_ids]
        failed_doc = await engine.store.get_execution(failed_id)
        failed_files = st.list(st.execution_prefix("company.a", "one", failed_id))
        other = await engine.store.get_execution(seeded["two"][0]["id"])
    out = runs(ex)["purge"]["outputs"]
    assert ex["state"]["current"] == "SUCCESS"
    assert logs_before > 0 and metrics_before > 0
    assert out == {"executionsCount": 2, "logsCount": logs_before, "metricsCount": metrics_before,
                   "storagesCount": 2}
    assert left_docs == [None, None] and left_logs == 0 and left_files == [[], []]
    assert failed_doc is not None and len(failed_files) == 1      # other states are kept
    assert other is not None                                        # other flows are kept


async def test_purge_flags_alias_and_running_executions(tmp_path):
    async with open_engine(tmp_path, store="memory") as engine:
        seeded = await seed(engine)
        await engine.create_flow("""
id: paused
namespace: company.a
tasks:
  - id: wait
    type: io.kestra.plugin.core.flow.Pause
""")
        paused = await engine.execute("company.a", "paused", wait=False)
        while (await engine.get_execution(paused["id"]))["state"]["current"] != "PAUSED":
            await trio.sleep(0.01)
        ex = await run_task(engine, PURGE, "io.kestra.plugin.core.storage.Purge", """
    namespace: company
    endDate: "{{ now() }}"
    purgeExecution: false
    purgeStorage: false
""")
        docs = [await engine.store.get_execution(e["id"]) for es in seeded.values() for e in es]
        logs = [len(await engine.get_logs(e["id"])) for es in seeded.values() for e in es]
        still_paused = await engine.get_execution(paused["id"])
    out = runs(ex)["purge"]["outputs"]
    assert ex["state"]["current"] == "SUCCESS"
    assert out["executionsCount"] == 0 and out["storagesCount"] == 0 and out["logsCount"] > 0
    assert all(d is not None for d in docs) and logs == [0] * 5
    assert still_paused["state"]["current"] == "PAUSED"


async def test_purge_flow_without_namespace_fails(tmp_path):
    async with open_engine(tmp_path, store="memory") as engine:
        ex = await run_task(engine, PURGE, "io.kestra.plugin.core.execution.PurgeExecutions", """
    flowId: one
    endDate: "{{ now() }}"
""")
        errors = [r["message"] for r in await engine.get_logs(ex["id"]) if r["level"] == "ERROR"]
    assert ex["state"]["current"] == "FAILED"
    assert "You need to set 'namespace' when you set 'flowId'" in errors
