"""``flow.Sleep``, the one runnable type of Kestra's ``flow`` package: it blocks its task run for
``duration``. The flowable types of the package (Sequential, If, ForEach, Subflow, WorkingDirectory…)
live in :mod:`falconet.plugins.core.flowables`, one module per family.
"""
from __future__ import annotations

from datetime import timedelta
from typing import Any

import trio

from falconet.plugins.core.flowables.common import PKG
from falconet.sdk import DURATION, Example, parse_duration, Prop, register, RunContext, RunnableTask, TaskFailed



@register
class Sleep(RunnableTask):
    """Block this task run for ``duration`` (a checkpoint; a kill or timeout cancels the wait)."""

    type = f"{PKG}.Sleep"
    title = "Sleep for a duration."
    examples = (
        Example("Wait five seconds.",
                "duration: PT5S\n"),
    )
    props = {
        "duration": Prop(DURATION, required=True),
    }

    async def run(self, ctx: "RunContext") -> dict[str, Any] | None:
        value = ctx.prop("duration")
        if isinstance(value, timedelta):
            duration = value
        else:
            try:
                duration = parse_duration(str(value))
            except ValueError as exc:
                raise TaskFailed(str(exc)) from None
        if duration < timedelta(0):
            raise TaskFailed(f"Invalid duration `{value}`: must not be negative")
        await trio.sleep(duration.total_seconds())
        return None


