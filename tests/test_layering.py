"""DESIGN.md's dependency rule: ``http`` → ``runtime`` ← ``plugins`` — no module under ``falconet/runtime``
imports ``falconet.plugins`` or ``falconet.http``, at module level or inside a function."""
from __future__ import annotations

import ast
from pathlib import Path

import falconet

RUNTIME = Path(falconet.__file__).parent / "runtime"
FORBIDDEN = ("falconet.plugins", "falconet.http")


def imported_modules(path: Path, src_root: Path) -> list[tuple[int, str]]:
    """(line, absolute module name) of every ``import``/``from … import`` in ``path`` (a module under
    ``src_root``), nested ones included; ``from pkg import name`` also yields ``pkg.name`` (``name`` may
    be a submodule)."""
    parts = list(path.relative_to(src_root).with_suffix("").parts)
    package = parts[:-1]  # the package a relative import of this module starts from
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package[:len(package) - (node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            found.append((node.lineno, base))
            found.extend((node.lineno, f"{base}.{alias.name}") for alias in node.names)
    return found


def violations(runtime: Path, forbidden: tuple[str, ...] = FORBIDDEN) -> list[str]:
    """``file:line: imports name`` for every forbidden import under the ``runtime`` package folder."""
    src_root = runtime.parent.parent
    out = []
    for path in sorted(runtime.rglob("*.py")):
        for line, name in sorted(imported_modules(path, src_root)):
            if any(name == f or name.startswith(f + ".") for f in forbidden):
                out.append(f"{path.relative_to(src_root).as_posix()}:{line}: imports {name}")
    return out


def test_runtime_imports_neither_plugins_nor_http() -> None:
    assert len(list(RUNTIME.rglob("*.py"))) > 20, "runtime sources not found"
    assert violations(RUNTIME) == []


def test_sdk_imports_neither_plugins_nor_http() -> None:
    sdk = RUNTIME.parent / "sdk"
    assert (sdk / "plugin.py").exists(), "sdk sources not found"
    assert violations(sdk) == []


def test_http_does_not_import_plugins() -> None:
    http = RUNTIME.parent / "http"
    assert violations(http, ("falconet.plugins",)) == []


def test_the_scan_sees_relative_absolute_and_function_level_imports(tmp_path: Path) -> None:
    runtime = tmp_path / "falconet" / "runtime"
    (runtime / "sub").mkdir(parents=True)
    (runtime / "__init__.py").write_text("from . import state\n")
    (runtime / "ok.py").write_text("from .state import State\nimport trio\nfrom .. import runtime\n")
    (runtime / "sub" / "bad.py").write_text(
        "def f():\n    from ...plugins.scripts import files\n\n"
        "async def g():\n    import falconet.http.app\n\n"
        "from ... import plugins\n")
    assert violations(runtime) == [
        "falconet/runtime/sub/bad.py:2: imports falconet.plugins.scripts",
        "falconet/runtime/sub/bad.py:2: imports falconet.plugins.scripts.files",
        "falconet/runtime/sub/bad.py:5: imports falconet.http.app",
        "falconet/runtime/sub/bad.py:7: imports falconet.plugins",
    ]
