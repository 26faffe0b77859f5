"""Fan-out: one execution starting 1,000 subflow executions (ForEachItem, one row per batch).

    python benchmarks/bench_fanout.py [--children 1000] [--store sqlite|memory]

Printed: wall time until the parent ended (all children done), children per second, peak RSS.
The number of live children is bounded (ForEachItem's ``foreach_max_live``, default 64).
"""
from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_foreachitem import CHILD, PARENT  # noqa: E402


def main() -> None:
    import trio

    from falconet.runtime.kernel.startup import open_engine

    ap = argparse.ArgumentParser()
    ap.add_argument("--children", type=int, default=1000)
    ap.add_argument("--store", default="sqlite")
    args = ap.parse_args()

    async def run() -> None:
        with tempfile.TemporaryDirectory() as tmp:
            data = Path(tmp) / "items.txt"
            data.write_text("".join(f"{i}\n" for i in range(args.children)))
            async with open_engine(Path(tmp) / "data", store=args.store) as engine:
                await engine.create_flow(CHILD)
                await engine.create_flow(PARENT.replace("ROWS", "1"))
                t0 = time.perf_counter()
                ex = await engine.execute("bench.fei", "bench-parent", files={"file": ("items.txt", data)})
                wall = time.perf_counter() - t0
                it = ex["taskRunList"][2]["outputs"]["iterations"]
                peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
                print(f"children={args.children} store={args.store} state={ex['state']['current']} "
                      f"iterations={it} wall={wall:.2f}s children/s={args.children / wall:.0f} "
                      f"peak_rss={peak:.1f}MB")

    trio.run(run)


if __name__ == "__main__":
    main()
