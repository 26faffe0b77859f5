"""HTTP throughput: executions/s of a 2-task flow (OutputValues → Log) created with
``POST /api/v1/executions/{ns}/{id}`` by concurrent HTTP clients, and p50/p95 request-to-terminal latency.

The server is ``falconet server local`` in its own process (SQLite store unless ``--store memory``);
the clients are keep-alive HTTP/1.1 connections on plain sockets in threads (``--client httpx`` uses
httpx on trio instead, which is slower than the server), ``--procs`` forks more client processes. Latency of one
execution = its ``state.endDate`` (server clock, same machine) minus the instant its POST was sent.
Throughput = executions / (last endDate − first POST). On Linux it also prints the server process's CPU
time (user + system, all its threads) per execution, from the first POST until every execution has ended:
a figure that other work on a shared machine disturbs far less than the throughput.

Target (issue 16): ≥ 1,000 executions/s with p50 ≤ 50 ms at 16 concurrent clients (the defaults).

    python benchmarks/bench_http.py [--executions 2000] [--concurrency 16] [--procs 1] [--store sqlite] [--profile F]
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import socket
import statistics
import re
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

import httpx
import trio

FLOW = """id: two
namespace: bench.http
tasks:
  - id: out
    type: io.kestra.plugin.core.output.OutputValues
    values:
      v: hello
  - id: log
    type: io.kestra.plugin.core.log.Log
    message: "{{ outputs.out.values.v }}"
"""
TERMINAL = {"SUCCESS", "WARNING", "FAILED", "KILLED", "CANCELLED", "RETRIED", "SKIPPED"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def load_flow_when_up(http: httpx.Client, server: subprocess.Popen, attempts: int = 300) -> None:
    """Wait until the server answers ``/ping`` (``attempts`` tries 0.1 s apart), then create FLOW; SystemExit
    (with the server's stderr when it is piped) when it never answers."""
    for _ in range(attempts):
        try:
            if http.get("/ping").status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.1)
    else:
        raise SystemExit("the server did not start" + (f": {server.stderr.read().decode()}" if server.stderr else ""))
    http.post("/api/v1/flows", content=FLOW, headers={"Content-Type": "application/x-yaml"}).raise_for_status()


