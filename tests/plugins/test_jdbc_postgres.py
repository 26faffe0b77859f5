"""io.kestra.plugin.jdbc.postgresql.Query / Queries / Trigger against a real server (tests/pg.py; skipped
with the reason when PostgreSQL or psycopg is missing)."""
from __future__ import annotations

import io
import time

import pytest
import trio

pytest.importorskip("psycopg")

from falconet.sdk import read_ion_rows  # noqa: E402
from falconet.plugins.jdbc import postgresql as pg  # noqa: E402
from falconet.sdk import TaskFailed  # noqa: E402

from .e2e import engine_at, states  # noqa: E402

SETUP = """
CREATE TABLE orders (id serial PRIMARY KEY, customer text, amount numeric(8,2), paid boolean,
                     created timestamptz, day date, tags text[], meta jsonb, ref uuid, took interval);
INSERT INTO orders (customer, amount, paid, created, day, tags, meta, ref, took) VALUES
  ('ada', 9.50, true, '2024-01-01 10:00:00+00', '2024-01-01', '{a,b}', '{"k": 1}',
   '0e5bf5b0-7b05-4d87-9a4c-0ea3ac5f6b6c', '1 hour'),
  ('bob', 20.00, false, '2024-01-02 11:30:00+00', '2024-01-02', '{}', null, null, null),
  ('cy%', 31.25, true, '2024-01-03 12:00:00+00', '2024-01-03', null, '[1, 2]', null, '90 seconds');
"""


def props(pg_url, pg_server, **kw):
    return {"url": pg_url, "username": pg_server.user, "password": pg_server.password, **kw}


async def test_query_fetch_types_types_and_parameters(run_task, pg_url, pg_server):
    out, ctx = await run_task(pg.Query, props(pg_url, pg_server, sql=SETUP))
    assert out == {} and ctx.metrics == [("counter", "fetch.size", 0, {"fetch": "false", "store": "false"})]
    out, ctx = await run_task(pg.Query, props(pg_url, pg_server, sql="SELECT * FROM orders ORDER BY id",
                                              fetchType="FETCH_ONE", timeZoneId="UTC"))
    assert out == {"size": 1, "row": {
        "id": 1, "customer": "ada", "amount": 9.5, "paid": True, "created": "2024-01-01T10:00:00Z",
        "day": "2024-01-01", "tags": ["a", "b"], "meta": {"k": 1}, "ref": "0e5bf5b0-7b05-4d87-9a4c-0ea3ac5f6b6c",
        "took": 3600.0}}
    assert ctx.metrics == [("counter", "fetch.size", 1, {"fetch": "true", "store": "false"})]
    out, _ = await run_task(pg.Query, props(
        pg_url, pg_server, fetchType="FETCH", parameters={"min": 10, "pattern": "%y%"},
        sql="SELECT id, customer FROM orders WHERE amount > :min AND customer::text NOT LIKE :pattern "
            "AND customer LIKE '%' ORDER BY id"))
    assert out == {"rows": [{"id": 2, "customer": "bob"}], "size": 1}


async def test_store_streams_rows_to_ion(run_task, pg_url, pg_server):
    out, ctx = await run_task(pg.Query, props(pg_url, pg_server, fetchType="STORE", fetchSize=500, sql=(
        "SELECT g AS id, 'n' || g AS name, timestamptz '2024-01-01 00:00:00+00' + g * interval '1 minute' AS at "
        "FROM generate_series(1, 3000) g")))
    assert out["size"] == 3000 and out["uri"].endswith(".ion")
    with ctx.storage.open_read(out["uri"]) as f:
        rows = list(read_ion_rows(io.TextIOWrapper(f, encoding="utf-8")))
    assert len(rows) == 3000 and rows[1] == {"id": 2, "name": "n2", "at": "2024-01-01T00:02:00Z"}


