"""Unit tests of the core runnable tasks (log, debug, output, execution, kv) against the RunContext double."""
from __future__ import annotations

import pytest

from falconet.plugins.core import debug, execution, kv, log, output
from falconet.runtime.storage.ionfiles import read_ion_rows
from falconet.runtime.expr.render import is_truthy
from falconet.sdk.plugin import ExecutionUpdatingTask, TaskFailed, registry


#### log ####################################################################################################

async def test_log_single_and_list_messages(run_task):
    out, ctx = await run_task(log.Log, {"message": "hello {{ flow.id }}", "level": "WARN"})
    assert out is None
    assert ctx.logger.lines == [("WARN", "hello flow")]
    _, ctx = await run_task(log.Log, {"message": ["a {{ 1 + 1 }}", "b"]})
    assert ctx.logger.lines == [("INFO", "a 2"), ("INFO", "b")]


async def test_log_rejects_unknown_level(run_task):
    with pytest.raises(TaskFailed, match="Invalid level 'LOUD'"):
        await run_task(log.Log, {"message": "x", "level": "LOUD"})


async def test_log_fetch_writes_ion_rows_filtered(run_task):
    logs = [
        {"executionId": "exec1", "taskId": "a", "level": "INFO", "message": "one"},
        {"executionId": "exec1", "taskId": "b", "level": "DEBUG", "message": "two"},
        {"executionId": "exec1", "taskId": "b", "level": "ERROR", "message": "three"},
        {"executionId": "other", "taskId": "a", "level": "ERROR", "message": "four"},
    ]
    out, ctx = await run_task(log.Fetch, {"tasksId": ["b"]}, logs=logs)
    assert out["size"] == 1
    assert out["uri"].startswith("kestra:///company/team/flow/executions/exec1/tasks/t1/tr1/")
    with open(ctx.storage.local_path(out["uri"]), encoding="utf-8") as f:
        assert [r["message"] for r in read_ion_rows(f)] == ["three"]
    out, _ = await run_task(log.Fetch, {"level": "DEBUG"}, logs=logs)
    assert out["size"] == 3
    out, _ = await run_task(log.Fetch, {"executionId": "other"}, logs=logs)
    assert out["size"] == 1


#### debug ##################################################################################################

async def test_return_value_and_metrics(run_task):
    out, ctx = await run_task(debug.Return, {"format": "{{ task.id }}-{{ 40 + 2 }}"})
    assert out == {"value": "t1-42"}
    counter = [m for m in ctx.metrics if m[0] == "counter"]
    timer = [m for m in ctx.metrics if m[0] == "timer"]
    assert counter == [("counter", "length", 5, {"format": "t1-42"})]
    assert timer[0][1] == "duration" and timer[0][2] >= 0 and timer[0][3] == {"format": "t1-42"}


async def test_return_without_format_is_empty_string(run_task):
    out, ctx = await run_task(debug.Return, {})
    assert out == {"value": ""}
    assert ctx.metrics[0][2] == 0


async def test_echo_logs_at_level(run_task):
    _, ctx = await run_task(debug.Echo, {"format": "x={{ 3 }}", "level": "ERROR"})
    assert ctx.logger.lines == [("ERROR", "x=3")]


#### output #################################################################################################

async def test_output_values_render_strings_like_kestra(run_task):
    # Kestra 0.21 renders the map with runContext.render(Map): string leaves become strings
    # (the WaitFor conformance flows compare `values.count == '4'`).
    out, _ = await run_task(output.OutputValues, {"values": {
        "n": "{{ 1 + 2 }}", "s": "n={{ 1 + 2 }}", "lst": "{{ [1, 2] }}", "lit": 5,
        "nested": {"k": "{{ flow.namespace }}", "m": ["{{ 2 * 2 }}"]}}})
    assert out == {"values": {"n": "3", "s": "n=3", "lst": "[1,2]", "lit": 5,
                              "nested": {"k": "company.team", "m": ["4"]}}}


async def test_output_values_rejects_non_map(run_task):
    with pytest.raises(TaskFailed, match="map"):
        await run_task(output.OutputValues, {"values": ["a"]})


#### execution ##############################################################################################

@pytest.mark.parametrize("value,expected", [
    (None, False), ("false", False), ("0", False), ("-0", False), ("", False), (False, False),
    ("true", True), ("1", True), ("False", True), ("no", True), (True, True), (0.5, True)])
def test_truthiness_is_kestras(value, expected):
    assert is_truthy(value) is expected


async def test_fail_without_condition(run_task):
    with pytest.raises(TaskFailed, match="^Task failure$"):
        await run_task(execution.Fail, {})
    with pytest.raises(TaskFailed, match="^boom flow$"):
        await run_task(execution.Fail, {"errorMessage": "boom {{ flow.id }}"})


