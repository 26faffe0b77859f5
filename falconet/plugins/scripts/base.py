"""The common machinery of script tasks (``shell.*``, ``python.*``, ``node.*``) run by the Process task
runner.

One attempt:

1. a fresh temporary directory holds the **working directory** (``{{ workingDir }}``, env ``WORKING_DIR``)
   and, beside it, the **output directory** (``{{ outputDir }}``, env ``OUTPUT_DIR``);
2. ``namespaceFiles`` then ``inputFiles`` are written into the working directory;
3. every ``kestra://`` URI in ``beforeCommands``, ``commands`` or ``script`` is downloaded into the working
   directory and replaced by its local path (as Kestra's script runner does);
4. the command — ``interpreter`` + one script made of ``set -e`` (when ``failFast`` and the interpreter is a
   shell), ``beforeCommands`` and the task's commands — runs in a new process group with the server's
   environment plus ``env``, its lines streamed into the logs and parsed for ``::{…}::`` outputs;
5. files matching ``outputFiles`` and everything in the output directory are uploaded.

Inside a ``WorkingDirectory`` the directory it shares is the working directory itself (earlier tasks' files
are there), and the output directory is a private sibling removed after the attempt.

Outputs: ``vars`` (merged ``::{"outputs":…}::``), ``exitCode``, ``outputFiles`` (name → ``kestra:///`` URI).
A non-zero exit fails the attempt with "Command failed with exit code N" and keeps those outputs; with
``warningOnStdErr`` (default true) any stderr line turns SUCCESS into WARNING. Kill and timeout end the whole
process group.
"""
from __future__ import annotations

import abc
import json
import os
import shlex
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any, Mapping

import trio

from falconet.sdk import (
    ANY, BOOLEAN, LIST, MAP, OBJECT, STRING, as_file_map, copy_namespace_files, Example, localize_storage_uris,
    Output, Plugin, Prop, RunContext, to_output_string, upload_output_files, write_input_files,
)
from falconet.sdk.plugin import \
    RunnableTask, TaskFailed, register
from falconet.plugins.scripts import process as _process
from falconet.plugins.scripts.protocol import LineConsumer

PROCESS_RUNNER = "io.kestra.plugin.core.runner.Process"
DEFAULT_INTERPRETER = ["/bin/sh", "-c"]


#### the task runner declaration ############################################################################

class TaskRunner(Plugin):
    """A task runner type (where a script's process runs)."""


@register
class Process(TaskRunner):
    """Run script tasks as local subprocesses of the server (the default and only runner in Falconet; a
    ``taskRunner`` of another type is accepted and runs as Process with a WARN log)."""

    type = PROCESS_RUNNER
    title = "Task runner that executes a task as a subprocess on the server host."
    examples = (
        Example("Run a script task as a local process.",
                "id: example\n"
                "namespace: company.team\n"
                "\n"
                "tasks:\n"
                "  - id: script\n"
                "    type: io.kestra.plugin.scripts.shell.Commands\n"
                "    taskRunner:\n"
                "      type: io.kestra.plugin.core.runner.Process\n"
                "    commands:\n"
                "      - echo hello\n", full=True),
    )
    props = {}


#### common properties ######################################################################################

COMMON_PROPS: dict[str, Prop] = {
    "taskRunner": Prop(OBJECT, dynamic=False, description="The task runner ({type: ...}); Process here."),
    "containerImage": Prop(STRING, description="Container image (ignored by the Process runner)."),
    "beforeCommands": Prop(LIST, description="Commands run before the main ones, in the same shell."),
    "env": Prop(MAP, description="Additional environment variables."),
    "interpreter": Prop(LIST, default=list(DEFAULT_INTERPRETER), dynamic=False,
                        description="The interpreter and its arguments; the script is its last argument."),
    "failFast": Prop(BOOLEAN, default=True, description="Stop at the first failing command (set -e)."),
    "warningOnStdErr": Prop(BOOLEAN, default=True, description="End in WARNING when anything is written to stderr."),
    "namespaceFiles": Prop(OBJECT, description="Namespace files to copy in: {enabled, include, exclude}."),
    "inputFiles": Prop(ANY, description="Files to create: map of name to content or kestra:// URI (or JSON)."),
    "outputFiles": Prop(LIST, description="Globs of working-directory files to upload as outputs."),
    "outputDirectory": Prop(BOOLEAN, default=False, description="Deprecated: the output directory always exists."),
    "targetOS": Prop(STRING, default="AUTO", description="Target OS (ignored: the host's)."),
    "runner": Prop(STRING, description="Deprecated: PROCESS or DOCKER (runs as PROCESS here)."),
    "docker": Prop(OBJECT, description="Deprecated Docker options (ignored by the Process runner)."),
}


