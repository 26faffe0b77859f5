"""Issue 9 point 6: a seeded, bounded fuzz test of every HTTP route — no 5xx, no hang.

The routes come from the app's URL map (a new route is fuzzed automatically); each request gets path
values (real ids or hostile strings), a random query string, random headers and a random or mutated body
(JSON, flow YAML, multipart, form, bytes). Fixed seeds make a failure reproducible: the assertion message
lists the requests that answered 5xx (or hung) with the seed.
"""
from __future__ import annotations

import json
import random
import time
from typing import Any
from urllib.parse import quote, urlencode

import pytest
import trio

from falconet.http.app import create_app
from falconet.runtime.kernel.startup import open_engine

SEEDS = (9, 2024, 31337)
REQUESTS_PER_SEED = 2000
REQUEST_TIMEOUT = 10.0  # seconds of real time one request may take before it counts as a hang
SKIPPED = ("/follow",)  # SSE streams that stay open by design (tested in tests/http/test_live.py)

INPUTS_FLOW = """id: inputs
namespace: fuzz.ns
labels:
  team: fuzz
inputs:
  - id: s
    type: STRING
    required: false
    validator: "^[a-z]*$"
  - id: n
    type: INT
    required: false
    min: 0
  - id: x
    type: FLOAT
    required: false
  - id: b
    type: BOOLEAN
    required: false
  - id: when
    type: DATETIME
    required: false
  - id: day
    type: DATE
    required: false
  - id: span
    type: DURATION
    required: false
  - id: j
    type: JSON
    required: false
  - id: y
    type: YAML
    required: false
  - id: list
    type: ARRAY
    itemType: INT
    required: false
  - id: choice
    type: SELECT
    values: [a, b]
    required: false
  - id: f
    type: FILE
    required: false
  - id: mail
    type: EMAIL
    required: false
tasks:
  - id: t
    type: io.kestra.plugin.core.debug.Return
    format: "{{ inputs.s ?? 'none' }} {{ inputs.n ?? 0 }}"
  - id: log
    type: io.kestra.plugin.core.log.Log
    message: "{{ outputs.t.value }}"
"""

TRIGGERED_FLOW = """id: triggered
namespace: fuzz.ns
triggers:
  - id: daily
    type: io.kestra.plugin.core.trigger.Schedule
    cron: "0 9 * * *"
  - id: hook
    type: io.kestra.plugin.core.trigger.Webhook
    key: fuzzkey
tasks:
  - id: t
    type: io.kestra.plugin.core.debug.Return
    format: "{{ trigger.body ?? 'scheduled' }}"
"""

HOSTILE = ["", "a", "..", "../../etc/passwd", "%2e%2e%2f", "\x00", "\x01", "\r\n", "é", "😀", "\u202e", " ", "*",
           "?", "#", "'", '"', "\\", "{{ 1 + 1 }}", "{{", "{% for %}", "${x}", "x" * 300, "9" * 25, "-1", "0",
           "1e23", "NaN", "true", "null", "[]", "{}", "kestra:///fuzz/ns/x", "kestra:///../../x",
           "file:///etc/passwd", "/etc/passwd", "P999999999D", "PT-1S", "2024-13-45T99:99", "SUCCESS", "INFO",
           "fuzz.ns", "a:b", ":", "\t",
           "\ud800", "\udc00x"]  # lone surrogates: escaped in JSON and YAML, raw bytes elsewhere
VALID = ["1", "2", "10", "100", "2024-01-01T00:00:00Z", "2024-01-01T00:00:00.123+02:00", "PT1H", "P1D",
         "SUCCESS", "FAILED", "RUNNING", "INFO", "DEBUG", "fuzz.ns", "inputs", "triggered", "team:fuzz",
         "namespace:asc", "state.startDate:desc", "true", "false", "utf-8", "ISO-8859-1"]
PARAMS = ["page", "size", "sort", "q", "namespace", "flowId", "state", "labels", "timeRange", "startDate",
          "endDate", "minLevel", "attempt", "taskRunId", "taskId", "path", "encoding", "maxRows", "wait",
          "revision", "allowDeleted", "delete", "scheduleDate", "triggerId", "source", "childFilter",
          "filters[namespace][EQUALS]", "filters[q][EQUALS]", "breakpoints", "kind", "newStatus", "status",
          "startedDate", "groupBy", "ttl", "zz"]
