"""Helpers for the raw ASGI apps some tests serve."""
from __future__ import annotations

from typing import Any


async def answered_lifespan(scope: dict[str, Any], receive: Any, send: Any) -> bool:
    """Answer the server's lifespan messages (startup, then shutdown) when ``scope`` is the lifespan; True
    then (the app returns), False for any other scope."""
    if scope["type"] != "lifespan":
        return False
    while True:
        message = await receive()
        await send({"type": message["type"] + ".complete"})
        if message["type"] == "lifespan.shutdown":
            return True
