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

# The README's flowable example ("A flowable task"), verbatim: the same module, a second class.
EXAMPLE_FLOWABLE = '''
from falconet.sdk.plugin import INTEGER, TASKS, FlowableTask, Prop, register


@register
class Repeat(FlowableTask):
    """Run ``tasks`` ``times`` times, one round after the other; ``taskrun.value`` is the round number."""

    type = "com.acme.falconet.Repeat"
    title = "Repeat tasks."
    props = {
        "times": Prop(INTEGER, required=True, description="How many rounds (rendered)."),
        "tasks": Prop(TASKS, required=True, dynamic=False),
        "errors": Prop(TASKS, dynamic=False),
    }

    def on_start(self, m, tr, task, dispatches):
        rounds = int(m.render(tr, task, task.props["times"]))   # raising here fails the task run
        tr.outputs = {"rounds": rounds}                          # outputs.<taskId>.rounds

    def children(self, m, tr, task):
        rounds = (tr.outputs or {}).get("rounds", 0)
        return [r for n in range(1, rounds + 1)
                for r in m.resolve_tasks(task.props["tasks"], tr.id, value=str(n))] or None
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
    (site / "acme_falconet" / "__init__.py").write_text(textwrap.dedent(EXAMPLE_MODULE)
                                                        + textwrap.dedent(EXAMPLE_FLOWABLE))
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


async def test_entry_point_flowable_runs_its_children_in_a_flow(installed_example, tmp_path):
    """A third-party flowable: the state machine creates, runs and resolves its children through the
    class's hooks (``on_start``, ``children``; the defaults run them one after the other)."""
    registry = plugin.load_plugins()
    assert issubclass(registry.get("com.acme.falconet.Repeat"), plugin.FlowableTask)
    async with engine_at(tmp_path) as engine:
        await engine.create_flow("""
id: repeat
namespace: company.team
tasks:
  - id: twice
    type: com.acme.falconet.Repeat
    times: "{{ 1 + 1 }}"
    tasks:
      - id: say
        type: io.kestra.plugin.core.log.Log
        message: "round {{ taskrun.value }}"
      - id: greet
        type: com.acme.falconet.Greet
        name: "round {{ taskrun.value }}"
  - id: after
    type: io.kestra.plugin.core.log.Log
    message: "{{ outputs.twice.rounds }} rounds"
  - id: failing
    type: com.acme.falconet.Repeat
    times: 3
    tasks:
      - id: boom
        type: io.kestra.plugin.core.execution.Fail
    errors:
      - id: handled
        type: io.kestra.plugin.core.log.Log
        message: handled
""")
        ex = await engine.execute("company.team", "repeat")
        assert ex["state"]["current"] == "FAILED"
        runs = ex["taskRunList"]
        assert [(tr["taskId"], tr.get("value")) for tr in runs if tr["taskId"] in ("say", "greet")] == [
            ("say", "1"), ("greet", "1"), ("say", "2"), ("greet", "2")]
        assert await messages(engine, ex, "say") == [("INFO", "round 1"), ("INFO", "round 2")]
        by_id = task_runs(ex)
        assert by_id["twice"]["state"]["current"] == "SUCCESS" and by_id["twice"]["outputs"] == {"rounds": 2}
        assert await messages(engine, ex, "after") == [("INFO", "2 rounds")]
        assert [tr.get("value") for tr in runs if tr["taskId"] == "boom"] == ["1"]   # a failure stops the rounds
        assert by_id["handled"]["state"]["current"] == "SUCCESS"
        assert by_id["failing"]["state"]["current"] == "FAILED"


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
