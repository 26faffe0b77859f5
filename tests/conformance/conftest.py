"""The optional Kestra conformance layer: Kestra's own test flows and the black-box harness of the sibling
folder ``../shared/conformance`` (``FALCONET_SHARED`` names another parent folder).

A clone of this repository alone has no such folder: every test here is then skipped with the reason, and
the project's own flows (``tests/flows``) cover the same parsing and validation behaviours.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SUITE = Path(os.environ.get("FALCONET_SHARED") or ROOT.parent / "shared") / "conformance"
KESTRA_FLOWS = SUITE / "kestra-flows"
MISSING = (f"optional Kestra conformance suite not found at {SUITE} "
           "(a sibling ../shared/conformance folder, or FALCONET_SHARED=<its parent>)")


@pytest.fixture(scope="session", autouse=True)
def conformance_suite() -> Path:
    if not (SUITE / "cases.yaml").is_file() or not KESTRA_FLOWS.is_dir():
        pytest.skip(MISSING)
    return SUITE


#: parametrized arguments -> (the folders of kestra-flows whose files they take, the files they leave out)
FLOW_ARGUMENTS = {
    # invalid-task-defaults.yaml is invalid; flowable-with-parent-fail.yaml holds a broken expression on
    # purpose, which Falconet's validation rejects (tests/test_flow_templates_validation.py)
    "kestra_valid_flow": (("valids", "tests", "templates"),
                          ("invalid-task-defaults.yaml", "flowable-with-parent-fail.yaml")),
    "kestra_invalid_flow": (("invalids",), ()),
    "kestra_expression_flow": (("valids",), ()),
}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Each argument of FLOW_ARGUMENTS takes every flow file of its folders (one placeholder when absent)."""
    for name, (dirs, left_out) in FLOW_ARGUMENTS.items():
        if name in metafunc.fixturenames:
            files = sorted(p for d in dirs for p in (KESTRA_FLOWS / d).glob("*.y*ml") if p.name not in left_out)
            metafunc.parametrize(name, files or [None], ids=[f"{p.parent.name}/{p.name}" for p in files] or ["absent"])
