"""``io.kestra.plugin.scripts.python.*``: Python commands and scripts with the Process task runner.

``python`` resolves to the server's own interpreter (``sys.executable``) through a shim directory put first
on PATH, so scripts can use everything installed next to Falconet — including the ``kestra`` library's
``Kestra.outputs(...)``. ``dependencies`` are not installed by the Process runner here: a task that lists
any fails with a message saying so (install them in the server's environment, or use ``beforeCommands``).
"""
from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Any, Mapping

from ...runtime.plugin import BOOLEAN, LIST, STRING, Prop, RunContext, TaskFailed, register
from .base import COMMON_PROPS, ScriptTask, render_list
from .shell import write_script

PYTHON_PROPS: dict[str, Prop] = {
    **COMMON_PROPS,
    "dependencies": Prop(LIST, description="Python packages to install (unsupported by Falconet's Process runner)."),
    "pythonVersion": Prop(STRING, description="Python version (the server's interpreter is used here)."),
    "packageManager": Prop(STRING, default="UV", description="Package manager for dependencies."),
    "dependencyCacheEnabled": Prop(BOOLEAN, default=True, description="Cache installed dependencies."),
}


class _PythonTask(ScriptTask):
    python_shim = True

    def check_dependencies(self, ctx: RunContext, extra: Mapping[str, Any]) -> None:
        deps = render_list(ctx, ctx.raw("dependencies"), extra, "dependencies")
        if deps:
            raise TaskFailed(
                "Installing `dependencies` is not supported by Falconet's Process task runner "
                f"(requested: {', '.join(deps)}); install them in the server's Python environment "
                "or run pip in `beforeCommands`")
        version = ctx.raw("pythonVersion")
        if version is not None:
            ctx.logger.debug(f"pythonVersion '{version}' ignored: running with Python "
                             f"{sys.version_info.major}.{sys.version_info.minor} ({sys.executable})")


@register
class Commands(_PythonTask):
    """Run ``commands`` (shell lines, e.g. ``python main.py``) with ``python`` = the server's interpreter."""

    type = "io.kestra.plugin.scripts.python.Commands"
    title = "Execute Python commands."
    props = {**PYTHON_PROPS, "commands": Prop(LIST, required=True, description="The commands to run.")}

    async def commands(self, ctx: RunContext, working_dir: Path, extra: Mapping[str, Any]) -> list[str]:
        self.check_dependencies(ctx, extra)
        commands = render_list(ctx, ctx.raw("commands"), extra, "commands")
        if not commands:
            raise TaskFailed("commands must not be empty")
        return commands


@register
class Script(_PythonTask):
    """Write the rendered ``script`` to a ``.py`` file of the working directory and run it with the
    server's Python interpreter."""

    type = "io.kestra.plugin.scripts.python.Script"
    title = "Execute a Python script."
    props = {**PYTHON_PROPS, "script": Prop(STRING, required=True, description="The Python script (rendered).")}

    async def commands(self, ctx: RunContext, working_dir: Path, extra: Mapping[str, Any]) -> list[str]:
        self.check_dependencies(ctx, extra)
        script = ctx.raw("script")
        if script is None:
            raise TaskFailed("script is required")
        path = await write_script(working_dir, str(ctx.render(script, extra)), ".py")
        return [f"{shlex.quote(sys.executable)} {shlex.quote(str(path))}"]
