"""The Store behaviour suite, run against every backend (memory, sqlite and postgresql — a real server, see
tests/pg.py; its cases skip with the reason where PostgreSQL is not installed)."""
from __future__ import annotations

import importlib.util
import sys
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import trio

from falconet.runtime.kernel.clock import Clock
from falconet.runtime.kernel.errors import IllegalArgument, IllegalState
from falconet.runtime.store import StoreError, open_store
from falconet.runtime.store.base import ExecutionQuery, FlowRecord, LogQuery
from falconet.runtime.store.memory import MemoryStore
from falconet.runtime.store.sqlite import SQLiteStore


def _support():
    name = "falconet_tests_store_support"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("test_store_support.py"))
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        spec.loader.exec_module(mod)
    return sys.modules[name]


S = _support()
UTC = timezone.utc


class FakeClock(Clock):
    """Clock for KV expiry, moved by hand."""

    def __init__(self) -> None:
        self.date = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self.date


@pytest.fixture
def wall() -> FakeClock:
    return FakeClock()


def pg_store_url(request) -> str:
    """A fresh database of the session's PostgreSQL server, as a store URL."""
    server = request.getfixturevalue("pg_server")
    name = server.create_database(f"store_{uuid.uuid4().hex[:12]}")
    return f"postgresql://{server.user}:{server.password}@{server.host}:{server.port}/{name}"


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
async def store(request, tmp_path, wall):
    if request.param == "memory":
        s = MemoryStore(clock=wall)
    elif request.param == "sqlite":
        s = SQLiteStore(tmp_path / "falconet.db", clock=wall)
    else:
        from falconet.runtime.store.postgres import PostgresStore

        s = PostgresStore(pg_store_url(request), clock=wall)
    await s.open()
    yield s
    await s.close()


#### lifecycle ##############################################################################################

async def test_calls_before_open_and_after_close_raise_store_error(tmp_path):
    for s in (MemoryStore(), SQLiteStore(tmp_path / "x.db")):
        with pytest.raises(StoreError):
            await s.get_execution("x")
        with pytest.raises(StoreError):
            s.save_execution_nowait(S.execution("e1"))
        await s.open()
        s.save_execution_nowait(S.execution("e1"))
        await s.close()
        with pytest.raises(StoreError):
            await s.get_execution("e1")


async def test_open_store_factory(tmp_path):
    async with open_store("memory:") as s:
        assert isinstance(s, MemoryStore)
        await s.save_execution(S.execution("m1"))
        assert (await s.get_execution("m1"))["id"] == "m1"
    async with open_store(tmp_path / "a.db") as s:
        assert isinstance(s, SQLiteStore)
        await s.save_execution(S.execution("s1"))
    async with open_store(f"sqlite:///{tmp_path / 'a.db'}") as s:
        assert (await s.get_execution("s1"))["id"] == "s1"
    with pytest.raises(IllegalArgument):
        async with open_store("mysql://nope"):
            pass


#### executions #############################################################################################

async def test_execution_roundtrip_upsert_and_delete(store):
    doc = S.execution("e1", state="RUNNING", labels={"team": "a"})
    store.save_execution_nowait(doc)
    doc["labels"].append({"key": "late", "value": "mutation"})  # must not leak into the stored snapshot
    got = await store.get_execution("e1")
    assert got["state"]["current"] == "RUNNING"
    assert got["labels"] == [{"key": "team", "value": "a"}]
    got["namespace"] = "changed"  # reads are fresh copies
    assert (await store.get_execution("e1"))["namespace"] == "company.team"

    await store.save_execution(S.execution("e1", state="SUCCESS"))
    assert (await store.get_execution("e1"))["state"]["current"] == "SUCCESS"
    assert await store.get_execution("nope") is None
    assert await store.delete_execution("e1") is True
    assert await store.delete_execution("e1") is False
    assert await store.get_execution("e1") is None


async def test_invalid_execution_documents_are_rejected(store):
    with pytest.raises(IllegalArgument):
        store.save_execution_nowait({"namespace": "a", "flowId": "f"})
    bad_state = S.execution("e1")
    bad_state["state"]["current"] = "DANCING"
    with pytest.raises(IllegalArgument):
        store.save_execution_nowait(bad_state)
    not_json = S.execution("e2")
    not_json["outputs"] = {"x": object()}
    with pytest.raises(IllegalArgument):
        await store.save_execution(not_json)
    with pytest.raises(IllegalArgument):
        store.save_execution_nowait(["not", "a", "dict"])
    assert await store.get_execution("e2") is None


