"""A third-party plugin package registered through the ``falconet.plugins`` entry-point group: installed
(as a dist-info on sys.path), discovered by ``load_plugins()``, validated and run in a flow."""
from __future__ import annotations

import sys
import textwrap

import pytest

from falconet.sdk import plugin

from .e2e import engine_at, messages, task_runs

# The README's "Write your own plugin" example, verbatim.
EXAMPLE_MODULE = '''
"""acme_falconet: an example Falconet plugin package."""
from falconet.sdk.plugin import INTEGER, STRING, Prop, RunnableTask, TaskFailed, register


@register
class Greet(RunnableTask):
    """Greet someone ``times`` times; output ``greeting``."""

    type = "com.acme.falconet.Greet"
    title = "Say hello."
    props = {
        "name": Prop(STRING, required=True, description="Who to greet (rendered)."),
        "times": Prop(INTEGER, default=1, description="How many log lines."),
    }

    async def run(self, ctx):
        name, times = ctx.prop("name"), ctx.prop("times")
        if times < 1:
            raise TaskFailed("times must be at least 1")
        for _ in range(times):
            ctx.logger.info(f"Hello, {name}!")
        ctx.metric("counter", "greetings", times, {"name": name})
        return {"greeting": f"Hello, {name}!"}
'''

ENTRY_POINTS = """\
[falconet.plugins]
acme = acme_falconet
"""


@pytest.fixture
def installed_example(tmp_path, monkeypatch):
    """Install the example as a distribution (package + dist-info with entry points) on sys.path."""
    site = tmp_path / "site"
    (site / "acme_falconet").mkdir(parents=True)
    (site / "acme_falconet" / "__init__.py").write_text(textwrap.dedent(EXAMPLE_MODULE))
    dist = site / "acme_falconet-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-falconet\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(ENTRY_POINTS)
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setattr(plugin, "_loaded", False)       # let load_plugins() scan the entry points again
    monkeypatch.delitem(sys.modules, "acme_falconet", raising=False)
    yield
    sys.modules.pop("acme_falconet", None)


def test_entry_point_plugin_is_registered(installed_example):
    assert "acme_falconet" not in sys.modules
    registry = plugin.load_plugins()
    cls = registry.get("com.acme.falconet.Greet")
    assert cls is sys.modules["acme_falconet"].Greet        # imported and registered by its entry point
    assert issubclass(cls, plugin.RunnableTask)
    assert cls.props["times"].default == 1 and cls.props["name"].required
    assert registry.get("io.kestra.plugin.scripts.shell.Commands") is not None   # built-ins still there


async def test_entry_point_plugin_runs_in_a_flow(installed_example, tmp_path):
    plugin.load_plugins()
    async with engine_at(tmp_path) as engine:
        await engine.create_flow("""
id: greet
namespace: company.team
tasks:
  - id: hello
    type: com.acme.falconet.Greet
    name: "{{ flow.namespace }}"
    times: 2
  - id: bad
    type: com.acme.falconet.Greet
    name: x
    times: 0
""")
        ex = await engine.execute("company.team", "greet")
        runs = task_runs(ex)
        assert runs["hello"]["outputs"] == {"greeting": "Hello, company.team!"}
        assert await messages(engine, ex, "hello") == [("INFO", "Hello, company.team!")] * 2
        assert runs["bad"]["state"]["current"] == "FAILED"
        assert ("ERROR", "times must be at least 1") in await messages(engine, ex, "bad")


def test_missing_optional_duckdb_only_disables_its_family(monkeypatch):
    """Without the ``duckdb`` module, load_plugins() skips falconet.plugins.duckdb and loads the rest."""
    monkeypatch.setitem(sys.modules, "duckdb", None)          # `import duckdb` → ModuleNotFoundError
    monkeypatch.delitem(sys.modules, "falconet.plugins.duckdb", raising=False)
    monkeypatch.delitem(sys.modules, "falconet.plugins.duckdb.query", raising=False)
    monkeypatch.setattr(plugin, "_loaded", False)
    with pytest.raises(ModuleNotFoundError) as info:
        import falconet.plugins.duckdb  # noqa: F401
    assert info.value.name == "duckdb"
    registry = plugin.load_plugins()
    assert registry.get("io.kestra.plugin.core.http.Download") is not None
    assert "falconet.plugins.duckdb" not in sys.modules
