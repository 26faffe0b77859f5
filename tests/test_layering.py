"""The layering rules (README "Development"): ``http`` → ``runtime`` ← ``plugins`` — no module under
``falconet/runtime`` imports ``falconet.plugins`` or ``falconet.http``, at module level or inside a function;
no import circle inside ``falconet/runtime``; no module over 600 lines; comments cite only files the
repository has."""
from __future__ import annotations

import ast
import re
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


#### no import circle inside falconet/runtime ##############################################################

# Known violations (none left): the test fails on any other violation and on an entry that is no longer one,
# so these lists only shrink.
KNOWN_CIRCLE_MODULES: frozenset[str] = frozenset()
KNOWN_LONG_MODULES: frozenset[str] = frozenset()
MAX_LINES = 600


def module_name(path: Path, src_root: Path) -> str:
    parts = list(path.relative_to(src_root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(package: Path) -> dict[str, set[str]]:
    """Module -> the modules of ``package`` it imports: module- and function-level imports, those under
    ``if TYPE_CHECKING:`` too (a type-only circle is still a circle in the design). ``from pkg import name``
    depends on the submodule ``pkg.name`` when there is one, else on ``pkg`` itself."""
    src_root = package.parent.parent
    files = {module_name(p, src_root): p for p in sorted(package.rglob("*.py"))}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        parts = list(path.relative_to(src_root).with_suffix("").parts)
        here = parts[:-1]  # the package a relative import of this module starts from
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = ".".join(here[:len(here) - (node.level - 1)] + ([node.module] if node.module else []))
                else:
                    base = node.module or ""
                subs = [f"{base}.{alias.name}" for alias in node.names]
                targets.update(s for s in subs if s in files)
                if not all(s in files for s in subs):
                    targets.add(base)
        graph[name] = {t for t in targets if t in files and t != name}
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)


def test_no_import_circle_inside_runtime() -> None:
    found = circles(import_graph(RUNTIME))
    in_circles = {m for c in found for m in c}
    new = [c for c in found if not set(c) <= KNOWN_CIRCLE_MODULES]
    assert new == [], f"import circles: {new}"
    assert sorted(KNOWN_CIRCLE_MODULES - in_circles) == [], "no longer in a circle: remove from KNOWN_CIRCLE_MODULES"


def test_the_circle_scan_sees_function_level_type_only_and_submodule_imports(tmp_path: Path) -> None:
    pkg = tmp_path / "falconet" / "runtime"
    (pkg / "store").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from .b import g\n")
    (pkg / "b.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .a import f\n")
    (pkg / "c.py").write_text("import falconet.runtime.d\n")
    (pkg / "d.py").write_text("from . import c\n")
    (pkg / "store" / "__init__.py").write_text("from .sqlite import S\n")
    (pkg / "store" / "sqlite.py").write_text("from . import sql\n")  # a submodule: not the package
    (pkg / "store" / "sql.py").write_text("")
    (pkg / "e.py").write_text("from .store import S\n")
    assert circles(import_graph(pkg)) == [["falconet.runtime.a", "falconet.runtime.b"],
                                          ["falconet.runtime.c", "falconet.runtime.d"]]


#### no module over 600 lines ###############################################################################

def long_modules(root: Path) -> dict[str, int]:
    out = {}
    for path in sorted(root.rglob("*.py")):
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > MAX_LINES:
            out[path.relative_to(root.parent).as_posix()] = lines
    return out


def test_no_module_over_600_lines() -> None:
    found = long_modules(RUNTIME.parent)
    assert sorted(set(found) - KNOWN_LONG_MODULES) == [], f"over {MAX_LINES} lines: {found}"
    assert sorted(KNOWN_LONG_MODULES - set(found)) == [], "no longer too long: remove from KNOWN_LONG_MODULES"


#### comments cite files the repository has #################################################################

# Documents a clone does not have (they lived beside the repository while it was written). The optional
# suites the README documents beside the repository (conformance, kestra-ui) are not citations.
_ABSENT_DOCUMENTS = re.compile(r"\bDESIGN\.md|\bSTYLE\.md|\breference/|\breference\s*§|"
                               r"\.\./shared(?!/(?:conformance|kestra-ui)\b)")


_SOURCE_SUFFIXES = frozenset({".py", ".js", ".css", ".html", ".yaml", ".yml", ".txt", ".md"})


def absent_citations(roots: list[Path]) -> list[str]:
    out = []
    for root in roots:
        for path in sorted(p for p in root.rglob("*") if p.suffix in _SOURCE_SUFFIXES and p.is_file()):
            text = path.read_text(encoding="utf-8")
            for match in _ABSENT_DOCUMENTS.finditer(text):
                line = text.count("\n", 0, match.start()) + 1
                out.append(f"{path.relative_to(root.parent).as_posix()}:{line}: {match.group(0)}")
    return out


def test_comments_cite_only_files_in_the_repository() -> None:
    tests = Path(__file__).resolve().parent
    assert absent_citations([RUNTIME.parent, tests]) == []


def test_the_citation_scan_finds_absent_documents(tmp_path: Path) -> None:
    src = tmp_path / "falconet"
    src.mkdir()
    # spelled apart: this file must pass the scan itself
    shared, design, ref = "../" + "shared", "DESIGN" + ".md", "reference" + "/"
    (src / "m.py").write_text(f'"""See {design} and (reference\n§6.2)."""\n'
                              f"# {shared}/{ref}kestra-api.md; {shared}/conformance is fine\n")
    section = "reference " + "§"
    (src / "ui.js").write_text(f"//// States ({section}2)\n")
    assert absent_citations([src]) == [f"falconet/m.py:1: {design}", "falconet/m.py:1: reference\n§",
                                       f"falconet/m.py:3: {shared}", f"falconet/m.py:3: {ref}",
                                       f"falconet/ui.js:1: {section}"]


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


#### No module reads another object's private names; optional hooks are declared, not probed #############

FALCONET = RUNTIME.parent
ENGINE_NAMES = frozenset({"engine", "eng"})  # how modules name an Engine (``engine()`` in the HTTP layer)

#: ``(file, attribute)``: underscore names that are the documented API of a library object
PRIVATE_ALLOWED = {
    # werkzeug's LocalProxy: the documented way to get the object behind ``quart.websocket``
    ("falconet/http/api/live.py", "_get_current_object"),
    # the same for ``quart.request`` in the create view (one context lookup instead of one per attribute read)
    ("falconet/http/api/executions.py", "_get_current_object"),
    # jinja2's Undefined: the documented method that raises the undefined error
    ("falconet/runtime/expr/base.py", "_fail_with_undefined_error"),
    # codecs.CodecInfo: the only flag that tells text encodings from bytes-to-bytes codecs
    ("falconet/http/api/files.py", "_is_text_encoding"),
    # werkzeug's Rule: the method that compiles a URL builder, deferred to the builder's first call
    ("falconet/http/routing.py", "_compile_builder"),
}


def _is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def private_accesses(root: Path) -> list[str]:
    """``file:line: expr`` for every read or write of a single-underscore attribute of anything but
    ``self``/``cls`` (``obj._name``, ``obj.__dict__["_name"]``) in the modules under ``root``."""
    src_root = root.parent
    out: list[tuple[str, int, str]] = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(src_root).as_posix()
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and _is_private(node.attr):
                if isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
                    continue
                if (rel, node.attr) in PRIVATE_ALLOWED:
                    continue
                out.append((rel, node.lineno, ast.unparse(node)))
            elif isinstance(node, ast.Attribute) and node.attr == "__dict__":
                parent_keys = [n for n in ast.walk(tree) if isinstance(n, (ast.Subscript, ast.Call))
                               and (getattr(n, "value", None) is node
                                    or (isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
                                        and n.func.value is node))]
                for use in parent_keys:
                    keys = [use.slice] if isinstance(use, ast.Subscript) else use.args[:1]
                    if any(isinstance(k, ast.Constant) and isinstance(k.value, str) and _is_private(k.value)
                           for k in keys):
                        out.append((rel, use.lineno, ast.unparse(use)))
    return [f"{rel}:{line}: {text}" for rel, line, text in sorted(out)]


def _is_engine(node: ast.expr) -> bool:
    """``engine``, ``eng``, ``engine()``, ``x.engine``, ``self._engine``."""
    if isinstance(node, ast.Call):
        node = node.func
    if isinstance(node, ast.Name):
        return node.id in ENGINE_NAMES
    return isinstance(node, ast.Attribute) and node.attr.lstrip("_") in ENGINE_NAMES


def engine_probes(root: Path) -> list[str]:
    """``file:line: expr`` for every ``getattr``/``hasattr``/``setattr``/``delattr`` on an engine, and every
    attribute set on an engine outside the Engine class (hooks are declared in a Protocol and passed, not
    patched onto the engine or probed for)."""
    src_root = root.parent
    out: list[tuple[str, int, str]] = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(src_root).as_posix()
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                    and node.func.id in ("getattr", "hasattr", "setattr", "delattr")
                    and node.args and _is_engine(node.args[0])):
                out.append((rel, node.lineno, ast.unparse(node)))
            targets: list[ast.expr] = []
            if isinstance(node, ast.Assign):
                targets = node.targets
            elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
                targets = [node.target]
            for target in targets:
                if isinstance(target, ast.Attribute) and _is_engine(target.value):
                    out.append((rel, target.lineno, f"{ast.unparse(target)} = …"))
    return [f"{rel}:{line}: {text}" for rel, line, text in sorted(out)]


