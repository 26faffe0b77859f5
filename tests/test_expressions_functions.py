"""Functions, engine hooks, DefaultHooks and the jq subset."""
from __future__ import annotations

import base64
import json
import os
import re
from typing import Any

import pytest

from falconet.runtime.expr.jq import JqError, jq
from falconet.runtime.expr.render import HOOKS_KEY, DefaultHooks, ExpressionError, Renderer

R = Renderer()


def render(template: str, variables: dict[str, Any] | None = None) -> str:
    return R.render(template, variables or {})


def typed(template: str, variables: dict[str, Any] | None = None) -> Any:
    return R.render_typed(template, variables or {})


#### Pure functions #########################################################################################

def test_json_and_yaml_and_ion_parsing() -> None:
    assert typed("{{ fromJson('{\"a\": [1, 2.5, null, true]}') }}") == {"a": [1, 2.5, None, True]}
    assert typed("{{ json('[1]') }}") == [1]
    assert typed("{{ jsonDecode('\"s\"') }}") == "s"
    assert render("{{ json(body).id is not null }}", {"body": '{"id": 3}'}) == "true"
    assert typed("{{ yaml('a: 1\nb: [x, y]') }}") == {"a": 1, "b": ["x", "y"]}
    assert typed("{{ fromIon('{a:1,b:\"x\",c:[1.5e0,null,true],d:2.50}') }}") == \
        {"a": 1, "b": "x", "c": [1.5, None, True], "d": pytest.approx(2.5)}
    assert typed("{{ fromIon('{a:1}\n{a:2}').a }}") == 1
    assert typed("{{ fromJson(null) }}") is None


@pytest.mark.parametrize(("template", "fragment"), [
    ("{{ fromJson('{nope') }}", "Unable to parse JSON value"),
    ("{{ yaml('a: [') }}", "Unable to parse YAML value"),
    ("{{ fromIon('{a:') }}", "Unable to parse Ion value"),
    ("{{ randomInt(5, 1) }}", "'lower' to be less than 'upper'"),
    ("{{ randomInt('a', 1) }}", "integer arguments"),
    ("{{ range(1, 5, 0) }}", "increment must not be 0"),
    ("{{ currentEachOutput('x') }}", "expects an argument 'outputs' with type map"),
    ("{{ max(1, 'a') }}", "comparable"),
    ("{{ uuid(1) }}", "Function 'uuid'"),
])
def test_function_errors(template: str, fragment: str) -> None:
    with pytest.raises(ExpressionError) as info:
        render(template)
    assert fragment in str(info.value)


def test_range_max_min() -> None:
    assert typed("{{ range(1, 3) }}") == [1, 2, 3]
    assert typed("{{ range(0, 10, 5) }}") == [0, 5, 10]
    assert typed("{{ range(3, 1, -1) }}") == [3, 2, 1]
    assert typed("{{ max(1, 7, 3) }} ") == 7
    assert typed("{{ min(4, 2.5) }}") == 2.5
    assert typed("{{ max([1, 9]) }}") == 9


def test_ids_and_random() -> None:
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}", render("{{ uuid() }}"))
    assert render("{{ uuid() }}") != render("{{ uuid() }}")
    assert re.fullmatch(r"[0-9A-Za-z]{1,22}", render("{{ id() }}"))
    values = {typed("{{ randomInt(0, 3) }}") for _ in range(200)}
    assert values == {0, 1, 2}


def test_render_and_render_once() -> None:
    variables = {"vars": {"first": "1", "second": "{{ vars.first }}", "third": "{{ vars.second }}"}}
    assert render("{{ vars.third }}", variables) == "{{ vars.second }}"          # no recursive rendering
    assert render("{{ render(vars.third) }}", variables) == "1"
    assert render("{{ renderOnce(vars.third) }}", variables) == "{{ vars.first }}"
    assert render("{{ render(vars.third, recursive=false) }}", variables) == "{{ vars.first }}"
    assert typed("{{ render(42) }}") == 42
    with pytest.raises(ExpressionError, match="Unable to find `missing`"):
        render("{{ render('{{ missing }}') }}")


