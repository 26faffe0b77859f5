"""The polling ``jdbc.postgresql.Trigger`` on a fake clock against a real PostgreSQL server (tests/pg.py).

The clock autojumps only after 0.1 s of real idleness, so a query on the worker thread (real I/O the fake
clock cannot see) completes before trio time moves on.
"""
from __future__ import annotations

import pytest
import trio
import trio.testing

from .conftest import executions_of, wait_until

pytest.importorskip("psycopg")

NS = "orch.jdbc"


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
