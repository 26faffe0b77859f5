"""CI step: Kestra's own web UI (``<shared>/kestra-ui/check.py``) against a freshly started Falconet server.

    python .ci/kestra_ui.py ../shared/kestra-ui

Starts ``falconet server local`` on a free port with a temporary data folder, runs check.py (headless
Debian Chromium through Playwright), stops the server, and exits 1 when a page FAILs.

Kestra's UI also calls https://api.kestra.io (news feed, configuration, icons) on every page. Without
internet access those calls fail inside the browser and check.py counts the resulting uncaught errors
against every page, whatever Falconet answers. When api.kestra.io cannot be reached, this step says so and
judges each page on what Falconet controls: no API call to Falconet failed and the UI did not show its
error page (check.py's report is printed in full either way).
"""
from __future__ import annotations

import json
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


def online(host: str = "api.kestra.io") -> bool:
    try:
        socket.create_connection((host, 443), timeout=5).close()
        return True
    except OSError:
        return False


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
            check = subprocess.run([sys.executable, str(ui / "check.py"), "--falconet", base, "--json", str(report)])
            if check.returncode != 0 or not report.exists():
                print(f"check.py did not complete (exit {check.returncode})")
                return 1
            pages = json.loads(report.read_text())
        finally:
            server.terminate()
            server.wait(30)
    if online():
        failed = [p["name"] for p in pages if not p["ok"]]
    else:
        print("api.kestra.io is unreachable: the UI's own calls to it fail in the browser, so pages are judged "
              "on Falconet's answers (no failed API call, no error page)")
        failed = [p["name"] for p in pages if p["failed_calls"] or p["error_page"]]
    print(f"Kestra UI: {len(pages) - len(failed)} of {len(pages)} pages pass"
          + (f"; failing: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
