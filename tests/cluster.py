"""Real cluster nodes for tests: N ``falconet server standalone`` processes on one PostgreSQL database
(tests/pg.py), each on a free port with its own data folder, all on one shared storage folder. A node can be
stopped (SIGTERM) or killed (SIGKILL) at any time.

``store_url(pg_server)`` makes a fresh database and returns its ``postgresql://`` URL; :func:`nodes` starts
the processes and stops whatever still runs on exit.
"""
from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Iterator

_BANNER = re.compile(r"Falconet is running at (http://[^/\s]+)/ui/")
_NODE = re.compile(r"^Node (\S+) of the cluster")


def store_url(pg_server) -> str:
    """A fresh database of ``pg_server`` (tests/pg.py), as the store URL a node takes."""
    name = pg_server.create_database(f"cluster_{uuid.uuid4().hex[:12]}")
    return f"postgresql://{pg_server.user}:{pg_server.password}@{pg_server.host}:{pg_server.port}/{name}"


class Node:
    """One ``falconet server standalone`` process; ``name`` is also its ``KESTRA_NODE`` (``{{ envs.node }}``)."""

    def __init__(self, name: str, url: str, base: Path, storage: Path, lease_duration: float) -> None:
        self.name = name
        self.data_dir = base / name
        self.log_path = base / f"{name}.log"
        self.base_url = ""
        self.node_id = ""
        self._ready = threading.Event()
        env = dict(os.environ, KESTRA_NODE=name, PYTHONUNBUFFERED="1")
        self._log = open(self.log_path, "w", encoding="utf-8")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "falconet", "server", "standalone", "--store", url, "--storage-dir", str(storage),
             "--data-dir", str(self.data_dir), "--port", "0", "--lease-duration", str(lease_duration)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._log.write(line)
            self._log.flush()
            if m := _BANNER.search(line):
                self.base_url = m.group(1)
            if m := _NODE.search(line):
                self.node_id = m.group(1)
                self._ready.set()
        self._ready.set()

    def wait_ready(self, timeout: float = 60) -> None:
        if not self._ready.wait(timeout) or not self.node_id:
            raise RuntimeError(f"node {self.name} did not start:\n{self.output()}")

    def output(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    @property
    def api(self) -> str:
        return f"{self.base_url}/api/v1"

    def kill(self) -> None:
        """SIGKILL: no clean-up, its leases expire by themselves."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self, timeout: float = 20) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._reader.join(10)  # its output is all in the log file
        return self.proc.returncode


@contextlib.contextmanager
def nodes(url: str, base: Path, count: int, *, lease_duration: float = 2.0) -> Iterator[list[Node]]:
    """Start ``count`` nodes on the database ``url`` (data folders and logs under ``base``, storage shared in
    ``base/storage``); all are stopped on exit."""
    storage = base / "storage"
    storage.mkdir(parents=True, exist_ok=True)
    started: list[Node] = []
    try:
        for i in range(count):
            started.append(Node(f"node{i + 1}", url, base, storage, lease_duration))
        deadline = time.monotonic() + 90
        for node in started:
            node.wait_ready(max(1.0, deadline - time.monotonic()))
        yield started
    finally:
        for node in started:
            node.stop()
