"""What a crashed server left behind, cleaned at the next start-up before any execution resumes.

- :class:`DataDirLock`: one engine owns a data folder at a time (an ``flock`` on ``<data-dir>/falconet.lock``,
  released by the kernel when the process dies). Only the owner cleans up: a second engine opened on the
  same folder must not kill the first one's scripts or delete its temporary files.
- :class:`ProcessRegistry`: every running script's process group is recorded in a small file under
  ``<data-dir>/run/processes`` (leader pid, boot id, leader start time from ``/proc``) and removed when the
  group is gone. At start-up, groups of a crashed server still alive are killed (SIGKILL) and awaited before
  their task runs are attempted again, so one attempt never runs twice at once. A recorded pid is only
  signalled when the boot id and the start time still match: a recycled pid is never killed.
- :class:`Marks`: the executions that ended while their ``afterExecution`` tasks still run are marked by an
  empty file under ``<data-dir>/run/after-execution`` (set before the terminal document is written, removed
  once the tasks are done); at start-up those executions are loaded again, though terminated.
- :func:`private_temp_dir` and :func:`clean_abandoned_temp_dirs`: the folders an engine without a data
  folder (``flow run``, ``open_engine()``) makes in the system temp dir hold a locked ``falconet.lock``; a
  folder whose lock can be taken belonged to a process that died, and the next one deletes it.
- :func:`clean_temp`: temporary task folders and partial uploads are deleted (the directories of
  WorkingDirectory task runs that will resume are kept); the storage cleans its own interrupted writes
  (``Storage.clean_partial``).

Linux only for the process part (``/proc``); elsewhere nothing is recorded and nothing is killed.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import time
from pathlib import Path
from typing import IO, Iterable, Iterator

_BOOT_ID = Path("/proc/sys/kernel/random/boot_id")


#### Owning the data folder ##################################################################################

class DataDirInUse(RuntimeError):
    """Another live engine (a server, ``flow run --data-dir``, an embedder) owns the data folder."""

    def __init__(self, data_dir: Path):
        super().__init__(f"the data folder {data_dir} is in use by another Falconet process "
                         f"(lock {data_dir / 'falconet.lock'}); stop it or choose another --data-dir")


class DataDirLock:
    """An exclusive, non-blocking ``flock`` on ``<data-dir>/falconet.lock``; the kernel drops it when the
    holder dies, so a lock that can be taken means no live engine uses the folder."""

    def __init__(self, data_dir: Path):
        self.path = data_dir / "falconet.lock"
        self._file: IO[bytes] | None = None

    def acquire(self) -> bool:
        """Take the lock (a no-op when this object holds it); False when another live holder has it."""
        if self._file is not None:
            return True
        f = open(self.path, "ab")
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.close()
            return False
        self._file = f
        return True

    def release(self) -> None:
        if self._file is not None:
            self._file.close()  # closing the descriptor releases the flock
            self._file = None


#### Process groups ##########################################################################################

def _stat_fields(pid: int) -> list[bytes] | None:
    """The fields of ``/proc/<pid>/stat`` after the command name (field 3, the state, first)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _boot_id() -> str | None:
    try:
        return _BOOT_ID.read_text(encoding="ascii").strip()
    except OSError:
        return None


def process_start_time(pid: int) -> int | None:
    """The start time of ``pid`` in clock ticks since boot (``/proc/<pid>/stat`` field 22), or None."""
    fields = _stat_fields(pid)
    return int(fields[19]) if fields is not None and len(fields) > 19 else None


def _group_members(pgid: int) -> list[tuple[int, int]]:
    """(pid, start time) of the live (non-zombie) processes of group ``pgid``."""
    out: list[tuple[int, int]] = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return out
    for entry in entries:
        if not entry.isdigit():
            continue
        fields = _stat_fields(int(entry))
        if fields is None or len(fields) <= 19 or fields[0] in (b"Z", b"X") or int(fields[2]) != pgid:
            continue
        out.append((int(entry), int(fields[19])))
    return out


def group_has_live_members(pgid: int) -> bool:
    """True while a non-zombie process of group ``pgid`` exists (Linux ``/proc``; elsewhere: signal 0)."""
    if not os.path.isdir("/proc/self"):
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return False
        return True
    return bool(_group_members(pgid))


