"""Execution inputs, flow outputs and onResume inputs typed as Kestra types them."""
from __future__ import annotations

from pathlib import Path

import pytest

from falconet.sdk import plugin as P
from falconet.runtime.kernel.errors import InvalidEntity
from falconet.runtime.flow.fileinputs import FileSources
from falconet.runtime.flow.model import InputSpec, OutputSpec
from falconet.runtime.flow.parsing import parse_flow
from falconet.runtime.flow.inputs import (
    decrypt_secret, encrypt_secret, input_to_dict, resolve_inputs, type_outputs, validate_inputs_report,
)
from falconet.runtime.storage.internal import InternalStorage

FLOWS = Path(__file__).with_name("flows")
KEY = "I6EGNzRESu3X3pKZidrqCGOHQFUFC0yK"  # 32 characters: AES-256, as Kestra's docs configure it


REGISTRY = P.load_plugins()  # every built-in type (inputs.yaml uses Return, ForEach, Log, outputs)
INPUTS_FLOW = parse_flow((FLOWS / "inputs.yaml").read_text(), registry=REGISTRY)


class Storage:
    """Records FILE inputs moved into storage and hands back their kestra URI."""

    def __init__(self):
        self.stored: list[tuple[str, str, Path]] = []

    def __call__(self, input_id: str, filename: str, path: Path, move: bool = True) -> str:
        self.stored.append((input_id, filename, path))
        return f"kestra:///company/team/inputs/executions/e1/inputs/{input_id}/{filename}"


@pytest.fixture
def upload(tmp_path: Path) -> Path:
    p = tmp_path / "hello.txt"
    p.write_text("hello")
    return p


def all_inputs(upload: Path) -> dict:
    return {
        "string": "myString", "enum": "ENUM_VALUE", "int": "42", "float": "42.42", "bool": "false",
        "instant": "2019-10-06T18:27:49Z", "date": "2019-10-06", "time": "18:27:49", "duration": "PT5M6S",
        "json": '{"a": "b"}', "uri": "https://www.google.com", "nested.string": "a string",
        "nested.more.int": "123", "nested.bool": "true", "validatedString": "A123", "validatedInt": "12",
        "validatedDate": "2023-01-02", "validatedDateTime": "2023-01-01T00:00:10Z", "validatedDuration": "PT15S",
        "validatedFloat": "0.42", "validatedTime": "11:27:49", "secret": "secret", "array": "[1, 2, 3]",
        "yaml": "some: property\nalist:\n- of\n- values", "file": upload,
    }


def resolve(provided: dict, inputs=None, **kw) -> dict:
    kw.setdefault("store_file", Storage())
    kw.setdefault("secret_key", KEY)
    return resolve_inputs(inputs if inputs is not None else INPUTS_FLOW.inputs, provided, renderer=None,
                          variables={}, **kw)


def error_of(provided: dict, inputs=None, **kw) -> str:
    with pytest.raises(InvalidEntity) as info:
        resolve(provided, inputs, **kw)
    return str(info.value)


#### tests/flows/inputs.yaml ################################################################################

def test_all_inputs_typed_as_kestra_stores_them(upload: Path):
    storage = Storage()
    typed = resolve(all_inputs(upload), store_file=storage)
    assert typed["string"] == "myString" and typed["enum"] == "ENUM_VALUE"
    assert (typed["int"], typed["float"], typed["bool"]) == (42, 42.42, False)
    assert (typed["instant"], typed["instantDefaults"]) == ("2019-10-06T18:27:49Z", "2013-08-09T14:19:00Z")
    assert (typed["date"], typed["time"], typed["duration"]) == ("2019-10-06", "18:27:49", "PT5M6S")
    assert typed["json"] == {"a": "b"} and typed["uri"] == "https://www.google.com"
    assert typed["nested"] == {"string": "a string", "more": {"int": 123}, "bool": True}
    assert typed["array"] == [1, 2, 3]
    assert typed["yaml"] == {"some": "property", "alist": ["of", "values"]}
    assert typed["file"] == "kestra:///company/team/inputs/executions/e1/inputs/file/hello.txt"
    assert storage.stored == [("file", "hello.txt", upload)]
    assert typed["secret"] != "secret" and decrypt_secret(KEY, typed["secret"]) == "secret"
    assert typed["optional"] is None and typed["optionalFile"] is None
    assert typed["empty"] == ""
    assert typed["validatedDuration"] == "PT15S" and typed["validatedFloat"] == 0.42
    assert list(typed)[:3] == ["string", "enum", "optional"]


