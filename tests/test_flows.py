"""Flow parsing and validation: the project's valid and invalid flows (tests/flows), lines, aliases, pluginDefaults."""
from __future__ import annotations

import importlib
import re
from datetime import timedelta
from pathlib import Path

import pytest

from falconet.sdk import plugin as P
from falconet.runtime.kernel.errors import FlowValidationError
from falconet.runtime.flow.model import ConditionSpec, DagEntry
from falconet.runtime.flow.parsing import parse_flow, validate_flow_source

FLOWS = Path(__file__).with_name("flows")


def _builtin_registry() -> P.Registry:
    """A fresh registry holding every built-in plugin type whose module exists today."""
    from falconet import plugins

    for mod in plugins.BUILTIN_MODULES:
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as exc:
            if exc.name != mod and (exc.name or "").split(".")[0] not in plugins.OPTIONAL_DEPENDENCIES:
                raise
    reg = P.Registry()
    for cls in P.registry.canonical().values():
        reg.register(cls)
    return reg


REGISTRY = _builtin_registry()


def parse(source: str, **kw):
    return parse_flow(source, registry=kw.pop("registry", REGISTRY), **kw)


def violations(source: str, **kw) -> list:
    with pytest.raises(FlowValidationError) as info:
        parse(source, **kw)
    return info.value.violations


def _types_in(path: Path) -> set[str]:
    """Every task/trigger/condition type named in a flow file."""
    from falconet.runtime.flow.parse.yamlload import load_documents

    found: set[str] = set()

    def walk(v):
        if isinstance(v, dict):
            t = v.get("type")
            if isinstance(t, str) and "." in t:
                found.add(t)
            for x in v.values():
                walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)

    for doc in load_documents(path.read_text()):
        walk(doc.value)
    return found


#### the project's flows (tests/flows) #####################################################################
# Kestra's own flow files are checked the same way by tests/conformance/test_kestra_flows.py when present.

VALID_FILES = [*sorted((FLOWS / "valid").glob("*.yaml")), FLOWS / "inputs.yaml", FLOWS / "pause-on-resume.yaml"]
INVALID_FILES = sorted((FLOWS / "invalid").glob("*.yaml"))


def expected_messages(path: Path) -> list[str]:
    """The ``# expect: <text>`` lines at the top of an invalid flow file."""
    return re.findall(r"^# expect: (.*)$", path.read_text(), re.MULTILINE)


@pytest.mark.parametrize("path", VALID_FILES, ids=lambda p: p.name)
def test_valid_flow_parses(path: Path):
    missing = sorted(t for t in _types_in(path) if t not in REGISTRY)
    if missing:     # only the plugins of an optional extra that is not installed (duckdb, postgresql)
        from falconet.plugins import OPTIONAL_DEPENDENCIES

        assert all(set(OPTIONAL_DEPENDENCIES.values()) & set(t.split(".")) for t in missing), missing
        pytest.skip(f"optional plugins not installed: {', '.join(missing)}")
    flow = parse(path.read_text(), filename=str(path))
    assert flow.id and flow.namespace and flow.tasks


def test_valid_flows_use_every_builtin_type():
    used = {REGISTRY.get(t).type for p in VALID_FILES for t in _types_in(p) if t in REGISTRY}
    builtin = {t for t, cls in REGISTRY.canonical().items() if cls.__module__.startswith("falconet.")}
    assert sorted(builtin - used) == []


@pytest.mark.parametrize("path", INVALID_FILES, ids=lambda p: p.name)
def test_invalid_flow_is_rejected(path: Path):
    expected = expected_messages(path)
    assert expected, f"{path.name} has no '# expect:' line"
    with pytest.raises(FlowValidationError) as info:
        parse(path.read_text(), filename=path.name)
    text = str(info.value)
    for message in expected:
        assert message in text
    assert info.value.filename == path.name
    assert all(v.line is not None and v.line >= 1 for v in info.value.violations)


def test_invalid_task_defaults_are_validated():
    vs = violations((FLOWS / "invalid" / "plugin-defaults-unknown-property.yaml").read_text())
    assert [(v.path, v.message) for v in vs] == [("tasks[0].invalid", 'Unrecognized field "invalid"')]


#### Lines and paths ########################################################################################