def render_list(ctx: RunContext, raw: Any, extra: Mapping[str, Any], what: str) -> list[str]:
    """Render a list-of-strings property; a string renders to a JSON list or to a single item."""
    if raw is None:
        return []
    if isinstance(raw, str):
        rendered = ctx.render(raw, extra)
        try:
            value = json.loads(rendered)
        except json.JSONDecodeError:
            return [rendered]
        if not isinstance(value, list):
            return [rendered]
        return [to_output_string(v) for v in value]
    if not isinstance(raw, list):
        raise TaskFailed(f"{what} must be a list of strings")
    return [to_output_string(v) for v in ctx.render(raw, extra)]


#: the ``commands`` property of the ``*.Commands`` tasks (see :class:`CommandsTask`)
COMMANDS_PROP = Prop(LIST, required=True, description="The commands to run.")

#: the outputs of the ``*.Commands`` and ``*.Script`` tasks
SCRIPT_OUTPUTS = {
    "exitCode": Output("integer", "The exit code of the process."),
    "vars": Output("map", "Values the script printed as ::{\"outputs\": {...}}::."),
    "outputFiles": Output("map", "URIs of the files matching outputFiles, by name."),
}


async def write_script(working_dir: Path, text: str, suffix: str) -> Path:
    """Write ``text`` to a fresh file of the working directory (as Kestra does before running it)."""
    path = working_dir / f"script_{uuid.uuid4().hex[:12]}{suffix}"
    await trio.to_thread.run_sync(path.write_text, text, "utf-8")
    return path


async def write_script_prop(ctx: RunContext, working_dir: Path, extra: Mapping[str, Any], suffix: str) -> Path:
    """The ``*.Script`` tasks' ``script`` property, rendered (storage URIs made local files), written to a
    fresh file of the working directory; TaskFailed when it is missing."""
    script = ctx.raw("script")
    if script is None:
        raise TaskFailed("script is required")
    text = await localize_storage_uris(ctx, to_output_string(ctx.render(script, extra)), working_dir)
    return await write_script(working_dir, text, suffix)


def is_shell(interpreter: list[str]) -> bool:
    return bool(interpreter) and os.path.basename(interpreter[0]) in ("sh", "bash", "dash", "zsh", "ksh", "ash")


#### the script task base ###################################################################################

