"""Expression engine core: syntax translation, operators, strict undefined, printing, typed rendering,
recursive rendering, cache, sandbox."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from falconet.runtime.kernel.errors import IllegalArgument
from falconet.runtime.expr.render import ExpressionError, Renderer, is_truthy, to_output_string

R = Renderer()

VARS = {
    "inputs": {"x": 1, "s": "abc", "m": {"a": 1, "b": [1, 2]}, "nul": None, "empty": "", "flag": True,
               "dotted": {"key": "v"}},
    "outputs": {"a": {"value": "va"}, "task-1": {"value": 2}, "loop": {"v1": {"value": "one"}, "v 2": {"value": "two"}},
                "values": {"values": {"count": "4", "keys": "k"}}},
    "taskrun": {"id": "tr1", "value": "v1", "attemptsCount": 0},
    "parents": [{"taskrun": {"value": "p0"}}, {"taskrun": {"value": "p1"}}],
    "list": [3, 1, 2],
    "n": 7,
}


def render(template: str, variables: dict | None = None) -> str:
    return R.render(template, VARS if variables is None else variables)


def typed(template: str, variables: dict | None = None):
    return R.render_typed(template, VARS if variables is None else variables)


#### Plain text and fast path ###############################################################################

def test_string_without_brace_is_returned_untouched() -> None:
    text = "no expression here %} }} #}"
    assert R.render(text, {}) is text


def test_text_without_delimiters_is_not_compiled() -> None:
    renderer = Renderer()
    body = '{"a": {"b": 1}}'
    assert renderer.render(body, {}) is body
    assert renderer.render_typed(body, {}) is body
    assert renderer.cache_info().currsize == 0


def test_text_around_expressions_and_newlines_are_kept() -> None:
    assert render("a {{ inputs.x }} b\n") == "a 1 b\n"
    assert render("{{ inputs.x }}\n\n") == "1\n\n"
    assert render("x { y } {{ inputs.s }}") == "x { y } abc"


def test_comments_and_raw_blocks() -> None:
    assert render("a{# comment {{ nope }} #}b") == "ab"
    assert render("{% raw %}{{ inputs.x }} {% if %}{% endraw %}!") == "{{ inputs.x }} {% if %}!"
    assert render("{% verbatim %}{{ x }}{% endverbatim %}") == "{{ x }}"


def test_whitespace_control() -> None:
    assert render("a  {{- inputs.x -}}  b") == "a1b"
    assert render("{%- for i in [1, 2] -%}\n {{ i }}\n{%- endfor %}") == "12"


#### Variables and access ###################################################################################

def test_attribute_and_subscript_access() -> None:
    assert render("{{ outputs.a.value }}") == "va"
    assert render("{{ outputs['task-1'].value }}") == "2"
    assert render("{{ outputs['loop'][taskrun.value].value }}") == "one"
    assert render("{{ outputs.loop['v 2'].value }}") == "two"
    assert render("{{ parents[1].taskrun.value }}") == "p1"
    assert render("{{ list[0] }}{{ list.1 }}") == "31"


def test_map_keys_named_like_python_methods_are_map_keys() -> None:
    assert render("{{ outputs.values.values.count == '4' }}") == "true"
    assert render("{{ outputs.values.values.keys }}") == "k"


def test_list_size_and_string_length_attributes() -> None:
    assert render("{{ list.size }} {{ inputs.s.length }}") == "3 3"


def test_map_and_list_literals() -> None:
    assert render("{{ {'a': 1, \"b\": [1, 2, {'c': null}]} }}") == '{"a":1,"b":[1,2,{"c":null}]}'
    assert render("{{ [] }}{{ {} }}") == "[]{}"
    assert render("{{ {'k': inputs.x > 0 ? 'pos' : 'neg'} }}") == '{"k":"pos"}'


def test_slices_are_not_ternaries() -> None:
    assert render("{{ list[0:2] }} {{ list[1:] }} {{ list[:1] }} {{ inputs.s[1:] }}") == "[3,1] [1,2] [3] bc"


def test_strings_containing_operators_are_left_alone() -> None:
    assert render("{{ 'a ?? b ? c : d ~ }} {% %}' }}") == "a ?? b ? c : d ~ }} {% %}"
    assert render('{{ "it\'s" ~ \'a "q"\' }}') == "it's" + 'a "q"'


def test_string_escapes_and_interpolation() -> None:
    # Pebble unescapes only the quote character; other backslashes stay (YAML already decoded its escapes)
    assert render(r"{{ 'a\nb' }}") == r"a\nb"
    assert render("{{ 'a\nb' }}") == "a\nb"
    assert render(r"{{ 'don\'t' }}") == "don't"
    assert render(r'{{ "say \"hi\"" }}') == 'say "hi"'
    assert render(r'{{ "it\'s" }}') == r"it\'s"
    assert render(r"{{ '\d+' }}") == r"\d+"
    assert render(r"{{ 'a\\' }}") == "a\\\\"
    assert render('{{ "x=#{inputs.x + 1}, s=#{inputs.s}" }}') == "x=2, s=abc"


#### Operators ##############################################################################################

@pytest.mark.parametrize(("template", "expected"), [
    ("{{ 1 + 2 * 3 }}", "7"), ("{{ (1 + 2) * 3 }}", "9"), ("{{ 10 - 2 - 3 }}", "5"), ("{{ -n }}", "-7"),
    ("{{ 7 / 2 }}", "3"), ("{{ -7 / 2 }}", "-3"), ("{{ 7.0 / 2 }}", "3.5"), ("{{ -7 % 3 }}", "-1"), ("{{ 7 % 3 }}", "1"),
    ("{{ 1.5 + 1 }}", "2.5"), ("{{ 2 * 1.0 }}", "2.0"), ("{{ list + 4 }}", "[3,1,2,4]"),
    ("{{ list + [5] }}", "[3,1,2,5]"), ("{{ list - 1 }}", "[3,2]"), ("{{ list - [1, 3] }}", "[2]"),
    ("{{ 'a' + 'b' }}", "ab"),
    ("{{ 1 == 1 }}", "true"), ("{{ 1 == 1.0 }}", "true"), ("{{ '1' == 1 }}", "false"), ("{{ 1 != 2 }}", "true"),
    ("{{ true == 1 }}", "false"), ("{{ n equals 7 }}", "true"), ("{{ n < 8 and n >= 7 }}", "true"),
    ("{{ n > 8 or n <= 6 }}", "false"), ("{{ not true }}", "false"), ("{{ not (n == 7) }}", "false"),
    ("{{ 'abc' contains 'b' }}", "true"), ("{{ list contains 2 }}", "true"), ("{{ list contains [1, 3] }}", "true"),
    ("{{ list contains 9 }}", "false"), ("{{ inputs.m contains 'a' }}", "true"), ("{{ 2 in list }}", "true"),
    ("{{ 9 not in list }}", "true"), ("{{ 'a' ~ 1 ~ true ~ null ~ 1.5 }}", "a1true1.5"),
    ("{{ 'x' ~ inputs.m }}", 'x{"a":1,"b":[1,2]}'), ("{{ 1..3 }}", "[1,2,3]"), ("{{ 3..1 }}", "[]"),
    ("{{ 'a'..'c' }}", '["a","b","c"]'),
    ("{{ n > 5 ? 'big' : 'small' }}", "big"), ("{{ n > 50 ? 'big' : n > 5 ? 'mid' : 'small' }}", "mid"),
    ("{{ inputs.flag ? inputs.s : 'no' }}", "abc"),
    ("{{ 'false' ? 1 : 2 }}", "2"),
])
def test_operators(template: str, expected: str) -> None:
    assert render(template) == expected


def test_pebble_precedence_filter_applies_to_concatenation() -> None:
    # `~` (110) binds tighter than `|` (100): the filter applies to the whole concatenation
    assert render("{{ 'a' ~ 'b' | upper }}") == "AB"
    # `==` (30) is lower than `|`: the filter applies to the right operand only
    assert render("{{ 3 == list | length }}") == "true"
    # `??` (120) binds tighter than `~`
    assert render("{{ 'x' ~ inputs.nope ?? 'y' }}") == "xy"


def test_null_coalescing() -> None:
    assert render("{{ inputs.nope ?? 'd' }}") == "d"
    assert render("{{ inputs.nul ?? 'd' }}") == "d"
    assert render("{{ inputs.x ?? 'd' }}") == "1"
    assert render("{{ missing.deeply.nested ?? 'd' }}") == "d"
    assert render("{{ inputs.nope ?? inputs.other ?? 'third' }}") == "third"
    assert render("{{ (inputs.failed ?? 'NONE') == 'FIRST' ? 'ko' : '0' }}") == "0"
    # the right side is evaluated only when needed
    assert render("{{ inputs.x ?? undefinedvariable }}") == "1"
    # through a filter or function call on an undefined value
    assert render("{{ inputs.nope | upper ?? 'd' }}") == "d"
    assert render("{{ fromJson(inputs.nope).a ?? 'd' }}") == "d"


def test_defined_tests_on_computed_keys_like_kestra() -> None:
    variables = {"block": {"test": {"child": "awesome"}}, "inner": "test"}
    assert R.render("{{ block[inner].child }}", variables) == "awesome"
    assert R.render("{{ inner.bla is not defined ? block.test.child : null }}", variables) == "awesome"
    assert R.render("{{ block[missing].child is defined ? null : block[inner].child }}", variables) == "awesome"
    assert R.render("{{ block[missing].child is not defined ? (block[missing2].child is not defined ? "
                    "block[inner].child : null) : null }}", variables) == "awesome"
    assert R.render("{{ [1, 2][3] is defined ? bla : null }}", variables) == ""
    with pytest.raises(ExpressionError, match="Unable to find `missing2`"):
        R.render("{{ missing is defined ? missing : missing2 }}", variables)


def test_undefined_coalescing_keeps_existing_null() -> None:
    assert render("{{ inputs.nope ??? 'd' }}") == "d"
    assert render("[{{ inputs.nul ??? 'd' }}]") == "[]"
    assert typed("{{ inputs.nul ??? 'd' }}") is None
    assert render("{{ inputs.x ??? 'd' }}") == "1"


def test_tests() -> None:
    assert render("{{ inputs.x is defined }} {{ inputs.y is defined }} {{ inputs.y is not defined }}") == "true false true"
    assert render("{{ inputs.nope.deeper is defined }}") == "false"
    assert render("{{ inputs.nul is null }} {{ inputs.x is null }} {{ inputs.x is not null }}") == "true false true"
    assert render("{{ inputs.empty is empty }} {{ [] is empty }} {{ {} is empty }} {{ inputs.s is empty }} "
                  "{{ ' ' is empty }}") == "true true true false true"
    assert render("{{ 2 is even }} {{ 3 is odd }} {{ 3 is even }}") == "true true false"
    assert render("{{ list is iterable }} {{ inputs.s is iterable }} {{ inputs.m is map }} {{ list is map }}") \
        == "true false true false"
    assert render("{{ '{\"a\": 1}' is json }} {{ '[1]' is json }} {{ 'nope' is json }} {{ inputs.m is json }}") \
        == "true true false true"


#### Tags ###################################################################################################

def test_if_elseif_else() -> None:
    template = "{% if n > 10 %}big{% elseif n > 5 %}mid{% else %}small{% endif %}"
    assert render(template) == "mid"
    assert render(template, {"n": 1}) == "small"
    assert render(template, {"n": 11}) == "big"


def test_for_loop_with_pebble_loop_variables_and_else() -> None:
    assert render("{% for x in list %}{{ loop.index }}:{{ x }}{% if not loop.last %},{% endif %}{% endfor %}") \
        == "0:3,1:1,2:2"
    assert render("{% for x in list %}{{ loop.revindex }}{{ loop.first }}{{ loop.length }} {% endfor %}") \
        == "2true3 1false3 0false3 "
    assert render("{% for x in [] %}x{% else %}none{% endfor %}") == "none"


def test_a_variable_named_loop_is_not_a_for_loop() -> None:
    assert R.render("{{ loop.index }}|{% for x in [1] %}{{ loop.index }}{% endfor %}", {"loop": {"index": "v"}}) \
        == "v|0"


def test_for_over_map_yields_entries() -> None:
    assert render("{% for e in inputs.m %}{{ e.key }}={{ e.value }};{% endfor %}") == "a=1;b=[1,2];"
    assert render("{% for entry in fromJson('{\"NEW\": 1}') %}{{ entry.key }}{% endfor %}") == "NEW"


def test_set_and_filter_tags() -> None:
    assert render("{% set y = inputs.x + 41 %}{{ y }}") == "42"
    assert render("{% filter upper %}hello {{ inputs.s }}{% endfilter %}") == "HELLO ABC"


#### Strict undefined #######################################################################################

@pytest.mark.parametrize(("template", "name", "line"), [
    ("{{inputs.invalid}}", "invalid", 1),
    ("{{ invalid }}", "invalid", 1),
    ("{{ outputs.invalid.value }}", "invalid", 1),
    ("{{ outputs.a.value.deeper }}", "deeper", 1),
    ("line1\nline2 {{ inputs.nope }}", "nope", 2),
    ("{{ inputs.x }}\n\n{% if missingVar == 2 %}x{% endif %}", "missingVar", 3),
    ("{{ outputs.notexists == 2 }}", "notexists", 1),
    ("{{ inputs.nul.value }}", "value", 1),
    ("{{ list[10] }}", "10", 1),
    ("{% for x in nolist %}{% endfor %}", "nolist", 1),
    ("{{ inputs.nope | upper }}", "nope", 1),
    ("{{ inputs.nope is null }}", "nope", 1),
])
def test_strict_undefined_message(template: str, name: str, line: int) -> None:
    with pytest.raises(ExpressionError) as info:
        render(template)
    assert str(info.value) == f"Unable to find `{name}` used in the expression `{template}` at line {line}"


def test_expression_error_is_an_illegal_argument() -> None:
    assert issubclass(ExpressionError, IllegalArgument)


def test_default_filter_accepts_undefined() -> None:
    assert render("{{ inputs.nope | default('d') }} {{ inputs.nul | default('n') }} {{ inputs.x | default(0) }}") \
        == "d n 1"


#### Syntax errors ##########################################################################################

@pytest.mark.parametrize(("template", "fragment"), [
    ("{{ inputs.x ", "unexpected end of template"),
    ("{{ }}", "empty expression"),
    ("{{ 1 + }}", "unexpected end of expression"),
    ("{{ a b }}", "unexpected `b`"),
    ("{{ 'unterminated }}", "unterminated string"),
    ("{{ x | nosuchfilter }}", "Filter [nosuchfilter] does not exist"),
    ("{{ nosuchfunction() }}", "Function or Macro [nosuchfunction] does not exist"),
    ("{{ x is nosuchtest }}", "Wrong operand [nosuchtest] for test"),
    ("{% if true %}x", "unclosed `if` tag"),
    ("{% endif %}", "unexpected `endif`"),
    ("{% macro m() %}{% endmacro %}", "Unexpected tag name [macro]"),
    ("{{ a ? b }}", "expected `:`"),
    ("{{ (1 }}", "unexpected `}`"),
])
def test_syntax_errors(template: str, fragment: str) -> None:
    with pytest.raises(ExpressionError) as info:
        R.render(template, {"x": 1, "a": 1, "b": 2})
    assert fragment in str(info.value)
    assert f"`{template}`" in str(info.value)


def test_long_operator_chains_stay_flat() -> None:
    n = 150
    assert R.render("{{ " + " ~ ".join(["x"] * n) + " }}", {"x": "a"}) == "a" * n
    assert R.render("{{ " + " and ".join(["x"] * n) + " }}", {"x": True}) == "true"
    assert R.render("{{ " + " or ".join(["x"] * n) + " }}", {"x": False}) == "false"
    assert R.render("{{ " + " + ".join(["1"] * n) + " - 1 * 4 / 2 % 3 }}", {}) == str(n - 2)
    assert R.render("{{ " + " ?? ".join(["a.b"] * 100) + " ?? 'last' }}", {}) == "last"
    assert R.render("{{ a ?? b ??? c }}|{{ a ??? b ?? c }}|{{ a ?? b ?? c }}", {"b": None, "c": "C"}) == "|C|C"


def test_absurdly_nested_expressions_fail_cleanly() -> None:
    with pytest.raises(ExpressionError, match="nested too deeply"):
        R.render("{{ " + "(" * 5000 + "1" + ")" * 5000 + " }}", {})


def test_validate_compiles_without_rendering() -> None:
    R.validate("{{ never.defined.anywhere }}")
    with pytest.raises(ExpressionError):
        R.validate("{{ 1 + }}")


#### Printing rules #########################################################################################

@pytest.mark.parametrize(("value", "expected"), [
    (None, ""), (True, "true"), (False, "false"), (0, "0"), (-12, "-12"), (1.0, "1.0"), (0.1, "0.1"),
    (1.5e-4, "1.5E-4"), (1e20, "1.0E20"), (12345678.9, "1.23456789E7"), (1234567.0, "1234567.0"),
    (float("nan"), "NaN"), (float("inf"), "Infinity"), (Decimal("1.50"), "1.50"), ("s", "s"),
    ({"a": 1, "b": [1, 2], "c": None, "d": True, "é": "ü"}, '{"a":1,"b":[1,2],"c":null,"d":true,"é":"ü"}'),
    ([1.0, 1e20, "x"], '[1.0,1.0E20,"x"]'), ((1, 2), "[1,2]"),
    (dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc), "2024-01-02T03:04:05Z"),
    (dt.datetime(2024, 1, 2, 3, 4, 5, 120000, tzinfo=dt.timezone(dt.timedelta(hours=2))), "2024-01-02T01:04:05.120Z"),
    (dt.datetime(2024, 1, 2, 3, 4, 5, 123456), "2024-01-02T03:04:05.123456"),
    (dt.date(2024, 1, 2), "2024-01-02"),
    ({"when": dt.datetime(2024, 1, 2, tzinfo=dt.timezone.utc)}, '{"when":"2024-01-02T00:00:00Z"}'),
])
def test_to_output_string(value, expected: str) -> None:
    assert to_output_string(value) == expected


def test_rendered_values_follow_print_rules() -> None:
    variables = {"m": {"a": [1, {"b": None}]}, "t": True, "none": None, "f": 3.0}
    assert R.render("{{ m }}|{{ t }}|{{ none }}|{{ f }}", variables) == '{"a":[1,{"b":null}]}|true||3.0'


#### Typed rendering ########################################################################################

def test_render_typed_returns_native_values_for_a_single_expression() -> None:
    assert typed("{{ inputs.m }}") == {"a": 1, "b": [1, 2]}
    assert typed("  {{ inputs.x + 1 }}\n") == 2
    assert typed("{{ inputs.flag }}") is True
    assert typed("{{ inputs.nul }}") is None
    assert typed("{{ [1, 'a'] }}") == [1, "a"]
    assert typed("{{ 1.5 }}") == 1.5


def test_render_typed_falls_back_to_string() -> None:
    assert typed("x{{ inputs.x }}") == "x1"
    assert typed("{{ inputs.x }}{{ inputs.x }}") == "11"
    assert typed("{% if true %}{{ inputs.x }}{% endif %}") == "1"
    assert typed("plain") == "plain"
    assert typed(42) == 42


def test_render_typed_strict_undefined() -> None:
    with pytest.raises(ExpressionError, match=r"Unable to find `nope` used in the expression `\n{{ inputs.nope }}` at line 2"):
        typed("\n{{ inputs.nope }}")


#### Recursive value rendering ##############################################################################

def test_render_value_renders_nested_strings_and_keys() -> None:
    value = {"{{ inputs.s }}": ["{{ inputs.x }}", 5, {"k": "{{ inputs.m }}"}], "n": None, "t": ("{{ n }}",)}
    assert R.render_value(value, VARS) == {"abc": ["1", 5, {"k": '{"a":1,"b":[1,2]}'}], "n": None, "t": ["7"]}


def test_render_value_typed_keeps_native_leaves() -> None:
    value = {"{{ inputs.s }}": ["{{ inputs.x }}", "x{{ inputs.x }}"], "m": "{{ inputs.m }}"}
    assert R.render_value_typed(value, VARS) == {"abc": [1, "x1"], "m": {"a": 1, "b": [1, 2]}}


#### Truthiness #############################################################################################

@pytest.mark.parametrize("value", [None, False, 0, "", "false", " false ", "0", "-0", " -0\n", "  "])
def test_falsy(value) -> None:
    assert is_truthy(value) is False


@pytest.mark.parametrize("value", [True, 1, "true", "yes", "1", "abc", [], {}, "null", "False", "FALSE", 0.0,
                                   "0.0", -0.0, "no"])
def test_truthy(value) -> None:
    assert is_truthy(value) is True


#### Cache ##################################################################################################

def test_templates_are_compiled_once_and_the_cache_is_bounded() -> None:
    renderer = Renderer(cache_size=3)
    for _ in range(5):
        renderer.render("{{ a }}", {"a": 1})
    info = renderer.cache_info()
    assert (info.misses, info.hits) == (1, 4)
    for i in range(5):
        renderer.render(f"{{{{ a }}}}{i}", {"a": 1})
    assert renderer.cache_info().currsize == 3
    renderer.render("{{ a }}", {"a": 1})
    assert renderer.cache_info().misses == 7            # evicted, compiled again


def test_cached_template_renders_with_new_variables() -> None:
    renderer = Renderer()
    assert renderer.render("{{ a }}", {"a": 1}) == "1"
    assert renderer.render("{{ a }}", {"a": "two"}) == "two"


#### Sandbox ################################################################################################

@pytest.mark.parametrize("template", [
    "{{ ''.__class__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ inputs.__class__ }}",
    "{{ __falconet__ }}",
    "{{ __f_eq }}",
    "{{ inputs['__class__'] }}",
    "{{ inputs.s.upper() }}",
    "{{ inputs.m.items }}",
    "{{ list.append }}",
    "{{ loop }}",
    "{{ x.mro }}",
])
def test_sandbox_escape_attempts_fail(template: str) -> None:
    with pytest.raises(ExpressionError):
        R.render(template, {**VARS, "x": int, "__falconet__": object()})


@pytest.mark.parametrize(("template", "fragment"), [
    ("{{ 'a' * 1000000 }}", "invalid operands for a mathematical operation"),
    ("{{ [1] * 1000000 }}", "invalid operands for a mathematical operation"),
    ("{{ true + 1 }}", "invalid operands for a mathematical operation"),
    ("{{ inputs.m - 1 }}", "invalid operands for a mathematical operation"),
    ("{{ 1..100000000 }}", "more than the limit"),
    ("{{ range(0, 100000000) }}", "more than the limit"),
    ("{{ 1 / 0 }}", "/ by zero"),
    ("{{ 1 % 0 }}", "/ by zero"),
    ("{{ 'a' < 1 }}", "not supported between"),
])
def test_operations_that_cannot_be_computed_fail_cleanly(template: str, fragment: str) -> None:
    with pytest.raises(ExpressionError) as info:
        render(template)
    assert fragment in str(info.value)
    assert str(info.value).endswith(f"({template}:1)")


def test_float_division_by_zero_is_infinite_like_java() -> None:
    assert render("{{ 1.0 / 0 }} {{ -1.0 / 0 }}") == "Infinity -Infinity"


def test_variables_cannot_shadow_helpers_or_functions() -> None:
    variables = {"__f_eq": lambda a, b: True, "__f_fn_uuid": lambda: "fake", "uuid": "var"}
    assert R.render("{{ 1 == 2 }} {{ uuid() | length }} {{ uuid }}", variables) == "false 36 var"
