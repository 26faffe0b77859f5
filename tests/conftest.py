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


@pytest.fixture(scope="session")
def pg_server():
    """A PostgreSQL server for the whole session (tests/pg.py); skips with the reason when it cannot run."""
    from . import pg

    reason = pg.missing_reason()
    if reason:
        pytest.skip(reason)
    with pg.running_server() as server:
        yield server


@pytest.fixture
def pg_url(pg_server, request) -> str:
    """The ``jdbc:postgresql:`` URL of a fresh database of ``pg_server`` for this test."""
    import re

    name = "t_" + re.sub(r"\W", "_", request.node.name.lower())[:40] + f"_{id(request) % 100000}"
    return pg_server.jdbc_url(pg_server.create_database(name))
