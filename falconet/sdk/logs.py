"""Kestra's log levels, shared by the run context, the store's log queries, the HTTP filters and the live
streams."""
from __future__ import annotations

import enum
from typing import Any

__all__ = ["LogLevel"]


class LogLevel(enum.IntEnum):
    """Kestra's log levels (slf4j's ``Level``), least to most severe: a line passes a minimum level when it
    is at or above it."""

    TRACE = 0
    DEBUG = 1
    INFO = 2
    WARN = 3
    ERROR = 4

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """``("TRACE", "DEBUG", "INFO", "WARN", "ERROR")``."""
        return _NAMES

    @classmethod
    def parse(cls, name: Any) -> LogLevel | None:
        """The level called ``name`` in any case (``WARNING`` is ``WARN``, as Python's logging says it), or
        None when ``name`` names no level."""
        if not isinstance(name, str):
            return None
        text = name.upper()
        return cls.__members__.get("WARN" if text == "WARNING" else text)


_NAMES = tuple(level.name for level in LogLevel)  # read by every Log task: iterating an enum is slow
