"""What an execution costs the engine's thread beyond its own work: objects the garbage collector traverses,
cancel scopes, tasks spawned. Counted, not timed (benchmarks/bench_engine.py times them)."""
from __future__ import annotations

import gc
import random
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import trio
import trio.testing

from falconet import open_engine
from falconet.runtime.expr.variables import OutputsCache
from falconet.runtime.kernel.execution import UTC, StateHistory, format_instant
from falconet.runtime.kernel.progress import PERSIST_INTERVAL
from falconet.runtime.kernel.state import State
from falconet.runtime.store import ExecutionQuery
from falconet.sdk.plugin import RunnableTask, register

from .instruments import spawned_tasks


async def test_objects_alive_when_the_first_engine_opens_are_left_out_of_full_collections(tmp_path):
    async with open_engine(tmp_path, store="memory"):
        assert gc.get_freeze_count() > 0
        frozen = gc.get_freeze_count()
    async with open_engine(tmp_path / "again", store="memory"):
        assert gc.get_freeze_count() <= frozen  # once per process: later objects are collected as usual


_THRESHOLDS_AFTER_OPEN = """
import gc, sys, tempfile, trio
from falconet import open_engine
if sys.argv[1] != "default":
    gc.set_threshold(*map(int, sys.argv[1].split(",")))

async def main():
    with tempfile.TemporaryDirectory() as data:
        async with open_engine(data, store="memory"):
            print(",".join(map(str, gc.get_threshold())))

trio.run(main)
"""


def test_the_first_engine_raises_the_collectors_default_thresholds_and_keeps_an_embedders_own():
    import subprocess
    import sys

    from falconet.runtime.kernel.startup import GC_THRESHOLDS

    def after_open(before: str) -> str:
        run = subprocess.run([sys.executable, "-c", _THRESHOLDS_AFTER_OPEN, before], capture_output=True,
                             text=True, timeout=120)
        assert run.returncode == 0, run.stderr
        return run.stdout.strip()

    assert after_open("default") == ",".join(map(str, GC_THRESHOLDS))
    assert after_open("5000,10,10") == "5000,10,10"


SLOW = """id: slow
namespace: t
tasks:
  - id: first
    type: io.kestra.plugin.core.debug.Return
    format: x
  - id: wait
    type: io.kestra.plugin.core.flow.Sleep
    duration: PT10S
"""


async def test_progress_is_written_after_the_persist_interval_without_a_task_per_execution(tmp_path, autojump_clock):
    async with open_engine(tmp_path, store="sqlite") as engine:
        await engine.create_flow(SLOW)
        with spawned_tasks() as spawns:
            created = await engine.execute("t", "slow", wait=False)
            await trio.sleep(PERSIST_INTERVAL * 3)
        await engine.store.flush()
        stored = await engine.store.get_execution(created["id"])
        assert [(tr["taskId"], tr["state"]["current"]) for tr in stored["taskRunList"]] == [
            ("first", "SUCCESS"), ("wait", "RUNNING")]
        # the execution's actor and the Sleep's task-run actor (the Return ran inside the actor's step): its
        # progress is written by the engine's one task
        assert spawns.names == ["falconet.runtime.kernel.engine.Engine._run_actor",
                                "falconet.runtime.kernel.taskrun.TaskRunActor.run"], spawns.names
        ended = await engine.wait_for_end(created["id"])
        assert ended["state"]["current"] == "SUCCESS"


def test_instants_print_as_kestra_prints_them_whatever_their_offset():
    rng = random.Random(7)
    for _ in range(20_000):
        t = datetime(1, 1, 2, tzinfo=UTC) + timedelta(microseconds=rng.randrange(315_537_700_000_000_000))
        if rng.random() < 0.3:
            t = t.astimezone(timezone(timedelta(hours=rng.randrange(-12, 13))))
        u = t.astimezone(UTC)
        assert format_instant(t) == (f"{u.year:04d}-{u.month:02d}-{u.day:02d}T{u.hour:02d}:{u.minute:02d}:"
                                     f"{u.second:02d}.{u.microsecond // 1000:03d}Z")


