"""Issue 9.5 — every body kind is bounded, through a real socket: an oversized body is answered 413 with
Kestra's error body without being read whole, a body no view reads is never buffered beyond a cap,
and uploads keep streaming to disk whatever their size."""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from falconet.http import guard, multipart
from falconet.http.api import executions, flows, kv, triggers

FLOW = """id: bodies
namespace: safety.bodies
inputs:
  - id: text
    type: STRING
    required: false
  - id: file
    type: FILE
    required: false
triggers:
  - id: hook
    type: io.kestra.plugin.core.trigger.Webhook
    key: k
tasks:
  - id: r
    type: io.kestra.plugin.core.debug.Return
    format: "{{ inputs.text ?? '' }}"
"""
MB = 1024 * 1024


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def head(method: str, path: str, length: int | None, content_type: str) -> bytes:
    framing = f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked"
    return f"{method} {path} HTTP/1.1\r\nHost: t\r\nContent-Type: {content_type}\r\n{framing}\r\n\r\n".encode()


def chunks(total: int, fill: bytes = b"x", size: int = 64 * 1024) -> list[bytes]:
    return [fill * min(size, total - i) for i in range(0, total, size)]


def chunked(parts: list[bytes]) -> list[bytes]:
    return [f"{len(p):x}\r\n".encode() + p + b"\r\n" for p in parts] + [b"0\r\n\r\n"]


@pytest.fixture
async def url(start_server: Any, engine: Any) -> str:
    await engine.create_flow(FLOW)
    return await start_server()


def assert_413(result: Any, limit: int) -> dict[str, Any]:
    assert result.responses, (result.closed, result.sent)
    status, _, payload = result.responses[0]
    assert status == 413, payload
    body = json.loads(payload)
    assert body["message"].startswith("Request Entity Too Large: The ")
    assert "exceeds the maximum allowed" in body["message"] and f"[{limit}]" in body["message"]
    assert body["_links"]["self"]["href"]
    return body


@pytest.mark.parametrize("method, path, content_type, limit", [
    ("POST", "/api/v1/executions/safety.bodies/bodies", "application/x-www-form-urlencoded",
     multipart.MAX_URLENCODED_SIZE),
    ("POST", "/api/v1/executions/x/labels", "application/json", executions.JSON_BODY_LIMIT),
    ("POST", "/api/v1/flows", "application/x-yaml", flows.SOURCE_LIMIT),
    ("PUT", "/api/v1/namespaces/safety.bodies/kv/big", "application/json", kv.VALUE_LIMIT),
    ("POST", "/api/v1/executions/webhook/safety.bodies/bodies/k", "text/plain", triggers.WEBHOOK_BODY_LIMIT),
    ("PUT", "/api/v1/triggers", "application/json", triggers.JSON_LIMIT),
])
async def test_a_declared_oversized_body_is_refused_without_reading_it(url: str, raw_http: Any, method: str,
                                                                      path: str, content_type: str,
                                                                      limit: int) -> None:
    """Content-Length of 200 MB: 413 at once, after at most a few MB were sent (today the urlencoded
    body is read whole, the others are 400)."""
    started = time.monotonic()
    result = await raw_http(url, head(method, path, 200 * MB, content_type), chunks(4 * MB), responses=1)
    assert time.monotonic() - started < 4
    body = assert_413(result, limit)
    assert f"[{200 * MB}]" in body["message"]
    assert result.responses[0][1]["connection"] == "close"


@pytest.mark.parametrize("method, path, content_type, limit", [
    ("POST", "/api/v1/executions/safety.bodies/bodies", "application/x-www-form-urlencoded",
     multipart.MAX_URLENCODED_SIZE),
    ("POST", "/api/v1/executions/x/labels", "application/json", executions.JSON_BODY_LIMIT),
    ("POST", "/api/v1/executions/webhook/safety.bodies/bodies/k", "text/plain", triggers.WEBHOOK_BODY_LIMIT),
])
async def test_a_chunked_oversized_body_is_refused_once_past_the_limit(url: str, raw_http: Any, method: str,
                                                                      path: str, content_type: str,
                                                                      limit: int) -> None:
    parts = chunks(limit + 2 * MB, b"a")
    result = await raw_http(url, head(method, path, None, content_type), chunked(parts), responses=1)
    assert_413(result, limit)