def test_missing_required_input(upload: Path):
    provided = {k: v for k, v in all_inputs(upload).items() if k != "string"}
    assert "string: Invalid input for `string`, missing required input, but received `null`" in error_of(provided)


@pytest.mark.parametrize("key, value, message", [
    ("validatedString", "B-failed", "Invalid input for `validatedString`, it must match the pattern `A\\d+`, "
                                    "but received `B-failed`"),
    ("validatedInt", "9", "Invalid input for `validatedInt`, it must be more than `10`, but received `9`"),
    ("validatedInt", "21", "Invalid input for `validatedInt`, it must be less than `20`, but received `21`"),
    ("validatedDate", "2022-01-01", "Invalid input for `validatedDate`, it must be after `2023-01-01`, "
                                    "but received `2022-01-01`"),
    ("validatedDate", "2024-01-01", "Invalid input for `validatedDate`, it must be before `2023-12-31`, "
                                    "but received `2024-01-01`"),
    ("validatedDateTime", "2022-01-01T00:00:00Z", "Invalid input for `validatedDateTime`, it must be after "
                                                  "`2023-01-01T00:00:00Z`, but received `2022-01-01T00:00:00Z`"),
    ("validatedDateTime", "2024-01-01T00:00:00Z", "Invalid input for `validatedDateTime`, it must be before "
                                                  "`2023-12-31T23:59:59Z`"),
    ("validatedDuration", "PT5S", "Invalid input for `validatedDuration`, It must be more than `PT10S`"),
    ("validatedDuration", "PT30S", "Invalid input for `validatedDuration`, It must be less than `PT20S`"),
    ("validatedFloat", "0.01", "Invalid input for `validatedFloat`, it must be more than `0.1`"),
    ("validatedTime", "00:59:00", "Invalid input for `validatedTime`, it must be after `01:00`"),
    ("validatedTime", "12:00:00", "Invalid input for `validatedTime`, it must be before `11:59:59`"),
    ("enum", "INVALID", "Invalid input for `enum`, it must match the values `[ENUM_VALUE, OTHER_ONE]`, "
                        "but received `INVALID`"),
    ("array", '["s1", "s2"]', 'Invalid input for `array`, Unable to parse array element as `INT` on `s1`, '
                              'but received `["s1", "s2"]`'),
    ("int", "abc", 'Invalid input for `int`, For input string: "abc", but received `abc`'),
    ("uri", "no uri", "Invalid input for `uri`, Expected `URI` but received `no uri`, but received `no uri`"),
    ("instant", "yesterday", "Invalid input for `instant`, Expected `DATETIME` but received `yesterday` with errors:"),
    ("json", "{oops", "Invalid input for `json`, Expected `JSON` but received `{oops` with errors:"),
])
def test_invalid_values_give_kestra_messages(upload: Path, key: str, value: str, message: str):
    assert message in error_of({**all_inputs(upload), key: value})


def test_every_bad_input_is_reported(upload: Path):
    text = error_of({**all_inputs(upload), "int": "x", "validatedInt": "99"})
    assert "`int`" in text and "`validatedInt`" in text


def test_secret_without_key_is_refused(upload: Path):
    message = error_of(all_inputs(upload), secret_key=None)
    assert "Invalid input for `secret`, Unable to use a `SECRET` input/output as encryption is not configured" in message


def test_existing_kestra_uri_is_kept_for_file(upload: Path, tmp_path: Path):
    store = InternalStorage(tmp_path / "storage")
    uri = store.put_bytes(b"x", "/io/kestra/tests/inputs/executions/e0/inputs/file/b.txt")
    storage = Storage()
    typed = resolve({**all_inputs(upload), "file": uri}, store_file=storage,
                    file_sources=FileSources(store, ("io.kestra.tests",)))
    assert typed["file"] == uri and storage.stored == []