JSON_KEYS = ["id", "namespace", "flowId", "key", "value", "labels", "inputs", "state", "backfill", "start", "end",
             "triggerId", "executionId", "keys", "disabled", "paused", "type", "tasks", "revision"]
CONTENT_TYPES = [None, "application/json", "application/x-yaml", "multipart/form-data; boundary=fuzzb",
                 "multipart/form-data", "application/x-www-form-urlencoded", "text/plain",
                 "application/octet-stream", "garbage/type", "multipart/form-data; boundary=",
                 "application/json; charset=latin-1"]


def raw(text: str) -> bytes:
    """UTF-8, lone surrogates included (as the three bytes no decoder accepts)."""
    return text.encode("utf-8", "surrogatepass")


class Fuzzer:
    """Random requests from one seed; ``ids`` maps path variable names to real values."""

    def __init__(self, seed: int, ids: dict[str, list[str]]):
        self.rng = random.Random(seed)
        self.ids = ids

    #### values

    def text(self) -> str:
        r = self.rng.random()
        if r < 0.45:
            return self.rng.choice(HOSTILE)
        if r < 0.9:
            return self.rng.choice(VALID)
        return "".join(chr(self.rng.randrange(1, 0x3000)) for _ in range(self.rng.randrange(1, 12)))

    def storage_uri(self) -> str:
        """A ``kestra:///`` URI under the real execution's prefix (or its flow's), with a hostile tail."""
        prefix = self.rng.choice(self.ids["storage_prefix"])
        tail = self.rng.choice([self.text(), self.text() + "/" + self.text(), "x" * 300, "é" * 150, "%ff",
                                "a/" * 2000])
        return prefix + tail if self.rng.random() < 0.8 else self.rng.choice(self.ids["file_uri"])

    def json_value(self, depth: int = 0) -> Any:
        kind = self.rng.randrange(9 if depth < 4 else 6)
        if kind == 0:
            return self.rng.choice([0, 1, -1, 2 ** 31, 2 ** 70, -(2 ** 63)])
        if kind == 1:
            return self.rng.choice([0.5, -1e308, 1e-300, 3.0])
        if kind in (2, 3):
            return self.text()
        if kind == 4:
            return self.rng.choice([True, False])
        if kind == 5:
            return None
        if kind in (6, 7):
            return {self.rng.choice(JSON_KEYS + [self.text()]): self.json_value(depth + 1)
                    for _ in range(self.rng.randrange(4))}
        return [self.json_value(depth + 1) for _ in range(self.rng.randrange(4))]

    def json_body(self) -> str:
        shape = self.rng.randrange(7)
        execution = self.rng.choice(self.ids["execution_id"])
        if shape == 0:
            return json.dumps([{"namespace": self.rng.choice(["fuzz.ns", self.text()]),
                                "id": self.rng.choice(["inputs", "triggered", self.text()])}])
        if shape == 1:
            return json.dumps([{"key": self.text(), "value": self.text()} for _ in range(self.rng.randrange(3))])
        if shape == 2:
            return json.dumps([execution, self.text()])
        if shape == 3:
            return json.dumps({"namespace": "fuzz.ns", "flowId": "triggered", "triggerId": "daily",
                               "backfill": {"start": self.text(), "end": self.text(), "inputs": self.json_value(),
                                            "labels": self.json_value()}, "disabled": self.json_value()})
        if shape == 4:
            depth = self.rng.choice([50, 99, 100, 101, 1000, 20_000])
            return "[" * depth + "]" * depth
        if shape == 5:
            return json.dumps({"keys": [self.text(), "k"]})
        return json.dumps(self.json_value())

    def mutate(self, data: bytes) -> bytes:
        out = bytearray(data)
        for _ in range(self.rng.randrange(1, 6)):
            op = self.rng.randrange(5)
            pos = self.rng.randrange(len(out) + 1)
            if op == 0 and out:
                del out[min(pos, len(out) - 1)]
            elif op == 1:
                out[pos:pos] = bytes([self.rng.randrange(256)])
            elif op == 2:
                out = out[:pos]
            elif op == 3 and out:
                start = self.rng.randrange(len(out))
                out[pos:pos] = out[start:start + self.rng.randrange(1, 40)]
            else:
                out[pos:pos] = raw(self.text())
        return bytes(out)

    def yaml_body(self) -> str:
        lines = self.rng.choice([INPUTS_FLOW, TRIGGERED_FLOW]).splitlines()
        for _ in range(self.rng.randrange(1, 4)):
            i = self.rng.randrange(len(lines))
            op = self.rng.randrange(6)
            if op == 0:
                del lines[i]
            elif op == 1:
                lines.insert(i, lines[i])
            elif op == 2 and ":" in lines[i]:
                key = lines[i].split(":", 1)[0]
                lines[i] = f"{key}: {json.dumps(self.text())}"
            elif op == 3:
                lines[i] = " " + lines[i]
            elif op == 4:
                lines[i] = lines[i].replace(":", ": &a", 1) if self.rng.random() < 0.5 else lines[i] + " *a"
            else:
                lines.insert(i, self.rng.choice(["---", "  - id: extra", "tasks: []", "<<: *a", "? [a]: b"]))
        return "\n".join(lines) + "\n"

    def multipart(self) -> bytes:
        parts = []
        for _ in range(self.rng.randrange(4)):
            name = self.rng.choice(["s", "n", "x", "b", "when", "day", "span", "j", "y", "list", "choice", "f",
                                    "mail", "files", self.text()])
            if self.rng.random() < 0.3:
                filename = self.rng.choice(["a.txt", "f", "../../x", "\x00", "é.csv", ""])
                content = bytes(self.rng.randrange(256) for _ in range(self.rng.randrange(64)))
                parts.append(raw(f'--fuzzb\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"'
                                 "\r\nContent-Type: application/octet-stream\r\n\r\n") + content + b"\r\n")
            else:
                parts.append(raw(f'--fuzzb\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
                                 f"{self.text()}\r\n"))
        return b"".join(parts) + b"--fuzzb--\r\n"

    def body(self) -> tuple[bytes, str | None]:
        kind = self.rng.randrange(10)
        if kind <= 1:
            return b"", self.rng.choice(CONTENT_TYPES)
        if kind <= 3:
            data, content_type = self.json_body().encode(), "application/json"
        elif kind <= 5:
            data, content_type = self.yaml_body().encode(), "application/x-yaml"
        elif kind == 6:
            data, content_type = self.multipart(), "multipart/form-data; boundary=fuzzb"
        elif kind == 7:
            data = urlencode([(raw(self.text()), raw(self.text())) for _ in range(3)]).encode()
            content_type = "application/x-www-form-urlencoded"
        else:
            data = bytes(self.rng.randrange(256) for _ in range(self.rng.randrange(200)))
            content_type = self.rng.choice(CONTENT_TYPES)
        if self.rng.random() < 0.35:
            data = self.mutate(data)
        if self.rng.random() < 0.15:
            content_type = self.rng.choice(CONTENT_TYPES)
        return data, content_type

    #### requests

    def path(self, rule: Any) -> str:
        path = rule.rule
        for name in rule.arguments:
            real = self.ids.get(name)
            value = self.rng.choice(real) if real and self.rng.random() < 0.7 else self.text()
            encoded = value if self.rng.random() < 0.05 and value.isprintable() and value.isascii() \
                else quote(raw(value), safe="")
            path = path.replace(f"<path:{name}>", encoded or "x").replace(f"<{name}>", encoded or "x")
        pairs = [(name, self.storage_uri() if name == "path" and self.rng.random() < 0.6 else self.text())
                 for name in (self.rng.choice(PARAMS) for _ in range(self.rng.choice([0, 0, 1, 2, 3, 5])))]
        if pairs:
            return f"{path}?{urlencode([(k, raw(v)) for k, v in pairs])}"
        if self.rng.random() < 0.03:
            return f"{path}?{self.rng.choice(['%%%', 'a=%ZZ', '&&=&', 'page', '=1'])}"
        return path

    def request(self, rules: list[tuple[Any, str]]) -> dict[str, Any]:
        rule, method = self.rng.choice(rules)
        data, content_type = self.body() if method in ("POST", "PUT", "DELETE") else (b"", None)
        headers = {} if content_type is None else {"Content-Type": content_type}
        if self.rng.random() < 0.2:
            headers[self.rng.choice(["ttl", "Accept", "X-Forwarded-For", "Authorization", "Accept-Language"])] = \
                self.rng.choice(["PT1H", "*/*", "garbage", "Basic !!!", "P999999999D", "x" * 500])
        return {"method": method, "path": self.path(rule), "data": data, "headers": headers}


