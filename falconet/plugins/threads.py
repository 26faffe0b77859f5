"""Blocking client libraries (database drivers, ``smtplib``) on a worker thread that a kill or timeout
interrupts: the plugins of :mod:`falconet.plugins.jdbc` and :mod:`falconet.plugins.notifications` share it."""
from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

import trio

T = TypeVar("T")


def _interrupt_until_done(interrupt: Callable[[], None], done: threading.Event) -> None:
    # an interrupt landing before the blocking call starts (or between two calls) would be lost: repeat it
    while not done.is_set():
        try:
            interrupt()
        except Exception:  # the connection is closing meanwhile: the worker is finishing
            pass
        done.wait(0.05)


async def run_interruptible(fn: Callable[[], T], interrupt: Callable[[], None], *, name: str) -> T:
    """``fn()`` on a worker thread. Checkpoint; on cancellation the worker is abandoned and ``interrupt`` is
    called on a daemon thread every 50 ms until ``fn`` has returned, then the cancellation propagates.
    ``interrupt`` must be safe to call from any thread at any moment."""
    done = threading.Event()

    def work() -> T:
        try:
            return fn()
        finally:
            done.set()

    try:
        return await trio.to_thread.run_sync(work, abandon_on_cancel=True)
    except trio.Cancelled:
        if not done.is_set():
            threading.Thread(target=_interrupt_until_done, args=(interrupt, done), daemon=True, name=name).start()
        raise