def test_no_module_reads_another_objects_private_attributes() -> None:
    assert private_accesses(FALCONET) == []


def test_no_getattr_probing_or_monkeypatching_of_the_engine() -> None:
    assert engine_probes(FALCONET) == []


def test_the_private_and_probe_scans_see_what_they_forbid(tmp_path: Path) -> None:
    pkg = tmp_path / "falconet"
    pkg.mkdir()
    (pkg / "bad.py").write_text(
        "async def f(engine, actor):\n"
        "    ex = await engine._require('x')\n"
        "    queues = engine.__dict__.setdefault('_queues', {})\n"
        "    actor._log(None, 'INFO', 'x')\n"
        "    hook = getattr(engine, 'on_execution_end', None)\n"
        "    engine.retry_state = hook\n"
        "    setattr(self.engine, 'orchestration', None)\n"
        "    return getattr(engine(), 'orchestration', None)\n")
    (pkg / "ok.py").write_text(
        "class A:\n"
        "    def __init__(self, engine):\n"
        "        self._x = engine.flows.latest()\n"
        "        self.engine = engine\n"
        "    @classmethod\n"
        "    def make(cls):\n"
        "        return cls._y, vars(cls).__dict__, getattr(cls, 'name', None)\n")
    assert private_accesses(pkg) == [
        "falconet/bad.py:2: engine._require",
        "falconet/bad.py:3: engine.__dict__.setdefault('_queues', {})",
        "falconet/bad.py:4: actor._log",
    ]
    assert engine_probes(pkg) == [
        "falconet/bad.py:5: getattr(engine, 'on_execution_end', None)",
        "falconet/bad.py:6: engine.retry_state = …",
        "falconet/bad.py:7: setattr(self.engine, 'orchestration', None)",
        "falconet/bad.py:8: getattr(engine(), 'orchestration', None)",
    ]