def test_violation_names_path_and_line():
    src = ("id: f\nnamespace: ns\ntasks:\n  - id: a\n    type: io.kestra.plugin.core.log.Log\n    message: hi\n"
           "  - id: bad id\n    type: io.kestra.plugin.core.log.Log\n    message: hi\n")
    [v] = violations(src)
    assert (v.path, v.line) == ("tasks[1].id", 7)
    assert "must match" in v.message


def test_unknown_type_is_a_violation_not_a_crash():
    src = "id: f\nnamespace: ns\ntasks:\n  - id: a\n    type: com.example.Nope\n"
    [v] = violations(src)
    assert (v.path, v.message, v.line) == ("tasks[0].type", "Invalid type: com.example.Nope", 5)


def test_yaml_syntax_error_names_line():
    [v] = violations("id: f\nnamespace: ns\ntasks: [\n")
    assert v.message.startswith("Invalid YAML") and v.line is not None


def test_empty_source_is_invalid():
    [v] = violations("")
    assert "Invalid empty flow" in v.message


def test_several_documents_refused_by_parse_flow():
    [v] = violations("id: a\n---\nid: b\n")
    assert "single YAML document" in v.message


def test_yaml_scalars_follow_the_core_schema():
    src = ("id: f\nnamespace: ns\nvariables:\n  d: 2023-01-01\n  t: 11:27:49\n  y: yes\n  n: 12\n"
           "tasks:\n  - id: a\n    type: io.kestra.plugin.core.log.Log\n    message: hi\n")
    assert parse(src).variables == {"d": "2023-01-01", "t": "11:27:49", "y": "yes", "n": 12}


#### Tasks ##################################################################################################

MINI = "id: f\nnamespace: io.ns\ntasks:\n{tasks}"


def _flow(tasks_yaml: str, extra: str = "", **kw):
    return parse(MINI.format(tasks=tasks_yaml) + extra, **kw)


def test_alias_resolves_to_canonical_type():
    flow = _flow("  - id: a\n    type: io.kestra.core.tasks.flows.Sequential\n    tasks:\n"
                 "      - id: b\n        type: io.kestra.core.tasks.log.Log\n        message: x\n")
    seq = flow.tasks[0]
    assert (seq.type, seq.written_type) == ("io.kestra.plugin.core.flow.Sequential", "io.kestra.core.tasks.flows.Sequential")
    assert seq.props["tasks"][0].type == "io.kestra.plugin.core.log.Log"
    assert [t.id for t in flow.all_tasks()] == ["a", "b"]


def test_common_task_properties():
    flow = _flow("  - id: a\n    type: io.kestra.plugin.core.log.Log\n    message: x\n    timeout: PT1M\n"
                 "    disabled: true\n    allowFailure: true\n    allowWarning: true\n    runIf: \"{{ true }}\"\n"
                 "    logLevel: WARN\n    description: d\n    logToFile: true\n"
                 "    retry:\n      type: exponential\n      maxAttempts: 3\n      interval: PT1S\n      maxInterval: PT10S\n")
    t = flow.tasks[0]
    assert (t.timeout, t.disabled, t.allow_failure, t.allow_warning, t.run_if, t.log_level, t.description) == \
        ("PT1M", True, True, True, "{{ true }}", "WARN", "d")
    assert t.retry.type == "exponential" and t.retry.max_attempt == 3
    assert (t.retry.interval, t.retry.max_interval, t.retry.delay_factor) == \
        (timedelta(seconds=1), timedelta(seconds=10), 2.0)
    assert "timeout" not in t.props and t.props == {"message": "x"}


@pytest.mark.parametrize("retry, message", [
    ("type: constant\n      maxAttempt: 2", "tasks[0].retry.interval: must not be null"),
    ("type: random\n      minInterval: PT1S", "tasks[0].retry.maxInterval: must not be null"),
    ("type: weird\n      interval: PT1S", "tasks[0].retry.type: Invalid value `weird`"),
    ("type: [1]\n      interval: PT1S", "tasks[0].retry.type: Invalid value `[1]`"),
    ("type: constant\n      interval: soon", "tasks[0].retry.interval: Invalid duration `soon`"),
    ("type: constant\n      interval: PT1S\n      maxAttempt: 0", "tasks[0].retry.maxAttempt: must be greater"),
])
def test_bad_retry(retry: str, message: str):
    vs = violations(MINI.format(tasks=f"  - id: a\n    type: io.kestra.plugin.core.log.Log\n    message: x\n"
                                      f"    retry:\n      {retry}\n"))
    assert any(str(v).startswith(message) for v in vs), vs