class ProcessRegistry:
    """Files recording the running scripts' process groups (see the module docstring)."""

    def __init__(self, folder: Path):
        self.folder = folder

    @contextlib.contextmanager
    def tracking(self, pgid: int, owner: str) -> Iterator[None]:
        """Record the group led by ``pgid`` for the duration of the block (the caller ends the group before
        leaving it). ``owner`` names the task run, for the start-up log."""
        path = self._record(pgid, owner)
        try:
            yield
        finally:
            if path is not None:
                path.unlink(missing_ok=True)

    def _record(self, pgid: int, owner: str) -> Path | None:
        boot, start = _boot_id(), process_start_time(pgid)
        if boot is None or start is None:
            return None  # no /proc: a leftover could not be told from a recycled pid, so nothing is kept
        path = self.folder / f"{pgid}.json"
        tmp = self.folder / f"{pgid}.tmp"
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps({"pgid": pgid, "boot": boot, "start": start, "owner": owner}),
                           encoding="utf-8")
            os.replace(tmp, path)
        except OSError:  # a full or read-only disk must not fail the script (its group is still ended)
            return None
        return path

    def reap(self, wait: float = 5.0) -> list[str]:
        """Kill the groups recorded by a previous (crashed) server that are still alive, wait until they are
        gone (up to ``wait`` seconds), forget every record. Blocking; returns the owners of killed groups."""
        if not self.folder.is_dir():
            return []
        boot = _boot_id()
        killed: list[tuple[int, str]] = []
        for path in sorted(self.folder.iterdir()):
            try:
                record = json.loads(path.read_text(encoding="utf-8")) if path.suffix == ".json" else None
            except (OSError, ValueError):
                record = None
            if isinstance(record, dict) and record.get("boot") == boot and boot is not None:
                pgid, start = int(record.get("pgid", 0)), int(record.get("start", -1))
                if pgid > 1 and self._is_leftover(pgid, start):
                    try:
                        os.killpg(pgid, signal.SIGKILL)
                        killed.append((pgid, str(record.get("owner", ""))))
                    except (ProcessLookupError, PermissionError):
                        pass
            path.unlink(missing_ok=True)
        deadline = time.monotonic() + wait
        for pgid, _ in killed:
            while group_has_live_members(pgid) and time.monotonic() < deadline:
                time.sleep(0.005)
        return [owner for _, owner in killed]

    @staticmethod
    def _is_leftover(pgid: int, start: int) -> bool:
        """The recorded group still exists: its leader runs with the recorded start time, or (leader gone)
        members started after it remain — a group id is never reused while members of the group live."""
        leader_start = process_start_time(pgid)
        if leader_start is not None:
            return leader_start == start
        members = _group_members(pgid)
        return bool(members) and all(m_start >= start for _, m_start in members)


#### Executions to resume though terminated #################################################################

class Marks:
    """A set of execution ids kept as empty files in ``folder`` (ids are the engine's own: letters, digits,
    ``-`` and ``_``; anything else is refused)."""

    def __init__(self, folder: Path):
        self.folder = folder

    @staticmethod
    def _valid(execution_id: str) -> bool:
        return 0 < len(execution_id) <= 64 and all(c.isalnum() or c in "-_" for c in execution_id)

    def add(self, execution_id: str) -> None:
        if self._valid(execution_id):
            self.folder.mkdir(parents=True, exist_ok=True)
            (self.folder / execution_id).touch()

    def discard(self, execution_id: str) -> None:
        if self._valid(execution_id):
            (self.folder / execution_id).unlink(missing_ok=True)

    def ids(self) -> list[str]:
        if not self.folder.is_dir():
            return []
        return sorted(p.name for p in self.folder.iterdir() if self._valid(p.name))


#### Temporary folders in the system temp dir ##############################################################

TEMP_PREFIX = "falconet-"
LOCK_GRACE = 60.0  # seconds: a lock file younger than this may not be locked yet by its creator


def private_temp_dir(prefix: str = TEMP_PREFIX) -> tuple[Path, DataDirLock]:
    """A new folder in the system temp dir, locked while its creator lives (release, then delete it)."""
    import tempfile

    path = Path(tempfile.mkdtemp(prefix=prefix))
    lock = DataDirLock(path)
    lock.acquire()
    return path, lock


def clean_abandoned_temp_dirs(root: Path | None = None) -> int:
    """Delete the ``falconet-*`` folders of ``root`` (the system temp dir) left by dead processes: owned by
    this user, holding a ``falconet.lock`` older than LOCK_GRACE that nobody holds. Blocking; returns the
    count."""
    import tempfile

    root = Path(root or tempfile.gettempdir())
    removed = 0
    try:
        entries = [e for e in os.scandir(root) if e.name.startswith(TEMP_PREFIX)]
    except OSError:
        return 0
    for entry in entries:
        try:
            if not entry.is_dir(follow_symlinks=False) or entry.stat(follow_symlinks=False).st_uid != os.getuid():
                continue
            lock_path = Path(entry.path, "falconet.lock")
            if time.time() - lock_path.lstat().st_mtime < LOCK_GRACE or lock_path.is_symlink():
                continue
            lock = DataDirLock(Path(entry.path))
            if not lock.acquire():
                continue  # its process is alive
        except OSError:
            continue
        try:
            shutil.rmtree(entry.path, ignore_errors=True)
            removed += 1
        finally:
            lock.release()
    return removed


#### Temporary files #########################################################################################

def task_run_directory(temp_root: Path, task_run_id: str) -> Path:
    """The private directory of a task run under ``temp_root`` (a flowable's shared working directory):
    deterministic, so a restart finds it, and kept by :func:`clean_temp` while the task run is unfinished."""
    return temp_root / f"wd-{task_run_id}"


def clean_temp(temp_root: Path, keep: Iterable[str] = ()) -> int:
    """Delete every entry of ``temp_root`` (task folders, uploads, archives) except the names in ``keep``.
    Blocking; returns how many entries were removed."""
    if not temp_root.is_dir():
        return 0
    kept = set(keep)
    removed = 0
    for entry in temp_root.iterdir():
        if entry.name in kept:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed += 1
    return removed

