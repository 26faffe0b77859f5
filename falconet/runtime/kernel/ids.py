"""Kestra "friendly ids": a random UUID encoded in base62 (at most 22 characters)."""
from __future__ import annotations

import random

_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


#: every pair of base62 digits, for two digits per division: one string sliced (a list of 3,844 strings would
#: hold 0.2 MB for the server's whole life)
_PAIRS = "".join(a + b for a in _ALPHABET for b in _ALPHABET)


def base62(n: int) -> str:
    if n == 0:
        return "0"
    out = []
    while n:
        n, r = divmod(n, 3844)
        r += r
        out.append(_PAIRS[r:r + 2])
    return "".join(reversed(out)).lstrip("0")


_random = random.Random()  # seeded from os.urandom; ids need uniqueness, not secrecy


def new_id() -> str:
    """A new execution or task-run id, e.g. ``4wjtkzwVGBM9yKnjm3yv8r``: 128 random bits shaped as a
    version-4 UUID (as Kestra's IdUtils), base62-encoded. Drawn without a system call per id."""
    n = _random.getrandbits(128)
    n = (n & ~(0xF000 << 64)) | (0x4000 << 64)  # version 4
    n = (n & ~(0xC000 << 48)) | (0x8000 << 48)  # RFC 4122 variant
    return base62(n)
