"""The README's embedding example, and the public names falconet exports."""
from __future__ import annotations

import trio

import falconet

FLOW = """
id: hello
namespace: company.team
inputs:
  - id: name
    type: STRING
tasks:
  - id: greet
    type: io.kestra.plugin.core.debug.Return
    format: "Hello {{ inputs.name }}"
"""


def drain(sub):
    out = []
    while True:
        try:
            out.append(sub.receive_nowait())
        except (trio.WouldBlock, falconet.Overflow):
            return out


async def test_readme_embedding_example():
    async with falconet.open_engine(store="memory") as engine:
        await engine.create_flow(FLOW)
        with engine.bus.subscribe(namespace="company.team", kinds=("execution",)) as events:
            execution = await engine.execute("company.team", "hello", {"name": "world"})
            seen = [e.state for e in drain(events)]
    assert execution["state"]["current"] == "SUCCESS"
    assert execution["taskRunList"][0]["outputs"]["value"] == "Hello world"
    assert seen == ["CREATED", "RUNNING", "SUCCESS"]  # one event per state change, the end once


async def test_errors_are_the_public_vocabulary():
    async with falconet.open_engine(store="memory") as engine:
        try:
            await engine.execute("company.team", "missing")
        except falconet.NotFound as exc:
            assert "not found" in str(exc).lower()
        else:
            raise AssertionError("executing a missing flow must raise NotFound")
        try:
            await engine.create_flow("id: x\nnamespace: a\ntasks: []\n")
        except falconet.FlowValidationError as exc:
            assert exc.violations and exc.violations[0].line is not None
        else:
            raise AssertionError("an empty task list must be rejected")


async def test_slow_subscriber_overflows_without_blocking_the_engine():
    src = "id: many\nnamespace: t\ntasks:\n" + "".join(
        f"  - id: r{i}\n    type: io.kestra.plugin.core.debug.Return\n    format: x\n" for i in range(30))
    async with falconet.open_engine(store="memory") as engine:
        await engine.create_flow(src)
        with engine.bus.subscribe(namespace="t", max_buffer=5) as sub:
            ex = await engine.execute("t", "many")
            assert ex["state"]["current"] == "SUCCESS"
            assert sub.pending() == 5
            try:
                sub.receive_nowait()
            except falconet.Overflow as exc:
                assert exc.dropped > 0
            else:
                raise AssertionError("a full buffer must report the dropped events")
