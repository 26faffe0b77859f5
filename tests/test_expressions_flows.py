"""Representative expressions of Kestra's test flows render with the variables the engine provides;
tests/conformance/test_kestra_flows.py compiles every expression of those flows when they are present."""
from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from falconet.runtime.expr.render import HOOKS_KEY, DefaultHooks, ExpressionError, Renderer


#### Rendering with engine-shaped variables #################################################################

def _variables() -> dict[str, Any]:
    return {
        "flow": {"id": "each-sequential", "namespace": "io.kestra.tests", "revision": 1, "tenantId": "main"},
        "execution": {"id": "5mF8EOQ1ce0rCaBWiXKmTl", "startDate": dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc),
                      "originalId": "5mF8EOQ1ce0rCaBWiXKmTl"},
        "task": {"id": "t2", "type": "io.kestra.plugin.core.debug.Return"},
        "taskrun": {"id": "tr-1", "value": "value 2", "attemptsCount": 1, "startDate": "2024-01-02T03:04:06Z"},
        "parents": [{"taskrun": {"value": "s1"}}, {"taskrun": {"value": "a a"}}],
        "parent": {"taskrun": {"value": "s1"}},
        "inputs": {"string": "myString", "int": 42, "float": 42.42, "instant": "2019-10-06T18:27:49Z",
                   "json": {"a": "b"}, "array": [1, 2], "failed": "NONE", "emptyKey": {"foo": "bar"},
                   "from-parent": "p", "optional": None},
        "outputs": {"return": {"value": "42"}, "t2": {"value": "v2"},
                    "1-2-1_return": {"s1": {"a a": {"value": "deep"}, "value 2": {"value": "v"}}},
                    "state": {"data": {"value": 1}}, "pause": {"onResume": {"asked": None}},
                    "output_values": {"values": {"count": "4"}}},
        "labels": {"some": "label", "system": {"correlationId": "c1"}},
        "vars": {"first": "1", "second": "{{ vars.first }}", "third": "{{ render(vars.second) }}"},
        "envs": {"test1": "true"},
        "globals": {"string": "string", "int": 1, "bool": True, "nested": {"int": 2}},
        "trigger": {"executionId": "x", "state": "SUCCESS"},
        "ko": "ko",
        HOOKS_KEY: DefaultHooks(environ={}),
    }


@pytest.mark.parametrize(("template", "expected"), [
    ("{{ outputs['1-2-1_return'].s1[parents[1].taskrun.value].value }}", "deep"),
    ("{{outputs['1-2-1_return'].s1['a a'].value}}", "deep"),
    ("{{ outputs['1-2-1_return']['s1'][taskrun.value].value }}", "v"),
    ("{{ (outputs.state.data.value ?? 0) == 0 ? 'create' : ( outputs.state.data.value == 1 ? 'update' : 'delete') }}",
     "update"),
    ("{{ (inputs.failed ?? 'NONE') == 'FIRST' ? ko : '0'}}", "0"),
    ("{{ inputs.failed == 'true' ? ko: taskrun.id }}", "tr-1"),
    ("{{ taskrun.attemptsCount == 1 ? 'ok' : ko}}", "ok"),
    ("{{ taskrun.value equals 'value 2' }}", "true"),
    ("{{ taskrun.value is json }}", "false"),
    ("{{ outputs.pause.onResume.asked ?? 'MISSING' }}", "MISSING"),
    ("{{ outputs.not_existing ?? '' }}", ""),
    ("{{ outputs.output_values.values.count == '4'}}", "true"),
    ("{{ inputs['emptyKey']['foo'] }}", "bar"),
    ("{{ flow.namespace ~ '.' ~ flow.id }}", "io.kestra.tests.each-sequential"),
    ("{{ execution.startDate }}", "2024-01-02T03:04:05Z"),
    ("{{ labels.system.correlationId }}", "c1"),
    ("{{ globals.nested.int }} {{ globals.bool }} {{ envs.test1 }}", "2 true true"),
    ("{{ parent.taskrun.value == 'value 1' ? 'ok' : ko }}", "ko"),
    ("{{ inputs.json }}", '{"a":"b"}'),
    ("{{ render(vars.third) }}", "1"),
    ("{{ trigger | json }}", '{"executionId":"x","state":"SUCCESS"}'),
    ("{{ inputs.crash is defined }}", "false"),
])
def test_flow_expressions_render_like_kestra(template: str, expected: str) -> None:
    assert Renderer().render(template, _variables()) == expected


@pytest.mark.parametrize(("template", "name"), [
    ("{{inputs.invalid}}", "invalid"), ("{{ outputs.invalid.value }}", "invalid"), ("{{missingVar}}", "missingVar"),
    ("{{ outputs.notexists == 2 }}", "notexists"),
])
def test_flow_expressions_that_must_fail(template: str, name: str) -> None:
    with pytest.raises(ExpressionError) as info:
        Renderer().render(template, _variables())
    assert str(info.value) == f"Unable to find `{name}` used in the expression `{template}` at line 1"