async def test_a_multipart_text_part_is_bounded(url: str, raw_http: Any) -> None:
    boundary = "safetyboundary"
    part = (f'--{boundary}\r\nContent-Disposition: form-data; name="text"\r\n\r\n').encode()
    size = multipart.MAX_FIELD_SIZE + MB
    result = await raw_http(url, head("POST", "/api/v1/executions/safety.bodies/bodies", None,
                                      f"multipart/form-data; boundary={boundary}"),
                            chunked([part] + chunks(size, b"t")), responses=1)
    assert_413(result, multipart.MAX_FIELD_SIZE)


async def test_urlencoded_fields_are_counted(url: str) -> None:
    async with httpx.AsyncClient(base_url=url) as http:
        ok = await http.post("/api/v1/executions/safety.bodies/bodies?wait=true", data={"text": "hé &=x"})
        assert ok.status_code == 200 and ok.json()["inputs"]["text"] == "hé &=x"
        many = "&".join(f"f{i}=1" for i in range(multipart.MAX_PARTS + 1))
        refused = await http.post("/api/v1/executions/safety.bodies/bodies", content=many,
                                  headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert refused.status_code == 400 and "Too many fields" in refused.json()["message"]


async def test_a_body_no_view_reads_is_not_buffered(url: str) -> None:
    """An endless SSE answer to a request carrying 160 MB: the server keeps at most its buffer cap of
    that body in memory (today it buffers all of it)."""
    total = 160 * MB
    host, port = url.split("//", 1)[1].rsplit(":", 1)
    stream = await trio.open_tcp_stream(host, int(port))
    before = rss_mb()
    seen = bytearray()

    async def read_answers(cancel: trio.CancelScope) -> None:
        with cancel:
            while data := await stream.receive_some(65536):
                seen.extend(data[:4096 - len(seen)] if len(seen) < 4096 else b"")

    scope = trio.CancelScope()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(read_answers, scope)
        await stream.send_all(head("GET", "/api/v1/logs/any-id/follow", total, "application/octet-stream"))
        block = b"x" * MB   # one block sent again and again: the client side holds 1 MB
        for _ in range(total // MB):
            await stream.send_all(block)
        with trio.fail_after(10):
            while b"\r\n\r\n" not in seen:
                await trio.sleep(0.01)
        grown = rss_mb() - before
        scope.cancel()
    await stream.aclose()
    assert seen.startswith(b"HTTP/1.1 200") and b"connection: close" in seen.lower()
    assert grown < guard.BUFFER_LIMIT / MB + 40, f"RSS grew by {grown:.0f} MB for a {total // MB} MB body"


async def test_uploads_stream_past_every_buffer_cap(url: str, engine: Any) -> None:
    """A 40 MB upload with a Content-Length (as curl sends it), larger than the body buffer cap."""
    size = 40 * MB
    boundary = "uploadboundary"
    body = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.bin"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n").encode() + b"u" * size + f"\r\n--{boundary}--\r\n".encode()
    assert len(body) > guard.BUFFER_LIMIT
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        response = await http.post("/api/v1/executions/safety.bodies/bodies", content=body,
                                   headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert response.status_code == 200, response.text
    assert engine.storage.size(response.json()["inputs"]["file"]) == size


async def test_a_request_beyond_the_server_maximum_is_refused_at_once(url: str, raw_http: Any) -> None:
    declared = guard.MAX_REQUEST_SIZE + 1
    result = await raw_http(url, head("POST", "/api/v1/executions/safety.bodies/bodies", declared,
                                      "multipart/form-data; boundary=b"), chunks(MB), responses=1)
    body = assert_413(result, guard.MAX_REQUEST_SIZE)
    assert f"[{declared}]" in body["message"] and result.responses[0][1]["connection"] == "close"
