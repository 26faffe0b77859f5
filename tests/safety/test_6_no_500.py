"""Issue 9 point 6: each input that answered 500 is a 4xx with a clear message — through a real socket
(hypercorn and h11 refuse some responses the in-process test client lets through, e.g. a NUL in a header).
"""
from __future__ import annotations

import codecs
from typing import Any

import httpx
import pytest
import trio

from falconet.http.app import create_app
from falconet.http.serve import serve
from falconet.runtime.kernel.startup import open_engine

YAML = {"Content-Type": "application/x-yaml"}
JSON = {"Content-Type": "application/json"}
DEEP = "[" * 100_000 + "]" * 100_000

FLOW = """id: inputs
namespace: safety.bad
inputs:
  - id: n
    type: INT
    required: false
  - id: f
    type: FILE
    required: false
tasks:
  - id: t
    type: io.kestra.plugin.core.debug.Return
    format: hi
"""


@pytest.fixture
async def http(tmp_path: Any) -> Any:
    """An httpx client on a real server (SQLite store: integer bounds are the database's too), with one
    finished execution whose FILE input ``f`` is UTF-16 text without a byte-order mark."""
    async with open_engine(data_dir=tmp_path / "data", store="sqlite") as engine:
        async with trio.open_nursery() as nursery:
            base = (await nursery.start(serve, create_app(engine, config=engine.config), "127.0.0.1", 0))[0]
            async with httpx.AsyncClient(base_url=base, timeout=60) as client:
                assert (await client.post("/api/v1/flows", content=FLOW, headers=YAML)).status_code == 200
                created = await client.post("/api/v1/executions/safety.bad/inputs?wait=true",
                                            files={"f": ("text.txt", "héllo\nworld\n".encode("utf-16-be"))})
                assert created.status_code == 200, created.text
                client.execution = created.json()
                yield client
            nursery.cancel_scope.cancel()


def message(response: httpx.Response) -> str:
    return response.json()["message"]


#### Bodies #################################################################################################

async def test_json_body_nested_100000_deep(http):
    for method, path in [("POST", "/api/v1/flows"), ("PUT", "/api/v1/flows/safety.bad/inputs"),
                         ("POST", f"/api/v1/executions/{http.execution['id']}/labels"),
                         ("POST", "/api/v1/executions/restart/by-ids"), ("DELETE", "/api/v1/flows/delete/by-ids"),
                         ("PUT", "/api/v1/namespaces/safety.bad/kv/key"), ("PUT", "/api/v1/triggers"),
                         ("POST", "/api/v1/namespaces/autocomplete"), ("POST", "/api/v1/stats/executions/daily")]:
        response = await http.request(method, path, content=DEEP, headers=JSON)
        assert response.status_code in (400, 422), (path, response.text)
        assert "nested deeper than 100 levels" in message(response), (path, response.text)


async def test_flow_with_a_control_character(http):
    response = await http.post("/api/v1/flows", content="id: a\x01\nnamespace: safety.bad\ntasks: []\n",
                               headers=YAML)
    assert response.status_code == 422
    assert message(response) == ("Invalid entity: Invalid YAML: unacceptable character #x0001: special characters "
                                 "are not allowed (line 1)")


async def test_int_input_of_5000_digits(http):
    response = await http.post("/api/v1/executions/safety.bad/inputs", files={"n": (None, "9" * 5000)})
    assert response.status_code == 422
    assert message(response).startswith('Invalid entity: n: Invalid input for `n`, For input string: "999')


#### Query strings ##########################################################################################

async def test_paging_of_20_digits(http):
    for route in ("/api/v1/executions/search", "/api/v1/logs/search", "/api/v1/flows/search",
                  "/api/v1/triggers/search"):
        for name in ("page", "size"):
            response = await http.get(route, params={name: "9" * 20})
            assert response.status_code == 422, (route, name, response.text)
            assert f"Failed to convert argument [{name}] for value [{'9' * 20}]: out of the range of a 32-bit " \
                   "integer" in message(response)


