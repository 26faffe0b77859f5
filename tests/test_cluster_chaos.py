"""The chaos test of cluster mode (README "Running a cluster"): 3 real ``falconet server standalone`` nodes on one
PostgreSQL database (tests/cluster.py), 300 executions of a flow with short Sleeps created through the
nodes' HTTP APIs, one node SIGKILLed midway. Every acknowledged execution ends SUCCESS, nothing is lost or
left leased, and no execution ran on two nodes at once: each task logs the node that runs it
(``{{ envs.node }}``), and the log lines of one execution written by two nodes never interleave — the node
that was killed stopped before the other one started."""
from __future__ import annotations

import json
import time
from collections import defaultdict

import httpx
import trio

from .cluster import nodes, store_url

FLOW = """id: chaos
namespace: cluster.test
tasks:
  - id: begin
    type: io.kestra.plugin.core.log.Log
    message: "begin {{ envs.node }}"
  - id: nap
    type: io.kestra.plugin.core.flow.Sleep
    duration: PT1.5S
  - id: end
    type: io.kestra.plugin.core.log.Log
    message: "end {{ envs.node }}"
"""

TOTAL = 300
KILL_AFTER = 150
LEASE = 3.0


async def test_three_nodes_one_killed_midway(tmp_path, pg_server):
    url = store_url(pg_server)
    database = url.rsplit("/", 1)[1]
    started = time.monotonic()
    with nodes(url, tmp_path, 3, lease_duration=LEASE) as cluster:
        victim = cluster[1]
        async with httpx.AsyncClient(timeout=30) as http:
            r = await http.post(f"{cluster[0].api}/flows", content=FLOW,
                                headers={"Content-Type": "application/x-yaml"})
            assert r.status_code == 200, r.text
            acknowledged: list[str] = []
            killed_at: list[float] = []
            alive = list(cluster)

            async def create(i: int) -> None:
                for attempt in range(len(cluster)):
                    target = alive[(i + attempt) % len(alive)]
                    try:
                        r = await http.post(f"{target.api}/executions/cluster.test/chaos")
                    except httpx.TransportError:
                        continue  # the killed node: not acknowledged, sent to another one
                    if r.status_code == 200:
                        acknowledged.append(r.json()["id"])
                        if len(acknowledged) == KILL_AFTER:
                            victim.kill()
                            killed_at.append(time.time())
                            alive.remove(victim)
                        return
                raise AssertionError(f"execution {i} was refused by every node")

            limiter = trio.CapacityLimiter(12)

            async def limited(i: int) -> None:
                async with limiter:
                    await create(i)

            async with trio.open_nursery() as nursery:
                for i in range(TOTAL):
                    nursery.start_soon(limited, i)
        assert len(acknowledged) == TOTAL and killed_at

        # every execution of the database ends (those the victim had acknowledged too)
        with pg_server.connect(database) as conn:
            with trio.fail_after(45):
                while conn.execute("SELECT count(*) FROM executions WHERE state <> 'SUCCESS'").fetchone()[0]:
                    await trio.sleep(0.25)
                while conn.execute("SELECT count(*) FROM execution_leases").fetchone()[0]:
                    await trio.sleep(0.1)  # every lease released once its end is stored
            docs = {row[0]: json.loads(row[1]) for row in conn.execute("SELECT id, doc FROM executions")}
            lines = conn.execute("SELECT execution_id, timestamp, message FROM logs WHERE task_id IN "
                                 "('begin', 'end') ORDER BY timestamp").fetchall()
        elapsed = time.monotonic() - started
    assert set(acknowledged) <= set(docs)  # nothing acknowledged is lost
    assert all(doc["state"]["current"] == "SUCCESS" for doc in docs.values())

    # which node ran what, and when
    spans: dict[str, dict[str, list[int]]] = defaultdict(dict)
    for execution_id, ts, message in lines:
        node = message.split()[-1]
        span = spans[execution_id].setdefault(node, [ts, ts])
        span[1] = ts
    assert set(spans) == set(docs)
    took_over = 0
    for execution_id, by_node in spans.items():
        assert set(by_node) <= {"node1", "node2", "node3"}
        doc = docs[execution_id]
        ended_by = {tr["taskId"]: tr for tr in doc["taskRunList"]}
        assert set(ended_by) == {"begin", "nap", "end"}
        if len(by_node) == 1:
            continue
        # two nodes: the victim first, stopped before the other one took over; never two live nodes
        took_over += 1
        assert len(by_node) == 2 and victim.name in by_node, by_node
        (other,) = set(by_node) - {victim.name}
        assert by_node[victim.name][1] < by_node[other][0]
        assert by_node[victim.name][1] / 1e6 <= killed_at[0]
    # the task runs of one execution: attempts one after the other, the last one successful
    for doc in docs.values():
        for tr in doc["taskRunList"]:
            attempts = tr.get("attempts") or []
            assert attempts and attempts[-1]["state"]["current"] == "SUCCESS"
            for before, after in zip(attempts, attempts[1:]):
                assert before["state"]["current"] != "RUNNING"
                assert before["state"]["histories"][-1]["date"] <= after["state"]["histories"][0]["date"]
    print(f"chaos: {len(docs)} executions, {took_over} resumed on another node, {elapsed:.1f} s")
    assert elapsed < 90


async def test_a_node_that_cannot_renew_its_leases_exits_with_code_3(tmp_path, pg_server):
    url = store_url(pg_server)
    with nodes(url, tmp_path, 1, lease_duration=1.0) as (node,):
        with pg_server.connect(url.rsplit("/", 1)[1]) as blocker:  # its heartbeat's statements hang
            blocker.execute("BEGIN")
            blocker.execute("LOCK TABLE execution_leases IN ACCESS EXCLUSIVE MODE")
            with trio.fail_after(20):
                while node.proc.poll() is None:
                    await trio.sleep(0.1)
    assert node.proc.returncode == 3
    assert f"falconet: node {node.node_id} stopped: its leases could not be renewed" in node.output()