async def prepare(engine: Any, client: Any) -> dict[str, list[str]]:
    """The flows, an execution with a FILE input and a KV entry the fuzzer's real ids point at."""
    for source in (INPUTS_FLOW, TRIGGERED_FLOW):
        response = await client.post("/api/v1/flows", data=source, headers={"Content-Type": "application/x-yaml"})
        assert response.status_code == 200, await response.get_data()
    body = (b'--fuzzb\r\nContent-Disposition: form-data; name="f"; filename="a.csv"\r\n\r\na,b\n1,2\n\r\n'
            b'--fuzzb\r\nContent-Disposition: form-data; name="s"\r\n\r\nabc\r\n--fuzzb--\r\n')
    response = await client.post("/api/v1/executions/fuzz.ns/inputs?wait=true", data=body,
                                 headers={"Content-Type": "multipart/form-data; boundary=fuzzb"})
    execution = json.loads(await response.get_data())
    assert execution["state"]["current"] == "SUCCESS", execution
    await engine.kv_put("fuzz.ns", "k", {"a": 1})
    return {"namespace": ["fuzz.ns"], "flow_id": ["inputs", "triggered"], "execution_id": [execution["id"]],
            "task_id": ["t", "log"], "key": ["k", "fuzzkey"], "trigger_id": ["daily", "hook"],
            "metric": ["duration"], "type_name": ["io.kestra.plugin.core.debug.Return"],
            "filename": ["index.html"], "subpath": ["flows", "executions/fuzz.ns/inputs"],
            "file_uri": [execution["inputs"]["f"]],
            "storage_prefix": [f"kestra:///fuzz/ns/inputs/executions/{execution['id']}/",
                               "kestra:///fuzz/ns/inputs/states/", "kestra:///fuzz/ns/inputs/executions/other/"]}


