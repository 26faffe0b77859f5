"""Opening an engine: its data folder, store, storage and clock, and closing them in order
(:func:`open_engine`, the entry point of the server, the CLI and embedders)."""
from __future__ import annotations

import contextlib
import gc
import os
import shutil
from pathlib import Path
from typing import AsyncIterator

import trio

from falconet.runtime.config import Config
from falconet.runtime.kernel.clock import SYSTEM, Clock, installed
from falconet.runtime.kernel.engine import Engine
from falconet.runtime.storage import open_storage
from falconet.runtime.store.base import Store

@contextlib.asynccontextmanager
async def open_engine(data_dir: str | Path | None = None, *, store: str | Store | None = None,
                      config: Config | None = None, clock: Clock = SYSTEM) -> AsyncIterator[Engine]:
    """Open an engine inside the current trio run; cancelled and closed on exit.

    ``store`` is ``"sqlite"`` (durable, under ``data_dir``), ``"memory"`` or a :class:`Store` instance
    (built with the same ``clock``). With no ``data_dir`` a temporary folder is used and removed on exit.
    ``clock`` gives the engine its dates and deadlines (:class:`~falconet.runtime.kernel.clock.VirtualClock`
    runs them on trio's clock).
    """
    with installed(clock):
        async with _open_engine(data_dir, store, config, clock) as engine:
            yield engine


@contextlib.asynccontextmanager
async def _open_engine(data_dir: str | Path | None, store: str | Store | None, config: Config | None,
                       clock: Clock) -> AsyncIterator[Engine]:
    import tempfile

    from falconet.runtime.kernel.recovery import TEMP_PREFIX, clean_abandoned_temp_dirs

    cfg = config or Config()
    tmp: Path | None = None
    if data_dir is not None:
        cfg.data_dir = Path(data_dir)
    elif config is None:  # in the system temp dir, locked below: those of crashed processes are deleted first
        await clock.run_sync_in_thread(clean_abandoned_temp_dirs)
        tmp = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX))
        cfg.data_dir = tmp
    cfg.data_dir.mkdir(parents=True, exist_ok=True)
    kind = store if store is not None else cfg.store
    if isinstance(kind, Store):
        st = kind
    elif kind == "memory":
        from falconet.runtime.store.memory import MemoryStore

        st = MemoryStore(clock=clock)
    elif kind == "sqlite":
        from falconet.runtime.store.sqlite import SQLiteStore

        st = SQLiteStore(cfg.data_dir / "falconet.db", clock=clock)
    elif isinstance(kind, str) and kind.startswith(("postgresql://", "postgres://")):
        from falconet.runtime.store import make_store

        st = make_store(kind, clock=clock)
    else:
        raise ValueError(f"unknown store {kind!r}")
    try:
        storage = await clock.run_sync_in_thread(open_storage, cfg)
    except BaseException:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        raise
    if not cfg.secret_key:
        cfg.secret_key = _data_dir_secret(cfg.data_dir)
    engine = Engine(cfg, st, storage, clock=clock)
    _freeze_startup_objects()
    try:
        engine.lock_data_dir()  # before anything opens: a clear DataDirInUse, not an exception group
    except BaseException:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        raise
    try:
        await st.open()
        async with trio.open_nursery() as nursery:
            await nursery.start(engine.run)
            try:
                yield engine
            finally:
                nursery.cancel_scope.cancel()
    finally:
        with trio.CancelScope(shield=True):
            try:
                await st.close()
            finally:
                await engine.cluster.close()
        engine.unlock_data_dir()
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


_frozen = False


#: CPython's default collector thresholds, and the engine's: a young collection every 20,000 net allocations
#: of containers instead of 700 (a middle one every 20 young ones, a full one every 10 middle ones), so an
#: execution's short-lived cycles (execution, actor, task runs, their trio tasks) die young instead of being
#: promoted to the generations that full collections traverse. bench_engine's 2-task flow 1,730–1,762 →
#: 1,887–1,965 executions/s (alternated runs); bench_edge's peak RSS +1.5 MB.
CPYTHON_GC_THRESHOLDS = (700, 10, 10)
GC_THRESHOLDS = (20_000, 20, 10)


def _freeze_startup_objects() -> None:
    """Once per process, when the first engine is built (modules and plugins imported, nothing of an
    execution loaded yet): move every object alive to the collector's permanent generation (``gc.freeze``).
    They live as long as the process anyway; CPython's full collections, which a running engine triggers every
    few hundred executions and which block every task, then no longer traverse them (bench_engine: from
    ~50 ms to ~25 ms each). The collector's thresholds become :data:`GC_THRESHOLDS`."""
    global _frozen
    if not _frozen:
        _frozen = True
        gc.freeze()
        if gc.get_threshold() == CPYTHON_GC_THRESHOLDS:  # not when the embedding program tuned its own
            gc.set_threshold(*GC_THRESHOLDS)


def _data_dir_secret(data_dir: Path) -> str:
    """The key for SECRET inputs when ``kestra.encryption.secret-key`` is not configured: 32 random
    characters generated once per data folder and kept in ``<data-dir>/secret.key`` (mode 0600)."""
    import secrets

    path = data_dir / "secret.key"
    try:
        key = path.read_text(encoding="ascii").strip()
        if len(key) == 32:
            return key
    except FileNotFoundError:
        pass
    key = secrets.token_urlsafe(24)[:32]
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(key)
    return key


__all__ = ["open_engine"]