@pytest.mark.parametrize("prop, message", [
    ("concurrent: many", "tasks[0].concurrent: Invalid value `many`: expected an integer"),
    ("concurrent: [1]", "tasks[0].concurrent: Invalid value `[1]`: expected an integer"),
])
def test_scalar_kinds_are_checked(prop: str, message: str):
    vs = violations(MINI.format(tasks=f"  - id: p\n    type: io.kestra.plugin.core.flow.Parallel\n    {prop}\n"
                                      "    tasks:\n      - id: a\n        type: io.kestra.plugin.core.log.Log\n"
                                      "        message: x\n"))
    assert [str(v) for v in vs] == [message]


def test_expressions_pass_scalar_checks_for_dynamic_props():
    flow = _flow("  - id: p\n    type: io.kestra.plugin.core.flow.Pause\n    delay: \"{{ inputs.d }}\"\n")
    assert flow.tasks[0].props["delay"] == "{{ inputs.d }}"
    vs = violations(MINI.format(tasks="  - id: p\n    type: io.kestra.plugin.core.flow.Pause\n    delay: later\n"))
    assert [v.path for v in vs] == ["tasks[0].delay"]


def test_enum_values_checked():
    vs = violations(MINI.format(tasks="  - id: p\n    type: io.kestra.plugin.core.log.Log\n    message: x\n"
                                      "    logLevel: LOUD\n"))
    assert [str(v) for v in vs] == ["tasks[0].logLevel: Invalid value `LOUD`: must be one of "
                                    "[TRACE, DEBUG, INFO, WARN, ERROR]"]


def test_required_prop_missing():
    vs = violations(MINI.format(tasks="  - id: s\n    type: io.kestra.plugin.core.flow.Sleep\n"))
    assert [str(v) for v in vs] == ["tasks[0].duration: must not be null"]


def test_dag_entries_and_switch_cases():
    flow = _flow("  - id: d\n    type: io.kestra.plugin.core.flow.Dag\n    tasks:\n"
                 "      - task:\n          id: a\n          type: io.kestra.plugin.core.log.Log\n          message: x\n"
                 "      - task:\n          id: b\n          type: io.kestra.plugin.core.log.Log\n          message: x\n"
                 "        dependsOn: [a]\n"
                 "  - id: s\n    type: io.kestra.plugin.core.flow.Switch\n    value: \"{{ inputs.x }}\"\n"
                 "    cases:\n      1:\n        - id: c\n          type: io.kestra.plugin.core.log.Log\n"
                 "          message: x\n")
    dag, switch = flow.tasks
    assert [(e.task.id, e.depends_on) for e in dag.props["tasks"]] == [("a", ()), ("b", ("a",))]
    assert isinstance(dag.props["tasks"][0], DagEntry)
    assert list(switch.props["cases"]) == ["1"]
    assert [name for name, _ in switch.child_lists()] == ["cases.1"]
    assert flow.find_task("c").id == "c"


def test_errors_and_finally_on_flowables_are_walked():
    flow = _flow("  - id: s\n    type: io.kestra.plugin.core.flow.Sequential\n    tasks:\n"
                 "      - id: a\n        type: io.kestra.plugin.core.log.Log\n        message: x\n"
                 "    errors:\n      - id: e\n        type: io.kestra.plugin.core.log.Log\n        message: x\n"
                 "    finally:\n      - id: f\n        type: io.kestra.plugin.core.log.Log\n        message: x\n",
                 "finally:\n  - id: g\n    type: io.kestra.plugin.core.log.Log\n    message: x\n"
                 "afterExecution:\n  - id: h\n    type: io.kestra.plugin.core.log.Log\n    message: x\n")
    assert [t.id for t in flow.all_tasks()] == ["s", "a", "e", "f", "g", "h"]


def test_duplicate_ids_across_errors_and_after_execution():
    vs = violations(MINI.format(tasks="  - id: a\n    type: io.kestra.plugin.core.log.Log\n    message: x\n")
                    + "afterExecution:\n  - id: a\n    type: io.kestra.plugin.core.log.Log\n    message: x\n")
    assert [v.message for v in vs] == ["Duplicate task id with name [a]"]


