"""Costs linear in the number of task runs: the stored text built from kept task-run pieces, the
``outputs``/``tasks`` maps updated per change, the machine's indexes kept by state changes — each must give
exactly what the full computation gives."""
from __future__ import annotations

import json
import random

import trio

from falconet import open_engine
from falconet.runtime.expr.variables import OutputsCache, build_outputs, build_task_states
from falconet.runtime.flow.model import Flow
from falconet.runtime.kernel.execution import Execution, StoredText, TaskRun, without_private
from falconet.runtime.kernel.flowstate import Resolved, Runs
from falconet.runtime.kernel.state import State


def _full_text(ex: Execution) -> str:
    return json.dumps(ex.to_dict(private=True), separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _timeless(doc: object) -> object:
    """A document without ``duration`` (a running state's duration counts up to now)."""
    if isinstance(doc, dict):
        return {k: _timeless(v) for k, v in doc.items() if k != "duration"}
    if isinstance(doc, list):
        return [_timeless(v) for v in doc]
    return doc


def _random_execution(rng: random.Random, ops: int, check) -> Execution:
    """Random creations (top level, under loop parents with values), state changes and outputs changes;
    ``check(ex, tr)`` after each."""
    ex = Execution(namespace="t", flow_id="f", flow_revision=1)
    states = [State.CREATED, State.RUNNING, State.RETRYING, State.RESTARTED, State.SUCCESS, State.FAILED,
              State.WARNING, State.KILLED]
    for _ in range(ops):
        op = rng.random()
        if op < 0.35 or not ex.task_run_list:
            parent = rng.choice([None, *ex.task_run_list[-5:]]) if ex.task_run_list else None
            value = rng.choice(["a", "b", "c", "state"]) if parent is not None and rng.random() < 0.7 else None
            tr = TaskRun(execution_id=ex.id, namespace="t", flow_id="f", task_id=rng.choice(["x", "y", "z"]),
                         parent_task_run_id=parent.id if parent else None, value=value)
            ex.task_run_list.append(tr)
        else:
            tr = rng.choice(ex.task_run_list)
            if op < 0.7:
                tr.state.set(rng.choice(states))
            elif op < 0.8:
                tr.outputs = None
            else:
                tr.outputs = {"v": rng.randint(0, 5), "m": {rng.choice("pq"): rng.randint(0, 5)}}
        check(ex, tr)
    return ex


def test_the_outputs_and_tasks_maps_updated_per_change_equal_a_rebuild():
    for seed in range(40):
        rng = random.Random(seed)
        by_id: dict[str, TaskRun] = {}
        cache = OutputsCache(by_id)

        def check(ex: Execution, tr: TaskRun) -> None:
            by_id[tr.id] = tr
            cache.changed(ex, tr)
            if rng.random() < 0.5:  # read (and so build) the maps at random moments
                assert cache.outputs(ex) == build_outputs(ex, by_id)
                assert cache.tasks(ex) == build_task_states(ex, by_id)

        ex = _random_execution(rng, 150, check)
        assert cache.outputs(ex) == build_outputs(ex, by_id)
        assert cache.tasks(ex) == build_task_states(ex, by_id)


def test_the_stored_text_from_kept_pieces_equals_the_full_document(monkeypatch):
    monkeypatch.setattr(StoredText, "BLOCK", 8)  # many blocks, some kept, some not
    rng = random.Random(7)
    seen: list[str] = []

    def check(ex: Execution, tr: TaskRun) -> None:
        if rng.random() < 0.3:
            tr.runtime.dispatched = not tr.runtime.dispatched
        ex.text.forget(tr.id)  # what the actor does on each change of a task run
        head, text = ex.stored_text()
        full = json.loads(_full_text(ex))
        assert list(json.loads(text)) == list(full)  # the same keys in the same order
        assert _timeless(json.loads(text)) == _timeless(full)
        assert head["state"]["current"] == full["state"]["current"]
        seen.append(text)

    ex = _random_execution(rng, 200, check)
    for tr in ex.task_run_list:
        tr.state.set(State.SUCCESS)
        ex.text.forget(tr.id)
    ex.state.set(State.SUCCESS)  # every duration is now fixed: the texts are equal to the byte
    assert ex.stored_text()[1] == _full_text(ex)
    empty = Execution(namespace="t", flow_id="f", flow_revision=1)
    assert _timeless(json.loads(empty.stored_text()[1])) == _timeless(empty.to_dict(private=True))


def test_a_state_set_behind_the_machines_back_keeps_its_indexes():
    from falconet.runtime.kernel.machine import Machine
    from falconet.runtime.flow.parsing import parse_flow

    flow: Flow = parse_flow("id: f\nnamespace: t\ntasks:\n" + "".join(
        f"  - id: r{i}\n    type: io.kestra.plugin.core.debug.Return\n    format: x\n" for i in range(5)))
    ex = Execution(namespace="t", flow_id="f", flow_revision=1)
    m = Machine(ex, flow, render=lambda *a: None, render_typed=lambda *a: None, truthy=bool,
                log=lambda *a: None, on_change=lambda tr: None)
    tasks = m.keep([Resolved(t, None) for t in flow.tasks])
    runs = m.runs_for(tasks, None)
    assert isinstance(runs, Runs) and runs == []
    created = [m.create(Resolved(t, None)) for t in flow.tasks[:3]]
    assert runs == created and runs.busy == 3 and set(m.active) == {tr.id for tr in created}
    created[0].state.set(State.FAILED)  # not through the machine
    created[1].state.set(State.SUCCESS)
    assert (runs.failed, runs.terminated, runs.busy) == (1, 2, 1)
    assert set(m.active) == {created[2].id}
    created[0].state.set(State.RESTARTED)  # a restarted task run is active again
    assert (runs.failed, runs.terminated, runs.busy) == (0, 1, 2)
    assert [tr.id for tr in m.active_runs()] == [created[0].id, created[2].id]
    # the same answers as a scan
    fresh = Machine(ex, flow, render=lambda *a: None, render_typed=lambda *a: None, truthy=bool,
                    log=lambda *a: None, on_change=lambda tr: None)
    assert fresh.runs_for(list(tasks), None) == runs
    assert fresh.sequential_nexts(list(tasks), None, None, None) == m.sequential_nexts(tasks, None, None, None)


COHERENCE = """
id: coherence
namespace: t
tasks:
  - id: each
    type: io.kestra.plugin.core.flow.ForEach
    values: ["a", "b", "c"]
    concurrencyLimit: 0
    tasks:
      - id: r
        type: io.kestra.plugin.core.debug.Return
        format: "{{ taskrun.value }}"
  - id: until
    type: io.kestra.plugin.core.flow.LoopUntil
    condition: "{{ outputs.inner.value == '2' }}"
    checkFrequency:
      interval: PT1S
    tasks:
      - id: inner
        type: io.kestra.plugin.core.debug.Return
        format: "{{ outputs.until.iterationCount }}"
  - id: flaky
    type: io.kestra.plugin.core.execution.Fail
    condition: "{{ taskrun.attemptsCount < 1 }}"
    retry:
      type: constant
      interval: PT1S
      maxAttempt: 3
  - id: check
    type: io.kestra.plugin.core.flow.If
    condition: "{{ outputs.r.b.value == 'b' }}"
    then:
      - id: then
        type: io.kestra.plugin.core.debug.Return
        format: "{{ outputs.check.evaluationResult }}"
  - id: last
    type: io.kestra.plugin.core.debug.Return
    format: "{{ outputs.r.a.value }}{{ outputs.r.c.value }}-{{ tasks.r.b.state }}-{{ tasks.flaky.state }}-{{ outputs.then.value }}-{{ outputs.until.iterationCount }}"
"""


def _output(ex: dict, task_id: str) -> object:
    return next(tr for tr in ex["taskRunList"] if tr["taskId"] == task_id)["outputs"]["value"]


async def test_expressions_see_outputs_set_by_flowables_retries_and_loops(tmp_path, autojump_clock):
    async with open_engine(tmp_path, store="sqlite") as engine:
        await engine.create_flow(COHERENCE)
        ex = await engine.execute("t", "coherence")
        assert ex["state"]["current"] == "WARNING" or ex["state"]["current"] == "SUCCESS", ex["state"]
        flaky = next(tr for tr in ex["taskRunList"] if tr["taskId"] == "flaky")
        assert len(flaky["attempts"]) == 2
        # LoopUntil's iterationCount (set by the flowable, not by a reported change) as each iteration saw it
        inner = [tr["outputs"]["value"] for tr in ex["taskRunList"] if tr["taskId"] == "inner"]
        assert inner == ["0", "1", "2"]
        assert _output(ex, "then") == "true"
        assert _output(ex, "last") == f"ac-SUCCESS-{flaky['state']['current']}-true-3"
        stored = await engine.store.get_execution(ex["id"])
        assert without_private(stored) == ex


PAUSED = "id: paused\nnamespace: t\ntasks:\n  - id: r0\n    type: io.kestra.plugin.core.debug.Return\n" \
    "    format: x\n" + "".join(
        f"  - id: r{i}\n    type: io.kestra.plugin.core.debug.Return\n    format: '{{{{ outputs.r{i - 1}.value }}}}{i}'\n"
        for i in range(1, 30)) + "  - id: hold\n    type: io.kestra.plugin.core.flow.Pause\n"


async def test_the_stored_document_of_a_running_execution_is_the_full_document(tmp_path):
    async with open_engine(tmp_path, store="sqlite") as engine:
        await engine.create_flow(PAUSED)
        created = await engine.execute("t", "paused", wait=False)
        with trio.fail_after(30):
            while True:
                await engine.store.flush()
                stored = await engine.store.get_execution(created["id"])
                if stored["state"]["current"] != "RUNNING" and stored["state"]["current"] != "CREATED":
                    break
                await trio.sleep(0.01)
        assert stored["state"]["current"] == "PAUSED"
        actor = engine.actors[created["id"]]
        assert stored == actor.ex.to_dict(private=True)
        assert len(stored["taskRunList"]) == 31
        await engine.kill(created["id"])


RESTART = """
id: restarted
namespace: t
tasks:
  - id: each
    type: io.kestra.plugin.core.flow.ForEach
    values: ["a", "b"]
    tasks:
      - id: r
        type: io.kestra.plugin.core.debug.Return
        format: "{{ taskrun.value }}"
  - id: flaky
    type: io.kestra.plugin.core.execution.Fail
    condition: "{{ taskrun.attemptsCount < 1 }}"
  - id: last
    type: io.kestra.plugin.core.debug.Return
    format: "{{ outputs.r.a.value }}{{ outputs.r.b.value }}-{{ tasks.flaky.state }}"
"""


async def test_a_restarted_execution_sees_the_outputs_and_states_of_its_earlier_task_runs(tmp_path):
    async with open_engine(tmp_path, store="sqlite") as engine:
        await engine.create_flow(RESTART)
        first = await engine.execute("t", "restarted")
        assert first["state"]["current"] == "FAILED"
        await engine.settle(first["id"])
        await engine.restart(first["id"])
        final = await engine.wait_for_end(first["id"])
        assert final["state"]["current"] == "SUCCESS"
        assert _output(final, "last") == "ab-SUCCESS"
        await engine.settle(first["id"])
        stored = await engine.store.get_execution(first["id"])
        assert without_private(stored) == final


def test_a_state_history_holds_no_tuples_the_garbage_collector_tracks():
    import gc

    from falconet.runtime.kernel.execution import StateHistory

    h = StateHistory(State.CREATED)
    h.set(State.RUNNING)
    h.set(State.SUCCESS)
    gc.collect()
    entries = [o for ref in gc.get_referents(h) if isinstance(ref, list)
               for o in gc.get_referents(ref) if isinstance(o, tuple)]
    assert len(entries) == 3 and not any(gc.is_tracked(t) for t in entries)
    assert [s for s, _ in h.histories] == [State.CREATED, State.RUNNING, State.SUCCESS] and h.changes == 3
    copy = h.copy()
    copy.set(State.RUNNING)
    assert h.changes == 3 and copy.changes == 4
