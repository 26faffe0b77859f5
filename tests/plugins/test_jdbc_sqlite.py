"""io.kestra.plugin.jdbc.sqlite.Query / Queries (standard library sqlite3) and the shared jdbc helpers."""
from __future__ import annotations

import io
import sqlite3
import time

import pytest
import trio

from falconet.sdk import read_ion_rows
from falconet.plugins.jdbc import common, sqlite
from falconet.sdk import TaskFailed


#### shared helpers #########################################################################################

def test_split_statements_ignores_semicolons_in_quotes_comments_and_dollar_bodies():
    sql = ("INSERT INTO t VALUES ('a;b', \"c;d\", 'it''s;'); -- x; y\n"
           "SELECT 1 /* ; */; DO $$ BEGIN PERFORM 1; END $$; SELECT $tag$;$tag$;; SELECT E'\\';', 'e\\';")
    assert common.split_statements(sql) == [
        "INSERT INTO t VALUES ('a;b', \"c;d\", 'it''s;')", "-- x; y\nSELECT 1 /* ; */",
        "DO $$ BEGIN PERFORM 1; END $$", "SELECT $tag$;$tag$", "SELECT E'\\';', 'e\\'"]


def test_bind_parameters_in_order_skipping_casts_quotes_and_escaping_percent():
    sql, args = common.bind_parameters("SELECT :a::int, ':b', :b, :a, x LIKE '5%' -- :c\n", {"a": 1, "b": "x"},
                                       "%s", escape_percent=True)
    assert sql == "SELECT %s::int, ':b', %s, %s, x LIKE '5%%' -- :c\n"
    assert args == [1, "x", 1]
    assert common.bind_parameters("SELECT :missing", {"other": 1}, "?") == ("SELECT ?", [None])
    assert common.bind_parameters("SELECT 5 % 2", None, "%s", escape_percent=True) == ("SELECT 5 % 2", None)


#### sqlite.Query ###########################################################################################

SETUP = ("CREATE TABLE orders (id INTEGER, customer TEXT, amount REAL, day TEXT);"
         "INSERT INTO orders VALUES (1, 'ada', 9.5, '2024-01-01'), (2, 'bob', 20.0, '2024-01-02'),"
         " (3, 'cy', 31.25, '2024-01-03')")


async def test_fetch_types_outputs_and_metric(run_task, tmp_path):
    db = tmp_path / "shop.db"
    url = f"jdbc:sqlite:{db}"
    out, ctx = await run_task(sqlite.Query, {"url": url, "sql": SETUP})
    assert out == {} and ctx.metrics == [("counter", "fetch.size", 0, {"fetch": "false", "store": "false"})]
    out, ctx = await run_task(sqlite.Query, {"url": url, "sql": "SELECT * FROM orders ORDER BY id",
                                            "fetchType": "FETCH_ONE"})
    assert out == {"row": {"id": 1, "customer": "ada", "amount": 9.5, "day": "2024-01-01"}, "size": 1}
    assert ctx.metrics == [("counter", "fetch.size", 1, {"fetch": "true", "store": "false"})]
    out, _ = await run_task(sqlite.Query, {"url": url, "sql": "SELECT id FROM orders WHERE amount > :min ORDER BY id",
                                          "parameters": {"min": "{{ 10 }}"}, "fetchType": "FETCH"})
    assert out == {"rows": [{"id": 2}, {"id": 3}], "size": 2}
    out, _ = await run_task(sqlite.Query, {"url": url, "sql": "SELECT 1 WHERE 0", "fetchOne": True})
    assert out == {"row": None, "size": 0}


async def test_store_writes_ion_rows(run_task):
    out, ctx = await run_task(sqlite.Query, {
        "sql": "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 2500) "
               "SELECT x AS id, 'n' || x AS name FROM c", "fetchType": "STORE", "fetchSize": 100})
    assert out["size"] == 2500 and out["uri"].startswith("kestra:///") and out["uri"].endswith(".ion")
    assert ctx.metrics == [("counter", "fetch.size", 2500, {"fetch": "false", "store": "true"})]
    with ctx.storage.open_read(out["uri"]) as f:
        rows = list(read_ion_rows(io.TextIOWrapper(f, encoding="utf-8")))
    assert len(rows) == 2500 and rows[0] == {"id": 1, "name": "n1"} and rows[-1] == {"id": 2500, "name": "n2500"}


async def test_several_statements_last_result_and_relative_file_in_working_dir(run_task, make_ctx):
    out, ctx = await run_task(sqlite.Query, {"url": "jdbc:sqlite:shop.db", "outputDbFile": True,
                                            "sql": SETUP + "; SELECT count(*) AS n FROM orders",
                                            "fetchType": "FETCH_ONE"})
    assert out["row"] == {"n": 3} and out["databaseUri"].endswith("shop.db")
    # the next task reads the uploaded database through sqliteFile
    out, _ = await run_task(sqlite.Query, {"url": "jdbc:sqlite:other.db", "sqliteFile": out["databaseUri"],
                                          "sql": "SELECT sum(amount) AS total FROM orders", "fetchType": "FETCH_ONE"})
    assert out["row"] == {"total": 60.75}


