"""Dependency environments of script tasks (a Python venv, a Node ``node_modules`` folder), built by a
package manager whose output goes to the task logs, and optionally cached between tasks.

A cached environment lives in ``<cache>/<key>``, ``key`` a hash of everything that makes it (interpreter
version, sorted dependency list). It is built in a private ``.build-*`` sibling and renamed into place, so a
concurrent task — in this process (one lock per key) or another server — sees all of it or nothing.
"""
from __future__ import annotations

import hashlib
import os
import shlex
import shutil
import uuid
from pathlib import Path
from typing import Awaitable, Callable, Mapping, Sequence

import trio

from falconet.plugins.scripts import process as _process
from falconet.sdk import RunContext, TaskFailed

_build_locks: dict[tuple[str, str], trio.Lock] = {}


async def run_logged(ctx: RunContext, args: Sequence[str], what: str, *, cwd: Path | None = None,
                     env: Mapping[str, str] | None = None) -> None:
    """Run a helper command (venv, pip, npm) with its output in the task logs (stdout DEBUG, stderr WARN);
    TaskFailed "Unable to {what}" when it cannot start or exits non-zero. Killed with the task."""
    def on_line(line: str, stderr: bool) -> None:
        (ctx.logger.warn if stderr else ctx.logger.debug)(line)

    try:
        code = await _process.run_process(list(args), cwd=str(cwd or Path.cwd()), env=dict(env or os.environ),
                                          on_line=on_line, track=ctx.track_process)
    except OSError as exc:
        raise TaskFailed(f"Unable to {what}: {exc}") from exc
    if code != 0:
        raise TaskFailed(f"Unable to {what}: {shlex.join(list(args)[:3])} exited with code {code}")


def cache_key(*parts: str) -> str:
    """A short, stable folder name for the environment made of ``parts`` (order matters)."""
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:24]


async def cached_environment(ctx: RunContext, cache: Path, key: str, build: Callable[[Path], Awaitable[None]],
                             ready: Callable[[Path], bool], what: str) -> Path:
    """The folder ``cache/key``, made by ``build(folder)`` unless ``ready(cache/key)`` already holds.
    ``what`` names the dependencies in the log line. Checkpoint; a cancelled build leaves nothing behind."""
    target = cache / key
    async with _build_locks.setdefault((str(cache), key), trio.Lock()):
        if not await trio.to_thread.run_sync(ready, target):
            ctx.logger.info(f"Installing dependencies: {what} (cached for later tasks)")
            await trio.to_thread.run_sync(lambda: cache.mkdir(parents=True, exist_ok=True))
            build_dir = cache / f".build-{key}-{uuid.uuid4().hex[:8]}"
            try:
                await build(build_dir)
                try:
                    os.replace(build_dir, target)      # atomic: other processes see all or nothing
                except OSError:
                    if not await trio.to_thread.run_sync(ready, target):
                        raise
            finally:
                with trio.CancelScope(shield=True):
                    await trio.to_thread.run_sync(shutil.rmtree, build_dir, True)
    return target
