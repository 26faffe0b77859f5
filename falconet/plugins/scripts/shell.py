"""``io.kestra.plugin.scripts.shell.*``: shell commands and scripts with the Process task runner."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from falconet.sdk import STRING, Example, Prop, register, RunContext
from falconet.plugins.scripts.base import (
    COMMANDS_PROP, COMMON_PROPS, SCRIPT_OUTPUTS, CommandsTask, ScriptTask, write_script_prop,
)


@register
class Commands(CommandsTask, ScriptTask):
    """Run ``commands`` (one shell line each, rendered) in one interpreter invocation."""

    type = "io.kestra.plugin.scripts.shell.Commands"
    title = "Execute one or more shell commands."
    examples = (
        Example("Run shell commands and keep a file.",
                "taskRunner:\n"
                "  type: io.kestra.plugin.core.runner.Process\n"
                "outputFiles:\n"
                "  - out.txt\n"
                "commands:\n"
                "  - echo \"{{ execution.id }}\" > out.txt\n"),
    )
    outputs = SCRIPT_OUTPUTS
    props = {**COMMON_PROPS, "commands": COMMANDS_PROP}


@register
class Script(ScriptTask):
    """Write the rendered ``script`` to a file of the working directory and run it with ``/bin/sh``."""

    type = "io.kestra.plugin.scripts.shell.Script"
    title = "Execute a shell script."
    examples = (
        Example("Run an inline shell script.",
                "taskRunner:\n"
                "  type: io.kestra.plugin.core.runner.Process\n"
                "script: |\n"
                "  echo \"Hello from {{ flow.id }}\"\n"),
    )
    outputs = SCRIPT_OUTPUTS
    props = {**COMMON_PROPS, "script": Prop(STRING, required=True, description="The shell script (rendered).")}

    async def commands(self, ctx: RunContext, working_dir: Path, extra: Mapping[str, Any],
                       python: str | None) -> list[str]:
        path = await write_script_prop(ctx, working_dir, extra, ".sh")
        return [f"/bin/sh {path}"]
