"""What a plugin author imports: ``from falconet.sdk import RunnableTask, Prop, STRING, register, …``.

- :mod:`falconet.sdk.plugin` — the plugin API: task/trigger/condition base classes, property declarations
  (:class:`Prop` and the kind constants), :class:`Example`/:class:`Output`/:class:`Metric` documentation,
  the :class:`RunContext` a task run receives, :func:`register`;
- what a flowable's hooks receive and return: the state machine (:class:`Machine`), :class:`Resolved`
  children, the commands (:class:`StartTimer`, :class:`StartSubflow`, :class:`StartJob`), :class:`TaskRun`
  and :class:`State`;
- :mod:`falconet.sdk.files` — a task's working directory: ``inputFiles``, namespace files, ``outputFiles``;
- Ion row files (Kestra's serialized rows, one value a line), ISO-8601 durations, Kestra's truthiness and
  output rendering, and the error classes the engine turns into Kestra's error bodies.

Built-in plugins (``falconet/plugins``) import from here only, like a third party would.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from falconet import lazy_exports

if TYPE_CHECKING:  # the names, for type checkers; at run time each is imported on first use (below)
    from falconet.runtime.expr.durations import format_duration, parse_duration
    from falconet.runtime.expr.output import is_truthy
    from falconet.runtime.expr.render import ExpressionError, to_output_string
    from falconet.runtime.flow.model import TaskSpec
    from falconet.runtime.kernel.errors import FalconetError, IllegalArgument, NotFound
    from falconet.runtime.kernel.execution import Attempt, StateHistory, TaskRun, now, parse_instant
    from falconet.runtime.kernel.flowstate import Resolved
    from falconet.runtime.kernel.machine import (
        Dispatch, FlowableError, Machine, StartJob, StartSubflow, StartTimer, loop_values_to_strings, next_retry_delay,
    )
    from falconet.runtime.kernel.state import State
    from falconet.runtime.storage.internal import namespace_path, slugify
    from falconet.runtime.storage.ionfiles import (
        decimal_number, from_ion_value, read_ion_rows, text_row_encoder, to_ion_line, write_ion_rows,
    )
    from falconet.runtime.storage.ionvalues import simpleion
    from falconet.sdk.files import (
        as_file_map, copy_from_storage, copy_namespace_files, glob_match, glob_regex, localize_storage_uris, safe_join,
        upload_output_files, walk_files, write_input_files,
    )
    from falconet.sdk.logs import LogLevel
    from falconet.sdk.plugin import (
        ANY, BOOLEAN, CONDITION_MAP, CONDITIONS, CRON, DAG_TASKS, DATES, DURATION, ENUM, EXECUTIONS, INPUTS, INTEGER,
        LIST, MAP, NUMBER, OBJECT, STRING, TASK_MAP, TASKS, WEBHOOK, Condition, Example, ExecutionUpdatingTask,
        FlowableServices, FlowableTask, FlowSource, Logger, Metric, Output, Plugin, PollingContext,
        PollingTrigger, Prop,
        RunContext, RunnableTask, TaskFailed, Trigger, TriggerEvaluationError, describe_group, register,
    )

# name -> module: resolved lazily because the kernel itself imports falconet.sdk.plugin, and an eager facade
# would import the kernel back while it is still initialising
_WHERE: dict[str, str] = {
    **dict.fromkeys(('format_duration', 'parse_duration'), 'falconet.runtime.expr.durations'),
    **dict.fromkeys(('is_truthy',), 'falconet.runtime.expr.output'),
    **dict.fromkeys(('ExpressionError', 'to_output_string'), 'falconet.runtime.expr.render'),
    **dict.fromkeys(('TaskSpec',), 'falconet.runtime.flow.model'),
    **dict.fromkeys(('FalconetError', 'IllegalArgument', 'NotFound'), 'falconet.runtime.kernel.errors'),
    **dict.fromkeys(('Attempt', 'StateHistory', 'TaskRun', 'now', 'parse_instant'),
                    'falconet.runtime.kernel.execution'),
    **dict.fromkeys(('Resolved',), 'falconet.runtime.kernel.flowstate'),
    **dict.fromkeys(('Dispatch', 'FlowableError', 'Machine', 'StartJob', 'StartSubflow', 'StartTimer',
                     'loop_values_to_strings', 'next_retry_delay'), 'falconet.runtime.kernel.machine'),
    **dict.fromkeys(('State',), 'falconet.runtime.kernel.state'),
    **dict.fromkeys(('namespace_path', 'slugify'), 'falconet.runtime.storage.internal'),
    **dict.fromkeys(('decimal_number', 'from_ion_value', 'read_ion_rows', 'text_row_encoder', 'to_ion_line',
                     'write_ion_rows'),
                    'falconet.runtime.storage.ionfiles'),
    **dict.fromkeys(('simpleion',), 'falconet.runtime.storage.ionvalues'),
    **dict.fromkeys(('as_file_map', 'copy_from_storage', 'copy_namespace_files', 'glob_match', 'glob_regex',
                     'localize_storage_uris', 'safe_join', 'upload_output_files', 'walk_files', 'write_input_files'),
                    'falconet.sdk.files'),
    **dict.fromkeys(('ANY', 'BOOLEAN', 'CONDITION_MAP', 'CONDITIONS', 'DAG_TASKS', 'DURATION', 'ENUM', 'INPUTS',
                     'INTEGER', 'LIST', 'MAP', 'NUMBER', 'OBJECT', 'STRING', 'TASK_MAP', 'TASKS', 'CRON', 'DATES',
                     'EXECUTIONS', 'WEBHOOK', 'Condition', 'Example', 'ExecutionUpdatingTask', 'FlowableServices',
                     'describe_group', 'FlowableTask', 'FlowSource', 'Logger', 'Metric', 'Output', 'Plugin',
                     'PollingContext', 'PollingTrigger', 'Prop', 'RunContext', 'RunnableTask', 'TaskFailed', 'Trigger',
                     'TriggerEvaluationError', 'register'), 'falconet.sdk.plugin'),
    **dict.fromkeys(('LogLevel',), 'falconet.sdk.logs'),
}

__all__ = [
    "ANY", "BOOLEAN", "CONDITION_MAP", "CONDITIONS", "DAG_TASKS", "DURATION", "ENUM", "INPUTS", "INTEGER", "LIST",
    "MAP", "NUMBER", "OBJECT", "STRING", "TASK_MAP", "TASKS",
    "Condition", "Example", "ExecutionUpdatingTask", "FlowableTask", "FlowSource", "Logger", "LogLevel", "Metric",
    "Output", "Plugin",
    "PollingContext", "PollingTrigger", "Prop", "RunContext", "RunnableTask", "TaskFailed", "Trigger",
    "TriggerEvaluationError", "register", "CRON", "DATES", "EXECUTIONS", "WEBHOOK", "FlowableServices",
    "describe_group",
    "Machine", "Resolved", "Dispatch", "StartTimer", "StartSubflow", "StartJob", "FlowableError",
    "loop_values_to_strings", "next_retry_delay", "TaskRun", "Attempt", "StateHistory", "now", "State",
    "namespace_path", "slugify",
    "as_file_map", "copy_from_storage", "copy_namespace_files", "glob_match", "glob_regex", "localize_storage_uris",
    "safe_join", "upload_output_files", "walk_files", "write_input_files",
    "decimal_number", "from_ion_value", "read_ion_rows", "simpleion", "text_row_encoder", "to_ion_line",
    "write_ion_rows",
    "format_duration", "parse_duration", "ExpressionError", "is_truthy", "to_output_string", "TaskSpec",
    "FalconetError", "IllegalArgument", "NotFound", "parse_instant",
]


__getattr__ = lazy_exports(globals(), _WHERE)