async def test_each_instant_of_an_execution_is_formatted_once_whatever_the_documents_written(
        tmp_path, monkeypatch, autojump_clock):
    from falconet.runtime.kernel import execution

    formatted: list[datetime] = []
    format_utc = execution._format_utc

    def counting(t: datetime) -> str:
        formatted.append(t)
        return format_utc(t)

    monkeypatch.setattr(execution, "_FORMATTED", {})
    monkeypatch.setattr(execution, "_format_utc", counting)
    async with open_engine(tmp_path, store="sqlite") as engine:
        await engine.create_flow(SLOW.replace("PT10S", "PT1S"))
        ex = await engine.execute("t", "slow")  # created, progress and end written
        stored = await engine.store.get_execution(ex["id"])
    assert ex["state"]["current"] == "SUCCESS" and stored is not None
    assert len(formatted) == len(set(formatted)), sorted(formatted)
    assert {format_instant(t) for t in formatted} >= {
        h["date"] for tr in ex["taskRunList"] for h in tr["state"]["histories"]}


def test_a_state_history_prints_its_start_and_end_from_its_first_and_last_transition():
    history = StateHistory()
    assert "endDate" not in history.to_dict()
    for state in (State.RUNNING, State.PAUSED, State.RUNNING, State.SUCCESS):
        history.set(state)
        d = history.to_dict()
        assert d["startDate"] == d["histories"][0]["date"]
        assert d.get("endDate") == (d["histories"][-1]["date"] if state in (State.PAUSED, State.SUCCESS) else None)


async def test_a_state_set_by_the_machine_updates_the_expression_maps_once(tmp_path, monkeypatch):
    seen: list[tuple[str, str, int]] = []
    changed = OutputsCache.changed

    def counting(self: OutputsCache, execution: Any, tr: Any) -> None:
        seen.append((tr.id, tr.state.current.value, tr.state.changes))
        changed(self, execution, tr)

    monkeypatch.setattr(OutputsCache, "changed", counting)
    async with open_engine(tmp_path, store="memory") as engine:
        await engine.create_flow(SLOW.replace("PT10S", "PT0.01S"))
        ex = await engine.execute("t", "slow")
    assert ex["state"]["current"] == "SUCCESS"
    assert len(seen) == len(set(seen)), seen  # never twice for the same state change
    # created, RUNNING, SUCCESS: each task run's three versions
    assert len(seen) == 3 * len(ex["taskRunList"]), seen


class _Steps(trio.abc.Instrument):
    def __init__(self) -> None:
        self.steps: dict[str, int] = {}

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        if "TaskRunActor" in task.name:
            self.steps[task.name] = self.steps.get(task.name, 0) + 1


async def test_a_task_run_actor_of_a_task_that_never_waits_runs_in_one_step(tmp_path):
    async with open_engine(tmp_path, store="memory") as engine:
        # a timeout: the Return gets a task-run actor of its own (see the inline tests below)
        await engine.create_flow("id: one\nnamespace: t\ntasks:\n  - id: r\n"
                                 "    type: io.kestra.plugin.core.debug.Return\n    format: x\n    timeout: PT1M\n")
        steps = _Steps()
        trio.lowlevel.add_instrument(steps)
        ex = await engine.execute("t", "one")
        trio.lowlevel.remove_instrument(steps)
    assert ex["state"]["current"] == "SUCCESS"
    # its last message (the attempt's end) is queued without a schedule point: no step to come back for
    assert list(steps.steps.values()) == [1], steps.steps


async def test_an_ended_execution_is_not_kept_for_a_progress_write_it_no_longer_needs(tmp_path, autojump_clock):
    async with open_engine(tmp_path, store="memory") as engine:
        await engine.create_flow(SLOW.replace("PT10S", "PT0.01S"))
        ex = await engine.execute("t", "slow")  # ends before its progress write was due
        assert ex["state"]["current"] == "SUCCESS"
        assert engine.progress_writes._due, "a progress write was scheduled"
        assert [due for due in engine.progress_writes._due if due.actor is not None] == []