@pytest.mark.parametrize("value, reason", [
    ("/etc/passwd", "Expected an uploaded file"),
    ("etc/hosts", "Expected an uploaded file"),
    ("kestra:///other/ns/flow/executions/e/inputs/f/a.txt", "does not belong to the namespace"),
    ("kestra:///io/kestra/tests/child/flow/executions/e/inputs/f/a.txt", "does not belong to the namespace"),
    ("kestra:///io/kestra/tests/inputs/executions/e0/inputs/file/missing.txt", "not found in the internal storage"),
    ("kestra:///io/kestra/tests/inputs/executions/../../../../x", "Invalid file URI"),
    ("nsfile://other.ns/a.txt", "is not in the namespace of the execution"),
    ("nsfile:///missing.txt", "not found in the internal storage"),
    ("file:///etc/passwd", "is not under `kestra.local-files.allowed-paths`"),
    ("file://host/etc/passwd", "is not under `kestra.local-files.allowed-paths`"),
])
def test_file_values_that_are_refused(upload: Path, tmp_path: Path, value: str, reason: str):
    store = InternalStorage(tmp_path / "storage")
    message = error_of({**all_inputs(upload), "file": value},
                       file_sources=FileSources(store, ("io.kestra.tests",)))
    assert "Invalid input for `file`, " in message and reason in message, message


def test_nsfile_and_allowed_local_files(upload: Path, tmp_path: Path):
    store = InternalStorage(tmp_path / "storage")
    nsfile = store.put_bytes(b"ns", "/io/kestra/tests/_files/data/a.txt")
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    (allowed / "local.csv").write_text("a,b")
    (allowed / "escape").symlink_to(upload.parent)
    sources = FileSources(store, ("io.kestra.tests",), (allowed.resolve(),))
    storage = Storage()
    typed = resolve({**all_inputs(upload), "file": "nsfile:///data/a.txt"}, store_file=storage, file_sources=sources)
    assert typed["file"] == nsfile and storage.stored == []
    typed = resolve({**all_inputs(upload), "file": "nsfile://io.kestra.tests/data/a.txt"}, file_sources=sources)
    assert typed["file"] == nsfile
    typed = resolve({**all_inputs(upload), "file": f"file://{allowed}/local.csv"}, store_file=storage,
                    file_sources=sources)
    assert storage.stored == [("file", "local.csv", (allowed / "local.csv").resolve())]
    assert (allowed / "local.csv").exists()
    for outside in (f"file://{allowed}/../hello.txt", f"file://{allowed}/escape/hello.txt"):
        assert "allowed-paths" in error_of({**all_inputs(upload), "file": outside}, file_sources=sources)


def test_already_typed_values_are_accepted(upload: Path):
    typed = resolve({**all_inputs(upload), "int": 7, "float": 1, "bool": True, "json": [1], "array": [4, 5]})
    assert (typed["int"], typed["float"], typed["bool"], typed["json"], typed["array"]) == (7, 1.0, True, [1], [4, 5])


def test_boolean_parsing_is_lenient_like_java(upload: Path):
    assert resolve({**all_inputs(upload), "bool": "TRUE"})["bool"] is True
    assert resolve({**all_inputs(upload), "bool": "yes"})["bool"] is False


#### Single types ###########################################################################################

def spec(id: str, type: str, **props) -> InputSpec:
    required = props.pop("required", True)
    defaults = props.pop("defaults", None)
    return InputSpec(id=id, type=type, required=required, defaults=defaults, props=props)


@pytest.mark.parametrize("input_spec, value, expected", [
    (spec("t", "TIME"), "18:27:00", "18:27"),
    (spec("t", "TIME"), "08:00:00.500", "08:00:00.500"),
    (spec("d", "DATETIME"), "2019-10-06T20:27:49.120+02:00", "2019-10-06T18:27:49.120Z"),
    (spec("d", "DURATION"), "P1DT1S", "PT24H1S"),
    (spec("e", "EMAIL"), "ann@example.com", "ann@example.com"),
    (spec("m", "MULTISELECT", values=["a", "b"]), '["a", "b"]', ["a", "b"]),
    (spec("s", "SELECT", values=["a", "b"]), "b", "b"),
    (spec("s", "SELECT", values=["a"], allowCustomValue=True), "z", "z"),
    (spec("y", "YAML", defaults={"k": [1]}), None, {"k": [1]}),
    (spec("o", "STRING", required=False), None, None),
])
def test_single_type(input_spec: InputSpec, value, expected):
    provided = {} if value is None else {input_spec.id: value}
    assert resolve(provided, [input_spec]) == {input_spec.id: expected}


