"""The filter and test registries shared by the filter modules, and small helpers they share."""
from __future__ import annotations

import datetime as _dt
import functools
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Callable

from falconet.runtime.expr.base import ExpressionError, PebbleUndefined
from falconet.runtime.expr.output import to_output_string

FILTERS: dict[str, Callable[..., Any]] = {}
TESTS: dict[str, Callable[..., bool]] = {}


def register_filter(*names: str, lenient: bool = False) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a filter. An undefined input or argument makes the result that same undefined value, so the
    error surfaces where it is used (``{{ a.b | upper }}`` → ``Unable to find `b```) while ``a.b | upper ?? x``
    still falls back like Kestra. ``lenient`` filters (``default``) receive an undefined input."""

    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def strict(piped: Any, /, *args: Any, **kwargs: Any) -> Any:
            if not lenient and isinstance(piped, PebbleUndefined):
                return piped
            for arg in (*args, *kwargs.values()):
                if isinstance(arg, PebbleUndefined):
                    return arg
            try:
                return fn(piped, *args, **kwargs)
            except TypeError as exc:
                if "argument" in str(exc):
                    raise ExpressionError(f"Filter '{names[0]}': {exc}") from None
                raise
        for name in names:
            FILTERS[name] = strict
        return strict
    return wrap


JAVA_WHITESPACE = "".join(chr(c) for c in range(33))   # what Java's String.trim() removes


def java_trim(value: str) -> str:
    """Java's ``String.trim()``: strips the characters up to U+0020 at both ends."""
    return value.strip(JAVA_WHITESPACE)


def is_empty(value: Any) -> bool:
    """Pebble's ``empty`` test: null, a blank string (after trim), an empty collection or map."""
    if value is None:
        return True
    if isinstance(value, str):
        return java_trim(value) == ""
    if isinstance(value, (list, tuple, set, frozenset, Mapping)):
        return len(value) == 0
    return False


def text(value: Any) -> str:
    """A filter's view of a value as text: the print rules (maps/lists as JSON)."""
    return to_output_string(value)


JAVA_CLASSES = ((bool, "java.lang.Boolean"), (int, "java.lang.Long"), (float, "java.lang.Double"),
                (Decimal, "java.math.BigDecimal"), (str, "java.lang.String"), (Mapping, "java.util.LinkedHashMap"),
                (list, "java.util.ArrayList"), (tuple, "java.util.ArrayList"),
                (_dt.datetime, "java.time.ZonedDateTime"), (_dt.date, "java.time.LocalDate"))


def java_class(value: Any) -> str:
    """The Java class Kestra would report for a value (``className`` filter, error messages)."""
    for kind, name in JAVA_CLASSES:
        if isinstance(value, kind):
            return name
    return type(value).__name__


def register_test(*names: str) -> Callable[[Callable[..., bool]], Callable[..., bool]]:
    """Register a test (``x is <name>``) under ``names``."""

    def wrap(fn: Callable[..., bool]) -> Callable[..., bool]:
        for name in names:
            TESTS[name] = fn
        return fn
    return wrap
