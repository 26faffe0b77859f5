"""``io.kestra.plugin.scripts.shell.*``: shell commands and scripts with the Process task runner."""
from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any, Mapping

import trio

from falconet.sdk import (
    STRING, Example, localize_storage_uris, Output, Prop, register, RunContext, TaskFailed, to_output_string,
)
from falconet.plugins.scripts.base import COMMANDS_PROP, COMMON_PROPS, CommandsTask, ScriptTask


async def write_script(working_dir: Path, text: str, suffix: str) -> Path:
    """Write ``text`` to a fresh file of the working directory (as Kestra does before running it)."""
    path = working_dir / f"script_{uuid.uuid4().hex[:12]}{suffix}"
    await trio.to_thread.run_sync(path.write_text, text, "utf-8")
    return path


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
    outputs = {
        "exitCode": Output("integer", "The exit code of the process."),
        "vars": Output("map", "Values the script printed as ::{\"outputs\": {...}}::."),
        "outputFiles": Output("map", "URIs of the files matching outputFiles, by name."),
    }
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
    outputs = {
        "exitCode": Output("integer", "The exit code of the process."),
        "vars": Output("map", "Values the script printed as ::{\"outputs\": {...}}::."),
        "outputFiles": Output("map", "URIs of the files matching outputFiles, by name."),
    }
    props = {**COMMON_PROPS, "script": Prop(STRING, required=True, description="The shell script (rendered).")}

    async def commands(self, ctx: RunContext, working_dir: Path, extra: Mapping[str, Any],
                       python: str | None) -> list[str]:
        script = ctx.raw("script")
        if script is None:
            raise TaskFailed("script is required")
        text = await localize_storage_uris(ctx, to_output_string(ctx.render(script, extra)), working_dir)
        path = await write_script(working_dir, text, ".sh")
        return [f"/bin/sh {path}"]
