"""The catalogue of the built-in plugin types: for each module of ``BUILTIN_MODULES`` (in that order), the
type names its import registers (canonical names and aliases, in registration order). ``load_plugins()``
registers these names without importing anything; a module is imported the first time one of its types is
asked for (:class:`falconet.sdk.plugin.Registry`), so a server imports the plugins its flows use.

Generated: after a plugin type is added, renamed or moved, ``python -m falconet.plugins.catalogue`` rewrites
``MODULES`` (run it where every extra is installed); ``tests/test_plugin_catalogue.py`` fails while it is
stale.
"""
from __future__ import annotations

from pathlib import Path

# BEGIN GENERATED
MODULES: dict[str, tuple[str, ...]] = {
    "falconet.plugins.groups": (
    ),
    "falconet.plugins.core.log": (
        "io.kestra.plugin.core.log.Log",
        "io.kestra.core.tasks.log.Log",
        "io.kestra.plugin.core.log.Fetch",
        "io.kestra.core.tasks.log.Fetch",
    ),
    "falconet.plugins.core.debug": (
        "io.kestra.plugin.core.debug.Return",
        "io.kestra.core.tasks.debugs.Return",
        "io.kestra.plugin.core.debug.Echo",
        "io.kestra.core.tasks.debugs.Echo",
    ),
    "falconet.plugins.core.output": (
        "io.kestra.plugin.core.output.OutputValues",
    ),
    "falconet.plugins.core.flow": (
        "io.kestra.plugin.core.flow.Sleep",
    ),
    "falconet.plugins.core.flowables.sequential": (
        "io.kestra.plugin.core.flow.Sequential",
        "io.kestra.core.tasks.flows.Sequential",
        "io.kestra.plugin.core.flow.Parallel",
        "io.kestra.core.tasks.flows.Parallel",
        "io.kestra.plugin.core.flow.AllowFailure",
        "io.kestra.core.tasks.flows.AllowFailure",
        "io.kestra.plugin.core.flow.Template",
        "io.kestra.core.tasks.flows.Template",
    ),
    "falconet.plugins.core.flowables.branch": (
        "io.kestra.plugin.core.flow.If",
        "io.kestra.core.tasks.flows.If",
        "io.kestra.plugin.core.flow.Switch",
        "io.kestra.core.tasks.flows.Switch",
    ),
    "falconet.plugins.core.flowables.loops": (
        "io.kestra.plugin.core.flow.ForEach",
        "io.kestra.plugin.core.flow.EachSequential",
        "io.kestra.core.tasks.flows.EachSequential",
        "io.kestra.plugin.core.flow.EachParallel",
        "io.kestra.core.tasks.flows.EachParallel",
        "io.kestra.plugin.core.flow.WaitFor",
        "io.kestra.plugin.core.flow.LoopUntil",
    ),
    "falconet.plugins.core.flowables.dag": (
        "io.kestra.plugin.core.flow.Dag",
        "io.kestra.core.tasks.flows.Dag",
    ),
    "falconet.plugins.core.flowables.pause": (
        "io.kestra.plugin.core.flow.Pause",
        "io.kestra.core.tasks.flows.Pause",
    ),
    "falconet.plugins.core.flowables.subflow": (
        "io.kestra.plugin.core.flow.Subflow",
        "io.kestra.core.tasks.flows.Subflow",
        "io.kestra.core.tasks.flows.Flow",
    ),
    "falconet.plugins.core.flowables.foreachitem": (
        "io.kestra.plugin.core.flow.ForEachItem",
        "io.kestra.core.tasks.flows.ForEachItem",
    ),
    "falconet.plugins.core.flowables.workingdir": (
        "io.kestra.plugin.core.flow.WorkingDirectory",
        "io.kestra.core.tasks.flows.WorkingDirectory",
        "io.kestra.core.tasks.flows.Worker",
    ),
    "falconet.plugins.core.execution": (
        "io.kestra.plugin.core.execution.Fail",
        "io.kestra.core.tasks.executions.Fail",
        "io.kestra.plugin.core.execution.Assert",
        "io.kestra.plugin.core.execution.Labels",
        "io.kestra.core.tasks.executions.Labels",
        "io.kestra.plugin.core.execution.Exit",
    ),
    "falconet.plugins.core.executions_admin": (
        "io.kestra.plugin.core.execution.Count",
        "io.kestra.core.tasks.executions.Counts",
        "io.kestra.plugin.core.execution.Counts",
        "io.kestra.plugin.core.execution.PurgeExecutions",
        "io.kestra.core.tasks.storages.Purge",
        "io.kestra.plugin.core.storage.Purge",
    ),
    "falconet.plugins.core.resume": (
        "io.kestra.plugin.core.execution.Resume",
    ),
    "falconet.plugins.core.kv": (
        "io.kestra.plugin.core.kv.Set",
        "io.kestra.plugin.core.kv.Get",
        "io.kestra.plugin.core.kv.Delete",
        "io.kestra.plugin.core.kv.GetKeys",
    ),
    "falconet.plugins.core.trigger": (
        "io.kestra.plugin.core.http.Request",
        "io.kestra.plugin.fs.http.Request",
        "io.kestra.plugin.core.http.Download",
        "io.kestra.plugin.fs.http.Download",
        "io.kestra.plugin.core.trigger.Schedule",
        "io.kestra.core.models.triggers.types.Schedule",
        "io.kestra.plugin.core.trigger.ScheduleOnDates",
        "io.kestra.plugin.core.trigger.Flow",
        "io.kestra.core.models.triggers.types.Flow",
        "io.kestra.plugin.core.trigger.Webhook",
        "io.kestra.core.models.triggers.types.Webhook",
        "io.kestra.plugin.core.http.Trigger",
        "io.kestra.plugin.fs.http.Trigger",
    ),
    "falconet.plugins.core.condition": (
        "io.kestra.plugin.core.condition.ExecutionStatus",
        "io.kestra.core.models.conditions.types.ExecutionStatusCondition",
        "io.kestra.plugin.core.condition.ExecutionStatusCondition",
        "io.kestra.plugin.core.condition.ExecutionFlow",
        "io.kestra.core.models.conditions.types.ExecutionFlowCondition",
        "io.kestra.plugin.core.condition.ExecutionFlowCondition",
        "io.kestra.plugin.core.condition.ExecutionNamespace",
        "io.kestra.core.models.conditions.types.ExecutionNamespaceCondition",
        "io.kestra.plugin.core.condition.ExecutionNamespaceCondition",
        "io.kestra.plugin.core.condition.ExecutionLabels",
        "io.kestra.core.models.conditions.types.ExecutionLabelsCondition",
        "io.kestra.plugin.core.condition.ExecutionLabelsCondition",
        "io.kestra.plugin.core.condition.ExecutionOutputs",
        "io.kestra.core.models.conditions.types.ExecutionOutputsCondition",
        "io.kestra.plugin.core.condition.ExecutionOutputsCondition",
        "io.kestra.plugin.core.condition.Expression",
        "io.kestra.core.models.conditions.types.ExpressionCondition",
        "io.kestra.core.models.conditions.types.VariableCondition",
        "io.kestra.plugin.core.condition.ExpressionCondition",
        "io.kestra.plugin.core.condition.VariableCondition",
        "io.kestra.plugin.core.condition.HasRetryAttempt",
        "io.kestra.core.models.conditions.types.HasRetryAttemptCondition",
        "io.kestra.plugin.core.condition.HasRetryAttemptCondition",
        "io.kestra.plugin.core.condition.Not",
        "io.kestra.core.models.conditions.types.NotCondition",
        "io.kestra.plugin.core.condition.NotCondition",
        "io.kestra.plugin.core.condition.Or",
        "io.kestra.core.models.conditions.types.OrCondition",
        "io.kestra.plugin.core.condition.OrCondition",
        "io.kestra.plugin.core.condition.MultipleCondition",
        "io.kestra.core.models.conditions.types.MultipleCondition",
        "io.kestra.plugin.core.condition.DayWeek",
        "io.kestra.core.models.conditions.types.DayWeekCondition",
        "io.kestra.plugin.core.condition.DayWeekCondition",
        "io.kestra.plugin.core.condition.DayWeekInMonth",
        "io.kestra.core.models.conditions.types.DayWeekInMonthCondition",
        "io.kestra.plugin.core.condition.DayWeekInMonthCondition",
        "io.kestra.plugin.core.condition.DateTimeBetween",
        "io.kestra.core.models.conditions.types.DateTimeBetweenCondition",
        "io.kestra.plugin.core.condition.DateTimeBetweenCondition",
        "io.kestra.plugin.core.condition.TimeBetween",
        "io.kestra.core.models.conditions.types.TimeBetweenCondition",
        "io.kestra.plugin.core.condition.TimeBetweenCondition",
        "io.kestra.plugin.core.condition.Weekend",
        "io.kestra.core.models.conditions.types.WeekendCondition",
        "io.kestra.plugin.core.condition.WeekendCondition",
    ),
    "falconet.plugins.core.http": (
    ),
    "falconet.plugins.core.storage": (
        "io.kestra.plugin.core.storage.Split",
        "io.kestra.core.tasks.storages.Split",
        "io.kestra.plugin.core.storage.Concat",
        "io.kestra.core.tasks.storages.Concat",
        "io.kestra.plugin.core.storage.Size",
        "io.kestra.core.tasks.storages.Size",
        "io.kestra.plugin.core.storage.Delete",
        "io.kestra.core.tasks.storages.Delete",
        "io.kestra.plugin.core.storage.Reverse",
        "io.kestra.core.tasks.storages.Reverse",
        "io.kestra.plugin.core.storage.FilterItems",
        "io.kestra.core.tasks.storages.FilterItems",
        "io.kestra.plugin.core.storage.DeduplicateItems",
        "io.kestra.core.tasks.storages.DeduplicateItems",
        "io.kestra.plugin.core.storage.LocalFiles",
        "io.kestra.core.tasks.storages.LocalFiles",
        "io.kestra.plugin.core.storage.PurgeCurrentExecutionFiles",
        "io.kestra.core.tasks.storages.PurgeExecution",
        "io.kestra.plugin.core.storage.PurgeExecution",
    ),
    "falconet.plugins.scripts": (
        "io.kestra.plugin.core.runner.Process",
        "io.kestra.core.tasks.scripts.Bash",
        "io.kestra.core.tasks.scripts.Python",
        "io.kestra.plugin.scripts.node.Commands",
        "io.kestra.plugin.scripts.node.Script",
        "io.kestra.plugin.scripts.python.Commands",
        "io.kestra.plugin.scripts.python.Script",
        "io.kestra.plugin.scripts.shell.Commands",
        "io.kestra.plugin.scripts.shell.Script",
    ),
    "falconet.plugins.duckdb": (
        "io.kestra.plugin.jdbc.duckdb.Query",
    ),
    "falconet.plugins.git": (
        "io.kestra.plugin.git.Clone",
        "io.kestra.plugin.git.PushFlows",
        "io.kestra.plugin.git.SyncFlows",
        "io.kestra.plugin.git.SyncNamespaceFiles",
    ),
    "falconet.plugins.serdes": (
        "io.kestra.plugin.serdes.csv.CsvToIon",
        "io.kestra.plugin.serdes.csv.CsvReader",
        "io.kestra.plugin.serdes.csv.IonToCsv",
        "io.kestra.plugin.serdes.csv.CsvWriter",
        "io.kestra.plugin.serdes.avro.IonToAvro",
        "io.kestra.plugin.serdes.avro.AvroWriter",
        "io.kestra.plugin.serdes.avro.AvroToIon",
        "io.kestra.plugin.serdes.avro.AvroReader",
        "io.kestra.plugin.serdes.excel.ExcelToIon",
        "io.kestra.plugin.serdes.excel.IonToExcel",
        "io.kestra.plugin.serdes.json.JsonToIon",
        "io.kestra.plugin.serdes.json.JsonReader",
        "io.kestra.plugin.serdes.json.IonToJson",
        "io.kestra.plugin.serdes.json.JsonWriter",
        "io.kestra.plugin.serdes.parquet.IonToParquet",
        "io.kestra.plugin.serdes.parquet.ParquetWriter",
        "io.kestra.plugin.serdes.parquet.ParquetToIon",
        "io.kestra.plugin.serdes.parquet.ParquetReader",
    ),
    "falconet.plugins.jdbc.sqlite": (
        "io.kestra.plugin.jdbc.sqlite.Query",
        "io.kestra.plugin.jdbc.sqlite.Queries",
        "io.kestra.plugin.jdbc.sqlite.Trigger",
    ),
    "falconet.plugins.jdbc.postgresql": (
        "io.kestra.plugin.jdbc.postgresql.Query",
        "io.kestra.plugin.jdbc.postgresql.Queries",
        "io.kestra.plugin.jdbc.postgresql.Trigger",
    ),
    "falconet.plugins.notifications": (
        "io.kestra.plugin.notifications.mail.MailSend",
        "io.kestra.plugin.notifications.slack.SlackIncomingWebhook",
        "io.kestra.plugin.notifications.teams.TeamsIncomingWebhook",
        "io.kestra.plugin.notifications.discord.DiscordIncomingWebhook",
        "io.kestra.plugin.notifications.google.GoogleChatIncomingWebhook",
    ),
}
# END GENERATED


