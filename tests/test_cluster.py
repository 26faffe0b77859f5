"""Cluster mode on PostgreSQL (falconet/runtime/cluster/): execution leases, claims with SKIP LOCKED, expiry on a
stop, commands forwarded to the owner, self-fencing — several engines in one trio run, each with its own data
folder and store on one database (tests/pg.py). The chaos test with real processes is in test_cluster_chaos.py."""
from __future__ import annotations

import json

import pytest
import trio

from falconet import open_engine
from falconet.runtime.cluster import NodeFenced, SingleNode
from falconet.runtime.config import Config
from falconet.runtime.kernel.errors import IllegalArgument

from .cluster import store_url

RETURN = """id: quick
namespace: cluster.test
tasks:
  - id: out
    type: io.kestra.plugin.core.debug.Return
    format: "{{ 1 + 1 }}"
"""

PAUSE = """id: gate
namespace: cluster.test
tasks:
  - id: wait
    type: io.kestra.plugin.core.flow.Pause
  - id: after
    type: io.kestra.plugin.core.debug.Return
    format: done
"""


@pytest.fixture
def url(pg_server) -> str:
    return store_url(pg_server)


def node(tmp_path, name: str, url: str, lease: float = 1.0):
    return open_engine(tmp_path / name, store=url, config=Config(lease_duration=lease))


def leases(pg_server, url: str) -> dict[str, str]:
    with pg_server.connect(url.rsplit("/", 1)[1]) as conn:
        return dict(conn.execute("SELECT execution_id, node_id FROM execution_leases").fetchall())


async def wait_state(engine, execution_id: str, state: str, timeout: float = 10) -> dict:
    with trio.fail_after(timeout):
        while True:
            doc = await engine.store.get_execution(execution_id)
            if doc is not None and doc["state"]["current"] == state:
                return doc
            await trio.sleep(0.05)


async def test_memory_and_sqlite_engines_are_a_single_node(tmp_path):
    async with open_engine(tmp_path / "a", store="sqlite") as engine:
        assert isinstance(engine.cluster, SingleNode) and not engine.cluster.shared
        assert engine.node_id == engine.cluster.node_id and len(engine.node_id) == 36


async def test_the_creating_node_owns_the_execution_until_it_ends(tmp_path, url, pg_server):
    async with node(tmp_path, "a", url) as a:
        await a.create_flow(PAUSE)
        ex = await a.create_execution("cluster.test", "gate")
        assert leases(pg_server, url) == {ex["id"]: a.node_id}  # written before the creation returned
        await wait_state(a, ex["id"], "PAUSED")
        await a.resume(ex["id"])
        assert (await a.wait_for_end(ex["id"]))["state"]["current"] == "SUCCESS"
        with trio.fail_after(5):
            while leases(pg_server, url):  # released once the end is stored
                await trio.sleep(0.05)


async def test_orphans_are_claimed_and_run_once(tmp_path, url, pg_server):
    """Executions of a dead node (expired leases) and unfinished ones without a lease are claimed by the
    nodes that start: each is run by exactly one of them, once."""
    async with node(tmp_path, "seed", url) as seed:
        await seed.create_flow(RETURN)
        created = [(await seed.create_execution("cluster.test", "quick", start=False))["id"] for _ in range(40)]
    database = url.rsplit("/", 1)[1]
    with pg_server.connect(database) as conn:  # half of them were owned by a node that died, half by nobody
        conn.execute("DELETE FROM execution_leases")
        conn.cursor().executemany("INSERT INTO execution_leases VALUES (%s, 'dead-node', 't', now() - interval '1 s')",
                                  [(i,) for i in created[:20]])
    runs: dict[str, list[str]] = {}
    async with node(tmp_path, "b", url) as b, node(tmp_path, "c", url) as c:
        for engine in (b, c):
            for ex_id in list(engine.actors) + [ex.id for q in engine.admission._queues.values() for ex in q]:
                runs.setdefault(ex_id, []).append(engine.node_id)
        for ex_id in created:
            doc = await wait_state(b, ex_id, "SUCCESS")
            assert doc["taskRunList"][0]["outputs"] == {"value": "2"}
    with trio.fail_after(5):
        while leases(pg_server, url):
            await trio.sleep(0.05)
    # every execution was claimed by one node only (those that ended before the check are not listed)
    assert all(len(owners) == 1 for owners in runs.values())
    with pg_server.connect(database) as conn:
        attempts = conn.execute("SELECT doc FROM executions").fetchall()
    assert all(len(json.loads(d)["taskRunList"][0]["attempts"]) == 1 for (d,) in attempts)  # ran once


