"""SQLiteStore specifics: durability across reopen, group commit, cancellation, failure. Real time."""
from __future__ import annotations

import importlib.util
import sqlite3
import sys
import time
from pathlib import Path

import pytest
import trio
import trio.testing

from falconet.runtime.store import StoreError
from falconet.runtime.store import _sql as sql
from falconet.runtime.store import sqlite as sqlite_module
from falconet.runtime.store.base import ExecutionQuery, FlowRecord, LogQuery
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


@pytest.fixture
async def store(tmp_path):
    s = SQLiteStore(tmp_path / "falconet.db")
    await s.open()
    yield s
    await s.close()


async def _count(store, **kw) -> int:
    return (await store.search_executions(ExecutionQuery(size=1, **kw)))[1]


#### durability #############################################################################################

async def test_reopen_finds_everything(tmp_path):
    path = tmp_path / "db.sqlite"
    s = SQLiteStore(path)
    await s.open()
    await s.save_flow(FlowRecord("a.b", "f", 1, "id: f"))
    s.save_execution_nowait(S.execution("e1", state="RUNNING"))
    s.append_logs_nowait([S.log("e1", "hello")])
    s.append_metrics_nowait([S.metric("e1", "length", 3)])
    await s.kv_put("a.b", "k", {"type": "STRING", "value": "v", "creationDate": "2024-01-01T00:00:00.000Z",
                                "updateDate": "2024-01-01T00:00:00.000Z"})
    await s.save_trigger({"namespace": "a.b", "flowId": "f", "triggerId": "t", "date": "2024-01-01T00:00:00.000Z"})
    await s.state_put("kind", "key", {"v": 1})
    await s.close()  # close commits the nowait writes

    s2 = SQLiteStore(path)
    await s2.open()
    try:
        assert (await s2.get_flow("a.b", "f")).source == "id: f"
        assert (await s2.get_execution("e1"))["state"]["current"] == "RUNNING"
        assert [r["message"] for r in (await s2.get_logs(LogQuery(execution_id="e1")))[0]] == ["hello"]
        assert [m["value"] for m in await s2.get_metrics("e1")] == [3]
        assert (await s2.kv_get("a.b", "k"))["value"] == "v"
        assert (await s2.get_trigger("a.b", "f", "t"))["date"] == "2024-01-01T00:00:00.000Z"
        assert await s2.state_get("kind", "key") == {"v": 1}
        con = sqlite3.connect(path)
        try:
            assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            assert con.execute("SELECT max(version) FROM schema_version").fetchone()[0] == sqlite_module.SCHEMA_VERSION == 3
        finally:
            con.close()
    finally:
        await s2.close()


async def test_restart_lists_unfinished_executions(tmp_path):
    path = tmp_path / "db.sqlite"
    s = SQLiteStore(path)
    await s.open()
    n = 2000
    for i in range(n):
        s.save_execution_nowait(S.execution(f"e{i:05d}", state="CREATED", minutes=i))
    for i in range(n):  # second wave: every third one is still running, the rest finished
        s.save_execution_nowait(S.execution(f"e{i:05d}", state="RUNNING" if i % 3 == 0 else "SUCCESS", minutes=i))
    await s.flush()
    await s.close()

    s2 = SQLiteStore(path)
    await s2.open()
    try:
        unfinished = await s2.list_unfinished_executions()
        assert [d["id"] for d in unfinished] == [f"e{i:05d}" for i in range(0, n, 3)]
        assert all(d["state"]["current"] == "RUNNING" for d in unfinished)
        assert await _count(s2) == n
    finally:
        await s2.close()


async def test_reopen_same_instance(tmp_path):
    s = SQLiteStore(tmp_path / "db.sqlite")
    await s.open()
    s.save_execution_nowait(S.execution("e1"))
    await s.close()
    await s.close()  # idempotent
    await s.open()
    try:
        assert (await s.get_execution("e1"))["id"] == "e1"
    finally:
        await s.close()


