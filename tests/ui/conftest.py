"""Browser tests of the web UI: real headless Chromium (Debian's ``chromium``) driven by Playwright.

They skip (with the reason) when Playwright or ``/usr/bin/chromium`` is missing; they never download a
browser. The end-to-end tests start the real server (``python -m falconet server local --port P
--data-dir D``), or use an already running one named by ``FALCONET_UI_TEST_URL``. Every console error
and uncaught page error fails the test that caused it. Screenshots go to ``tests/ui/artifacts/``
(git-ignored).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import pytest

CHROMIUM = os.environ.get("FALCONET_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
REPO = Path(__file__).resolve().parents[2]
STATIC_DIR = REPO / "falconet" / "http" / "static"

try:
    from playwright.sync_api import sync_playwright
except ImportError:  # pragma: no cover - depends on the machine
    sync_playwright = None


def _skip_reason() -> str | None:
    if sync_playwright is None:
        return "playwright is not installed (pip install playwright; no browser download needed)"
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        return f"chromium not found at {CHROMIUM} (apt-get install -y chromium)"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_http(url: str, deadline: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the server exited with code {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:  # noqa: S310 - local test server
                if r.status < 500:
                    return
        except urllib.error.HTTPError as e:
            if e.code < 500:
                return
            last = e
        except OSError as e:
            last = e
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer in time: {last}")


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


@contextlib.contextmanager
def run_server(data_dir: str, log_name: str = "server.log") -> Iterator[str]:
    """A Falconet server process on a free port over ``data_dir``; yields its base URL, stops it after."""
    port = _free_port()
    log_path = ARTIFACTS / log_name
    cmd = [sys.executable, "-m", "falconet", "server", "local", "--port", str(port), "--data-dir", data_dir]
    if not (REPO / "falconet" / "__main__.py").exists() and shutil.which("falconet"):
        cmd = [shutil.which("falconet") or "falconet", *cmd[3:]]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            _wait_http(f"http://127.0.0.1:{port}/api/v1/flows/search", time.monotonic() + 30, proc)
        except RuntimeError as e:
            proc.kill()
            proc.wait()
            pytest.fail(f"could not start the server with {' '.join(cmd)}: {e}\n{log_path.read_text(errors='replace')[-3000:]}")
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture(scope="session")
def server_url(browser: Any) -> Iterator[str]:
    """Base URL of a live Falconet server (started here unless FALCONET_UI_TEST_URL names one)."""
    given = os.environ.get("FALCONET_UI_TEST_URL")
    if given:
        yield given.rstrip("/")
        return
    data_dir = tempfile.mkdtemp(prefix="falconet-ui-")
    try:
        with run_server(data_dir) as url:
            yield url
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def static_url(browser: Any) -> Iterator[str]:
    """The UI's own static files over HTTP (no API): for the JS unit tests."""
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", str(STATIC_DIR)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_http(f"http://127.0.0.1:{port}/ui/index.html", time.monotonic() + 10, proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


class PageErrors:
    """Console errors and uncaught exceptions of one page; `allow` lists expected error patterns."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.allowed: list[re.Pattern[str]] = []

    def allow(self, pattern: str) -> None:
        self.allowed.append(re.compile(pattern))

    def unexpected(self) -> list[str]:
        return [e for e in self.errors if not any(p.search(e) for p in self.allowed)]


def _new_page(browser: Any, request: Any, screenshot: bool = True, **context_args: Any) -> Iterator[Any]:
    context = browser.new_context(**{"viewport": {"width": 1280, "height": 800}, "timezone_id": "Europe/Paris", **context_args})
    page = context.new_page()
    errs = PageErrors()
    page.on("console", lambda m: errs.errors.append(f"console.{m.type}: {m.text} @ {m.location.get('url', '')}") if m.type == "error" else None)
    page.on("pageerror", lambda e: errs.errors.append(f"pageerror: {e}"))
    page.set_default_timeout(15000)
    # assertions wait as long as actions: on a loaded 2-core machine a live page can take more than
    # Playwright's default 5 s to settle
    from playwright.sync_api import expect

    expect.set_options(timeout=15000)
    page.errors = errs
    yield page
    if screenshot:
        name = re.sub(r"[^\w.-]+", "_", request.node.name)
        try:
            page.screenshot(path=str(ARTIFACTS / f"{name}-final.png"), full_page=True, timeout=5000)
        except Exception:  # noqa: BLE001 - a screenshot must not hide the test's own result
            pass
    context.close()
    bad = errs.unexpected()
    if bad:
        pytest.fail("JavaScript errors on the page:\n" + "\n".join(bad))


@pytest.fixture
def page(browser: Any, request: Any) -> Iterator[Any]:
    yield from _new_page(browser, request)


@pytest.fixture
def bare_page(browser: Any, request: Any) -> Iterator[Any]:
    """A page without the final screenshot (unit tests of the JS helpers)."""
    yield from _new_page(browser, request, screenshot=False)


@pytest.fixture
def phone_page(browser: Any, request: Any) -> Iterator[Any]:
    yield from _new_page(browser, request, viewport={"width": 390, "height": 844}, color_scheme="dark", is_mobile=True, has_touch=True)


def shot(page: Any, name: str, full_page: bool = False) -> Path:
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


class Api:
    """Plain HTTP calls to the server's /api/v1 (setting up flows and executions for a UI test)."""

    def __init__(self, base: str) -> None:
        self.base = base

    def call(self, method: str, path: str, body: bytes | None = None, content_type: str | None = None) -> Any:
        req = urllib.request.Request(f"{self.base}/api/v1{path}", data=body, method=method)
        if content_type:
            req.add_header("Content-Type", content_type)
        with urllib.request.urlopen(req, timeout=15) as r:  # noqa: S310 - local test server
            data = r.read()
            return json.loads(data) if data and "json" in r.headers.get("Content-Type", "") else data

    def put_flow(self, yaml_source: str) -> Any:
        m = re.search(r"^id:\s*(\S+)", yaml_source, re.M)
        n = re.search(r"^namespace:\s*(\S+)", yaml_source, re.M)
        assert m and n
        try:
            return self.call("POST", "/flows", yaml_source.encode(), "application/x-yaml")
        except urllib.error.HTTPError as e:
            if e.code != 422:
                raise
            return self.call("PUT", f"/flows/{n.group(1)}/{m.group(1)}", yaml_source.encode(), "application/x-yaml")

    def execute(self, namespace: str, flow_id: str) -> Any:
        boundary = "----falconet-ui-test"
        body = f"--{boundary}--\r\n".encode()
        return self.call("POST", f"/executions/{namespace}/{flow_id}", body, f"multipart/form-data; boundary={boundary}")

    def execution(self, execution_id: str) -> Any:
        return self.call("GET", f"/executions/{execution_id}")


@pytest.fixture(scope="session")
def api(server_url: str) -> Api:
    return Api(server_url)
