"""The polling ``jdbc.postgresql.Trigger`` on a fake clock against a real PostgreSQL server (tests/pg.py), and
``jdbc.sqlite.Trigger`` on a database file.

The clock autojumps only after 0.1 s of real idleness, so a query on the worker thread (real I/O the fake
clock cannot see) completes before trio time moves on.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import trio
import trio.testing

from .conftest import executions_of, wait_until

NS = "orch.jdbc"
BLUEPRINT = Path(__file__).resolve().parents[1] / "flows" / "blueprints" / "jdbc-postgres-new-orders-trigger.yaml"


@pytest.fixture(autouse=True)
def _no_flow_polling(monkeypatch) -> None:
    """The poller re-reads the flows only when woken (each re-read would cost an autojump)."""
    from falconet.runtime.orchestration import polling

    monkeypatch.setitem(polling.DEFAULTS, "poll", 10 * 86400.0)


@pytest.fixture
def clock() -> trio.testing.MockClock:
    return trio.testing.MockClock(autojump_threshold=0.1)


def flow(pg_url: str, pg_server, sql: str) -> str:
    connection = f"""    url: {pg_url}
    username: {pg_server.user}
    password: {pg_server.password}"""
    return f"""
id: new_orders
namespace: {NS}
tasks:
  - id: ids
    type: io.kestra.plugin.core.debug.Return
    format: "{{{{ trigger.size }}}} {{{{ trigger.rows | jq('.[].id') }}}}"
  - id: mark
    type: io.kestra.plugin.jdbc.postgresql.Query
{connection}
    sql: UPDATE orders SET processed = true WHERE id <= :last
    parameters:
      last: "{{{{ trigger.rows | last | jq('.id') | first }}}}"
triggers:
  - id: watch
    type: io.kestra.plugin.jdbc.postgresql.Trigger
    interval: PT30S
{connection}
    sql: {sql}
    fetchType: FETCH