class ScriptTask(RunnableTask):
    """Base of script tasks: subclasses return the main command lines from :meth:`commands`."""

    props = COMMON_PROPS

    @abc.abstractmethod
    async def commands(self, ctx: RunContext, working_dir: Path, extra: Mapping[str, Any],
                       python: str | None) -> list[str]:
        """The main command lines (rendered), run after ``beforeCommands``; ``python`` is the interpreter
        chosen by :meth:`python_executable`."""

    async def python_executable(self, ctx: RunContext, root: Path, extra: Mapping[str, Any]) -> str | None:
        """The Python interpreter that ``python``/``python3`` must run for this task (a shim directory is put
        first on PATH), or None to leave PATH alone."""
        return None

    async def prepare_env(self, ctx: RunContext, root: Path, working_dir: Path, extra: Mapping[str, Any],
                          env: dict[str, str]) -> None:
        """Adjust the process environment ``env`` before the commands run (a language's package folder);
        ``root`` is the attempt's private scratch folder."""

    def interpreter(self, ctx: RunContext, extra: Mapping[str, Any]) -> list[str]:
        raw = ctx.raw("interpreter", None)
        interpreter = render_list(ctx, raw, extra, "interpreter") if raw is not None else list(DEFAULT_INTERPRETER)
        if not interpreter:
            raise TaskFailed("interpreter must not be empty")
        return interpreter

    def output_globs(self, ctx: RunContext, extra: Mapping[str, Any]) -> list[str]:
        return render_list(ctx, ctx.raw("outputFiles"), extra, "outputFiles")

    def extra_outputs(self, consumer: LineConsumer) -> dict[str, Any]:
        """Outputs added to ``vars``/``exitCode``/``outputFiles`` (legacy tasks add line counts)."""
        return {}

    def extra_vars(self, ctx: RunContext, working_dir: Path) -> dict[str, Any]:
        """Variables added to ``workingDir``/``outputDir`` when rendering this task's properties."""
        return {}

    def fail_fast(self, ctx: RunContext) -> bool:
        return bool(ctx.prop("failFast"))

    def check_runner(self, ctx: RunContext) -> None:
        runner = ctx.raw("taskRunner")
        if runner is not None:
            kind = runner.get("type") if isinstance(runner, dict) else None
            if not isinstance(kind, str):
                raise TaskFailed("taskRunner must be an object with a type")
            if kind != PROCESS_RUNNER:
                ctx.logger.warn(f"Task runner '{kind}' is not available in Falconet; "
                                f"the task runs with the Process task runner ({PROCESS_RUNNER}) instead")
        legacy = ctx.raw("runner")
        if legacy is not None and str(legacy).upper() != "PROCESS":
            ctx.logger.warn(f"runner '{legacy}' is not available in Falconet; the task runs as PROCESS instead")

    async def run(self, ctx: RunContext) -> dict[str, Any] | None:
        self.check_runner(ctx)
        root = Path(await ctx.open_temp_dir())
        if getattr(ctx, "shared_temp_dir", False):
            # inside a WorkingDirectory: the shared directory is the working directory; the output directory
            # and interpreter shims go to a private sibling so that later tasks and the WorkingDirectory's
            # outputFiles globs never see them
            scratch = Path(await trio.to_thread.run_sync(
                lambda: tempfile.mkdtemp(prefix=f"{root.name}-task-", dir=root.parent)))
            working_dir = root
        else:
            scratch, working_dir = root, root / "working"
        try:
            return await self._run_in(ctx, scratch, working_dir)
        finally:
            if scratch is not root:
                with trio.CancelScope(shield=True):
                    await trio.to_thread.run_sync(shutil.rmtree, scratch, True)

    async def _run_in(self, ctx: RunContext, root: Path, working_dir: Path) -> dict[str, Any]:
        """One run with ``working_dir`` as the process's cwd and ``root`` for the output directory and
        interpreter shims (the same folder outside a WorkingDirectory)."""
        output_dir = root / "outputs"
        await trio.Path(working_dir).mkdir(exist_ok=True)
        await trio.Path(output_dir).mkdir(exist_ok=True)
        extra = {"workingDir": str(working_dir), "outputDir": str(output_dir),
                 **self.extra_vars(ctx, working_dir)}

        await copy_namespace_files(ctx, working_dir, ctx.render(ctx.raw("namespaceFiles"), extra))
        raw_inputs = ctx.raw("inputFiles")
        await write_input_files(ctx, working_dir, as_file_map(ctx.render(raw_inputs, extra), "inputFiles"))

        env = dict(os.environ)
        env.update({"WORKING_DIR": str(working_dir), "OUTPUT_DIR": str(output_dir)})
        python = await self.python_executable(ctx, root, extra)
        if python is not None:
            env["PATH"] = str(_python_shim(root, python)) + os.pathsep + env.get("PATH", "")
        await self.prepare_env(ctx, root, working_dir, extra, env)
        task_env = as_file_map(ctx.render(ctx.raw("env"), extra), "env")
        env.update({str(k): to_output_string(v)
                    for k, v in task_env.items()})

        interpreter = self.interpreter(ctx, extra)
        before = render_list(ctx, ctx.raw("beforeCommands"), extra, "beforeCommands")
        lines = before + await self.commands(ctx, working_dir, extra, python)
        if self.fail_fast(ctx) and is_shell(interpreter):
            lines = ["set -e"] + lines
        args = interpreter + [await localize_storage_uris(ctx, "\n".join(lines), working_dir)]

        consumer = LineConsumer(ctx)
        try:
            exit_code = await _process.run_process(args, cwd=str(working_dir), env=env, on_line=consumer.feed,
                                                   track=ctx.track_process)
        except OSError as exc:
            raise TaskFailed(f"Unable to start {shlex.join(interpreter)}: {exc}") from exc

        output_files = await upload_output_files(ctx, working_dir, self.output_globs(ctx, extra), output_dir)
        outputs = {"vars": consumer.vars, "exitCode": exit_code, "outputFiles": output_files,
                   **self.extra_outputs(consumer)}
        if exit_code != 0:
            # Kestra keeps vars, exitCode and outputFiles on the failed task run
            raise TaskFailed(f"Command failed with exit code {exit_code}", outputs=outputs)
        if ctx.prop("warningOnStdErr") and consumer.stderr_count:
            ctx.set_warning()
        return outputs


def _python_shim(root: Path, python: str) -> Path:
    """A directory to put first on PATH so that ``python`` and ``python3`` run ``python``: a virtual
    environment's own ``bin`` (a symlink elsewhere would lose the venv), else a ``bin`` under ``root``."""
    bin_dir = Path(python).parent
    if (bin_dir.parent / "pyvenv.cfg").is_file() and (bin_dir / "python3").exists():
        return bin_dir
    shim = root / "bin"
    shim.mkdir(exist_ok=True)
    for name in ("python", "python3"):
        link = shim / name
        if not link.exists():
            link.symlink_to(python)
    return shim


class CommandsTask:
    """Mixin for the tasks whose main command lines are their ``commands`` property (shell/python
    ``Commands``, legacy ``Bash``): put it before :class:`ScriptTask` in the bases."""

    async def commands(self, ctx: RunContext, working_dir: Path, extra: Mapping[str, Any],
                       python: str | None) -> list[str]:
        """The rendered ``commands`` list; TaskFailed when it is empty."""
        commands = render_list(ctx, ctx.raw("commands"), extra, "commands")
        if not commands:
            raise TaskFailed("commands must not be empty")
        return commands