async def test_queries_outputs_per_statement_and_transaction_rollback(run_task, tmp_path):
    url = f"jdbc:sqlite:{tmp_path / 'q.db'}"
    out, ctx = await run_task(sqlite.Queries, {"url": url, "fetchType": "FETCH", "sql": (
        SETUP + ";\nSELECT id FROM orders WHERE id < 3 ORDER BY id;\nUPDATE orders SET amount = 0;"
        "\nSELECT count(*) AS n FROM orders;")})
    assert out == {"outputs": [{"rows": [{"id": 1}, {"id": 2}], "size": 2}, {"rows": [{"n": 3}], "size": 1}]}
    assert ctx.metrics == [("counter", "fetch.size", 3, {"fetch": "true", "store": "false"})]
    with pytest.raises(TaskFailed, match="no such table: nope"):
        await run_task(sqlite.Queries, {"url": url, "sql": "DELETE FROM orders; SELECT * FROM nope"})
    with sqlite3.connect(tmp_path / "q.db") as conn:    # the DELETE was rolled back with the transaction
        assert conn.execute("SELECT count(*) FROM orders").fetchone() == (3,)
    with pytest.raises(TaskFailed, match="no such table: nope"):
        await run_task(sqlite.Queries, {"url": url, "transaction": False,
                                        "sql": "DELETE FROM orders; SELECT * FROM nope"})
    with sqlite3.connect(tmp_path / "q.db") as conn:
        assert conn.execute("SELECT count(*) FROM orders").fetchone() == (0,)


async def test_bad_input_fails_the_task(run_task):
    with pytest.raises(TaskFailed, match="Invalid url"):
        await run_task(sqlite.Query, {"url": "jdbc:postgresql://x/y", "sql": "SELECT 1"})
    with pytest.raises(TaskFailed, match="Invalid file name"):
        await run_task(sqlite.Query, {"url": "jdbc:sqlite:../escape.db", "sql": "SELECT 1"})
    with pytest.raises(TaskFailed, match="kestra:// URI"):
        await run_task(sqlite.Query, {"url": "jdbc:sqlite:a.db", "sqliteFile": "/etc/passwd", "sql": "SELECT 1"})
    with pytest.raises(TaskFailed, match="Query failed: .*syntax error"):
        await run_task(sqlite.Query, {"sql": "SELEC 1"})
    with pytest.raises(TaskFailed, match="sql holds no statement"):
        await run_task(sqlite.Query, {"sql": " ; ;"})


async def test_kill_interrupts_a_running_statement_and_releases_its_lock(run_task, tmp_path):
    """A never-ending write holds the database's write lock: after the kill, interrupt() has rolled it
    back and another connection writes at once (without the interrupt it would wait, then fail 'locked')."""
    db = tmp_path / "lock.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE t (x INTEGER)")
    started = time.monotonic()
    with trio.move_on_after(0.3) as scope:
        await run_task(sqlite.Query, {"url": f"jdbc:sqlite:{db}", "sql": (
            "INSERT INTO t WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT x FROM c")})
    assert scope.cancelled_caught
    conn = sqlite3.connect(db, timeout=3.0)
    try:
        conn.execute("INSERT INTO t VALUES (-1)")
        conn.commit()
        assert conn.execute("SELECT count(*), min(x) FROM t").fetchone() == (1, -1)
    finally:
        conn.close()
    assert time.monotonic() - started < 3.0


async def test_task_timeout_through_the_engine_interrupts_the_statement(tmp_path):
    """A task ``timeout`` cancels the attempt like a kill: the run fails on the timeout and the interrupted
    statement's lock is gone."""
    from .e2e import engine_at, states

    db = tmp_path / "timeout.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE t (x INTEGER)")
    flow = f"""
id: slow_query
namespace: company.team
tasks:
  - id: forever
    type: io.kestra.plugin.jdbc.sqlite.Query
    timeout: PT0.3S
    url: jdbc:sqlite:{db}
    sql: INSERT INTO t WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT x FROM c
"""
    async with engine_at(tmp_path) as engine:
        await engine.create_flow(flow)
        ex = await engine.create_execution("company.team", "slow_query")
        with trio.fail_after(20):
            done = await engine.wait_for_end(ex["id"])
    assert done["state"]["current"] == "FAILED" and states(done) == {"forever": "FAILED"}
    conn = sqlite3.connect(db, timeout=3.0)
    try:
        conn.execute("INSERT INTO t VALUES (-1)")
        conn.commit()
    finally:
        conn.close()
