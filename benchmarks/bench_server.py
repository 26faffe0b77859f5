"""Server start-up time and idle memory (this machine). Prints figures; not a test.

    python benchmarks/bench_server.py

Starts `falconet server local` on a free port with a fresh data folder, measures the time until
`GET /api/v1/configs` answers (wall clock, and the CPU time the server used until then: on a loaded
machine the CPU time is the steadier figure), then the process RSS after one idle second.
Targets (issue 16): answering HTTP in <= 0.5 s, idle RSS <= 50 MB.

The servers run with their bytecode compiled, as an installed package has it (pip compiles it; the binary
bundles it): into a temporary ``PYTHONPYCACHEPREFIX``, filled by one start that is not measured, whatever
``PYTHONDONTWRITEBYTECODE`` says. ``--compile-each-start`` measures a checkout under
``PYTHONDONTWRITEBYTECODE`` instead, where every start compiles Falconet's sources again (slower, and about
1.5 MB more).
"""
from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (``/proc/<pid>/stat``, fields 14 and 15)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def one(env: dict[str, str] | None = None) -> tuple[float, int, float]:
    port = free_port()
    with tempfile.TemporaryDirectory() as data:
        start = time.monotonic()
        proc = subprocess.Popen([sys.executable, "-m", "falconet", "server", "local", "--port", str(port),
                                 "--data-dir", data], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        try:
            while True:
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/configs", timeout=1).read()
                    break
                except OSError:
                    if proc.poll() is not None or time.monotonic() - start > 30:
                        raise SystemExit("the server did not start")
                    time.sleep(0.005)
            ready = time.monotonic() - start
            cpu = cpu_seconds(proc.pid)
            time.sleep(1)
            with open(f"/proc/{proc.pid}/status") as f:
                rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS"))
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    return ready, rss, cpu


def compiled_env(pycache: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = pycache
    return env


if __name__ == "__main__":
    if "--compile-each-start" in sys.argv[1:]:
        print("sources compiled at each start" if os.environ.get("PYTHONDONTWRITEBYTECODE")
              else "PYTHONDONTWRITEBYTECODE is not set: bytecode is written beside the sources")
        runs = [one() for _ in range(5)]
    else:
        with tempfile.TemporaryDirectory() as pycache:
            env = compiled_env(pycache)
            one(env)            # compiles the bytecode
            runs = [one(env) for _ in range(5)]
    print(f"start-up to first HTTP answer: median {statistics.median(r[0] for r in runs) * 1000:.0f} ms "
          f"(runs: {', '.join(f'{r[0] * 1000:.0f}' for r in runs)})")
    print(f"  CPU time of the server until then: median {statistics.median(r[2] for r in runs) * 1000:.0f} ms "
          f"(runs: {', '.join(f'{r[2] * 1000:.0f}' for r in runs)}); target <= 500 ms")
    print(f"idle RSS after 1 s: median {statistics.median(r[1] for r in runs) / 1024:.1f} MB "
          f"(runs: {', '.join(f'{r[1] / 1024:.1f}' for r in runs)}); target <= 50 MB")
