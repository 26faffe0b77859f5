"""The Process task runner: run a command as a local subprocess and stream its output lines.

:func:`run_process` starts the command in a **new session** (its own process group), reads stdout and stderr
concurrently and hands every complete line to a callback as soon as it is printed. It returns the exit
code once the process has exited and both pipes are drained.

Process-group hygiene — no orphan survives:

* on cancellation (kill, timeout) the whole group gets SIGTERM, then SIGKILL after ``grace`` seconds if any
  member is still alive; the process is reaped inside a shielded scope and ``trio.Cancelled`` propagates;
* on normal exit, members left behind in the group (``cmd &`` children) get SIGKILL so that they neither
  outlive the task nor keep its pipes open.
"""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from typing import Callable, ContextManager, Mapping, Sequence

import trio

from falconet.runtime.kernel.recovery import group_has_live_members

#: seconds between SIGTERM and SIGKILL when a running script is cancelled
KILL_GRACE_SECONDS = 5.0
_READ_SIZE = 65536


def _signal_group(pgid: int, sig: int) -> bool:
    """Send ``sig`` to the process group; False when the group no longer exists."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    except PermissionError:  # pgid reused by a process we do not own: ours is gone
        return False
    return True


async def _pump(stream: trio.abc.ReceiveStream, on_line: Callable[[str, bool], None], stderr: bool) -> None:
    """Read ``stream`` to EOF and call ``on_line`` once per line (terminator stripped, UTF-8 with
    replacement). A last line without a terminator is delivered at EOF."""
    buffer = b""
    while True:
        chunk = await stream.receive_some(_READ_SIZE)
        if not chunk:
            break
        buffer += chunk
        if b"\n" not in chunk:
            continue
        *lines, buffer = buffer.split(b"\n")
        for raw in lines:
            on_line(raw.rstrip(b"\r").decode("utf-8", errors="replace"), stderr)
    if buffer:
        on_line(buffer.rstrip(b"\r").decode("utf-8", errors="replace"), stderr)


async def _kill_group(pgid: int) -> None:
    """SIGKILL the group and wait (up to 2 s) until its members are really gone. Shielded."""
    with trio.CancelScope(shield=True):
        if _signal_group(pgid, signal.SIGKILL):
            with trio.move_on_after(2.0):
                # The kernel signals no event when a process group empties: polling is the only way.
                while group_has_live_members(pgid):  # noqa: ASYNC110
                    await trio.sleep(0.002)


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for sub in exc.exceptions for leaf in _leaves(sub)]
    return [exc]


def _collapse(exc: BaseException) -> BaseException:
    """The exception callers should see instead of the pump nursery's group: the only non-``Cancelled``
    leaf if there is exactly one, else the first ``Cancelled`` when all leaves are cancellations, else
    the group itself."""
    if not isinstance(exc, BaseExceptionGroup):
        return exc
    leaves = _leaves(exc)
    others = [e for e in leaves if not isinstance(e, trio.Cancelled)]
    if len(others) == 1:
        return others[0]
    if not others:
        return leaves[0]
    return exc


async def _terminate(process: trio.Process, grace: float) -> None:
    """SIGTERM the group, wait up to ``grace`` seconds, SIGKILL it, reap the process. Shielded."""
    with trio.CancelScope(shield=True):
        if _signal_group(process.pid, signal.SIGTERM):
            with trio.move_on_after(grace):
                await process.wait()
        await _kill_group(process.pid)
        await process.wait()


async def run_process(args: Sequence[str], *, cwd: str, env: Mapping[str, str],
                      on_line: Callable[[str, bool], None], grace: float | None = None,
                      track: Callable[[int], ContextManager[None]] | None = None) -> int:
    """Run ``args`` in ``cwd`` with exactly ``env``; call ``on_line(line, is_stderr)`` per output line.

    Returns the exit code (negative signal number if killed by a signal). Checkpoint; on cancellation the
    process group is terminated (SIGTERM, then SIGKILL after ``grace`` seconds, default
    :data:`KILL_GRACE_SECONDS`) and reaped before ``trio.Cancelled`` propagates. Raises ``OSError`` when
    the program cannot be started. ``track(pgid)`` (``RunContext.track_process``) is entered once the
    process started and left once its group is gone.
    """
    grace = KILL_GRACE_SECONDS if grace is None else grace
    process = await trio.lowlevel.open_process(
        list(args), cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    assert process.stdout is not None and process.stderr is not None
    with track(process.pid) if track is not None else contextlib.nullcontext():
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_pump, process.stdout, on_line, False)
                nursery.start_soon(_pump, process.stderr, on_line, True)
                returncode = await process.wait()
                # background children may still hold the pipes open: end them so the pumps reach EOF
                await _kill_group(process.pid)
        except BaseException as exc:
            await _terminate(process, grace)
            single = _collapse(exc)
            if single is exc:
                raise
            raise single from None
        finally:
            with trio.CancelScope(shield=True):
                await process.stdout.aclose()
                await process.stderr.aclose()
    return returncode
