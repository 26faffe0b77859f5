"""A throwaway PostgreSQL server for tests: ``initdb`` + ``pg_ctl`` from Debian's ``postgresql`` package into a
temporary directory, on a free loopback port (run as the ``postgres`` user when the tests run as root, since
PostgreSQL refuses to run as root). Password authentication over TCP, as a real deployment has.

The fixtures ``pg_server`` (one server per test session) and ``pg_url`` (a fresh database per test) in
tests/conftest.py use it; they skip with the reason when the binaries or psycopg are missing.
"""
from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

USER = "postgres"
PASSWORD = "falconet-test"


def find_binaries() -> Path | None:
    """The folder holding ``initdb`` and ``pg_ctl`` (PATH first, then Debian's versioned folders)."""
    initdb = shutil.which("initdb")
    if initdb and shutil.which("pg_ctl"):
        return Path(os.path.realpath(initdb)).parent
    for folder in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if os.access(os.path.join(folder, "initdb"), os.X_OK):
            return Path(folder)
    return None


def missing_reason() -> str | None:
    """Why a server cannot be started here, or None."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed (pip install -e '.[postgres]')"
    if find_binaries() is None:
        return "PostgreSQL server binaries (initdb, pg_ctl) not found: apt-get install postgresql"
    if os.geteuid() == 0:
        try:
            import pwd

            pwd.getpwnam(USER)
        except KeyError:
            return f"running as root without a '{USER}' user to run PostgreSQL"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PgServer:
    host: str
    port: int
    user: str
    password: str

    def jdbc_url(self, database: str = "postgres") -> str:
        return f"jdbc:postgresql://{self.host}:{self.port}/{database}"

    def connect(self, database: str = "postgres", **kw: Any) -> Any:
        """A psycopg connection (autocommit) to ``database``."""
        import psycopg

        return psycopg.connect(host=self.host, port=self.port, user=self.user, password=self.password,
                               dbname=database, autocommit=True, **kw)

    def create_database(self, name: str) -> str:
        with self.connect() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return name


@contextlib.contextmanager
def running_server() -> Iterator[PgServer]:
    """Start a server in a temporary directory; stop it (immediate mode) and remove the directory on exit."""
    bin_dir = find_binaries()
    assert bin_dir is not None, missing_reason()
    as_root = os.geteuid() == 0
    base = Path(tempfile.mkdtemp(prefix="falconet-pg-"))
    run_as: dict[str, Any] = {}
    if as_root:
        import pwd

        entry = pwd.getpwnam(USER)
        os.chown(base, entry.pw_uid, entry.pw_gid)
        run_as = {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}
    data, log = base / "data", base / "server.log"
    pwfile = base / "pwfile"
    pwfile.write_text(PASSWORD + "\n")
    if as_root:
        os.chown(pwfile, run_as["user"], run_as["group"])
    port = _free_port()

    def run(*args: str) -> None:
        subprocess.run(args, check=True, capture_output=True, cwd=base, **run_as)

    try:
        run(str(bin_dir / "initdb"), "-D", str(data), "-U", USER, "--auth-local=trust",
            "--auth-host=scram-sha-256", f"--pwfile={pwfile}", "-E", "UTF8", "--no-sync")
        run(str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "60", "-o",
            f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off", "start")
        try:
            yield PgServer("127.0.0.1", port, USER, PASSWORD)
        finally:
            run(str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
    except subprocess.CalledProcessError as exc:
        tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        raise RuntimeError(f"PostgreSQL failed: {exc.stderr.decode(errors='replace')}\n{tail}") from exc
    finally:
        shutil.rmtree(base, ignore_errors=True)
