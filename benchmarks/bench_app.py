"""The application layer alone: Quart's per-request machinery, the views and the engine, without sockets,
hypercorn or h11. Each request is an ASGI call of the app with a prebuilt scope, on the engine's own trio
thread, so ``time.thread_time()`` is what the request (and, for ``POST``, its execution) costs that thread.

- ``POST /api/v1/executions/bench.http/two`` (the flow of ``bench_http.py``): blocks of ``--requests``
  creations, one execution in flight per request and a schedule point every 16; the trio thread's CPU per
  execution, the least and the median block;
- ``GET /ping``: the least of five blocks, the HTTP application layer's own cost per request.

``--profile FILE`` writes cProfile stats of one block of creations (read them with ``pstats``; the call
counts per request are exact, the times inflated by the profiler).

    python benchmarks/bench_app.py [--requests 1000] [--blocks 6] [--store sqlite] [--profile F]
"""
from __future__ import annotations

import argparse
import cProfile
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import trio

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_http import FLOW  # noqa: E402

from falconet.http.app import create_app  # noqa: E402
from falconet.runtime.kernel.startup import open_engine  # noqa: E402


async def call(app: Any, method: str, path: str) -> list[dict[str, Any]]:
    """One request through the ASGI app, as hypercorn would hand it over; the messages the app sent."""
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
             "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
             "headers": [(b"host", b"127.0.0.1:8080"), (b"content-length", b"0")],
             "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8080), "extensions": {}}
    sent: list[dict[str, Any]] = []
    received = False

    async def receive() -> dict[str, Any]:
        nonlocal received
        if not received:
            received = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await trio.sleep_forever()    # the client stays connected: cancelled once the answer is sent
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    if sent[0]["status"] != 200:
        raise SystemExit(f"{method} {path}: {sent[0]['status']}")
    return sent


async def creations(app: Any, count: int) -> float:
    """Trio-thread CPU seconds of ``count`` creations."""
    start = time.thread_time()
    for i in range(count):
        await call(app, "POST", "/api/v1/executions/bench.http/two")
        if i % 16 == 15:
            await trio.lowlevel.checkpoint()
    return time.thread_time() - start


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as data:
        async with open_engine(data_dir=Path(data), store=args.store) as engine:
            app = create_app(engine, config=engine.config)
            answer = await app.test_client().post("/api/v1/flows", data=FLOW,
                                                  headers={"Content-Type": "application/x-yaml"})
            assert answer.status_code == 200, await answer.get_data()
            await creations(app, 200)     # warm-up
            if args.profile:
                profile = cProfile.Profile()
                profile.enable()
                await creations(app, args.requests)
                profile.disable()
                profile.dump_stats(args.profile)
            blocks = sorted([await creations(app, args.requests) / args.requests for _ in range(args.blocks)])
            print(f"POST create: {blocks[0] * 1e6:.0f} µs of trio-thread CPU per execution (least of "
                  f"{args.blocks} blocks of {args.requests}; median {statistics.median(blocks) * 1e6:.0f})")
            pings = []
            for _ in range(5):
                start = time.thread_time()
                for _ in range(args.requests):
                    await call(app, "GET", "/ping")
                pings.append((time.thread_time() - start) / args.requests)
            print(f"GET /ping: {min(pings) * 1e6:.1f} µs per request (least of 5 blocks)")
            await trio.sleep(0.5)         # the last executions end before the engine closes


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--blocks", type=int, default=6)
    parser.add_argument("--store", default="sqlite", choices=("sqlite", "memory"))
    parser.add_argument("--profile", metavar="FILE")
    trio.run(main, parser.parse_args())
