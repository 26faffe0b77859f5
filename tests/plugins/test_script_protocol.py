"""The ``::{…}::`` line protocol and the glob matcher, without processes."""
from __future__ import annotations

import pytest

from falconet.sdk.files import glob_match
from falconet.plugins.scripts.protocol import InvalidLine, LineConsumer, parse_protocol_line
from falconet.plugins.core.log import Log


#### parse_protocol_line ####################################################################################

def test_exact_lines_of_the_real_client():
    p = parse_protocol_line('::{"outputs": {"my_output": "my_value", "n": 42, "nested": {"a": [1, 2]}, "u": "\\u00e9"}}::')
    assert p["outputs"] == {"my_output": "my_value", "n": 42, "nested": {"a": [1, 2]}, "u": "é"}
    p = parse_protocol_line('::{"metrics": [{"name": "rows", "type": "counter", "value": 10, "tags": {"table": "users"}}]}::')
    assert p["metrics"] == [("counter", "rows", 10.0, {"table": "users"})]
    p = parse_protocol_line('::{"metrics": [{"name": "dur", "type": "timer", "value": 1.5, "tags": {"step": "load"}}]}::')
    assert p["metrics"] == [("timer", "dur", 1.5, {"step": "load"})]
    p = parse_protocol_line('::{"logs": [{"level": "WARN", "message": "2026-11-28T17:46:34.871Z - careful"}]}::')
    assert p["logs"] == [("WARN", "2026-11-28T17:46:34.871Z - careful")]


def test_compact_forms_and_defaults():
    p = parse_protocol_line('::{"outputs":{"test":"value","int":2,"bool":true,"float":3.65}}::')
    assert p["outputs"] == {"test": "value", "int": 2, "bool": True, "float": 3.65}
    p = parse_protocol_line('::{"metrics":[{"name":"count","type":"counter","value":1}]}::')
    assert p["metrics"] == [("counter", "count", 1.0, {})]
    p = parse_protocol_line('::{"metrics":[{"name":"t","type":"timer","value":"PT1.5S"}], "assets": {"id": "x"}}::')
    assert p["metrics"] == [("timer", "t", 1.5, {})]


@pytest.mark.parametrize("line", [
    ' ::{"outputs":{}}::', '::{"outputs":{}}:: ', 'x::{"outputs":{}}::', '::{"outputs":{}}:', 'plain text', '::[1]::'])
def test_non_matching_lines(line):
    assert parse_protocol_line(line) is None


@pytest.mark.parametrize("line", [
    '::{not json}::', '::{"outputs": 3}::', '::{"metrics": [{"name": "g", "type": "gauge", "value": 1}]}::',
    '::{"metrics": [{"name": "c", "type": "counter", "value": "x"}]}::', '::{"logs": [{"level": "LOUD"}]}::'])
def test_invalid_lines_raise(line):
    with pytest.raises(InvalidLine):
        parse_protocol_line(line)


def test_consumer_merges_outputs_last_write_wins_and_logs(make_ctx):
    ctx = make_ctx(Log, {})
    c = LineConsumer(ctx)
    c.feed('::{"outputs": {"a": 1, "b": 1}}::', False)
    c.feed('::{"outputs": {"b": 2}}::', True)
    c.feed("hello", False)
    c.feed("oops", True)
    c.feed("::{broken}::", False)
    c.feed('::{"logs": [{"level": "ERROR", "message": "bad"}], "metrics": [{"name": "m", "type": "counter", "value": 2}]}::', False)
    assert c.vars == {"a": 1, "b": 2}
    assert (c.stdout_count, c.stderr_count) == (4, 2)
    assert ctx.logger.lines[:2] == [("INFO", "hello"), ("WARN", "oops")]
    assert ctx.logger.lines[2][0] == "WARN" and ctx.logger.lines[2][1].startswith("Invalid outputs '::{broken}::'")
    assert ctx.logger.lines[3] == ("ERROR", "bad")
    assert ctx.metrics == [("counter", "m", 2.0, {})]


#### globs ##################################################################################################

@pytest.mark.parametrize("pattern,path,expected", [
    ("*.txt", "a.txt", True), ("*.txt", "d/a.txt", False), ("**.txt", "d/a.txt", True),
    ("**/*.txt", "a.txt", True), ("**/*.txt", "d/e/a.txt", True), ("out/**", "out/x/y.csv", True),
    ("file?.csv", "file1.csv", True), ("file?.csv", "file10.csv", False), ("*.{csv,json}", "a.json", True),
    ("[ab].txt", "b.txt", True), ("[!ab].txt", "b.txt", False), ("a\\*.txt", "a*.txt", True),
    ("a\\*.txt", "ab.txt", False)])
def test_java_globs(pattern, path, expected):
    assert glob_match(pattern, path) is expected