async def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / "db.sqlite"
    s = SQLiteStore(path)
    await s.open()
    await s.close()
    con = sqlite3.connect(path)
    con.execute("INSERT INTO schema_version VALUES (99)")
    con.commit()
    con.close()
    with pytest.raises(StoreError, match="newer"):
        await SQLiteStore(path).open()


#### group commit ###########################################################################################

async def test_queued_upserts_of_one_id_coalesce(store):
    with store._cond:  # hold the writer off (the lock is reentrant for this thread)
        for i in range(100):
            store.save_execution_nowait(S.execution("e1", state="RUNNING", labels={"v": str(i)}))
        store.save_execution_nowait(S.execution("e2", state="RUNNING"))
        assert store.backlog == 2
    await store.flush()
    assert store.stats["execution_rows"] == 2
    assert (await store.get_execution("e1"))["labels"] == [{"key": "v", "value": "99"}]


async def test_one_batch_writes_the_newest_doc_per_id(store):
    with store._cond:
        store.save_execution_nowait(S.execution("e1", state="RUNNING"))
        store._pending.clear()  # as after a write job: the next upsert gets its own queue entry
        store.save_execution_nowait(S.execution("e1", state="SUCCESS"))
        store.append_logs_nowait([S.log("e1", f"line {i}") for i in range(50)])
        assert len(store._queue) == 3
    await store.flush()
    assert store.stats["execution_rows"] == 1
    assert store.stats["log_rows"] == 50
    assert store.stats["commits"] == 1
    assert (await store.get_execution("e1"))["state"]["current"] == "SUCCESS"


async def test_delete_between_upserts_keeps_order(store):
    store.save_execution_nowait(S.execution("e1", state="RUNNING"))
    async with trio.open_nursery() as nursery:
        with store._cond:
            nursery.start_soon(store.delete_execution, "e1")
            await trio.testing.wait_all_tasks_blocked()  # the delete job is queued behind the upsert
            store.save_execution_nowait(S.execution("e1", state="SUCCESS"))
    assert (await store.get_execution("e1"))["state"]["current"] == "SUCCESS"


async def test_reads_see_nowait_writes_without_flush(store):
    for i in range(500):
        store.save_execution_nowait(S.execution(f"e{i}", minutes=i))
        store.append_logs_nowait([S.log(f"e{i}", "x")])
    assert await _count(store) == 500
    assert (await store.get_logs(LogQuery()))[1] == 500


async def test_log_rows_alone_wait_for_more_and_anything_else_ends_the_wait(tmp_path):
    store = SQLiteStore(tmp_path / "falconet.db", row_delay=60.0)
    await store.open()
    try:
        for burst in range(20):  # one scheduler pass per burst, as task runs log
            store.append_logs_nowait([S.log("e", f"line {burst}")])
            store.append_metrics_nowait([S.metric("e", "m", 1.0)])
            await trio.sleep(0)
        await trio.to_thread.run_sync(time.sleep, 0.05)  # the writer, woken by the first row, waits for more
        assert store.stats["batches"] == 0 and store.backlog == 40
        await store.flush()  # anything else queued ends the wait: one transaction for every row
        assert store.stats["batches"] == 1 and store.stats["commits"] == 1
        assert store.stats["log_rows"] == 20 and store.stats["metric_rows"] == 20
    finally:
        await store.close()


async def test_log_rows_alone_are_written_after_the_row_delay(tmp_path):
    store = SQLiteStore(tmp_path / "falconet.db", row_delay=0.01)
    await store.open()
    try:
        store.append_logs_nowait([S.log("e", "alone")])
        with trio.fail_after(10):
            while store.stats["log_rows"] < 1:  # written with no other call to the store
                await trio.to_thread.run_sync(time.sleep, 0.005)
    finally:
        await store.close()


#### cancellation ###########################################################################################

_ENDLESS = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c"