"""


async def test_creates_an_execution_when_the_query_returns_rows(engine, clock, pg_url, pg_server):
    database = pg_url.rsplit("/", 1)[1]

    def sql(statement: str) -> None:
        with pg_server.connect(database) as conn:
            conn.execute(statement)

    await trio.to_thread.run_sync(sql, "CREATE TABLE orders (id int PRIMARY KEY, processed boolean DEFAULT false)")
    await engine.create_flow(flow(pg_url, pg_server, "SELECT id FROM orders WHERE NOT processed ORDER BY id"))
    engine.orchestration.polling.wake()
    poller = engine.orchestration.polling
    await trio.sleep(35)                               # first evaluation at +30: no rows, no execution
    assert poller.evaluations == 1 and poller.created == 0
    await trio.to_thread.run_sync(sql, "INSERT INTO orders (id) VALUES (1), (2)")
    await trio.sleep(30)                               # +60: two rows
    assert poller.created == 1

    async def ended() -> bool:
        rows = await executions_of(engine, NS, "new_orders")
        return len(rows) == 1 and rows[0]["state"]["current"] in ("SUCCESS", "FAILED")

    await wait_until(ended, step=0.5)
    [ex] = await executions_of(engine, NS, "new_orders")
    assert ex["state"]["current"] == "SUCCESS"
    assert ex["trigger"]["variables"] == {"rows": [{"id": 1}, {"id": 2}], "size": 2}
    assert ex["taskRunList"][0]["outputs"]["value"] == "2 [1,2]"
    await trio.sleep(60)                               # +90, +120: the rows were marked, nothing new
    assert poller.created == 1 and poller.evaluations >= 3


async def test_a_failing_query_is_logged_and_polling_goes_on(engine, clock, pg_url, pg_server, caplog):
    await engine.create_flow(flow(pg_url, pg_server, "SELECT id FROM missing_table"))
    engine.orchestration.polling.wake()
    await trio.sleep(30 * 2 + 5)
    poller = engine.orchestration.polling
    assert poller.evaluations == 2 and poller.created == 0
    assert any('relation "missing_table" does not exist' in r.getMessage() for r in caplog.records)


async def test_new_orders_blueprint(engine, clock, pg_url, pg_server, monkeypatch):
    """tests/flows/blueprints/jdbc-postgres-new-orders-trigger.yaml: the trigger picks the unprocessed orders,
    the execution marks them processed and posts a summary to a (local) Teams webhook."""
    import base64
    import json

    from ..plugins.notifyservers import webhook_server

    source = await trio.Path(BLUEPRINT).read_text()
    database = pg_url.rsplit("/", 1)[1]

    def sql(statement: str) -> None:
        with pg_server.connect(database) as conn:
            conn.execute(statement)

    await trio.to_thread.run_sync(sql, "CREATE TABLE orders (id int PRIMARY KEY, customer text, "
                                       "processed boolean DEFAULT false)")
    await trio.to_thread.run_sync(sql, "INSERT INTO orders (id, customer) VALUES (1, 'ada'), (2, 'bob'), (3, 'cy')")
    with webhook_server() as hooks:
        for key, value in {"PG_URL": pg_url, "PG_USERNAME": pg_server.user, "PG_PASSWORD": pg_server.password,
                           "TEAMS_WEBHOOK": hooks.url + "/teams"}.items():
            monkeypatch.setenv(f"SECRET_{key}", base64.b64encode(value.encode()).decode())
        await engine.create_flow(source)
        engine.orchestration.polling.wake()
        await trio.sleep(65)                           # first evaluation one interval (PT1M) after the start

        async def ended() -> bool:
            rows = await executions_of(engine, "company.team", "new_orders")
            return len(rows) == 1 and rows[0]["state"]["current"] in ("SUCCESS", "FAILED")

        await wait_until(ended, step=0.5)
        await trio.sleep(120)                          # two more evaluations: every order is processed
    [ex] = await executions_of(engine, "company.team", "new_orders")
    assert ex["state"]["current"] == "SUCCESS"
    assert engine.orchestration.polling.created == 1
    assert [json.loads(c.body)["text"] for c in hooks.calls] == ["3 new orders processed, 0 waiting"]
    logs = [row["message"] for row in await engine.get_logs(ex["id"]) if row.get("taskId") == "handle"]
    assert sorted(logs) == ["Order 1 for ada", "Order 2 for bob", "Order 3 for cy"]


async def test_sqlite_trigger_on_a_database_file(engine, clock, tmp_path, caplog):
    import sqlite3

    db = tmp_path / "queue.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE jobs (id INTEGER, queue TEXT, done INTEGER DEFAULT 0)")
    await engine.create_flow(f"""
id: jobs
namespace: {NS}
tasks:
  - id: count
    type: io.kestra.plugin.core.debug.Return
    format: "{{{{ trigger.row.id }}}} of {{{{ trigger.size }}}}"
triggers:
  - id: queue
    type: io.kestra.plugin.jdbc.sqlite.Trigger
    interval: PT30S
    url: jdbc:sqlite:{db}
    sql: SELECT id FROM jobs WHERE done = 0 AND queue = :queue ORDER BY id
    parameters:
      queue: reports
    fetchType: FETCH_ONE
  - id: relative
    type: io.kestra.plugin.jdbc.sqlite.Trigger
    url: jdbc:sqlite:queue.db
    interval: PT30S
    sql: SELECT 1
    fetchType: FETCH_ONE
""")
    engine.orchestration.polling.wake()
    await trio.sleep(35)
    poller = engine.orchestration.polling
    assert poller.created == 0
    with sqlite3.connect(db) as conn:
        conn.execute("INSERT INTO jobs (id, queue) VALUES (7, 'reports'), (8, 'other')")
    await trio.sleep(30)
    assert poller.created == 1

    async def ended() -> bool:
        rows = await executions_of(engine, NS, "jobs")
        return len(rows) == 1 and rows[0]["state"]["current"] == "SUCCESS"

    await wait_until(ended, step=0.5)
    [ex] = await executions_of(engine, NS, "jobs")
    assert ex["trigger"]["variables"] == {"row": {"id": 7}, "size": 1}
    assert ex["taskRunList"][0]["outputs"]["value"] == "7 of 1"
    assert any("absolute path" in r.getMessage() for r in caplog.records)
