#!/usr/bin/env python3
"""CI step: Kestra's conformance harness against a freshly started ``falconet server local``.

    python .ci/conformance.py SUITE_DIR        (SUITE_DIR holds run.py and cases.yaml)

Starts the server on a free port with a temporary data folder, runs ``SUITE_DIR/run.py --url ... cases.yaml``
and stops the server. The rule: every case must pass (the score stays at 100 % of the visible cases), and
``tests/conformance/passing.txt`` must list exactly the cases of ``cases.yaml``, so that the pytest layer
(``tests/conformance``) guards every one of them too. Exit 0 when both hold, 1 otherwise.
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

ROOT = Path(__file__).resolve().parents[1]
PASSING = ROOT / "tests" / "conformance" / "passing.txt"
START_TIMEOUT = 60.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_up(url: str, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        try:
            with urllib.request.urlopen(url + "/api/v1/configs", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with code {proc.returncode}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"the server did not answer within {START_TIMEOUT:.0f} s")
        time.sleep(0.1)


def listed_cases() -> list[str]:
    return [line.strip() for line in PASSING.read_text().splitlines() if line.strip() and not line.startswith("#")]


def verdict(results: list[dict]) -> list[str]:
    """The problems of a harness report (empty when the step passes)."""
    listed = listed_cases()
    names = [r["name"] for r in results]
    problems = []
    for r in results:
        if r["status"] != "PASS":
            kind = "regression" if r["name"] in listed else "failing"
            problems.append(f"{kind}: {r['name']}: {r.get('reason', r['status'])}")
    problems += [f"passing.txt does not list {n} (add it)" for n in names if n not in listed]
    problems += [f"passing.txt lists {n}, which cases.yaml has not" for n in listed if n not in names]
    return problems


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    suite = Path(argv[0]).resolve()
    with tempfile.TemporaryDirectory(prefix="falconet-conformance-") as tmp:
        work = Path(tmp)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        log = (work / "server.log").open("w")
        proc = subprocess.Popen([sys.executable, "-m", "falconet", "server", "local", "--port", str(port),
                                 "--data-dir", str(work / "data")], stdout=log, stderr=subprocess.STDOUT, cwd=work)
        try:
            wait_until_up(url, proc)
            report = work / "report.json"
            harness = subprocess.run([sys.executable, str(suite / "run.py"), "--url", url, "--json", str(report),
                                      str(suite / "cases.yaml")], cwd=work)
            results = json.loads(report.read_text()) if report.exists() else []
            problems = verdict(results) if results else [f"the harness wrote no report (exit {harness.returncode})"]
        except RuntimeError as exc:
            problems = [str(exc)]
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            log.close()
        if problems:
            print("\n".join(["conformance step FAILED:", *problems]), file=sys.stderr)
            print("--- server output (last 40 lines) ---", file=sys.stderr)
            print("\n".join((work / "server.log").read_text().splitlines()[-40:]), file=sys.stderr)
            return 1
    print(f"conformance: all {len(results)} cases pass")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
