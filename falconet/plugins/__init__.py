"""Built-in plugin types, grouped as Kestra groups them. ``load_plugins()`` registers their types from
``catalogue.MODULES`` (generated from ``BUILTIN_MODULES``); a module is imported when one of its types is first
used."""

BUILTIN_MODULES: tuple[str, ...] = (
    "falconet.plugins.groups",
    "falconet.plugins.core.log",
    "falconet.plugins.core.debug",
    "falconet.plugins.core.output",
    "falconet.plugins.core.flow",
    "falconet.plugins.core.flowables.sequential",
    "falconet.plugins.core.flowables.branch",
    "falconet.plugins.core.flowables.loops",
    "falconet.plugins.core.flowables.dag",
    "falconet.plugins.core.flowables.pause",
    "falconet.plugins.core.flowables.subflow",
    "falconet.plugins.core.flowables.foreachitem",
    "falconet.plugins.core.flowables.workingdir",
    "falconet.plugins.core.execution",
    "falconet.plugins.core.executions_admin",
    "falconet.plugins.core.resume",
    "falconet.plugins.core.kv",
    "falconet.plugins.core.trigger",
    "falconet.plugins.core.condition",
    "falconet.plugins.core.http",
    "falconet.plugins.core.storage",
    "falconet.plugins.scripts",
    "falconet.plugins.duckdb",
    "falconet.plugins.git",
    "falconet.plugins.serdes",
    "falconet.plugins.jdbc.sqlite",
    "falconet.plugins.jdbc.postgresql",
    "falconet.plugins.notifications",
)

# top-level modules whose absence only disables the plugin family that needs them (optional extras), and the
# segment of that family's type names (``io.kestra.plugin.jdbc.postgresql.Query`` needs ``psycopg``)
OPTIONAL_DEPENDENCIES: dict[str, str] = {"duckdb": "duckdb", "psycopg": "postgresql"}