async def test_huge_time_range(http):
    for route in ("/api/v1/executions/search", "/api/v1/logs/search"):
        for value in ("P999999999D", "P" + "9" * 5000 + "D", "PT" + "9" * 30 + "S"):
            response = await http.get(route, params={"timeRange": value})
            assert response.status_code == 422, (route, value[:20], response.text)
            assert "Failed to convert argument [timeRange]" in message(response)


async def test_attempt_not_an_integer(http):
    for route in ("/api/v1/logs/{id}", "/api/v1/logs/{id}/download"):
        for value in ("1e23", "9" * 20):
            response = await http.get(route.format(id=http.execution["id"]), params={"attempt": value})
            assert response.status_code == 422, (route, value, response.text)
            assert f"Failed to convert argument [attempt] for value [{value}]" in message(response)


#### File preview encodings #################################################################################

def preview(http: Any, encoding: str) -> Any:
    return http.get(f"/api/v1/executions/{http.execution['id']}/file/preview",
                    params={"path": http.execution["inputs"]["f"], "encoding": encoding})


async def test_preview_accepts_only_text_encodings(http):
    for encoding in ("rot13", "zlib_codec", "base64", "hex", "bz2", "idna", "punycode", "unicode_escape",
                     "undefined", "klingon"):
        response = await preview(http, encoding)
        assert response.status_code == 422, (encoding, response.text)
        assert message(response) == f"Illegal argument: Unable to preview using encoding '{encoding}'"
    text = "héllo\nworld\n"
    as_utf32 = codecs.decode(text.encode("utf-16-be"), "utf-32-be", "replace")
    for encoding, expected in [("utf-16", text), ("UTF-16", text), ("UTF-16BE", text), ("utf-32", as_utf32)]:
        response = await preview(http, encoding)  # no byte-order mark: big-endian, as Java reads it
        assert response.status_code == 200, (encoding, response.text)
        assert response.json()["content"] == expected


#### Found by the fuzzer (test_6_fuzz.py) ##################################################################

async def test_storage_paths_the_file_system_cannot_hold(http):
    execution = http.execution
    prefix = f"kestra:///safety/bad/inputs/executions/{execution['id']}/"
    for tail, reason in [("x" * 300, "has a name longer than 255 bytes"), ("é" * 150, "longer than 255 bytes"),
                         ("a/" * 2000, "is longer than 3072 bytes"), ("%ff", "is not percent-encoded UTF-8")]:
        for route in ("", "/metas", "/preview"):
            response = await http.get(f"/api/v1/executions/{execution['id']}/file{route}",
                                      params={"path": prefix + tail})
            assert response.status_code == 422, (tail[:10], route, response.text)
            assert reason in message(response)


async def test_namespace_too_long_for_the_file_system(http):
    for path in ("/files/export", "/files?path=/a.txt", "/files/directory?path=/a"):
        response = await http.get(f"/api/v1/namespaces/{'x' * 300}{path}")
        assert response.status_code == 422, (path, response.text)
        assert "longer than 255 bytes" in message(response)


async def test_streamed_answers_refuse_bad_queries_before_they_start(http):
    """A query the store refuses answers 422, not a 200 cut off after its headers."""
    response = await http.get("/api/v1/executions/export/by-query/csv", params={"sort": "\u202e"})
    assert response.status_code == 422 and "cannot sort executions by" in message(response)
    response = await http.get("/api/v1/executions/export/by-query/csv")
    assert response.status_code == 200 and response.text.startswith("id,namespace,flowId")


async def test_ui_path_too_long_for_the_file_system(http):
    response = await http.get("/ui/" + "x" * 300)
    assert response.status_code == 200 and "<html" in response.text.lower()  # the client-side router's page