async def test_deleted_flag_hides_an_execution(store):
    doc = S.execution("e1")
    doc["deleted"] = True
    await store.save_execution(doc)
    assert await store.get_execution("e1") is None
    assert (await store.search_executions(ExecutionQuery()))[1] == 0


async def _seed(store):
    docs = [
        S.execution("e1", namespace="a.b", flow_id="f1", state="SUCCESS", minutes=1, labels={"team": "x", "env": "prod"}),
        S.execution("e2", namespace="a.b.c", flow_id="f2", state="FAILED", minutes=2, labels={"team": "x"}),
        S.execution("e3", namespace="a.bc", flow_id="f1", state="RUNNING", minutes=3, labels={"team": "y"}),
        S.execution("e4", namespace="z", flow_id="hello", state="CREATED", minutes=4, trigger_execution_id="e1"),
        S.execution("e5", namespace="a.b", flow_id="f1", state="KILLED", minutes=5, labels={"env": "prod"}),
    ]
    for d in docs:
        store.save_execution_nowait(d)
    await store.flush()


async def _ids(store, **kw):
    docs, total = await store.search_executions(ExecutionQuery(**kw))
    return [d["id"] for d in docs], total


async def test_search_filters(store):
    await _seed(store)
    assert await _ids(store) == (["e5", "e4", "e3", "e2", "e1"], 5)  # newest first by default
    assert await _ids(store, namespace="a.b") == (["e5", "e2", "e1"], 3)  # prefix, not a.bc
    assert await _ids(store, namespace="a") == (["e5", "e3", "e2", "e1"], 4)
    assert await _ids(store, namespace="a.b", flow_id="f1") == (["e5", "e1"], 2)
    assert await _ids(store, states=["FAILED", "KILLED"]) == (["e5", "e2"], 2)
    assert await _ids(store, labels=[("team", "x")]) == (["e2", "e1"], 2)
    assert await _ids(store, labels=[("team", "x"), ("env", "prod")]) == (["e1"], 1)
    assert await _ids(store, labels=[("team", "prod")]) == ([], 0)
    t0 = S.T0
    assert await _ids(store, start_date=t0 + timedelta(minutes=2), end_date=t0 + timedelta(minutes=4)) == (
        ["e4", "e3", "e2"], 3)
    assert await _ids(store, q="HELL") == (["e4"], 1)  # case-insensitive substring on flowId
    assert await _ids(store, q="a.bc") == (["e3"], 1)
    assert await _ids(store, q="e2") == (["e2"], 1)
    assert await _ids(store, trigger_execution_id="e1") == (["e4"], 1)
    assert await _ids(store, child_filter="CHILD") == (["e4"], 1)
    assert await _ids(store, child_filter="MAIN") == (["e5", "e3", "e2", "e1"], 4)


async def test_search_paging_and_sort(store):
    await _seed(store)
    assert await _ids(store, page=1, size=2) == (["e5", "e4"], 5)
    assert await _ids(store, page=3, size=2) == (["e1"], 5)
    assert await _ids(store, page=4, size=2) == ([], 5)
    assert await _ids(store, sort=["state.startDate:asc"]) == (["e1", "e2", "e3", "e4", "e5"], 5)
    assert await _ids(store, sort=["id:desc"]) == (["e5", "e4", "e3", "e2", "e1"], 5)
    assert (await _ids(store, sort=["state.current:asc"]))[0] == ["e4", "e2", "e5", "e3", "e1"]
    # endDate: CREATED/RUNNING have none (nulls first ascending, last descending)
    assert (await _ids(store, sort=["state.endDate:asc"]))[0] == ["e3", "e4", "e1", "e2", "e5"]
    assert (await _ids(store, sort=["state.endDate:desc"]))[0] == ["e5", "e2", "e1", "e4", "e3"]


async def test_search_sort_ties_and_multi_key(store):
    await _seed(store)
    ids, _ = await _ids(store, sort=["namespace:asc", "flowId:desc"])
    assert ids == ["e1", "e5", "e2", "e3", "e4"]  # a.b/f1 twice (insertion order), a.b.c, a.bc, z


async def test_search_rejects_bad_queries(store):
    for kw in ({"page": 0}, {"size": 0}, {"sort": ["nope:asc"]}, {"sort": ["id:sideways"]},
               {"states": ["DANCING"]}, {"child_filter": "ORPHAN"}):
        with pytest.raises(IllegalArgument):
            await store.search_executions(ExecutionQuery(**kw))


