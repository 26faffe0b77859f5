"""Running ``git`` for the git tasks: the common connection properties, credentials, and a clone.

Every command runs through the script tasks' Process runner (its own process group, killed with the task,
recorded for crash recovery) with:

* ``GIT_TERMINAL_PROMPT=0`` — git never waits for a terminal;
* ``username``/``password`` handed over by a ``GIT_ASKPASS`` helper reading them from the child's
  environment: they never appear on a command line, in the URL or in ``.git/config``, and both are masked
  in every logged line and error message;
* ``protocol.ext.allow=never`` (the ``ext::`` transport runs commands) and ``--`` before every URL and path
  taken from a flow, so no property can smuggle an option in.

git's own output goes to the task logs at DEBUG; a failing command fails the task with its last lines.
"""
from __future__ import annotations

import os
import re
import shutil
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Iterable, Mapping, Sequence

import trio

from falconet.plugins.scripts import process as _process
from falconet.sdk import BOOLEAN, MAP, OBJECT, STRING, Prop, RunContext, TaskFailed, to_output_string

#: properties of every git task (Kestra's AbstractGitTask)
CONNECTION_PROPS: dict[str, Prop] = {
    "url": Prop(STRING, required=True, description="The repository URL (HTTP(S), SSH, file or local path)."),
    "username": Prop(STRING, description="The user name for HTTP authentication."),
    "password": Prop(STRING, description="The password or personal access token for HTTP authentication."),
    "gitConfig": Prop(MAP, description="git configuration values applied to the commands "
                                       "(e.g. core.autocrlf: false)."),
    "cloneSubmodules": Prop(BOOLEAN, default=False, description="Also clone the repository's submodules."),
}

#: properties of the tasks that change flows or namespace files (Kestra's AbstractCloningTask): Kestra calls
#: its own API with them; here the tasks use the server's services directly, so they are accepted and unused
API_PROPS: dict[str, Prop] = {
    "kestraUrl": Prop(STRING, description="Kestra's API URL (unused: the server's own services are called)."),
    "auth": Prop(OBJECT, description="Kestra API credentials (unused: the server's own services are called)."),
}

BRANCH_PROP = Prop(STRING, default="main", description="The branch to read from / write to.")
DRY_RUN_PROP = Prop(BOOLEAN, default=False, description="Compute the diff without applying any change.")

_ASKPASS = """#!/bin/sh
case "$1" in
  [Uu]sername*) printf '%s\\n' "$FALCONET_GIT_USERNAME" ;;
  *) printf '%s\\n' "$FALCONET_GIT_PASSWORD" ;;
esac
"""
_MAX_ERROR_LINES = 20
_CONFIG_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9-]*(\.[^\s=]+)?\.[A-Za-z][A-Za-z0-9-]*$")


def git_program() -> str:
    """The ``git`` program on PATH; TaskFailed naming what is missing otherwise."""
    git = shutil.which("git")
    if git is None:
        raise TaskFailed("git is not installed on this server: no 'git' program on PATH "
                         "(install git, e.g. the Debian package git)")
    return git


def check_ref(value: str, what: str) -> str:
    """A branch/tag/commit name from a flow: non-empty, no leading ``-``, no whitespace or control chars."""
    if not value or value.startswith("-") or len(value) > 255 or any(c.isspace() or ord(c) < 32 for c in value):
        raise TaskFailed(f"Invalid {what} {value[:100]!r}")
    return value


def relative_dir(value: str, what: str) -> PurePosixPath:
    """A folder of the repository named by a flow (``flows``, ``a/b``): relative, no ``..``."""
    path = PurePosixPath(value.strip().strip("/") or ".")
    if path.is_absolute() or ".." in path.parts or "\\" in value or len(value) > 1024:
        raise TaskFailed(f"Invalid {what} {value[:200]!r}: it must be a folder inside the repository")
    return path


