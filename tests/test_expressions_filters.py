"""Pebble and Kestra filters, except dates (test_expressions_dates.py) and jq
(test_expressions_functions.py)."""
from __future__ import annotations

from decimal import Decimal

import pytest

from falconet.runtime.expr.render import ExpressionError, Renderer

R = Renderer()
VARS = {
    "s": "Hello World", "l": [3, 1, 2], "m": {"b": 2, "a": 1}, "none": None, "empty": "",
    "nested": [[1, 2], [3], 4], "multi": "line1\nline2", "crlf": "a\r\nb",
}


def render(template: str) -> str:
    return R.render(template, VARS)


def typed(template: str):
    return R.render_typed(template, VARS)


@pytest.mark.parametrize(("template", "expected"), [
    # strings
    ("{{ s | upper }}", "HELLO WORLD"), ("{{ s | lower }}", "hello world"), ("{{ '  x y ' | trim }}", "x y"),
    ("{{ 'hello wORLD' | capitalize }}", "Hello wORLD"), ("{{ 'hello big  wORLD' | title }}", "Hello Big  WORLD"),
    ("{{ s | abbreviate(8) }}", "Hello..."), ("{{ s | abbreviate(20) }}", "Hello World"),
    ("{{ ' Hello Wörld_x--y ' | slugify }}", "hello-world-x-y"), ("{{ 'Kestra é  Flow!' | slugify }}", "kestra-e-flow"),
    ("{{ s | substringBefore(' ') }}", "Hello"), ("{{ s | substringBefore('#') }}", "Hello World"),
    ("{{ s | substringAfter(' ') }}", "World"), ("{{ s | substringAfter('#') }}", ""),
    ("{{ 'a.b.c' | substringBeforeLast('.') }}", "a.b"), ("{{ 'abc' | substringBeforeLast('.') }}", "abc"),
    ("{{ 'a.b.c' | substringAfterLast('.') }}", "c"), ("{{ 'abc' | substringAfterLast('.') }}", ""),
    ("{{ s | startsWith('Hell') }}", "true"), ("{{ s | startsWith('World') }}", "false"),
    ("{{ s | endsWith('World') }}", "true"), ("{{ s | endsWith(value='x') }}", "false"),
    ("{{ s | replace({'o': '0', 'H': 'J'}) }}", "Jell0 W0rld"),
    ("{{ 'a1b22' | replace({'\\d+': '#'}, regexp=true) }}", "a#b#"),
    ("{{ 'a1b2' | replace({'(\\d)': '<$1>'}, regexp=true) }}", "a<1>b<2>"),
    ("{{ {'k': 'a-b', 'l': ['c-d']} | replace({'-': '_'}) }}", '{"k":"a_b","l":["c_d"]}'),
    ("{{ \"it's\" | escapeChar('single') }}", "it\\'s"), ("{{ 'say \"hi\"' | escapeChar('double') }}", 'say \\"hi\\"'),
    ("{{ \"it's\" | escapeChar('shell') }}", "it'\\''s"),
    ("{{ '<a href=\"x\">&</a>' | escape }}", "&lt;a href=&quot;x&quot;&gt;&amp;&lt;/a&gt;"),
    ("{{ '<b>' | raw }}", "<b>"),
    ("{{ 'a b&c=d/é' | urlencode }}", "a+b%26c%3Dd%2F%C3%A9"), ("{{ 'a+b%26c%C3%A9' | urldecode }}", "a b&cé"),
    ("{{ multi | indent(2) }}", "line1\n  line2"), ("{{ multi | nindent(2) }}", "\n  line1\n  line2"),
    ("{{ multi | indent(1, prefix='>') }}", "line1\n>line2"), ("{{ crlf | indent(2) }}", "a\r\n  b"),
    ("{{ empty | nindent(2) }}", ""),
    ("{{ 'abc' | sha1 }}", "a9993e364706816aba3e25717850c26c9cd0d89d"),
    ("{{ 'abc' | sha256 }}", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
    ("{{ 'abc' | sha512 }}", "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
                             "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"),
    ("{{ 'abc' | md5 }}", "900150983cd24fb0d6963f7d28e17f72"),
    ("{{ 'héllo' | base64encode }}", "aMOpbGxv"), ("{{ 'aMOpbGxv' | base64decode }}", "héllo"),
    ("{{ 'a,b,,c,,' | split(',') }}", '["a","b","","c"]'), ("{{ 'a.b.c' | split('\\.') }}", '["a","b","c"]'),
    ("{{ 'a.b.c' | split('.') }}", "[]"), ("{{ 'abc' | split(',') }}", '["abc"]'),
    ("{{ 'abc' | split('') }}", '["a","b","c"]'),
    ("{{ 'a,b,c' | split(',', 2) }}", '["a","b,c"]'), ("{{ 'a1b22c' | split('\\d+') }}", '["a","b","c"]'),
    # collections
    ("{{ none | default('d') }}", "d"), ("{{ empty | default('d') }}", "d"), ("{{ [] | default('d') }}", "d"),
    ("{{ {} | default('d') }}", "d"), ("{{ '  ' | default('d') }}", "d"), ("{{ 0 | default('d') }}", "0"),
    ("{{ false | default('d') }}", "false"),
    ("{{ l | first }}", "3"), ("{{ l | last }}", "2"), ("{{ 'abc' | first }}", "a"), ("{{ 'abc' | last }}", "c"),
    ("{{ [] | first }}", ""), ("{{ l | join }}", "312"), ("{{ l | join(', ') }}", "3, 1, 2"),
    ("{{ l | length }}", "3"), ("{{ s | length }}", "11"), ("{{ m | length }}", "2"), ("{{ none | length }}", "0"),
    ("{{ m | merge({'c': 3, 'a': 0}) }}", '{"b":2,"a":0,"c":3}'), ("{{ l | merge([4]) }}", "[3,1,2,4]"),
    ("{{ l | reverse }}", "[2,1,3]"), ("{{ 'abc' | reverse }}", "cba"),
    ("{{ l | sort }}", "[1,2,3]"), ("{{ l | rsort }}", "[3,2,1]"), ("{{ ['b', 'a'] | sort }}", '["a","b"]'),
    ("{{ l | slice(1, 3) }}", "[1,2]"), ("{{ l | slice(1) }}", "[1,2]"), ("{{ s | slice(0, 5) }}", "Hello"),
    ("{{ m | keys }}", '["b","a"]'), ("{{ m | values }}", "[2,1]"), ("{{ l | keys }}", "[0,1,2]"),
    ("{{ nested | flatten }}", "[1,2,3,4]"), ("{{ [1, 2, 3, 4, 5] | chunk(2) }}", "[[1,2],[3,4],[5]]"),
    ("{{ [1, 2, 1, 3, 2] | distinct }}", "[1,2,3]"),
    # numbers
    ("{{ -5 | abs }}", "5"), ("{{ -2.5 | abs }}", "2.5"),
    ("{{ 1234567.891 | numberformat('#,##0.00') }}", "1,234,567.89"),
    ("{{ 3.14159 | numberformat('0.000') }}", "3.142"),
    ("{{ 0.5 | numberformat('#.##') }}", ".5"), ("{{ 1.232654 | numberFormat(\"#.##\") }}", "1.23"),
    ("{{ 2.5 | numberformat('0') }}", "2"), ("{{ 3.5 | numberformat('0') }}", "4"),
    ("{{ 0.256 | numberformat('0.0%') }}", "25.6%"), ("{{ 42 | numberformat('0000') }}", "0042"),
    ("{{ s | className }}", "java.lang.String"), ("{{ 1 | className }}", "java.lang.Long"),
    ("{{ 1.5 | className }}", "java.lang.Double"), ("{{ m | className }}", "java.util.LinkedHashMap"),
    ("{{ l | className }}", "java.util.ArrayList"), ("{{ true | className }}", "java.lang.Boolean"),
    # serialization
    ("{{ m | toJson }}", '{"b":2,"a":1}'), ("{{ m | json }}", '{"b":2,"a":1}'), ("{{ 'x\"y' | toJson }}", '"x\\"y"'),
    ("{{ none | toJson }}", "null"), ("{{ {'a': 1, 'b c': 'x', 'l': [1.5, true, null]} | toIon }}",
                                        "{a:1,'b c':\"x\",l:[1.5e0,true,null]}"),
    ("{{ {'a': [1, 2], 'b': {'c': 'd'}} | yaml }}", "a:\n - 1\n - 2\nb:\n  c: d\n"),
    ("{{ 'string' | yaml }}", "string\n"), ("{{ 1.123 | yaml }}", "1.123\n"),
    ("{{ ['s', 1, true] | yaml }}", " - s\n - 1\n - true\n"),
    ("{{ {'q': 'a: b', 'n': '1', 'm': 'x\ny', 'e': {}, 'l': []} | yaml }}", 'q: "a: b"\nn: "1"\nm: "x\\ny"\ne: {}\nl: []\n'),
    ("{{ [{'a': 1, 'b': 2}, [3, 4]] | yaml }}", " - a: 1\n   b: 2\n - - 3\n   - 4\n"),
    ("{{ none | yaml }}", "null"),
    ("{{ 42 | string }}", "42"),
])
def test_filter(template: str, expected: str) -> None:
    assert render(template) == expected


def test_number_filter_types() -> None:
    assert typed("{{ '12' | number }}") == 12
    assert typed("{{ '1.5' | number }}") == 1.5
    assert typed("{{ '12' | number('DOUBLE') }}") == 12.0
    assert typed("{{ '12' | number('LONG') }}") == 12
    assert typed("{{ '1.10' | number('BIGDECIMAL') }}") == Decimal("1.10")
    assert typed("{{ '0x1F' | number }}") == 31
    assert typed("{{ null | number }}") is None


@pytest.mark.parametrize(("template", "fragment"), [
    ("{{ 1 | number }}", "'number' filter can only be applied to String"),
    ("{{ 'abc' | number }}", "abc is not a valid number."),
    ("{{ 'x' | escapeChar('nope') }}", "either 'single', 'double', or 'shell'"),
    ("{{ 'x' | escapeChar }}", "expects an argument 'type'"),
    ("{{ 'x' | replace('a') }}", "The argument 'replace_pairs' is required."),
    ("{{ 1 | flatten }}", "can only be applied to lists"),
    ("{{ [1] | chunk(0) }}", "positive integer"),
    ("{{ 'x' | indent(-1) }}", "positive integer >=0"),
    ("{{ 'x' | keys }}", "can only be applied to maps"),
    ("{{ 'x' | abs }}", "needs a number"),
    ("{{ [1, 'a'] | sort }}", "comparable"),
    ("{{ l | slice(2, 9) }}", "out of range"),
    ("{{ 'abcdef' | abbreviate(2) }}", "Minimum abbreviation width is 4"),
    ("{{ '%%%' | base64decode }}", "Unable to decode base64"),
    ("{{ 'x' | replace({'(': 'y'}, regexp=true) }}", "Invalid regular expression"),
    ("{{ 'x' | upper(1, 2) }}", "Filter 'upper'"),
])
def test_filter_errors_are_expression_errors(template: str, fragment: str) -> None:
    with pytest.raises(ExpressionError) as info:
        render(template)
    assert fragment in str(info.value)
    assert f"({template}:1)" in str(info.value)


def test_null_input_gives_null_for_string_filters() -> None:
    for name in ("upper", "lower", "trim", "capitalize", "title", "slugify", "md5", "sha256", "urlencode",
                 "base64encode", "reverse", "first", "last", "keys", "values", "flatten", "className"):
        assert R.render_typed(f"{{{{ none | {name} }}}}", VARS) is None, name


def test_filters_keep_native_types_in_typed_rendering() -> None:
    assert typed("{{ l | sort }}") == [1, 2, 3]
    assert typed("{{ m | keys }}") == ["b", "a"]
    assert typed("{{ s | startsWith('H') }}") is True
    assert typed("{{ l | length }}") == 3
