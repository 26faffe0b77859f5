"""Fixtures shared by every test folder."""
from __future__ import annotations

import itertools
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


_BUCKETS = itertools.count(1)


@pytest.fixture(scope="session")
def s3_server():
    """An S3 server for the whole session (tests/s3.py: moto's server mode); skips with the reason when it cannot run."""
    from . import s3

    reason = s3.missing_reason()
    if reason:
        pytest.skip(reason)
    with s3.running_server() as endpoint:
        yield endpoint


@pytest.fixture
def s3_settings(s3_server) -> dict[str, str]:
    """The ``kestra.storage.s3.*`` settings of a fresh bucket of ``s3_server`` for this test."""
    from . import s3

    bucket = f"falconet-{next(_BUCKETS)}"
    s3.create_bucket(s3_server, bucket)
    return {"bucket": bucket, "endpoint": s3_server, "region": s3.REGION, "access-key": s3.ACCESS_KEY,
            "secret-key": s3.SECRET_KEY}