INLINE = """id: inline
namespace: t
tasks:
  - id: out
    type: io.kestra.plugin.core.output.OutputValues
    values:
      a: "{{ execution.id }}"
  - id: log
    type: io.kestra.plugin.core.log.Log
    message: "{{ outputs.out.values.a }}"
  - id: timed
    type: io.kestra.plugin.core.debug.Return
    format: x
    timeout: PT1M
  - id: retried
    type: io.kestra.plugin.core.debug.Return
    format: y
    retry:
      type: constant
      interval: PT1S
      maxAttempt: 2
  - id: bad
    type: io.kestra.plugin.core.log.Log
    message: "{{ missing.value }}"
    allowFailure: true
"""


async def test_a_task_that_never_suspends_runs_in_its_execution_actors_step(tmp_path):
    async with open_engine(tmp_path, store="sqlite") as engine:
        await engine.create_flow(INLINE)
        with spawned_tasks() as spawns:
            ex = await engine.execute("t", "inline")
        logs = await engine.get_logs(ex["id"])
    # a task-run actor only for the tasks a timeout or a retry could stop or run again
    assert spawns.names.count("falconet.runtime.kernel.taskrun.TaskRunActor.run") == 2, spawns.names
    assert ex["state"]["current"] == "WARNING"
    runs = {tr["taskId"]: tr for tr in ex["taskRunList"]}
    for task_id, tr in runs.items():  # recorded as a task-run actor records them
        assert [h["state"] for h in tr["state"]["histories"]] == ["CREATED", "RUNNING", tr["state"]["current"]]
        assert [[h["state"] for h in a["state"]["histories"]] for a in tr["attempts"]] == [
            ["RUNNING", "FAILED" if task_id == "bad" else "SUCCESS"]]
    assert {k: tr["state"]["current"] for k, tr in runs.items()} == {
        "out": "SUCCESS", "log": "SUCCESS", "timed": "SUCCESS", "retried": "SUCCESS", "bad": "WARNING"}
    assert runs["out"]["outputs"] == {"values": {"a": ex["id"]}}
    assert [(lg["taskId"], lg["level"]) for lg in logs] == [("log", "INFO"), ("bad", "ERROR")]
    assert logs[0]["message"] == ex["id"] and "missing" in logs[1]["message"]


async def test_an_ended_execution_is_freed_without_the_garbage_collector(tmp_path):
    async with open_engine(tmp_path, store="sqlite") as engine:
        await engine.create_flow(INLINE)
        await engine.execute("t", "inline")
        gc.collect()
        gc.disable()
        try:
            gc.set_debug(gc.DEBUG_SAVEALL)
            async with trio.open_nursery() as nursery:
                for _ in range(5):
                    nursery.start_soon(engine.execute, "t", "inline")
            await engine.store.flush()
            gc.collect()
            # objects only the collector could free: none of an execution's (actor, machine, document...)
            left = {type(o).__qualname__ for o in gc.garbage if type(o).__module__.startswith("falconet.")}
        finally:
            gc.set_debug(0)
            gc.garbage.clear()
            gc.enable()
    assert left == set()


@register
class _Suspends(RunnableTask):
    """Test task: declared synchronous, but its run awaits trio."""

    type = "io.falconet.tests.SuspendsAnyway"
    synchronous = True

    async def run(self, ctx: Any) -> dict[str, Any] | None:
        await trio.lowlevel.checkpoint()
        return {"ran": True}


async def test_a_task_declared_synchronous_that_suspends_fails_its_attempt(tmp_path):
    async with open_engine(tmp_path, store="memory") as engine:
        await engine.create_flow("id: liar\nnamespace: t\ntasks:\n  - id: s\n"
                                 "    type: io.falconet.tests.SuspendsAnyway\n")
        ex = await engine.execute("t", "liar")
        logs = await engine.get_logs(ex["id"])
    assert ex["state"]["current"] == "FAILED"
    assert [tr["state"]["current"] for tr in ex["taskRunList"]] == ["FAILED"]
    assert [(lg["level"], lg["message"]) for lg in logs] == [
        ("ERROR", "_Suspends.run suspended although declared synchronous")]