def instant(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


#### Clients ################################################################################################

async def create_many_httpx(base: str, count: int, concurrency: int) -> dict[str, float]:
    """POST ``count`` executions with httpx, ``concurrency`` requests in flight; {execution id: send time}.

    httpx on trio tops out near 350 requests/s on this machine (measured against ``/ping``), below the
    server, so the default client is :func:`create_many_raw`."""
    sent: dict[str, float] = {}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as http:
        remaining = [count]

        async def worker() -> None:
            while remaining[0] > 0:
                remaining[0] -= 1
                t = time.time()
                response = await http.post("/api/v1/executions/bench.http/two")
                response.raise_for_status()
                sent[response.json()["id"]] = t

        async with trio.open_nursery() as nursery:
            for _ in range(concurrency):
                nursery.start_soon(worker)
    return sent


_ID = re.compile(rb'"id":"([0-9A-Za-z]+)"')


def create_many_raw(base: str, count: int, concurrency: int,
                    head: str = "POST /api/v1/executions/bench.http/two") -> dict[str, float]:
    """The same with ``concurrency`` threads, each a keep-alive HTTP/1.1 connection on a plain socket
    (request bytes prebuilt, the response read by Content-Length): about 2,000 requests/s per process.
    ``head`` is the request's method and path (answers without an ``id`` are not collected)."""
    host, port = base.removeprefix("http://").split(":")
    request = f"{head} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Length: 0\r\n\r\n".encode()
    sent: dict[str, float] = {}
    remaining = [count]
    lock = threading.Lock()

    def worker() -> None:
        with socket.create_connection((host, int(port))) as sock:
            buffer = b""
            while True:
                with lock:
                    if remaining[0] <= 0:
                        return
                    remaining[0] -= 1
                t = time.time()
                sock.sendall(request)
                while b"\r\n\r\n" not in buffer:
                    buffer += sock.recv(65536)
                head, _, buffer = buffer.partition(b"\r\n\r\n")
                if not head.startswith(b"HTTP/1.1 200"):
                    raise RuntimeError(head.decode(errors="replace"))
                length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
                while len(buffer) < length:
                    buffer += sock.recv(65536)
                body, buffer = buffer[:length], buffer[length:]
                found = _ID.search(body)
                if found:
                    sent[found.group(1).decode()] = t

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return sent


def create_many(client: str, base: str, count: int, concurrency: int) -> dict[str, float]:
    if client == "httpx":
        return trio.run(create_many_httpx, base, count, concurrency)
    return create_many_raw(base, count, concurrency)


def client_process(client: str, base: str, count: int, concurrency: int,
                   queue: "multiprocessing.Queue[dict[str, float]]") -> None:
    queue.put(create_many(client, base, count, concurrency))


#### Run ####################################################################################################

def fetch_final(base: str, ids: set[str], timeout: float = 300) -> dict[str, dict]:
    """Final documents of ``ids`` (polled through the search API until all are terminated)."""
    deadline = time.time() + timeout
    done: dict[str, dict] = {}
    with httpx.Client(base_url=base, timeout=60) as http:
        while len(done) < len(ids) and time.time() < deadline:
            page = 1
            while True:
                r = http.get("/api/v1/executions/search", params={"namespace": "bench.http", "flowId": "two",
                                                                 "page": page, "size": 1000})
                r.raise_for_status()
                results = r.json()["results"]
                for doc in results:
                    if doc["id"] in ids and doc["state"]["current"] in TERMINAL:
                        done[doc["id"]] = doc
                if len(results) < 1000:
                    break
                page += 1
            if len(done) < len(ids):
                time.sleep(0.2)
    return done


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of process ``pid`` so far (None where /proc is absent)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def thread_cpu_seconds(pid: int) -> dict[str, float]:
    """User + system CPU time of each thread of process ``pid`` so far, by thread id ({} where /proc is
    absent)."""
    times = {}
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            times[tid] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except OSError:
        return {}
    return times


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--executions", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=16, help="parallel requests per client process")
    ap.add_argument("--procs", type=int, default=1, help="client processes")
    ap.add_argument("--store", default="sqlite", choices=["sqlite", "memory"])
    ap.add_argument("--client", default="raw", choices=["raw", "httpx"],
                    help="raw keep-alive sockets (default) or httpx (itself the bottleneck, ~350 req/s)")
    ap.add_argument("--ping", type=int, default=0, metavar="N",
                    help="first send N GET /ping with the same clients: the HTTP stack's own cost")
    ap.add_argument("--profile", metavar="FILE", help="run the server under cProfile, stats written to FILE")
    args = ap.parse_args()

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="bench-http-") as data:
        env = dict(os.environ, FALCONET_STORE=args.store, KESTRA_URL=base)
        profile = ["-m", "cProfile", "-o", args.profile] if args.profile else []
        server = subprocess.Popen([sys.executable, *profile, "-m", "falconet", "server", "local", "--port", str(port),
                                   "--data-dir", data], env=env, cwd=Path(__file__).resolve().parent.parent,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            with httpx.Client(base_url=base, timeout=10) as http:
                load_flow_when_up(http, server, attempts=100)
                for _ in range(50):  # warm-up
                    http.post("/api/v1/executions/bench.http/two?wait=true").raise_for_status()
            if args.ping:
                ping_cpu = cpu_seconds(server.pid)
                ping_started = time.time()
                create_many_raw(base, args.ping, args.concurrency, head="GET /ping")
                ping_wall = time.time() - ping_started
                if ping_cpu is not None:
                    ping_cpu = cpu_seconds(server.pid) - ping_cpu  # type: ignore[operator]

            per_proc = args.executions // args.procs
            cpu_start, threads_start = cpu_seconds(server.pid), thread_cpu_seconds(server.pid)
            client_cpu = time.process_time()
            started = time.time()
            if args.procs == 1:
                sent = create_many(args.client, base, per_proc, args.concurrency)
            else:
                queue: multiprocessing.Queue[dict[str, float]] = multiprocessing.Queue()
                work = (args.client, base, per_proc, args.concurrency, queue)
                procs = [multiprocessing.Process(target=client_process, args=work) for _ in range(args.procs)]
                for p in procs:
                    p.start()
                sent = {}
                for _ in procs:
                    sent.update(queue.get())
                for p in procs:
                    p.join()
            created = time.time()
            client_cpu = time.process_time() - client_cpu
            final = fetch_final(base, set(sent))
            cpu_end, threads_end = cpu_seconds(server.pid), thread_cpu_seconds(server.pid)
        finally:
            server.terminate()
            server.wait(10)

    ends = {i: instant(d["state"]["endDate"]) for i, d in final.items()}
    latencies = sorted((ends[i] - sent[i]) * 1000 for i in ends)
    span = max(ends.values()) - min(sent.values())
    states: dict[str, int] = {}
    for d in final.values():
        states[d["state"]["current"]] = states.get(d["state"]["current"], 0) + 1
    q = statistics.quantiles(latencies, n=100)
    print(f"store={args.store} executions={len(sent)} terminated={len(final)} states={states}")
    print(f"client={args.client} processes={args.procs} concurrency/process={args.concurrency}")
    if args.ping:
        print(f"GET /ping: {args.ping / ping_wall:.0f} requests/s"
              + (f", server CPU time {ping_cpu / args.ping * 1000:.3f} ms per request" if ping_cpu is not None else ""))
    print(f"POST rate: {len(sent) / (created - started):.0f} creations/s")
    print(f"throughput: {len(final) / span:.0f} executions/s (first POST to last end: {span:.2f} s)")
    print(f"request-to-terminal latency: p50 {q[49]:.1f} ms, p95 {q[94]:.1f} ms, max {latencies[-1]:.1f} ms")
    print("target: ≥ 1,000 executions/s with p50 ≤ 50 ms at 16 concurrent clients")
    figures = {"executions_per_s": round(len(final) / span, 1), "p50_ms": round(q[49], 1), "p95_ms": round(q[94], 1)}
    if cpu_start is not None and cpu_end is not None:
        figures["server_cpu_ms_per_execution"] = round((cpu_end - cpu_start) / len(sent) * 1000, 3)
        print(f"server CPU time: {figures['server_cpu_ms_per_execution']:.3f} ms per execution")
        busiest = sorted((t - threads_start.get(tid, 0.0) for tid, t in threads_end.items()), reverse=True)
        if len(busiest) >= 2:   # the trio thread, then the SQLite writer thread
            print(f"  by thread: {busiest[0] / len(sent) * 1000:.3f} ms (trio), "
                  f"{busiest[1] / len(sent) * 1000:.3f} ms (next busiest: the SQLite writer)")
    if args.procs == 1:
        print(f"client CPU time: {client_cpu / len(sent) * 1000:.3f} ms per request")
    print(json.dumps(figures))
    return 0 if len(final) == len(sent) else 1


if __name__ == "__main__":
    sys.exit(main())
