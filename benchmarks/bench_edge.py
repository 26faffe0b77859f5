"""Edge box: the server pinned to ONE core, sustained executions/s of a 2-task flow and its peak RSS.

    python benchmarks/bench_edge.py [--executions 2000] [--concurrency 8] [--rounds 3]

`falconet server local` (SQLite store) runs under ``taskset -c 0``; the HTTP clients of ``bench_http.py``
(keep-alive sockets in threads) run pinned to another core when there is one. Each round POSTs
``--executions`` executions of the 2-task flow of ``bench_http.py`` and waits for all to end; throughput =
executions / (last endDate − first POST). Peak RSS = the server's VmHWM after the last round.
Target (issue 16): >= 100 executions/s under 128 MB.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_http import create_many_raw, fetch_final, free_port, instant, load_flow_when_up  # noqa: E402


def status_kb(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--executions", type=int, default=2000, help="executions per round")
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    if not shutil.which("taskset"):
        raise SystemExit("taskset (util-linux) is needed to pin the server to one core")
    cores = sorted(os.sched_getaffinity(0))
    server_core, client_cores = cores[0], set(cores[1:]) or {cores[0]}

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    rates: list[float] = []
    with tempfile.TemporaryDirectory(prefix="bench-edge-") as data:
        env = dict(os.environ, KESTRA_URL=base)
        server = subprocess.Popen(["taskset", "-c", str(server_core), sys.executable, "-m", "falconet", "server",
                                   "local", "--port", str(port), "--data-dir", data], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.sched_setaffinity(0, client_cores)
        try:
            with httpx.Client(base_url=base, timeout=30) as http:
                load_flow_when_up(http, server)
            idle = status_kb(server.pid, "VmRSS")
            done_ids: set[str] = set()
            for _ in range(args.rounds):
                sent = create_many_raw(base, args.executions, args.concurrency)
                final = fetch_final(base, set(sent))
                if len(final) != len(sent):
                    raise SystemExit(f"only {len(final)} of {len(sent)} executions ended")
                span = max(instant(d["state"]["endDate"]) for d in final.values()) - min(sent.values())
                rates.append(len(final) / span)
                done_ids |= set(final)
            peak = status_kb(server.pid, "VmHWM")
        finally:
            server.terminate()
            server.wait(10)
    print(f"server pinned to core {server_core}; {args.rounds} rounds of {args.executions} executions, "
          f"{args.concurrency} concurrent clients")
    print(f"sustained throughput: median {statistics.median(rates):.0f} executions/s "
          f"(rounds: {', '.join(f'{r:.0f}' for r in rates)}); target >= 100/s")
    print(f"server RSS: idle {idle / 1024:.1f} MB, peak {peak / 1024:.1f} MB after {len(done_ids)} executions; "
          f"target < 128 MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
