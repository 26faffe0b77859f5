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


#### The kernel names no plugin type (issue 10 point 1) ####################################################

def plugin_short_names() -> set[str]:
    """The last segment of every registered type name and alias (``Switch``, ``Subflow``, ``Schedule``…)."""
    from falconet.sdk.plugin import load_plugins

    registry = load_plugins()
    names: set[str] = set()
    for cls in registry.canonical().values():
        for full in (cls.type, *cls.aliases):
            names.add(full.rsplit(".", 1)[-1])
            names.add(full.rsplit(".", 1)[-1].split("$", 1)[0])
    return names


def _strings(node: ast.AST) -> list[str]:
    """The string constants of ``node`` when it is one, or a tuple/list/set(/frozenset call) of them."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return [s for elt in node.elts for s in _strings(elt)]
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("frozenset", "set", "tuple"):
        return [s for arg in node.args for s in _strings(arg)]
    return []


def type_name_uses(root: Path, names: set[str]) -> list[str]:
    """``file:line: text`` for every place under ``root`` that recognises a plugin by its type name: an
    ``io.kestra.plugin`` string (comments and docstrings included), a comparison (``==``, ``!=``, ``in``,
    ``startswith``/``endswith``) with a short type name, or a constant collection of short type names."""
    src_root = root.parent.parent
    out = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(src_root).as_posix()
        text = path.read_text(encoding="utf-8")
        for lineno, line in enumerate(text.splitlines(), 1):
            if "io.kestra.plugin" in line:
                out.append(f"{rel}:{lineno}: {line.strip()}")
        for node in ast.walk(ast.parse(text, filename=str(path))):
            found: list[str] = []
            if isinstance(node, ast.Compare):
                for operand in (node.left, *node.comparators):
                    found += _strings(operand)
            elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                  and node.func.attr in ("startswith", "endswith")):
                found += [s for arg in node.args for s in _strings(arg)]
            elif isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
                values = _strings(node.value)
                found += values if len(values) > 1 else []
            hits = sorted({s for s in found if s.strip(".$").rsplit(".", 1)[-1].split("$", 1)[0] in names})
            if hits:
                out.append(f"{rel}:{node.lineno}: {', '.join(hits)}")
    return sorted(out, key=lambda hit: (hit.split(":")[0], int(hit.split(":")[1])))


#: the dashboard document names its charts with Kestra's chart class names (``….dashboard.chart.Bar``);
#: Falconet computes charts itself and registers no chart plugin, so this vocabulary is the document's
DASHBOARD_VOCABULARY = ': PLUGIN = "io.kestra.plugin.core.dashboard"'


def test_the_kernel_names_no_plugin_type() -> None:
    names = plugin_short_names()
    assert {"Switch", "Subflow", "WorkingDirectory", "Schedule", "Webhook", "Flow"} <= names
    assert [hit for hit in type_name_uses(RUNTIME, names) if not hit.endswith(DASHBOARD_VOCABULARY)] == []


def test_the_type_name_scan_sees_comparisons_collections_and_kestra_names(tmp_path: Path) -> None:
    runtime = tmp_path / "falconet" / "runtime"
    runtime.mkdir(parents=True)
    (runtime / "bad.py").write_text(
        'KINDS = frozenset({"WorkingDirectory", "Worker"})\n'
        'def f(name, t):\n'
        '    if name == "Switch" or t.endswith(".flow.Subflow"):\n'
        '        return "io.kestra.plugin.core.log.Log"\n'
        '    return name in ("If", "Other")\n')
    (runtime / "ok.py").write_text('TITLE = {"title": "Flow"}\nSTATES = ("SUCCESS", "FAILED")\n'
                                   'def g(s):\n    return s.type == "MAX_DURATION"\n')
    names = {"WorkingDirectory", "Switch", "Subflow", "If", "Log", "Flow"}
    assert type_name_uses(runtime, names) == [
        "falconet/runtime/bad.py:1: WorkingDirectory",
        "falconet/runtime/bad.py:3: Switch",
        "falconet/runtime/bad.py:3: .flow.Subflow",
        "falconet/runtime/bad.py:4: return \"io.kestra.plugin.core.log.Log\"",
        "falconet/runtime/bad.py:5: If",
    ]
