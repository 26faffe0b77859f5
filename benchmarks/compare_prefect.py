"""Falconet against Prefect 3 on the same two workloads, in one run; prints each figure and the ratio.

    python benchmarks/compare_prefect.py [--loops 200] [--repeat 5] [--venv DIR]

1. a flow of 40 sequential trivial tasks (Falconet: ``debug.Return``; Prefect: a ``@task`` returning its
   argument), in-process: median wall time of ``--repeat`` runs after a warm-up run;
2. a 2-task flow run ``--loops`` times in a loop, one after the other: flows/s.

Falconet runs in this interpreter (SQLite store, temporary data folder). Prefect runs in its own
interpreter: the one of ``--venv`` (default: ``falconet-prefect-venv`` in the system temp folder), created
with ``pip install 'prefect>=3,<4'`` when Prefect is absent from it; its ephemeral API and database live
in a temporary ``PREFECT_HOME``.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import venv
from pathlib import Path

SEQ40 = "id: seq40\nnamespace: bench\ntasks:\n" + "".join(
    f"  - id: r{i}\n    type: io.kestra.plugin.core.debug.Return\n    format: '{i}'\n" for i in range(40))
TWO = """id: two
namespace: bench
tasks:
  - id: a
    type: io.kestra.plugin.core.debug.Return
    format: a
  - id: b
    type: io.kestra.plugin.core.debug.Return
    format: "{{ outputs.a.value }}"
"""

PREFECT_SCRIPT = r'''
import json, statistics, sys, time
from prefect import flow, task

loops, repeat = int(sys.argv[1]), int(sys.argv[2])

@task
def ret(x):
    return x

@flow
def seq40():
    for i in range(40):
        ret(i)

@flow
def two():
    ret(ret("a"))

seq40()
walls = []
for _ in range(repeat):
    t = time.perf_counter()
    seq40()
    walls.append(time.perf_counter() - t)
two()
t = time.perf_counter()
for _ in range(loops):
    two()
print(json.dumps({"seq40": statistics.median(walls), "two_per_s": loops / (time.perf_counter() - t)}))
'''


def falconet_figures(loops: int, repeat: int) -> dict[str, float]:
    import trio

    from falconet import open_engine

    async def run() -> dict[str, float]:
        with tempfile.TemporaryDirectory() as data:
            async with open_engine(data, store="sqlite") as engine:
                await engine.create_flow(SEQ40)
                await engine.create_flow(TWO)
                await engine.execute("bench", "seq40")
                walls = []
                for _ in range(repeat):
                    t = time.perf_counter()
                    ex = await engine.execute("bench", "seq40")
                    walls.append(time.perf_counter() - t)
                    assert ex["state"]["current"] == "SUCCESS", ex["state"]
                await engine.execute("bench", "two")
                t = time.perf_counter()
                for _ in range(loops):
                    await engine.execute("bench", "two")
                return {"seq40": statistics.median(walls), "two_per_s": loops / (time.perf_counter() - t)}

    return trio.run(run)


def prefect_python(folder: Path) -> Path:
    python = folder / "bin" / "python"
    if not python.exists():
        print(f"creating a virtual environment for Prefect in {folder}", flush=True)
        venv.create(folder, with_pip=True)
    if subprocess.run([python, "-c", "import prefect"], capture_output=True).returncode != 0:
        print("installing Prefect 3 (pip install 'prefect>=3,<4') …", flush=True)
        subprocess.run([python, "-m", "pip", "install", "-q", "prefect>=3,<4"], check=True)
    return python


def prefect_figures(python: Path, loops: int, repeat: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as home:
        env = dict(os.environ, PREFECT_HOME=home, PREFECT_LOGGING_LEVEL="WARNING",
                   PREFECT_SERVER_ANALYTICS_ENABLED="false", PREFECT_API_URL="",
                   PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="180")  # a loaded machine starts it slowly
        out = subprocess.run([python, "-c", PREFECT_SCRIPT, str(loops), str(repeat)], env=env,
                             capture_output=True, text=True, timeout=3600)
        if out.returncode != 0:
            raise SystemExit(f"the Prefect run failed:\n{out.stderr[-3000:]}")
        return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--loops", type=int, default=200, help="2-task flows run one after the other")
    ap.add_argument("--repeat", type=int, default=5, help="runs of the 40-task flow (median)")
    ap.add_argument("--venv", type=Path, default=Path(tempfile.gettempdir()) / "falconet-prefect-venv")
    args = ap.parse_args()
    python = prefect_python(args.venv)
    version = subprocess.run([python, "-c", "import prefect; print(prefect.__version__)"], capture_output=True,
                             text=True).stdout.strip()
    falconet = falconet_figures(args.loops, args.repeat)
    prefect = prefect_figures(python, args.loops, args.repeat)
    print(f"40 sequential trivial tasks: Falconet {falconet['seq40'] * 1000:.1f} ms, Prefect {version} "
          f"{prefect['seq40'] * 1000:.0f} ms — Falconet {prefect['seq40'] / falconet['seq40']:.0f}× faster")
    print(f"2-task flows in a loop: Falconet {falconet['two_per_s']:.0f}/s, Prefect {version} "
          f"{prefect['two_per_s']:.1f}/s — Falconet {falconet['two_per_s'] / prefect['two_per_s']:.0f}× faster")
    return 0


if __name__ == "__main__":
    sys.exit(main())
