"""Virtual environments the tests install packages into, cached across runs and safe for concurrent runs.

One folder per (name, Python version) under ``$FALCONET_TEST_CACHE`` (default ``$XDG_CACHE_HOME`` or
``~/.cache``, then ``falconet-tests``): the first run installs (it needs the package index), later runs reuse
the environment without the network. Two test runs at once never build the same environment twice: the
build holds an exclusive lock on ``<folder>.lock`` (``fcntl.flock``), and an environment counts as built
only once its ``.installed`` marker (written last) names exactly the requested packages. Each build is
recorded in ``builds.log`` of the cache folder.
"""
from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Sequence

import pytest

INSTALL_TIMEOUT = 600


def cache_root() -> Path:
    explicit = os.environ.get("FALCONET_TEST_CACHE")
    if explicit:
        return Path(explicit)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "falconet-tests"


def cached_venv(name: str, requirements: Sequence[str], *, root: Path | None = None) -> Path:
    """The ``bin/python`` of a venv named ``name`` holding ``requirements``; built on first use.

    Skips the calling test (with pip's message) when the packages cannot be installed, e.g. offline on the
    first run.
    """
    root = root or cache_root()
    root.mkdir(parents=True, exist_ok=True)
    venv = root / f"{name}-py{sys.version_info[0]}{sys.version_info[1]}"
    python = venv / "bin" / "python"
    marker = venv / ".installed"
    wanted = "\n".join(requirements) + "\n"
    with open(root / f"{venv.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)          # released when the file closes, even if this process dies
        if python.exists() and marker.exists() and marker.read_text() == wanted:
            return python
        shutil.rmtree(venv, ignore_errors=True)     # a build interrupted earlier, or other requirements
        try:
            # a pip-less venv filled by this interpreter's pip: much faster than bootstrapping pip into it
            subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True,
                           capture_output=True, timeout=120)
            install = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet",
                                      "--disable-pip-version-check", "--no-input", *requirements],
                                     capture_output=True, text=True, timeout=INSTALL_TIMEOUT)
        except (subprocess.SubprocessError, OSError) as exc:
            shutil.rmtree(venv, ignore_errors=True)
            pytest.skip(f"cannot build a venv with {' '.join(requirements)}: {exc}")
        if install.returncode != 0:
            shutil.rmtree(venv, ignore_errors=True)
            pytest.skip(f"cannot install {' '.join(requirements)}: {install.stderr.strip()[-300:]}")
        marker.write_text(wanted)
        with open(root / "builds.log", "a") as log:
            log.write(f"{venv.name} built by process {os.getpid()}\n")
    return python


def make_wheel(directory: Path, name: str = "falconet_tinydep", version: str = "1.0") -> Path:
    """A minimal pure-Python wheel (no dependencies) so pip installs offline."""
    import base64
    import hashlib
    import zipfile

    wheel = directory / f"{name}-{version}-py3-none-any.whl"
    files = {f"{name}/__init__.py": f"VALUE = 'tiny {version}'\n",
             f"{name}-{version}.dist-info/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
             f"{name}-{version}.dist-info/WHEEL":
                 "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(text.encode())}")
    record.append(f"{name}-{version}.dist-info/RECORD,,")
    with zipfile.ZipFile(wheel, "w") as zf:
        for path, text in files.items():
            zf.writestr(path, text)
        zf.writestr(f"{name}-{version}.dist-info/RECORD", "\n".join(record) + "\n")
    return wheel


KESTRA_VERSION = "2.0.0"


def kestra_python() -> Path:
    """An interpreter with the real ``kestra`` client from PyPI (shared by every test that needs it)."""
    return cached_venv(f"kestra-{KESTRA_VERSION}", [f"kestra=={KESTRA_VERSION}"])


#: Kestra's official SDK; it imports ``regex`` without declaring it
KESTRAPY_REQUIREMENTS = ["kestrapy==2.0.3", "regex"]


def kestrapy_python() -> Path:
    """An interpreter with Kestra's official Python SDK ``kestrapy`` 2.0 from PyPI."""
    return cached_venv("kestrapy-2.0.3", KESTRAPY_REQUIREMENTS)