async def test_a_live_lease_is_not_claimed_and_a_stopped_node_hands_over(tmp_path, url, pg_server):
    async with node(tmp_path, "b", url) as b:
        async with node(tmp_path, "a", url) as a:
            await a.create_flow(PAUSE)
            ex = await a.create_execution("cluster.test", "gate")
            await wait_state(a, ex["id"], "PAUSED")
            await trio.sleep(2.5)  # more than two lease durations: renewed by A's heartbeat, never claimed
            assert ex["id"] in a.actors and ex["id"] not in b.actors
            assert leases(pg_server, url) == {ex["id"]: a.node_id}
        # A stopped: its leases expired at once, B claims the paused execution within half a lease duration
        with trio.fail_after(5):
            while ex["id"] not in b.actors:
                await trio.sleep(0.05)
        assert leases(pg_server, url) == {ex["id"]: b.node_id}
        await b.resume(ex["id"])
        assert (await b.wait_for_end(ex["id"]))["state"]["current"] == "SUCCESS"


async def test_commands_are_carried_out_by_the_owner(tmp_path, url, pg_server):
    from falconet.http.app import create_app

    async with node(tmp_path, "a", url) as a, node(tmp_path, "b", url) as b:
        await a.create_flow(PAUSE)
        first = await a.create_execution("cluster.test", "gate")
        second = await a.create_execution("cluster.test", "gate")
        for ex in (first, second):
            await wait_state(a, ex["id"], "PAUSED")
        client = create_app(b, config=b.config).test_client()
        # kill through node B's API: A applies it, B answers as A would
        r = await client.delete(f"/api/v1/executions/{first['id']}/kill")
        assert r.status_code == 202, await r.get_data()
        assert (await a.wait_for_end(first["id"]))["state"]["current"] == "KILLED"
        assert first["id"] not in b.actors
        # the owner's error comes back as Kestra's error body
        r = await client.post(f"/api/v1/executions/{second['id']}/change-status?status=SUCCESS")
        assert r.status_code == 422
        assert (await r.get_json())["message"].startswith("Illegal argument: You can only change the status")
        with pytest.raises(IllegalArgument, match="not running"):
            await b.pause(second["id"])
        # resume with inputs returns the owner's document
        doc = await b.resume(second["id"])
        assert doc["id"] == second["id"]
        assert (await a.wait_for_end(second["id"]))["state"]["current"] == "SUCCESS"
        assert second["id"] not in b.actors
        with pg_server.connect(url.rsplit("/", 1)[1]) as conn:  # the callers removed their commands
            assert conn.execute("SELECT count(*) FROM cluster_commands").fetchone()[0] == 0


async def test_a_node_that_cannot_renew_its_leases_fences_itself(tmp_path, url, pg_server):
    database = url.rsplit("/", 1)[1]
    with pytest.raises(BaseExceptionGroup) as err:
        async with node(tmp_path, "a", url) as a:
            await a.create_flow(PAUSE)
            ex = await a.create_execution("cluster.test", "gate")
            await wait_state(a, ex["id"], "PAUSED")
            with pg_server.connect(database) as blocker:  # the database stops answering A's heartbeat
                blocker.execute("BEGIN")
                blocker.execute("LOCK TABLE execution_leases IN ACCESS EXCLUSIVE MODE")
                with trio.fail_after(5):
                    await trio.sleep(5)  # cancelled by the fence (0.8 lease duration)
    fenced, _ = err.value.split(NodeFenced)
    assert fenced is not None
    assert a.store.backlog == 0 and a.store._executions_stopped
    # its execution goes to another node once the lease expired, and ends there
    async with node(tmp_path, "b", url) as b:
        with trio.fail_after(5):
            while ex["id"] not in b.actors:
                await trio.sleep(0.05)
        await b.resume(ex["id"])
        assert (await b.wait_for_end(ex["id"]))["state"]["current"] == "SUCCESS"