@pytest.mark.parametrize("input_spec, value, message", [
    (spec("e", "EMAIL"), "not-an-email", "Invalid input for `e`, The input must be a valid email"),
    (spec("m", "MULTISELECT", values=["a", "b"]), '["a", "c"]', "it must match the values `[a, b]`"),
    (spec("s", "SELECT", values=["a", "b"]), "c", "Invalid input for `s`, it must match the values `[a, b]`, "
                                                   "but received `c`"),
    (spec("f", "FLOAT"), "x", 'For input string: "x"'),
    (spec("i", "INT"), "99999999999", 'For input string: "99999999999"'),
    (spec("d", "DATE"), "06/10/2019", "Expected `DATE` but received `06/10/2019` with errors"),
    (spec("p", "SECRET", validator="^[a-z]+$"), "ABC", "it must match the pattern `^[a-z]+$`"),
])
def test_single_type_errors(input_spec: InputSpec, value, message: str):
    assert message in error_of({input_spec.id: value}, [input_spec])


def test_missing_file_upload_path(tmp_path: Path):
    assert "Unable to find the file" in error_of({"f": tmp_path / "nope.txt"}, [spec("f", "FILE")])


def test_secret_roundtrip_and_wrong_key():
    token = encrypt_secret(KEY, "p4ss")
    assert token != encrypt_secret(KEY, "p4ss")  # random IV
    assert decrypt_secret(KEY, token) == "p4ss"
    with pytest.raises(ValueError):
        decrypt_secret("another-key-of-32-characters-xyz", token)


#### Pause onResume #########################################################################################

def test_on_resume_inputs(upload: Path):
    flow = parse_flow((FLOWS / "pause-on-resume.yaml").read_text(), registry=REGISTRY)
    on_resume = flow.tasks[0].props["onResume"]
    assert [(i.id, i.type, i.required) for i in on_resume] == [("asked", "STRING", True), ("data", "FILE", False)]
    typed = resolve({"asked": "restarted", "data": upload}, on_resume)
    assert typed["asked"] == "restarted" and typed["data"].startswith("kestra:///")
    assert "Invalid input for `asked`, missing required input, but received `null`" in error_of({}, on_resume)


#### Validation report ######################################################################################

def test_validate_inputs_report(upload: Path):
    report = validate_inputs_report(INPUTS_FLOW.inputs, {"string": "myString", "int": "x", "file": upload},
                                    renderer=None, variables={}, secret_key=KEY)
    by_id = {r["input"]["id"]: r for r in report}
    assert len(report) == len(INPUTS_FLOW.inputs)
    assert all(r["enabled"] for r in report)
    assert by_id["string"] == {"input": {"id": "string", "type": "STRING", "required": True}, "value": "myString",
                               "enabled": True, "errors": []}
    assert by_id["int"]["errors"] == [{"message": 'Invalid input for `int`, For input string: "x", but received `x`'}]
    assert by_id["file"]["errors"] == [] and by_id["file"]["value"] == "hello.txt"   # never a server path
    assert by_id["enum"]["errors"][0]["message"].endswith("missing required input, but received `null`")
    assert by_id["validatedInt"]["input"] == {"id": "validatedInt", "type": "INT", "required": False,
                                              "min": 10, "max": 20}


def test_input_to_dict_with_depends_on():
    s = InputSpec(id="b", type="STRING", required=False, depends_on_inputs=("a",),
                  depends_on_condition="{{ inputs.a == 'x' }}", display_name="B")
    assert input_to_dict(s) == {"id": "b", "type": "STRING", "required": False, "displayName": "B",
                                "dependsOn": {"inputs": ["a"], "condition": "{{ inputs.a == 'x' }}"}}


#### Flow outputs ###########################################################################################

def test_type_outputs():
    outs = [OutputSpec("s", "STRING", "{{ x }}"), OutputSpec("i", "INT", "{{ x }}"),
            OutputSpec("j", "JSON", "{{ x }}"), OutputSpec("f", "FILE", "{{ x }}"),
            OutputSpec("z", "SECRET", "{{ x }}"), OutputSpec("n", "STRING", "{{ x }}", required=False)]
    typed = type_outputs(outs, {"s": "a", "i": "3", "j": '{"k": 1}', "f": "kestra:///x/y.txt", "z": "hush"},
                         secret_key=KEY)
    assert {k: v for k, v in typed.items() if k != "z"} == {"s": "a", "i": 3, "j": {"k": 1},
                                                             "f": "kestra:///x/y.txt", "n": None}
    assert decrypt_secret(KEY, typed["z"]) == "hush"


def test_type_outputs_errors():
    with pytest.raises(InvalidEntity) as info:
        type_outputs([OutputSpec("i", "INT", "v"), OutputSpec("m", "STRING", "v")], {"i": "three"})
    assert [v.message for v in info.value.violations] == [
        'Invalid output for `i`, For input string: "three", but received `three`',
        "Invalid output for `m`, missing required output, but received `null`",
    ]