def test_render_walks_maps_and_lists_like_kestra() -> None:
    variables = {"first": "1", "second": "{{first}}", "third": "{{second}}",
                 "fourth": "{{render(third, recursive=false)}}",
                 "map": {"third": "{{third}}"}, "list": ["{{third}}"], "set": {"{{third}}"}}
    assert render("{{ render(fourth) }}", variables) == "1"
    assert render("{{ map }}", variables) == '{"third":"{{third}}"}'
    assert render("{{ render(map, recursive=false) }}", variables) == '{"third":"{{second}}"}'
    assert render("{{ render(map) }}", variables) == '{"third":"1"}'
    assert render("{{ render(list, recursive=false) }}", variables) == '["{{second}}"]'
    assert render("{{ render(list) }}", variables) == '["1"]'
    assert render("{{ render(set) }}", variables) == '["1"]'
    with pytest.raises(ExpressionError, match="Too many rendering attempts"):
        render("{{ render(first) }}", {"first": "{{second}}", "second": "{{first}}"})


def test_render_sees_set_variables() -> None:
    assert render("{% set who = 'me' %}{{ render('hi {{ who }}') }}") == "hi me"


def test_render_detects_endless_rendering() -> None:
    with pytest.raises(ExpressionError, match="Too many rendering attempts"):
        render("{{ render(vars.x) }}", {"vars": {"x": "a{{ vars.x }}"}})


def test_print_and_fetch_context_hide_hooks() -> None:
    variables = {"flow": {"id": "f"}, "n": 1, HOOKS_KEY: object()}
    assert json.loads(render("{{ printContext() }}", variables)) == {"flow": {"id": "f"}, "n": 1}
    assert typed("{{ fetchContext() }}", variables) == {"flow": {"id": "f"}, "n": 1}


def test_current_each_output_follows_loop_values() -> None:
    outputs = {"t": {"outer-a": {"inner-1": {"value": "a1"}, "inner-2": {"value": "a2"}},
                     "outer-b": {"inner-1": {"value": "b1"}}}}
    variables = {"outputs": outputs, "parents": [{"taskrun": {"value": "outer-b"}}],
                 "taskrun": {"value": "inner-1"}}
    assert render("{{ currentEachOutput(outputs.t).value }}", variables) == "b1"
    # two loop levels: parents nearest first, outputs outermost first
    deeper = {"outputs": {"t": {"x": {"y": {"z": {"value": "xyz"}}}}},
              "parents": [{"taskrun": {"value": "y"}}, {"taskrun": {"value": "x"}}], "taskrun": {"value": "z"}}
    assert render("{{ currentEachOutput(outputs['t']).value }}", deeper) == "xyz"
    # an iteration without output yet: null, so `??` applies
    missing = {**variables, "taskrun": {"value": "inner-9"}}
    assert render("{{ (currentEachOutput(outputs.t).value ?? 'null') ~ '-x' }}", missing) == "null-x"
    with pytest.raises(ExpressionError, match="No execution outputs for the current task runs path"):
        render("{{ currentEachOutput(outputs.t) }}", {**variables, "parents": [{"taskrun": {"value": "zzz"}}]})


#### Engine hooks ###########################################################################################