async def test_list_unfinished_oldest_first(store):
    await _seed(store)
    store.save_execution_nowait(S.execution("p1", state="PAUSED", minutes=0))
    unfinished = [d["id"] for d in await store.list_unfinished_executions()]
    assert unfinished == ["p1", "e3", "e4"]


#### flows ##################################################################################################

async def test_flow_revisions(store):
    when = datetime(2024, 1, 2, tzinfo=UTC)
    await store.save_flow(FlowRecord("a.b", "f", 1, "id: f\nv: 1", updated=when))
    await store.save_flow(FlowRecord("a.b", "f", 2, "id: f\nv: 2", disabled=True))
    with pytest.raises(IllegalState):
        await store.save_flow(FlowRecord("a.b", "f", 2, "overwrite"))
    with pytest.raises(IllegalArgument):
        await store.save_flow(FlowRecord("a.b", "f", 0, "bad revision"))
    latest = await store.get_flow("a.b", "f")
    assert (latest.revision, latest.source, latest.disabled) == (2, "id: f\nv: 2", True)
    first = await store.get_flow("a.b", "f", 1)
    assert first.updated == when and first.source == "id: f\nv: 1"
    assert await store.get_flow("a.b", "f", 7) is None
    assert [r.revision for r in await store.list_flow_revisions("a.b", "f")] == [1, 2]

    await store.save_flow(FlowRecord("a.b", "f", 3, "id: f\nv: 2", deleted=True))
    assert await store.get_flow("a.b", "f") is None
    assert (await store.get_flow("a.b", "f", allow_deleted=True)).revision == 3
    assert (await store.get_flow("a.b", "f", 2)).revision == 2


async def test_list_flows_latest_revision_and_namespace_prefix(store):
    await store.save_flow(FlowRecord("a.b", "f", 1, "v1"))
    await store.save_flow(FlowRecord("a.b", "f", 2, "v2"))
    await store.save_flow(FlowRecord("a.b.c", "g", 1, "g1"))
    await store.save_flow(FlowRecord("a.bc", "h", 1, "h1"))
    await store.save_flow(FlowRecord("a.b", "gone", 1, "x"))
    await store.save_flow(FlowRecord("a.b", "gone", 2, "x", deleted=True))
    flows = await store.list_flows("a.b")
    assert [(r.namespace, r.id, r.revision) for r in flows] == [("a.b", "f", 2), ("a.b.c", "g", 1)]
    assert len(await store.list_flows()) == 3
    assert [r.id for r in await store.list_flows("a.b", include_deleted=True)] == ["f", "gone", "g"]


#### logs and metrics #######################################################################################

async def test_logs_order_levels_and_filters(store):
    store.append_logs_nowait([
        S.log("e1", "third", seconds=2),
        S.log("e1", "first", seconds=1, level="DEBUG"),
        S.log("e1", "second", seconds=1, level="ERROR", task_id="t2", task_run_id="tr2"),  # same ts: insertion order
        S.log("e1", "trace", seconds=0.5, level="TRACE", attempt=2),
        S.log("e2", "other", seconds=0, level="WARN", namespace="a.bc"),
    ])
    store.append_logs_nowait([S.log("e1", "fourth", seconds=3, level="WARN")])
    msgs = lambda rows: [r["message"] for r in rows]  # noqa: E731
    rows, total = await store.get_logs(LogQuery(execution_id="e1"))
    assert msgs(rows) == ["trace", "first", "second", "third", "fourth"] and total == 5
    assert msgs((await store.get_logs(LogQuery(execution_id="e1", min_level="INFO")))[0]) == ["second", "third", "fourth"]
    assert msgs((await store.get_logs(LogQuery(execution_id="e1", min_level="WARN")))[0]) == ["second", "fourth"]
    assert msgs((await store.get_logs(LogQuery(execution_id="e1", min_level="TRACE")))[0])[0] == "trace"
    assert msgs((await store.get_logs(LogQuery(task_id="t2")))[0]) == ["second"]
    assert msgs((await store.get_logs(LogQuery(execution_id="e1", attempt=2)))[0]) == ["trace"]
    assert msgs((await store.get_logs(LogQuery(namespace="company.team", q="IR")))[0]) == ["first", "third"]
    assert msgs((await store.get_logs(LogQuery(namespace="a.b")))[0]) == []
    page, total = await store.get_logs(LogQuery(execution_id="e1", page=2, size=2))
    assert msgs(page) == ["second", "third"] and total == 5
    since = S.T0 + timedelta(seconds=1)
    assert msgs((await store.get_logs(LogQuery(execution_id="e1", start_date=since,
                                               end_date=since + timedelta(seconds=1))))[0]) == ["first", "second", "third"]
    with pytest.raises(IllegalArgument):
        await store.get_logs(LogQuery(min_level="LOUD"))


