"""Store backends: ``sqlite`` (default, durable), ``postgresql`` (a cluster's shared database) and ``memory``
(tests, fake clock).

``open_store(target)`` is the usual entry point::

    async with open_store("/var/lib/falconet/falconet.db") as store:   # or "sqlite:///…", or "memory:"
        ...
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, AsyncIterator

from falconet.runtime.kernel.clock import SYSTEM, Clock
from falconet.runtime.kernel.errors import IllegalArgument
from falconet.runtime.store._common import StoreError
from falconet.runtime.store.base import ExecutionQuery, FlowRecord, LogQuery, Store
from falconet.runtime.store.sqlite import SQLiteStore

if TYPE_CHECKING:
    from falconet.runtime.store.memory import MemoryStore

__all__ = ["Store", "StoreError", "FlowRecord", "ExecutionQuery", "LogQuery", "MemoryStore", "SQLiteStore",
           "make_store", "open_store"]


def __getattr__(name: str) -> Any:
    """``MemoryStore`` is imported on first use (PEP 562): a server on SQLite never loads it."""
    if name == "MemoryStore":
        from falconet.runtime.store.memory import MemoryStore
        return MemoryStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def make_store(target: str | os.PathLike[str], *, clock: Clock = SYSTEM) -> Store:
    """A new, unopened store for ``target``: ``memory:`` (or ``:memory:``) -> MemoryStore;
    ``sqlite:///abs/path.db``, ``sqlite:rel.db`` or a plain file path -> SQLiteStore;
    ``postgresql://USER[:PASSWORD]@HOST:PORT/DB`` -> PostgresStore, each on ``clock``. Other URL schemes raise
    IllegalArgument."""
    if isinstance(target, os.PathLike):
        return SQLiteStore(Path(target), clock=clock)
    if not isinstance(target, str) or not target:
        raise IllegalArgument(f"invalid store location {target!r}")
    if target in ("memory", "memory:", ":memory:", "memory://"):
        from falconet.runtime.store.memory import MemoryStore   # tests and fake clocks: not imported by a server
        return MemoryStore(clock=clock)
    if target.startswith("sqlite:"):
        rest = target[len("sqlite:"):]
        if rest.startswith("//"):
            rest = rest[2:]  # sqlite:///abs -> /abs ; sqlite://rel -> rel
        if not rest:
            raise IllegalArgument(f"no database path in {target!r}")
        return SQLiteStore(Path(rest), clock=clock)
    if target.startswith(("postgresql://", "postgres://")):
        from falconet.runtime.store.postgres import PostgresStore

        return PostgresStore(target, clock=clock)
    scheme, sep, _ = target.partition("://")
    if sep and scheme.isalnum():
        raise IllegalArgument(f"unsupported store URL scheme {scheme!r} (use sqlite:///, postgresql:// or memory:)")
    return SQLiteStore(Path(target), clock=clock)


@contextlib.asynccontextmanager
async def open_store(target: str | os.PathLike[str]) -> AsyncIterator[Store]:
    """Open a store (see :func:`make_store`) and close it on exit (flushing pending writes)."""
    store = make_store(target)
    await store.open()
    try:
        yield store
    finally:
        await store.close()
