"""Lazy registration of the built-in plugins (falconet/plugins/catalogue.py, falconet/sdk/registry.py): the
catalogue is what importing every module registers, a type's module is imported at its first use, and the
registry then answers as if every module had been imported up front. The checks that import plugin modules
run in a fresh interpreter, so modules imported by other tests do not count."""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import textwrap

import pytest

from falconet.plugins import OPTIONAL_DEPENDENCIES, catalogue


def run(script: str) -> str:
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.mark.skipif(any(importlib.util.find_spec(m) is None for m in OPTIONAL_DEPENDENCIES),
                    reason="the catalogue lists the plugins of every extra: install them all")
def test_the_catalogue_is_what_importing_every_plugin_module_registers():
    generated = json.loads(run("""
        import json
        from falconet.plugins import catalogue
        print(json.dumps(catalogue.generate()))
    """))
    assert {m: tuple(names) for m, names in generated.items()} == catalogue.MODULES, (
        "stale plugin catalogue: run python -m falconet.plugins.catalogue")


def test_the_catalogue_lists_every_builtin_module_in_order():
    from falconet.plugins import BUILTIN_MODULES

    assert tuple(catalogue.MODULES) == BUILTIN_MODULES


def test_a_type_imports_its_module_only_and_the_registry_then_lists_every_type_in_catalogue_order():
    out = json.loads(run("""
        import json, sys
        from falconet.plugins import catalogue
        from falconet.sdk.plugin import load_plugins

        def plugin_modules():
            return sorted(m for m in sys.modules if m.startswith("falconet.plugins."))

        registry = load_plugins()
        at_load = plugin_modules()
        log = registry.get("io.kestra.core.tasks.log.Log")     # an alias
        after_log = plugin_modules()
        unknown = registry.get("io.kestra.plugin.nope.Nope"), "io.kestra.plugin.nope.Nope" in registry
        listed = list(registry.canonical())
        expected = [n for names in catalogue.MODULES.values() for n in names if registry.get(n).type == n]
        print(json.dumps({"at_load": at_load, "log": log.type, "after_log": after_log, "unknown": unknown,
                          "in_order": listed == expected, "all": len(listed), "title": registry.group_texts(
                              "io.kestra.plugin.core")[0]}))
    """))
    assert out["at_load"] == ["falconet.plugins.catalogue"]
    assert out["log"] == "io.kestra.plugin.core.log.Log"
    assert out["after_log"] == ["falconet.plugins.catalogue", "falconet.plugins.core", "falconet.plugins.core.log"]
    assert out["unknown"] == [None, False]
    assert out["in_order"] and out["all"] > 90
    assert out["title"] == "Core"


def test_a_plugin_registered_under_a_builtin_name_is_not_replaced_when_the_builtin_module_loads_later():
    """Imported up front, the built-in modules registered first and a later plugin replaced their type; a
    module imported at first use must give the same answer."""
    out = json.loads(run("""
        import json
        from falconet.sdk.plugin import RunnableTask, load_plugins, register

        registry = load_plugins()

        @register
        class MyFetch(RunnableTask):
            type = "io.kestra.plugin.core.log.Fetch"

        registry.get("io.kestra.plugin.core.log.Log")           # imports falconet.plugins.core.log
        listed = list(registry.canonical())
        print(json.dumps([registry.get("io.kestra.plugin.core.log.Fetch") is MyFetch,
                          registry.get("io.kestra.core.tasks.log.Fetch").type,
                          listed.index("io.kestra.plugin.core.log.Fetch") - listed.index("io.kestra.plugin.core.log.Log")]))
    """))
    # the built-in's alias still names the built-in class, as when the module was imported first
    assert out == [True, "io.kestra.plugin.core.log.Fetch", 1]


def test_a_missing_optional_extra_leaves_its_types_unknown():
    out = json.loads(run("""
        import json, sys
        sys.modules["duckdb"] = None                            # `import duckdb` -> ModuleNotFoundError
        from falconet.sdk.plugin import load_plugins

        registry = load_plugins()
        query = registry.get("io.kestra.plugin.jdbc.duckdb.Query")
        listed = registry.canonical()
        print(json.dumps([query, "io.kestra.plugin.jdbc.duckdb.Query" in listed,
                          "io.kestra.plugin.jdbc.sqlite.Query" in listed, "falconet.plugins.duckdb" in sys.modules]))
    """))
    assert out == [None, False, True, False]


def test_a_plugin_module_failing_for_another_reason_raises():
    out = run("""
        import sys
        from falconet.sdk.registry import Registry

        registry = Registry()
        registry.defer({"falconet_no_such_module": ("com.acme.T",)}, optional=["duckdb"])
        try:
            registry.get("com.acme.T")
        except ModuleNotFoundError as exc:
            print(exc.name)
    """)
    assert out.strip() == "falconet_no_such_module"
