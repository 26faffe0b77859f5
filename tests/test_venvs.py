"""tests/venvs.py: a cached test venv is built once, reused without installing anything (no network), rebuilt
after an interrupted build, and two test runs at once build it only once."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from .venvs import cached_venv

VENVS = Path(__file__).with_name("venvs.py")
BUILD = """
import importlib.util, sys
from pathlib import Path
spec = importlib.util.spec_from_file_location("venvs", sys.argv[1])
venvs = importlib.util.module_from_spec(spec)
spec.loader.exec_module(venvs)
print(venvs.cached_venv("tiny", [sys.argv[3]], root=Path(sys.argv[2])))
"""


def builds(root: Path) -> list[str]:
    log = root / "builds.log"
    return log.read_text().splitlines() if log.exists() else []


def imports_tiny(python: Path) -> bool:
    done = subprocess.run([str(python), "-c", "import falconet_tinydep"], capture_output=True, timeout=60)
    return done.returncode == 0


def test_two_runs_at_once_build_the_venv_once(tmp_path, tiny_wheel):
    root = tmp_path / "cache"
    runs = [subprocess.Popen([sys.executable, "-c", BUILD, str(VENVS), str(root), str(tiny_wheel)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [run.communicate(timeout=300) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], [err for _, err in results]
    first, second = (out.strip() for out, _ in results)
    assert first == second
    assert len(builds(root)) == 1
    assert imports_tiny(Path(first))


def test_a_built_venv_is_reused_without_installing(tmp_path, tiny_wheel):
    root = tmp_path / "cache"
    python = cached_venv("tiny", [str(tiny_wheel)], root=root)
    tiny_wheel.unlink()                      # installing again would fail now, as it would offline
    assert cached_venv("tiny", [str(tiny_wheel)], root=root) == python
    assert len(builds(root)) == 1 and imports_tiny(python)


def test_an_interrupted_build_is_done_again(tmp_path, tiny_wheel):
    root = tmp_path / "cache"
    python = cached_venv("tiny", [str(tiny_wheel)], root=root)
    (python.parents[1] / ".installed").unlink()      # as if the first run died before the end of pip install
    assert cached_venv("tiny", [str(tiny_wheel)], root=root) == python
    assert len(builds(root)) == 2 and imports_tiny(python)


def test_a_package_that_cannot_be_installed_skips(tmp_path):
    root = tmp_path / "cache"
    with pytest.raises(pytest.skip.Exception, match="cannot install"):
        cached_venv("broken", [str(tmp_path / "missing-1.0-py3-none-any.whl")], root=root)
    assert builds(root) == [] and not any(p.is_dir() for p in root.iterdir())
