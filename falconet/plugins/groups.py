"""Titles and descriptions of the built-in plugin groups and subgroups (Kestra's ``@PluginSubGroup``
texts), shown by the plugin catalogue (``GET /api/v1/plugins``, ``/plugins/groups/subgroups``)."""
from __future__ import annotations

from falconet.sdk import describe_group

GROUPS: dict[str, tuple[str, str]] = {
    "io.kestra.plugin.core": ("Core", "Tasks and triggers built into the engine: flow control, logs, outputs, "
                              "storage, key-value store, HTTP and schedules."),
    "io.kestra.plugin.core.condition": ("Conditions", "Conditions of triggers and listeners."),
    "io.kestra.plugin.core.debug": ("Debug", "Tasks to debug flows."),
    "io.kestra.plugin.core.execution": ("Execution", "Tasks that act on the current or other executions."),
    "io.kestra.plugin.core.flow": ("Flow", "Tasks that orchestrate other tasks: sequence, parallelism, "
                                   "branches, loops, subflows."),
    "io.kestra.plugin.core.http": ("HTTP", "Tasks and triggers that call HTTP servers."),
    "io.kestra.plugin.core.kv": ("KV", "Tasks on the namespace key-value store."),
    "io.kestra.plugin.core.log": ("Log", "Tasks that write or fetch logs."),
    "io.kestra.plugin.core.output": ("Output", "Tasks that output values."),
    "io.kestra.plugin.core.runner": ("Task runners", "Where script tasks run."),
    "io.kestra.plugin.core.storage": ("Storage", "Tasks on files of the internal storage."),
    "io.kestra.plugin.core.trigger": ("Triggers", "Schedules, flow, webhook and polling triggers."),
    "io.kestra.plugin.git": ("Git", "Clone repositories, sync flows and namespace files from Git, push flows "
                             "to Git."),
    "io.kestra.plugin.scripts": ("Scripts", "Run shell, Python and Node.js scripts as local processes."),
    "io.kestra.plugin.scripts.node": ("Node.js", "Run Node.js code."),
    "io.kestra.plugin.scripts.python": ("Python", "Run Python code."),
    "io.kestra.plugin.scripts.shell": ("Shell", "Run shell commands."),
    "io.kestra.plugin.jdbc": ("JDBC", "Query SQL databases: DuckDB, PostgreSQL and SQLite."),
    "io.kestra.plugin.jdbc.postgresql": ("PostgreSQL", "Query PostgreSQL servers; trigger on query results."),
    "io.kestra.plugin.jdbc.sqlite": ("SQLite", "Query SQLite database files; trigger on query results."),
    "io.kestra.plugin.notifications": ("Notifications", "Send messages to chat webhooks and by e-mail."),
    "io.kestra.plugin.notifications.slack": ("Slack", "Send Slack messages."),
    "io.kestra.plugin.notifications.teams": ("Microsoft Teams", "Send Microsoft Teams messages."),
    "io.kestra.plugin.notifications.discord": ("Discord", "Send Discord messages."),
    "io.kestra.plugin.notifications.google": ("Google Chat", "Send Google Chat messages."),
    "io.kestra.plugin.notifications.mail": ("Mail", "Send e-mails over SMTP."),
    "io.kestra.plugin.jdbc.duckdb": ("DuckDB", "Query DuckDB databases."),
    "io.kestra.core.tasks.scripts": ("Scripts (legacy)", "Deprecated script tasks."),
}

for _name, (_title, _description) in GROUPS.items():
    describe_group(_name, _title, _description)