async def test_an_execution_of_a_flow_without_inputs_types_none(tmp_path, monkeypatch):
    from falconet.runtime.flow import inputs as inputs_module

    calls: list[str] = []
    resolve_inputs = inputs_module.resolve_inputs

    def counting(flow_inputs: Any, provided: Any, **kwargs: Any) -> dict[str, Any]:
        calls.append(",".join(sorted(provided)))
        return resolve_inputs(flow_inputs, provided, **kwargs)

    monkeypatch.setattr(inputs_module, "resolve_inputs", counting)
    async with open_engine(tmp_path, store="memory") as engine:
        await engine.create_flow("id: none\nnamespace: t\ntasks:\n  - id: r\n"
                                 "    type: io.kestra.plugin.core.debug.Return\n    format: x\n")
        await engine.create_flow("id: one\nnamespace: t\ninputs:\n  - id: a\n    type: STRING\n"
                                 "tasks:\n  - id: r\n    type: io.kestra.plugin.core.debug.Return\n"
                                 "    format: '{{ inputs.a }}'\n")
        without = await engine.execute("t", "none", {"undeclared": "x"})
        with_inputs = await engine.execute("t", "one", {"a": "y"})
    assert "inputs" not in without and without["state"]["current"] == "SUCCESS"
    assert with_inputs["inputs"] == {"a": "y"}
    assert calls == ["a"]  # the flow without inputs typed none


def test_the_system_clock_builds_one_date_per_millisecond():
    import time

    from falconet.runtime.kernel.clock import SystemClock

    clock = SystemClock()
    start = time.time_ns() // 1_000_000
    dates = [clock.now() for _ in range(2000)]  # kept alive: ids are not reused
    elapsed = time.time_ns() // 1_000_000 - start
    assert len({id(d) for d in dates}) <= elapsed + 2
    for d in dates:
        assert d.tzinfo is UTC and d.microsecond % 1000 == 0
    assert dates == sorted(dates) and abs((datetime.now(UTC) - dates[-1]).total_seconds()) < 5


def test_durations_print_as_java_prints_them():
    from falconet.runtime.kernel.execution import format_duration

    cases = {timedelta(0): "PT0S", timedelta(milliseconds=1): "PT0.001S", timedelta(seconds=1.5): "PT1.5S",
             timedelta(seconds=59, milliseconds=999): "PT59.999S", timedelta(seconds=60): "PT1M",
             timedelta(minutes=2, seconds=3): "PT2M3S", timedelta(hours=1, microseconds=1): "PT1H0.000001S",
             timedelta(seconds=-1.5): "-PT1.5S", timedelta(seconds=12): "PT12S"}
    for d, text in cases.items():
        assert format_duration(d) == text, d


def test_ids_are_base62_of_a_version_4_uuid():
    import uuid

    from falconet.runtime.kernel.ids import _ALPHABET, _PAIRS, base62, new_id

    # the digit pairs are one string (3,844 separate strings would hold 0.3 MB of an idle server's RSS)
    assert isinstance(_PAIRS, str) and len(_PAIRS) == 2 * 62 * 62
    for n in (0, 1, 61, 62, 3843, 3844, 3845, 2**128 - 1):
        digits, m = [], n
        while m:
            m, r = divmod(m, 62)
            digits.append(_ALPHABET[r])
        assert base62(n) == ("".join(reversed(digits)) or "0")
    for _ in range(200):
        text = new_id()
        n = 0
        for ch in text:
            n = n * 62 + _ALPHABET.index(ch)
        assert 1 <= len(text) <= 22 and not text.startswith("0") and uuid.UUID(int=n).version == 4


