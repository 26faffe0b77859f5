"""Store throughput on this machine: execution upserts/s (nowait + flush, and awaited), log lines/s.

Run: ``python benchmarks/bench_store.py [--n 50000] [--backend sqlite|memory]``. Prints one line per
figure. Not part of the test run.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import trio

from falconet.runtime.kernel.execution import Attempt, Execution, StateHistory, TaskRun, format_instant
from falconet.runtime.kernel.state import State
from falconet.runtime.store.memory import MemoryStore
from falconet.runtime.store.sqlite import SQLiteStore

T0 = datetime(2024, 5, 1, tzinfo=timezone.utc)


def two_task_execution(i: int, state: State) -> dict:
    """A realistic document: a finished-or-running 2-task execution (about 2 KB of JSON)."""
    t = T0 + timedelta(milliseconds=i)
    ex = Execution(namespace="company.team", flow_id="hello", flow_revision=1, id=f"ex{i:08d}",
                   labels=[{"key": "team", "value": "data"}],
                   state=StateHistory(state, [(State.CREATED, t), (State.RUNNING, t), (state, t)]))
    for task_id in ("first", "second"):
        tr = TaskRun(execution_id=ex.id, namespace=ex.namespace, flow_id=ex.flow_id, task_id=task_id,
                     state=StateHistory(State.SUCCESS, [(State.CREATED, t), (State.RUNNING, t), (State.SUCCESS, t)]))
        tr.attempts = [Attempt(tr.state.copy())]
        tr.outputs = {"value": f"hello {i}"}
        ex.task_run_list.append(tr)
    return ex.to_dict(private=True)


def log_entry(i: int) -> dict:
    return {"namespace": "company.team", "flowId": "hello", "taskId": "first", "executionId": f"ex{i % 1000:08d}",
            "taskRunId": "tr", "attemptNumber": 1, "timestamp": format_instant(T0 + timedelta(milliseconds=i)),
            "level": "INFO", "thread": "main", "message": f"log line number {i}", "deleted": False}


def report(label: str, n: int, seconds: float, unit: str) -> None:
    print(f"{label:<58} {n / seconds:>12,.0f} {unit}/s   ({n:,} in {seconds:.2f} s)")


async def bench(store, n: int) -> None:
    await store.open()
    try:
        # 1. distinct executions, one nowait upsert each, then one flush
        docs = [two_task_execution(i, State.SUCCESS) for i in range(n)]
        t = time.perf_counter()
        for d in docs:
            store.save_execution_nowait(d)
        t_enq = time.perf_counter() - t
        await store.flush()
        report("execution upserts, nowait + flush (distinct ids)", n, time.perf_counter() - t, "upserts")
        report("  of which enqueue only (trio thread)", n, t_enq, "upserts")

        # 2. the engine's pattern: every execution updated 3 times (CREATED, RUNNING, SUCCESS)
        waves = [[two_task_execution(n + i, s) for i in range(n // 3)] for s in (State.CREATED, State.RUNNING, State.SUCCESS)]
        t = time.perf_counter()
        for i in range(n // 3):
            for wave in waves:
                store.save_execution_nowait(wave[i])
        await store.flush()
        report("execution upserts, nowait + flush (3 updates per id)", 3 * (n // 3), time.perf_counter() - t, "upserts")

        # 3. awaited upserts: one caller, then 100 concurrent callers (group commit)
        m = max(n // 20, 100)
        t = time.perf_counter()
        for i in range(m):
            await store.save_execution(docs[i])
        report("awaited save_execution, 1 caller", m, time.perf_counter() - t, "commits")

        async def caller(k: int) -> None:
            for i in range(k, 10 * m, 100):
                await store.save_execution(docs[i % n])

        t = time.perf_counter()
        async with trio.open_nursery() as nursery:
            for k in range(100):
                nursery.start_soon(caller, k)
        report("awaited save_execution, 100 concurrent callers", 10 * m, time.perf_counter() - t, "upserts")

        # 4. log lines, one nowait call per line (as task loggers do), then flush
        entries = [log_entry(i) for i in range(4 * n)]
        t = time.perf_counter()
        for e in entries:
            store.append_logs_nowait([e])
        await store.flush()
        report("log lines, nowait one by one + flush", len(entries), time.perf_counter() - t, "lines")

        # 5. a read through the same queue
        t = time.perf_counter()
        for i in range(m):
            await store.get_execution(f"ex{i:08d}")
        report("get_execution (awaited reads)", m, time.perf_counter() - t, "reads")
    finally:
        await store.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=30_000)
    ap.add_argument("--backend", choices=("sqlite", "memory"), default="sqlite")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = SQLiteStore(Path(tmp) / "bench.db") if args.backend == "sqlite" else MemoryStore()
        print(f"backend={args.backend} n={args.n}")
        trio.run(bench, store, args.n)


if __name__ == "__main__":
    main()