def test_recursive_subflow_only_with_constant_ids():
    sub = "  - id: s\n    type: io.kestra.plugin.core.flow.Subflow\n    namespace: {ns}\n    flowId: f\n"
    assert "Recursive call to flow [io.ns.f]" in [v.message for v in violations(MINI.format(tasks=sub.format(ns="io.ns")))]
    assert _flow(sub.format(ns='"{{ flow.namespace }}"')).tasks[0].props["flowId"] == "f"
    assert _flow(sub.format(ns="other")).tasks[0].props["namespace"] == "other"


#### Flow level #############################################################################################

def test_flow_level_properties():
    src = MINI.format(tasks="  - id: a\n    type: io.kestra.plugin.core.log.Log\n    message: x\n") + (
        "labels:\n  - key: team\n    value: data\n  - key: n\n    value: 1\n"
        "concurrency:\n  limit: 2\n  behavior: CANCEL\n"
        "retry:\n  type: constant\n  maxAttempt: 2\n  interval: PT5S\n"
        "sla:\n  - id: s\n    type: MAX_DURATION\n    duration: PT1H\n    behavior: CANCEL\n"
        "outputs:\n  - id: o\n    type: STRING\n    value: \"{{ outputs.a }}\"\n"
        "variables:\n  v: 1\n"
        "disabled: true\n")
    flow = parse(src, revision=3)
    assert flow.revision == 3 and flow.disabled
    assert flow.labels == [{"key": "team", "value": "data"}, {"key": "n", "value": "1"}]
    assert (flow.concurrency.limit, flow.concurrency.behavior) == (2, "CANCEL")
    assert flow.retry.interval == timedelta(seconds=5)
    assert (flow.sla[0].duration, flow.sla[0].behavior) == (timedelta(hours=1), "CANCEL")
    assert (flow.outputs[0].id, flow.outputs[0].type, flow.outputs[0].value) == ("o", "STRING", "{{ outputs.a }}")
    assert flow.variables == {"v": 1}
    assert flow.source == src
    assert flow.to_dict(source=True)["source"] == src


@pytest.mark.parametrize("extra, message", [
    ("concurrency:\n  limit: 0\n", "concurrency.limit: must be greater than or equal to 1"),
    ("concurrency:\n  behavior: QUEUE\n", "concurrency.limit: must not be null"),
    ("unknownKey: 1\n", 'unknownKey: Unrecognized field "unknownKey"'),
    ("labels: nope\n", "labels: Invalid value: labels must be a map or a list of {key, value}"),
    ("outputs:\n  - id: o\n    type: STRING\n", "outputs[0].value: must not be null"),
    ("outputs:\n  - id: o\n    type: NOPE\n    value: x\n", "outputs[0].type: Invalid type: NOPE"),
    ("outputs:\n  - id: o\n    type: [STRING]\n    value: x\n", "outputs[0].type: Invalid type: ['STRING']"),
])
def test_bad_flow_level_properties(extra: str, message: str):
    vs = violations(MINI.format(tasks="  - id: a\n    type: io.kestra.plugin.core.log.Log\n    message: x\n") + extra)
    assert message in [str(v) for v in vs]


def test_id_and_namespace_limits():
    long_id = "a" * 101
    vs = violations(f"id: {long_id}\nnamespace: Bad\ntasks:\n  - id: a\n    type: io.kestra.plugin.core.log.Log\n"
                    "    message: x\n")
    assert {v.path for v in vs} == {"id", "namespace"}


#### Triggers and conditions ################################################################################

