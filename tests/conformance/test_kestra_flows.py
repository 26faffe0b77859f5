"""Kestra's own test flows (``kestra-flows`` of the conformance suite): every valid flow parses, every invalid
one is rejected with Kestra's messages, and every expression they contain compiles."""
from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

from falconet.runtime.kernel.errors import FlowValidationError
from falconet.runtime.expr.render import ExpressionError, Renderer


def _load_test_flows() -> Any:
    """tests/test_flows.py's registry and helpers (imported by file path, --import-mode=importlib)."""
    spec = importlib.util.spec_from_file_location("_falconet_test_flows", Path(__file__).parents[1] / "test_flows.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


FLOWS = _load_test_flows()

EXPECTED_INVALID = {
    "dag-cyclicdependency.yaml": ["Cyclic dependency detected: task1, task2"],
    "dag-notexist-task.yaml": ["Not existing task id in dependency: taskX"],
    "duplicate-inputs.yaml": ["Duplicate input with name [first_input]"],
    "duplicate-key.yaml": ["Duplicate field 'variables.tf'"],
    "duplicate-parallel.yaml": ["Duplicate task id with name [t3]"],
    "duplicate.yaml": ["Duplicate task id with name [date, listen]", "Duplicate trigger id with name [trigger]"],
    "empty.yaml": ["must not be empty"],
    "inputs-bad-type.yaml": ["Invalid type: FOO"],
    "inputs-bad-validator-syntax.yaml": ["Invalid regex"],
    "inputs-validation.yaml": ["no `defaults` can be set for inputs of type 'FILE'", "`itemType` cannot be `ARRAY`"],
    "inputs.yaml": ["missing type id property 'type'", "must match"],
    "invalid-parallel.yaml": ["must not be empty"],
    "invalid-property.yaml": ['Unrecognized field "invalid"'],
    "invalid-task.yaml": ["Invalid type: io.kestra.plugin.core.debug.MissingOne",
                          "Invalid type: io.kestra.plugin.core.debug.MissingTwo",
                          "Invalid type: io.kestra.plugin.core.debug.MissingThree"],
    "invalid.yaml": ['must match "^[a-zA-Z0-9][a-zA-Z0-9._-]*"', 'must match "^[a-z0-9][a-z0-9._-]*"',
                     "must not be null"],
    "listener.yaml": ["must not be empty"],
    "recursive-flow.yaml": ["Recursive call to flow [io.kestra.tests.recursive-flow]"],
    "switch-invalid.yaml": ["No task defined, neither cases or default have any tasks"],
    "system-labels.yaml": ["offending label: system.label=system_key", "offending label: system.id=id"],
    "worker-group.yaml": ["Worker Group is an Enterprise Edition functionality"],
    "workingdirectory-invalid.yaml": ["Only runnable tasks are allowed as children of a WorkingDirectory task"],
    "workingdirectory-no-tasks.yaml": ["The 'tasks' property cannot be empty"],
}

# Expressions that are invalid in Kestra too: the flow exists to check that the task fails.
KNOWN_INVALID_EXPRESSIONS = {
    "flowable-with-parent-fail.yaml":
        "{{parents[0].taskrun.value == 'CUMULATIVE' and {% for entry in json(taskrun.value) %}"
        "{{ entry.key }}{% endfor %}== 'NEW_MONTH'}}",
}


#### flows ##################################################################################################

def test_kestra_valid_flow_parses(kestra_valid_flow: Path):
    # the flow-level pluginDefaults types of plugin-defaults.yaml are Java test classes
    missing = sorted(t for t in FLOWS._types_in(kestra_valid_flow) if t not in FLOWS.REGISTRY and not t.isupper())
    if missing:
        pytest.skip(f"unregistered types: {', '.join(missing)}")
    flow = FLOWS.parse(kestra_valid_flow.read_text(), filename=str(kestra_valid_flow))
    assert flow.id and flow.namespace
    assert flow.tasks or flow.triggers


def test_every_invalid_file_has_an_expectation(conformance_suite: Path):
    names = sorted(p.name for p in (conformance_suite / "kestra-flows" / "invalids").glob("*.yaml"))
    assert names == sorted(EXPECTED_INVALID)


def test_kestra_invalid_flow_is_rejected(kestra_invalid_flow: Path):
    name = kestra_invalid_flow.name
    with pytest.raises(FlowValidationError) as info:
        FLOWS.parse(kestra_invalid_flow.read_text(), filename=name)
    text = str(info.value)
    for expected in EXPECTED_INVALID[name]:
        assert expected in text
    assert info.value.filename == name
    assert all(v.line is not None and v.line >= 1 for v in info.value.violations)


def test_invalid_task_defaults_are_validated(conformance_suite: Path):
    text = (conformance_suite / "kestra-flows" / "tests" / "invalid-task-defaults.yaml").read_text()
    vs = FLOWS.violations(text)
    assert [(v.path, v.message) for v in vs] == [("tasks[0].invalid", 'Unrecognized field "invalid"')]


#### expressions ############################################################################################

def _templates(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        if "{{" in value or "{%" in value:
            yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _templates(key)
            yield from _templates(item)
    elif isinstance(value, list):
        for item in value:
            yield from _templates(item)


def test_the_valid_flows_contain_many_expressions(conformance_suite: Path):
    found = [t for p in (conformance_suite / "kestra-flows" / "valids").glob("*.y*ml")
             for doc in yaml.safe_load_all(p.read_text()) for t in _templates(doc)]
    assert len(found) > 300 and len(set(found)) > 150


def test_every_flow_expression_compiles(kestra_expression_flow: Path):
    renderer = Renderer()
    broken = []
    for doc in yaml.safe_load_all(kestra_expression_flow.read_text()):
        for template in _templates(doc):
            if KNOWN_INVALID_EXPRESSIONS.get(kestra_expression_flow.name) == template:
                with pytest.raises(ExpressionError, match="Unable to parse the expression"):
                    renderer.validate(template)
                continue
            try:
                renderer.validate(template)
            except ExpressionError as exc:
                broken.append(f"{template!r}: {exc}")
    assert not broken, "\n".join(broken)