async def test_log_counts_by_task_run(store):
    store.append_logs_nowait([
        S.log("e1", "a", task_run_id="tr1"), S.log("e1", "b", task_run_id="tr1", level="DEBUG"),
        S.log("e1", "c", task_run_id="tr2"), S.log("e1", "engine", task_run_id=None),
        S.log("e2", "other", task_run_id="tr9"),
    ])
    assert await store.count_logs_by_task_run(LogQuery(execution_id="e1")) == {"tr1": 2, "tr2": 1, None: 1}
    assert await store.count_logs_by_task_run(LogQuery(execution_id="e1", min_level="INFO", page=1, size=1)) == {
        "tr1": 1, "tr2": 1, None: 1}
    assert await store.count_logs_by_task_run(LogQuery(execution_id="e1", q="ENG")) == {None: 1}
    assert await store.count_logs_by_task_run(LogQuery(execution_id="nope")) == {}
    rows, total = await store.get_logs(LogQuery(execution_id="e1", outside_task_runs=True))
    assert [r["message"] for r in rows] == ["engine"] and total == 1


async def test_invalid_log_batch_is_rejected_whole(store):
    with pytest.raises(IllegalArgument):
        store.append_logs_nowait([S.log("e1", "ok"), {**S.log("e1", "bad"), "level": "LOUD"}])
    with pytest.raises(IllegalArgument):
        store.append_logs_nowait([{**S.log("e1", "bad"), "timestamp": "yesterday"}])
    assert await store.get_logs(LogQuery(execution_id="e1")) == ([], 0)


async def test_delete_logs(store):
    store.append_logs_nowait([S.log("e1", "a"), S.log("e1", "b", task_id="t2"), S.log("e2", "c")])
    assert await store.delete_logs(LogQuery(execution_id="e1", task_id="t2")) == 1
    assert await store.delete_logs(LogQuery(execution_id="e1")) == 1
    rows, total = await store.get_logs(LogQuery())
    assert [r["message"] for r in rows] == ["c"] and total == 1


async def test_metrics(store):
    store.append_metrics_nowait([
        S.metric("e1", "length", 3, seconds=2),
        S.metric("e1", "duration", 12.5, seconds=1, type="timer", task_id="t2"),
        S.metric("e2", "length", 1),
    ])
    assert [m["name"] for m in await store.get_metrics("e1")] == ["duration", "length"]
    assert [m["value"] for m in await store.get_metrics(name="length")] == [1, 3]
    assert [m["executionId"] for m in await store.get_metrics(task_id="t2")] == ["e1"]
    assert len(await store.get_metrics(namespace="company", start_date=S.T0 + timedelta(seconds=1))) == 2
    with pytest.raises(IllegalArgument):
        store.append_metrics_nowait([{**S.metric("e1", "x", 1), "type": "gauge"}])
    assert await store.delete_metrics("e1") == 2
    assert [m["executionId"] for m in await store.get_metrics()] == ["e2"]


#### KV, triggers, state ####################################################################################

async def test_kv_put_get_expiry_list_delete(store, wall):
    created = "2024-05-01T12:00:00.000Z"
    await store.kv_put("a.b", "k1", {"type": "STRING", "value": "v1", "creationDate": created, "updateDate": created})
    await store.kv_put("a.b", "k2", {"type": "NUMBER", "value": 2, "creationDate": created, "updateDate": created,
                                     "expirationDate": "2024-05-01T12:10:00.000Z"})
    await store.kv_put("a.bc", "k3", {"type": "BOOLEAN", "value": True, "creationDate": created,
                                      "updateDate": created})
    assert (await store.kv_get("a.b", "k1"))["value"] == "v1"
    assert (await store.kv_get("a.b", "k2"))["value"] == 2
    assert [e["key"] for e in await store.kv_list("a.b")] == ["k1", "k2"]
    assert [(e["namespace"], e["key"]) for e in await store.kv_list_all()] == [("a.b", "k1"), ("a.b", "k2"),
                                                                               ("a.bc", "k3")]
    wall.date += timedelta(minutes=10)
    assert await store.kv_get("a.b", "k2") is None
    assert [e["key"] for e in await store.kv_list("a.b")] == ["k1"]
    assert [e["key"] for e in await store.kv_list_all()] == ["k1", "k3"]
    assert await store.kv_delete("a.b", "k2") is False  # expired counts as absent
    assert await store.kv_delete("a.b", "k1") is True
    assert await store.kv_get("a.b", "k1") is None
    with pytest.raises(IllegalArgument):
        await store.kv_put("a.b", "k", {"value": 1})


