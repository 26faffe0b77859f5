"""ForEachItem over a large file: wall time and peak RSS (DESIGN: peak memory independent of the rows).

    python benchmarks/bench_foreachitem.py            # 100,000 and 1,000,000 lines, one process each
    python benchmarks/bench_foreachitem.py --lines N  # one run

Each run: a SQLite-backed engine in a temporary folder, a FILE input of N lines, ForEachItem with
``batch.rows`` 1,000 over a trivial subflow (one Log task), ``wait: true``. Printed: lines, batches,
wall time of the execution, subflow executions per second, peak RSS of the process (ru_maxrss).
"""
from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CHILD = """
id: bench-child
namespace: bench.fei
inputs:
  - id: items
    type: STRING
tasks:
  - id: log
    type: io.kestra.plugin.core.log.Log
    message: "{{ inputs.items }}"
"""

PARENT = """
id: bench-parent
namespace: bench.fei
inputs:
  - id: file
    type: FILE
tasks:
  - id: each
    type: io.kestra.plugin.core.flow.ForEachItem
    items: "{{ inputs.file }}"
    batch:
      rows: ROWS
    namespace: bench.fei
    flowId: bench-child
    wait: true
    inputs:
      items: "{{ taskrun.items }}"
"""


def run_one(lines: int, rows: int) -> None:
    import trio

    from falconet.runtime.kernel.startup import open_engine

    async def main() -> None:
        with tempfile.TemporaryDirectory() as tmp:
            data = Path(tmp) / "items.txt"
            with open(data, "w") as f:
                for i in range(lines):
                    f.write(f"row-{i:09d},some,payload,{i % 97}\n")
            async with open_engine(Path(tmp) / "data", store="sqlite") as engine:
                await engine.create_flow(CHILD)
                await engine.create_flow(PARENT.replace("ROWS", str(rows)))
                rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
                t0 = time.perf_counter()
                ex = await engine.execute("bench.fei", "bench-parent", files={"file": ("items.txt", data)})
                wall = time.perf_counter() - t0
                items = ex["taskRunList"][2]["outputs"]
                peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
                print(f"lines={lines:>9,} batches={items['numberOfBatches']:>5} state={ex['state']['current']} "
                      f"wall={wall:6.2f}s subflows/s={items['numberOfBatches'] / wall:7.1f} "
                      f"peak_rss={peak / 1024:6.1f}MB (before run {rss0 / 1024:.1f}MB)", flush=True)

    trio.run(main)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int)
    ap.add_argument("--rows", type=int, default=1000)
    args = ap.parse_args()
    if args.lines:
        run_one(args.lines, args.rows)
        return
    for n in (100_000, 1_000_000):
        subprocess.run([sys.executable, __file__, "--lines", str(n), "--rows", str(args.rows)], check=True)


if __name__ == "__main__":
    main()