def test_claimers_skip_the_leases_another_claimer_is_taking(url, pg_server, monkeypatch):
    """Two claims at once never take the same expired lease: rows locked by an open claim are skipped."""
    from falconet.runtime.cluster import leases as cluster_leases

    monkeypatch.setattr(cluster_leases, "CLAIM_BATCH", 7)
    database = url.rsplit("/", 1)[1]
    with pg_server.connect(database) as setup:
        from falconet.runtime.store.postgres import _Connection, migrate

        migrate(_Connection(setup))
        setup.cursor().executemany("INSERT INTO execution_leases VALUES (%s, 'dead', 't', now() - interval '1 s')",
                                   [(f"ex{i}",) for i in range(20)])
        setup.execute("INSERT INTO execution_leases VALUES ('live', 'other', 't', now() + interval '1 h')")
    with pg_server.connect(database) as first, pg_server.connect(database) as second:
        with first.transaction():
            mine = cluster_leases._claim(first, "n1", "t1", 5.0)  # its row locks are held until commit
            theirs = cluster_leases._claim(second, "n2", "t2", 5.0)
        rest = cluster_leases._claim(second, "n2", "t3", 5.0)
        assert cluster_leases._claim(first, "n1", "t4", 5.0) == []
    assert len(mine) == len(theirs) == 7 and len(rest) == 6
    assert not set(mine) & set(theirs) and set(mine) | set(theirs) | set(rest) == {f"ex{i}" for i in range(20)}
    assert leases(pg_server, url)["live"] == "other"


async def test_commands_and_answers_are_woken_by_notify(tmp_path, url, monkeypatch):
    """With the table polls out of the way, a forwarded command still completes: NOTIFY falconet_commands
    wakes the owner, and the owner's answer wakes the caller."""
    from falconet.runtime.cluster import commands

    monkeypatch.setattr(commands, "POLL", 3600.0)
    monkeypatch.setattr(commands, "LEASE_CHECK", 3600.0)
    async with node(tmp_path, "a", url) as a, node(tmp_path, "b", url) as b:
        await a.create_flow(PAUSE)
        ex = await a.create_execution("cluster.test", "gate")
        await wait_state(a, ex["id"], "PAUSED")
        with trio.fail_after(10):
            await b.kill(ex["id"])
        assert (await a.wait_for_end(ex["id"]))["state"]["current"] == "KILLED"


async def test_a_resume_with_an_uploaded_file_is_forwarded_with_the_file(tmp_path, url):
    from pathlib import Path

    source = (Path(__file__).parent / "flows" / "pause-on-resume.yaml").read_text()
    upload = tmp_path / "upload.txt"
    upload.write_text("signed")
    async with node(tmp_path, "a", url) as a, node(tmp_path, "b", url) as b:
        await a.create_flow(source)
        ex = await a.create_execution("company.team", "pause_on_resume")
        await wait_state(a, ex["id"], "PAUSED")
        await b.resume(ex["id"], inputs={"asked": "ann"}, files={"data": ("signed.txt", upload)})
        done = await a.wait_for_end(ex["id"])
        assert done["state"]["current"] == "SUCCESS"
        outputs = done["taskRunList"][1]["outputs"]["values"]
        assert outputs["approver"] == "ann" and outputs["attachment"].startswith("kestra:///")
        assert a.storage.read_text(outputs["attachment"]) == "signed"  # the file travelled to the owner


async def test_commands_left_by_a_dead_caller_are_removed(tmp_path, url, pg_server):
    database = url.rsplit("/", 1)[1]
    async with node(tmp_path, "a", url, lease=0.5) as a:
        with pg_server.connect(database) as conn:
            conn.execute("INSERT INTO cluster_commands (node_id, caller_node_id, execution_id, action, args, status, "
                         "created_at) VALUES ('gone', 'dead', 'x', 'kill', '{}', 'pending', now() - interval '1 h'), "
                         "('gone', 'alive', 'y', 'kill', '{}', 'pending', now())")
            with trio.fail_after(5):
                while conn.execute("SELECT count(*) FROM cluster_commands").fetchone()[0] == 2:
                    await trio.sleep(0.05)
            assert conn.execute("SELECT caller_node_id FROM cluster_commands").fetchall() == [("alive",)]
        assert a.cluster.shared