def test_an_executions_labels_are_stored_as_json_without_the_encoder(monkeypatch):
    import json

    from falconet.runtime.store import _common

    labels = [{"key": "system.correlationId", "value": "abc"}, {"key": "ünï\"\\\n", "value": "\ud800 \u2028 é"},
              {"key": "n", "value": 3}]
    doc = {"id": "abc", "namespace": "n", "flowId": "f", "labels": labels,
           "state": {"current": "CREATED", "startDate": "2024-01-01T00:00:00.000Z"}}
    expected = _common.compact_json([{"key": lb["key"], "value": str(lb["value"])} for lb in labels])
    calls = []
    monkeypatch.setattr(_common, "dumps", lambda value, what: calls.append(what) or _common.compact_json(value))
    row = _common.execution_row(doc)
    assert row.labels_json == expected and json.loads(row.labels_json)[2] == {"key": "n", "value": "3"}
    assert calls == ["execution abc"]  # the document alone


def test_documents_are_encoded_without_the_circular_check_and_fail_as_json_dumps_does():
    import json

    import pytest

    from falconet.runtime.kernel import execution

    assert execution._ENCODER.check_circular is False
    doc: dict[str, Any] = {"a": [1, 2.5, "é", None, True], "b": {"shared": [1]}}
    doc["c"] = doc["b"]  # the same object twice is not a cycle
    assert execution.compact_json(doc) == json.dumps(doc, separators=(",", ":"), ensure_ascii=False)
    cycle: dict[str, Any] = {}
    cycle["self"] = [cycle]
    with pytest.raises(ValueError, match="Circular reference"):
        execution.compact_json(cycle)
    deep: list[Any] = []
    node = deep
    for _ in range(50_000):
        node.append([])
        node = node[0]
    with pytest.raises(RecursionError):
        execution.compact_json(deep)
    with pytest.raises(ValueError):
        execution.compact_json({"x": float("nan")})


async def test_a_server_that_is_its_stores_only_writer_of_flows_reads_no_flow_per_execution(tmp_path, monkeypatch):
    from falconet import NotFound

    async with open_engine(tmp_path, store="sqlite") as engine:
        await engine.create_flow("id: f\nnamespace: costs\ntasks:\n  - id: r\n"
                                 "    type: io.kestra.plugin.core.debug.Return\n    format: one\n")
        reads: list[tuple[str, str, Any]] = []
        get_flow = engine.store.get_flow

        async def counted(namespace: str, flow_id: str, revision: int | None = None, **kw: Any) -> Any:
            reads.append((namespace, flow_id, revision))
            return await get_flow(namespace, flow_id, revision, **kw)

        monkeypatch.setattr(engine.store, "get_flow", counted)
        for _ in range(3):
            assert (await engine.execute("costs", "f"))["state"]["current"] == "SUCCESS"
        assert reads == []
        await engine.update_flow("costs", "f", "id: f\nnamespace: costs\ntasks:\n  - id: r\n"
                                 "    type: io.kestra.plugin.core.debug.Return\n    format: two\n")
        reads.clear()
        ex = await engine.execute("costs", "f")
        assert ex["flowRevision"] == 2 and ex["taskRunList"][0]["outputs"] == {"value": "two"} and reads == []
        await engine.delete_flow("costs", "f")
        with pytest.raises(NotFound):
            await engine.execute("costs", "f")
        assert (await engine.get_flow("costs", "f", allow_deleted=True)).deleted


def test_each_duration_is_formatted_once(monkeypatch):
    from falconet.runtime.kernel import execution

    formatted: list[timedelta] = []
    real = execution._format_duration
    monkeypatch.setattr(execution, "_format_duration", lambda d: formatted.append(d) or real(d))
    execution._DURATIONS.clear()
    for _ in range(3):
        assert execution.format_duration(timedelta(milliseconds=1)) == "PT0.001S"
        assert execution.format_duration(timedelta(minutes=2, seconds=3)) == "PT2M3S"
    assert formatted == [timedelta(milliseconds=1), timedelta(minutes=2, seconds=3)]


LISTENER = """id: listener
namespace: t
tasks:
  - id: r
    type: io.kestra.plugin.core.debug.Return
    format: heard
triggers:
  - id: on_end
    type: io.kestra.plugin.core.trigger.Flow
    conditions:
      - type: io.kestra.plugin.core.condition.ExecutionFlow
        namespace: t
        flowId: one
"""