@dataclass
class Git:
    """``git`` for one task attempt: credentials, config overrides, and the folder for the askpass helper."""

    ctx: RunContext
    scratch: Path
    username: str | None = None
    password: str | None = None
    config: Mapping[str, str] | None = None

    @classmethod
    async def open(cls, ctx: RunContext, scratch: Path) -> "Git":
        """Read the connection properties of the running task (``gitConfig`` keys checked)."""
        username, password = ctx.prop("username"), ctx.prop("password")
        config: dict[str, str] = {}
        for key, value in (ctx.prop("gitConfig") or {}).items():
            if not isinstance(key, str) or not _CONFIG_KEY.match(key):
                raise TaskFailed(f"Invalid gitConfig key {str(key)[:100]!r}: expected section.name")
            config[key] = "true" if value is True else "false" if value is False else to_output_string(value)
        git = cls(ctx, scratch, username or None, password or None, config)
        if git.password is not None or git.username is not None:
            await trio.to_thread.run_sync(git.write_askpass)
        return git

    @property
    def _askpass(self) -> Path:
        return self.scratch / "git-askpass.sh"

    def write_askpass(self) -> None:
        """Write the GIT_ASKPASS helper (owner-only) into the scratch folder. Blocking."""
        self._askpass.write_text(_ASKPASS, "utf-8")
        self._askpass.chmod(stat.S_IRWXU)

    def mask(self, text: str) -> str:
        for secret in (self.password, self.username):
            if secret and len(secret) >= 3:
                text = text.replace(secret, "****")
        return text

    def _env(self, extra: Mapping[str, str] | None) -> dict[str, str]:
        env = dict(os.environ)
        env.update({"GIT_TERMINAL_PROMPT": "0", "GIT_PROTOCOL_FROM_USER": "1", "LC_ALL": "C"})
        if self.username is not None or self.password is not None:
            env.update({"GIT_ASKPASS": str(self._askpass), "FALCONET_GIT_USERNAME": self.username or "",
                        "FALCONET_GIT_PASSWORD": self.password or ""})
        env.update(extra or {})
        return env

    async def run(self, args: Sequence[str], *, cwd: Path, what: str, env: Mapping[str, str] | None = None,
                  log_stdout: bool = True) -> list[str]:
        """Run ``git args`` in ``cwd``; its stdout lines (also logged at DEBUG unless ``log_stdout`` is
        false). TaskFailed "Unable to {what}" with git's last lines when it exits non-zero."""
        out: list[str] = []
        errors: list[str] = []

        def on_line(line: str, stderr: bool) -> None:
            line = self.mask(line)
            if stderr:
                errors.append(line)
                del errors[:-_MAX_ERROR_LINES]
            else:
                out.append(line)
            if stderr or log_stdout:
                self.ctx.logger.debug(line)

        config = ["-c", "protocol.ext.allow=never"]
        for key, value in (self.config or {}).items():
            config += ["-c", f"{key}={value}"]
        try:
            code = await _process.run_process([git_program(), *config, *args], cwd=str(cwd), env=self._env(env),
                                              on_line=on_line, track=self.ctx.track_process)
        except OSError as exc:
            raise TaskFailed(f"Unable to {what}: {exc}") from exc
        if code != 0:
            detail = "; ".join(line for line in errors if line.strip())
            raise TaskFailed(f"Unable to {what}: git exited with code {code}" + (f": {detail}" if detail else ""))
        return out

    async def remote_has_branch(self, url: str, branch: str) -> bool:
        heads = await self.run(["ls-remote", "--heads", "--", url, f"refs/heads/{branch}"], cwd=self.scratch,
                               what=f"read the branches of {self.mask(url)}")
        return any(line.endswith(f"refs/heads/{branch}") for line in heads)

    async def clone(self, url: str, target: Path, *, branch: str | None = None, depth: int | None = None,
                    submodules: bool = False) -> None:
        """``git clone`` into ``target`` (created; it must be empty)."""
        args = ["clone", "--quiet"]
        if depth is not None:
            args.append(f"--depth={depth}")
        if branch is not None:
            args.append(f"--branch={check_ref(branch, 'branch')}")
        if submodules:
            args.append("--recurse-submodules")
        self.ctx.logger.info(f"Cloning {self.mask(url)}" + (f" (branch {branch})" if branch else ""))
        await self.run([*args, "--", url, str(target)], cwd=self.scratch, what=f"clone {self.mask(url)}")


async def open_scratch(prefix: str) -> Path:
    """A private temporary folder (the caller removes it with :func:`remove_scratch`)."""
    return Path(await trio.to_thread.run_sync(lambda: tempfile.mkdtemp(prefix=prefix)))


async def remove_scratch(path: Path) -> None:
    with trio.CancelScope(shield=True):
        await trio.to_thread.run_sync(shutil.rmtree, path, True)


def repository_files(root: Path, *, recursive: bool = True) -> Iterable[str]:
    """Relative ``/`` paths of the regular files under ``root`` (sorted; blocking). ``.git`` folders,
    ``.gitignore``/``.gitkeep`` files and symbolic links (which could point out of the clone) are skipped."""
    found = []
    for dirpath, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d != ".git" and not os.path.islink(os.path.join(dirpath, d)))
        if not recursive:
            dirs[:] = []
        for name in names:
            full = Path(dirpath) / name
            if name in (".gitignore", ".gitkeep") or full.is_symlink() or not full.is_file():
                continue
            found.append(full.relative_to(root).as_posix())
    return sorted(found)

