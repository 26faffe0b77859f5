"""``io.kestra.plugin.core.log.*``: write log lines from a flow, fetch an execution's logs into a file.

* ``log.Log`` — one log line per message (``message`` is a string or a list of strings, each rendered as
  text: maps and lists as compact JSON, as Kestra writes them), at
  ``level`` (TRACE/DEBUG/INFO/WARN/ERROR, default INFO). No outputs.
* ``log.Fetch`` — the log lines of an execution (default: the current one), optionally only those of the
  tasks ``tasksId`` and at least ``level``, written one Ion struct per line to this task run's storage.
  Outputs ``size`` (number of lines) and ``uri``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import trio

from falconet.sdk import (
    ANY, ENUM, LIST, STRING, Example, LogLevel, Output, parse_instant, Prop, register, RunContext, RunnableTask,
    TaskFailed, to_output_string, write_ion_rows,
)



def level_prop(ctx: RunContext, name: str = "level") -> str:
    """The log level property, validated (TaskFailed naming the allowed levels)."""
    level = str(ctx.prop(name)).upper()
    if level not in LogLevel.names():
        raise TaskFailed(f"Invalid level '{level}': expected one of {', '.join(LogLevel.names())}")
    return level


#### log.Log ################################################################################################

@register
class Log(RunnableTask):
    """Log one line per message at the given level."""

    type = "io.kestra.plugin.core.log.Log"
    aliases = ("io.kestra.core.tasks.log.Log",)
    title = "Log a message in the task logs."
    examples = (
        Example("Log a message.",
                "message: \"Hello {{ inputs.name ?? 'World' }}\"\n"
                "level: INFO\n"),
        Example("Log several messages.",
                "message:\n"
                "  - first line\n"
                "  - \"second line in {{ flow.id }}\"\n"),
    )
    synchronous = True
    props = {
        "message": Prop(ANY, required=True, description="A message or a list of messages to log (rendered)."),
        "level": Prop(ENUM, default="INFO", values=LogLevel.names(), description="The log level."),
    }

    async def run(self, ctx: RunContext) -> dict[str, Any] | None:
        level = level_prop(ctx)
        message = ctx.raw("message")
        messages = message if isinstance(message, list) else [message]
        for m in messages:
            ctx.logger.log(level, to_output_string(ctx.render(m)))
        return None


def _ion_entry(entry: dict[str, Any]) -> dict[str, Any]:
    """A LogEntry dict with its ``timestamp`` as a datetime, so the Ion file holds an Ion timestamp."""
    stamp = entry.get("timestamp")
    if isinstance(stamp, str):
        try:
            return {**entry, "timestamp": parse_instant(stamp)}
        except ValueError:
            return entry
    return entry


#### log.Fetch ##############################################################################################

@register
class Fetch(RunnableTask):
    """Fetch the logs of an execution into an Ion file (one LogEntry struct per line)."""

    type = "io.kestra.plugin.core.log.Fetch"
    aliases = ("io.kestra.core.tasks.log.Fetch",)
    title = "Fetch execution logs and store them in a file."
    examples = (
        Example("Fetch this execution's WARN and ERROR lines into a file.",
                "level: WARN\n"),
    )
    outputs = {
        "size": Output("integer", "Number of lines fetched."),
        "uri": Output("string", "URI of the ION file holding the lines."),
    }
    props = {
        "namespace": Prop(STRING, description="Namespace of the execution (default: the current one)."),
        "flowId": Prop(STRING, description="Flow of the execution (default: the current one)."),
        "executionId": Prop(STRING, description="The execution whose logs are fetched (default: the current one)."),
        "tasksId": Prop(LIST, description="Only the logs of these task ids."),
        "level": Prop(ENUM, default="INFO", values=LogLevel.names(), description="Minimum level of the fetched lines."),
    }

    async def run(self, ctx: RunContext) -> dict[str, Any] | None:
        execution_id = ctx.prop("executionId") or ctx.execution_id
        tasks_id = ctx.prop("tasksId")
        if tasks_id is not None and not isinstance(tasks_id, list):
            raise TaskFailed("tasksId must be a list of task ids")
        rows = await ctx.fetch_logs(
            execution_id, task_ids=[str(t) for t in tasks_id] if tasks_id else None, min_level=level_prop(ctx))
        rows = [_ion_entry(r) for r in rows]
        tmp = await ctx.open_temp_dir()
        path = Path(tmp) / f"{ctx.task_id}.ion"

        def write() -> int:
            with open(path, "w", encoding="utf-8") as f:
                return write_ion_rows(f, rows)

        size = await trio.to_thread.run_sync(write)
        uri = await ctx.put_file(path)
        return {"size": size, "uri": uri}