async def test_cancelled_long_read_is_interrupted_and_store_stays_consistent(store):
    store.save_execution_nowait(S.execution("before"))
    with trio.fail_after(20):
        with trio.move_on_after(0.2) as scope:
            await store._call(sql.select, _ENDLESS, (), read=True)  # never ends by itself
        assert scope.cancelled_caught
        # the writer is free again, and the write queued before the read was committed
        store.save_execution_nowait(S.execution("after"))
        assert (await store.get_execution("before"))["id"] == "before"
        assert (await store.get_execution("after"))["id"] == "after"


async def test_cancelled_writers_are_all_or_nothing(store):
    payload = {"blob": "x" * 2000}

    async def put(i: int) -> None:
        await store.state_put("k", f"{i:04d}", {"i": i, **payload})

    with trio.CancelScope() as scope:
        async with trio.open_nursery() as nursery:
            for i in range(300):
                nursery.start_soon(put, i)
            await trio.testing.wait_all_tasks_blocked()
            scope.cancel()
    entries = await store.state_list("k")
    assert all(v == {"i": int(k), **payload} for k, v in entries)
    assert len(entries) <= 300
    await store.state_put("k", "after", {"ok": True})
    assert await store.state_get("k", "after") == {"ok": True}


async def test_cancelled_save_execution_still_commits_whole(store):
    with trio.CancelScope() as scope:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(store.save_execution, S.execution("e1", state="SUCCESS"))
            await trio.testing.wait_all_tasks_blocked()
            scope.cancel()
    assert (await store.get_execution("e1"))["state"]["current"] == "SUCCESS"


async def test_close_while_cancelled_still_closes(tmp_path):
    s = SQLiteStore(tmp_path / "db.sqlite")
    await s.open()
    s.save_execution_nowait(S.execution("e1"))
    with trio.CancelScope() as scope:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(s.close)
            await trio.testing.wait_all_tasks_blocked()
            scope.cancel()
    with pytest.raises(StoreError):
        s.save_execution_nowait(S.execution("e2"))
    with trio.fail_after(10):
        await s.close()  # waits for the close under way
    assert s._state == "closed"
    await s.open()
    try:
        assert (await s.get_execution("e1"))["id"] == "e1"
    finally:
        await s.close()


#### failure ################################################################################################

async def test_failed_batch_breaks_the_store(store, monkeypatch):
    monkeypatch.setattr(sql, "INSERT_LOG", "INSERT INTO no_such_table VALUES (?)")
    store.save_execution_nowait(S.execution("e1"))
    store.append_logs_nowait([S.log("e1", "doomed")])
    with pytest.raises(StoreError, match="no_such_table"):
        await store.flush()
    with pytest.raises(StoreError, match="broken"):
        store.save_execution_nowait(S.execution("e2"))
    with pytest.raises(StoreError, match="broken"):
        await store.get_execution("e1")


async def test_job_error_does_not_abort_the_batch(store):
    await store.save_flow(FlowRecord("a", "f", 1, "v1"))
    store.save_execution_nowait(S.execution("e1"))
    with pytest.raises(Exception) as info:
        await store.save_flow(FlowRecord("a", "f", 1, "again"))
    assert type(info.value).__name__ == "IllegalState"
    store.save_execution_nowait(S.execution("e2"))
    assert await _count(store) == 2
    assert (await store.get_flow("a", "f")).source == "v1"


async def test_a_version_1_database_gains_the_task_run_log_index(tmp_path):
    path = tmp_path / "v1.db"
    store = SQLiteStore(path)
    await store.open()
    await store.close()
    con = sqlite3.connect(path)
    con.execute("DROP INDEX ix_logs_task_run")
    con.execute("DROP TABLE concurrency_slots")
    con.execute("DELETE FROM schema_version WHERE version > 1")
    con.commit()
    con.close()
    store = SQLiteStore(path)
    await store.open()
    await store.close()
    con = sqlite3.connect(path)
    try:
        assert con.execute("SELECT max(version) FROM schema_version").fetchone()[0] == 3
        plan = con.execute("EXPLAIN QUERY PLAN SELECT entry FROM logs WHERE execution_id = 'e' AND task_run_id = 't' "
                           "ORDER BY timestamp, seq").fetchall()
        assert "ix_logs_task_run" in str(plan)
    finally:
        con.close()