class RecordingHooks(DefaultHooks):
    """Test hooks: answers from dictionaries and records the calls."""

    def __init__(self) -> None:
        super().__init__(environ={"SECRET_MY_SECRET": base64.b64encode(b'{"secretKey": "v"}').decode(),
                                  "SECRET_NEW_LINE": base64.b64encode(b"a\nb\n").decode(),
                                  "SECRET_BROKEN": "***"})
        self.calls: list[tuple[Any, ...]] = []
        self.files = {"kestra:///ns/f/executions/e/file.txt": "content"}
        self.store = {("ns", "k"): {"field": 42}}

    def read(self, path: str) -> str:
        self.calls.append(("read", path))
        if path not in self.files:
            raise ExpressionError(f"Unable to read the file '{path}' as it didn't belong to the current execution")
        return self.files[path]

    def file_size(self, path: str) -> int:
        return len(self.read(path))

    def file_uri(self, path: str) -> str:
        return "kestra:///ns/_files/" + path

    def kv(self, key: str, namespace: str | None, error_on_missing: bool) -> Any:
        self.calls.append(("kv", key, namespace, error_on_missing))
        namespace = namespace or "ns"
        if (namespace, key) not in self.store:
            if error_on_missing:
                raise ExpressionError(f"The key '{key}' does not exist in the namespace '{namespace}'.")
            return None
        return self.store[(namespace, key)]

    def error_logs(self) -> list[dict[str, Any]]:
        return [{"taskId": "t1", "message": "boom"}, {"taskId": "t2", "message": "bang"}]


def test_hook_functions() -> None:
    hooks = RecordingHooks()
    v = {HOOKS_KEY: hooks, "inputs": {"items": "kestra:///ns/f/executions/e/file.txt", "ns": "other"}}
    assert render("{{ read(inputs.items) }}", v) == "content"
    assert typed("{{ fileSize(inputs.items) }}", v) == 7
    assert render("{{ fileURI('a/b.txt') }}", v) == "kestra:///ns/_files/a/b.txt"
    assert render("{{ kv('k').field }}", v) == "42"
    assert render("[{{ kv('nope').field ?? null }}]", v) == "[]"
    assert typed("{{ kv('k', inputs.ns, false) }}", v) is None
    assert ("kv", "k", "other", False) in hooks.calls
    assert typed("{{ kv('k', namespace='ns', errorOnMissing=true) }}", v) == {"field": 42}
    with pytest.raises(ExpressionError, match="The key 'zz' does not exist in the namespace 'ns'."):
        render("{{ kv('zz', errorOnMissing=true) }}", v)
    with pytest.raises(ExpressionError, match="didn't belong to the current execution"):
        render("{{ read('kestra:///other/file') }}", v)
    logs = "{%- for log in errorLogs() -%}{{ log.taskId }}:{{ log.message }};{%- endfor -%}"
    assert render(logs, v) == "t1:boom;t2:bang;"


def test_secret_from_environment_like_kestra_oss() -> None:
    v = {HOOKS_KEY: RecordingHooks()}
    assert render("{{ json(secret('my_secret')).secretKey }}", v) == "v"
    assert render("{{ secret('new_line') }}", v) == "a\nb\n"
    with pytest.raises(ExpressionError, match="Cannot find secret for key 'absent'."):
        render("{{ secret('absent') }}", v)
    with pytest.raises(ExpressionError, match="not valid base64"):
        render("{{ secret('broken') }}", v)


def test_default_hooks_secret_reads_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECRET_WEBHOOK_KEY", base64.b64encode(b"s3cr3t").decode())
    assert DefaultHooks().secret("webhook_key") == "s3cr3t"


def test_encrypt_decrypt_round_trip_and_kestra_layout() -> None:
    key = base64.b64encode(os.urandom(32)).decode()
    v = {HOOKS_KEY: DefaultHooks(environ={}), "key": key}
    encrypted = render("{{ encrypt(key, 'Hello World') }}", v)
    raw = base64.b64decode(encrypted)
    assert len(raw) == 12 + len("Hello World") + 16                     # IV + ciphertext + GCM tag
    assert render("{{ decrypt(key, '" + encrypted + "') }}", v) == "Hello World"
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    iv = os.urandom(12)
    java_style = base64.b64encode(iv + AESGCM(base64.b64decode(key)).encrypt(iv, b"from java", None)).decode()
    assert DefaultHooks().decrypt(key, java_style) == "from java"
    other = base64.b64encode(os.urandom(32)).decode()
    with pytest.raises(ExpressionError, match="wrong key"):
        DefaultHooks().decrypt(other, encrypted)
    with pytest.raises(ExpressionError, match="Invalid AES key"):
        DefaultHooks().encrypt("c2hvcnQ=", "x")