def generate() -> dict[str, tuple[str, ...]]:
    """Import every built-in plugin module in order and note the names each registers. Run it in a fresh
    interpreter (no plugin module imported yet); raises when a name is registered twice."""
    import importlib

    from falconet.plugins import BUILTIN_MODULES
    from falconet.sdk.plugin import registry

    modules: dict[str, tuple[str, ...]] = {}
    seen: dict[str, object] = {}
    for module in BUILTIN_MODULES:
        importlib.import_module(module)
        names = registry.names()
        twice = [name for name in seen if registry.get(name) is not seen[name]]
        if twice:
            raise RuntimeError(f"{module} registers again {', '.join(twice)}")
        modules[module] = tuple(name for name in names if name not in seen)
        seen.update((name, registry.get(name)) for name in modules[module])
    return modules


def render(modules: dict[str, tuple[str, ...]]) -> str:
    """The generated block of this file."""
    lines = ["MODULES: dict[str, tuple[str, ...]] = {"]
    for module, names in modules.items():
        lines.append(f'    "{module}": (')
        lines += [f'        "{name}",' for name in names]
        lines.append("    ),")
    lines.append("}")
    return "\n".join(lines)


def write(path: Path, modules: dict[str, tuple[str, ...]]) -> None:
    text = path.read_text(encoding="utf-8")
    head, _, rest = text.partition("# BEGIN GENERATED\n")
    _, _, tail = rest.partition("# END GENERATED\n")
    path.write_text(f"{head}# BEGIN GENERATED\n{render(modules)}\n# END GENERATED\n{tail}", encoding="utf-8")


if __name__ == "__main__":
    write(Path(__file__), generate())
