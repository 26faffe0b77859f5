"""Does the cost of a task stay flat as an execution grows? Prints figures; not a test.

    python benchmarks/bench_scaling.py [--store sqlite|memory] [--sizes 100,1000,10000] [--foreach 10000]

1. N sequential Return tasks in one execution, for each N of ``--sizes``: wall time and time per task;
2. a ForEach over ``--foreach`` values (one Return each, concurrencyLimit 1): wall time and time per value;
3. while the largest sequential execution runs in a served engine, ``GET /ping`` is asked every 20 ms:
   p50/p99 answer time (the other requests must not slow down).
Target (issue 16): the per-task cost stays within 2x from 100 to 10,000 tasks; /ping p99 <= 50 ms.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import trio

from falconet import open_engine


def seq_flow(n: int) -> str:
    return f"id: seq{n}\nnamespace: bench\ntasks:\n" + "".join(
        f"  - id: r{i}\n    type: io.kestra.plugin.core.debug.Return\n    format: '{{{{ task.id }}}}'\n"
        for i in range(n))


def foreach_flow(n: int) -> str:
    return f"""id: each{n}
namespace: bench
tasks:
  - id: each
    type: io.kestra.plugin.core.flow.ForEach
    values: "{{{{ range(1, {n}) }}}}"
    concurrencyLimit: 1
    tasks:
      - id: r
        type: io.kestra.plugin.core.debug.Return
        format: "{{{{ taskrun.value }}}}"
"""


async def timed(engine, flow_id: str) -> tuple[float, dict]:
    t0 = time.perf_counter()
    ex = await engine.execute("bench", flow_id)
    return time.perf_counter() - t0, ex


async def ping_during(engine, flow_id: str, port: int) -> list[float]:
    """Serve the engine over HTTP, run the execution, ask /ping every 20 ms meanwhile."""
    import httpx
    from hypercorn.config import Config as HyperConfig
    from hypercorn.trio import serve

    from falconet.http.app import create_app

    app = create_app(engine, config=engine.config)
    cfg = HyperConfig()
    cfg.bind = [f"127.0.0.1:{port}"]
    cfg.accesslog = None
    times: list[float] = []
    async with trio.open_nursery() as nursery:
        shutdown = trio.Event()
        nursery.start_soon(lambda: serve(app, cfg, shutdown_trigger=shutdown.wait))
        await trio.sleep(0.5)
        running = True

        async def pinger() -> None:
            async with httpx.AsyncClient() as client:
                while running:
                    t0 = time.perf_counter()
                    await client.get(f"http://127.0.0.1:{port}/ping")
                    times.append((time.perf_counter() - t0) * 1000)
                    await trio.sleep(0.02)

        nursery.start_soon(pinger)
        await engine.execute("bench", flow_id)
        running = False
        await trio.sleep(0.1)
        shutdown.set()
    return times


async def main(store: str, sizes: list[int], foreach: int, port: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        async with open_engine(tmp, store=store) as engine:
            for n in sizes:
                await engine.create_flow(seq_flow(n))
            await engine.create_flow(foreach_flow(foreach))
            await engine.execute("bench", f"seq{sizes[0]}")  # warm-up
            per = {}
            for n in sizes:
                wall, ex = await timed(engine, f"seq{n}")
                per[n] = wall / n * 1000
                print(f"{n:>6} sequential tasks: {wall:8.2f} s, {per[n]:.3f} ms per task "
                      f"({ex['state']['current']})")
            wall, ex = await timed(engine, f"each{foreach}")
            print(f"ForEach over {foreach} values: {wall:.2f} s, {wall / foreach * 1000:.3f} ms per value "
                  f"({ex['state']['current']}, {len(ex['taskRunList'])} task runs)")
            ratio = per[sizes[-1]] / per[sizes[0]]
            print(f"per-task cost {sizes[-1]} vs {sizes[0]}: {ratio:.2f}x (target <= 2x)")
            times = await ping_during(engine, f"seq{sizes[-1]}", port)
            if times:
                q = statistics.quantiles(times, n=100)
                print(f"/ping during the {sizes[-1]}-task execution: {len(times)} answers, p50 "
                      f"{statistics.median(times):.1f} ms, p99 {q[98]:.1f} ms (target p99 <= 50 ms)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", default="sqlite", choices=["sqlite", "memory"])
    parser.add_argument("--sizes", default="100,1000,10000")
    parser.add_argument("--foreach", type=int, default=10000)
    parser.add_argument("--port", type=int, default=18731)
    args = parser.parse_args()
    trio.run(main, args.store, [int(s) for s in args.sizes.split(",")], args.foreach, args.port)
