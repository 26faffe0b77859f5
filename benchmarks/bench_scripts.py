"""Script-task overhead: 40 sequential ``python.Script`` tasks computing fibo(10), through the engine.

Overhead per task = (wall time of the execution / 40) − (the same script's own run time, measured by
starting the same interpreter on the same file directly, 40 times, sequentially). Target ≤ 15 ms
(Kestra ≈ 114 ms, Hatchet ≈ 28 ms between sequential tasks on comparable hardware).

Run: ``python benchmarks/bench_scripts.py [--tasks 40] [--rounds 3]``
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import trio

import falconet

SCRIPT = """\
def fibo(n):
    return n if n < 2 else fibo(n - 1) + fibo(n - 2)
print("::{\\"outputs\\": {\\"fibo\\": %d}}::" % fibo(10))
"""


def flow_source(tasks: int) -> str:
    lines = ["id: bench-scripts", "namespace: bench", "tasks:"]
    body = "\n".join("      " + line for line in SCRIPT.splitlines())
    for i in range(tasks):
        lines += [f"  - id: fibo_{i}", "    type: io.kestra.plugin.scripts.python.Script",
                  "    warningOnStdErr: false", "    script: |", body]
    return "\n".join(lines) + "\n"


async def script_alone(path: Path, tasks: int) -> float:
    """Seconds per direct run of the same script with the same interpreter, started the way the Process
    runner starts it (``/bin/sh -c``), sequentially, from the same trio process."""
    started = time.perf_counter()
    for _ in range(tasks):
        await trio.run_process(["/bin/sh", "-c", f"{sys.executable} {path}"], capture_stdout=True)
    return (time.perf_counter() - started) / tasks


async def measure(tasks: int, rounds: int) -> list[tuple[float, float]]:
    """(script alone, through the engine) seconds per task for each round; the two are interleaved so that
    machine load affects both alike. A first warm-up round is dropped."""
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fibo.py"
        path.write_text(SCRIPT)
        async with falconet.open_engine(data_dir=Path(tmp) / "data", store="memory") as engine:
            await engine.create_flow(flow_source(tasks))
            for _ in range(rounds + 1):
                alone = await script_alone(path, tasks)
                started = time.perf_counter()
                ex = await engine.execute("bench", "bench-scripts")
                elapsed = time.perf_counter() - started
                if ex["state"]["current"] != "SUCCESS":
                    raise SystemExit(f"execution ended {ex['state']['current']}")
                values = {tr["outputs"]["vars"]["fibo"] for tr in ex["taskRunList"]}
                if values != {55}:
                    raise SystemExit(f"unexpected outputs {values}")
                results.append((alone, elapsed / tasks))
    return results[1:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    rounds = trio.run(measure, args.tasks, args.rounds)
    overheads = [engine - alone for alone, engine in rounds]
    print(f"{args.tasks} sequential python.Script tasks (fibo(10)), {args.rounds} rounds (interleaved)")
    for i, (alone, engine) in enumerate(rounds, 1):
        print(f"  round {i}: script alone {alone * 1000:6.1f} ms, through the engine {engine * 1000:6.1f} ms per task"
              f" -> overhead {(engine - alone) * 1000:5.1f} ms")
    print(f"overhead per task beyond the script's own run: {statistics.median(overheads) * 1000:.1f} ms (median), "
          f"{min(overheads) * 1000:.1f} ms (best)   [target <= 15 ms]")


if __name__ == "__main__":
    main()
