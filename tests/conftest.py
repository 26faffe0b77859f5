"""Fixtures shared by every test folder."""
from __future__ import annotations

from pathlib import Path

import pytest

from .venvs import kestra_python as _kestra_python, kestrapy_python as _kestrapy_python, make_wheel


@pytest.fixture(scope="session")
def kestra_python() -> str:
    """A Python interpreter with the real ``kestra`` client from PyPI (a venv cached across runs: tests/venvs.py)."""
    return str(_kestra_python())


@pytest.fixture(scope="session")
def kestrapy_python() -> str:
    """A Python interpreter with Kestra's official SDK ``kestrapy`` 2.0 (a cached venv: tests/venvs.py)."""
    return str(_kestrapy_python())


@pytest.fixture
def tiny_wheel(tmp_path) -> Path:
    """A minimal pure-Python wheel (``falconet_tinydep``): pip installs it without the network."""
    return make_wheel(tmp_path)
