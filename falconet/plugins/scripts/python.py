"""``io.kestra.plugin.scripts.python.*``: Python commands and scripts with the Process task runner.

``python``/``python3`` resolve to the task's interpreter through a shim directory put first on PATH:

* without ``dependencies``: the server's own interpreter (``sys.executable``), so scripts can use what is
  installed next to Falconet — including the ``kestra`` library's ``Kestra.outputs(...)``;
* with ``dependencies``: a virtual environment (``--system-site-packages``) where the server's ``pip``
  installed them.
  With ``dependencyCacheEnabled`` (default true) the environment is cached per (dependency list, Python
  version) under ``<tmp>/falconet-python-deps/`` and reused by later tasks; otherwise it lives in the
  attempt's temporary directory. pip's output goes to the task logs (DEBUG/WARN); a failed install fails
  the task with pip's exit code.

``pythonVersion`` and ``packageManager`` (UV) are accepted, but the server's Python and pip are used.
"""
from __future__ import annotations

import shlex
import sys
import tempfile
from pathlib import Path
from typing import Any, Mapping

from falconet.sdk import BOOLEAN, LIST, STRING, Example, Prop, register, RunContext
from falconet.plugins.scripts.base import (
    COMMANDS_PROP, COMMON_PROPS, SCRIPT_OUTPUTS, CommandsTask, ScriptTask, render_list, write_script_prop,
)
from falconet.plugins.scripts.deps import cache_key, cached_environment, run_logged

PYTHON_PROPS: dict[str, Prop] = {
    **COMMON_PROPS,
    "dependencies": Prop(LIST, description="Python packages to install with pip into a virtual environment."),
    "pythonVersion": Prop(STRING, description="Python version (the server's interpreter is used here)."),
    "packageManager": Prop(STRING, default="UV", description="Package manager for dependencies (pip is used here)."),
    "dependencyCacheEnabled": Prop(BOOLEAN, default=True, description="Reuse environments with the same dependencies."),
}

#: where cached dependency environments live (one folder per dependency-list hash)
DEPS_CACHE = Path(tempfile.gettempdir()) / "falconet-python-deps"


#### dependency environments ################################################################################

def _venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


async def _build_venv(ctx: RunContext, target: Path, deps: list[str]) -> None:
    """A pip-less venv seeing the server's packages, filled by the server's own pip (``pip --python``)."""
    await run_logged(ctx, [sys.executable, "-m", "venv", "--without-pip", "--system-site-packages", str(target)],
                     "create a virtual environment")
    await run_logged(ctx, [sys.executable, "-m", "pip", "--python", str(_venv_python(target)), "install",
                           "--disable-pip-version-check", "--no-input", *deps],
                     f"install dependencies {', '.join(deps)}")


async def dependency_python(ctx: RunContext, deps: list[str], root: Path, cached: bool) -> str:
    """The interpreter of an environment holding ``deps`` (built now, or reused from the cache)."""
    if not cached:
        venv = root / "venv"
        ctx.logger.info(f"Installing dependencies: {', '.join(deps)}")
        await _build_venv(ctx, venv, deps)
        return str(_venv_python(venv))
    venv = await cached_environment(ctx, DEPS_CACHE, cache_key(sys.version, *sorted(deps)),
                                    lambda target: _build_venv(ctx, target, deps),
                                    lambda target: _venv_python(target).exists(), ", ".join(deps))
    return str(_venv_python(venv))


#### the tasks ##############################################################################################

class _PythonTask(ScriptTask):

    async def python_executable(self, ctx: RunContext, root: Path, extra: Mapping[str, Any]) -> str | None:
        version = ctx.raw("pythonVersion")
        if version is not None:
            ctx.logger.debug(f"pythonVersion '{version}' ignored: running with Python "
                             f"{sys.version_info.major}.{sys.version_info.minor} ({sys.executable})")
        deps = render_list(ctx, ctx.raw("dependencies"), extra, "dependencies")
        if not deps:
            return sys.executable
        return await dependency_python(ctx, deps, root, bool(ctx.prop("dependencyCacheEnabled")))


@register
class Commands(CommandsTask, _PythonTask):
    """Run ``commands`` (shell lines, e.g. ``python main.py``) with ``python`` = the task's interpreter."""

    type = "io.kestra.plugin.scripts.python.Commands"
    title = "Execute Python commands."
    examples = (
        Example("Run a Python file of the working directory.",
                "taskRunner:\n"
                "  type: io.kestra.plugin.core.runner.Process\n"
                "inputFiles:\n"
                "  main.py: |\n"
                "    print('hello')\n"
                "commands:\n"
                "  - python main.py\n"),
    )
    outputs = SCRIPT_OUTPUTS
    props = {**PYTHON_PROPS, "commands": COMMANDS_PROP}


@register
class Script(_PythonTask):
    """Write the rendered ``script`` to a ``.py`` file of the working directory and run it with the task's
    interpreter."""

    type = "io.kestra.plugin.scripts.python.Script"
    title = "Execute a Python script."
    examples = (
        Example("Run an inline Python script that sets an output.",
                "taskRunner:\n"
                "  type: io.kestra.plugin.core.runner.Process\n"
                "script: |\n"
                "  import json\n"
                "  print('::' + json.dumps({'outputs': {'answer': 42}}) + '::')\n"),
    )
    outputs = SCRIPT_OUTPUTS
    props = {**PYTHON_PROPS, "script": Prop(STRING, required=True, description="The Python script (rendered).")}

    async def commands(self, ctx: RunContext, working_dir: Path, extra: Mapping[str, Any],
                       python: str | None) -> list[str]:
        path = await write_script_prop(ctx, working_dir, extra, ".py")
        return [f"{shlex.quote(python or sys.executable)} {shlex.quote(str(path))}"]
