"""CI step: Kestra's own web UI (``<shared>/kestra-ui/check.py``) against a freshly started Falconet server.

    python .ci/kestra_ui.py ../shared/kestra-ui

Starts ``falconet server local`` on a free port with a temporary data folder, runs check.py (headless
Debian Chromium through Playwright), stops the server, and exits 1 when a page FAILs.

Kestra's UI also calls https://api.kestra.io on every page (App.vue's `api/loadFeeds` and `api/loadConfig`,
plugins.js's `api/pluginIcons`, once more on the topology pages), without a catch. Without internet access
those calls fail inside the browser as uncaught AxiosErrors, which this minified build names `ar`, and
check.py counts them against every page whatever Falconet answers. This step therefore judges a page on what
Falconet controls: no API call to Falconet failed (serve.py logs every one, a dropped connection as a 5xx),
the UI did not show its error page, and every uncaught error is such an `ar` error — an AxiosError with no
failed Falconet call behind it can only come from api.kestra.io (any other error text fails the page). The
Execute button passes when the click created an execution (counted through the API). check.py's report is
printed in full either way (its own count as "check.py counted …"); the step's result is the last line,
`kestra-ui: N passed, M failed`. The step itself contacts no host but the local server.
"""
from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


COUNT = re.compile(r"^(\d+) passed, (\d+) failed$")
OFFLINE_ERROR = "ar"  # the minified AxiosError of the uncaught api.kestra.io calls


def passes(page: dict) -> bool:
    """A page passes unless Falconet failed it: a failed call, the error page, or an error of its own."""
    if page["ok"]:
        return True
    errors = page["errors"]
    return not page["failed_calls"] and not page["error_page"] and all(e == OFFLINE_ERROR for e in errors)


def executions_of(base: str, flow: str) -> int:
    url = f"{base}/api/v1/executions/search?namespace=company.team&flowId={flow}&size=1"
    with urllib.request.urlopen(url, timeout=30) as r:
        return json.loads(r.read())["total"]


def main() -> int:
    ui = Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/kestra-ui")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as tmp:
        server = subprocess.Popen([sys.executable, "-m", "falconet", "server", "local", "--port", str(port),
                                   "--data-dir", str(Path(tmp) / "data")], stdout=subprocess.DEVNULL)
        try:
            for _ in range(300):
                try:
                    urllib.request.urlopen(base + "/ping", timeout=1).read()
                    break
                except OSError:
                    time.sleep(0.1)
            else:
                print("the Falconet server did not start")
                return 1
            report = Path(tmp) / "report.json"
            check = subprocess.Popen([sys.executable, str(ui / "check.py"), "--falconet", base, "--json",
                                      str(report)], stdout=subprocess.PIPE, text=True)
            assert check.stdout is not None
            for line in check.stdout:
                # check.py's own count also holds the offline api.kestra.io errors against every page: shown,
                # but not as the step's result line
                counted = COUNT.match(line.strip())
                print(f"check.py counted {counted[1]} clean, {counted[2]} with errors" if counted else line,
                      end="" if not counted else "\n", flush=True)
            check.wait()
            if check.returncode != 0 or not report.exists():
                print(f"check.py did not complete (exit {check.returncode})")
                return 1
            pages = json.loads(report.read_text())
            # check.py seeds one execution per flow; the Execute button adds one to hello_world
            executed = executions_of(base, "hello_world") >= 2
        finally:
            server.terminate()
            server.wait(30)
    failed = [p["name"] for p in pages
              if not passes(p) or (p["name"] == "execute-button" and not p["ok"] and not executed)]
    if failed:
        print(f"failing: {', '.join(failed)}")
    print(f"kestra-ui: {len(pages) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
