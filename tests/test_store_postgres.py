"""PostgresStore specifics against a real server (tests/pg.py): migrations under the advisory lock when nodes
start together, a newer schema refused, clear connection errors, a cancelled read interrupted on the server.
The Store behaviour suite itself runs on PostgreSQL in tests/test_store.py."""
from __future__ import annotations

import time
import uuid

import pytest
import trio

from falconet.runtime.store import StoreError, make_store
from falconet.runtime.store.postgres import SCHEMA_VERSION, PostgresStore, redact_url


@pytest.fixture
def db_url(pg_server) -> str:
    name = pg_server.create_database(f"pgs_{uuid.uuid4().hex[:12]}")
    return f"postgresql://{pg_server.user}:{pg_server.password}@{pg_server.host}:{pg_server.port}/{name}"


async def test_servers_starting_together_migrate_once(db_url, pg_server):
    stores = [PostgresStore(db_url) for _ in range(4)]
    opened: list[PostgresStore] = []
    refused: list[str] = []

    async def start(s: PostgresStore) -> None:
        try:
            await s.open()
            opened.append(s)
        except StoreError as exc:
            refused.append(str(exc))

    async with trio.open_nursery() as nursery:
        for s in stores:
            nursery.start_soon(start, s)
    try:
        # every one opened (the nodes of a cluster share the database); the schema was created once
        assert len(opened) == 4 and not refused
    finally:
        for s in opened:
            await s.close()
    with pg_server.connect(db_url.rsplit("/", 1)[1]) as conn:
        rows = conn.execute("SELECT version FROM falconet_schema_version").fetchall()
    assert rows == [(SCHEMA_VERSION,)]


async def test_a_schema_from_a_newer_version_is_refused(db_url, pg_server):
    s = PostgresStore(db_url)
    await s.open()
    await s.close()
    with pg_server.connect(db_url.rsplit("/", 1)[1]) as conn:
        conn.execute("INSERT INTO falconet_schema_version VALUES (%s)", (SCHEMA_VERSION + 1,))
    with pytest.raises(StoreError, match="newer than this Falconet"):
        await PostgresStore(db_url).open()


async def test_connection_errors_are_one_clear_line_without_the_password(pg_server):
    url = f"postgresql://{pg_server.user}:wrong-secret@{pg_server.host}:{pg_server.port}/postgres"
    with pytest.raises(StoreError) as err:
        await make_store(url).open()
    message = str(err.value)
    assert "wrong-secret" not in message and "\n" not in message
    assert "password authentication failed" in message
    assert redact_url(url) == f"postgresql://{pg_server.user}:***@{pg_server.host}:{pg_server.port}/postgres"


async def test_a_cancelled_read_is_interrupted_on_the_server(db_url):
    from falconet.runtime.store import _sql as sql

    s = PostgresStore(db_url)
    await s.open()
    try:
        t0 = time.monotonic()
        with trio.move_on_after(0.3):
            await s._call(sql.select, "SELECT pg_sleep(30)", (), read=True)
        s.save_execution_nowait({"id": "after", "namespace": "ns", "flowId": "f", "labels": [],
                                 "state": {"current": "CREATED", "histories": [],
                                           "startDate": "2024-05-01T12:00:00Z"}})
        assert (await s.get_execution("after"))["id"] == "after"  # the writer was freed by the cancel
        assert time.monotonic() - t0 < 10
    finally:
        await s.close()


async def test_an_engine_runs_a_flow_on_postgresql(db_url, tmp_path):
    from falconet import open_engine

    flow = ("id: hello\nnamespace: company.team\ntasks:\n  - id: out\n"
            "    type: io.kestra.plugin.core.debug.Return\n    format: \"{{ 1 + 1 }}\"\n")
    async with open_engine(tmp_path / "node", store=db_url) as engine:
        await engine.create_flow(flow)
        ex = await engine.execute("company.team", "hello")
        assert ex["state"]["current"] == "SUCCESS"
        assert ex["taskRunList"][0]["outputs"] == {"value": "2"}
    async with open_engine(tmp_path / "node2", store=db_url) as engine:  # the flow and execution are in the db
        assert (await engine.store.get_execution(ex["id"]))["state"]["current"] == "SUCCESS"
