"""Cluster throughput: executions/s and request-to-terminal latency of the 2-task flow (the flow of
bench_http.py: OutputValues → Log) on 1, 2 and 3 ``falconet server standalone`` nodes sharing one PostgreSQL
database, side by side with ``falconet server local`` on SQLite.

Each configuration starts its own servers (own processes, own ``--data-dir``, one shared ``--storage-dir``,
the flow loaded with ``--flows``) and, for PostgreSQL, a fresh database of one throw-away PostgreSQL server
started like the tests' (tests/pg.py: ``initdb`` + ``pg_ctl`` from Debian's ``postgresql`` package, in a
temporary folder, on a free port). The clients (bench_http.py's keep-alive sockets in threads) spread the
POSTs evenly over the nodes, as a load balancer would; each node runs the executions it created. Latency
and throughput are measured as in bench_http.py (endDate minus POST instant; first POST to last end).

    python benchmarks/bench_cluster.py [--executions 1000] [--concurrency 48] [--nodes 1,2,3]

Several nodes on one database need the cluster's execution leases; with fewer cores than nodes the nodes
share the CPU, so the figures show the database's cost rather than scaling.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from contextlib import ExitStack
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(HERE), str(ROOT / "tests")]

import bench_http  # noqa: E402  (the flow, the clients, the final-state poll)
import pg  # noqa: E402  (tests/pg.py: a throw-away PostgreSQL server)


def start_node(args: list[str], port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([sys.executable, "-m", "falconet", "server", *args, "--port", str(port)],
                            env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    with httpx.Client(base_url=base, timeout=10) as http:
        for _ in range(300):
            if proc.poll() is not None:
                raise SystemExit(f"node did not start: {proc.stderr.read().decode() if proc.stderr else ''}")
            try:
                if http.get("/ping").status_code == 200:
                    return proc
            except httpx.TransportError:
                pass
            time.sleep(0.1)
    proc.terminate()
    raise SystemExit("node did not answer /ping within 30 s")


def run_config(label: str, node_args: list[list[str]], executions: int, concurrency: int) -> dict[str, float]:
    """Start the nodes, warm them up, drive them, stop them; the figures."""
    env = dict(os.environ)
    env.pop("FALCONET_STORE", None)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        bases = []
        for args in node_args:
            port = bench_http.free_port()
            procs.append(start_node(args, port, env))
            bases.append(f"http://127.0.0.1:{port}")
        for base in bases:
            with httpx.Client(base_url=base, timeout=60) as http:
                for _ in range(30):
                    http.post("/api/v1/executions/bench.http/two?wait=true").raise_for_status()
        sent: dict[str, float] = {}
        lock = threading.Lock()

        def drive(base: str, count: int) -> None:
            got = bench_http.create_many_raw(base, count, max(1, concurrency // len(bases)))
            with lock:
                sent.update(got)

        shares = [executions // len(bases) + (i < executions % len(bases)) for i in range(len(bases))]
        threads = [threading.Thread(target=drive, args=pair) for pair in zip(bases, shares, strict=True)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        final = bench_http.fetch_final(bases[0], set(sent))
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    ends = {i: bench_http.instant(d["state"]["endDate"]) for i, d in final.items()}
    latencies = sorted((ends[i] - sent[i]) * 1000 for i in ends)
    span = max(ends.values()) - min(sent.values())
    success = sum(1 for d in final.values() if d["state"]["current"] == "SUCCESS")
    q = statistics.quantiles(latencies, n=100)
    return {"label": label, "nodes": len(node_args), "executions": len(sent), "success": success,
            "executions_per_s": round(len(final) / span, 1), "p50_ms": round(q[49], 1), "p95_ms": round(q[94], 1)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--executions", type=int, default=1000)
    ap.add_argument("--concurrency", type=int, default=48, help="parallel requests, spread over the nodes")
    ap.add_argument("--nodes", default="1,2,3", help="node counts to run on PostgreSQL, comma-separated")
    args = ap.parse_args()
    counts = [int(n) for n in args.nodes.split(",") if n.strip()]
    reason = pg.missing_reason()
    if reason:
        raise SystemExit(f"cannot start PostgreSQL: {reason}")

    results = []
    with ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-cluster-")))
        flow_file = work / "two.yaml"
        flow_file.write_text(bench_http.FLOW)
        local = work / "local"
        results.append(run_config("server local (SQLite)", [["local", "--data-dir", str(local), "--flows",
                                                              str(flow_file)]],
                                  args.executions, args.concurrency))
        server = stack.enter_context(pg.running_server())
        for n in counts:
            database = server.create_database(f"bench_{uuid.uuid4().hex[:10]}")
            url = f"postgresql://{server.user}:{server.password}@{server.host}:{server.port}/{database}"
            storage = work / f"storage-{n}"
            nodes = [["standalone", "--store", url, "--storage-dir", str(storage), "--data-dir",
                      str(work / f"pg{n}-node{i}"), "--flows", str(flow_file)] for i in range(n)]
            results.append(run_config(f"standalone x{n} (PostgreSQL)", nodes, args.executions, args.concurrency))

    print(f"{'configuration':32} {'nodes':>5} {'executions':>10} {'SUCCESS':>8} {'exec/s':>8} {'p50 ms':>8} "
          f"{'p95 ms':>8}")
    for r in results:
        print(f"{r['label']:32} {r['nodes']:>5} {r['executions']:>10} {r['success']:>8} {r['executions_per_s']:>8} "
              f"{r['p50_ms']:>8} {r['p95_ms']:>8}")
    sqlite = results[0]["executions_per_s"]
    one = next((r for r in results if r["label"].startswith("standalone") and r["nodes"] == 1), None)
    if one is not None:
        ratio = one["executions_per_s"] / sqlite
        print(f"target: one PostgreSQL node >= 50% of SQLite's throughput: {ratio:.0%} "
              f"({'met' if ratio >= 0.5 else 'NOT met'})")
    print(json.dumps(results))
    return 0 if all(r["success"] == r["executions"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