async def test_queries_outputs_and_transaction(run_task, pg_url, pg_server):
    await run_task(pg.Query, props(pg_url, pg_server, sql=SETUP))
    out, ctx = await run_task(pg.Queries, props(pg_url, pg_server, fetchType="FETCH", sql=(
        "SELECT customer FROM orders WHERE paid ORDER BY id; UPDATE orders SET paid = true;"
        "SELECT count(*) AS n FROM orders WHERE paid;")))
    assert out == {"outputs": [{"rows": [{"customer": "ada"}, {"customer": "cy%"}], "size": 2},
                               {"rows": [{"n": 3}], "size": 1}]}
    assert ctx.metrics == [("counter", "fetch.size", 3, {"fetch": "true", "store": "false"})]
    with pytest.raises(TaskFailed, match='relation "nope" does not exist'):
        await run_task(pg.Queries, props(pg_url, pg_server, sql="DELETE FROM orders; SELECT * FROM nope"))
    with pg_server.connect(pg_url.rsplit("/", 1)[1]) as conn:
        assert conn.execute("SELECT count(*) FROM orders").fetchone() == (3,)


async def test_connection_errors_fail_the_task(run_task, pg_url, pg_server):
    with pytest.raises(TaskFailed, match="password authentication failed"):
        await run_task(pg.Query, props(pg_url, pg_server, password="wrong", sql="SELECT 1"))
    with pytest.raises(TaskFailed, match="Unsupported url parameter 'bogus'"):
        await run_task(pg.Query, props(pg_url + "?bogus=1", pg_server, sql="SELECT 1"))
    with pytest.raises(TaskFailed, match="Invalid url"):
        await run_task(pg.Query, props("jdbc:mysql://x/y", pg_server, sql="SELECT 1"))


def test_url_parameters_become_libpq_parameters():
    assert pg.connect_params("jdbc:postgresql://db.local:6543/shop?user=u&ssl=true&currentSchema=s1"
                             "&connectTimeout=3") == {
        "host": "db.local", "port": "6543", "dbname": "shop", "user": "u", "sslmode": "require",
        "options": "-c search_path=s1", "connect_timeout": "3"}
    assert pg.connect_params("jdbc:postgresql:shop") == {"host": "localhost", "dbname": "shop",
                                                         "connect_timeout": "10"}


def _running(pg_server, database: str) -> list[str]:
    with pg_server.connect() as conn:
        return [r[0] for r in conn.execute(
            "SELECT query FROM pg_stat_activity WHERE datname = %s AND query LIKE %s AND pid <> pg_backend_pid()",
            [database, "%pg_sleep(600)%"])]


async def test_kill_cancels_the_running_statement(run_task, pg_url, pg_server):
    """A kill (cancellation) sends a cancel request: the server stops the 10-minute statement at once."""
    database = pg_url.rsplit("/", 1)[1]
    started = time.monotonic()
    async with trio.open_nursery() as nursery:
        async def query() -> None:
            await run_task(pg.Query, props(pg_url, pg_server, sql="SELECT pg_sleep(600)"))

        nursery.start_soon(query)
        while not await trio.to_thread.run_sync(_running, pg_server, database):  # noqa: ASYNC110 - polls the server
            await trio.sleep(0.02)
        nursery.cancel_scope.cancel()
    while await trio.to_thread.run_sync(_running, pg_server, database):  # noqa: ASYNC110 - polls the server
        assert time.monotonic() - started < 10, "the statement is still running after the kill"
        await trio.sleep(0.02)


async def test_kill_through_the_engine(tmp_path, pg_url, pg_server):
    """Killing the execution through the engine API ends the task run KILLED and the statement on the server."""
    database = pg_url.rsplit("/", 1)[1]
    flow = f"""
id: long_query
namespace: company.team
tasks:
  - id: sleep
    type: io.kestra.plugin.jdbc.postgresql.Query
    url: {pg_url}
    username: {pg_server.user}
    password: {pg_server.password}
    sql: SELECT pg_sleep(600)
"""
    async with engine_at(tmp_path) as engine:
        await engine.create_flow(flow)
        ex = await engine.create_execution("company.team", "long_query")
        while not await trio.to_thread.run_sync(_running, pg_server, database):  # noqa: ASYNC110 - polls the server
            await trio.sleep(0.02)
        await engine.kill(ex["id"])
        with trio.fail_after(30):
            done = await engine.wait_for_end(ex["id"])
    assert done["state"]["current"] == "KILLED" and states(done) == {"sleep": "KILLED"}
    for _ in range(250):
        if not await trio.to_thread.run_sync(_running, pg_server, database):
            break
        await trio.sleep(0.02)
    else:
        raise AssertionError("the statement is still running after the kill")