async def test_an_end_with_no_retry_stop_after_or_listening_flow_starts_no_task(tmp_path):
    after_end = "falconet.runtime.orchestration.Orchestration.after_end"
    async with open_engine(tmp_path, store="memory") as engine:
        await engine.create_flow("id: one\nnamespace: t\ntasks:\n  - id: r\n"
                                 "    type: io.kestra.plugin.core.debug.Return\n    format: x\n")
        await engine.execute("t", "one")  # the first end reads the flows (then known to have no Flow trigger)
        with spawned_tasks() as spawns:
            await engine.execute("t", "one")
        assert spawns.names.count(after_end) == 0, spawns.names
        await engine.create_flow(LISTENER)  # a flow listens now: each end is handed to a task again
        with spawned_tasks() as spawns:
            ex = await engine.execute("t", "one")
        assert spawns.names.count(after_end) == 1, spawns.names
        with trio.fail_after(5):
            while not [d for d in (await engine.store.search_executions(
                    ExecutionQuery(namespace="t", flow_id="listener")))[0] if d["state"]["current"] == "SUCCESS"]:
                await trio.sleep(0.01)
    assert ex["state"]["current"] == "SUCCESS"


class _TaskSteps(trio.abc.Instrument):
    def __init__(self) -> None:
        self.names: list[str] = []

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        self.names.append(task.name)


async def test_state_changes_wake_the_flow_trigger_loop_only_while_a_flow_listens(tmp_path):
    loop = "falconet.runtime.orchestration.flowtriggers.FlowTriggers.run"
    async with open_engine(tmp_path, store="memory") as engine:
        await engine.create_flow("id: one\nnamespace: t\ntasks:\n  - id: r\n"
                                 "    type: io.kestra.plugin.core.debug.Return\n    format: x\n")
        await engine.execute("t", "one")  # the loop reads the flows once (then known to have no Flow trigger)
        steps = _TaskSteps()
        trio.lowlevel.add_instrument(steps)
        await engine.execute("t", "one")
        await trio.testing.wait_all_tasks_blocked()
        trio.lowlevel.remove_instrument(steps)
        assert steps.names.count(loop) == 0, steps.names
        await engine.create_flow(LISTENER.replace("    conditions:", "    states: [RUNNING]\n    conditions:"))
        steps = _TaskSteps()
        trio.lowlevel.add_instrument(steps)
        await engine.execute("t", "one")
        await trio.testing.wait_all_tasks_blocked()
        trio.lowlevel.remove_instrument(steps)
        assert steps.names.count(loop) >= 1, steps.names
        with trio.fail_after(5):
            while not (await engine.store.search_executions(ExecutionQuery(namespace="t", flow_id="listener")))[0]:
                await trio.sleep(0.01)


async def test_an_execution_that_ends_with_nothing_left_in_its_nursery_cancels_no_scope(tmp_path, monkeypatch):
    cancelled: list[trio.CancelScope] = []
    cancel = trio.CancelScope.cancel

    def counted(scope: trio.CancelScope, *args: Any, **kwargs: Any) -> None:
        cancelled.append(scope)
        cancel(scope, *args, **kwargs)

    async with open_engine(tmp_path, store="memory") as engine:
        await engine.create_flow(INLINE)
        await engine.create_flow(SLA)
        monkeypatch.setattr(trio.CancelScope, "cancel", counted)
        ex = await engine.execute("t", "inline")
        assert ex["state"]["current"] == "WARNING" and cancelled == []
        ex = await engine.execute("t", "sla")  # its SLA timer is still waiting: cancelled
        assert ex["state"]["current"] == "SUCCESS" and len(cancelled) == 1


SLA = """id: sla
namespace: t
sla:
  - id: slow
    type: MAX_DURATION
    behavior: FAIL
    duration: PT1H
tasks:
  - id: r
    type: io.kestra.plugin.core.debug.Return
    format: x
"""


