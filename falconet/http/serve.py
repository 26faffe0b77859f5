"""Serving the app with hypercorn's trio worker, inside the caller's trio run (no extra process).

``await nursery.start(serve, app, host, port)`` returns the bound base URLs once the socket listens
(port 0 picks a free port: the URL tells which). Graceful shutdown: set the returned
:class:`trio.Event` (``shutdown=``) or cancel the surrounding scope; hypercorn then stops accepting,
gives open requests ``graceful_timeout`` seconds and closes.
"""
from __future__ import annotations

import logging
from typing import Any

import trio
from hypercorn.config import Config
from hypercorn.trio import serve as hypercorn_serve

GRACEFUL_TIMEOUT = 5.0
KEEP_ALIVE = 75.0


def hypercorn_config(host: str, port: int, *, access_log: bool = False) -> Config:
    config = Config()
    config.bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    config.graceful_timeout = GRACEFUL_TIMEOUT
    config.keep_alive_timeout = KEEP_ALIVE
    config.accesslog = logging.getLogger("falconet.http.access") if access_log else None
    config.errorlog = logging.getLogger("falconet.http.server")
    config.websocket_ping_interval = None
    # hypercorn caps bodies of WSGI apps only; ASGI bodies stream through our own limits (multipart.py)
    return config


async def serve(app: Any, host: str, port: int, *, shutdown: trio.Event | None = None,
                access_log: bool = False,
                task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED) -> None:
    """Serve ``app`` on ``host:port`` until ``shutdown`` is set or the caller cancels.

    ``task_status.started`` receives the bound URLs (e.g. ``["http://127.0.0.1:40123"]``).
    """
    config = hypercorn_config(host, port, access_log=access_log)
    trigger = shutdown.wait if shutdown is not None else None
    await hypercorn_serve(app, config, shutdown_trigger=trigger, task_status=task_status)
