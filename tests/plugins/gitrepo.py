"""A local git remote for the git plugin tests: a bare repository in a temp folder, changed through a
seeding clone (``commit``), optionally served over HTTP (git's smart protocol through ``git http-backend``)
behind Basic auth."""
from __future__ import annotations

import base64
import contextlib
import os
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator, Mapping

IDENTITY = ["-c", "user.name=Tester", "-c", "user.email=tester@example.com", "-c", "init.defaultBranch=main"]


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *IDENTITY, *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


class Remote:
    """``url`` is the bare repository's path; ``commit`` writes/deletes files on a branch and pushes."""

    def __init__(self, base: Path):
        self.bare = base / "origin.git"
        self.bare.mkdir(parents=True)
        git(self.bare, "init", "--quiet", "--bare", "-b", "main")
        self.work = base / "seed"
        self.work.mkdir()
        git(self.work, "init", "--quiet", "-b", "main")
        git(self.work, "remote", "add", "origin", str(self.bare))
        self.url = self.bare.as_uri()

    def commit(self, files: Mapping[str, str | None], branch: str = "main", message: str = "change") -> str:
        """Write (``None``: delete) ``files`` on ``branch`` and push; the new commit id."""
        existing = git(self.work, "branch", "--list", branch).strip()
        git(self.work, "checkout", "--quiet", *([branch] if existing else ["-B", branch]))
        for name, content in files.items():
            path = self.work / name
            if content is None:
                path.unlink()
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(content)
        git(self.work, "add", "--all")
        git(self.work, "commit", "--quiet", "-m", message)
        git(self.work, "push", "--quiet", "origin", branch)
        return git(self.work, "rev-parse", "HEAD").strip()

    def show(self, ref_path: str) -> str:
        """``git show branch:path`` in the bare repository."""
        return git(self.bare, "show", ref_path)

    def files(self, branch: str) -> list[str]:
        return git(self.bare, "ls-tree", "-r", "--name-only", branch).split()


class _GitHttpHandler(BaseHTTPRequestHandler):
    """git's smart HTTP protocol through ``git http-backend`` (CGI), behind Basic auth."""

    protocol_version = "HTTP/1.1"
    root = ""
    credentials = ""
    seen: list[str] = []

    def log_message(self, format: str, *args: object) -> None:
        return

    def _handle(self) -> None:
        header = self.headers.get("Authorization", "")
        self.seen.append(header)
        if header != "Basic " + base64.b64encode(self.credentials.encode()).decode():
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="git"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        path, _, query = self.path.partition("?")
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        env = {"GIT_PROJECT_ROOT": self.root, "GIT_HTTP_EXPORT_ALL": "1", "PATH_INFO": path,
               "QUERY_STRING": query, "REQUEST_METHOD": self.command, "REMOTE_USER": "robot",
               "CONTENT_TYPE": self.headers.get("Content-Type", ""), "CONTENT_LENGTH": str(len(body)),
               "PATH": os.environ["PATH"]}
        done = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True, check=True)
        head, _, payload = done.stdout.partition(b"\r\n\r\n")
        headers = dict(line.split(": ", 1) for line in head.decode().split("\r\n") if ": " in line)
        self.send_response(int(headers.pop("Status", "200").split()[0]))
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = _handle


@contextlib.contextmanager
def serve_http(remote: Remote, username: str, password: str) -> Iterator[tuple[str, list[str]]]:
    """(URL of the bare repository over HTTP on 127.0.0.1 needing ``username:password``, the Authorization
    headers received)."""
    seen: list[str] = []
    handler = type("Handler", (_GitHttpHandler,), {"credentials": f"{username}:{password}", "seen": seen,
                                                   "root": str(remote.bare.parent)})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/{remote.bare.name}", seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