@pytest.mark.parametrize("seed", SEEDS)
async def test_fuzz_routes_never_answer_5xx_nor_hang(tmp_path, seed):
    async with open_engine(data_dir=tmp_path / "data", store="memory") as engine:
        app = create_app(engine, config=engine.config)
        client = app.test_client()
        ids = await prepare(engine, client)
        rules = [(rule, method) for rule in app.url_map.iter_rules() if not rule.websocket
                 and not any(s in rule.rule for s in SKIPPED)
                 for method in sorted(rule.methods - {"HEAD", "OPTIONS"})]
        fuzzer = Fuzzer(seed, ids)
        failures: list[str] = []
        started = time.monotonic()
        statuses: dict[int, int] = {}
        for i in range(REQUESTS_PER_SEED):
            req = fuzzer.request(rules)
            where = f"#{i} {req['method']} {req['path'][:160]!r} {req['headers']} body={req['data'][:160]!r}"
            try:
                with trio.fail_after(REQUEST_TIMEOUT):
                    response = await client.open(req["path"], method=req["method"], data=req["data"],
                                                 headers=req["headers"])
                    payload = await response.get_data()
            except trio.TooSlowError:
                failures.append(f"hang: {where}")
                break
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            if response.status_code >= 500:
                failures.append(f"{response.status_code}: {where} -> {payload[:200]!r}")
        elapsed = time.monotonic() - started
        assert not failures, f"seed {seed}: {len(failures)} failures\n" + "\n".join(failures[:20])
        assert sum(statuses.values()) == REQUESTS_PER_SEED and len(statuses) > 3, statuses
        assert elapsed < 120, f"{REQUESTS_PER_SEED} requests took {elapsed:.1f}s"