def test_triggers_with_conditions():
    src = MINI.format(tasks="  - id: a\n    type: io.kestra.plugin.core.log.Log\n    message: x\n") + (
        "triggers:\n"
        "  - id: on-upstream\n    type: io.kestra.core.models.triggers.types.Flow\n    stopAfter: [FAILED]\n"
        "    labels:\n      from: trigger\n"
        "    conditions:\n"
        "      - type: io.kestra.core.models.conditions.types.ExecutionStatusCondition\n        in: [SUCCESS]\n"
        "      - id: multi\n        type: io.kestra.plugin.core.condition.MultipleCondition\n        window: P1D\n"
        "        conditions:\n          a:\n            type: io.kestra.plugin.core.condition.ExecutionFlow\n"
        "            namespace: n\n            flowId: f\n"
        "  - id: cron\n    type: io.kestra.plugin.core.trigger.Schedule\n    cron: '0 * * * *'\n    disabled: true\n")
    flow = parse(src)
    upstream, cron = flow.triggers
    assert upstream.type == "io.kestra.plugin.core.trigger.Flow"
    assert (upstream.stop_after, upstream.labels) == (("FAILED",), (("from", "trigger"),))
    status, multi = upstream.conditions
    assert status.type == "io.kestra.plugin.core.condition.ExecutionStatus" and status.props == {"in": ["SUCCESS"]}
    assert isinstance(multi.props["conditions"]["a"], ConditionSpec)
    assert multi.props["conditions"]["a"].props == {"namespace": "n", "flowId": "f"}
    assert cron.disabled and cron.props["cron"] == "0 * * * *" and cron.line is not None


def test_bad_condition_and_trigger():
    src = MINI.format(tasks="  - id: a\n    type: io.kestra.plugin.core.log.Log\n    message: x\n") + (
        "triggers:\n  - id: w\n    type: io.kestra.plugin.core.trigger.Webhook\n"
        "    conditions:\n      - type: io.kestra.plugin.core.condition.ExecutionFlow\n        namespace: n\n")
    assert sorted(str(v) for v in violations(src)) == [
        "triggers[0].conditions[0].flowId: must not be null",
        "triggers[0].key: must not be null",
    ]


#### pluginDefaults #########################################################################################

LOG_TASK = "  - id: a\n    type: io.kestra.plugin.core.log.Log\n    message: x\n"


def test_plugin_defaults_fill_missing_props_only():
    flow = _flow(LOG_TASK + "    level: ERROR\n",
                 "pluginDefaults:\n  - type: io.kestra.plugin.core.log\n    values:\n      level: WARN\n"
                 "      message: default\n")
    assert flow.tasks[0].props == {"message": "x", "level": "ERROR"}
    flow = _flow(LOG_TASK, "taskDefaults:\n  - type: io.kestra.plugin.core.log.Log\n    values:\n      level: WARN\n")
    assert flow.tasks[0].props["level"] == "WARN"


def test_forced_plugin_defaults_override():
    flow = _flow(LOG_TASK, "pluginDefaults:\n  - type: io.kestra.plugin.core.log.Log\n    forced: true\n"
                           "    values:\n      message: forced\n")
    assert flow.tasks[0].props["message"] == "forced"
    assert flow.tasks[0].raw["message"] == "forced"


def test_server_defaults_rank_below_flow_defaults():
    server = [{"type": "io.kestra.plugin.core.log.Log", "values": {"level": "DEBUG", "message": "srv"}}]
    flow = _flow("  - id: a\n    type: io.kestra.plugin.core.log.Log\n",
                 "pluginDefaults:\n  - type: io.kestra.plugin.core.log.Log\n    values:\n      level: WARN\n",
                 plugin_defaults=server)
    assert flow.tasks[0].props == {"level": "WARN", "message": "srv"}
    # the default applies to the canonical type even when the task is written with an alias
    flow = _flow("  - id: a\n    type: io.kestra.core.tasks.log.Log\n", plugin_defaults=server)
    assert flow.tasks[0].props["message"] == "srv"


#### validate_flow_source ###################################################################################

def test_validate_flow_source_reports_each_document():
    good = MINI.format(tasks=LOG_TASK)
    bad = "id: g\nnamespace: io.ns\ntasks:\n  - id: a\n    type: nope.Nope\n"
    result = validate_flow_source(good + "---\n" + bad, registry=REGISTRY)
    assert result[0] == {"index": 0, "flow": "f", "namespace": "io.ns", "deprecationPaths": [], "warnings": [],
                         "infos": []}
    assert result[1]["index"] == 1 and result[1]["flow"] == "g"
    assert result[1]["constraints"] == "tasks[0].type: Invalid type: nope.Nope"


def test_validate_flow_source_never_raises_on_bad_yaml():
    [result] = validate_flow_source("id: [", registry=REGISTRY)
    assert result["constraints"].startswith("Invalid YAML")
