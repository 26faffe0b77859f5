"""Engine benchmarks (in-process, this machine). Prints figures; not a test.

    python benchmarks/bench_engine.py [--store sqlite|memory] [--executions 2000]

1. median gap between 40 sequential Return tasks (next task's CREATED minus previous task's end)
2. executions/s and task runs/s of a 2-task flow (OutputValues -> Log), 200 executions in flight
3. wall time of a ForEach over 100 values with concurrencyLimit 0
Targets (DESIGN.md): gap <= 1 ms, >= 2,000 task runs/s, ForEach-100 <= 100 ms.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import trio

from falconet import open_engine
from falconet.runtime.kernel.execution import parse_instant

SEQ40 = "id: seq40\nnamespace: bench\ntasks:\n" + "".join(
    f"  - id: r{i}\n    type: io.kestra.plugin.core.debug.Return\n    format: '{{{{ task.id }}}}'\n" for i in range(40))

TWO = """id: two
namespace: bench
tasks:
  - id: out
    type: io.kestra.plugin.core.output.OutputValues
    values:
      a: "{{ execution.id }}"
  - id: log
    type: io.kestra.plugin.core.log.Log
    message: "{{ outputs.out.values.a }}"
"""

FOREACH = """id: each100
namespace: bench
tasks:
  - id: each
    type: io.kestra.plugin.core.flow.ForEach
    values: "{{ range(1, 100) }}"
    concurrencyLimit: 0
    tasks:
      - id: r
        type: io.kestra.plugin.core.debug.Return
        format: "{{ taskrun.value }}"
"""


def gaps(ex: dict) -> list[float]:
    runs = ex["taskRunList"]
    out = []
    for prev, nxt in zip(runs, runs[1:]):
        end = parse_instant(prev["state"]["histories"][-1]["date"])
        start = parse_instant(nxt["state"]["histories"][0]["date"])
        out.append((start - end).total_seconds() * 1000)
    return out


async def main(store: str, executions: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        async with open_engine(tmp, store=store) as engine:
            for src in (SEQ40, TWO, FOREACH):
                await engine.create_flow(src)

            # 1. sequential gap (instants are stored with millisecond precision, so use wall time too)
            await engine.execute("bench", "seq40")  # warm-up: template cache, imports
            t0 = time.perf_counter()
            ex = await engine.execute("bench", "seq40")
            wall = (time.perf_counter() - t0) * 1000
            print(f"sequential 40 Return tasks: {wall:.1f} ms wall, {wall / 40:.2f} ms per task, "
                  f"median recorded gap {statistics.median(gaps(ex)):.2f} ms (ms resolution)")

            # 2. throughput with 200 in flight
            limiter = trio.CapacityLimiter(200)
            done = 0

            async def one() -> None:
                nonlocal done
                async with limiter:
                    result = await engine.execute("bench", "two")
                    assert result["state"]["current"] == "SUCCESS", result["state"]
                    done += 1

            t0 = time.perf_counter()
            async with trio.open_nursery() as nursery:
                for _ in range(executions):
                    nursery.start_soon(one)
            elapsed = time.perf_counter() - t0
            await engine.store.flush()
            print(f"2-task flow, {executions} executions, 200 in flight ({store} store): "
                  f"{done / elapsed:.0f} executions/s, {2 * done / elapsed:.0f} task runs/s")

            # 3. ForEach over 100 values
            await engine.execute("bench", "each100")
            samples = []
            for _ in range(5):
                t0 = time.perf_counter()
                ex = await engine.execute("bench", "each100")
                samples.append((time.perf_counter() - t0) * 1000)
                assert ex["state"]["current"] == "SUCCESS" and len(ex["taskRunList"]) == 101
            print(f"ForEach over 100 values (concurrencyLimit 0): median {statistics.median(samples):.1f} ms "
                  f"(min {min(samples):.1f}, max {max(samples):.1f})")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--store", default="sqlite", choices=["sqlite", "memory"])
    ap.add_argument("--executions", type=int, default=2000)
    args = ap.parse_args()
    trio.run(main, args.store, args.executions)