async def test_a_task_run_in_its_actors_step_builds_its_variables_only_when_it_renders_a_template(
        tmp_path, monkeypatch):
    from falconet.runtime.kernel.actors import ExecutionActor

    built: list[str] = []
    variables_for = ExecutionActor.variables_for

    def counting(self: ExecutionActor, tr: Any, task: Any) -> dict[str, Any]:
        built.append(task.id)
        return variables_for(self, tr, task)

    monkeypatch.setattr(ExecutionActor, "variables_for", counting)
    async with open_engine(tmp_path, store="memory") as engine:
        await engine.create_flow("id: two\nnamespace: t\ntasks:\n"
                                 "  - id: out\n    type: io.kestra.plugin.core.output.OutputValues\n"
                                 "    values:\n      v: hello\n      w: [a, b]\n"
                                 "  - id: log\n    type: io.kestra.plugin.core.log.Log\n"
                                 "    message: \"{{ outputs.out.values.v }} {{ task.id }}\"\n")
        ex = await engine.execute("t", "two")
        logs = await engine.get_logs(ex["id"])
    assert ex["state"]["current"] == "SUCCESS"
    assert ex["taskRunList"][0]["outputs"] == {"values": {"v": "hello", "w": ["a", "b"]}}
    assert [line["message"] for line in logs] == ["hello log"]
    assert built == ["log"]  # the OutputValues of constants rendered nothing


async def test_a_sequence_of_task_runs_is_stepped_without_sorting_its_one_active_run(tmp_path, monkeypatch):
    from falconet.runtime.kernel import flowstate

    sorts: list[int] = []

    def counting(items: Any, **kwargs: Any) -> list[Any]:
        items = list(items)
        sorts.append(len(items))
        return sorted(items, **kwargs)

    monkeypatch.setattr(flowstate, "sorted", counting, raising=False)
    async with open_engine(tmp_path, store="memory") as engine:
        await engine.create_flow("id: seq\nnamespace: t\ntasks:\n" + "".join(
            f"  - id: r{i}\n    type: io.kestra.plugin.core.debug.Return\n    format: x\n" for i in range(3)))
        ex = await engine.execute("t", "seq")
    assert ex["state"]["current"] == "SUCCESS" and [tr["taskId"] for tr in ex["taskRunList"]] == ["r0", "r1", "r2"]
    assert sorts == []


def test_each_instant_text_stored_is_parsed_once(monkeypatch):
    from falconet.runtime.store import _common

    parsed: list[int] = []
    dt_us = _common.dt_us
    monkeypatch.setattr(_common, "_PARSED", {})
    monkeypatch.setattr(_common, "dt_us", lambda t: parsed.append(1) or dt_us(t))
    doc = {"id": "e", "namespace": "n", "flowId": "f", "labels": [],
           "state": {"current": "SUCCESS", "startDate": "2026-12-05T08:00:00.123Z",
                     "endDate": "2026-12-05T08:00:01.456Z", "histories": []}}
    rows = [_common.execution_row(doc) for _ in range(3)]
    assert len(parsed) == 2
    assert {(r.start_ms, r.end_ms) for r in rows} == {(1796457600123, 1796457601456)}
    line = {"level": "INFO", "timestamp": "2026-12-05T08:00:01.456Z", "message": "m"}
    assert _common.log_row(line).ts_us == 1796457601456000 and len(parsed) == 2
    with pytest.raises(_common.IllegalArgument):
        _common.instant_us("2026-13-05T08:00:00Z", "x")
    assert _common.instant_us(datetime(2026, 12, 5, 8, tzinfo=timezone.utc), "x") == 1796457600000000


def test_a_property_is_coerced_without_an_import_unless_it_is_a_duration(monkeypatch):
    import builtins

    from falconet.runtime.kernel.runcontext import coerce
    from falconet.sdk.plugin import DURATION, ENUM, STRING, Prop

    imports: list[str] = []
    real = builtins.__import__
    monkeypatch.setattr(builtins, "__import__", lambda name, *a, **k: imports.append(name) or real(name, *a, **k))
    assert coerce("level", Prop(ENUM, values=("INFO", "WARN")), "INFO") == "INFO"
    assert coerce("message", Prop(STRING), 12) == "12"
    assert imports == []
    assert coerce("timeout", Prop(DURATION), "PT1M") == timedelta(minutes=1)
    assert imports


