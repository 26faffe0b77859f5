"""Helpers for end-to-end plugin tests: run flows through the real engine (memory store, temp data dir)."""
from __future__ import annotations

import contextlib
import os
from typing import Any, AsyncIterator, Callable

import falconet


@contextlib.asynccontextmanager
async def engine_at(tmp_path) -> AsyncIterator[falconet.Engine]:
    async with falconet.open_engine(data_dir=tmp_path / "data", store="memory") as engine:
        yield engine


def task_runs(ex: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """taskId → task run JSON (the last one for a task id)."""
    return {tr["taskId"]: tr for tr in ex["taskRunList"]}


def states(ex: dict[str, Any]) -> dict[str, str]:
    return {tid: tr["state"]["current"] for tid, tr in task_runs(ex).items()}


async def messages(engine, ex: dict[str, Any], task_id: str | None = None) -> list[tuple[str, str]]:
    """(level, message) of the execution's stored logs, optionally of one task."""
    return [(row["level"], row["message"]) for row in await engine.get_logs(ex["id"])
            if task_id is None or row.get("taskId") == task_id]


def live_processes(proc_file: str, found: Callable[[bytes], bool]) -> list[int]:
    """Live (non-zombie) processes whose ``/proc/<pid>/<proc_file>`` content satisfies ``found``."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/{proc_file}", "rb") as f:
                content = f.read()
            with open(f"/proc/{entry}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if found(content) and state != "Z":
            pids.append(int(entry))
    return pids
