"""A small local HTTP server on a thread (127.0.0.1, random port) for the HTTP plugin tests."""
from __future__ import annotations

import contextlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator

BIG = b"0123456789abcdef" * 65536   # 1 MiB


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # keep test output quiet
        return

    def _send(self, code: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(code)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _echo(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8", errors="replace") if length else ""
        doc = {"method": self.command, "path": self.path, "body": body,
               "headers": {k.lower(): v for k, v in self.headers.items()}}
        self._send(200, json.dumps(doc).encode(), {"Content-Type": "application/json"})

    def do_GET(self) -> None:
        if self.path == "/hello":
            self._send(200, b"hello world", {"Content-Type": "text/plain; charset=utf-8", "X-Test": "a"})
        elif self.path == "/echo" or self.path.startswith("/echo?"):
            self._echo()
        elif self.path == "/items.csv":
            self._send(200, b"id,name\n1,a\n2,b\n", {"Content-Type": "text/csv"})
        elif self.path == "/attachment":
            self._send(200, b"data", {"Content-Disposition": 'attachment; filename="report.txt"'})
        elif self.path == "/big.bin":
            self._send(200, BIG, {"Content-Type": "application/octet-stream"})
        elif self.path == "/empty":
            self._send(200, b"")
        elif self.path == "/redirect":
            self._send(302, b"", {"Location": "/hello"})
        elif self.path == "/missing":
            self._send(404, b"not here")
        else:
            self._send(404, b"unknown")

    do_POST = do_PUT = do_DELETE = do_PATCH = _echo


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        """A client that hangs up early (maxContentLength tests) is expected: stay quiet about it."""
        import sys

        if not isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            super().handle_error(request, client_address)


@contextlib.contextmanager
def serve() -> Iterator[str]:
    """Run the server on a thread; yields its base URL; shuts it down on exit."""
    server = Server(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
