"""A throwaway S3 server for tests: moto's server mode (``moto[server]``, the ``test`` extra) on a free
loopback port, in a thread of the test process. It speaks S3's HTTP API, so boto3 talks to it as to AWS.

The fixtures ``s3_server`` (one per session) and ``s3_settings`` (a fresh bucket per test) in
tests/conftest.py use it; they skip with the reason when moto or boto3 is missing.
"""
from __future__ import annotations

import contextlib
import socket
from typing import Iterator

ACCESS_KEY = "falconet-test"
SECRET_KEY = "falconet-test-secret"
REGION = "us-east-1"


def missing_reason() -> str | None:
    """Why a server cannot be started here, or None."""
    try:
        import boto3  # noqa: F401
        from moto.server import ThreadedMotoServer  # noqa: F401
    except ImportError as exc:
        return f"the S3 tests need boto3 and moto[server] (pip install -e '.[test,s3]'): {exc}"
    return None


@contextlib.contextmanager
def running_server() -> Iterator[str]:
    """Start moto's S3 server on a free port; yields its endpoint URL."""
    from moto.server import ThreadedMotoServer

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def create_bucket(endpoint: str, name: str) -> None:
    import boto3

    boto3.client("s3", endpoint_url=endpoint, region_name=REGION, aws_access_key_id=ACCESS_KEY,
                 aws_secret_access_key=SECRET_KEY).create_bucket(Bucket=name)