@pytest.mark.parametrize("template", [
    "{{ read('x') }}", "{{ fileSize('x') }}", "{{ fileURI('x') }}", "{{ kv('k') }}", "{{ secret('k') }}",
    "{{ errorLogs() }}", "{{ encrypt('k', 'p') }}", "{{ decrypt('k', 'c') }}",
])
def test_engine_functions_without_hooks_are_unavailable(template: str) -> None:
    with pytest.raises(ExpressionError, match="function is not available here"):
        render(template)


#### jq #####################################################################################################

DOC = {"a": {"b": [1, 2, 3]}, "k": "v", "items": [{"n": "x", "v": 1}, {"n": "y", "v": 5}], "nul": None,
       "weird-key": 1}


@pytest.mark.parametrize(("program", "expected"), [
    (".", [DOC]), (".k", ["v"]), (".a.b", [[1, 2, 3]]), (".a.b[0]", [1]), (".a.b[-1]", [3]), (".a.b[]", [1, 2, 3]),
    (".a.b[1:]", [[2, 3]]), (".missing", [None]), (".missing.deeper", [None]), ('."weird-key"', [1]),
    ('.["k"]', ["v"]), (".items[].n", ["x", "y"]), (".items[] | select(.v > 2) | .n", ["y"]),
    ("[.items[] | select(.n == \"x\")]", [[{"n": "x", "v": 1}]]), (".a.b | length", [3]), (".k | length", [1]),
    ("keys", [["a", "items", "k", "nul", "weird-key"]]), (".a.b | map(. * 10)", [[10, 20, 30]]),
    (".k, .a.b[0]", ["v", 1]), (".nul[]?", []), (".k[]?", []), (".items | map(.v) | add", [6]),
    (".a.b | first, last", [1, 3]), ("{name: .k, count: (.a.b | length)}", [{"name": "v", "count": 3}]),
    ("{k}", [{"k": "v"}]), (".items | map({(.n): .v}) | add", [{"x": 1, "y": 5}]),
    (".nul // \"default\"", ["default"]), (".k // \"default\"", ["v"]),
    ("if .a.b[0] == 1 then \"one\" else \"other\" end", ["one"]), (".a.b | map(select(. >= 2)) | length", [2]),
    ("[.a.b[] | . + 1]", [[2, 3, 4]]), (".k + \"!\"", ["v!"]), ("(.a.b[0] + 3) / 2", [2]), ("7 % 3", [1]),
    (".items | sort_by(.v) | reverse | .[0].n", ["y"]), (".items | to_entries[0].key", [0]),
])
def test_jq(program: str, expected: Any) -> None:
    assert jq(DOC, program) == expected