async def test_an_ended_execution_with_a_dead_owners_lease_is_not_run_again(tmp_path, url, pg_server):
    """Its node stored the end and died before dropping the lease: the claimer only drops the lease."""
    async with node(tmp_path, "seed", url) as seed:
        await seed.create_flow(RETURN)
        ex = await seed.execute("cluster.test", "quick")
    with pg_server.connect(url.rsplit("/", 1)[1]) as conn:
        conn.execute("INSERT INTO execution_leases VALUES (%s, 'dead-node', 't', now() - interval '1 s') "
                     "ON CONFLICT (execution_id) DO UPDATE SET node_id = 'dead-node'", (ex["id"],))
    async with node(tmp_path, "b", url) as b:
        with trio.fail_after(5):
            while leases(pg_server, url):
                await trio.sleep(0.05)
        assert ex["id"] not in b.actors
        doc = await b.store.get_execution(ex["id"])
        assert doc["state"] == ex["state"] and len(doc["taskRunList"][0]["attempts"]) == 1


async def test_killing_a_parent_kills_its_children_on_other_nodes(tmp_path, url):
    async with node(tmp_path, "a", url) as a, node(tmp_path, "b", url) as b:
        await a.create_flow(PAUSE)
        parent = await a.create_execution("cluster.test", "gate")
        await wait_state(a, parent["id"], "PAUSED")
        # a child of it that node B runs (as after B claimed it from a node that died)
        trigger = {"id": "call", "type": "io.kestra.plugin.core.flow.Subflow",
                   "variables": {"executionId": parent["id"], "namespace": "cluster.test", "flowId": "gate",
                                 "flowRevision": 1}}
        child = await b.create_execution("cluster.test", "gate", trigger=trigger)
        unrelated = await b.create_execution("cluster.test", "gate")
        for ex in (child, unrelated):
            await wait_state(b, ex["id"], "PAUSED")
        await a.kill(parent["id"])
        with trio.fail_after(10):
            assert (await b.wait_for_end(child["id"]))["state"]["current"] == "KILLED"
        assert (await a.wait_for_end(parent["id"]))["state"]["current"] == "KILLED"
        assert (await b.store.get_execution(unrelated["id"]))["state"]["current"] == "PAUSED"


async def test_the_writer_drops_execution_documents_past_the_nodes_deadline(url):
    import time

    from falconet.runtime.store.postgres import PostgresStore

    store = PostgresStore(url)
    await store.open()
    try:
        doc = {"id": "late", "namespace": "ns", "flowId": "f", "labels": [],
               "state": {"current": "RUNNING", "histories": [], "startDate": "2024-05-01T12:00:00Z"}}
        store.execution_writes_until = time.monotonic() + 60
        await store.save_execution(doc)
        assert (await store.get_execution("late"))["state"]["current"] == "RUNNING"
        store.execution_writes_until = time.monotonic() - 1  # the node's leases may have expired
        await store.save_execution(dict(doc, state=dict(doc["state"], current="SUCCESS")))
        assert (await store.get_execution("late"))["state"]["current"] == "RUNNING"
    finally:
        await store.close()


async def test_a_command_while_the_database_is_unreachable_is_a_503(tmp_path, url, pg_server):
    from falconet.http.app import create_app

    async with node(tmp_path, "a", url, lease=30) as a:
        await a.create_flow(PAUSE)
        ex = await a.create_execution("cluster.test", "gate")
        await wait_state(a, ex["id"], "PAUSED")
        a.cluster.db.url = url.rsplit("/", 1)[0] + "/no_such_database"  # its next connection fails
        a.cluster.db.close()
        r = await create_app(a, config=a.config).test_client().post(f"/api/v1/executions/{ex['id']}/resume")
        assert r.status_code == 503
        assert (await r.get_json())["message"].startswith("Service Unavailable: the cluster database")
