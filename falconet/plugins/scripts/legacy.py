"""The legacy script tasks ``io.kestra.core.tasks.scripts.Bash`` and ``…Python`` (Kestra's pre-0.10 API).

Differences from the new API that these keep: ``interpreter`` is one program (default ``/bin/sh``) with
``interpreterArgs`` (``["-c"]``); ``exitOnFailed`` (default true) plays ``failFast``; ``outputFiles`` are
file *names* whose paths commands get as ``{{ outputFiles.<name> }}``, and ``outputDirs`` directory names
(``{{ outputDirs.<name> }}``) whose content is uploaded. Outputs add ``stdOutLineCount``,
``stdErrLineCount`` and the deprecated ``files`` (same map as ``outputFiles``).
"""
from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Any, Mapping

from falconet.sdk import (
    ANY, BOOLEAN, LIST, MAP, OBJECT, STRING, Example, Output, Prop, register, RunContext, safe_join, TaskFailed,
)
from falconet.plugins.scripts.base import COMMANDS_PROP, CommandsTask, ScriptTask, render_list
from falconet.plugins.scripts.protocol import LineConsumer

LEGACY_PROPS: dict[str, Prop] = {
    "interpreter": Prop(STRING, default="/bin/sh", description="The interpreter program."),
    "interpreterArgs": Prop(LIST, default=["-c"], description="Arguments of the interpreter before the script."),
    "exitOnFailed": Prop(BOOLEAN, default=True, description="Stop at the first failing command."),
    "inputFiles": Prop(ANY, description="Files to create: map of name to content or kestra:// URI (or JSON)."),
    "outputFiles": Prop(LIST, description="Names of files to upload; their paths are {{ outputFiles.<name> }}."),
    "outputDirs": Prop(LIST, description="Names of directories whose files are uploaded ({{ outputDirs.<name> }})."),
    "env": Prop(MAP, description="Additional environment variables."),
    "warningOnStdErr": Prop(BOOLEAN, default=True, description="End in WARNING when anything is written to stderr."),
    "runner": Prop(STRING, default="PROCESS", description="PROCESS or DOCKER (runs as PROCESS here)."),
    "dockerOptions": Prop(OBJECT, description="Docker options (ignored by the Process runner)."),
}

_LEGACY_OUTPUTS = {
    "exitCode": Output("integer", "The exit code of the commands."),
    "vars": Output("map", "Variables the commands printed with ::{\"outputs\": ...}::."),
    "outputFiles": Output("map", "URIs of the files matching outputFiles, by name."),
    "files": Output("map", "The same as outputFiles (deprecated name)."),
    "stdOutLineCount": Output("integer", "Number of lines written on standard output."),
    "stdErrLineCount": Output("integer", "Number of lines written on standard error."),
}


class _LegacyScript(ScriptTask):

    def _names(self, ctx: RunContext, name: str) -> list[str]:
        return render_list(ctx, ctx.raw(name), {}, name)

    def extra_vars(self, ctx: RunContext, working_dir: Path) -> dict[str, Any]:
        files = {n: str(safe_join(working_dir, n)) for n in self._names(ctx, "outputFiles")}
        dirs = {}
        for n in self._names(ctx, "outputDirs"):
            path = safe_join(working_dir, n)
            path.mkdir(parents=True, exist_ok=True)
            dirs[n] = str(path)
        return {"outputFiles": files, "outputDirs": dirs}

    def interpreter(self, ctx: RunContext, extra: Mapping[str, Any]) -> list[str]:
        program = ctx.render(ctx.raw("interpreter", "/bin/sh"), extra)
        args = render_list(ctx, ctx.raw("interpreterArgs", ["-c"]), extra, "interpreterArgs")
        return [str(program), *args]

    def fail_fast(self, ctx: RunContext) -> bool:
        return bool(ctx.prop("exitOnFailed"))

    def output_globs(self, ctx: RunContext, extra: Mapping[str, Any]) -> list[str]:
        names = [n.replace("[", "\\[").replace("*", "\\*").replace("?", "\\?").replace("{", "\\{")
                 for n in self._names(ctx, "outputFiles")]
        return names + [f"{d.rstrip('/')}/**" for d in self._names(ctx, "outputDirs")]

    def extra_outputs(self, consumer: LineConsumer) -> dict[str, Any]:
        return {"stdOutLineCount": consumer.stdout_count, "stdErrLineCount": consumer.stderr_count}

    async def run(self, ctx: RunContext) -> dict[str, Any] | None:
        try:
            outputs = await super().run(ctx)
        except TaskFailed as exc:
            if exc.outputs is not None:
                exc.outputs["files"] = exc.outputs["outputFiles"]
            raise
        assert outputs is not None
        outputs["files"] = outputs["outputFiles"]
        return outputs


@register
class Bash(CommandsTask, _LegacyScript):
    """Legacy shell task: run ``commands`` with ``interpreter`` + ``interpreterArgs``."""

    type = "io.kestra.core.tasks.scripts.Bash"
    title = "Execute shell commands (legacy API; use io.kestra.plugin.scripts.shell.Commands)."
    examples = (
        Example("Run shell commands (deprecated: use io.kestra.plugin.scripts.shell.Commands).",
                "commands:\n"
                "  - echo \"The current execution is {{ execution.id }}\"\n"),
    )
    outputs = _LEGACY_OUTPUTS
    props = {**LEGACY_PROPS, "commands": COMMANDS_PROP}


@register
class Python(_LegacyScript):
    """Legacy Python task: ``inputFiles`` must hold ``main.py``; runs ``python main.py <args>`` with the
    server's interpreter (``pythonPath`` overrides it). ``requirements`` are not installed here: a task
    listing any fails with a message saying so."""

    type = "io.kestra.core.tasks.scripts.Python"
    title = "Execute a Python script (legacy API; use io.kestra.plugin.scripts.python.Script)."
    examples = (
        Example("Run a Python script (deprecated: use io.kestra.plugin.scripts.python.Script).",
                "inputFiles:\n"
                "  main.py: |\n"
                "    print(\"Hello from Python\")\n"),
    )
    outputs = _LEGACY_OUTPUTS
    props = {
        **LEGACY_PROPS,
        "pythonPath": Prop(STRING, description="The Python interpreter (default: the server's)."),
        "args": Prop(LIST, description="Arguments passed to main.py."),
        "requirements": Prop(LIST, description="pip requirements (unsupported by Falconet's Process runner)."),
        "virtualEnv": Prop(BOOLEAN, default=True, description="Create a virtualenv (not needed here)."),
    }

    async def commands(self, ctx: RunContext, working_dir: Path, extra: Mapping[str, Any],
                       python: str | None) -> list[str]:
        requirements = render_list(ctx, ctx.raw("requirements"), extra, "requirements")
        if requirements:
            raise TaskFailed("Installing `requirements` is not supported by Falconet's Process task runner "
                             f"(requested: {', '.join(requirements)}); install them in the server's Python "
                             "environment")
        if not (working_dir / "main.py").is_file():
            raise TaskFailed("Invalid input files structure, expecting inputFiles property to contain at least "
                             "a main.py key with python code value.")
        custom = ctx.raw("pythonPath")
        python = python if custom is None else str(ctx.render(custom, extra))
        args = render_list(ctx, ctx.raw("args"), extra, "args")
        return [shlex.join([python or sys.executable, "main.py", *args])]

    async def python_executable(self, ctx: RunContext, root: Path, extra: Mapping[str, Any]) -> str | None:
        return sys.executable
