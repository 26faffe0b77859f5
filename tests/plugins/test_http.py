"""core.http.Request / Download against a local HTTP server (never the internet)."""
from __future__ import annotations

import json

import pytest

from falconet.plugins.core import http
from falconet.sdk.plugin import TaskFailed

from .httpserver import BIG, serve


@pytest.fixture(scope="module")
def base_url():
    with serve() as url:
        yield url


#### Request ################################################################################################

async def test_get(run_task, base_url):
    out, ctx = await run_task(http.Request, {"uri": base_url + "/hello"})
    assert out["code"] == 200 and out["body"] == "hello world"
    assert out["uri"] == base_url + "/hello"
    assert out["headers"]["X-Test"] == ["a"]
    assert ctx.metrics[0][:3] == ("counter", "response.length", 11)
    assert ctx.metrics[0][3]["request.method"] == "GET"


async def test_post_body_headers_content_type(run_task, base_url):
    out, _ = await run_task(http.Request, {
        "uri": base_url + "/echo", "method": "POST", "contentType": "application/json",
        "headers": {"X-Flow": "{{ flow.id }}"}, "body": '{"a": {{ 1 + 1 }}}'})
    echo = json.loads(out["body"])
    assert echo["method"] == "POST" and echo["body"] == '{"a": 2}'
    assert echo["headers"]["content-type"] == "application/json" and echo["headers"]["x-flow"] == "flow"


async def test_form_data_urlencoded_and_multipart(run_task, make_ctx, base_url):
    out, _ = await run_task(http.Request, {"uri": base_url + "/echo", "method": "POST",
                                           "formData": {"a": "1", "b": "x y"}})
    assert json.loads(out["body"])["body"] == "a=1&b=x+y"
    seed = make_ctx(http.Request, {})
    uri = seed.storage.put_bytes(b"file-content", "/company/team/flow/executions/exec1/tasks/x/tr/up.txt")
    out, _ = await run_task(http.Request, {
        "uri": base_url + "/echo", "method": "POST", "contentType": "multipart/form-data",
        "formData": {"field": "v", "file": {"content": uri, "contentType": "text/plain"}}})
    echo = json.loads(out["body"])
    assert echo["headers"]["content-type"].startswith("multipart/form-data; boundary=")
    assert 'name="file"; filename="up.txt"' in echo["body"] and "file-content" in echo["body"]
    assert 'name="field"' in echo["body"]


async def test_error_status_fails_unless_allowed(run_task, base_url):
    with pytest.raises(TaskFailed, match="^Failed http request with response code '404'$"):
        await run_task(http.Request, {"uri": base_url + "/missing"})
    out, _ = await run_task(http.Request, {"uri": base_url + "/missing", "allowFailed": True})
    assert out["code"] == 404 and out["body"] == "not here"


async def test_redirects_followed_by_default(run_task, base_url):
    out, _ = await run_task(http.Request, {"uri": base_url + "/redirect"})
    assert out["code"] == 200 and out["body"] == "hello world"
    out, _ = await run_task(http.Request, {"uri": base_url + "/redirect", "options": {"followRedirects": False}})
    assert out["code"] == 302


async def test_basic_auth_and_max_content_length(run_task, base_url):
    out, _ = await run_task(http.Request, {"uri": base_url + "/echo",
                                           "options": {"auth": {"type": "BASIC", "username": "u", "password": "p"}}})
    assert json.loads(out["body"])["headers"]["authorization"] == "Basic dTpw"
    with pytest.raises(TaskFailed, match="maxContentLength"):
        await run_task(http.Request, {"uri": base_url + "/big.bin", "options": {"maxContentLength": 1000}})


async def test_bad_input_and_unreachable(run_task):
    with pytest.raises(TaskFailed, match="Invalid uri 'ftp://x'"):
        await run_task(http.Request, {"uri": "ftp://x"})
    with pytest.raises(TaskFailed, match="Invalid method 'FETCH'"):
        await run_task(http.Request, {"uri": "http://127.0.0.1:9/", "method": "FETCH"})
    with pytest.raises(TaskFailed, match="HTTP request to 'http://127.0.0.1:9/' failed: ConnectError"):
        await run_task(http.Request, {"uri": "http://127.0.0.1:9/"})
    with pytest.raises(TaskFailed, match="connectTimeout"):
        await run_task(http.Request, {"uri": "http://127.0.0.1:9/", "options": {"connectTimeout": "soon"}})


#### Download ###############################################################################################

async def test_download_streams_to_storage(run_task, base_url):
    out, ctx = await run_task(http.Download, {"uri": base_url + "/items.csv"})
    assert out["code"] == 200 and out["length"] == 16
    assert out["uri"] == "kestra:///company/team/flow/executions/exec1/tasks/t1/tr1/items.csv"
    assert ctx.storage.read_bytes(out["uri"]) == b"id,name\n1,a\n2,b\n"
    assert out["headers"]["Content-Type"] == ["text/csv"]
    assert ctx.metrics[0][:3] == ("counter", "response.length", 16)


async def test_download_big_file_and_disposition_name(run_task, base_url):
    out, ctx = await run_task(http.Download, {"uri": base_url + "/big.bin"})
    assert out["length"] == len(BIG) and ctx.storage.read_bytes(out["uri"]) == BIG
    out, _ = await run_task(http.Download, {"uri": base_url + "/attachment"})
    assert out["uri"].endswith("/report.txt")


async def test_download_empty_and_errors(run_task, base_url):
    with pytest.raises(TaskFailed, match="^No response from server$"):
        await run_task(http.Download, {"uri": base_url + "/empty"})
    out, ctx = await run_task(http.Download, {"uri": base_url + "/empty", "failOnEmptyResponse": False})
    assert out["length"] == 0 and ctx.logger.lines[0][0] == "WARN"
    with pytest.raises(TaskFailed, match="response code '404'"):
        await run_task(http.Download, {"uri": base_url + "/missing"})