def test_a_state_history_reads_no_enum_value_descriptor(monkeypatch):
    reads: list[State] = []
    monkeypatch.setattr(State, "value", property(lambda s: reads.append(s) or str.__str__(s)), raising=False)
    history = StateHistory(State.CREATED)
    history.set(State.RUNNING)
    history.set(State.SUCCESS)
    doc = history.to_dict()
    copy = StateHistory(State.SUCCESS, history.histories)
    assert reads == []
    assert doc["current"] == "SUCCESS" and [h["state"] for h in doc["histories"]] == ["CREATED", "RUNNING", "SUCCESS"]
    assert copy.to_dict()["histories"] == doc["histories"]


async def test_a_step_that_changed_nothing_since_it_chose_the_current_tasks_does_not_choose_them_again(
        tmp_path, monkeypatch):
    from falconet.runtime.kernel.flowstate import FlowState

    calls: list[str | None] = []
    current_tasks = FlowState.current_tasks

    def counting(self: FlowState, *args: Any, **kwargs: Any) -> Any:
        calls.append(args[3])
        return current_tasks(self, *args, **kwargs)

    monkeypatch.setattr(FlowState, "current_tasks", counting)
    async with open_engine(tmp_path, store="memory") as engine:
        await engine.create_flow(TWO_TASKS)
        ex = await engine.execute("t", "two")
    assert ex["state"]["current"] == "SUCCESS"
    # three steps (start, after each task): the first two create a task run and look again (2 passes), the
    # last ends the execution (1 pass); the end of each pass reuses the pass's choice unless a task run changed
    assert len(calls) == 7, calls


TWO_TASKS = ("id: two\nnamespace: t\ntasks:\n"
             "  - id: out\n    type: io.kestra.plugin.core.output.OutputValues\n    values:\n      v: hello\n"
             "  - id: log\n    type: io.kestra.plugin.core.log.Log\n    message: \"{{ outputs.out.values.v }}\"\n")


async def test_a_subscriber_to_some_states_makes_the_engine_build_only_their_documents(tmp_path, monkeypatch):
    """The bus is asked for the event's state before the execution's document is built: a subscriber to
    SUCCESS alone (``/api/v1/ws?state=SUCCESS``) costs one document per execution, not one per state change."""
    from falconet.runtime.kernel.execution import Execution

    built: list[str] = []
    to_dict = Execution.to_dict

    def counting(self: Execution, private: bool = False, **kwargs: Any) -> Any:
        if not private:
            built.append(self.state.current.value)
        return to_dict(self, private, **kwargs)

    monkeypatch.setattr(Execution, "to_dict", counting)
    async with open_engine(tmp_path, store="memory") as engine:
        await engine.create_flow(TWO_TASKS)
        with engine.bus.subscribe(kinds=("execution",), states=["SUCCESS"]) as sub:
            await engine.execute("t", "two")
            await engine.execute("t", "two")
            built.clear()
            with engine.bus.subscribe(kinds=("execution",), states=["RUNNING", "SUCCESS"]):
                ex = await engine.execute("t", "two")
            everything = list(built)
            built.clear()
            await engine.execute("t", "two")
            events = [sub.receive_nowait() for _ in range(sub.pending())]
    assert ex["state"]["current"] == "SUCCESS"
    assert everything.count("RUNNING") >= 1   # a subscriber to RUNNING gets its documents built
    # the execution's end, and the document `execute` answers: no CREATED or RUNNING document for the bus
    assert "RUNNING" not in built and "CREATED" not in built, built
    assert [e.state for e in events] == ["SUCCESS"] * 4
    assert engine.bus.wants("execution", "x", "t", "two", "SUCCESS") is False   # no subscriber left