async def test_fail_on_condition(run_task, make_ctx):
    out, ctx = await run_task(execution.Fail, {"condition": "{{ 1 > 2 }}", "errorMessage": "nope"})
    assert out is None and ctx.logger.lines == []
    ctx = make_ctx(execution.Fail, {"condition": "{{ 2 > 1 }}", "errorMessage": "bad {{ 7 }}"})
    with pytest.raises(TaskFailed, match="^Fail on a condition$"):
        await execution.Fail().run(ctx)
    assert ctx.logger.lines == [("ERROR", "bad 7")]


async def test_assert_counts_and_message(make_ctx):
    ctx = make_ctx(execution.Assert, {"conditions": ["{{ 1 == 1 }}", "{{ 1 + 1 == 3 }}", "{{ 'x' == 'y' }}"],
                                      "errorMessage": "context {{ flow.id }}"})
    with pytest.raises(TaskFailed) as info:
        await execution.Assert().run(ctx)
    assert str(info.value) == "2 assertions failed!\ncontext flow"
    assert ("ERROR", "Assertion `{{ 1 + 1 == 3 }}` failed!") in ctx.logger.lines
    assert [(m[1], m[2]) for m in ctx.metrics] == [("success", 1), ("failed", 2)]


async def test_assert_all_true_succeeds(run_task):
    out, ctx = await run_task(execution.Assert, {"conditions": ["{{ true }}", "ok"]})
    assert out is None
    assert [(m[1], m[2]) for m in ctx.metrics] == [("success", 2), ("failed", 0)]


def test_labels_and_exit_are_execution_updating_declarations():
    assert issubclass(execution.Labels, ExecutionUpdatingTask)
    assert issubclass(execution.Exit, ExecutionUpdatingTask)
    assert registry.get("io.kestra.core.tasks.executions.Labels") is execution.Labels
    assert execution.Exit.props["state"].values == ("SUCCESS", "WARNING", "KILLED", "FAILED", "CANCELED")


#### kv #####################################################################################################

async def test_kv_set_get_delete_keys(run_task):
    store: dict = {}
    await run_task(kv.Set, {"key": "my_key", "value": "{{ [1, 2] }}"}, kv=store)
    await run_task(kv.Set, {"key": "count", "value": "42", "kvType": "NUMBER", "ttl": "PT5M"}, kv=store)
    await run_task(kv.Set, {"key": "other", "value": "x", "namespace": "else.where"}, kv=store)
    assert store[("company.team", "my_key")]["value"] == [1, 2]
    assert store[("company.team", "count")] == {"value": 42, "type": "NUMBER", "ttl": "PT5M"}
    out, _ = await run_task(kv.Get, {"key": "count"}, kv=store)
    assert out == {"value": 42}
    out, _ = await run_task(kv.GetKeys, {}, kv=store)
    assert out == {"keys": ["count", "my_key"]}
    out, _ = await run_task(kv.GetKeys, {"prefix": "my"}, kv=store)
    assert out == {"keys": ["my_key"]}
    out, _ = await run_task(kv.Delete, {"key": "count"}, kv=store)
    assert out == {"deleted": True}
    out, _ = await run_task(kv.Delete, {"key": "count"}, kv=store)
    assert out == {"deleted": False}
    out, _ = await run_task(kv.Get, {"key": "count"}, kv=store)
    assert out == {"value": None}


async def test_kv_errors(run_task):
    store: dict = {}
    with pytest.raises(TaskFailed, match="No value found for key 'nope' in namespace 'company.team'"):
        await run_task(kv.Get, {"key": "nope", "errorOnMissing": True}, kv=store)
    with pytest.raises(TaskFailed, match="No value found"):
        await run_task(kv.Delete, {"key": "nope", "errorOnMissing": True}, kv=store)
    with pytest.raises(TaskFailed, match="invalid"):
        await run_task(kv.Set, {"key": "bad key!", "value": 1}, kv=store)
    with pytest.raises(TaskFailed, match="kvType NUMBER"):
        await run_task(kv.Set, {"key": "k", "value": "abc", "kvType": "NUMBER"}, kv=store)
    await run_task(kv.Set, {"key": "k", "value": "1"}, kv=store)
    with pytest.raises(TaskFailed, match="overwrite"):
        await run_task(kv.Set, {"key": "k", "value": "2", "overwrite": False}, kv=store)


@pytest.mark.parametrize("kv_type,value,expected", [
    ("STRING", 5, "5"), ("NUMBER", "2.5", 2.5), ("BOOLEAN", "TRUE", True), ("JSON", '{"a": 1}', {"a": 1}),
    ("DATE", "2024-01-31", "2024-01-31"), ("DATETIME", "2024-01-31T10:00:00Z", "2024-01-31T10:00:00Z"),
    ("DURATION", "PT5M", "PT5M")])
def test_kv_coercion(kv_type, value, expected):
    assert kv.coerce_kv_value(value, kv_type) == expected


@pytest.mark.parametrize("kv_type,value", [("BOOLEAN", "yes"), ("DATE", "31/01/2024"), ("DURATION", "5m")])
def test_kv_coercion_errors(kv_type, value):
    with pytest.raises(TaskFailed, match=f"kvType {kv_type}"):
        kv.coerce_kv_value(value, kv_type)
