"""The script-task line protocol: ``::{json}::`` lines on stdout/stderr carry outputs, metrics and logs.

Parsed exactly as Kestra's ``PluginUtilsService.parseOut`` / ``TaskLogLineMatcher`` do:

* a line (its ``\\n`` / ``\\r\\n`` terminator stripped) matches only as a whole: ``^::(\\{.*\\})::$``;
* the captured text is a JSON object with optional keys ``outputs`` (merged into the task's ``vars``, last
  write wins per key), ``metrics`` (``[{name, type: counter|timer, value, tags}]``; a timer value is in
  seconds, or an ISO-8601 duration string), ``logs`` (``[{level, message}]``); unknown keys are ignored;
* invalid JSON or an invalid entry → one WARN log ``Invalid outputs '…'``; the line is otherwise ignored;
* a matched line is never echoed as a raw log line; other lines are logged as they are: stdout at INFO,
  stderr at WARN.

:class:`LineConsumer` is pure (no I/O): it turns lines into calls on a run context's logger and metrics.
"""
from __future__ import annotations

import json
import re
from typing import Any

from falconet.sdk import LogLevel, parse_duration, RunContext

LINE_RE = re.compile(r"^::(\{.*\})::$", re.S)


class InvalidLine(ValueError):
    """A ``::{…}::`` line whose content is not a valid protocol object."""


def parse_protocol_line(line: str) -> dict[str, Any] | None:
    """The protocol object of ``line`` (terminator already stripped), or None when the line does not match.

    Raises :class:`InvalidLine` when it matches but is not a JSON object with valid entries. The returned
    dict has the normalised keys ``outputs`` (dict), ``metrics`` (list of (type, name, value, tags)) and
    ``logs`` (list of (level, message)).
    """
    m = LINE_RE.match(line)
    if m is None:
        return None
    try:
        obj = json.loads(m.group(1))
    except json.JSONDecodeError as exc:
        raise InvalidLine(str(exc)) from exc
    if not isinstance(obj, dict):
        raise InvalidLine("not a JSON object")
    outputs = obj.get("outputs") or {}
    if not isinstance(outputs, dict):
        raise InvalidLine("`outputs` must be an object")
    metrics = [_metric(m) for m in _list(obj, "metrics")]
    logs = [_log(entry) for entry in _list(obj, "logs")]
    return {"outputs": outputs, "metrics": metrics, "logs": logs}


def _list(obj: dict[str, Any], key: str) -> list[Any]:
    value = obj.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidLine(f"`{key}` must be a list")
    return value


def _metric(entry: Any) -> tuple[str, str, float, dict[str, str]]:
    if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
        raise InvalidLine(f"invalid metric {entry!r}")
    kind, value = entry.get("type"), entry.get("value")
    tags = entry.get("tags") or {}
    if not isinstance(tags, dict):
        raise InvalidLine(f"metric tags must be an object: {tags!r}")
    tags = {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in tags.items()}
    if kind == "counter":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InvalidLine(f"counter value must be a number: {value!r}")
        return "counter", entry["name"], float(value), tags
    if kind == "timer":
        if isinstance(value, str):
            try:
                seconds = parse_duration(value).total_seconds()
            except ValueError as exc:
                raise InvalidLine(str(exc)) from exc
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            seconds = float(value)
        else:
            raise InvalidLine(f"timer value must be seconds or an ISO-8601 duration: {value!r}")
        return "timer", entry["name"], seconds, tags
    raise InvalidLine(f"unsupported metric type {kind!r} (counter or timer)")


def _log(entry: Any) -> tuple[str, str]:
    if not isinstance(entry, dict):
        raise InvalidLine(f"invalid log entry {entry!r}")
    level = LogLevel.parse(str(entry.get("level", "INFO")))
    if level is None:
        raise InvalidLine(f"invalid log level {entry.get('level')!r}")
    message = entry.get("message")
    return level.name, "" if message is None else str(message)


class LineConsumer:
    """Feeds script output lines to a run context: logs, metrics, and the merged ``vars`` outputs.

    ``stdout_count`` / ``stderr_count`` count every line, matched or not.
    """

    def __init__(self, ctx: RunContext):
        self.ctx = ctx
        self.vars: dict[str, Any] = {}
        self.stdout_count = 0
        self.stderr_count = 0

    def feed(self, line: str, stderr: bool) -> None:
        """Handle one line (terminator stripped) from stdout (``stderr=False``) or stderr."""
        if stderr:
            self.stderr_count += 1
        else:
            self.stdout_count += 1
        try:
            parsed = parse_protocol_line(line)
        except InvalidLine as exc:
            self.ctx.logger.warn(f"Invalid outputs '{line}': {exc}")
            return
        if parsed is None:
            (self.ctx.logger.warn if stderr else self.ctx.logger.info)(line)
            return
        self.vars.update(parsed["outputs"])
        for kind, name, value, tags in parsed["metrics"]:
            self.ctx.metric(kind, name, value, tags)
        for level, message in parsed["logs"]:
            self.ctx.logger.log(level, message)
