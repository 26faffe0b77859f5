"""The conformance step of .ci/run (.ci/conformance.py), driven with a stand-in harness: it starts a real
server for the harness, and fails on a failing case or on a passing.txt that does not list every case."""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
STEP = ROOT / ".ci" / "conformance.py"

# Stands in for the harness: checks that the server answers, then reports every listed case as passing,
# except the one named by FAIL_CASE.
HARNESS = """
import json, os, sys, urllib.request
args = sys.argv[1:]
url, report = args[args.index("--url") + 1], args[args.index("--json") + 1]
with urllib.request.urlopen(url + "/api/v1/configs", timeout=5) as r:
    assert r.status == 200
names = [line.strip() for line in open(os.environ["PASSING"]) if line.strip() and not line.startswith("#")]
results = [{"name": n, "status": "FAIL" if n == os.environ.get("FAIL_CASE") else "PASS", "reason": "state RUNNING"}
           for n in names]
open(report, "w").write(json.dumps(results))
"""


def load_step():
    spec = importlib.util.spec_from_file_location("ci_conformance", STEP)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def suite(tmp_path) -> Path:
    (tmp_path / "run.py").write_text(HARNESS)
    (tmp_path / "cases.yaml").write_text("[]\n")
    return tmp_path


def run_step(suite: Path, **env: str) -> subprocess.CompletedProcess:
    environ = {**os.environ, "PASSING": str(ROOT / "tests" / "conformance" / "passing.txt"), **env}
    return subprocess.run([sys.executable, str(STEP), str(suite)], capture_output=True, text=True, timeout=120,
                          env=environ, cwd=suite)


def test_every_case_passing_passes(suite):
    done = run_step(suite)
    assert done.returncode == 0, done.stderr
    assert "conformance: all" in done.stdout


def test_a_failing_listed_case_is_a_regression(suite):
    listed = load_step().listed_cases()
    done = run_step(suite, FAIL_CASE=listed[0])
    assert done.returncode == 1
    assert f"regression: {listed[0]}: state RUNNING" in done.stderr


def test_verdict_requires_passing_txt_to_list_every_case():
    step = load_step()
    listed = step.listed_cases()
    report = [{"name": n, "status": "PASS"} for n in [*listed[1:], "new-case"]]
    assert step.verdict(report) == ["passing.txt does not list new-case (add it)",
                                    f"passing.txt lists {listed[0]}, which cases.yaml has not"]
    assert step.verdict([{"name": n, "status": "PASS"} for n in listed]) == []


#### .ci/run's required steps ###############################################################################

def required_commands() -> list[str]:
    """The command lines of .ci/run's required section (comments, blank lines and ``step`` labels left out)."""
    text = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    required = text.split("#### required steps", 1)[1].split("#### optional steps", 1)[0]
    return [line.strip() for line in required.splitlines()
            if line.strip() and not line.lstrip().startswith(("#", "step "))]


def test_ci_runs_ruff_and_mypy_after_install_and_before_pytest() -> None:
    assert "set -euo pipefail" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")  # a failing step fails CI
    commands = required_commands()
    order = [commands.index(c) for c in ("pip install -e '.[test]'", "ruff check", "mypy", "python -m pytest")]
    assert order == sorted(order), commands


def test_ruff_and_mypy_are_configured_for_falconet_and_installed_by_the_test_extra() -> None:
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert {"E", "F", "ASYNC"} <= set(config["tool"]["ruff"]["lint"]["select"])
    assert config["tool"]["ruff"]["include"] == ["falconet/**/*.py"]
    assert config["tool"]["mypy"]["files"] == ["falconet"]
    test_extra = " ".join(config["project"]["optional-dependencies"]["test"])
    assert "ruff" in test_extra and "mypy" in test_extra
