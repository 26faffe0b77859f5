"""Flow validation parses every template and reports YAML errors where they start (CLI and parser)."""
from __future__ import annotations

import pytest

from falconet.cli import main
from falconet.runtime.kernel.errors import FlowValidationError
from falconet.runtime.flow.parsing import parse_flow, validate_flow_source

BROKEN = """id: broken
namespace: company.team
description: "Documentation may show {{ inputs.x | }} without being rendered"
inputs:
  - id: x
    type: STRING
    defaults: "{{ 'a' ~ }}"
tasks:
  - id: ok
    type: io.kestra.plugin.core.log.Log
    message: "{{ inputs.x }}"
  - id: log
    type: io.kestra.plugin.core.log.Log
    message: "{{ inputs.x | }}"
  - id: script
    type: io.kestra.plugin.scripts.shell.Commands
    commands:
      - echo fine
      - echo "{{ inputs.x | nosuchfilter }}"
"""


def test_every_broken_template_is_a_violation_with_its_property_and_line():
    with pytest.raises(FlowValidationError) as err:
        parse_flow(BROKEN)
    found = [(v.path, v.line, v.message) for v in err.value.violations]
    assert [(path, line) for path, line, _ in found] == [
        ("inputs[0].defaults", 7), ("tasks[1].message", 14), ("tasks[2].commands[1]", 19)]
    assert found[1][2] == ("Unable to parse the expression `{{ inputs.x | }}`: "
                           "unexpected end of expression, expected a name at line 1 (line 14)")
    assert "Filter [nosuchfilter] does not exist" in found[2][2]


def test_validate_endpoint_body_names_property_and_line():
    result = validate_flow_source(BROKEN)[0]
    assert result["constraints"].splitlines()[1] == (
        "tasks[1].message: Unable to parse the expression `{{ inputs.x | }}`: "
        "unexpected end of expression, expected a name at line 1 (line 14)")


def test_cli_validate_reports_file_line_and_property(tmp_path, capsys):
    path = tmp_path / "broken.yaml"
    path.write_text(BROKEN)
    assert main(["flow", "validate", str(path)]) == 1
    out = capsys.readouterr().out
    assert f"{path}:14: tasks[1].message: Unable to parse the expression `{{{{ inputs.x | }}}}`" in out


@pytest.mark.parametrize("source,line", [
    # an unclosed quote: reported where the quote opens, not at the end of the file
    ('id: a\nnamespace: b\ntasks:\n  - id: t\n    type: io.kestra.plugin.core.log.Log\n'
     '    message: "hello\n  - id: u\n    type: x\n\n\n\n', 6),
    # an unclosed bracket: where it opens
    ("id: a\nnamespace: b\ntasks: [\n  {id: t, type: x},\n\n\n\n\n", 3),
    ("id: a\nnamespace: b\nlabels: {a: b\ntasks:\n  - id: t\n    type: x\n\n\n", 3),
    # a bad indentation: the line itself
    ("id: a\nnamespace: b\ntasks:\n  - id: t\n    type: x\n   message: hi\n  - id: u\n\n\n", 6),
])
def test_bad_yaml_is_reported_where_the_problem_starts(source, line):
    with pytest.raises(FlowValidationError) as err:
        parse_flow(source)
    assert [v.line for v in err.value.violations] == [line]
    assert validate_flow_source(source)[0]["constraints"].endswith(f"(line {line})")


def test_kestra_flow_with_a_broken_expression_is_rejected():
    """Kestra's own flowable-with-parent-fail.yaml holds a broken condition to check that the task fails at
    run time; Falconet rejects it when the flow is validated."""
    source = """id: flowable-with-parent-fail
namespace: io.kestra.tests
tasks:
  - id: if
    type: io.kestra.plugin.core.flow.If
    condition: "{{parents[0].taskrun.value == 'CUMULATIVE' and {% for entry in json(taskrun.value) %}{{ entry.key }}{% endfor %}== 'NEW_MONTH'}}"
    then:
      - id: when-true
        type: io.kestra.plugin.core.log.Log
        message: 'Condition was true'
"""
    with pytest.raises(FlowValidationError) as err:
        parse_flow(source)
    assert [(v.path, v.line) for v in err.value.violations] == [("tasks[0].condition", 6)]
