"""Serving the app with hypercorn's trio worker, inside the caller's trio run (no extra process).

``await nursery.start(serve, app, host, port)`` returns the bound base URLs once the socket listens
(port 0 picks a free port: the URL tells which). The app is served behind
:class:`~.guard.ConnectionGuard` (a request refused before its body was read never wedges its
keep-alive connection).

Connections: an idle keep-alive connection (or one that never completes its request head) is closed
after ``keep_alive_timeout`` seconds. Graceful shutdown: set ``shutdown`` (a :class:`trio.Event`);
hypercorn stops accepting, closes idle connections, gives requests in flight ``graceful_timeout``
seconds to finish, then cancels them and returns. Cancelling the surrounding scope is a hard stop.
"""
from __future__ import annotations

import logging
from typing import Any

import trio
from hypercorn.config import Config
from hypercorn.trio import serve as hypercorn_serve

from falconet.http.guard import ConnectionGuard

GRACEFUL_TIMEOUT = 5.0
KEEP_ALIVE = 75.0


def hypercorn_config(host: str, port: int, *, access_log: bool = False, keep_alive_timeout: float = KEEP_ALIVE,
                     graceful_timeout: float = GRACEFUL_TIMEOUT) -> Config:
    config = Config()
    config.bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    config.graceful_timeout = graceful_timeout
    config.keep_alive_timeout = keep_alive_timeout
    config.accesslog = logging.getLogger("falconet.http.access") if access_log else None
    config.errorlog = logging.getLogger("falconet.http.server")
    config.websocket_ping_interval = None
    # hypercorn caps bodies of WSGI apps only; ASGI bodies are bounded by guard.py and the views' limits
    return config


async def serve(app: Any, host: str, port: int, *, shutdown: trio.Event | None = None,
                access_log: bool = False, keep_alive_timeout: float = KEEP_ALIVE,
                graceful_timeout: float = GRACEFUL_TIMEOUT,
                task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED) -> None:
    """Serve ``app`` on ``host:port`` until ``shutdown`` is set (graceful) or the caller cancels (hard).

    ``task_status.started`` receives the bound URLs (e.g. ``["http://127.0.0.1:40123"]``).
    """
    config = hypercorn_config(host, port, access_log=access_log, keep_alive_timeout=keep_alive_timeout,
                              graceful_timeout=graceful_timeout)
    trigger = shutdown.wait if shutdown is not None else None
    async with trio.open_nursery() as guard_tasks:
        # the guard is an ASGI app over plain dict messages; hypercorn types them as a union of TypedDicts
        guard = ConnectionGuard(app, guard_tasks)
        await hypercorn_serve(guard, config, shutdown_trigger=trigger,  # type: ignore[arg-type]
                              task_status=task_status)
        guard_tasks.cancel_scope.cancel(reason="server stopped")
