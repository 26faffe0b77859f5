"""A third-party :class:`PollingTrigger` is driven by the engine's poller like the built-in http.Trigger:
evaluated every ``interval`` (its class default, or the flow's property), with its properties rendered,
an execution created from the variables it returns, and a failing evaluation logged without stopping."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

import pytest
import trio

from falconet.sdk.plugin import INTEGER, STRING, PollingContext, PollingTrigger, Prop, TriggerEvaluationError, registry

from .conftest import executions_of, wait_until

NS = "orch.poll3p"
TYPE = "io.example.trigger.Countdown"


class Countdown(PollingTrigger):
    """Creates an execution at each evaluation whose number is a multiple of ``every``; the third
    evaluation fails."""

    type = TYPE
    interval = "PT10S"
    props: ClassVar[dict[str, Prop]] = {
        "every": Prop(INTEGER, default=2),
        "label": Prop(STRING),
        "interval": Prop(STRING, dynamic=False),
    }
    calls: ClassVar[list[dict[str, Any]]] = []

    async def evaluate(self, ctx: PollingContext) -> dict[str, Any] | None:
        n = len(Countdown.calls) + 1
        Countdown.calls.append({"flow": ctx.flow_id, "trigger": ctx.trigger_id, "label": ctx.prop("label"),
                                "raw": ctx.raw("label")})
        if n == 3:
            raise TriggerEvaluationError("third evaluation refused")
        if n % ctx.prop("every"):
            return None
        return {"n": n, "label": ctx.prop("label")}


@pytest.fixture(autouse=True)
def countdown(monkeypatch) -> Iterator[type[Countdown]]:
    from falconet.runtime.orchestration import polling

    monkeypatch.setitem(polling.DEFAULTS, "poll", 10 * 86400.0)
    Countdown.calls = []
    registry.register(Countdown)
    try:
        yield Countdown
    finally:
        registry._types.pop(TYPE, None)
        registry._canonical.pop(TYPE, None)


def flow(extra: str = "") -> str:
    return f"""
id: counted
namespace: {NS}
tasks:
  - id: echo
    type: io.kestra.plugin.core.debug.Return
    format: "{{{{ trigger.n }}}} {{{{ trigger.label }}}}"
triggers:
  - id: countdown
    type: {TYPE}
    label: "{{{{ flow.namespace }}}}"
{extra}
"""


async def test_a_third_party_polling_trigger_is_evaluated_and_creates_executions(engine, autojump_clock, caplog):
    await engine.create_flow(flow())
    engine.orchestration.polling.wake()
    await trio.sleep(9)
    assert Countdown.calls == []                       # first evaluation one class interval (PT10S) later
    await trio.sleep(10 * 5 + 5)                       # evaluations at +10 … +60
    poller = engine.orchestration.polling
    assert poller.evaluations == 6 and poller.created == 3   # n = 2, 4, 6 (n = 3 failed)
    assert Countdown.calls[0] == {"flow": "counted", "trigger": "countdown", "label": NS,
                                  "raw": "{{ flow.namespace }}"}

    async def ended() -> list[dict[str, Any]]:
        rows = await executions_of(engine, NS, "counted")
        return rows if rows and all(r["state"]["current"] == "SUCCESS" for r in rows) else []

    await wait_until(ended)
    rows = await ended()
    assert sorted(r["taskRunList"][0]["outputs"]["value"] for r in rows) == [f"2 {NS}", f"4 {NS}", f"6 {NS}"]
    assert {r["trigger"]["type"] for r in rows} == {TYPE}
    assert any(r.getMessage() == "trigger orch.poll3p.counted.countdown: third evaluation refused"
               for r in caplog.records)


async def test_the_flow_interval_property_overrides_the_class_default(engine, autojump_clock):
    await engine.create_flow(flow("    interval: PT1M\n    every: 1"))
    engine.orchestration.polling.wake()
    await trio.sleep(59)
    assert Countdown.calls == []
    await trio.sleep(2)
    assert len(Countdown.calls) == 1
    await trio.sleep(60)
    assert len(Countdown.calls) == 2