@pytest.mark.parametrize(("program", "expected"), [
    ("to_entries | map(.key)", [["a", "b"]]), ("with_entries(.value |= 0)", None),
    ("has(\"a\")", [True]), (".a | tostring", ["1"]), ("[.[] | type]", [["number", "number"]]),
    ("[.a, .b] | unique", [[1, 2]]), (".a as $x | $x", None), ("[range(3)]", [[0, 1, 2]]),
    ("[.[]] | min, max", [1, 2]), ("\"a,b\" | split(\",\")", [["a", "b"]]), ("[\"a\", \"b\"] | join(\"-\")", ["a-b"]),
    ("\"abc\" | test(\"b\")", [True]), ("\"abc\" | ascii_upcase", ["ABC"]), ("\"12\" | tonumber", [12]),
    ("[.a, .b] | any", [True]), ("[[1, [2]], 3] | flatten", [[1, 2, 3]]), ("{} | length", [0]),
    ("null | not", [True]), ("\"abc\" | startswith(\"a\")", [True]), ("\"abc\" | ltrimstr(\"a\")", ["bc"]),
    ("[3, 1] | sort", [[1, 3]]), (".a | tojson", ["1"]), ("\"[1]\" | fromjson", [[1]]), ("empty", []),
    ("[paths]", [[["a"], ["b"]]]), ("[..]", [[{"a": 1, "b": 2}, 1, 2]]), ("-.a", [-1]),
    ("[.[] | floor]", [[1, 2]]), ("{\"a\": 1} * {\"b\": 2}", [{"a": 1, "b": 2}]),
])
def test_jq_builtins(program: str, expected: Any) -> None:
    if expected is None:                     # syntax outside the supported subset: a clear compile error
        with pytest.raises(JqError, match="Unable to compile jq expression"):
            jq({"a": 1, "b": 2}, program)
        return
    assert jq({"a": 1, "b": 2}, program) == expected


@pytest.mark.parametrize(("program", "value", "fragment"), [
    (".a.b", {"a": "str"}, 'Cannot index string with "b"'),
    (".[]", None, "Cannot iterate over null"),
    (".[0]", {"a": 1}, "Cannot index object with number"),
    ("nosuch", {}, "nosuch/0 is not defined"),
    (".a | ", {}, "Unable to compile"),
    ("{(1): 2}", {}, "Object keys must be strings"),
    ("1 / 0", {}, "divisor is zero"),
    ("\"a\" - 1", {}, "cannot be subtracted"),
    ("error(\"custom\")", {}, "custom"),
])
def test_jq_errors(program: str, value: Any, fragment: str) -> None:
    with pytest.raises(JqError) as info:
        jq(value, program)
    assert fragment in str(info.value)


def test_jq_filter_in_templates() -> None:
    v = {"value": '{"key": "k1", "value": {"x": 1}}', "m": {"a": [1, 2]}}
    assert render("{{ value | jq('.key') | first }}", v) == "k1"
    assert render("{{ value | jq('.value') }}", v) == '[{"x":1}]'
    assert typed("{{ m | jq('.a[]') }}", v) == [1, 2]
    assert typed("{{ null | jq('.') }}") is None
    with pytest.raises(ExpressionError, match="Unable to parse jq value 'not json'"):
        render("{{ 'not json' | jq('.') }}")
    with pytest.raises(ExpressionError, match="expects an argument 'expression'"):
        render("{{ m | jq }}", v)


def test_kestra_jq_filter_cases() -> None:
    """JqFilterTest from Kestra's own suite."""
    assert render('{{ [1, 2, 3] | jq(".[0]") | first }}') == "1"
    assert render('{{ my_vars | jq(".test[0]") }}', {"my_vars": {"test": [1, 2, 3]}}) == "[1]"
    nested = {"first": {"second": {"third": "{{third}}"}}, "end": "awesome", "third": "{{end}}"}
    assert render('{{  render(first) | jq(".second.third") }}', nested) == '["awesome"]'
    v = {"vars": {"object": {"key": "value"}, "array": ["arrayValue"], "second": [1, 2, 3], "null": None,
                  "float": 1.123, "int": 1, "string": "s"}}
    assert render('{% set object = vars | jq(".object") %}{{object[0].key}}', v) == "value"
    assert render('{% set array = vars | jq(".array") %}{{array[0][0]}}', v) == "arrayValue"
    assert render('{{ vars | jq(".second[]") }}', v) == "[1,2,3]"
    assert render('{{ vars | jq(".float") | first }}', v) == "1.123"
    assert render('{{ vars | jq(".string") | first | className }}', v) == "java.lang.String"
    assert render('{{ vars | jq(".null") | first | className }}', v) == ""
