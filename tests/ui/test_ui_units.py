"""The UI's pure JavaScript helpers, run in Chromium as ES modules (the static files only, no API)."""

from __future__ import annotations

from typing import Any

SRC = """id: hello
namespace: company.team
inputs:
  - id: greeting
    type: STRING
tasks:
  - id: a
    type: io.kestra.plugin.core.log.Log
    message: |
      hi: there
  - id: par
    type: io.kestra.plugin.core.flow.Parallel
    tasks:
      - id: c
        type: io.kestra.plugin.core.log.Log
        message: x # a comment: y
"""


def _module_eval(page: Any, static_url: str, module: str, body: str, arg: Any = None) -> Any:
    page.errors.allow(r"favicon\.ico")  # Chromium asks for /favicon.ico on a bare SVG page
    page.goto(f"{static_url}/ui/assets/favicon.svg")
    return page.evaluate(f"async (arg) => {{ const m = await import('{static_url}/ui/assets/js/{module}'); {body} }}", arg)


def test_validation_paths_map_to_their_yaml_line(bare_page: Any, static_url: str) -> None:
    lines = _module_eval(bare_page, static_url, "editor.js", """
        return ['tasks[0].message', 'tasks[1].tasks[0].message', 'inputs[0].type', 'namespace', 'tasks.1.tasks.0.type', 'tasks[5].id']
          .map((p) => m.locatePath(arg, p)).concat([m.messageLine(arg, 'Invalid YAML at line 7, column 3'), m.messageLine(arg, 'tasks[1].type: bad')]);
    """, SRC)
    assert lines == [9, 16, 5, 2, 15, 6, 7, 12]


def test_line_diff(bare_page: Any, static_url: str) -> None:
    ops = _module_eval(bare_page, static_url, "diff.js", "return m.diffLines(arg[0], arg[1]).map((o) => o.op + o.text);",
                       ["a\nb\nc\nd", "a\nc\nd\ne"])
    assert ops == [" a", "-b", " c", " d", "+e"]
    # a changed line reads as its removal, then its addition (issue 14.3)
    ops = _module_eval(bare_page, static_url, "diff.js", "return m.diffLines(arg[0], arg[1]).map((o) => o.op + o.text);",
                       ["id: x\nmessage: old\nlevel: INFO\nend", "id: x\nmessage: new\nlevel: WARN\nextra\nend"])
    assert ops == [" id: x", "-message: old", "-level: INFO", "+message: new", "+level: WARN", "+extra", " end"]


def test_depends_on_conditions(bare_page: Any, static_url: str) -> None:
    results = _module_eval(bare_page, static_url, "inputs-form.js", """
        const v = { kind: 'csv', n: 3, flag: false, tags: ['x'] };
        const out = ["{{ inputs.kind == 'csv' }}", "{{ inputs.kind != 'csv' }}", "{{ inputs.n > 2 and not inputs.flag }}",
                     "{{ inputs.flag or inputs.kind == 'json' }}", "{{ (inputs.n >= 3) && true }}"].map((c) => m.evalCondition(c, v));
        try { m.evalCondition("{{ inputs.kind | upper == 'CSV' }}", v); out.push('no error'); } catch (e) { out.push('unsupported'); }
        return out;
    """)
    assert results == [True, False, True, False, True, "unsupported"]


def test_human_durations(bare_page: Any, static_url: str) -> None:
    out = _module_eval(bare_page, static_url, "util.js", """
        return [m.humanDuration(12), m.humanDuration(4500), m.humanDuration(123000), m.humanDuration(3723000), m.humanDuration(90061000),
                m.parseIsoDuration('PT1.5S'), m.parseIsoDuration('P1DT2H'), m.parseIsoDuration('nope')];
    """)
    assert out[:5] == ["12ms", "4.50s", "2m 03s", "1h 02m", "1d 1h"]
    assert out[5:7] == [1500, 93600000]
    assert out[7] != out[7]  # NaN
