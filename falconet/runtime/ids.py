"""Kestra "friendly ids": a random UUID encoded in base62 (at most 22 characters)."""
from __future__ import annotations

import uuid

_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def base62(n: int) -> str:
    if n == 0:
        return "0"
    out = []
    while n:
        n, r = divmod(n, 62)
        out.append(_ALPHABET[r])
    return "".join(reversed(out))


def new_id() -> str:
    """A new execution or task-run id, e.g. ``4wjtkzwVGBM9yKnjm3yv8r``."""
    return base62(uuid.uuid4().int)
