"""``io.kestra.plugin.core.debug.*``: render a value (``Return``) or log it (``Echo``, deprecated)."""
from __future__ import annotations

import time
from typing import Any

from falconet.sdk import ENUM, STRING, Example, LogLevel, Metric, Output, Prop, register, RunContext, RunnableTask
from falconet.plugins.core.log import level_prop


@register
class Return(RunnableTask):
    """Render ``format`` and return it as output ``value`` (a null render gives ``""``).

    Metrics, both tagged ``format=<rendered value>`` as Kestra tags them: counter ``length`` (length of the
    rendered string) and timer ``duration`` (seconds spent rendering).
    """

    type = "io.kestra.plugin.core.debug.Return"
    aliases = ("io.kestra.core.tasks.debugs.Return",)
    title = "Return a value for debugging purposes."
    examples = (
        Example("Return a rendered value that later tasks read as outputs.<id>.value.",
                "format: \"{{ task.id }} > {{ taskrun.startDate }}\"\n"),
    )
    outputs = {
        "value": Output("string", "The rendered format."),
    }
    metrics = (
        Metric("length", "counter", "Length of the rendered value."),
        Metric("duration", "timer", "Time spent rendering the value."),
    )
    synchronous = True
    props = {"format": Prop(STRING, description="The templated string to render.")}

    async def run(self, ctx: RunContext) -> dict[str, Any] | None:
        start = time.perf_counter()
        rendered = ctx.prop("format")
        elapsed = time.perf_counter() - start
        value = "" if rendered is None else str(rendered)
        tags = {"format": value}
        ctx.metric("counter", "length", len(value), tags)
        ctx.metric("timer", "duration", elapsed, tags)
        return {"value": value}


@register
class Echo(RunnableTask):
    """Deprecated: log the rendered ``format`` at ``level`` (use ``log.Log``)."""

    type = "io.kestra.plugin.core.debug.Echo"
    aliases = ("io.kestra.core.tasks.debugs.Echo",)
    title = "Log a message in the task logs (deprecated, use log.Log)."
    examples = (
        Example("Log a rendered message (deprecated: use io.kestra.plugin.core.log.Log).",
                "format: \"{{ task.id }} > {{ taskrun.startDate }}\"\n"
                "level: INFO\n"),
    )
    synchronous = True
    props = {
        "format": Prop(STRING, required=True, description="The templated string to log."),
        "level": Prop(ENUM, default="INFO", values=LogLevel.names(), description="The log level."),
    }

    async def run(self, ctx: RunContext) -> dict[str, Any] | None:
        rendered = ctx.prop("format")
        ctx.logger.log(level_prop(ctx), "" if rendered is None else str(rendered))
        return None
