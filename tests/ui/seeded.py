"""A live server over a store seeded directly with 10,000 executions (spread over the last 10 days) and
their logs (two lines each), for the pages' first-paint budgets; plus :func:`first_paint`, measured in the browser.

Import the fixture in a test module: ``from .seeded import seeded_url  # noqa: F401``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterator

import pytest
import trio

from falconet.runtime.store import open_store

from .conftest import ARTIFACTS, REPO, _free_port, _wait_http

EXECUTIONS = 10_000
STATES = ["SUCCESS"] * 7 + ["WARNING", "FAILED", "KILLED"]
NAMESPACES = ["company.team", "company.data", "acme.ops"]


def execution_doc(i: int, now: datetime) -> dict[str, Any]:
    start = now - timedelta(minutes=i * 1.4 + 1)
    end = start + timedelta(seconds=1 + (i * 7) % 90)
    state = STATES[i % len(STATES)]
    hist = [{"state": "CREATED", "date": start.isoformat().replace("+00:00", "Z")},
            {"state": "RUNNING", "date": start.isoformat().replace("+00:00", "Z")},
            {"state": state, "date": end.isoformat().replace("+00:00", "Z")}]
    return {
        "id": f"seed{i:06d}x", "namespace": NAMESPACES[i % 3], "flowId": f"seeded_{i % 5}", "flowRevision": 1,
        "labels": [{"key": "seed", "value": str(i % 4)}], "taskRunList": [], "inputs": {},
        "state": {"current": state, "startDate": hist[0]["date"], "endDate": hist[-1]["date"], "histories": hist,
                  "duration": f"PT{(end - start).total_seconds()}S"},
        "originalId": f"seed{i:06d}x", "deleted": False,
    }


async def _seed(db: Path) -> None:
    now = datetime.now(timezone.utc)
    async with open_store(db) as store:
        for i in range(EXECUTIONS):
            doc = execution_doc(i, now)
            store.save_execution_nowait(doc)
            store.append_logs_nowait([{
                "namespace": doc["namespace"], "flowId": doc["flowId"], "executionId": doc["id"], "taskId": "hello",
                "taskRunId": f"{doc['id']}t", "attemptNumber": 0, "timestamp": doc["state"]["startDate"],
                "level": "ERROR" if doc["state"]["current"] == "FAILED" else "INFO", "thread": "seed",
                "message": f"seeded line {n} of execution {i}",
            } for n in range(2)])
            if i % 1000 == 999:
                await store.flush()
        await store.flush()


@pytest.fixture(scope="session")
def seeded_url(browser: Any) -> Iterator[str]:
    data_dir = Path(tempfile.mkdtemp(prefix="falconet-ui-seeded-"))
    trio.run(_seed, data_dir / "falconet.db")
    port = _free_port()
    log_path = ARTIFACTS / "seeded-server.log"
    cmd = [sys.executable, "-m", "falconet", "server", "local", "--port", str(port), "--data-dir", str(data_dir)]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
        try:
            _wait_http(f"http://127.0.0.1:{port}/api/v1/flows/search", time.monotonic() + 30, proc)
            yield f"http://127.0.0.1:{port}"
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            shutil.rmtree(data_dir, ignore_errors=True)


FIRST_PAINT_MS = 300


def first_paint(page: Any, url: str, ready: str) -> tuple[float, float]:
    """(first contentful paint, time until `ready` — a selector of the page's data — is in the DOM), ms
    from navigation start. A first load warms the HTTP cache as a returning
    user's browser is; the better of two measured loads counts."""
    page.goto(url)
    page.wait_for_selector(ready)
    page.goto("about:blank")
    page.add_init_script("""(() => {
      const sel = %s;
      const check = () => { if (!window.__readyAt && document.querySelector(sel)) window.__readyAt = performance.now(); };
      new MutationObserver(check).observe(document, { childList: true, subtree: true, attributes: true });
    })()""" % json.dumps(ready))
    best: tuple[float, float] | None = None
    for n in range(2):  # the better of two loads: the machine running the tests is shared
        if n:
            page.goto("about:blank")
        page.goto(url)
        page.wait_for_function("window.__readyAt > 0")
        ready_ms = page.evaluate("window.__readyAt")
        fcp = page.evaluate("""() => new Promise((resolve) => {
          const e = performance.getEntriesByName('first-contentful-paint')[0];
          if (e) return resolve(e.startTime);
          new PerformanceObserver((l) => resolve(l.getEntries()[0].startTime)).observe({ type: 'paint', buffered: true });
        })""")
        best = (fcp, ready_ms) if best is None else (min(best[0], fcp), min(best[1], ready_ms))
    assert best is not None
    return best