async def test_triggers(store):
    doc = {"namespace": "a.b", "flowId": "f", "triggerId": "every-minute", "date": "2024-05-01T12:00:00.000Z",
           "nextExecutionDate": "2024-05-01T12:01:00.000Z", "disabled": False}
    await store.save_trigger(doc)
    await store.save_trigger({**doc, "triggerId": "other"})
    await store.save_trigger({**doc, "namespace": "a.bc"})
    await store.save_trigger({**doc, "nextExecutionDate": "2024-05-01T12:02:00.000Z"})
    got = await store.get_trigger("a.b", "f", "every-minute")
    assert got["nextExecutionDate"] == "2024-05-01T12:02:00.000Z"
    assert [t["triggerId"] for t in await store.list_triggers("a.b")] == ["every-minute", "other"]
    assert len(await store.list_triggers(flow_id="f")) == 3
    assert await store.delete_trigger("a.b", "f", "other") is True
    assert await store.delete_trigger("a.b", "f", "other") is False
    with pytest.raises(IllegalArgument):
        await store.save_trigger({"namespace": "a.b", "flowId": "f"})


async def test_generic_state(store):
    await store.state_put("mc", "k2", {"n": 2})
    await store.state_put("mc", "k1", {"n": 1})
    await store.state_put("other", "k1", {"n": 9})
    await store.state_put("mc", "k1", {"n": 11})
    assert await store.state_get("mc", "k1") == {"n": 11}
    assert await store.state_list("mc") == [("k1", {"n": 11}), ("k2", {"n": 2})]
    assert await store.state_delete("mc", "k1") is True
    assert await store.state_delete("mc", "k1") is False
    assert await store.state_get("mc", "k1") is None


async def test_swap_trigger_is_a_compare_and_set(store):
    doc = {"namespace": "a.b", "flowId": "f", "triggerId": "s", "nextExecutionDate": "2024-05-01T12:00:00.000Z"}
    assert await store.swap_trigger(None, doc) is True
    assert await store.swap_trigger(None, {**doc, "date": "x"}) is False  # a context exists already
    read = await store.get_trigger("a.b", "f", "s")
    claimed = {**read, "pendingDate": read["nextExecutionDate"]}
    assert await store.swap_trigger(read, claimed) is True
    # a second server that read the same version loses the claim; nothing it sent is written
    assert await store.swap_trigger(read, {**read, "pendingDate": "other"}) is False
    assert await store.get_trigger("a.b", "f", "s") == claimed
    assert await store.swap_trigger(await store.get_trigger("a.b", "f", "s"), {**doc, "disabled": True}) is True
    assert (await store.get_trigger("a.b", "f", "s"))["disabled"] is True
    # compared as values: the keys in another order are the same context
    reordered = dict(reversed(list((await store.get_trigger("a.b", "f", "s")).items())))
    assert await store.swap_trigger(reordered, {**doc, "disabled": False}) is True
    with pytest.raises(IllegalArgument):
        await store.swap_trigger({**doc, "triggerId": "other"}, doc)


async def test_swap_states_applies_every_change_or_none(store):
    assert await store.swap_states("mc", [("k1", None, {"n": 1}), ("k2", None, {"n": 2})]) is True
    assert await store.state_list("mc") == [("k1", {"n": 1}), ("k2", {"n": 2})]
    # k2 is not what the caller read: k1 is left alone too
    assert await store.swap_states("mc", [("k1", {"n": 1}, {"n": 10}), ("k2", {"n": 3}, None)]) is False
    assert await store.state_list("mc") == [("k1", {"n": 1}), ("k2", {"n": 2})]
    assert await store.swap_states("mc", [("k1", {"n": 1}, {"n": 10}), ("k2", {"n": 2}, None)]) is True
    assert await store.state_list("mc") == [("k1", {"n": 10})]
    assert await store.swap_states("mc", [("k1", None, {"n": 0})]) is False  # present: not an insert
    assert await store.swap_states("mc", [("k3", None, None)]) is True        # absent, stays absent
    assert await store.swap_states("mc", [("k1", None, None)]) is False
    # a write of another store call in between (a bulk of writes queued before it) is seen
    await store.state_put("mc", "k1", {"n": 11})
    assert await store.swap_states("mc", [("k1", {"n": 10}, {"n": 12})]) is False
    assert await store.state_get("mc", "k1") == {"n": 11}
    with pytest.raises(IllegalArgument):
        await store.swap_states("mc", [("", None, {"n": 1})])