async def test_multipart_names_beyond_latin1(http):
    body = ('--b\r\nContent-Disposition: form-data; name="\u080e"\r\n\r\nx\r\n'
            '--b\r\nContent-Disposition: form-data; name="f"; filename="résumé.csv"\r\n\r\na,b\r\n--b--\r\n')
    response = await http.post("/api/v1/executions/safety.bad/inputs", content=body.encode("utf-8"),
                               headers={"Content-Type": "multipart/form-data; boundary=b"})
    assert response.status_code == 200, response.text
    assert response.json()["inputs"]["f"].endswith("/r%C3%A9sum%C3%A9.csv")  # the UTF-8 file name, intact


async def test_unpaired_surrogate_escapes(http):
    """``\\ud800`` decodes to no character: every later UTF-8 write (the response, SQLite) would fail."""
    flow = FLOW.replace("format: hi", 'format: "\\ud800"').replace("id: inputs", "id: lone")
    response = await http.post("/api/v1/flows", content=flow, headers=YAML)
    assert response.status_code == 422, response.text
    assert "unpaired surrogate" in message(response) and "(line 13)" in message(response)
    paired = flow.replace("\\ud800", "\\ud83d\\ude00")  # a pair is one character, as in Java
    response = await http.post("/api/v1/flows", content=paired, headers=YAML)
    assert response.status_code == 200 and response.json()["tasks"][0]["format"] == "\U0001F600", response.text
    for body in (b'[{"key": "a", "value": "\\udc00"}]', b'[{"key": "a", "value": "\xed\xa0\x80"}]'):
        response = await http.post(f"/api/v1/executions/{http.execution['id']}/labels", content=body,
                                   headers=JSON)
        assert response.status_code == 422 and "unpaired surrogate" in message(response), response.text


async def test_kv_ttl_that_is_no_duration(http):
    for ttl, reason in [("garbage", "Invalid ttl: Invalid duration `garbage`"),
                        ("P999999999D", "Invalid ttl `P999999999D`: the expiration date is beyond year 9999"),
                        ("P" + "9" * 30 + "D", "out of range")]:
        response = await http.put("/api/v1/namespaces/safety.bad/kv/key", content="1", headers={"ttl": ttl})
        assert response.status_code == 422, (ttl, response.text)
        assert reason in message(response)


async def test_webhook_body_nested_too_deep_is_kept_as_text(http):
    hooked = FLOW.replace("id: inputs", "id: hooked") + ("triggers:\n  - id: hook\n"
                                                        "    type: io.kestra.plugin.core.trigger.Webhook\n"
                                                        "    key: secret-key\n")
    assert (await http.post("/api/v1/flows", content=hooked, headers=YAML)).status_code == 200
    response = await http.post("/api/v1/executions/webhook/safety.bad/hooked/secret-key", content=DEEP,
                               headers=JSON)
    assert response.status_code == 200, response.text
    assert response.json()["trigger"]["variables"]["body"] == DEEP


#### Names that reach a header ##############################################################################

async def test_namespace_export_of_a_hostile_name(http):
    response = await http.get("/api/v1/namespaces/a%0d%0aX-Injected:%201/files/export")
    assert response.status_code == 200 and "x-injected" not in response.headers
    assert response.headers["content-disposition"].endswith("filename*=UTF-8''a%0D%0AX-Injected%3A%201_files.zip")


async def test_log_download_of_hostile_ids(http):
    for execution_id, disposition in [
        ("%00", "attachment; filename=\"_.log\"; filename*=UTF-8''%00.log"),
        ("a%0d%0aSet-Cookie:%20x",
         "attachment; filename=\"a__Set-Cookie: x.log\"; filename*=UTF-8''a%0D%0ASet-Cookie%3A%20x.log"),
        ("caf%C3%A9", "attachment; filename=\"caf_.log\"; filename*=UTF-8''caf%C3%A9.log"),
    ]:
        response = await http.get(f"/api/v1/logs/{execution_id}/download")
        assert response.status_code == 200, (execution_id, response.text)
        assert response.headers["content-disposition"] == disposition
        assert "set-cookie" not in response.headers