async def test_concurrency_slots_count_running_executions_and_queue_first_in_first_out(store):
    claim = store.claim_concurrency_slot
    await store.save_execution(S.execution("r1", flow_id="limited", state="CREATED", minutes=1))
    await store.save_execution(S.execution("r2", flow_id="limited", state="CREATED", minutes=2))
    await store.save_execution(S.execution("o1", flow_id="other", state="CREATED", minutes=2))
    assert await claim("company.team", "limited", "r1", 1) is True
    assert await claim("company.team", "limited", "r1", 1) is True      # holds it already
    assert await claim("company.team", "limited", "r2", 1) is False     # the one slot is taken
    assert await claim("company.team", "other", "o1", 1) is True        # another flow: its own slots
    await store.save_execution(S.execution("q1", flow_id="limited", state="QUEUED", minutes=3))
    await store.save_execution(S.execution("q2", flow_id="limited", state="QUEUED", minutes=4))
    await store.save_execution(S.execution("r1", flow_id="limited", state="SUCCESS", minutes=1))  # frees its slot
    assert await claim("company.team", "limited", "q2", 1) is False     # q1 was queued first
    assert await claim("company.team", "limited", "q1", 1) is True
    assert await claim("company.team", "limited", "q2", 2) is True      # q1 holds a slot now, not a place ahead
    await store.delete_execution("q1")                                  # a deleted execution frees its slot too
    await store.save_execution(S.execution("n1", flow_id="limited", state="CREATED", minutes=5))
    assert await claim("company.team", "limited", "n1", 2) is True
    assert await claim("company.team", "limited", "x", 3) is True       # not stored: nothing queued ahead of it
    with pytest.raises(IllegalArgument):
        await claim("", "limited", "n1", 1)


async def test_concurrency_claims_of_many_tasks_never_exceed_the_limit(store):
    for i in range(12):
        await store.save_execution(S.execution(f"c{i}", flow_id="limited", state="CREATED", minutes=i))
    won: list[str] = []

    async def contender(i: int) -> None:
        if await store.claim_concurrency_slot("company.team", "limited", f"c{i}", 3):
            won.append(f"c{i}")

    async with trio.open_nursery() as nursery:
        for i in range(12):
            nursery.start_soon(contender, i)
    assert len(won) == 3


#### concurrency and cancellation ###########################################################################

async def test_concurrent_writers_from_many_tasks(store):
    async def writer(n: int) -> None:
        for i in range(20):
            store.save_execution_nowait(S.execution(f"w{n}-{i}", state="RUNNING", minutes=i))
            store.append_logs_nowait([S.log(f"w{n}-{i}", f"line {i}")])
            if i % 5 == 4:
                await store.save_execution(S.execution(f"w{n}-{i}", state="SUCCESS", minutes=i))

    async with trio.open_nursery() as nursery:
        for n in range(25):
            nursery.start_soon(writer, n)
    await store.flush()
    _, total = await store.search_executions(ExecutionQuery(size=1))
    assert total == 500
    _, succeeded = await store.search_executions(ExecutionQuery(states=["SUCCESS"]))
    assert succeeded == 100
    assert (await store.get_logs(LogQuery()))[1] == 500


async def test_cancelled_write_is_all_or_nothing(store):
    store.save_execution_nowait(S.execution("c0"))
    with trio.CancelScope() as scope:
        scope.cancel()
        await store.save_flow(FlowRecord("a", "f", 1, "src"))
    assert scope.cancelled_caught
    flow = await store.get_flow("a", "f")
    assert flow is None or flow.source == "src"  # the write happened completely or not at all
    await store.save_flow(FlowRecord("a", "f", 2, "src2"))
    assert [r.revision for r in await store.list_flow_revisions("a", "f")] in ([2], [1, 2])
    assert (await store.get_execution("c0"))["id"] == "c0"
